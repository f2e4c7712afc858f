## Headless showcase: two endpoints exchange reliable messages over a bad link, in real time.
##   client ReliablePacketPeer -> LinkConditioner (a preset) -> LocalPacketPeer pair -> LinkConditioner -> server
## With --udp, the LocalPacketPeer pair is replaced by two PacketPeerUDP sockets on 127.0.0.1.
## Prints a progress line while it runs and a final report. Run with scripts/demo.sh [options]; see --help.
extends SceneTree

var options := {
	"preset": "lossy",
	"messages": 1000,
	"rate": 500,
	"size": 200,
	"loss": -1.0,
	"latency": -1.0,
	"jitter": -1.0,
	"seed": 1,
	"udp": false,
}


func _initialize() -> void:
	if not _parse(OS.get_cmdline_user_args()):
		quit(2)
		return
	_run.call_deferred()


func _parse(args: PackedStringArray) -> bool:
	var i := 0
	while i < args.size():
		var arg := args[i]
		match arg:
			"--udp":
				options["udp"] = true
			"--preset", "--messages", "--rate", "--size", "--loss", "--latency", "--jitter", "--seed":
				if i + 1 >= args.size():
					printerr("%s needs a value" % arg)
					return false
				i += 1
				var key := arg.trim_prefix("--")
				options[key] = args[i] if key == "preset" else (args[i].to_float() if key in ["loss", "latency", "jitter"] else args[i].to_int())
			_:
				printerr("unknown option %s (see scripts/demo.sh --help)" % arg)
				return false
		i += 1
	return true


func _run() -> void:
	var transport := _make_transport()
	if transport.is_empty():
		quit(1)
		return
	var links: Array[LinkConditioner] = []
	var peers: Array[ReliablePacketPeer] = []
	for side in 2:
		var link := LinkConditioner.new()
		link.inner = transport[side]
		link.seed = options["seed"] + side
		if link.apply_preset(options["preset"], LinkConditioner.DIRECTION_OUTBOUND) != OK:
			quit(2)
			return
		var overrides := {}
		if options["loss"] >= 0.0:
			overrides["loss"] = options["loss"]
		if options["latency"] >= 0.0:
			overrides["latency_ms"] = options["latency"]
		if options["jitter"] >= 0.0:
			overrides["jitter_ms"] = options["jitter"]
		if link.configure(overrides, LinkConditioner.DIRECTION_OUTBOUND) != OK:
			quit(2)
			return
		var peer := ReliablePacketPeer.new()
		peer.inner = link
		links.append(link)
		peers.append(peer)
	var client := peers[0]
	var server := peers[1]
	var settings: Dictionary = links[0].get_settings(LinkConditioner.DIRECTION_OUTBOUND)
	print("ReliablePacketPeer -> LinkConditioner (\"%s\": latency %s ms, jitter %s ms, loss %s, bursts %s) -> %s" % [
		options["preset"], settings["latency_ms"], settings["jitter_ms"], settings["loss"],
		"on" if settings["burst_enter_probability"] > 0 else "off",
		"PacketPeerUDP on 127.0.0.1" if options["udp"] else "LocalPacketPeer"])
	var rate: int = options["rate"]
	print("sending %d messages of %d bytes, client -> server, %s, real time\n" % [options["messages"], options["size"],
		("%d per second" % rate) if rate > 0 else "as fast as the window allows"])

	var total: int = options["messages"]
	var padding := PackedByteArray()
	padding.resize(maxi(options["size"] - 24, 0))
	var sent := 0
	var received := 0
	var in_order := true
	var latencies := PackedFloat64Array()
	var started := Time.get_ticks_usec()
	var last_progress := 0
	var deadline := started + 120 * 1000000
	while received < total and Time.get_ticks_usec() < deadline:
		var due := total if rate <= 0 else mini(total, int((Time.get_ticks_usec() - started) * rate / 1000000.0) + 1)
		while sent < due:
			var message := {"n": sent, "t": Time.get_ticks_usec(), "pad": padding}
			if client.put_var(message) != OK:
				break
			sent += 1
		server.poll()
		client.poll()
		while server.get_available_packet_count() > 0:
			var message = server.get_var()
			if message["n"] != received:
				in_order = false
			latencies.append((Time.get_ticks_usec() - message["t"]) / 1000.0)
			received += 1
		if client.get_status() == ReliablePacketPeer.STATUS_ERROR:
			print("\nconnection failed: %s" % client.get_error_message())
			break
		if Time.get_ticks_msec() - last_progress >= 250:
			last_progress = Time.get_ticks_msec()
			var stats := client.get_stats()
			printraw("\r  %5d / %d delivered   rtt %6.1f ms   retransmissions %5d   window %5.1f   " % [
				received, total, stats["rtt_ms"], stats["retransmissions"], stats["congestion_window"]])
		OS.delay_usec(500)
	var seconds := (Time.get_ticks_usec() - started) / 1000000.0
	print("")
	_report(client, links, received, total, in_order, latencies, seconds)
	quit(0 if received == total and in_order else 1)


func _make_transport() -> Array:
	if not options["udp"]:
		return LocalPacketPeer.create_pair(8192)
	var a := PacketPeerUDP.new()
	var b := PacketPeerUDP.new()
	if a.bind(0, "127.0.0.1") != OK or b.bind(0, "127.0.0.1") != OK:
		printerr("cannot bind UDP sockets on 127.0.0.1")
		return []
	a.set_dest_address("127.0.0.1", b.get_local_port())
	b.set_dest_address("127.0.0.1", a.get_local_port())
	return [a, b]


func _report(client: ReliablePacketPeer, links: Array[LinkConditioner], received: int, total: int,
		in_order: bool, latencies: PackedFloat64Array, seconds: float) -> void:
	var stats := client.get_stats()
	var link_stats: Dictionary = links[0].get_stats()["outbound"]
	var sorted := latencies.duplicate()
	sorted.sort()
	print("\nreport after %.1f s" % seconds)
	print("  delivered          %d of %d, %s" % [received, total, "in order, each once" if in_order else "OUT OF ORDER"])
	print("  datagrams          %d sent, %d lost by the link (%.1f%%), %d duplicated, %d reordered" % [
		link_stats["packets_in"], link_stats["dropped_loss"],
		100.0 * link_stats["dropped_loss"] / maxi(link_stats["packets_in"], 1),
		link_stats["duplicated"], link_stats["reordered"]])
	print("  retransmissions    %d" % stats["retransmissions"])
	print("  round trip         %.1f ms smoothed, %.1f ms variation" % [stats["rtt_ms"], stats["rtt_variance_ms"]])
	if not sorted.is_empty():
		print("  message latency    p50 %.1f ms   p90 %.1f ms   p99 %.1f ms   max %.1f ms" % [
			_percentile(sorted, 0.5), _percentile(sorted, 0.9), _percentile(sorted, 0.99), sorted[-1]])


func _percentile(sorted: PackedFloat64Array, p: float) -> float:
	return sorted[clampi(int(ceil(p * sorted.size())) - 1, 0, sorted.size() - 1)]
