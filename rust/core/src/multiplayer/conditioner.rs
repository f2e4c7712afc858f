//! The simulated links of one real MultiplayerPeer (ENet, WebSocket, WebRTC, Steam, ...) to each of its remote
//! peers: what `MultiplayerLinkConditioner` does, without Godot.
//!
//! Each remote peer gets two [`Lane`]s, the same as a [`Network`](super::Network) client's: outbound (what
//! this peer sends to it) and inbound (what it sends to this peer). Transfer modes keep their meaning through
//! the lanes: unreliable packets get every impairment, unreliable-ordered ones are also dropped when they come
//! out older than the newest of their channel already passed on, and reliable ones are only delayed (a
//! simulated loss costs a retransmission timeout; a cut link holds them).
//!
//! Order of calls, all with the caller's `now`: [`PeerLinks::connect`] and [`PeerLinks::disconnect`] as the
//! real peer reports remote peers; [`PeerLinks::send`] for each packet the game puts; [`PeerLinks::poll_outbound`]
//! until `None`, handing each packet to the real peer (and [`PeerLinks::refused`] for each it refuses);
//! [`PeerLinks::receive`] for each packet the real peer received; [`PeerLinks::poll_inbound`]; then the game
//! reads [`PeerLinks::front`] and [`PeerLinks::pop`]. Nothing here reads a clock; the same seed, the same
//! remote ids and the same calls give the same deliveries.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;

use crate::link::conditioner::{Directions, Refusals};
use crate::link::{change_all, LinkConfig, LinkStats, Micros};

use super::lane::Lane;
use super::types::{MultiplayerError, Packet, PeerId, TransferMode, MAX_INBOX};

/// Mixed into the seed per direction, so a remote peer's two lanes draw different streams.
const INBOUND_SEED_MIX: u64 = 0x5851_F42D_4C95_7F2D;

/// One remote peer's two lanes.
#[derive(Debug)]
struct Link {
    outbound: Lane,
    inbound: Lane,
}

/// Counters of what the conditioner itself dropped, beyond each lane's own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerLinksStats {
    /// Unreliable-ordered packets that came out of a lane older than one already passed on, and were dropped.
    pub dropped_out_of_order: u64,
    /// Packets held for a remote peer (either way) when it disconnected or the peer was closed.
    pub dropped_disconnected: u64,
}

/// The counters of one remote peer's two lanes, with how many packets each holds now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkPairStats {
    /// What this peer sends to the remote peer.
    pub outbound: LinkStats,
    /// Packets held in the outbound lane.
    pub outbound_queued: usize,
    /// What the remote peer sends to this peer.
    pub inbound: LinkStats,
    /// Packets held in the inbound lane.
    pub inbound_queued: usize,
}

/// How many departed peers' counters [`PeerLinks::departed`] keeps: the most recent.
pub const MAX_DEPARTED: usize = 32;

/// Why [`PeerLinks::configure`] refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkChangeError<E> {
    /// No remote peer of that id is connected.
    #[error("peer {0} is not connected to this one (use 0 for every peer, now and later)")]
    UnknownPeer(PeerId),
    /// The change itself was refused.
    #[error("{0}")]
    Setting(E),
}

/// The simulated links of one real peer to its remote peers, and what came through them for the game to read.
#[derive(Debug)]
pub struct PeerLinks {
    seed: u64,
    /// Settings a remote peer's links start with (changed by configuring peer 0).
    default_outbound: LinkConfig,
    default_inbound: LinkConfig,
    links: BTreeMap<PeerId, Link>,
    /// Outbound packets that took a clean, empty link's fast path: handed on first by `poll_outbound`.
    passed_out: VecDeque<(PeerId, Packet)>,
    /// Packets whose time has come, for the game to read.
    inbox: VecDeque<Packet>,
    stats: PeerLinksStats,
    refusals: Refusals,
    /// The counters of remote peers that left, as they stood when each left (the most recent
    /// [`MAX_DEPARTED`]), so a report at the end of a match still has them.
    departed: VecDeque<(PeerId, LinkPairStats)>,
}

impl PeerLinks {
    /// No remote peer yet, clean links by default, every random decision drawn from `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            default_outbound: LinkConfig::default(),
            default_inbound: LinkConfig::default(),
            links: BTreeMap::new(),
            passed_out: VecDeque::new(),
            inbox: VecDeque::new(),
            stats: PeerLinksStats::default(),
            refusals: Refusals::default(),
            departed: VecDeque::new(),
        }
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Restarts every lane's random stream from `seed` (each remote peer's from the seed and its id); packets
    /// in flight keep their schedule.
    pub fn reseed(&mut self, seed: u64) {
        self.seed = seed;
        for (&peer, link) in &mut self.links {
            let (outbound, inbound) = lane_seeds(seed, peer);
            link.outbound.model.reseed(outbound);
            link.inbound.model.reseed(inbound);
        }
    }

    /// The remote peer `peer` is connected: it gets links with the default settings (if it has none yet).
    pub fn connect(&mut self, peer: PeerId) {
        if self.links.contains_key(&peer) {
            return;
        }
        let (outbound, inbound) = lane_seeds(self.seed, peer);
        self.links.insert(
            peer,
            Link {
                outbound: Lane::new(self.default_outbound.clone(), outbound),
                inbound: Lane::new(self.default_inbound.clone(), inbound),
            },
        );
    }

    /// The remote peer `peer` is gone: its links go, and what they held is counted as `dropped_disconnected`.
    /// Packets from it that are already readable stay readable. Returns how many were dropped.
    pub fn disconnect(&mut self, peer: PeerId) -> usize {
        let Some(link) = self.links.remove(&peer) else {
            return 0;
        };
        if self.departed.len() == MAX_DEPARTED {
            self.departed.pop_front();
        }
        self.departed.push_back((
            peer,
            LinkPairStats {
                outbound: *link.outbound.model.stats(),
                outbound_queued: link.outbound.model.queued(),
                inbound: *link.inbound.model.stats(),
                inbound_queued: link.inbound.model.queued(),
            },
        ));
        let waiting = self.passed_out.len();
        self.passed_out.retain(|(to, _)| *to != peer);
        let dropped = link.outbound.model.queued()
            + link.inbound.model.queued()
            + (waiting - self.passed_out.len());
        self.stats.dropped_disconnected += dropped as u64;
        dropped
    }

    /// Every remote peer is gone and nothing is readable (the real peer was closed or replaced): what was held
    /// or unread is counted as `dropped_disconnected`. Settings for peers to come are kept.
    pub fn clear(&mut self) -> usize {
        let peers: Vec<PeerId> = self.links.keys().copied().collect();
        let mut dropped: usize = peers.into_iter().map(|p| self.disconnect(p)).sum();
        dropped += self.inbox.len();
        self.stats.dropped_disconnected += self.inbox.len() as u64;
        self.inbox.clear();
        dropped
    }

    /// The counters of the remote peers that left (the most recent [`MAX_DEPARTED`], oldest first), as they
    /// stood when each left: what its lanes still held then was dropped (`dropped_disconnected`).
    pub fn departed(&self) -> impl Iterator<Item = &(PeerId, LinkPairStats)> {
        self.departed.iter()
    }

    /// The connected remote peers, in increasing order.
    pub fn peers(&self) -> Vec<PeerId> {
        self.links.keys().copied().collect()
    }

    /// Changes the settings of `directions` of `peer`'s links with `change` (`peer` 0: every connected peer's
    /// and the defaults for peers to come), all or none: on an error nothing changes.
    pub fn configure<E>(
        &mut self,
        peer: PeerId,
        directions: Directions,
        change: impl Fn(&mut LinkConfig) -> Result<(), E>,
    ) -> Result<(), LinkChangeError<E>> {
        let chosen: Vec<PeerId> = if peer == 0 {
            self.links.keys().copied().collect()
        } else if self.links.contains_key(&peer) {
            vec![peer]
        } else {
            return Err(LinkChangeError::UnknownPeer(peer));
        };
        let outbound = matches!(directions, Directions::Outbound | Directions::Both);
        let inbound = matches!(directions, Directions::Inbound | Directions::Both);
        // Every config concerned, in a fixed order: per chosen peer outbound then inbound, then the defaults.
        let mut current: Vec<&LinkConfig> = Vec::new();
        for id in &chosen {
            let link = &self.links[id];
            if outbound {
                current.push(link.outbound.model.config());
            }
            if inbound {
                current.push(link.inbound.model.config());
            }
        }
        if peer == 0 {
            if outbound {
                current.push(&self.default_outbound);
            }
            if inbound {
                current.push(&self.default_inbound);
            }
        }
        let mut updated = change_all(current, &change)
            .map_err(LinkChangeError::Setting)?
            .into_iter();
        for id in &chosen {
            let Some(link) = self.links.get_mut(id) else {
                continue;
            };
            if outbound {
                if let Some(config) = updated.next() {
                    link.outbound.model.set_config(config);
                }
            }
            if inbound {
                if let Some(config) = updated.next() {
                    link.inbound.model.set_config(config);
                }
            }
        }
        if peer == 0 {
            if outbound {
                if let Some(config) = updated.next() {
                    self.default_outbound = config;
                }
            }
            if inbound {
                if let Some(config) = updated.next() {
                    self.default_inbound = config;
                }
            }
        }
        Ok(())
    }

    /// The settings of one direction of `peer`'s links (`peer` 0: the defaults for peers to come); `None` for a
    /// peer that is not connected. `outbound` picks the direction.
    pub fn config(&self, peer: PeerId, outbound: bool) -> Option<&LinkConfig> {
        if peer == 0 {
            return Some(if outbound {
                &self.default_outbound
            } else {
                &self.default_inbound
            });
        }
        let link = self.links.get(&peer)?;
        Some(if outbound {
            link.outbound.model.config()
        } else {
            link.inbound.model.config()
        })
    }

    /// Sends `data` at `now` to remote peer `target` (> 0), every connected peer (0), or every one but `-target`
    /// (< 0), each through its own outbound lane. A reliable packet is refused whole ([`MultiplayerError::Backlog`])
    /// when any destination's lane holds as many reliable packets as it may; an unknown `target` is refused
    /// ([`MultiplayerError::UnknownPeer`]). On an error nothing is sent.
    pub fn send(
        &mut self,
        now: Micros,
        target: PeerId,
        mode: TransferMode,
        channel: u8,
        data: Bytes,
    ) -> Result<(), MultiplayerError> {
        if target > 0 && !self.links.contains_key(&target) {
            return Err(MultiplayerError::UnknownPeer(target));
        }
        // Who gets it: one peer, every peer (0), or every one but -target.
        let chosen = |id: PeerId| match target {
            0 => true,
            t if t > 0 => id == t,
            t => Some(id) != t.checked_neg(),
        };
        // One peer's entry, or all of them.
        let only = (target > 0).then_some(target);
        let range = only.unwrap_or(PeerId::MIN)..=only.unwrap_or(PeerId::MAX);
        if mode == TransferMode::Reliable {
            if let Some((full, _)) = self
                .links
                .range(range.clone())
                .find(|(id, link)| chosen(**id) && !link.outbound.model.has_reliable_room())
            {
                return Err(MultiplayerError::Backlog(*full));
            }
        }
        for (&id, link) in self.links.range_mut(range) {
            if !chosen(id) {
                continue;
            }
            let mut packet = Packet {
                from: id,
                mode,
                channel,
                data: data.clone(),
                order: 0,
            };
            if link.outbound.pass(&mut packet) {
                self.passed_out.push_back((id, packet));
            } else {
                link.outbound.send(now, packet);
            }
        }
        Ok(())
    }

    /// The next outbound packet due by `now`, with the remote peer it goes to (the packet's `from` is also that
    /// peer): earliest due first across peers. Hand it to the real peer; [`PeerLinks::refused`] if it refuses.
    pub fn poll_outbound(&mut self, now: Micros) -> Option<(PeerId, Packet)> {
        if let Some(passed) = self.passed_out.pop_front() {
            return Some(passed);
        }
        // Lanes whose due packet cannot leave yet (a cut link holds reliable packets).
        let mut held: Vec<PeerId> = Vec::new();
        loop {
            let (&peer, _) = self
                .links
                .iter()
                .filter(|(id, _)| !held.contains(id))
                .filter_map(|(id, link)| Some((id, link.outbound.model.next_due()?)))
                .filter(|(_, due)| *due <= now)
                .min_by_key(|(_, due)| *due)?;
            let link = self.links.get_mut(&peer)?;
            match link.outbound.poll(now) {
                Some(Ok(packet)) => return Some((peer, packet)),
                Some(Err(())) => self.stats.dropped_out_of_order += 1,
                None => held.push(peer),
            }
        }
    }

    /// The real peer refused a packet [`PeerLinks::poll_outbound`] gave, with `code`: counted, as it is lost.
    /// True the first time this code is refused (worth telling the user; later ones are only counted).
    pub fn refused(&mut self, code: i64) -> bool {
        self.refusals.record(code)
    }

    /// How many packets the real peer refused, and the last refusal's code.
    pub fn refusals(&self) -> (u64, Option<i64>) {
        self.refusals.get()
    }

    /// Whether to take more from the real peer: false while the game's inbox holds [`MAX_INBOX`] unread packets
    /// or an inbound lane holds as many reliable packets as it may (a cut link, a game that does not read).
    /// What the real peer holds then waits there instead of growing here.
    pub fn can_receive(&self) -> bool {
        self.inbox.len() < MAX_INBOX
            && self
                .links
                .values()
                .all(|link| link.inbound.model.has_reliable_room())
    }

    /// A packet the real peer received from `from` at `now`, into that peer's inbound lane (a peer not yet
    /// reported connected is connected now). Refused ([`MultiplayerError::Backlog`], nothing kept) only for a
    /// reliable packet when [`PeerLinks::can_receive`] said false.
    pub fn receive(
        &mut self,
        now: Micros,
        from: PeerId,
        mode: TransferMode,
        channel: u8,
        data: Bytes,
    ) -> Result<(), MultiplayerError> {
        self.connect(from);
        let Some(link) = self.links.get_mut(&from) else {
            return Err(MultiplayerError::UnknownPeer(from));
        };
        if mode == TransferMode::Reliable && !link.inbound.model.has_reliable_room() {
            return Err(MultiplayerError::Backlog(from));
        }
        let mut packet = Packet {
            from,
            mode,
            channel,
            data,
            order: 0,
        };
        if self.inbox.len() < MAX_INBOX && link.inbound.pass(&mut packet) {
            self.inbox.push_back(packet);
        } else {
            link.inbound.send(now, packet);
        }
        Ok(())
    }

    /// Moves every inbound packet due by `now` into the inbox (up to [`MAX_INBOX`]; the rest wait in their
    /// lanes), each lane in its order, lanes by remote id.
    pub fn poll_inbound(&mut self, now: Micros) {
        for link in self.links.values_mut() {
            while self.inbox.len() < MAX_INBOX {
                match link.inbound.poll(now) {
                    Some(Ok(packet)) => self.inbox.push_back(packet),
                    Some(Err(())) => self.stats.dropped_out_of_order += 1,
                    None => break,
                }
            }
        }
    }

    /// The next packet the game reads, if any.
    pub fn front(&self) -> Option<&Packet> {
        self.inbox.front()
    }

    /// Takes the next packet the game reads.
    pub fn pop(&mut self) -> Option<Packet> {
        self.inbox.pop_front()
    }

    /// How many packets the game can read.
    pub fn available(&self) -> usize {
        self.inbox.len()
    }

    /// The earliest time a packet in any lane is due, if any.
    pub fn next_due(&self) -> Option<Micros> {
        self.links
            .values()
            .flat_map(|l| [l.outbound.model.next_due(), l.inbound.model.next_due()])
            .flatten()
            .min()
    }

    /// Moves every lane onto a clock that reads `to` when the old one read `from` (see
    /// [`crate::link::LinkModel::shift_time`]).
    pub fn shift_time(&mut self, from: Micros, to: Micros) {
        for link in self.links.values_mut() {
            for lane in [&mut link.outbound, &mut link.inbound] {
                lane.shift_time(from, to);
            }
        }
    }

    /// The conditioner's own counters.
    pub fn stats(&self) -> PeerLinksStats {
        self.stats
    }

    /// The counters of `peer`'s two lanes; `None` for a peer that is not connected.
    pub fn link_stats(&self, peer: PeerId) -> Option<LinkPairStats> {
        let link = self.links.get(&peer)?;
        Some(LinkPairStats {
            outbound: *link.outbound.model.stats(),
            outbound_queued: link.outbound.model.queued(),
            inbound: *link.inbound.model.stats(),
            inbound_queued: link.inbound.model.queued(),
        })
    }
}

/// The seeds of remote peer `peer`'s outbound and inbound lanes.
fn lane_seeds(seed: u64, peer: PeerId) -> (u64, u64) {
    // An odd multiplier spreads neighbouring ids apart; the mix tells the directions apart.
    let base = seed ^ (peer as u32 as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (base, base ^ INBOUND_SEED_MIX)
}
