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
    let mut conn = Connection::new(config, 0);
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
    assert_eq!(conn.error(), Some(&ReliableError::TimedOut { ms: 1000 }));
}
