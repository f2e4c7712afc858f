## The install test's smoke script: copied into a brand-new project next to the unzipped addon, it uses every
## peerkit class the way a user would and prints "smoke: ok" or what failed.
extends SceneTree


func _initialize() -> void:
	var failures := []
	for cls in ["LocalPacketPeer", "LinkConditioner", "ReliablePacketPeer", "UdpPacketPeer",
			"LocalMultiplayerNetwork", "LocalMultiplayerPeer", "MultiplayerLinkConditioner"]:
		if not ClassDB.class_exists(cls):
			failures.append("class %s is not registered: the extension did not load" % cls)
	if failures.is_empty():
		var ends: Array = ClassDB.class_call_static("LocalPacketPeer", "create_pair")
		ends[0].put_var({"hello": "world"})
		if ends[1].get_var() != {"hello": "world"}:
			failures.append("LocalPacketPeer: the value did not arrive")
		var conditioner: PacketPeer = ClassDB.instantiate("LinkConditioner")
		conditioner.set("inner", ends[0])
		conditioner.set("use_manual_clock", true)
		conditioner.call("configure", {"latency_ms": 50})
		conditioner.put_var(42)
		conditioner.call("advance", 50)
		if ends[1].get_var() != 42:
			failures.append("LinkConditioner: the delayed value did not arrive")
		var pair: Array = ClassDB.class_call_static("LocalPacketPeer", "create_pair")
		var a: PacketPeer = ClassDB.instantiate("ReliablePacketPeer")
		var b: PacketPeer = ClassDB.instantiate("ReliablePacketPeer")
		a.set("inner", pair[0])
		b.set("inner", pair[1])
		a.put_var("reliable")
		var got = null
		for i in 100:
			a.call("poll")
			if b.get_available_packet_count() > 0:
				got = b.get_var()
				break
		if got != "reliable":
			failures.append("ReliablePacketPeer: the message did not arrive")
		var network: RefCounted = ClassDB.instantiate("LocalMultiplayerNetwork")
		var server: MultiplayerPeer = network.call("create_server")
		var client: MultiplayerPeer = network.call("create_client")
		network.call("poll")
		client.put_var("multiplayer")
		network.call("poll")
		if server.get_var() != "multiplayer":
			failures.append("LocalMultiplayerPeer: the packet did not reach the server")
		var wrapped: MultiplayerPeer = ClassDB.class_call_static("MultiplayerLinkConditioner", "wrap", client, "clean")
		wrapped.put_var("wrapped")
		network.call("poll")
		if server.get_var() != "wrapped":
			failures.append("MultiplayerLinkConditioner: the packet did not reach the server")
		var udp: PacketPeer = ClassDB.instantiate("UdpPacketPeer")
		if udp.call("bind", 0, "127.0.0.1") != OK:
			failures.append("UdpPacketPeer: bind failed")
		udp.call("close")
	for failure in failures:
		print("smoke FAILED: " + failure)
	print("smoke: ok" if failures.is_empty() else "smoke: %d failed" % failures.size())
	quit(0 if failures.is_empty() else 1)
