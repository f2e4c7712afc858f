## Soak test: reliable messages over a lossy, jittery simulated link (LinkConditioner "lossy" preset plus 5%
## independent loss, both ways) for the given minutes, in real time. Prints throughput and resident memory every
## 5 s. Fails if a message is lost, duplicated, reordered or altered, if the connection fails, or if resident
## memory keeps growing after the warm-up. Run with scripts/soak.sh [minutes].
extends SceneTree

const REPORT_EVERY_MS := 5000


func _initialize() -> void:
	_run.call_deferred()


func _rss_mib() -> float:
	var output := []
	if OS.execute("cat", ["/proc/%d/statm" % OS.get_process_id()], output) != 0 or output.is_empty():
		return -1.0
	return int(String(output[0]).split(" ")[1]) * 4096 / 1048576.0


func _run() -> void:
	var args := OS.get_cmdline_user_args()
	var minutes := float(args[0]) if args.size() > 0 else 1.0
	var ends := LocalPacketPeer.create_pair(8192, 65536)
	var peers: Array[ReliablePacketPeer] = []
	for side in 2:
		var link := LinkConditioner.new()
		link.inner = ends[side]
		link.seed = 100 + side
		link.apply_preset("lossy", LinkConditioner.DIRECTION_OUTBOUND)
		link.configure({"loss": 0.05}, LinkConditioner.DIRECTION_OUTBOUND)
		var reliable := ReliablePacketPeer.new()
		reliable.inner = link
		peers.append(reliable)
	var sender := peers[0]
	var receiver := peers[1]
	print("soak: %.1f min of reliable messages over the \"lossy\" preset + 5%% loss each way" % minutes)
	var started := Time.get_ticks_msec()
	var end_at := started + int(minutes * 60000)
	var next_report := started + REPORT_EVERY_MS
	var sent := 0
	var received := 0
	var bytes := 0
	var problems := []
	var samples := []  # [elapsed s, resident MiB]
	var rng := RandomNumberGenerator.new()
	rng.seed = 7
	while Time.get_ticks_msec() < end_at and problems.is_empty():
		for i in 64:
			var size := rng.randi_range(9, 4096)  # 8 header bytes, then a check byte at the end
			var message := PackedByteArray()
			message.resize(size)
			message.encode_u32(0, sent)
			message.encode_u32(4, size)
			message[size - 1] = sent & 0xFF
			if sender.put_packet(message) != OK:
				break
			sent += 1
		sender.poll()
		while receiver.get_available_packet_count() > 0:
			var got := receiver.get_packet()
			if got.size() < 8 or got.decode_u32(0) != received or got.decode_u32(4) != got.size() \
					or got[got.size() - 1] != received & 0xFF:
				problems.append("message %d arrived wrong (lost, duplicated, reordered or altered): got %d bytes, header says number %d, size %d" % [
					received, got.size(), got.decode_u32(0) if got.size() >= 4 else -1, got.decode_u32(4) if got.size() >= 8 else -1])
				break
			received += 1
			bytes += got.size()
		for peer in peers:
			if peer.get_status() == ReliablePacketPeer.STATUS_ERROR:
				problems.append("connection failed: " + peer.get_error_message())
		if Time.get_ticks_msec() >= next_report:
			var elapsed := (Time.get_ticks_msec() - started) / 1000.0
			var rss := _rss_mib()
			samples.append([elapsed, rss])
			var stats := sender.get_stats()
			print("  %6.0f s  %9d messages  %7.2f MB/s  rtt %6.1f ms  retransmissions %8d  resident %7.1f MiB" % [
				elapsed, received, bytes / elapsed / 1e6, stats["rtt_ms"], stats["retransmissions"], rss])
			next_report += REPORT_EVERY_MS
		OS.delay_usec(200)
	# Memory: after the first fifth (warm-up), the last quarter may not sit above the middle by more than 10% + 8 MiB.
	if samples.size() >= 8:
		var warm := samples.slice(samples.size() / 5, samples.size() / 2)
		var late := samples.slice(samples.size() * 3 / 4)
		var warm_max := 0.0
		var late_max := 0.0
		for s in warm:
			warm_max = maxf(warm_max, s[1])
		for s in late:
			late_max = maxf(late_max, s[1])
		if late_max > warm_max * 1.1 + 8.0:
			problems.append("resident memory kept growing: %.1f MiB after warm-up, %.1f MiB at the end" % [warm_max, late_max])
	print("soak: %d messages sent, %d received in order and intact" % [sent, received])
	for problem in problems:
		print("soak FAILED: " + problem)
	if problems.is_empty():
		print("soak passed")
	quit(0 if problems.is_empty() else 1)
