@tool
extends EditorPlugin
## peerkit's editor plugin (Project Settings > Plugins > peerkit). Adds the "peerkit" tab to the Debugger
## bottom panel ([code]debugger/debugger_plugin.gd[/code]), the [code]PeerkitDebugger[/code] autoload that
## reports the running game's links to it ([code]debugger/runtime.gd[/code]; it does nothing in a release export
## or without the editor), and the project settings under [code]peerkit/debugger/[/code].

const AUTOLOAD := "PeerkitDebugger"
const Runtime := preload("debugger/runtime.gd")
const DebuggerPlugin := preload("debugger/debugger_plugin.gd")

var _debugger: EditorDebuggerPlugin


func _enter_tree() -> void:
	_add_setting(Runtime.SETTING_PRESET, "", TYPE_STRING, PROPERTY_HINT_ENUM_SUGGESTION,
		",clean,wifi,4g,3g,lossy,satellite")
	_add_setting(Runtime.SETTING_PRESET_ALL, false, TYPE_BOOL, PROPERTY_HINT_NONE, "")
	_add_setting(Runtime.SETTING_INTERVAL, Runtime.DEFAULT_INTERVAL_MS, TYPE_INT, PROPERTY_HINT_RANGE,
		"50,5000,10,suffix:ms")
	_debugger = DebuggerPlugin.new()
	add_debugger_plugin(_debugger)


func _exit_tree() -> void:
	remove_debugger_plugin(_debugger)
	_debugger = null


func _enable_plugin() -> void:
	add_autoload_singleton(AUTOLOAD, get_script().resource_path.get_base_dir().path_join("debugger/runtime.gd"))


func _disable_plugin() -> void:
	remove_autoload_singleton(AUTOLOAD)


## Shows a setting in Project Settings (General, with Advanced Settings off too), at its default until changed.
func _add_setting(name: String, default: Variant, type: Variant.Type, hint: PropertyHint, hint_string: String) -> void:
	if not ProjectSettings.has_setting(name):
		ProjectSettings.set_setting(name, default)
	ProjectSettings.set_initial_value(name, default)
	ProjectSettings.add_property_info({"name": name, "type": type, "hint": hint, "hint_string": hint_string})
	ProjectSettings.set_as_basic(name, true)
