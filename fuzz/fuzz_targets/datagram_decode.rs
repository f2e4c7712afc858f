//! The datagram decoder and reassembly. The input is a series of datagrams, each prefixed with a 2-byte length
//! and a flag byte; when the flag's low bit is set the datagram is re-sealed (its checksum rewritten), so the
//! fuzzer reaches past the checksum into the parser and the receiver. Nothing may panic, and every delivered
//! message must have the length its first fragment announced and fit max_message_size.

#![no_main]

use libfuzzer_sys::fuzz_target;
use peerkit_core::reliable::packet::{decode, seal};
use peerkit_core::reliable::recv::Receiver;
use peerkit_core::reliable::seq::Seq;

const MAX_MESSAGE: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let mut receiver = Receiver::new(Seq(0), 64, 1 << 16, MAX_MESSAGE);
    let mut rest = data;
    let mut now = 0;
    while rest.len() >= 3 {
        let len = u16::from_le_bytes([rest[0], rest[1]]) as usize % 2048;
        let reseal = rest[2] & 1 == 1;
        rest = &rest[3..];
        let take = len.min(rest.len());
        let mut datagram = rest[..take].to_vec();
        rest = &rest[take..];
        if reseal && datagram.len() >= 8 {
            seal(&mut datagram);
        }
        now += 1;
        if let Ok(decoded) = decode(&datagram) {
            if let Some(fragment) = decoded.fragment {
                if receiver.receive(now, fragment).is_err() {
                    // A protocol violation: the connection would fail here. Start over, as it would.
                    receiver = Receiver::new(Seq(0), 64, 1 << 16, MAX_MESSAGE);
                }
            }
        }
        while let Some(message) = receiver.take_message() {
            assert!(message.len() <= MAX_MESSAGE);
        }
        let _ = receiver.acks(now);
    }
});
