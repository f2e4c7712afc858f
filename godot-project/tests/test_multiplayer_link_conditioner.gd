## MultiplayerLinkConditioner around real transports in this one process, over loopback: an ENet server with two
## clients, and a WebSocket server with a client, each peer wrapped, each with its own SceneMultiplayer on its own
## subtree. The conditioners run on manual clocks; the transports underneath run in real time, so each step lets
## them settle (polling until what is due has arrived, up to a generous deadline) before checking.
extends "res://tests/suite.gd"

const GameNode := preload("res://tests/multiplayer/game_node.gd")
## How long a check waits for the real transport to carry what is due (never reached on a working machine).
const DEADLINE_MS := 5000

var tree: SceneTree
## Peer name ("server", "a", "b") -> subtree root, SceneMultiplayer, conditioner.
var roots := {}
var apis := {}
var wrapped := {}
## What the SceneMultiplayers said, in order: "name signal [id]".
var log: Array[String] = []


func before_each() -> void:
	tree = Engine.get_main_loop()


func after_each() -> void:
	for name in roots:
		var path: NodePath = roots[name].get_path()
		apis[name].multiplayer_peer = null
		wrapped[name].close()
		roots[name].free()
		tree.set_multiplayer(null, path)
	roots.clear()
	apis.clear()
	wrapped.clear()
	log.clear()


## An ENet server on a free port: [peer, port].
func _enet_server() -> Array:
	for attempt in 20:
		var port := 20000 + randi() % 30000
		var peer := ENetMultiplayerPeer.new()
		if peer.create_server(port, 8) == OK:
			return [peer, port]
	fail("no free port for an ENet server")
	return [null, 0]


## Wraps `inner`, gives it a SceneMultiplayer on /root/Test_<name>/Game (plus `extra`), on a manual clock.
func _join(name: String, inner: MultiplayerPeer, extra: Node = null) -> MultiplayerLinkConditioner:
	var conditioner := MultiplayerLinkConditioner.wrap(inner)
	conditioner.use_manual_clock = true
	conditioner.seed = name.hash()
	var root := Node.new()
	root.name = "Test_" + name
	var game := GameNode.new()
	game.name = "Game"
	game.clock = conditioner
	root.add_child(game)
	if extra != null:
		root.add_child(extra)
	var api := SceneMultiplayer.new()
	api.multiplayer_peer = conditioner
	tree.set_multiplayer(api, NodePath("/root/" + root.name))
	tree.root.add_child(root)
	for signal_name in ["peer_connected", "peer_disconnected"]:
		api.connect(signal_name, func(id: int) -> void: log.append("%s %s %d" % [name, signal_name, id]))
	for signal_name in ["connected_to_server", "server_disconnected", "connection_failed"]:
		api.connect(signal_name, func() -> void: log.append("%s %s" % [name, signal_name]))
	roots[name] = root
	apis[name] = api
	wrapped[name] = conditioner
	return conditioner


func _game(name: String) -> GameNode:
	return roots[name].get_node("Game")


func _id(name: String) -> int:
	return wrapped[name].get_unique_id()


## Polls every SceneMultiplayer (each polls its conditioner, which polls its transport) once.
func _pump() -> void:
	for name in apis:
		apis[name].poll()


## Polls until `done` returns true or the deadline passes; returns whether it did.
func _until(done: Callable) -> bool:
	var started := Time.get_ticks_msec()
	while not done.call():
		if Time.get_ticks_msec() - started > DEADLINE_MS:
			return false
		_pump()
		OS.delay_msec(1)
	return true


## Polls for `ms` of real time: what the transports carry in that time arrives (for checks that nothing did).
func _settle(ms: int = 60) -> void:
	var started := Time.get_ticks_msec()
	while Time.get_ticks_msec() - started < ms:
		_pump()
		OS.delay_msec(1)


## Moves every conditioner's clock forward by `ms`.
func _advance(ms: float) -> void:
	for name in wrapped:
		wrapped[name].advance(ms)


## An ENet server and clients a, b, ... connected through their conditioners, each knowing of the others.
func _enet_session(clients: int = 2, extras := {}) -> void:
	var server: Array = _enet_server()
	if server[0] == null:
		return
	_join("server", server[0], extras.get("server"))
	for i in clients:
		var name := String.chr(97 + i)
		var client := ENetMultiplayerPeer.new()
		assert_ok(client.create_client("127.0.0.1", server[1]))
		_join(name, client, extras.get(name))
	var all_know := func() -> bool:
		for name in apis:
			if apis[name].get_peers().size() != clients:
				return false
		return true
	assert_true(_until(all_know), "every peer connected and knows the others")


func test_a_wrapped_enet_session_passes_the_multiplayer_contract_through() -> void:
	_enet_session(2)
	assert_eq(wrapped["server"].get_unique_id(), 1)
	assert_true(wrapped["server"].is_server_relay_supported(), "ENet's relay support shows through")
	assert_eq(wrapped["a"].get_connection_status(), MultiplayerPeer.CONNECTION_CONNECTED)
	var ids := [_id("a"), _id("b")]
	ids.sort()
	assert_eq(wrapped["server"].get_peer_ids(), PackedInt32Array(ids), "the server's remote peers")
	assert_eq(wrapped["a"].get_peer_ids(), PackedInt32Array([1]), "a client's remote peer is the server")
	assert_true(log.has("a connected_to_server"), "SceneMultiplayer saw the status change")
	assert_true(log.has("server peer_connected %d" % _id("a")), "peer_connected came through")
	assert_eq(wrapped["server"].get_inner().get_class(), "ENetMultiplayerPeer")


func test_rpcs_go_all_three_ways_through_the_links() -> void:
	_enet_session(2)
	_game("a").say.rpc_id(1, "a to server")
	_game("server").announce.rpc("server to all")
	_game("b").say.rpc_id(_id("a"), "b to a, relayed")
	var arrived := func() -> bool:
		return (_game("a").values("say").size() == 1 and _game("b").values("announce").size() == 1
				and _game("server").values("say").size() == 1)
	assert_true(_until(arrived), "every call arrived")
	assert_eq(_game("server").values("say"), ["a to server"])
	assert_eq(_game("server").received[0][0], _id("a"), "the server sees a as the sender")
	assert_eq(_game("a").values("announce"), ["server to all"], "reliable on channel 2")
	assert_eq(_game("a").values("say"), ["b to a, relayed"])
	assert_eq(_game("a").received.filter(func(c): return c[1] == "say")[0][0], _id("b"),
			"the relayed call names b as the sender")


func test_latency_on_the_manual_clock_is_exact_per_peer_and_direction() -> void:
	_enet_session(2)
	assert_ok(wrapped["a"].set_link_conditions(1, {"latency_ms": 100}, MultiplayerLinkConditioner.DIRECTION_OUTBOUND))
	assert_ok(wrapped["server"].set_link_conditions(_id("b"), {"latency_ms": 30}, MultiplayerLinkConditioner.DIRECTION_INBOUND))
	_game("a").say.rpc_id(1, "from a")
	_game("b").say.rpc_id(1, "from b")
	_settle()
	assert_eq(_game("server").values("say"), [], "nothing arrives before its time")
	_advance(29)
	_settle()
	assert_eq(_game("server").values("say"), [])
	_advance(1)
	assert_true(_until(func() -> bool: return _game("server").values("say").size() == 1), "b's call at 30 ms")
	assert_eq(_game("server").values("say"), ["from b"])
	assert_eq(_game("server").received[0][3], 30.0, "arrived at 30 ms on the server's clock")
	_advance(69)
	_settle()
	assert_eq(_game("server").values("say").size(), 1, "a's is not due until 100 ms")
	_advance(1)
	assert_true(_until(func() -> bool: return _game("server").values("say").size() == 2), "a's call at 100 ms")
	assert_eq(_game("server").received[1][2], "from a")
	assert_eq(_game("server").received[1][3], 100.0, "arrived at 100 ms on the server's clock")
	var stats: Dictionary = wrapped["a"].get_stats()
	assert_eq(stats["peers"][1]["outbound"]["delay_min_ms"], 100.0)
	assert_eq(wrapped["a"].get_link_conditions(1, MultiplayerLinkConditioner.DIRECTION_INBOUND)["latency_ms"], 0,
			"only the direction named changed")


func test_reliable_rpcs_survive_total_loss_and_unreliable_ones_do_not() -> void:
	_enet_session(1)
	assert_ok(wrapped["a"].set_link_conditions(1, {"loss": 1.0, "latency_ms": 10}))
	for i in 20:
		_game("a").say.rpc_id(1, "r%d" % i)
		_game("a").shout.rpc_id(1, i)
	_settle()
	assert_eq(_game("server").values("say"), [], "held: each simulated loss costs a retransmission timeout")
	# 10 ms plus 8 timeouts of 20 ms (the minimum) each.
	_advance(170)
	assert_true(_until(func() -> bool: return _game("server").values("say").size() == 20), "all 20 reliable calls")
	var expected := []
	for i in 20:
		expected.append("r%d" % i)
	assert_eq(_game("server").values("say"), expected, "once each, in order")
	_settle()
	assert_eq(_game("server").values("shout"), [], "every unreliable call was lost")
	var out: Dictionary = wrapped["a"].get_stats()["peers"][1]["outbound"]
	assert_eq(out["dropped_loss"], 20, "the 20 unreliable ones")
	# SceneMultiplayer adds reliable packets of its own (its node path cache): each paid 8 timeouts too.
	var reliable: int = out["packets_in"] - 20
	assert_between(reliable, 20, 25, "reliable packets: the 20 calls and SceneMultiplayer's own")
	assert_eq(out["retransmitted"], 8 * reliable)


func test_an_unreliable_loss_rate_is_within_binomial_bounds() -> void:
	_enet_session(1)
	assert_ok(wrapped["a"].set_link_conditions(1, {"loss": 0.3}, MultiplayerLinkConditioner.DIRECTION_OUTBOUND))
	for i in 1000:
		_game("a").shout.rpc_id(1, i)
		if i % 100 == 99:
			_settle(5)
	var out: Dictionary = wrapped["a"].get_stats()["peers"][1]["outbound"]
	# SceneMultiplayer's own first packet (its node path cache, reliable) is among packets_in.
	assert_between(out["packets_in"], 1000, 1005, "the 1000 calls, and SceneMultiplayer's own")
	assert_eq(out["dropped_loss"] + out["packets_delivered"], out["packets_in"], "each lost or passed on")
	# Mean 700 calls lost, standard deviation 14.5: five deviations either way.
	assert_between(out["dropped_loss"], 227, 373, "lost of 1000 at loss 0.3")
	var carried := func() -> bool: return _game("server").values("shout").size() == 1000 - out["dropped_loss"]
	assert_true(_until(carried), "ENet carried every call passed on")


func test_unreliable_ordered_calls_never_go_back_on_their_channel() -> void:
	_enet_session(1)
	assert_ok(wrapped["a"].set_link_conditions(1, {"latency_ms": 20, "reorder": 0.3}))
	for i in 300:
		_game("a").update.rpc_id(1, i)
	_advance(25)
	_settle()
	var got: Array = _game("server").values("update")
	var increasing := true
	for i in range(1, got.size()):
		increasing = increasing and got[i] > got[i - 1]
	assert_true(increasing, "each arrives newer than the last")
	var dropped: int = wrapped["a"].get_stats()["dropped_out_of_order"]
	assert_true(dropped > 0, "reordering happened, and the late ones were dropped (%d)" % dropped)
	assert_between(got.size(), 1, 300 - dropped)


func test_a_cut_link_holds_reliable_calls_until_it_is_restored() -> void:
	_enet_session(1)
	assert_ok(wrapped["server"].set_link_up(_id("a"), false))
	_game("server").announce.rpc("while cut")
	_game("server").shout.rpc(7)
	_advance(500)
	_settle()
	assert_eq(_game("a").values("announce"), [], "held while cut")
	assert_eq(wrapped["a"].get_connection_status(), MultiplayerPeer.CONNECTION_CONNECTED, "the connection stays")
	assert_ok(wrapped["server"].set_link_up(_id("a"), true))
	_advance(1)
	assert_true(_until(func() -> bool: return _game("a").values("announce").size() == 1), "delivered once restored")
	assert_eq(_game("a").values("shout"), [], "the unreliable one was lost")
	assert_eq(wrapped["server"].get_stats()["peers"][_id("a")]["outbound"]["dropped_link_down"], 1)


func test_peer_zero_applies_to_peers_that_connect_later_and_presets_work() -> void:
	var server: Array = _enet_server()
	var conditioner := _join("server", server[0])
	assert_ok(conditioner.apply_preset(0, "3g"))
	assert_error(conditioner.set_link_conditions(12345, {"latency_ms": 5}), ERR_INVALID_PARAMETER)
	assert_error_logged("peer 12345 is not connected")
	assert_error(conditioner.set_link_conditions(0, {"latency": 5}), ERR_INVALID_PARAMETER)
	assert_error_logged("unknown link setting")
	assert_error(conditioner.apply_preset(0, "dialup"), ERR_INVALID_PARAMETER)
	assert_error_logged("dialup")
	var client := ENetMultiplayerPeer.new()
	client.create_client("127.0.0.1", server[1])
	_join("a", client)
	assert_true(_until(func() -> bool: return conditioner.get_peer_ids().size() == 1), "a connected")
	var settings: Dictionary = conditioner.get_link_conditions(_id("a"), MultiplayerLinkConditioner.DIRECTION_OUTBOUND)
	var preset := LinkConditioner.new()
	preset.apply_preset("3g")
	assert_eq(settings, preset.get_settings(LinkConditioner.DIRECTION_OUTBOUND), "the later peer got the preset")
	assert_true(MultiplayerLinkConditioner.wrap(ENetMultiplayerPeer.new(), "nope") != null, "still a working peer")
	assert_error_logged("nope")


func test_a_disconnect_passes_through_both_ways() -> void:
	_enet_session(2)
	var a := _id("a")
	wrapped["server"].disconnect_peer(a)
	var both := func() -> bool: return log.has("a server_disconnected") and log.has("server peer_disconnected %d" % a)
	assert_true(_until(both), "the client lost the server and the server the client")
	assert_eq(wrapped["server"].get_peer_ids(), PackedInt32Array([_id("b")]), "its links went with it")
	assert_true(_until(func() -> bool: return log.has("b peer_disconnected %d" % a)), "b was told too")
	assert_error(wrapped["a"].put_packet(PackedByteArray([1])), ERR_UNCONFIGURED, "a disconnected peer refuses")
	assert_error_logged("not connected")


## A Node2D "Player" whose position a MultiplayerSynchronizer replicates (the same on every peer).
func _synchronized_player() -> Node2D:
	var player := Node2D.new()
	player.name = "Player"
	var sync := MultiplayerSynchronizer.new()
	sync.name = "Sync"
	var config := SceneReplicationConfig.new()
	config.add_property(NodePath(".:position"))
	config.property_set_replication_mode(NodePath(".:position"), SceneReplicationConfig.REPLICATION_MODE_ALWAYS)
	sync.replication_config = config
	player.add_child(sync)
	sync.root_path = NodePath("..")
	return player


func test_a_multiplayer_synchronizer_replicates_through_a_delayed_link() -> void:
	_enet_session(1, {"server": _synchronized_player(), "a": _synchronized_player()})
	assert_ok(wrapped["server"].set_link_conditions(0, {"latency_ms": 50}))
	var source: Node2D = roots["server"].get_node("Player")
	var replica: Node2D = roots["a"].get_node("Player")
	source.position = Vector2(12, 34)
	# Replication exchanges a few packets each way (path cache, then state): time moves in 10 ms steps.
	var steps := 0
	while replica.position != source.position and steps < 100:
		_advance(10)
		_settle(5)
		steps += 1
	assert_eq(replica.position, Vector2(12, 34), "the client's copy follows the server's")
	var out: Dictionary = wrapped["server"].get_stats()["peers"][_id("a")]["outbound"]
	assert_eq(out["delay_max_ms"], 50.0, "through the delayed link")
	assert_true(steps >= 5, "not before the link's delay (%d steps of 10 ms)" % steps)


func test_a_wrapped_websocket_server_and_client() -> void:
	var server := WebSocketMultiplayerPeer.new()
	var port := 0
	for attempt in 20:
		port = 20000 + randi() % 30000
		if server.create_server(port) == OK:
			break
	_join("server", server, _synchronized_player())
	var client := WebSocketMultiplayerPeer.new()
	assert_ok(client.create_client("ws://127.0.0.1:%d" % port))
	_join("a", client, _synchronized_player())
	var connected := func() -> bool: return apis["a"].get_peers().size() == 1 and apis["server"].get_peers().size() == 1
	assert_true(_until(connected), "connected over WebSocket")
	assert_eq(wrapped["a"].get_max_packet_size(), client.outbound_buffer_size - 9, "WebSocket's limit shows through")
	assert_ok(wrapped["server"].set_link_conditions(0, {"latency_ms": 40}, MultiplayerLinkConditioner.DIRECTION_OUTBOUND))
	_game("server").announce.rpc("over websocket")
	_game("a").say.rpc_id(1, "back")
	assert_true(_until(func() -> bool: return _game("server").values("say").size() == 1), "client to server, clean")
	_advance(39)
	_settle()
	assert_eq(_game("a").values("announce"), [], "server to client waits 40 ms")
	_advance(1)
	assert_true(_until(func() -> bool: return _game("a").values("announce") == ["over websocket"]), "then arrives")
	assert_eq(_game("a").received[0][3], 40.0)
	# And a synchronizer over the same delayed WebSocket link.
	var source: Node2D = roots["server"].get_node("Player")
	var replica: Node2D = roots["a"].get_node("Player")
	source.position = Vector2(5, 6)
	var steps := 0
	while replica.position != source.position and steps < 100:
		_advance(10)
		_settle(5)
		steps += 1
	assert_eq(replica.position, Vector2(5, 6), "the synchronizer replicated over WebSocket")
	assert_true(steps >= 4, "through the 40 ms link (%d steps of 10 ms)" % steps)


func test_bad_use_gets_clear_errors() -> void:
	var lone := MultiplayerLinkConditioner.new()
	assert_eq(lone.get_connection_status(), MultiplayerPeer.CONNECTION_DISCONNECTED)
	assert_error(lone.put_packet(PackedByteArray([1])), ERR_UNCONFIGURED)
	assert_error_logged("no inner peer")
	lone.inner = lone
	assert_error_logged("cannot wrap itself")
	assert_null(lone.inner)
	var outer := MultiplayerLinkConditioner.wrap(lone)
	lone.inner = outer
	assert_error_logged("cannot wrap itself")
	assert_error(lone.set_link_conditions(0, {"latency_ms": 1}, 7), ERR_INVALID_PARAMETER)
	assert_error_logged("direction must be")
	lone.advance(5)
	assert_error_logged("use_manual_clock")


func test_a_client_wrapped_after_it_connected_still_reaches_the_server() -> void:
	var network := LocalMultiplayerNetwork.new()
	var server := network.create_server()
	var client := network.create_client()
	network.poll()
	var late := MultiplayerLinkConditioner.wrap(client)
	assert_eq(late.get_peer_ids(), PackedInt32Array([1]), "its server is known at once")
	assert_ok(late.put_var("late"))
	network.poll()
	assert_eq(server.get_var(), "late", "the packet reached the server")
	var late_server := MultiplayerLinkConditioner.wrap(server)
	client.put_var("to the server")
	network.poll()
	late_server.poll()
	assert_eq(late_server.get_var(), "to the server", "a client that sends is known from then on")
	assert_eq(late_server.get_peer_ids(), PackedInt32Array([client.get_unique_id()]))


## README's pattern wraps both sides (host and join run the same code) with "3g": the round trip between them is
## the preset's (README: "round trips of roughly 100 to 200 ms"), not two presets' (each side used to impair
## both directions, so every packet crossed two 3g links: about 300 ms). Measured against the same exchange with
## clean links, so what the machine itself adds (an emulated CPU, a slow frame) is left out, except that an
## impaired link delivers only when polled, which a clean one does not wait for: under qemu that read 204 ms
## once (206 against 2 clean), hence the upper bound of 230, still far below two presets' 300.
func test_readme_pattern_wrapping_both_sides_gives_the_presets_round_trip() -> void:
	var clean := _median_round_trip("clean")
	var three_g := _median_round_trip("3g")
	assert_true(clean >= 0.0 and three_g >= 0.0, "every ping came back")
	assert_between(three_g - clean, 100.0, 230.0,
		"the 3g preset adds %.0f ms to the round trip (%.0f against %.0f clean)" % [three_g - clean, three_g, clean])


## The median round trip of 40 reliable pings from a client to an ENet server, both wrapped with `preset` as
## README's pattern does; -1 when not every ping came back.
func _median_round_trip(preset: String) -> float:
	var server: Array = _enet_server()
	var host := MultiplayerLinkConditioner.wrap(server[0], preset)
	var enet_client := ENetMultiplayerPeer.new()
	enet_client.create_client("127.0.0.1", server[1])
	var join := MultiplayerLinkConditioner.wrap(enet_client, preset)
	var both := [host, join]
	var poll_all := func() -> void:
		for peer in both:
			peer.poll()
	var deadline := Time.get_ticks_msec() + DEADLINE_MS
	while join.get_connection_status() != MultiplayerPeer.CONNECTION_CONNECTED and Time.get_ticks_msec() < deadline:
		poll_all.call()
		OS.delay_msec(1)
	var round_trips := []
	var sent := 0
	var next_send := 0
	deadline = Time.get_ticks_msec() + 10000
	while round_trips.size() < 40 and Time.get_ticks_msec() < deadline:
		if sent < 40 and Time.get_ticks_msec() >= next_send:
			var ping := PackedByteArray()
			ping.resize(8)
			ping.encode_s64(0, Time.get_ticks_usec())
			join.set_target_peer(1)
			join.set_transfer_mode(MultiplayerPeer.TRANSFER_MODE_RELIABLE)
			join.put_packet(ping)
			sent += 1
			next_send = Time.get_ticks_msec() + 20
		poll_all.call()
		while host.get_available_packet_count() > 0:
			var from := host.get_packet_peer()
			var echo := host.get_packet()
			host.set_target_peer(from)
			host.set_transfer_mode(MultiplayerPeer.TRANSFER_MODE_RELIABLE)
			host.put_packet(echo)
		while join.get_available_packet_count() > 0:
			round_trips.append((Time.get_ticks_usec() - join.get_packet().decode_s64(0)) / 1000.0)
		OS.delay_msec(1)
	host.close()
	join.close()
	if round_trips.size() < 40:
		return -1.0
	round_trips.sort()
	return round_trips[round_trips.size() / 2]


## A preset typo must not take the game offline: the peer is still wrapped (clean links), and the error says so.
func test_an_unknown_preset_still_returns_a_working_peer() -> void:
	var inner := ENetMultiplayerPeer.new()
	var conditioner := MultiplayerLinkConditioner.wrap(inner, "3G")
	assert_true(conditioner != null, "a peer to give SceneMultiplayer")
	assert_eq(conditioner.get_inner(), inner)
	assert_error_logged("unknown link preset \"3G\"; presets: clean, wifi, 4g, 3g, lossy, satellite")
	assert_error_logged("the game goes on with clean links")
	var clean := LinkConditioner.new()
	assert_eq(conditioner.get_link_conditions(0, MultiplayerLinkConditioner.DIRECTION_OUTBOUND),
		clean.get_settings(LinkConditioner.DIRECTION_OUTBOUND), "clean links")
	var lone := MultiplayerLinkConditioner.wrap(ENetMultiplayerPeer.new(), "3g", 7)
	assert_true(lone != null, "an unknown direction still wraps (outbound)")
	assert_error_logged("direction must be DIRECTION_OUTBOUND (1), DIRECTION_INBOUND (2) or DIRECTION_BOTH (3), got 7")


## wrap() applies its preset outbound by default, and both ways when told (for a side wrapped alone).
func test_wrap_applies_the_preset_outbound_unless_told_both() -> void:
	var preset := LinkConditioner.new()
	preset.apply_preset("3g")
	var three_g: Dictionary = preset.get_settings(LinkConditioner.DIRECTION_OUTBOUND)
	var clean: Dictionary = LinkConditioner.new().get_settings(LinkConditioner.DIRECTION_OUTBOUND)
	var one_way := MultiplayerLinkConditioner.wrap(ENetMultiplayerPeer.new(), "3g")
	assert_eq(one_way.get_link_conditions(0, MultiplayerLinkConditioner.DIRECTION_OUTBOUND), three_g)
	assert_eq(one_way.get_link_conditions(0, MultiplayerLinkConditioner.DIRECTION_INBOUND), clean)
	var both := MultiplayerLinkConditioner.wrap(ENetMultiplayerPeer.new(), "3g", MultiplayerLinkConditioner.DIRECTION_BOTH)
	assert_eq(both.get_link_conditions(0, MultiplayerLinkConditioner.DIRECTION_INBOUND), three_g)


## After a remote peer leaves (the other process quit), its links' counters stay in get_stats()["departed"]; an
## end-of-match report used to find get_stats()["peers"] empty.
func test_a_departed_peers_counters_stay_in_the_stats() -> void:
	_enet_session(2)
	var a := _id("a")
	var server: MultiplayerLinkConditioner = wrapped["server"]
	server.set_target_peer(a)
	server.set_transfer_mode(MultiplayerPeer.TRANSFER_MODE_RELIABLE)
	assert_ok(server.put_packet(PackedByteArray([1, 2, 3])))
	_advance(1)
	_settle()
	var sent: int = server.get_stats()["peers"][a]["outbound"]["packets_in"]
	assert_true(sent > 0)
	server.disconnect_peer(a)
	assert_true(_until(func() -> bool: return not server.get_stats()["peers"].has(a)), "a left")
	var stats: Dictionary = server.get_stats()
	assert_true(stats["departed"].has(a), "its counters stay")
	assert_eq(stats["departed"][a]["outbound"]["packets_in"], sent, "as they stood when it left")
	assert_false(stats["departed"].has(_id("b")), "b is still here")
