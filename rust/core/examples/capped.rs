//! Prints the capped-link rows (issue 14) from `peerkit_core::sim`: `cargo run --release -p peerkit-core
//! --example capped`.

use peerkit_core::link::LinkConfig;
use peerkit_core::sim::{capped_link as row, saturate, share};

fn main() {
    let rows: Vec<(&str, LinkConfig)> = vec![
        ("1 MB/s, 0%, 50 ms", row(1_000_000, 0.0, 50.0)),
        ("1 MB/s, 2%, 30 ms", row(1_000_000, 0.02, 30.0)),
        ("1 MB/s, 10%, 50 ms", row(1_000_000, 0.10, 50.0)),
        ("10 MB/s, 10%, 50 ms", row(10_000_000, 0.10, 50.0)),
        ("125 kB/s, 0%, 10 ms", row(125_000, 0.0, 10.0)),
        ("100 kB/s, 0%, 10 ms", row(100_000, 0.0, 10.0)),
        ("100 kB/s, 10%, 150 ms", row(100_000, 0.10, 150.0)),
        ("10 MB/s, 0%, 10 ms", row(10_000_000, 0.0, 10.0)),
        ("300 kB/s, 5%, 80 ms", row(300_000, 0.05, 80.0)),
        (
            "1 MB/s, jitter 10 ms, 50 ms",
            LinkConfig {
                jitter_ms: 10.0,
                ..row(1_000_000, 0.0, 50.0)
            },
        ),
        (
            "1 MB/s, Gilbert-Elliott bursts, 50 ms",
            LinkConfig {
                burst_enter_probability: 0.01,
                burst_exit_probability: 0.3,
                loss_in_bad_state: 0.5,
                ..row(1_000_000, 0.0, 50.0)
            },
        ),
    ];
    println!("| row | goodput / capacity | standing queue | retransmitted |");
    let only = std::env::args().nth(1);
    for (name, link) in rows {
        if only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        let s = saturate(&link, 20, 2, 1);
        println!(
            "| {name} | {:.1}% | {:.1} ms | {:.1}% |",
            s.goodput_percent,
            s.standing_queue_ms,
            100.0 * s.retransmission_ratio
        );
    }

    let shared = row(1_000_000, 0.0, 30.0);
    for (name, stagger) in [
        ("two connections at once", 0),
        ("two connections, 3 s apart", 3),
    ] {
        if only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        let s = share(&shared, 2, stagger, 0, 20, 2, 1);
        println!(
            "| 1 MB/s, 30 ms, {name} | {:.1}% | shares {:.0}% / {:.0}% |",
            s.goodput_percent,
            100.0 * s.shares[0],
            100.0 * s.shares[1]
        );
    }
    if only.as_deref().is_none_or(|o| "unreliable".contains(o)) {
        let s = share(&shared, 1, 0, 60, 20, 2, 1);
        println!(
            "| 1 MB/s, 30 ms, 60 Hz unreliable beside a full stream | {:.1}% | unreliable delay over the link's: p50 {:.1} ms, p99 {:.1} ms |",
            s.goodput_percent, s.unreliable_extra_ms.0, s.unreliable_extra_ms.1
        );
    }
}
