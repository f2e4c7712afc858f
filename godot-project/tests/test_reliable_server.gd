## ReliableServer on loopback: many ReliablePacketPeer clients on one port, refusals a client is told, a stall
## that loses nothing, recovery from a transport that could not send yet, and a server in another Godot process
## reached through a lossy UdpLinkProxy. Everything runs in real time, so checks wait (up to a deadline) for what
## must happen.
extends "res://tests/suite.gd"

const DEADLINE_MS := 10000
const SERVER_PROCESS := "res://tests/reliable_server_process.gd"

var server: ReliableServer
var clients: Array[ReliablePacketPeer] = []
var taken: Array[ReliablePacketPeer] = []


func before_each() -> void:
	server = ReliableServer.new()


func after_each() -> void:
	for peer in clients + taken:
		peer.close()
	clients.clear()
	taken.clear()
	server.stop()


## A client: a ReliablePacketPeer over a UdpPacketPeer connected to `port` on loopback.
func _client(port: int) -> ReliablePacketPeer:
	var udp := UdpPacketPeer.new()
	assert_ok(udp.bind(0, "127.0.0.1"))
	assert_ok(udp.connect_to_host("127.0.0.1", port))
	var peer := ReliablePacketPeer.new()
	peer.inner = udp
	clients.append(peer)
	return peer


## Polls the server and every peer, taking new connections, until `done` or the deadline; true if done.
func _until(done: Callable) -> bool:
	var deadline := Time.get_ticks_msec() + DEADLINE_MS
	while Time.get_ticks_msec() < deadline:
		_poll_all()
		if done.call():
			return true
		OS.delay_msec(1)
	return false


func _poll_all() -> void:
	server.poll()
	while server.is_connection_available():
		taken.append(server.take_connection())
	for peer in clients + taken:
		peer.poll()


## Twenty clients on one port, each sending its own messages: the server gets every one on that client's own
## connection, echoes it there, and every client gets back exactly its own.
func test_twenty_clients_on_one_port_each_talk_to_their_own_connection() -> void:
	assert_ok(server.listen(0, "127.0.0.1"))
	var port := server.get_local_port()
	assert_true(port > 0)
	for i in 20:
		var peer := _client(port)
		for m in 5:
			assert_ok(peer.put_var("client %d message %d" % [i, m]))
	var echoed := {}
	var all_echoed := func() -> bool:
		for peer in taken:
			while peer.get_available_packet_count() > 0:
				peer.put_var(peer.get_var())
		for i in clients.size():
			while clients[i].get_available_packet_count() > 0:
				echoed[i] = echoed.get(i, []) + [clients[i].get_var()]
		return echoed.size() == 20 and echoed.values().all(func(got): return got.size() == 5)
	assert_true(_until(all_echoed), "every client got its echoes")
	assert_eq(taken.size(), 20, "twenty connections taken")
	for i in 20:
		var expected := []
		for m in 5:
			expected.append("client %d message %d" % [i, m])
		assert_eq(echoed.get(i, []), expected, "client %d got its own messages, in order" % i)
		assert_eq(clients[i].get_status(), ReliablePacketPeer.STATUS_CONNECTED)
	var stats := server.get_stats()
	assert_eq(stats["accepted"], 20)
	assert_eq(stats["connections"], 20)
	assert_eq(stats["pending_connections"], 0)


## Beyond max_connections a client fails at connect time, told why, long before the handshake's timeout.
func test_a_client_beyond_max_connections_fails_at_once_saying_why() -> void:
	server.max_connections = 2
	assert_ok(server.listen(0, "127.0.0.1"))
	var first := _client(server.get_local_port())
	var second := _client(server.get_local_port())
	assert_true(_until(func(): return taken.size() == 2), "two accepted")
	var third := _client(server.get_local_port())
	var failures := []
	third.connection_failed.connect(func(why): failures.append(why))
	var started := Time.get_ticks_msec()
	assert_true(_until(func(): return third.get_status() == ReliablePacketPeer.STATUS_ERROR), "refused")
	assert_true(Time.get_ticks_msec() - started < 2000, "at connect time, not after timeout_ms (10 s)")
	assert_true(third.get_error_message().contains("max_connections"), third.get_error_message())
	assert_error_logged("the server refused the connection")
	await Engine.get_main_loop().process_frame
	assert_eq(failures.size(), 1, "connection_failed emitted once")
	assert_eq(server.get_stats()["refused_full"], 1)
	assert_eq(first.get_status(), ReliablePacketPeer.STATUS_CONNECTED, "the others go on")
	assert_eq(second.get_status(), ReliablePacketPeer.STATUS_CONNECTED)


## Connections nobody takes count against max_pending_connections: a client beyond it keeps trying, and fails
## naming the reason when its handshake times out; a server told to refuse new connections says so at once.
func test_pending_and_refused_new_connections_are_told_why() -> void:
	server.max_pending_connections = 1
	assert_ok(server.listen(0, "127.0.0.1"))
	var waiting := _client(server.get_local_port())
	for i in 20:
		server.poll()
		waiting.poll()
		OS.delay_msec(1)
	var extra := _client(server.get_local_port())
	extra.timeout_ms = 500
	var deadline := Time.get_ticks_msec() + DEADLINE_MS
	while extra.get_status() != ReliablePacketPeer.STATUS_ERROR and Time.get_ticks_msec() < deadline:
		server.poll()  # never taking
		waiting.poll()
		extra.poll()
		OS.delay_msec(1)
	assert_true(server.is_connection_available())
	assert_true(extra.get_error_message().contains("take_connection()"), extra.get_error_message())
	server.refuse_new_connections = true
	var late := _client(server.get_local_port())
	assert_true(_until(func(): return late.get_status() == ReliablePacketPeer.STATUS_ERROR))
	assert_true(late.get_error_message().contains("does not accept new connections"), late.get_error_message())
	assert_eq(waiting.get_status(), ReliablePacketPeer.STATUS_CONNECTED, "the connection made before goes on")
	var stats := server.get_stats()
	assert_true(stats["refused_pending"] >= 1)
	assert_eq(stats["refused_not_accepting"], 1)


## A 300 ms stall of the main thread (nobody polls anything) loses nothing for any client: the server's receive
## thread took every datagram the clients sent off the socket, and no connection ended.
func test_a_300_ms_stall_loses_nothing_for_any_client() -> void:
	assert_ok(server.listen(0, "127.0.0.1"))
	for i in 10:
		_client(server.get_local_port())
	assert_true(_until(func(): return taken.size() == 10), "ten accepted")
	var payload := PackedByteArray()
	payload.resize(1000)
	for peer in clients:
		for m in 40:
			assert_ok(peer.put_packet(payload))
		peer.poll()  # each sends what its window allows, into the server's socket
	OS.delay_msec(300)
	var received := {}
	var everything := func() -> bool:
		for i in taken.size():
			while taken[i].get_available_packet_count() > 0:
				taken[i].get_packet()
				received[i] = received.get(i, 0) + 1
		return received.size() == 10 and received.values().all(func(n): return n == 40)
	assert_true(_until(everything), "every message of every client arrived")
	for peer in clients + taken:
		assert_eq(peer.get_status(), ReliablePacketPeer.STATUS_CONNECTED, "nobody disconnected")
	# Nothing was lost on the way in: the socket took every datagram the clients' sockets sent.
	OS.delay_msec(50)
	server.poll()
	var sent := 0
	for peer in clients:
		sent += peer.inner.get_stats()["packets_out"]
	var stats := server.get_stats()
	assert_eq(stats["datagrams_in"], sent, "every datagram the clients sent was read off the server's socket")
	assert_eq(stats["dropped_overflow"], 0)


## A client whose socket has no destination yet: its first datagrams are refused, it says what to do once, and
## it connects by itself once the destination is set (setting inner again is not needed).
func test_a_client_whose_socket_could_not_send_yet_recovers_once_it_can() -> void:
	assert_ok(server.listen(0, "127.0.0.1"))
	var udp := UdpPacketPeer.new()
	assert_ok(udp.bind(0, "127.0.0.1"))
	var peer := ReliablePacketPeer.new()
	peer.inner = udp
	clients.append(peer)
	for i in 5:
		peer.poll()
		OS.delay_msec(5)
	assert_eq(peer.get_status(), ReliablePacketPeer.STATUS_CONNECTING, "still trying, not failed")
	assert_error_logged("set_dest_address or connect_to_host")
	assert_error_logged("goes on by itself once the inner peer can send")
	assert_true(peer.get_stats()["inner_refused"] > 0)
	assert_ok(udp.connect_to_host("127.0.0.1", server.get_local_port()))
	assert_true(_until(func(): return peer.get_status() == ReliablePacketPeer.STATUS_CONNECTED), "connected")
	assert_true(_until(func(): return taken.size() == 1), "and taken by the server")


## If the transport never becomes able to send, the handshake's timeout message says why and what to do.
func test_a_transport_that_never_can_send_names_the_fix_in_the_timeout() -> void:
	var udp := UdpPacketPeer.new()
	assert_ok(udp.bind(0, "127.0.0.1"))
	var peer := ReliablePacketPeer.new()
	peer.timeout_ms = 200
	peer.inner = udp
	clients.append(peer)
	var deadline := Time.get_ticks_msec() + DEADLINE_MS
	while peer.get_status() == ReliablePacketPeer.STATUS_CONNECTING and Time.get_ticks_msec() < deadline:
		peer.poll()
		OS.delay_msec(5)
	assert_eq(peer.get_status(), ReliablePacketPeer.STATUS_ERROR)
	var why := peer.get_error_message()
	assert_true(why.contains("no answer to the handshake") and why.contains("set_dest_address"), why)


## Freeing a taken peer closes its connection (the client learns at once); stop() closes all of them.
func test_freeing_a_taken_peer_closes_it_and_stop_closes_the_rest() -> void:
	assert_ok(server.listen(0, "127.0.0.1"))
	var a := _client(server.get_local_port())
	var b := _client(server.get_local_port())
	assert_true(_until(func(): return taken.size() == 2))
	# Which taken peer is a's: the one a's message reaches.
	a.put_var("a")
	assert_true(_until(func(): return taken.any(func(p): return p.get_available_packet_count() > 0)))
	var index := 0 if taken[0].get_available_packet_count() > 0 else 1
	taken.remove_at(index)  # the last reference: the peer is freed
	assert_true(_until(func(): return a.get_status() == ReliablePacketPeer.STATUS_DISCONNECTED), "a was told")
	assert_eq(a.get_error_message(), "the peer closed the connection")
	assert_eq(b.get_status(), ReliablePacketPeer.STATUS_CONNECTED, "b goes on")
	assert_true(_until(func(): return server.get_stats()["connections"] == 1), "a's connection freed")
	server.stop()
	assert_false(server.is_listening())
	assert_true(_until(func(): return b.get_status() == ReliablePacketPeer.STATUS_DISCONNECTED), "b was told")
	assert_eq(taken[0].get_status(), ReliablePacketPeer.STATUS_DISCONNECTED)


## Datagrams that are not peerkit's, or of no connection, are counted and start nothing.
func test_foreign_and_stray_datagrams_are_counted_never_delivered() -> void:
	assert_ok(server.listen(0, "127.0.0.1"))
	var udp := PacketPeerUDP.new()
	assert_ok(udp.connect_to_host("127.0.0.1", server.get_local_port()))
	for i in 10:
		udp.put_packet("not peerkit".to_utf8_buffer())
	assert_true(_until(func(): return server.get_stats()["dropped_invalid"] == 10))
	assert_eq(server.get_stats()["connections"], 0)
	assert_false(server.is_connection_available())


func test_settings_errors_and_take_without_a_connection() -> void:
	assert_null(server.take_connection(), "nothing before listen")
	assert_ok(server.listen(0, "127.0.0.1"))
	assert_error(server.listen(0, "127.0.0.1"), ERR_ALREADY_IN_USE)
	assert_error_logged("already listening")
	assert_null(server.take_connection())
	assert_error_logged("no connection available")
	server.max_connections = 0
	assert_eq(server.max_connections, 32, "unchanged")
	assert_error_logged("max_connections must be between 1 and 4096")
	server.max_pending_connections = 5000
	assert_eq(server.max_pending_connections, 16)
	server.mtu = 10
	assert_eq(server.mtu, 1200)
	assert_error_logged("mtu must be between 64 and 65507")
	var other := ReliableServer.new()
	assert_error(other.listen(server.get_local_port(), "127.0.0.1"), ERR_UNAVAILABLE, "the port is taken")
	assert_error(other.listen(70000), ERR_INVALID_PARAMETER)
	assert_error(other.listen(0, "not an address"), ERR_INVALID_PARAMETER)
	server.stop()
	assert_eq(server.get_local_port(), 0)
	assert_ok(server.listen(0, "127.0.0.1"), "listens again after stop()")


## A server in its own Godot process, a client here going through a UdpLinkProxy that loses 10% each way:
## every message is echoed back once, in order.
func test_a_server_in_another_process_through_a_lossy_proxy() -> void:
	var port_file := OS.get_user_data_dir().path_join("reliable_server_port_%d.txt" % OS.get_process_id())
	DirAccess.remove_absolute(port_file)
	var args := ["--headless", "--path", ProjectSettings.globalize_path("res://"), "-s", SERVER_PROCESS,
			"--", port_file]
	# scripts/test.sh names the Godot it runs (a launcher script, where OS.get_executable_path() is the loader).
	var godot := OS.get_environment("PEERKIT_GODOT")
	if godot.is_empty():
		godot = OS.get_executable_path()
	var pid := OS.create_process(godot, args)
	assert_true(pid > 0, "the server process started")
	var deadline := Time.get_ticks_msec() + 30000
	while not FileAccess.file_exists(port_file) and Time.get_ticks_msec() < deadline:
		OS.delay_msec(20)
	var port := FileAccess.get_file_as_string(port_file).strip_edges().to_int()
	assert_true(port > 0, "the server process says its port")
	var proxy := UdpLinkProxy.new()
	assert_ok(proxy.start(0, "127.0.0.1", port))
	assert_ok(proxy.set_link_conditions("", {"latency_ms": 5, "loss": 0.1}))
	var peer := _client(proxy.get_listen_port())
	for i in 100:
		assert_ok(peer.put_var(i))
	var got := []
	deadline = Time.get_ticks_msec() + 20000
	while got.size() < 100 and Time.get_ticks_msec() < deadline:
		peer.poll()
		while peer.get_available_packet_count() > 0:
			got.append(peer.get_var())
		OS.delay_msec(1)
	var expected := range(100)
	assert_eq(got, expected, "every message echoed once, in order, through 10% loss each way")
	var stats: Dictionary = proxy.get_stats()["clients"].values()[0]
	assert_true(stats["to_server"]["dropped_loss"] > 0, "the proxy did drop datagrams")
	peer.close()  # the server process quits when its client leaves
	deadline = Time.get_ticks_msec() + 10000
	while OS.is_process_running(pid) and Time.get_ticks_msec() < deadline:
		peer.poll()
		OS.delay_msec(10)
	assert_false(OS.is_process_running(pid), "the server process ended when its client closed")
	if OS.is_process_running(pid):
		OS.kill(pid)
	assert_eq(OS.get_process_exit_code(pid), 0, "and it exited cleanly")
	proxy.stop()
	DirAccess.remove_absolute(port_file)
