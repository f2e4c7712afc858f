//! One direction of a client's link (a link model, and the per-channel rules that keep each transfer mode's
//! meaning), and a client's two of them.

use std::collections::BTreeMap;

use crate::link::{LinkConfig, LinkModel, LinkStats, Micros};

use super::types::{Packet, TransferMode};

/// One direction of a client's link: the simulated link and the per-channel ordering state.
#[derive(Debug)]
pub(super) struct Lane {
    pub(super) model: LinkModel<Packet>,
    /// Next order number per channel for unreliable-ordered packets.
    pub(super) next_order: BTreeMap<u8, u64>,
    /// The newest order number delivered per channel.
    pub(super) newest_delivered: BTreeMap<u8, u64>,
    /// When the last reliable packet per channel is due: the next one is due no earlier.
    pub(super) reliable_due: BTreeMap<u8, Micros>,
}

impl Lane {
    pub(super) fn new(config: LinkConfig, seed: u64) -> Self {
        Self {
            model: LinkModel::new(config, seed),
            next_order: BTreeMap::new(),
            newest_delivered: BTreeMap::new(),
            reliable_due: BTreeMap::new(),
        }
    }

    pub(super) fn send(&mut self, now: Micros, mut packet: Packet) {
        match packet.mode {
            TransferMode::Unreliable => {
                self.model.send(now, packet);
            }
            TransferMode::UnreliableOrdered => {
                let next = self.next_order.entry(packet.channel).or_insert(0);
                packet.order = *next;
                *next += 1;
                self.model.send(now, packet);
            }
            TransferMode::Reliable => {
                let channel = packet.channel;
                let not_before = self.reliable_due.get(&channel).copied().unwrap_or(0);
                // `Network::send` checked for room first, so this is never refused.
                if let Some(due) = self.model.send_reliable(now, packet, not_before) {
                    self.reliable_due.insert(channel, due);
                }
            }
        }
    }

    /// The clean-link fast path: when the link is transparent and holds nothing, records `packet` as sent and
    /// delivered at once (keeping the ordering state as if it had gone through) and returns true; the caller
    /// hands it on itself. Otherwise false, and nothing changed.
    pub(super) fn pass(&mut self, packet: &mut Packet) -> bool {
        if !self.model.pass_through(packet.data.len()) {
            return false;
        }
        if packet.mode == TransferMode::UnreliableOrdered {
            let next = self.next_order.entry(packet.channel).or_insert(0);
            packet.order = *next;
            *next += 1;
            self.newest_delivered.insert(packet.channel, packet.order);
        }
        true
    }

    /// Moves the lane onto a clock that reads `to` when the old one read `from`: everything in flight keeps its
    /// remaining delay.
    pub(super) fn shift_time(&mut self, from: Micros, to: Micros) {
        self.model.shift_time(from, to);
        for due in self.reliable_due.values_mut() {
            *due = (*due + to).saturating_sub(from);
        }
    }

    /// The next packet due by `now` that may be delivered; `Err(())` for one dropped by the ordering rule.
    pub(super) fn poll(&mut self, now: Micros) -> Option<Result<Packet, ()>> {
        let packet = self.model.poll(now)?;
        if packet.mode != TransferMode::UnreliableOrdered {
            return Some(Ok(packet));
        }
        match self.newest_delivered.get(&packet.channel) {
            Some(&newest) if packet.order <= newest => Some(Err(())),
            _ => {
                self.newest_delivered.insert(packet.channel, packet.order);
                Some(Ok(packet))
            }
        }
    }
}

/// A client's two lanes.
#[derive(Debug)]
pub(super) struct Route {
    pub(super) to_server: Lane,
    pub(super) to_client: Lane,
}

/// The link statistics of one client's connection, per direction, with how many packets each holds now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteStats {
    /// Client to server.
    pub to_server: LinkStats,
    /// Packets held in the client-to-server direction.
    pub to_server_queued: usize,
    /// Server to client.
    pub to_client: LinkStats,
    /// Packets held in the server-to-client direction.
    pub to_client_queued: usize,
}
