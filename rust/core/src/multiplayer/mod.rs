//! A sans-IO multiplayer network in one process: one server and any number of clients in a star, each client
//! joined to the server by two simulated links (one per direction).
//!
//! This is the model behind Godot's `LocalMultiplayerPeer`. It follows Godot's `MultiplayerPeer` contract:
//! the server's id is 1; clients get random positive 31-bit ids (from the network's seed) or sequential ones;
//! a client sends only to the server (Godot's `SceneMultiplayer` relays between clients); the server sends to one
//! client, to all (target 0), or to all but one (target `-id`).
//!
//! Transfer modes keep Godot's meaning under impairment:
//! - [`TransferMode::Unreliable`] gets every impairment of the link.
//! - [`TransferMode::UnreliableOrdered`] too, and a packet that arrives older than the newest already delivered
//!   on its channel (from the same sender) is dropped and counted.
//! - [`TransferMode::Reliable`] is never lost, duplicated, corrupted or reordered within its channel: it takes
//!   the link's delay and bandwidth, each simulated loss costs it a retransmission timeout
//!   ([`LinkModel::send_reliable`]), and a cut link holds it until the link is up again.
//!
//! Order of calls: [`Network::send`] whenever a peer sends; [`Network::step`] with the current time to connect
//! waiting clients and deliver what is due; then each peer reads [`Network::take_events`] and its inbox
//! ([`Network::front`], [`Network::pop`]). Nothing here reads a clock; the same seed and the same calls give the
//! same ids, deliveries and events.

pub mod conditioner;
pub mod host;
mod lane;
mod network;
mod types;

pub use lane::RouteStats;
pub use network::{ConfigureError, Network};
pub use types::*;

#[cfg(test)]
mod conditioner_tests;
#[cfg(test)]
mod tests;
