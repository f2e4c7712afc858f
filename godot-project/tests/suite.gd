## Base class of every test suite. A suite is a script in res://tests/ named test_*.gd that extends this file;
## each of its methods named test_* is one test, run on a fresh instance of the suite.
## Assertions record a failure with the caller's file and line, and the test goes on; a test passes when it
## recorded no failure and raised no script error.
extends RefCounted

## The runner's error capture (res://tests/error_capture.gd), or null on engines without Logger (before 4.5).
var errors = null
var _failures: Array[String] = []


## Called before each test on its fresh instance; override to set up.
func before_each() -> void:
	pass


## Called after each test, even a failed one; override to release what the test made (threads, peers).
func after_each() -> void:
	pass


func assert_eq(got: Variant, expected: Variant, message: String = "") -> bool:
	if _same(got, expected):
		return true
	return _fail("expected %s, got %s" % [_describe(expected), _describe(got)], message)


func assert_ne(got: Variant, unexpected: Variant, message: String = "") -> bool:
	if not _same(got, unexpected):
		return true
	return _fail("expected anything but %s" % _describe(unexpected), message)


func assert_true(condition: bool, message: String = "") -> bool:
	if condition:
		return true
	return _fail("expected true, got false", message)


func assert_false(condition: bool, message: String = "") -> bool:
	if not condition:
		return true
	return _fail("expected false, got true", message)


## Asserts an Error code, reporting both by name.
func assert_error(got: int, expected: int, message: String = "") -> bool:
	if got == expected:
		return true
	return _fail("expected error %s, got %s" % [_error_name(expected), _error_name(got)], message)


func assert_ok(got: int, message: String = "") -> bool:
	return assert_error(got, OK, message)


func assert_null(got: Variant, message: String = "") -> bool:
	if got == null:
		return true
	return _fail("expected null, got %s" % _describe(got), message)


## Asserts low <= got <= high.
func assert_between(got: Variant, low: Variant, high: Variant, message: String = "") -> bool:
	if got >= low and got <= high:
		return true
	return _fail("expected %s..%s, got %s" % [low, high, _describe(got)], message)


## Asserts that an engine error containing `text` was logged during this test (needs Godot 4.5+).
func assert_error_logged(text: String, message: String = "") -> bool:
	if errors == null:
		return _fail("cannot see logged errors: this engine has no Logger class (Godot 4.5+)", message)
	var seen: Array[String] = []
	for logged in errors.peek():
		if String(logged["text"]).contains(text):
			return true
		seen.append(logged["text"])
	return _fail("expected an error containing \"%s\" to be logged; logged: %s" % [text, seen], message)


func fail(message: String) -> bool:
	return _fail("failed", message)


func failures() -> Array[String]:
	return _failures


# Same type and equal value; NaN equals NaN, so encoded floats can be compared.
func _same(a: Variant, b: Variant) -> bool:
	if typeof(a) != typeof(b):
		return false
	if typeof(a) == TYPE_FLOAT and is_nan(a) and is_nan(b):
		return true
	return a == b


func _describe(value: Variant) -> String:
	var text := var_to_str(value) if typeof(value) != TYPE_OBJECT else str(value)
	if text.length() > 300:
		text = text.substr(0, 300) + "…"
	return "%s (%s)" % [text, type_string(typeof(value))]


func _error_name(code: int) -> String:
	return "%s (%d)" % [error_string(code), code]


func _fail(what: String, message: String) -> bool:
	var where := "unknown location"
	for frame in get_stack():
		if not String(frame["source"]).ends_with("res://tests/suite.gd"):
			where = "%s:%d" % [frame["source"], frame["line"]]
			break
	_failures.append("%s: %s%s" % [where, what, (" — " + message) if message != "" else ""])
	return false
