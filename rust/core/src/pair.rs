//! A connected pair of in-memory packet queues.
//!
//! [`pair`] returns two [`PairEnd`]s: what one end sends, the other end receives, in order, with nothing lost,
//! duplicated or reordered. Each end owns a bounded lock-free queue (its inbox) and a sender into the other
//! end's inbox, so the two ends can live on different threads and share no lock. The only shared state besides
//! the queues is one atomic "open" flag that either end clears when it is closed or dropped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender, TrySendError};

/// Packets up to this size travel inside the queue slot itself, with no allocation of their own.
pub const INLINE_PACKET_SIZE: usize = 64;

/// A packet in a pair's queue: small ones inline, larger ones in a shared buffer.
#[derive(Debug, Clone)]
pub enum Packet {
    /// A packet of at most `INLINE_PACKET_SIZE` bytes, stored in place.
    Inline {
        /// How many of `bytes` are the packet.
        len: u8,
        /// The packet, padded.
        bytes: [u8; INLINE_PACKET_SIZE],
    },
    /// A larger packet.
    Shared(Bytes),
}

impl Packet {
    /// A copy of `data`.
    pub fn copy_from(data: &[u8]) -> Self {
        if data.len() <= INLINE_PACKET_SIZE {
            let mut bytes = [0u8; INLINE_PACKET_SIZE];
            bytes[..data.len()].copy_from_slice(data);
            Packet::Inline {
                len: data.len() as u8,
                bytes,
            }
        } else {
            Packet::Shared(Bytes::copy_from_slice(data))
        }
    }

    /// The packet as `Bytes` (copying a small one into an allocation of its own).
    pub fn into_bytes(self) -> Bytes {
        match self {
            Packet::Inline { len, bytes } => Bytes::copy_from_slice(&bytes[..len as usize]),
            Packet::Shared(bytes) => bytes,
        }
    }
}

impl Default for Packet {
    fn default() -> Self {
        Packet::Inline {
            len: 0,
            bytes: [0; INLINE_PACKET_SIZE],
        }
    }
}

impl std::ops::Deref for Packet {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Packet::Inline { len, bytes } => &bytes[..*len as usize],
            Packet::Shared(bytes) => bytes,
        }
    }
}

impl PartialEq for Packet {
    fn eq(&self, other: &Self) -> bool {
        self[..] == other[..]
    }
}

/// The largest packet a pair may be configured to carry: 16 MiB.
pub const MAX_PACKET_SIZE_LIMIT: usize = 16 * 1024 * 1024;
/// The largest per-end queue a pair may be configured with, in packets. Queue slots are reserved up front
/// (80 bytes each: a small packet travels inside its slot), so this bounds that reservation to 80 MiB per end.
pub const CAPACITY_LIMIT: usize = 1 << 20;

/// Why a pair could not be made or a packet could not be moved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PairError {
    /// The requested queue capacity is outside `1..=CAPACITY_LIMIT`.
    #[error("capacity must be between 1 and {CAPACITY_LIMIT} packets, got {0}")]
    InvalidCapacity(i64),
    /// The requested maximum packet size is outside `1..=MAX_PACKET_SIZE_LIMIT`.
    #[error("max_packet_size must be between 1 and {MAX_PACKET_SIZE_LIMIT} bytes, got {0}")]
    InvalidMaxPacketSize(i64),
    /// The packet is larger than the pair's maximum packet size; nothing was queued.
    #[error("packet of {size} bytes is larger than max_packet_size ({max} bytes)")]
    Oversize {
        /// The packet's size in bytes.
        size: usize,
        /// The pair's maximum packet size in bytes.
        max: usize,
    },
    /// The receiving end already holds `capacity` packets; nothing was queued.
    #[error("the other end already holds {capacity} unread packets (its capacity)")]
    Full {
        /// The receiving end's capacity in packets.
        capacity: usize,
    },
    /// One of the two ends has been closed or dropped; nothing was queued.
    #[error("the pair is closed")]
    Closed,
    /// There is no packet to receive.
    #[error("no packet is queued")]
    Empty,
}

/// The size limits of a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PairConfig {
    /// How many unread packets each end's inbox holds before the sender gets [`PairError::Full`].
    pub capacity: usize,
    /// The largest packet, in bytes, either end accepts.
    pub max_packet_size: usize,
}

impl PairConfig {
    /// Validates limits given as signed integers (as they arrive from scripts).
    pub fn new(capacity: i64, max_packet_size: i64) -> Result<Self, PairError> {
        let capacity = usize::try_from(capacity)
            .ok()
            .filter(|c| (1..=CAPACITY_LIMIT).contains(c))
            .ok_or(PairError::InvalidCapacity(capacity))?;
        let max_packet_size = usize::try_from(max_packet_size)
            .ok()
            .filter(|m| (1..=MAX_PACKET_SIZE_LIMIT).contains(m))
            .ok_or(PairError::InvalidMaxPacketSize(max_packet_size))?;
        Ok(Self {
            capacity,
            max_packet_size,
        })
    }
}

impl Default for PairConfig {
    fn default() -> Self {
        Self {
            capacity: 1024,
            max_packet_size: 65536,
        }
    }
}

/// Counters kept by one end. Each refusal is counted once, under its reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndStats {
    /// Packets this end queued for the other end.
    pub packets_sent: u64,
    /// Packets this end took from its inbox.
    pub packets_received: u64,
    /// Payload bytes of `packets_sent`.
    pub bytes_sent: u64,
    /// Payload bytes of `packets_received`.
    pub bytes_received: u64,
    /// Sends refused because the other end's inbox was full.
    pub refused_busy: u64,
    /// Sends refused because the packet exceeded the maximum packet size.
    pub refused_oversize: u64,
    /// Sends refused because the pair was closed.
    pub refused_closed: u64,
}

impl EndStats {
    /// All refused sends, whatever the reason.
    pub fn packets_refused(&self) -> u64 {
        self.refused_busy + self.refused_oversize + self.refused_closed
    }
}

/// One end of a connected pair. Dropping it closes the pair.
#[derive(Debug)]
pub struct PairEnd {
    to_peer: Sender<Packet>,
    inbox: Receiver<Packet>,
    open: Arc<AtomicBool>,
    config: PairConfig,
    stats: EndStats,
}

/// Makes two connected ends with the given limits.
pub fn pair(config: PairConfig) -> (PairEnd, PairEnd) {
    let (to_b, inbox_b) = crossbeam_channel::bounded(config.capacity);
    let (to_a, inbox_a) = crossbeam_channel::bounded(config.capacity);
    let open = Arc::new(AtomicBool::new(true));
    let end = |to_peer, inbox| PairEnd {
        to_peer,
        inbox,
        open: Arc::clone(&open),
        config,
        stats: EndStats::default(),
    };
    (end(to_b, inbox_a), end(to_a, inbox_b))
}

impl PairEnd {
    /// Copies `packet` into the other end's inbox, or refuses it whole with the reason.
    ///
    /// The size and the open state are checked before the copy, so an oversize or closed send costs no allocation.
    pub fn send(&mut self, packet: &[u8]) -> Result<(), PairError> {
        if packet.len() > self.config.max_packet_size {
            self.stats.refused_oversize += 1;
            return Err(PairError::Oversize {
                size: packet.len(),
                max: self.config.max_packet_size,
            });
        }
        if !self.is_open() {
            self.stats.refused_closed += 1;
            return Err(PairError::Closed);
        }
        match self.to_peer.try_send(Packet::copy_from(packet)) {
            Ok(()) => {
                self.stats.packets_sent += 1;
                self.stats.bytes_sent += packet.len() as u64;
                Ok(())
            }
            Err(TrySendError::Full(_)) => {
                self.stats.refused_busy += 1;
                Err(PairError::Full {
                    capacity: self.config.capacity,
                })
            }
            Err(TrySendError::Disconnected(_)) => {
                self.stats.refused_closed += 1;
                Err(PairError::Closed)
            }
        }
    }

    /// Takes the oldest packet from this end's inbox. Packets that arrived before a close stay receivable.
    pub fn recv(&mut self) -> Result<Packet, PairError> {
        let packet = self.inbox.try_recv().map_err(|_| PairError::Empty)?;
        self.stats.packets_received += 1;
        self.stats.bytes_received += packet.len() as u64;
        Ok(packet)
    }

    /// How many packets wait in this end's inbox.
    pub fn queued(&self) -> usize {
        self.inbox.len()
    }

    /// Closes the pair for both ends. Queued packets stay receivable; further sends are refused.
    pub fn close(&mut self) {
        self.open.store(false, Ordering::Release);
    }

    /// False once either end has been closed or dropped.
    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    /// The limits this pair was made with.
    pub fn config(&self) -> PairConfig {
        self.config
    }

    /// This end's counters.
    pub fn stats(&self) -> &EndStats {
        &self.stats
    }
}

impl Drop for PairEnd {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(capacity: usize, max_packet_size: usize) -> (PairEnd, PairEnd) {
        pair(PairConfig {
            capacity,
            max_packet_size,
        })
    }

    #[test]
    fn config_rejects_out_of_range_limits() {
        assert_eq!(PairConfig::new(0, 10), Err(PairError::InvalidCapacity(0)));
        assert_eq!(PairConfig::new(-5, 10), Err(PairError::InvalidCapacity(-5)));
        let too_many = CAPACITY_LIMIT as i64 + 1;
        assert_eq!(
            PairConfig::new(too_many, 10),
            Err(PairError::InvalidCapacity(too_many))
        );
        assert_eq!(
            PairConfig::new(1, 0),
            Err(PairError::InvalidMaxPacketSize(0))
        );
        let too_big = MAX_PACKET_SIZE_LIMIT as i64 + 1;
        assert_eq!(
            PairConfig::new(1, too_big),
            Err(PairError::InvalidMaxPacketSize(too_big))
        );
        let ok = PairConfig::new(CAPACITY_LIMIT as i64, MAX_PACKET_SIZE_LIMIT as i64).unwrap();
        assert_eq!(ok.capacity, CAPACITY_LIMIT);
        assert_eq!(ok.max_packet_size, MAX_PACKET_SIZE_LIMIT);
    }

    #[test]
    fn packets_arrive_in_order_at_the_other_end_only() {
        let (mut a, mut b) = small(16, 100);
        for i in 0..10u8 {
            a.send(&[i, i]).unwrap();
        }
        b.send(b"back").unwrap();
        assert_eq!(a.queued(), 1);
        assert_eq!(b.queued(), 10);
        for i in 0..10u8 {
            assert_eq!(&b.recv().unwrap()[..], &[i, i]);
        }
        assert_eq!(b.recv(), Err(PairError::Empty));
        assert_eq!(&a.recv().unwrap()[..], b"back");
    }

    #[test]
    fn small_and_large_packets_both_arrive_intact() {
        let (mut a, mut b) = small(8, 1000);
        let sizes = [
            0,
            1,
            INLINE_PACKET_SIZE - 1,
            INLINE_PACKET_SIZE,
            INLINE_PACKET_SIZE + 1,
            1000,
        ];
        for size in sizes {
            let data: Vec<u8> = (0..size).map(|i| i as u8 ^ 0x5A).collect();
            a.send(&data).unwrap();
            let got = b.recv().unwrap();
            assert_eq!(&got[..], &data[..], "size {size}");
            assert_eq!(
                matches!(got, Packet::Inline { .. }),
                size <= INLINE_PACKET_SIZE
            );
            assert_eq!(&got.into_bytes()[..], &data[..]);
        }
    }

    #[test]
    fn empty_recv_reports_empty_and_counts_nothing() {
        let (_a, mut b) = small(4, 100);
        assert_eq!(b.recv(), Err(PairError::Empty));
        assert_eq!(b.stats().packets_received, 0);
    }

    #[test]
    fn oversize_is_refused_and_exact_size_accepted() {
        let (mut a, mut b) = small(4, 8);
        assert_eq!(
            a.send(&[0; 9]),
            Err(PairError::Oversize { size: 9, max: 8 })
        );
        assert_eq!(b.queued(), 0);
        a.send(&[7; 8]).unwrap();
        assert_eq!(b.recv().unwrap().len(), 8);
        assert_eq!(a.stats().refused_oversize, 1);
        assert_eq!(a.stats().packets_refused(), 1);
    }

    #[test]
    fn full_inbox_refuses_without_queueing() {
        let (mut a, mut b) = small(3, 8);
        for i in 0..3u8 {
            a.send(&[i]).unwrap();
        }
        assert_eq!(a.send(&[9]), Err(PairError::Full { capacity: 3 }));
        assert_eq!(b.queued(), 3);
        assert_eq!(&b.recv().unwrap()[..], &[0]);
        a.send(&[3]).unwrap();
        let rest: Vec<u8> = std::iter::from_fn(|| b.recv().ok()).map(|p| p[0]).collect();
        assert_eq!(rest, vec![1, 2, 3]);
        assert_eq!(a.stats().refused_busy, 1);
        assert_eq!(a.stats().packets_sent, 4);
    }

    #[test]
    fn close_refuses_sends_from_both_ends_but_keeps_queued_packets() {
        let (mut a, mut b) = small(8, 8);
        a.send(b"one").unwrap();
        b.send(b"two").unwrap();
        a.close();
        assert!(!a.is_open());
        assert!(!b.is_open());
        assert_eq!(a.send(b"x"), Err(PairError::Closed));
        assert_eq!(b.send(b"y"), Err(PairError::Closed));
        assert_eq!(&b.recv().unwrap()[..], b"one");
        assert_eq!(&a.recv().unwrap()[..], b"two");
        assert_eq!(a.stats().refused_closed, 1);
        assert_eq!(b.stats().refused_closed, 1);
    }

    #[test]
    fn dropping_one_end_closes_the_other_and_keeps_its_inbox() {
        let (mut a, mut b) = small(8, 8);
        a.send(b"last").unwrap();
        drop(a);
        assert!(!b.is_open());
        assert_eq!(b.send(b"z"), Err(PairError::Closed));
        assert_eq!(&b.recv().unwrap()[..], b"last");
    }

    #[test]
    fn stats_count_packets_and_bytes() {
        let (mut a, mut b) = small(8, 100);
        a.send(&[1; 10]).unwrap();
        a.send(&[2; 20]).unwrap();
        b.recv().unwrap();
        assert_eq!(a.stats().packets_sent, 2);
        assert_eq!(a.stats().bytes_sent, 30);
        assert_eq!(b.stats().packets_received, 1);
        assert_eq!(b.stats().bytes_received, 10);
        assert_eq!(b.queued(), 1);
    }

    #[test]
    fn ends_on_two_threads_deliver_everything_in_order() {
        let (mut a, mut b) = small(64, 8);
        const N: u64 = 200_000;
        let producer = std::thread::spawn(move || {
            let mut i = 0u64;
            while i < N {
                match a.send(&i.to_le_bytes()) {
                    Ok(()) => i += 1,
                    Err(PairError::Full { .. }) => std::thread::yield_now(),
                    Err(e) => panic!("unexpected {e}"),
                }
            }
            a
        });
        let mut expected = 0u64;
        while expected < N {
            match b.recv() {
                Ok(p) => {
                    assert_eq!(u64::from_le_bytes(p[..].try_into().unwrap()), expected);
                    expected += 1;
                }
                Err(_) => std::thread::yield_now(),
            }
        }
        let a = producer.join().unwrap();
        assert_eq!(a.stats().packets_sent, N);
        assert_eq!(b.stats().packets_received, N);
    }
}
