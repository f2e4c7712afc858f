## Prints the performance targets from the merged figures of bench.gd's runs: scripts/bench.sh runs the speed and
## memory sections in separate processes, then this with both JSON files.
extends SceneTree


func _initialize() -> void:
	var figures := {}
	var args := OS.get_cmdline_user_args()
	for path in args.slice(0, args.size() - 1):
		var parsed = JSON.parse_string(FileAccess.get_file_as_string(path))
		if parsed is Dictionary:
			figures.merge(parsed)
	var bench := load("res://bench/bench.gd")
	figures["targets"] = bench.targets(figures)
	var out := FileAccess.open(args[args.size() - 1], FileAccess.WRITE)
	out.store_string(JSON.stringify(figures, "  ", false))
	out.close()
	quit(0)
