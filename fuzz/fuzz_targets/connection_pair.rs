//! Two whole connections, with the fuzzer as the network between them: each input byte is an action (deliver,
//! drop, duplicate, reorder, corrupt a datagram in flight; let time pass; send a message; close). Invariant: the
//! receiver gets exactly a prefix of the messages sent, in order, byte-identical; nothing panics. (Forged
//! datagrams with valid checksums are the decoder target's business: a checksum is not authentication.)

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use peerkit_core::reliable::{Connection, ReliableConfig};

fuzz_target!(|data: &[u8]| {
    let config = ReliableConfig {
        mtu: 96,
        max_message_size: 2048,
        timeout_us: 5_000_000,
        ..ReliableConfig::default()
    };
    let mut a = Connection::new(config.clone(), 0);
    let mut b = Connection::new(config, 0);
    let mut in_flight: Vec<Vec<u8>> = Vec::new();
    let mut sent: Vec<Bytes> = Vec::new();
    let mut received = 0usize;
    let mut now = 0u64;
    let mut buf = Vec::new();
    for (i, &action) in data.iter().enumerate() {
        let arg = data.get(i + 1).copied().unwrap_or(0) as usize;
        match action % 8 {
            0 => {
                let size = arg * 9;
                let message: Bytes = (0..size).map(|j| (j + sent.len()) as u8).collect();
                if a.send(message.clone()).is_ok() {
                    sent.push(message);
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
            7 if arg == 255 => a.close(),
            _ => {}
        }
        a.handle_timeout(now);
        while a.poll_transmit(now, &mut buf) {
            if in_flight.len() < 512 {
                in_flight.push(buf.clone());
            }
        }
        b.handle_timeout(now);
        while b.poll_transmit(now, &mut buf) {
            a.handle_datagram(now, &buf);
        }
        while let Some(message) = b.recv() {
            assert!(received < sent.len(), "more messages arrived than were sent");
            assert_eq!(message, sent[received], "message {received} differs or is out of order");
            received += 1;
        }
    }
});
