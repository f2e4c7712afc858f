## Checks the demo screenshots the way a person would look at them: for each DIR/<name>.png with its
## DIR/<name>_layout.json (written by the demo), every region the layout names must show what it should:
##   "fill": the region is mostly its colour (at least 40% of its pixels), e.g. the control panel;
##   "line": at least 60 pixels of the region are the plot's line colour (a plot with data, not an empty frame);
##   "dot":  at least 40 pixels are the colour (a drawn marker);
##   "text": at least 300 light pixels (labels were rendered).
## Run: godot --headless --path godot-project -s res://tests/screenshots/check_screenshots.gd -- DIR
## Prints one line per check and "screenshots: N passed, N failed"; exits 1 on a failure or when nothing was checked.
extends SceneTree

const TOLERANCE := 0.06
const MIN_FILL := 0.4
const MIN_PIXELS := {"line": 60, "dot": 40, "text": 300}


func _initialize() -> void:
	var args := OS.get_cmdline_user_args()
	if args.is_empty():
		printerr("usage: ... -- DIR")
		quit(2)
		return
	var dir: String = args[0]
	var passed := 0
	var failed := 0
	for file in DirAccess.get_files_at(dir):
		if not file.ends_with("_layout.json"):
			continue
		var name := file.trim_suffix("_layout.json")
		var image := Image.load_from_file(dir.path_join(name + ".png"))
		var layout = JSON.parse_string(FileAccess.get_file_as_string(dir.path_join(file)))
		if image == null or not layout is Dictionary:
			print("FAIL %s: no image or no layout" % name)
			failed += 1
			continue
		for region in layout["regions"]:
			var result := _check(image, region)
			if result.is_empty():
				passed += 1
				print("ok   %s: %s" % [name, region["what"]])
			else:
				failed += 1
				print("FAIL %s: %s: %s" % [name, region["what"], result])
	print("screenshots: %d passed, %d failed" % [passed, failed])
	quit(0 if failed == 0 and passed > 0 else 1)


## Returns "" when the region shows what it should, else what was seen.
func _check(image: Image, region: Dictionary) -> String:
	var r: Array = region["rect"]
	var rect := Rect2i(int(r[0]), int(r[1]), int(r[2]), int(r[3])).intersection(Rect2i(Vector2i.ZERO, image.get_size()))
	if rect.get_area() == 0:
		return "the region is empty or off screen"
	var kind: String = region["kind"]
	var target := Color.html(region.get("color", "#ffffff"))
	var matching := 0
	for y in range(rect.position.y, rect.end.y):
		for x in range(rect.position.x, rect.end.x):
			var c := image.get_pixel(x, y)
			if kind == "text":
				if c.get_luminance() > 0.6:
					matching += 1
			elif absf(c.r - target.r) < TOLERANCE and absf(c.g - target.g) < TOLERANCE and absf(c.b - target.b) < TOLERANCE:
				matching += 1
	if kind == "fill":
		var fraction := float(matching) / rect.get_area()
		return "" if fraction >= MIN_FILL else "%.0f%% of it is %s (want %.0f%%)" % [fraction * 100, region["color"], MIN_FILL * 100]
	var needed: int = MIN_PIXELS[kind]
	return "" if matching >= needed else "%d matching pixels (want %d)" % [matching, needed]
