## The README's first LocalPacketPeer example, as a node script.
## Expect: { "type": "move", "to": (3.0, 4.0) }
extends Node


func _ready() -> void:
	var ends := LocalPacketPeer.create_pair()        # [end_a, end_b]
	ends[0].put_var({"type": "move", "to": Vector2(3, 4)})
	if ends[1].get_available_packet_count() > 0:
		print(ends[1].get_var())                      # { "type": "move", "to": (3.0, 4.0) }
