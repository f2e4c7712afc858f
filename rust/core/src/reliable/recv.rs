//! The receiving half: buffers datagrams that arrive out of order, delivers fragments in sequence order,
//! reassembles messages, and says what to acknowledge.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use super::packet::{Acks, Fragment};
use super::seq::Seq;
use super::ReliableError;
use crate::link::Micros;

/// The most arrivals remembered for reporting; beyond this (a flood of duplicates), the excess is reported by
/// later acknowledgements or sent again.
const MAX_UNREPORTED: usize = 4096;

/// What became of one arriving fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// New: stored, and delivered if it was next.
    New,
    /// Already received (or already delivered): ignored.
    Duplicate,
    /// Too far ahead of the next expected datagram, or no room for more unread messages: dropped
    /// unacknowledged, so the sender sends it again later.
    NoRoom,
}

#[derive(Debug)]
struct Assembly {
    expected: usize,
    bytes: BytesMut,
}

/// The receiving half of a connection.
#[derive(Debug)]
pub struct Receiver {
    next_expected: Seq,
    /// Slot `i` holds the datagram `next_expected + i` if it has arrived.
    window: VecDeque<Option<Fragment>>,
    window_limit: usize,
    assembling: Option<Assembly>,
    ready: VecDeque<Bytes>,
    ready_bytes: usize,
    ready_limit: usize,
    max_message_size: usize,
    /// The largest sequence number received so far.
    largest_received: Option<Seq>,
    /// Datagrams that arrived since they were last reported in acknowledgements.
    unreported: Vec<Seq>,
    /// The datagram that arrived last, and when.
    most_recent: Option<(Seq, Micros)>,
}

impl Receiver {
    /// A receiver expecting `first` next, buffering at most `window_limit` datagrams ahead of it and refusing
    /// new data while `ready_limit` bytes of delivered messages wait unread.
    pub fn new(
        first: Seq,
        window_limit: usize,
        ready_limit: usize,
        max_message_size: usize,
    ) -> Self {
        Self {
            next_expected: first,
            window: VecDeque::new(),
            window_limit,
            assembling: None,
            ready: VecDeque::new(),
            ready_bytes: 0,
            ready_limit,
            max_message_size,
            largest_received: None,
            unreported: Vec::new(),
            most_recent: None,
        }
    }

    /// Changes the largest message accepted from now on.
    pub fn set_max_message_size(&mut self, max: usize) {
        self.max_message_size = max;
    }

    /// Takes in one fragment. An error means the peer broke the protocol (a message over the size limit, or
    /// fragments that do not add up); the connection must fail.
    pub fn receive(&mut self, now: Micros, fragment: Fragment) -> Result<Arrival, ReliableError> {
        if self
            .largest_received
            .is_none_or(|largest| largest.is_before(fragment.seq))
        {
            self.largest_received = Some(fragment.seq);
        }
        self.most_recent = Some((fragment.seq, now));
        if self.unreported.len() < MAX_UNREPORTED {
            self.unreported.push(fragment.seq);
        }
        if fragment.seq.is_before(self.next_expected) {
            return Ok(Arrival::Duplicate);
        }
        let offset = fragment.seq.since(self.next_expected) as usize;
        if offset >= self.window_limit || self.ready_bytes >= self.ready_limit {
            return Ok(Arrival::NoRoom);
        }
        if self.window.len() <= offset {
            self.window.resize(offset + 1, None);
        }
        if self.window[offset].is_some() {
            return Ok(Arrival::Duplicate);
        }
        self.window[offset] = Some(fragment);
        while let Some(Some(_)) = self.window.front() {
            if let Some(Some(next)) = self.window.pop_front() {
                self.next_expected = self.next_expected.plus(1);
                self.assemble(next)?;
            }
        }
        Ok(Arrival::New)
    }

    fn assemble(&mut self, fragment: Fragment) -> Result<(), ReliableError> {
        match (fragment.message_len, self.assembling.is_some()) {
            (Some(len), false) => {
                let len = len as usize;
                if len > self.max_message_size {
                    return Err(ReliableError::PeerMessageTooLarge {
                        size: len,
                        max: self.max_message_size,
                    });
                }
                let mut bytes = BytesMut::with_capacity(len);
                bytes.extend_from_slice(&fragment.payload);
                self.assembling = Some(Assembly {
                    expected: len,
                    bytes,
                });
            }
            (None, true) => {
                if let Some(assembly) = self.assembling.as_mut() {
                    if assembly.bytes.len() + fragment.payload.len() > assembly.expected {
                        return Err(ReliableError::ProtocolViolation(
                            "a message's fragments are longer than its stated length",
                        ));
                    }
                    assembly.bytes.extend_from_slice(&fragment.payload);
                }
            }
            (Some(_), true) => {
                return Err(ReliableError::ProtocolViolation(
                    "a message started before the previous one was complete",
                ))
            }
            (None, false) => {
                return Err(ReliableError::ProtocolViolation(
                    "a message continued without having started",
                ))
            }
        }
        if self
            .assembling
            .as_ref()
            .is_some_and(|a| a.bytes.len() == a.expected)
        {
            if let Some(done) = self.assembling.take() {
                self.ready_bytes += done.bytes.len();
                self.ready.push_back(done.bytes.freeze());
            }
        }
        Ok(())
    }

    /// The next complete message, in order.
    pub fn take_message(&mut self) -> Option<Bytes> {
        let message = self.ready.pop_front()?;
        self.ready_bytes -= message.len();
        Some(message)
    }

    /// How many complete messages wait to be taken.
    pub fn ready_count(&self) -> usize {
        self.ready.len()
    }

    /// Whether some arrivals have not been reported in acknowledgements yet.
    pub fn has_unreported(&self) -> bool {
        !self.unreported.is_empty()
    }

    /// What to acknowledge at `now`: everything before `next_expected`; a block of 65 datagrams ending at `top`
    /// (the highest arrival not yet reported, or else the largest received), with a bit for each that has
    /// arrived; and which datagram arrived last and how long ago. Arrivals in the block count as reported;
    /// while some remain unreported, the connection sends further acknowledgements.
    pub fn acks(&mut self, now: Micros) -> Acks {
        let before_next = Seq(self.next_expected.0.wrapping_sub(1));
        let highest_unreported =
            self.unreported
                .iter()
                .copied()
                .reduce(|a, b| if a.is_before(b) { b } else { a });
        let top = match highest_unreported.or(self.largest_received) {
            Some(seq) if before_next.is_before(seq) => seq,
            _ => before_next,
        };
        let mut bits = 0u64;
        for i in 0..64u32 {
            let seq = Seq(top.0.wrapping_sub(1 + i));
            let received = if seq.is_before(self.next_expected) {
                true
            } else {
                let offset = seq.since(self.next_expected) as usize;
                self.window.get(offset).is_some_and(Option::is_some)
            };
            if received {
                bits |= 1 << i;
            }
        }
        // Everything from `top - 64` to `top` is now reported, and so is everything before `next_expected`.
        let bottom = Seq(top.0.wrapping_sub(64));
        let next = self.next_expected;
        self.unreported.retain(|seq| {
            !(seq.is_before(next) || (!seq.is_before(bottom) && !top.is_before(*seq)))
        });
        let (recent, delay_us) = self.most_recent.map_or((before_next, 0), |(seq, at)| {
            (seq, now.saturating_sub(at).min(u32::MAX as Micros) as u32)
        });
        Acks {
            next,
            largest: top,
            bits,
            recent,
            delay_us,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frag(seq: u32, message_len: Option<u32>, payload: &[u8]) -> Fragment {
        Fragment {
            seq: Seq(seq),
            message_len,
            payload: Bytes::copy_from_slice(payload),
        }
    }

    fn receiver() -> Receiver {
        Receiver::new(Seq(0), 16, 1 << 20, 1000)
    }

    #[test]
    fn reassembles_in_order_whatever_the_arrival_order() {
        let mut r = receiver();
        assert_eq!(r.receive(0, frag(2, None, b"ld")).unwrap(), Arrival::New);
        assert_eq!(r.receive(0, frag(1, None, b"o wor")).unwrap(), Arrival::New);
        assert_eq!(r.ready_count(), 0);
        let acks = r.acks(5);
        assert_eq!(
            (acks.next, acks.largest, acks.recent, acks.delay_us),
            (Seq(0), Seq(2), Seq(1), 5)
        );
        assert_eq!(
            acks.bits & 0b11,
            0b01,
            "1 arrived (bit 0), 0 did not (bit 1)"
        );
        r.receive(0, frag(0, Some(11), b"hell")).unwrap();
        assert_eq!(r.take_message().as_deref(), Some(&b"hello world"[..]));
        let acks = r.acks(7);
        assert_eq!(
            (acks.next, acks.largest, acks.recent, acks.delay_us),
            (Seq(3), Seq(2), Seq(0), 7)
        );
    }

    #[test]
    fn duplicates_are_recognised_before_and_after_delivery() {
        let mut r = receiver();
        r.receive(0, frag(1, Some(1), b"b")).unwrap();
        assert_eq!(
            r.receive(0, frag(1, Some(1), b"b")).unwrap(),
            Arrival::Duplicate
        );
        r.receive(0, frag(0, Some(1), b"a")).unwrap();
        assert_eq!(
            r.receive(0, frag(0, Some(1), b"a")).unwrap(),
            Arrival::Duplicate
        );
        assert_eq!(r.take_message().as_deref(), Some(&b"a"[..]));
        assert_eq!(r.take_message().as_deref(), Some(&b"b"[..]));
        assert_eq!(r.take_message(), None);
    }

    #[test]
    fn empty_messages_are_delivered() {
        let mut r = receiver();
        r.receive(0, frag(0, Some(0), b"")).unwrap();
        assert_eq!(r.take_message().as_deref(), Some(&b""[..]));
    }

    #[test]
    fn far_ahead_or_unread_backlog_means_no_room() {
        let mut r = Receiver::new(Seq(0), 4, 3, 1000);
        assert_eq!(
            r.receive(0, frag(4, Some(1), b"x")).unwrap(),
            Arrival::NoRoom
        );
        r.receive(0, frag(0, Some(3), b"abc")).unwrap();
        assert_eq!(
            r.receive(0, frag(1, Some(1), b"d")).unwrap(),
            Arrival::NoRoom,
            "3 unread bytes fill it"
        );
        r.take_message();
        assert_eq!(r.receive(0, frag(1, Some(1), b"d")).unwrap(), Arrival::New);
    }

    #[test]
    fn protocol_violations_are_errors() {
        let mut r = receiver();
        assert!(
            r.receive(0, frag(0, None, b"x")).is_err(),
            "continuation first"
        );
        let mut r = receiver();
        assert!(matches!(
            r.receive(0, frag(0, Some(5000), b"x")),
            Err(ReliableError::PeerMessageTooLarge {
                size: 5000,
                max: 1000
            })
        ));
        let mut r = receiver();
        r.receive(0, frag(0, Some(2), b"a")).unwrap();
        assert!(
            r.receive(0, frag(1, Some(1), b"b")).is_err(),
            "a new start before the end"
        );
        let mut r = receiver();
        r.receive(0, frag(0, Some(2), b"a")).unwrap();
        assert!(
            r.receive(0, frag(1, None, b"bc")).is_err(),
            "longer than stated"
        );
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut r = Receiver::new(Seq(u32::MAX), 16, 1 << 20, 1000);
        r.receive(0, frag(0, None, b"b")).unwrap();
        r.receive(0, frag(u32::MAX, Some(2), b"a")).unwrap();
        assert_eq!(r.take_message().as_deref(), Some(&b"ab"[..]));
        assert_eq!(r.acks(0).next, Seq(1));
    }
}
