## LocalPacketPeer against the real class: every rule of its contract, Variant round trips and threads.
extends "res://tests/suite.gd"

const MIB := 1024 * 1024

var _threads: Array[Thread] = []


func after_each() -> void:
	for thread in _threads:
		if thread.is_started():
			thread.wait_to_finish()


func _bytes(size: int, seed_value: int = 0) -> PackedByteArray:
	var data := PackedByteArray()
	data.resize(size)
	for i in size:
		data[i] = (i * 31 + seed_value) & 0xFF
	return data


func test_create_pair_defaults() -> void:
	var ends := LocalPacketPeer.create_pair()
	assert_eq(ends.size(), 2)
	for end in ends:
		assert_true(end is LocalPacketPeer)
		assert_true(end is PacketPeer)
		assert_true(end.is_open())
		assert_eq(end.get_capacity(), 1024)
		assert_eq(end.get_max_packet_size(), 65536)
		assert_eq(end.get_available_packet_count(), 0)


func test_create_pair_refuses_invalid_arguments() -> void:
	assert_eq(LocalPacketPeer.create_pair(0).size(), 0, "capacity 0")
	assert_eq(LocalPacketPeer.create_pair(-1).size(), 0, "negative capacity")
	assert_eq(LocalPacketPeer.create_pair(1048577).size(), 0, "capacity over the limit")
	assert_eq(LocalPacketPeer.create_pair(8, 0).size(), 0, "max_packet_size 0")
	assert_eq(LocalPacketPeer.create_pair(8, -4).size(), 0, "negative max_packet_size")
	assert_eq(LocalPacketPeer.create_pair(8, 16 * MIB + 1).size(), 0, "max_packet_size over 16 MiB")
	assert_eq(LocalPacketPeer.create_pair(1, 16 * MIB).size(), 2, "the limits themselves are valid")
	assert_error_logged("capacity must be between 1 and 1048576 packets, got 0")
	assert_error_logged("max_packet_size must be between 1 and 16777216 bytes, got 16777217")


func test_packets_reach_the_other_end_in_order() -> void:
	var ends := LocalPacketPeer.create_pair()
	var a: LocalPacketPeer = ends[0]
	var b: LocalPacketPeer = ends[1]
	for i in 50:
		assert_ok(a.put_packet(_bytes(i + 1, i)))
	assert_ok(b.put_packet(PackedByteArray([7, 7])))
	assert_eq(b.get_available_packet_count(), 50)
	assert_eq(a.get_available_packet_count(), 1)
	for i in 50:
		assert_eq(b.get_packet(), _bytes(i + 1, i), "packet %d" % i)
		assert_ok(b.get_packet_error())
	assert_eq(a.get_packet(), PackedByteArray([7, 7]))
	assert_eq(b.get_available_packet_count(), 0)


func test_get_packet_with_nothing_queued_is_unavailable() -> void:
	var b: LocalPacketPeer = LocalPacketPeer.create_pair()[1]
	assert_eq(b.get_packet(), PackedByteArray())
	assert_error(b.get_packet_error(), ERR_UNAVAILABLE)
	assert_eq(b.get_stats()["packets_received"], 0)


func test_packet_of_exactly_max_size_is_accepted_and_one_more_refused() -> void:
	var ends := LocalPacketPeer.create_pair(8, 1000)
	assert_ok(ends[0].put_packet(_bytes(1000)))
	assert_error(ends[0].put_packet(_bytes(1001)), ERR_INVALID_PARAMETER)
	assert_eq(ends[1].get_available_packet_count(), 1, "the oversize packet is not queued")
	assert_eq(ends[1].get_packet(), _bytes(1000))
	assert_eq(ends[0].get_stats()["refused_oversize"], 1)
	assert_error_logged("packet of 1001 bytes is larger than max_packet_size (1000 bytes)")


func test_full_receiver_refuses_with_busy_and_queues_nothing() -> void:
	var ends := LocalPacketPeer.create_pair(4)
	for i in 4:
		assert_ok(ends[0].put_packet(PackedByteArray([i])))
	assert_error(ends[0].put_packet(PackedByteArray([99])), ERR_BUSY)
	assert_error(ends[0].put_var("more"), ERR_BUSY)
	assert_eq(ends[1].get_available_packet_count(), 4)
	assert_eq(ends[1].get_packet(), PackedByteArray([0]))
	assert_ok(ends[0].put_packet(PackedByteArray([4])))
	var rest := []
	while ends[1].get_available_packet_count() > 0:
		rest.append(ends[1].get_packet()[0])
	assert_eq(rest, [1, 2, 3, 4], "the refused packets never arrive")
	assert_eq(ends[0].get_stats()["refused_busy"], 2)


func test_capacity_is_per_receiving_end() -> void:
	var ends := LocalPacketPeer.create_pair(2)
	assert_ok(ends[0].put_packet(PackedByteArray([1])))
	assert_ok(ends[0].put_packet(PackedByteArray([2])))
	assert_ok(ends[1].put_packet(PackedByteArray([3])), "the other direction has its own queue")
	assert_ok(ends[1].put_packet(PackedByteArray([4])))
	assert_error(ends[1].put_packet(PackedByteArray([5])), ERR_BUSY)


func test_close_refuses_new_packets_and_keeps_queued_ones() -> void:
	var ends := LocalPacketPeer.create_pair()
	var a: LocalPacketPeer = ends[0]
	var b: LocalPacketPeer = ends[1]
	assert_ok(a.put_packet(PackedByteArray([1, 2, 3])))
	assert_ok(b.put_packet(PackedByteArray([4])))
	a.close()
	assert_false(a.is_open())
	assert_false(b.is_open())
	assert_error(a.put_packet(PackedByteArray([9])), ERR_CONNECTION_ERROR)
	assert_error(b.put_packet(PackedByteArray([9])), ERR_CONNECTION_ERROR)
	assert_eq(b.get_packet(), PackedByteArray([1, 2, 3]), "sent before the close, still readable")
	assert_eq(a.get_packet(), PackedByteArray([4]))
	assert_eq(a.get_stats()["refused_closed"], 1)
	a.close()  # closing twice is harmless
	assert_false(a.is_open())


func test_freeing_one_end_closes_the_other() -> void:
	var ends := LocalPacketPeer.create_pair()
	var b: LocalPacketPeer = ends[1]
	ends[0].put_packet(PackedByteArray([5]))
	ends.clear()  # drops the last reference to end A: it is freed
	assert_false(b.is_open())
	assert_error(b.put_packet(PackedByteArray([1])), ERR_CONNECTION_ERROR)
	assert_eq(b.get_packet(), PackedByteArray([5]))


func test_unpaired_peer_is_unconfigured() -> void:
	var lone := LocalPacketPeer.new()
	assert_false(lone.is_open())
	assert_eq(lone.get_max_packet_size(), 0)
	assert_eq(lone.get_capacity(), 0)
	assert_error(lone.put_packet(PackedByteArray([1])), ERR_UNCONFIGURED)
	assert_eq(lone.get_packet(), PackedByteArray())
	assert_error(lone.get_packet_error(), ERR_UNCONFIGURED)


func test_stats_count_what_went_through() -> void:
	var ends := LocalPacketPeer.create_pair(2, 10)
	ends[0].put_packet(_bytes(3))
	ends[0].put_packet(_bytes(4))
	ends[0].put_packet(_bytes(5))  # busy
	ends[0].put_packet(_bytes(11))  # oversize
	ends[1].get_packet()
	ends[1].close()
	ends[0].put_packet(_bytes(1))  # closed
	var sent: Dictionary = ends[0].get_stats()
	assert_eq(sent["packets_sent"], 2)
	assert_eq(sent["bytes_sent"], 7)
	assert_eq(sent["packets_refused"], 3)
	assert_eq(sent["refused_busy"], 1)
	assert_eq(sent["refused_oversize"], 1)
	assert_eq(sent["refused_closed"], 1)
	var received: Dictionary = ends[1].get_stats()
	assert_eq(received["packets_received"], 1)
	assert_eq(received["bytes_received"], 3)
	assert_eq(received["packets_sent"], 0)


func test_variants_round_trip() -> void:
	var values := [
		null, true, false,
		0, 1, -1, 9223372036854775807, -9223372036854775808,
		0.0, -0.5, 1.0e300, 3.141592653589793, INF, -INF, NAN,
		"", "plain", "non-ASCII: héllo wörld ✓ 日本語 🎮",
		Vector2(1.5, -2.25), Vector2i(-7, 2147483647), Vector3(0.5, 1.0, -1.0), Vector3i(1, -2, 3),
		Vector4(1, 2, 3, 4.5), Vector4i(-1, -2, -3, -4),
		Rect2(1, 2, 3, 4), Rect2i(-1, -2, 30, 40),
		Transform2D(0.5, Vector2(3, 4)), Transform3D(Basis.IDENTITY.scaled(Vector3(2, 2, 2)), Vector3(1, 2, 3)),
		Basis(Vector3(1, 0, 0), Vector3(0, 0, 1), Vector3(0, -1, 0)), Quaternion(0, 0.5, 0.5, 0.5),
		Plane(Vector3(0, 1, 0), 2.5), AABB(Vector3(-1, -1, -1), Vector3(2, 2, 2)),
		Projection(Transform3D.IDENTITY), Color(0.25, 0.5, 0.75, 1.0), Color.TRANSPARENT,
		NodePath("/root/Main/Player:position"), NodePath(), &"a_string_name", &"",
		[1, "two", [3, [4.5, {"five": 5}]]], [],
		{"a": 1, 2: "b", Vector2i(1, 1): [true], "nested": {"deeper": {"deepest": PackedInt32Array([1])}}}, {},
		PackedByteArray([0, 127, 128, 255]), PackedInt32Array([-2147483648, 0, 2147483647]),
		PackedInt64Array([-9223372036854775808, 9223372036854775807]), PackedFloat32Array([0.5, -1.25, INF]),
		PackedFloat64Array([1.0e-300, -0.0, 2.5]), PackedStringArray(["a", "ü", ""]),
		PackedVector2Array([Vector2(1, 2), Vector2(-3, 4)]), PackedVector3Array([Vector3(1, 2, 3)]),
		PackedColorArray([Color.RED, Color(0, 0, 0, 0.5)]), PackedVector4Array([Vector4(1, 2, 3, 4)]),
		PackedByteArray(), PackedInt32Array(),
	]
	var ends := LocalPacketPeer.create_pair(values.size())
	for value in values:
		assert_ok(ends[0].put_var(value), "put_var(%s)" % [value])
	assert_eq(ends[1].get_available_packet_count(), values.size())
	for value in values:
		assert_eq(ends[1].get_var(), value, "round trip of a %s" % type_string(typeof(value)))


func test_typed_arrays_keep_their_element_type() -> void:
	var ends := LocalPacketPeer.create_pair()
	var typed: Array[int] = [1, 2, 3]
	ends[0].put_var(typed)
	var got: Array = ends[1].get_var()
	assert_eq(got, typed)
	assert_eq(got.get_typed_builtin(), TYPE_INT)


func test_put_var_over_encode_buffer_max_size_is_out_of_memory() -> void:
	var ends := LocalPacketPeer.create_pair(8, 16 * MIB)
	ends[0].encode_buffer_max_size = 4096
	assert_error(ends[0].put_var(_bytes(5000)), ERR_OUT_OF_MEMORY)
	assert_eq(ends[1].get_available_packet_count(), 0, "nothing queued")
	assert_ok(ends[0].put_var(_bytes(1000)), "a value under the limit still goes")
	assert_eq(ends[1].get_var(), _bytes(1000))


func test_get_var_without_allow_objects_refuses_encoded_objects() -> void:
	var ends := LocalPacketPeer.create_pair()
	var object := RefCounted.new()
	assert_ok(ends[0].put_var(object, true))
	assert_ok(ends[0].put_var(object, true))
	assert_null(ends[1].get_var(false), "an encoded object is refused without allow_objects")
	assert_eq(ends[1].get_available_packet_count(), 1)
	var decoded = ends[1].get_var(true)
	assert_true(decoded is RefCounted, "with allow_objects the object is decoded")


func test_one_mib_packet_arrives_intact() -> void:
	var ends := LocalPacketPeer.create_pair(4, 2 * MIB)
	var big := _bytes(MIB, 17)
	assert_ok(ends[0].put_packet(big))
	var got := ends[1].get_packet()
	assert_eq(got.size(), MIB)
	assert_true(got == big, "1 MiB payload is byte-identical")


func test_producer_thread_delivers_100000_packets_in_order() -> void:
	const COUNT := 100000
	var ends := LocalPacketPeer.create_pair(1024, 16)
	var producer := Thread.new()
	_threads.append(producer)
	producer.start(_produce.bind(ends[0], COUNT))
	var receiver: LocalPacketPeer = ends[1]
	var expected := 0
	var out_of_order := 0
	var deadline := Time.get_ticks_msec() + 60000
	while expected < COUNT and Time.get_ticks_msec() < deadline:
		if receiver.get_available_packet_count() == 0:
			OS.delay_usec(50)
			continue
		var packet := receiver.get_packet()
		if packet.decode_u32(0) != expected:
			out_of_order += 1
		expected += 1
	var refused: int = producer.wait_to_finish()
	assert_eq(expected, COUNT, "all packets arrived")
	assert_eq(out_of_order, 0, "in order")
	assert_eq(refused, 0, "the producer was never refused for anything but back-pressure")
	assert_eq(ends[0].get_stats()["packets_sent"], COUNT)
	assert_eq(receiver.get_stats()["packets_received"], COUNT)


# Sends COUNT numbered packets, retrying on ERR_BUSY; returns how many sends failed otherwise.
func _produce(sender: LocalPacketPeer, count: int) -> int:
	var packet := PackedByteArray()
	packet.resize(4)
	var other_errors := 0
	var i := 0
	while i < count:
		packet.encode_u32(0, i)
		var err := sender.put_packet(packet)
		if err == OK:
			i += 1
		elif err == ERR_BUSY:
			OS.delay_usec(50)
		else:
			other_errors += 1
			break
	return other_errors


# A WorkerThreadPool task sends while the main thread receives, at the same time (the queue holds only a tenth of
# what is sent, so neither side can finish alone): every packet arrives once, in order. (The receiving side is
# not a second pool task: the pool may run only as many tasks as there are cores, one after the other.)
func test_a_worker_thread_pool_task_and_the_main_thread_share_a_pair() -> void:
	const COUNT := 2000
	const CAPACITY := COUNT / 10
	var ends := LocalPacketPeer.create_pair(CAPACITY)
	# The sender says when it first finds the queue full, so the reader can wait for
	# that moment: then the sender is provably waiting on the reader while the reader
	# runs, however the machine schedules the two threads.
	var first_refusal := Semaphore.new()
	var send_task := WorkerThreadPool.add_task(func():
		var i := 0
		var told := false
		var deadline := Time.get_ticks_msec() + 20000
		while i < COUNT and Time.get_ticks_msec() < deadline:
			if ends[0].put_var(i) == OK:
				i += 1
			else:
				if not told:
					first_refusal.post()
					told = true
				OS.delay_usec(50))
	var deadline := Time.get_ticks_msec() + 20000
	var sender_waited := false
	while not sender_waited and Time.get_ticks_msec() < deadline:
		sender_waited = first_refusal.try_wait()
		if not sender_waited:
			OS.delay_usec(50)
	assert_true(sender_waited, "the sender found the queue full before anything was read")
	assert_eq(ends[1].get_available_packet_count(), CAPACITY, "a full queue holds exactly its capacity")
	var received := []
	while received.size() < COUNT and Time.get_ticks_msec() < deadline:
		if ends[1].get_available_packet_count() == 0:
			OS.delay_usec(50)
			continue
		received.append(ends[1].get_var())
	WorkerThreadPool.wait_for_task_completion(send_task)
	var expected := []
	for i in COUNT:
		expected.append(i)
	assert_eq(received, expected)
	# Read only now: each end belongs to one thread at a time.
	assert_true(ends[0].get_stats()["refused_busy"] > 0, "the refusals the sender met while the queue was full are counted")
