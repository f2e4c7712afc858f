## A player of the multiplayer demo: a coloured dot. The server moves it; a MultiplayerSynchronizer carries its
## position to the clients.
extends Node2D

var color := Color.WHITE


func _process(_delta: float) -> void:
	queue_redraw()


func _draw() -> void:
	draw_circle(Vector2.ZERO, 11.0, color)
