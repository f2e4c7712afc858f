## The game side of the editor's debugger panel (addons/peerkit/debugger/runtime.gd), tested headless by calling
## its message handler directly and reading the messages it would send to the editor. (The panel itself, in the
## real editor, is tested by scripts/editor-test.sh.)
extends "res://tests/suite.gd"

const Runtime := preload("res://addons/peerkit/debugger/runtime.gd")

var runtime: Node
## What the runtime sent: [message, data] pairs.
var sent: Array = []


func before_each() -> void:
	runtime = Runtime.new()
	runtime.send = func(message: String, data: Array) -> void:
		sent.append([message, data])


func after_each() -> void:
	PeerkitLinks.set_startup_preset("")
	if runtime.is_inside_tree():
		runtime.get_parent().remove_child(runtime)
	runtime.free()


## The runtime's description of the link with this instance id in a fresh snapshot, or an empty Dictionary.
func _entry(link: Object) -> Dictionary:
	for entry in runtime.snapshot():
		if entry.id == link.get_instance_id():
			return entry
	return {}


## The last message of this name the runtime sent, as its data, or null.
func _last(message: String) -> Variant:
	for i in range(sent.size() - 1, -1, -1):
		if sent[i][0] == message:
			return sent[i][1]
	return null


func _conditioned_pair() -> Array:
	var ends := LocalPacketPeer.create_pair()
	var link := LinkConditioner.new()
	link.inner = ends[0]
	link.use_manual_clock = true
	return [link, ends[1]]


func test_every_kind_of_link_is_listed_with_what_it_wraps_and_a_freed_one_leaves_the_list() -> void:
	var pair := _conditioned_pair()
	var link: LinkConditioner = pair[0]
	var reliable := ReliablePacketPeer.new()
	reliable.inner = LocalPacketPeer.create_pair()[0]
	var network := LocalMultiplayerNetwork.new()
	var wrapper := MultiplayerLinkConditioner.wrap(network.create_server())
	var listed := PeerkitLinks.get_live_links()
	for object in [link, reliable, network, wrapper]:
		assert_true(listed.has(object), "%s is listed" % object.get_class())
	assert_eq(_entry(link)["class"], "LinkConditioner")
	assert_eq(_entry(link).wraps, "LocalPacketPeer")
	assert_eq(_entry(reliable).wraps, "LocalPacketPeer")
	assert_eq(_entry(wrapper).wraps, "LocalMultiplayerPeer")
	assert_eq(_entry(network).directions, PackedStringArray(["to_server", "to_client"]))
	assert_false(listed.any(func(o): return o is LocalPacketPeer), "a plain LocalPacketPeer is no link")
	var id := _listed_then_freed()
	assert_false(PeerkitLinks.get_live_links().any(func(o): return o.get_instance_id() == id),
		"a freed LinkConditioner leaves the list")
	assert_false(runtime.snapshot().any(func(e): return e.id == id), "and the report")


## Makes a LinkConditioner, checks it is listed, and lets it go: its instance id.
func _listed_then_freed() -> int:
	var link := LinkConditioner.new()
	assert_true(runtime.snapshot().any(func(e): return e.id == link.get_instance_id()), "listed while it lives")
	return link.get_instance_id()


func test_a_report_carries_each_direction_s_settings_and_live_figures() -> void:
	var pair := _conditioned_pair()
	var link: LinkConditioner = pair[0]
	assert_ok(link.configure({"latency_ms": 40}, LinkConditioner.DIRECTION_OUTBOUND))
	for i in 5:
		link.put_packet(PackedByteArray([i]))
	link.advance(50)
	runtime.report()
	var reported: Array = _last("peerkit:links")[0]
	var entry: Dictionary = reported.filter(func(e): return e.id == link.get_instance_id())[0]
	var row: Dictionary = entry.peers[0]
	assert_eq(row.outbound.settings.latency_ms, 40)
	assert_eq(row.inbound.settings.latency_ms, 0)
	assert_eq(row.outbound.stats.packets_delivered, 5)
	assert_eq(row.outbound.stats.delay_mean_ms, 40.0)
	assert_true(row.link_up)


func test_a_configure_message_changes_that_link_at_once_and_is_answered() -> void:
	var link: LinkConditioner = _conditioned_pair()[0]
	var other: LinkConditioner = _conditioned_pair()[0]
	assert_true(runtime.on_message("configure", [link.get_instance_id(), 0, {"latency_ms": 80, "loss": 0.25}, 3]))
	assert_eq(link.get_settings().latency_ms, 80)
	assert_eq(link.get_settings().loss, 0.25)
	assert_eq(other.get_settings().latency_ms, 0, "only the link named")
	assert_eq(_last("peerkit:result")[0], OK)
	var reported: Array = _last("peerkit:links")[0]
	assert_true(reported.any(func(e): return e.id == link.get_instance_id() and e.peers[0].outbound.settings.latency_ms == 80),
		"a report with the change follows at once")


func test_bad_settings_from_the_panel_are_refused_with_an_error_and_change_nothing() -> void:
	var link: LinkConditioner = _conditioned_pair()[0]
	runtime.on_message("peerkit:configure", [link.get_instance_id(), 0, {"latency_ms": 30, "loss": 7}, 3])
	assert_error_logged("loss")
	assert_eq(link.get_settings().latency_ms, 0, "all or nothing")
	assert_eq(_last("peerkit:result")[0], ERR_INVALID_PARAMETER)
	runtime.on_message("configure", [link.get_instance_id(), 0, "latency 30"])
	assert_eq(_last("peerkit:result")[0], ERR_INVALID_PARAMETER, "a malformed message is answered, not applied")


func test_a_preset_for_every_link_reaches_conditioners_and_multiplayer_links_but_not_reliable_peers() -> void:
	var link: LinkConditioner = _conditioned_pair()[0]
	var network := LocalMultiplayerNetwork.new()
	var server := network.create_server()
	var client := network.create_client()
	network.poll()
	var wrapper := MultiplayerLinkConditioner.wrap(client)
	var reliable := ReliablePacketPeer.new()
	assert_true(runtime.on_message("preset", [0, 0, "3g", 3]))
	assert_eq(_last("peerkit:result")[0], OK)
	var three_g: Dictionary = link.get_settings()
	assert_true(three_g.latency_ms > 0, "the LinkConditioner took the preset")
	assert_eq(wrapper.get_link_conditions(1, MultiplayerLinkConditioner.DIRECTION_OUTBOUND), three_g,
		"the MultiplayerLinkConditioner's link to its server")
	assert_eq(network.get_link_conditions(client.get_unique_id(), LocalMultiplayerNetwork.DIRECTION_TO_CLIENT), three_g,
		"the LocalMultiplayerNetwork's client link")
	var entry := _entry(reliable)
	assert_true(entry.peers.is_empty(), "a ReliablePacketPeer has no link settings")
	assert_true(entry.reliable.has("rtt_ms") and entry.reliable.has("retransmissions") and entry.reliable.has("messages_pending"))


func test_a_multiplayer_link_is_reported_per_remote_peer() -> void:
	var network := LocalMultiplayerNetwork.new()
	network.use_manual_clock = true
	var server := network.create_server()
	var client := network.create_client()
	network.poll()
	var wrapper := MultiplayerLinkConditioner.wrap(client)
	wrapper.use_manual_clock = true
	assert_ok(wrapper.set_link_conditions(1, {"latency_ms": 25}, MultiplayerLinkConditioner.DIRECTION_OUTBOUND))
	var row: Dictionary = _entry(wrapper).peers[0]
	assert_eq(row.peer_id, 1, "a client's one remote peer is the server")
	assert_eq(row.outbound.settings.latency_ms, 25)
	assert_true(row.outbound.stats.has("retransmitted"))
	var net_row: Dictionary = _entry(network).peers[0]
	assert_eq(net_row.peer_id, client.get_unique_id())
	assert_true(net_row.has("to_server") and net_row.has("to_client"))


func test_cutting_and_restoring_a_link_from_the_panel() -> void:
	var pair := _conditioned_pair()
	var link: LinkConditioner = pair[0]
	runtime.on_message("link_up", [link.get_instance_id(), 0, false])
	assert_false(link.link_up)
	assert_false(_entry(link).peers[0].link_up)
	link.put_packet(PackedByteArray([1]))
	link.advance(1)
	assert_eq(pair[1].get_available_packet_count(), 0, "a cut link carries nothing")
	runtime.on_message("link_up", [link.get_instance_id(), 0, true])
	assert_true(link.link_up)
	link.put_packet(PackedByteArray([2]))
	link.advance(1)
	assert_eq(pair[1].get_available_packet_count(), 1)


func test_a_message_for_a_freed_link_is_answered_with_an_error() -> void:
	var link: LinkConditioner = _conditioned_pair()[0]
	var id := link.get_instance_id()
	link = null
	runtime.on_message("preset", [id, 0, "wifi", 3])
	assert_error_logged("no live link")
	assert_eq(_last("peerkit:result")[0], ERR_DOES_NOT_EXIST)
	assert_false(runtime.on_message("something_else", []), "other messages are not ours")


func test_the_startup_preset_reaches_new_multiplayer_conditioners_and_link_conditioners_only_when_asked() -> void:
	var before: LinkConditioner = _conditioned_pair()[0]
	assert_ok(runtime.apply_startup_preset("lossy", false))
	assert_eq(PeerkitLinks.get_startup_preset(), "lossy")
	var lossy := LinkConditioner.new()
	lossy.apply_preset("lossy")
	var expected: Dictionary = lossy.get_settings()
	var wrapper := MultiplayerLinkConditioner.new()
	assert_eq(wrapper.get_link_conditions(0, MultiplayerLinkConditioner.DIRECTION_OUTBOUND), expected,
		"a new MultiplayerLinkConditioner starts with the preset, outbound as wrap() applies one ...")
	assert_eq(wrapper.get_link_conditions(0, MultiplayerLinkConditioner.DIRECTION_INBOUND).loss, 0,
		"... so two game instances run from the editor share one preset's path, not two")
	assert_eq(LinkConditioner.new().get_settings().loss, 0, "LinkConditioners only when asked")
	assert_ok(runtime.apply_startup_preset("lossy", true))
	assert_eq(LinkConditioner.new().get_settings(), expected)
	assert_eq(before.get_settings().loss, 0, "a conditioner made before keeps its settings")
	var scripted := MultiplayerLinkConditioner.wrap(LocalMultiplayerNetwork.new().create_server(), "clean")
	assert_eq(scripted.get_link_conditions(0, MultiplayerLinkConditioner.DIRECTION_OUTBOUND).loss, 0,
		"a preset the script passes to wrap() wins")
	assert_error(runtime.apply_startup_preset("dialup", true), ERR_INVALID_PARAMETER)
	assert_error_logged("peerkit/debugger/startup_preset")
	assert_eq(PeerkitLinks.get_startup_preset(), "lossy", "an unknown name changes nothing")


func test_without_an_editor_attached_the_runtime_registers_nothing_and_sends_nothing() -> void:
	assert_false(EngineDebugger.is_active(), "headless tests run without the editor's debugger")
	Engine.get_main_loop().root.add_child(runtime)
	assert_false(runtime.is_processing(), "no per-frame work")
	assert_false(EngineDebugger.has_capture("peerkit"), "no capture registered")
	await Engine.get_main_loop().process_frame
	await Engine.get_main_loop().process_frame
	assert_true(sent.is_empty(), "nothing sent")


## The editor's panel fed with the runtime's reports, and its buttons' messages handed to the runtime, as the
## debugger channel would: the whole round trip without an editor.
func test_the_panel_lists_the_links_plots_their_figures_and_its_apply_button_changes_the_game() -> void:
	var panel_script: GDScript = load("res://addons/peerkit/debugger/panel.gd")
	var panel: Control = panel_script.new()
	panel.send = func(message: String, data: Array) -> void:
		runtime.on_message(message, data)
	runtime.send = func(message: String, data: Array) -> void:
		sent.append([message, data])
		if message == "peerkit:links":
			panel.show_links(data[0])
		elif message == "peerkit:result":
			panel.show_result(data)
	var pair := _conditioned_pair()
	var link: LinkConditioner = pair[0]
	assert_ok(link.configure({"latency_ms": 20}))
	for report in 3:
		for i in 10:
			link.put_packet(PackedByteArray([i]))
		link.advance(30)
		while pair[1].get_available_packet_count() > 0:
			pair[1].get_packet()
		runtime.report()
	var items := []
	var item: TreeItem = panel.tree.get_root().get_first_child()
	while item != null:
		items.append(item.get_metadata(0)[0])
		item = item.get_next()
	assert_eq(items[0], 0, "the first row is every link")
	assert_true(items.has(link.get_instance_id()), "the link has a row")
	panel.select(link.get_instance_id())
	assert_true(panel.details.text.contains("latency 20 ms"), "its settings are shown: " + panel.details.text)
	assert_true(panel.details.text.contains("delivered 30"), "and its figures")
	assert_eq(panel.latency.value, 20.0, "the fields start from the link's settings")
	assert_eq(panel.delay_plot.series[0].size(), 2, "two reports after the first make two samples")
	assert_eq(panel.delay_plot.series[0][-1], 20.0, "the delay of what arrived since the last report")
	assert_eq(panel.throughput_plot.series.size(), 2, "one line per direction")
	panel.latency.value = 150
	panel.loss.value = 10
	panel.apply_button.pressed.emit()
	assert_eq(link.get_settings().latency_ms, 150, "the button's change reached the link")
	assert_eq(link.get_settings().loss, 0.1)
	assert_true(panel.result.text.begins_with("ok"), "and the panel shows the game's answer: " + panel.result.text)
	assert_true(panel.details.text.contains("latency 150 ms"), "and the new settings")
	panel.cut_button.pressed.emit()
	assert_false(link.link_up, "Cut link cuts it")
	panel.restore_button.pressed.emit()
	assert_true(link.link_up)
	panel.setting_name.selected = panel.SETTINGS.find("duplicate")
	panel.setting_value.text = "0.5"
	panel.setting_button.pressed.emit()
	assert_eq(link.get_settings().duplicate, 0.5, "any setting can be changed by name")
	panel.free()


## A UdpMultiplayerPeer wrapped by MultiplayerLinkConditioner shows in the panel as what the wrapper wraps, with
## a row for its remote peer once connected.
func test_a_wrapped_udp_multiplayer_peer_is_listed_with_its_remote_peer() -> void:
	var server := UdpMultiplayerPeer.new()
	assert_ok(server.create_server(0, 4, "127.0.0.1"))
	var client := UdpMultiplayerPeer.new()
	assert_ok(client.create_client("127.0.0.1", server.get_local_port()))
	var wrapper := MultiplayerLinkConditioner.wrap(client)
	var deadline := Time.get_ticks_msec() + 5000
	while client.get_connection_status() != MultiplayerPeer.CONNECTION_CONNECTED and Time.get_ticks_msec() < deadline:
		wrapper.poll()
		server.poll()
		OS.delay_msec(1)
	assert_eq(client.get_connection_status(), MultiplayerPeer.CONNECTION_CONNECTED, "connected")
	assert_ok(wrapper.set_link_conditions(1, {"latency_ms": 25}, MultiplayerLinkConditioner.DIRECTION_OUTBOUND))
	assert_eq(_entry(wrapper).wraps, "UdpMultiplayerPeer")
	var rows: Array = _entry(wrapper).peers
	assert_eq(rows.size(), 1, "one remote peer: the server")
	if rows.size() == 1:
		assert_eq(rows[0].peer_id, 1)
		assert_eq(rows[0].outbound.settings.latency_ms, 25)
	client.close()
	server.close()
