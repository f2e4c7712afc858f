//! Two whole connections, with the fuzzer as the network between them and as the reader: each input byte is an
//! action (deliver, drop, duplicate, reorder, corrupt a datagram in flight; let time pass; send a message; let
//! the receiver read or not; close). Invariants, checked after every action:
//! - on each of three reliable channels, the receiver gets exactly a prefix of the messages sent on it, in order,
//!   byte-identical; unreliable-ordered messages (a fourth kind of send) arrive at most once each, never after a
//!   newer one, and byte-identical; nothing panics;
//! - nothing is marked delivered that the receiver did not store: the messages the sender counts as
//!   acknowledged never outnumber those the receiver has completed (read or waiting to be read);
//! and at the end, liveness: once the network is clean and the reader drains, every accepted message arrives
//! (unless a side closed or failed, which it then says). (Forged datagrams with valid checksums are the
//! `sender_acks` and `datagram_decode` targets' business: a checksum is not authentication.)

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use peerkit_core::reliable::{Connection, ReliableConfig, ReliableError, Status, TransferMode};

const CHANNELS: usize = 3;

/// What was sent, and what has arrived, per reliable channel; and the unreliable-ordered messages.
#[derive(Default)]
struct Tally {
    sent: [Vec<Bytes>; CHANNELS],
    received: [usize; CHANNELS],
    unreliable_sent: u32,
    unreliable_newest: Option<u32>,
}

impl Tally {
    fn sent_total(&self) -> usize {
        self.sent.iter().map(Vec::len).sum()
    }

    fn received_total(&self) -> usize {
        self.received.iter().sum()
    }
}

const TIMEOUT_US: u64 = 5_000_000;

fuzz_target!(|data: &[u8]| {
    let config = ReliableConfig {
        mtu: 96,
        max_message_size: 2048,
        // A small receive window, so a reader that stops reading soon holds the sender back.
        receive_buffer_bytes: 4096,
        timeout_us: TIMEOUT_US,
        ..ReliableConfig::default()
    };
    let mut a = Connection::new(config.clone(), 0, 1);
    let mut b = Connection::new(config, 0, 2);
    let mut in_flight: Vec<Vec<u8>> = Vec::new();
    let mut tally = Tally::default();
    let mut reading = true;
    let mut now = 0u64;
    let mut buf = Vec::new();
    let mut closed = false;
    for (i, &action) in data.iter().enumerate() {
        let arg = data.get(i + 1).copied().unwrap_or(0) as usize;
        match action % 9 {
            0 if arg % 4 == 3 => {
                // Unreliable-ordered, on channel 1: its number, then bytes that follow from it (some span
                // several datagrams).
                let n = tally.unreliable_sent;
                let mut message = n.to_le_bytes().to_vec();
                message.extend((0..arg * 3).map(|j| (j as u32 + n) as u8));
                if a.send_on(1, TransferMode::UnreliableOrdered, Bytes::from(message)).is_ok() {
                    tally.unreliable_sent += 1;
                }
            }
            0 => {
                let channel = arg % 4;
                let size = arg * 9;
                let message: Bytes = (0..size)
                    .map(|j| (j + tally.sent[channel].len()) as u8)
                    .collect();
                if a.send_on(channel as u8, TransferMode::Reliable, message.clone()).is_ok() {
                    tally.sent[channel].push(message);
                }
            }
            1 | 2 if !in_flight.is_empty() => {
                let d = in_flight.remove(arg % in_flight.len());
                b.handle_datagram(now, &d);
            }
            3 if !in_flight.is_empty() => {
                in_flight.remove(arg % in_flight.len());
            }
            4 if !in_flight.is_empty() => {
                let d = in_flight[arg % in_flight.len()].clone();
                in_flight.push(d);
            }
            5 if !in_flight.is_empty() => {
                let k = arg % in_flight.len();
                let d = &mut in_flight[k];
                if !d.is_empty() {
                    let bit = (arg * 7) % (d.len() * 8);
                    d[bit / 8] ^= 1 << (bit % 8);
                }
            }
            6 => now += (arg as u64 + 1) * 1000,
            7 => reading = arg % 2 == 0,
            8 if arg == 255 => {
                a.close(now);
                closed = true;
            }
            _ => {}
        }
        let mut out = Vec::new();
        exchange(&mut a, &mut b, now, &mut buf, &mut out);
        in_flight.extend(out.into_iter().take(512usize.saturating_sub(in_flight.len())));
        if reading {
            drain(&mut b, &mut tally);
        }
        check_acknowledged(&a, &b, tally.received_total());
    }
    // Liveness: a clean network and a reader that drains. Every accepted message must arrive, unless a side
    // times out within one timeout of the network becoming clean (its silence began before); nothing else may
    // fail it.
    let open = |c: &Connection| matches!(c.status(), Status::Connecting | Status::Connected);
    if closed || !open(&a) || !open(&b) {
        return;
    }
    let clean_from = now;
    for d in in_flight.drain(..) {
        b.handle_datagram(now, &d);
    }
    for _ in 0..20_000 {
        // At least a millisecond on, and straight to the next timer when nothing is due sooner.
        let next = [a.poll_timeout(), b.poll_timeout()].into_iter().flatten().min();
        now = next.unwrap_or(0).max(now + 1000);
        let mut out = Vec::new();
        exchange(&mut a, &mut b, now, &mut buf, &mut out);
        for d in out {
            b.handle_datagram(now, &d);
        }
        drain(&mut b, &mut tally);
        check_acknowledged(&a, &b, tally.received_total());
        if tally.received == tally.sent.each_ref().map(Vec::len) {
            return;
        }
        if !open(&a) || !open(&b) {
            for side in [&a, &b] {
                let timed_out = matches!(
                    side.error(),
                    None | Some(ReliableError::TimedOut { .. } | ReliableError::HandshakeTimedOut { .. })
                );
                assert!(
                    timed_out && now <= clean_from + TIMEOUT_US,
                    "only a timeout that began before the network was clean may end the connection: {:?} at {} ms, clean from {} ms",
                    side.error(),
                    now / 1000,
                    clean_from / 1000
                );
            }
            return;
        }
    }
    panic!(
        "on a clean network with a draining reader every accepted message arrives: {} of {} (a {:?} {:?}, b {:?} {:?})",
        tally.received_total(),
        tally.sent_total(),
        a.status(),
        a.stats(),
        b.status(),
        b.stats()
    );
});

/// Runs both sides' timers and transmissions: a's datagrams go into `to_b` (the network decides their fate),
/// b's straight back to a.
fn exchange(a: &mut Connection, b: &mut Connection, now: u64, buf: &mut Vec<u8>, to_b: &mut Vec<Vec<u8>>) {
    a.handle_timeout(now);
    while a.poll_transmit(now, buf) {
        to_b.push(buf.clone());
    }
    b.handle_timeout(now);
    while b.poll_transmit(now, buf) {
        a.handle_datagram(now, buf);
    }
}

fn drain(b: &mut Connection, tally: &mut Tally) {
    while let Some(m) = b.recv_message() {
        if m.mode == TransferMode::UnreliableOrdered {
            let n = u32::from_le_bytes(m.payload[..4].try_into().expect("a number"));
            assert!(n < tally.unreliable_sent, "an unreliable message that was never sent");
            assert!(tally.unreliable_newest.is_none_or(|newest| newest < n), "unreliable-ordered went back");
            let expected: Vec<u8> = (0..m.payload.len() - 4).map(|j| (j as u32 + n) as u8).collect();
            assert_eq!(&m.payload[4..], &expected[..], "unreliable message {n} differs");
            tally.unreliable_newest = Some(n);
            continue;
        }
        let channel = m.channel as usize;
        let received = tally.received[channel];
        assert!(received < tally.sent[channel].len(), "more messages arrived on {channel} than were sent");
        assert_eq!(m.payload, tally.sent[channel][received], "message {received} of channel {channel} differs or is out of order");
        tally.received[channel] += 1;
    }
}

/// The sender counts as acknowledged only messages the receiver has completed.
fn check_acknowledged(a: &Connection, b: &Connection, received: usize) {
    let s = a.stats();
    let acknowledged =
        s.messages_sent - s.messages_pending - s.messages_discarded - s.messages_unconfirmed;
    let completed = (received + b.ready_count()) as u64;
    assert!(
        acknowledged <= completed,
        "the sender counts {acknowledged} messages acknowledged, the receiver completed {completed}: {s:?} {:?} {:?}", b.stats(), b.status()
    );
}
