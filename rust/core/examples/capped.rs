//! Prints the capped-link rows (issue 14) from `peerkit_core::sim`: `cargo run --release -p peerkit-core
//! --example capped [NAME] [--max-window N,N,...] [--seed N]`. Each row twice: over seconds 2-20 (the
//! benchmark's figure) and over seconds 20-60, after several drains (the long run), both with seed 1 (or N: the
//! link models' losses and jitter come from it). NAME keeps the rows whose name contains it. With
//! `--max-window`, the rows are run again with the window capped at each N datagrams (what a window of about
//! that size gives, whatever the controller would choose). With `--even-rate P,P,...`, each row is followed by
//! what an ideal sender sending evenly at each P% of the bandwidth would get (`sim::even_rate_bound`: one that
//! knows the link's rate exactly but not which datagrams the link will lose).

use peerkit_core::reliable::ReliableConfig;
use peerkit_core::sim::{
    capped_link, capped_rows, even_rate_bound, saturate_with, share, Saturation,
};

fn main() {
    let mut only = None;
    let mut windows: Vec<usize> = Vec::new();
    let mut rates: Vec<f64> = Vec::new();
    let mut seed = 1;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--max-window" {
            windows = list_of(
                args.next(),
                "--max-window",
                "window sizes, such as 30,32,34",
            );
        } else if arg == "--even-rate" {
            rates = list_of(
                args.next(),
                "--even-rate",
                "sending rates in % of the bandwidth, such as 100,105",
            );
        } else if arg == "--seed" {
            seed = match args.next().and_then(|n| n.parse().ok()) {
                Some(n) => n,
                None => {
                    eprintln!("capped: --seed takes a number");
                    std::process::exit(2);
                }
            };
        } else {
            only = Some(arg);
        }
    }
    println!("| row | goodput / capacity | standing queue | retransmitted | seconds 20-60: goodput | queue |");
    for (name, link) in capped_rows() {
        if only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        let uncapped = ReliableConfig::default().max_congestion_window;
        for (label, cap) in windows
            .iter()
            .map(|&w| (format!("{name}, window at most {w}"), w))
            .chain([(name.to_string(), uncapped)])
        {
            row(
                &label,
                saturate_with(&link, cap, 20, 2, seed),
                saturate_with(&link, cap, 60, 20, seed),
            );
        }
        for &rate in &rates {
            row(
                &format!("{name}, ideal sender evenly at {rate}%"),
                even_rate_bound(&link, rate, 20, 2, seed),
                even_rate_bound(&link, rate, 60, 20, seed),
            );
        }
    }

    let shared = capped_link(1_000_000, 0.0, 30.0);
    for (name, stagger) in [
        ("two connections at once", 0),
        ("two connections, 3 s apart", 3),
    ] {
        if only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        let s = share(&shared, 2, stagger, 0, 20, 2, seed);
        println!(
            "| 1 MB/s, 30 ms, {name} | {:.1}% | shares {:.0}% / {:.0}% |",
            s.goodput_percent,
            100.0 * s.shares[0],
            100.0 * s.shares[1]
        );
    }
    if only.as_deref().is_none_or(|o| "unreliable".contains(o)) {
        let s = share(&shared, 1, 0, 60, 20, 2, seed);
        println!(
            "| 1 MB/s, 30 ms, 60 Hz unreliable beside a full stream | {:.1}% | unreliable delay over the link's: p50 {:.1} ms, p99 {:.1} ms |",
            s.goodput_percent, s.unreliable_extra_ms.0, s.unreliable_extra_ms.1
        );
    }
}

/// The comma-separated numbers of an option's value; exits with a message naming the option and `what` it
/// takes when there are none.
fn list_of<T: std::str::FromStr>(value: Option<String>, option: &str, what: &str) -> Vec<T> {
    let list: Vec<T> = value
        .unwrap_or_default()
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    if list.is_empty() {
        eprintln!("capped: {option} takes a list of {what}");
        std::process::exit(2);
    }
    list
}

/// Prints one row: seconds 2-20 (`s`) with its retransmissions, and seconds 20-60 (`long`).
fn row(label: &str, s: Saturation, long: Saturation) {
    println!(
        "| {label} | {:.1}% | {:.1} ms | {:.1}% | {:.1}% | {:.1} ms |",
        s.goodput_percent,
        s.standing_queue_ms,
        100.0 * s.retransmission_ratio,
        long.goodput_percent,
        long.standing_queue_ms
    );
}
