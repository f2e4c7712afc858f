extends Node
## The game side of peerkit's editor debugger panel: the [code]PeerkitDebugger[/code] autoload that the
## peerkit editor plugin adds to the project.
##
## While the game runs from the editor (the editor's debugger is attached), it reports every live peerkit link
## ([method PeerkitLinks.get_live_links]) to the editor a few times a second, and applies the settings the
## panel sends. In a release export, or when no debugger is attached, it does nothing at all: it registers no
## capture, sends nothing, stops processing, and peerkit counts nothing per packet for it.
##
## Messages (all under the [code]peerkit[/code] capture):[br]
## - to the editor: [code]peerkit:links[/code] [code][links][/code] (an Array of [method describe]
##   Dictionaries) and [code]peerkit:result[/code] [code][error, text][/code] after each request;[br]
## - from the editor: [code]peerkit:configure[/code] [code][link_id, peer_id, settings, direction][/code],
##   [code]peerkit:preset[/code] [code][link_id, peer_id, name, direction][/code] and
##   [code]peerkit:link_up[/code] [code][link_id, peer_id, up][/code]. [code]link_id[/code] is an instance id,
##   or 0 for every link that has settings; [code]peer_id[/code] picks a remote peer of a multiplayer link
##   (0: all of them, and those that connect later) and is ignored for a [LinkConditioner];
##   [code]direction[/code] is 1 (outbound, or to the server), 2 (inbound, or to the client) or 3 (both).

## The capture's name: every message is [code]"peerkit:..."[/code].
const CAPTURE := "peerkit"
## Project setting: the preset every MultiplayerLinkConditioner starts with when the game runs from the
## editor ("" for none).
const SETTING_PRESET := "peerkit/debugger/startup_preset"
## Project setting: whether LinkConditioners start with that preset too.
const SETTING_PRESET_ALL := "peerkit/debugger/startup_preset_applies_to_link_conditioners"
## Project setting: how often the game reports its links to the editor, in milliseconds.
const SETTING_INTERVAL := "peerkit/debugger/report_interval_ms"
## The report interval when the project does not set one.
const DEFAULT_INTERVAL_MS := 250

## Where messages go: [method EngineDebugger.send_message] in a game; a test replaces it to read them.
var send := func(message: String, data: Array) -> void:
	EngineDebugger.send_message(message, data)
## Seconds between reports.
var interval_s := DEFAULT_INTERVAL_MS / 1000.0
var _since_report := 0.0


func _ready() -> void:
	if not EngineDebugger.is_active():
		# A release export, or run without the editor: nothing to report to.
		set_process(false)
		return
	interval_s = max(int(ProjectSettings.get_setting(SETTING_INTERVAL, DEFAULT_INTERVAL_MS)), 50) / 1000.0
	apply_startup_preset(
		str(ProjectSettings.get_setting(SETTING_PRESET, "")),
		bool(ProjectSettings.get_setting(SETTING_PRESET_ALL, false)))
	EngineDebugger.register_message_capture(CAPTURE, on_message)


func _exit_tree() -> void:
	if EngineDebugger.has_capture(CAPTURE):
		EngineDebugger.unregister_message_capture(CAPTURE)


func _process(delta: float) -> void:
	_since_report += delta
	if _since_report >= interval_s:
		_since_report = 0.0
		report()


## Makes conditioners made from now on start with [param preset] (see [method PeerkitLinks.set_startup_preset]);
## an unknown name is reported as an error naming the project setting, and nothing changes.
func apply_startup_preset(preset: String, link_conditioners: bool) -> Error:
	if preset.is_empty():
		return OK
	var err := PeerkitLinks.set_startup_preset(preset, link_conditioners)
	if err != OK:
		push_error("peerkit: the project setting %s is \"%s\", which is not a preset; use one of clean, wifi, 4g, 3g, lossy, satellite, or leave it empty" % [SETTING_PRESET, preset])
	return err


## Sends the editor the current list of links ([code]peerkit:links[/code]).
func report() -> void:
	send.call(CAPTURE + ":links", [snapshot()])


## Describes every live link, oldest first.
func snapshot() -> Array:
	var links := []
	for link in PeerkitLinks.get_live_links():
		links.append(describe(link))
	return links


## Describes one link: [code]id[/code] (its instance id), [code]class[/code], [code]wraps[/code] (the class of
## the peer it wraps, or "" when none or not a wrapper), [code]directions[/code] (the names of its two
## directions), [code]peers[/code] (one entry per link it simulates: [code]peer_id[/code] (0 for a
## LinkConditioner's one link), [code]link_up[/code], and per direction name its [code]settings[/code] and
## [code]stats[/code]) and, for a ReliablePacketPeer, [code]reliable[/code] (its [method
## ReliablePacketPeer.get_stats]).
func describe(link: Object) -> Dictionary:
	var entry := {
		"id": link.get_instance_id(),
		"class": link.get_class(),
		"wraps": "",
		"directions": PackedStringArray(["outbound", "inbound"]),
		"peers": [],
	}
	match link.get_class():
		"LinkConditioner":
			entry.wraps = _class_of(link.inner)
			var stats: Dictionary = link.get_stats()
			entry.peers.append({
				"peer_id": 0,
				"link_up": link.link_up,
				"outbound": {"settings": link.get_settings(1), "stats": stats.outbound},
				"inbound": {"settings": link.get_settings(2), "stats": stats.inbound},
			})
		"MultiplayerLinkConditioner":
			entry.wraps = _class_of(link.inner)
			var stats: Dictionary = link.get_stats()
			for peer_id in stats.peers:
				entry.peers.append(_multiplayer_row(link, peer_id, stats.peers[peer_id], "outbound", "inbound"))
		"LocalMultiplayerNetwork":
			entry.directions = PackedStringArray(["to_server", "to_client"])
			var stats: Dictionary = link.get_stats()
			for peer_id in stats.links:
				entry.peers.append(_multiplayer_row(link, peer_id, stats.links[peer_id], "to_server", "to_client"))
		"ReliablePacketPeer":
			entry.wraps = _class_of(link.inner)
			entry.reliable = link.get_stats()
	return entry


## Handles a message from the editor; returns whether it was one of ours. Answers each request with
## [code]peerkit:result[/code] [code][error, text][/code], then reports the links at once so the panel shows
## the change.
func on_message(message: String, data: Array) -> bool:
	var kind := message.trim_prefix(CAPTURE + ":")
	var err := ERR_INVALID_PARAMETER
	var text := ""
	match kind:
		"configure":
			if data.size() == 4 and data[2] is Dictionary:
				err = _for_each(data[0], func(link: Object) -> Error:
					if link is LinkConditioner:
						return link.configure(data[2], int(data[3]))
					return link.set_link_conditions(int(data[1]), data[2], int(data[3])))
				text = "configure %s" % [data[2]]
			else:
				text = "configure takes [link_id, peer_id, settings, direction]"
		"preset":
			if data.size() == 4:
				err = _for_each(data[0], func(link: Object) -> Error:
					if link is LinkConditioner:
						return link.apply_preset(str(data[2]), int(data[3]))
					return link.apply_preset(int(data[1]), str(data[2]), int(data[3])))
				text = "preset %s" % data[2]
			else:
				text = "preset takes [link_id, peer_id, name, direction]"
		"link_up":
			if data.size() == 3:
				err = _for_each(data[0], func(link: Object) -> Error:
					if link is LinkConditioner:
						link.link_up = bool(data[2])
						return OK
					return link.set_link_up(int(data[1]), bool(data[2])))
				text = "link restored" if data[2] else "link cut"
			else:
				text = "link_up takes [link_id, peer_id, up]"
		_:
			return false
	if err != OK and not text.contains("takes"):
		text += " failed: %s (the game's output says why)" % error_string(err)
	send.call(CAPTURE + ":result", [err, text])
	report()
	return true


## Runs [param change] on the link with instance id [param link_id], or on every link that has settings when it
## is 0; returns the first error, or OK.
func _for_each(link_id: Variant, change: Callable) -> Error:
	var targets := []
	for link in PeerkitLinks.get_live_links():
		if _has_settings(link) and (int(link_id) == 0 or link.get_instance_id() == int(link_id)):
			targets.append(link)
	if targets.is_empty():
		push_error("peerkit debugger: no live link with settings has id %s (it may have been freed)" % link_id)
		return ERR_DOES_NOT_EXIST
	var first := OK
	for link in targets:
		var err: Error = change.call(link)
		if err != OK and first == OK:
			first = err
	return first


func _has_settings(link: Object) -> bool:
	return link is LinkConditioner or link is MultiplayerLinkConditioner or link is LocalMultiplayerNetwork


func _multiplayer_row(link: Object, peer_id: int, stats: Dictionary, first: String, second: String) -> Dictionary:
	var first_settings: Dictionary = link.get_link_conditions(peer_id, 1)
	return {
		"peer_id": peer_id,
		"link_up": bool(first_settings.get("link_up", true)),
		first: {"settings": first_settings, "stats": stats[first]},
		second: {"settings": link.get_link_conditions(peer_id, 2), "stats": stats[second]},
	}


func _class_of(peer: Object) -> String:
	return peer.get_class() if peer != null else ""
