use super::*;
use bytes::Bytes;

use crate::link::{LinkConfig, LinkConfigError};

fn connected(seed: u64, clients: usize) -> (Network, Vec<PeerId>) {
    let mut net = Network::new(seed);
    net.create_server().unwrap();
    let ids: Vec<PeerId> = (0..clients).map(|_| net.create_client()).collect();
    net.step(0);
    for id in &ids {
        assert_eq!(net.status(*id), Status::Connected);
    }
    net.take_events(SERVER_ID);
    for id in &ids {
        net.take_events(*id);
    }
    (net, ids)
}

fn drain(net: &mut Network, id: PeerId) -> Vec<(PeerId, Vec<u8>)> {
    std::iter::from_fn(|| net.pop(id))
        .map(|p| (p.from, p.data.to_vec()))
        .collect()
}

fn set(net: &mut Network, client: PeerId, direction: Direction, change: impl Fn(&mut LinkConfig)) {
    net.configure_link(client, direction, |c| {
        change(c);
        Ok::<(), LinkConfigError>(())
    })
    .unwrap();
}

const R: TransferMode = TransferMode::Reliable;
const U: TransferMode = TransferMode::Unreliable;
const UO: TransferMode = TransferMode::UnreliableOrdered;

#[test]
fn clients_connect_at_the_next_step_and_both_sides_are_told() {
    let mut net = Network::new(7);
    net.create_server().unwrap();
    let a = net.create_client();
    assert_eq!(net.status(a), Status::Connecting);
    assert!(a > 1, "random positive 31-bit id, got {a}");
    assert_eq!(
        net.send(a, 0, 1, R, 0, Bytes::from_static(b"x")),
        Err(MultiplayerError::NotConnected(a))
    );
    net.step(0);
    assert_eq!(net.status(a), Status::Connected);
    assert_eq!(net.take_events(a), vec![Event::Connected(SERVER_ID)]);
    assert_eq!(net.take_events(SERVER_ID), vec![Event::Connected(a)]);
    assert_eq!(net.create_server(), Err(MultiplayerError::ServerExists));
}

#[test]
fn a_client_without_a_server_waits_and_a_refusing_server_refuses() {
    let mut net = Network::new(1);
    let early = net.create_client();
    net.step(0);
    assert_eq!(net.status(early), Status::Connecting);
    net.create_server().unwrap();
    net.set_refusing_new_connections(true);
    net.step(1);
    assert_eq!(net.status(early), Status::Disconnected);
    assert!(net.take_events(early).is_empty());
    assert!(net.take_events(SERVER_ID).is_empty());
    net.set_refusing_new_connections(false);
    let late = net.create_client();
    net.step(2);
    assert_eq!(net.status(late), Status::Connected);
}

#[test]
fn ids_come_from_the_seed_or_in_sequence() {
    let ids = |seed| {
        let mut net = Network::new(seed);
        (0..5).map(|_| net.create_client()).collect::<Vec<_>>()
    };
    assert_eq!(ids(3), ids(3));
    assert_ne!(ids(3), ids(4));
    let mut net = Network::new(3);
    net.set_sequential_ids(true);
    net.create_server().unwrap();
    assert_eq!(
        (0..3).map(|_| net.create_client()).collect::<Vec<_>>(),
        vec![2, 3, 4]
    );
}

#[test]
fn targets_reach_one_all_or_all_but_one() {
    let (mut net, c) = connected(5, 3);
    net.send(1, 0, c[1], R, 0, Bytes::from_static(b"one"))
        .unwrap();
    net.send(1, 0, 0, R, 0, Bytes::from_static(b"all")).unwrap();
    net.send(1, 0, -c[0], R, 0, Bytes::from_static(b"but"))
        .unwrap();
    // A client's packet goes to the server whatever the target.
    net.send(c[2], 0, c[0], R, 0, Bytes::from_static(b"up"))
        .unwrap();
    net.step(0);
    let text = |v: Vec<(PeerId, Vec<u8>)>| v.into_iter().map(|(_, d)| d).collect::<Vec<_>>();
    assert_eq!(text(drain(&mut net, c[0])), vec![b"all".to_vec()]);
    assert_eq!(
        text(drain(&mut net, c[1])),
        vec![b"one".to_vec(), b"all".to_vec(), b"but".to_vec()]
    );
    assert_eq!(
        text(drain(&mut net, c[2])),
        vec![b"all".to_vec(), b"but".to_vec()]
    );
    assert_eq!(drain(&mut net, 1), vec![(c[2], b"up".to_vec())]);
    assert_eq!(
        net.send(1, 0, 12345, R, 0, Bytes::new()),
        Err(MultiplayerError::UnknownPeer(12345))
    );
    assert_eq!(net.peer_stats(1).unwrap().packets_sent, 1 + 3 + 2);
}

#[test]
fn bad_sends_are_refused_and_send_nothing() {
    let (mut net, c) = connected(5, 1);
    net.set_max_packet_size(4).unwrap();
    assert!(matches!(
        net.send(c[0], 0, 1, U, 0, Bytes::from_static(b"12345")),
        Err(MultiplayerError::Oversize { size: 5, max: 4 })
    ));
    assert_eq!(
        net.send(c[0], 0, 1, U, 256, Bytes::new()),
        Err(MultiplayerError::InvalidChannel(256))
    );
    assert_eq!(
        net.set_max_packet_size(0),
        Err(MultiplayerError::InvalidMaxPacketSize(0))
    );
    net.step(100);
    assert_eq!(net.available(1), 0);
    assert_eq!(net.peer_stats(c[0]).unwrap().packets_sent, 0);
}

#[test]
fn latency_delivers_exactly_when_due() {
    let (mut net, c) = connected(9, 1);
    set(&mut net, c[0], Direction::ToServer, |l| {
        l.latency_ms = 100.0
    });
    net.send(c[0], 1_000, 1, R, 0, Bytes::from_static(b"r"))
        .unwrap();
    net.step(100_999);
    assert_eq!(net.available(1), 0);
    assert_eq!(net.next_due(), Some(101_000));
    net.step(101_000);
    assert_eq!(net.available(1), 1);
    // The other direction was not configured.
    net.send(1, 101_000, c[0], R, 0, Bytes::from_static(b"d"))
        .unwrap();
    net.step(101_000);
    assert_eq!(net.available(c[0]), 1);
}

#[test]
fn total_loss_drops_unreliable_but_delivers_reliable() {
    let (mut net, c) = connected(11, 1);
    set(&mut net, c[0], Direction::ToClient, |l| l.loss = 1.0);
    for i in 0..20u8 {
        net.send(1, 0, c[0], U, 0, Bytes::from(vec![i])).unwrap();
        net.send(1, 0, c[0], UO, 0, Bytes::from(vec![i])).unwrap();
        net.send(1, 0, c[0], R, 0, Bytes::from(vec![100 + i]))
            .unwrap();
    }
    net.step(10_000_000);
    let got: Vec<u8> = drain(&mut net, c[0])
        .into_iter()
        .map(|(_, d)| d[0])
        .collect();
    assert_eq!(
        got,
        (100..120).collect::<Vec<u8>>(),
        "reliable only, in order"
    );
    let stats = net.route_stats(c[0]).unwrap().to_client;
    assert_eq!(stats.dropped_loss, 40);
    assert_eq!(stats.retransmitted, 20 * 8);
}

#[test]
fn a_cut_link_holds_reliable_until_it_recovers() {
    let (mut net, c) = connected(12, 1);
    set(&mut net, c[0], Direction::ToServer, |l| l.link_up = false);
    net.send(c[0], 0, 1, R, 0, Bytes::from_static(b"r"))
        .unwrap();
    net.send(c[0], 0, 1, U, 0, Bytes::from_static(b"u"))
        .unwrap();
    net.step(5_000_000);
    assert_eq!(net.available(1), 0);
    set(&mut net, c[0], Direction::ToServer, |l| l.link_up = true);
    net.step(5_000_000);
    assert_eq!(drain(&mut net, 1), vec![(c[0], b"r".to_vec())]);
}

#[test]
fn unreliable_ordered_never_delivers_older_after_newer() {
    let (mut net, c) = connected(13, 1);
    set(&mut net, c[0], Direction::ToServer, |l| {
        l.latency_ms = 20.0;
        l.jitter_ms = 15.0;
        l.jitter_may_reorder = true;
        l.reorder = 0.2;
        l.duplicate = 0.1;
    });
    for i in 0..2000u32 {
        let channel = i64::from(i % 2);
        net.send(
            c[0],
            u64::from(i) * 1000,
            1,
            UO,
            channel,
            Bytes::from(i.to_le_bytes().to_vec()),
        )
        .unwrap();
        net.step(u64::from(i) * 1000);
    }
    net.step(10_000_000);
    let mut newest = [None::<u32>; 2];
    let mut delivered = 0;
    while let Some(p) = net.pop(1) {
        let n = u32::from_le_bytes(p.data[..4].try_into().unwrap());
        let slot = &mut newest[usize::from(p.channel)];
        assert!(
            slot.is_none_or(|m| n > m),
            "{n} after {slot:?} on channel {}",
            p.channel
        );
        *slot = Some(n);
        delivered += 1;
    }
    let dropped = net.peer_stats(1).unwrap().dropped_out_of_order;
    assert!(
        dropped > 100,
        "the link reordered, so some were dropped: {dropped}"
    );
    let link = net.route_stats(c[0]).unwrap().to_server;
    assert_eq!(link.packets_delivered, delivered + dropped);
}

#[test]
fn reliable_keeps_order_per_channel_under_jitter() {
    let (mut net, c) = connected(14, 1);
    set(&mut net, c[0], Direction::ToClient, |l| {
        l.latency_ms = 30.0;
        l.jitter_ms = 25.0;
        l.jitter_may_reorder = true;
        l.loss = 0.3;
    });
    for i in 0..500u32 {
        net.send(
            1,
            u64::from(i) * 500,
            c[0],
            R,
            i64::from(i % 3),
            Bytes::from(i.to_le_bytes().to_vec()),
        )
        .unwrap();
    }
    net.step(100_000_000);
    let mut per_channel: [Vec<u32>; 3] = Default::default();
    for (_, d) in drain(&mut net, c[0]) {
        let n = u32::from_le_bytes(d[..4].try_into().unwrap());
        per_channel[(n % 3) as usize].push(n);
    }
    for (channel, seen) in per_channel.iter().enumerate() {
        let expected: Vec<u32> = (0..500).filter(|n| n % 3 == channel as u32).collect();
        assert_eq!(seen, &expected, "channel {channel}");
    }
}

#[test]
fn disconnect_and_close_tell_the_others() {
    let (mut net, c) = connected(15, 3);
    net.send(c[0], 0, 1, R, 0, Bytes::from_static(b"unread"))
        .unwrap();
    net.step(0);
    net.disconnect_peer(1, c[0], false).unwrap();
    assert_eq!(net.status(c[0]), Status::Disconnected);
    assert_eq!(net.take_events(1), vec![Event::Disconnected(c[0])]);
    assert_eq!(net.take_events(c[0]), vec![Event::Disconnected(1)]);
    assert_eq!(
        net.available(1),
        0,
        "the gone client's unread packet is discarded"
    );
    // force: the server is not told.
    net.disconnect_peer(1, c[1], true).unwrap();
    assert!(net.take_events(1).is_empty());
    assert_eq!(net.take_events(c[1]), vec![Event::Disconnected(1)]);
    assert_eq!(
        net.disconnect_peer(c[2], c[1], false),
        Err(MultiplayerError::NotServer(c[1]))
    );
    // Closing the server tells the remaining client; the server itself is told nothing.
    net.close(1);
    assert_eq!(net.take_events(c[2]), vec![Event::Disconnected(1)]);
    assert!(net.take_events(1).is_empty());
    assert_eq!(net.status(c[2]), Status::Disconnected);
    assert!(
        net.create_server().is_ok(),
        "a closed server can be replaced"
    );
}

#[test]
fn a_closing_client_tells_the_server() {
    let (mut net, c) = connected(16, 2);
    net.close(c[1]);
    assert_eq!(net.take_events(1), vec![Event::Disconnected(c[1])]);
    assert!(net.take_events(c[1]).is_empty());
    assert_eq!(
        net.send(c[1], 0, 1, R, 0, Bytes::new()),
        Err(MultiplayerError::NotConnected(c[1]))
    );
    net.send(c[0], 0, 1, R, 0, Bytes::from_static(b"still here"))
        .unwrap();
    net.step(0);
    assert_eq!(net.available(1), 1);
}

#[test]
fn settings_for_every_client_apply_to_later_ones_too() {
    let (mut net, c) = connected(17, 1);
    set(&mut net, 0, Direction::ToServer, |l| l.latency_ms = 50.0);
    let later = net.create_client();
    net.step(0);
    for id in [c[0], later] {
        assert_eq!(
            net.link_config(id, Direction::ToServer).unwrap().latency_ms,
            50.0
        );
        assert_eq!(
            net.link_config(id, Direction::ToClient).unwrap().latency_ms,
            0.0
        );
    }
    let refused = net.configure_link(1, Direction::ToServer, |_| Ok::<(), LinkConfigError>(()));
    assert_eq!(refused, Err(ConfigureError::NoLink(1)));
}

/// The same calls with the same seed give the same ids, deliveries and drops.
#[test]
fn a_session_replays_exactly_from_its_seed() {
    let session = |seed: u64| {
        let mut net = Network::new(seed);
        net.create_server().unwrap();
        let clients: Vec<PeerId> = (0..3).map(|_| net.create_client()).collect();
        set(&mut net, 0, Direction::ToServer, |l| {
            l.latency_ms = 40.0;
            l.jitter_ms = 10.0;
            l.loss = 0.2;
        });
        set(&mut net, 0, Direction::ToClient, |l| {
            l.latency_ms = 40.0;
            l.duplicate = 0.05;
        });
        let mut log = Vec::new();
        for t in 0..300u64 {
            let now = t * 5_000;
            net.step(now);
            for &c in &clients {
                net.send(
                    c,
                    now,
                    1,
                    [U, UO, R][(t % 3) as usize],
                    0,
                    Bytes::from(t.to_le_bytes().to_vec()),
                )
                .ok();
            }
            net.send(1, now, 0, U, 1, Bytes::from(vec![t as u8]))
                .unwrap();
            for id in std::iter::once(1).chain(clients.iter().copied()) {
                for e in net.take_events(id) {
                    log.push(format!("{now} {id} {e:?}"));
                }
                while let Some(p) = net.pop(id) {
                    log.push(format!("{now} {id} <- {} {:?}", p.from, p.data));
                }
            }
        }
        log
    };
    let first = session(99);
    assert!(first.len() > 500);
    assert_eq!(first, session(99));
    assert_ne!(first, session(100));
}

#[test]
fn reseeding_keeps_every_setting_and_is_refused_once_peers_exist() {
    let mut net = Network::new(1);
    net.configure_link(0, Direction::ToServer, |c| {
        c.latency_ms = 77.0;
        Ok::<(), ()>(())
    })
    .unwrap();
    net.set_sequential_ids(true);
    net.reseed(5).unwrap();
    assert_eq!(net.seed(), 5);
    assert_eq!(
        net.link_config(0, Direction::ToServer).unwrap().latency_ms,
        77.0
    );
    assert!(net.sequential_ids());
    net.create_server().unwrap();
    assert_eq!(net.reseed(6), Err(1));
    assert_eq!(net.seed(), 5);
}
