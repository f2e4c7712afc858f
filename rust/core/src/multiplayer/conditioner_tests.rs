use bytes::Bytes;

use super::conditioner::{LinkChangeError, PeerLinks, MAX_DEPARTED};
use super::*;
use crate::link::conditioner::Directions;
use crate::link::{LinkConfig, LinkConfigError, MAX_RELIABLE_HELD, MAX_RELIABLE_RETRANSMISSIONS};

const R: TransferMode = TransferMode::Reliable;
const U: TransferMode = TransferMode::Unreliable;
const UO: TransferMode = TransferMode::UnreliableOrdered;
const MS: u64 = 1000;

fn links(seed: u64, peers: &[PeerId]) -> PeerLinks {
    let mut links = PeerLinks::new(seed);
    for &p in peers {
        links.connect(p);
    }
    links
}

fn set(
    links: &mut PeerLinks,
    peer: PeerId,
    directions: Directions,
    change: impl Fn(&mut LinkConfig),
) {
    links
        .configure(peer, directions, |c| {
            change(c);
            Ok::<(), LinkConfigError>(())
        })
        .unwrap();
}

fn data(i: u32) -> Bytes {
    Bytes::copy_from_slice(&i.to_le_bytes())
}

fn number(packet: &Packet) -> u32 {
    u32::from_le_bytes(packet.data[..4].try_into().unwrap())
}

/// Every outbound packet due by `now`, as (remote peer, number).
fn outbound(links: &mut PeerLinks, now: u64) -> Vec<(PeerId, u32)> {
    std::iter::from_fn(|| links.poll_outbound(now))
        .map(|(peer, p)| (peer, number(&p)))
        .collect()
}

/// Every inbound packet readable after polling at `now`, as (sender, number).
fn inbound(links: &mut PeerLinks, now: u64) -> Vec<(PeerId, u32)> {
    links.poll_inbound(now);
    std::iter::from_fn(|| links.pop())
        .map(|p| (p.from, number(&p)))
        .collect()
}

#[test]
fn clean_links_hand_packets_on_at_once_to_the_targets_godot_means() {
    let mut l = links(1, &[5, 9, 12]);
    l.send(0, 9, R, 0, data(1)).unwrap();
    assert_eq!(outbound(&mut l, 0), vec![(9, 1)], "one peer");
    l.send(0, 0, U, 0, data(2)).unwrap();
    assert_eq!(
        outbound(&mut l, 0),
        vec![(5, 2), (9, 2), (12, 2)],
        "0: every peer"
    );
    l.send(0, -9, U, 0, data(3)).unwrap();
    assert_eq!(
        outbound(&mut l, 0),
        vec![(5, 3), (12, 3)],
        "-id: all but that one"
    );
    assert_eq!(
        l.send(0, 7, R, 0, data(4)),
        Err(MultiplayerError::UnknownPeer(7))
    );
    assert_eq!(
        outbound(&mut l, 0),
        vec![],
        "a refused packet is not half-sent"
    );
    l.receive(0, 12, U, 3, data(5)).unwrap();
    let got = {
        l.poll_inbound(0);
        let p = l.pop().unwrap();
        (p.from, p.mode, p.channel, number(&p))
    };
    assert_eq!(got, (12, U, 3, 5), "sender, mode and channel come through");
}

#[test]
fn latency_is_per_peer_and_per_direction_and_exact() {
    let mut l = links(2, &[2, 3]);
    set(&mut l, 2, Directions::Outbound, |c| c.latency_ms = 100.0);
    set(&mut l, 3, Directions::Inbound, |c| c.latency_ms = 40.0);
    l.send(0, 0, U, 0, data(1)).unwrap();
    assert_eq!(
        outbound(&mut l, 0),
        vec![(3, 1)],
        "peer 3's outbound is clean"
    );
    assert_eq!(outbound(&mut l, 99 * MS + 999), vec![]);
    assert_eq!(outbound(&mut l, 100 * MS), vec![(2, 1)]);
    l.receive(0, 2, U, 0, data(7)).unwrap();
    l.receive(0, 3, U, 0, data(8)).unwrap();
    assert_eq!(
        inbound(&mut l, 0),
        vec![(2, 7)],
        "peer 2's inbound is clean"
    );
    assert_eq!(inbound(&mut l, 39 * MS), vec![]);
    assert_eq!(inbound(&mut l, 40 * MS), vec![(3, 8)]);
    assert_eq!(l.next_due(), None);
}

#[test]
fn reliable_packets_survive_total_loss_in_order_paying_retransmission_timeouts() {
    let mut l = links(3, &[4]);
    set(&mut l, 0, Directions::Both, |c| {
        c.loss = 1.0;
        c.latency_ms = 10.0;
    });
    for i in 0..50 {
        l.send(0, 4, R, (i % 2) as u8, data(i)).unwrap();
        l.send(0, 4, U, 0, data(1000 + i)).unwrap();
    }
    // Each reliable packet: 10 ms plus MAX_RELIABLE_RETRANSMISSIONS timeouts of 20 ms (the minimum).
    let due = (10 + 20 * u64::from(MAX_RELIABLE_RETRANSMISSIONS)) * MS;
    assert_eq!(outbound(&mut l, due - 1), vec![]);
    let got = outbound(&mut l, due);
    assert_eq!(got.len(), 50, "every reliable packet, no unreliable one");
    for channel in 0..2u32 {
        let order: Vec<u32> = got
            .iter()
            .map(|g| g.1)
            .filter(|n| n % 2 == channel)
            .collect();
        assert!(
            order.windows(2).all(|w| w[0] < w[1]),
            "in order on channel {channel}"
        );
    }
    let stats = l.link_stats(4).unwrap();
    assert_eq!(
        stats.outbound.dropped_loss, 50,
        "the unreliable ones were lost"
    );
    assert_eq!(
        stats.outbound.retransmitted,
        50 * u64::from(MAX_RELIABLE_RETRANSMISSIONS)
    );
}

#[test]
fn a_cut_link_holds_reliable_packets_until_it_is_up_and_loses_unreliable_ones() {
    let mut l = links(4, &[2, 3]);
    set(&mut l, 2, Directions::Both, |c| c.link_up = false);
    l.send(0, 0, R, 0, data(1)).unwrap();
    l.send(0, 0, U, 0, data(2)).unwrap();
    assert_eq!(
        outbound(&mut l, 5 * MS),
        vec![(3, 1), (3, 2)],
        "a held lane does not hold the others back"
    );
    set(&mut l, 2, Directions::Both, |c| c.link_up = true);
    assert_eq!(outbound(&mut l, 6 * MS), vec![(2, 1)]);
    assert_eq!(l.link_stats(2).unwrap().outbound.dropped_link_down, 1);
}

#[test]
fn unreliable_ordered_packets_never_go_back_on_their_channel() {
    let mut l = links(5, &[2]);
    set(&mut l, 2, Directions::Both, |c| {
        c.latency_ms = 50.0;
        c.reorder = 0.2;
    });
    for i in 0..2000u32 {
        l.send(u64::from(i) * MS, 2, UO, (i % 3) as u8, data(i))
            .unwrap();
        l.receive(u64::from(i) * MS, 2, UO, (i % 3) as u8, data(i))
            .unwrap();
    }
    let out = outbound(&mut l, 3000 * MS);
    let inb = inbound(&mut l, 3000 * MS);
    for (what, got) in [("outbound", &out), ("inbound", &inb)] {
        for channel in 0..3 {
            let seq: Vec<u32> = got
                .iter()
                .map(|g| g.1)
                .filter(|n| n % 3 == channel)
                .collect();
            assert!(
                seq.windows(2).all(|w| w[0] < w[1]),
                "{what} channel {channel} never goes back"
            );
        }
    }
    let dropped = l.stats().dropped_out_of_order;
    assert!(
        dropped > 0,
        "the link reordered some, and they were dropped"
    );
    assert_eq!(
        out.len() + inb.len() + dropped as usize,
        4000,
        "each is passed on or counted"
    );
}

#[test]
fn an_unreliable_loss_rate_is_within_binomial_bounds() {
    let mut l = links(6, &[2]);
    set(&mut l, 2, Directions::Inbound, |c| c.loss = 0.2);
    for i in 0..10_000 {
        l.receive(0, 2, U, 0, data(i)).unwrap();
    }
    let got = inbound(&mut l, 0).len() as f64;
    // Mean 8,000, standard deviation 40: 5 deviations either way.
    assert!((7800.0..=8200.0).contains(&got), "{got} of 10,000 arrived");
}

#[test]
fn peer_zero_changes_every_link_and_those_of_peers_to_come() {
    let mut l = links(7, &[2]);
    set(&mut l, 0, Directions::Outbound, |c| c.latency_ms = 30.0);
    l.connect(3);
    assert_eq!(l.config(2, true).unwrap().latency_ms, 30.0);
    assert_eq!(
        l.config(3, true).unwrap().latency_ms,
        30.0,
        "a later peer starts so"
    );
    assert_eq!(
        l.config(3, false).unwrap().latency_ms,
        0.0,
        "only the direction named"
    );
    assert_eq!(l.config(0, true).unwrap().latency_ms, 30.0);
    assert_eq!(l.config(9, true), None);
    assert!(matches!(
        l.configure(9, Directions::Both, |_| Ok::<(), LinkConfigError>(())),
        Err(LinkChangeError::UnknownPeer(9))
    ));
    // All or nothing: a change refused for one config changes none.
    let refused = l.configure(0, Directions::Both, |c| {
        if c.latency_ms == 30.0 {
            Err(LinkConfigError::UnknownSetting("x".into()))
        } else {
            c.loss = 0.5;
            Ok(())
        }
    });
    assert!(matches!(refused, Err(LinkChangeError::Setting(_))));
    assert_eq!(l.config(2, false).unwrap().loss, 0.0, "nothing changed");
}

#[test]
fn a_disconnected_peer_takes_what_its_links_held_counted() {
    let mut l = links(8, &[2, 3]);
    set(&mut l, 0, Directions::Both, |c| c.latency_ms = 100.0);
    for i in 0..5 {
        l.send(0, 0, R, 0, data(i)).unwrap();
        l.receive(0, 2, R, 0, data(i)).unwrap();
    }
    assert_eq!(l.disconnect(2), 10);
    assert_eq!(l.stats().dropped_disconnected, 10);
    assert_eq!(l.peers(), vec![3]);
    assert_eq!(
        l.send(0, 2, R, 0, data(9)),
        Err(MultiplayerError::UnknownPeer(2))
    );
    assert_eq!(
        outbound(&mut l, 100 * MS).len(),
        5,
        "peer 3's are still delivered"
    );
    l.receive(100 * MS, 3, R, 0, data(1)).unwrap();
    assert_eq!(l.clear(), 1, "clear drops what is held");
    assert_eq!(l.stats().dropped_disconnected, 11);
}

#[test]
fn a_full_reliable_lane_refuses_the_whole_packet() {
    let mut l = links(9, &[2, 3]);
    set(&mut l, 3, Directions::Outbound, |c| c.link_up = false);
    for i in 0..MAX_RELIABLE_HELD as u32 {
        l.send(0, 3, R, 0, data(i)).unwrap();
    }
    assert_eq!(
        l.send(0, 0, R, 0, data(0)),
        Err(MultiplayerError::Backlog(3))
    );
    assert_eq!(
        outbound(&mut l, 0),
        vec![],
        "peer 2 got nothing of the refused broadcast"
    );
    l.send(0, 2, R, 0, data(1)).unwrap();
    assert_eq!(outbound(&mut l, 0), vec![(2, 1)]);
}

#[test]
fn the_inbox_stops_at_its_limit_and_the_rest_waits_in_the_lane() {
    let mut l = links(10, &[2]);
    // In two parts: a lane holds at most MAX_RELIABLE_HELD reliable packets itself.
    for i in 0..60_000u32 {
        l.receive(0, 2, R, 0, data(i)).unwrap();
    }
    l.poll_inbound(0);
    assert!(l.can_receive());
    for i in 60_000..(MAX_INBOX as u32 + 10) {
        l.receive(0, 2, R, 0, data(i)).unwrap();
    }
    l.poll_inbound(0);
    assert!(!l.can_receive(), "nothing more is taken from the real peer");
    assert_eq!(l.available(), MAX_INBOX);
    assert_eq!(l.link_stats(2).unwrap().inbound_queued, 10);
    assert_eq!(number(&l.pop().unwrap()), 0);
    l.poll_inbound(0);
    assert_eq!(l.available(), MAX_INBOX, "one read, one more in");
}

#[test]
fn an_inbound_lane_full_of_reliable_packets_takes_no_more() {
    let mut l = links(13, &[2]);
    set(&mut l, 2, Directions::Inbound, |c| c.link_up = false);
    for i in 0..MAX_RELIABLE_HELD as u32 {
        l.receive(0, 2, R, 0, data(i)).unwrap();
    }
    assert!(!l.can_receive());
    assert_eq!(
        l.receive(0, 2, R, 0, data(0)),
        Err(MultiplayerError::Backlog(2)),
        "refused, not dropped"
    );
}

#[test]
fn the_same_seed_and_calls_give_the_same_deliveries() {
    let run = |seed: u64| {
        let mut l = links(seed, &[2, 3]);
        set(&mut l, 0, Directions::Both, |c| {
            c.loss = 0.3;
            c.latency_ms = 20.0;
            c.jitter_ms = 15.0;
        });
        for i in 0..500u32 {
            l.send(u64::from(i) * MS, 0, U, 0, data(i)).unwrap();
        }
        outbound(&mut l, 1000 * MS)
    };
    assert_eq!(run(11), run(11));
    assert_ne!(run(11), run(12));
}

#[test]
fn switching_clocks_keeps_the_remaining_delay() {
    let mut l = links(12, &[2]);
    set(&mut l, 2, Directions::Both, |c| c.latency_ms = 100.0);
    l.send(10 * MS, 2, R, 0, data(1)).unwrap();
    l.send(10 * MS, 2, U, 0, data(2)).unwrap();
    // At 60 ms the clock is switched to one that reads 0 then: 50 ms remain.
    l.shift_time(60 * MS, 0);
    assert_eq!(outbound(&mut l, 49 * MS), vec![]);
    assert_eq!(outbound(&mut l, 50 * MS), vec![(2, 1), (2, 2)]);
}

#[test]
fn the_clean_fast_path_keeps_the_ordering_state_and_is_counted() {
    let mut l = links(14, &[2]);
    for i in 0..10 {
        l.send(0, 2, UO, 0, data(i)).unwrap();
        l.receive(0, 2, UO, 0, data(i)).unwrap();
    }
    assert_eq!(l.available(), 10, "a clean inbound link delivers at once");
    assert_eq!(
        outbound(&mut l, 0).len(),
        10,
        "a clean outbound link hands on at once"
    );
    let stats = l.link_stats(2).unwrap();
    assert_eq!(
        (
            stats.outbound.packets_delivered,
            stats.inbound.packets_delivered
        ),
        (10, 10)
    );
    // Now reordering: nothing may come out older than what the fast path already passed on.
    set(&mut l, 2, Directions::Both, |c| {
        c.latency_ms = 10.0;
        c.reorder = 0.5;
    });
    for i in 10..200 {
        l.send(i as u64 * MS, 2, UO, 0, data(i)).unwrap();
    }
    let got = outbound(&mut l, 1000 * MS);
    assert!(
        got.iter().all(|g| g.1 >= 10),
        "older than the fast path's never follow"
    );
    assert!(got.windows(2).all(|w| w[0].1 < w[1].1), "never go back");
    // What the fast path queued for a peer that leaves is counted with the rest.
    set(&mut l, 2, Directions::Both, |c| {
        c.latency_ms = 0.0;
        c.reorder = 0.0;
    });
    l.send(2000 * MS, 2, R, 0, data(7)).unwrap();
    assert_eq!(l.disconnect(2), 1);
}

/// A peer that leaves keeps its counters in `departed` (an end-of-match report used to find nothing), the most
/// recent `MAX_DEPARTED` of them.
#[test]
fn a_departed_peers_counters_stay_readable() {
    let mut links = PeerLinks::new(1);
    links.connect(2);
    for _ in 0..5 {
        links
            .send(0, 2, TransferMode::Unreliable, 0, Bytes::from_static(b"x"))
            .unwrap();
    }
    while links.poll_outbound(0).is_some() {}
    let before = links.link_stats(2).unwrap();
    assert_eq!(before.outbound.packets_in, 5);
    links.disconnect(2);
    assert_eq!(links.link_stats(2), None);
    let departed: Vec<_> = links.departed().copied().collect();
    assert_eq!(departed, vec![(2, before)]);
    for id in 3..3 + MAX_DEPARTED as PeerId {
        links.connect(id);
        links.disconnect(id);
    }
    assert_eq!(links.departed().count(), MAX_DEPARTED);
    assert!(
        links.departed().all(|(id, _)| *id != 2),
        "the oldest went first"
    );
}
