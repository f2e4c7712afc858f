//! The rule for a peer given work and then not polled: peerkit's peers move packets only when polled, so a script
//! that puts and never polls waits forever in silence. [`Unpolled`] tells its owner, once in the peer's life,
//! when work has waited [`UNPOLLED_WARNING_US`] for a poll.

use crate::link::Micros;

/// How long work may wait for a poll before the owner is told (once).
pub const UNPOLLED_WARNING_US: Micros = 1_000_000;

/// Whether work put since the last poll has waited long enough to say so.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Unpolled {
    /// When the first put since the last poll came.
    since: Option<Micros>,
    warned: bool,
}

impl Unpolled {
    /// The owner polled: work put before is no longer waiting.
    pub fn polled(&mut self) {
        self.since = None;
    }

    /// Work was put at `now`. Returns, once in the peer's life, how long work has waited for a poll when that is
    /// [`UNPOLLED_WARNING_US`] or more (a script that keeps putting without polling).
    pub fn put(&mut self, now: Micros) -> Option<Micros> {
        self.since.get_or_insert(now);
        self.due(now)
    }

    /// Whether work put since the last poll has waited [`UNPOLLED_WARNING_US`] by `now` and nobody was told yet:
    /// how long, once (for a check made later by a timer, when nothing more is put).
    pub fn due(&mut self, now: Micros) -> Option<Micros> {
        let waited = now.saturating_sub(self.since?);
        (waited >= UNPOLLED_WARNING_US && !std::mem::replace(&mut self.warned, true))
            .then_some(waited)
    }

    /// For a check a timer makes about [`UNPOLLED_WARNING_US`] after a put (the timer's clock is the game's,
    /// which may run a little ahead of this one): how long work has waited, if it still waits for a poll and
    /// nobody was told yet (once).
    pub fn still_waiting(&mut self, now: Micros) -> Option<Micros> {
        let since = self.since?;
        (!std::mem::replace(&mut self.warned, true)).then_some(now.saturating_sub(since))
    }

    /// Whether work waits for a poll now.
    pub fn is_waiting(&self) -> bool {
        self.since.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_left_unpolled_is_said_once_after_a_second_and_a_poll_resets_the_wait() {
        let mut u = Unpolled::default();
        assert_eq!(u.put(0), None);
        assert_eq!(u.due(999_999), None);
        u.polled();
        assert_eq!(u.due(5_000_000), None, "polled: nothing waits");
        assert_eq!(u.put(5_000_000), None);
        assert!(u.is_waiting());
        assert_eq!(u.due(6_000_000), Some(1_000_000));
        assert_eq!(u.due(7_000_000), None, "once");
        u.polled();
        assert_eq!(u.put(8_000_000), None);
        assert_eq!(u.put(9_500_000), None, "once in the peer's life");
    }

    #[test]
    fn a_timers_check_says_it_while_work_waits_and_only_once() {
        let mut u = Unpolled::default();
        assert_eq!(u.still_waiting(10), None, "nothing put");
        u.put(100);
        u.polled();
        assert_eq!(u.still_waiting(900_000), None, "polled since");
        u.put(1_000_000);
        assert_eq!(u.still_waiting(1_900_000), Some(900_000));
        assert_eq!(u.still_waiting(2_900_000), None, "once");
    }
}
