## Headless demo: two LocalPacketPeers exchange Variants and raw packets; prints what went through.
## Run with scripts/demo.sh.
extends SceneTree


func _initialize() -> void:
	var ends := LocalPacketPeer.create_pair(64, 4096)
	var client: LocalPacketPeer = ends[0]
	var server: LocalPacketPeer = ends[1]
	print("LocalPacketPeer pair: capacity %d packets, max packet %d bytes" % [
		client.get_capacity(), client.get_max_packet_size()])

	print("\nclient -> server, as Variants (put_var / get_var):")
	var messages := [
		{"type": "hello", "name": "Ada", "version": 3},
		{"type": "move", "position": Vector3(1.5, 0, -2), "tick": 1042},
		[&"chat", "héllo, wörld ✓"],
		PackedInt32Array([10, 20, 30]),
	]
	for message in messages:
		client.put_var(message)
	while server.get_available_packet_count() > 0:
		var got = server.get_var()
		print("  server got %-20s %s" % [type_string(typeof(got)), got])

	print("\nserver -> client, raw packets (put_packet / get_packet):")
	for text in ["welcome", "state:0042", "bye"]:
		server.put_packet(text.to_utf8_buffer())
	while client.get_available_packet_count() > 0:
		var packet := client.get_packet()
		print("  client got %2d bytes: %s" % [packet.size(), packet.get_string_from_utf8()])

	print("\nback-pressure and limits:")
	var small := LocalPacketPeer.create_pair(2, 8)
	print("  put 3 packets into a capacity-2 pair: %s, %s, %s" % [
		error_string(small[0].put_packet(PackedByteArray([1]))),
		error_string(small[0].put_packet(PackedByteArray([2]))),
		error_string(small[0].put_packet(PackedByteArray([3])))])
	small[0].close()
	print("  after close(): is_open=%s, put -> %s, still readable: %d packets" % [
		small[1].is_open(), error_string(small[1].put_packet(PackedByteArray([4]))),
		small[1].get_available_packet_count()])

	print("\nclient stats: %s" % client.get_stats())
	print("server stats: %s" % server.get_stats())
	quit(0)
