## The race, run by scripts/bench.sh: the same reliable stream of 1 KiB messages through a UdpLinkProxy on
## loopback, once with Godot's ENet (ENetConnection and ENetPacketPeer, reliable channel) and once with
## ReliablePacketPeer over UdpPacketPeer, at three link conditions (each way): clean; 2% loss and 30 ms;
## 10% loss and 50 ms. Messages are offered at a steady rate above what the lossy links carry, each stamped with
## the time it was offered; a message's latency is from then to its arrival, goodput is what arrived over the
## time it took. Then a burst: 256 messages offered at once on a clean link with 10 ms each way (how fast a
## transport opens up from a standing start). Then a thin stream, a game's reliable events: 100 messages of 100 B a
## second for 10 s, at 2% loss and 30 ms and at 10% and 50 ms (p50, p99 and max latency are what count there).
## Each transport is connected before the clock starts. Both run in
## this one process, side by side, alternately, RUNS times each.
## Then the cost per packet of MultiplayerLinkConditioner (clean) over a bare ENetMultiplayerPeer on loopback.
## Prints tables and writes the figures as JSON to --json PATH; --section race or wrapper runs one part only.
extends SceneTree

const GameNode := preload("res://tests/multiplayer/game_node.gd")

const RUNS := 3
const MESSAGE := 1024
## Messages offered per run, and the interval between them (2,000 a second: 2 MB/s offered).
const MESSAGES := 3000
const INTERVAL_USEC := 500
## A run that has not delivered everything by then is cut off (what arrived still counts).
const RUN_LIMIT_USEC := 30000000
## Link conditions each way, and how the messages are offered: [count, interval between them in µs].
const CONDITIONS := {
	"clean": {},
	"2% loss, 30 ms": {"loss": 0.02, "latency_ms": 30},
	"10% loss, 50 ms": {"loss": 0.10, "latency_ms": 50},
	"burst of 256, clean, 10 ms": {"latency_ms": 10},
	"thin stream, 2% loss, 30 ms": {"loss": 0.02, "latency_ms": 30},
	"thin stream, 10% loss, 50 ms": {"loss": 0.10, "latency_ms": 50},
}
## [count, interval between messages in µs, message size]; the rest offer MESSAGES of MESSAGE bytes every
## INTERVAL_USEC. The thin streams are a game's reliable events: 100 messages of 100 B a second for 10 s.
const OFFERS := {
	"burst of 256, clean, 10 ms": [256, 0, MESSAGE],
	"thin stream, 2% loss, 30 ms": [1000, 10000, 100],
	"thin stream, 10% loss, 50 ms": [1000, 10000, 100],
}
const WRAP_PACKETS := 20000

var figures := {}
var quick := false


func _initialize() -> void:
	_run.call_deferred()


func _run() -> void:
	var args := OS.get_cmdline_user_args()
	var json_path := ""
	var section := "all"
	for i in args.size():
		if args[i] == "--json" and i + 1 < args.size():
			json_path = args[i + 1]
		if args[i] == "--section" and i + 1 < args.size():
			section = args[i + 1]
		if args[i] == "--quick":
			quick = true
	if section in ["all", "race"]:
		_race()
	if section in ["all", "wrapper"]:
		_wrapper_cost()
	if json_path != "":
		var file := FileAccess.open(json_path, FileAccess.WRITE)
		file.store_string(JSON.stringify(figures, "  ", false))
		file.close()
	quit(0)


func _median(values: Array) -> float:
	var sorted := values.duplicate()
	sorted.sort()
	return sorted[sorted.size() / 2]


func _percentile(values: Array, p: float) -> float:
	if values.is_empty():
		return -1.0
	var sorted := values.duplicate()
	sorted.sort()
	return sorted[mini(sorted.size() - 1, int(p * sorted.size()))]


## A UDP server port nobody uses: [port, bound UdpPacketPeer or ENetConnection made by `make`].
func _free_port(make: Callable) -> Array:
	for attempt in 50:
		var port := 20000 + randi() % 30000
		var made = make.call(port)
		if made != null:
			return [port, made]
	return [0, null]


func _message(seq: int, size: int) -> PackedByteArray:
	var bytes := PackedByteArray()
	bytes.resize(size)
	bytes.encode_s64(0, Time.get_ticks_usec())
	bytes.encode_u32(8, seq)
	return bytes


## One run's outcome from the arrival times: goodput (MB/s), latencies (ms), how many arrived.
func _outcome(latencies: Array, started: int, last_arrival: int, size: int) -> Dictionary:
	var seconds := maxf((last_arrival - started) / 1000000.0, 0.000001)
	return {
		"goodput_mb_s": latencies.size() * size / seconds / 1000000.0,
		"p50_ms": _percentile(latencies, 0.5),
		"p99_ms": _percentile(latencies, 0.99),
		"max_ms": _percentile(latencies, 1.0),
		"delivered": latencies.size(),
	}


## How many messages a condition offers, and how far apart (µs).
func _offer(name: String) -> Array:
	if OFFERS.has(name):
		return OFFERS[name]
	return [MESSAGES / 10 if quick else MESSAGES, INTERVAL_USEC, MESSAGE]


func _enet_run(conditions: Dictionary, offer: Array) -> Dictionary:
	var count: int = offer[0]
	var interval: int = offer[1]
	var size: int = offer[2]
	var bound := _free_port(func(port: int):
		var host := ENetConnection.new()
		return host if host.create_host_bound("127.0.0.1", port, 4, 1) == OK else null)
	var server: ENetConnection = bound[1]
	var proxy := UdpLinkProxy.new()
	proxy.start(0, "127.0.0.1", bound[0])
	proxy.set_link_conditions("", conditions)
	var client := ENetConnection.new()
	client.create_host(1, 1)
	var to_server: ENetPacketPeer = client.connect_to_host("127.0.0.1", proxy.get_listen_port(), 1)
	var connected := false
	var deadline := Time.get_ticks_usec() + 10000000
	while not connected and Time.get_ticks_usec() < deadline:
		for host in [client, server]:
			var event: Array = host.service(1)
			if host == client and event[0] == ENetConnection.EVENT_CONNECT:
				connected = true
	var latencies := []
	var started := Time.get_ticks_usec()
	var sent := 0
	var last_arrival := started
	while latencies.size() < count and Time.get_ticks_usec() - started < RUN_LIMIT_USEC:
		var now := Time.get_ticks_usec()
		while sent < count and now - started >= sent * interval:
			to_server.send(0, _message(sent, size), ENetPacketPeer.FLAG_RELIABLE)
			sent += 1
		client.service(0)
		while true:
			var event: Array = server.service(0)
			if event[0] == ENetConnection.EVENT_NONE or event[0] == ENetConnection.EVENT_ERROR:
				break
			if event[0] == ENetConnection.EVENT_RECEIVE:
				var packet: PackedByteArray = event[1].get_packet()
				last_arrival = Time.get_ticks_usec()
				latencies.append((last_arrival - packet.decode_s64(0)) / 1000.0)
	to_server.peer_disconnect_now()
	client.destroy()
	server.destroy()
	proxy.stop()
	return _outcome(latencies, started, last_arrival, size)


func _peerkit_run(conditions: Dictionary, offer: Array) -> Dictionary:
	var count: int = offer[0]
	var interval: int = offer[1]
	var size: int = offer[2]
	var bound := _free_port(func(port: int):
		var udp := UdpPacketPeer.new()
		return udp if udp.bind(port, "127.0.0.1") == OK else null)
	var server_udp: UdpPacketPeer = bound[1]
	var proxy := UdpLinkProxy.new()
	proxy.start(0, "127.0.0.1", bound[0])
	proxy.set_link_conditions("", conditions)
	var client_udp := UdpPacketPeer.new()
	client_udp.bind(0, "127.0.0.1")
	client_udp.set_dest_address("127.0.0.1", proxy.get_listen_port())
	var sender := ReliablePacketPeer.new()
	sender.inner = client_udp
	var receiver := ReliablePacketPeer.new()
	# Connected first, as the ENet run is. The server answers the proxy's upstream address for this client,
	# learnt from its first datagram, which is taken for that (the sender repeats its HELLO).
	var deadline := Time.get_ticks_usec() + 10000000
	while sender.get_status() != ReliablePacketPeer.STATUS_CONNECTED and Time.get_ticks_usec() < deadline:
		sender.poll()
		if receiver.inner == null and server_udp.get_available_packet_count() > 0:
			server_udp.get_packet()
			server_udp.set_dest_address(server_udp.get_packet_ip(), server_udp.get_packet_port())
			receiver.inner = server_udp
		if receiver.inner != null:
			receiver.poll()
	var latencies := []
	var started := Time.get_ticks_usec()
	var sent := 0
	var last_arrival := started
	var backlog: Array[PackedByteArray] = []
	while latencies.size() < count and Time.get_ticks_usec() - started < RUN_LIMIT_USEC:
		var now := Time.get_ticks_usec()
		# Offered at the same rate; what the sender's buffer refuses waits here, in order.
		while sent < count and now - started >= sent * interval:
			backlog.append(_message(sent, size))
			sent += 1
		while not backlog.is_empty() and sender.put_packet(backlog[0]) == OK:
			backlog.pop_front()
		sender.poll()
		receiver.poll()
		while receiver.get_available_packet_count() > 0:
			var packet := receiver.get_packet()
			last_arrival = Time.get_ticks_usec()
			latencies.append((last_arrival - packet.decode_s64(0)) / 1000.0)
	# Untimed: let the last acknowledgements arrive, so closing discards nothing.
	var drain_until := Time.get_ticks_usec() + 2000000
	while sender.get_stats()["messages_pending"] > 0 and Time.get_ticks_usec() < drain_until:
		sender.poll()
		receiver.poll()
	sender.close()
	receiver.close()
	proxy.stop()
	return _outcome(latencies, started, last_arrival, size)


func _race() -> void:
	print("The race: %d reliable messages of %d B offered at %d/s (the burst: 256 at once) through UdpLinkProxy on loopback, %d runs each (median)" % [
		MESSAGES / 10 if quick else MESSAGES, MESSAGE, 1000000 / INTERVAL_USEC, RUNS])
	print("| link, each way | transport | goodput MB/s | p50 ms | p99 ms | max ms | delivered |")
	print("|---|---|---:|---:|---:|---:|---:|")
	for name in CONDITIONS:
		var runs := {"enet": [], "peerkit": []}
		for i in RUNS:
			runs["enet"].append(_enet_run(CONDITIONS[name], _offer(name)))
			runs["peerkit"].append(_peerkit_run(CONDITIONS[name], _offer(name)))
		var result := {}
		for transport in runs:
			var medians := {}
			for key in ["goodput_mb_s", "p50_ms", "p99_ms", "max_ms", "delivered"]:
				medians[key] = _median(runs[transport].map(func(r): return r[key]))
			result[transport] = medians
			var label := "ENet (ENetConnection, reliable)" if transport == "enet" else "ReliablePacketPeer over UdpPacketPeer"
			print("| %s | %s | %.2f | %.1f | %.1f | %.1f | %d |" % [name, label, medians["goodput_mb_s"], medians["p50_ms"],
					medians["p99_ms"], medians["max_ms"], medians["delivered"]])
		result["goodput_ratio"] = result["peerkit"]["goodput_mb_s"] / maxf(result["enet"]["goodput_mb_s"], 0.000001)
		result["p99_ratio"] = result["peerkit"]["p99_ms"] / maxf(result["enet"]["p99_ms"], 0.000001)
		figures["race " + name] = result
	for name in CONDITIONS:
		var r: Dictionary = figures["race " + name]
		print("%s: peerkit goodput %.2fx ENet's, p99 %.2fx ENet's" % [name, r["goodput_ratio"], r["p99_ratio"]])


## Microseconds per packet, client to server over ENet on loopback, all delivered: bare or wrapped.
func _multiplayer_run(wrap: bool) -> float:
	var count := WRAP_PACKETS / 10 if quick else WRAP_PACKETS
	var bound := _free_port(func(port: int):
		var peer := ENetMultiplayerPeer.new()
		return peer if peer.create_server(port, 4) == OK else null)
	var server: MultiplayerPeer = bound[1]
	var client_enet := ENetMultiplayerPeer.new()
	client_enet.create_client("127.0.0.1", bound[0])
	var client: MultiplayerPeer = MultiplayerLinkConditioner.wrap(client_enet) if wrap else client_enet
	if wrap:
		server = MultiplayerLinkConditioner.wrap(server)
	var deadline := Time.get_ticks_msec() + 10000
	while client.get_connection_status() != MultiplayerPeer.CONNECTION_CONNECTED and Time.get_ticks_msec() < deadline:
		client.poll()
		server.poll()
	client.transfer_mode = MultiplayerPeer.TRANSFER_MODE_RELIABLE
	client.set_target_peer(1)
	var payload := PackedByteArray()
	payload.resize(64)
	var received := 0
	var started := Time.get_ticks_usec()
	for i in count:
		client.put_packet(payload)
		if i % 64 == 63:
			client.poll()
			server.poll()
			while server.get_available_packet_count() > 0:
				server.get_packet()
				received += 1
	while received < count and Time.get_ticks_usec() - started < 20000000:
		client.poll()
		server.poll()
		while server.get_available_packet_count() > 0:
			server.get_packet()
			received += 1
	var elapsed := Time.get_ticks_usec() - started
	client.close()
	server.close()
	return float(elapsed) / count


## Microseconds per reliable RPC, client to server through SceneMultiplayer over ENet on loopback: bare or wrapped.
func _rpc_run(wrap: bool) -> float:
	var count := WRAP_PACKETS / 10 if quick else WRAP_PACKETS
	var bound := _free_port(func(port: int):
		var peer := ENetMultiplayerPeer.new()
		return peer if peer.create_server(port, 4) == OK else null)
	var client_enet := ENetMultiplayerPeer.new()
	client_enet.create_client("127.0.0.1", bound[0])
	var peers := {"server": bound[1], "client": client_enet}
	var apis := {}
	var games := {}
	for name in peers:
		var root := Node.new()
		root.name = "Race_" + name
		var game := GameNode.new()
		game.name = "Game"
		root.add_child(game)
		var api := SceneMultiplayer.new()
		api.multiplayer_peer = MultiplayerLinkConditioner.wrap(peers[name]) if wrap else peers[name]
		set_multiplayer(api, NodePath("/root/" + root.name))
		self.root.add_child(root)
		apis[name] = api
		games[name] = game
	var deadline := Time.get_ticks_msec() + 10000
	while (apis["client"].get_peers().size() != 1 or apis["server"].get_peers().size() != 1) and Time.get_ticks_msec() < deadline:
		apis["client"].poll()
		apis["server"].poll()
	var started := Time.get_ticks_usec()
	for i in count:
		games["client"].say.rpc_id(1, "x")
		if i % 64 == 63:
			apis["client"].poll()
			apis["server"].poll()
	while games["server"].received.size() < count and Time.get_ticks_usec() - started < 20000000:
		apis["client"].poll()
		apis["server"].poll()
	var elapsed := Time.get_ticks_usec() - started
	for name in apis:
		apis[name].multiplayer_peer.close()
		apis[name].multiplayer_peer = null
		var node: Node = self.root.get_node("Race_" + name)
		var path := node.get_path()
		node.free()
		set_multiplayer(null, path)
	return float(elapsed) / count


func _wrapper_cost() -> void:
	var count := WRAP_PACKETS / 10 if quick else WRAP_PACKETS
	var results := {}
	for kind in ["packet", "rpc"]:
		var bare := []
		var wrapped := []
		for i in RUNS + 2:
			bare.append(_multiplayer_run(false) if kind == "packet" else _rpc_run(false))
			wrapped.append(_multiplayer_run(true) if kind == "packet" else _rpc_run(true))
		results[kind] = [_median(bare), _median(wrapped)]
		figures["enet %s bare us" % kind] = results[kind][0]
		figures["enet %s wrapped us" % kind] = results[kind][1]
		figures["wrapper overhead %s" % kind] = results[kind][1] / results[kind][0] - 1.0
	print()
	print("MultiplayerLinkConditioner (clean links) around ENetMultiplayerPeer on loopback, client to server, %d each:" % count)
	print("| what | ENetMultiplayerPeer µs | wrapped µs | overhead |")
	print("|---|---:|---:|---:|")
	for kind in results:
		var label := "reliable 64 B packet, put_packet to get_packet" if kind == "packet" else "reliable RPC through SceneMultiplayer"
		var b: float = results[kind][0]
		var w: float = results[kind][1]
		print("| %s | %.2f | %.2f | %+.1f%% |" % [label, b, w, (w / b - 1.0) * 100.0])
	print("(target: within 10%%; median of %d runs each)" % (RUNS + 2))
