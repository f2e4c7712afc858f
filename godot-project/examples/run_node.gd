## Runs an example written as a node script, as it would run in a scene: adds a Node with that script to the
## tree and lets frames pass for up to three seconds (or until the script calls get_tree().quit()).
## Usage: godot --headless --path godot-project -s res://examples/run_node.gd -- res://examples/NAME.gd
extends SceneTree

var _deadline := 0


func _initialize() -> void:
	var path: String = OS.get_cmdline_user_args()[0] if OS.get_cmdline_user_args().size() > 0 else ""
	var script: Script = load(path) if path != "" else null
	if script == null:
		printerr("run_node.gd: give the example's path after --")
		quit(2)
		return
	var node := Node.new()
	node.name = path.get_file().get_basename()
	node.set_script(script)
	root.add_child.call_deferred(node)
	_deadline = Time.get_ticks_msec() + 3000


func _process(_delta: float) -> bool:
	return Time.get_ticks_msec() >= _deadline
