## The node every peer of a multiplayer test has at the same path: its RPCs write what arrived into `received`.
extends Node

## Each call that arrived: [sender id, method, value, network time in ms].
var received: Array = []
## What stamps the calls with its time (set by the test): anything with get_time_msec(), such as a
## LocalMultiplayerNetwork or a MultiplayerLinkConditioner.
var clock: Object


func _record(method: String, value: Variant) -> void:
	var now: float = clock.get_time_msec() if clock != null else -1.0
	received.append([multiplayer.get_remote_sender_id(), method, value, now])


@rpc("any_peer", "call_remote", "reliable")
func say(text: String) -> void:
	_record("say", text)


@rpc("any_peer", "call_remote", "unreliable")
func shout(value: int) -> void:
	_record("shout", value)


@rpc("any_peer", "call_remote", "unreliable_ordered")
func update(value: int) -> void:
	_record("update", value)


@rpc("authority", "call_remote", "reliable", 2)
func announce(text: String) -> void:
	_record("announce", text)


func values(method: String) -> Array:
	var out := []
	for call in received:
		if call[1] == method:
			out.append(call[2])
	return out


@rpc("authority", "call_local", "reliable")
func everyone(text: String) -> void:
	_record("everyone", text)


@rpc("any_peer", "call_remote", "unreliable")
func blob(data: PackedByteArray) -> void:
	_record("blob", data.size())
