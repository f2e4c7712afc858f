## Collects the errors the engine logs while a test runs (Godot 4.5+ Logger), so the runner can fail the test
## that raised a script error, and a test can assert that a clear error was pushed. May be called from any thread.
extends Logger

var _mutex := Mutex.new()
var _errors: Array[Dictionary] = []


func _log_error(function: String, file: String, line: int, code: String, rationale: String,
		_editor_notify: bool, error_type: int, _script_backtraces: Array) -> void:
	_mutex.lock()
	_errors.append({
		"text": rationale if rationale != "" else code,
		"where": "%s:%d (%s)" % [file, line, function],
		"script": error_type == ERROR_TYPE_SCRIPT,
	})
	_mutex.unlock()


func _log_message(_message: String, _error: bool) -> void:
	pass


## The errors logged since the last take(), oldest first; clears them.
func take() -> Array[Dictionary]:
	_mutex.lock()
	var taken := _errors.duplicate()
	_errors.clear()
	_mutex.unlock()
	return taken


## The errors logged since the last take(), without clearing them.
func peek() -> Array[Dictionary]:
	_mutex.lock()
	var seen := _errors.duplicate()
	_mutex.unlock()
	return seen
