## ReliablePacketPeer against the real class: over LinkConditioner + LocalPacketPeer with the manual clock,
## and over PacketPeerUDP on loopback with the real clock.
extends "res://tests/suite.gd"

const MIB := 1024 * 1024

var _udp: Array[PacketPeerUDP] = []
var _failures_seen: Array[String] = []


func after_each() -> void:
	for peer in _udp:
		peer.close()


# Two reliable peers over two conditioners over a LocalPacketPeer pair, all on manual clocks.
# Returns {"a", "b", "link_a", "link_b", "all"}.
func _lossy_setup(settings: Dictionary) -> Dictionary:
	var ends := LocalPacketPeer.create_pair(8192)
	var setup := {}
	for side in ["a", "b"]:
		var link := LinkConditioner.new()
		link.inner = ends[0] if side == "a" else ends[1]
		link.use_manual_clock = true
		link.seed = 11 if side == "a" else 12
		link.configure(settings, LinkConditioner.DIRECTION_OUTBOUND)
		var reliable := ReliablePacketPeer.new()
		reliable.use_manual_clock = true
		reliable.inner = link
		setup[side] = reliable
		setup["link_" + side] = link
	setup["all"] = [setup["link_a"], setup["link_b"], setup["a"], setup["b"]]
	return setup


func _tick(peers: Array, msec: float) -> void:
	for peer in peers:
		peer.advance(msec)


func _varied_value(i: int) -> Variant:
	match i % 8:
		0: return i
		1: return "message %d ✓" % i
		2: return {"i": i, "pos": Vector2(i, -i), "tags": ["a", "b"]}
		3: return [i, float(i) / 3.0, null, true]
		4: return PackedByteArray([i & 0xFF, (i >> 8) & 0xFF])
		5: return Vector3i(i, i * 2, i * 3)
		6: return Color(0.25, 0.5, float(i % 4) / 4.0)
		_: return PackedInt64Array([i, -i, 9223372036854775807])


func test_a_thousand_values_arrive_in_order_over_twenty_percent_loss() -> void:
	var setup := _lossy_setup({"loss": 0.2, "latency_ms": 10, "jitter_ms": 5})
	var a: ReliablePacketPeer = setup["a"]
	var b: ReliablePacketPeer = setup["b"]
	for i in 1000:
		assert_ok(a.put_var(_varied_value(i)), "put %d" % i)
	var received := []
	for step in 20000:
		_tick(setup["all"], 5)
		while b.get_available_packet_count() > 0:
			received.append(b.get_var())
		if received.size() >= 1000:
			break
	assert_eq(received.size(), 1000, "all delivered")
	var wrong := 0
	for i in mini(received.size(), 1000):
		if not _same(received[i], _varied_value(i)):
			wrong += 1
	assert_eq(wrong, 0, "every value intact and in order")
	var stats: Dictionary = a.get_stats()
	assert_true(stats["retransmissions"] > 0, "20% loss needed retransmissions")
	assert_eq(stats["messages_sent"], 1000)
	assert_eq(b.get_stats()["messages_received"], 1000)
	assert_eq(a.get_status(), ReliablePacketPeer.STATUS_CONNECTED)
	assert_true(setup["link_a"].get_stats()["outbound"]["dropped_loss"] > 0, "the link really lost packets")


func test_a_one_mib_message_arrives_intact_over_loss() -> void:
	var setup := _lossy_setup({"loss": 0.2, "latency_ms": 10})
	var a: ReliablePacketPeer = setup["a"]
	var b: ReliablePacketPeer = setup["b"]
	var big := PackedByteArray()
	big.resize(MIB)
	for i in MIB:
		big[i] = (i * 7 + (i >> 11)) & 0xFF
	assert_ok(a.put_packet(big))
	var got := PackedByteArray()
	for step in 20000:
		_tick(setup["all"], 5)
		if b.get_available_packet_count() > 0:
			got = b.get_packet()
			break
	assert_eq(got.size(), MIB)
	assert_true(got == big, "1 MiB byte-identical")
	assert_eq(b.get_max_packet_size(), MIB, "get_max_packet_size is max_message_size")


func test_values_and_a_large_message_over_packet_peer_udp_with_the_real_clock() -> void:
	var udp_a := PacketPeerUDP.new()
	var udp_b := PacketPeerUDP.new()
	_udp.append_array([udp_a, udp_b])
	assert_ok(udp_a.bind(0, "127.0.0.1"))
	assert_ok(udp_b.bind(0, "127.0.0.1"))
	udp_a.set_dest_address("127.0.0.1", udp_b.get_local_port())
	udp_b.set_dest_address("127.0.0.1", udp_a.get_local_port())
	var a := ReliablePacketPeer.new()
	var b := ReliablePacketPeer.new()
	a.inner = udp_a
	b.inner = udp_b
	var big := PackedByteArray()
	big.resize(256 * 1024)
	for i in big.size():
		big[i] = (i * 13) & 0xFF
	for i in 300:
		assert_ok(a.put_var(_varied_value(i)))
	assert_ok(a.put_packet(big))
	var received := []
	var got_big := PackedByteArray()
	var deadline := Time.get_ticks_msec() + 15000
	while Time.get_ticks_msec() < deadline and got_big.is_empty():
		a.poll()
		while b.get_available_packet_count() > 0:
			if received.size() < 300:
				received.append(b.get_var())
			else:
				got_big = b.get_packet()
		OS.delay_usec(200)
	assert_eq(received.size(), 300)
	var wrong := 0
	for i in received.size():
		if not _same(received[i], _varied_value(i)):
			wrong += 1
	assert_eq(wrong, 0, "in order and intact")
	assert_true(got_big == big, "256 KiB message intact")
	assert_eq(b.get_status(), ReliablePacketPeer.STATUS_CONNECTED)
	assert_between(a.get_stats()["rtt_ms"], 0.001, 1000.0, "a round trip was measured on loopback")


func test_status_moves_from_connecting_to_connected_to_closed() -> void:
	var setup := _lossy_setup({})
	var a: ReliablePacketPeer = setup["a"]
	var b: ReliablePacketPeer = setup["b"]
	assert_eq(a.get_status(), ReliablePacketPeer.STATUS_CONNECTING)
	var connected_seen := []
	a.connected.connect(func(): connected_seen.append("a"))
	b.connected.connect(func(): connected_seen.append("b"))
	a.put_var("hello")  # queued during the handshake
	for step in 4:
		_tick(setup["all"], 5)
	assert_eq(b.get_var(), "hello", "delivered once the handshake completed")
	_tick(setup["all"], 5)
	assert_eq(a.get_status(), ReliablePacketPeer.STATUS_CONNECTED)
	assert_eq(b.get_status(), ReliablePacketPeer.STATUS_CONNECTED)
	a.close()
	_tick(setup["all"], 5)
	assert_eq(a.get_status(), ReliablePacketPeer.STATUS_DISCONNECTED)
	assert_eq(b.get_status(), ReliablePacketPeer.STATUS_DISCONNECTED)
	assert_eq(b.get_error_message(), "the peer closed the connection")
	assert_error(a.put_var("too late"), ERR_CONNECTION_ERROR)
	await Engine.get_main_loop().process_frame
	connected_seen.sort()
	assert_eq(connected_seen, ["a", "b"], "connected emitted once on each side")


func test_a_cut_link_fails_within_the_timeout_and_says_so() -> void:
	var setup := _lossy_setup({})
	var a: ReliablePacketPeer = setup["a"]
	var b: ReliablePacketPeer = setup["b"]
	a.timeout_ms = 500
	b.timeout_ms = 500
	a.connection_failed.connect(func(message: String): _failures_seen.append(message))
	a.put_var(1)
	for step in 4:
		_tick(setup["all"], 5)
	assert_eq(b.get_var(), 1)
	setup["link_a"].link_up = false
	setup["link_b"].link_up = false
	a.put_var(2)
	var failed_after := -1.0
	for step in 200:
		_tick(setup["all"], 5)
		if a.get_status() == ReliablePacketPeer.STATUS_ERROR:
			failed_after = (step + 1) * 5.0
			break
	assert_between(failed_after, 400.0, 500.0, "failed within timeout_ms of the cut")
	assert_eq(a.get_error_message(), "no datagram from the peer for 500 ms (timeout_ms)")
	assert_error(a.put_var(3), ERR_CONNECTION_ERROR)
	assert_error_logged("connection failed: no datagram from the peer for 500 ms")
	await Engine.get_main_loop().process_frame
	assert_eq(_failures_seen, ["no datagram from the peer for 500 ms (timeout_ms)"], "connection_failed emitted once")


func test_a_full_send_buffer_returns_busy_and_queues_nothing() -> void:
	var setup := _lossy_setup({"link_up": false})
	var a: ReliablePacketPeer = setup["a"]
	var chunk := PackedByteArray()
	chunk.resize(MIB)
	var accepted := 0
	var err := OK
	while err == OK and accepted < 100:
		err = a.put_packet(chunk)
		if err == OK:
			accepted += 1
	assert_error(err, ERR_BUSY)
	assert_eq(accepted, 4, "the 4 MiB send buffer holds four 1 MiB messages")
	assert_eq(a.get_stats()["messages_sent"], 4, "the refused message was not queued")
	assert_eq(a.get_stats()["messages_pending"], 4)


func test_oversize_messages_and_bad_settings_are_refused() -> void:
	var peer := ReliablePacketPeer.new()
	var ends := LocalPacketPeer.create_pair()
	peer.inner = ends[0]
	peer.max_message_size = 1000
	var big := PackedByteArray()
	big.resize(1001)
	assert_error(peer.put_packet(big), ERR_INVALID_PARAMETER)
	assert_error_logged("message of 1001 bytes is larger than max_message_size (1000 bytes)")
	peer.mtu = 10
	assert_eq(peer.mtu, 1200, "mtu unchanged")
	assert_error_logged("mtu must be between 64 and 65507, got 10")
	peer.max_message_size = 0
	peer.max_message_size = 16 * MIB + 1
	assert_eq(peer.max_message_size, 1000)
	peer.timeout_ms = -1
	assert_eq(peer.timeout_ms, 10000)
	peer.advance(5)
	assert_error_logged("set use_manual_clock = true first")


func test_without_inner_peer_everything_is_unconfigured() -> void:
	var lone := ReliablePacketPeer.new()
	assert_error(lone.put_var(1), ERR_UNCONFIGURED)
	assert_eq(lone.get_packet(), PackedByteArray())
	assert_error(lone.get_packet_error(), ERR_UNCONFIGURED)
	assert_eq(lone.get_available_packet_count(), 0)


func test_wrapping_itself_directly_or_through_a_conditioner_is_refused() -> void:
	var reliable := ReliablePacketPeer.new()
	reliable.inner = reliable
	assert_null(reliable.inner)
	var link := LinkConditioner.new()
	link.inner = reliable
	reliable.inner = link
	assert_null(reliable.inner, "reliable -> link -> reliable is a cycle")
	assert_error_logged("cannot wrap itself")
	link.inner = null


func test_garbage_from_the_transport_is_dropped_and_counted() -> void:
	var ends := LocalPacketPeer.create_pair()
	var reliable := ReliablePacketPeer.new()
	reliable.inner = ends[0]
	ends[1].put_packet("not a peerkit datagram at all".to_utf8_buffer())
	var almost := PackedByteArray([0x50, 0x4B, 1, 1])  # magic, version, DATA: then a wrong checksum
	almost.resize(40)
	ends[1].put_packet(almost)
	assert_eq(reliable.get_available_packet_count(), 0)
	var stats: Dictionary = reliable.get_stats()
	assert_eq(stats["dropped_invalid"], 1)
	assert_eq(stats["dropped_corrupt"], 1)
	assert_eq(reliable.get_status(), ReliablePacketPeer.STATUS_CONNECTING, "garbage does not count as the peer")


# --- Protocol v2: the four ways v1 broke its promise (issue 13), each seen to fail on v1 first.

# Two reliable peers straight over a LocalPacketPeer pair, on manual clocks: {"a", "b", "ends", "all"}.
func _direct_setup(seed_a: int = 1, seed_b: int = 2) -> Dictionary:
	var ends := LocalPacketPeer.create_pair(8192)
	var a := ReliablePacketPeer.new()
	var b := ReliablePacketPeer.new()
	for peer in [a, b]:
		peer.use_manual_clock = true
	a.seed = seed_a
	b.seed = seed_b
	a.inner = ends[0]
	b.inner = ends[1]
	return {"a": a, "b": b, "ends": ends, "all": [a, b]}


func test_a_slow_reader_loses_nothing_and_the_stream_resumes() -> void:
	var setup := _direct_setup()
	var a: ReliablePacketPeer = setup["a"]
	var b: ReliablePacketPeer = setup["b"]
	var chunk := PackedByteArray()
	chunk.resize(16 * 1024)
	var accepted := 0
	var received := 0
	for step in 3000:
		while accepted < 600 and a.put_packet(chunk) == OK:
			accepted += 1
		_tick(setup["all"], 5)
		# b is polled every step (advance polls) but read only after 2 s.
		if step * 5 >= 2000:
			while b.get_available_packet_count() > 0:
				b.get_packet()
				received += 1
		if received == 600 and a.get_stats()["messages_pending"] == 0:
			break
	assert_eq(received, 600, "every accepted message arrived once the reader read")
	assert_eq(a.get_stats()["messages_pending"], 0)
	assert_eq(a.get_status(), ReliablePacketPeer.STATUS_CONNECTED)


func test_a_stale_datagram_of_an_earlier_connection_is_not_delivered() -> void:
	var setup := _direct_setup()
	var old_a: ReliablePacketPeer = setup["a"]
	var old_b: ReliablePacketPeer = setup["b"]
	old_a.put_var("first")
	for step in 20:
		_tick(setup["all"], 5)
	assert_eq(old_b.get_var(), "first", "the old connection worked")
	# The old sender's next DATA waits in the transport; nobody on the old receiving side reads it.
	old_a.put_var("old")
	old_a.advance(5)
	# New peers on the same transport.
	var a := ReliablePacketPeer.new()
	var b := ReliablePacketPeer.new()
	for peer in [a, b]:
		peer.use_manual_clock = true
	a.seed = 3
	b.seed = 4
	a.inner = setup["ends"][0]
	b.inner = setup["ends"][1]
	a.put_var("new")
	var got := []
	for step in 100:
		_tick([a, b], 5)
		while b.get_available_packet_count() > 0:
			got.append(b.get_var())
	assert_eq(got, ["new"], "only the new connection's message")


func _crc32(bytes: PackedByteArray) -> int:
	var crc := 0xFFFFFFFF
	for byte in bytes:
		crc ^= byte
		for k in 8:
			crc = (crc >> 1) ^ (0xEDB88320 if crc & 1 else 0)
	return crc ^ 0xFFFFFFFF


func test_a_forged_ack_is_dropped_and_acknowledges_nothing() -> void:
	var setup := _direct_setup()
	var a: ReliablePacketPeer = setup["a"]
	var b: ReliablePacketPeer = setup["b"]
	for step in 20:
		_tick(setup["all"], 5)
	assert_eq(a.get_status(), ReliablePacketPeer.STATUS_CONNECTED)
	# Ten messages go out; the test takes their datagrams off the wire before b sees them, and answers with a
	# forgery that carries the right connection ids and a valid checksum.
	for i in 10:
		a.put_packet(PackedByteArray([i]))
	a.advance(1)
	var ends: Array = setup["ends"]
	var data: PackedByteArray
	while ends[1].get_available_packet_count() > 0:
		var d: PackedByteArray = ends[1].get_packet()
		if d[3] == 1 and data.is_empty():  # the first DATA
			data = d
	assert_false(data.is_empty(), "a DATA datagram was sent")
	var to_a := data.decode_u32(12)  # the sender's id
	var from_b := data.decode_u32(8)  # the receiver's id
	var first_seq := data.decode_u32(48)  # after the 16-byte header and the 32-byte acknowledgements
	var before: Dictionary = a.get_stats()
	var forged := PackedByteArray()
	forged.resize(48)
	forged.encode_u8(0, 0x50)
	forged.encode_u8(1, 0x4B)
	forged.encode_u8(2, 2)
	forged.encode_u8(3, 2)  # ACK
	forged.encode_u32(8, to_a)
	forged.encode_u32(12, from_b)
	forged.encode_u32(16, (first_seq + (1 << 31) - 1) & 0xFFFFFFFF)  # next
	forged.encode_u32(20, (first_seq + 0xFFFFFFFF - 4) & 0xFFFFFFFF)  # largest
	forged.encode_u32(32, (first_seq + 5) & 0xFFFFFFFF)  # recent
	forged.encode_u32(4, _crc32(forged))
	ends[1].put_packet(forged)
	var started := Time.get_ticks_usec()
	a.poll()
	var spent_ms := (Time.get_ticks_usec() - started) / 1000.0
	var after: Dictionary = a.get_stats()
	assert_eq(after["dropped_invalid"], before["dropped_invalid"] + 1, "the forgery was dropped")
	assert_eq(after["messages_pending"], 10, "nothing was marked delivered")
	print("    one poll with the forged ACK: %.2f ms" % spent_ms)


func test_setting_inner_with_messages_pending_closes_properly_and_says_what_was_discarded() -> void:
	var setup := _direct_setup()
	var a: ReliablePacketPeer = setup["a"]
	var b: ReliablePacketPeer = setup["b"]
	var closed_seen := []
	b.closed.connect(func(): closed_seen.append("closed"))
	a.put_var("hello")
	for step in 20:
		_tick(setup["all"], 5)
	assert_eq(b.get_var(), "hello")
	var cut := LinkConditioner.new()
	cut.use_manual_clock = true
	cut.inner = setup["ends"][0]
	cut.link_up = false
	# A new inner peer: the old connection is closed properly, over the old inner peer.
	a.inner = cut
	_tick(setup["all"], 5)
	assert_eq(b.get_status(), ReliablePacketPeer.STATUS_DISCONNECTED, "the other side was told")
	assert_eq(b.get_error_message(), "the peer closed the connection")
	await Engine.get_main_loop().process_frame
	assert_eq(closed_seen, ["closed"], "closed emitted once")
	# Five messages put over the cut link, then the inner peer replaced again: they are reported, not lost silently.
	for i in 5:
		a.put_var(i)
	_tick(setup["all"], 5)
	a.inner = setup["ends"][0]
	assert_error_logged("closed the connection with 5 messages not yet acknowledged")
	assert_eq(a.get_stats()["messages_discarded"], 5)


func test_different_max_message_sizes_fail_at_connect_time_naming_both() -> void:
	var setup := _direct_setup()
	var a: ReliablePacketPeer = setup["a"]
	var b: ReliablePacketPeer = setup["b"]
	b.max_message_size = 65536
	for step in 10:
		_tick(setup["all"], 5)
	assert_eq(a.get_status(), ReliablePacketPeer.STATUS_ERROR)
	assert_eq(b.get_status(), ReliablePacketPeer.STATUS_ERROR)
	assert_eq(a.get_error_message(),
		"the peer's max_message_size is 65536 and this peer's is 1048576; set the same max_message_size on both sides")
	assert_error_logged("set the same max_message_size on both sides")


# Putting messages for a second without ever polling used to say nothing (and deliver nothing over a
# LinkConditioner, which moves packets only when polled). It warns once.
func test_putting_for_a_second_without_polling_warns_once() -> void:
	var ends := LocalPacketPeer.create_pair()
	var a := ReliablePacketPeer.new()
	a.inner = ends[0]
	a.put_var("one")
	OS.delay_msec(1100)
	a.put_var("two")
	a.put_var("three")
	assert_error_logged("a message put 1.1 s ago waits for poll()")
	var warnings := 0
	for logged in errors.peek():
		if String(logged["text"]).contains("waits for poll()"):
			warnings += 1
	assert_eq(warnings, 1, "once")
	a.poll()
	a.put_var("four")
	assert_eq(warnings, 1)


# A ReliablePacketPeer whose other side speaks another protocol used to count dropped_invalid quietly and then
# fail with "no datagram from the peer", although datagrams did arrive. The failure says how many arrived.
func test_an_other_side_that_is_not_a_reliable_packet_peer_is_named_in_the_failure() -> void:
	var ends := LocalPacketPeer.create_pair()
	var a := ReliablePacketPeer.new()
	a.use_manual_clock = true
	a.timeout_ms = 200
	a.inner = ends[0]
	for step in 50:
		ends[1].put_var("I am not a ReliablePacketPeer")
		a.advance(5)
	assert_eq(a.get_status(), ReliablePacketPeer.STATUS_ERROR)
	assert_eq(a.get_error_message(), "no answer to the handshake for 200 ms (timeout_ms); 40 datagrams of another protocol arrived meanwhile: is the other side a ReliablePacketPeer?")
	assert_error_logged("datagrams of another protocol arrived")


## A ReliablePacketPeer that is freed (or whose process quits) closes its connection on the way out, so the other
## side learns it at once instead of waiting out its timeout (10 s) and reporting what had arrived as lost.
func test_a_freed_peer_closes_its_connection_so_the_other_side_learns_at_once() -> void:
	var ends := LocalPacketPeer.create_pair()
	var a := ReliablePacketPeer.new()
	a.inner = ends[0]
	var b := ReliablePacketPeer.new()
	b.inner = ends[1]
	for i in 5:
		a.poll()
		b.poll()
	assert_eq(a.get_status(), ReliablePacketPeer.STATUS_CONNECTED)
	assert_ok(a.put_var("last"))
	a.poll()
	assert_eq(b.get_var(), "last")
	b = null  # the last reference: freed
	a.poll()
	assert_eq(a.get_status(), ReliablePacketPeer.STATUS_DISCONNECTED, "told at once")
	assert_eq(a.get_error_message(), "the peer closed the connection")
	var stats := a.get_stats()
	assert_eq([stats["messages_discarded"], stats["messages_unconfirmed"]], [0, 0], "nothing lost")


## A single put and no poll ever after used to wait in silence, CONNECTING forever. A second later it says so
## (once), and the handshake times out even though nobody polls: the status reflects the time.
func test_one_put_and_no_poll_is_said_and_the_handshake_still_times_out() -> void:
	var ends := LocalPacketPeer.create_pair()
	var a := ReliablePacketPeer.new()
	a.timeout_ms = 500
	a.inner = ends[0]
	assert_ok(a.put_var("hello"))
	await Engine.get_main_loop().create_timer(1.2).timeout
	assert_error_logged("ago waits for poll()")
	assert_eq(a.get_status(), ReliablePacketPeer.STATUS_ERROR, "timed out, though never polled")
	assert_true(a.get_error_message().contains("no answer to the handshake"), a.get_error_message())


## A side that only receives reported its handshake's round trip for the whole connection (628 ms, where the
## sender measured 90). Reading its stats now has it probe the path, so the figure a game shows follows it.
func test_a_receive_only_peer_reports_the_paths_round_trip_while_it_is_read() -> void:
	var setup := _lossy_setup({"latency_ms": 10})
	var a: ReliablePacketPeer = setup["a"]
	var b: ReliablePacketPeer = setup["b"]
	for i in 20:
		_tick(setup["all"], 5)
	assert_eq(b.get_status(), ReliablePacketPeer.STATUS_CONNECTED)
	for side in ["link_a", "link_b"]:
		setup[side].configure({"latency_ms": 45}, LinkConditioner.DIRECTION_OUTBOUND)
	for step in 400:  # 4 simulated seconds: a streams, b only reads, and shows its ping every 100 ms
		a.put_var(step)
		_tick(setup["all"], 10)
		while b.get_available_packet_count() > 0:
			b.get_var()
		if step % 10 == 0:
			b.get_stats()
	var sender: float = a.get_stats()["rtt_ms"]
	var receiver: float = b.get_stats()["rtt_ms"]
	assert_between(sender, 85.0, 110.0, "the sender measures the path")
	assert_between(receiver, 85.0, 110.0, "and so does the side that only receives (was the handshake's 20 ms)")
