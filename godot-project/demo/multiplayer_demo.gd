## Godot's high-level multiplayer over a LocalMultiplayerNetwork, in one window: a server and two clients, each
## with its own SceneMultiplayer on its own pane. The server spawns a player per peer (MultiplayerSpawner) and
## moves them; MultiplayerSynchronizer carries the positions. Client A has a clean link; client B's link is
## impaired (a preset, a latency slider, a cut). Each pane shows the world as that peer sees it.
## Options after `--`: --preset NAME (client B's link, default 3g), --screenshot DIR with --seconds S (save
## DIR/multiplayer.png and DIR/multiplayer_layout.json after S seconds, then quit).
extends Control

const Player := preload("res://demo/mp_player.gd")
const PANE_COLOR := Color("#141c25")
const PLAYER_COLORS := [Color("#f2c14e"), Color("#4ec3f2"), Color("#f26d4e")]
const PRESETS := ["clean", "wifi", "4g", "3g", "lossy", "satellite"]

var network := LocalMultiplayerNetwork.new()
var panes := {}
var apis := {}
var spawners := {}
var client_b_id := 0
var started_usec := 0
var info_labels := {}
var latency_label: Label
var latency_slider: HSlider
var options := {"preset": "3g", "screenshot": "", "seconds": 5.0}


func _ready() -> void:
	_parse(OS.get_cmdline_user_args())
	network.seed = 7
	network.sequential_ids = true
	var background := ColorRect.new()
	background.color = Color("#0b0f14")
	background.set_anchors_preset(Control.PRESET_FULL_RECT)
	add_child(background)
	var column := VBoxContainer.new()
	column.set_anchors_preset(Control.PRESET_FULL_RECT)
	add_child(column)
	column.add_child(_controls())
	var row := HBoxContainer.new()
	row.name = "Panes"
	row.size_flags_vertical = Control.SIZE_EXPAND_FILL
	row.add_theme_constant_override("separation", 8)
	column.add_child(row)
	_add_peer(row, "Server", network.create_server(), "server (id 1)")
	_add_peer(row, "ClientA", network.create_client(), "client A: clean link")
	var client_b := network.create_client()
	client_b_id = client_b.get_unique_id()
	_add_peer(row, "ClientB", client_b, "client B: %s link" % options["preset"])
	network.apply_preset(client_b_id, options["preset"])
	latency_slider.set_value_no_signal(network.get_link_conditions(client_b_id, LocalMultiplayerNetwork.DIRECTION_TO_CLIENT)["latency_ms"])
	apis["Server"].peer_connected.connect(_spawn_player)
	# The server's own player.
	spawners["Server"].spawn([1, 0])
	started_usec = Time.get_ticks_usec()


func _parse(args: PackedStringArray) -> void:
	var i := 0
	while i + 1 < args.size():
		var key := args[i].trim_prefix("--")
		if options.has(key):
			options[key] = args[i + 1].to_float() if key == "seconds" else args[i + 1]
		i += 2
	if not PRESETS.has(options["preset"]):
		options["preset"] = "3g"


func _controls() -> Control:
	var bar := HBoxContainer.new()
	bar.add_theme_constant_override("separation", 12)
	var title := Label.new()
	title.text = "peerkit: SceneMultiplayer over LocalMultiplayerNetwork"
	title.add_theme_font_size_override("font_size", 18)
	bar.add_child(title)
	latency_label = Label.new()
	bar.add_child(latency_label)
	latency_slider = HSlider.new()
	latency_slider.custom_minimum_size = Vector2(200, 0)
	latency_slider.max_value = 500
	latency_slider.value_changed.connect(func(ms: float) -> void:
		network.set_link_conditions(client_b_id, {"latency_ms": ms})
		_show_latency())
	bar.add_child(latency_slider)
	var cut := CheckButton.new()
	cut.text = "Cut client B"
	cut.toggled.connect(func(on: bool) -> void: network.set_link_up(client_b_id, not on))
	bar.add_child(cut)
	return bar


func _show_latency() -> void:
	if client_b_id == 0:
		return
	var settings := network.get_link_conditions(client_b_id, LocalMultiplayerNetwork.DIRECTION_TO_CLIENT)
	latency_label.text = "client B latency %d ms each way, loss %.3f" % [settings["latency_ms"], settings["loss"]]


## A pane for one peer: its own SceneMultiplayer rooted at the pane, a spawner, and a label.
func _add_peer(row: HBoxContainer, pane_name: String, peer: LocalMultiplayerPeer, caption: String) -> void:
	var pane := ColorRect.new()
	pane.name = pane_name
	pane.color = PANE_COLOR
	pane.size_flags_horizontal = Control.SIZE_EXPAND_FILL
	pane.clip_contents = true
	var players := Node2D.new()
	players.name = "Players"
	pane.add_child(players)
	var spawner := MultiplayerSpawner.new()
	spawner.name = "Spawner"
	spawner.spawn_path = NodePath("../Players")
	spawner.spawn_function = _make_player
	pane.add_child(spawner)
	var label := Label.new()
	label.text = caption
	label.position = Vector2(10, 8)
	pane.add_child(label)
	var info := Label.new()
	info.position = Vector2(10, 32)
	info.add_theme_color_override("font_color", Color("#9aa7b4"))
	pane.add_child(info)
	var api := SceneMultiplayer.new()
	api.multiplayer_peer = peer
	# Set before the pane enters the tree, so its spawner registers with this multiplayer.
	get_tree().set_multiplayer(api, NodePath(str(row.get_path()) + "/" + pane_name))
	row.add_child(pane)
	panes[pane_name] = pane
	apis[pane_name] = api
	spawners[pane_name] = spawner
	info_labels[pane_name] = info


func _spawn_player(id: int) -> void:
	spawners["Server"].spawn([id, spawners["Server"].get_node("../Players").get_child_count()])


## Builds a player on every peer (the spawner calls it with the same data on the server and the clients).
func _make_player(data: Array) -> Node:
	var player := Player.new()
	player.name = "Player%d" % data[0]
	player.color = PLAYER_COLORS[int(data[1]) % PLAYER_COLORS.size()]
	player.set_meta("index", data[1])
	var sync := MultiplayerSynchronizer.new()
	sync.name = "Sync"
	var config := SceneReplicationConfig.new()
	config.add_property(NodePath(".:position"))
	config.property_set_replication_mode(NodePath(".:position"), SceneReplicationConfig.REPLICATION_MODE_ALWAYS)
	sync.replication_config = config
	player.add_child(sync)
	sync.root_path = NodePath("..")
	return player


func _process(_delta: float) -> void:
	var t := (Time.get_ticks_usec() - started_usec) / 1e6
	var server_pane: Control = panes["Server"]
	var center := server_pane.size * Vector2(0.5, 0.55)
	for player in server_pane.get_node("Players").get_children():
		var phase := TAU * int(player.get_meta("index")) / 3.0
		player.position = center + Vector2(cos(t + phase), sin(1.5 * t + phase)) * server_pane.size * Vector2(0.32, 0.3)
	var stats := network.get_stats()
	for pane_name in panes:
		var id: int = 1 if pane_name == "Server" else apis[pane_name].get_unique_id()
		var peer_stats: Dictionary = stats["peers"].get(id, {})
		info_labels[pane_name].text = "players seen: %d   packets in: %d" % [
			panes[pane_name].get_node("Players").get_child_count(), peer_stats.get("packets_received", 0)]
	_show_latency()
	if options["screenshot"] != "" and t >= float(options["seconds"]):
		_save_screenshot()


func _save_screenshot() -> void:
	var dir: String = options["screenshot"]
	DirAccess.make_dir_recursive_absolute(dir)
	get_viewport().get_texture().get_image().save_png(dir.path_join("multiplayer.png"))
	var regions := []
	for pane_name in panes:
		var r: Rect2 = panes[pane_name].get_global_rect()
		var rect := [r.position.x, r.position.y, r.size.x, r.size.y]
		regions.append({"what": "the %s pane" % pane_name, "kind": "fill", "rect": rect, "color": PANE_COLOR.to_html(false)})
		regions.append({"what": "the %s pane's labels" % pane_name, "kind": "text", "rect": rect})
		for i in PLAYER_COLORS.size():
			regions.append({"what": "player %d as %s sees it" % [i, pane_name], "kind": "dot", "rect": rect,
				"color": PLAYER_COLORS[i].to_html(false)})
	var file := FileAccess.open(dir.path_join("multiplayer_layout.json"), FileAccess.WRITE)
	file.store_string(JSON.stringify({"regions": regions}, "  "))
	file.close()
	print("demo: saved %s" % dir.path_join("multiplayer.png"))
	get_tree().quit(0)
