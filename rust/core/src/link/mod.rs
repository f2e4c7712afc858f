//! A sans-IO model of one direction of an impaired network link, in the manner of Linux netem.
//!
//! [`LinkModel::send`] takes a packet and the current time and decides its fate: dropped (and why), or scheduled
//! for delivery at some later time, perhaps corrupted or duplicated. [`LinkModel::poll`] releases the packets
//! whose time has come, in delivery order. [`LinkModel::next_due`] says when the next one is due. The model
//! never reads a clock and draws every random decision from a seeded [`Rng`], so the same seed and the same
//! calls give the same deliveries, byte for byte, on every run.
//!
//! Order of calls: `send` any number of times with non-decreasing `now`; `poll(now)` until it returns `None`
//! whenever time has passed; `set_config` at any time (queued packets keep their schedule, except that taking
//! the link down drops them).

pub mod conditioner;
pub mod config;
mod delay;

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use bytes::{Bytes, BytesMut};

use crate::rng::Rng;
pub use config::{JitterDistribution, LinkConfig, LinkConfigError, SettingValue};
use delay::DelaySampler;

/// Applies `change` to copies of each of `current` (the settings of several links), all or none: the new
/// settings in the same order, or the first refusal, with nothing changed. Every class that takes link settings
/// goes through here (a conditioner's directions, a network's links), so validation happens once and a refused
/// change never leaves some links changed and others not.
pub fn change_all<'a, E>(
    current: impl IntoIterator<Item = &'a LinkConfig>,
    change: impl Fn(&mut LinkConfig) -> Result<(), E>,
) -> Result<Vec<LinkConfig>, E> {
    current
        .into_iter()
        .map(|config| {
            let mut updated = config.clone();
            change(&mut updated).map(|()| updated)
        })
        .collect()
}

/// A time in microseconds on the caller's clock.
pub type Micros = u64;

/// What a link carries: bytes, or bytes with a label the link passes along untouched.
pub trait Payload: Clone {
    /// The size in bytes, for the bandwidth cap and the byte counters.
    fn len(&self) -> usize;
    /// True for an empty packet (never corrupted: it has no bit to flip).
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// A copy with bit `bit` (counted from the first byte's lowest bit) flipped; `bit < len() * 8`.
    fn with_bit_flipped(&self, bit: u64) -> Self;
}

impl Payload for Bytes {
    fn len(&self) -> usize {
        Bytes::len(self)
    }

    fn with_bit_flipped(&self, bit: u64) -> Self {
        let mut copy = BytesMut::from(&self[..]);
        copy[(bit / 8) as usize] ^= 1 << (bit % 8);
        copy.freeze()
    }
}

/// How many simulated losses in a row can each cost a reliable packet a retransmission timeout (see
/// [`LinkModel::send_reliable`]); after that the packet goes through, so even a link with loss 1.0 delivers.
pub const MAX_RELIABLE_RETRANSMISSIONS: u32 = 8;
/// The most reliable packets one link holds at once (they are not subject to `queue_limit`, and wait while the
/// link is down): beyond it [`LinkModel::send_reliable`] refuses, as a reliable transport's send buffer would.
pub const MAX_RELIABLE_HELD: usize = 65_536;
/// The shortest simulated retransmission timeout, in microseconds.
pub const MIN_RETRANSMISSION_TIMEOUT_US: Micros = 20_000;

/// Why a packet given to [`LinkModel::send`] will not be delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Simulated loss (independent or Gilbert–Elliott).
    Loss,
    /// The direction already held `queue_limit` packets.
    Overflow,
    /// The link was down.
    LinkDown,
}

/// What [`LinkModel::send`] did with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendOutcome {
    /// Scheduled for delivery, `copies` times (2 when duplicated).
    Scheduled {
        /// How many copies were queued.
        copies: u8,
    },
    /// Not delivered, for this reason.
    Dropped(DropReason),
}

/// Counters of one direction. Every packet sent is delivered, dropped for one reason, or still queued.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Packets given to `send`.
    pub packets_in: u64,
    /// Bytes given to `send`.
    pub bytes_in: u64,
    /// Packets released by `poll` (duplicates count twice).
    pub packets_delivered: u64,
    /// Bytes released by `poll`.
    pub bytes_delivered: u64,
    /// Packets dropped by simulated loss.
    pub dropped_loss: u64,
    /// Packets (or duplicate copies) dropped because the queue held `queue_limit` packets.
    pub dropped_overflow: u64,
    /// Packets dropped because the link was down, including those queued when it went down.
    pub dropped_link_down: u64,
    /// Extra copies made by duplication (including copies then dropped for lack of room).
    pub duplicated: u64,
    /// Packets scheduled to arrive before a packet sent earlier.
    pub reordered: u64,
    /// Packets with one bit flipped.
    pub corrupted: u64,
    /// Sum of the delays of delivered packets, in microseconds.
    pub delay_total_us: u64,
    /// Smallest delay of a delivered packet, in microseconds (0 before the first delivery).
    pub delay_min_us: u64,
    /// Largest delay of a delivered packet, in microseconds.
    pub delay_max_us: u64,
    /// Simulated retransmissions of reliable packets (each a simulated loss that delayed one).
    pub retransmitted: u64,
}

impl LinkStats {
    /// Mean delay of delivered packets in microseconds (0 before the first delivery).
    pub fn delay_mean_us(&self) -> f64 {
        if self.packets_delivered == 0 {
            0.0
        } else {
            self.delay_total_us as f64 / self.packets_delivered as f64
        }
    }
}

#[derive(Debug)]
struct Scheduled<P> {
    due: Micros,
    seq: u64,
    sent_at: Micros,
    /// Sent with [`LinkModel::send_reliable`]: kept while the link is down, released once it is up.
    reliable: bool,
    packet: P,
}

impl<P> PartialEq for Scheduled<P> {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}
impl<P> Eq for Scheduled<P> {}
impl<P> PartialOrd for Scheduled<P> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<P> Ord for Scheduled<P> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.due, self.seq).cmp(&(other.due, other.seq))
    }
}

/// One direction of a simulated link, carrying packets of type `P` (bytes unless said otherwise).
#[derive(Debug)]
pub struct LinkModel<P = Bytes> {
    config: LinkConfig,
    rng: Rng,
    delay: DelaySampler,
    in_bad_state: bool,
    queue: BinaryHeap<Reverse<Scheduled<P>>>,
    next_seq: u64,
    /// When the simulated transmitter finishes sending what it has been given (bandwidth cap).
    transmitter_free_at: Micros,
    /// The latest delivery time scheduled so far; in-order packets are never due before it.
    latest_due: Micros,
    /// How many of the queued packets are reliable ones.
    reliable_held: usize,
    stats: LinkStats,
}

impl<P: Payload> LinkModel<P> {
    /// A link with these settings whose random decisions all come from `seed`.
    pub fn new(config: LinkConfig, seed: u64) -> Self {
        Self {
            config,
            rng: Rng::new(seed),
            delay: DelaySampler::default(),
            in_bad_state: false,
            queue: BinaryHeap::new(),
            next_seq: 0,
            transmitter_free_at: 0,
            latest_due: 0,
            reliable_held: 0,
            stats: LinkStats::default(),
        }
    }

    /// Whether [`send_reliable`](Self::send_reliable) would take another packet (fewer than
    /// [`MAX_RELIABLE_HELD`] reliable packets are held).
    pub fn has_reliable_room(&self) -> bool {
        self.reliable_held < MAX_RELIABLE_HELD
    }

    /// The current settings.
    pub fn config(&self) -> &LinkConfig {
        &self.config
    }

    /// Replaces the settings. Queued packets keep their delivery times; if the link goes down, they are
    /// dropped and counted under `dropped_link_down`, except reliable ones, which wait for the link.
    pub fn set_config(&mut self, config: LinkConfig) {
        if !config.link_up && self.config.link_up {
            let before = self.queue.len();
            self.queue.retain(|item| item.0.reliable);
            self.stats.dropped_link_down += (before - self.queue.len()) as u64;
        }
        self.config = config;
    }

    /// Restarts the random stream from `seed`; queued packets keep their schedule.
    pub fn reseed(&mut self, seed: u64) {
        self.rng = Rng::new(seed);
        self.delay = DelaySampler::default();
        self.in_bad_state = false;
    }

    /// Moves the model onto a clock that reads `to` when the old one read `from`: every queued packet keeps its
    /// remaining delay. Times that would fall before 0 become 0.
    pub fn shift_time(&mut self, from: Micros, to: Micros) {
        let shift = |t: Micros| (t + to).saturating_sub(from);
        self.transmitter_free_at = shift(self.transmitter_free_at);
        self.latest_due = shift(self.latest_due);
        let items = std::mem::take(&mut self.queue).into_vec();
        self.queue = items
            .into_iter()
            .map(|Reverse(item)| {
                Reverse(Scheduled {
                    due: shift(item.due),
                    sent_at: shift(item.sent_at),
                    ..item
                })
            })
            .collect();
    }

    /// When nothing is impaired and nothing is queued, a packet offered now would come out of the next `poll` at
    /// once and unchanged. Then this records it as sent and delivered (as `send` and `poll` would) and returns
    /// true, and the caller hands the packet on itself: the fast path of a clean link. Otherwise it returns false
    /// and changes nothing. (It needs no time: a packet already delivered holds no later packet back.)
    pub fn pass_through(&mut self, len: usize) -> bool {
        if !self.queue.is_empty() || !self.config.is_transparent() {
            return false;
        }
        let stats = &mut self.stats;
        stats.packets_in += 1;
        stats.bytes_in += len as u64;
        if stats.packets_delivered == 0 {
            stats.delay_min_us = 0;
        }
        stats.packets_delivered += 1;
        stats.bytes_delivered += len as u64;
        self.next_seq += 1;
        true
    }

    /// Offers a packet to the link at time `now`.
    pub fn send(&mut self, now: Micros, packet: P) -> SendOutcome {
        self.stats.packets_in += 1;
        self.stats.bytes_in += packet.len() as u64;
        if !self.config.link_up {
            self.stats.dropped_link_down += 1;
            return SendOutcome::Dropped(DropReason::LinkDown);
        }
        if self.decide_loss() {
            self.stats.dropped_loss += 1;
            return SendOutcome::Dropped(DropReason::Loss);
        }
        let duplicate = self.rng.chance(self.config.duplicate);
        // A duplicate counts as made even if the queue then has no room for it: it is then dropped as overflow,
        // so every copy is accounted for once.
        self.stats.duplicated += duplicate as u64;
        let mut copies = 0u8;
        for _ in 0..(1 + duplicate as u8) {
            if self.queue.len() >= self.config.queue_limit {
                self.stats.dropped_overflow += 1;
                continue;
            }
            let packet = self.maybe_corrupt(&packet);
            let departure = self.departure(now, packet.len());
            let (delay, overtakes) = self.sample_delay();
            self.schedule(now, departure + delay, overtakes, false, packet);
            copies += 1;
        }
        if copies == 0 {
            SendOutcome::Dropped(DropReason::Overflow)
        } else {
            SendOutcome::Scheduled { copies }
        }
    }

    /// Offers a packet at time `now` the way a reliable transport would carry it: never lost, duplicated,
    /// corrupted or sent ahead of its turn. It takes the link's bandwidth and delay, and each simulated loss (up
    /// to [`MAX_RELIABLE_RETRANSMISSIONS`] in a row) adds one retransmission timeout: twice `latency_ms` plus four
    /// times `jitter_ms`, at least [`MIN_RETRANSMISSION_TIMEOUT_US`]. It is due no earlier than `not_before`
    /// (the caller's ordering, such as the previous reliable packet of its channel), is not subject to
    /// `queue_limit`, and while the link is down it waits. Returns when it is due, or `None` (refused, nothing
    /// counted) when [`MAX_RELIABLE_HELD`] reliable packets are held already.
    pub fn send_reliable(&mut self, now: Micros, packet: P, not_before: Micros) -> Option<Micros> {
        if !self.has_reliable_room() {
            return None;
        }
        self.stats.packets_in += 1;
        self.stats.bytes_in += packet.len() as u64;
        let mut due =
            self.departure(now, packet.len()) + self.delay.sample_us(&mut self.rng, &self.config);
        let timeout = ((2.0 * self.config.latency_ms + 4.0 * self.config.jitter_ms) * 1000.0)
            .round() as Micros;
        let timeout = timeout.max(MIN_RETRANSMISSION_TIMEOUT_US);
        for _ in 0..MAX_RELIABLE_RETRANSMISSIONS {
            if !self.decide_loss() {
                break;
            }
            self.stats.retransmitted += 1;
            due += timeout;
        }
        Some(self.schedule(now, due.max(not_before), false, true, packet))
    }

    /// Releases the next packet due at or before `now`, if any. While the link is down, nothing is released
    /// (only reliable packets are still held then).
    pub fn poll(&mut self, now: Micros) -> Option<P> {
        if self.queue.peek()?.0.due > now || !self.config.link_up {
            return None;
        }
        let Reverse(item) = self.queue.pop()?;
        self.reliable_held -= usize::from(item.reliable);
        let delay = item.due - item.sent_at;
        let stats = &mut self.stats;
        stats.delay_min_us = if stats.packets_delivered == 0 {
            delay
        } else {
            stats.delay_min_us.min(delay)
        };
        stats.delay_max_us = stats.delay_max_us.max(delay);
        stats.delay_total_us += delay;
        stats.packets_delivered += 1;
        stats.bytes_delivered += item.packet.len() as u64;
        Some(item.packet)
    }

    /// When the next queued packet is due, if any: the time to call `poll` next.
    pub fn next_due(&self) -> Option<Micros> {
        self.queue.peek().map(|item| item.0.due)
    }

    /// How many packets are queued (waiting for bandwidth or delay).
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// This direction's counters.
    pub fn stats(&self) -> &LinkStats {
        &self.stats
    }

    fn decide_loss(&mut self) -> bool {
        let independent = self.rng.chance(self.config.loss);
        if self.config.burst_enter_probability == 0.0 {
            self.in_bad_state = false;
            return independent;
        }
        // Gilbert–Elliott: move between the states, then lose the packet with the new state's loss rate.
        self.in_bad_state = if self.in_bad_state {
            !self.rng.chance(self.config.burst_exit_probability)
        } else {
            self.rng.chance(self.config.burst_enter_probability)
        };
        let state_loss = if self.in_bad_state {
            self.config.loss_in_bad_state
        } else {
            self.config.loss_in_good_state
        };
        self.rng.chance(state_loss) || independent
    }

    fn maybe_corrupt(&mut self, packet: &P) -> P {
        if packet.is_empty() || !self.rng.chance(self.config.corrupt) {
            return packet.clone();
        }
        self.stats.corrupted += 1;
        let bit = self.rng.below(packet.len() as u64 * 8);
        packet.with_bit_flipped(bit)
    }

    /// When a packet of `len` bytes offered at `now` has left the simulated transmitter (bandwidth cap).
    fn departure(&mut self, now: Micros, len: usize) -> Micros {
        let bandwidth = self.config.bandwidth_bytes_per_second;
        if bandwidth > 0 {
            let start = now.max(self.transmitter_free_at);
            let transmit_us = (len as u128 * 1_000_000).div_ceil(bandwidth as u128) as u64;
            self.transmitter_free_at = start + transmit_us;
            self.transmitter_free_at
        } else {
            now
        }
    }

    /// The delay one packet spends on the wire after departure, and whether it overtakes (`reorder`: it then
    /// skips the delay).
    fn sample_delay(&mut self) -> (Micros, bool) {
        let overtakes = self.rng.chance(self.config.reorder);
        if overtakes {
            (0, true)
        } else {
            (self.delay.sample_us(&mut self.rng, &self.config), false)
        }
    }

    /// Queues a packet due at `due` (held behind earlier packets unless it overtakes or jitter may reorder) and
    /// returns when it is due.
    fn schedule(
        &mut self,
        now: Micros,
        due: Micros,
        overtakes: bool,
        reliable: bool,
        packet: P,
    ) -> Micros {
        let due = if overtakes || self.config.jitter_may_reorder {
            due
        } else {
            due.max(self.latest_due)
        };
        if due < self.latest_due {
            self.stats.reordered += 1;
        }
        self.latest_due = self.latest_due.max(due);
        self.reliable_held += usize::from(reliable);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.queue.push(Reverse(Scheduled {
            due,
            seq,
            sent_at: now,
            reliable,
            packet,
        }));
        due
    }
}

#[cfg(test)]
mod tests;
