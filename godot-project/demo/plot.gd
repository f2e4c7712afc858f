## A scrolling time-series plot drawn with Godot's own drawing: the last `capacity` samples as a line, the
## title with the latest value, and a scale that grows to fit.
extends Control

const BACKGROUND := Color("#10161d")
const GRID := Color("#2a3540")

var title := ""
var unit := ""
var color := Color.WHITE
## The smallest top of the scale (the scale grows above it to fit the samples).
var scale_floor := 1.0
var capacity := 60
var samples: PackedFloat32Array = []


func push(value: float) -> void:
	samples.append(value)
	if samples.size() > capacity:
		samples.remove_at(0)
	queue_redraw()


func _draw() -> void:
	draw_rect(Rect2(Vector2.ZERO, size), BACKGROUND)
	var top := scale_floor
	for v in samples:
		top = maxf(top, v * 1.15)
	var area := Rect2(Vector2(8, 26), size - Vector2(16, 34))
	for i in 5:
		var y := area.position.y + area.size.y * i / 4.0
		draw_line(Vector2(area.position.x, y), Vector2(area.end.x, y), GRID, 1.0)
	if samples.size() >= 2:
		var points := PackedVector2Array()
		for i in samples.size():
			var x := area.position.x + area.size.x * i / float(capacity - 1)
			var y := area.end.y - area.size.y * clampf(samples[i] / top, 0.0, 1.0)
			points.append(Vector2(x, y))
		draw_polyline(points, color, 2.0, true)
	var font := get_theme_default_font()
	var latest := samples[-1] if samples.size() > 0 else 0.0
	draw_string(font, Vector2(8, 18), "%s  %.1f %s" % [title, latest, unit], HORIZONTAL_ALIGNMENT_LEFT, -1, 14,
			Color("#d8e0e8"))
	draw_string(font, Vector2(size.x - 70, 18), "max %.0f" % top, HORIZONTAL_ALIGNMENT_RIGHT, 62, 12,
			Color("#7f8c99"))
