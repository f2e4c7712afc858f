//! The receiving half: buffers datagrams that arrive out of order, delivers each channel's fragments in that
//! channel's order (a datagram missing on one channel never holds back another), reassembles messages, says what
//! to acknowledge, and grants the sender credit.
//!
//! Two rules keep it honest. A datagram is acknowledged only once it is stored (or was delivered before), so
//! nothing the receiver dropped is ever reported as arrived. And the sender may only send what the receiver's
//! credit covers (its receive window, in bytes plus [`MESSAGE_CHARGE`] per message, from what the reader has
//! taken), so a stored datagram never has to be dropped for lack of room: data beyond the credit is a protocol
//! violation. What the receiver holds is therefore bounded in bytes, whatever the peer sends.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use super::packet::{Acks, Fragment, MESSAGE_CHARGE};
use super::seq::Seq;
use super::ReliableError;
use crate::link::Micros;

/// The most arrivals remembered for reporting; beyond this (a flood of duplicates), the excess is reported by
/// later acknowledgements or sent again.
pub const MAX_UNREPORTED: usize = 4096;

/// The most a message's reassembly buffer reserves before its fragments arrive.
const ASSEMBLY_START: usize = 4 * 1024;

/// What became of one arriving fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// New: stored, and delivered if it was next.
    New,
    /// Already received (or already delivered): ignored, and acknowledged again.
    Duplicate,
    /// Further ahead of the next expected datagram than the receiver buffers: dropped, not acknowledged, so the
    /// sender sends it again later. (A sender that keeps to its own window never causes this.)
    NoRoom,
}

#[derive(Debug)]
struct Assembly {
    expected: usize,
    bytes: BytesMut,
}

/// One channel's delivery state: the next of its datagrams to hand on, those that arrived ahead of it, and the
/// message being reassembled.
#[derive(Debug, Default)]
struct ChannelIn {
    next: Seq,
    early: std::collections::HashMap<u32, Fragment>,
    assembling: Option<Assembly>,
}

/// The receiving half of a connection.
#[derive(Debug)]
pub struct Receiver {
    next_expected: Seq,
    /// Slot `i` is true when the datagram `next_expected + i` has arrived.
    window: VecDeque<bool>,
    window_limit: usize,
    /// Delivery state of each channel used so far, by channel number.
    channels: Vec<ChannelIn>,
    /// Complete messages in the order they completed, with their channel.
    ready: VecDeque<(u8, Bytes)>,
    max_message_size: usize,
    /// The receive window: the most credit outstanding, in bytes plus `MESSAGE_CHARGE` per message.
    window_bytes: u64,
    /// Credit used by what is held: fragments in the window, the message being reassembled, unread messages.
    held: u64,
    /// Credit returned by the reader: the cost of every message taken so far.
    consumed: u64,
    /// The credit limit last sent to the peer.
    advertised: u64,
    /// The largest sequence number stored so far.
    largest_received: Option<Seq>,
    /// Datagrams that arrived since they were last reported in acknowledgements.
    unreported: Vec<Seq>,
    /// The datagram that arrived last, and when.
    most_recent: Option<(Seq, Micros)>,
    /// The peer asked for an answer (a PING), or the credit grew enough to be worth telling.
    ack_wanted: bool,
}

impl Receiver {
    /// A receiver expecting `first` next, buffering at most `window_limit` datagrams ahead of it, and granting
    /// `window_bytes` of credit (raised to hold at least one message of `max_message_size`).
    pub fn new(
        first: Seq,
        window_limit: usize,
        window_bytes: usize,
        max_message_size: usize,
    ) -> Self {
        Self {
            next_expected: first,
            window: VecDeque::new(),
            window_limit,
            channels: Vec::new(),
            ready: VecDeque::new(),
            max_message_size,
            window_bytes: Self::window_for(window_bytes, max_message_size),
            held: 0,
            consumed: 0,
            advertised: 0,
            largest_received: None,
            unreported: Vec::new(),
            most_recent: None,
            ack_wanted: false,
        }
    }

    /// The receive window granted for a configured buffer size: at least one largest message and its charge.
    pub fn window_for(window_bytes: usize, max_message_size: usize) -> u64 {
        (window_bytes as u64).max(max_message_size as u64 + MESSAGE_CHARGE)
    }

    /// The receive window, in credit (bytes plus `MESSAGE_CHARGE` per message).
    pub fn window_bytes(&self) -> u64 {
        self.window_bytes
    }

    /// Starts the sequence at `first` (the peer's announced initial sequence number). Only before anything
    /// has been stored.
    pub fn start_at(&mut self, first: Seq) {
        debug_assert!(self.largest_received.is_none());
        self.next_expected = first;
    }

    /// Changes the largest message accepted from now on (before the connection starts: the window follows).
    pub fn set_max_message_size(&mut self, max: usize, window_bytes: usize) {
        self.max_message_size = max;
        self.window_bytes = Self::window_for(window_bytes, max);
    }

    /// Notes that `seq` arrived at `now`; a redundant copy is not the most recent arrival (the sender takes its
    /// round-trip sample from that one, which must be a datagram's own first transmission).
    fn note_arrival(&mut self, now: Micros, seq: Seq, copy: bool) {
        if self
            .largest_received
            .is_none_or(|largest| largest.is_before(seq))
        {
            self.largest_received = Some(seq);
        }
        if !copy {
            self.most_recent = Some((seq, now));
        }
        if self.unreported.len() < MAX_UNREPORTED {
            self.unreported.push(seq);
        }
    }

    /// Takes in one fragment. An error means the peer broke the protocol (data beyond the credit, a message over
    /// the size limit, or fragments that do not add up); the connection must fail.
    pub fn receive(&mut self, now: Micros, fragment: Fragment) -> Result<Arrival, ReliableError> {
        let seq = fragment.seq;
        let copy = fragment.copy;
        if seq.is_before(self.next_expected) {
            // Delivered before: reporting it again is true.
            self.note_arrival(now, seq, copy);
            return Ok(Arrival::Duplicate);
        }
        let offset = seq.since(self.next_expected) as usize;
        if offset >= self.window_limit {
            return Ok(Arrival::NoRoom);
        }
        if self.window.get(offset).copied().unwrap_or(false) {
            self.note_arrival(now, seq, copy);
            return Ok(Arrival::Duplicate);
        }
        let cost = fragment.cost();
        if self.held + cost > self.window_bytes {
            return Err(ReliableError::ProtocolViolation(
                "the peer sent more data than the receive credit allows",
            ));
        }
        if self.window.len() <= offset {
            self.window.resize(offset + 1, false);
        }
        self.held += cost;
        self.window[offset] = true;
        self.note_arrival(now, seq, copy);
        while self.window.front() == Some(&true) {
            self.window.pop_front();
            self.next_expected = self.next_expected.plus(1);
        }
        let channel = fragment.channel as usize;
        if self.channels.len() <= channel {
            self.channels.resize_with(channel + 1, ChannelIn::default);
        }
        let ch = &mut self.channels[channel];
        if fragment.chan_seq != ch.next {
            if fragment.chan_seq.is_before(ch.next) || ch.early.contains_key(&fragment.chan_seq.0) {
                return Err(ReliableError::ProtocolViolation(
                    "two datagrams carry the same place in their channel",
                ));
            }
            ch.early.insert(fragment.chan_seq.0, fragment);
            return Ok(Arrival::New);
        }
        let mut next = Some(fragment);
        while let Some(fragment) = next {
            let ch = &mut self.channels[channel];
            ch.next = ch.next.plus(1);
            if let Some(done) = Self::assemble(&mut ch.assembling, self.max_message_size, fragment)?
            {
                self.ready.push_back((channel as u8, done));
            }
            let ch = &mut self.channels[channel];
            next = ch.early.remove(&ch.next.0);
        }
        Ok(Arrival::New)
    }

    /// Adds one fragment, in its channel's order, to the message being reassembled; returns the message when it
    /// is complete.
    fn assemble(
        assembling: &mut Option<Assembly>,
        max_message_size: usize,
        fragment: Fragment,
    ) -> Result<Option<Bytes>, ReliableError> {
        match (fragment.message_len, assembling.is_some()) {
            (Some(len), false) => {
                let len = len as usize;
                if len > max_message_size {
                    return Err(ReliableError::PeerMessageTooLarge {
                        size: len,
                        max: max_message_size,
                    });
                }
                if fragment.payload.len() == len {
                    // A message in one datagram: no copy.
                    return Ok(Some(fragment.payload));
                }
                // Grown as fragments come (each is charged to the credit), never sized by the stated length
                // alone: a peer stating large messages on many channels reserves nothing it has not sent.
                let mut bytes = BytesMut::with_capacity(len.min(ASSEMBLY_START));
                bytes.extend_from_slice(&fragment.payload);
                *assembling = Some(Assembly {
                    expected: len,
                    bytes,
                });
            }
            (None, true) => {
                if let Some(assembly) = assembling.as_mut() {
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
        if assembling
            .as_ref()
            .is_some_and(|a| a.bytes.len() == a.expected)
        {
            if let Some(done) = assembling.take() {
                return Ok(Some(done.bytes.freeze()));
            }
        }
        Ok(None)
    }

    /// The next complete message, in order within its channel. Taking it returns its credit to the sender.
    pub fn take_message(&mut self) -> Option<Bytes> {
        self.take_message_on().map(|(_, message)| message)
    }

    /// As [`take_message`](Self::take_message), with the message's channel.
    pub fn take_message_on(&mut self) -> Option<(u8, Bytes)> {
        let (channel, message) = self.ready.pop_front()?;
        let cost = message.len() as u64 + MESSAGE_CHARGE;
        self.held -= cost;
        self.consumed += cost;
        // Tell the sender once a quarter of the window has come free (it also learns from every other
        // acknowledgement, and probes when it is blocked).
        if self.credit() - self.advertised >= self.window_bytes / 4 {
            self.ack_wanted = true;
        }
        Some((channel, message))
    }

    /// How many complete messages wait to be taken.
    pub fn ready_count(&self) -> usize {
        self.ready.len()
    }

    /// The credit limit: the total cost of DATA the peer may have sent, counted from the start.
    pub fn credit(&self) -> u64 {
        self.consumed + self.window_bytes
    }

    /// Credit used by what is held now (at most the window).
    pub fn held(&self) -> u64 {
        self.held
    }

    /// Asks for an acknowledgement to be sent at the next transmission (the peer pinged, or must learn that
    /// this side has its handshake).
    pub fn request_ack(&mut self) {
        self.ack_wanted = true;
    }

    /// Whether an acknowledgement should be sent: arrivals not reported yet, a ping to answer, or new credit.
    pub fn wants_ack(&self) -> bool {
        self.ack_wanted || !self.unreported.is_empty()
    }

    /// An estimate of the memory this receiver holds, in bytes: stored payloads and the reassembly buffer, the
    /// window's slots, the queue of unread messages and the list of unreported arrivals.
    pub fn memory_bytes(&self) -> usize {
        let channels: usize = self
            .channels
            .iter()
            .map(|ch| {
                ch.early.values().map(|f| f.payload.len()).sum::<usize>()
                    + ch.early.capacity() * std::mem::size_of::<(u32, Fragment)>()
                    + ch.assembling.as_ref().map_or(0, |a| a.bytes.capacity())
            })
            .sum::<usize>()
            + self.channels.capacity() * std::mem::size_of::<ChannelIn>();
        let payloads = channels + self.ready.iter().map(|(_, m)| m.len()).sum::<usize>();
        payloads
            + self.window.capacity()
            + self.ready.capacity() * std::mem::size_of::<(u8, Bytes)>()
            + self.unreported.capacity() * std::mem::size_of::<Seq>()
    }

    /// The most memory [`memory_bytes`](Self::memory_bytes) can reach, whatever the peer sends: the window's
    /// payloads, one message being reassembled, a slot per buffered datagram, a queue entry per message the
    /// window can hold (each charged `MESSAGE_CHARGE`), and the list of unreported arrivals. Queues grow by
    /// doubling, so slot counts are rounded up to a power of two.
    pub fn worst_case_memory(
        window_bytes: u64,
        window_limit: usize,
        max_message_size: usize,
    ) -> usize {
        let slots = (window_limit + 1).next_power_of_two();
        let messages = ((window_bytes / MESSAGE_CHARGE) as usize + 1).next_power_of_two();
        let _ = max_message_size;
        // Payloads are charged to the credit, so they hold at most the window; a reassembly buffer grows by
        // doubling (at most twice what it holds, or its first reservation) on each of 256 channels; early
        // fragments sit in hash tables of at most twice their count.
        2 * window_bytes as usize
            + 256 * (ASSEMBLY_START + std::mem::size_of::<ChannelIn>())
            + slots * (1 + 2 * (std::mem::size_of::<(u32, Fragment)>() + 1))
            + messages * std::mem::size_of::<(u8, Bytes)>()
            + MAX_UNREPORTED.next_power_of_two() * std::mem::size_of::<Seq>()
    }

    /// What to acknowledge at `now`: everything before `next_expected`; a block of 65 datagrams ending at `top`
    /// (the highest arrival not yet reported, or else the largest received), with a bit for each that is
    /// stored or delivered; which datagram arrived last and how long ago; and the credit. Arrivals in the block
    /// count as reported; while some remain unreported, the connection sends further acknowledgements.
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
                self.window.get(offset).copied().unwrap_or(false)
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
        self.advertised = self.credit();
        self.ack_wanted = false;
        Acks {
            next,
            largest: top,
            bits,
            recent,
            delay_us,
            credit: self.advertised,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frag(seq: u32, message_len: Option<u32>, payload: &[u8]) -> Fragment {
        on(0, seq, seq, message_len, payload)
    }

    fn on(
        channel: u8,
        seq: u32,
        chan_seq: u32,
        message_len: Option<u32>,
        payload: &[u8],
    ) -> Fragment {
        Fragment {
            seq: Seq(seq),
            channel,
            chan_seq: Seq(chan_seq),
            message_len,
            copy: false,
            payload: Bytes::copy_from_slice(payload),
        }
    }

    #[test]
    fn a_missing_datagram_holds_back_its_own_channel_only() {
        let mut r = receiver();
        // Datagram 0 (channel 1's first) is lost for now; channel 2's message after it is delivered at once.
        r.receive(0, on(2, 1, 0, Some(3), b"two")).unwrap();
        r.receive(0, on(1, 2, 1, Some(5), b"later")).unwrap();
        assert_eq!(r.take_message_on(), Some((2, Bytes::from_static(b"two"))));
        assert_eq!(r.take_message_on(), None, "channel 1 waits for its first");
        assert_eq!(r.acks(0).next, Seq(0));
        r.receive(0, on(1, 0, 0, Some(5), b"first")).unwrap();
        assert_eq!(r.take_message_on(), Some((1, Bytes::from_static(b"first"))));
        assert_eq!(r.take_message_on(), Some((1, Bytes::from_static(b"later"))));
        assert_eq!(r.acks(0).next, Seq(3));
    }

    #[test]
    fn fragments_of_messages_on_two_channels_interleave() {
        let mut r = receiver();
        r.receive(0, on(1, 0, 0, Some(6), b"abc")).unwrap();
        r.receive(0, on(2, 1, 0, Some(4), b"wx")).unwrap();
        r.receive(0, on(1, 2, 1, None, b"def")).unwrap();
        r.receive(0, on(2, 3, 1, None, b"yz")).unwrap();
        assert_eq!(
            r.take_message_on(),
            Some((1, Bytes::from_static(b"abcdef")))
        );
        assert_eq!(r.take_message_on(), Some((2, Bytes::from_static(b"wxyz"))));
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
    fn far_ahead_is_no_room_and_not_acknowledged() {
        let mut r = Receiver::new(Seq(0), 4, 1 << 20, 1000);
        assert_eq!(
            r.receive(0, frag(4, Some(1), b"x")).unwrap(),
            Arrival::NoRoom
        );
        assert!(!r.wants_ack(), "a dropped datagram is not reported");
        let acks = r.acks(0);
        assert_eq!(
            (acks.next, acks.largest),
            (Seq(0), Seq(u32::MAX)),
            "nothing beyond next reported"
        );
    }

    #[test]
    fn credit_is_the_window_beyond_what_was_read_and_data_beyond_it_is_a_violation() {
        // A 200-byte window (at least one 100-byte message and its 64-byte charge).
        let mut r = Receiver::new(Seq(0), 16, 200, 100);
        assert_eq!(r.acks(0).credit, 200);
        r.receive(0, frag(0, Some(100), &[1; 100])).unwrap();
        assert_eq!(r.held(), 164);
        assert!(
            matches!(
                r.receive(0, frag(1, Some(10), &[2; 10])),
                Err(ReliableError::ProtocolViolation(_))
            ),
            "74 more would exceed the 200 granted"
        );
        let mut r = Receiver::new(Seq(0), 16, 200, 100);
        r.receive(0, frag(0, Some(100), &[1; 100])).unwrap();
        assert_eq!(r.take_message().map(|m| m.len()), Some(100));
        assert_eq!(
            (r.held(), r.credit()),
            (0, 364),
            "reading returns the credit"
        );
        assert!(
            r.wants_ack(),
            "a quarter of the window came free: worth telling"
        );
        assert_eq!(
            r.receive(0, frag(1, Some(10), &[2; 10])).unwrap(),
            Arrival::New
        );
    }

    #[test]
    fn a_window_always_holds_one_largest_message() {
        let r = Receiver::new(Seq(0), 16, 10, 1000);
        assert_eq!(r.window_bytes(), 1000 + MESSAGE_CHARGE);
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
        r.receive(0, on(0, 0, 1, None, b"b")).unwrap();
        r.receive(0, on(0, u32::MAX, 0, Some(2), b"a")).unwrap();
        assert_eq!(r.take_message().as_deref(), Some(&b"ab"[..]));
        assert_eq!(r.acks(0).next, Seq(1));
    }
}
