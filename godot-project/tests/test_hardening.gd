## Hardening: panics become errors, floods are refused or counted with bounded memory, threads hammer pairs,
## hostile values are refused. (The 1,000,000-packet floods run in the Rust core tests, where they are fast; here
## the real classes take 100,000 each, in the debug build with godot-rust's strict checks.)
extends "res://tests/suite.gd"

const FLOOD := 100000

var _threads: Array[Thread] = []


func after_each() -> void:
	for thread in _threads:
		if thread.is_started():
			thread.wait_to_finish()


func _rss_kib() -> int:
	var output := []
	if OS.execute("cat", ["/proc/%d/statm" % OS.get_process_id()], output) != 0 or output.is_empty():
		return -1
	return int(String(output[0]).split(" ")[1]) * 4


func test_a_panic_inside_a_virtual_becomes_an_error_and_a_logged_message() -> void:
	if not assert_true(ClassDB.class_exists("PeerkitPanicProbe"),
			"the library was built without --test-hooks; run the tests through scripts/test.sh"):
		return
	var probe: PacketPeer = ClassDB.instantiate("PeerkitPanicProbe")
	assert_error(probe.put_packet(PackedByteArray([1, 2])), ERR_BUG)
	assert_error_logged("internal error in PeerkitPanicProbe.put_packet: deliberate panic in put_packet (2 bytes)")
	assert_eq(probe.get_packet(), PackedByteArray())
	assert_error(probe.get_packet_error(), ERR_BUG)
	assert_error_logged("internal error in PeerkitPanicProbe.get_packet")
	assert_error(probe.put_var("again"), ERR_BUG, "the peer keeps answering after a panic")


func test_flooding_a_full_local_pair_refuses_the_excess_and_holds_memory() -> void:
	var ends := LocalPacketPeer.create_pair(1000, 64)
	var packet := PackedByteArray()
	packet.resize(64)
	var before := _rss_kib()
	var busy := 0
	for i in FLOOD:
		if ends[0].put_packet(packet) == ERR_BUSY:
			busy += 1
	assert_eq(busy, FLOOD - 1000)
	var stats: Dictionary = ends[0].get_stats()
	assert_eq(stats["packets_sent"], 1000)
	assert_eq(stats["refused_busy"], FLOOD - 1000)
	assert_eq(ends[1].get_available_packet_count(), 1000)
	assert_between(_rss_kib() - before, -4096, 2048, "resident KiB grown by the flood")


func test_flooding_a_bandwidth_capped_conditioner_drops_and_counts_the_excess() -> void:
	var ends := LocalPacketPeer.create_pair(1000, 1024)
	var conditioner := LinkConditioner.new()
	conditioner.inner = ends[0]
	conditioner.use_manual_clock = true
	conditioner.configure({"bandwidth_bytes_per_second": 10000, "queue_limit": 500}, LinkConditioner.DIRECTION_OUTBOUND)
	var packet := PackedByteArray()
	packet.resize(100)
	var before := _rss_kib()
	for i in FLOOD:
		assert_ok(conditioner.put_packet(packet)) if i == 0 else conditioner.put_packet(packet)
	var out: Dictionary = conditioner.get_stats()["outbound"]
	assert_eq(out["queued"], 500, "the queue holds its limit, no more")
	assert_eq(out["dropped_overflow"], FLOOD - 500)
	assert_eq(out["packets_in"], FLOOD)
	assert_between(_rss_kib() - before, -4096, 2048, "resident KiB grown by the flood")
	conditioner.advance(10000)  # 10 s at 10 kB/s moves 1000 packets of 100 B: the 500 queued all go
	assert_eq(ends[1].get_available_packet_count(), 500)


func test_flooding_a_reliable_peer_with_a_cut_link_refuses_then_fails() -> void:
	var ends := LocalPacketPeer.create_pair(64, 2048)
	var conditioner := LinkConditioner.new()
	conditioner.inner = ends[0]
	conditioner.use_manual_clock = true
	conditioner.link_up = false
	var reliable := ReliablePacketPeer.new()
	reliable.use_manual_clock = true
	reliable.inner = conditioner
	reliable.max_message_size = 1024
	reliable.timeout_ms = 1000
	var packet := PackedByteArray()
	packet.resize(1000)
	var before := _rss_kib()
	var accepted := 0
	var busy := 0
	for i in FLOOD:
		var err := reliable.put_packet(packet)
		if err == OK:
			accepted += 1
		elif err == ERR_BUSY:
			busy += 1
	assert_eq(accepted + busy, FLOOD, "every put is accepted or refused as busy")
	assert_between(accepted, 4000, 4200, "the 4 MiB send buffer holds about 4194 messages of 1000 B")
	assert_eq(reliable.get_stats()["messages_pending"], accepted)
	assert_between(_rss_kib() - before, -4096, 16384, "resident KiB: bounded by the send buffer")
	for step in 30:
		reliable.advance(50)
	assert_eq(reliable.get_status(), ReliablePacketPeer.STATUS_ERROR, "the cut link ends in failure, not silence")
	assert_error(reliable.put_packet(packet), ERR_CONNECTION_ERROR)


func test_several_pairs_hammered_from_threads_and_the_worker_pool_lose_nothing() -> void:
	const PAIRS := 4
	const PER_DIRECTION := 5000
	var pairs := []
	for i in PAIRS:
		pairs.append(LocalPacketPeer.create_pair(256, 16))
	# Each end runs on its own thread: it sends PER_DIRECTION numbered packets and receives as many, in order.
	# Both ends of even pairs run on Threads; of odd pairs, end 0 runs as a WorkerThreadPool task and end 1 on a
	# Thread (a pool task must not wait on another pool task: the pool may run only as many as there are cores).
	var results := {}
	var mutex := Mutex.new()
	var tasks := []
	for p in PAIRS:
		for side in 2:
			var key := "%d/%d" % [p, side]
			var work := _hammer.bind(pairs[p][side], PER_DIRECTION, results, mutex, key)
			if p % 2 == 0 or side == 1:
				var thread := Thread.new()
				_threads.append(thread)
				thread.start(work)
			else:
				tasks.append(WorkerThreadPool.add_task(work))
	for thread in _threads:
		thread.wait_to_finish()
	for task in tasks:
		WorkerThreadPool.wait_for_task_completion(task)
	for p in PAIRS:
		for side in 2:
			var key := "%d/%d" % [p, side]
			assert_eq(results.get(key, "did not finish"), "ok", "end %s" % key)
			assert_eq(pairs[p][side].get_stats()["packets_sent"], PER_DIRECTION)
			assert_eq(pairs[p][side].get_stats()["packets_received"], PER_DIRECTION)


func _hammer(end: LocalPacketPeer, count: int, results: Dictionary, mutex: Mutex, key: String) -> void:
	var packet := PackedByteArray()
	packet.resize(4)
	var sent := 0
	var expected := 0
	var verdict := "ok"
	var deadline := Time.get_ticks_msec() + 20000
	while (sent < count or expected < count) and Time.get_ticks_msec() < deadline:
		if sent < count:
			packet.encode_u32(0, sent)
			var err := end.put_packet(packet)
			if err == OK:
				sent += 1
			elif err != ERR_BUSY:
				verdict = "put failed with %s" % error_string(err)
				break
		while end.get_available_packet_count() > 0:
			var got := end.get_packet()
			if got.decode_u32(0) != expected:
				verdict = "expected packet %d, got %d" % [expected, got.decode_u32(0)]
			expected += 1
	if verdict == "ok" and (sent < count or expected < count):
		verdict = "timed out: sent %d, received %d" % [sent, expected]
	mutex.lock()
	results[key] = verdict
	mutex.unlock()


func test_hostile_values_are_refused_without_harm() -> void:
	var conditioner := LinkConditioner.new()
	var reliable := ReliablePacketPeer.new()
	for value in [-1, 0, 1 << 40, -(1 << 40)]:
		reliable.mtu = value
		reliable.max_message_size = value
		reliable.timeout_ms = value
		conditioner.configure({"queue_limit": value, "bandwidth_bytes_per_second": value})
		conditioner.advance(value)
	assert_eq(reliable.mtu, 1200)
	assert_eq(reliable.max_message_size, 1048576)
	assert_eq(reliable.timeout_ms, 10000)
	assert_eq(conditioner.get_settings()["queue_limit"], 10000)
	assert_eq(conditioner.get_settings()["bandwidth_bytes_per_second"], 0)
	assert_error(conditioner.configure({"latency_ms": NAN}), ERR_INVALID_PARAMETER)
	assert_error(conditioner.configure({"loss": INF}), ERR_INVALID_PARAMETER)
	assert_error(conditioner.configure({42: 1}), ERR_INVALID_PARAMETER)
	assert_error(conditioner.configure({"loss": null}), ERR_INVALID_PARAMETER)
	assert_error(conditioner.apply_preset(""), ERR_INVALID_PARAMETER)
	assert_eq(conditioner.get_settings(99), {}, "an unknown direction")
	# Calls in every order on peers without an inner peer, and after close.
	var ends := LocalPacketPeer.create_pair()
	reliable.inner = ends[0]
	reliable.close()
	reliable.close()
	reliable.poll()
	assert_error(reliable.put_var(1), ERR_CONNECTION_ERROR)
	reliable.inner = null
	assert_error(reliable.put_var(1), ERR_UNCONFIGURED)
	ends[0].close()
	conditioner.inner = ends[0]
	assert_ok(conditioner.put_var(1), "accepted by the simulated link ...")
	assert_eq(conditioner.get_stats()["inner_refused"], 1, "... and counted when the closed inner peer refuses it")


func test_properties_set_with_the_wrong_type_are_refused_and_unchanged() -> void:
	# (A method called with a wrong argument type never reaches peerkit: GDScript or Godot refuses the call with a
	# script error first. Properties set dynamically do reach it, and godot-rust refuses the conversion.)
	var conditioner := LinkConditioner.new()
	conditioner.set("inner", "not a peer")
	assert_null(conditioner.inner)
	assert_error_logged("cannot convert from STRING to OBJECT")
	conditioner.set("seed", "forty-two")
	assert_eq(conditioner.seed, 0)
	var reliable := ReliablePacketPeer.new()
	reliable.set("mtu", [1500])
	assert_eq(reliable.mtu, 1200)
	reliable.set("timeout_ms", Vector2(1, 2))
	assert_eq(reliable.timeout_ms, 10000)
	var udp := UdpPacketPeer.new()
	udp.set("queue_limit_packets", "many")
	assert_eq(udp.queue_limit_packets, 65536)


# A huge advance on a manual clock used to overflow it: advance(1e300) then advance(1) panicked in the debug
# library ("Invalid call error code 1337"). It is refused with a message, and the clock keeps working.
func test_a_huge_advance_is_refused_and_the_clock_keeps_working() -> void:
	var conditioner := LinkConditioner.new()
	conditioner.use_manual_clock = true
	var reliable := ReliablePacketPeer.new()
	reliable.use_manual_clock = true
	var network := LocalMultiplayerNetwork.new()
	network.use_manual_clock = true
	for clocked in [conditioner, reliable, network]:
		clocked.advance(1e300)
		clocked.advance(1)
		assert_eq(clocked.get_time_msec(), 1.0, "%s: the refused advance moved nothing" % clocked.get_class())
	assert_error_logged("would move the clock past")


## Every method of every peerkit class that takes an object, called with null: godot-rust's own refusal ("Invalid
## call error code 1337", which ended the caller's function) must never be what a user sees. Null either means
## "none" (set_inner(null) clears the inner peer) or is refused with an error naming the method and the parameter.
func test_every_method_taking_an_object_takes_null_and_says_what_is_wrong() -> void:
	var called := []
	for cls in ClassDB.get_class_list():
		if ClassDB.class_get_api_type(cls) != ClassDB.API_EXTENSION or cls == "PeerkitPanicProbe":
			continue
		for method in ClassDB.class_get_method_list(cls, true):
			var takes_object := false
			var args := []
			for arg in method["args"]:
				if arg["type"] == TYPE_OBJECT:
					takes_object = true
					args.append(null)
				else:
					args.append(type_convert(null, arg["type"]))
			if not takes_object:
				continue
			var name: String = method["name"]
			if method["flags"] & METHOD_FLAG_STATIC:
				Callable(ClassDB, "class_call_static").callv([cls, name] + args)
			else:
				var object: Object = ClassDB.instantiate(cls)
				object.callv(name, args)
				if not object is RefCounted:
					object.free()
			called.append("%s.%s" % [cls, name])
			if errors != null:
				for logged in errors.peek():
					var text := String(logged["text"])
					assert_false(text.contains("1337") or text.contains("Invalid call"), "%s.%s: %s" % [cls, name, text])
	assert_true(called.has("MultiplayerLinkConditioner.wrap") and called.has("ReliablePacketPeer.set_inner"),
		"the methods were found through ClassDB: %s" % [called])
	assert_error_logged("MultiplayerLinkConditioner.wrap: peer is null")
