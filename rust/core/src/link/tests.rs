//! Tests of the link model: each impairment's statistics over 100,000 packets, ordering, limits,
//! accounting, and determinism.

use super::*;

const N: u64 = 100_000;

fn numbered(i: u64, size: usize) -> Bytes {
    let mut v = vec![0u8; size.max(8)];
    v[..8].copy_from_slice(&i.to_le_bytes());
    Bytes::from(v)
}

fn number_of(packet: &[u8]) -> u64 {
    u64::from_le_bytes(packet[..8].try_into().unwrap())
}

/// Sends `n` packets `spacing_us` apart, polling as time goes, then drains; returns (delivery time, packet).
fn run(model: &mut LinkModel, n: u64, spacing_us: u64, size: usize) -> Vec<(Micros, Bytes)> {
    let mut delivered = Vec::new();
    for i in 0..n {
        let now = i * spacing_us;
        while let Some(p) = model.poll(now) {
            delivered.push((now, p));
        }
        model.send(now, numbered(i, size));
    }
    while let Some(due) = model.next_due() {
        while let Some(p) = model.poll(due) {
            delivered.push((due, p));
        }
    }
    delivered
}

fn with(f: impl FnOnce(&mut LinkConfig)) -> LinkConfig {
    let mut c = LinkConfig::default();
    f(&mut c);
    c
}

fn assert_accounted(model: &LinkModel) {
    let s = model.stats();
    assert_eq!(
        s.packets_in + s.duplicated,
        s.packets_delivered
            + s.dropped_loss
            + s.dropped_overflow
            + s.dropped_link_down
            + model.queued() as u64,
        "every packet is delivered, dropped for a reason, or queued: {s:?}"
    );
}

#[test]
fn a_clean_link_delivers_everything_at_once_and_in_order() {
    let mut model = LinkModel::new(LinkConfig::default(), 1);
    model.send(0, Bytes::from_static(b"a"));
    model.send(0, Bytes::from_static(b"b"));
    assert_eq!(model.poll(0).as_deref(), Some(&b"a"[..]));
    assert_eq!(model.poll(0).as_deref(), Some(&b"b"[..]));
    assert_eq!(model.poll(0), None);
    assert_eq!(model.next_due(), None);
}

#[test]
fn pass_through_counts_exactly_what_send_and_poll_would() {
    let mut fast: LinkModel = LinkModel::new(LinkConfig::default(), 1);
    let mut slow = LinkModel::new(LinkConfig::default(), 1);
    for i in 0..100u64 {
        assert!(fast.pass_through(10 + i as usize));
        slow.send(i, Bytes::from(vec![0; 10 + i as usize]));
        assert!(slow.poll(i).is_some());
    }
    assert_eq!(fast.stats(), slow.stats());
    // Not when anything is impaired, or anything is queued.
    let mut lossy: LinkModel = LinkModel::new(with(|c| c.loss = 0.5), 1);
    assert!(!lossy.pass_through(10));
    let mut delayed: LinkModel = LinkModel::new(with(|c| c.latency_ms = 5.0), 1);
    delayed.send(0, Bytes::from_static(b"x"));
    delayed.set_config(LinkConfig::default());
    assert!(!delayed.pass_through(10), "a queued packet must go first");
    assert_eq!(delayed.stats().packets_in, 1);
}

#[test]
fn latency_holds_a_packet_until_exactly_its_time() {
    let mut model = LinkModel::new(with(|c| c.latency_ms = 100.0), 1);
    model.send(5_000, Bytes::from_static(b"x"));
    assert_eq!(model.next_due(), Some(105_000));
    assert_eq!(model.poll(104_999), None);
    assert_eq!(model.poll(105_000).as_deref(), Some(&b"x"[..]));
    assert_eq!(model.stats().delay_min_us, 100_000);
    assert_eq!(model.stats().delay_max_us, 100_000);
}

#[test]
fn independent_loss_drops_its_share() {
    let mut model = LinkModel::new(with(|c| c.loss = 0.1), 11);
    let delivered = run(&mut model, N, 100, 16).len() as f64;
    let lost = 1.0 - delivered / N as f64;
    assert!((0.095..=0.105).contains(&lost), "lost {lost}");
    assert_eq!(model.stats().dropped_loss, N - delivered as u64);
    assert_accounted(&model);
}

#[test]
fn total_loss_delivers_nothing() {
    let mut model = LinkModel::new(with(|c| c.loss = 1.0), 1);
    assert!(run(&mut model, 1000, 10, 8).is_empty());
    assert_eq!(model.stats().dropped_loss, 1000);
}

#[test]
fn gilbert_elliott_bursts_match_the_model() {
    // Stationary share of time in the bad state: p / (p + r); bursts last 1 / r packets on average.
    let (p, r) = (0.01, 0.25);
    let mut model = LinkModel::new(
        with(|c| {
            c.burst_enter_probability = p;
            c.burst_exit_probability = r;
            c.loss_in_good_state = 0.0;
            c.loss_in_bad_state = 1.0;
        }),
        12,
    );
    let mut lost = vec![true; N as usize];
    for (_, packet) in run(&mut model, N, 100, 8) {
        lost[number_of(&packet) as usize] = false;
    }
    let loss_rate = lost.iter().filter(|l| **l).count() as f64 / N as f64;
    let expected_rate = p / (p + r);
    assert!(
        (loss_rate - expected_rate).abs() < expected_rate * 0.1,
        "loss rate {loss_rate}, expected {expected_rate}"
    );
    let mut bursts = Vec::new();
    let mut run_length = 0;
    for l in &lost {
        if *l {
            run_length += 1;
        } else if run_length > 0 {
            bursts.push(run_length);
            run_length = 0;
        }
    }
    let mean_burst = bursts.iter().sum::<u64>() as f64 / bursts.len() as f64;
    assert!(
        (mean_burst - 1.0 / r).abs() < 0.4,
        "mean burst {mean_burst}, expected {}",
        1.0 / r
    );
    // Independent loss at the same rate would make bursts of about 1 / (1 - rate) = 1.04 packets.
    assert!(mean_burst > 3.0);
}

#[test]
fn mean_applied_delay_matches_latency() {
    let mut model = LinkModel::new(
        with(|c| {
            c.latency_ms = 50.0;
            c.jitter_ms = 10.0;
            c.jitter_may_reorder = true;
        }),
        13,
    );
    run(&mut model, N, 1000, 8);
    let mean_ms = model.stats().delay_mean_us() / 1000.0;
    assert!((mean_ms - 50.0).abs() < 0.5, "mean delay {mean_ms} ms");
    assert!(model.stats().delay_min_us >= 40_000);
    assert!(model.stats().delay_max_us <= 60_000);
}

#[test]
fn bandwidth_cap_holds_within_two_percent() {
    let rate = 1_000_000u64;
    let mut model = LinkModel::new(
        with(|c| {
            c.bandwidth_bytes_per_second = rate;
            c.queue_limit = N as usize;
        }),
        14,
    );
    // Offer 10x the cap: 1000-byte packets every 100 us.
    let delivered = run(&mut model, N, 100, 1000);
    let last = delivered.last().unwrap().0 as f64 / 1e6;
    let bytes = model.stats().bytes_delivered as f64;
    let measured = bytes / last;
    assert!(
        (measured - rate as f64).abs() < rate as f64 * 0.02,
        "measured {measured} B/s"
    );
    assert_eq!(
        delivered.len() as u64,
        N,
        "a deep enough queue loses nothing"
    );
}

#[test]
fn bandwidth_cap_with_a_short_queue_counts_overflow() {
    let mut model = LinkModel::new(
        with(|c| {
            c.bandwidth_bytes_per_second = 100_000;
            c.queue_limit = 50;
        }),
        15,
    );
    let delivered = run(&mut model, 10_000, 100, 1000).len() as u64;
    let s = *model.stats();
    assert!(s.dropped_overflow > 0);
    assert_eq!(delivered + s.dropped_overflow, 10_000);
    assert_accounted(&model);
}

#[test]
fn duplication_delivers_its_share_twice() {
    let mut model = LinkModel::new(with(|c| c.duplicate = 0.05), 16);
    let delivered = run(&mut model, N, 100, 8);
    let extra = delivered.len() as f64 / N as f64 - 1.0;
    assert!((0.045..=0.055).contains(&extra), "duplicated share {extra}");
    assert_eq!(model.stats().duplicated, delivered.len() as u64 - N);
    let mut seen = vec![0u8; N as usize];
    for (_, p) in &delivered {
        seen[number_of(p) as usize] += 1;
    }
    assert!(seen.iter().all(|c| *c == 1 || *c == 2));
}

#[test]
fn corruption_flips_exactly_one_bit() {
    let mut model = LinkModel::new(with(|c| c.corrupt = 0.1), 17);
    // No delay, loss or duplication: the i-th delivery is the i-th packet sent.
    let delivered = run(&mut model, N, 100, 64);
    assert_eq!(delivered.len() as u64, N);
    let mut corrupted = 0u64;
    for (i, (_, packet)) in delivered.iter().enumerate() {
        let original = numbered(i as u64, 64);
        let flipped_bits: u32 = packet
            .iter()
            .zip(original.iter())
            .map(|(a, b)| (a ^ b).count_ones())
            .sum();
        assert!(
            flipped_bits <= 1,
            "packet {i} has {flipped_bits} flipped bits"
        );
        corrupted += flipped_bits as u64;
    }
    assert_eq!(model.stats().corrupted, corrupted);
    let share = corrupted as f64 / N as f64;
    assert!((0.095..=0.105).contains(&share), "corrupted share {share}");
}

#[test]
fn jitter_keeps_order_unless_reordering_is_allowed() {
    let jittery = |may_reorder| {
        with(|c| {
            c.latency_ms = 20.0;
            c.jitter_ms = 15.0;
            c.jitter_may_reorder = may_reorder;
        })
    };
    let mut ordered = LinkModel::new(jittery(false), 18);
    let numbers: Vec<u64> = run(&mut ordered, 10_000, 1000, 8)
        .iter()
        .map(|(_, p)| number_of(p))
        .collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "in order");
    assert_eq!(ordered.stats().reordered, 0);

    let mut free = LinkModel::new(jittery(true), 18);
    let numbers: Vec<u64> = run(&mut free, 10_000, 1000, 8)
        .iter()
        .map(|(_, p)| number_of(p))
        .collect();
    let inversions = numbers.windows(2).filter(|w| w[0] > w[1]).count();
    assert!(inversions > 100, "only {inversions} inversions");
    assert!(free.stats().reordered > 100);
}

#[test]
fn reorder_sends_its_share_ahead_of_their_turn() {
    let mut model = LinkModel::new(
        with(|c| {
            c.latency_ms = 10.0;
            c.reorder = 0.1;
        }),
        19,
    );
    let numbers: Vec<u64> = run(&mut model, N, 1000, 8)
        .iter()
        .map(|(_, p)| number_of(p))
        .collect();
    let share = model.stats().reordered as f64 / N as f64;
    assert!((0.095..=0.105).contains(&share), "reordered share {share}");
    assert!(numbers.windows(2).any(|w| w[0] > w[1]));
    assert_eq!(numbers.len() as u64, N);
}

#[test]
fn queue_limit_counts_overflow() {
    let mut model = LinkModel::new(
        with(|c| {
            c.latency_ms = 100.0;
            c.queue_limit = 10;
        }),
        20,
    );
    for i in 0..15 {
        model.send(0, numbered(i, 8));
    }
    assert_eq!(model.queued(), 10);
    assert_eq!(model.stats().dropped_overflow, 5);
    assert_accounted(&model);
}

/// Found by the link_model fuzz target: a duplicate copy dropped for lack of room was counted as dropped but not
/// as made.
#[test]
fn a_duplicate_that_overflows_is_counted_once() {
    let mut model = LinkModel::new(
        with(|c| {
            c.latency_ms = 10.0;
            c.duplicate = 1.0;
            c.queue_limit = 1;
        }),
        24,
    );
    model.send(0, numbered(0, 8)); // the original is queued, its duplicate overflows
    assert_accounted(&model);
    model.send(1, numbered(1, 8)); // both copies overflow
    assert_accounted(&model);
    let s = model.stats();
    assert_eq!(
        (s.duplicated, s.dropped_overflow, model.queued()),
        (2, 3, 1)
    );
}

#[test]
fn link_down_drops_new_and_queued_packets_until_it_is_up_again() {
    let mut model = LinkModel::new(with(|c| c.latency_ms = 10.0), 21);
    model.send(0, numbered(0, 8));
    let mut down = model.config().clone();
    down.link_up = false;
    model.set_config(down);
    model.send(1, numbered(1, 8));
    assert_eq!(model.queued(), 0);
    assert_eq!(model.stats().dropped_link_down, 2);
    let mut up = model.config().clone();
    up.link_up = true;
    model.set_config(up);
    model.send(2, numbered(2, 8));
    assert_eq!(model.poll(10_002).map(|p| number_of(&p)), Some(2));
    assert_accounted(&model);
}

#[test]
fn changing_settings_keeps_queued_packets_on_schedule() {
    let mut model = LinkModel::new(with(|c| c.latency_ms = 100.0), 22);
    model.send(0, numbered(0, 8));
    model.set_config(with(|c| c.latency_ms = 10.0));
    model.send(1_000, numbered(1, 8));
    // In order by default: the second packet waits for the first.
    assert_eq!(model.poll(11_000), None);
    assert_eq!(model.poll(100_000).map(|p| number_of(&p)), Some(0));
    assert_eq!(model.poll(100_000).map(|p| number_of(&p)), Some(1));
}

#[test]
fn shifting_time_keeps_remaining_delays() {
    let mut model = LinkModel::new(with(|c| c.latency_ms = 10.0), 23);
    model.send(50_000, numbered(0, 8));
    model.send(55_000, numbered(1, 8));
    model.shift_time(57_000, 0);
    assert_eq!(model.poll(2_999), None);
    assert_eq!(model.poll(3_000).map(|p| number_of(&p)), Some(0));
    assert_eq!(model.poll(8_000).map(|p| number_of(&p)), Some(1));
    model.send(9_000, numbered(2, 8));
    assert_eq!(model.next_due(), Some(19_000), "in-order floor moved too");
}

fn everything(seed: u64) -> Vec<(Micros, Bytes)> {
    let mut model = LinkModel::new(
        with(|c| {
            c.latency_ms = 30.0;
            c.jitter_ms = 20.0;
            c.jitter_distribution = JitterDistribution::Pareto;
            c.jitter_correlation = 0.3;
            c.jitter_may_reorder = true;
            c.loss = 0.05;
            c.burst_enter_probability = 0.01;
            c.burst_exit_probability = 0.3;
            c.duplicate = 0.05;
            c.reorder = 0.05;
            c.corrupt = 0.05;
            c.bandwidth_bytes_per_second = 2_000_000;
            c.queue_limit = 500;
        }),
        seed,
    );
    let log = run(&mut model, 20_000, 200, 100);
    assert_accounted(&model);
    log
}

#[test]
fn same_seed_gives_identical_deliveries_and_another_seed_does_not() {
    let a = everything(42);
    let b = everything(42);
    let c = everything(43);
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert!(a.len() > 15_000);
}

#[test]
fn reliable_packets_are_delayed_by_loss_never_dropped() {
    let mut model = LinkModel::new(
        with(|c| {
            c.latency_ms = 10.0;
            c.loss = 1.0;
        }),
        3,
    );
    let due = model.send_reliable(0, Bytes::from_static(b"r"), 0).unwrap();
    // 10 ms of latency plus 8 retransmission timeouts of 2 x 10 ms each.
    assert_eq!(due, 10_000 + 8 * 20_000);
    assert!(model.poll(due - 1).is_none());
    assert_eq!(model.poll(due).as_deref(), Some(&b"r"[..]));
    assert_eq!(model.stats().retransmitted, 8);
    assert_eq!(model.stats().dropped_loss, 0);
    // Without loss: no retransmission; `not_before` holds a packet behind its predecessor.
    let mut clean: LinkModel = LinkModel::new(LinkConfig::default(), 3);
    assert_eq!(
        clean.send_reliable(5, Bytes::from_static(b"a"), 50),
        Some(50)
    );
    assert_eq!(clean.stats().retransmitted, 0);
}

#[test]
fn a_cut_link_holds_reliable_packets_and_drops_the_rest() {
    let mut model = LinkModel::new(with(|c| c.latency_ms = 1.0), 4);
    model.send(0, Bytes::from_static(b"u1"));
    model.send_reliable(0, Bytes::from_static(b"r1"), 0);
    model.set_config(with(|c| c.link_up = false));
    assert_eq!(
        model.stats().dropped_link_down,
        1,
        "only the unreliable packet"
    );
    assert_eq!(
        model.send(10, Bytes::from_static(b"u2")),
        SendOutcome::Dropped(DropReason::LinkDown)
    );
    model.send_reliable(10, Bytes::from_static(b"r2"), 0);
    assert!(
        model.poll(100_000).is_none(),
        "nothing while the link is down"
    );
    model.set_config(with(|c| c.latency_ms = 1.0));
    assert_eq!(model.poll(100_000).as_deref(), Some(&b"r1"[..]));
    assert_eq!(model.poll(100_000).as_deref(), Some(&b"r2"[..]));
    assert!(model.poll(100_000).is_none());
    assert_accounted(&model);
}
