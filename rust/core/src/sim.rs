//! Experiments on the reliable protocol over the link model, on simulated time: the setup the capped-link
//! benchmark rows report (`cargo bench`, `rust/core/examples/capped.rs`) and `tests/congestion.rs` holds.
//!
//! Two [`Connection`]s, each direction through its own [`LinkModel`] with the same settings, both sides driven
//! every millisecond; the sender keeps its buffer full of 1 KiB messages. Goodput counts message bytes delivered
//! after the warm-up, against the link's bandwidth; the standing queue is the sender's smoothed RTT minus the
//! configured round trip (twice `latency_ms`), averaged over the same time.

use bytes::Bytes;

use crate::link::{LinkConfig, LinkModel, Micros};
use crate::reliable::{Connection, ReliableConfig};

/// The size of each message the sender offers.
pub const MESSAGE_LEN: usize = 1024;

/// A link capped at `bandwidth` bytes a second with a 1,000-packet queue, `loss` and `latency_ms` (each way):
/// the rows' link.
pub fn capped_link(bandwidth: u64, loss: f64, latency_ms: f64) -> LinkConfig {
    LinkConfig {
        latency_ms,
        loss,
        bandwidth_bytes_per_second: bandwidth,
        queue_limit: 1000,
        ..LinkConfig::default()
    }
}

/// The capped-link rows of issue 14, by name: what `scripts/bench.sh` (through `cargo bench`) and
/// `examples/capped.rs` run.
pub fn capped_rows() -> Vec<(&'static str, LinkConfig)> {
    vec![
        (
            "1000 kB/s, 0% loss, 50 ms",
            capped_link(1_000_000, 0.0, 50.0),
        ),
        (
            "1000 kB/s, 2% loss, 30 ms",
            capped_link(1_000_000, 0.02, 30.0),
        ),
        (
            "1000 kB/s, 10% loss, 50 ms",
            capped_link(1_000_000, 0.10, 50.0),
        ),
        (
            "10000 kB/s, 10% loss, 50 ms",
            capped_link(10_000_000, 0.10, 50.0),
        ),
        ("125 kB/s, 0% loss, 10 ms", capped_link(125_000, 0.0, 10.0)),
        ("100 kB/s, 0% loss, 10 ms", capped_link(100_000, 0.0, 10.0)),
        (
            "100 kB/s, 10% loss, 150 ms",
            capped_link(100_000, 0.10, 150.0),
        ),
        (
            "10000 kB/s, 0% loss, 10 ms",
            capped_link(10_000_000, 0.0, 10.0),
        ),
        ("300 kB/s, 5% loss, 80 ms", capped_link(300_000, 0.05, 80.0)),
        (
            "1000 kB/s, jitter 10 ms, 50 ms",
            LinkConfig {
                jitter_ms: 10.0,
                ..capped_link(1_000_000, 0.0, 50.0)
            },
        ),
        (
            "1000 kB/s, Gilbert-Elliott bursts, 50 ms",
            LinkConfig {
                burst_enter_probability: 0.01,
                burst_exit_probability: 0.3,
                loss_in_bad_state: 0.5,
                ..capped_link(1_000_000, 0.0, 50.0)
            },
        ),
    ]
}

/// One step at `now` for two connections joined by two link models: what is due on each link is handed to
/// its receiver, both handle their timers, and what they send goes onto the links.
pub fn exchange(
    now: Micros,
    sides: [&mut Connection; 2],
    links: [&mut LinkModel<Bytes>; 2],
    buf: &mut Vec<u8>,
) {
    let [x, y] = sides;
    let [x_to_y, y_to_x] = links;
    while let Some(d) = x_to_y.poll(now) {
        y.handle_datagram(now, &d);
    }
    while let Some(d) = y_to_x.poll(now) {
        x.handle_datagram(now, &d);
    }
    x.handle_timeout(now);
    y.handle_timeout(now);
    while x.poll_transmit(now, buf) {
        x_to_y.send(now, Bytes::copy_from_slice(buf));
    }
    while y.poll_transmit(now, buf) {
        y_to_x.send(now, Bytes::copy_from_slice(buf));
    }
}

/// One run's figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Saturation {
    /// Message bytes delivered per second after the warm-up, as a percentage of the link's bandwidth.
    pub goodput_percent: f64,
    /// The sender's smoothed RTT minus the configured round trip, averaged after the warm-up, in ms.
    pub standing_queue_ms: f64,
    /// Retransmissions per datagram the sender sent.
    pub retransmission_ratio: f64,
}

/// Runs one connection flat out over `link` (both directions) for `seconds` simulated seconds, the first
/// `warm_up_seconds` not counted. `seed` seeds the two link models.
pub fn saturate(link: &LinkConfig, seconds: u64, warm_up_seconds: u64, seed: u64) -> Saturation {
    saturate_with(
        link,
        ReliableConfig::default().max_congestion_window,
        seconds,
        warm_up_seconds,
        seed,
    )
}

/// Two connections for a bulk transfer of [`MESSAGE_LEN`]-byte messages over `link` each way, their congestion
/// windows capped at `max_congestion_window`, and the two link models, all seeded from `seed`.
fn bulk_pair(
    link: &LinkConfig,
    max_congestion_window: usize,
    seed: u64,
) -> (Connection, Connection, LinkModel<Bytes>, LinkModel<Bytes>) {
    let config = ReliableConfig {
        max_message_size: MESSAGE_LEN,
        max_congestion_window,
        ..ReliableConfig::default()
    };
    (
        Connection::new(config.clone(), 0, seed.wrapping_mul(2) + 1),
        Connection::new(config, 0, seed.wrapping_mul(2) + 2),
        LinkModel::new(link.clone(), seed.wrapping_mul(2) + 3),
        LinkModel::new(link.clone(), seed.wrapping_mul(2) + 4),
    )
}

/// [`saturate`] with the congestion window capped at `max_congestion_window` datagrams
/// (`ReliableConfig::max_congestion_window`): what a window of about that size gives on `link`, whatever the
/// controller would choose.
pub fn saturate_with(
    link: &LinkConfig,
    max_congestion_window: usize,
    seconds: u64,
    warm_up_seconds: u64,
    seed: u64,
) -> Saturation {
    let (mut x, mut y, mut x_to_y, mut y_to_x) = bulk_pair(link, max_congestion_window, seed);
    let message = Bytes::from(vec![5u8; MESSAGE_LEN]);
    let mut buf = Vec::with_capacity(1500);
    let (end, warm_up): (Micros, Micros) = (seconds * 1_000_000, warm_up_seconds * 1_000_000);
    let (mut delivered, mut queue_sum, mut samples) = (0u64, 0f64, 0u64);
    let mut now: Micros = 0;
    while now < end {
        while x.send(message.clone()).is_ok() {}
        now += 1_000;
        exchange(now, [&mut x, &mut y], [&mut x_to_y, &mut y_to_x], &mut buf);
        while let Some(m) = y.recv() {
            if now > warm_up {
                delivered += m.len() as u64;
            }
        }
        if now > warm_up {
            queue_sum += x.stats().srtt_us as f64 / 1000.0 - 2.0 * link.latency_ms;
            samples += 1;
        }
    }
    let stats = x.stats();
    let counted = (end - warm_up) as f64 / 1e6;
    Saturation {
        goodput_percent: 100.0 * delivered as f64
            / counted
            / link.bandwidth_bytes_per_second.max(1) as f64,
        standing_queue_ms: queue_sum / samples.max(1) as f64,
        retransmission_ratio: stats.retransmissions as f64 / stats.datagrams_sent.max(1) as f64,
    }
}

/// One run of several connections and optional unreliable traffic sharing one link.
#[derive(Debug, Clone, PartialEq)]
pub struct Sharing {
    /// Each connection's share of the message bytes delivered after the warm-up (they add up to 1).
    pub shares: Vec<f64>,
    /// All connections' goodput together, as a percentage of the link's bandwidth.
    pub goodput_percent: f64,
    /// The unreliable datagrams' one-way delay above the link's `latency_ms`, median and 99th percentile, in
    /// ms (0 without unreliable traffic).
    pub unreliable_extra_ms: (f64, f64),
}

/// The unreliable datagrams' size: a game's position update.
pub const UNRELIABLE_LEN: usize = 100;
/// The tag that marks an unreliable datagram on the shared link (connections are tagged 0, 1, ...).
const UNRELIABLE_TAG: u8 = 0xFF;

/// Runs `flows` connections flat out over one `link` per direction (each datagram tagged with its connection
/// on the shared model), connection `i` starting `i * stagger_seconds` in, plus `unreliable_hz` unreliable
/// 100-byte datagrams a second on the forward direction (a game's position updates), for `seconds`, the first
/// `warm_up_seconds` (counted from the last connection's start) not counted.
pub fn share(
    link: &LinkConfig,
    flows: usize,
    stagger_seconds: u64,
    unreliable_hz: u64,
    seconds: u64,
    warm_up_seconds: u64,
    seed: u64,
) -> Sharing {
    let config = ReliableConfig {
        max_message_size: MESSAGE_LEN,
        ..ReliableConfig::default()
    };
    let mut pairs: Vec<(Connection, Connection)> = (0..flows as u64)
        .map(|i| {
            (
                Connection::new(config.clone(), 0, seed * 100 + 2 * i + 1),
                Connection::new(config.clone(), 0, seed * 100 + 2 * i + 2),
            )
        })
        .collect();
    let mut forward: LinkModel<Bytes> = LinkModel::new(link.clone(), seed * 100 + 98);
    let mut back: LinkModel<Bytes> = LinkModel::new(link.clone(), seed * 100 + 99);
    let message = Bytes::from(vec![5u8; MESSAGE_LEN]);
    let mut buf = Vec::with_capacity(1500);
    let last_start = (flows as u64).saturating_sub(1) * stagger_seconds * 1_000_000;
    let (end, warm_up) = (
        last_start + seconds * 1_000_000,
        last_start + warm_up_seconds * 1_000_000,
    );
    let mut delivered = vec![0u64; flows];
    let mut extra_us: Vec<u64> = Vec::new();
    let period = 1_000_000u64.checked_div(unreliable_hz).unwrap_or(0);
    let latency_us = (link.latency_ms * 1000.0) as u64;
    let mut now: Micros = 0;
    let tagged = |tag: u8, body: &[u8]| {
        let mut d = Vec::with_capacity(body.len() + 1);
        d.push(tag);
        d.extend_from_slice(body);
        Bytes::from(d)
    };
    while now < end {
        for (i, (x, _)) in pairs.iter_mut().enumerate() {
            if now >= i as u64 * stagger_seconds * 1_000_000 {
                while x.send(message.clone()).is_ok() {}
            }
        }
        now += 1_000;
        while let Some(d) = forward.poll(now) {
            match d[0] {
                UNRELIABLE_TAG => {
                    let sent = u64::from_le_bytes(d[1..9].try_into().expect("a timestamp"));
                    if now > warm_up {
                        extra_us.push((now - sent).saturating_sub(latency_us));
                    }
                }
                i => pairs[i as usize].1.handle_datagram(now, &d[1..]),
            }
        }
        while let Some(d) = back.poll(now) {
            pairs[d[0] as usize].0.handle_datagram(now, &d[1..]);
        }
        if period > 0 && now % period < 1_000 {
            let mut update = vec![0u8; UNRELIABLE_LEN - 1];
            update[..8].copy_from_slice(&now.to_le_bytes());
            forward.send(now, tagged(UNRELIABLE_TAG, &update));
        }
        for (i, (x, y)) in pairs.iter_mut().enumerate() {
            x.handle_timeout(now);
            y.handle_timeout(now);
            while x.poll_transmit(now, &mut buf) {
                forward.send(now, tagged(i as u8, &buf));
            }
            while y.poll_transmit(now, &mut buf) {
                back.send(now, tagged(i as u8, &buf));
            }
            while let Some(m) = y.recv() {
                if now > warm_up {
                    delivered[i] += m.len() as u64;
                }
            }
        }
    }
    let total: u64 = delivered.iter().sum();
    let counted = (end - warm_up) as f64 / 1e6;
    extra_us.sort_unstable();
    let percentile = |p: f64| {
        extra_us
            .get(((extra_us.len() as f64 - 1.0) * p).round() as usize)
            .map_or(0.0, |&us| us as f64 / 1000.0)
    };
    Sharing {
        shares: delivered
            .iter()
            .map(|&d| d as f64 / total.max(1) as f64)
            .collect(),
        goodput_percent: 100.0 * total as f64
            / counted
            / link.bandwidth_bytes_per_second.max(1) as f64,
        unreliable_extra_ms: (percentile(0.5), percentile(0.99)),
    }
}

/// What an ideal sender would get on `link`: one that sends full DATA datagrams (one [`MESSAGE_LEN`] message
/// each) perfectly evenly at `offered_percent` of the bandwidth (counting every datagram it sends, the ones the
/// link loses before the bottleneck too), never waits for an acknowledgement and never sends anything twice
/// needlessly, but cannot know in advance which datagrams the link will lose. Every datagram that arrives
/// after the warm-up counts as goodput, as [`saturate`] counts messages. The standing queue is reckoned as
/// [`saturate`]'s is, for this sender's round trip: each of those datagrams' time from sending to arrival less
/// `latency_ms`, plus an acknowledgement's time on the wire back, averaged. The link is read every 100 µs
/// (the protocol's runs read it every 1,000 µs), and the way back has no impairment of its own: the figures
/// are what a sender that knew the link's exact rate could reach, not a run of the protocol. `seed` seeds the
/// link model as it seeds [`saturate`]'s forward direction.
pub fn even_rate_bound(
    link: &LinkConfig,
    offered_percent: f64,
    seconds: u64,
    warm_up_seconds: u64,
    seed: u64,
) -> Saturation {
    use crate::reliable::packet::{CONTROL_LEN, MAX_OVERHEAD};
    const STEP_US: Micros = 100;
    let datagram_len = MAX_OVERHEAD + MESSAGE_LEN;
    let bandwidth = link.bandwidth_bytes_per_second.max(1) as f64;
    let interval_us = datagram_len as f64 * 1e6 / (bandwidth * offered_percent / 100.0);
    let ack_wire_us = CONTROL_LEN as f64 * 1e6 / bandwidth;
    let latency_us = link.latency_ms * 1000.0;
    let mut forward: LinkModel<Bytes> = LinkModel::new(link.clone(), seed.wrapping_mul(2) + 3);
    let (end, warm_up): (Micros, Micros) = (seconds * 1_000_000, warm_up_seconds * 1_000_000);
    let (mut delivered, mut sent, mut queue_sum_us) = (0u64, 0u64, 0f64);
    let mut next_send = 0f64;
    let mut now: Micros = 0;
    while now < end {
        while next_send <= now as f64 {
            let mut datagram = vec![0u8; datagram_len];
            datagram[..8].copy_from_slice(&now.to_le_bytes());
            forward.send(now, Bytes::from(datagram));
            sent += u64::from(now > warm_up);
            next_send += interval_us;
        }
        now += STEP_US;
        while let Some(d) = forward.poll(now) {
            let sent_at = u64::from_le_bytes(d[..8].try_into().expect("a timestamp"));
            if now > warm_up {
                delivered += 1;
                queue_sum_us += (now - sent_at) as f64 - latency_us + ack_wire_us;
            }
        }
    }
    let counted = (end - warm_up) as f64 / 1e6;
    Saturation {
        goodput_percent: 100.0 * (delivered * MESSAGE_LEN as u64) as f64 / counted / bandwidth,
        standing_queue_ms: queue_sum_us / delivered.max(1) as f64 / 1000.0,
        // Each datagram lost would be sent again: about the share of those sent after the warm-up that did not
        // arrive (the ones still on the way at the end are few beside the counted span's).
        retransmission_ratio: (1.0 - delivered as f64 / sent.max(1) as f64).max(0.0),
    }
}

/// One run of a single connection carrying a bulk reliable transfer on channel 1 and a game's state stream
/// (unreliable-ordered, [`UNRELIABLE_LEN`] bytes at `unreliable_hz`) on channel 0: what a game's
/// UdpMultiplayerPeer carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Mixed {
    /// The transfer's goodput after the warm-up, as a share of the link's capacity.
    pub goodput_percent: f64,
    /// The state updates' one-way delay above the link's `latency_ms`, median and 99th percentile, in ms.
    pub unreliable_extra_ms: (f64, f64),
    /// The share of state updates sent after the warm-up that arrived.
    pub unreliable_delivered: f64,
    /// Datagrams sent again (DATA only: unreliable messages never are).
    pub retransmissions: u64,
}

/// Runs [`Mixed`] for `seconds` of simulated time, measuring after `warm_up_seconds`. With `bulk` false there
/// is no transfer: the state stream alone, for comparison.
pub fn mixed(
    link: &LinkConfig,
    unreliable_hz: u64,
    bulk: bool,
    seconds: u64,
    warm_up_seconds: u64,
    seed: u64,
) -> Mixed {
    use crate::reliable::TransferMode;
    let config = ReliableConfig {
        max_message_size: MESSAGE_LEN,
        ..ReliableConfig::default()
    };
    let mut x = Connection::new(config.clone(), 0, seed * 100 + 1);
    let mut y = Connection::new(config, 0, seed * 100 + 2);
    let mut forward: LinkModel<Bytes> = LinkModel::new(link.clone(), seed * 100 + 98);
    let mut back: LinkModel<Bytes> = LinkModel::new(link.clone(), seed * 100 + 99);
    let message = Bytes::from(vec![5u8; MESSAGE_LEN]);
    let mut buf = Vec::with_capacity(1500);
    let (end, warm_up) = (seconds * 1_000_000, warm_up_seconds * 1_000_000);
    let period = 1_000_000 / unreliable_hz.max(1);
    let latency_us = (link.latency_ms * 1000.0) as u64;
    let (mut delivered, mut sent_updates, mut got_updates) = (0u64, 0u64, 0u64);
    let mut extra_us = Vec::new();
    let mut now: Micros = 0;
    while now < end {
        if bulk {
            while x
                .send_on(1, TransferMode::Reliable, message.clone())
                .is_ok()
            {}
        }
        now += 1_000;
        if now % period < 1_000 {
            let mut update = vec![0u8; UNRELIABLE_LEN];
            update[..8].copy_from_slice(&now.to_le_bytes());
            if x.send_on(0, TransferMode::UnreliableOrdered, Bytes::from(update))
                .is_ok()
                && now > warm_up
                && now + 1_000_000 < end
            {
                sent_updates += 1;
            }
        }
        exchange(now, [&mut x, &mut y], [&mut forward, &mut back], &mut buf);
        while let Some(m) = y.recv_message() {
            if m.mode == TransferMode::Reliable {
                if now > warm_up {
                    delivered += m.payload.len() as u64;
                }
                continue;
            }
            let stamped = u64::from_le_bytes(m.payload[..8].try_into().expect("a timestamp"));
            if stamped > warm_up && stamped + 1_000_000 < end {
                got_updates += 1;
                extra_us.push((now - stamped).saturating_sub(latency_us));
            }
        }
    }
    extra_us.sort_unstable();
    let percentile = |p: f64| {
        extra_us
            .get(((extra_us.len() as f64 - 1.0) * p).round() as usize)
            .map_or(0.0, |&us| us as f64 / 1000.0)
    };
    Mixed {
        goodput_percent: 100.0 * delivered as f64
            / ((end - warm_up) as f64 / 1e6)
            / link.bandwidth_bytes_per_second.max(1) as f64,
        unreliable_extra_ms: (percentile(0.5), percentile(0.99)),
        unreliable_delivered: got_updates as f64 / sent_updates.max(1) as f64,
        retransmissions: x.stats().retransmissions,
    }
}

/// One run of a thin reliable stream: small messages at a steady rate, far below what the link carries, as a
/// game's events (shots, pickups, chat lines) are.
#[derive(Debug, Clone, PartialEq)]
pub struct Thin {
    /// Each message's latency from `send` to `recv`, in ms: median, 99th percentile and most.
    pub p50_ms: f64,
    /// See `p50_ms`.
    pub p99_ms: f64,
    /// See `p50_ms`.
    pub max_ms: f64,
    /// DATA bytes put on the wire (datagrams whole, headers included) per message byte.
    pub wire_per_message_byte: f64,
    /// The same without headers: payload bytes sent (first sends, copies and retransmissions) per message
    /// byte.
    pub payload_per_message_byte: f64,
    /// Messages delivered (all that were sent after the warm-up and before the last second).
    pub delivered: usize,
}

/// Sends `rate_hz` messages of `len` bytes a second over `link` (each way) for `seconds`, measuring after 2 s,
/// and reports their latencies. Messages carry the time they were sent.
pub fn thin_stream(link: &LinkConfig, rate_hz: u64, len: usize, seconds: u64, seed: u64) -> Thin {
    let mut x = Connection::new(ReliableConfig::default(), 0, seed * 100 + 1);
    let mut y = Connection::new(ReliableConfig::default(), 0, seed * 100 + 2);
    let mut forward: LinkModel<Bytes> = LinkModel::new(link.clone(), seed * 100 + 98);
    let mut back: LinkModel<Bytes> = LinkModel::new(link.clone(), seed * 100 + 99);
    let mut buf = Vec::with_capacity(1500);
    let (end, warm_up) = (seconds * 1_000_000, 2_000_000);
    let period = 1_000_000 / rate_hz.max(1);
    let mut latencies = Vec::new();
    let (mut wire, mut sent_bytes) = (0u64, 0u64);
    let mut now: Micros = 0;
    let mut next_send = warm_up;
    while now < end + 2_000_000 {
        now += 1_000;
        if now >= next_send && now < end {
            next_send += period;
            let mut message = vec![7u8; len.max(8)];
            message[..8].copy_from_slice(&now.to_le_bytes());
            if x.send(Bytes::from(message)).is_ok() {
                sent_bytes += len.max(8) as u64;
            }
        }
        while let Some(d) = forward.poll(now) {
            y.handle_datagram_bytes(now, &d);
        }
        while let Some(d) = back.poll(now) {
            x.handle_datagram_bytes(now, &d);
        }
        x.handle_timeout(now);
        y.handle_timeout(now);
        while x.poll_transmit(now, &mut buf) {
            if now >= warm_up && buf.get(3) == Some(&1) {
                wire += buf.len() as u64;
            }
            forward.send(now, Bytes::copy_from_slice(&buf));
        }
        while y.poll_transmit(now, &mut buf) {
            back.send(now, Bytes::copy_from_slice(&buf));
        }
        while let Some(m) = y.recv() {
            let stamped = u64::from_le_bytes(m[..8].try_into().expect("a timestamp"));
            latencies.push((now - stamped) as f64 / 1000.0);
        }
    }
    latencies.sort_by(f64::total_cmp);
    let at = |p: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(-1.0)
    };
    let stats = x.stats();
    Thin {
        p50_ms: at(0.5),
        p99_ms: at(0.99),
        max_ms: latencies.last().copied().unwrap_or(-1.0),
        wire_per_message_byte: wire as f64 / sent_bytes.max(1) as f64,
        payload_per_message_byte: (stats.payload_bytes_sent) as f64 / sent_bytes.max(1) as f64,
        delivered: latencies.len(),
    }
}

/// One run of a full sender on a link whose rate steps at `step_at_seconds` to `new_bandwidth` (issue 31's
/// changing links).
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Seconds from the step until the standing queue (the sender's smoothed round trip less the link's) is
    /// under 20 ms and stays under it for a second (`None`: never).
    pub queue_settled_after_s: Option<f64>,
    /// Seconds from the step until goodput over 250 ms reaches 90% of the new rate (`None`: never).
    pub rate_reached_after_s: Option<f64>,
    /// Goodput from one second after the step to the end, as a share of the new rate.
    pub goodput_after_percent: f64,
    /// The standing queue's mean over that time, in ms.
    pub queue_after_ms: f64,
}

/// Runs a full sender for `seconds` over `link`, whose bandwidth becomes `new_bandwidth` at `step_at_seconds`
/// (both directions; the queue limit is left as it is).
pub fn step_change(
    link: &LinkConfig,
    step_at_seconds: u64,
    new_bandwidth: u64,
    seconds: u64,
    seed: u64,
) -> Step {
    let (mut x, mut y, mut x_to_y, mut y_to_x) =
        bulk_pair(link, ReliableConfig::default().max_congestion_window, seed);
    let message = Bytes::from(vec![5u8; MESSAGE_LEN]);
    let mut buf = Vec::with_capacity(1500);
    let (end, step) = (seconds * 1_000_000, step_at_seconds * 1_000_000);
    let mut now: Micros = 0;
    // Per 1 ms after the step: the standing queue; per 250 ms: bytes delivered.
    let mut queue: Vec<f64> = Vec::new();
    let mut windows: Vec<u64> = Vec::new();
    let mut delivered_after = 0u64;
    while now < end {
        if now == step {
            let changed = LinkConfig {
                bandwidth_bytes_per_second: new_bandwidth,
                ..link.clone()
            };
            x_to_y.set_config(changed.clone());
            y_to_x.set_config(changed);
        }
        while x.send(message.clone()).is_ok() {}
        now += 1_000;
        exchange(now, [&mut x, &mut y], [&mut x_to_y, &mut y_to_x], &mut buf);
        let mut got = 0u64;
        while let Some(m) = y.recv() {
            got += m.len() as u64;
        }
        if now > step {
            let since = now - step;
            queue.push(x.stats().srtt_us as f64 / 1000.0 - 2.0 * link.latency_ms);
            let w = ((since - 1) / 250_000) as usize;
            if windows.len() <= w {
                windows.resize(w + 1, 0);
            }
            windows[w] += got;
            if since > 1_000_000 {
                delivered_after += got;
            }
        }
    }
    let settled = (0..queue.len()).find(|&i| queue[i..].iter().take(1000).all(|&q| q < 20.0));
    let per_window = new_bandwidth as f64 / 4.0;
    let reached = windows.iter().position(|&b| b as f64 >= 0.9 * per_window);
    let after = &queue[queue.len().min(1000)..];
    Step {
        queue_settled_after_s: settled.map(|i| (i + 1) as f64 / 1000.0),
        rate_reached_after_s: reached.map(|w| (w + 1) as f64 * 0.25),
        goodput_after_percent: 100.0 * delivered_after as f64
            / ((end - step - 1_000_000) as f64 / 1e6)
            / new_bandwidth.max(1) as f64,
        queue_after_ms: after.iter().sum::<f64>() / after.len().max(1) as f64,
    }
}
