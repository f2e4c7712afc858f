## A LinkConditioner in a test, on the manual clock: time moves only when the test says so.
## Run: godot --headless --path <your project> -s res://link_conditioner_test.gd   (exit code 0: passed)
## Expect: at 99 ms: 0 packets
## Expect: at 100 ms: 1 packets
extends SceneTree


func _initialize() -> void:
	var ends := LocalPacketPeer.create_pair()
	var lagged := LinkConditioner.new()
	lagged.inner = ends[0]
	lagged.use_manual_clock = true                   # starts at 0 ms
	lagged.configure({"latency_ms": 100}, LinkConditioner.DIRECTION_OUTBOUND)
	lagged.put_packet(PackedByteArray([1]))
	lagged.advance(99)
	print("at 99 ms: %d packets" % ends[1].get_available_packet_count())
	lagged.advance(1)
	print("at 100 ms: %d packets" % ends[1].get_available_packet_count())
	quit(0 if ends[1].get_available_packet_count() == 1 else 1)
