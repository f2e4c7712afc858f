@tool
extends Control
## A small scrolling plot for the peerkit debugger panel: the last [member capacity] samples of one or two
## series as lines, the title with the latest values, and a scale that grows to fit.

const BACKGROUND := Color("#141a21")
const GRID := Color("#2c3742")
## The first series' colour (outbound, or to the server) and the second's.
const COLORS: Array[Color] = [Color("#4fc3f7"), Color("#ffb74d")]

## Shown at the top left, before the latest values.
var title := ""
## Appended to each value.
var unit := ""
## The smallest top of the scale.
var scale_floor := 1.0
## How many samples fit across.
var capacity := 40
## One PackedFloat32Array per series.
var series: Array[PackedFloat32Array] = []


func _init() -> void:
	custom_minimum_size = Vector2(180, 110)
	size_flags_horizontal = Control.SIZE_EXPAND_FILL


## Replaces what is drawn: one array of samples per series (the last [member capacity] are shown).
func set_series(values: Array) -> void:
	series.clear()
	for v in values:
		var samples := PackedFloat32Array(v)
		if samples.size() > capacity:
			samples = samples.slice(samples.size() - capacity)
		series.append(samples)
	queue_redraw()


func _draw() -> void:
	draw_rect(Rect2(Vector2.ZERO, size), BACKGROUND)
	var top := scale_floor
	for samples in series:
		for v in samples:
			top = maxf(top, v * 1.15)
	var area := Rect2(Vector2(6, 24), size - Vector2(12, 30))
	for i in 4:
		var y := area.position.y + area.size.y * i / 3.0
		draw_line(Vector2(area.position.x, y), Vector2(area.end.x, y), GRID, 1.0)
	var latest := []
	for s in series.size():
		var samples := series[s]
		if samples.size() >= 2:
			var points := PackedVector2Array()
			for i in samples.size():
				var x := area.position.x + area.size.x * i / float(capacity - 1)
				var y := area.end.y - area.size.y * clampf(samples[i] / top, 0.0, 1.0)
				points.append(Vector2(x, y))
			draw_polyline(points, COLORS[s % COLORS.size()], 2.0, true)
		var value: float = samples[-1] if samples.size() > 0 else 0.0
		latest.append("%.0f" % value if absf(value) >= 10.0 else "%.1f" % value)
	var font := get_theme_default_font()
	draw_string(font, Vector2(6, 16), "%s  %s %s" % [title, " / ".join(latest), unit], HORIZONTAL_ALIGNMENT_LEFT,
		size.x - 58, 12, Color("#d8e0e8"))
	draw_string(font, Vector2(size.x - 54, 16), "max %.0f" % top, HORIZONTAL_ALIGNMENT_RIGHT, 48, 11,
		Color("#7f8c99"))
