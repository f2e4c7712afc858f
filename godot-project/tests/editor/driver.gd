@tool
extends EditorPlugin
## Drives the real editor for scripts/editor-test.sh, as a person would: enables the peerkit plugin, sets the
## startup preset, runs game.tscn under the editor's debugger, opens the Debugger's "peerkit" tab, saves a
## screenshot of it and checks its pixels, then changes a link's latency from the panel and waits to see the
## game's figures follow. Prints one line per check and "editor: N passed, N failed", then quits.

const GAME := "res://game.tscn"
const TRIES := 80
## Seconds after which the test gives up and quits.
const WATCHDOG_S := 150

var passed := 0
var failed := 0
var out_dir := ""


func _enter_tree() -> void:
	out_dir = OS.get_environment("PEERKIT_EDITOR_TEST_OUT")
	_run.call_deferred()
	# A check that errors out must not leave the editor open until the script's timeout.
	get_tree().create_timer(WATCHDOG_S).timeout.connect(func() -> void:
		_check(false, "the test finished within %d s" % WATCHDOG_S)
		_finish())


func _check(condition: bool, what: String) -> void:
	if condition:
		passed += 1
		print("ok   ", what)
	else:
		failed += 1
		print("FAIL ", what)


func _wait(seconds: float) -> void:
	await get_tree().create_timer(seconds).timeout


func _panel() -> Control:
	var panels := get_tree().get_nodes_in_group("peerkit_debugger_panel")
	return panels[-1] if not panels.is_empty() else null


func _link(panel: Control, cls: String) -> Dictionary:
	for link in panel.links:
		if link["class"] == cls:
			return link
	return {}


func _run() -> void:
	await _wait(3.0)
	EditorInterface.set_plugin_enabled("peerkit", true)
	await _wait(1.0)
	_check(EditorInterface.is_plugin_enabled("peerkit"), "the peerkit plugin is enabled")
	var autoload := str(ProjectSettings.get_setting("autoload/PeerkitDebugger", ""))
	if autoload.begins_with("*uid://"):
		autoload = "*" + ResourceUID.get_id_path(ResourceUID.text_to_id(autoload.substr(1)))
	_check(autoload == "*res://addons/peerkit/debugger/runtime.gd",
		"enabling it adds the PeerkitDebugger autoload (%s)" % autoload)
	_check(ProjectSettings.has_setting("peerkit/debugger/startup_preset"), "and the startup preset setting")
	ProjectSettings.set_setting("peerkit/debugger/startup_preset", "3g")
	ProjectSettings.save()
	EditorInterface.play_custom_scene(GAME)
	var panel: Control = null
	for i in TRIES:
		await _wait(0.5)
		panel = _panel()
		if panel != null and panel.links.size() >= 3 and not _link(panel, "MultiplayerLinkConditioner").get("peers", []).is_empty() and panel.reports >= 8:
			break
	_check(panel != null, "the Debugger has a peerkit tab")
	if panel == null:
		_finish()
		return
	var classes: Array = panel.links.map(func(link): return link["class"])
	classes.sort()
	_check(classes == ["LinkConditioner", "LocalMultiplayerNetwork", "MultiplayerLinkConditioner"],
		"the panel lists the game's links: %s" % [classes])
	var conditioner := _link(panel, "LinkConditioner")
	var wrapper := _link(panel, "MultiplayerLinkConditioner")
	if conditioner.is_empty() or wrapper.is_empty():
		_finish()
		return
	_check(not wrapper.is_empty() and wrapper.wraps == "LocalMultiplayerPeer" and wrapper.peers.size() == 1,
		"the multiplayer link is listed with what it wraps and its remote peer")
	var three_g := LinkConditioner.new()
	three_g.apply_preset("3g")
	_check(not wrapper.is_empty() and not wrapper.peers.is_empty()
		and wrapper.peers[0].outbound.settings == three_g.get_settings(1),
		"the MultiplayerLinkConditioner started with the project's startup preset (3g)")
	_check(not conditioner.is_empty() and conditioner.peers[0].outbound.settings.latency_ms == 30,
		"the LinkConditioner's settings are reported")
	_show(panel)
	panel.select(int(conditioner.id))
	await _wait(3.0)
	var image := get_tree().root.get_texture().get_image()
	if out_dir != "":
		image.save_png(out_dir.path_join("debugger_panel.png"))
	var checks := _pixel_checks(panel, image)
	for what in checks:
		_check(checks[what], what)
	var blank := Image.create(image.get_width(), image.get_height(), false, image.get_format())
	blank.fill(Color("#202531"))
	var on_blank := _pixel_checks(panel, blank)
	_check(on_blank.values().count(true) == 0, "the same pixel checks fail on a blank image")
	# A change sent from the panel, observed in the game's own figures.
	panel.direction.selected = 0
	panel.latency.value = 120
	panel.apply_button.pressed.emit()
	var seen_settings := false
	var seen_delay := false
	for i in TRIES:
		await _wait(0.25)
		var now := _link(panel, "LinkConditioner")
		if now.is_empty():
			continue
		seen_settings = now.peers[0].outbound.settings.latency_ms == 120
		var delays: PackedFloat32Array = panel.delay_plot.series[0] if not panel.delay_plot.series.is_empty() else PackedFloat32Array()
		seen_delay = seen_settings and delays.size() > 0 and delays[-1] >= 115.0
		if seen_delay:
			break
	_check(seen_settings, "the latency set in the panel reached the game's link")
	_check(seen_delay, "the game's measured delay followed it (last sample %s ms)" % [panel.delay_plot.series[0][-1] if not panel.delay_plot.series.is_empty() and panel.delay_plot.series[0].size() > 0 else "none"])
	_check(panel.result.text.begins_with("ok"), "the panel shows the game's answer (%s)" % panel.result.text)
	if out_dir != "":
		get_tree().root.get_texture().get_image().save_png(out_dir.path_join("debugger_panel_after_change.png"))
	_finish()


## Opens the Debugger bottom panel on the peerkit tab: every tab container between the panel and the editor's
## window shows the tab that holds it (the session's tabs, the debugger's sessions, the bottom panel).
func _show(panel: Control) -> void:
	var child: Node = panel
	var opened := 0
	while child.get_parent() != null:
		var parent := child.get_parent()
		if parent is TabContainer:
			parent.current_tab = child.get_index()
			opened += 1
		child = parent
	print("     opened %d tab containers around the panel" % opened)


## What a person would see: the list shows text, each plot is drawn where the panel lays it out, and the
## delay plot has a line in the first series' colour.
func _pixel_checks(panel: Control, image: Image) -> Dictionary:
	var Plot := load("res://addons/peerkit/debugger/plot.gd")
	return {
		"the list of links shows text": _count(image, panel.tree.get_global_rect(), func(c: Color) -> bool: return c.get_luminance() > 0.55) > 60,
		"the delay plot is drawn": _count(image, panel.delay_plot.get_global_rect(), func(c: Color) -> bool: return _near(c, Plot.BACKGROUND)) > panel.delay_plot.size.x * panel.delay_plot.size.y * 0.4,
		"the delay plot has a line": _count(image, panel.delay_plot.get_global_rect(), func(c: Color) -> bool: return _near(c, Plot.COLORS[0], 0.12)) > 20,
		"the throughput plot has a line": _count(image, panel.throughput_plot.get_global_rect(), func(c: Color) -> bool: return _near(c, Plot.COLORS[0], 0.12)) > 20,
	}


func _near(a: Color, b: Color, tolerance: float = 0.03) -> bool:
	return absf(a.r - b.r) < tolerance and absf(a.g - b.g) < tolerance and absf(a.b - b.b) < tolerance


func _count(image: Image, rect: Rect2, test: Callable) -> int:
	var area := Rect2i(rect).intersection(Rect2i(Vector2i.ZERO, image.get_size()))
	var n := 0
	for y in range(area.position.y, area.end.y):
		for x in range(area.position.x, area.end.x):
			if test.call(image.get_pixel(x, y)):
				n += 1
	return n


func _finish() -> void:
	if EditorInterface.is_playing_scene():
		EditorInterface.stop_playing_scene()
	print("editor: %d passed, %d failed" % [passed, failed])
	await _wait(1.0)
	get_tree().quit(0 if failed == 0 else 1)
