## Both sides of a ReliablePacketPeer connection over PacketPeerUDP on this machine. In a game, each side runs on
## its own machine with the same code, the ports and addresses swapped.
## Expect: connected
## Expect: the other side got { "chat": "hello" }
extends Node

var reliable := ReliablePacketPeer.new()
var other_side := ReliablePacketPeer.new()


func _ready() -> void:
	var udp := PacketPeerUDP.new()
	udp.bind(4243, "127.0.0.1")
	udp.set_dest_address("127.0.0.1", 4242)
	reliable.inner = udp                             # or a LinkConditioner wrapping it, to test under bad conditions
	reliable.connected.connect(func(): print("connected"))
	reliable.connection_failed.connect(func(why): push_warning("lost the peer: " + why))
	reliable.put_var({"chat": "hello"})              # queued until the handshake completes
	var other_udp := PacketPeerUDP.new()
	other_udp.bind(4242, "127.0.0.1")
	other_udp.set_dest_address("127.0.0.1", 4243)
	other_side.inner = other_udp


func _process(_delta: float) -> void:
	reliable.poll()                                  # handshake, acks, retransmissions: every frame, both sides
	other_side.poll()
	while other_side.get_available_packet_count() > 0:
		print("the other side got ", other_side.get_var())
