## Headless test runner: godot --headless --path godot-project -s res://tests/run_tests.gd [-- FILTER...]
## Runs every test_* method of every res://tests/test_*.gd suite whose "suite.method" name contains one of the
## filters (all tests when none is given; a filter "-TEXT" leaves out the tests whose name contains TEXT), prints
## one line per test, each failure with its file and line, then a closing line "gdscript: N passed, N failed".
## Exits 1 when a test failed or none ran.
extends SceneTree

const SUITE_DIR := "res://tests"


func _initialize() -> void:
	_run.call_deferred()


func _run() -> void:
	var filters := OS.get_cmdline_user_args()
	# Godot 4.5+ lets a Logger see each error; older engines rely on scripts/test.sh reading the log.
	var errors = null
	if ClassDB.class_exists("Logger"):
		errors = load("res://tests/error_capture.gd").new()
		OS.add_logger(errors)
	var passed := 0
	var failed := 0
	var started := Time.get_ticks_msec()
	for path in _suite_paths():
		var script: GDScript = load(path)
		if script == null or not script.can_instantiate():
			print("FAIL %s: the suite script does not load" % path)
			failed += 1
			continue
		var suite_name := path.get_file().get_basename()
		for method in _test_methods(script):
			var full_name := "%s.%s" % [suite_name, method]
			if not _matches(full_name, filters):
				continue
			var suite = script.new()
			suite.errors = errors
			if errors != null:
				errors.take()
			var test_started := Time.get_ticks_msec()
			suite.before_each()
			await suite.call(method)
			suite.after_each()
			var failures: Array[String] = suite.failures()
			if errors != null:
				for logged in errors.take():
					if logged["script"]:
						failures.append("script error at %s: %s" % [logged["where"], logged["text"]])
			var took := Time.get_ticks_msec() - test_started
			if failures.is_empty():
				passed += 1
				print("ok   %s (%d ms)" % [full_name, took])
			else:
				failed += 1
				print("FAIL %s (%d ms)" % [full_name, took])
				for failure in failures:
					print("     ", failure)
	print("GDScript tests took %.1f s" % ((Time.get_ticks_msec() - started) / 1000.0))
	if passed + failed == 0:
		print("no test matched %s" % [filters])
	print("gdscript: %d passed, %d failed" % [passed, failed])
	if errors != null:
		OS.remove_logger(errors)
	quit(0 if failed == 0 and passed > 0 else 1)


func _suite_paths() -> PackedStringArray:
	var paths := PackedStringArray()
	for file in DirAccess.get_files_at(SUITE_DIR):
		if file.begins_with("test_") and file.ends_with(".gd"):
			paths.append(SUITE_DIR.path_join(file))
	paths.sort()
	return paths


# Test methods in the order they are written.
func _test_methods(script: GDScript) -> PackedStringArray:
	var names := PackedStringArray()
	for info in script.get_script_method_list():
		var method_name: String = info["name"]
		if method_name.begins_with("test_") and not names.has(method_name):
			names.append(method_name)
	return names


# A filter "-TEXT" leaves out every test whose name contains TEXT; the others pick the tests that run (all of
# them when there is none).
func _matches(full_name: String, filters: PackedStringArray) -> bool:
	var picked := true
	for filter in filters:
		if filter.begins_with("-"):
			if full_name.contains(filter.substr(1)):
				return false
		else:
			picked = false
	if picked:
		return true
	for filter in filters:
		if not filter.begins_with("-") and full_name.contains(filter):
			return true
	return false
