## UdpMultiplayerPeer against ENetMultiplayerPeer: the same SceneMultiplayer checks run once over each, on
## loopback in real time, with the same expectations. Each peer has its own SceneMultiplayer on its own subtree.
extends "res://tests/suite.gd"

const GameNode := preload("res://tests/multiplayer/game_node.gd")
const DEADLINE_MS := 5000

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


func _join(name: String, peer: MultiplayerPeer) -> void:
	var root := Node.new()
	root.name = "Test_" + name
	var game := GameNode.new()
	game.name = "Game"
	root.add_child(game)
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


## Polls every SceneMultiplayer until `done` or the deadline; true if done.
func _until(done: Callable) -> bool:
	var deadline := Time.get_ticks_msec() + DEADLINE_MS
	while Time.get_ticks_msec() < deadline:
		for name in apis:
			apis[name].poll()
		if done.call():
			return true
		OS.delay_msec(1)
	return false


## A server and clients a and b over `transport`, all connected and knowing of each other.
func _session(transport: String) -> void:
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
	_join("server", server)
	for name in ["a", "b"]:
		var client := _make(transport)
		assert_ok(client.create_client("127.0.0.1", port))
		_join(name, client)
	assert_true(_until(func() -> bool:
		return apis.values().all(func(api): return api.get_peers().size() == 2)), "%s: everyone connected" % transport)


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
	assert_true(_until(func() -> bool: return log.has("b server_disconnected")),
			"%s: closing the server disconnects b: %s" % [transport, log])


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
