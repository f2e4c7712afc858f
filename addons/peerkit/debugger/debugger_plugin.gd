@tool
extends EditorDebuggerPlugin
## Gives each debugger session (each running game) a "peerkit" tab ([code]panel.gd[/code]) and hands it the
## game's [code]peerkit:*[/code] messages.

const PeerkitPanel := preload("panel.gd")

## Session id -> its panel.
var _panels := {}


func _has_capture(prefix: String) -> bool:
	return prefix == "peerkit"


func _capture(message: String, data: Array, session_id: int) -> bool:
	var panel: PeerkitPanel = _panels.get(session_id)
	if panel == null:
		return false
	match message:
		"peerkit:links":
			panel.show_links(data[0] if data.size() > 0 else [])
			return true
		"peerkit:result":
			panel.show_result(data)
			return true
	return false


func _setup_session(session_id: int) -> void:
	var session := get_session(session_id)
	var panel := PeerkitPanel.new()
	panel.name = "peerkit"
	panel.send = func(message: String, data: Array) -> void:
		if session.is_active():
			session.send_message(message, data)
	session.started.connect(panel.clear)
	session.stopped.connect(panel.game_stopped)
	session.add_session_tab(panel)
	_panels[session_id] = panel
