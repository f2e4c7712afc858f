## UdpPacketPeer on 127.0.0.1 and ::1: the game-stall scenario against PacketPeerUDP, API parity with
## PacketPeerUDP, thread lifecycle, and use as the inner peer of LinkConditioner and ReliablePacketPeer.
extends "res://tests/suite.gd"

var _open: Array = []


func after_each() -> void:
	for peer in _open:
		peer.close()


func _pair(receiver_class: String) -> Array:
	var receiver: PacketPeer = ClassDB.instantiate(receiver_class)
	var sender := PacketPeerUDP.new()
	_open.append_array([receiver, sender])
	assert_ok(receiver.bind(0, "127.0.0.1"))
	assert_ok(sender.bind(0, "127.0.0.1"))
	sender.set_dest_address("127.0.0.1", receiver.get_local_port())
	return [receiver, sender]


# Sends `count` 64-byte packets in bursts of 50 a millisecond apart while the receiver reads nothing: a game that
# stalls for the whole time. Returns how many the receiver then has.
func _stall(receiver: PacketPeer, sender: PacketPeerUDP, count: int) -> int:
	var packet := PackedByteArray()
	packet.resize(64)
	for i in count:
		packet.encode_u32(0, i)
		sender.put_packet(packet)
		if i % 50 == 49:
			OS.delay_usec(1000)
	OS.delay_msec(200)
	var received := 0
	var in_order := true
	while receiver.get_available_packet_count() > 0:
		var got := receiver.get_packet()
		if got.decode_u32(0) < received:
			in_order = false
		received += 1
	assert_true(in_order, "%s delivered in order" % receiver.get_class())
	return received


# How many datagrams the kernel dropped for the IPv4 UDP socket bound to `port` (its receive buffer was full):
# the last column of its line in /proc/net/udp. (/proc files report a length of 0: read them line by line.)
func _kernel_drops(port: int) -> int:
	var table := FileAccess.open("/proc/net/udp", FileAccess.READ)
	if table == null:
		return 0
	var wanted := ":%04X" % port
	while not table.eof_reached():
		var fields := table.get_line().strip_edges().split(" ", false)
		if fields.size() > 12 and String(fields[1]).ends_with(wanted):
			return int(fields[fields.size() - 1])
	return 0


func test_nothing_is_lost_while_the_game_stalls() -> void:
	var ours := _pair("UdpPacketPeer")
	var theirs := _pair("PacketPeerUDP")
	var ours_got := _stall(ours[0], ours[1], 10000)
	var theirs_got := _stall(theirs[0], theirs[1], 10000)
	# On a machine so loaded that the receive thread is held off for long, the kernel's own buffer (4 MiB at
	# most, net.core.rmem_max) can fill before the thread runs: those the kernel dropped never reached peerkit.
	# Everything that reached the socket must be kept.
	var kernel_dropped := _kernel_drops(ours[0].get_local_port())
	assert_eq(ours_got + kernel_dropped, 10000, "UdpPacketPeer keeps every packet that reached its socket (%d dropped by the kernel)" % kernel_dropped)
	assert_eq(ours[0].get_stats()["dropped_overflow"], 0)
	assert_true(ours_got > theirs_got, "UdpPacketPeer kept more than PacketPeerUDP")
	assert_true(_kernel_drops(theirs[0].get_local_port()) > 0, "the kernel's count is read (PacketPeerUDP's socket overflowed)")
	assert_true(theirs_got < 10000, "PacketPeerUDP lost some (%d of 10000 arrived); the comparison is meaningful" % theirs_got)
	print("     stall of 10000 packets: UdpPacketPeer %d, PacketPeerUDP %d" % [ours_got, theirs_got])


func test_a_small_queue_counts_exactly_what_it_drops() -> void:
	var receiver := UdpPacketPeer.new()
	receiver.queue_limit_packets = 1000
	var pair := [receiver, PacketPeerUDP.new()]
	_open.append_array(pair)
	assert_ok(receiver.bind(0, "127.0.0.1"))
	assert_ok(pair[1].bind(0, "127.0.0.1"))
	pair[1].set_dest_address("127.0.0.1", receiver.get_local_port())
	var got := _stall(receiver, pair[1], 10000)
	var stats := receiver.get_stats()
	assert_eq(got, 1000)
	assert_eq(stats["queue_high_water"], 1000)
	assert_eq(got + stats["dropped_overflow"], stats["packets_in"], "every datagram taken off the socket is accounted for")
	assert_eq(stats["packets_in"], 10000)


# The same calls on either class; returns what each returned.
func _parity_scenario(cls: String) -> Dictionary:
	var r := {}
	var peer: PacketPeer = ClassDB.instantiate(cls)
	_open.append(peer)
	r["unbound_available"] = peer.get_available_packet_count()
	r["unbound_is_bound"] = peer.is_bound()
	r["unbound_local_port"] = peer.get_local_port()
	r["put_without_dest"] = peer.put_packet(PackedByteArray([1]))
	r["bind_negative_port"] = peer.bind(-1)
	r["bind_port_too_big"] = peer.bind(70000)
	r["bind_bad_address"] = peer.bind(0, "not an address")
	r["bind"] = peer.bind(0, "127.0.0.1")
	r["bind_twice"] = peer.bind(0, "127.0.0.1")
	r["is_bound"] = peer.is_bound()
	r["local_port_nonzero"] = peer.get_local_port() > 0
	var blocker := PacketPeerUDP.new()
	_open.append(blocker)
	blocker.bind(0, "127.0.0.1")
	var other: PacketPeer = ClassDB.instantiate(cls)
	_open.append(other)
	r["bind_taken_port"] = other.bind(blocker.get_local_port(), "127.0.0.1")
	r["get_packet_empty"] = peer.get_packet()
	r["get_packet_error_empty"] = peer.get_packet_error()
	r["set_dest"] = peer.set_dest_address("127.0.0.1", blocker.get_local_port())
	r["put"] = peer.put_packet(PackedByteArray([7]))
	for i in 100:
		if blocker.get_available_packet_count() > 0:
			break
		OS.delay_msec(1)
	r["delivered"] = blocker.get_packet()
	blocker.set_dest_address("127.0.0.1", peer.get_local_port())
	blocker.put_packet(PackedByteArray([8, 9]))
	for i in 100:
		if peer.get_available_packet_count() > 0:
			break
		OS.delay_msec(1)
	r["received"] = peer.get_packet()
	r["packet_ip"] = peer.get_packet_ip()
	r["packet_port_is_sender"] = peer.get_packet_port() == blocker.get_local_port()
	r["connect_port_zero"] = peer.connect_to_host("127.0.0.1", 0)
	r["connect"] = peer.connect_to_host("127.0.0.1", blocker.get_local_port())
	r["is_connected"] = peer.is_socket_connected()
	r["set_dest_when_connected"] = peer.set_dest_address("127.0.0.1", 9)
	peer.set_broadcast_enabled(true)
	peer.close()
	r["closed_is_bound"] = peer.is_bound()
	r["closed_is_connected"] = peer.is_socket_connected()
	r["closed_available"] = peer.get_available_packet_count()
	return r


func test_the_api_behaves_as_packet_peer_udp_does() -> void:
	var theirs := _parity_scenario("PacketPeerUDP")
	var ours := _parity_scenario("UdpPacketPeer")
	for key in theirs:
		assert_eq(ours.get(key), theirs[key], "after \"%s\"" % key)
	assert_eq(theirs["received"], PackedByteArray([8, 9]), "the scenario really exchanged packets")


# peerkit's receive threads in this process, by name ("peerkit-udp-recv", cut to 15 characters by Linux), so
# threads the engine starts or ends meanwhile do not count.
func _thread_count() -> int:
	var count := 0
	var tasks := "/proc/%d/task" % OS.get_process_id()
	for task in DirAccess.get_directories_at(tasks):
		# get_line, not get_file_as_string: /proc files report a length of 0.
		var comm := FileAccess.open("%s/%s/comm" % [tasks, task], FileAccess.READ)
		if comm != null and comm.get_line().begins_with("peerkit-udp"):
			count += 1
	return count


# The thread count once it holds still for 50 ms (at most 5 s): a thread joined by an earlier test's close can
# still be listed for a moment, and counting it in the baseline fails the comparison below for no fault.
func _settled_thread_count() -> int:
	var count := _thread_count()
	var give_up := Time.get_ticks_msec() + 5000
	var still_since := Time.get_ticks_msec()
	while Time.get_ticks_msec() - still_since < 50 and Time.get_ticks_msec() < give_up:
		OS.delay_msec(1)
		var now := _thread_count()
		if now != count:
			count = now
			still_since = Time.get_ticks_msec()
	return count


func test_a_thousand_peers_leave_no_thread_behind() -> void:
	var before := _settled_thread_count()
	for i in 1000:
		var peer := UdpPacketPeer.new()
		assert_ok(peer.bind(0, "127.0.0.1")) if i == 0 else peer.bind(0, "127.0.0.1")
		if i % 2 == 0:
			peer.close()
		# the other half are freed while bound: freeing stops the thread too
	# A joined thread can still be listed for a moment (the kernel wakes the joiner before it removes the task):
	# wait for the list to settle; a thread that is really left behind never goes.
	var settle_until := Time.get_ticks_msec() + 5000
	while _thread_count() != before and Time.get_ticks_msec() < settle_until:
		OS.delay_msec(1)
	var after := _thread_count()
	assert_eq(after, before, "peerkit receive threads before and after")
	var probe := UdpPacketPeer.new()
	probe.bind(0, "127.0.0.1")
	# A new thread names itself once it runs: under emulation (qemu) that can take a moment.
	var deadline := Time.get_ticks_msec() + 5000
	while _thread_count() != before + 1 and Time.get_ticks_msec() < deadline:
		OS.delay_msec(1)
	assert_eq(_thread_count(), before + 1, "the count sees a live receive thread")
	probe.close()


func test_ipv6_loopback_and_dual_stack() -> void:
	var a := UdpPacketPeer.new()
	var b := UdpPacketPeer.new()
	_open.append_array([a, b])
	assert_ok(a.bind(0, "::1"))
	assert_ok(b.bind(0, "::1"))
	a.set_dest_address("::1", b.get_local_port())
	a.put_var("over IPv6")
	assert_ok(b.wait())
	assert_eq(b.get_var(), "over IPv6")
	assert_eq(b.get_packet_ip(), "::1")
	# Bound to "*", IPv4 senders arrive and read as IPv4.
	var any := UdpPacketPeer.new()
	var v4 := PacketPeerUDP.new()
	_open.append_array([any, v4])
	assert_ok(any.bind(0))
	v4.set_dest_address("127.0.0.1", any.get_local_port())
	v4.put_var(4)
	assert_ok(any.wait())
	assert_eq(any.get_var(), 4)
	assert_eq(any.get_packet_ip(), "127.0.0.1")


func test_as_the_inner_peer_of_the_reliable_and_the_conditioned_peers() -> void:
	var udp_a := UdpPacketPeer.new()
	var udp_b := UdpPacketPeer.new()
	_open.append_array([udp_a, udp_b])
	assert_ok(udp_a.bind(0, "127.0.0.1"))
	assert_ok(udp_b.bind(0, "127.0.0.1"))
	udp_a.set_dest_address("127.0.0.1", udp_b.get_local_port())
	udp_b.set_dest_address("127.0.0.1", udp_a.get_local_port())
	var link := LinkConditioner.new()
	link.inner = udp_a
	link.configure({"loss": 0.2, "latency_ms": 5}, LinkConditioner.DIRECTION_OUTBOUND)
	var a := ReliablePacketPeer.new()
	var b := ReliablePacketPeer.new()
	a.inner = link
	b.inner = udp_b
	for i in 200:
		a.put_var(i)
	var got := []
	var deadline := Time.get_ticks_msec() + 10000
	while got.size() < 200 and Time.get_ticks_msec() < deadline:
		a.poll()
		while b.get_available_packet_count() > 0:
			got.append(b.get_var())
		OS.delay_usec(500)
	var expected := []
	for i in 200:
		expected.append(i)
	assert_eq(got, expected, "200 values, in order, over 20% loss and real UDP")
	assert_eq(link.get_max_packet_size(), 65507)


# The first interface with an IPv4 address that is not loopback, as IP.get_local_interfaces() names it.
func _ipv4_interface() -> String:
	for info in IP.get_local_interfaces():
		for address in info["addresses"]:
			if address.is_valid_ip_address() and not address.contains(":") and not address.begins_with("127."):
				return info["name"]
	return ""


# Multicast and broadcast with one class as the receiver (and the sender for broadcast); returns each step's
# result, for comparing the two classes.
func _group_scenario(cls: String, port: int, interface: String) -> Dictionary:
	var steps := {}
	var receiver: PacketPeer = ClassDB.instantiate(cls)
	var sender: PacketPeer = ClassDB.instantiate(cls)
	_open.append_array([receiver, sender])
	steps["bind"] = receiver.bind(port, "0.0.0.0")
	steps["join unknown interface"] = receiver.join_multicast_group("239.255.42.99", "no-such-interface0")
	steps["join bad group"] = receiver.join_multicast_group("not an address", interface)
	steps["join"] = receiver.join_multicast_group("239.255.42.99", interface)
	sender.bind(0, "0.0.0.0")
	sender.set_dest_address("239.255.42.99", port)
	steps["send to group"] = sender.put_packet(PackedByteArray([1]))
	OS.delay_msec(100)
	steps["received from group"] = receiver.get_available_packet_count()
	while receiver.get_available_packet_count() > 0:
		receiver.get_packet()
	steps["leave"] = receiver.leave_multicast_group("239.255.42.99", interface)
	sender.put_packet(PackedByteArray([2]))
	OS.delay_msec(100)
	steps["received after leaving"] = receiver.get_available_packet_count()
	sender.set_dest_address("255.255.255.255", port)
	steps["broadcast while disabled"] = sender.put_packet(PackedByteArray([3]))
	sender.set_broadcast_enabled(true)
	steps["broadcast enabled"] = sender.put_packet(PackedByteArray([4]))
	OS.delay_msec(100)
	steps["received broadcast"] = receiver.get_available_packet_count()
	return steps


func test_multicast_and_broadcast_behave_as_packet_peer_udp_does() -> void:
	var interface := _ipv4_interface()
	assert_ne(interface, "", "this machine has a non-loopback IPv4 interface")
	var theirs := _group_scenario("PacketPeerUDP", 45000 + randi() % 1000, interface)
	var ours := _group_scenario("UdpPacketPeer", 46000 + randi() % 1000, interface)
	print("     on interface %s: %s" % [interface, theirs])
	for step in theirs:
		assert_eq(ours[step], theirs[step], "step '%s'" % step)
	# PacketPeerUDP is the oracle of what this machine's network allows; say plainly what was exercised.
	assert_eq(ours["received from group"], 1, "a multicast datagram arrived (PacketPeerUDP: %d)" % theirs["received from group"])
	assert_eq(ours["received after leaving"], 0, "nothing after leaving the group")
	assert_eq(ours["received broadcast"], 1, "a broadcast datagram arrived (PacketPeerUDP: %d)" % theirs["received broadcast"])


# PacketPeerUDP returns ERR_FAILED for a packet too large for UDP and says nothing; UdpPacketPeer returns the
# same code and says why.
func test_a_packet_too_large_for_udp_is_refused_with_a_reason() -> void:
	var pair := _pair("UdpPacketPeer")
	var big := PackedByteArray()
	big.resize(70000)
	pair[1].set_dest_address("127.0.0.1", pair[1].get_local_port())
	pair[0].set_dest_address("127.0.0.1", pair[1].get_local_port())
	assert_error(pair[0].put_packet(big), FAILED)
	assert_error_logged("packet of 70000 bytes is larger than a UDP datagram can carry (65507 bytes)")
