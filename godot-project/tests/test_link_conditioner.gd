## LinkConditioner against the real class, wrapping LocalPacketPeer (manual clock) and PacketPeerUDP (real clock).
extends "res://tests/suite.gd"

var _udp: Array[PacketPeerUDP] = []


func after_each() -> void:
	for peer in _udp:
		peer.close()


# A conditioner with a manual clock wrapping end A of a fresh pair; returns [conditioner, end_b].
func _wrapped(capacity: int = 1024) -> Array:
	var ends := LocalPacketPeer.create_pair(capacity)
	var conditioner := LinkConditioner.new()
	conditioner.inner = ends[0]
	conditioner.use_manual_clock = true
	return [conditioner, ends[1]]


func _drain(peer: PacketPeer) -> Array:
	var packets := []
	while peer.get_available_packet_count() > 0:
		packets.append(peer.get_packet())
	return packets


func test_defaults_pass_packets_straight_through() -> void:
	var setup := _wrapped()
	var conditioner: LinkConditioner = setup[0]
	var far: LocalPacketPeer = setup[1]
	assert_true(conditioner.link_up)
	assert_eq(conditioner.seed, 0)
	assert_ok(conditioner.put_var({"hello": [1, 2]}))
	assert_eq(far.get_var(), {"hello": [1, 2]})
	assert_ok(far.put_packet(PackedByteArray([9, 8])))
	assert_eq(conditioner.get_available_packet_count(), 1)
	assert_eq(conditioner.get_packet(), PackedByteArray([9, 8]))


func test_outbound_latency_releases_a_packet_at_exactly_its_time() -> void:
	var setup := _wrapped()
	var conditioner: LinkConditioner = setup[0]
	var far: LocalPacketPeer = setup[1]
	assert_ok(conditioner.configure({"latency_ms": 100}, LinkConditioner.DIRECTION_OUTBOUND))
	assert_ok(conditioner.put_packet(PackedByteArray([1])))
	assert_eq(far.get_available_packet_count(), 0, "at 0 ms")
	conditioner.advance(99)
	assert_eq(far.get_available_packet_count(), 0, "at 99 ms")
	conditioner.advance(1)
	assert_eq(far.get_available_packet_count(), 1, "at 100 ms")
	assert_eq(conditioner.get_time_msec(), 100.0, "the manual clock started at 0")


func test_inbound_latency_holds_received_packets() -> void:
	var setup := _wrapped()
	var conditioner: LinkConditioner = setup[0]
	var far: LocalPacketPeer = setup[1]
	assert_ok(conditioner.configure({"latency_ms": 100}, LinkConditioner.DIRECTION_INBOUND))
	far.put_packet(PackedByteArray([2]))
	assert_eq(conditioner.get_available_packet_count(), 0, "at 0 ms")
	conditioner.advance(99.5)
	assert_eq(conditioner.get_available_packet_count(), 0, "at 99.5 ms")
	conditioner.advance(0.5)
	assert_eq(conditioner.get_packet(), PackedByteArray([2]), "at 100 ms")
	# The outbound direction was not configured: it is still instant.
	conditioner.put_packet(PackedByteArray([3]))
	assert_eq(far.get_packet(), PackedByteArray([3]))


func test_total_loss_delivers_nothing_and_counts_it() -> void:
	var setup := _wrapped()
	var conditioner: LinkConditioner = setup[0]
	assert_ok(conditioner.configure({"loss": 1.0}))
	for i in 100:
		assert_ok(conditioner.put_packet(PackedByteArray([i])), "a lost packet is still accepted, like UDP")
	conditioner.advance(1000)
	assert_eq(setup[1].get_available_packet_count(), 0)
	assert_eq(conditioner.get_stats()["outbound"]["dropped_loss"], 100)


func test_link_up_toggles_delivery() -> void:
	var setup := _wrapped()
	var conditioner: LinkConditioner = setup[0]
	var far: LocalPacketPeer = setup[1]
	conditioner.put_packet(PackedByteArray([1]))
	conditioner.link_up = false
	assert_false(conditioner.link_up)
	conditioner.put_packet(PackedByteArray([2]))
	far.put_packet(PackedByteArray([3]))
	assert_eq(conditioner.get_available_packet_count(), 0, "inbound is cut too")
	conditioner.link_up = true
	conditioner.put_packet(PackedByteArray([4]))
	assert_eq(_drain(far), [PackedByteArray([1]), PackedByteArray([4])])
	var stats := conditioner.get_stats()
	assert_eq(stats["outbound"]["dropped_link_down"], 1)
	assert_eq(stats["inbound"]["dropped_link_down"], 1)


func test_cutting_the_link_drops_packets_in_flight() -> void:
	var setup := _wrapped()
	var conditioner: LinkConditioner = setup[0]
	conditioner.configure({"latency_ms": 50})
	conditioner.put_packet(PackedByteArray([1]))
	conditioner.link_up = false
	conditioner.link_up = true
	conditioner.advance(100)
	assert_eq(setup[1].get_available_packet_count(), 0)
	assert_eq(conditioner.get_stats()["outbound"]["dropped_link_down"], 1)


func test_duplication_delivers_twice() -> void:
	var setup := _wrapped()
	var conditioner: LinkConditioner = setup[0]
	conditioner.configure({"duplicate": 1.0}, LinkConditioner.DIRECTION_OUTBOUND)
	conditioner.put_packet(PackedByteArray([7, 7]))
	assert_eq(_drain(setup[1]), [PackedByteArray([7, 7]), PackedByteArray([7, 7])])
	assert_eq(conditioner.get_stats()["outbound"]["duplicated"], 1)


func test_corruption_changes_exactly_one_bit() -> void:
	var setup := _wrapped()
	var conditioner: LinkConditioner = setup[0]
	conditioner.configure({"corrupt": 1.0})
	var original := PackedByteArray()
	original.resize(64)
	for i in 64:
		original[i] = i * 3
	for round in 20:
		conditioner.put_packet(original)
		var got: PackedByteArray = setup[1].get_packet()
		var flipped := 0
		for i in 64:
			var diff := got[i] ^ original[i]
			while diff != 0:
				flipped += diff & 1
				diff >>= 1
		assert_eq(flipped, 1, "round %d" % round)
	assert_eq(conditioner.get_stats()["outbound"]["corrupted"], 20)


func test_stats_match_what_the_test_saw() -> void:
	var setup := _wrapped(100000)
	var conditioner: LinkConditioner = setup[0]
	conditioner.seed = 99
	assert_ok(conditioner.configure({"latency_ms": 20, "jitter_ms": 10, "loss": 0.2, "duplicate": 0.1,
		"jitter_distribution": "normal", "jitter_may_reorder": true}, LinkConditioner.DIRECTION_OUTBOUND))
	var bytes_put := 0
	for i in 2000:
		var packet := PackedByteArray([i & 0xFF, i >> 8])
		conditioner.put_packet(packet)
		bytes_put += packet.size()
		conditioner.advance(1)
	conditioner.advance(1000)
	var seen := _drain(setup[1])
	var out: Dictionary = conditioner.get_stats()["outbound"]
	assert_eq(out["packets_in"], 2000)
	assert_eq(out["bytes_in"], bytes_put)
	assert_eq(out["packets_delivered"], seen.size())
	assert_eq(out["bytes_delivered"], seen.size() * 2)
	assert_eq(out["queued"], 0)
	assert_eq(out["packets_in"] + out["duplicated"], out["packets_delivered"] + out["dropped_loss"])
	assert_between(out["dropped_loss"], 300, 500, "about 20% of 2000")
	assert_between(out["delay_mean_ms"], 17.0, 23.0)
	assert_true(out["delay_min_ms"] <= out["delay_mean_ms"] and out["delay_mean_ms"] <= out["delay_max_ms"])


func test_same_seed_same_deliveries_and_another_seed_differs() -> void:
	var first := _scripted_session(7)
	assert_eq(_scripted_session(7), first)
	assert_ne(_scripted_session(8), first)
	assert_true(first.size() > 200)


# A fixed series of calls over an impaired link; returns [time, packet] for every delivery.
func _scripted_session(seed_value: int) -> Array:
	var setup := _wrapped()
	var conditioner: LinkConditioner = setup[0]
	conditioner.seed = seed_value
	conditioner.configure({"latency_ms": 30, "jitter_ms": 25, "jitter_may_reorder": true, "loss": 0.1,
		"duplicate": 0.05, "reorder": 0.05, "corrupt": 0.05, "burst_enter_probability": 0.02})
	var log := []
	for i in 300:
		conditioner.put_packet(PackedByteArray([i & 0xFF, i >> 8, 0, 0]))
		conditioner.advance(2)
		for packet in _drain(setup[1]):
			log.append([conditioner.get_time_msec(), packet])
	conditioner.advance(500)
	for packet in _drain(setup[1]):
		log.append([conditioner.get_time_msec(), packet])
	return log


func test_jitter_keeps_order_unless_reordering_is_allowed() -> void:
	for may_reorder in [false, true]:
		var setup := _wrapped()
		var conditioner: LinkConditioner = setup[0]
		conditioner.configure({"latency_ms": 20, "jitter_ms": 15, "jitter_may_reorder": may_reorder})
		var order := []
		for i in 500:
			conditioner.put_packet(PackedByteArray([i & 0xFF, i >> 8]))
			conditioner.advance(1)
			for packet in _drain(setup[1]):
				order.append(packet[0] | (packet[1] << 8))
		conditioner.advance(100)
		for packet in _drain(setup[1]):
			order.append(packet[0] | (packet[1] << 8))
		var inversions := 0
		for i in order.size() - 1:
			if order[i] > order[i + 1]:
				inversions += 1
		assert_eq(order.size(), 500)
		if may_reorder:
			assert_true(inversions > 10, "jitter_may_reorder = true reorders (%d inversions)" % inversions)
		else:
			assert_eq(inversions, 0, "jitter_may_reorder = false keeps order")


func test_bandwidth_cap_paces_packets() -> void:
	var setup := _wrapped()
	var conditioner: LinkConditioner = setup[0]
	conditioner.configure({"bandwidth_bytes_per_second": 10000}, LinkConditioner.DIRECTION_OUTBOUND)
	var packet := PackedByteArray()
	packet.resize(100)  # 100 bytes at 10 kB/s: one every 10 ms
	for i in 10:
		conditioner.put_packet(packet)
	assert_eq(setup[1].get_available_packet_count(), 0)
	conditioner.advance(10)
	assert_eq(setup[1].get_available_packet_count(), 1)
	conditioner.advance(40)
	assert_eq(setup[1].get_available_packet_count(), 5)
	conditioner.advance(50)
	assert_eq(setup[1].get_available_packet_count(), 10)


func test_queue_limit_overflow_is_counted() -> void:
	var setup := _wrapped()
	var conditioner: LinkConditioner = setup[0]
	conditioner.configure({"latency_ms": 10, "queue_limit": 5})
	for i in 8:
		assert_ok(conditioner.put_packet(PackedByteArray([i])))
	conditioner.advance(10)
	assert_eq(setup[1].get_available_packet_count(), 5)
	assert_eq(conditioner.get_stats()["outbound"]["dropped_overflow"], 3)


func test_settings_can_change_while_traffic_flows() -> void:
	var setup := _wrapped()
	var conditioner: LinkConditioner = setup[0]
	conditioner.configure({"latency_ms": 100})
	conditioner.put_packet(PackedByteArray([1]))
	conditioner.configure({"latency_ms": 0})
	conditioner.put_packet(PackedByteArray([2]))
	assert_eq(setup[1].get_available_packet_count(), 0, "in order: packet 2 waits behind packet 1")
	conditioner.advance(100)
	assert_eq(_drain(setup[1]), [PackedByteArray([1]), PackedByteArray([2])])


func test_configure_refuses_bad_settings_and_changes_nothing() -> void:
	var conditioner := LinkConditioner.new()
	conditioner.configure({"latency_ms": 10})
	var before := conditioner.get_settings()
	assert_error(conditioner.configure({"loss": 1.5}), ERR_INVALID_PARAMETER)
	assert_error_logged("\"loss\" is a probability and must be between 0 and 1, got 1.5")
	assert_error(conditioner.configure({"latency_ms": -5}), ERR_INVALID_PARAMETER)
	assert_error(conditioner.configure({"jitter_ms": "lots"}), ERR_INVALID_PARAMETER)
	assert_error(conditioner.configure({"lag": 10}), ERR_INVALID_PARAMETER)
	assert_error_logged("unknown link setting \"lag\"")
	assert_error(conditioner.configure({"duplicate": [0.5]}), ERR_INVALID_PARAMETER)
	assert_error(conditioner.configure({"queue_limit": 0}), ERR_INVALID_PARAMETER)
	assert_error(conditioner.configure({"jitter_distribution": "gamma"}), ERR_INVALID_PARAMETER)
	assert_error(conditioner.configure({"latency_ms": 50, "loss": 2.0}), ERR_INVALID_PARAMETER)
	assert_error(conditioner.configure({"loss": 0.5}, 7), ERR_INVALID_PARAMETER)
	assert_error_logged("direction must be DIRECTION_OUTBOUND (1), DIRECTION_INBOUND (2) or DIRECTION_BOTH (3), got 7")
	assert_eq(conditioner.get_settings(), before, "no refused call changed anything")
	assert_eq(conditioner.get_settings()["latency_ms"], 10)


func test_presets_set_both_directions_and_unknown_ones_are_refused() -> void:
	var conditioner := LinkConditioner.new()
	assert_ok(conditioner.apply_preset("3g"))
	assert_eq(conditioner.get_settings(LinkConditioner.DIRECTION_OUTBOUND)["latency_ms"], 75)
	assert_eq(conditioner.get_settings(LinkConditioner.DIRECTION_INBOUND)["latency_ms"], 75)
	assert_ok(conditioner.apply_preset("satellite", LinkConditioner.DIRECTION_INBOUND))
	assert_eq(conditioner.get_settings(LinkConditioner.DIRECTION_OUTBOUND)["latency_ms"], 75)
	assert_eq(conditioner.get_settings(LinkConditioner.DIRECTION_INBOUND)["latency_ms"], 280)
	assert_error(conditioner.apply_preset("dialup"), ERR_INVALID_PARAMETER)
	assert_error_logged("unknown link preset \"dialup\"")
	for name in ["clean", "wifi", "4g", "3g", "lossy", "satellite"]:
		assert_ok(conditioner.apply_preset(name), name)


func test_wrapping_itself_is_refused() -> void:
	var a := LinkConditioner.new()
	var b := LinkConditioner.new()
	a.inner = a
	assert_null(a.inner)
	assert_error_logged("cannot wrap itself")
	b.inner = a
	a.inner = b
	assert_null(a.inner, "a cycle through another conditioner is refused too")
	assert_eq(b.inner, a)
	b.inner = null  # break the reference so both can be freed


func test_without_inner_peer_everything_is_unconfigured() -> void:
	var lone := LinkConditioner.new()
	assert_error(lone.put_packet(PackedByteArray([1])), ERR_UNCONFIGURED)
	assert_eq(lone.get_packet(), PackedByteArray())
	assert_error(lone.get_packet_error(), ERR_UNCONFIGURED)
	assert_eq(lone.get_available_packet_count(), 0)
	assert_eq(lone.get_max_packet_size(), 0)


func test_advance_needs_the_manual_clock() -> void:
	var conditioner := LinkConditioner.new()
	conditioner.advance(10)
	assert_error_logged("set use_manual_clock = true first")
	conditioner.use_manual_clock = true
	var start := conditioner.get_time_msec()
	conditioner.advance(-1)
	assert_error_logged("msec must be a finite number >= 0")
	conditioner.advance(12.5)
	assert_eq(conditioner.get_time_msec(), start + 12.5)


func test_inner_refusals_are_counted_not_lost_silently() -> void:
	var setup := _wrapped(2)
	var conditioner: LinkConditioner = setup[0]
	for i in 5:
		assert_ok(conditioner.put_packet(PackedByteArray([i])))
	var stats := conditioner.get_stats()
	assert_eq(stats["inner_refused"], 3)
	assert_error(stats["last_inner_error"], ERR_BUSY)
	assert_eq(setup[1].get_available_packet_count(), 2)


func test_max_packet_size_is_the_inner_peers() -> void:
	var ends := LocalPacketPeer.create_pair(8, 500)
	var conditioner := LinkConditioner.new()
	conditioner.inner = ends[0]
	assert_eq(conditioner.get_max_packet_size(), 500)
	var packet := PackedByteArray()
	packet.resize(501)
	assert_error(conditioner.put_packet(packet), ERR_INVALID_PARAMETER)
	assert_eq(conditioner.get_stats()["outbound"]["packets_in"], 0, "a refused packet is not queued")
	var outer := LinkConditioner.new()
	outer.inner = conditioner
	assert_eq(outer.get_max_packet_size(), 500, "through a chain of conditioners")


func test_chained_conditioners_add_their_latencies() -> void:
	var setup := _wrapped()
	var inner: LinkConditioner = setup[0]
	inner.configure({"latency_ms": 30})
	var outer := LinkConditioner.new()
	outer.inner = inner
	outer.use_manual_clock = true
	outer.configure({"latency_ms": 20})
	outer.put_packet(PackedByteArray([5]))
	outer.advance(20)  # now in the inner conditioner
	inner.advance(29)
	assert_eq(setup[1].get_available_packet_count(), 0)
	inner.advance(1)
	assert_eq(setup[1].get_packet(), PackedByteArray([5]))


func test_wrapping_packet_peer_udp_with_the_real_clock() -> void:
	var a := PacketPeerUDP.new()
	var b := PacketPeerUDP.new()
	_udp.append_array([a, b])
	assert_ok(a.bind(0, "127.0.0.1"))
	assert_ok(b.bind(0, "127.0.0.1"))
	a.set_dest_address("127.0.0.1", b.get_local_port())
	b.set_dest_address("127.0.0.1", a.get_local_port())
	var conditioner := LinkConditioner.new()
	conditioner.inner = a
	assert_ok(conditioner.configure({"latency_ms": 40}, LinkConditioner.DIRECTION_OUTBOUND))
	var started := Time.get_ticks_usec()
	assert_ok(conditioner.put_var("over udp"))
	var arrived_after := -1.0
	while Time.get_ticks_usec() - started < 2000000:
		conditioner.poll()
		if b.get_available_packet_count() > 0:
			arrived_after = (Time.get_ticks_usec() - started) / 1000.0
			break
		OS.delay_usec(500)
	assert_true(arrived_after >= 40.0, "not before its latency (arrived after %.1f ms)" % arrived_after)
	assert_true(arrived_after < 1000.0, "and not lost (arrived after %.1f ms)" % arrived_after)
	assert_eq(b.get_var(), "over udp")
	# The other way: the conditioner reads what UDP received.
	b.put_var(42)
	var got = null
	while Time.get_ticks_usec() - started < 3000000 and got == null:
		if conditioner.get_available_packet_count() > 0:
			got = conditioner.get_var()
		OS.delay_usec(500)
	assert_eq(got, 42)


# Inbound latency counts from when the packet reached the inner peer, not from the next poll: advance() takes in
# what the inner peer holds before it moves the clock. (It used to arrive at 59 ms here, not 30.)
func test_inbound_latency_counts_from_arrival_at_the_inner_peer() -> void:
	var ends := LocalPacketPeer.create_pair()
	var link := LinkConditioner.new()
	link.use_manual_clock = true
	link.inner = ends[0]
	link.configure({"latency_ms": 30}, LinkConditioner.DIRECTION_INBOUND)
	ends[1].put_packet(PackedByteArray([1]))
	link.advance(29)
	assert_eq(link.get_available_packet_count(), 0, "not yet at 29 ms")
	link.advance(1)
	assert_eq(link.get_available_packet_count(), 1, "there at 30 ms")


func _logged_containing(text: String) -> int:
	var count := 0
	for logged in errors.peek():
		if String(logged["text"]).contains(text):
			count += 1
	return count


# The refusal warning used to repeat (9 times in 60 frames over a UDP peer nobody listens to) and did not say why.
# It is said once for each kind of refusal, with the reason.
func test_an_inner_refusal_is_explained_once_for_each_kind() -> void:
	var setup := _wrapped(2)
	var conditioner: LinkConditioner = setup[0]
	for frame in 60:
		conditioner.put_packet(PackedByteArray([frame]))
		if frame % 3 == 0:
			setup[1].get_packet()  # room again now and then: refusals and successes alternate
	assert_eq(_logged_containing("the inner peer refused"), 1, "one warning for one kind of refusal")
	assert_error_logged("refused a packet of 1 bytes with ERR_BUSY: its queue is full")
	assert_true(conditioner.get_stats()["inner_refused"] > 30, "every refusal still counted")
	var udp := PacketPeerUDP.new()  # never bound nor given a destination
	var other := LinkConditioner.new()
	other.inner = udp
	for frame in 10:
		other.put_packet(PackedByteArray([frame]))
	assert_eq(_logged_containing("the inner peer refused"), 2, "another kind, explained once too")
	assert_error_logged("with ERR_UNCONFIGURED: it is not ready to send")


# A wrapper written in GDScript: any PacketPeer with a get_inner() method.
class ScriptWrapper extends PacketPeerStream:
	var wrapped: PacketPeer

	func get_inner() -> PacketPeer:
		return wrapped


# The wrapping-cycle check walks any chain of wrappers through get_inner(), not only peerkit's own classes.
func test_a_cycle_through_a_gdscript_wrapper_is_refused() -> void:
	var link := LinkConditioner.new()
	var wrapper := ScriptWrapper.new()
	wrapper.wrapped = link
	link.inner = wrapper
	assert_null(link.inner, "link -> script wrapper -> link is a cycle")
	assert_error_logged("cannot wrap itself")
	var reliable := ReliablePacketPeer.new()
	wrapper.wrapped = reliable
	reliable.inner = link
	link.inner = wrapper
	assert_null(link.inner, "link -> script wrapper -> reliable -> link is a cycle too")
	reliable.inner = null


# get_settings defaults to DIRECTION_BOTH, as configure does: the common settings, or an error when they differ.
func test_get_settings_of_both_directions_when_they_agree_and_an_error_when_not() -> void:
	var link := LinkConditioner.new()
	link.configure({"latency_ms": 20})
	assert_eq(link.get_settings()["latency_ms"], 20, "both directions, the default")
	link.configure({"loss": 0.5}, LinkConditioner.DIRECTION_INBOUND)
	assert_eq(link.get_settings(), {}, "the directions differ now")
	assert_error_logged("the two directions have different settings")
	assert_eq(link.get_settings(LinkConditioner.DIRECTION_INBOUND)["loss"], 0.5)
	assert_eq(link.get_settings(LinkConditioner.DIRECTION_OUTBOUND)["loss"], 0)


# Without an inner peer, get_packet used to return ERR_UNCONFIGURED silently and get_max_packet_size 0 with no
# explanation: both say what is missing.
func test_without_an_inner_peer_the_conditioner_says_what_is_missing() -> void:
	var link := LinkConditioner.new()
	assert_eq(link.get_packet(), PackedByteArray())
	assert_error(link.get_packet_error(), ERR_UNCONFIGURED)
	assert_error_logged("LinkConditioner.get_packet: no inner peer; set `inner` to the PacketPeer to wrap")
	assert_eq(link.get_max_packet_size(), 0)
	assert_error_logged("LinkConditioner.get_max_packet_size: no inner peer")


## An ENetMultiplayerPeer is a PacketPeer too, so LinkConditioner took it, and then warned about PacketPeerUDP's
## bind and set_dest_address. It is refused, pointing to the conditioner for MultiplayerPeers.
func test_a_multiplayer_peer_is_refused_pointing_to_multiplayer_link_conditioner() -> void:
	var conditioner := LinkConditioner.new()
	conditioner.inner = ENetMultiplayerPeer.new()
	assert_null(conditioner.inner, "not taken")
	assert_error_logged("ENetMultiplayerPeer is a MultiplayerPeer, for SceneMultiplayer; wrap it with MultiplayerLinkConditioner.wrap(peer) instead")


## A LinkConditioner written to once and never polled used to keep the packet forever in silence. A second later
## it says so, once.
func test_one_put_and_no_poll_is_said_once() -> void:
	var ends := LocalPacketPeer.create_pair()
	var link := LinkConditioner.new()
	link.inner = ends[0]
	link.configure({"latency_ms": 10}, LinkConditioner.DIRECTION_OUTBOUND)
	assert_ok(link.put_packet(PackedByteArray([1])))
	await Engine.get_main_loop().create_timer(1.2).timeout
	assert_error_logged("LinkConditioner: a packet put")
	assert_eq(ends[1].get_available_packet_count(), 0, "still held: nothing moves without a poll")
	link.poll()
	assert_eq(ends[1].get_available_packet_count(), 1, "the poll delivers it")
	# A conditioner that is polled is never warned: the same with a poll before the check.
	var polled := LinkConditioner.new()
	polled.inner = ends[0]
	polled.configure({"latency_ms": 10}, LinkConditioner.DIRECTION_OUTBOUND)
	polled.put_packet(PackedByteArray([2]))
	polled.poll()
	await Engine.get_main_loop().create_timer(1.2).timeout
	var warnings := 0
	for logged in errors.peek():
		if String(logged["text"]).contains("LinkConditioner: a packet put"):
			warnings += 1
	assert_eq(warnings, 1, "only the unpolled one")
