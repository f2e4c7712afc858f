//! A UDP link proxy: it listens on a port and relays every datagram to a target address and back, through one
//! impaired two-way link per client address. For games that run as separate processes (two game instances, a
//! dedicated server): point the client at the proxy instead of the server.
//!
//! Each client address gets its own upstream socket, so the server sees one address per client, as without the
//! proxy. The links are [`PeerLinks`] lanes (the link model every peerkit link uses), all unreliable: the proxy
//! sees datagrams, not transfer modes. All socket work and timing run on the proxy's own thread in real time,
//! so a stalled game frame does not turn into loss or delay; changes and questions reach the thread through a
//! channel.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender};
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token, Waker};

use super::udp::{MAX_DATAGRAM, RECV_BUFFER};
use crate::link::conditioner::Directions;
use crate::link::{LinkConfig, LinkConfigError};
use crate::multiplayer::conditioner::{LinkChangeError, LinkPairStats, PeerLinks};
use crate::multiplayer::{PeerId, TransferMode};

/// The most clients a proxy relays for at once; datagrams from further addresses are dropped and counted.
pub const MAX_CLIENTS: usize = 1024;

const LISTEN: Token = Token(0);
const WAKE: Token = Token(1);
/// Client `id`'s upstream socket is token `id + CLIENT_TOKEN_BASE`.
const CLIENT_TOKEN_BASE: usize = 2;
/// The longest the thread sleeps with nothing due (it wakes at once for a datagram or a command).
const IDLE_WAIT: Duration = Duration::from_millis(50);

/// Why a proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The listening port is taken.
    #[error("cannot listen on {addr}: the port is in use")]
    AddressInUse {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// Another system error.
    #[error("cannot start the proxy on {addr}: {source}")]
    Io {
        /// The address asked for.
        addr: SocketAddr,
        /// What the system said.
        source: io::Error,
    },
}

/// Which client a change is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientSelector {
    /// Every client, and those that come later.
    All,
    /// The client at this address.
    At(SocketAddr),
}

/// Why a change to a link was refused (nothing changed).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProxyChangeError {
    /// No client at that address has sent anything.
    #[error("no client at {0} has sent anything through the proxy")]
    UnknownClient(SocketAddr),
    /// The setting itself.
    #[error("{0}")]
    Setting(LinkConfigError),
    /// The proxy's thread has stopped.
    #[error("the proxy is not running")]
    Stopped,
}

/// One client's figures: its address, and its link's counters (outbound = client to server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientStats {
    /// The client's address.
    pub addr: SocketAddr,
    /// Both directions' counters.
    pub link: LinkPairStats,
}

/// What the proxy's thread keeps: the sockets, who is who, and the links.
struct State {
    poll: Poll,
    listen: UdpSocket,
    target: SocketAddr,
    links: PeerLinks,
    clients: BTreeMap<SocketAddr, PeerId>,
    upstream: BTreeMap<PeerId, (SocketAddr, UdpSocket)>,
    next_id: PeerId,
    dropped_too_many_clients: u64,
    send_errors: u64,
    started: Instant,
}

type Command = Box<dyn FnOnce(&mut State) + Send>;

/// A running proxy. Dropping it stops the thread and closes every socket.
pub struct UdpProxy {
    local: SocketAddr,
    commands: Sender<Command>,
    waker: Waker,
    thread: Option<JoinHandle<()>>,
}

impl UdpProxy {
    /// Listens on `listen` and relays to `target`, every client's links starting clean, their random
    /// decisions drawn from `seed` (each client's from the seed and the order it first sent in).
    pub fn start(listen: SocketAddr, target: SocketAddr, seed: u64) -> Result<Self, ProxyError> {
        let io_error = |source: io::Error| match source.kind() {
            io::ErrorKind::AddrInUse => ProxyError::AddressInUse { addr: listen },
            _ => ProxyError::Io {
                addr: listen,
                source,
            },
        };
        let socket = bind(listen).map_err(io_error)?;
        let local = socket.local_addr().map_err(io_error)?;
        let mut listen_socket = UdpSocket::from_std(socket);
        let poll = Poll::new().map_err(io_error)?;
        poll.registry()
            .register(&mut listen_socket, LISTEN, Interest::READABLE)
            .map_err(io_error)?;
        let waker = Waker::new(poll.registry(), WAKE).map_err(io_error)?;
        let (commands, inbox) = crossbeam_channel::unbounded::<Command>();
        let state = State {
            poll,
            listen: listen_socket,
            target,
            links: PeerLinks::new(seed),
            clients: BTreeMap::new(),
            upstream: BTreeMap::new(),
            next_id: 1,
            dropped_too_many_clients: 0,
            send_errors: 0,
            started: Instant::now(),
        };
        let thread = std::thread::Builder::new()
            .name("peerkit-udp-proxy".into())
            .spawn(move || run(state, &inbox))
            .map_err(io_error)?;
        Ok(Self {
            local,
            commands,
            waker,
            thread: Some(thread),
        })
    }

    /// The address the proxy listens on (its port, when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Runs `ask` on the proxy's thread and returns its answer; `None` once the thread has stopped.
    fn ask<R: Send + 'static>(
        &self,
        ask: impl FnOnce(&mut State) -> R + Send + 'static,
    ) -> Option<R> {
        let (reply, answer) = crossbeam_channel::bounded(1);
        let command: Command = Box::new(move |state| {
            let _ = reply.send(ask(state));
        });
        self.commands.send(command).ok()?;
        self.waker.wake().ok()?;
        answer.recv().ok()
    }

    /// Changes the links of `client` in `directions` (outbound: client to server), all or none.
    pub fn configure(
        &self,
        client: ClientSelector,
        directions: Directions,
        change: impl Fn(&mut LinkConfig) -> Result<(), LinkConfigError> + Send + 'static,
    ) -> Result<(), ProxyChangeError> {
        self.ask(move |state| {
            let id = match client {
                ClientSelector::All => 0,
                ClientSelector::At(addr) => match state.clients.get(&addr) {
                    Some(&id) => id,
                    None => return Err(ProxyChangeError::UnknownClient(addr)),
                },
            };
            state
                .links
                .configure(id, directions, change)
                .map_err(|e| match e {
                    LinkChangeError::Setting(e) => ProxyChangeError::Setting(e),
                    LinkChangeError::UnknownPeer(_) => ProxyChangeError::Stopped,
                })
        })
        .unwrap_or(Err(ProxyChangeError::Stopped))
    }

    /// The settings of one direction for `client` (outbound: client to server); `None` for an unknown client.
    pub fn config(&self, client: ClientSelector, outbound: bool) -> Option<LinkConfig> {
        self.ask(move |state| {
            let id = match client {
                ClientSelector::All => 0,
                ClientSelector::At(addr) => *state.clients.get(&addr)?,
            };
            state.links.config(id, outbound).cloned()
        })
        .flatten()
    }

    /// Restarts every link's random stream from `seed`.
    pub fn reseed(&self, seed: u64) {
        let _ = self.ask(move |state| state.links.reseed(seed));
    }

    /// Each client's counters, in address order; datagrams dropped because [`MAX_CLIENTS`] clients were
    /// relayed for already; and sends the system refused.
    pub fn stats(&self) -> (Vec<ClientStats>, u64, u64) {
        self.ask(|state| {
            let clients = state
                .clients
                .iter()
                .filter_map(|(&addr, &id)| {
                    Some(ClientStats {
                        addr,
                        link: state.links.link_stats(id)?,
                    })
                })
                .collect();
            (clients, state.dropped_too_many_clients, state.send_errors)
        })
        .unwrap_or_default()
    }

    /// Stops the thread and closes every socket; what the links held is dropped.
    pub fn stop(&mut self) {
        if let Some(thread) = self.thread.take() {
            let (tx, _) = crossbeam_channel::bounded::<Command>(1);
            // Replacing the sender closes the channel: the thread sees it and ends.
            self.commands = tx;
            let _ = self.waker.wake();
            let _ = thread.join();
        }
    }
}

impl Drop for UdpProxy {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A non-blocking socket bound to `addr`, with the large receive buffer UdpPacketPeer asks for.
fn bind(addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let domain = if addr.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    if socket
        .recv_buffer_size()
        .is_ok_and(|current| RECV_BUFFER > current)
    {
        let _ = socket.set_recv_buffer_size(RECV_BUFFER);
    }
    socket.bind(&addr.into())?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

fn run(mut state: State, commands: &Receiver<Command>) {
    let mut events = Events::with_capacity(256);
    let mut buffer = vec![0u8; MAX_DATAGRAM + 1];
    loop {
        let now = state.now();
        let wait = state
            .links
            .next_due()
            .map_or(IDLE_WAIT, |due| {
                Duration::from_micros(due.saturating_sub(now))
            })
            .min(IDLE_WAIT);
        if state.poll.poll(&mut events, Some(wait)).is_err() {
            std::thread::sleep(Duration::from_millis(1));
        }
        loop {
            match commands.try_recv() {
                Ok(command) => command(&mut state),
                Err(crossbeam_channel::TryRecvError::Empty) => break,
                Err(crossbeam_channel::TryRecvError::Disconnected) => return,
            }
        }
        // Readiness is edge-triggered: each socket the poll named is read until it would block (a datagram that
        // arrives later names it again); the others are not asked.
        for event in events.iter() {
            match event.token() {
                LISTEN => state.read_clients(&mut buffer),
                WAKE => {}
                Token(token) => {
                    state.read_server((token - CLIENT_TOKEN_BASE) as PeerId, &mut buffer)
                }
            }
        }
        state.flush();
    }
}

/// Whether a read error leaves more to read: an interrupted call, or a reset (Windows reports an earlier send's
/// ICMP "port unreachable" on the next read of a UDP socket). Anything else, WouldBlock included, ends the read.
fn retry(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::Interrupted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
    )
}

impl State {
    fn now(&self) -> u64 {
        self.started.elapsed().as_micros() as u64
    }

    /// Datagrams from clients, into each one's outbound (client to server) link; a new address gets a link and
    /// an upstream socket of its own.
    fn read_clients(&mut self, buffer: &mut [u8]) {
        loop {
            let (len, from) = match self.listen.recv_from(buffer) {
                Ok(got) => got,
                Err(e) if retry(&e) => continue,
                Err(_) => return,
            };
            let Some(id) = self.client(from) else {
                self.dropped_too_many_clients += 1;
                continue;
            };
            let now = self.now();
            let data = Bytes::copy_from_slice(&buffer[..len]);
            let _ = self.links.send(now, id, TransferMode::Unreliable, 0, data);
        }
    }

    /// The id of the client at `from`, making it one (link and upstream socket) if it is new.
    fn client(&mut self, from: SocketAddr) -> Option<PeerId> {
        if let Some(&id) = self.clients.get(&from) {
            return Some(id);
        }
        if self.clients.len() >= MAX_CLIENTS {
            return None;
        }
        let unspecified = match self.target.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        let socket = bind(SocketAddr::new(unspecified, 0)).ok()?;
        socket.connect(self.target).ok()?;
        let mut socket = UdpSocket::from_std(socket);
        let id = self.next_id;
        self.poll
            .registry()
            .register(
                &mut socket,
                Token(id as usize + CLIENT_TOKEN_BASE),
                Interest::READABLE,
            )
            .ok()?;
        self.next_id += 1;
        self.clients.insert(from, id);
        self.upstream.insert(id, (from, socket));
        self.links.connect(id);
        Some(id)
    }

    /// Datagrams from the server for client `id`, into its inbound (server to client) link.
    fn read_server(&mut self, id: PeerId, buffer: &mut [u8]) {
        loop {
            let Some((_, socket)) = self.upstream.get(&id) else {
                return;
            };
            let len = match socket.recv(buffer) {
                Ok(len) => len,
                Err(e) if retry(&e) => continue,
                Err(_) => return,
            };
            let now = self.now();
            let data = Bytes::copy_from_slice(&buffer[..len]);
            let _ = self
                .links
                .receive(now, id, TransferMode::Unreliable, 0, data);
        }
    }

    /// Sends what is due: to the server from each client's upstream socket, to each client from the listening
    /// socket.
    fn flush(&mut self) {
        let now = self.now();
        while let Some((id, packet)) = self.links.poll_outbound(now) {
            if let Some((_, socket)) = self.upstream.get(&id) {
                if socket.send(&packet.data).is_err() {
                    self.send_errors += 1;
                }
            }
        }
        self.links.poll_inbound(now);
        while let Some(packet) = self.links.pop() {
            if let Some((client, _)) = self.upstream.get(&packet.from) {
                if self.listen.send_to(&packet.data, *client).is_err() {
                    self.send_errors += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback() -> SocketAddr {
        "127.0.0.1:0".parse().unwrap()
    }

    fn socket() -> std::net::UdpSocket {
        let s = std::net::UdpSocket::bind(loopback()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s
    }

    #[test]
    fn relays_both_ways_with_one_upstream_address_per_client() {
        let server = socket();
        let proxy = UdpProxy::start(loopback(), server.local_addr().unwrap(), 1).unwrap();
        let (a, b) = (socket(), socket());
        a.send_to(b"from a", proxy.local_addr()).unwrap();
        b.send_to(b"from b", proxy.local_addr()).unwrap();
        let mut buf = [0u8; 64];
        let mut seen = BTreeMap::new();
        for _ in 0..2 {
            let (n, from) = server.recv_from(&mut buf).unwrap();
            seen.insert(buf[..n].to_vec(), from);
        }
        let (a_up, b_up) = (seen[&b"from a".to_vec()], seen[&b"from b".to_vec()]);
        assert_ne!(a_up, b_up, "the server sees two clients");
        server.send_to(b"to a", a_up).unwrap();
        server.send_to(b"to b", b_up).unwrap();
        let n = a.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"to a");
        let n = b.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"to b");
        let (clients, too_many, errors) = proxy.stats();
        assert_eq!(clients.len(), 2);
        assert_eq!((too_many, errors), (0, 0));
        for c in clients {
            assert_eq!(c.link.outbound.packets_delivered, 1);
            assert_eq!(c.link.inbound.packets_delivered, 1);
        }
    }

    #[test]
    fn the_delay_is_at_least_what_is_set_and_loss_is_counted() {
        let server = socket();
        let proxy = UdpProxy::start(loopback(), server.local_addr().unwrap(), 2).unwrap();
        proxy
            .configure(ClientSelector::All, Directions::Outbound, |c| {
                c.latency_ms = 40.0;
                Ok(())
            })
            .unwrap();
        let client = socket();
        let sent = Instant::now();
        client.send_to(b"x", proxy.local_addr()).unwrap();
        let mut buf = [0u8; 8];
        server.recv_from(&mut buf).unwrap();
        assert!(sent.elapsed() >= Duration::from_millis(40), "held 40 ms");
        let addr = client.local_addr().unwrap();
        proxy
            .configure(ClientSelector::At(addr), Directions::Both, |c| {
                c.latency_ms = 0.0;
                c.loss = 1.0;
                Ok(())
            })
            .unwrap();
        for _ in 0..50 {
            client.send_to(b"lost", proxy.local_addr()).unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while proxy.stats().0[0].link.outbound.dropped_loss < 50 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(proxy.stats().0[0].link.outbound.dropped_loss, 50);
        assert_eq!(
            proxy.config(ClientSelector::At(addr), true).unwrap().loss,
            1.0
        );
        let unknown: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert_eq!(
            proxy.configure(ClientSelector::At(unknown), Directions::Both, |_| Ok(())),
            Err(ProxyChangeError::UnknownClient(unknown))
        );
    }

    #[test]
    fn a_taken_port_is_reported_and_stop_is_prompt() {
        let server = socket();
        let mut proxy = UdpProxy::start(loopback(), server.local_addr().unwrap(), 3).unwrap();
        assert!(matches!(
            UdpProxy::start(proxy.local_addr(), server.local_addr().unwrap(), 3),
            Err(ProxyError::AddressInUse { .. })
        ));
        let started = Instant::now();
        proxy.stop();
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "stopped in {:?}",
            started.elapsed()
        );
        assert_eq!(
            proxy.configure(ClientSelector::All, Directions::Both, |_| Ok(())),
            Err(ProxyChangeError::Stopped)
        );
        // The port is free again.
        let again = std::net::UdpSocket::bind(proxy.local_addr());
        assert!(again.is_ok(), "the listening socket was closed");
    }
}
