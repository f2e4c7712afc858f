extends Node
## The small game scripts/editor-test.sh runs from the editor: two links carrying traffic every frame, a
## LinkConditioner over a LocalPacketPeer pair (30 ms each way) and a MultiplayerLinkConditioner around the
## client of a LocalMultiplayerNetwork (it starts with the project's startup preset); the network is listed too.

var ends: Array
var link: LinkConditioner
var network: LocalMultiplayerNetwork
var server: LocalMultiplayerPeer
var client: LocalMultiplayerPeer
var wrapper: MultiplayerLinkConditioner


func _ready() -> void:
	ends = LocalPacketPeer.create_pair()
	link = LinkConditioner.new()
	link.inner = ends[0]
	link.configure({"latency_ms": 30})
	network = LocalMultiplayerNetwork.new()
	server = network.create_server()
	client = network.create_client()


func _process(_delta: float) -> void:
	var payload := PackedByteArray()
	payload.resize(200)
	link.put_packet(payload)
	link.poll()
	while ends[1].get_available_packet_count() > 0:
		ends[1].get_packet()
	network.poll()
	if wrapper == null and client.get_connection_status() == MultiplayerPeer.CONNECTION_CONNECTED:
		wrapper = MultiplayerLinkConditioner.wrap(client)
	if wrapper != null:
		wrapper.set_target_peer(1)
		wrapper.put_packet(payload)
		wrapper.poll()
		while server.get_available_packet_count() > 0:
			server.get_packet()
