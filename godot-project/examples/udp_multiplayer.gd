## Godot's host/join structure with UdpMultiplayerPeer in place of ENetMultiplayerPeer: RPCs, spawners and
## synchronizers work unchanged. To run on its own, this example hosts and joins in one scene (the second
## SceneMultiplayer stands for a second game instance) and says what happened.
## Expect: the server saw peer
## Expect: joined the server as peer
extends Node

const PORT := 24568

var client := SceneMultiplayer.new()


func host() -> MultiplayerPeer:
	var peer := UdpMultiplayerPeer.new()
	peer.create_server(PORT, 32)                      # port, max_clients (as ENetMultiplayerPeer)
	return peer


func join(address: String) -> MultiplayerPeer:
	var peer := UdpMultiplayerPeer.new()
	peer.create_client(address, PORT)
	return peer


func _ready() -> void:
	multiplayer.peer_connected.connect(func(id: int) -> void: print("the server saw peer ", id))
	multiplayer.multiplayer_peer = host()
	client.connected_to_server.connect(func() -> void: print("joined the server as peer ", client.get_unique_id()))
	client.multiplayer_peer = join("127.0.0.1")


func _process(_delta: float) -> void:
	client.poll()                                    # the scene's own multiplayer is polled by the tree
