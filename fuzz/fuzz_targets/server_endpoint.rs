//! A server `Endpoint` fed arbitrary datagrams from arbitrary addresses, with real clients' traffic mixed in so
//! the fuzzer reaches past the checks: each input action delivers forged bytes (optionally re-sealed, so the
//! checksum passes and the parser and router are what is tested), a real client's datagram, a HELLO from a new
//! address, or lets time pass. Invariants, checked after every action:
//! - nothing panics;
//! - at most `max_pending` connections are pending and at most `max_connections` held (goodbyes aside), and
//!   the endpoint's memory stays under a bound set by those limits;
//! - no address that never completed a handshake is sent more bytes than it sent (no amplification).

#![no_main]

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use peerkit_core::reliable::endpoint::HALF_OPEN_BYTES;
use peerkit_core::reliable::packet::{self, Hello, Ids};
use peerkit_core::reliable::seq::Seq;
use peerkit_core::reliable::{Endpoint, EndpointConfig, ReliableConfig, Status};

const MAX_CONNECTIONS: usize = 6;
const MAX_PENDING: usize = 3;

fuzz_target!(|data: &[u8]| {
    let connection = ReliableConfig {
        mtu: 200,
        max_message_size: 1024,
        receive_buffer_bytes: 4096,
        timeout_us: 2_000_000,
        ..ReliableConfig::default()
    };
    let mut server: Endpoint<u8> = Endpoint::new(
        EndpointConfig {
            connection: connection.clone(),
            accept: true,
            max_connections: MAX_CONNECTIONS,
            max_pending: MAX_PENDING,
        },
        1,
    );
    // Two real clients at addresses 200 and 201.
    let mut clients: Vec<Endpoint<u8>> = (0..2).map(|i| Endpoint::new(EndpointConfig::default(), 10 + i)).collect();
    let handles: Vec<_> = clients
        .iter_mut()
        .map(|c| c.connect(0, 0, connection.clone()))
        .collect();
    let mut to_server: Vec<(u8, Vec<u8>)> = Vec::new();
    let mut bytes_in: HashMap<u8, u64> = HashMap::new();
    let mut bytes_out: HashMap<u8, u64> = HashMap::new();
    let mut validated: HashSet<u8> = HashSet::new();
    let mut now = 0u64;
    let mut buf = Vec::new();
    let mut i = 0;
    while i < data.len() {
        let action = data[i];
        let from = data.get(i + 1).copied().unwrap_or(0) % 200;
        i += 2;
        match action % 6 {
            // Forged bytes, re-sealed or not.
            0 | 1 => {
                let len = (data.get(i).copied().unwrap_or(0) as usize).min(data.len() - i.min(data.len()));
                let start = (i + 1).min(data.len());
                let end = (start + len).min(data.len());
                let mut bytes = data[start..end].to_vec();
                i = end;
                if action % 6 == 1 {
                    packet::seal(&mut bytes);
                }
                *bytes_in.entry(from).or_default() += bytes.len() as u64;
                server.handle_datagram(now, from, &Bytes::from(bytes));
            }
            // A valid first HELLO from `from`.
            2 => {
                let mut hello = Vec::new();
                packet::encode_hello(
                    &mut hello,
                    Ids { dst: 0, src: 1 + from as u32 },
                    Hello {
                        initial_seq: Seq(5),
                        mtu: 200,
                        max_message_size: 1024,
                        receive_window: 4096,
                    },
                );
                *bytes_in.entry(from).or_default() += hello.len() as u64;
                server.handle_datagram(now, from, &Bytes::from(hello));
            }
            // A real client's datagrams reach the server.
            3 => {
                for (addr, d) in to_server.drain(..) {
                    *bytes_in.entry(addr).or_default() += d.len() as u64;
                    server.handle_datagram(now, addr, &Bytes::from(d));
                }
            }
            // Time passes.
            4 => now += 1_000 * (1 + from as u64),
            _ => {
                let c = from as usize % clients.len();
                let _ = clients[c]
                    .connection_mut(handles[c])
                    .map(|conn| conn.send(Bytes::from(vec![from; from as usize])));
            }
        }
        server.handle_timeout(now);
        while let Some(t) = server.poll_transmit(now, &mut buf) {
            *bytes_out.entry(t.to).or_default() += buf.len() as u64;
            if let Some(c) = t.to.checked_sub(200).map(usize::from).filter(|&c| c < clients.len()) {
                clients[c].handle_datagram(now, 0, &Bytes::copy_from_slice(&buf));
            }
        }
        for (c, client) in clients.iter_mut().enumerate() {
            client.handle_timeout(now);
            while client.poll_transmit(now, &mut buf).is_some() {
                to_server.push((200 + c as u8, buf.clone()));
            }
        }
        // An address whose handshake completed (its id was echoed back) may be sent more than it sent.
        for h in server.handles().collect::<Vec<_>>() {
            if server.connection(h).is_some_and(|conn| conn.status() == Status::Connected) {
                validated.insert(*server.address(h).expect("held"));
            }
        }
        while server.accept().is_some() {}
        assert!(server.pending_count() <= MAX_PENDING);
        assert!(server.connection_count() <= MAX_CONNECTIONS);
        // Owned connections may buffer up to their receive window; pending ones hold no message data.
        let bound = MAX_CONNECTIONS * (HALF_OPEN_BYTES + 1024 + 4 * 4096 + 64 * 1024) + 64 * 64;
        assert!(server.memory_bytes() <= bound, "{} > {bound}", server.memory_bytes());
        for (addr, out) in &bytes_out {
            if !validated.contains(addr) {
                let got = bytes_in.get(addr).copied().unwrap_or(0);
                assert!(*out <= got, "address {addr}: {out} bytes out for {got} in");
            }
        }
    }
});
