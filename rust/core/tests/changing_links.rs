//! Links whose rate changes (issue 31): a full sender on 1 MB/s with 1% loss and 30 ms each way, the cap falling
//! to a quarter or rising fourfold mid-run, at 10 s (when a scheduled drain is under way) and at 13 s (between
//! drains), seeds 1-8.
//!
//! Before: a fall during a drain left the drain reading the queue as the path, and the standing queue stayed at
//! 55-72 ms until the next drain 10 s later; a fall between drains settled in under a second already. Now a
//! drain that reads the path much slower than the last is confirmed by a second one a second later, the window
//! staying at the drain's half meanwhile.

use peerkit_core::sim::{capped_link, step_change};

#[test]
fn after_a_fall_to_a_quarter_the_queue_is_short_within_a_second_and_the_new_rate_is_used() {
    for at in [10, 13] {
        for seed in 1..=8 {
            let s = step_change(
                &capped_link(1_000_000, 0.01, 30.0),
                at,
                250_000,
                at + 12,
                seed,
            );
            assert!(
                s.queue_settled_after_s.is_some_and(|t| t <= 1.0)
                    && s.goodput_after_percent >= 85.0,
                "step at {at} s, seed {seed}: {s:?}"
            );
        }
    }
}

#[test]
fn after_a_fourfold_rise_the_new_rate_is_reached_within_two_seconds() {
    for at in [10, 13] {
        for seed in 1..=8 {
            let s = step_change(
                &capped_link(250_000, 0.01, 30.0),
                at,
                1_000_000,
                at + 12,
                seed,
            );
            assert!(
                s.rate_reached_after_s.is_some_and(|t| t <= 2.0),
                "step at {at} s, seed {seed}: {s:?}"
            );
        }
    }
}
