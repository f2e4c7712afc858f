## A complete multiplayer test in one process: a server and a client, each with its own SceneMultiplayer,
## exchange an RPC over a LocalMultiplayerNetwork with 100 ms of latency, under a manual clock.
## Run: godot --headless --path <your project> -s res://examples/multiplayer_test.gd   (exit code 0: passed)
## Expect: multiplayer example: passed
extends SceneTree


class Game extends Node:
	var greetings: Array[String] = []

	@rpc("any_peer", "call_remote", "reliable")
	func greet(text: String) -> void:
		greetings.append(text)


var network := LocalMultiplayerNetwork.new()


func _initialize() -> void:
	network.use_manual_clock = true                  # time moves only when the test says so
	_run.call_deferred()                             # once the root window is inside the tree


func _run() -> void:
	var server := _add_peer("Server", network.create_server())
	var client := _add_peer("Client", network.create_client())
	_pump(0)                                         # the client connects at the first poll
	network.set_link_conditions(0, {"latency_ms": 100}) # every client's link, both directions
	client.greet.rpc_id(1, "hello")
	_pump(99)
	var early := server.greetings.is_empty()         # nothing arrives before 100 ms
	_pump(1)
	var passed := early and server.greetings == ["hello"]
	print("multiplayer example: %s" % ("passed" if passed else "failed"))
	quit(0 if passed else 1)


func _add_peer(name: String, peer: MultiplayerPeer) -> Game:
	var api := SceneMultiplayer.new()
	api.multiplayer_peer = peer
	set_multiplayer(api, NodePath("/root/" + name))  # before the nodes enter the tree
	var game := Game.new()
	game.name = "Game"                               # the same path under every peer's root
	var subtree := Node.new()
	subtree.name = name
	subtree.add_child(game)
	root.add_child(subtree)
	return game


func _pump(msec: float) -> void:
	network.advance(msec)
	for name in ["Server", "Client"]:
		get_multiplayer(NodePath("/root/" + name)).poll()
