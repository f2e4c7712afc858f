//! The sending half: queues messages, cuts them into fragments, tracks what is in flight, estimates the
//! round-trip time (RFC 6298, with QUIC's ack-delay correction), detects loss (selective acknowledgements with a
//! time-based reordering allowance that widens after spurious losses, and retransmission timeouts) and feeds
//! the congestion controller ([`super::congestion`]) its acknowledgements, round trips and losses.

use std::collections::VecDeque;

use bytes::Bytes;

use super::congestion::{Controller, Pacer};
use super::packet::{fragment_cost, Acks, CONTROL_LEN, DATA_PREFIX_LEN, FIRST_FRAGMENT_EXTRA};
use super::seq::Seq;
use super::Unfinished;
use crate::link::Micros;

/// Clock granularity term of RFC 6298's RTO formula.
const GRANULARITY_US: u64 = 1_000;
/// How long a peer may take to acknowledge: it acknowledges when polled, and games poll once per frame. The RTO
/// allows this much on top of the round trip (as QUIC's max_ack_delay), so a peer polled at 40 Hz or faster
/// never causes a spurious timeout.
const MAX_ACK_DELAY_US: u64 = 25_000;
/// Round trips vary by this many `rttvar` without any queue of ours: jitter, not queueing (the spread of a
/// jittered path's round trips around their mean is a few mean deviations). Capped at an eighth of the round
/// trip, so on a slow link, where one datagram's time on the wire shows up as variation, it does not hide a queue.
const JITTER_ALLOWANCE: u64 = 2;
/// The reordering allowance widens to at most this many quarters more than its base (see `reorder_window_us`).
const MAX_REORDER_QUARTERS: u32 = 8;
/// Round trips with presumed losses and no spurious one after which the reordering allowance narrows back to
/// its base (RFC 8985 keeps a widened window for 16 recoveries). Counted in round trips, not in losses: at a
/// high rate 64 losses pass in a fraction of a second, and the allowance narrowed before the next reordering.
const REORDER_DECAY: u32 = 16;
/// The smallest round trip is the minimum over this long (two windows), so it follows route changes.
const MIN_RTT_WINDOW_US: u64 = 10_000_000;

/// Round-trip time estimation and retransmission timeout, per RFC 6298.
#[derive(Debug, Clone)]
pub struct RttEstimator {
    smoothed_us: Option<u64>,
    variance_us: u64,
    /// Windowed minimum: the minimum of the current window and of the previous one.
    min_current: Option<u64>,
    min_previous: Option<u64>,
    window_started: u64,
    initial_rto_us: u64,
    min_rto_us: u64,
    max_rto_us: u64,
    backoff: u32,
    /// How many quarters of its base the reordering allowance has beyond three (1: the base itself): raised each
    /// time a datagram presumed lost turns out to have arrived, back to 1 after [`REORDER_DECAY`] round trips
    /// with losses and without such a surprise.
    reorder_quarters: u32,
    /// Round trips with presumed losses since the allowance was last raised.
    losses_since_spurious: u32,
    /// Losses presumed before this time count as the same round trip's.
    loss_round_until: u64,
    /// Whether the smoothed value is an overestimate that the first real sample replaces.
    provisional: bool,
}

impl RttEstimator {
    /// An estimator that starts at `initial_rto_us` and keeps the RTO within `min..=max`.
    pub fn new(initial_rto_us: u64, min_rto_us: u64, max_rto_us: u64) -> Self {
        Self {
            smoothed_us: None,
            variance_us: 0,
            min_current: None,
            min_previous: None,
            window_started: 0,
            initial_rto_us,
            min_rto_us,
            max_rto_us,
            backoff: 0,
            reorder_quarters: 1,
            losses_since_spurious: 0,
            loss_round_until: 0,
            provisional: false,
        }
    }

    /// Takes an upper bound of the round trip (from a handshake that was not a plain exchange of HELLOs) before
    /// any sample: it sets the RTO until the first sample, which then replaces it rather than being averaged
    /// with it.
    pub fn upper_bound(&mut self, now: u64, rtt_us: u64) {
        if self.smoothed_us.is_none() {
            self.sample(now, rtt_us);
            self.provisional = true;
        }
    }

    /// Takes a sample, taken at `now`, from a datagram acknowledged after one transmission (Karn's rule).
    pub fn sample(&mut self, now: u64, rtt_us: u64) {
        if now.saturating_sub(self.window_started) >= MIN_RTT_WINDOW_US / 2 {
            self.min_previous = self.min_current.take();
            self.window_started = now;
        }
        self.min_current = Some(self.min_current.map_or(rtt_us, |m| m.min(rtt_us)));
        match self
            .smoothed_us
            .filter(|_| !std::mem::take(&mut self.provisional))
        {
            None => {
                self.smoothed_us = Some(rtt_us);
                self.variance_us = rtt_us / 2;
            }
            Some(srtt) => {
                self.variance_us = (3 * self.variance_us + srtt.abs_diff(rtt_us)) / 4;
                self.smoothed_us = Some((7 * srtt + rtt_us) / 8);
            }
        }
        self.backoff = 0;
    }

    /// A datagram presumed lost was acknowledged too soon for its retransmission to be what arrived: the path
    /// reorders more than the allowance, so it widens (RFC 8985's adaptive reordering window).
    pub fn note_spurious_loss(&mut self) {
        self.reorder_quarters = (self.reorder_quarters + 1).min(MAX_REORDER_QUARTERS);
        self.losses_since_spurious = 0;
    }

    /// Counts `count` losses presumed at `now`: after [`REORDER_DECAY`] round trips with some and without a
    /// spurious one, the allowance narrows back.
    pub fn note_losses(&mut self, now: u64, count: u32) {
        if count == 0 || now < self.loss_round_until {
            return;
        }
        self.loss_round_until = now + self.smoothed_us.unwrap_or(self.initial_rto_us);
        self.losses_since_spurious += 1;
        if self.losses_since_spurious >= REORDER_DECAY {
            self.reorder_quarters = 1;
            self.losses_since_spurious = 0;
        }
    }

    /// Doubles the RTO after a timeout (until new data is acknowledged).
    pub fn back_off(&mut self) {
        self.backoff = (self.backoff + 1).min(16);
    }

    /// The current retransmission timeout: RFC 6298's `srtt + 4 rttvar`, widened to the reordering window
    /// when that is larger, plus the acknowledgement delay allowance, so the timeout only fires after the
    /// reordering rule would have (QUIC's PTO has the same shape).
    pub fn rto_us(&self) -> u64 {
        let base = match self.smoothed_us {
            None => self.initial_rto_us,
            Some(srtt) => srtt + self.reorder_window_us() + MAX_ACK_DELAY_US,
        };
        base.clamp(self.min_rto_us, self.max_rto_us)
            .saturating_mul(1 << self.backoff)
            .min(self.max_rto_us)
    }

    /// The smoothed round-trip time, once there is a sample.
    pub fn smoothed_us(&self) -> Option<u64> {
        self.smoothed_us
    }

    /// The round-trip time variation.
    pub fn variance_us(&self) -> u64 {
        self.variance_us
    }

    /// The smallest recent round trip: the path's delay without queueing.
    pub fn min_us(&self) -> Option<u64> {
        match (self.min_current, self.min_previous) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// How long after a later datagram's acknowledgement an earlier one may still arrive before it is presumed
    /// lost: a quarter of the smallest round trip, or four round-trip variations if jitter is larger (the spirit
    /// of RACK, RFC 8985); widened by a quarter of that for each spurious loss seen lately, up to
    /// [`MAX_REORDER_QUARTERS`] quarters.
    pub fn reorder_window_us(&self) -> u64 {
        let base = (self.min_us().unwrap_or(0) / 4)
            .max(4 * self.variance_us)
            .max(GRANULARITY_US);
        base * self.reorder_quarters as u64 / 4 + base * 3 / 4
    }
}

#[derive(Debug)]
struct InFlight {
    channel: u8,
    chan_seq: Seq,
    message_len: Option<u32>,
    payload: Bytes,
    /// When it was first sent, and last sent.
    first_sent: Micros,
    last_sent: Micros,
    transmissions: u32,
    acked: bool,
    lost: bool,
    /// The last fragment of a message: once it and every datagram before it are acknowledged, so is the message.
    last_of_message: bool,
    /// Redundant copies sent in later datagrams (see [`Sender::copies`]).
    copies: u8,
}

/// At most this many redundant copies of a fragment go out, so a thin stream's bytes are on the wire at most three
/// times before any retransmission.
pub const MAX_COPIES: u8 = 2;
/// Only fragments this small are copied: a game's events, not a bulk transfer's datagrams.
pub const MAX_COPIED_PAYLOAD: usize = 512;
/// How many of the newest datagrams in flight are looked at for copies.
const COPY_LOOKBACK: usize = 16;
/// A tail probe waits a quarter of the smoothed round trip after the last DATA, within these bounds.
const TAIL_PROBE_MIN_US: Micros = 5_000;
const TAIL_PROBE_MAX_US: Micros = 25_000;

/// A fragment to put on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// Its sequence number.
    pub seq: Seq,
    /// Its message's channel.
    pub channel: u8,
    /// Its number among its channel's DATA datagrams.
    pub chan_seq: Seq,
    /// The message length, on a message's first fragment.
    pub message_len: Option<u32>,
    /// The fragment's bytes.
    pub payload: Bytes,
    /// True when this is a retransmission.
    pub retransmission: bool,
}

/// What acknowledgements did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AckOutcome {
    /// Datagrams newly acknowledged.
    pub newly_acked: u32,
    /// Datagrams newly presumed lost.
    pub newly_lost: u32,
}

/// The acknowledgements acknowledge a datagram that was never sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImpossibleAck;

/// One channel's messages waiting to be sent, the one being cut into fragments (and how much of it has been
/// sent), and the number its next DATA datagram gets.
#[derive(Debug, Default)]
struct ChannelOut {
    queue: VecDeque<Bytes>,
    current: Option<(Bytes, usize)>,
    next_chan_seq: Seq,
}

impl ChannelOut {
    fn has_more(&self) -> bool {
        self.current.is_some() || !self.queue.is_empty()
    }
}

/// The sending half of a connection.
#[derive(Debug)]
pub struct Sender {
    /// Each channel's waiting messages, by channel number.
    channels: Vec<ChannelOut>,
    /// The channels with something to send, in turn: each new fragment comes from the first, which then goes to
    /// the back, so a long message on one channel never holds back another's.
    active: VecDeque<u8>,
    /// Bytes of messages accepted and not yet fully acknowledged.
    pending_bytes: usize,
    /// Messages accepted and not yet fully acknowledged (counting the one being cut).
    pending_messages: usize,
    next_seq: Seq,
    /// Slot `i` is datagram `oldest + i`.
    in_flight: VecDeque<InFlight>,
    oldest: Seq,
    unacked: usize,
    lost_waiting: usize,
    bytes_in_flight: usize,
    /// The newest datagram acknowledged so far, and when it was (last) sent.
    newest_acked: Option<(Seq, Micros)>,
    /// The earliest time `on_timeout` has work (may be early; never late).
    earliest_timer_due: Option<Micros>,
    /// The congestion window (see [`super::congestion`]).
    cc: Controller,
    /// Losses among datagrams before this one belong to the congestion event already reacted to.
    recovery_until: Seq,
    max_window: usize,
    mtu: usize,
    rtt: RttEstimator,
    retransmissions: u64,
    /// Whether anything was acknowledged since the last retransmission timeout: if so, the path is alive and a
    /// timeout means loss, not silence.
    acked_since_timeout: bool,
    /// When something was last acknowledged: a timeout is silence only when a whole timeout has passed since.
    last_ack_at: Option<Micros>,
    /// When the last round-trip sample from a datagram sent once was taken.
    clean_sample_at: Micros,
    /// How often this side is polled: acknowledgements are seen only then, so round-trip samples carry up to
    /// this much delay that is not queueing.
    poll_interval_us: Micros,
    /// The receiver's credit limit: new DATA may be sent while `sent_cost` stays at or below it.
    peer_credit: u64,
    /// The credit cost of every new DATA datagram sent so far.
    sent_cost: u64,
    /// The credit the rest of every message started and not yet sent whole will cost.
    reserved: u64,
    /// Whether the last attempt to cut a fragment was refused for lack of credit.
    flow_blocked: bool,
    /// Slots visited by acknowledgement processing so far: a measure of work, for tests and fuzzing.
    ack_work: u64,
    /// Spreads sends at the congestion controller's pacing rate.
    pacer: Pacer,
    /// When the pacer lets the next datagram go, while it holds one back.
    pacing_due: Option<Micros>,
    /// When DATA last went out (a first send, a retransmission or a tail probe).
    last_data_at: Micros,
    /// Redundant copies sent so far.
    copies_sent: u64,
}

impl Sender {
    /// A sender numbering datagrams from `first`, with at most `max_window` datagrams outstanding and a
    /// congestion window of at most `max_congestion_window`.
    pub fn new(
        first: Seq,
        mtu: usize,
        max_window: usize,
        max_congestion_window: usize,
        rtt: RttEstimator,
    ) -> Self {
        Self {
            channels: Vec::new(),
            active: VecDeque::new(),
            pending_bytes: 0,
            pending_messages: 0,
            next_seq: first,
            in_flight: VecDeque::new(),
            oldest: first,
            unacked: 0,
            lost_waiting: 0,
            bytes_in_flight: 0,
            newest_acked: None,
            earliest_timer_due: None,
            cc: Controller::new(max_congestion_window.min(max_window)),
            recovery_until: first,
            max_window,
            mtu,
            rtt,
            retransmissions: 0,
            acked_since_timeout: true,
            last_ack_at: None,
            clean_sample_at: 0,
            poll_interval_us: 0,
            peer_credit: 0,
            sent_cost: 0,
            reserved: 0,
            flow_blocked: false,
            ack_work: 0,
            pacer: Pacer::default(),
            pacing_due: None,
            last_data_at: 0,
            copies_sent: 0,
        }
    }

    /// Raises the receiver's credit limit (limits only ever grow; an older, smaller one is ignored).
    pub fn grant_credit(&mut self, limit: u64) {
        if limit > self.peer_credit {
            self.peer_credit = limit;
            self.flow_blocked = false;
        }
    }

    /// Whether new data waits because the receiver's credit is used up.
    pub fn is_flow_blocked(&self) -> bool {
        self.flow_blocked
    }

    /// Datagrams from the oldest unacknowledged one to the newest sent: what acknowledgement processing may walk.
    pub fn outstanding(&self) -> usize {
        self.in_flight.len()
    }

    /// Datagrams sent and neither acknowledged nor presumed lost.
    pub fn in_flight(&self) -> usize {
        self.unacked - self.lost_waiting
    }

    /// Slots visited by acknowledgement processing so far (each call costs at most the datagrams in flight,
    /// plus the 66 that one acknowledgement block can name).
    pub fn ack_work(&self) -> u64 {
        self.ack_work
    }

    /// Drops every message not yet acknowledged (the connection closed) and returns how many there were: those
    /// not yet sent whole (they cannot have arrived) and those sent whole but not acknowledged (they may have).
    pub fn discard_all(&mut self) -> Unfinished {
        let unsent = self
            .channels
            .iter()
            .map(|ch| ch.queue.len() + ch.current.is_some() as usize)
            .sum();
        let discarded = Unfinished {
            unsent,
            unconfirmed: self.pending_messages.saturating_sub(unsent),
        };
        for ch in &mut self.channels {
            ch.queue.clear();
            ch.current = None;
        }
        self.active.clear();
        self.reserved = 0;
        self.in_flight.clear();
        self.oldest = self.next_seq;
        self.unacked = 0;
        self.lost_waiting = 0;
        self.bytes_in_flight = 0;
        self.pending_bytes = 0;
        self.pending_messages = 0;
        self.earliest_timer_due = None;
        discarded
    }

    /// Takes the handshake's round trip as the first round-trip sample (only before any other) when it is
    /// `exact`, which the congestion controller also takes as its first base; otherwise as an upper bound that
    /// the first data sample replaces (see [`RttEstimator::upper_bound`]).
    pub fn handshake_rtt(&mut self, now: Micros, rtt_us: u64, exact: bool) {
        if self.rtt.smoothed_us().is_some() {
            return;
        }
        if exact {
            self.rtt.sample(now, rtt_us);
            self.cc
                .on_rtt_sample(now, now.saturating_sub(rtt_us), rtt_us, rtt_us);
        } else {
            self.rtt.upper_bound(now, rtt_us);
        }
    }

    /// Tells the sender how often it is polled (see `Connection::handle_timeout`).
    pub fn set_poll_interval(&mut self, interval_us: Micros) {
        self.poll_interval_us = interval_us;
    }

    /// Sets the datagram size for fragments cut from now on.
    pub fn set_mtu(&mut self, mtu: usize) {
        self.mtu = mtu;
    }

    /// Queues a message on channel 0.
    pub fn push(&mut self, message: Bytes) {
        self.push_on(0, message);
    }

    /// Queues a message on `channel`: delivered once, in order among that channel's messages.
    pub fn push_on(&mut self, channel: u8, message: Bytes) {
        self.pending_bytes += message.len();
        self.pending_messages += 1;
        let index = channel as usize;
        if self.channels.len() <= index {
            self.channels.resize_with(index + 1, ChannelOut::default);
        }
        let ch = &mut self.channels[index];
        if !ch.has_more() {
            self.active.push_back(channel);
        }
        ch.queue.push_back(message);
    }

    /// Bytes accepted and not yet acknowledged.
    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// Messages accepted and not yet fully acknowledged.
    pub fn pending_messages(&self) -> usize {
        self.pending_messages
    }

    /// Payload bytes sent and not yet acknowledged.
    pub fn bytes_in_flight(&self) -> usize {
        self.bytes_in_flight
    }

    /// The congestion window, in datagrams.
    pub fn congestion_window(&self) -> f64 {
        self.cc.window()
    }

    /// The congestion controller's base round trip (the path without queueing), once measured.
    pub fn base_rtt_us(&self) -> Option<u64> {
        self.cc.base_rtt_us()
    }

    /// Datagrams sent again.
    pub fn retransmissions(&self) -> u64 {
        self.retransmissions
    }

    /// Takes a round-trip sample from a probe this side sent and the peer echoed: for a side that sends no data
    /// of its own, whose estimate would otherwise stay the handshake's.
    pub fn rtt_probe_sample(&mut self, now: u64, rtt_us: u64) {
        self.rtt.sample(now, rtt_us);
    }

    /// The round-trip estimator.
    pub fn rtt(&self) -> &RttEstimator {
        &self.rtt
    }

    /// True when there is nothing unacknowledged.
    pub fn is_idle(&self) -> bool {
        self.pending_messages == 0
    }

    fn slot(&mut self, seq: Seq) -> Option<&mut InFlight> {
        if seq.is_before(self.oldest) {
            return None;
        }
        let i = seq.since(self.oldest) as usize;
        self.in_flight.get_mut(i)
    }

    /// Takes in the peer's acknowledgements. Acknowledgements of datagrams never sent are refused whole, before
    /// anything changes; the work done is bounded by the datagrams in flight.
    pub fn on_acks(&mut self, now: Micros, acks: Acks) -> Result<AckOutcome, ImpossibleAck> {
        let largest = acks.largest;
        let span = self.next_seq.since(self.oldest);
        // How far the cumulative acknowledgement reaches into what is in flight: not past what was sent.
        let cumulative = if acks.next.is_before(self.oldest) {
            0
        } else {
            acks.next.since(self.oldest)
        };
        // `largest` and `recent` must have been sent, and `next` can be at most one past `largest`.
        if cumulative > span
            || !largest.is_before(self.next_seq)
            || largest.plus(1).is_before(acks.next)
            || !acks.recent.is_before(self.next_seq)
        {
            return Err(ImpossibleAck);
        }
        self.ack_work += cumulative as u64 + 66;
        self.grant_credit(acks.credit);
        let mut outcome = AckOutcome::default();
        let mut rtt_sample = None;
        let mut newest = self.newest_acked;
        let mut ack = |sender: &mut Sender, seq: Seq| {
            let Some(slot) = sender.slot(seq) else { return };
            if slot.acked {
                return;
            }
            slot.acked = true;
            let (was_lost, transmissions, first_sent, last_sent, len) = (
                slot.lost,
                slot.transmissions,
                slot.first_sent,
                slot.last_sent,
                slot.payload.len(),
            );
            // Acknowledged sooner after its retransmission than any round trip takes: the first transmission
            // arrived after all, and the loss was reordering, or a path that got slower than the timeout.
            let spurious = transmissions > 1
                && sender
                    .rtt
                    .smoothed_us()
                    .is_some_and(|srtt| now.saturating_sub(last_sent) < srtt / 2);
            if spurious {
                sender.rtt.note_spurious_loss();
            }
            sender.unacked -= 1;
            sender.bytes_in_flight -= len;
            sender.pending_bytes -= len;
            if was_lost {
                sender.lost_waiting -= 1;
            }
            // Sample only from the datagram whose arrival prompted these acknowledgements, when they are the first
            // to cover it, and without the time the receiver held them (QUIC's ack delay). Sampling every arrival
            // keeps the estimate unbiased when datagrams overtake each other.
            // When no datagram sent once has been sampled for four timeouts, a retransmitted datagram acknowledged
            // sooner after its retransmission than the shortest round trip seen lately gives the first
            // transmission's round trip: that acknowledgement can only be the first transmission's. (Without it, a
            // path that slowed beyond the timeout has every datagram sent twice and never sampled again, Karn's
            // rule leaving the timeout where it was.) It corrects the timeout only: the congestion controller
            // keeps to samples no retransmission clouds.
            let starved = transmissions > 1
                && now.saturating_sub(sender.clean_sample_at) >= 4 * sender.rtt.rto_us()
                && sender
                    .rtt
                    .min_us()
                    .is_some_and(|min| now.saturating_sub(last_sent) < min);
            if seq == acks.recent && (transmissions == 1 || starved) {
                let sent = if transmissions == 1 {
                    last_sent
                } else {
                    first_sent
                };
                let raw = now.saturating_sub(sent);
                let delay = acks.delay_us as Micros;
                rtt_sample = Some((
                    sent,
                    if raw > delay { raw - delay } else { raw },
                    transmissions == 1,
                ));
            }
            if newest.is_none_or(|(s, _)| s.is_before(seq)) {
                newest = Some((seq, last_sent));
            }
            outcome.newly_acked += 1;
            sender.acked_since_timeout = true;
            sender.last_ack_at = Some(now);
            let (srtt, noise) = (sender.rtt.smoothed_us(), sender.noise_us());
            sender.cc.on_ack(srtt, noise);
        };
        let first = self.oldest;
        for i in 0..cumulative {
            ack(self, first.plus(i));
        }
        if !largest.is_before(acks.next) {
            ack(self, largest);
        }
        // The datagram that prompted these acknowledgements has arrived, even when it is too far below
        // `largest` for the bitmap.
        if !acks.recent.is_before(acks.next) {
            ack(self, acks.recent);
        }
        for i in 0..64u32 {
            let seq = Seq(largest.0.wrapping_sub(1 + i));
            if acks.bits & (1 << i) != 0 && !seq.is_before(acks.next) {
                ack(self, seq);
            }
        }
        if let Some((sent_at, sample, clean)) = rtt_sample {
            self.rtt.sample(now, sample);
            if clean {
                self.clean_sample_at = now;
                let srtt = self.rtt.smoothed_us().unwrap_or(sample);
                self.cc.on_rtt_sample(now, sent_at, sample, srtt);
            }
        }
        self.newest_acked = newest;
        // A message is acknowledged once its last fragment and everything before it are.
        while let Some(done) = self.in_flight.pop_front_if(|f| f.acked) {
            if done.last_of_message {
                self.pending_messages -= 1;
            }
            self.oldest = self.oldest.plus(1);
        }
        outcome.newly_lost = self.detect_reordering_loss(now);
        Ok(outcome)
    }

    /// Presumes lost every unacknowledged datagram that was sent before the newest acknowledged one, once a
    /// round trip plus the reordering window has passed since it was sent. Those not yet old enough set a timer.
    fn detect_reordering_loss(&mut self, now: Micros) -> u32 {
        let Some((newest_seq, newest_sent)) = self.newest_acked else {
            return 0;
        };
        let rtt = self.rtt.smoothed_us().unwrap_or(self.rtt.rto_us());
        let wait = rtt.max(self.cc.base_rtt_us().unwrap_or(0)) + self.rtt.reorder_window_us();
        let mut lost = 0;
        let mut lost_from = None;
        let mut recheck: Option<Micros> = None;
        for (i, slot) in self.in_flight.iter_mut().enumerate() {
            let seq = self.oldest.plus(i as u32);
            if !seq.is_before(newest_seq) {
                break;
            }
            self.ack_work += 1;
            if slot.acked || slot.lost || slot.last_sent > newest_sent {
                continue;
            }
            let due = slot.last_sent + wait;
            if now >= due {
                slot.lost = true;
                lost += 1;
                lost_from.get_or_insert(seq);
            } else {
                recheck = Some(recheck.map_or(due, |r| r.min(due)));
            }
        }
        if let Some(due) = recheck {
            self.note_timer(due);
        }
        self.lost_waiting += lost as usize;
        self.rtt.note_losses(now, lost);
        if let Some(seq) = lost_from {
            self.congestion_event(now, seq, false);
        }
        lost
    }

    /// Round-trip delay that is not queueing: polling (packets move only when the peers, and the peers they
    /// wrap, are polled, once each way: twice the poll interval), the 1 ms clock granularity, and random jitter
    /// ([`JITTER_ALLOWANCE`] `rttvar`, at most an eighth of the round trip; a queue we build raises the round
    /// trip steadily, jitter shows up as variation). The congestion controller uses it until its first drain
    /// has measured the path (see `congestion`).
    fn noise_us(&self) -> u64 {
        let jitter = JITTER_ALLOWANCE * self.rtt.variance_us();
        let cap = self.rtt.smoothed_us().map_or(jitter, |srtt| srtt / 8);
        2 * self.poll_interval_us + GRANULARITY_US + jitter.min(cap)
    }

    /// Reacts to loss once per window of data (see [`Controller::on_loss`]). A timeout with nothing acknowledged
    /// since the previous one, nor for a whole timeout, means the path has gone quiet: the window drops to the
    /// minimum and the retransmission timeout backs off. (Timeouts of datagrams sent a moment apart come a
    /// moment apart: they are losses, not silence.)
    fn congestion_event(&mut self, now: Micros, lost_seq: Seq, timeout: bool) {
        let rto = self.rtt.rto_us();
        let quiet_since_timeout = !std::mem::replace(&mut self.acked_since_timeout, false);
        let quiet_for_a_timeout = self
            .last_ack_at
            .is_none_or(|at| now.saturating_sub(at) >= rto);
        let silent = timeout && quiet_since_timeout && quiet_for_a_timeout;
        if silent {
            self.cc.on_silence();
            self.recovery_until = self.next_seq;
            self.rtt.back_off();
        } else if !lost_seq.is_before(self.recovery_until) {
            let (srtt, noise) = (self.rtt.smoothed_us(), self.noise_us());
            self.cc.on_loss(srtt, noise);
            self.recovery_until = self.next_seq;
        }
    }

    /// Presumes lost every datagram whose retransmission timeout, or reordering allowance, has passed.
    /// Returns how many.
    pub fn on_timeout(&mut self, now: Micros) -> u32 {
        if self.earliest_timer_due.is_none_or(|due| now < due) {
            return 0;
        }
        self.earliest_timer_due = None;
        let reordered = self.detect_reordering_loss(now);
        let rto = self.rtt.rto_us();
        let mut lost = 0;
        let mut earliest: Option<Micros> = None;
        let mut first_lost = None;
        for (i, slot) in self.in_flight.iter_mut().enumerate() {
            if slot.acked || slot.lost {
                continue;
            }
            let due = slot.last_sent + rto;
            if now >= due {
                slot.lost = true;
                lost += 1;
                first_lost.get_or_insert(i);
            } else {
                earliest = Some(earliest.map_or(due, |e| e.min(due)));
            }
        }
        self.lost_waiting += lost as usize;
        if let Some(due) = earliest {
            self.note_timer(due);
        }
        if let Some(i) = first_lost {
            let seq = self.oldest.plus(i as u32);
            self.congestion_event(now, seq, true);
        }
        lost + reordered
    }

    /// When `on_timeout` should next run: the earliest retransmission timeout or reordering re-check.
    pub fn timeout_due(&self) -> Option<Micros> {
        self.earliest_timer_due
    }

    /// The next fragment to send now, if the congestion window, the pacer and the window limit allow one.
    pub fn next_fragment(&mut self, now: Micros) -> Option<Outgoing> {
        self.pacing_due = None;
        let flight = self.unacked - self.lost_waiting;
        if flight as f64 >= self.cc.window().floor() {
            return None;
        }
        let rto = self.rtt.rto_us();
        if self.lost_waiting > 0 {
            if let Some(i) = self.in_flight.iter().position(|s| s.lost && !s.acked) {
                if !self.paced(now) {
                    return None;
                }
                let slot = &mut self.in_flight[i];
                slot.lost = false;
                slot.transmissions += 1;
                slot.last_sent = now;
                let out = Outgoing {
                    seq: self.oldest.plus(i as u32),
                    channel: slot.channel,
                    chan_seq: slot.chan_seq,
                    message_len: slot.message_len,
                    payload: slot.payload.clone(),
                    retransmission: true,
                };
                self.lost_waiting -= 1;
                self.retransmissions += 1;
                self.last_data_at = now;
                self.note_timer(now + rto);
                return Some(out);
            }
        }
        if self.in_flight.len() >= self.max_window {
            return None;
        }
        if self.active.is_empty() {
            return None;
        }
        let Some((cost, full)) = self.next_affordable() else {
            self.flow_blocked = true;
            return None;
        };
        if !self.paced(now) {
            return None;
        }
        let (channel, chan_seq, message_len, payload, is_last) = self.cut_fragment()?;
        self.sent_cost += cost;
        // A message started reserves the credit the rest of it costs (see `next_affordable`).
        match full {
            Some(full) => self.reserved += full - cost,
            None => self.reserved -= cost,
        }
        let seq = self.next_seq;
        self.next_seq = seq.plus(1);
        self.unacked += 1;
        self.bytes_in_flight += payload.len();
        self.in_flight.push_back(InFlight {
            channel,
            chan_seq,
            message_len,
            payload: payload.clone(),
            first_sent: now,
            last_sent: now,
            transmissions: 1,
            acked: false,
            lost: false,
            last_of_message: is_last,
            copies: 0,
        });
        self.last_data_at = now;
        self.note_timer(now + rto);
        Some(Outgoing {
            seq,
            channel,
            chan_seq,
            message_len,
            payload,
            retransmission: false,
        })
    }

    /// Whether the pacer lets a datagram that is ready go at `now` (taking its token); if not, notes when it
    /// will. Only a datagram ready to go asks, so having nothing to send is not a pause to make up for.
    fn paced(&mut self, now: Micros) -> bool {
        let rate = self.cc.pacing_rate(self.rtt.smoothed_us());
        match self.pacer.take(now, rate, self.poll_interval_us) {
            Ok(()) => true,
            Err(due) => {
                self.pacing_due = Some(due);
                false
            }
        }
    }

    /// Whether the stream is thin: nothing waits to be sent, and what is in flight is under a quarter of the
    /// congestion window. A thin stream's small fragments ride again in the datagrams that follow (and in a tail
    /// probe when none follows), so one loss is repaired by the next datagram rather than a retransmission a
    /// round trip later; a full link never is thin.
    pub fn is_thin(&self) -> bool {
        self.active.is_empty() && (self.unacked as f64) * 4.0 < self.cc.window()
    }

    /// Redundant copies for a datagram with `room` bytes left: the newest fragments in flight (not `except`, the
    /// one the datagram carries), not acknowledged nor presumed lost, at most [`MAX_COPIED_PAYLOAD`] bytes, each
    /// copied at most [`MAX_COPIES`] times; oldest first. Only for a thin stream.
    pub fn copies(&mut self, room: usize, except: Option<Seq>, out: &mut Vec<Outgoing>) {
        out.clear();
        if !self.is_thin() {
            return;
        }
        let mut room = room;
        let n = self.in_flight.len();
        for i in (n.saturating_sub(COPY_LOOKBACK)..n).rev() {
            let seq = self.oldest.plus(i as u32);
            let slot = &mut self.in_flight[i];
            if Some(seq) == except
                || slot.acked
                || slot.lost
                || slot.copies >= MAX_COPIES
                || slot.payload.len() > MAX_COPIED_PAYLOAD
            {
                continue;
            }
            let len = super::packet::bundled_len(slot.payload.len(), slot.message_len.is_some());
            if len > room {
                continue;
            }
            room -= len;
            slot.copies += 1;
            out.push(Outgoing {
                seq,
                channel: slot.channel,
                chan_seq: slot.chan_seq,
                message_len: slot.message_len,
                payload: slot.payload.clone(),
                retransmission: false,
            });
        }
        out.reverse();
        self.copies_sent += out.len() as u64;
    }

    /// When a tail probe is due: a thin stream whose newest fragment in flight may still be copied, a quarter of
    /// a round trip (5 to 25 ms) after DATA last went out.
    pub fn tail_probe_due(&self) -> Option<Micros> {
        if !self.is_thin() {
            return None;
        }
        let newest = self.in_flight.back()?;
        let fits = super::packet::bundled_len(newest.payload.len(), newest.message_len.is_some())
            <= self.mtu.saturating_sub(CONTROL_LEN);
        if newest.acked
            || newest.lost
            || newest.copies >= MAX_COPIES
            || newest.payload.len() > MAX_COPIED_PAYLOAD
            || !fits
        {
            return None;
        }
        let wait = (self.rtt.smoothed_us().unwrap_or(self.rtt.rto_us()) / 4)
            .clamp(TAIL_PROBE_MIN_US, TAIL_PROBE_MAX_US);
        Some(self.last_data_at + wait)
    }

    /// A tail probe went out at `now`.
    pub fn note_tail_probe(&mut self, now: Micros) {
        self.last_data_at = now;
    }

    /// Redundant copies sent so far.
    pub fn copies_sent(&self) -> u64 {
        self.copies_sent
    }

    /// Whether the pacer lets a datagram other than DATA (an unreliable message) go at `now`, taking its token:
    /// what the path carries is shared by both.
    pub fn pace_other(&mut self, now: Micros) -> bool {
        self.paced(now)
    }

    /// When the pacer lets the next datagram go, while it holds one back: `poll_transmit` is due then.
    pub fn pacing_due(&self) -> Option<Micros> {
        self.pacing_due
    }

    fn note_timer(&mut self, due: Micros) {
        self.earliest_timer_due = Some(self.earliest_timer_due.map_or(due, |e| e.min(due)));
    }

    /// Payload room in a DATA datagram.
    fn room(&self, first: bool) -> usize {
        self.mtu - CONTROL_LEN - DATA_PREFIX_LEN - if first { FIRST_FRAGMENT_EXTRA } else { 0 }
    }

    /// Picks the channel whose fragment goes next, within the receiver's credit, and puts it first in turn: its
    /// fragment's cost, and for a message's first fragment the whole message's cost. `None` when the credit
    /// allows none.
    ///
    /// A message is only started when the credit covers all of it on top of the rest of every message already
    /// started (`reserved`), and the rest of a started message is always within the credit. So every started
    /// message can be finished whatever the other channels do: the receiver, which holds what it cannot deliver
    /// yet, always gets whole messages to deliver, and its reader frees credit. (Without it, two channels'
    /// messages cut alternately could use up the window half-sent each, and wait for each other for ever.)
    fn next_affordable(&mut self) -> Option<(u64, Option<u64>)> {
        for turn in 0..self.active.len() {
            let channel = self.active[turn];
            let ch = &self.channels[channel as usize];
            let (len, offset) = match &ch.current {
                Some((message, offset)) => (message.len(), *offset),
                None => match ch.queue.front() {
                    Some(message) => (message.len(), 0),
                    None => continue,
                },
            };
            let first = offset == 0;
            let cost = fragment_cost((len - offset).min(self.room(first)), first);
            let (need, full) = if first {
                let full = fragment_cost(len, true);
                (self.sent_cost + self.reserved + full, Some(full))
            } else {
                (self.sent_cost + cost, None)
            };
            if need <= self.peer_credit {
                if turn > 0 {
                    self.active.remove(turn);
                    self.active.push_front(channel);
                }
                return Some((cost, full));
            }
        }
        None
    }

    /// Cuts the next fragment off the current message of the channel whose turn it is: (channel, its number in
    /// the channel, message length if first, payload, is last).
    fn cut_fragment(&mut self) -> Option<(u8, Seq, Option<u32>, Bytes, bool)> {
        let channel = *self.active.front()?;
        let room_first = self.room(true);
        let room_rest = self.room(false);
        let ch = &mut self.channels[channel as usize];
        if ch.current.is_none() {
            ch.current = Some((ch.queue.pop_front()?, 0));
        }
        let (message, offset) = ch.current.as_mut()?;
        let first = *offset == 0;
        let room = if first { room_first } else { room_rest };
        let end = (*offset + room).min(message.len());
        let payload = message.slice(*offset..end);
        let message_len = first.then_some(message.len() as u32);
        *offset = end;
        let is_last = end == message.len();
        if is_last {
            ch.current = None;
        }
        let chan_seq = ch.next_chan_seq;
        ch.next_chan_seq = chan_seq.plus(1);
        let more = ch.has_more();
        self.active.pop_front();
        if more {
            self.active.push_back(channel);
        }
        Some((channel, chan_seq, message_len, payload, is_last))
    }
}
