//! The sending half driven by arbitrary acknowledgements. A connection is set up with a real peer, then the
//! fuzzer sends messages, moves time, and injects ACK, PING and DATA datagrams with the connection's own ids,
//! arbitrary acknowledgement fields (next, largest, bits, recent, delay, credit) and a valid checksum.
//! Invariants: nothing panics or underflows (fuzz builds check overflow); each datagram's acknowledgement work is
//! bounded by the datagrams outstanding (at most twice them plus the 66 one block can name); and the counters
//! stay consistent (nothing pending that was not sent, no more bytes in flight than were sent).

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use peerkit_core::reliable::packet::{self, Acks, Ids, Kind};
use peerkit_core::reliable::seq::Seq;
use peerkit_core::reliable::{Connection, ReliableConfig, Status};

fn u32_at(data: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    for (i, x) in b.iter_mut().enumerate() {
        *x = data.get(at + i).copied().unwrap_or(0);
    }
    u32::from_le_bytes(b)
}

fuzz_target!(|data: &[u8]| {
    let config = ReliableConfig {
        mtu: 200,
        max_message_size: 4096,
        max_window: 256,
        ..ReliableConfig::default()
    };
    let mut a = Connection::new(config.clone(), 0, 3);
    let mut b = Connection::new(config, 0, 4);
    let mut buf = Vec::new();
    let mut now = 0;
    while a.status() != Status::Connected && now < 100 {
        a.handle_timeout(now);
        while a.poll_transmit(now, &mut buf) {
            b.handle_datagram(now, &buf);
        }
        while b.poll_transmit(now, &mut buf) {
            a.handle_datagram(now, &buf);
        }
        now += 1;
    }
    assert_eq!(a.status(), Status::Connected);
    let ids = Ids {
        dst: a.local_id(),
        src: b.local_id(),
    };
    // The first sequence number a sends: read off its first DATA datagram, so forged numbers land near it.
    let mut base: Option<u32> = None;
    let mut sent_bytes = 0u64;
    for chunk in data.chunks(24) {
        let action = chunk[0] % 5;
        match action {
            0 => {
                let size = u32_at(chunk, 1) as usize % 4097;
                let message = Bytes::from(vec![chunk.get(5).copied().unwrap_or(0); size]);
                if a.send(message).is_ok() {
                    sent_bytes += size as u64;
                }
            }
            1 => now += u32_at(chunk, 1) as u64 % 2_000_000,
            _ => {
                let near = base.unwrap_or(0);
                // Numbers relative to what was sent (the interesting ones) or anywhere in the space.
                let pick = |at: usize| {
                    let raw = u32_at(chunk, at);
                    if chunk.get(23).copied().unwrap_or(0) & 1 == 0 {
                        near.wrapping_add(raw % 512).wrapping_sub(256)
                    } else {
                        raw
                    }
                };
                let acks = Acks {
                    next: Seq(pick(1)),
                    largest: Seq(pick(5)),
                    bits: u64::from(u32_at(chunk, 9)) << 32 | u64::from(u32_at(chunk, 13)),
                    recent: Seq(pick(17)),
                    delay_us: u32_at(chunk, 19) % 100_000,
                    credit: u64::from(u32_at(chunk, 13)) * 64,
                };
                let kind = [Kind::Ack, Kind::Ping, Kind::Data][(action - 2) as usize];
                if kind == Kind::Data {
                    let place = packet::DataPlace {
                        seq: Seq(pick(1)),
                        ..Default::default()
                    };
                    packet::encode_data(&mut buf, ids, acks, place, Some(1), b"x");
                } else {
                    packet::encode_control(&mut buf, kind, ids, acks);
                }
                let outstanding = a.datagrams_outstanding() as u64;
                let work = a.ack_work();
                a.handle_datagram(now, &buf);
                let spent = a.ack_work() - work;
                assert!(
                    spent <= 2 * outstanding + 66,
                    "one datagram cost {spent} steps with {outstanding} outstanding"
                );
            }
        }
        a.handle_timeout(now);
        while a.poll_transmit(now, &mut buf) {
            if base.is_none() && buf[3] == Kind::Data as u8 {
                base = Some(u32_at(&buf, packet::CONTROL_LEN));
            }
        }
        let s = a.stats();
        assert!(s.messages_pending + s.messages_discarded + s.messages_unconfirmed <= s.messages_sent);
        assert!(s.bytes_in_flight <= sent_bytes);
    }
});
