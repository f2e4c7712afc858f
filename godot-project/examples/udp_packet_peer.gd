## UdpPacketPeer where a game used PacketPeerUDP; a second one in the same script plays the other end.
## Expect: { "hello": 1 } from 127.0.0.1:4243
extends Node

var udp := UdpPacketPeer.new()                       # instead of PacketPeerUDP.new(); nothing else changes
var other_end := UdpPacketPeer.new()


func _ready() -> void:
	udp.bind(4242, "127.0.0.1")
	other_end.bind(4243, "127.0.0.1")
	other_end.set_dest_address("127.0.0.1", 4242)
	other_end.put_var({"hello": 1})


func _process(_delta: float) -> void:                # read once a frame, as a game does
	while udp.get_available_packet_count() > 0:
		print(udp.get_var(), " from ", udp.get_packet_ip(), ":", udp.get_packet_port())
