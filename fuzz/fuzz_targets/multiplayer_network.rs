//! The multiplayer network driven by arbitrary calls: peers created, closed and disconnected, packets of every
//! mode sent to every kind of target, links reconfigured (cut, lossy, jittery, reordering), time moved.
//! Invariants: nothing panics; reliable packets arrive in order per sender and channel, each once; unreliable-
//! ordered ones never go back; and once every link is made clean and time runs on, every reliable packet sent
//! over a connection that is still open has arrived.

#![no_main]

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use peerkit_core::link::{LinkConfig, LinkConfigError};
use peerkit_core::multiplayer::{Direction, Network, PeerId, Status, TransferMode, SERVER_ID};

const MODES: [TransferMode; 3] = [
    TransferMode::Unreliable,
    TransferMode::UnreliableOrdered,
    TransferMode::Reliable,
];

/// Per (sender, receiver, channel): the reliable packets sent (their numbers), and what arrived.
#[derive(Default)]
struct Ledger {
    reliable_sent: BTreeMap<(PeerId, PeerId, u8), Vec<u64>>,
    reliable_got: BTreeMap<(PeerId, PeerId, u8), Vec<u64>>,
    ordered_newest: BTreeMap<(PeerId, PeerId, u8), u64>,
}

fn connected_clients(net: &Network) -> Vec<PeerId> {
    net.peers()
        .into_iter()
        .filter(|(id, s)| *id != SERVER_ID && *s == Status::Connected)
        .map(|(id, _)| id)
        .collect()
}

fn read_all(net: &mut Network, ledger: &mut Ledger) {
    for (id, _) in net.peers() {
        net.take_events(id);
        while let Some(p) = net.pop(id) {
            let number = u64::from_le_bytes(p.data[..8].try_into().expect("8-byte payloads"));
            let key = (p.from, id, p.channel);
            match p.mode {
                TransferMode::Reliable => {
                    let got = ledger.reliable_got.entry(key).or_default();
                    assert!(
                        got.last().is_none_or(|&last| number > last),
                        "reliable {number} after {got:?} on {key:?}"
                    );
                    got.push(number);
                }
                TransferMode::UnreliableOrdered => {
                    let newest = ledger.ordered_newest.entry(key).or_insert(0);
                    assert!(number > *newest, "ordered {number} after {newest} on {key:?}");
                    *newest = number;
                }
                TransferMode::Unreliable => {}
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut net = Network::new(data.len() as u64);
    let mut ledger = Ledger::default();
    let mut now = 0u64;
    let mut number = 0u64;
    for chunk in data.chunks_exact(5) {
        let peers: Vec<PeerId> = net.peers().into_iter().map(|(id, _)| id).collect();
        let pick = |i: u8| peers.get(i as usize % peers.len().max(1)).copied().unwrap_or(SERVER_ID);
        match chunk[0] % 8 {
            0 => {
                net.create_client();
            }
            1 => {
                let _ = net.create_server();
            }
            2 | 3 => {
                let from = pick(chunk[1]);
                let mode = MODES[chunk[2] as usize % 3];
                let channel = chunk[3] % 3;
                let target = match chunk[4] % 3 {
                    0 => 0,
                    1 => pick(chunk[4] / 3),
                    _ => -pick(chunk[4] / 3),
                };
                // Who should get it, as the network's rules say.
                let destinations: Vec<PeerId> = if from == SERVER_ID {
                    let clients = connected_clients(&net);
                    match target {
                        0 => clients,
                        t if t > 0 => clients.into_iter().filter(|c| *c == t).collect(),
                        t => clients.into_iter().filter(|c| *c != -t).collect(),
                    }
                } else {
                    vec![SERVER_ID]
                };
                number += 1;
                let mut payload = number.to_le_bytes().to_vec();
                payload.resize(8 + chunk[4] as usize % 40, 0);
                if net
                    .send(from, now, target, mode, i64::from(channel), Bytes::from(payload))
                    .is_ok()
                    && mode == TransferMode::Reliable
                {
                    for to in destinations {
                        ledger
                            .reliable_sent
                            .entry((from, to, channel))
                            .or_default()
                            .push(number);
                    }
                }
            }
            4 => {
                now += u64::from(chunk[1]) * 1_000;
                net.step(now);
                read_all(&mut net, &mut ledger);
            }
            5 => {
                let client = if chunk[1] % 4 == 0 { 0 } else { pick(chunk[1]) };
                let direction = if chunk[2] % 2 == 0 {
                    Direction::ToServer
                } else {
                    Direction::ToClient
                };
                let (a, b) = (chunk[3], chunk[4]);
                let _ = net.configure_link(client, direction, |c: &mut LinkConfig| {
                    match a % 7 {
                        0 => c.link_up = b % 3 != 0,
                        1 => c.loss = f64::from(b) / 255.0,
                        2 => c.latency_ms = f64::from(b),
                        3 => {
                            c.jitter_ms = f64::from(b) / 2.0;
                            c.jitter_may_reorder = b % 2 == 0;
                        }
                        4 => c.duplicate = f64::from(b) / 512.0,
                        5 => c.reorder = f64::from(b) / 512.0,
                        _ => c.queue_limit = 1 + b as usize,
                    }
                    Ok::<(), LinkConfigError>(())
                });
            }
            6 => {
                let _ = net.disconnect_peer(pick(chunk[1]), pick(chunk[2]), chunk[3] % 2 == 0);
            }
            _ => {
                if chunk[1] % 4 == 0 {
                    net.close(pick(chunk[2]));
                } else {
                    net.set_refusing_new_connections(chunk[2] % 2 == 0);
                }
            }
        }
    }
    // Clean links, and time enough for every retransmission: what is still connected gets every reliable packet.
    for client in connected_clients(&net) {
        for direction in [Direction::ToServer, Direction::ToClient] {
            net.configure_link(client, direction, |c: &mut LinkConfig| {
                *c = LinkConfig::default();
                Ok::<(), LinkConfigError>(())
            })
            .expect("a connected client has a link");
        }
    }
    now += 100_000_000_000;
    net.step(now);
    read_all(&mut net, &mut ledger);
    let open: BTreeSet<PeerId> = if net.status(SERVER_ID) == Status::Connected {
        connected_clients(&net).into_iter().collect()
    } else {
        BTreeSet::new()
    };
    for ((from, to, channel), sent) in &ledger.reliable_sent {
        let client = if *from == SERVER_ID { *to } else { *from };
        if !open.contains(&client) {
            continue;
        }
        let got = ledger
            .reliable_got
            .get(&(*from, *to, *channel))
            .cloned()
            .unwrap_or_default();
        assert_eq!(&got, sent, "reliable {from} -> {to} on channel {channel}");
    }
});
