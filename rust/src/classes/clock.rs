//! The time source of peers that simulate or schedule: real monotonic time, or a manual clock for tests; and the
//! seed of what must differ from run to run (connection ids), from the OS.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Instant;

use peerkit_core::link::Micros;

/// The latest time a manual clock reaches: 2^53 microseconds (about 285 years), so every time stays exact as a
/// float of milliseconds, and sums of it with any delay the link model adds stay far from overflowing.
pub(crate) const MAX_CLOCK_US: Micros = 1 << 53;

/// Where a peer reads time from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Clock {
    /// Monotonic real time: `offset_us` plus the time elapsed since `origin`.
    Real { origin: Instant, offset_us: Micros },
    /// Time that moves only through `advance`.
    Manual { now_us: Micros },
}

impl Clock {
    /// Real time, starting at 0 now.
    pub(crate) fn real() -> Self {
        Clock::Real {
            origin: Instant::now(),
            offset_us: 0,
        }
    }

    pub(crate) fn now_us(&self) -> Micros {
        match self {
            Clock::Real { origin, offset_us } => offset_us + origin.elapsed().as_micros() as Micros,
            Clock::Manual { now_us } => *now_us,
        }
    }

    pub(crate) fn is_manual(&self) -> bool {
        matches!(self, Clock::Manual { .. })
    }

    /// Switches kind. Real time continues from the manual clock's time; the manual clock starts at 0.
    /// Returns the old clock's time and the new clock's, for moving what is scheduled across.
    pub(crate) fn switch(&mut self, manual: bool) -> (Micros, Micros) {
        let now_us = self.now_us();
        *self = if manual {
            Clock::Manual { now_us: 0 }
        } else {
            Clock::Real {
                origin: Instant::now(),
                offset_us: now_us,
            }
        };
        (now_us, self.now_us())
    }

    /// Moves a manual clock forward by `msec`; refuses (with the reason) for real time, a bad amount, or an
    /// amount that would move it past [`MAX_CLOCK_US`].
    pub(crate) fn advance(&mut self, msec: f64) -> Result<(), &'static str> {
        if !(msec.is_finite() && msec >= 0.0) {
            return Err("msec must be a finite number >= 0");
        }
        match self {
            Clock::Manual { now_us } => {
                let step = msec * 1000.0;
                if step > (MAX_CLOCK_US - *now_us) as f64 {
                    return Err(
                        "it would move the clock past its end (2^53 microseconds, about 285 years)",
                    );
                }
                *now_us += step.round() as Micros;
                Ok(())
            }
            Clock::Real { .. } => Err("the clock is real time; set use_manual_clock = true first"),
        }
    }
}

/// 64 random bits from the OS (through the standard library's randomly keyed hasher), for seeds that must differ
/// between runs and processes: a ReliablePacketPeer's connection id under the real clock.
pub(crate) fn os_seed() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(Instant::now().elapsed().as_nanos());
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_advanced_and_refuses_bad_steps() {
        let mut clock = Clock::real();
        assert!(!clock.is_manual());
        assert!(clock.advance(1.0).is_err(), "real time cannot be advanced");
        let (_, start) = clock.switch(true);
        assert_eq!((start, clock.now_us()), (0, 0));
        clock.advance(1.5).unwrap();
        assert_eq!(clock.now_us(), 1_500);
        for bad in [-1.0, f64::NAN, f64::INFINITY] {
            assert!(clock.advance(bad).is_err(), "{bad} refused");
        }
        assert_eq!(clock.now_us(), 1_500, "a refused step changes nothing");
        let too_far = (MAX_CLOCK_US as f64) / 1000.0;
        assert!(clock.advance(too_far).is_err());
        assert_eq!(clock.now_us(), 1_500);
    }

    #[test]
    fn switching_to_real_time_goes_on_from_the_manual_time() {
        let mut clock = Clock::real();
        clock.switch(true);
        clock.advance(250.0).unwrap();
        let (old, new) = clock.switch(false);
        assert_eq!(old, 250_000);
        assert!(
            new >= 250_000 && clock.now_us() >= new,
            "real time continues, never backwards"
        );
        let later = clock.now_us();
        assert!(clock.now_us() >= later);
    }

    #[test]
    fn os_seeds_differ() {
        assert_ne!(os_seed(), os_seed());
    }
}
