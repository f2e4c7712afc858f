//! The multiplayer host over endpoints: ids, packets by id and mode, comings and goings.

use bytes::Bytes;
use peerkit_core::multiplayer::host::{Host, HostError, HostEvent};
use peerkit_core::multiplayer::{Status, TransferMode};
use peerkit_core::reliable::{Endpoint, EndpointConfig, ReliableConfig};

/// A server (address 0) and clients (addresses 1..) on a perfect network.
struct Net {
    now: u64,
    endpoints: Vec<Endpoint<u64>>,
    hosts: Vec<Host>,
}

impl Net {
    fn new(clients: u64) -> Self {
        let server = Endpoint::new(
            EndpointConfig {
                accept: true,
                ..EndpointConfig::default()
            },
            1,
        );
        let mut endpoints = vec![server];
        let mut hosts = vec![Host::server(2)];
        for c in 1..=clients {
            let mut e = Endpoint::new(EndpointConfig::default(), 10 + c);
            hosts.push(Host::client(
                &mut e,
                0,
                0,
                ReliableConfig::default(),
                20 + c,
            ));
            endpoints.push(e);
        }
        Net {
            now: 0,
            endpoints,
            hosts,
        }
    }

    fn step(&mut self) {
        self.now += 1_000;
        let mut buf = Vec::new();
        for i in 0..self.endpoints.len() {
            self.endpoints[i].handle_timeout(self.now);
            while let Some(t) = self.endpoints[i].poll_transmit(self.now, &mut buf) {
                let data = Bytes::copy_from_slice(&buf);
                self.endpoints[t.to as usize].handle_datagram(self.now, i as u64, &data);
            }
        }
        for (h, e) in self.hosts.iter_mut().zip(&mut self.endpoints) {
            h.update(e, self.now);
        }
    }

    fn run(&mut self, ms: u64) {
        for _ in 0..ms {
            self.step();
        }
    }

    fn events(&mut self, i: usize) -> Vec<HostEvent> {
        std::iter::from_fn(|| self.hosts[i].poll_event()).collect()
    }
}

#[test]
fn clients_get_ids_and_packets_flow_both_ways_in_every_mode() {
    let mut net = Net::new(2);
    net.run(100);
    let ids: Vec<i32> = (1..=2).map(|i| net.hosts[i].unique_id()).collect();
    assert!(ids.iter().all(|&id| id > 1) && ids[0] != ids[1], "{ids:?}");
    let mut server_events = net.events(0);
    server_events.sort_by_key(|e| format!("{e:?}"));
    let mut expected: Vec<_> = ids.iter().map(|&id| HostEvent::Connected(id)).collect();
    expected.sort_by_key(|e| format!("{e:?}"));
    assert_eq!(server_events, expected);
    assert_eq!(net.events(1), [HostEvent::Connected(1)]);
    assert_eq!(net.hosts[1].status(), Status::Connected);

    for (i, mode) in [
        TransferMode::Reliable,
        TransferMode::UnreliableOrdered,
        TransferMode::Unreliable,
    ]
    .into_iter()
    .enumerate()
    {
        let (s, rest) = net.endpoints.split_at_mut(1);
        net.hosts[1]
            .send(
                &mut rest[0],
                1,
                i as i64 + 3,
                mode,
                Bytes::from_static(b"up"),
            )
            .unwrap();
        net.hosts[0]
            .send(&mut s[0], 0, i as i64, mode, Bytes::from_static(b"all"))
            .unwrap();
    }
    net.run(20);
    let got: Vec<_> = std::iter::from_fn(|| net.hosts[0].pop())
        .map(|p| (p.from, p.channel, p.mode))
        .collect();
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|&(from, _, _)| from == ids[0]));
    assert!(got.contains(&(ids[0], 3, TransferMode::Reliable)));
    assert!(got.contains(&(ids[0], 4, TransferMode::UnreliableOrdered)));
    assert!(got.contains(&(ids[0], 5, TransferMode::Unreliable)));
    for c in 1..=2 {
        let got: Vec<_> = std::iter::from_fn(|| net.hosts[c].pop()).collect();
        assert_eq!(got.len(), 3, "the broadcast reached client {c}");
        assert!(got.iter().all(|p| p.from == 1 && &p.data[..] == b"all"));
    }
}

#[test]
fn bad_targets_and_channels_are_refused_and_nothing_is_queued() {
    let mut net = Net::new(1);
    net.run(100);
    let (s, rest) = net.endpoints.split_at_mut(1);
    let data = Bytes::from_static(b"x");
    assert_eq!(
        net.hosts[0].send(&mut s[0], 12345, 0, TransferMode::Reliable, data.clone()),
        Err(HostError::UnknownPeer(12345))
    );
    assert_eq!(
        net.hosts[0].send(&mut s[0], 0, 255, TransferMode::Reliable, data.clone()),
        Err(HostError::Channel(255))
    );
    assert_eq!(
        net.hosts[1].send(&mut rest[0], 777, 0, TransferMode::Reliable, data),
        Err(HostError::ClientTarget)
    );
    net.run(20);
    assert_eq!(net.hosts[0].available() + net.hosts[1].available(), 0);
}

#[test]
fn disconnecting_a_client_and_closing_the_server_are_reported_on_both_sides() {
    let mut net = Net::new(2);
    net.run(100);
    net.events(0);
    let (a, b) = (net.hosts[1].unique_id(), net.hosts[2].unique_id());
    net.events(1);
    net.events(2);
    let now = net.now;
    net.hosts[0]
        .disconnect_peer(&mut net.endpoints[0], now, a, false)
        .unwrap();
    net.run(50);
    assert_eq!(net.events(0), [HostEvent::Disconnected(a)]);
    assert_eq!(net.events(1), [HostEvent::Disconnected(1)]);
    assert_eq!(net.hosts[1].status(), Status::Disconnected);
    // Closing the server tells every client.
    let now = net.now;
    let (s, _) = net.endpoints.split_at_mut(1);
    net.hosts[0].close(&mut s[0], now);
    net.run(50);
    assert_eq!(
        net.events(2),
        [HostEvent::Disconnected(1)],
        "the server closed"
    );
    assert_eq!(net.hosts[2].status(), Status::Disconnected);
    let _ = b;
}
