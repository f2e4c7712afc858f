## UdpMultiplayerPeer against ENetMultiplayerPeer: the same SceneMultiplayer checks run once over each, on
## loopback in real time, with the same expectations. Each peer has its own SceneMultiplayer on its own subtree;
## one check runs the server in a second Godot process.
extends "res://tests/suite.gd"

const GameNode := preload("res://tests/multiplayer/game_node.gd")
const DEADLINE_MS := 5000
const SERVER_PROCESS := "res://tests/udp_multiplayer_process.gd"

var tree: SceneTree
var roots := {}
var apis := {}
var peers := {}
var log: Array[String] = []


func before_each() -> void:
	tree = Engine.get_main_loop()
	log.clear()


func after_each() -> void:
	for name in roots:
		var path: NodePath = roots[name].get_path()
		apis[name].multiplayer_peer.close()
		apis[name].multiplayer_peer = null
		roots[name].free()
		tree.set_multiplayer(null, path)
	roots.clear()
	apis.clear()
	peers.clear()


func _make(transport: String) -> MultiplayerPeer:
	return ENetMultiplayerPeer.new() if transport == "enet" else UdpMultiplayerPeer.new()


func _join(name: String, peer: MultiplayerPeer, extra: Node = null) -> void:
	var root := Node.new()
	root.name = "Test_" + name
	var game := GameNode.new()
	game.name = "Game"
	root.add_child(game)
	if extra != null:
		root.add_child(extra)
	var api := SceneMultiplayer.new()
	api.multiplayer_peer = peer
	tree.set_multiplayer(api, NodePath("/root/" + root.name))
	tree.root.add_child(root)
	api.peer_connected.connect(func(id: int) -> void: log.append("%s + %d" % [name, id]))
	api.peer_disconnected.connect(func(id: int) -> void: log.append("%s - %d" % [name, id]))
	api.server_disconnected.connect(func() -> void: log.append("%s server_disconnected" % name))
	roots[name] = root
	apis[name] = api
	peers[name] = peer


func _game(name: String) -> GameNode:
	return roots[name].get_node("Game")


func _id(name: String) -> int:
	return peers[name].get_unique_id()


## Polls every SceneMultiplayer until `done` or `ms` have passed; true if done.
func _until(done: Callable, ms: int = DEADLINE_MS) -> bool:
	var deadline := Time.get_ticks_msec() + ms
	while Time.get_ticks_msec() < deadline:
		for name in apis:
			apis[name].poll()
		if done.call():
			return true
		OS.delay_msec(1)
	return false


## A server on a free loopback port; returns the port.
func _serve(transport: String, extra: Callable = Callable()) -> int:
	var server := _make(transport)
	var port := 0
	for attempt in 20:
		port = 20000 + randi() % 30000
		# ENet's third argument is its channel count; it takes its bind address from set_bind_ip().
		if server is ENetMultiplayerPeer:
			server.set_bind_ip("127.0.0.1")
			if server.create_server(port, 8) == OK:
				break
		elif server.create_server(port, 8, "127.0.0.1") == OK:
			break
	_join("server", server, extra.call() if extra.is_valid() else null)
	return port


func _client(transport: String, name: String, port: int, extra: Callable = Callable()) -> void:
	var client := _make(transport)
	assert_ok(client.create_client("127.0.0.1", port))
	_join(name, client, extra.call() if extra.is_valid() else null)


## Whether every SceneMultiplayer knows `count` other peers.
func _all_know(count: int) -> Callable:
	return func() -> bool: return apis.values().all(func(api): return api.get_peers().size() == count)


## A server and clients a and b over `transport`, all connected and knowing of each other.
func _session(transport: String, extra: Callable = Callable()) -> int:
	var port := _serve(transport, extra)
	for name in ["a", "b"]:
		_client(transport, name, port, extra)
	assert_true(_until(_all_know(2)), "%s: everyone connected" % transport)
	return port


## A World with a spawner (its spawn function names nodes after their data) and a Player with a synchronizer of
## its position.
func _world() -> Node:
	var world := Node.new()
	world.name = "World"
	var holder := Node.new()
	holder.name = "Spawned"
	world.add_child(holder)
	var spawner := MultiplayerSpawner.new()
	spawner.name = "Spawner"
	spawner.spawn_path = NodePath("../Spawned")
	spawner.spawn_function = func(data: Variant) -> Node:
		var node := Node.new()
		node.name = "Thing%d" % data
		return node
	world.add_child(spawner)
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
	world.add_child(player)
	return world


func _spawned(name: String) -> Array:
	return roots[name].get_node("World/Spawned").get_children().map(func(n): return String(n.name))


func _rpcs_in_every_mode_and_channel(transport: String) -> void:
	_session(transport)
	assert_eq(_id("server"), 1, transport)
	assert_between(_id("a"), 2, 0x7FFFFFFF, "%s: a random positive id" % transport)
	assert_true(peers["server"].is_server_relay_supported(), transport)
	_game("a").say.rpc_id(1, "a to server")
	_game("server").announce.rpc("server to all on channel 2")
	_game("b").say.rpc_id(_id("a"), "b to a, relayed")
	for i in 10:
		_game("a").update.rpc_id(1, i)
		_game("a").shout.rpc_id(1, i)
	assert_true(_until(func() -> bool:
		return _game("server").values("say").size() == 1 and _game("a").values("say").size() == 1 \
				and _game("b").values("announce").size() == 1 and _game("server").values("update").has(9)),
			"%s: every call arrived" % transport)
	assert_eq(_game("server").received[0][0], _id("a"), "%s: the server sees a as the sender" % transport)
	assert_eq(_game("a").values("announce"), ["server to all on channel 2"], transport)
	assert_eq(_game("a").received.filter(func(c): return c[1] == "say")[0][0], _id("b"),
			"%s: the relayed call names b as the sender" % transport)
	var updates: Array = _game("server").values("update")
	var sorted := updates.duplicate()
	sorted.sort()
	assert_eq(updates, sorted, "%s: unreliable-ordered never goes back" % transport)
	assert_eq(_game("server").values("announce"), [], "%s: call_remote: not on the caller" % transport)


func _disconnect_and_close(transport: String) -> void:
	_session(transport)
	var a := _id("a")
	log.clear()
	peers["server"].disconnect_peer(a)
	var gone := func() -> bool:
		return log.has("server - %d" % a) and log.has("b - %d" % a) \
				and peers["a"].get_connection_status() == MultiplayerPeer.CONNECTION_DISCONNECTED
	assert_true(_until(gone), "%s: the server, b and a itself learn that a left: %s" % [transport, log])
	peers["server"].close()
	var done := func() -> bool:
		return log.has("b server_disconnected")
	assert_true(_until(done), "%s: closing the server disconnects b: %s" % [transport, log])


## An unreliable packet larger than a datagram is cut into fragments and put back together (both transports;
## on a clean link every one arrives whole).
func _large_unreliable(transport: String) -> void:
	_session(transport)
	var data := PackedByteArray()
	data.resize(5000)
	for i in 3:
		_game("a").blob.rpc_id(1, data)
	var arrived := func() -> bool: return _game("server").values("blob").size() == 3
	assert_true(_until(arrived), "%s: three 5000-byte unreliable calls arrived" % transport)
	assert_eq(_game("server").values("blob"), [5000, 5000, 5000], transport)


func test_a_large_unreliable_call_arrives_whole_over_enet() -> void:
	_large_unreliable("enet")


func test_a_large_unreliable_call_arrives_whole_over_udp() -> void:
	_large_unreliable("udp")


func _call_local_and_authority(transport: String) -> void:
	_session(transport)
	_game("server").everyone.rpc("from the authority")
	_game("a").everyone.rpc("from a, not the authority")
	_game("a").say.rpc_id(1, "after")
	var arrived := func() -> bool:
		return _game("server").values("say") == ["after"] and _game("b").values("everyone").size() == 1
	assert_true(_until(arrived), "%s: the calls arrived" % transport)
	assert_eq(_game("server").values("everyone"), ["from the authority"],
			"%s: call_local ran on the server too, and a's call was refused" % transport)
	assert_eq(_game("b").values("everyone"), ["from the authority"], transport)
	assert_eq(_game("a").received.filter(func(c): return c[1] == "everyone" and c[0] == 1).size(), 1, transport)


func _has_world(name: String) -> Callable:
	return func() -> bool:
		return _spawned(name) == ["Thing7", "Thing8"] \
				and roots[name].get_node("World/Player").position == Vector2(12, 34)


func _spawner_synchronizer_late_join_and_reconnect(transport: String) -> void:
	var port := _serve(transport, _world)
	_client(transport, "a", port, _world)
	assert_true(_until(_all_know(1)), "%s: a connected" % transport)
	var spawner: MultiplayerSpawner = roots["server"].get_node("World/Spawner")
	spawner.spawn(7)
	spawner.spawn(8)
	var source: Node2D = roots["server"].get_node("World/Player")
	source.position = Vector2(12, 34)
	assert_true(_until(_has_world("a")), "%s: a has both spawned nodes and the player's position" % transport)
	_client(transport, "b", port, _world)
	assert_true(_until(_has_world("b")), "%s: b, joining late, gets what was spawned before" % transport)
	var old_a := _id("a")
	log.clear()
	peers["a"].close()
	var left := func() -> bool: return log.has("server - %d" % old_a)
	assert_true(_until(left), "%s: a left" % transport)
	var path: NodePath = roots["a"].get_path()
	apis["a"].multiplayer_peer = null
	roots["a"].free()
	tree.set_multiplayer(null, path)
	roots.erase("a")
	apis.erase("a")
	peers.erase("a")
	_client(transport, "a", port, _world)
	var back := func() -> bool: return log.has("server + %d" % _id("a")) and _has_world("a").call()
	assert_true(_until(back), "%s: a reconnects as a new peer and gets the world again: %s" % [transport, log])
	assert_ne(_id("a"), old_a, "%s: with a new id" % transport)
	_game("a").say.rpc_id(1, "back")
	var said := func() -> bool: return _game("server").values("say") == ["back"]
	assert_true(_until(said), transport)


func _a_client_with_no_server_fails_to_connect(transport: String) -> void:
	var peer := _make(transport)
	var port := 20000 + randi() % 30000
	if peer is UdpMultiplayerPeer:
		peer.timeout_ms = 500
		assert_ok(peer.create_client("127.0.0.1", port))
	else:
		assert_ok(peer.create_client("127.0.0.1", port))
		# ENet's timeout is set on the server's ENetPacketPeer: give up after 500 ms to 1 s of silence.
		peer.get_peer(1).set_timeout(32, 500, 1000)
	var failed := [false]
	_join("a", peer)
	apis["a"].connection_failed.connect(func() -> void: failed[0] = true)
	var deadline := Time.get_ticks_msec() + 8000
	while Time.get_ticks_msec() < deadline and not failed[0]:
		apis["a"].poll()
		OS.delay_msec(5)
	assert_true(failed[0], "%s: connection_failed" % transport)
	assert_eq(peer.get_connection_status(), MultiplayerPeer.CONNECTION_DISCONNECTED, transport)


func _refuse_new_connections(transport: String) -> void:
	var port := _serve(transport)
	peers["server"].refuse_new_connections = true
	_client(transport, "a", port)
	var failed := [false]
	apis["a"].connection_failed.connect(func() -> void: failed[0] = true)
	_until(func() -> bool: return failed[0] or apis["server"].get_peers().size() > 0, 1500)
	assert_eq(apis["server"].get_peers(), PackedInt32Array(), "%s: nobody joined" % transport)
	peers["server"].refuse_new_connections = false
	_client(transport, "b", port)
	assert_true(_until(func() -> bool: return apis["server"].get_peers().size() == 1), "%s: b joined" % transport)


func test_call_local_and_authority_over_enet() -> void:
	_call_local_and_authority("enet")


func test_call_local_and_authority_over_udp() -> void:
	_call_local_and_authority("udp")


func test_spawner_synchronizer_late_join_and_reconnect_over_enet() -> void:
	_spawner_synchronizer_late_join_and_reconnect("enet")


func test_spawner_synchronizer_late_join_and_reconnect_over_udp() -> void:
	_spawner_synchronizer_late_join_and_reconnect("udp")


func test_a_client_with_no_server_fails_to_connect_over_enet() -> void:
	_a_client_with_no_server_fails_to_connect("enet")


func test_a_client_with_no_server_fails_to_connect_over_udp() -> void:
	_a_client_with_no_server_fails_to_connect("udp")


func test_refuse_new_connections_over_enet() -> void:
	_refuse_new_connections("enet")


func test_refuse_new_connections_over_udp() -> void:
	_refuse_new_connections("udp")


func test_rpcs_in_every_mode_and_channel_over_enet() -> void:
	_rpcs_in_every_mode_and_channel("enet")


func test_rpcs_in_every_mode_and_channel_over_udp() -> void:
	_rpcs_in_every_mode_and_channel("udp")


func test_disconnect_peer_and_closing_the_server_over_enet() -> void:
	_disconnect_and_close("enet")


func test_disconnect_peer_and_closing_the_server_over_udp() -> void:
	_disconnect_and_close("udp")


## A 300 ms stall of the server's main thread (a level loading) loses nothing and disconnects nobody: the
## receive thread keeps reading.
func test_a_stall_loses_nothing_and_disconnects_nobody() -> void:
	_session("udp")
	for i in 50:
		_game("a").say.rpc_id(1, "m%d" % i)
	apis["a"].poll()
	OS.delay_msec(300)
	assert_true(_until(func() -> bool: return _game("server").values("say").size() == 50), "all 50 arrived")
	assert_eq(_game("server").values("say")[49], "m49")
	assert_eq(apis["server"].get_peers().size(), 2, "nobody was disconnected")


func test_bad_arguments_are_refused_with_a_clear_error() -> void:
	var peer := UdpMultiplayerPeer.new()
	assert_error(peer.put_packet(PackedByteArray([1])), ERR_UNCONFIGURED, "not connected")
	assert_error_logged("not connected")
	assert_error(peer.create_server(70000), ERR_INVALID_PARAMETER, "a bad port")
	assert_error_logged("between 0 and 65535")
	assert_error(peer.create_server(0, 0), ERR_INVALID_PARAMETER, "no clients")
	assert_error_logged("max_clients")
	peer.transfer_channel = 255
	assert_error_logged("between 0 and 254")
	assert_eq(peer.transfer_channel, 0, "kept")
	assert_eq(peer.get_peer_stats(5), {}, "no such peer")


## Through a UdpLinkProxy with 20% loss each way: every reliable call arrives once and in order on its
## channel, unreliable ones arrive at about the link's rate, and the peer's stats show the repair.
func test_through_a_lossy_udp_link_proxy() -> void:
	var proxy := UdpLinkProxy.new()
	var server := UdpMultiplayerPeer.new()
	assert_ok(server.create_server(0, 4, "127.0.0.1"))
	_join("server", server)
	assert_ok(proxy.start(0, "127.0.0.1", server.get_local_port()))
	assert_ok(proxy.set_link_conditions("", {"latency_ms": 5, "loss": 0.2}))
	_client("udp", "a", proxy.get_listen_port())
	assert_true(_until(_all_know(1)), "connected through the proxy")
	for i in 100:
		_game("a").say.rpc_id(1, "m%d" % i)
		_game("a").shout.rpc_id(1, i)
		if i % 10 == 0:
			_until(func() -> bool: return false, 5)
	var all := func() -> bool: return _game("server").values("say").size() == 100
	assert_true(_until(all), "every reliable call arrived")
	var expected: Array = []
	for i in 100:
		expected.append("m%d" % i)
	assert_eq(_game("server").values("say"), expected, "once each, in order")
	var shouts: int = _game("server").values("shout").size()
	assert_between(shouts, 65, 95, "unreliable calls arrive at about the link's 80%")
	var stats: Dictionary = server.get_peer_stats(_id("a"))
	assert_true(stats.get("datagrams_received", 0) > 0, "the server's view of a: %s" % stats)
	var client_stats: Dictionary = peers["a"].get_peer_stats(1)
	assert_true(client_stats["retransmissions"] > 0, "the client repaired losses: %s" % client_stats)
	assert_true(client_stats["round_trip_ms"] >= 10.0, "the round trip includes the proxy's 2 x 5 ms")
	proxy.stop()


## Wrapped by MultiplayerLinkConditioner (as README's host/join pattern wraps ENet): RPCs in every mode go
## through the simulated link, and the wrapper's links list the remote peer.
func test_wrapped_by_a_multiplayer_link_conditioner() -> void:
	var server := UdpMultiplayerPeer.new()
	assert_ok(server.create_server(0, 4, "127.0.0.1"))
	var wrapped := MultiplayerLinkConditioner.wrap(server, "")
	assert_ok(wrapped.set_link_conditions(0, {"latency_ms": 40}))
	_join("server", wrapped)
	_client("udp", "a", server.get_local_port())
	assert_true(_until(_all_know(1)), "connected through the wrapper")
	var started := Time.get_ticks_msec()
	_game("server").say.rpc_id(_id("a"), "delayed")
	_game("server").update.rpc_id(_id("a"), 1)
	var arrived := func() -> bool: return _game("a").values("say") == ["delayed"]
	assert_true(_until(arrived), "the call arrived")
	assert_true(Time.get_ticks_msec() - started >= 40, "after the simulated 40 ms")
	assert_true(wrapped.get_stats()["peers"].has(_id("a")), "the wrapper has a link for a: %s" % wrapped.get_stats())


## The server in a second Godot process: a client here joins it over loopback and calls an RPC the server
## answers (the server process echoes every "say" back to its sender).
func _a_server_in_another_process(transport: String) -> void:
	var port_file := OS.get_user_data_dir().path_join("udp_mp_port_%d.txt" % randi())
	var godot := OS.get_environment("PEERKIT_GODOT")
	if godot.is_empty():
		godot = OS.get_executable_path()
	var args := ["--headless", "--path", ProjectSettings.globalize_path("res://"), "-s", SERVER_PROCESS, "--", port_file, transport]
	var pid := OS.create_process(godot, args)
	assert_true(pid > 0, "the server process started")
	var deadline := Time.get_ticks_msec() + 30000
	while not FileAccess.file_exists(port_file) and Time.get_ticks_msec() < deadline:
		OS.delay_msec(20)
	var port := int(FileAccess.get_file_as_string(port_file))
	DirAccess.remove_absolute(port_file)
	assert_true(port > 0, "the server wrote its port")
	_client(transport, "a", port)
	assert_true(_until(_all_know(1)), "%s: joined the other process's server" % transport)
	_game("a").say.rpc_id(1, "hello, other process")
	var echoed := func() -> bool: return _game("a").values("say") == ["echo: hello, other process"]
	assert_true(_until(echoed), "the other process answered: %s" % [_game("a").received])
	peers["a"].close()
	deadline = Time.get_ticks_msec() + 10000
	while OS.is_process_running(pid) and Time.get_ticks_msec() < deadline:
		OS.delay_msec(20)
	assert_false(OS.is_process_running(pid), "the server process quit once its client left")
	assert_eq(OS.get_process_exit_code(pid), 0, "and reported success")


func test_a_server_in_another_process_over_enet() -> void:
	_a_server_in_another_process("enet")


func test_a_server_in_another_process_over_udp() -> void:
	_a_server_in_another_process("udp")
