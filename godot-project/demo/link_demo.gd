## Headless demo: the same 60 Hz stream of position updates over a clean link and over impaired ones
## (LinkConditioner with the manual clock, so every run prints the same numbers). Run with scripts/demo.sh.
extends SceneTree

const UPDATES := 600  # ten seconds at 60 Hz
const FRAME_MS := 1000.0 / 60.0


func _initialize() -> void:
	var links := {
		"clean": {},
		"wifi": "wifi",
		"4g": "4g",
		"lossy": "lossy",
		"satellite": "satellite",
	}
	var results := {}
	for name in links:
		results[name] = _stream(links[name])
	print("\n%d position updates at 60 Hz, client -> server, manual clock, seed 1:" % UPDATES)
	var columns := links.keys()
	var header := "%-22s" % ""
	for name in columns:
		header += "%12s" % name
	print(header)
	for row in ["delivered", "lost", "duplicated", "reordered", "corrupted", "delay_min_ms", "delay_mean_ms",
			"delay_max_ms", "in_order_ratio"]:
		var line := "%-22s" % row
		for name in columns:
			var value = results[name][row]
			line += ("%12.1f" % value) if typeof(value) == TYPE_FLOAT else ("%12d" % value)
		print(line)
	quit(0)


# Sends UPDATES packets one frame apart through a conditioner set to `preset` ({} = clean) and reports.
func _stream(preset) -> Dictionary:
	var ends := LocalPacketPeer.create_pair(4096)
	var client := LinkConditioner.new()
	client.inner = ends[0]
	client.use_manual_clock = true
	client.seed = 1
	if preset is String:
		client.apply_preset(preset, LinkConditioner.DIRECTION_OUTBOUND)
	var server: LocalPacketPeer = ends[1]
	var received := []
	for tick in UPDATES:
		client.put_var({"tick": tick, "position": Vector2(tick, tick * 0.5)})
		client.advance(FRAME_MS)
		while server.get_available_packet_count() > 0:
			received.append(server.get_var())
	client.advance(2000)
	while server.get_available_packet_count() > 0:
		received.append(server.get_var())
	var in_order := 0
	var newest := -1
	for update in received:
		var tick: int = update["tick"] if update is Dictionary and update.has("tick") else -1
		if tick > newest:
			in_order += 1
			newest = tick
	var stats: Dictionary = client.get_stats()["outbound"]
	return {
		"delivered": stats["packets_delivered"],
		"lost": stats["dropped_loss"] + stats["dropped_overflow"],
		"duplicated": stats["duplicated"],
		"reordered": stats["reordered"],
		"corrupted": stats["corrupted"],
		"delay_min_ms": stats["delay_min_ms"],
		"delay_mean_ms": stats["delay_mean_ms"],
		"delay_max_ms": stats["delay_max_ms"],
		"in_order_ratio": 100.0 * in_order / max(received.size(), 1),
	}
