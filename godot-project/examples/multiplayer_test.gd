## A complete multiplayer test in one process: a server and a client, each with its own SceneMultiplayer,
## exchange RPCs over a LocalMultiplayerNetwork with 100 ms of latency, under a manual clock.
## Run: godot --headless --path <your project> -s res://examples/multiplayer_test.gd   (exit code 0: passed)
extends SceneTree


class Game extends Node:
	var greetings: Array[String] = []

	@rpc("any_peer", "call_remote", "reliable")
	func greet(text: String) -> void:
		greetings.append("%s from %d" % [text, multiplayer.get_remote_sender_id()])


var failures := 0


func _initialize() -> void:
	_run.call_deferred()                     # once the root window is inside the tree


func _run() -> void:
	var network := LocalMultiplayerNetwork.new()
	network.use_manual_clock = true          # time moves only when the test says so
	network.sequential_ids = true            # client ids 2, 3, ... (default: random, as Godot's)
	var server := _add_peer("Server", network.create_server())
	var client := _add_peer("Client", network.create_client())
	_pump()                                  # the client connects at the first poll
	network.set_link_conditions(0, {"latency_ms": 100}) # every client's link, both directions

	client.greet.rpc_id(1, "hello")
	network.advance(99)
	_pump()
	_check(server.greetings.is_empty(), "nothing arrives before 100 ms")
	network.advance(1)
	_pump()
	_check(server.greetings == ["hello from 2"], "the RPC arrives at 100 ms: %s" % [server.greetings])

	network.set_link_conditions(2, {"loss": 1.0}, LocalMultiplayerNetwork.DIRECTION_TO_CLIENT)
	server.greet.rpc_id(2, "still reliable")  # reliable: delayed by retransmissions, never lost
	network.advance(1000)
	_pump()
	_check(client.greetings.is_empty(), "each simulated loss costs a 200 ms retransmission timeout")
	network.advance(1000)                    # 100 ms + at most 8 timeouts of 2 x 100 ms
	_pump()
	_check(client.greetings == ["still reliable from 1"], "reliable RPCs survive loss: %s" % [client.greetings])

	print("multiplayer example: %s" % ("passed" if failures == 0 else "%d failed" % failures))
	quit(1 if failures else 0)


## Puts `peer` under /root/<name> with its own SceneMultiplayer and a Game node; returns the Game node.
func _add_peer(name: String, peer: MultiplayerPeer) -> Game:
	var api := SceneMultiplayer.new()
	api.multiplayer_peer = peer
	set_multiplayer(api, NodePath("/root/" + name)) # before the nodes enter the tree
	var subtree := Node.new()
	subtree.name = name
	var game := Game.new()
	game.name = "Game"                       # the same path under every peer's root
	subtree.add_child(game)
	root.add_child(subtree)
	return game


## Polls every peer's SceneMultiplayer (the engine also does this each frame).
func _pump() -> void:
	for i in 3:
		for name in ["Server", "Client"]:
			get_multiplayer(NodePath("/root/" + name)).poll()


func _check(condition: bool, what: String) -> void:
	if not condition:
		failures += 1
		printerr("FAILED: ", what)
