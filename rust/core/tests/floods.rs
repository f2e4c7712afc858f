//! A million packets thrown at each component: each refuses or counts what it cannot take, and what it holds
//! stays within its configured bound.

use bytes::Bytes;
use peerkit_core::link::{LinkConfig, LinkModel};
use peerkit_core::pair::{pair, PairConfig, PairError};
use peerkit_core::reliable::{Connection, ReliableConfig, ReliableError, Status};

const FLOOD: u64 = 1_000_000;

#[test]
fn a_full_pair_refuses_a_million_packets_and_holds_its_capacity() {
    let (mut a, b) = pair(PairConfig {
        capacity: 1000,
        max_packet_size: 64,
    });
    let packet = [7u8; 64];
    let mut busy = 0;
    for _ in 0..FLOOD {
        match a.send(&packet) {
            Ok(()) => {}
            Err(PairError::Full { .. }) => busy += 1,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(busy, FLOOD - 1000);
    assert_eq!(b.queued(), 1000);
    assert_eq!(a.stats().refused_busy, FLOOD - 1000);
}

#[test]
fn a_bandwidth_capped_link_counts_a_million_packets_and_holds_its_queue_limit() {
    let mut link = LinkModel::new(
        LinkConfig {
            bandwidth_bytes_per_second: 100_000,
            queue_limit: 500,
            ..LinkConfig::default()
        },
        1,
    );
    let packet = Bytes::from_static(&[1; 100]);
    let mut delivered = 0u64;
    for i in 0..FLOOD {
        // A million packets in 10 simulated seconds: 10 MB/s offered to a 100 kB/s link.
        let now = i * 10;
        link.send(now, packet.clone());
        while link.poll(now).is_some() {
            delivered += 1;
        }
        assert!(link.queued() <= 500);
    }
    let stats = link.stats();
    assert_eq!(stats.packets_in, FLOOD);
    assert_eq!(stats.packets_delivered, delivered);
    assert_eq!(
        stats.packets_in,
        delivered + stats.dropped_overflow + link.queued() as u64
    );
    // 10 s at 100 kB/s is 1 MB: about 10,000 packets of 100 B went through.
    assert!(
        (9_900..=10_100).contains(&delivered),
        "delivered {delivered}"
    );
}

#[test]
fn a_connection_with_a_cut_link_refuses_a_million_messages_then_fails() {
    let config = ReliableConfig {
        max_message_size: 1024,
        send_buffer_bytes: 1 << 20,
        timeout_us: 1_000_000,
        ..ReliableConfig::default()
    };
    let mut conn = Connection::new(config, 0, 1);
    let message = Bytes::from(vec![3u8; 1000]);
    let mut buf = Vec::new();
    let mut accepted = 0u64;
    let mut busy = 0u64;
    for i in 0..FLOOD {
        let now = i; // a microsecond apart: the million puts take one simulated second
        match conn.send(message.clone()) {
            Ok(()) => accepted += 1,
            Err(ReliableError::Busy { .. }) => busy += 1,
            Err(ReliableError::NotOpen(Status::Failed)) => break,
            Err(e) => panic!("unexpected {e}"),
        }
        conn.handle_timeout(now);
        while conn.poll_transmit(now, &mut buf) {} // datagrams go nowhere: the link is cut
        assert!(
            conn.stats().messages_pending * 1000 <= 1 << 20,
            "pending stays within the send buffer"
        );
    }
    assert_eq!(
        accepted, 1048,
        "1 MiB of send buffer holds 1048 messages of 1000 B"
    );
    assert!(busy > 0);
    conn.handle_timeout(1_000_000);
    assert_eq!(conn.status(), Status::Failed);
    assert_eq!(
        conn.error(),
        Some(&ReliableError::HandshakeTimedOut {
            ms: 1000,
            foreign: 0,
            not_ready: None
        })
    );
    assert_eq!(
        conn.stats().messages_discarded,
        1048,
        "what was accepted is counted as discarded"
    );
}

/// A hostile peer that knows the connection's ids floods it with checksum-valid DATA datagrams that look
/// in-window (random sequence numbers ahead of the next expected, random flags, lengths and payloads): the
/// receiving side's memory stays within its stated worst case the whole time, and it never panics. Data beyond
/// the credit fails the connection (a protocol violation); the flood then starts over on a fresh connection.
#[test]
fn hostile_in_window_datagrams_stay_within_the_stated_memory_bound() {
    use peerkit_core::reliable::packet::{self, Kind};
    use peerkit_core::reliable::recv::Receiver;
    use peerkit_core::rng::Rng;

    let config = ReliableConfig::default();
    let bound = Receiver::worst_case_memory(
        Receiver::window_for(config.receive_buffer_bytes, config.max_message_size),
        config.max_window,
        config.max_message_size,
    );
    let mut rng = Rng::new(99);
    let mut peak = 0usize;
    let mut violations = 0;
    let mut sent = 0u64;
    let mut round = 0u64;
    while sent < 300_000 {
        round += 1;
        // A fresh, connected pair; its first DATA datagram is the template for the forgeries.
        let mut a = Connection::new(config.clone(), 0, round * 2);
        let mut b = Connection::new(config.clone(), 0, round * 2 + 1);
        a.send(Bytes::from_static(b"template")).unwrap();
        let mut buf = Vec::new();
        let mut template = None;
        for now in 0..1000 {
            while a.poll_transmit(now, &mut buf) {
                if buf[3] == Kind::Data as u8 {
                    template = Some(buf.clone());
                }
                b.handle_datagram(now, &buf);
            }
            while b.poll_transmit(now, &mut buf) {
                a.handle_datagram(now, &buf);
            }
            if template.is_some() {
                break;
            }
        }
        let template = template.expect("a DATA datagram");
        let at = packet::CONTROL_LEN;
        // First the forgeries continue the stream in order (whole messages the reader never takes) until they
        // hold most of the window, then they land at random places ahead of it, with random flags and lengths.
        let template_seq = u32::from_le_bytes(template[at..at + 4].try_into().unwrap());
        let mut cursor = template_seq.wrapping_add(1);
        while b.status() == Status::Connected && sent < 300_000 {
            let mut d = template[..at].to_vec();
            // "Most of the window": the receive buffer less a sixteenth.
            let in_order = b.receive_memory_bytes() < config.receive_buffer_bytes * 15 / 16;
            let ahead = if in_order {
                0
            } else {
                1 + rng.below(config.max_window as u64 + 8) as u32
            };
            d.extend_from_slice(&cursor.wrapping_add(ahead).to_le_bytes());
            if in_order {
                cursor = cursor.wrapping_add(1);
            }
            let first = in_order || rng.chance(0.3);
            d.push(u8::from(first));
            // Channel 0 in order (the template was its datagram 0); anywhere on any channel ahead.
            if in_order {
                d.push(0);
                d.extend_from_slice(&cursor.wrapping_sub(template_seq).to_le_bytes());
            } else {
                d.push(rng.below(256) as u8);
                d.extend_from_slice(&(rng.below(4) as u32).to_le_bytes());
            }
            let payload = match rng.below(3) {
                0 => 0,
                1 => rng.below(64) as usize,
                _ => config.mtu - packet::MAX_OVERHEAD,
            };
            if first {
                let len = if in_order || rng.chance(0.5) {
                    payload as u32
                } else {
                    rng.below(config.max_message_size as u64 + 1) as u32
                };
                d.extend_from_slice(&len.max(payload as u32).to_le_bytes());
            }
            d.extend((0..payload).map(|_| rng.next_u64() as u8));
            packet::seal(&mut d);
            b.handle_datagram(1000, &d);
            sent += 1;
            peak = peak.max(b.receive_memory_bytes());
            assert!(
                b.receive_memory_bytes() <= bound,
                "{} bytes held, above the stated bound of {bound}",
                b.receive_memory_bytes()
            );
        }
        if b.status() == Status::Failed {
            violations += 1;
        }
    }
    // The bound allows reassembly buffers their doubling slack (up to the window again) and every buffered slot
    // an early fragment in a hash table, which forgeries of random length and place rarely build together: a
    // flood holding the window itself is about a quarter of it.
    assert!(
        peak > bound / 5,
        "the flood came near the bound ({peak} of {bound} bytes), so the bound was tested"
    );
    assert!(
        violations > 0,
        "data beyond the credit failed the connection"
    );
    println!("peak {peak} of {bound} bytes; {violations} connections failed by the flood");
}

/// Reliable packets are not subject to `queue_limit` and wait while a link is down; a link holds at most
/// MAX_RELIABLE_HELD of them, and refuses (counting nothing) beyond.
#[test]
fn a_cut_link_holds_at_most_its_reliable_limit_and_refuses_the_rest() {
    use peerkit_core::link::MAX_RELIABLE_HELD;
    let mut link = LinkModel::new(
        LinkConfig {
            link_up: false,
            ..LinkConfig::default()
        },
        1,
    );
    let mut refused = 0;
    for i in 0..FLOOD / 10 {
        if link.send_reliable(i, Bytes::from_static(b"r"), 0).is_none() {
            refused += 1;
        }
    }
    assert_eq!(link.queued(), MAX_RELIABLE_HELD);
    assert_eq!(link.stats().packets_in, MAX_RELIABLE_HELD as u64);
    assert_eq!(refused, FLOOD / 10 - MAX_RELIABLE_HELD as u64);
    link.set_config(LinkConfig::default());
    let delivered = std::iter::from_fn(|| link.poll(FLOOD)).count();
    assert_eq!(
        delivered, MAX_RELIABLE_HELD,
        "all of them once the link is back"
    );
    assert!(
        link.send_reliable(FLOOD, Bytes::from_static(b"r"), 0)
            .is_some(),
        "room again"
    );
}

/// A server that never reads, flooded by a client with reliable and unreliable packets: its inbox stops at
/// MAX_INBOX, the rest waits in the link within its limits, a reliable send beyond them is refused whole
/// (ERR_BUSY for the script), and every packet is delivered, held, dropped for a counted reason, or refused.
#[test]
fn a_peer_that_never_reads_holds_at_most_its_inbox_and_its_link() {
    use peerkit_core::link::MAX_RELIABLE_HELD;
    use peerkit_core::multiplayer::{
        MultiplayerError, Network, TransferMode, MAX_INBOX, SERVER_ID,
    };
    let mut net = Network::new(1);
    net.create_server().unwrap();
    let client = net.create_client();
    net.step(0);
    let (mut reliable_sent, mut unreliable_sent, mut busy) = (0u64, 0u64, 0u64);
    for i in 0..300_000u64 {
        let mode = if i % 3 == 0 {
            TransferMode::Unreliable
        } else {
            TransferMode::Reliable
        };
        match net.send(client, i, SERVER_ID, mode, 0, Bytes::from_static(b"x")) {
            Ok(()) if mode == TransferMode::Reliable => reliable_sent += 1,
            Ok(()) => unreliable_sent += 1,
            Err(MultiplayerError::Backlog(SERVER_ID)) => busy += 1,
            Err(e) => panic!("unexpected {e}"),
        }
        net.step(i);
        assert!(net.available(SERVER_ID) <= MAX_INBOX);
    }
    let route = net.route_stats(client).unwrap();
    assert_eq!(net.available(SERVER_ID), MAX_INBOX);
    assert!(
        busy > 0,
        "reliable sends were refused once the link was full"
    );
    assert!(route.to_server_queued <= MAX_RELIABLE_HELD + LinkConfig::default().queue_limit);
    let link = route.to_server;
    assert_eq!(
        link.packets_in,
        reliable_sent + unreliable_sent,
        "a refused send counts nothing"
    );
    assert_eq!(
        link.packets_in,
        link.packets_delivered + link.dropped_overflow + route.to_server_queued as u64,
        "every packet delivered, dropped for a counted reason, or held"
    );
    assert_eq!(link.packets_delivered, MAX_INBOX as u64);
}
