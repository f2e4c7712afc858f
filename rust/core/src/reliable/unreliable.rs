//! Unreliable messages beside the reliable stream: numbered, cut into fragments that fit a datagram, sent once
//! and never acknowledged; on arrival, put back together (a message missing any fragment is lost whole) and,
//! for unreliable-ordered channels, never delivered after a newer message of the same channel.
//!
//! Both halves hold bounded memory: the sender keeps at most [`QUEUE_BYTES`] waiting (older messages give way
//! to newer ones, which is what a game's state stream wants), the receiver at most [`MAX_PARTIAL`] messages
//! being put back together and `max_message_size` bytes of them.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use super::packet::{UnreliableFragment, UNRELIABLE_HEADER_LEN};
use super::seq::Seq;

/// The most bytes of unreliable messages waiting to be sent; beyond it the oldest are dropped (counted).
pub const QUEUE_BYTES: usize = 256 * 1024;
/// The most unreliable messages being put back together at once; a newer one pushes out the oldest (counted
/// as incomplete).
pub const MAX_PARTIAL: usize = 16;

/// Both halves, held by a connection from its first unreliable message on (so a connection that never sends one,
/// or is still in its handshake, holds nothing for them).
#[derive(Debug, Default)]
pub struct Unreliable {
    /// Messages waiting to go.
    pub out: UnreliableOut,
    /// Messages arriving.
    pub inn: UnreliableIn,
}

/// Where and how an unreliable message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnreliableKind {
    /// Its channel.
    pub channel: u8,
    /// Unreliable-ordered: never delivered after a newer message of its channel.
    pub ordered: bool,
}

/// An unreliable message waiting to be sent, and how far it has been.
#[derive(Debug)]
struct Waiting {
    kind: UnreliableKind,
    number: Seq,
    message: Bytes,
    /// Its fragments' size and count, fixed when the first goes out (at the mtu of that moment).
    cut: Option<(usize, u16)>,
    next: u16,
}

/// The sending half: messages waiting to go, in order, cut into fragments as they leave.
#[derive(Debug, Default)]
pub struct UnreliableOut {
    queue: VecDeque<Waiting>,
    queued_bytes: usize,
    /// The next number of each channel's ordered messages, by channel.
    ordered_numbers: Vec<Seq>,
    /// The next number of an unordered message (one sequence for the connection).
    unordered_number: Seq,
    /// Messages dropped before being sent whole to make room for newer ones (or too large to cut into 65535
    /// fragments at the connection's mtu).
    pub dropped: u64,
}

impl UnreliableOut {
    /// Queues `message`. The oldest waiting messages are dropped while the queue would hold more than
    /// [`QUEUE_BYTES`] (a message larger than that is kept, alone).
    pub fn push(&mut self, kind: UnreliableKind, message: Bytes) {
        let number = if kind.ordered {
            let index = kind.channel as usize;
            if self.ordered_numbers.len() <= index {
                self.ordered_numbers.resize(index + 1, Seq(0));
            }
            let n = self.ordered_numbers[index];
            self.ordered_numbers[index] = n.plus(1);
            n
        } else {
            let n = self.unordered_number;
            self.unordered_number = n.plus(1);
            n
        };
        while self.queued_bytes > 0 && self.queued_bytes + message.len() > QUEUE_BYTES {
            self.drop_oldest_message();
        }
        self.queued_bytes += message.len();
        self.queue.push_back(Waiting {
            kind,
            number,
            message,
            cut: None,
            next: 0,
        });
    }

    fn drop_oldest_message(&mut self) {
        if let Some(w) = self.queue.pop_front() {
            self.queued_bytes -= w.message.len() - Self::sent_bytes(&w);
            self.dropped += 1;
        }
    }

    fn sent_bytes(w: &Waiting) -> usize {
        w.cut
            .map_or(0, |(room, _)| (room * w.next as usize).min(w.message.len()))
    }

    /// Whether a fragment waits.
    pub fn has_next(&self) -> bool {
        !self.queue.is_empty()
    }

    /// The next fragment to send, in a datagram of at most `mtu` bytes.
    pub fn pop(&mut self, mtu: usize) -> Option<UnreliableFragment> {
        loop {
            let w = self.queue.front_mut()?;
            let (room, count) = match w.cut {
                Some(cut) => cut,
                None => {
                    let room = mtu.saturating_sub(UNRELIABLE_HEADER_LEN).max(1);
                    let Ok(count) = u16::try_from(w.message.len().div_ceil(room).max(1)) else {
                        self.drop_oldest_message();
                        continue;
                    };
                    w.cut = Some((room, count));
                    (room, count)
                }
            };
            let index = w.next;
            let start = (room * index as usize).min(w.message.len());
            let end = (start + room).min(w.message.len());
            let fragment = UnreliableFragment {
                channel: w.kind.channel,
                ordered: w.kind.ordered,
                number: w.number,
                index,
                count,
                payload: w.message.slice(start..end),
            };
            w.next += 1;
            self.queued_bytes -= end - start;
            if w.next == count {
                self.queue.pop_front();
            }
            return Some(fragment);
        }
    }

    /// Bytes waiting.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    /// Drops everything waiting (the connection closed); returns how many messages that was.
    pub fn clear(&mut self) -> u64 {
        let messages = self.queue.len() as u64;
        self.queue.clear();
        self.queued_bytes = 0;
        messages
    }

    /// Memory held, in bytes.
    pub fn memory_bytes(&self) -> usize {
        self.queued_bytes
            + self.queue.capacity() * std::mem::size_of::<Waiting>()
            + self.ordered_numbers.capacity() * std::mem::size_of::<Seq>()
    }
}

#[derive(Debug)]
struct Partial {
    kind: UnreliableKind,
    number: Seq,
    parts: Vec<Option<Bytes>>,
    missing: usize,
    bytes: usize,
}

/// What became of an arriving unreliable fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnreliableArrival {
    /// A message is complete and waits to be read.
    Delivered,
    /// Kept until its message's other fragments arrive.
    Held,
    /// Of an ordered message older than one already delivered on its channel: dropped.
    Late,
    /// A fragment already held, or fragments that do not add up (another count, a message over the size limit):
    /// dropped.
    Invalid,
}

/// The receiving half: messages being put back together, the newest ordered message delivered on each channel,
/// and complete messages waiting to be read.
#[derive(Debug, Default)]
pub struct UnreliableIn {
    partial: VecDeque<Partial>,
    partial_bytes: usize,
    newest: Vec<Option<Seq>>,
    ready: VecDeque<(UnreliableKind, Bytes)>,
    ready_bytes: usize,
    /// Messages dropped unfinished (a newer one needed the room).
    pub incomplete: u64,
    /// Complete messages dropped because the reader was too far behind.
    pub overflowed: u64,
}

impl UnreliableIn {
    fn is_late(&self, kind: UnreliableKind, number: Seq) -> bool {
        kind.ordered
            && self
                .newest
                .get(kind.channel as usize)
                .copied()
                .flatten()
                .is_some_and(|newest| !newest.is_before(number))
    }

    /// Takes in a fragment. Complete messages wait for [`take`](Self::take), holding at most `ready_limit` bytes
    /// (the oldest are dropped beyond it); a message is at most `max_message_size` bytes.
    pub fn receive(
        &mut self,
        fragment: UnreliableFragment,
        max_message_size: usize,
        ready_limit: usize,
    ) -> UnreliableArrival {
        let kind = UnreliableKind {
            channel: fragment.channel,
            ordered: fragment.ordered,
        };
        if self.is_late(kind, fragment.number) {
            return UnreliableArrival::Late;
        }
        if fragment.payload.len() > max_message_size {
            return UnreliableArrival::Invalid;
        }
        let message = if fragment.count == 1 {
            fragment.payload
        } else {
            let at = self
                .partial
                .iter()
                .position(|p| p.kind == kind && p.number == fragment.number);
            let at = match at {
                Some(at) => at,
                None => {
                    if self.partial.len() >= MAX_PARTIAL {
                        self.evict_oldest();
                    }
                    self.partial.push_back(Partial {
                        kind,
                        number: fragment.number,
                        parts: vec![None; fragment.count as usize],
                        missing: fragment.count as usize,
                        bytes: 0,
                    });
                    self.partial.len() - 1
                }
            };
            let p = &mut self.partial[at];
            let index = fragment.index as usize;
            if p.parts.len() != fragment.count as usize
                || p.parts[index].is_some()
                || p.bytes + fragment.payload.len() > max_message_size
            {
                return UnreliableArrival::Invalid;
            }
            p.bytes += fragment.payload.len();
            self.partial_bytes += fragment.payload.len();
            p.parts[index] = Some(fragment.payload);
            p.missing -= 1;
            let done = p.missing == 0;
            while self.partial_bytes > max_message_size && self.partial.len() > 1 {
                // Keep the newest; the oldest unfinished messages give way.
                self.evict_oldest();
            }
            if !done {
                return UnreliableArrival::Held;
            }
            let Some(at) = self
                .partial
                .iter()
                .position(|p| p.kind == kind && p.number == fragment.number)
            else {
                return UnreliableArrival::Held;
            };
            let Some(p) = self.partial.remove(at) else {
                return UnreliableArrival::Held;
            };
            self.partial_bytes -= p.bytes;
            let mut bytes = BytesMut::with_capacity(p.bytes);
            for part in p.parts.into_iter().flatten() {
                bytes.extend_from_slice(&part);
            }
            bytes.freeze()
        };
        if kind.ordered {
            let index = kind.channel as usize;
            if self.newest.len() <= index {
                self.newest.resize(index + 1, None);
            }
            self.newest[index] = Some(fragment.number);
            // Older unfinished messages of the channel can no longer be delivered.
            let before = self.partial.len();
            let newest = fragment.number;
            let mut freed = 0;
            self.partial.retain(|p| {
                let stale = p.kind == kind && p.number.is_before(newest);
                if stale {
                    freed += p.bytes;
                }
                !stale
            });
            self.partial_bytes -= freed;
            self.incomplete += (before - self.partial.len()) as u64;
        }
        self.ready_bytes += message.len();
        self.ready.push_back((kind, message));
        while self.ready_bytes > ready_limit && self.ready.len() > 1 {
            if let Some((_, old)) = self.ready.pop_front() {
                self.ready_bytes -= old.len();
                self.overflowed += 1;
            }
        }
        UnreliableArrival::Delivered
    }

    fn evict_oldest(&mut self) {
        if let Some(old) = self.partial.pop_front() {
            self.partial_bytes -= old.bytes;
            self.incomplete += 1;
        }
    }

    /// The next complete message, in the order they completed.
    pub fn take(&mut self) -> Option<(UnreliableKind, Bytes)> {
        let (kind, message) = self.ready.pop_front()?;
        self.ready_bytes -= message.len();
        Some((kind, message))
    }

    /// How many complete messages wait.
    pub fn ready_count(&self) -> usize {
        self.ready.len()
    }

    /// Memory held, in bytes.
    pub fn memory_bytes(&self) -> usize {
        self.partial_bytes
            + self.ready_bytes
            + self
                .partial
                .iter()
                .map(|p| p.parts.capacity() * std::mem::size_of::<Option<Bytes>>())
                .sum::<usize>()
            + self.ready.capacity() * std::mem::size_of::<(UnreliableKind, Bytes)>()
            + self.newest.capacity() * std::mem::size_of::<Option<Seq>>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORDERED: UnreliableKind = UnreliableKind {
        channel: 3,
        ordered: true,
    };
    const UNORDERED: UnreliableKind = UnreliableKind {
        channel: 3,
        ordered: false,
    };

    fn sent(out: &mut UnreliableOut, mtu: usize) -> Vec<UnreliableFragment> {
        std::iter::from_fn(|| out.pop(mtu)).collect()
    }

    #[test]
    fn a_large_message_is_cut_and_put_back_together_in_any_order() {
        let mut out = UnreliableOut::default();
        let message: Bytes = (0..250u32).map(|i| i as u8).collect::<Vec<_>>().into();
        out.push(UNORDERED, message.clone());
        let mut fragments = sent(&mut out, UNRELIABLE_HEADER_LEN + 100);
        assert_eq!(fragments.len(), 3);
        fragments.reverse();
        let mut inn = UnreliableIn::default();
        let arrivals: Vec<_> = fragments
            .into_iter()
            .map(|f| inn.receive(f, 1000, 1 << 20))
            .collect();
        assert_eq!(
            arrivals,
            [
                UnreliableArrival::Held,
                UnreliableArrival::Held,
                UnreliableArrival::Delivered
            ]
        );
        assert_eq!(inn.take(), Some((UNORDERED, message)));
    }

    #[test]
    fn a_message_missing_a_fragment_is_lost_whole_and_its_room_is_given_back() {
        let mut out = UnreliableOut::default();
        for _ in 0..MAX_PARTIAL + 1 {
            out.push(UNORDERED, Bytes::from(vec![7; 150]));
        }
        let mut inn = UnreliableIn::default();
        // Only the first fragment of each message arrives.
        for f in sent(&mut out, UNRELIABLE_HEADER_LEN + 100)
            .into_iter()
            .filter(|f| f.index == 0)
        {
            assert_eq!(inn.receive(f, 100_000, 1 << 20), UnreliableArrival::Held);
        }
        assert_eq!(inn.take(), None);
        assert_eq!(inn.incomplete, 1, "the 17th pushed out the oldest");
        assert_eq!(inn.partial.len(), MAX_PARTIAL);
    }

    #[test]
    fn ordered_messages_are_never_delivered_after_a_newer_one() {
        let mut out = UnreliableOut::default();
        for i in 0..3u8 {
            out.push(ORDERED, Bytes::from(vec![i]));
        }
        let f = sent(&mut out, 1200);
        let mut inn = UnreliableIn::default();
        assert_eq!(
            inn.receive(f[0].clone(), 1000, 1 << 20),
            UnreliableArrival::Delivered
        );
        assert_eq!(
            inn.receive(f[2].clone(), 1000, 1 << 20),
            UnreliableArrival::Delivered
        );
        assert_eq!(
            inn.receive(f[1].clone(), 1000, 1 << 20),
            UnreliableArrival::Late
        );
        assert_eq!(
            inn.receive(f[2].clone(), 1000, 1 << 20),
            UnreliableArrival::Late,
            "nor twice"
        );
        let got: Vec<_> = std::iter::from_fn(|| inn.take())
            .map(|(_, m)| m[0])
            .collect();
        assert_eq!(got, [0, 2]);
    }

    #[test]
    fn unordered_messages_are_delivered_in_any_order_and_channels_are_separate() {
        let mut out = UnreliableOut::default();
        out.push(UNORDERED, Bytes::from_static(b"a"));
        out.push(UNORDERED, Bytes::from_static(b"b"));
        out.push(ORDERED, Bytes::from_static(b"c"));
        let other = UnreliableKind {
            channel: 4,
            ordered: true,
        };
        out.push(other, Bytes::from_static(b"d"));
        let f = sent(&mut out, 1200);
        let mut inn = UnreliableIn::default();
        for i in [1, 0, 3, 2] {
            assert_eq!(
                inn.receive(f[i].clone(), 1000, 1 << 20),
                UnreliableArrival::Delivered
            );
        }
        let got: Vec<_> = std::iter::from_fn(|| inn.take()).map(|(_, m)| m).collect();
        assert_eq!(got, [&b"b"[..], b"a", b"d", b"c"]);
    }

    #[test]
    fn the_send_queue_keeps_the_newest_within_its_bound() {
        let mut out = UnreliableOut::default();
        let n = QUEUE_BYTES / 1000 + 10;
        for _ in 0..n {
            out.push(UNORDERED, Bytes::from(vec![0; 1000]));
        }
        assert!(out.queued_bytes() <= QUEUE_BYTES);
        assert_eq!(out.dropped as usize + out.queue.len(), n);
        assert_eq!(out.queue.back().map(|w| w.number), Some(Seq(n as u32 - 1)));
        let left = sent(&mut out, 1200);
        assert_eq!(
            left.len(),
            n - out.dropped as usize,
            "one datagram for each kept message"
        );
        assert_eq!(out.queued_bytes(), 0);
    }

    #[test]
    fn fragments_that_do_not_add_up_are_dropped() {
        let mut inn = UnreliableIn::default();
        let frag = |index, count, len| UnreliableFragment {
            channel: 0,
            ordered: false,
            number: Seq(9),
            index,
            count,
            payload: Bytes::from(vec![1; len]),
        };
        assert_eq!(
            inn.receive(frag(0, 3, 10), 25, 1 << 20),
            UnreliableArrival::Held
        );
        assert_eq!(
            inn.receive(frag(0, 3, 10), 25, 1 << 20),
            UnreliableArrival::Invalid,
            "twice"
        );
        assert_eq!(
            inn.receive(frag(1, 2, 10), 25, 1 << 20),
            UnreliableArrival::Invalid,
            "another count"
        );
        assert_eq!(
            inn.receive(frag(1, 3, 20), 25, 1 << 20),
            UnreliableArrival::Invalid,
            "over the size"
        );
        assert_eq!(
            inn.receive(frag(0, 1, 30), 25, 1 << 20),
            UnreliableArrival::Invalid
        );
    }
}
