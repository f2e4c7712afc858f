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

pub mod config;
mod delay;

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use bytes::{Bytes, BytesMut};

use crate::rng::Rng;
pub use config::{JitterDistribution, LinkConfig, LinkConfigError, SettingValue};
use delay::DelaySampler;

/// A time in microseconds on the caller's clock.
pub type Micros = u64;

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
struct Scheduled {
    due: Micros,
    seq: u64,
    sent_at: Micros,
    packet: Bytes,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.due, self.seq).cmp(&(other.due, other.seq))
    }
}

/// One direction of a simulated link.
#[derive(Debug)]
pub struct LinkModel {
    config: LinkConfig,
    rng: Rng,
    delay: DelaySampler,
    in_bad_state: bool,
    queue: BinaryHeap<Reverse<Scheduled>>,
    next_seq: u64,
    /// When the simulated transmitter finishes sending what it has been given (bandwidth cap).
    transmitter_free_at: Micros,
    /// The latest delivery time scheduled so far; in-order packets are never due before it.
    latest_due: Micros,
    stats: LinkStats,
}

impl LinkModel {
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
            stats: LinkStats::default(),
        }
    }

    /// The current settings.
    pub fn config(&self) -> &LinkConfig {
        &self.config
    }

    /// Replaces the settings. Queued packets keep their delivery times; if the link goes down, they are
    /// dropped and counted under `dropped_link_down`.
    pub fn set_config(&mut self, config: LinkConfig) {
        if !config.link_up && self.config.link_up {
            self.stats.dropped_link_down += self.queue.len() as u64;
            self.queue.clear();
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
    pub fn send(&mut self, now: Micros, packet: Bytes) -> SendOutcome {
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
            self.schedule(now, packet);
            copies += 1;
        }
        if copies == 0 {
            SendOutcome::Dropped(DropReason::Overflow)
        } else {
            SendOutcome::Scheduled { copies }
        }
    }

    /// Releases the next packet due at or before `now`, if any.
    pub fn poll(&mut self, now: Micros) -> Option<Bytes> {
        if self.queue.peek()?.0.due > now {
            return None;
        }
        let Reverse(item) = self.queue.pop()?;
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

    fn maybe_corrupt(&mut self, packet: &Bytes) -> Bytes {
        if packet.is_empty() || !self.rng.chance(self.config.corrupt) {
            return packet.clone();
        }
        self.stats.corrupted += 1;
        let bit = self.rng.below(packet.len() as u64 * 8);
        let mut copy = BytesMut::from(&packet[..]);
        copy[(bit / 8) as usize] ^= 1 << (bit % 8);
        copy.freeze()
    }

    fn schedule(&mut self, now: Micros, packet: Bytes) {
        let bandwidth = self.config.bandwidth_bytes_per_second;
        let departure = if bandwidth > 0 {
            let start = now.max(self.transmitter_free_at);
            let transmit_us = (packet.len() as u128 * 1_000_000).div_ceil(bandwidth as u128) as u64;
            self.transmitter_free_at = start + transmit_us;
            self.transmitter_free_at
        } else {
            now
        };
        let skips_delay = self.rng.chance(self.config.reorder);
        let due = if skips_delay {
            departure
        } else {
            let due = departure + self.delay.sample_us(&mut self.rng, &self.config);
            if self.config.jitter_may_reorder {
                due
            } else {
                due.max(self.latest_due)
            }
        };
        if due < self.latest_due {
            self.stats.reordered += 1;
        }
        self.latest_due = self.latest_due.max(due);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.queue.push(Reverse(Scheduled {
            due,
            seq,
            sent_at: now,
            packet,
        }));
    }
}

#[cfg(test)]
mod tests;
