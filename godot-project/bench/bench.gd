## The benchmark scene, run by scripts/bench.sh with the optimised library (and BenchNullPeer built in).
## Every figure is the median of RUNS timed runs in this process, after one untimed warm-up run; ratios are
## computed from figures of this same run. Prints tables, then writes every figure as JSON to --json PATH.
extends SceneTree

const RUNS := 5
const CROSS_THREAD_PACKETS := 1000000
const QUEUED_SMALL := 100
const QUEUED_LARGE := 100000
const MEMORY_PACKETS := 100000

var figures := {}
var quick := false


class Shared:
	var mutex := Mutex.new()
	var items: Array = []


func _initialize() -> void:
	_run.call_deferred()


func _run() -> void:
	var args := OS.get_cmdline_user_args()
	var json_path := ""
	var section := "speed"
	for i in args.size():
		if args[i] == "--json" and i + 1 < args.size():
			json_path = args[i + 1]
		if args[i] == "--section" and i + 1 < args.size():
			section = args[i + 1]
		if args[i] == "--quick":
			quick = true
	if not ClassDB.class_exists("BenchNullPeer"):
		printerr("BenchNullPeer is missing: run this through scripts/bench.sh (it builds with --features bench-peers)")
		quit(2)
		return
	if section == "udp":
		_udp()
	elif section == "reliable":
		# One section alone, for comparing two builds of the library quickly.
		_reliable()
	elif section == "memory":
		# In a process of its own: freed memory from other benchmarks would be reused and hide what is measured.
		_memory()
	else:
		print("peerkit benchmarks: Godot %s, %d runs per figure (median), %s" % [
			Engine.get_version_info()["string"], RUNS, "quick" if quick else "full"])
		_same_thread()
		_cross_thread()
		_link_conditioner()
		_reliable()
		_udp()
		_multiplayer()
	if json_path != "":
		var file := FileAccess.open(json_path, FileAccess.WRITE)
		file.store_string(JSON.stringify(figures, "  ", false))
		file.close()
	quit(0)


func _median(values: Array) -> float:
	values.sort()
	return values[values.size() / 2]


## ns per operation of `body.call(ops)`, median of RUNS after a warm-up.
func _ns_per_op(body: Callable, ops: int) -> float:
	if quick:
		ops = maxi(ops / 10, 1)
	body.call(ops)
	var samples := []
	for run in RUNS:
		var started := Time.get_ticks_usec()
		body.call(ops)
		samples.append((Time.get_ticks_usec() - started) * 1000.0 / ops)
	return _median(samples)


func _bytes(size: int) -> PackedByteArray:
	var data := PackedByteArray()
	data.resize(size)
	for i in size:
		data[i] = i & 0xFF
	return data


func _record(key: String, value: float, unit: String, label: String) -> void:
	figures[key] = value
	print("  %-58s %12.1f %s" % [label, value, unit])


# 1. Same-thread put+get per packet.
func _same_thread() -> void:
	print("\n1. Same-thread put+get, ns per packet")
	for size in [64, 1024, 65536]:
		var packet := _bytes(size)
		var ops: int = 200000 if size < 65536 else 20000
		# Typed, as the other peers are: an untyped variable would make GDScript look each call up by name.
		var null_object: Object = ClassDB.instantiate("BenchNullPeer")
		null_object.call("set_packet_size", size)
		var null_peer: PacketPeer = null_object
		_record("put_get_%d_null" % size, _ns_per_op(func(n):
			for i in n:
				null_peer.put_packet(packet)
				null_peer.get_packet(), ops), "ns", "%d B  null peer (Godot's own cost)" % size)
		var ends := LocalPacketPeer.create_pair(1024, 1 << 20)
		var a: LocalPacketPeer = ends[0]
		var b: LocalPacketPeer = ends[1]
		_record("put_get_%d_local" % size, _ns_per_op(func(n):
			for i in n:
				a.put_packet(packet)
				b.get_packet(), ops), "ns", "%d B  LocalPacketPeer" % size)
		var queue := []
		_record("put_get_%d_array" % size, _ns_per_op(func(n):
			for i in n:
				queue.push_back(packet)
				queue.pop_front(), ops), "ns", "%d B  GDScript Array push_back + pop_front" % size)
		var buffer := StreamPeerBuffer.new()
		var stream := PacketPeerStream.new()
		stream.stream_peer = buffer
		stream.input_buffer_max_size = 1 << 17
		stream.output_buffer_max_size = 1 << 17
		_record("put_get_%d_stream" % size, _ns_per_op(func(n):
			for i in n:
				stream.put_packet(packet)
				buffer.seek(0)
				stream.get_packet()
				buffer.clear(), ops), "ns", "%d B  PacketPeerStream over StreamPeerBuffer" % size)
		if size <= 65507:
			var udp_a := PacketPeerUDP.new()
			var udp_b := PacketPeerUDP.new()
			udp_a.bind(0, "127.0.0.1")
			udp_b.bind(0, "127.0.0.1")
			udp_a.set_dest_address("127.0.0.1", udp_b.get_local_port())
			_record("put_get_%d_udp" % size, _ns_per_op(func(n):
				for i in n:
					udp_a.put_packet(packet)
					while udp_b.get_available_packet_count() == 0:
						pass
					udp_b.get_packet(), ops / 5), "ns", "%d B  PacketPeerUDP on 127.0.0.1" % size)
			udp_a.close()
			udp_b.close()
		else:
			print("  %d B  PacketPeerUDP: n/a (UDP carries at most 65507 bytes)" % size)


# 2. Cross-thread: a producer Thread, the main thread receiving.
func _cross_thread() -> void:
	var count: int = CROSS_THREAD_PACKETS / (10 if quick else 1)
	print("\n2. Cross-thread, %d packets of 64 B from a producer Thread to the main thread, packets per second" % count)
	var packet := _bytes(64)
	var local_rates := []
	var mutex_rates := []
	for run in RUNS:
		var ends := LocalPacketPeer.create_pair(65536, 64)
		var sender: LocalPacketPeer = ends[0]
		var receiver: LocalPacketPeer = ends[1]
		var producer := Thread.new()
		var started := Time.get_ticks_usec()
		producer.start(func():
			for i in count:
				while sender.put_packet(packet) != OK:
					pass)
		var got := 0
		while got < count:
			if receiver.get_available_packet_count() > 0:
				receiver.get_packet()
				got += 1
		producer.wait_to_finish()
		local_rates.append(count * 1000000.0 / (Time.get_ticks_usec() - started))

		var shared := Shared.new()
		var mutex_producer := Thread.new()
		started = Time.get_ticks_usec()
		mutex_producer.start(func():
			for i in count:
				shared.mutex.lock()
				shared.items.push_back(packet)
				shared.mutex.unlock())
		got = 0
		while got < count:
			shared.mutex.lock()
			var batch := shared.items
			shared.items = []
			shared.mutex.unlock()
			for item in batch:
				got += 1
		mutex_producer.wait_to_finish()
		mutex_rates.append(count * 1000000.0 / (Time.get_ticks_usec() - started))
	_record("cross_thread_local_pps", _median(local_rates), "packets/s", "LocalPacketPeer")
	_record("cross_thread_mutex_array_pps", _median(mutex_rates), "packets/s",
		"GDScript Array + Mutex (consumer takes the whole batch)")


# 3. LinkConditioner overhead.
func _link_conditioner() -> void:
	print("\n3. LinkConditioner, ns per 64 B packet")
	var packet := _bytes(64)
	var ends := LocalPacketPeer.create_pair(1024, 1024)
	var a: LocalPacketPeer = ends[0]
	var b: LocalPacketPeer = ends[1]
	_record("link_bare_local", _ns_per_op(func(n):
		for i in n:
			a.put_packet(packet)
			b.get_packet(), 200000), "ns", "bare LocalPacketPeer put+get")
	var conditioner := LinkConditioner.new()
	conditioner.inner = a
	_record("link_clean_conditioner", _ns_per_op(func(n):
		for i in n:
			conditioner.put_packet(packet)
			b.get_packet(), 200000), "ns", "LinkConditioner without impairment, put+get")
	for held in [QUEUED_SMALL, QUEUED_LARGE]:
		var pair := LocalPacketPeer.create_pair(1024, 1024)
		var far: LocalPacketPeer = pair[1]
		var delayed := LinkConditioner.new()
		delayed.inner = pair[0]
		delayed.use_manual_clock = true
		# One packet in and one out per 10 us step, with a latency that keeps `held` packets in the queue.
		delayed.configure({"latency_ms": held * 0.01, "queue_limit": held * 2 + 100})
		for i in held:
			delayed.put_packet(packet)
			delayed.advance(0.01)
		_record("link_queued_%d" % held, _ns_per_op(func(n):
			for i in n:
				delayed.put_packet(packet)
				delayed.advance(0.01)
				far.get_packet(), 100000), "ns", "%d packets held in the latency queue: put + advance + get" % held)
		figures["link_queued_%d_held_after" % held] = delayed.get_stats()["outbound"]["queued"]


# 4. ReliablePacketPeer goodput.
func _reliable() -> void:
	print("\n4. ReliablePacketPeer")
	for size in [1024, 65536]:
		var packet := _bytes(size)
		var raw := LocalPacketPeer.create_pair(1024, 1 << 20)
		var ra: LocalPacketPeer = raw[0]
		var rb: LocalPacketPeer = raw[1]
		var raw_ns := _ns_per_op(func(n):
			for i in n:
				ra.put_packet(packet)
				rb.get_packet(), 20000 if size == 1024 else 2000)
		_record("raw_%d_ns" % size, raw_ns, "ns", "%d B  raw LocalPacketPeer put+get, per message" % size)
		_record("raw_%d_mbps" % size, size * 1000.0 / raw_ns, "MB/s", "%d B  raw LocalPacketPeer goodput" % size)
		var messages: int = 20000 if size == 1024 else 500
		var reliable_ns := _ns_per_op(func(n):
			var ends := LocalPacketPeer.create_pair(8192, 65536)
			var a := ReliablePacketPeer.new()
			var b := ReliablePacketPeer.new()
			a.inner = ends[0]
			b.inner = ends[1]
			var sent := 0
			var received := 0
			while received < n:
				while sent < n and a.put_packet(packet) == OK:
					sent += 1
				while b.get_available_packet_count() > 0:
					b.get_packet()
					received += 1
				a.poll(), messages)
		_record("reliable_%d_ns" % size, reliable_ns, "ns", "%d B  ReliablePacketPeer over LocalPacketPeer, per message" % size)
		_record("reliable_%d_mbps" % size, size * 1000.0 / reliable_ns, "MB/s", "%d B  ReliablePacketPeer goodput" % size)
	# Over a lossy, slow link, on the manual clock: goodput per simulated second.
	var ends := LocalPacketPeer.create_pair(8192, 65536)
	var peers := []
	for side in 2:
		var link := LinkConditioner.new()
		link.inner = ends[side]
		link.use_manual_clock = true
		link.seed = side + 1
		link.configure({"loss": 0.1, "latency_ms": 50}, LinkConditioner.DIRECTION_OUTBOUND)
		var reliable := ReliablePacketPeer.new()
		reliable.use_manual_clock = true
		reliable.inner = link
		peers.append(link)
		peers.append(reliable)
	var sender: ReliablePacketPeer = peers[1]
	var receiver: ReliablePacketPeer = peers[3]
	var packet := _bytes(1024)
	var total: int = 2000 if quick else 20000
	var sent := 0
	var received := 0
	var simulated_ms := 0
	var wall := Time.get_ticks_usec()
	while received < total and simulated_ms < 600000:
		while sent < total and sender.put_packet(packet) == OK:
			sent += 1
		for peer in peers:
			peer.advance(1)
		simulated_ms += 1
		while receiver.get_available_packet_count() > 0:
			receiver.get_packet()
			received += 1
	var wall_s := (Time.get_ticks_usec() - wall) / 1000000.0
	_record("reliable_lossy_mb_per_sim_s", received * 1024.0 / 1e6 / (simulated_ms / 1000.0), "MB/s",
		"1 KiB messages, 10% loss + 50 ms each way (manual clock), per simulated s")
	figures["reliable_lossy_wall_s"] = wall_s
	figures["reliable_lossy_retransmissions"] = sender.get_stats()["retransmissions"]
	print("  (%d messages in %.1f simulated s, %.1f s of wall time, %d retransmissions)" % [
		received, simulated_ms / 1000.0, wall_s, sender.get_stats()["retransmissions"]])


# 6. UdpPacketPeer against PacketPeerUDP. The put+get runs alternate between the classes (run 1 of each, then
# run 2 of each ...), so a slow moment of the machine does not land on one class only.
func _udp() -> void:
	print("\n6. UdpPacketPeer vs PacketPeerUDP on 127.0.0.1")
	var packet := _bytes(64)
	var classes := ["PacketPeerUDP", "UdpPacketPeer"]
	var pairs := {}
	for cls in classes:
		var a: PacketPeer = ClassDB.instantiate(cls)
		var b: PacketPeer = ClassDB.instantiate(cls)
		a.bind(0, "127.0.0.1")
		b.bind(0, "127.0.0.1")
		a.set_dest_address("127.0.0.1", b.get_local_port())
		pairs[cls] = [a, b]
	var ops := 2000 if quick else 20000
	var samples := {}
	for cls in classes:
		samples[cls] = []
	for run in RUNS + 1:
		for cls in classes:
			var a: PacketPeer = pairs[cls][0]
			var b: PacketPeer = pairs[cls][1]
			var started := Time.get_ticks_usec()
			for i in ops:
				a.put_packet(packet)
				while b.get_available_packet_count() <= 0:
					pass
				b.get_packet()
			if run > 0:  # the first run warms up
				samples[cls].append((Time.get_ticks_usec() - started) * 1000.0 / ops)
	for cls in classes:
		_record("udp_put_get_%s" % cls, _median(samples[cls]), "ns", "%s 64 B put+get (same thread)" % cls)
	for cls in classes:
		var a: PacketPeer = pairs[cls][0]
		var b: PacketPeer = pairs[cls][1]
		# A 500 ms stall: 10,000 packets at 20,000 a second arrive while nobody reads.
		for i in 10000:
			a.put_packet(packet)
			if i % 20 == 19:
				OS.delay_usec(1000)
		var received := 0
		while b.get_available_packet_count() > 0:
			b.get_packet()
			received += 1
		_record("udp_stall_lost_%s" % cls, 10000 - received, "packets",
			"%s: lost during a 500 ms stall at 20,000 packets/s" % cls)
		a.close()
		b.close()


# 7. LocalMultiplayerPeer: what a packet costs through the MultiplayerPeer virtuals (the mutex-guarded network,
# the sender, mode and channel a SceneMultiplayer reads before each packet), next to a LocalPacketPeer pair.
func _multiplayer() -> void:
	print("\n7. LocalMultiplayerPeer, 64 B packets server -> client, batches of 100 per poll")
	var packet := _bytes(64)
	var network := LocalMultiplayerNetwork.new()
	network.use_manual_clock = true
	var server := network.create_server()
	var client := network.create_client()
	network.poll()
	server.set_target_peer(client.get_unique_id())
	_record("multiplayer_packet_ns", _ns_per_op(func(n):
		for batch in n / 100:
			for i in 100:
				server.put_packet(packet)
			network.poll()
			while client.get_available_packet_count() > 0:
				client.get_packet_peer()
				client.get_packet_mode()
				client.get_packet_channel()
				client.get_packet(), 100000), "ns",
		"put + poll + (peer, mode, channel) + get, per packet")
	var ends := LocalPacketPeer.create_pair(1024)
	_record("multiplayer_pair_ns", _ns_per_op(func(n):
		for batch in n / 100:
			for i in 100:
				ends[0].put_packet(packet)
			while ends[1].get_available_packet_count() > 0:
				ends[1].get_packet(), 100000), "ns",
		"compare: LocalPacketPeer put + get, same batches")


# Resident bytes of this process. /proc files report a size of 0, which FileAccess takes literally, so they are
# read through `cat` (of this process's pid, not cat's own).
func _rss() -> int:
	var output := []
	if OS.execute("cat", ["/proc/%d/statm" % OS.get_process_id()], output) != 0 or output.is_empty():
		return -1
	var fields := String(output[0]).strip_edges().split(" ")
	return int(fields[1]) * 4096 if fields.size() > 1 else -1


# 5. Memory per queued packet.
func _memory() -> void:
	print("\n5. Memory, %d packets of 64 B held (resident set, /proc/PID/statm, 4 KiB pages)" % MEMORY_PACKETS)
	if _rss() < 0:
		print("  n/a: no /proc/PID/statm on this system")
		return
	var packet := _bytes(64)
	for kind in ["local", "conditioner"]:
		var baseline := _rss()
		var ends := LocalPacketPeer.create_pair(MEMORY_PACKETS + 10, 1024)
		if kind == "conditioner":
			# The pair's slots are the pair's cost, measured above; here only what the conditioner holds counts.
			baseline = _rss()
		var receiver: LocalPacketPeer = ends[1]
		var sender: PacketPeer = ends[0]
		var conditioner: LinkConditioner = null
		if kind == "conditioner":
			conditioner = LinkConditioner.new()
			conditioner.inner = ends[0]
			conditioner.use_manual_clock = true
			conditioner.configure({"latency_ms": 1000, "queue_limit": MEMORY_PACKETS + 10})
			sender = conditioner
		for i in MEMORY_PACKETS:
			sender.put_packet(packet)
		var filled := _rss()
		if conditioner != null:
			conditioner.advance(1000)
		while receiver.get_available_packet_count() > 0:
			receiver.get_packet()
		var drained := _rss()
		for i in MEMORY_PACKETS:
			sender.put_packet(packet)
		var refilled := _rss()
		if conditioner != null:
			conditioner.advance(1000)
		while receiver.get_available_packet_count() > 0:
			receiver.get_packet()
		conditioner = null
		sender = null
		receiver = null
		ends = []
		var freed := _rss()
		var per_packet := (filled - baseline) / float(MEMORY_PACKETS)
		var name := "LocalPacketPeer" if kind == "local" else "LinkConditioner over LocalPacketPeer"
		_record("memory_%s_per_packet" % kind, per_packet, "B", "%s: resident bytes per packet" % name)
		_record("memory_%s_overhead" % kind, per_packet - 64, "B", "%s: beyond the 64 B payload" % name)
		_record("memory_%s_refill_growth" % kind, (refilled - drained) / 1024.0, "KiB",
			"%s: growth when refilled after draining" % name)
		_record("memory_%s_after_free" % kind, (freed - baseline) / 1024.0, "KiB",
			"%s: resident after freeing, minus baseline (*)" % name)
	print("  (*) the allocator keeps freed memory for reuse rather than returning it; the refill figure shows it is")
	print("      reused, not leaked")


## Prints the targets from the figures of both runs (speed and memory), as bench.sh merges them.
static func targets(f: Dictionary) -> Dictionary:
	print("\nTargets (ratios from this run)")
	var rows := [
		["LocalPacketPeer 64 B / null peer", f["put_get_64_local"] / f["put_get_64_null"], "<=", 1.2],
		["PacketPeerUDP 64 B / LocalPacketPeer", f["put_get_64_udp"] / f["put_get_64_local"], ">=", 20.0],
		["PacketPeerStream 64 B / LocalPacketPeer", f["put_get_64_stream"] / f["put_get_64_local"], ">", 1.0],
		["PacketPeerStream 1 KiB / LocalPacketPeer", f["put_get_1024_stream"] / f["put_get_1024_local"], ">", 1.0],
		["PacketPeerStream 64 KiB / LocalPacketPeer", f["put_get_65536_stream"] / f["put_get_65536_local"], ">", 1.0],
		["LocalPacketPeer 64 B / GDScript Array (reported)", f["put_get_64_local"] / f["put_get_64_array"], "", 0.0],
		["cross-thread LocalPacketPeer, million packets/s", f["cross_thread_local_pps"] / 1e6, ">=", 2.0],
		["cross-thread LocalPacketPeer / Mutex+Array", f["cross_thread_local_pps"] / f["cross_thread_mutex_array_pps"], ">", 1.0],
		["LinkConditioner clean / bare LocalPacketPeer", f["link_clean_conditioner"] / f["link_bare_local"], "<=", 1.5],
		["LinkConditioner 100000 held / 100 held", f["link_queued_100000"] / f["link_queued_100"], "<=", 2.0],
		["Reliable 64 KiB goodput / raw", f["reliable_65536_mbps"] / f["raw_65536_mbps"], ">=", 0.3],
		["Reliable 1 KiB per-message cost / raw", f["reliable_1024_ns"] / f["raw_1024_ns"], "<=", 4.0],
	]
	if f.has("udp_put_get_UdpPacketPeer"):
		rows.append(["UdpPacketPeer put+get / PacketPeerUDP", f["udp_put_get_UdpPacketPeer"] / f["udp_put_get_PacketPeerUDP"], "<=", 1.0])
		rows.append(["UdpPacketPeer packets lost in the stall", f["udp_stall_lost_UdpPacketPeer"], "<=", 0.0])
	if f.has("memory_local_overhead"):
		rows.append(["LocalPacketPeer bytes beyond payload per packet", f["memory_local_overhead"], "<", 160.0])
		rows.append(["LinkConditioner bytes beyond payload per packet", f["memory_conditioner_overhead"], "<", 160.0])
	var targets := {}
	for row in rows:
		var value: float = row[1]
		var met := true
		match row[2]:
			"<=": met = value <= row[3]
			">=": met = value >= row[3]
			">": met = value > row[3]
			"<": met = value < row[3]
		var goal := "" if row[2] == "" else "%s %s" % [row[2], row[3]]
		var verdict := "reported" if row[2] == "" else ("met" if met else "NOT MET")
		print("  %-52s %10.2f   target %-8s %s" % [row[0], value, goal, verdict])
		targets[row[0]] = {"value": value, "target": goal, "met": met}
	return targets
