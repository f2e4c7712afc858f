//! The congestion window: how many datagrams may be in flight. Steered by the queue the connection builds
//! rather than by loss, because on game links loss is often random while a full bottleneck queue is lag for
//! everything else sharing the link.
//!
//! The rule is TCP Vegas's, in time units: the queueing delay `q` is the smoothed round trip less the path's
//! base round trip and less the noise the caller names (polling, jitter), and the datagrams of ours waiting in
//! queues are `window * q / srtt`. The target backlog is what [`QUEUE_TARGET_US`] of queue holds at the current
//! rate plus [`TARGET_BACKLOG_PER_CONNECTION`]. Slow start doubles the window per round trip until the backlog
//! passes the target; then the window grows by an eighth per round trip while the backlog is under half the
//! target, and otherwise closes [`GAIN`] of the gap per round trip.
//!
//! The base round trip is the smallest smoothed round trip seen since the last refresh (the smoothed value, not
//! single samples: jitter makes single samples dip below what the path gives on average). A connection that
//! keeps a small standing queue never sees the bare path again, so every [`PROBE_INTERVAL_US`] the window halves
//! for one and a half round trips, the queue drains, and the smallest value of that time becomes the new base
//! (BBR's PROBE_RTT idea): a route that got slower is learnt instead of read as a queue forever.
//!
//! Loss is taken as congestion (the window times [`DECREASE_FACTOR`], and slow start ends) only while the
//! queueing delay is over [`CONGESTION_QUEUE_US`] and the backlog over twice the target; otherwise it is random
//! loss: the window is multiplied by [`RANDOM_LOSS_FACTOR`] and slow start goes on.

use crate::link::Micros;

/// The queueing delay the window aims at.
const QUEUE_TARGET_US: f64 = 3_000.0;
/// Loss is congestion only while the queueing delay is above this (and the backlog above twice the target).
const CONGESTION_QUEUE_US: f64 = 50_000.0;
/// Datagrams each connection keeps queued on top of the queueing delay target. A target proportional to the
/// rate alone would leave any split between two connections stable; this constant part is what makes them
/// converge to equal rates (as in TCP Vegas and FAST), and it keeps a slow link's next datagram ready.
const TARGET_BACKLOG_PER_CONNECTION: f64 = 0.5;
/// The share of the gap between target and backlog closed per round trip.
const GAIN: f64 = 0.5;
/// Window growth per acknowledgement while the queue is nearly empty: an eighth of the window per round trip.
const PROBE_GROWTH: f64 = 0.125;
/// On congestion loss, the window is multiplied by this (CUBIC's factor).
const DECREASE_FACTOR: f64 = 0.7;
/// On random loss (loss while the queue is short), the window is multiplied by this: the datagram is sent again
/// and the rate barely changes, but a path that only ever loses (no queue to read) does not grow without end.
const RANDOM_LOSS_FACTOR: f64 = 0.95;
/// How often the base round trip is measured again by draining the queue.
pub const PROBE_INTERVAL_US: Micros = 10_000_000;
/// The window never shrinks below this many datagrams.
pub const MIN_WINDOW: f64 = 2.0;
/// The window at the start: 40 datagrams (about 46 KiB), so a burst of 256 messages at the start of a game
/// session is through in three round trips rather than five (TCP's 10 took 1.3 times as long as ENet for
/// such a burst); a slow link queues it once (340 ms at 125 kB/s) and slow start ends on that queue.
pub const INITIAL_WINDOW: f64 = 40.0;

/// A drain in progress: when it ends, the window to go back to, and the smallest sample so far.
#[derive(Debug, Clone)]
struct Probe {
    ends_at: Micros,
    saved_window: f64,
    smallest: u64,
}

/// The congestion window and what steers it.
#[derive(Debug, Clone)]
pub struct Controller {
    window: f64,
    slow_start: bool,
    /// The path's round trip without queueing, as last measured.
    base_rtt_us: Option<u64>,
    next_probe_at: Micros,
    probe: Option<Probe>,
    max_window: f64,
}

impl Controller {
    /// A controller at [`INITIAL_WINDOW`], never above `max_window`.
    pub fn new(max_window: usize) -> Self {
        Self {
            window: INITIAL_WINDOW.min(max_window as f64),
            slow_start: true,
            base_rtt_us: None,
            next_probe_at: PROBE_INTERVAL_US,
            probe: None,
            max_window: max_window as f64,
        }
    }

    /// The congestion window, in datagrams.
    pub fn window(&self) -> f64 {
        self.window
    }

    /// The base round trip, once there is a sample.
    pub fn base_rtt_us(&self) -> Option<u64> {
        self.base_rtt_us
    }

    /// Takes the round trip as it stands after a sample, at `now`: `sample_us` is what the base is the
    /// smallest of (the sender passes the smoothed round trip, see the module's notes), `srtt_us` says how long
    /// a drain lasts.
    pub fn on_rtt_sample(&mut self, now: Micros, sample_us: u64, srtt_us: u64) {
        self.base_rtt_us = Some(self.base_rtt_us.map_or(sample_us, |b| b.min(sample_us)));
        if let Some(probe) = &mut self.probe {
            probe.smallest = probe.smallest.min(sample_us);
            if now >= probe.ends_at {
                self.base_rtt_us = Some(probe.smallest);
                self.window = probe.saved_window;
                self.probe = None;
                self.next_probe_at = now + PROBE_INTERVAL_US;
            }
        } else if now >= self.next_probe_at && !self.slow_start {
            self.probe = Some(Probe {
                ends_at: now + srtt_us + srtt_us / 2,
                saved_window: self.window,
                smallest: u64::MAX,
            });
            self.window = (self.window / 2.0).max(MIN_WINDOW);
        }
    }

    /// The queueing delay: the smoothed round trip less the base and `noise` (delay that is not queueing:
    /// polling, clock granularity, jitter); 0 before there is a base.
    fn queueing_us(&self, srtt_us: u64, noise_us: u64) -> u64 {
        self.base_rtt_us
            .map_or(0, |base| srtt_us.saturating_sub(base + noise_us))
    }

    /// How many of our datagrams wait in queues: the window times the share of the round trip spent queueing.
    pub fn backlog(&self, srtt_us: u64, noise_us: u64) -> f64 {
        if srtt_us == 0 {
            return 0.0;
        }
        self.window * self.queueing_us(srtt_us, noise_us) as f64 / srtt_us as f64
    }

    /// The backlog aimed at: what [`QUEUE_TARGET_US`] holds at the current rate, plus
    /// [`TARGET_BACKLOG_PER_CONNECTION`].
    fn target(&self, srtt_us: u64) -> f64 {
        self.window * QUEUE_TARGET_US / srtt_us.max(1) as f64 + TARGET_BACKLOG_PER_CONNECTION
    }

    /// One acknowledged datagram's worth of window change.
    pub fn on_ack(&mut self, srtt_us: Option<u64>, noise_us: u64) {
        if self.probe.is_some() {
            return;
        }
        let Some(srtt) = srtt_us else {
            self.window += 1.0;
            self.window = self.window.min(self.max_window);
            return;
        };
        let backlog = self.backlog(srtt, noise_us);
        let target = self.target(srtt);
        if self.slow_start {
            if backlog > target {
                self.slow_start = false;
            } else {
                self.window = (self.window + 1.0).min(self.max_window);
                return;
            }
        }
        // Spread over a window's acknowledgements, this closes GAIN of the gap per round trip; never faster
        // than slow start.
        let step = if backlog < target / 2.0 {
            // The queue is (nearly) empty: the path has room. Grow by an eighth per round trip, so a window cut
            // by a loss or a drain comes back within a few round trips.
            PROBE_GROWTH
        } else {
            (GAIN * (target - backlog) / self.window).clamp(-1.0, 1.0)
        };
        self.window = (self.window + step).clamp(MIN_WINDOW, self.max_window);
    }

    /// Reacts to a loss (once per window of data, the caller decides): congestion while the queueing delay is
    /// over [`CONGESTION_QUEUE_US`] and the backlog over twice the target, otherwise random loss, which barely
    /// changes the window.
    pub fn on_loss(&mut self, srtt_us: Option<u64>, noise_us: u64) {
        let congested = srtt_us.is_some_and(|srtt| {
            self.queueing_us(srtt, noise_us) as f64 > CONGESTION_QUEUE_US
                && self.backlog(srtt, noise_us) > 2.0 * self.target(srtt)
        });
        let factor = if congested {
            // Slow start ends at congestion, not at random loss: the queue says when the path is full.
            self.slow_start = false;
            DECREASE_FACTOR
        } else {
            RANDOM_LOSS_FACTOR
        };
        self.window = (self.window * factor).max(MIN_WINDOW);
        if let Some(probe) = &mut self.probe {
            probe.saved_window = (probe.saved_window * factor).max(MIN_WINDOW);
        }
    }

    /// The path went quiet (a retransmission timeout with nothing acknowledged since the last): start again
    /// from the minimum window, in slow start.
    pub fn on_silence(&mut self) {
        self.probe = None;
        self.window = MIN_WINDOW;
        self.slow_start = true;
    }
}
