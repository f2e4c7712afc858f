## LocalMultiplayerNetwork and LocalMultiplayerPeer: whole SceneMultiplayer sessions in this one process, each
## peer with its own SceneMultiplayer on its own subtree, under a manual clock.
extends "res://tests/suite.gd"

const GameNode := preload("res://tests/multiplayer/game_node.gd")
const API_SIGNALS := ["peer_connected", "peer_disconnected", "connected_to_server", "connection_failed",
		"server_disconnected"]

var network: LocalMultiplayerNetwork
var tree: SceneTree
## Peer name ("server", "a", "b", ...) -> its subtree root, its SceneMultiplayer, its peer.
var roots := {}
var apis := {}
var peers := {}
## What the SceneMultiplayers said, in order: "name signal [id]".
var log: Array[String] = []


func before_each() -> void:
	tree = Engine.get_main_loop()
	network = LocalMultiplayerNetwork.new()
	network.use_manual_clock = true


func after_each() -> void:
	for name in roots:
		var path: NodePath = roots[name].get_path()
		apis[name].multiplayer_peer = null
		roots[name].free()
		tree.set_multiplayer(null, path)
	roots.clear()
	apis.clear()
	peers.clear()


## Adds a peer named `name` with its subtree /root/Test_<name>/Game and its own SceneMultiplayer.
func _join(name: String, peer: LocalMultiplayerPeer, extra: Node = null) -> SceneMultiplayer:
	var root := Node.new()
	root.name = "Test_" + name
	var game := GameNode.new()
	game.name = "Game"
	game.clock = network
	root.add_child(game)
	if extra != null:
		root.add_child(extra)
	var api := SceneMultiplayer.new()
	api.multiplayer_peer = peer
	# Before the subtree enters the tree, so its spawners and synchronizers register with this multiplayer.
	tree.set_multiplayer(api, NodePath("/root/" + root.name))
	tree.root.add_child(root)
	for signal_name in API_SIGNALS:
		if signal_name.begins_with("peer_"):
			api.connect(signal_name, func(id: int) -> void: log.append("%s %s %d" % [name, signal_name, id]))
		else:
			api.connect(signal_name, func() -> void: log.append("%s %s" % [name, signal_name]))
	roots[name] = root
	apis[name] = api
	peers[name] = peer
	return api


func _game(name: String) -> GameNode:
	return roots[name].get_node("Game")


## Polls every SceneMultiplayer `rounds` times (each poll also polls its peer, which steps the network).
func _pump(rounds: int = 4) -> void:
	for i in rounds:
		for name in apis:
			apis[name].poll()


## A server and `clients` clients named a, b, ..., all connected and knowing of each other.
func _session(clients: int = 2) -> void:
	_join("server", network.create_server())
	for i in clients:
		_join(String.chr(97 + i), network.create_client())
	_pump(6)
	for name in apis:
		assert_eq(apis[name].multiplayer_peer.get_connection_status(), MultiplayerPeer.CONNECTION_CONNECTED,
				"%s connected" % name)
		assert_eq(apis[name].get_peers().size(), clients, "%s knows every other peer" % name)


func _id(name: String) -> int:
	return peers[name].get_unique_id()


func test_ids_and_roles_follow_godot() -> void:
	var server := network.create_server()
	var client := network.create_client()
	assert_true(server is MultiplayerPeer)
	assert_eq(server.get_unique_id(), 1)
	assert_true(server.is_server_relay_supported())
	assert_between(client.get_unique_id(), 2, 0x7FFFFFFF, "a random positive 31-bit id")
	assert_eq(client.get_connection_status(), MultiplayerPeer.CONNECTION_CONNECTING)
	network.poll()
	assert_eq(client.get_connection_status(), MultiplayerPeer.CONNECTION_CONNECTED)
	assert_null(network.create_server(), "one open server per network")
	assert_error_logged("already has a server")
	var sequential := LocalMultiplayerNetwork.new()
	sequential.sequential_ids = true
	var kept := [sequential.create_server(), sequential.create_client(), sequential.create_client()]
	assert_eq([kept[1].get_unique_id(), kept[2].get_unique_id()], [2, 3])


func test_signals_of_the_peer_itself() -> void:
	var server := network.create_server()
	var client := network.create_client()
	var seen: Array[String] = []
	server.peer_connected.connect(func(id: int) -> void: seen.append("server+%d" % id))
	client.peer_connected.connect(func(id: int) -> void: seen.append("client+%d" % id))
	server.peer_disconnected.connect(func(id: int) -> void: seen.append("server-%d" % id))
	network.poll()
	assert_eq(seen, ["server+%d" % client.get_unique_id(), "client+1"])
	client.close()
	assert_eq(client.get_connection_status(), MultiplayerPeer.CONNECTION_DISCONNECTED)
	server.poll()
	assert_eq(seen[-1], "server-%d" % client.get_unique_id())
	assert_error(client.put_packet(PackedByteArray([1])), ERR_UNCONFIGURED, "a closed peer refuses packets")
	assert_error_logged("is not connected")


func test_rpcs_client_to_server_server_to_clients_and_client_to_client() -> void:
	_session(2)
	_game("a").say.rpc_id(1, "a to server")
	_game("server").announce.rpc("server to all")
	_game("b").say.rpc_id(_id("a"), "b to a, relayed")
	_pump()
	assert_eq(_game("server").values("say"), ["a to server"])
	assert_eq(_game("server").received[0][0], _id("a"), "the server sees a as the sender")
	assert_eq(_game("a").values("announce"), ["server to all"])
	assert_eq(_game("b").values("announce"), ["server to all"])
	assert_eq(_game("a").values("say"), ["b to a, relayed"])
	assert_eq(_game("a").received.filter(func(c): return c[1] == "say")[0][0], _id("b"),
			"the relayed call names b as the sender")
	assert_eq(_game("b").values("say"), [], "b did not call itself")
	assert_eq(_game("server").values("announce"), [], "call_remote: not on the caller")


func test_multiplayer_spawner_spawns_on_the_clients() -> void:
	var spawners := {}
	for name in ["server", "a", "b"]:
		var holder := Node.new()
		holder.name = "Spawned"
		var spawner := MultiplayerSpawner.new()
		spawner.name = "Spawner"
		spawner.spawn_path = NodePath("../Spawned")
		spawner.spawn_function = func(data: Variant) -> Node:
			var node := Node.new()
			node.name = "Thing%d" % data
			node.set_meta("data", data)
			return node
		var container := Node.new()
		container.name = "World"
		container.add_child(holder)
		container.add_child(spawner)
		spawners[name] = spawner
		if name == "server":
			_join(name, network.create_server(), container)
		else:
			_join(name, network.create_client(), container)
	_pump(6)
	spawners["server"].spawn(7)
	spawners["server"].spawn(8)
	_pump()
	for name in ["a", "b"]:
		var spawned: Node = roots[name].get_node("World/Spawned")
		assert_eq(spawned.get_child_count(), 2, "%s has both spawned nodes" % name)
		if spawned.get_child_count() == 2:
			assert_eq(spawned.get_child(0).get_meta("data"), 7)
			assert_eq(String(spawned.get_child(1).name), "Thing8")


func test_multiplayer_synchronizer_replicates_a_property() -> void:
	for name in ["server", "a"]:
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
		if name == "server":
			_join(name, network.create_server(), player)
		else:
			_join(name, network.create_client(), player)
	_pump(6)
	var source: Node2D = roots["server"].get_node("Player")
	var replica: Node2D = roots["a"].get_node("Player")
	source.position = Vector2(12, 34)
	for i in 10:
		network.advance(20)
		_pump(1)
	assert_eq(replica.position, Vector2(12, 34), "the client's copy follows the server's")


func test_latency_delivers_an_rpc_exactly_when_due() -> void:
	_session(1)
	assert_ok(network.set_link_conditions(_id("a"), {"latency_ms": 100}, LocalMultiplayerNetwork.DIRECTION_TO_SERVER))
	var sent_at := network.get_time_msec()
	_game("a").say.rpc_id(1, "late")
	network.advance(99.999)
	_pump()
	assert_eq(_game("server").values("say"), [], "not before 100 ms")
	assert_eq(network.get_next_delivery_msec(), sent_at + 100.0)
	network.advance(0.001)
	_pump()
	assert_eq(_game("server").values("say"), ["late"])
	assert_eq(_game("server").received[0][3], sent_at + 100.0, "arrived at exactly 100 ms")


func test_total_loss_keeps_reliable_and_loses_unreliable() -> void:
	_session(1)
	var a := _id("a")
	assert_ok(network.set_link_conditions(a, {"loss": 1.0}, LocalMultiplayerNetwork.DIRECTION_TO_CLIENT))
	for i in 5:
		_game("server").shout.rpc_id(a, i)
		_game("server").update.rpc_id(a, i)
		_game("server").say.rpc_id(a, "r%d" % i)
	for i in 50:
		network.advance(20)
		_pump(1)
	assert_eq(_game("a").values("shout"), [], "unreliable: lost")
	assert_eq(_game("a").values("update"), [], "unreliable ordered: lost")
	assert_eq(_game("a").values("say"), ["r0", "r1", "r2", "r3", "r4"], "reliable: all, in order")
	var link: Dictionary = network.get_stats()["links"][a]["to_client"]
	assert_eq(link["dropped_loss"], 10)
	assert_true(link["retransmitted"] > 0, "reliable packets were delayed by retransmissions")


func test_a_cut_client_gets_reliable_calls_after_the_link_recovers() -> void:
	_session(2)
	var a := _id("a")
	assert_ok(network.set_link_up(a, false))
	_game("server").announce.rpc("while cut")
	_game("server").shout.rpc(1)
	network.advance(5000)
	_pump()
	assert_eq(_game("a").received, [], "nothing reaches a cut client")
	assert_eq(_game("b").values("announce"), ["while cut"], "the other client is unaffected")
	assert_eq(_game("b").values("shout"), [1])
	assert_ok(network.set_link_up(a, true))
	network.advance(1)
	_pump()
	assert_eq(_game("a").values("announce"), ["while cut"], "reliable: delivered once the link is back")
	assert_eq(_game("a").values("shout"), [], "unreliable: lost while cut")


func test_unreliable_ordered_never_goes_back() -> void:
	_session(1)
	assert_ok(network.set_link_conditions(_id("a"), {"latency_ms": 30, "jitter_ms": 25, "jitter_may_reorder": true},
			LocalMultiplayerNetwork.DIRECTION_TO_SERVER))
	for i in 200:
		_game("a").update.rpc_id(1, i)
		network.advance(1)
		_pump(1)
	network.advance(500)
	_pump()
	var got: Array = _game("server").values("update")
	assert_true(got.size() > 20, "most arrive (%d)" % got.size())
	for i in range(1, got.size()):
		if got[i] <= got[i - 1]:
			fail("%d delivered after %d" % [got[i], got[i - 1]])
			break
	var dropped: int = peers["server"].get_stats()["dropped_out_of_order"]
	assert_true(dropped > 0, "the jitter reordered packets, and the late ones were dropped")
	assert_eq(got.size() + dropped, 200, "each one delivered or dropped as out of order")


func test_disconnect_peer_tells_the_others() -> void:
	_session(2)
	var a := _id("a")
	log.clear()
	peers["server"].disconnect_peer(a)
	_pump()
	assert_true(log.has("server peer_disconnected %d" % a), "server: %s" % [log])
	assert_true(log.has("a server_disconnected"), "a: %s" % [log])
	assert_true(log.has("b peer_disconnected %d" % a), "b, told by the server: %s" % [log])
	assert_eq(apis["server"].get_peers(), PackedInt32Array([_id("b")]))


func test_closing_the_server_disconnects_every_client() -> void:
	_session(2)
	log.clear()
	peers["server"].close()
	_pump()
	assert_true(log.has("a server_disconnected"), str(log))
	assert_true(log.has("b server_disconnected"), str(log))
	for name in ["a", "b"]:
		assert_eq(peers[name].get_connection_status(), MultiplayerPeer.CONNECTION_DISCONNECTED)


func test_refuse_new_connections_refuses_a_new_client() -> void:
	_session(1)
	apis["server"].refuse_new_connections = true
	assert_true(peers["server"].is_refusing_new_connections())
	log.clear()
	_join("late", network.create_client())
	_pump()
	assert_true(log.has("late connection_failed"), str(log))
	assert_eq(peers["late"].get_connection_status(), MultiplayerPeer.CONNECTION_DISCONNECTED)
	assert_eq(apis["server"].get_peers().size(), 1)
	apis["server"].refuse_new_connections = false
	_join("later", network.create_client())
	_pump()
	assert_true(log.has("later connected_to_server"), str(log))


func test_bad_arguments_are_refused_and_change_nothing() -> void:
	var server := network.create_server()
	var client := network.create_client()
	network.poll()
	assert_error(network.set_link_conditions(client.get_unique_id(), {"loss": 2.0}), ERR_INVALID_PARAMETER)
	assert_error(network.set_link_conditions(12345, {"loss": 0.5}), ERR_INVALID_PARAMETER)
	assert_error(network.set_link_conditions(client.get_unique_id(), {"loss": 0.5}, 9), ERR_INVALID_PARAMETER)
	assert_eq(network.get_link_conditions(client.get_unique_id(), LocalMultiplayerNetwork.DIRECTION_TO_SERVER)["loss"], 0)
	server.set_target_peer(99999)
	assert_error(server.put_packet(PackedByteArray([1])), ERR_INVALID_PARAMETER, "unknown target")
	server.set_target_peer(0)
	network.max_packet_size = 4
	assert_error(server.put_packet(PackedByteArray([1, 2, 3, 4, 5])), ERR_INVALID_PARAMETER, "oversize")
	server.transfer_channel = 300
	assert_eq(server.transfer_channel, 0, "an invalid channel is refused")
	network.seed = 5
	assert_eq(network.seed, 0, "the seed cannot change once peers exist")
	network.poll()
	assert_eq(client.get_available_packet_count(), 0, "nothing refused was delivered")
	var lone := LocalMultiplayerPeer.new()
	assert_error(lone.put_packet(PackedByteArray([1])), ERR_UNCONFIGURED)
	assert_eq(lone.get_connection_status(), MultiplayerPeer.CONNECTION_DISCONNECTED)
	assert_error_logged("\"loss\" is a probability")
	assert_error_logged("not a client with a link")
	assert_error_logged("channel must be between 0 and 255")
	assert_error_logged("set the seed before creating peers")


func test_the_packet_api_reports_sender_mode_and_channel() -> void:
	var server := network.create_server()
	var client := network.create_client()
	network.poll()
	client.transfer_mode = MultiplayerPeer.TRANSFER_MODE_UNRELIABLE_ORDERED
	client.transfer_channel = 3
	assert_ok(client.put_packet(PackedByteArray([9, 8])))
	client.transfer_mode = MultiplayerPeer.TRANSFER_MODE_RELIABLE
	client.transfer_channel = 0
	assert_ok(client.put_var("two"))
	network.poll()
	assert_eq(server.get_available_packet_count(), 2)
	assert_eq(server.get_packet_peer(), client.get_unique_id())
	assert_eq(server.get_packet_mode(), MultiplayerPeer.TRANSFER_MODE_UNRELIABLE_ORDERED)
	assert_eq(server.get_packet_channel(), 3)
	assert_eq(server.get_packet(), PackedByteArray([9, 8]))
	assert_eq(server.get_packet_mode(), MultiplayerPeer.TRANSFER_MODE_RELIABLE)
	assert_eq(server.get_var(), "two")
	assert_eq(server.get_packet(), PackedByteArray())
	assert_error(server.get_packet_error(), ERR_UNAVAILABLE)
	# The server targets all but one.
	var other := network.create_client()
	network.poll()
	server.set_target_peer(-client.get_unique_id())
	assert_ok(server.put_packet(PackedByteArray([1])))
	network.poll()
	assert_eq([client.get_available_packet_count(), other.get_available_packet_count()], [0, 1])


## The same scripted session, twice with one seed and once with another: the logs match only for the same seed.
func test_a_session_replays_exactly_from_its_seed() -> void:
	var first := _scripted_session(42)
	after_each()
	var second := _scripted_session(42)
	after_each()
	var third := _scripted_session(43)
	assert_true(first.size() > 40, "the session did something (%d events)" % first.size())
	assert_eq(second, first)
	assert_ne(third, first)


func _scripted_session(seed_value: int) -> Array[String]:
	network = LocalMultiplayerNetwork.new()
	network.seed = seed_value
	network.use_manual_clock = true
	log.clear()
	_join("server", network.create_server())
	_join("a", network.create_client())
	_join("b", network.create_client())
	_pump(6)
	network.set_link_conditions(0, {"latency_ms": 40, "jitter_ms": 15, "loss": 0.3, "duplicate": 0.05})
	for step in 60:
		_game("a").shout.rpc_id(1, step)
		_game("b").update.rpc_id(1, step)
		_game("server").say.rpc("s%d" % step)
		network.advance(7)
		_pump(1)
	network.advance(1000)
	_pump()
	var out: Array[String] = []
	out.append_array(log)
	for name in ["server", "a", "b"]:
		for call in _game(name).received:
			out.append("%s <- %s" % [name, call])
	return out


# Setting the seed used to rebuild the network and drop what was set before it (link settings for every client,
# refuse_new_connections): set_link_conditions(0, {"latency_ms": 77}) then seed = 5 gave the client latency 0.
func test_setting_the_seed_keeps_the_settings_made_before() -> void:
	var network := LocalMultiplayerNetwork.new()
	network.set_link_conditions(0, {"latency_ms": 77})
	network.sequential_ids = true
	network.seed = 5
	assert_eq(network.seed, 5)
	network.create_server()
	var client := network.create_client()
	network.poll()
	var id := client.get_unique_id()
	assert_eq(network.get_link_conditions(id, LocalMultiplayerNetwork.DIRECTION_TO_SERVER)["latency_ms"], 77)
	assert_eq(network.get_link_conditions(id, LocalMultiplayerNetwork.DIRECTION_TO_CLIENT)["latency_ms"], 77)
	assert_eq(id, 2, "sequential ids kept too")
