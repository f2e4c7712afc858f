## A UdpLinkProxy between two UDP sockets: the "server" listens on one port, the "client" sends to the proxy's
## port instead, and the proxy holds every datagram 50 ms on the way up. The same works between two game
## processes (start the proxy in either, or in a tool script), with ENet or anything else over UDP.
## Expect: the server got "hello" after at least 50 ms: true
extends SceneTree


func _initialize() -> void:
	var server := PacketPeerUDP.new()
	server.bind(24600, "127.0.0.1")
	var proxy := UdpLinkProxy.new()
	proxy.start(24601, "127.0.0.1", 24600)          # listen on 24601, relay to the server's 24600
	proxy.set_link_conditions("", {"latency_ms": 50}, UdpLinkProxy.DIRECTION_TO_SERVER)
	var client := PacketPeerUDP.new()
	client.set_dest_address("127.0.0.1", 24601)      # the client talks to the proxy, not the server
	var sent := Time.get_ticks_msec()
	client.put_packet("hello".to_utf8_buffer())
	while server.get_available_packet_count() == 0 and Time.get_ticks_msec() - sent < 2000:
		OS.delay_msec(1)                             # the proxy relays on its own thread
	var text := server.get_packet().get_string_from_utf8()
	var waited := Time.get_ticks_msec() - sent
	print("the server got \"%s\" after at least 50 ms: %s" % [text, waited >= 50])
	proxy.stop()
	quit(0 if text == "hello" and waited >= 50 else 1)
