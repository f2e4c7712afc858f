## The demo a person can watch: two endpoints exchange game-like traffic over peerkit peers, in real time.
##   position updates, 60 a second, unreliable:  LinkConditioner -> LocalPacketPeer pair
##   chat, reliable:  ReliablePacketPeer -> LinkConditioner -> LocalPacketPeer pair -> ReliablePacketPeer
## The panel on the left sets both links (a slider per impairment, the presets, link up/down); the plots show
## what arrives: delivery latency, loss, throughput, and the reliable channel's RTT and retransmissions. The
## world view shows the sender's dot and where the receiver believes it is.
## Options after `--`: --preset NAME, --loss P (on top of the preset), --screenshot DIR (with --seconds S: run S seconds, save DIR/demo.png and
## DIR/demo_layout.json, quit), used by scripts/screenshot-test.sh.
extends Control

const Plot := preload("res://demo/plot.gd")
const PANEL_BACKGROUND := Color("#1d2733")
const SENDER_COLOR := Color("#f2c14e")
const RECEIVER_COLOR := Color("#4ec3f2")
const UPDATE_HZ := 60.0
const SAMPLE_SECONDS := 0.25
const WARM_UP_SECONDS := 0.5
const PRESETS := ["clean", "wifi", "4g", "3g", "lossy", "satellite"]
## Slider settings: [setting, label, maximum, step, unit shown].
const SLIDERS := [
	["latency_ms", "Latency", 400.0, 1.0, "ms"],
	["jitter_ms", "Jitter", 150.0, 1.0, "ms"],
	["loss", "Loss", 0.5, 0.005, ""],
	["burst_enter_probability", "Burst loss: enter", 0.2, 0.005, ""],
	["duplicate", "Duplicate", 0.2, 0.005, ""],
	["reorder", "Reorder", 0.2, 0.005, ""],
	["corrupt", "Corrupt", 0.1, 0.005, ""],
	["bandwidth_bytes_per_second", "Bandwidth (0: unlimited)", 200000.0, 1000.0, "B/s"],
]

var position_link: LinkConditioner
var position_receiver: LocalPacketPeer
var chat_link: LinkConditioner
var chat_sender: ReliablePacketPeer
var chat_receiver: ReliablePacketPeer

var sliders := {}
var slider_labels := {}
var preset_button: OptionButton
var link_toggle: CheckButton
var chat_log: RichTextLabel
var status_label: Label
var panel: PanelContainer
var world: Control
var plots := {}

var started_usec := 0
var next_update_usec := 0
var next_sample_usec := 0
var next_chat_usec := 0
var sequence := 0
var chat_count := 0
var sender_position := Vector2.ZERO
var receiver_position := Vector2.ZERO
var newest_sequence := -1
## Per sample window: updates sent, received, bytes received, latency sum; and retransmissions seen before.
var window := {"sent": 0, "received": 0, "bytes": 0, "latency": 0.0}
var last_retransmissions := 0
var updating_sliders := false
var options := {"preset": "4g", "loss": -1.0, "screenshot": "", "seconds": 5.0}


func _ready() -> void:
	_parse(OS.get_cmdline_user_args())
	_build_links()
	_build_ui()
	_select_preset(PRESETS.find(options["preset"]))
	if options["loss"] >= 0.0:
		sliders["loss"].value = options["loss"]
	started_usec = Time.get_ticks_usec()
	next_update_usec = started_usec
	next_sample_usec = started_usec + int(SAMPLE_SECONDS * 1e6)


func _parse(args: PackedStringArray) -> void:
	var i := 0
	while i + 1 < args.size():
		var key := args[i].trim_prefix("--")
		if options.has(key):
			options[key] = args[i + 1].to_float() if key in ["seconds", "loss"] else args[i + 1]
		i += 2
	if not PRESETS.has(options["preset"]):
		printerr("unknown preset %s; using 4g" % options["preset"])
		options["preset"] = "4g"


func _build_links() -> void:
	var pair := LocalPacketPeer.create_pair(4096)
	position_link = LinkConditioner.new()
	position_link.inner = pair[0]
	position_link.seed = 1
	position_receiver = pair[1]
	var chat_pair := LocalPacketPeer.create_pair(4096)
	chat_link = LinkConditioner.new()
	chat_link.inner = chat_pair[0]
	chat_link.seed = 2
	chat_sender = ReliablePacketPeer.new()
	chat_sender.inner = chat_link
	chat_receiver = ReliablePacketPeer.new()
	chat_receiver.inner = chat_pair[1]


func _build_ui() -> void:
	set_anchors_preset(Control.PRESET_FULL_RECT)
	var background := ColorRect.new()
	background.color = Color("#0b0f14")
	background.set_anchors_preset(Control.PRESET_FULL_RECT)
	add_child(background)
	var columns := HBoxContainer.new()
	columns.set_anchors_preset(Control.PRESET_FULL_RECT)
	columns.add_theme_constant_override("separation", 10)
	add_child(columns)

	panel = PanelContainer.new()
	panel.custom_minimum_size = Vector2(340, 0)
	var style := StyleBoxFlat.new()
	style.bg_color = PANEL_BACKGROUND
	style.set_content_margin_all(12)
	panel.add_theme_stylebox_override("panel", style)
	columns.add_child(panel)
	var controls := VBoxContainer.new()
	controls.add_theme_constant_override("separation", 2)
	panel.add_child(controls)
	var title := Label.new()
	title.text = "peerkit: link conditions"
	title.add_theme_font_size_override("font_size", 20)
	controls.add_child(title)
	preset_button = OptionButton.new()
	for preset in PRESETS:
		preset_button.add_item("preset: " + preset)
	preset_button.item_selected.connect(_select_preset)
	controls.add_child(preset_button)
	for spec in SLIDERS:
		var label := Label.new()
		controls.add_child(label)
		var slider := HSlider.new()
		slider.max_value = spec[2]
		slider.step = spec[3]
		slider.value_changed.connect(_slider_changed.bind(spec[0]))
		controls.add_child(slider)
		sliders[spec[0]] = slider
		slider_labels[spec[0]] = label
	link_toggle = CheckButton.new()
	link_toggle.text = "Link up"
	link_toggle.button_pressed = true
	link_toggle.toggled.connect(_link_toggled)
	controls.add_child(link_toggle)
	var chat_button := Button.new()
	chat_button.text = "Send a chat message (reliable)"
	chat_button.pressed.connect(_send_chat)
	controls.add_child(chat_button)
	chat_log = RichTextLabel.new()
	chat_log.custom_minimum_size = Vector2(0, 90)
	chat_log.scroll_following = true
	controls.add_child(chat_log)
	status_label = Label.new()
	controls.add_child(status_label)

	var right := VBoxContainer.new()
	right.size_flags_horizontal = Control.SIZE_EXPAND_FILL
	right.add_theme_constant_override("separation", 8)
	columns.add_child(right)
	world = Control.new()
	world.custom_minimum_size = Vector2(0, 200)
	world.draw.connect(_draw_world)
	right.add_child(world)
	var grid := GridContainer.new()
	grid.columns = 2
	grid.size_flags_vertical = Control.SIZE_EXPAND_FILL
	grid.add_theme_constant_override("h_separation", 8)
	grid.add_theme_constant_override("v_separation", 8)
	right.add_child(grid)
	for spec in [
		["latency", "Delivery latency (unreliable updates)", "ms", Color("#f2c14e"), 50.0],
		["loss", "Loss (updates not arrived)", "%", Color("#f26d4e"), 5.0],
		["throughput", "Throughput received", "KB/s", Color("#7bd88f"), 2.0],
		["rtt", "ReliablePacketPeer RTT", "ms", Color("#4ec3f2"), 50.0],
		["retransmissions", "Retransmissions per second", "/s", Color("#c49bf2"), 2.0],
		["chat", "Chat messages pending", "", Color("#e0e0e0"), 2.0],
	]:
		var plot := Plot.new()
		plot.title = spec[1]
		plot.unit = spec[2]
		plot.color = spec[3]
		plot.scale_floor = spec[4]
		plot.size_flags_horizontal = Control.SIZE_EXPAND_FILL
		plot.size_flags_vertical = Control.SIZE_EXPAND_FILL
		grid.add_child(plot)
		plots[spec[0]] = plot


func _select_preset(index: int) -> void:
	if index < 0:
		return
	preset_button.select(index)
	for link in [position_link, chat_link]:
		link.apply_preset(PRESETS[index], LinkConditioner.DIRECTION_BOTH)
	_read_sliders_from_link()


func _read_sliders_from_link() -> void:
	var settings: Dictionary = position_link.get_settings(LinkConditioner.DIRECTION_OUTBOUND)
	updating_sliders = true
	for key in sliders:
		sliders[key].value = settings[key]
		_label_slider(key, settings[key])
	updating_sliders = false


func _label_slider(key: String, value: float) -> void:
	for spec in SLIDERS:
		if spec[0] == key:
			var shown := ("%.3f" % value) if spec[3] < 1.0 else ("%d %s" % [value, spec[4]])
			slider_labels[key].text = "%s: %s" % [spec[1], shown]


func _slider_changed(value: float, key: String) -> void:
	_label_slider(key, value)
	if updating_sliders:
		return
	for link in [position_link, chat_link]:
		link.configure({key: value}, LinkConditioner.DIRECTION_BOTH)


func _link_toggled(up: bool) -> void:
	position_link.link_up = up
	chat_link.link_up = up


func _send_chat() -> void:
	chat_count += 1
	chat_sender.put_var({"text": "message %d" % chat_count, "sent": Time.get_ticks_usec()})


func _process(_delta: float) -> void:
	var now := Time.get_ticks_usec()
	var t := (now - started_usec) / 1e6
	sender_position = Vector2(cos(t * 1.3), sin(t * 2.1))
	while next_update_usec <= now:
		var update := PackedByteArray()
		update.resize(24)
		update.encode_u32(0, sequence)
		update.encode_s64(4, next_update_usec)
		update.encode_float(12, sender_position.x)
		update.encode_float(16, sender_position.y)
		position_link.put_packet(update)
		sequence += 1
		window["sent"] += 1
		next_update_usec += int(1e6 / UPDATE_HZ)
	if now >= next_chat_usec:
		next_chat_usec = now + 200000
		_send_chat()
	position_link.poll()
	chat_sender.poll()
	chat_receiver.poll()
	while position_receiver.get_available_packet_count() > 0:
		var update := position_receiver.get_packet()
		if update.size() != 24:
			continue  # not an update (the link does not change sizes; this is a guard)
		var number := update.decode_u32(0)
		window["received"] += 1
		window["bytes"] += update.size()
		window["latency"] += (now - update.decode_s64(4)) / 1000.0
		if number > newest_sequence:
			newest_sequence = number
			receiver_position = Vector2(update.decode_float(12), update.decode_float(16))
	while chat_receiver.get_available_packet_count() > 0:
		var message = chat_receiver.get_var()
		if message is Dictionary:
			chat_log.append_text("%s  (%.0f ms)\n" % [message["text"], (now - int(message["sent"])) / 1000.0])
	if now >= next_sample_usec:
		next_sample_usec += int(SAMPLE_SECONDS * 1e6)
		_sample(t >= WARM_UP_SECONDS)
	world.queue_redraw()
	if options["screenshot"] != "" and t >= float(options["seconds"]):
		_save_screenshot()


## Plots the sample window just ended (not during the warm-up, whose first frames are slow while things load).
func _sample(plot: bool) -> void:
	if not plot:
		window = {"sent": 0, "received": 0, "bytes": 0, "latency": 0.0}
		last_retransmissions = chat_sender.get_stats()["retransmissions"]
		return
	var received: int = window["received"]
	var sent: int = window["sent"]
	if received > 0:
		plots["latency"].push(window["latency"] / received)
	plots["loss"].push(100.0 * maxf(0.0, 1.0 - float(received) / maxf(1.0, sent)))
	plots["throughput"].push(window["bytes"] / 1024.0 / SAMPLE_SECONDS)
	var stats := chat_sender.get_stats()
	plots["rtt"].push(stats["rtt_ms"])
	plots["retransmissions"].push((stats["retransmissions"] - last_retransmissions) / SAMPLE_SECONDS)
	last_retransmissions = stats["retransmissions"]
	plots["chat"].push(stats["messages_pending"])
	var link_stats: Dictionary = position_link.get_stats()["outbound"]
	status_label.text = "updates: %d sent, %d delivered, %d lost\nchat: %d sent, %d received" % [
		link_stats["packets_in"], link_stats["packets_delivered"], link_stats["dropped_loss"],
		stats["messages_sent"], chat_receiver.get_stats()["messages_received"]]
	window = {"sent": 0, "received": 0, "bytes": 0, "latency": 0.0}


func _draw_world() -> void:
	var area := Rect2(Vector2.ZERO, world.size)
	world.draw_rect(area, Color("#10161d"))
	var center := area.get_center()
	var radius := Vector2(area.size.x * 0.4, area.size.y * 0.38)
	world.draw_arc(center, 4.0, 0, TAU, 16, Color("#2a3540"))
	world.draw_circle(center + sender_position * radius, 12.0, SENDER_COLOR)
	world.draw_circle(center + receiver_position * radius, 8.0, RECEIVER_COLOR)
	var font := get_theme_default_font()
	world.draw_string(font, Vector2(10, 20), "sender (yellow) and what the receiver sees (blue)",
			HORIZONTAL_ALIGNMENT_LEFT, -1, 14, Color("#d8e0e8"))


## Saves what is on screen and, for the screenshot test, where the panel, dots and plots are, then quits.
func _save_screenshot() -> void:
	var dir: String = options["screenshot"]
	DirAccess.make_dir_recursive_absolute(dir)
	var image := get_viewport().get_texture().get_image()
	image.save_png(dir.path_join("demo.png"))
	var regions := [
		{"what": "the control panel", "kind": "fill", "rect": _rect_of(panel), "color": PANEL_BACKGROUND.to_html(false)},
		{"what": "the panel's labels", "kind": "text", "rect": _rect_of(panel)},
		{"what": "the sender's dot", "kind": "dot", "rect": _rect_of(world), "color": SENDER_COLOR.to_html(false)},
		{"what": "the receiver's dot", "kind": "dot", "rect": _rect_of(world), "color": RECEIVER_COLOR.to_html(false)},
	]
	for key in plots:
		regions.append({"what": "the %s plot" % key, "kind": "line", "rect": _rect_of(plots[key]),
			"color": plots[key].color.to_html(false)})
	var layout := {"regions": regions}
	var file := FileAccess.open(dir.path_join("demo_layout.json"), FileAccess.WRITE)
	file.store_string(JSON.stringify(layout, "  "))
	file.close()
	print("demo: saved %s" % dir.path_join("demo.png"))
	get_tree().quit(0)


func _rect_of(control: Control) -> Array:
	var r := control.get_global_rect()
	return [r.position.x, r.position.y, r.size.x, r.size.y]
