## The server side of test_reliable_server.gd's two-process test, run as its own Godot process:
## godot --headless -s res://tests/reliable_server_process.gd -- PORT_FILE
## Listens on a free loopback port, writes the port to PORT_FILE, echoes every message of every client, and quits
## with 0 once its first client has closed (1 if none came and left within 30 s).
extends SceneTree

var server := ReliableServer.new()
var peers: Array[ReliablePacketPeer] = []
var started := Time.get_ticks_msec()


func _initialize() -> void:
	var port_file: String = OS.get_cmdline_user_args()[0]
	if server.listen(0, "127.0.0.1") != OK:
		quit(1)
		return
	var file := FileAccess.open(port_file, FileAccess.WRITE)
	file.store_string(str(server.get_local_port()))
	file.close()


func _process(_delta: float) -> bool:
	server.poll()
	while server.is_connection_available():
		peers.append(server.take_connection())
	for peer in peers:
		peer.poll()
		while peer.get_available_packet_count() > 0:
			peer.put_var(peer.get_var())
		if peer.get_status() == ReliablePacketPeer.STATUS_DISCONNECTED:
			server.stop()
			quit(0)
			return true
	if Time.get_ticks_msec() - started > 30000:
		quit(1)
		return true
	return false
