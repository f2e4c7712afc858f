## A ReliableServer taking three clients on one port, and echoing what each sends on that client's own
## connection. In a game the server and each client are separate processes (or machines): the server part runs
## on the server, the client part on each player's machine with the server's address.
## Expect: server took a client (1 connected)
## Expect: server took a client (3 connected)
## Expect: client 0 got back: hello from client 0
## Expect: client 2 got back: hello from client 2
extends Node

var server := ReliableServer.new()
var connections: Array[ReliablePacketPeer] = []   # one per client, on the server
var clients: Array[ReliablePacketPeer] = []


func _ready() -> void:
	server.listen(4250, "127.0.0.1")                  # every address: server.listen(4250)
	for i in 3:
		var udp := UdpPacketPeer.new()
		udp.connect_to_host("127.0.0.1", 4250)         # the server's address
		var client := ReliablePacketPeer.new()
		client.inner = udp
		client.put_var("hello from client %d" % i)     # queued until the handshake completes
		clients.append(client)


func _process(_delta: float) -> void:
	server.poll()                                     # handshakes, refusals, every connection's timers
	while server.is_connection_available():
		connections.append(server.take_connection())
		print("server took a client (%d connected)" % connections.size())
	for connection in connections:
		connection.poll()
		while connection.get_available_packet_count() > 0:
			connection.put_var(connection.get_var())  # echo, to that client only
	for i in clients.size():
		clients[i].poll()
		while clients[i].get_available_packet_count() > 0:
			print("client %d got back: %s" % [i, clients[i].get_var()])
