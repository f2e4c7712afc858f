## A node sends over a LinkConditioner that wraps its PacketPeerUDP; a second socket in the same script plays
## the other end and echoes what it gets, so the script runs on its own.
## Expect: echoed back over a simulated 4g link: { "pos": (1.0, 2.0) }
extends Node

var conditioner := LinkConditioner.new()
var echo := PacketPeerUDP.new()                      # the other end (your server)


func _ready() -> void:
	echo.bind(4242, "127.0.0.1")
	var udp := PacketPeerUDP.new()
	udp.bind(4243, "127.0.0.1")
	udp.set_dest_address("127.0.0.1", 4242)
	conditioner.inner = udp                          # your existing peer
	conditioner.apply_preset("4g")                   # both directions
	conditioner.configure({"jitter_ms": 30}, LinkConditioner.DIRECTION_INBOUND)
	conditioner.put_var({"pos": Vector2(1, 2)})      # use it wherever you used udp


func _process(_delta: float) -> void:
	while echo.get_available_packet_count() > 0:     # the other end sends everything back
		var packet := echo.get_packet()
		echo.set_dest_address(echo.get_packet_ip(), echo.get_packet_port())
		echo.put_packet(packet)
	while conditioner.get_available_packet_count() > 0:
		print("echoed back over a simulated 4g link: ", conditioner.get_var())
