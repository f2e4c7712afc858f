//! `LocalMultiplayerNetwork` and `LocalMultiplayerPeer`: the Godot face of [`peerkit_core::multiplayer`]. The
//! network object and its peers share one core network and clock (here); each class has its own file.

mod network;
mod peer;

pub(crate) use peer::LocalMultiplayerPeer;

use std::sync::{Arc, Mutex, MutexGuard};

use godot::prelude::*;
use peerkit_core::multiplayer::{Event, Network, PeerId};

use super::clock::Clock;
use super::link_settings;

/// What a network object and its peers share: the core network, the clock, and which object is which peer.
pub(super) struct Shared {
    pub(super) net: Network,
    pub(super) clock: Clock,
    /// Each live peer object, to emit its signals when the network is polled.
    pub(super) objects: Vec<(PeerId, InstanceId)>,
}

pub(super) type SharedRef = Arc<Mutex<Shared>>;

pub(super) fn lock(shared: &SharedRef) -> MutexGuard<'_, Shared> {
    // A panic while locked (turned into ERR_BUG at the boundary) leaves the state usable: every core method keeps
    // it consistent before anything that could panic.
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    /// Steps the network to now.
    pub(super) fn step(&mut self) {
        let now = self.clock.now_us();
        self.net.step(now);
    }
}

/// The signal an event is emitted as, with its argument.
pub(super) fn signal_of(event: Event) -> (&'static str, [Variant; 1]) {
    let (signal, id) = match event {
        Event::Connected(id) => ("peer_connected", id),
        Event::Disconnected(id) => ("peer_disconnected", id),
    };
    (signal, [Variant::from(i64::from(id))])
}

/// One peer's counters, as both classes' `get_stats` give them.
pub(super) fn peer_stats(net: &Network, id: PeerId) -> VarDictionary {
    let stats = net.peer_stats(id).unwrap_or_default();
    vdict! {
        "packets_sent" => stats.packets_sent as i64,
        "bytes_sent" => stats.bytes_sent as i64,
        "packets_received" => stats.packets_received as i64,
        "bytes_received" => stats.bytes_received as i64,
        "dropped_out_of_order" => stats.dropped_out_of_order as i64,
        "dropped_disconnected" => stats.dropped_disconnected as i64,
        "available" => net.available(id) as i64,
    }
}

/// A client's route counters, both ways, as both classes' `get_stats` give them.
pub(super) fn link_stats(net: &Network, client: PeerId) -> Option<VarDictionary> {
    let route = net.route_stats(client)?;
    Some(vdict! {
        "to_server" => &link_settings::lane_stats(&route.to_server, route.to_server_queued),
        "to_client" => &link_settings::lane_stats(&route.to_client, route.to_client_queued),
    })
}
