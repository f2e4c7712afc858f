//! Prints the capped-link rows (issue 14) from `peerkit_core::sim`: `cargo run --release -p peerkit-core
//! --example capped`.

use peerkit_core::sim::{capped_link, capped_rows, saturate, share};

fn main() {
    println!("| row | goodput / capacity | standing queue | retransmitted |");
    let only = std::env::args().nth(1);
    for (name, link) in capped_rows() {
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

    let shared = capped_link(1_000_000, 0.0, 30.0);
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
