//! A two-direction conditioner: what LinkConditioner does, without Godot. Packets the user puts go through the
//! outbound model to the inner peer; packets from the inner peer go through the inbound model to the user.
//!
//! Order of calls, all with the caller's `now`: [`Conditioner::send`] for each packet the user puts (hand
//! what it returns to the inner peer at once); [`Conditioner::poll_outbound`] until `None`, handing each packet
//! to the inner peer (and [`Conditioner::refused`] for each it refuses); [`Conditioner::receive`] for each
//! packet the inner peer received; then [`Conditioner::take_ready`] for what the user reads.

use std::collections::VecDeque;

use bytes::Bytes;

use super::{change_all, LinkConfig, LinkModel, LinkStats, Micros};

/// The inbound model's seed is the conditioner's mixed with this, so the two directions draw different streams.
const INBOUND_SEED_MIX: u64 = 0x5851_F42D_4C95_7F2D;

/// Which directions of a conditioner a change applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Directions {
    /// Packets put by the user, on their way to the inner peer.
    Outbound,
    /// Packets from the inner peer, on their way to the user.
    Inbound,
    /// Both.
    Both,
}

impl Directions {
    fn includes_outbound(self) -> bool {
        matches!(self, Directions::Outbound | Directions::Both)
    }

    fn includes_inbound(self) -> bool {
        matches!(self, Directions::Inbound | Directions::Both)
    }
}

/// What became of a packet the user put.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent<'a> {
    /// The outbound link is clean and empty: hand these bytes to the inner peer now (no copy was made).
    Now(&'a [u8]),
    /// Scheduled (or dropped) by the outbound model: it comes out of `poll_outbound` when due.
    Scheduled,
}

/// Both directions of a simulated link around an inner peer, and the packets that have come through inbound.
#[derive(Debug)]
pub struct Conditioner {
    outbound: LinkModel,
    inbound: LinkModel,
    /// Inbound packets whose time has come, waiting for the user.
    ready: VecDeque<Bytes>,
    seed: u64,
    refusals: Refusals,
}

/// The inner peer's refusals of packets handed to it: how many, the last one's code, and which codes were
/// already reported (each is reported once). Shared by every wrapper that hands packets on.
#[derive(Debug, Default)]
pub struct Refusals {
    count: u64,
    last: Option<i64>,
    reported: Vec<i64>,
}

impl Refusals {
    /// Counts a refusal with `code`; true the first time this code is refused, when it is worth telling the
    /// user (later ones are only counted).
    pub fn record(&mut self, code: i64) -> bool {
        self.count += 1;
        self.last = Some(code);
        if self.reported.contains(&code) {
            return false;
        }
        self.reported.push(code);
        true
    }

    /// How many packets were refused, and the last refusal's code.
    pub fn get(&self) -> (u64, Option<i64>) {
        (self.count, self.last)
    }
}

impl Conditioner {
    /// A conditioner with clean links in both directions, its random decisions drawn from `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            outbound: LinkModel::new(LinkConfig::default(), seed),
            inbound: LinkModel::new(LinkConfig::default(), seed ^ INBOUND_SEED_MIX),
            ready: VecDeque::new(),
            seed,
            refusals: Refusals::default(),
        }
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Restarts both directions' random streams from `seed`; queued packets keep their schedule.
    pub fn reseed(&mut self, seed: u64) {
        self.seed = seed;
        self.outbound.reseed(seed);
        self.inbound.reseed(seed ^ INBOUND_SEED_MIX);
    }

    /// Moves every scheduled time from the clock that read `from` to one that reads `to` now.
    pub fn shift_time(&mut self, from: Micros, to: Micros) {
        self.outbound.shift_time(from, to);
        self.inbound.shift_time(from, to);
    }

    /// The settings of the outbound direction.
    pub fn outbound(&self) -> &LinkConfig {
        self.outbound.config()
    }

    /// The settings of the inbound direction.
    pub fn inbound(&self) -> &LinkConfig {
        self.inbound.config()
    }

    /// Changes the settings of `directions` with `change`, all or none: on an error nothing changes.
    pub fn configure<E>(
        &mut self,
        directions: Directions,
        change: impl Fn(&mut LinkConfig) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut chosen = Vec::with_capacity(2);
        if directions.includes_outbound() {
            chosen.push(&mut self.outbound);
        }
        if directions.includes_inbound() {
            chosen.push(&mut self.inbound);
        }
        let updated = change_all(chosen.iter().map(|model| model.config()), change)?;
        for (model, config) in chosen.into_iter().zip(updated) {
            model.set_config(config);
        }
        Ok(())
    }

    /// Whether both directions are up.
    pub fn is_up(&self) -> bool {
        self.outbound.config().link_up && self.inbound.config().link_up
    }

    /// A packet the user put at `now`.
    pub fn send<'a>(&mut self, now: Micros, packet: &'a [u8]) -> Sent<'a> {
        if self.outbound.pass_through(packet.len()) {
            Sent::Now(packet)
        } else {
            self.outbound.send(now, Bytes::copy_from_slice(packet));
            Sent::Scheduled
        }
    }

    /// The next outbound packet due at `now`, for the inner peer.
    pub fn poll_outbound(&mut self, now: Micros) -> Option<Bytes> {
        self.outbound.poll(now)
    }

    /// Counts a packet the inner peer refused with `code`; true the first time this code is refused, when it is
    /// worth telling the user (once per code, not once per packet).
    pub fn refused(&mut self, code: i64) -> bool {
        self.refusals.record(code)
    }

    /// How many outbound packets the inner peer refused, and the last refusal's code.
    pub fn refusals(&self) -> (u64, Option<i64>) {
        self.refusals.get()
    }

    /// A packet the inner peer received, at `now`; then moves what is due inbound to the ready queue.
    pub fn receive(&mut self, now: Micros, packet: Bytes) {
        if self.inbound.pass_through(packet.len()) {
            self.ready.push_back(packet);
        } else {
            self.inbound.send(now, packet);
        }
        self.poll_inbound(now);
    }

    /// Moves the inbound packets due at `now` to the ready queue.
    pub fn poll_inbound(&mut self, now: Micros) {
        while let Some(packet) = self.inbound.poll(now) {
            self.ready.push_back(packet);
        }
    }

    /// The next packet for the user.
    pub fn take_ready(&mut self) -> Option<Bytes> {
        self.ready.pop_front()
    }

    /// How many packets wait for the user.
    pub fn ready_count(&self) -> usize {
        self.ready.len()
    }

    /// Forgets the packets waiting for the user (the inner peer changed).
    pub fn clear_ready(&mut self) {
        self.ready.clear();
    }

    /// The outbound direction's counters, and how many packets it holds.
    pub fn outbound_stats(&self) -> (&LinkStats, usize) {
        (self.outbound.stats(), self.outbound.queued())
    }

    /// The inbound direction's counters, and how many packets it holds.
    pub fn inbound_stats(&self) -> (&LinkStats, usize) {
        (self.inbound.stats(), self.inbound.queued())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::LinkConfigError;

    fn latency(ms: f64) -> impl Fn(&mut LinkConfig) -> Result<(), LinkConfigError> {
        move |config| {
            config.latency_ms = ms;
            Ok(())
        }
    }

    #[test]
    fn a_clean_link_hands_packets_straight_through_both_ways() {
        let mut c = Conditioner::new(1);
        assert_eq!(c.send(0, b"out"), Sent::Now(b"out"));
        c.receive(0, Bytes::from_static(b"in"));
        assert_eq!(c.take_ready().as_deref(), Some(&b"in"[..]));
    }

    #[test]
    fn each_direction_keeps_its_own_settings_and_delay() {
        let mut c = Conditioner::new(1);
        c.configure(Directions::Outbound, latency(10.0)).unwrap();
        c.configure(Directions::Inbound, latency(30.0)).unwrap();
        assert_eq!(c.send(0, b"out"), Sent::Scheduled);
        assert_eq!(c.poll_outbound(9_999), None);
        assert_eq!(c.poll_outbound(10_000).as_deref(), Some(&b"out"[..]));
        c.receive(0, Bytes::from_static(b"in"));
        assert_eq!(c.ready_count(), 0);
        c.poll_inbound(30_000);
        assert_eq!(c.take_ready().as_deref(), Some(&b"in"[..]));
    }

    #[test]
    fn a_refused_change_changes_neither_direction() {
        let mut c = Conditioner::new(1);
        c.configure(Directions::Both, latency(5.0)).unwrap();
        let refused = c.configure(Directions::Both, |config| {
            config.set("loss", crate::link::SettingValue::Number(2.0))
        });
        assert!(refused.is_err());
        assert_eq!((c.outbound().loss, c.inbound().loss), (0.0, 0.0));
        assert_eq!(
            (c.outbound().latency_ms, c.inbound().latency_ms),
            (5.0, 5.0)
        );
    }

    #[test]
    fn each_refusal_code_is_reported_once_and_every_refusal_counted() {
        let mut c = Conditioner::new(1);
        assert!(c.refused(2));
        assert!(!c.refused(2));
        assert!(c.refused(31));
        assert!(!c.refused(2));
        assert_eq!(c.refusals(), (4, Some(2)));
    }
}
