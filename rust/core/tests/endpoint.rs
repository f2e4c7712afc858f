//! A server endpoint and many clients on a virtual clock: accepting, limits and refusals, routing by
//! connection id, restarts, floods and timeouts (`reliable::Endpoint`).

use std::collections::HashMap;

use bytes::Bytes;
use peerkit_core::link::{LinkConfig, LinkModel, Micros};
use peerkit_core::reliable::packet::{self, Hello, Ids, Kind};
use peerkit_core::reliable::seq::Seq;
use peerkit_core::reliable::{
    ConnectionHandle, Endpoint, EndpointConfig, Event, RefuseReason, ReliableConfig, ReliableError,
    Status,
};

/// The server's address; clients are 1, 2, ...
const SERVER: u32 = 0;

/// One client: its own endpoint with one connection to the server, and the two directions of its link.
struct Client {
    endpoint: Endpoint<u32>,
    handle: ConnectionHandle,
    up: LinkModel,
    down: LinkModel,
}

/// A server and its clients, each client on its own simulated link, on one virtual clock.
struct Net {
    now: Micros,
    server: Endpoint<u32>,
    clients: Vec<Client>,
    buf: Vec<u8>,
    /// Bytes the server received from and sent to each address.
    bytes_in: HashMap<u32, u64>,
    bytes_out: HashMap<u32, u64>,
}

fn server_config(max_connections: usize, max_pending: usize) -> EndpointConfig {
    EndpointConfig {
        connection: ReliableConfig::default(),
        accept: true,
        max_connections,
        max_pending,
    }
}

impl Net {
    fn new(config: EndpointConfig) -> Self {
        Self {
            now: 0,
            server: Endpoint::new(config, 7),
            clients: Vec::new(),
            buf: Vec::new(),
            bytes_in: HashMap::new(),
            bytes_out: HashMap::new(),
        }
    }

    /// Adds a client that starts connecting now over `link` (both directions); returns its index.
    fn add_client(&mut self, link: LinkConfig) -> usize {
        let addr = self.clients.len() as u32 + 1;
        let mut endpoint = Endpoint::new(EndpointConfig::default(), 1000 + addr as u64);
        let handle = endpoint.connect(self.now, SERVER, ReliableConfig::default());
        self.clients.push(Client {
            endpoint,
            handle,
            up: LinkModel::new(link.clone(), addr as u64),
            down: LinkModel::new(link, addr as u64 ^ 0xABCD),
        });
        self.clients.len() - 1
    }

    fn addr(i: usize) -> u32 {
        i as u32 + 1
    }

    fn drive(&mut self) {
        let now = self.now;
        for (i, c) in self.clients.iter_mut().enumerate() {
            while let Some(d) = c.up.poll(now) {
                *self.bytes_in.entry(Self::addr(i)).or_default() += d.len() as u64;
                self.server.handle_datagram(now, Self::addr(i), &d);
            }
            while let Some(d) = c.down.poll(now) {
                c.endpoint.handle_datagram(now, SERVER, &d);
            }
            c.endpoint.handle_timeout(now);
            while let Some(t) = c.endpoint.poll_transmit(now, &mut self.buf) {
                assert_eq!(t.to, SERVER);
                c.up.send(now, Bytes::copy_from_slice(&self.buf));
            }
        }
        self.server.handle_timeout(now);
        while let Some(t) = self.server.poll_transmit(now, &mut self.buf) {
            *self.bytes_out.entry(t.to).or_default() += self.buf.len() as u64;
            let client = &mut self.clients[t.to as usize - 1];
            client.down.send(now, Bytes::copy_from_slice(&self.buf));
        }
    }

    fn step(&mut self) {
        self.drive();
        let mut next = self.server.poll_timeout();
        for c in &self.clients {
            for t in [
                c.endpoint.poll_timeout(),
                c.up.next_due(),
                c.down.next_due(),
            ] {
                next = match (next, t) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
        }
        self.now = next.unwrap_or(self.now + 1_000).max(self.now + 1);
    }

    /// Steps until `until` (simulated microseconds from now); a bounded loop.
    fn run_for(&mut self, us: Micros) {
        let end = self.now + us;
        for _ in 0..10_000_000 {
            if self.now >= end {
                return;
            }
            self.step();
        }
        panic!("the simulation did not reach its end");
    }

    fn client_status(&self, i: usize) -> Status {
        let c = &self.clients[i];
        c.endpoint.connection(c.handle).unwrap().status()
    }

    fn client_error(&self, i: usize) -> Option<ReliableError> {
        let c = &self.clients[i];
        c.endpoint.connection(c.handle).unwrap().error().cloned()
    }

    /// Accepts every waiting connection; returns them keyed by the client address each talks to.
    fn accept_all(&mut self, into: &mut HashMap<u32, ConnectionHandle>) {
        while let Some(h) = self.server.accept() {
            let addr = *self.server.address(h).unwrap();
            assert!(
                into.insert(addr, h).is_none(),
                "two connections for client {addr}"
            );
        }
    }
}

fn lossy(loss: f64, latency_ms: f64) -> LinkConfig {
    LinkConfig {
        loss,
        latency_ms,
        ..LinkConfig::default()
    }
}

/// 100 clients on lossy links connect to one server at once, far beyond `max_pending` (16): each gets in as
/// the server takes connections, sends its own messages and gets back its own echo, and none sees another's.
#[test]
fn a_server_accepts_a_hundred_clients_and_each_talks_to_its_own_connection() {
    let mut net = Net::new(server_config(100, 16));
    for _ in 0..100 {
        net.add_client(lossy(0.05, 10.0));
    }
    for i in 0..100 {
        let c = &mut net.clients[i];
        for m in 0..10u32 {
            let msg = format!("client {i} message {m}");
            c.endpoint
                .connection_mut(c.handle)
                .unwrap()
                .send(Bytes::from(msg))
                .unwrap();
        }
    }
    let mut accepted = HashMap::new();
    for _ in 0..600 {
        net.run_for(10_000);
        net.accept_all(&mut accepted);
        // The server echoes what each connection receives, on that connection.
        for &h in accepted.values() {
            let conn = net.server.connection_mut(h).unwrap();
            while let Some(m) = conn.recv() {
                conn.send(m).unwrap();
            }
        }
    }
    assert_eq!(accepted.len(), 100);
    assert_eq!(net.server.stats().accepted, 100);
    assert!(
        net.server.stats().refused_pending > 0,
        "the burst was held at the door"
    );
    for i in 0..100 {
        assert_eq!(net.client_status(i), Status::Connected, "client {i}");
        let c = &mut net.clients[i];
        let conn = c.endpoint.connection_mut(c.handle).unwrap();
        for m in 0..10u32 {
            let got = conn
                .recv()
                .unwrap_or_else(|| panic!("client {i} lacks echo {m}"));
            assert_eq!(got, format!("client {i} message {m}").as_bytes());
        }
        assert_eq!(conn.recv(), None);
    }
}

/// Beyond `max_connections` a client fails at connect time, told why, instead of timing out.
#[test]
fn a_client_beyond_max_connections_is_refused_with_the_reason_at_once() {
    let mut net = Net::new(server_config(2, 16));
    for _ in 0..3 {
        net.add_client(lossy(0.0, 20.0));
    }
    let mut accepted = HashMap::new();
    net.run_for(200_000);
    net.accept_all(&mut accepted);
    assert_eq!(accepted.len(), 2);
    assert_eq!(net.client_status(0), Status::Connected);
    assert_eq!(net.client_status(1), Status::Connected);
    // One round trip (40 ms) plus scheduling: far sooner than the 10 s handshake timeout.
    assert_eq!(net.client_status(2), Status::Failed);
    let error = net.client_error(2).unwrap();
    assert_eq!(error, ReliableError::Refused(RefuseReason::Full));
    assert!(error.to_string().contains("max_connections"), "{error}");
    assert_eq!(net.server.stats().refused_full, 1);
    let c = &mut net.clients[2];
    let events: Vec<_> = std::iter::from_fn(|| c.endpoint.poll_event(c.handle)).collect();
    assert_eq!(events, vec![Event::Failed(error)]);
}

/// Connections not taken by `accept` count against `max_pending`: one more keeps trying while refused, and
/// fails with that reason when its handshake times out; a server that stopped accepting says so at once.
#[test]
fn pending_and_not_accepting_refusals_name_their_reason() {
    let mut net = Net::new(server_config(10, 2));
    for _ in 0..3 {
        net.add_client(LinkConfig::default());
    }
    net.run_for(100_000);
    assert_eq!(net.server.waiting_count(), 2);
    assert_eq!(
        net.client_status(2),
        Status::Connecting,
        "refused for now, still trying"
    );
    net.run_for(10_000_000);
    let error = net.client_error(2).unwrap();
    assert_eq!(error, ReliableError::Refused(RefuseReason::TooManyPending));
    assert!(error.to_string().contains("take_connection()"), "{error}");
    let refused = net.server.stats().refused_pending;
    assert!(refused > 1, "each repeated HELLO refused again ({refused})");
    net.server.set_accepting(false);
    net.add_client(LinkConfig::default());
    net.run_for(100_000);
    assert_eq!(
        net.client_error(3),
        Some(ReliableError::Refused(RefuseReason::NotAccepting))
    );
    assert_eq!(net.server.stats().refused_not_accepting, 1);
}

fn hello(src: u32) -> Bytes {
    let mut buf = Vec::new();
    packet::encode_hello(
        &mut buf,
        Ids { dst: 0, src },
        Hello {
            initial_seq: Seq(1),
            mtu: 1200,
            max_message_size: ReliableConfig::default().max_message_size as u32,
            receive_window: 1 << 20,
        },
    );
    Bytes::from(buf)
}

/// A flood of HELLOs from many source ports that never answer: at most `max_pending` half-open connections,
/// bounded memory, no address sent more bytes than it sent, and all of them freed after the timeout.
#[test]
fn a_hello_flood_holds_at_most_max_pending_half_open_connections_and_never_amplifies() {
    let max_pending = 16;
    let mut server: Endpoint<u32> = Endpoint::new(server_config(64, max_pending), 3);
    let mut buf = Vec::new();
    let mut bytes_in: HashMap<u32, u64> = HashMap::new();
    let mut bytes_out: HashMap<u32, u64> = HashMap::new();
    let mut most_held = 0;
    let mut most_memory = 0;
    let mut now = 0;
    for i in 0..20_000u32 {
        let from = 1 + i % 5_000; // 5,000 source ports, each sending four HELLOs over the run
        let d = hello(0x1000 + from);
        *bytes_in.entry(from).or_default() += d.len() as u64;
        server.handle_datagram(now, from, &d);
        server.handle_timeout(now);
        while let Some(t) = server.poll_transmit(now, &mut buf) {
            *bytes_out.entry(t.to).or_default() += buf.len() as u64;
        }
        most_held = most_held.max(server.held_count());
        most_memory = most_memory.max(server.memory_bytes());
        now += 100; // 10,000 HELLOs a second
    }
    assert!(most_held <= max_pending, "held {most_held}");
    // README: "half-open connections of under 2 KB each".
    const { assert!(peerkit_core::reliable::endpoint::HALF_OPEN_BYTES + 512 <= 2048) };
    let bound = max_pending * 2048 + 64 * 64;
    assert!(most_memory <= bound, "memory {most_memory} > {bound}");
    for (addr, out) in &bytes_out {
        assert!(
            *out <= bytes_in[addr],
            "address {addr}: {out} bytes out for {} in",
            bytes_in[addr]
        );
    }
    let stats = server.stats();
    assert!(stats.refused_pending > 0);
    assert_eq!(stats.accepted, 0);
    // Nobody answers: after the handshake timeout every half-open connection is gone.
    for _ in 0..200 {
        now += 100_000;
        server.handle_timeout(now);
        while server.poll_transmit(now, &mut buf).is_some() {}
    }
    assert_eq!(server.held_count(), 0);
    assert_eq!(server.stats().pending_failed, max_pending as u64);
}

/// Datagrams for ids no connection has, corrupt ones and foreign ones are counted by the endpoint and reach
/// no connection.
#[test]
fn datagrams_of_unknown_connections_are_counted_and_never_delivered() {
    let mut net = Net::new(server_config(4, 4));
    net.add_client(LinkConfig::default());
    let mut accepted = HashMap::new();
    net.run_for(50_000);
    net.accept_all(&mut accepted);
    let h = accepted[&1];
    let server_id = net.server.connection(h).unwrap().local_id();
    let before = net.server.connection(h).unwrap().stats();
    // A DATA datagram for an unknown id, one for the real id from another address, a corrupt one, a foreign one.
    let mut buf = Vec::new();
    let ids = Ids {
        dst: server_id ^ 1,
        src: 99,
    };
    packet::encode_data(
        &mut buf,
        ids,
        Default::default(),
        packet::DataPlace {
            seq: Seq(1),
            ..Default::default()
        },
        Some(3),
        b"bad",
    );
    net.server
        .handle_datagram(net.now, 1, &Bytes::copy_from_slice(&buf));
    packet::encode_data(
        &mut buf,
        Ids {
            dst: server_id,
            src: 99,
        },
        Default::default(),
        packet::DataPlace {
            seq: Seq(1),
            ..Default::default()
        },
        Some(3),
        b"bad",
    );
    net.server
        .handle_datagram(net.now, 77, &Bytes::copy_from_slice(&buf));
    let mut corrupt = hello(5).to_vec();
    corrupt[20] ^= 1;
    net.server
        .handle_datagram(net.now, 78, &Bytes::from(corrupt));
    net.server
        .handle_datagram(net.now, 79, &Bytes::from_static(b"hello there"));
    let s = net.server.stats();
    assert_eq!(
        (
            s.dropped_unknown_connection,
            s.dropped_wrong_address,
            s.dropped_corrupt,
            s.dropped_invalid
        ),
        (1, 1, 1, 1)
    );
    let conn = net.server.connection_mut(h).unwrap();
    assert_eq!(conn.stats().datagrams_received, before.datagrams_received);
    assert_eq!(conn.recv(), None);
    assert_eq!(net.server.held_count(), 1);
}

/// A client that restarts from the same address (a new connection id) gets a new connection; nothing the old
/// connection sent or had queued reaches the new one.
#[test]
fn a_client_restarting_from_the_same_address_gets_a_new_connection_and_never_the_old_ones_data() {
    let mut net = Net::new(server_config(4, 4));
    net.add_client(lossy(0.0, 5.0));
    let mut accepted = HashMap::new();
    net.run_for(50_000);
    net.accept_all(&mut accepted);
    let old = accepted.remove(&1).unwrap();
    // The old connection has a message for the client in flight, and the client one for the server.
    net.server
        .connection_mut(old)
        .unwrap()
        .send(Bytes::from_static(b"for the old client"))
        .unwrap();
    let c = &mut net.clients[0];
    c.endpoint
        .connection_mut(c.handle)
        .unwrap()
        .send(Bytes::from_static(b"from the old client"))
        .unwrap();
    net.drive();
    // The client process restarts on the same port: a new endpoint, a new connection id.
    let mut endpoint = Endpoint::new(EndpointConfig::default(), 555);
    let handle = endpoint.connect(net.now, SERVER, ReliableConfig::default());
    net.clients[0].endpoint = endpoint;
    net.clients[0].handle = handle;
    net.run_for(100_000);
    net.accept_all(&mut accepted);
    let new = accepted[&1];
    assert_ne!(new, old);
    assert_eq!(net.client_status(0), Status::Connected);
    let c = &mut net.clients[0];
    assert_eq!(c.endpoint.connection_mut(c.handle).unwrap().recv(), None);
    assert_eq!(net.server.connection_mut(new).unwrap().recv(), None);
    // The message put before the restart reached the old connection only.
    assert_eq!(
        net.server.connection_mut(old).unwrap().recv().as_deref(),
        Some(&b"from the old client"[..])
    );
}

/// A client that vanishes: its accepted connection times out, and once the owner lets go its memory is
/// freed; a pending one is freed by the endpoint itself.
#[test]
fn a_vanished_client_times_out_and_its_connection_is_freed() {
    let mut net = Net::new(server_config(4, 4));
    net.add_client(LinkConfig::default());
    net.add_client(LinkConfig::default());
    let mut accepted = HashMap::new();
    net.run_for(50_000);
    let first = net.server.accept().unwrap();
    accepted.insert(1, first);
    assert_eq!(net.server.waiting_count(), 1);
    // Both clients vanish.
    for c in &mut net.clients {
        c.up.set_config(LinkConfig {
            link_up: false,
            ..LinkConfig::default()
        });
    }
    net.run_for(11_000_000);
    let conn = net.server.connection(first).unwrap();
    assert_eq!(conn.status(), Status::Failed);
    assert!(matches!(conn.error(), Some(ReliableError::TimedOut { .. })));
    assert_eq!(net.server.waiting_count(), 0);
    assert_eq!(net.server.held_count(), 1);
    assert_eq!(net.server.stats().pending_failed, 1);
    net.server.release(first);
    assert_eq!(net.server.held_count(), 0);
    assert_eq!(net.server.memory_bytes(), 0);
}

/// The time each message of client 1's stream takes, with client 0 beside it on a clean or a very lossy link.
fn latencies_beside(neighbour: LinkConfig) -> Vec<Micros> {
    let mut net = Net::new(server_config(4, 4));
    net.add_client(neighbour);
    net.add_client(lossy(0.0, 20.0));
    let mut accepted = HashMap::new();
    net.run_for(3_000_000);
    net.accept_all(&mut accepted);
    assert_eq!(accepted.len(), 2);
    let mut sent_at = Vec::new();
    let mut latencies = Vec::new();
    for m in 0..300u32 {
        // Client 0 sends bulk, client 1 a message every 10 ms.
        let c0 = &mut net.clients[0];
        let conn0 = c0.endpoint.connection_mut(c0.handle).unwrap();
        while conn0.send(Bytes::from(vec![0u8; 4000])).is_ok()
            && conn0.stats().messages_pending < 64
        {}
        let c1 = &mut net.clients[1];
        c1.endpoint
            .connection_mut(c1.handle)
            .unwrap()
            .send(Bytes::from(m.to_le_bytes().to_vec()))
            .unwrap();
        sent_at.push(net.now);
        net.run_for(10_000);
        let srv = net.server.connection_mut(accepted[&2]).unwrap();
        while let Some(msg) = srv.recv() {
            let i = u32::from_le_bytes(msg[..4].try_into().unwrap()) as usize;
            latencies.push(net.now - sent_at[i]);
        }
        let srv0 = net.server.connection_mut(accepted[&1]).unwrap();
        while srv0.recv().is_some() {}
    }
    latencies.sort_unstable();
    latencies
}

/// One client's loss never slows another's delivery: a neighbour losing 30% of its datagrams leaves a clean
/// client's latencies as they are beside a clean neighbour.
#[test]
fn one_clients_loss_does_not_slow_another_clients_delivery() {
    let beside_clean = latencies_beside(lossy(0.0, 20.0));
    let beside_lossy = latencies_beside(lossy(0.3, 20.0));
    assert!(beside_clean.len() >= 295 && beside_lossy.len() >= 295);
    let p99 = |v: &[Micros]| v[v.len() * 99 / 100];
    assert!(
        p99(&beside_lossy) <= p99(&beside_clean) + 1_000,
        "p99 {} us beside a lossy client, {} us beside a clean one",
        p99(&beside_lossy),
        p99(&beside_clean)
    );
}

/// A datagram of the real protocol that is not a first HELLO from a new sender starts nothing.
#[test]
fn only_a_valid_first_hello_starts_a_connection() {
    let mut server: Endpoint<u32> = Endpoint::new(server_config(4, 4), 1);
    let mut buf = Vec::new();
    for kind in [Kind::Ack, Kind::Ping, Kind::Close] {
        packet::encode_control(&mut buf, kind, Ids { dst: 0, src: 5 }, Default::default());
        server.handle_datagram(0, 1, &Bytes::copy_from_slice(&buf));
    }
    let mut addressed = hello(5).to_vec();
    addressed[8] = 1; // a HELLO addressed to a connection id the server never gave out
    packet::seal(&mut addressed);
    server.handle_datagram(0, 1, &Bytes::from(addressed));
    assert_eq!(server.held_count(), 0);
    assert_eq!(server.stats().dropped_unknown_connection, 4);
    server.handle_datagram(0, 1, &hello(5));
    assert_eq!(server.held_count(), 1);
    // The same HELLO again (repeated by the client) reaches the same connection.
    server.handle_datagram(0, 1, &hello(5));
    assert_eq!(server.held_count(), 1);
}
