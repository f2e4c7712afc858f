## UdpLinkProxy between real sockets on loopback: an ENet server and client talking through it with
## SceneMultiplayer, and ReliablePacketPeer over UdpPacketPeer. The proxy runs in real time on its own thread,
## so checks wait (up to a generous deadline) for what must arrive, and compare counts with the proxy's stats.
extends "res://tests/suite.gd"

const GameNode := preload("res://tests/multiplayer/game_node.gd")
const DEADLINE_MS := 10000

var tree: SceneTree
var proxy: UdpLinkProxy
var roots := {}
var apis := {}


func before_each() -> void:
	tree = Engine.get_main_loop()
	proxy = UdpLinkProxy.new()


func after_each() -> void:
	for name in roots:
		var path: NodePath = roots[name].get_path()
		apis[name].multiplayer_peer.close()
		apis[name].multiplayer_peer = null
		roots[name].free()
		tree.set_multiplayer(null, path)
	roots.clear()
	apis.clear()
	proxy.stop()


func _join(name: String, peer: MultiplayerPeer) -> void:
	var root := Node.new()
	root.name = "Proxy_" + name
	var game := GameNode.new()
	game.name = "Game"
	root.add_child(game)
	var api := SceneMultiplayer.new()
	api.multiplayer_peer = peer
	tree.set_multiplayer(api, NodePath("/root/" + root.name))
	tree.root.add_child(root)
	roots[name] = root
	apis[name] = api


func _game(name: String) -> GameNode:
	return roots[name].get_node("Game")


func _until(done: Callable) -> bool:
	var started := Time.get_ticks_msec()
	while not done.call():
		if Time.get_ticks_msec() - started > DEADLINE_MS:
			return false
		for name in apis:
			apis[name].poll()
		OS.delay_msec(1)
	return true


## An ENet server on a free port and a client connected to it through the proxy; returns the server's port.
func _enet_through_proxy() -> int:
	var server := ENetMultiplayerPeer.new()
	var port := 0
	for attempt in 20:
		port = 20000 + randi() % 30000
		if server.create_server(port, 4) == OK:
			break
	assert_ok(proxy.start(0, "127.0.0.1", port))
	_join("server", server)
	var client := ENetMultiplayerPeer.new()
	assert_ok(client.create_client("127.0.0.1", proxy.get_listen_port()))
	_join("client", client)
	var connected := func() -> bool: return apis["client"].get_peers().size() == 1 and apis["server"].get_peers().size() == 1
	assert_true(_until(connected), "the client connected through the proxy, and each side knows the other")
	return port


func test_an_enet_client_and_server_talk_through_the_proxy() -> void:
	_enet_through_proxy()
	assert_eq(proxy.get_clients().size(), 1, "one client address")
	_game("client").say.rpc_id(1, "up")
	_game("server").announce.rpc("down")
	var both := func() -> bool:
		return _game("server").values("say") == ["up"] and _game("client").values("announce") == ["down"]
	assert_true(_until(both), "RPCs both ways")
	var stats: Dictionary = proxy.get_stats()["clients"][proxy.get_clients()[0]]
	assert_true(stats["to_server"]["packets_delivered"] > 0 and stats["to_client"]["packets_delivered"] > 0,
			"the proxy carried both directions")


func test_delay_and_loss_show_in_the_stats_and_in_what_arrives() -> void:
	_enet_through_proxy()
	var client: String = proxy.get_clients()[0]
	assert_ok(proxy.set_link_conditions(client, {"latency_ms": 30}, UdpLinkProxy.DIRECTION_TO_SERVER))
	assert_ok(proxy.set_link_conditions("", {"latency_ms": 20}, UdpLinkProxy.DIRECTION_TO_CLIENT))
	assert_eq(proxy.get_link_conditions(client, UdpLinkProxy.DIRECTION_TO_CLIENT)["latency_ms"], 20, "\"\" means every client")
	var sent := Time.get_ticks_msec()
	_game("client").say.rpc_id(1, "delayed")
	assert_true(_until(func() -> bool: return _game("server").values("say").size() == 1), "arrived")
	assert_true(Time.get_ticks_msec() - sent >= 30, "not before the 30 ms the proxy holds it")
	var up: Dictionary = proxy.get_stats()["clients"][client]["to_server"]
	assert_true(up["delay_max_ms"] >= 30.0, "the proxy's stats show the delay (%s)" % up["delay_max_ms"])
	# Loss on the way up: unreliable calls are lost about as often as the proxy says it dropped datagrams.
	assert_ok(proxy.set_link_conditions(client, {"latency_ms": 0, "loss": 0.5}, UdpLinkProxy.DIRECTION_TO_SERVER))
	var before: Dictionary = proxy.get_stats()["clients"][client]["to_server"]
	for i in 200:
		_game("client").shout.rpc_id(1, i)
		apis["client"].poll()  # one ENet datagram per call
		OS.delay_msec(1)
	var settled := func() -> bool:
		var now: Dictionary = proxy.get_stats()["clients"][client]["to_server"]
		return now["packets_in"] - before["packets_in"] >= 200
	assert_true(_until(settled), "the proxy saw every datagram")
	for i in 20:
		apis["server"].poll()
		OS.delay_msec(2)
	var after: Dictionary = proxy.get_stats()["clients"][client]["to_server"]
	var lost: int = after["dropped_loss"] - before["dropped_loss"]
	var arrived: int = _game("server").values("shout").size()
	var passed: int = after["packets_in"] - before["packets_in"]
	assert_between(float(lost) / passed, 0.3, 0.7, "about half the datagrams were dropped (%d of %d)" % [lost, passed])
	assert_between(arrived, 60, 140, "and about half the 200 calls arrived")
	assert_true(arrived <= passed - lost, "no more arrived than the proxy passed on")


func test_reliable_packet_peer_over_udp_through_a_lossy_proxy() -> void:
	var server := UdpPacketPeer.new()
	assert_ok(server.bind(0, "127.0.0.1"))
	assert_ok(proxy.start(0, "127.0.0.1", server.get_local_port()))
	assert_ok(proxy.set_link_conditions("", {"latency_ms": 5, "loss": 0.2}))
	var client := UdpPacketPeer.new()
	assert_ok(client.bind(0, "127.0.0.1"))
	assert_ok(client.set_dest_address("127.0.0.1", proxy.get_listen_port()))
	var a := ReliablePacketPeer.new()
	a.inner = client
	var b := ReliablePacketPeer.new()
	var got := []
	var started := Time.get_ticks_msec()
	for i in 100:
		assert_ok(a.put_var(i))
	while got.size() < 100 and Time.get_ticks_msec() - started < DEADLINE_MS:
		a.poll()
		# The server answers whoever wrote last: the proxy's upstream address for this client.
		if b.inner == null and server.get_available_packet_count() > 0:
			server.get_packet()  # the first HELLO; it is sent again
			server.set_dest_address(server.get_packet_ip(), server.get_packet_port())
			b.inner = server
		if b.inner != null:
			b.poll()
			while b.get_available_packet_count() > 0:
				got.append(b.get_var())
		OS.delay_msec(1)
	var expected := []
	for i in 100:
		expected.append(i)
	assert_eq(got, expected, "every message, once, in order, through 20% loss each way")
	var stats: Dictionary = proxy.get_stats()["clients"].values()[0]
	assert_true(stats["to_server"]["dropped_loss"] > 0 and stats["to_client"]["dropped_loss"] > 0,
			"the proxy did drop datagrams both ways")
	assert_true(a.get_stats()["retransmissions"] > 0, "and ReliablePacketPeer repaired them")
	var deadline := Time.get_ticks_msec() + DEADLINE_MS
	while a.get_stats()["messages_pending"] > 0 and Time.get_ticks_msec() < deadline:
		a.poll()
		b.poll()
		OS.delay_msec(1)
	assert_eq(a.get_stats()["messages_pending"], 0, "every message acknowledged")
	a.close()
	b.close()


func test_bad_arguments_and_a_clean_stop() -> void:
	assert_error(proxy.set_link_conditions("", {"latency_ms": 1}), ERR_UNCONFIGURED)
	assert_error_logged("not running")
	assert_error(proxy.start(70000, "127.0.0.1", 9), ERR_INVALID_PARAMETER)
	assert_error_logged("between 0 and 65535")
	assert_error(proxy.start(0, "no.such.host.invalid", 9), ERR_INVALID_PARAMETER)
	assert_error_logged("cannot resolve")
	assert_error(proxy.start(0, "127.0.0.1", 9, "not an ip"), ERR_INVALID_PARAMETER)
	assert_error_logged("bind_address")
	assert_ok(proxy.start(0, "127.0.0.1", 9))
	var port := proxy.get_listen_port()
	assert_true(port > 0)
	assert_error(proxy.start(0, "127.0.0.1", 9), ERR_ALREADY_IN_USE)
	assert_error_logged("running already")
	var other := UdpLinkProxy.new()
	assert_error(other.start(port, "127.0.0.1", 9), ERR_ALREADY_IN_USE, "the port is taken")
	assert_error_logged("in use")
	assert_error(proxy.set_link_conditions("1.2.3.4:5", {"latency_ms": 1}), ERR_INVALID_PARAMETER)
	assert_error_logged("no client at 1.2.3.4:5")
	assert_error(proxy.set_link_conditions("nonsense", {"latency_ms": 1}), ERR_INVALID_PARAMETER)
	assert_error_logged("ip:port")
	assert_error(proxy.apply_preset("", "dialup"), ERR_INVALID_PARAMETER)
	assert_error_logged("dialup")
	assert_ok(proxy.apply_preset("", "3g"))
	proxy.stop()
	assert_false(proxy.is_running())
	var again := PacketPeerUDP.new()
	assert_ok(again.bind(port, "127.0.0.1"), "stop closed the listening socket")
	again.close()


func test_a_stalled_game_frame_is_not_fake_loss() -> void:
	# The proxy relays on its own thread: while this (main) thread sleeps, a burst keeps moving through it.
	var server := UdpPacketPeer.new()
	assert_ok(server.bind(0, "127.0.0.1"))
	assert_ok(proxy.start(0, "127.0.0.1", server.get_local_port()))
	var client := PacketPeerUDP.new()
	client.set_dest_address("127.0.0.1", proxy.get_listen_port())
	# A game's traffic during the stall: 2,000 datagrams in bursts of 50 a millisecond apart, from a thread.
	var sender := Thread.new()
	sender.start(func() -> void:
		for i in 2000:
			client.put_packet(PackedByteArray([i % 256, i / 256]))
			if i % 50 == 49:
				OS.delay_msec(1))
	OS.delay_msec(300)  # the stall: nothing on this thread reads or polls
	sender.wait_to_finish()
	var stats: Dictionary = proxy.get_stats()["clients"].values()[0]["to_server"]
	assert_eq(stats["packets_delivered"], 2000, "relayed during the stall")
	assert_eq(stats["dropped_loss"] + stats["dropped_overflow"], 0)
	var got := 0
	var deadline := Time.get_ticks_msec() + DEADLINE_MS
	while got < 2000 and Time.get_ticks_msec() < deadline:
		while server.get_available_packet_count() > 0:
			server.get_packet()
			got += 1
		OS.delay_msec(1)
	assert_eq(got, 2000, "all arrived")
	server.close()
	client.close()
