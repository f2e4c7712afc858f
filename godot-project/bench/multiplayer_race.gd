## The multiplayer race, run by scripts/bench.sh: a game's load over ENetMultiplayerPeer and over
## UdpMultiplayerPeer, each through the same kind of UdpLinkProxy on loopback, at three link conditions (each
## way): clean; 2% loss and 30 ms; 10% loss and 50 ms. The client sends what a SceneMultiplayer game sends,
## through the MultiplayerPeer API SceneMultiplayer itself uses: a 100-byte state update 60 times a second
## (unreliable, channel 0), a 64-byte reliable event 20 times a second (reliable, channel 1), and one 1 MB
## reliable transfer (channel 2) started with them. Every packet carries the time it was put; the server notes
## when each arrives. Per mode: the share delivered and the latency p50/p99; the transfer's time. Then the CPU
## per packet on a clean loopback link (no proxy), the state and events at ten times those rates and no
## transfer: the main thread's time in the peers' calls, and the whole process's CPU time from /proc/self/stat
## (peerkit's receive thread is in that one; ENet has none), each over the packets delivered; ENet and
## UdpMultiplayerPeer run back to back in pairs, and the ratio is the median of the pairs' ratios (on the 2-core
## VM single runs of the same transport differed by up to half).
## Both transports run in this one process, alternately, RUNS times each. Prints a table and writes the figures
## as JSON to --json PATH; --quick runs a short version.
extends SceneTree

const RUNS := 2
const SECONDS := 12.0
const STATE_BYTES := 100
const EVENT_BYTES := 64
const TRANSFER_BYTES := 1000000
const STATE_HZ := 60
const EVENT_HZ := 20
const CONDITIONS := {
	"clean": {},
	"2% loss, 30 ms": {"loss": 0.02, "latency_ms": 30},
	"10% loss, 50 ms": {"loss": 0.10, "latency_ms": 50},
}
## A packet's first byte says what it is.
const STATE := 1
const EVENT := 2
const TRANSFER := 3

var figures := {}
var quick := false


func _initialize() -> void:
	_run.call_deferred()


func _run() -> void:
	var args := OS.get_cmdline_user_args()
	var json_path := ""
	for i in args.size():
		if args[i] == "--json" and i + 1 < args.size():
			json_path = args[i + 1]
		if args[i] == "--quick":
			quick = true
	_race()
	if json_path != "":
		var file := FileAccess.open(json_path, FileAccess.WRITE)
		file.store_string(JSON.stringify(figures, "  ", false))
		file.close()
	quit(0)


func _percentile(values: Array, p: float) -> float:
	if values.is_empty():
		return -1.0
	var sorted := values.duplicate()
	sorted.sort()
	return sorted[mini(sorted.size() - 1, int(p * sorted.size()))]


func _median(values: Array) -> float:
	var sorted := values.duplicate()
	sorted.sort()
	return sorted[sorted.size() / 2]


func _packet(kind: int, size: int, seq: int) -> PackedByteArray:
	var bytes := PackedByteArray()
	bytes.resize(size)
	bytes[0] = kind
	bytes.encode_u32(1, seq)
	bytes.encode_s64(5, Time.get_ticks_usec())
	return bytes


## A server of `transport` on a free loopback port: [port, peer].
func _server(transport: String) -> Array:
	for attempt in 50:
		var port := 20000 + randi() % 30000
		if transport == "enet":
			var enet := ENetMultiplayerPeer.new()
			enet.set_bind_ip("127.0.0.1")
			if enet.create_server(port, 4) == OK:
				return [port, enet]
		else:
			var udp := UdpMultiplayerPeer.new()
			if udp.create_server(port, 4, "127.0.0.1") == OK:
				return [port, udp]
	return [0, null]


func _client(transport: String, port: int) -> MultiplayerPeer:
	var peer: MultiplayerPeer = ENetMultiplayerPeer.new() if transport == "enet" else UdpMultiplayerPeer.new()
	peer.create_client("127.0.0.1", port)
	return peer


func _put(peer: MultiplayerPeer, mode: int, channel: int, bytes: PackedByteArray) -> void:
	peer.transfer_mode = mode
	peer.transfer_channel = channel
	peer.set_target_peer(1)
	peer.put_packet(bytes)


## One run: the figures of what arrived.
func _one(transport: String, conditions: Dictionary, seconds: float) -> Dictionary:
	var made := _server(transport)
	var server: MultiplayerPeer = made[1]
	var proxy := UdpLinkProxy.new()
	proxy.start(0, "127.0.0.1", made[0])
	proxy.set_link_conditions("", conditions)
	var client := _client(transport, proxy.get_listen_port())
	var deadline := Time.get_ticks_usec() + 10000000
	while Time.get_ticks_usec() < deadline and client.get_connection_status() != MultiplayerPeer.CONNECTION_CONNECTED:
		client.poll()
		server.poll()
		OS.delay_usec(500)
	var state_latency := []
	var event_latency := []
	var sent := {STATE: 0, EVENT: 0}
	var transfer_ms := -1.0
	var started := Time.get_ticks_usec()
	var stop_sending := started + int(seconds * 1000000)
	# Packets put in the last second may still be on the way when the run ends: they are not counted.
	var count_until := stop_sending - 1000000
	var end := stop_sending + 3000000
	_put(client, MultiplayerPeer.TRANSFER_MODE_RELIABLE, 2, _packet(TRANSFER, TRANSFER_BYTES, 0))
	while Time.get_ticks_usec() < end:
		var now := Time.get_ticks_usec()
		var elapsed := now - started
		if now < stop_sending:
			while sent[STATE] * 1000000 <= elapsed * STATE_HZ:
				_put(client, MultiplayerPeer.TRANSFER_MODE_UNRELIABLE, 0, _packet(STATE, STATE_BYTES, sent[STATE]))
				sent[STATE] += 1
			while sent[EVENT] * 1000000 <= elapsed * EVENT_HZ:
				_put(client, MultiplayerPeer.TRANSFER_MODE_RELIABLE, 1, _packet(EVENT, EVENT_BYTES, sent[EVENT]))
				sent[EVENT] += 1
		client.poll()
		server.poll()
		while server.get_available_packet_count() > 0:
			var bytes := server.get_packet()
			var put_at := bytes.decode_s64(5)
			var arrived := Time.get_ticks_usec()
			if put_at > count_until:
				continue
			match bytes[0]:
				STATE:
					state_latency.append((arrived - put_at) / 1000.0)
				EVENT:
					event_latency.append((arrived - put_at) / 1000.0)
				TRANSFER:
					transfer_ms = (arrived - put_at) / 1000.0
		OS.delay_usec(500)
	var counted_state := ceili((count_until - started) * STATE_HZ / 1000000.0)
	var counted_event := ceili((count_until - started) * EVENT_HZ / 1000000.0)
	client.close()
	server.close()
	proxy.stop()
	return {
		"state_delivered": state_latency.size() / float(maxi(counted_state, 1)),
		"state_p50_ms": _percentile(state_latency, 0.5),
		"state_p99_ms": _percentile(state_latency, 0.99),
		"event_delivered": event_latency.size() / float(maxi(counted_event, 1)),
		"event_p50_ms": _percentile(event_latency, 0.5),
		"event_p99_ms": _percentile(event_latency, 0.99),
		"transfer_ms": transfer_ms,
	}


## The process's CPU time so far in µs (user and system, every thread), or -1 where /proc is not there.
func _process_cpu_usec() -> int:
	var file := FileAccess.open("/proc/self/stat", FileAccess.READ)
	if file == null:
		return -1
	var stat := file.get_line()
	if stat.is_empty():
		return -1
	# Fields after the command name (which is in parentheses and may hold spaces): utime is the 12th, stime the 13th.
	var fields := stat.substr(stat.rfind(")") + 2).split(" ")
	return (int(fields[11]) + int(fields[12])) * 10000


## CPU per packet of `transport` on a clean loopback link (no proxy), for `seconds` of a game's load at ten
## times the race's rates (600 state updates and 200 events a second), the main thread sleeping 1 ms between
## frames: [main thread µs in the peers' calls, process CPU µs (every thread), packets delivered].
func _cpu(transport: String, seconds: float) -> Array:
	var made := _server(transport)
	var server: MultiplayerPeer = made[1]
	var client := _client(transport, made[0])
	var deadline := Time.get_ticks_usec() + 10000000
	while Time.get_ticks_usec() < deadline and client.get_connection_status() != MultiplayerPeer.CONNECTION_CONNECTED:
		client.poll()
		server.poll()
		OS.delay_usec(500)
	var state := _packet(STATE, STATE_BYTES, 0)
	var event := _packet(EVENT, EVENT_BYTES, 0)
	var sent := {STATE: 0, EVENT: 0}
	var delivered := 0
	var busy := 0
	var cpu_start := _process_cpu_usec()
	var started := Time.get_ticks_usec()
	var stop := started + int(seconds * 1000000)
	while Time.get_ticks_usec() < stop + 200000:
		var t0 := Time.get_ticks_usec()
		var elapsed := t0 - started
		if t0 < stop:
			while sent[STATE] * 1000000 <= elapsed * STATE_HZ * 10:
				_put(client, MultiplayerPeer.TRANSFER_MODE_UNRELIABLE, 0, state)
				sent[STATE] += 1
			while sent[EVENT] * 1000000 <= elapsed * EVENT_HZ * 10:
				_put(client, MultiplayerPeer.TRANSFER_MODE_RELIABLE, 1, event)
				sent[EVENT] += 1
		client.poll()
		server.poll()
		while server.get_available_packet_count() > 0:
			server.get_packet()
			delivered += 1
		busy += Time.get_ticks_usec() - t0
		OS.delay_usec(1000)
	var cpu := _process_cpu_usec() - cpu_start
	client.close()
	server.close()
	var per := float(maxi(delivered, 1))
	return [busy / per, cpu / per if cpu_start >= 0 else -1.0, delivered]


func _race() -> void:
	var seconds := 3.0 if quick else SECONDS
	var runs := 1 if quick else RUNS
	print("The multiplayer race: 60 Hz state (100 B, unreliable), 20 Hz events (64 B, reliable, another channel)")
	print("and one 1 MB reliable transfer (a third channel), through a UdpLinkProxy; medians of %d runs of %.0f s." % [runs, seconds])
	print("| link (each way) | transport | state delivered | state p50 / p99 ms | events delivered | event p50 / p99 ms | 1 MB transfer s |")
	print("|---|---|---:|---:|---:|---:|---:|")
	for condition in CONDITIONS:
		var per := {}
		for transport in ["enet", "udp"]:
			per[transport] = []
		for run in runs:
			for transport in ["enet", "udp"]:
				per[transport].append(_one(transport, CONDITIONS[condition], seconds))
		figures[condition] = {}
		for transport in ["enet", "udp"]:
			var med := {}
			for key in per[transport][0]:
				med[key] = _median(per[transport].map(func(r): return r[key]))
			figures[condition][transport] = med
			var name := "ENetMultiplayerPeer" if transport == "enet" else "UdpMultiplayerPeer"
			print("| %s | %s | %.1f%% | %.1f / %.1f | %.1f%% | %.1f / %.1f | %s |" % [condition, name,
					100.0 * med["state_delivered"], med["state_p50_ms"], med["state_p99_ms"],
					100.0 * med["event_delivered"], med["event_p50_ms"], med["event_p99_ms"],
					"%.2f" % (med["transfer_ms"] / 1000.0) if med["transfer_ms"] >= 0 else "not done"])
		var enet: Dictionary = figures[condition]["enet"]
		var udp: Dictionary = figures[condition]["udp"]
		if condition != "clean":
			print("|   | ratio (Udp / ENet) | | | | p99 %.2fx | %.2fx |" % [
					udp["event_p99_ms"] / maxf(enet["event_p99_ms"], 0.001),
					udp["transfer_ms"] / maxf(enet["transfer_ms"], 0.001)])
	print("")
	var cpu_runs := 2 if quick else 6
	var cpu_seconds := 2.0 if quick else 5.0
	print("CPU per packet, clean loopback, %.0f s of 600 state updates and 200 events a second, %d alternated pairs of runs:" % [cpu_seconds, cpu_runs])
	print("| transport | main thread µs/packet | process CPU µs/packet | delivered |")
	print("|---|---:|---:|---:|")
	var cpu := {"enet": [], "udp": []}
	var main_ratios := []
	var process_ratios := []
	for run in cpu_runs:
		for transport in ["enet", "udp"]:
			cpu[transport].append(_cpu(transport, cpu_seconds))
		main_ratios.append(cpu["udp"][-1][0] / maxf(cpu["enet"][-1][0], 0.001))
		process_ratios.append(cpu["udp"][-1][1] / maxf(cpu["enet"][-1][1], 0.001))
	figures["cpu"] = {}
	for transport in ["enet", "udp"]:
		var main := _median(cpu[transport].map(func(r): return r[0]))
		var process := _median(cpu[transport].map(func(r): return r[1]))
		var delivered := _median(cpu[transport].map(func(r): return r[2]))
		figures["cpu"][transport] = {"main_us_per_packet": main, "process_us_per_packet": process, "delivered": delivered}
		var name := "ENetMultiplayerPeer" if transport == "enet" else "UdpMultiplayerPeer"
		print("| %s | %.2f | %.2f | %d |" % [name, main, process, delivered])
	# Each pair ran back to back, so its ratio leaves out what the machine did between pairs.
	figures["cpu"]["main_ratio"] = _median(main_ratios)
	figures["cpu"]["process_ratio"] = _median(process_ratios)
	print("| ratio (Udp / ENet), median of the pairs' | %.2fx | %.2fx | |" % [figures["cpu"]["main_ratio"], figures["cpu"]["process_ratio"]])
	print("pairs' ratios, main thread: %s; process: %s" % [
			", ".join(main_ratios.map(func(r): return "%.2f" % r)), ", ".join(process_ratios.map(func(r): return "%.2f" % r))])
