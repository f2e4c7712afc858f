## Godot's own multiplayer demo structure (host or join with ENet) with one function added: in debug builds run
## from the editor, the game's peer goes through a simulated 3g link; exported games use ENet as it is. To run
## on its own, this example hosts and joins in one scene (the second SceneMultiplayer stands for a second game
## instance) and says what happened.
## Expect: joined the server through a simulated 3g link
## Expect: the server saw peer
extends Node

const PORT := 24567

var client := SceneMultiplayer.new()


func host() -> MultiplayerPeer:
	var peer := ENetMultiplayerPeer.new()
	peer.create_server(PORT)
	return with_bad_network(peer)


func join(address: String) -> MultiplayerPeer:
	var peer := ENetMultiplayerPeer.new()
	peer.create_client(address, PORT)
	return with_bad_network(peer)


## The one line a game adds: wrap the peer before giving it to the multiplayer API.
func with_bad_network(peer: MultiplayerPeer) -> MultiplayerPeer:
	if OS.is_debug_build() and OS.has_feature("editor"):
		return MultiplayerLinkConditioner.wrap(peer, "3g")
	return peer


func _ready() -> void:
	multiplayer.peer_connected.connect(func(id: int) -> void: print("the server saw peer ", id))
	multiplayer.multiplayer_peer = host()
	client.connected_to_server.connect(func() -> void: print("joined the server through a simulated 3g link"))
	client.multiplayer_peer = join("127.0.0.1")


func _process(_delta: float) -> void:
	client.poll()                                    # the scene's own multiplayer is polled by the tree
