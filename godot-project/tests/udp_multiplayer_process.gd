## The server side of test_udp_multiplayer_peer.gd's two-process test, run as its own Godot process:
## godot --headless -s res://tests/udp_multiplayer_process.gd -- PORT_FILE udp|enet
## Serves SceneMultiplayer over UdpMultiplayerPeer (or ENetMultiplayerPeer) on a free loopback port, writes the port to PORT_FILE, answers
## every "say" RPC with "echo: " and the text, and quits with 0 once its first client has left (1 if none came
## and left within 30 s).
extends SceneTree

const GameNode := preload("res://tests/multiplayer/game_node.gd")

var peer: MultiplayerPeer
var api := SceneMultiplayer.new()
var game: GameNode
var started := Time.get_ticks_msec()
var joined := false


func _initialize() -> void:
	var port_file: String = OS.get_cmdline_user_args()[0]
	var port := 0
	if OS.get_cmdline_user_args()[1] == "enet":
		peer = ENetMultiplayerPeer.new()
		peer.set_bind_ip("127.0.0.1")
		for attempt in 20:
			port = 20000 + randi() % 30000
			if peer.create_server(port, 4) == OK:
				break
	else:
		peer = UdpMultiplayerPeer.new()
		if peer.create_server(0, 4, "127.0.0.1") == OK:
			port = peer.get_local_port()
	if port == 0 or peer.get_connection_status() != MultiplayerPeer.CONNECTION_CONNECTED:
		quit(1)
		return
	# The same path as the test's client's node: /root/Test_a/Game.
	var root_node := Node.new()
	root_node.name = "Test_a"
	game = GameNode.new()
	game.name = "Game"
	root_node.add_child(game)
	api.multiplayer_peer = peer
	set_multiplayer(api, NodePath("/root/Test_a"))
	root.add_child(root_node)
	api.peer_connected.connect(func(_id: int) -> void: joined = true)
	api.peer_disconnected.connect(func(_id: int) -> void: quit(0))
	var file := FileAccess.open(port_file, FileAccess.WRITE)
	file.store_string(str(port))
	file.close()


func _process(_delta: float) -> bool:
	api.poll()
	for call in game.received:
		if call[1] == "say":
			game.say.rpc_id(call[0], "echo: " + str(call[2]))
	game.received.clear()
	if Time.get_ticks_msec() - started > 30000:
		quit(1)
		return true
	return false
