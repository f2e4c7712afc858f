//! Congestion control at a capped link's limit (issue 14), on simulated time: the capped-link experiment of
//! `peerkit_core::sim` (the same setup as the benchmark rows) held to its targets loosely enough not to be a
//! timing test and tightly enough to catch a regression, and the defects found on the way.

use bytes::Bytes;
use peerkit_core::link::{LinkConfig, LinkModel, Micros};
use peerkit_core::reliable::congestion::Pacer;
use peerkit_core::reliable::packet::{self, Acks, Kind};
use peerkit_core::reliable::send::{RttEstimator, Sender};
use peerkit_core::reliable::seq::Seq;
use peerkit_core::reliable::{Connection, ReliableConfig, Status};
use peerkit_core::sim::{
    capped_link as capped, even_rate_bound, exchange, saturate, saturate_with, share,
};

/// Found while filling a fast lossy link (issue 14): two retransmission timeouts a millisecond apart were taken
/// as "the path went quiet" (nothing acknowledged between them), which drops the window to its minimum and
/// doubles the timeout, although an acknowledgement had arrived well within one timeout. Silence is a whole
/// timeout without any acknowledgement.
#[test]
fn timeouts_a_millisecond_apart_are_losses_not_silence() {
    let mut sender = Sender::new(
        Seq(0),
        1200,
        1024,
        1024,
        RttEstimator::new(200_000, 30_000, 2_000_000),
    );
    sender.grant_credit(u64::MAX / 2);
    for _ in 0..8 {
        sender.push(Bytes::from(vec![1u8; 1000]));
    }
    let ack = |next: u32, largest: u32, at_recent: u32| Acks {
        next: Seq(next),
        largest: Seq(largest),
        bits: 0,
        recent: Seq(at_recent),
        delay_us: 0,
        credit: u64::MAX / 2,
    };
    assert_eq!(sender.next_fragment(0).map(|o| o.seq), Some(Seq(0)));
    sender.on_acks(100_000, ack(1, 0, 0)).unwrap();
    assert_eq!(sender.next_fragment(100_000).map(|o| o.seq), Some(Seq(1)));
    assert_eq!(sender.next_fragment(101_000).map(|o| o.seq), Some(Seq(2)));
    assert_eq!(sender.next_fragment(102_000).map(|o| o.seq), Some(Seq(3)));
    sender.on_acks(200_000, ack(2, 1, 1)).unwrap();
    let window = sender.congestion_window();
    let rto = sender.rtt().rto_us();
    // Datagrams 2 and 3 time out a millisecond apart, both well within one timeout of the acknowledgement.
    let (first, second) = (101_000 + rto, 102_000 + rto);
    assert!(second - 200_000 < rto);
    assert_eq!(sender.on_timeout(first), 1);
    assert_eq!(sender.on_timeout(second), 1);
    assert!(
        sender.congestion_window() > 2.0 && sender.congestion_window() >= window * 0.5,
        "the window fell from {window} to {} on two ordinary losses",
        sender.congestion_window()
    );
    assert_eq!(
        sender.rtt().rto_us(),
        rto,
        "no back-off: the path is not silent"
    );
}

/// Found in the slow lossy row (100 kB/s, 10% loss, 150 ms each way) with another seed: when the peer's HELLO
/// answer was lost, the side that had sent the first HELLO was established by the peer's next datagram instead,
/// which did not take the handshake's round trip. It started with no estimate, so with the 200 ms initial timeout
/// on a 300 ms path every datagram of its first window timed out and was sent again, Karn's rule then allowed no
/// sample, and the stream crawled for nine seconds (goodput 61% over the row).
#[test]
fn a_connection_established_without_the_hello_answer_still_has_a_round_trip() {
    let config = ReliableConfig {
        max_message_size: 1024,
        ..ReliableConfig::default()
    };
    let mut a = Connection::new(config.clone(), 0, 1);
    let mut b = Connection::new(config, 0, 2);
    let one_way: Micros = 150_000;
    // In flight: (arrives at, to b?, datagram).
    let mut wire: Vec<(Micros, bool, Vec<u8>)> = Vec::new();
    let mut buf = Vec::new();
    let mut dropped_answers = 0;
    let mut now: Micros = 0;
    while now < 2_000_000 {
        if a.status() == Status::Connected {
            while a.send(Bytes::from(vec![7u8; 1000])).is_ok() {}
        }
        let (due, later): (Vec<_>, Vec<_>) = wire.drain(..).partition(|(at, _, _)| *at <= now);
        wire = later;
        for (_, to_b, d) in due {
            if to_b {
                b.handle_datagram(now, &d);
            } else {
                a.handle_datagram(now, &d);
            }
        }
        a.handle_timeout(now);
        b.handle_timeout(now);
        while a.poll_transmit(now, &mut buf) {
            wire.push((now + one_way, true, buf.clone()));
        }
        while b.poll_transmit(now, &mut buf) {
            // Every HELLO b addresses to a is lost: a learns that b knows it from b's next datagram.
            let d = packet::decode(&buf).expect("b's own datagram");
            if d.kind == Kind::Hello && d.ids.dst == a.local_id() {
                dropped_answers += 1;
                continue;
            }
            wire.push((now + one_way, false, buf.clone()));
        }
        now += 1_000;
    }
    assert!(dropped_answers > 0, "the test did not drop b's answer");
    assert_eq!(a.status(), Status::Connected);
    let s = a.stats();
    assert!(s.messages_sent > 0 && s.srtt_us > 0, "{s:?}");
    assert_eq!(
        s.retransmissions, 0,
        "spurious retransmissions on a clean link: {s:?}"
    );
}

/// Runs a row for 10 simulated seconds (2 of warm-up) and checks it against floors and ceilings set a few points
/// and milliseconds beyond what it gives now (README's Performance section has the 20-second figures): a
/// regression to the old controller (88 ms of standing queue on the first row, 237 on the slow one, 19% goodput
/// on the fast lossy one) fails them by far.
fn holds(link: LinkConfig, min_goodput: f64, max_queue_ms: f64) {
    let s = saturate(&link, 10, 2, 7);
    assert!(
        s.goodput_percent >= min_goodput && s.standing_queue_ms <= max_queue_ms,
        "{link:?}: {s:?}, wanted goodput >= {min_goodput}% and a standing queue <= {max_queue_ms} ms"
    );
}

#[test]
fn a_clean_capped_link_is_filled_without_a_standing_queue() {
    holds(capped(1_000_000, 0.0, 50.0), 90.0, 15.0);
    holds(capped(10_000_000, 0.0, 10.0), 90.0, 15.0);
}

#[test]
fn random_loss_is_not_read_as_congestion() {
    holds(capped(1_000_000, 0.02, 30.0), 90.0, 15.0);
    holds(capped(1_000_000, 0.10, 50.0), 88.0, 18.0);
}

#[test]
fn on_a_fast_lossy_link_the_windows_are_not_the_cap() {
    // 10 MB/s, 100 ms round trip, 10% loss: a datagram lost twice or three times holds the stream's oldest byte
    // for several round trips, and the window and the receive buffer must outlast that.
    holds(capped(10_000_000, 0.10, 50.0), 85.0, 20.0);
}

#[test]
fn a_slow_link_keeps_a_short_queue() {
    // One 1 KiB message's datagram (1,081 bytes) takes 8.6 ms to cross a 125 kB/s link, so the floor of this
    // measure is about 10 ms.
    holds(capped(125_000, 0.0, 10.0), 90.0, 30.0);
}

/// Found in the long run of the slow rows: the drain every 10 s lasted one and a half round trips, which on a
/// 100 kB/s link is five or six acknowledgements, too few for the smoothed round trip to follow the drained
/// queue; the smallest smoothed value it saw became the base, too high by a datagram's time on the wire, and
/// from the first drain on the standing queue was 30 ms instead of 17 (37.5 and 39.8 ms averaged over 20-60 s
/// at 125 and 100 kB/s). A drain now waits for eight acknowledged datagrams sent during it and takes their mean.
#[test]
fn a_slow_link_keeps_its_queue_short_after_the_drains() {
    for bandwidth in [100_000, 125_000] {
        let s = saturate(&capped(bandwidth, 0.0, 10.0), 60, 20, 7);
        assert!(
            s.goodput_percent >= 90.0 && s.standing_queue_ms <= 22.0,
            "{bandwidth} B/s, seconds 20 to 60: {s:?}"
        );
    }
}

#[test]
fn jitter_without_reordering_is_not_read_as_a_queue() {
    let link = LinkConfig {
        jitter_ms: 10.0,
        ..capped(1_000_000, 0.0, 50.0)
    };
    holds(link, 85.0, 30.0);
}

/// The jitter row of README, held at the targets themselves (goodput at least 90%, a standing queue of at
/// most 20 ms) over both of README's spans, with four seeds of the link model. It missed on all four before the
/// sends were paced and the base measured to 1 ms: 22.0-25.9 ms over the first 20 s with seeds 2-4, 89.7% with
/// seed 1, and 21.6 ms over seconds 20-60 with seed 1; without the pacing, with drains of 8 samples, or with
/// the first drain at 10 s, it fails again.
#[test]
fn jitter_without_reordering_meets_both_targets_on_every_seed() {
    let link = LinkConfig {
        jitter_ms: 10.0,
        ..capped(1_000_000, 0.0, 50.0)
    };
    for seed in 1..=4 {
        for (seconds, warm_up) in [(20, 2), (60, 20)] {
            let s = saturate(&link, seconds, warm_up, seed);
            assert!(
                s.goodput_percent >= 90.0 && s.standing_queue_ms <= 20.0,
                "seed {seed}, seconds {warm_up}-{seconds}: {s:?}"
            );
        }
    }
}

/// Two bulk connections on one capped link, started together or 1 to 4 s apart, over 60 s. At 20 s the shares
/// are still settling (version 2 read 27:73 started 2 s apart; version 3, whose DATA carries 5 more bytes, 34:66
/// started 3 s apart); over 60 s every start is within 35-65%.
#[test]
fn two_connections_share_a_link_fairly() {
    for stagger in 0..=4 {
        let s = share(&capped(1_000_000, 0.0, 30.0), 2, stagger, 0, 60, 2, 3);
        assert!(
            s.shares.iter().all(|&x| (0.35..=0.65).contains(&x)) && s.goodput_percent >= 90.0,
            "started {stagger} s apart: {s:?}"
        );
    }
}

#[test]
fn unreliable_traffic_beside_a_full_stream_waits_little() {
    let s = share(&capped(1_000_000, 0.0, 30.0), 1, 0, 60, 20, 2, 5);
    assert!(
        s.unreliable_extra_ms.1 <= 20.0 && s.goodput_percent >= 90.0,
        "{s:?}: the 60 Hz datagrams waited more than 20 ms behind the stream"
    );
}

/// `ReliableConfig::max_congestion_window` (what the capped-link example's `--max-window` sets) holds the
/// window at the cap: 5 datagrams per round trip of about 21 ms on a 1 MB/s link is about a quarter of it,
/// with nothing queued, where the controller alone fills the link.
#[test]
fn a_capped_congestion_window_holds_the_rate_to_the_cap() {
    let link = capped(1_000_000, 0.0, 10.0);
    let free = saturate(&link, 10, 2, 3);
    let held = saturate_with(&link, 5, 10, 2, 3);
    assert!(free.goodput_percent >= 90.0, "{free:?}");
    assert!(
        (15.0..35.0).contains(&held.goodput_percent),
        "5 datagrams per round trip should give about a quarter of the link: {held:?}"
    );
    assert!(held.standing_queue_ms < 5.0, "{held:?}");
}

/// The best goodput an ideal even-rate sender reaches on `link` (seed 1, seconds 2-20) at sending rates of
/// 100% to 110% of the bandwidth in half-point steps, and the smallest standing queue among the rates that
/// give at least `goodput` percent (`None` if none does).
fn ideal_frontier(link: &LinkConfig, goodput: f64) -> (f64, Option<f64>) {
    let runs: Vec<_> = (0..=20)
        .map(|i| even_rate_bound(link, 100.0 + 0.5 * f64::from(i), 20, 2, 1))
        .collect();
    let best = runs.iter().map(|s| s.goodput_percent).fold(0.0, f64::max);
    let queue = runs
        .iter()
        .filter(|s| s.goodput_percent >= goodput)
        .map(|s| s.standing_queue_ms)
        .reduce(f64::min);
    (best, queue)
}

/// README says why the 100 kB/s, 10% loss, 150 ms row misses: even a sender that knew the link's rate and sent
/// perfectly evenly (`sim::even_rate_bound`) holds about 17 ms of queue at 90% goodput there (seed 1,
/// seconds 2-20), within a few milliseconds of the 20 ms target, because the losses thin its datagrams at
/// random and one datagram is 10.8 ms on this link's wire; on the 1 MB/s, 10% row, where a datagram is ten
/// times shorter, the same sender is at 92% with under 5 ms. If the link model or the measure changed so that
/// the slow row had room, this fails, and README's explanation is wrong.
#[test]
fn an_ideal_even_sender_is_at_the_edge_of_the_slow_long_lossy_row() {
    let (best, queue) = ideal_frontier(&capped(100_000, 0.10, 150.0), 90.0);
    assert!(
        best >= 90.0,
        "the ideal sender should reach 90% at some rate: {best}%"
    );
    let queue = queue.expect("a rate with 90%");
    assert!(
        (15.0..21.0).contains(&queue),
        "at 90% goodput the ideal sender's queue should be about 17 ms: {queue:.1} ms"
    );
    let (_, fast) = ideal_frontier(&capped(1_000_000, 0.10, 50.0), 92.0);
    assert!(
        fast.is_some_and(|q| q < 5.0),
        "on the 1 MB/s, 10% row the ideal sender should reach 92% with under 5 ms: {fast:?}"
    );
}

/// Found in review: `max_congestion_window` defaulted to 16,384, a copy of `max_window`'s default, so raising
/// `max_window` alone still capped the congestion window at 16,384 although the setting promises no cap beyond
/// `max_window`. Here the window grows in slow start over a clean 10 ms path with `max_window` at 20,000 and
/// the default congestion cap; it must pass 16,384.
#[test]
fn the_default_congestion_cap_follows_a_raised_max_window() {
    let mut sender = Sender::new(
        Seq(0),
        1200,
        20_000,
        ReliableConfig::default().max_congestion_window,
        RttEstimator::new(200_000, 30_000, 2_000_000),
    );
    sender.grant_credit(u64::MAX / 2);
    let (mut now, mut next) = (0, 0u32);
    for _ in 0..12 {
        while sender.pending_messages() < 40_000 {
            sender.push(Bytes::from_static(b"x"));
        }
        while let Some(out) = sender.next_fragment(now) {
            next = out.seq.0 + 1;
        }
        now += 10_000;
        let acks = Acks {
            next: Seq(next),
            largest: Seq(next - 1),
            bits: 0,
            recent: Seq(next - 1),
            delay_us: 0,
            credit: u64::MAX / 2,
        };
        sender.on_acks(now, acks).unwrap();
    }
    assert!(
        sender.congestion_window() > 16_384.0,
        "the window stopped at {} with max_window 20,000",
        sender.congestion_window()
    );
}

/// Runs the jittered row (1 MB/s, 10 ms of jitter, 50 ms each way) flat out for 8 simulated seconds, driven
/// every millisecond, and shows the sender to `each_ms` after every step from 3 s on (slow start long over).
fn watch_the_jittered_sender(mut each_ms: impl FnMut(Micros, &Connection)) {
    let link = LinkConfig {
        jitter_ms: 10.0,
        ..capped(1_000_000, 0.0, 50.0)
    };
    let config = ReliableConfig {
        max_message_size: 1024,
        ..ReliableConfig::default()
    };
    let (mut x, mut y) = (
        Connection::new(config.clone(), 0, 3),
        Connection::new(config, 0, 4),
    );
    let mut x_to_y = LinkModel::new(link.clone(), 5);
    let mut y_to_x = LinkModel::new(link, 6);
    let message = Bytes::from(vec![5u8; 1024]);
    let mut buf = Vec::new();
    let mut now: Micros = 0;
    while now < 8_000_000 {
        while x.send(message.clone()).is_ok() {}
        now += 1_000;
        exchange(now, [&mut x, &mut y], [&mut x_to_y, &mut y_to_x], &mut buf);
        while y.recv().is_some() {}
        if now > 3_000_000 {
            each_ms(now, &x);
        }
    }
    assert!(
        x.stats().datagrams_sent > 5_000,
        "the stream did not run: {:?}",
        x.stats()
    );
}

/// Once slow start is over the sender is paced: on the jittered row, where acknowledgements come back in
/// clumps, no millisecond carries more than the pacer's bucket (two polling intervals' worth at 1.25 times
/// the rate, about 2.3 datagrams here, so at most 3 in one step; it is 2). Clocked by the clumped
/// acknowledgements alone, the sender put out up to 21 in one millisecond.
#[test]
fn once_out_of_slow_start_sends_are_spread_not_clumped() {
    let (mut most, mut sent) = (0, None);
    watch_the_jittered_sender(|_, x| {
        let total = x.stats().datagrams_sent;
        if let Some(before) = sent {
            most = most.max(total - before);
        }
        sent = Some(total);
    });
    assert!(most <= 3, "{most} datagrams left in one millisecond");
}

/// `poll_timeout` names the moment the pacer lets the next datagram go, so a caller that sleeps until it (as
/// quinn's contract allows) is back in time to send. On the jittered row the pacer is what holds the sender
/// back after each clump of acknowledgements, and nothing else is due that soon (the retransmission timer is
/// at least 30 ms away, keepalives 1 s): the sender asks to be called again within 2 ms in two thirds of the
/// steps once slow start is over, and in 4% when `poll_timeout` left the pacer out.
#[test]
fn poll_timeout_names_the_pacers_next_moment() {
    let (mut steps, mut soon) = (0u32, 0u32);
    watch_the_jittered_sender(|now, x| {
        steps += 1;
        if x.poll_timeout()
            .is_some_and(|due| due > now && due <= now + 2_000)
        {
            soon += 1;
        }
    });
    assert!(
        soon * 2 > steps,
        "poll_timeout was within 2 ms in only {soon} of {steps} steps"
    );
}

/// A game polls once a frame: the pacer's bucket holds two polling intervals' worth, so a sender polled every
/// 16 ms still sends its whole paced share each frame (a bucket of a millisecond's worth would let 2 of 16 go),
/// and a sender polled every millisecond gets no burst of more than two.
#[test]
fn the_pacer_lets_a_frame_polled_sender_send_its_share() {
    let rate = 1.0 / 1_000.0; // a datagram per millisecond
    for (interval, most_at_once) in [(16_000, 32), (1_000, 2)] {
        let mut pacer = Pacer::default();
        let mut sent = 0;
        for frame in 0..100u64 {
            let now = frame * interval;
            let mut this_frame = 0;
            while pacer.take(now, Some(rate), interval).is_ok() {
                this_frame += 1;
                assert!(
                    this_frame <= most_at_once,
                    "more than {most_at_once} at once"
                );
            }
            sent += this_frame;
        }
        // 100 frames of `interval`, at one datagram a millisecond, plus the first frame's full bucket.
        let expected = 100 * interval / 1_000 + most_at_once - interval / 1_000;
        assert!(
            sent.abs_diff(expected) <= 1,
            "polled every {interval} us: {sent} sent, {expected} expected"
        );
        // Once the bucket is empty, the next token is named.
        let last = 99 * interval;
        let due = pacer.take(last, Some(rate), interval).unwrap_err();
        assert!(due > last && due <= last + 1_000, "{due}");
    }
    // Not paced (slow start): always yes.
    let mut pacer = Pacer::default();
    assert!((0..1_000).all(|_| pacer.take(0, None, 1_000).is_ok()));
}
