//! Peers that wrap an inner peer, and the check that keeps them from wrapping themselves.

use godot::classes::PacketPeer;
use godot::prelude::*;

use super::link_conditioner::LinkConditioner;
use super::reliable_packet_peer::ReliablePacketPeer;

/// The longest chain of wrappers walked before it is treated as a cycle.
const MAX_CHAIN: usize = 1024;

/// The inner peer of a peerkit wrapper, or `None` for any other peer (or a wrapper without one).
fn inner_of(peer: &Gd<PacketPeer>) -> Option<Gd<PacketPeer>> {
    if let Ok(conditioner) = peer.clone().try_cast::<LinkConditioner>() {
        return conditioner.bind().inner_peer();
    }
    if let Ok(reliable) = peer.clone().try_cast::<ReliablePacketPeer>() {
        return reliable.bind().inner_peer();
    }
    None
}

/// True when `peer` is the object `target`, or wraps it through a chain of peerkit wrappers.
pub(crate) fn wraps(peer: &Gd<PacketPeer>, target: InstanceId) -> bool {
    let mut current = peer.clone();
    for _ in 0..MAX_CHAIN {
        if current.instance_id() == target {
            return true;
        }
        match inner_of(&current) {
            Some(next) => current = next,
            None => return false,
        }
    }
    true
}
