@tool
extends VBoxContainer
## The "peerkit" tab of the editor's Debugger: every peerkit link of the running game with its settings and
## live figures, plots of the last seconds, and controls that change the selected link (or all of them) in the
## game at once. Fed by [code]debugger_plugin.gd[/code] with the reports of the game's [code]runtime.gd[/code].

const Plot := preload("plot.gd")
const PRESETS := ["clean", "wifi", "4g", "3g", "lossy", "satellite"]
## Every setting [method LinkConditioner.configure] takes, for the "any setting" row.
const SETTINGS := ["latency_ms", "jitter_ms", "jitter_distribution", "jitter_correlation", "jitter_may_reorder",
	"loss", "burst_enter_probability", "burst_exit_probability", "loss_in_good_state", "loss_in_bad_state",
	"duplicate", "reorder", "corrupt", "bandwidth_bytes_per_second", "queue_limit", "link_up"]
## Samples kept per plot (at the default report interval, 10 s).
const HISTORY := 40
## The group the panel joins, so tools (and the editor test) can find it.
const GROUP := "peerkit_debugger_panel"

## Sends a message to the game: set by the debugger plugin to the session's send_message.
var send: Callable = func(_message: String, _data: Array) -> void: pass
## The game's last report: one Dictionary per link (see runtime.gd's describe()).
var links: Array = []
## The selection: a link's instance id (0: every link) and a remote peer (0: all, or a LinkConditioner's link).
var selected_link := 0
var selected_peer := 0
## How many reports arrived since the game started.
var reports := 0

var status: Label
var tree: Tree
var details: Label
var delay_plot: Plot
var loss_plot: Plot
var throughput_plot: Plot
## Says which line is which direction.
var legend: RichTextLabel
var direction: OptionButton
var preset: OptionButton
var latency: SpinBox
var jitter: SpinBox
var loss: SpinBox
var bandwidth: SpinBox
var apply_button: Button
var preset_button: Button
var cut_button: Button
var restore_button: Button
var setting_name: OptionButton
var setting_value: LineEdit
var setting_button: Button
var result: Label

## Key -> {"stats": last counters, "at": msec, series name -> PackedFloat32Array}.
var _history := {}
var _rebuilding := false


func _init() -> void:
	add_to_group(GROUP)
	size_flags_vertical = Control.SIZE_EXPAND_FILL
	status = Label.new()
	status.text = "Waiting for the game's peerkit links (enable the peerkit plugin, then run the game from the editor)."
	add_child(status)
	var split := HSplitContainer.new()
	split.size_flags_vertical = Control.SIZE_EXPAND_FILL
	add_child(split)
	tree = Tree.new()
	tree.custom_minimum_size = Vector2(340, 120)
	tree.hide_root = true
	tree.item_selected.connect(_on_item_selected)
	split.add_child(tree)
	var right := VBoxContainer.new()
	right.size_flags_horizontal = Control.SIZE_EXPAND_FILL
	split.add_child(right)
	details = Label.new()
	details.autowrap_mode = TextServer.AUTOWRAP_WORD_SMART
	details.custom_minimum_size = Vector2(300, 0)
	right.add_child(details)
	var plots := HBoxContainer.new()
	right.add_child(plots)
	delay_plot = _plot(plots, "delay", "ms")
	loss_plot = _plot(plots, "loss", "%")
	throughput_plot = _plot(plots, "throughput", "kB/s")
	legend = RichTextLabel.new()
	legend.bbcode_enabled = true
	legend.fit_content = true
	legend.text = "[color=#%s]━ outbound / to the server[/color]    [color=#%s]━ inbound / to the client[/color]" % [
		Plot.COLORS[0].to_html(false), Plot.COLORS[1].to_html(false)]
	right.add_child(legend)
	var row := HFlowContainer.new()
	right.add_child(row)
	direction = OptionButton.new()
	for label in ["both directions", "outbound / to server", "inbound / to client"]:
		direction.add_item(label)
	row.add_child(direction)
	preset = OptionButton.new()
	for preset_name in PRESETS:
		preset.add_item(preset_name)
	row.add_child(preset)
	preset_button = _button(row, "Apply preset", _on_preset)
	latency = _spin(row, "latency ms", 0, 3600000, 1)
	jitter = _spin(row, "jitter ms", 0, 3600000, 1)
	loss = _spin(row, "loss %", 0, 100, 0.1)
	bandwidth = _spin(row, "bandwidth kB/s (0: unlimited)", 0, 1000000, 1)
	apply_button = _button(row, "Apply settings", _on_apply)
	cut_button = _button(row, "Cut link", func() -> void: _send_link_up(false))
	restore_button = _button(row, "Restore link", func() -> void: _send_link_up(true))
	var any := HBoxContainer.new()
	right.add_child(any)
	setting_name = OptionButton.new()
	for setting in SETTINGS:
		setting_name.add_item(setting)
	any.add_child(setting_name)
	setting_value = LineEdit.new()
	setting_value.placeholder_text = "value (number, true/false, or text)"
	setting_value.custom_minimum_size = Vector2(220, 0)
	any.add_child(setting_value)
	setting_button = _button(any, "Set", _on_set_one)
	result = Label.new()
	any.add_child(result)
	_update_controls()


## Forgets the last game's links (a new game started).
func clear() -> void:
	links = []
	reports = 0
	_history.clear()
	selected_link = 0
	selected_peer = 0
	status.text = "Waiting for the game's peerkit links."
	_rebuild_tree()
	_show_selection()


## Says the game stopped; the last figures stay on screen.
func game_stopped() -> void:
	status.text = "The game stopped. Last report: %d links." % links.size()


## Takes a report from the game: the links, their settings and counters.
func show_links(snapshot: Array) -> void:
	reports += 1
	links = snapshot
	_record(Time.get_ticks_msec())
	if selected_link != 0 and _find(selected_link).is_empty():
		selected_link = 0
		selected_peer = 0
	status.text = "%d peerkit link%s in the running game." % [links.size(), "" if links.size() == 1 else "s"]
	_rebuild_tree()
	_show_selection()


## Shows the game's answer to the last change: [code][error, text][/code].
func show_result(data: Array) -> void:
	if data.size() < 2:
		return
	result.text = ("ok: %s" if int(data[0]) == OK else "%s") % data[1]
	result.modulate = Color.WHITE if int(data[0]) == OK else Color("#ff8a80")


## Selects a link (0: every link) and one of its remote peers (0: all of them).
func select(link_id: int, peer_id: int = 0) -> void:
	selected_link = link_id
	selected_peer = peer_id
	_rebuild_tree()
	_show_selection()
	_fill_fields()


func _plot(parent: Control, caption: String, suffix: String) -> Plot:
	var plot := Plot.new()
	plot.title = caption
	plot.unit = suffix
	plot.capacity = HISTORY
	parent.add_child(plot)
	return plot


func _button(parent: Control, text: String, pressed: Callable) -> Button:
	var button := Button.new()
	button.text = text
	button.pressed.connect(pressed)
	parent.add_child(button)
	return button


func _spin(parent: Control, label: String, low: float, high: float, step: float) -> SpinBox:
	var box := HBoxContainer.new()
	var caption := Label.new()
	caption.text = label
	box.add_child(caption)
	var spin := SpinBox.new()
	spin.min_value = low
	spin.max_value = high
	spin.step = step
	box.add_child(spin)
	parent.add_child(box)
	return spin


## The last five digits of an instance id, enough to tell a game's links apart (the tooltip has it whole).
func _short_id(id: int) -> String:
	return "%05d" % (absi(id) % 100000)


func _find(link_id: int) -> Dictionary:
	for link in links:
		if int(link.id) == link_id:
			return link
	return {}


func _row(link: Dictionary, peer_id: int) -> Dictionary:
	for row in link.get("peers", []):
		if int(row.peer_id) == peer_id:
			return row
	return {}


func _lost(stats: Dictionary) -> int:
	return int(stats.get("dropped_loss", 0)) + int(stats.get("dropped_overflow", 0)) + int(stats.get("dropped_link_down", 0))


## Turns the new counters into one sample per plot for every row, direction and reliable peer, and for all
## links together.
func _record(now_ms: int) -> void:
	var total := {"in": 0, "lost": 0, "delivered": 0, "delay_sum": 0.0, "bytes": 0}
	var dt := 0.0
	for link in links:
		for row in link.get("peers", []):
			for d in link.directions:
				var stats: Dictionary = row[d].stats
				var key := "%d:%d:%s" % [link.id, row.peer_id, d]
				var h: Dictionary = _history.get(key, {})
				if h.has("stats"):
					var prev: Dictionary = h.stats
					var seconds := maxf((now_ms - int(h.at)) / 1000.0, 0.001)
					dt = seconds
					var delivered := int(stats.packets_delivered) - int(prev.packets_delivered)
					var arrived := int(stats.packets_in) - int(prev.packets_in)
					var lost := _lost(stats) - _lost(prev)
					var delay_sum := float(stats.delay_mean_ms) * int(stats.packets_delivered) - float(prev.delay_mean_ms) * int(prev.packets_delivered)
					var bytes := int(stats.bytes_delivered) - int(prev.bytes_delivered)
					var delays: PackedFloat32Array = h.get("delay", PackedFloat32Array())
					_push(h, "delay", delay_sum / delivered if delivered > 0 else (delays[-1] if delays.size() > 0 else 0.0))
					_push(h, "loss", 100.0 * lost / arrived if arrived > 0 else 0.0)
					_push(h, "throughput", bytes / seconds / 1000.0)
					total.in += arrived
					total.lost += lost
					total.delivered += delivered
					total.delay_sum += delay_sum
					total.bytes += bytes
				h.stats = stats
				h.at = now_ms
				_history[key] = h
		if link.has("reliable"):
			var stats: Dictionary = link.reliable
			var key := "%d:reliable" % link.id
			var h: Dictionary = _history.get(key, {})
			if h.has("stats"):
				var seconds := maxf((now_ms - int(h.at)) / 1000.0, 0.001)
				_push(h, "delay", float(stats.rtt_ms))
				_push(h, "loss", (int(stats.retransmissions) - int(h.stats.retransmissions)) / seconds)
				_push(h, "throughput", (int(stats.messages_received) - int(h.stats.messages_received)) / seconds)
			h.stats = stats
			h.at = now_ms
			_history[key] = h
	if dt > 0.0:
		var all: Dictionary = _history.get("all", {})
		var delays: PackedFloat32Array = all.get("delay", PackedFloat32Array())
		_push(all, "delay", total.delay_sum / total.delivered if total.delivered > 0 else (delays[-1] if delays.size() > 0 else 0.0))
		_push(all, "loss", 100.0 * total.lost / total.in if total.in > 0 else 0.0)
		_push(all, "throughput", total.bytes / dt / 1000.0)
		_history["all"] = all


func _push(h: Dictionary, series: String, value: float) -> void:
	var samples: PackedFloat32Array = h.get(series, PackedFloat32Array())
	samples.append(value)
	if samples.size() > HISTORY:
		samples = samples.slice(samples.size() - HISTORY)
	h[series] = samples


func _series(key: String, series: String) -> PackedFloat32Array:
	return _history.get(key, {}).get(series, PackedFloat32Array())


func _rebuild_tree() -> void:
	_rebuilding = true
	tree.clear()
	var root := tree.create_item()
	var all := tree.create_item(root)
	all.set_text(0, "All links (%d)" % links.size())
	all.set_metadata(0, [0, 0])
	if selected_link == 0:
		all.select(0)
	for link in links:
		var item := tree.create_item(root)
		var label: String = link["class"]
		if link.wraps != "":
			label += " over " + link.wraps
		item.set_text(0, "%s  #%s" % [label, _short_id(int(link.id))])
		item.set_tooltip_text(0, "instance id %d" % link.id)
		item.set_metadata(0, [int(link.id), 0])
		var peers: Array = link.get("peers", [])
		var per_peer: bool = link["class"] != "LinkConditioner"
		if int(link.id) == selected_link and (selected_peer == 0 or not per_peer):
			item.select(0)
		if per_peer:
			for row in peers:
				var child := tree.create_item(item)
				child.set_text(0, "peer %d%s" % [row.peer_id, "" if row.link_up else "  (cut)"])
				child.set_metadata(0, [int(link.id), int(row.peer_id)])
				if int(link.id) == selected_link and int(row.peer_id) == selected_peer:
					child.select(0)
		elif not peers.is_empty() and not peers[0].link_up:
			item.set_text(0, item.get_text(0) + "  (cut)")
	_rebuilding = false


func _on_item_selected() -> void:
	if _rebuilding:
		return
	var picked: Array = tree.get_selected().get_metadata(0)
	selected_link = picked[0]
	selected_peer = picked[1]
	_show_selection()
	_fill_fields()


## The text for one direction's settings and counters.
func _describe_direction(label: String, part: Dictionary) -> String:
	var s: Dictionary = part.settings
	var c: Dictionary = part.stats
	return "%s: latency %s ms, jitter %s ms, loss %s%%, bandwidth %s\n   delivered %d, lost %d, duplicated %d, reordered %d, queued %d, delay %.1f / %.1f / %.1f ms (min / mean / max)" % [
		label, s.get("latency_ms", 0), s.get("jitter_ms", 0), snappedf(float(s.get("loss", 0)) * 100.0, 0.01),
		"unlimited" if int(s.get("bandwidth_bytes_per_second", 0)) == 0 else "%d B/s" % s.bandwidth_bytes_per_second,
		c.packets_delivered, _lost(c), c.duplicated, c.reordered, c.queued, c.delay_min_ms, c.delay_mean_ms, c.delay_max_ms]


func _show_selection() -> void:
	var link := _find(selected_link)
	if link.is_empty():
		var lines := ["Every link: a change applies to each LinkConditioner, MultiplayerLinkConditioner and LocalMultiplayerNetwork (all their peers)."]
		for each in links:
			if each.has("reliable"):
				lines.append("%s #%s: RTT %.1f ms, %d retransmissions, %d pending" % [each["class"], _short_id(int(each.id)), each.reliable.rtt_ms, each.reliable.retransmissions, each.reliable.messages_pending])
		details.text = "\n".join(lines)
		delay_plot.set_series([_series("all", "delay")])
		loss_plot.set_series([_series("all", "loss")])
		throughput_plot.set_series([_series("all", "throughput")])
		_update_controls()
		return
	if link.has("reliable"):
		var r: Dictionary = link.reliable
		details.text = "%s over %s\nRTT %.1f ms (variance %.1f, timeout %.0f), retransmissions %d, pending %d, sent %d, received %d, congestion window %d\nA ReliablePacketPeer has no link settings: condition the peer it wraps." % [
			link["class"], link.wraps, r.rtt_ms, r.rtt_variance_ms, r.rto_ms, r.retransmissions, r.messages_pending,
			r.messages_sent, r.messages_received, r.congestion_window]
		var key := "%d:reliable" % link.id
		delay_plot.title = "RTT"
		loss_plot.title = "retransmissions"
		loss_plot.unit = "/s"
		throughput_plot.title = "messages"
		throughput_plot.unit = "/s"
		delay_plot.set_series([_series(key, "delay")])
		loss_plot.set_series([_series(key, "loss")])
		throughput_plot.set_series([_series(key, "throughput")])
		_update_controls()
		return
	delay_plot.title = "delay"
	loss_plot.title = "loss"
	loss_plot.unit = "%"
	throughput_plot.title = "throughput"
	throughput_plot.unit = "kB/s"
	var rows: Array = link.peers
	if selected_peer != 0:
		rows = rows.filter(func(r): return int(r.peer_id) == selected_peer)
	var lines := ["%s%s" % [link["class"], " over " + link.wraps if link.wraps != "" else ""]]
	for row in rows:
		if link["class"] != "LinkConditioner":
			lines.append("peer %d%s" % [row.peer_id, "" if row.link_up else " (cut)"])
		elif not row.link_up:
			lines.append("(cut)")
		for d in link.directions:
			lines.append(_describe_direction(d, row[d]))
	if rows.is_empty():
		lines.append("no remote peer connected yet")
	details.text = "\n".join(lines)
	var first_row: Dictionary = rows[0] if not rows.is_empty() else {}
	for pair in [[delay_plot, "delay"], [loss_plot, "loss"], [throughput_plot, "throughput"]]:
		var values := []
		if not first_row.is_empty():
			for d in link.directions:
				values.append(_series("%d:%d:%s" % [link.id, first_row.peer_id, d], pair[1]))
		pair[0].set_series(values)
	_update_controls()


## Puts the selected link's current settings (its first direction's) into the fields.
func _fill_fields() -> void:
	var link := _find(selected_link)
	if link.is_empty() or link.get("peers", []).is_empty():
		return
	var row := _row(link, selected_peer)
	if row.is_empty():
		row = link.peers[0]
	var s: Dictionary = row[link.directions[0]].settings
	latency.value = float(s.get("latency_ms", 0))
	jitter.value = float(s.get("jitter_ms", 0))
	loss.value = float(s.get("loss", 0)) * 100.0
	bandwidth.value = float(s.get("bandwidth_bytes_per_second", 0)) / 1000.0


func _update_controls() -> void:
	var link := _find(selected_link)
	var has_settings := selected_link == 0 or not link.has("reliable")
	for control in [apply_button, preset_button, cut_button, restore_button, setting_button]:
		control.disabled = not has_settings or (selected_link == 0 and links.is_empty())


func _direction() -> int:
	return [3, 1, 2][direction.selected]


## Sends the fields' latency, jitter, loss and bandwidth to the selection.
func _on_apply() -> void:
	send.call("peerkit:configure", [selected_link, selected_peer, {
		"latency_ms": latency.value,
		"jitter_ms": jitter.value,
		"loss": loss.value / 100.0,
		"bandwidth_bytes_per_second": int(bandwidth.value * 1000.0),
	}, _direction()])


func _on_preset() -> void:
	send.call("peerkit:preset", [selected_link, selected_peer, PRESETS[preset.selected], _direction()])


## Sends one setting, any of them, with its value read as a bool, a number or text.
func _on_set_one() -> void:
	var text := setting_value.text.strip_edges()
	var value: Variant = text
	if text == "true" or text == "false":
		value = text == "true"
	elif text.is_valid_float():
		value = text.to_float()
	send.call("peerkit:configure", [selected_link, selected_peer, {SETTINGS[setting_name.selected]: value}, _direction()])


func _send_link_up(up: bool) -> void:
	send.call("peerkit:link_up", [selected_link, selected_peer, up])
