## Every method, property, signal and constant the engine knows for each peerkit class has a description in the
## editor's help. scripts/test.sh has the Rust test write the library's docs to $PEERKIT_DOCS_DIR first; this
## checks them against what ClassDB reports, so nothing registered can go undocumented.
extends "res://tests/suite.gd"

## Registered by the test build only, for the panic test; not shipped.
const TEST_ONLY := ["PeerkitPanicProbe"]


## Every class peerkit registers, as ClassDB reports them (extension classes), so none can be left out.
func _classes() -> Array[String]:
	var classes: Array[String] = []
	for cls in ClassDB.get_class_list():
		if ClassDB.class_get_api_type(cls) == ClassDB.API_EXTENSION and not cls in TEST_ONLY:
			classes.append(cls)
	classes.sort()
	return classes


func _docs(cls: String) -> String:
	var dir := OS.get_environment("PEERKIT_DOCS_DIR")
	if dir == "":
		return ""
	return FileAccess.get_file_as_string(dir.path_join(cls + ".xml"))


func _described(xml: String, tag: String, name: String) -> bool:
	var start := xml.find('<%s name="%s"' % [tag, name])
	if start < 0:
		return false
	var close := xml.find("</%s>" % tag, start)
	var body := xml.substr(start, close - start) if close > start else xml.substr(start)
	var from := body.find("<description>")
	if from < 0:
		# Properties and constants carry their text directly in the element.
		var text_start := body.find(">") + 1
		return body.substr(text_start).strip_edges() != ""
	var to := body.find("</description>", from)
	return body.substr(from + 13, to - from - 13).strip_edges() != ""


func test_every_registered_member_is_described() -> void:
	if not assert_ne(OS.get_environment("PEERKIT_DOCS_DIR"), "", "run through scripts/test.sh, which writes the docs"):
		return
	var classes := _classes()
	assert_true(classes.has("ReliableServer") and classes.has("UdpLinkProxy"), "the list comes from ClassDB: %s" % [classes])
	for cls in classes:
		var xml := _docs(cls)
		if not assert_ne(xml, "", "docs of %s" % cls):
			continue
		assert_true(xml.contains("<brief_description>") and not xml.contains("<brief_description></brief_description>"), cls)
		var undocumented := []
		for method in ClassDB.class_get_method_list(cls, true):
			var name: String = method["name"]
			if name.begins_with("_"):
				continue  # the engine's virtuals, documented by the engine
			if not _described(xml, "method", name):
				undocumented.append("method " + name)
		for property in ClassDB.class_get_property_list(cls, true):
			if property["usage"] & PROPERTY_USAGE_CATEGORY:
				continue  # the class's own heading in the inspector, not a property
			if not _described(xml, "member", property["name"]):
				undocumented.append("property " + property["name"])
		for signal_info in ClassDB.class_get_signal_list(cls, true):
			if not _described(xml, "signal", signal_info["name"]):
				undocumented.append("signal " + signal_info["name"])
		for constant in ClassDB.class_get_integer_constant_list(cls, true):
			if not _described(xml, "constant", constant):
				undocumented.append("constant " + constant)
		assert_eq(undocumented, [], "%s members without a description" % cls)


# Every property is shown in the inspector and in the remote scene tree while debugging (usage EDITOR); none is
# stored, since none of these classes is a Resource or a Node that a scene saves. (Every usage used to be 0.)
func test_every_property_is_visible_in_the_inspector() -> void:
	var checked := 0
	for cls in _classes():
		for property in ClassDB.class_get_property_list(cls, true):
			if property["usage"] & PROPERTY_USAGE_CATEGORY:
				continue
			checked += 1
			assert_true(property["usage"] & PROPERTY_USAGE_EDITOR != 0, "%s.%s is shown in the inspector" % [cls, property["name"]])
	assert_true(checked >= 22, "every property of every class was checked (%d)" % checked)


## Every class has its icon in the editor (UdpLinkProxy had none): listed in the .gdextension, and the file exists.
func test_every_class_has_an_icon() -> void:
	var config := ConfigFile.new()
	assert_ok(config.load("res://addons/peerkit/peerkit.gdextension"))
	for cls in _classes():
		var path: String = config.get_value("icons", cls, "")
		assert_ne(path, "", "%s has an icon" % cls)
		if path != "":
			assert_true(FileAccess.file_exists(path), "%s's icon %s exists" % [cls, path])


## The addon's own README (what a user who only has the zip reads) names every class.
func test_the_addons_readme_names_every_class() -> void:
	var readme := FileAccess.get_file_as_string("res://addons/peerkit/README.md")
	for cls in _classes():
		assert_true(readme.contains("`%s`" % cls), "addons/peerkit/README.md names %s" % cls)
