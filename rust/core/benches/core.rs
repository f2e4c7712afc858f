//! `cargo bench -p peerkit-core`: the Godot-free core on its own, without any engine call in the way.
//! Each figure is the median of RUNS timed runs after one warm-up run. With PEERKIT_BENCH_JSON=path, the figures
//! are also written there as a JSON object.

use std::hint::black_box;
use std::time::Instant;

use bytes::Bytes;
use peerkit_core::io::udp::{QueueLimits, UdpEndpoint};
use peerkit_core::link::{LinkConfig, LinkModel};
use peerkit_core::pair::{pair, PairConfig};
use peerkit_core::reliable::{Connection, ReliableConfig};
use peerkit_core::sim::{self, capped_link as capped, exchange};

const RUNS: usize = 5;

/// One step of two connections over two simulated links at `now`: what is due arrives, timers run, and what each
/// side sends goes onto its link (`links[0]` carries `sides[0]`'s datagrams to `sides[1]`, `links[1]` back).
fn median_ns_per_op(ops: u64, mut body: impl FnMut(u64)) -> f64 {
    body(ops);
    let mut samples: Vec<f64> = (0..RUNS)
        .map(|_| {
            let started = Instant::now();
            body(ops);
            started.elapsed().as_nanos() as f64 / ops as f64
        })
        .collect();
    samples.sort_by(|a, b| a.total_cmp(b));
    samples[RUNS / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: then run a token amount.
    let quick = !std::env::args().any(|a| a == "--bench");
    let scale = if quick { 100 } else { 1 };
    let mut figures: Vec<(String, f64, &str)> = Vec::new();
    let mut record = |name: &str, value: f64, unit: &'static str| {
        println!("  {name:<56} {value:>12.1} {unit}");
        figures.push((name.to_string(), value, unit));
    };
    println!("peerkit-core benchmarks, median of {RUNS} runs");

    let packet = vec![7u8; 64];
    let (mut a, mut b) = pair(PairConfig {
        capacity: 1024,
        max_packet_size: 1024,
    });
    let ns = median_ns_per_op(1_000_000 / scale, |n| {
        for _ in 0..n {
            a.send(&packet).unwrap();
            black_box(b.recv().unwrap());
        }
    });
    record("pair 64 B send+recv", ns, "ns");

    // For comparison: what a packet would cost in its own allocation (packets up to 64 B travel inside the queue
    // slot instead), and the lock-free queue's push and pop alone.
    let ns = median_ns_per_op(1_000_000 / scale, |n| {
        for _ in 0..n {
            black_box(Bytes::copy_from_slice(black_box(&packet)));
        }
    });
    record(
        "  compare: a 64 B buffer allocated + copied + freed",
        ns,
        "ns",
    );
    let (tx, rx) = crossbeam_channel::bounded::<u64>(1024);
    let ns = median_ns_per_op(1_000_000 / scale, |n| {
        for i in 0..n {
            tx.try_send(i).unwrap();
            black_box(rx.try_recv().unwrap());
        }
    });
    record("  compare: the bounded queue's push + pop alone", ns, "ns");

    let mut link = LinkModel::new(LinkConfig::default(), 1);
    let bytes = Bytes::from(packet.clone());
    let mut now = 0;
    let ns = median_ns_per_op(1_000_000 / scale, |n| {
        for _ in 0..n {
            now += 1;
            link.send(now, bytes.clone());
            black_box(link.poll(now));
        }
    });
    record("link model, no impairment, send+poll", ns, "ns");

    for held in [100u64, 100_000] {
        let config = LinkConfig {
            latency_ms: held as f64 / 1000.0,
            queue_limit: held as usize * 2,
            ..LinkConfig::default()
        };
        let mut link = LinkModel::new(config, 2);
        let mut now = 0;
        for _ in 0..held {
            now += 1;
            link.send(now, bytes.clone());
        }
        let ns = median_ns_per_op(1_000_000 / scale, |n| {
            for _ in 0..n {
                now += 1;
                link.send(now, bytes.clone());
                black_box(link.poll(now));
            }
        });
        record(&format!("link model, {held} held, send+poll"), ns, "ns");
    }

    // How the receiving side takes each datagram: from a reused buffer (`handle_datagram`), or, as an inner peer
    // hands it over, in a `Bytes` of its own: with the DATA payload copied out of it, or kept as a slice.
    #[derive(Clone, Copy, PartialEq)]
    enum Take {
        Buffer,
        BytesCopied,
        BytesSliced,
    }
    // Two connections in memory, `n` messages of `message` from one to the other; returns ns per message.
    let pair_ns = |message: &Bytes, count: u64, take: Take| {
        median_ns_per_op(count, |n| {
            let mut x = Connection::new(ReliableConfig::default(), 0, 1);
            let mut y = Connection::new(ReliableConfig::default(), 0, 2);
            let mut buf = Vec::with_capacity(1500);
            let (mut sent, mut received, mut now) = (0, 0, 0);
            while received < n {
                while sent < n && x.send(message.clone()).is_ok() {
                    sent += 1;
                }
                now += 10;
                x.handle_timeout(now);
                while x.poll_transmit(now, &mut buf) {
                    match take {
                        Take::Buffer => y.handle_datagram(now, &buf),
                        Take::BytesCopied => y.handle_datagram(now, &Bytes::copy_from_slice(&buf)),
                        Take::BytesSliced => {
                            y.handle_datagram_bytes(now, &Bytes::copy_from_slice(&buf))
                        }
                    }
                }
                y.handle_timeout(now);
                while y.poll_transmit(now, &mut buf) {
                    x.handle_datagram(now, &buf);
                }
                while y.recv().is_some() {
                    received += 1;
                }
            }
        })
    };
    for size in [1024usize, 65536] {
        let message = Bytes::from(vec![3u8; size]);
        let count = if size == 1024 { 100_000 } else { 2_000 } / scale;
        let ns = pair_ns(&message, count, Take::Buffer);
        record(
            &format!("reliable connection pair, {size} B messages, per message"),
            ns,
            "ns",
        );
        record(
            &format!("reliable connection pair, {size} B messages, goodput"),
            size as f64 * 1000.0 / ns,
            "MB/s",
        );
        // Copies per received datagram, side by side: the payload copied out of the datagram's `Bytes`, or sliced.
        for (take, how) in [
            (Take::BytesCopied, "payload copied"),
            (Take::BytesSliced, "payload sliced"),
        ] {
            record(
                &format!("reliable pair, {size} B, datagrams as Bytes, {how}, per message"),
                pair_ns(&message, count, take),
                "ns",
            );
        }
    }

    // Goodput over a lossy path on a virtual clock (what bench.gd measures through the classes), and what the
    // window limit has to do with it: simulated seconds for 20,000 messages of 1 KiB, 10% loss, 50 ms each way,
    // both peers polled every millisecond.
    for (loss, window) in [(0.1, 1024usize), (0.1, 4096), (0.3, 1024), (0.3, 4096)] {
        let link = LinkConfig {
            latency_ms: 50.0,
            loss,
            ..LinkConfig::default()
        };
        let config = ReliableConfig {
            max_message_size: 1024,
            max_window: window,
            ..ReliableConfig::default()
        };
        let (mut x, mut y) = (
            Connection::new(config.clone(), 0, 1),
            Connection::new(config, 0, 2),
        );
        let (mut x_to_y, mut y_to_x): (LinkModel, LinkModel) =
            (LinkModel::new(link.clone(), 1), LinkModel::new(link, 2));
        let message = Bytes::from(vec![5u8; 1024]);
        let mut buf = Vec::with_capacity(1500);
        let total = 20_000 / scale;
        let (mut sent, mut received, mut now) = (0, 0, 0u64);
        while received < total && now < 600_000_000 {
            while sent < total && x.send(message.clone()).is_ok() {
                sent += 1;
            }
            now += 1_000;
            exchange(now, [&mut x, &mut y], [&mut x_to_y, &mut y_to_x], &mut buf);
            while y.recv().is_some() {
                received += 1;
            }
        }
        record(
            &format!(
                "reliable, {} loss, 50 ms each way, window {window}: simulated s for {total} x 1 KiB",
                loss
            ),
            now as f64 / 1e6,
            "s",
        );
    }

    // Reliable delivery at a capped link's limit (issue 14's rows, on simulated time, `peerkit_core::sim`): both
    // directions capped with a 1,000-packet queue, the sender keeping its buffer full of 1 KiB messages for 20
    // simulated s, both sides driven every millisecond. Goodput counts message bytes delivered after the first 2 s,
    // against the cap; the standing queue is the sender's smoothed RTT minus the configured round trip. The same
    // rows as `cargo run --release -p peerkit-core --example capped`, and deterministic.
    let (seconds, warm_up) = if quick { (2, 1) } else { (20, 2) };
    for (name, link) in sim::capped_rows() {
        let s = sim::saturate(&link, seconds, warm_up, 1);
        let row = format!("reliable at a capped link: {name}");
        record(
            &format!("{row}: goodput / capacity"),
            s.goodput_percent,
            "%",
        );
        record(&format!("{row}: standing queue"), s.standing_queue_ms, "ms");
    }
    let shared = capped(1_000_000, 0.0, 30.0);
    for (name, stagger) in [("together", 0), ("3 s apart", 3)] {
        let s = sim::share(&shared, 2, stagger, 0, seconds, warm_up, 1);
        record(
            &format!(
                "two reliable connections on 1000 kB/s, 30 ms, started {name}: first one's share"
            ),
            100.0 * s.shares[0],
            "%",
        );
    }
    let s = sim::share(&shared, 1, 0, 60, seconds, warm_up, 1);
    record(
        "60 Hz unreliable beside a full reliable stream (1000 kB/s, 30 ms): delay over the link's, p50",
        s.unreliable_extra_ms.0,
        "ms",
    );
    record(
        "60 Hz unreliable beside a full reliable stream (1000 kB/s, 30 ms): delay over the link's, p99",
        s.unreliable_extra_ms.1,
        "ms",
    );

    // UDP on 127.0.0.1: is batching (recvmmsg) worth it? It would cut the receive side's cost per datagram; it
    // matters only if one receive call per datagram cannot keep up with what arrives.
    let sink = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let sink_addr = sink.local_addr().unwrap();
    let mut sender =
        UdpEndpoint::bind("127.0.0.1:0".parse().unwrap(), 0, QueueLimits::default()).unwrap();
    let ns = median_ns_per_op(20_000 / scale, |n| {
        for _ in 0..n {
            sender.send_to(&packet, sink_addr).unwrap();
        }
    });
    record("udp send 64 B, per datagram (one send call)", ns, "ns");
    let reader = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )
    .unwrap();
    let _ = reader.set_recv_buffer_size(8 << 20);
    reader
        .bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
    let reader: std::net::UdpSocket = reader.into();
    let reader_addr = reader.local_addr().unwrap();
    let batch = 2_000 / scale as usize;
    let mut buf = vec![0u8; 65_536];
    let mut samples: Vec<f64> = (0..=RUNS)
        .map(|_| {
            for _ in 0..batch {
                sender.send_to(&packet, reader_addr).unwrap();
            }
            let started = Instant::now();
            for _ in 0..batch {
                black_box(reader.recv_from(&mut buf).unwrap());
            }
            started.elapsed().as_nanos() as f64 / batch as f64
        })
        .skip(1)
        .collect();
    samples.sort_by(|a, b| a.total_cmp(b));
    record(
        "udp receive 64 B, per datagram (one receive call, queued)",
        samples[RUNS / 2],
        "ns",
    );

    // How soon `wait` returns after a datagram arrives, when the caller had been reading (so the receive thread
    // was napping): the median of 50 arrivals, each sent 0.5 ms into the wait from another thread.
    let mut waiter =
        UdpEndpoint::bind("127.0.0.1:0".parse().unwrap(), 0, QueueLimits::default()).unwrap();
    let to = waiter.local_addr().unwrap();
    let mut latencies: Vec<f64> = (0..50 / scale.min(50))
        .map(|_| {
            while waiter.recv().is_some() {}
            let sent_at = std::sync::Arc::new(std::sync::Mutex::new(None));
            let stamp = std::sync::Arc::clone(&sent_at);
            let sender = std::thread::spawn(move || {
                let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                std::thread::sleep(std::time::Duration::from_micros(500));
                *stamp.lock().unwrap() = Some(Instant::now());
                socket.send_to(b"ping", to).unwrap();
            });
            waiter.wait(Some(std::time::Duration::from_secs(1)));
            let woke = Instant::now();
            sender.join().unwrap();
            let sent = sent_at.lock().unwrap().unwrap_or(woke);
            woke.duration_since(sent).as_nanos() as f64 / 1000.0
        })
        .collect();
    latencies.sort_by(|a, b| a.total_cmp(b));
    record(
        "udp wait(): wake-up after a datagram arrives (median)",
        latencies[latencies.len() / 2],
        "us",
    );

    if let Ok(path) = std::env::var("PEERKIT_BENCH_JSON") {
        let body: Vec<String> = figures
            .iter()
            .map(|(name, value, unit)| format!("  \"{name} ({unit})\": {value:.3}"))
            .collect();
        if let Err(e) = std::fs::write(&path, format!("{{\n{}\n}}\n", body.join(",\n"))) {
            eprintln!("cannot write {path}: {e}");
            std::process::exit(1);
        }
    }
}
