//! Peers that wrap an inner peer: the inner peer itself (with a direct path to peerkit's own LocalPacketPeer),
//! and the check that keeps a wrapper from wrapping itself. The check knows no wrapper class: it follows any
//! peer's `get_inner()` method, so wrappers written in GDScript count too, and this module depends on no class
//! that uses it.

use bytes::Bytes;
use godot::classes::PacketPeer;
use godot::global::Error;
use godot::prelude::*;

use super::local_packet_peer::LocalPacketPeer;

/// The peer a wrapper sends through. A LocalPacketPeer is called directly in Rust: no engine call, no
/// PackedByteArray, and received packets are handed over without a copy. Any other peer goes through its
/// PacketPeer methods.
#[derive(Clone)]
pub(crate) enum InnerPeer {
    /// peerkit's in-memory peer.
    Local(Gd<LocalPacketPeer>),
    /// Any other PacketPeer.
    Other(Gd<PacketPeer>),
}

impl InnerPeer {
    pub(crate) fn new(peer: Gd<PacketPeer>) -> Self {
        match peer.try_cast::<LocalPacketPeer>() {
            Ok(local) => InnerPeer::Local(local),
            Err(other) => InnerPeer::Other(other),
        }
    }

    /// Whether both are the same object.
    pub(crate) fn is(&self, other: &InnerPeer) -> bool {
        self.instance_id() == other.instance_id()
    }

    fn instance_id(&self) -> InstanceId {
        match self {
            InnerPeer::Local(local) => local.instance_id(),
            InnerPeer::Other(other) => other.instance_id(),
        }
    }

    /// The peer as a PacketPeer, for scripts.
    pub(crate) fn packet_peer(&self) -> Gd<PacketPeer> {
        match self {
            InnerPeer::Local(local) => local.clone().upcast(),
            InnerPeer::Other(other) => other.clone(),
        }
    }

    pub(crate) fn available(&mut self) -> i32 {
        match self {
            InnerPeer::Local(local) => local.bind().queued(),
            InnerPeer::Other(other) => other.get_available_packet_count(),
        }
    }

    /// The next received packet, or `None` when there is none (or the peer reports an error).
    pub(crate) fn take(&mut self) -> Option<Bytes> {
        match self {
            InnerPeer::Local(local) => local.bind_mut().take_packet(),
            InnerPeer::Other(other) => {
                let packet = other.get_packet();
                (other.get_packet_error() == Error::OK)
                    .then(|| Bytes::copy_from_slice(packet.as_slice()))
            }
        }
    }

    pub(crate) fn put(&mut self, packet: &[u8]) -> Error {
        match self {
            InnerPeer::Local(local) => local.bind_mut().send_packet(packet),
            InnerPeer::Other(other) => other.put_packet(&PackedByteArray::from(packet)),
        }
    }

    /// The largest packet the peer accepts, when it says (peerkit's peers do; Godot's own do not tell scripts).
    pub(crate) fn max_packet_size(&self) -> Option<i64> {
        match self {
            InnerPeer::Local(local) => Some(local.bind().max_packet_size_value()),
            InnerPeer::Other(other) => {
                if !other.has_method("get_max_packet_size") {
                    return None;
                }
                other
                    .clone()
                    .upcast::<Object>()
                    .call("get_max_packet_size", &[])
                    .try_to::<i64>()
                    .ok()
            }
        }
    }
}

/// The longest chain of wrappers walked before it is treated as a cycle.
const MAX_CHAIN: usize = 1024;

/// The name of the method every wrapper (peerkit's, or a script's) answers with the peer it wraps.
const GET_INNER: &str = "get_inner";

/// The peer `peer` wraps, when it has a `get_inner()` method that returns one; `None` for any other peer.
fn inner_of(peer: &Gd<PacketPeer>) -> Option<Gd<PacketPeer>> {
    if !peer.has_method(GET_INNER) {
        return None;
    }
    peer.clone()
        .upcast::<Object>()
        .call(GET_INNER, &[])
        .try_to::<Gd<PacketPeer>>()
        .ok()
}

/// True when `peer` is the object `target`, or wraps it through a chain of wrappers (see `inner_of`).
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
