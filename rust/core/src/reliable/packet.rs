//! The wire format of peerkit's reliable protocol, version 3 (documented in docs/PROTOCOL.md), and its checks.
//!
//! Every datagram starts with the same 16-byte header: magic, version, kind, checksum, and the connection ids of
//! its receiver and its sender. HELLO datagrams then carry the sender's connection parameters; DATA, ACK, PING
//! and CLOSE carry acknowledgements and the receive credit; DATA follows them with a fragment of a message on one
//! of 256 channels. UNRELIABLE carries a fragment of a message that is never acknowledged nor sent again.
//! All integers are little-endian. The CRC-32 (IEEE) covers the whole datagram with its own field set to zero.

use bytes::{BufMut, Bytes};

use super::seq::Seq;

/// The first two bytes of every datagram: "PK".
pub const MAGIC: [u8; 2] = *b"PK";
/// The protocol version this build speaks.
pub const VERSION: u8 = 3;
/// Size of the header every datagram starts with: magic, version, kind, checksum, receiver id, sender id.
pub const HEADER_LEN: usize = 16;
/// Size of a HELLO datagram.
pub const HELLO_LEN: usize = HEADER_LEN + 16;
/// Size of a REFUSE datagram: the header and the reason. Smaller than the HELLO it answers, so a server's
/// refusals never send more bytes than they received.
pub const REFUSE_LEN: usize = HEADER_LEN + 4;
/// Size of the acknowledgement block that DATA, ACK, PING and CLOSE carry after the header.
pub const ACKS_LEN: usize = 32;
/// Size of an ACK, PING or CLOSE datagram.
pub const CONTROL_LEN: usize = HEADER_LEN + ACKS_LEN;
/// Size of a round-trip probe: a PING with a token after its acknowledgement block.
pub const PROBE_LEN: usize = CONTROL_LEN + 4;
/// Size of a probe's answer: an ACK with the probe's token and how long it waited to be answered.
pub const ECHO_LEN: usize = CONTROL_LEN + 8;
/// Bytes a DATA datagram adds before its payload: sequence number, flags, channel and the channel's own
/// sequence number.
pub const DATA_PREFIX_LEN: usize = 10;
/// Size of an UNRELIABLE datagram before its payload: the header, channel, flags, message number, fragment index
/// and fragment count.
pub const UNRELIABLE_HEADER_LEN: usize = HEADER_LEN + 10;
/// Bytes the first fragment of a message adds: the message length.
pub const FIRST_FRAGMENT_EXTRA: usize = 4;
/// The most overhead a datagram carries, so the smallest useful MTU is a little above this.
pub const MAX_OVERHEAD: usize = CONTROL_LEN + DATA_PREFIX_LEN + FIRST_FRAGMENT_EXTRA;
/// What each message costs in receive credit on top of its bytes, so that a flood of empty messages is bounded
/// too: about what the receiver spends to hold one message.
pub const MESSAGE_CHARGE: u64 = 64;

const CRC_RANGE: std::ops::Range<usize> = 4..8;
const FLAG_FIRST: u8 = 1;
/// A 2-byte payload length follows this fragment's fields, and another fragment follows its payload.
const FLAG_MORE: u8 = 2;
/// A redundant copy of a fragment sent before in a datagram of its own.
const FLAG_COPY: u8 = 4;
const FLAGS_KNOWN: u8 = FLAG_FIRST | FLAG_MORE | FLAG_COPY;
/// Bytes a fragment followed by another adds for its payload length.
pub const MORE_EXTRA: usize = 2;
const FLAG_ORDERED: u8 = 1;

/// What a datagram is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A fragment of a message, with acknowledgements.
    Data = 1,
    /// Acknowledgements only.
    Ack = 2,
    /// A keepalive or probe, with acknowledgements; the receiver answers with an ACK.
    Ping = 3,
    /// The sender has closed the connection; the receiver answers with CLOSE_ACK.
    Close = 4,
    /// The handshake: the sender's connection id and parameters.
    Hello = 5,
    /// The answer to a CLOSE.
    CloseAck = 6,
    /// A server's answer to a HELLO it will not take: why (a [`RefuseReason`]), addressed to the HELLO's sender.
    Refuse = 7,
    /// A fragment of an unreliable message: never acknowledged, never sent again.
    Unreliable = 8,
}

/// Why a server refused a connection, as a REFUSE datagram says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefuseReason {
    /// The server holds `max_connections` connections already.
    Full = 1,
    /// `max_pending` connections wait to be taken (or are still in their handshake): the client keeps trying
    /// until its handshake times out.
    TooManyPending = 2,
    /// The server does not accept new connections (it is stopping, or told to refuse them).
    NotAccepting = 3,
}

impl RefuseReason {
    /// The reason a REFUSE's code names; an unknown code (from a newer server) reads as `NotAccepting`.
    pub fn from_code(code: u32) -> RefuseReason {
        match code {
            1 => RefuseReason::Full,
            2 => RefuseReason::TooManyPending,
            _ => RefuseReason::NotAccepting,
        }
    }
}

impl Kind {
    fn from_byte(b: u8) -> Option<Kind> {
        match b {
            1 => Some(Kind::Data),
            2 => Some(Kind::Ack),
            3 => Some(Kind::Ping),
            4 => Some(Kind::Close),
            5 => Some(Kind::Hello),
            6 => Some(Kind::CloseAck),
            7 => Some(Kind::Refuse),
            8 => Some(Kind::Unreliable),
            _ => None,
        }
    }

    /// Whether datagrams of this kind carry the acknowledgement block.
    pub fn carries_acks(self) -> bool {
        matches!(self, Kind::Data | Kind::Ack | Kind::Ping | Kind::Close)
    }
}

/// Which connection a datagram belongs to: the id its receiver picked (`dst`, 0 in a HELLO sent before the
/// peer's id is known) and the id its sender picked (`src`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ids {
    /// The receiving side's connection id.
    pub dst: u32,
    /// The sending side's connection id (never 0).
    pub src: u32,
}

/// What a side announces in its HELLO.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Hello {
    /// The sequence number of the first DATA datagram it will send.
    pub initial_seq: Seq,
    /// The largest datagram it accepts (and so the largest the peer may send), in bytes.
    pub mtu: u32,
    /// The largest message it sends or accepts, in bytes: both sides must announce the same.
    pub max_message_size: u32,
    /// Its receive window: the credit, in bytes plus `MESSAGE_CHARGE` per message, the peer starts with.
    pub receive_window: u32,
}

/// Acknowledgements: every datagram before `next` has arrived; so has `largest`, the top of the block this
/// datagram reports (the highest arrival not reported before, or the largest received); and datagram
/// `largest - 1 - i` has arrived when bit `i` of `bits` is set. The receiver walks the block down through its new
/// arrivals, sending as many acknowledgements as it takes, so every arrival is reported wherever the holes are.
/// `credit` is the flow-control limit: the sender may send new DATA while the total cost of all the DATA it has
/// sent (each datagram's payload, plus `MESSAGE_CHARGE` for a message's first) stays at or below it.
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
    /// The receive credit: the total cost of DATA the receiver accepts, counted from the connection's start.
    pub credit: u64,
}

/// A fragment of a message, as carried by a DATA datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragment {
    /// The datagram's sequence number.
    pub seq: Seq,
    /// The channel its message is on.
    pub channel: u8,
    /// Its number among the DATA datagrams of its channel: the receiver delivers each channel in this order.
    pub chan_seq: Seq,
    /// For the first fragment of a message, the message's total length.
    pub message_len: Option<u32>,
    /// A redundant copy (of a fragment first sent in an earlier datagram), riding along to repair a loss.
    pub copy: bool,
    /// The fragment's bytes.
    pub payload: Bytes,
}

impl Fragment {
    /// What this fragment costs in receive credit: its payload, plus `MESSAGE_CHARGE` when it starts a message.
    pub fn cost(&self) -> u64 {
        fragment_cost(self.payload.len(), self.message_len.is_some())
    }
}

/// The receive credit a fragment of `payload_len` bytes costs (see [`Acks::credit`]).
pub fn fragment_cost(payload_len: usize, first: bool) -> u64 {
    payload_len as u64 + if first { MESSAGE_CHARGE } else { 0 }
}

/// A fragment of an unreliable message, as carried by an UNRELIABLE datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreliableFragment {
    /// The channel its message is on.
    pub channel: u8,
    /// Whether the message is unreliable-ordered: never delivered after a newer one of its channel.
    pub ordered: bool,
    /// The message's number: per channel for ordered messages, per connection for the others.
    pub number: Seq,
    /// Which fragment of the message this is, from 0.
    pub index: u16,
    /// How many fragments the message has (at least 1).
    pub count: u16,
    /// The fragment's bytes.
    pub payload: Bytes,
}

/// A datagram read off the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// What it is for.
    pub kind: Kind,
    /// Which connection it belongs to.
    pub ids: Ids,
    /// For HELLO, what the sender announces.
    pub hello: Option<Hello>,
    /// For DATA, ACK, PING and CLOSE, the sender's acknowledgements.
    pub acks: Option<Acks>,
    /// For DATA, the fragment it carries (its last, when it carries several).
    pub fragment: Option<Fragment>,
    /// For DATA, the fragments before the last (redundant copies), in the order they came.
    pub bundled: Vec<Fragment>,
    /// For UNRELIABLE, the fragment it carries.
    pub unreliable: Option<UnreliableFragment>,
    /// For REFUSE, why.
    pub refused: Option<RefuseReason>,
    /// For a PING that is a round-trip probe, its token.
    pub probe: Option<u32>,
    /// For an ACK that answers a probe, the probe's token and the microseconds it waited to be answered.
    pub echo: Option<(u32, u32)>,
}

/// Why a datagram was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Shorter than the magic, version, kind and checksum, or without the magic bytes: not a peerkit datagram.
    #[error("not a peerkit datagram")]
    Foreign,
    /// The checksum does not match: corrupted on the way.
    #[error("checksum mismatch")]
    Corrupt,
    /// A checksum-valid datagram of another protocol version.
    #[error("protocol version {0}")]
    Version(u8),
    /// Checksum-valid but malformed: unknown kind or flags, a sender id of 0, or a length that does not add up.
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

fn header(buf: &mut Vec<u8>, kind: Kind, ids: Ids) {
    buf.clear();
    buf.extend_from_slice(&MAGIC);
    buf.push(VERSION);
    buf.push(kind as u8);
    buf.put_u32_le(0); // checksum, filled in by `seal`
    buf.put_u32_le(ids.dst);
    buf.put_u32_le(ids.src);
}

fn put_acks(buf: &mut Vec<u8>, acks: Acks) {
    buf.put_u32_le(acks.next.0);
    buf.put_u32_le(acks.largest.0);
    buf.put_u64_le(acks.bits);
    buf.put_u32_le(acks.recent.0);
    buf.put_u32_le(acks.delay_us);
    buf.put_u64_le(acks.credit);
}

/// Writes the checksum of a datagram into its checksum field, as the encoder does (used by tests and fuzzing to
/// reach past the checksum). Does nothing to a datagram too short to have one.
pub fn seal(buf: &mut [u8]) {
    if buf.len() < CRC_RANGE.end {
        return;
    }
    let crc = checksum(buf);
    buf[CRC_RANGE].copy_from_slice(&crc.to_le_bytes());
}

/// Writes a HELLO into `buf`, replacing its contents.
pub fn encode_hello(buf: &mut Vec<u8>, ids: Ids, hello: Hello) {
    header(buf, Kind::Hello, ids);
    buf.put_u32_le(hello.initial_seq.0);
    buf.put_u32_le(hello.mtu);
    buf.put_u32_le(hello.max_message_size);
    buf.put_u32_le(hello.receive_window);
    seal(buf);
}

/// Writes a CLOSE_ACK into `buf`, replacing its contents.
pub fn encode_close_ack(buf: &mut Vec<u8>, ids: Ids) {
    header(buf, Kind::CloseAck, ids);
    seal(buf);
}

/// Writes a REFUSE into `buf`, replacing its contents.
pub fn encode_refuse(buf: &mut Vec<u8>, ids: Ids, reason: RefuseReason) {
    header(buf, Kind::Refuse, ids);
    buf.put_u32_le(reason as u32);
    seal(buf);
}

/// Writes a round-trip probe (a PING carrying `token`) into `buf`, replacing its contents.
pub fn encode_probe(buf: &mut Vec<u8>, ids: Ids, acks: Acks, token: u32) {
    header(buf, Kind::Ping, ids);
    put_acks(buf, acks);
    buf.put_u32_le(token);
    seal(buf);
}

/// Writes the answer to a probe (an ACK echoing `token`, answered `delay_us` after it arrived) into `buf`.
pub fn encode_echo(buf: &mut Vec<u8>, ids: Ids, acks: Acks, token: u32, delay_us: u32) {
    header(buf, Kind::Ack, ids);
    put_acks(buf, acks);
    buf.put_u32_le(token);
    buf.put_u32_le(delay_us);
    seal(buf);
}

/// Writes an ACK, PING or CLOSE into `buf`, replacing its contents.
pub fn encode_control(buf: &mut Vec<u8>, kind: Kind, ids: Ids, acks: Acks) {
    debug_assert!(kind.carries_acks() && kind != Kind::Data);
    header(buf, kind, ids);
    put_acks(buf, acks);
    seal(buf);
}

/// Where a DATA datagram's fragment belongs: its sequence number, channel and number within the channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DataPlace {
    /// The datagram's sequence number.
    pub seq: Seq,
    /// Its message's channel.
    pub channel: u8,
    /// Its number among its channel's DATA datagrams.
    pub chan_seq: Seq,
}

/// Writes a DATA datagram carrying one fragment into `buf`, replacing its contents.
pub fn encode_data(
    buf: &mut Vec<u8>,
    ids: Ids,
    acks: Acks,
    place: DataPlace,
    message_len: Option<u32>,
    payload: &[u8],
) {
    begin_data(buf, ids, acks);
    put_fragment(buf, place, message_len, payload, false, false);
    seal(buf);
}

/// Starts a DATA datagram in `buf` (replacing its contents): the header and the acknowledgement block. Add its
/// fragments with [`put_fragment`], the last with `more` false, then [`seal`] it.
pub fn begin_data(buf: &mut Vec<u8>, ids: Ids, acks: Acks) {
    header(buf, Kind::Data, ids);
    put_acks(buf, acks);
}

/// Appends a fragment to a DATA datagram begun with [`begin_data`]: `more` when another follows, `copy` when it
/// repeats a fragment sent before.
pub fn put_fragment(
    buf: &mut Vec<u8>,
    place: DataPlace,
    message_len: Option<u32>,
    payload: &[u8],
    more: bool,
    copy: bool,
) {
    buf.put_u32_le(place.seq.0);
    let flags = if message_len.is_some() { FLAG_FIRST } else { 0 }
        | if more { FLAG_MORE } else { 0 }
        | if copy { FLAG_COPY } else { 0 };
    buf.push(flags);
    buf.push(place.channel);
    buf.put_u32_le(place.chan_seq.0);
    if let Some(len) = message_len {
        buf.put_u32_le(len);
    }
    if more {
        buf.put_u16_le(payload.len() as u16);
    }
    buf.extend_from_slice(payload);
}

/// The bytes a fragment of `payload_len` takes in a DATA datagram when another follows it.
pub fn bundled_len(payload_len: usize, first: bool) -> usize {
    DATA_PREFIX_LEN + MORE_EXTRA + payload_len + if first { FIRST_FRAGMENT_EXTRA } else { 0 }
}

/// Writes an UNRELIABLE datagram into `buf`, replacing its contents.
pub fn encode_unreliable(buf: &mut Vec<u8>, ids: Ids, fragment: &UnreliableFragment) {
    header(buf, Kind::Unreliable, ids);
    buf.push(fragment.channel);
    buf.push(if fragment.ordered { FLAG_ORDERED } else { 0 });
    buf.put_u32_le(fragment.number.0);
    buf.put_u16_le(fragment.index);
    buf.put_u16_le(fragment.count);
    buf.extend_from_slice(&fragment.payload);
    seal(buf);
}

/// Reads and checks a datagram, in the order docs/PROTOCOL.md gives. Never panics, whatever the bytes. A DATA
/// payload is copied out; [`decode_bytes`] shares it instead.
pub fn decode(datagram: &[u8]) -> Result<Datagram, DecodeError> {
    decode_with(datagram, |range| Bytes::copy_from_slice(&datagram[range]))
}

/// As [`decode`], with a DATA payload that is a slice of `datagram` (no copy; it keeps the datagram's memory
/// alive while the payload is held).
pub fn decode_bytes(datagram: &Bytes) -> Result<Datagram, DecodeError> {
    decode_with(datagram, |range| datagram.slice(range))
}

fn decode_with(
    datagram: &[u8],
    payload: impl Fn(std::ops::Range<usize>) -> Bytes,
) -> Result<Datagram, DecodeError> {
    if datagram.len() < CRC_RANGE.end || datagram[..2] != MAGIC {
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
    if datagram.len() < HEADER_LEN {
        return Err(DecodeError::Malformed);
    }
    let ids = Ids {
        dst: u32::from_le_bytes(read4(datagram, 8)),
        src: u32::from_le_bytes(read4(datagram, 12)),
    };
    if ids.src == 0 {
        return Err(DecodeError::Malformed);
    }
    let body = &datagram[HEADER_LEN..];
    let mut decoded = Datagram {
        kind,
        ids,
        hello: None,
        acks: None,
        fragment: None,
        bundled: Vec::new(),
        unreliable: None,
        refused: None,
        probe: None,
        echo: None,
    };
    match kind {
        Kind::Hello => {
            if body.len() != HELLO_LEN - HEADER_LEN {
                return Err(DecodeError::Malformed);
            }
            decoded.hello = Some(Hello {
                initial_seq: Seq(u32::from_le_bytes(read4(body, 0))),
                mtu: u32::from_le_bytes(read4(body, 4)),
                max_message_size: u32::from_le_bytes(read4(body, 8)),
                receive_window: u32::from_le_bytes(read4(body, 12)),
            });
        }
        Kind::CloseAck => {
            if !body.is_empty() {
                return Err(DecodeError::Malformed);
            }
        }
        Kind::Refuse => {
            if body.len() != REFUSE_LEN - HEADER_LEN {
                return Err(DecodeError::Malformed);
            }
            decoded.refused = Some(RefuseReason::from_code(u32::from_le_bytes(read4(body, 0))));
        }
        Kind::Unreliable => {
            const PREFIX: usize = UNRELIABLE_HEADER_LEN - HEADER_LEN;
            if body.len() < PREFIX || body[1] & !FLAG_ORDERED != 0 {
                return Err(DecodeError::Malformed);
            }
            let index = u16::from_le_bytes([body[6], body[7]]);
            let count = u16::from_le_bytes([body[8], body[9]]);
            if count == 0 || index >= count {
                return Err(DecodeError::Malformed);
            }
            decoded.unreliable = Some(UnreliableFragment {
                channel: body[0],
                ordered: body[1] & FLAG_ORDERED != 0,
                number: Seq(u32::from_le_bytes(read4(body, 2))),
                index,
                count,
                payload: payload(UNRELIABLE_HEADER_LEN..datagram.len()),
            });
        }
        _ => {
            if body.len() < ACKS_LEN {
                return Err(DecodeError::Malformed);
            }
            decoded.acks = Some(Acks {
                next: Seq(u32::from_le_bytes(read4(body, 0))),
                largest: Seq(u32::from_le_bytes(read4(body, 4))),
                bits: u64::from_le_bytes(read8(body, 8)),
                recent: Seq(u32::from_le_bytes(read4(body, 16))),
                delay_us: u32::from_le_bytes(read4(body, 20)),
                credit: u64::from_le_bytes(read8(body, 24)),
            });
            let rest = &body[ACKS_LEN..];
            if kind == Kind::Data {
                let mut at = HEADER_LEN + ACKS_LEN;
                loop {
                    let (place, message_len, flags, start) = decode_fragment(&datagram[at..])?;
                    let start = at + start;
                    let end = if flags & FLAG_MORE != 0 {
                        if datagram.len() < start + MORE_EXTRA {
                            return Err(DecodeError::Malformed);
                        }
                        let len =
                            u16::from_le_bytes([datagram[start], datagram[start + 1]]) as usize;
                        let end = start + MORE_EXTRA + len;
                        if end > datagram.len() {
                            return Err(DecodeError::Malformed);
                        }
                        end
                    } else {
                        datagram.len()
                    };
                    let payload_start = if flags & FLAG_MORE != 0 {
                        start + MORE_EXTRA
                    } else {
                        start
                    };
                    if let Some(len) = message_len {
                        if (end - payload_start) as u64 > len as u64 {
                            return Err(DecodeError::Malformed);
                        }
                    }
                    let fragment = Fragment {
                        seq: place.seq,
                        channel: place.channel,
                        chan_seq: place.chan_seq,
                        message_len,
                        copy: flags & FLAG_COPY != 0,
                        payload: payload(payload_start..end),
                    };
                    // The last fragment (the one a datagram of a single fragment carries) needs no list.
                    if flags & FLAG_MORE == 0 {
                        decoded.fragment = Some(fragment);
                        break;
                    }
                    decoded.bundled.push(fragment);
                    at = end;
                }
            } else if kind == Kind::Ping && rest.len() == PROBE_LEN - CONTROL_LEN {
                decoded.probe = Some(u32::from_le_bytes(read4(rest, 0)));
            } else if kind == Kind::Ack && rest.len() == ECHO_LEN - CONTROL_LEN {
                decoded.echo = Some((
                    u32::from_le_bytes(read4(rest, 0)),
                    u32::from_le_bytes(read4(rest, 4)),
                ));
            } else if !rest.is_empty() {
                return Err(DecodeError::Malformed);
            }
        }
    }
    Ok(decoded)
}

/// The receiver id a datagram of this version names, read without checking the rest.
pub fn addressed_to(datagram: &[u8]) -> Option<u32> {
    (datagram.len() >= HEADER_LEN && datagram[..2] == MAGIC && datagram[2] == VERSION)
        .then(|| u32::from_le_bytes(read4(datagram, 8)))
}

/// A DATA fragment's place, message length and flags, and where what follows them starts within `body`. A
/// first fragment's payload is checked against its length by the caller, which knows where the payload ends.
fn decode_fragment(body: &[u8]) -> Result<(DataPlace, Option<u32>, u8, usize), DecodeError> {
    if body.len() < DATA_PREFIX_LEN {
        return Err(DecodeError::Malformed);
    }
    let place = DataPlace {
        seq: Seq(u32::from_le_bytes(read4(body, 0))),
        channel: body[5],
        chan_seq: Seq(u32::from_le_bytes(read4(body, 6))),
    };
    let flags = body[4];
    if flags & !FLAGS_KNOWN != 0 {
        return Err(DecodeError::Malformed);
    }
    let mut at = DATA_PREFIX_LEN;
    let message_len = if flags & FLAG_FIRST != 0 {
        if body.len() < at + FIRST_FRAGMENT_EXTRA {
            return Err(DecodeError::Malformed);
        }
        let len = u32::from_le_bytes(read4(body, at));
        at += FIRST_FRAGMENT_EXTRA;
        Some(len)
    } else {
        None
    };
    Ok((place, message_len, flags, at))
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

    const IDS: Ids = Ids {
        dst: 0x1234_5678,
        src: 0x9ABC_DEF0,
    };

    fn acks() -> Acks {
        Acks {
            next: Seq(0xDEAD_BEEF),
            largest: Seq(0xDEAD_BEFF),
            bits: 0x0123_4567_89AB_CDEF,
            recent: Seq(0xDEAD_BEF0),
            delay_us: 12_345,
            credit: 0x0102_0304_0506_0708,
        }
    }

    #[test]
    fn data_round_trips() {
        let mut buf = Vec::new();
        encode_data(
            &mut buf,
            IDS,
            acks(),
            DataPlace {
                seq: Seq(42),
                ..Default::default()
            },
            Some(10),
            b"hello",
        );
        assert_eq!(buf.len(), MAX_OVERHEAD + 5);
        let d = decode(&buf).unwrap();
        assert_eq!(
            (d.kind, d.ids, d.acks, d.hello),
            (Kind::Data, IDS, Some(acks()), None)
        );
        let f = d.fragment.unwrap();
        assert_eq!(
            (f.seq, f.message_len, &f.payload[..]),
            (Seq(42), Some(10), &b"hello"[..])
        );
        assert_eq!(f.cost(), 5 + MESSAGE_CHARGE);
        encode_data(
            &mut buf,
            IDS,
            acks(),
            DataPlace {
                seq: Seq(43),
                ..Default::default()
            },
            None,
            b"world",
        );
        let f = decode(&buf).unwrap().fragment.unwrap();
        assert_eq!(
            (f.seq, f.message_len, &f.payload[..]),
            (Seq(43), None, &b"world"[..])
        );
        assert_eq!(f.cost(), 5);
    }

    #[test]
    fn a_data_datagram_carries_its_channel_and_place_in_it() {
        let mut buf = Vec::new();
        let place = DataPlace {
            seq: Seq(7),
            channel: 200,
            chan_seq: Seq(0xDEAD_BEEF),
        };
        encode_data(&mut buf, IDS, acks(), place, None, b"x");
        let f = decode(&buf).unwrap().fragment.unwrap();
        assert_eq!(
            (f.seq, f.channel, f.chan_seq),
            (Seq(7), 200, Seq(0xDEAD_BEEF))
        );
    }

    #[test]
    fn a_data_datagram_carries_copies_before_its_own_fragment() {
        let mut buf = Vec::new();
        let place = |seq| DataPlace {
            seq: Seq(seq),
            channel: 1,
            chan_seq: Seq(seq),
        };
        begin_data(&mut buf, IDS, acks());
        put_fragment(&mut buf, place(5), Some(3), b"abc", true, true);
        put_fragment(&mut buf, place(6), None, b"de", true, true);
        put_fragment(&mut buf, place(7), Some(4), b"fghi", false, false);
        seal(&mut buf);
        assert_eq!(
            buf.len(),
            CONTROL_LEN + bundled_len(3, true) + bundled_len(2, false) + DATA_PREFIX_LEN + 4 + 4
        );
        let d = decode(&buf).unwrap();
        let got: Vec<_> = d
            .bundled
            .iter()
            .chain(&d.fragment)
            .map(|f| (f.seq.0, f.message_len, f.copy, f.payload.to_vec()))
            .collect();
        assert_eq!(
            got,
            [
                (5, Some(3), true, b"abc".to_vec()),
                (6, None, true, b"de".to_vec()),
                (7, Some(4), false, b"fghi".to_vec()),
            ]
        );
        // A stated payload length running past the end, or a copy longer than its message, is malformed.
        let mut bad = buf.clone();
        let at = CONTROL_LEN + DATA_PREFIX_LEN + FIRST_FRAGMENT_EXTRA;
        bad[at..at + 2].copy_from_slice(&500u16.to_le_bytes());
        seal(&mut bad);
        assert_eq!(decode(&bad), Err(DecodeError::Malformed));
        begin_data(&mut buf, IDS, acks());
        put_fragment(&mut buf, place(5), Some(2), b"abc", true, true);
        put_fragment(&mut buf, place(6), None, b"x", false, false);
        seal(&mut buf);
        assert_eq!(decode(&buf), Err(DecodeError::Malformed));
    }

    #[test]
    fn unreliable_round_trips_and_bad_counts_are_malformed() {
        let mut buf = Vec::new();
        let fragment = UnreliableFragment {
            channel: 9,
            ordered: true,
            number: Seq(5),
            index: 2,
            count: 3,
            payload: Bytes::from_static(b"state"),
        };
        encode_unreliable(&mut buf, IDS, &fragment);
        assert_eq!(buf.len(), UNRELIABLE_HEADER_LEN + 5);
        let d = decode(&buf).unwrap();
        assert_eq!(
            (d.kind, d.acks, d.unreliable),
            (Kind::Unreliable, None, Some(fragment.clone()))
        );
        for (index, count) in [(3, 3), (0, 0)] {
            let bad = UnreliableFragment {
                index,
                count,
                ..fragment.clone()
            };
            encode_unreliable(&mut buf, IDS, &bad);
            assert_eq!(
                decode(&buf),
                Err(DecodeError::Malformed),
                "{index} of {count}"
            );
        }
        encode_unreliable(&mut buf, IDS, &fragment);
        buf[HEADER_LEN + 1] = 2;
        seal(&mut buf);
        assert_eq!(decode(&buf), Err(DecodeError::Malformed), "an unknown flag");
        buf.truncate(UNRELIABLE_HEADER_LEN - 1);
        seal(&mut buf);
        assert_eq!(decode(&buf), Err(DecodeError::Malformed), "too short");
    }

    #[test]
    fn control_hello_and_close_ack_round_trip() {
        let mut buf = Vec::new();
        for kind in [Kind::Ack, Kind::Ping, Kind::Close] {
            encode_control(&mut buf, kind, IDS, acks());
            assert_eq!(buf.len(), CONTROL_LEN);
            let d = decode(&buf).unwrap();
            assert_eq!(
                (d.kind, d.ids, d.acks, d.fragment),
                (kind, IDS, Some(acks()), None)
            );
        }
        let hello = Hello {
            initial_seq: Seq(77),
            mtu: 1200,
            max_message_size: 1 << 20,
            receive_window: 4 << 20,
        };
        encode_hello(&mut buf, IDS, hello);
        assert_eq!(buf.len(), HELLO_LEN);
        let d = decode(&buf).unwrap();
        assert_eq!(
            (d.kind, d.ids, d.hello, d.acks),
            (Kind::Hello, IDS, Some(hello), None)
        );
        encode_close_ack(&mut buf, IDS);
        assert_eq!(buf.len(), HEADER_LEN);
        let d = decode(&buf).unwrap();
        assert_eq!((d.kind, d.ids, d.acks), (Kind::CloseAck, IDS, None));
    }

    #[test]
    fn probes_and_echoes_round_trip_and_other_lengths_are_malformed() {
        let mut buf = Vec::new();
        encode_probe(&mut buf, IDS, acks(), 0xCAFE_F00D);
        assert_eq!(buf.len(), PROBE_LEN);
        let d = decode(&buf).unwrap();
        assert_eq!(
            (d.kind, d.acks, d.probe, d.echo),
            (Kind::Ping, Some(acks()), Some(0xCAFE_F00D), None)
        );
        encode_echo(&mut buf, IDS, acks(), 0xCAFE_F00D, 1234);
        assert_eq!(buf.len(), ECHO_LEN);
        let d = decode(&buf).unwrap();
        assert_eq!(
            (d.kind, d.acks, d.probe, d.echo),
            (Kind::Ack, Some(acks()), None, Some((0xCAFE_F00D, 1234)))
        );
        // A plain PING and ACK carry neither; a CLOSE with extra bytes, or a PING with an echo's, is malformed.
        encode_control(&mut buf, Kind::Ping, IDS, acks());
        assert_eq!(decode(&buf).unwrap().probe, None);
        encode_echo(&mut buf, IDS, acks(), 1, 2);
        buf[3] = Kind::Ping as u8;
        seal(&mut buf);
        assert_eq!(decode(&buf), Err(DecodeError::Malformed));
        encode_probe(&mut buf, IDS, acks(), 1);
        buf[3] = Kind::Close as u8;
        seal(&mut buf);
        assert_eq!(decode(&buf), Err(DecodeError::Malformed));
    }

    #[test]
    fn refuse_round_trips_smaller_than_the_hello_it_answers() {
        let mut buf = Vec::new();
        for reason in [
            RefuseReason::Full,
            RefuseReason::TooManyPending,
            RefuseReason::NotAccepting,
        ] {
            encode_refuse(&mut buf, IDS, reason);
            assert_eq!(buf.len(), REFUSE_LEN);
            const { assert!(REFUSE_LEN < HELLO_LEN) };
            let d = decode(&buf).unwrap();
            assert_eq!(
                (d.kind, d.ids, d.refused),
                (Kind::Refuse, IDS, Some(reason))
            );
        }
        // A reason code this build does not know (a newer server's) still refuses.
        encode_refuse(&mut buf, IDS, RefuseReason::Full);
        buf[HEADER_LEN] = 99;
        seal(&mut buf);
        assert_eq!(
            decode(&buf).unwrap().refused,
            Some(RefuseReason::NotAccepting)
        );
        buf.push(0);
        seal(&mut buf);
        assert_eq!(decode(&buf), Err(DecodeError::Malformed));
    }

    #[test]
    fn every_single_bit_flip_is_caught() {
        let mut buf = Vec::new();
        encode_data(
            &mut buf,
            IDS,
            acks(),
            DataPlace {
                seq: Seq(1),
                ..Default::default()
            },
            Some(3),
            b"abc",
        );
        for bit in 0..buf.len() * 8 {
            let mut bad = buf.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(decode(&bad).is_err(), "flip of bit {bit} went unnoticed");
        }
    }

    #[test]
    fn foreign_short_and_malformed_datagrams_are_refused() {
        assert_eq!(decode(b""), Err(DecodeError::Foreign));
        assert_eq!(decode(b"PK\x02"), Err(DecodeError::Foreign));
        assert_eq!(decode(&[0u8; 40]), Err(DecodeError::Foreign));
        let mut buf = Vec::new();
        // Each of these is re-sealed, so the checksum is valid and the parser itself must refuse it.
        let resealed = |buf: &mut Vec<u8>, edit: &dyn Fn(&mut Vec<u8>)| {
            edit(buf);
            seal(buf);
            decode(buf)
        };
        encode_control(&mut buf, Kind::Ack, IDS, acks());
        assert_eq!(
            resealed(&mut buf, &|b| b[3] = 99),
            Err(DecodeError::Malformed),
            "unknown kind"
        );
        encode_control(&mut buf, Kind::Ack, IDS, acks());
        assert_eq!(
            resealed(&mut buf, &|b| b[12..16].fill(0)),
            Err(DecodeError::Malformed),
            "sender id 0"
        );
        encode_control(&mut buf, Kind::Ping, IDS, acks());
        assert_eq!(
            resealed(&mut buf, &|b| b.push(0)),
            Err(DecodeError::Malformed),
            "trailing byte"
        );
        encode_control(&mut buf, Kind::Ping, IDS, acks());
        assert_eq!(
            resealed(&mut buf, &|b| b.truncate(20)),
            Err(DecodeError::Malformed),
            "short acks"
        );
        encode_hello(&mut buf, IDS, Hello::default());
        assert_eq!(
            resealed(&mut buf, &|b| b.push(0)),
            Err(DecodeError::Malformed),
            "long hello"
        );
        encode_close_ack(&mut buf, IDS);
        assert_eq!(
            resealed(&mut buf, &|b| b.push(0)),
            Err(DecodeError::Malformed),
            "long close ack"
        );
        encode_data(
            &mut buf,
            IDS,
            acks(),
            DataPlace {
                seq: Seq(1),
                ..Default::default()
            },
            Some(2),
            b"abc",
        );
        assert_eq!(
            decode(&buf),
            Err(DecodeError::Malformed),
            "a first fragment longer than its message"
        );
        encode_data(
            &mut buf,
            IDS,
            acks(),
            DataPlace {
                seq: Seq(1),
                ..Default::default()
            },
            None,
            b"abc",
        );
        assert_eq!(
            resealed(&mut buf, &|b| b[CONTROL_LEN + 4] = 2),
            Err(DecodeError::Malformed),
            "unknown flag"
        );
    }

    #[test]
    fn another_version_is_reported_as_such_even_a_version_1_datagram() {
        let mut buf = Vec::new();
        encode_control(&mut buf, Kind::Ping, IDS, acks());
        buf[2] = 4;
        seal(&mut buf);
        assert_eq!(decode(&buf), Err(DecodeError::Version(4)));
        // A version 2 PING (the same layout, another version byte): refused as such.
        buf[2] = 2;
        seal(&mut buf);
        assert_eq!(decode(&buf), Err(DecodeError::Version(2)));
        // A version 1 PING as version 1 wrote it: 32 bytes, the same magic, version byte and checksum field.
        let mut v1 = vec![0u8; 32];
        v1[..4].copy_from_slice(&[b'P', b'K', 1, 3]);
        seal(&mut v1);
        assert_eq!(decode(&v1), Err(DecodeError::Version(1)));
    }
}
