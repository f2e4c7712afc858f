//! The wire format of ReliablePacketPeer datagrams (documented in docs/PROTOCOL.md), and its checks.
//!
//! Every datagram starts with the same 32-byte header; DATA datagrams follow it with a fragment of a message.
//! All integers are little-endian. The CRC-32 (IEEE) covers the whole datagram with its own field set to zero.

use bytes::{BufMut, Bytes};

use super::seq::Seq;

/// The first two bytes of every datagram: "PK".
pub const MAGIC: [u8; 2] = *b"PK";
/// The protocol version this build speaks.
pub const VERSION: u8 = 1;
/// Size of the header every datagram starts with.
pub const HEADER_LEN: usize = 32;
/// Bytes a DATA datagram adds before its payload: sequence number and flags.
pub const DATA_PREFIX_LEN: usize = 5;
/// Bytes the first fragment of a message adds: the message length.
pub const FIRST_FRAGMENT_EXTRA: usize = 4;
/// The most overhead a datagram carries, so the smallest useful MTU is a little above this.
pub const MAX_OVERHEAD: usize = HEADER_LEN + DATA_PREFIX_LEN + FIRST_FRAGMENT_EXTRA;

const CRC_RANGE: std::ops::Range<usize> = 4..8;
const FLAG_FIRST: u8 = 1;
const FLAGS_KNOWN: u8 = FLAG_FIRST;

/// What a datagram is for. Every kind carries acknowledgements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A fragment of a message.
    Data = 1,
    /// Acknowledgements only.
    Ack = 2,
    /// A keepalive: acknowledgements, sent when nothing else has been sent for a while.
    Ping = 3,
    /// The sender has closed the connection.
    Close = 4,
}

impl Kind {
    fn from_byte(b: u8) -> Option<Kind> {
        match b {
            1 => Some(Kind::Data),
            2 => Some(Kind::Ack),
            3 => Some(Kind::Ping),
            4 => Some(Kind::Close),
            _ => None,
        }
    }
}

/// Acknowledgements: every datagram before `next` has arrived; so has `largest`, the top of the block this
/// datagram reports (the highest arrival not reported before, or the largest received); and datagram
/// `largest - 1 - i` has arrived when bit `i` of `bits` is set. The receiver walks the block down through its new
/// arrivals, sending as many acknowledgements as it takes, so every arrival is reported wherever the holes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Acks {
    /// The first sequence number not yet received.
    pub next: Seq,
    /// The top of the reported block: a datagram that has arrived (`next - 1` when nothing beyond `next` has).
    pub largest: Seq,
    /// Selective acknowledgements of the 64 datagrams below `largest`.
    pub bits: u64,
    /// The datagram that arrived most recently: the sender takes its round-trip sample from this one.
    pub recent: Seq,
    /// Microseconds between the arrival of `recent` and the sending of these acknowledgements (as QUIC's ack
    /// delay), so the sample leaves out the wait.
    pub delay_us: u32,
}

/// A fragment of a message, as carried by a DATA datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragment {
    /// The datagram's sequence number.
    pub seq: Seq,
    /// For the first fragment of a message, the message's total length.
    pub message_len: Option<u32>,
    /// The fragment's bytes.
    pub payload: Bytes,
}

/// A datagram read off the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// What it is for.
    pub kind: Kind,
    /// The sender's acknowledgements.
    pub acks: Acks,
    /// For DATA, the fragment it carries.
    pub fragment: Option<Fragment>,
}

/// Why a datagram was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Shorter than a header, or without the magic bytes: not a peerkit datagram.
    #[error("not a peerkit datagram")]
    Foreign,
    /// The checksum does not match: corrupted on the way.
    #[error("checksum mismatch")]
    Corrupt,
    /// A checksum-valid datagram of another protocol version.
    #[error("protocol version {0}")]
    Version(u8),
    /// Checksum-valid but malformed: unknown kind or flags, or a length that does not add up.
    #[error("malformed datagram")]
    Malformed,
}

fn checksum(datagram: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&datagram[..CRC_RANGE.start]);
    hasher.update(&[0; 4]);
    hasher.update(&datagram[CRC_RANGE.end..]);
    hasher.finalize()
}

fn header(buf: &mut Vec<u8>, kind: Kind, acks: Acks) {
    buf.clear();
    buf.extend_from_slice(&MAGIC);
    buf.push(VERSION);
    buf.push(kind as u8);
    buf.put_u32_le(0); // checksum, filled in by `seal`
    buf.put_u32_le(acks.next.0);
    buf.put_u32_le(acks.largest.0);
    buf.put_u64_le(acks.bits);
    buf.put_u32_le(acks.recent.0);
    buf.put_u32_le(acks.delay_us);
}

/// Writes the checksum of a datagram into its checksum field, as the encoder does (used by fuzzing to reach
/// past the checksum).
pub fn seal(buf: &mut [u8]) {
    let crc = checksum(buf);
    buf[CRC_RANGE].copy_from_slice(&crc.to_le_bytes());
}

/// Writes a datagram without a fragment (ACK, PING or CLOSE) into `buf`, replacing its contents.
pub fn encode_control(buf: &mut Vec<u8>, kind: Kind, acks: Acks) {
    debug_assert!(kind != Kind::Data);
    header(buf, kind, acks);
    seal(buf);
}

/// Writes a DATA datagram into `buf`, replacing its contents.
pub fn encode_data(
    buf: &mut Vec<u8>,
    acks: Acks,
    seq: Seq,
    message_len: Option<u32>,
    payload: &[u8],
) {
    header(buf, Kind::Data, acks);
    buf.put_u32_le(seq.0);
    buf.push(if message_len.is_some() { FLAG_FIRST } else { 0 });
    if let Some(len) = message_len {
        buf.put_u32_le(len);
    }
    buf.extend_from_slice(payload);
    seal(buf);
}

/// Reads and checks a datagram. Never panics, whatever the bytes.
pub fn decode(datagram: &[u8]) -> Result<Datagram, DecodeError> {
    if datagram.len() < HEADER_LEN || datagram[..2] != MAGIC {
        return Err(DecodeError::Foreign);
    }
    let stored = u32::from_le_bytes(read4(datagram, CRC_RANGE.start));
    if stored != checksum(datagram) {
        return Err(DecodeError::Corrupt);
    }
    if datagram[2] != VERSION {
        return Err(DecodeError::Version(datagram[2]));
    }
    let kind = Kind::from_byte(datagram[3]).ok_or(DecodeError::Malformed)?;
    let acks = Acks {
        next: Seq(u32::from_le_bytes(read4(datagram, 8))),
        largest: Seq(u32::from_le_bytes(read4(datagram, 12))),
        bits: u64::from_le_bytes(read8(datagram, 16)),
        recent: Seq(u32::from_le_bytes(read4(datagram, 24))),
        delay_us: u32::from_le_bytes(read4(datagram, 28)),
    };
    let body = &datagram[HEADER_LEN..];
    let fragment = match kind {
        Kind::Data => {
            if body.len() < DATA_PREFIX_LEN {
                return Err(DecodeError::Malformed);
            }
            let seq = Seq(u32::from_le_bytes(read4(body, 0)));
            let flags = body[4];
            if flags & !FLAGS_KNOWN != 0 {
                return Err(DecodeError::Malformed);
            }
            let mut rest = &body[DATA_PREFIX_LEN..];
            let message_len = if flags & FLAG_FIRST != 0 {
                if rest.len() < FIRST_FRAGMENT_EXTRA {
                    return Err(DecodeError::Malformed);
                }
                let len = u32::from_le_bytes(read4(rest, 0));
                rest = &rest[FIRST_FRAGMENT_EXTRA..];
                if (rest.len() as u64) > len as u64 {
                    return Err(DecodeError::Malformed);
                }
                Some(len)
            } else {
                None
            };
            Some(Fragment {
                seq,
                message_len,
                payload: Bytes::copy_from_slice(rest),
            })
        }
        _ if !body.is_empty() => return Err(DecodeError::Malformed),
        _ => None,
    };
    Ok(Datagram {
        kind,
        acks,
        fragment,
    })
}

fn read4(bytes: &[u8], at: usize) -> [u8; 4] {
    let mut out = [0; 4];
    out.copy_from_slice(&bytes[at..at + 4]);
    out
}

fn read8(bytes: &[u8], at: usize) -> [u8; 8] {
    let mut out = [0; 8];
    out.copy_from_slice(&bytes[at..at + 8]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acks() -> Acks {
        Acks {
            next: Seq(0xDEAD_BEEF),
            largest: Seq(0xDEAD_BEFF),
            bits: 0x0123_4567_89AB_CDEF,
            recent: Seq(0xDEAD_BEF0),
            delay_us: 12_345,
        }
    }

    #[test]
    fn data_round_trips() {
        let mut buf = Vec::new();
        encode_data(&mut buf, acks(), Seq(42), Some(10), b"hello");
        assert_eq!(buf.len(), MAX_OVERHEAD + 5);
        let d = decode(&buf).unwrap();
        assert_eq!(d.kind, Kind::Data);
        assert_eq!(d.acks, acks());
        let f = d.fragment.unwrap();
        assert_eq!(
            (f.seq, f.message_len, &f.payload[..]),
            (Seq(42), Some(10), &b"hello"[..])
        );
        encode_data(&mut buf, acks(), Seq(43), None, b"world");
        let f = decode(&buf).unwrap().fragment.unwrap();
        assert_eq!(
            (f.seq, f.message_len, &f.payload[..]),
            (Seq(43), None, &b"world"[..])
        );
    }

    #[test]
    fn control_datagrams_round_trip() {
        let mut buf = Vec::new();
        for kind in [Kind::Ack, Kind::Ping, Kind::Close] {
            encode_control(&mut buf, kind, acks());
            assert_eq!(buf.len(), HEADER_LEN);
            let d = decode(&buf).unwrap();
            assert_eq!((d.kind, d.acks, d.fragment), (kind, acks(), None));
        }
    }

    #[test]
    fn every_single_bit_flip_is_caught() {
        let mut buf = Vec::new();
        encode_data(&mut buf, acks(), Seq(1), Some(3), b"abc");
        for bit in 0..buf.len() * 8 {
            let mut bad = buf.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(decode(&bad).is_err(), "flip of bit {bit} went unnoticed");
        }
    }

    #[test]
    fn foreign_short_and_malformed_datagrams_are_refused() {
        assert_eq!(decode(b""), Err(DecodeError::Foreign));
        assert_eq!(decode(b"PK\x01"), Err(DecodeError::Foreign));
        assert_eq!(decode(&[0u8; 40]), Err(DecodeError::Foreign));
        let mut buf = Vec::new();
        // A valid checksum over nonsense: unknown kind.
        encode_control(&mut buf, Kind::Ack, acks());
        buf[3] = 99;
        seal(&mut buf);
        assert_eq!(decode(&buf), Err(DecodeError::Malformed));
        // A first fragment claiming a shorter message than it carries.
        encode_data(&mut buf, acks(), Seq(1), Some(2), b"abc");
        assert_eq!(decode(&buf), Err(DecodeError::Malformed));
        // Trailing bytes after a control datagram.
        encode_control(&mut buf, Kind::Ping, acks());
        buf.push(0);
        seal(&mut buf);
        assert_eq!(decode(&buf), Err(DecodeError::Malformed));
    }

    #[test]
    fn another_version_is_reported_as_such() {
        let mut buf = Vec::new();
        encode_control(&mut buf, Kind::Ping, acks());
        buf[2] = 2;
        seal(&mut buf);
        assert_eq!(decode(&buf), Err(DecodeError::Version(2)));
    }
}
