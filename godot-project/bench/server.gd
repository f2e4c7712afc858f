## The server benchmark, run by scripts/bench.sh: one ReliableServer on loopback and 64 clients (each a
## ReliablePacketPeer over a UdpPacketPeer) in this one process, at 60 frames a second for 10 s. Every frame each
## client puts one message of 100 bytes (60 a second each), and everything is polled once. Measured: the time
## the server side takes per frame (server.poll(), then each taken connection's poll and reads), as the median
## and p99 over the frames, and the messages delivered of those sent. Writes the figures as JSON to --json PATH;
## --quick runs 1 s.
extends SceneTree

const CLIENTS := 64
const MESSAGE := 100
const FRAME_USEC := 16667
const SECONDS := 10.0

var figures := {}


func _initialize() -> void:
	_run.call_deferred()


func _percentile(values: Array, p: float) -> float:
	var sorted := values.duplicate()
	sorted.sort()
	return sorted[mini(sorted.size() - 1, int(p * sorted.size()))]


func _run() -> void:
	var args := OS.get_cmdline_user_args()
	var json_path := ""
	var seconds := SECONDS
	for i in args.size():
		if args[i] == "--json" and i + 1 < args.size():
			json_path = args[i + 1]
		if args[i] == "--quick":
			seconds = 1.0
	var server := ReliableServer.new()
	server.max_connections = CLIENTS
	server.max_pending_connections = CLIENTS
	if server.listen(0, "127.0.0.1") != OK:
		quit(1)
		return
	var clients: Array[ReliablePacketPeer] = []
	for i in CLIENTS:
		var udp := UdpPacketPeer.new()
		udp.bind(0, "127.0.0.1")
		udp.connect_to_host("127.0.0.1", server.get_local_port())
		var peer := ReliablePacketPeer.new()
		peer.inner = udp
		clients.append(peer)
	var taken: Array[ReliablePacketPeer] = []
	var deadline := Time.get_ticks_msec() + 10000
	while taken.size() < CLIENTS and Time.get_ticks_msec() < deadline:
		server.poll()
		while server.is_connection_available():
			taken.append(server.take_connection())
		for peer in clients:
			peer.poll()
		OS.delay_msec(1)
	if taken.size() < CLIENTS:
		printerr("server bench: only %d of %d clients connected" % [taken.size(), CLIENTS])
		quit(1)
		return
	var payload := PackedByteArray()
	payload.resize(MESSAGE)
	var frames := int(seconds * 1000000 / FRAME_USEC)
	var server_usec := []
	var sent := 0
	var delivered := 0
	var next_frame := Time.get_ticks_usec()
	for frame in frames:
		for peer in clients:
			if peer.put_packet(payload) == OK:
				sent += 1
			peer.poll()
		var started := Time.get_ticks_usec()
		server.poll()
		for peer in taken:
			peer.poll()
			while peer.get_available_packet_count() > 0:
				peer.get_packet()
				delivered += 1
		server_usec.append(Time.get_ticks_usec() - started)
		next_frame += FRAME_USEC
		var wait := next_frame - Time.get_ticks_usec()
		if wait > 0:
			OS.delay_usec(wait)
	# What was still in flight when the clock stopped.
	deadline = Time.get_ticks_msec() + 2000
	while delivered < sent and Time.get_ticks_msec() < deadline:
		for peer in clients:
			peer.poll()
		server.poll()
		for peer in taken:
			while peer.get_available_packet_count() > 0:
				peer.get_packet()
				delivered += 1
		OS.delay_msec(1)
	figures["server_poll_p50_us"] = _percentile(server_usec, 0.5)
	figures["server_poll_p99_us"] = _percentile(server_usec, 0.99)
	figures["messages_sent"] = sent
	figures["messages_delivered"] = delivered
	figures["refused"] = server.get_stats()["refused_pending"] + server.get_stats()["refused_full"]
	print("ReliableServer, %d clients x 60 messages/s of %d B, %d frames at 60 Hz on loopback:" % [CLIENTS, MESSAGE, frames])
	print("  server side per frame (poll + every connection's poll and reads): p50 %.0f us, p99 %.0f us" % [
		figures["server_poll_p50_us"], figures["server_poll_p99_us"]])
	print("  messages delivered: %d of %d sent" % [delivered, sent])
	if json_path != "":
		var file := FileAccess.open(json_path, FileAccess.WRITE)
		file.store_string(JSON.stringify(figures, "  ", false))
		file.close()
	quit(0 if delivered == sent else 1)
