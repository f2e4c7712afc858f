//! The congestion window: how many datagrams may be in flight. Steered by the queue the connection builds
//! rather than by loss, because on game links loss is often random while a full bottleneck queue is lag for
//! everything else sharing the link.
//!
//! The rule is TCP Vegas's, in time units: the queueing delay `q` is the smoothed round trip less the path's
//! base round trip and less an allowance for noise (polling, jitter), and the datagrams of ours waiting in
//! queues are `window * q / srtt`. The target backlog is what [`QUEUE_TARGET_US`] of queue holds at the current
//! rate plus [`TARGET_BACKLOG_PER_CONNECTION`]. Slow start doubles the window per round trip until the backlog
//! passes the target; then the window grows by an eighth per round trip while the backlog is under half the
//! target, and otherwise closes [`GAIN`] of the gap per round trip.
//!
//! The base round trip is what the path gives when none of our datagrams wait: every [`PROBE_INTERVAL_US`]
//! the window halves for at least one and a half round trips (and until enough datagrams sent during it have
//! been acknowledged for their mean to be good to [`PROBE_STANDARD_ERROR_US`]: from [`PROBE_SAMPLES`] to
//! [`MAX_PROBE_SAMPLES`]), the queue drains, and the mean round trip of those datagrams becomes the base
//! (BBR's PROBE_RTT idea, with the mean where BBR takes the minimum): a route that got slower is learnt
//! instead of read as a queue forever, and the mean carries what the path adds on average (a data datagram's
//! time on the wire, polling, the mean of any jitter). The standard deviation of those round trips
//! (times [`SPREAD_ALLOWANCE`]) becomes the allowance for noise: a smoothed round trip within it of the base is
//! not read as a queue. Until the first drain, the base is the smallest smoothed round trip seen (the
//! handshake's, when it was a plain exchange of HELLOs) and the allowance is what the caller names (see
//! `Sender::noise_us`). On a jittery path that guess is poor (with 10 ms of jitter each way, that smallest
//! value came out from 4 ms under to 10.7 ms over the configured round trip with seeds 1-4), so the first
//! drain does not wait for [`PROBE_INTERVAL_US`]: it comes [`FIRST_PROBE_AFTER_US`] (or
//! [`FIRST_PROBE_AFTER_ROUND_TRIPS`] round trips, whichever is longer) after the queue first settles near its
//! target once slow start is over. The drains after it keep the schedule counted from the start (restarting
//! it from the early drain left two connections started 3 s apart with 37% and 63% of the link).
//!
//! Once slow start is over, sends are paced (see [`Pacer`]) at [`PACING_GAIN`] times the window per smoothed
//! round trip.
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
const TARGET_BACKLOG_PER_CONNECTION: f64 = 0.4;
/// The share of the gap between target and backlog closed per round trip.
const GAIN: f64 = 0.5;
/// Window growth per acknowledgement while the queue is nearly empty: an eighth of the window per round trip.
const PROBE_GROWTH: f64 = 0.125;
/// On congestion loss, the window is multiplied by this (CUBIC's factor).
const DECREASE_FACTOR: f64 = 0.7;
/// On random loss (loss while the queue is short), the window is multiplied by this: the datagram is sent again
/// and the rate barely changes. (0.95 cost 1-2 points of goodput at 5-10% loss once the base was measured as a
/// mean; this does not bound the window on a path that drops without queueing, where growth outpaces it.)
const RANDOM_LOSS_FACTOR: f64 = 0.98;
/// How often the base round trip is measured again by draining the queue.
pub const PROBE_INTERVAL_US: Micros = 10_000_000;
/// The window never shrinks below this many datagrams.
pub const MIN_WINDOW: f64 = 2.0;
/// The window at the start: 40 datagrams (about 46 KiB), so a burst of 256 messages at the start of a game
/// session is through in three round trips rather than five (TCP's 10 took 1.3 times as long as ENet for
/// such a burst); a slow link queues it once (340 ms at 125 kB/s) and slow start ends on that queue.
pub const INITIAL_WINDOW: f64 = 40.0;

/// A drain lasts until at least this many datagrams sent during it have been acknowledged (and one and a half
/// round trips), so that a slow link's few datagrams per round trip still give a mean.
const PROBE_SAMPLES: u32 = 8;
/// A drain goes on until the standard error of its mean round trip (the samples' standard deviation over the
/// square root of their number) is at most this, or [`MAX_PROBE_SAMPLES`] have come. With 10 ms of jitter,
/// 8 samples spread by 7-10 ms left the base 3 ms either way, three datagrams at 1 MB/s, so the window moved
/// with each drain (with 8 samples and the rest as it is, seed 2 of that row fell to 76.9% over seconds
/// 20-60). A clean path's drain still ends at [`PROBE_SAMPLES`].
const PROBE_STANDARD_ERROR_US: f64 = 1_000.0;
/// A drain never waits for more samples than this.
const MAX_PROBE_SAMPLES: u32 = 64;
/// The first drain comes this long after the queue first settles near its target (at most twice the target
/// backlog) once slow start is over, or [`FIRST_PROBE_AFTER_ROUND_TRIPS`] round trips, whichever is longer.
/// Sooner, a slow link's slow-start queue has not drained yet and the drain reads part of it as the base: with
/// the round trips alone, 100 kB/s with 10 ms each way kept 85 ms of queue over its first 20 s; at 1 s,
/// 21.8 ms.
pub const FIRST_PROBE_AFTER_US: Micros = 2_000_000;
/// See [`FIRST_PROBE_AFTER_US`]. At 2 s alone, 100 kB/s with 10% loss and 150 ms each way (a round trip of
/// 0.33 s) got 79.3% over its first 20 s; at 16 round trips, 82.3%.
pub const FIRST_PROBE_AFTER_ROUND_TRIPS: u64 = 16;
/// The allowance for noise is this many standard deviations of a drain's round trips. The smoothed round trip
/// varies much less than single samples; the allowance is there for delay that grows with the rate without
/// being a queue of ours (jitter that may not reorder holds every datagram behind a slower one, more often the
/// more there are), which a drain at half the rate does not show: with none, 10 ms of such jitter at 1 MB/s
/// left 24% of the link unused; with a whole one, 26 ms of standing queue (both before pacing). With pacing
/// and the drain's mean good to 1 ms, half of one missed 90% on two of seeds 5-8 of that row (89.7% and
/// 88.7%); three quarters met both targets on seeds 1-8.
const SPREAD_ALLOWANCE: f64 = 0.75;

/// Once slow start is over, datagrams leave no faster than this many times the window per smoothed round trip.
/// Sends clocked by acknowledgements come in clumps when the acknowledgements do (a jittered way back holds
/// each one behind any slower one), and each clump waits in the bottleneck's queue; spread out, they leave the
/// window the limit (the rate is a quarter above what it allows; Linux paces at 1.2 times) and the queue
/// shorter: without pacing and the rest as it is, the 1 MB/s row with 10 ms of jitter kept 22.9 ms of queue
/// over its first 20 s, and 1.5 or 2 times missed 90% on some seeds. Slow start is not paced, so a burst at the
/// start goes out at once.
const PACING_GAIN: f64 = 1.25;
/// The pacer always lets at least this many datagrams go at once after a pause.
const PACING_BURST: f64 = 2.0;

/// Spreads datagrams over time at [`Controller::pacing_rate`]: a token bucket, one token per datagram, filled
/// at the pacing rate and holding at most two polling intervals' worth (so a game polled once a frame still
/// sends its whole share each frame) or [`PACING_BURST`], whichever is more.
#[derive(Debug, Clone, Default)]
pub struct Pacer {
    tokens: f64,
    filled_at: Option<Micros>,
}

impl Pacer {
    /// Whether a datagram may leave at `now`, taking its token if so, when pacing at `rate` datagrams per µs
    /// (none: not paced) for a caller polled every `poll_interval_us`. If not, when the next token is due.
    pub fn take(
        &mut self,
        now: Micros,
        rate: Option<f64>,
        poll_interval_us: Micros,
    ) -> Result<(), Micros> {
        let Some(rate) = rate.filter(|r| *r > 0.0) else {
            self.filled_at = None;
            return Ok(());
        };
        let most = (rate * (2 * poll_interval_us.max(1_000)) as f64).max(PACING_BURST);
        self.tokens = match self.filled_at {
            Some(at) => (self.tokens + rate * now.saturating_sub(at) as f64).min(most),
            None => most,
        };
        self.filled_at = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(now + ((1.0 - self.tokens) / rate).ceil() as Micros)
        }
    }
}

/// A drain in progress: when it started and ends, the window to go back to, and the round trips of the
/// datagrams sent since it started.
#[derive(Debug, Clone)]
struct Probe {
    started: Micros,
    ends_at: Micros,
    saved_window: f64,
    count: u32,
    sum_us: f64,
    sum_squares_us: f64,
}

impl Probe {
    /// The mean and standard deviation of the round trips taken.
    fn mean_and_deviation(&self) -> (f64, f64) {
        let n = f64::from(self.count.max(1));
        let mean = self.sum_us / n;
        (
            mean,
            (self.sum_squares_us / n - mean * mean).max(0.0).sqrt(),
        )
    }
}

/// The congestion window and what steers it.
#[derive(Debug, Clone)]
pub struct Controller {
    window: f64,
    slow_start: bool,
    /// The path's round trip without queueing, as last measured.
    base_rtt_us: Option<u64>,
    /// How much round trips vary without queueing, as the last drain measured (none before the first).
    spread_us: Option<u64>,
    /// When the next drain is due, on the schedule counted from the start.
    next_probe_at: Micros,
    /// When the first drain is due, sooner than the schedule, once the queue has settled after slow start.
    first_probe_at: Option<Micros>,
    /// The backlog has come within twice its target since slow start ended: the first drain can be scheduled.
    settled: bool,
    probe: Option<Probe>,
    max_window: f64,
    /// A drain read the path much slower than the one before; its reading waits for a second drain, soon.
    confirming: bool,
}

/// A drain whose mean is this much (or twice the last spread, if more) above the base it replaces is not taken
/// at once: the link's rate may have fallen during it, so that the queue did not drain and its round trips
/// read the queue as the path (the base would then hide that queue until the next drain, 10 s later: 55-72 ms
/// of standing queue for those 10 s when 1 MB/s fell to 250 kB/s at a drain). The base stays, the window closes
/// on what it now reads as a queue, and a second drain [`CONFIRM_AFTER_US`] later decides.
const SUSPECT_RISE_US: u64 = 5_000;
/// How soon a second drain confirms a suspect one.
const CONFIRM_AFTER_US: Micros = 1_000_000;

impl Controller {
    /// A controller at [`INITIAL_WINDOW`], never above `max_window`.
    pub fn new(max_window: usize) -> Self {
        Self {
            window: INITIAL_WINDOW.min(max_window as f64),
            slow_start: true,
            base_rtt_us: None,
            spread_us: None,
            next_probe_at: PROBE_INTERVAL_US,
            first_probe_at: None,
            settled: false,
            probe: None,
            max_window: max_window as f64,
            confirming: false,
        }
    }

    /// The congestion window, in datagrams.
    pub fn window(&self) -> f64 {
        self.window
    }

    /// How fast datagrams may leave, in datagrams per µs: [`PACING_GAIN`] times the window per smoothed round
    /// trip (`srtt_us`); none (not paced) in slow start and before there is a round trip.
    pub fn pacing_rate(&self, srtt_us: Option<u64>) -> Option<f64> {
        match srtt_us {
            Some(srtt) if !self.slow_start && srtt > 0 => {
                Some(PACING_GAIN * self.window / srtt as f64)
            }
            _ => None,
        }
    }

    /// The base round trip, once there is a sample.
    pub fn base_rtt_us(&self) -> Option<u64> {
        self.base_rtt_us
    }

    /// Takes a round-trip sample taken at `now` (`sample_us`: the round trip of a datagram sent at `sent_at`,
    /// without the time the receiver held its acknowledgement) and the smoothed round trip after it
    /// (`srtt_us`): until the first drain, the base is the smallest smoothed value; during a drain, the samples
    /// of datagrams sent since it started are its measure.
    pub fn on_rtt_sample(&mut self, now: Micros, sent_at: Micros, sample_us: u64, srtt_us: u64) {
        if self.spread_us.is_none() {
            self.base_rtt_us = Some(self.base_rtt_us.map_or(srtt_us, |b| b.min(srtt_us)));
            if self.settled && self.first_probe_at.is_none() {
                let wait = FIRST_PROBE_AFTER_US.max(FIRST_PROBE_AFTER_ROUND_TRIPS * srtt_us);
                self.first_probe_at = Some(now + wait);
            }
        }
        let first_due = self.spread_us.is_none() && self.first_probe_at.is_some_and(|at| now >= at);
        if let Some(probe) = &mut self.probe {
            if sent_at >= probe.started {
                let sample = sample_us as f64;
                probe.count += 1;
                probe.sum_us += sample;
                probe.sum_squares_us += sample * sample;
            }
            let (mean, deviation) = probe.mean_and_deviation();
            // Enough samples for the mean to be good to PROBE_STANDARD_ERROR_US: (deviation / error)².
            let needed = ((deviation / PROBE_STANDARD_ERROR_US).powi(2) as u32)
                .clamp(PROBE_SAMPLES, MAX_PROBE_SAMPLES);
            if now >= probe.ends_at && probe.count >= needed {
                let saved_window = probe.saved_window;
                self.probe = None;
                let suspect = match (self.base_rtt_us, self.spread_us) {
                    (Some(base), Some(spread)) if !self.confirming => {
                        mean as u64 > base + SUSPECT_RISE_US.max(2 * spread)
                    }
                    _ => false,
                };
                if suspect {
                    // The window stays at the drain's half: what the path carried before may be too much now.
                    self.confirming = true;
                    self.next_probe_at = now + CONFIRM_AFTER_US;
                } else {
                    self.window = saved_window;
                    self.confirming = false;
                    self.base_rtt_us = Some(mean as u64);
                    self.spread_us = Some((deviation * SPREAD_ALLOWANCE) as u64);
                    // The early first drain leaves the schedule as it was.
                    if now >= self.next_probe_at {
                        self.next_probe_at = now + PROBE_INTERVAL_US;
                    }
                }
            }
        } else if (now >= self.next_probe_at || first_due) && !self.slow_start {
            self.probe = Some(Probe {
                started: now,
                ends_at: now + srtt_us + srtt_us / 2,
                saved_window: self.window,
                count: 0,
                sum_us: 0.0,
                sum_squares_us: 0.0,
            });
            self.window = (self.window / 2.0).max(MIN_WINDOW);
        }
    }

    /// The queueing delay: the smoothed round trip less the base and the allowance for noise (the spread the
    /// last drain measured or, before the first, the caller's `noise_us`); 0 before there is a base.
    fn queueing_us(&self, srtt_us: u64, noise_us: u64) -> u64 {
        let allowance = self.spread_us.unwrap_or(noise_us);
        self.base_rtt_us
            .map_or(0, |base| srtt_us.saturating_sub(base + allowance))
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
        if backlog <= 2.0 * target {
            self.settled = true;
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
