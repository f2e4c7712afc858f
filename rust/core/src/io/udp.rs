//! A UDP socket whose receive thread drains the kernel's buffer into a bounded queue, so datagrams keep being
//! taken off the socket while the game is busy (a long frame, a loading stall) and are not lost to the kernel
//! buffer overflowing. What does not fit the queue is dropped and counted, never silently.
//!
//! One reader at a time: the receive thread, or the caller when it finds the queue empty (it then reads the socket
//! itself, so a datagram that has just arrived is handed out without waiting for the thread to wake; a
//! same-thread ping-pong costs what PacketPeerUDP's does). A lock around the reading keeps datagrams in order.
//!
//! Unlike the rest of the core this does real I/O (a socket and a thread), but it knows nothing of Godot.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token, Waker};
use socket2::{Domain, Protocol, Socket, Type};

/// The largest payload a UDP datagram carries over IPv4.
pub const MAX_DATAGRAM: usize = 65_507;
/// The receive buffer UdpPacketPeer asks the system for at least: bursts faster than the receive thread wakes
/// wait there (a system may grant less: Linux caps it at `net.core.rmem_max`; Windows' own default is 64 KiB).
pub const RECV_BUFFER: usize = 4 << 20;
/// The receive thread's poll tokens: the socket is readable, or the endpoint asks it to stop.
const READABLE: Token = Token(0);
const STOP: Token = Token(1);
/// While the caller reads the socket itself at least this often (a game polling once a frame at 50 fps or more),
/// the receive thread leaves the socket to it; the kernel's buffer holds what arrives meanwhile.
const CALLER_ACTIVE_US: u64 = 20_000;
/// How long the receive thread then naps before looking again (a wait or a stop ends it early).
const NAP: Duration = Duration::from_millis(4);
/// The most datagrams the receive thread reads under the reader lock at once; between batches it lets go of the
/// lock and checks whether it should stop, so neither a caller nor `close` waits on a flood.
const DRAIN_BATCH: usize = 256;

/// Why a socket could not be opened or used.
#[derive(Debug, thiserror::Error)]
pub enum UdpError {
    /// The address is taken by another socket.
    #[error("the address {0} is already in use")]
    AddressInUse(SocketAddr),
    /// The socket could not be created or bound.
    #[error("cannot open a UDP socket on {addr}: {source}")]
    Open {
        /// The address asked for.
        addr: SocketAddr,
        /// The system's error.
        source: io::Error,
    },
    /// The receive thread could not be started.
    #[error("cannot start the receive thread: {0}")]
    Thread(io::Error),
}

/// Limits of the receive queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    /// The most datagrams held.
    pub packets: usize,
    /// The most payload bytes held.
    pub bytes: usize,
}

impl Default for QueueLimits {
    fn default() -> Self {
        Self {
            packets: 65_536,
            bytes: 16 * 1024 * 1024,
        }
    }
}

/// The interface a multicast group is joined on, as the system knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MulticastInterface {
    /// Its IPv4 address (for IPv4 groups); unspecified lets the system choose.
    pub v4: Ipv4Addr,
    /// Its index (for IPv6 groups); 0 lets the system choose.
    pub v6_index: u32,
}

/// A datagram taken off the socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// Its payload.
    pub data: Bytes,
    /// Who sent it (IPv4-mapped IPv6 addresses are given as IPv4).
    pub from: SocketAddr,
}

/// Counters of one socket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UdpStats {
    /// Datagrams taken off the socket (queued or dropped).
    pub packets_in: u64,
    /// Their bytes.
    pub bytes_in: u64,
    /// Datagrams sent.
    pub packets_out: u64,
    /// Their bytes.
    pub bytes_out: u64,
    /// Datagrams dropped because the queue was full (in packets or bytes).
    pub dropped_overflow: u64,
    /// The most datagrams the queue has held at once.
    pub queue_high_water: u64,
}

#[derive(Debug)]
struct Shared {
    stop: AtomicBool,
    queued_bytes: AtomicUsize,
    byte_limit: usize,
    packets_in: AtomicU64,
    bytes_in: AtomicU64,
    dropped_overflow: AtomicU64,
    high_water: AtomicU64,
    /// When the caller last read the socket itself, in microseconds since `origin`.
    caller_read_at_us: AtomicU64,
    origin: Instant,
    /// Held by whoever reads the socket (the receive thread or the caller), with the buffer it reads into: one
    /// reader at a time, so datagrams are queued in the order they arrived.
    reader: Mutex<Vec<u8>>,
}

/// An open UDP socket and its receive thread. Dropping it stops the thread and waits for it.
#[derive(Debug)]
pub struct UdpEndpoint {
    /// Non-blocking; the receive thread waits for it to become readable.
    socket: Arc<UdpSocket>,
    inbox: Receiver<Datagram>,
    /// The queue's sending side, for reads made by the caller.
    queue: Sender<Datagram>,
    /// A datagram taken by `wait`, handed out first by the next `recv`.
    waiting: Option<Datagram>,
    shared: Arc<Shared>,
    /// Wakes the receive thread to stop.
    stopper: Waker,
    /// Ends the receive thread's nap (a poll of its own, which no datagram can wake).
    napper: Waker,
    thread: Option<JoinHandle<()>>,
    packets_out: u64,
    bytes_out: u64,
    connected: bool,
    /// Whether the socket is IPv6 (possibly dual-stack), known at bind: asking the system on every send would
    /// cost a system call.
    ipv6: bool,
}

/// The addresses to try binding, in order, for a bind address as Godot's sockets take it and a port: `"*"` is
/// every address (a dual-stack IPv6 socket where the system has one, else IPv4), anything else must be an IP
/// address. `None` when it is neither.
pub fn bind_candidates(address: &str, port: u16) -> Option<Vec<SocketAddr>> {
    if address == "*" {
        return Some(vec![
            SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
        ]);
    }
    let ip = address.parse::<IpAddr>().ok()?;
    Some(vec![SocketAddr::new(ip, port)])
}

/// The address of `host` (an IP address, or a name resolved now, blocking) and `port`; with `ipv4` given, the
/// first of that family. `None` when it does not resolve.
pub fn resolve(host: &str, port: u16, ipv4: Option<bool>) -> Option<SocketAddr> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return ipv4
            .is_none_or(|v4| ip.is_ipv4() == v4)
            .then_some(SocketAddr::new(ip, port));
    }
    (host, port)
        .to_socket_addrs()
        .ok()?
        .find(|addr| ipv4.is_none_or(|v4| addr.is_ipv4() == v4))
}

/// Binds the first of `candidates` that can be bound with `bind`; the last candidate's error if none can.
pub fn bind_first<T>(
    candidates: &[SocketAddr],
    mut bind: impl FnMut(SocketAddr) -> Result<T, UdpError>,
) -> Result<T, UdpError> {
    let mut last_error = None;
    for &addr in candidates {
        match bind(addr) {
            Ok(bound) => return Ok(bound),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or(UdpError::Open {
        addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        source: io::Error::new(io::ErrorKind::InvalidInput, "no address to bind"),
    }))
}

/// Gives IPv4-mapped IPv6 addresses (from a dual-stack socket) as the IPv4 addresses they are.
pub fn unmap(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => addr,
        },
        v4 => v4,
    }
}

impl UdpEndpoint {
    /// Opens a socket bound to `addr`. An unspecified IPv6 address (`::`) makes a dual-stack socket that also
    /// takes IPv4. `recv_buffer` asks the kernel for a receive buffer that large, when larger than its default.
    pub fn bind(
        addr: SocketAddr,
        recv_buffer: usize,
        limits: QueueLimits,
    ) -> Result<Self, UdpError> {
        let open = |source| UdpError::Open { addr, source };
        let domain = if addr.is_ipv4() {
            Domain::IPV4
        } else {
            Domain::IPV6
        };
        let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP)).map_err(open)?;
        if let SocketAddr::V6(v6) = addr {
            socket
                .set_only_v6(!v6.ip().is_unspecified())
                .map_err(open)?;
        }
        // Only ever enlarge the kernel's buffer (asking for less than its default would lose more in a burst). A
        // hint: the kernel may grant less; the receive thread is what keeps up.
        if socket
            .recv_buffer_size()
            .is_ok_and(|current| recv_buffer > current)
        {
            let _ = socket.set_recv_buffer_size(recv_buffer);
        }
        socket.bind(&addr.into()).map_err(|e| match e.kind() {
            io::ErrorKind::AddrInUse => UdpError::AddressInUse(addr),
            _ => open(e),
        })?;
        socket.set_nonblocking(true).map_err(open)?;
        let socket = UdpSocket::from_std(std::net::UdpSocket::from(socket));
        Self::start(socket, limits).map_err(|e| match e {
            StartError::Poll(source) => open(source),
            StartError::Thread(source) => UdpError::Thread(source),
        })
    }

    fn start(mut socket: UdpSocket, limits: QueueLimits) -> Result<Self, StartError> {
        let ipv6 = socket.local_addr().map_err(StartError::Poll)?.is_ipv6();
        let poll = Poll::new().map_err(StartError::Poll)?;
        poll.registry()
            .register(&mut socket, READABLE, Interest::READABLE)
            .map_err(StartError::Poll)?;
        let stopper = Waker::new(poll.registry(), STOP).map_err(StartError::Poll)?;
        let nap = Poll::new().map_err(StartError::Poll)?;
        let napper = Waker::new(nap.registry(), STOP).map_err(StartError::Poll)?;
        let socket = Arc::new(socket);
        let (queue, inbox) = crossbeam_channel::bounded(limits.packets.max(1));
        let shared = Arc::new(Shared::new(limits.bytes));
        let thread = {
            let socket = Arc::clone(&socket);
            let shared = Arc::clone(&shared);
            let queue = queue.clone();
            std::thread::Builder::new()
                .name("peerkit-udp-recv".into())
                .spawn(move || receive_loop(poll, nap, &socket, &queue, &shared))
                .map_err(StartError::Thread)?
        };
        Ok(Self {
            socket,
            inbox,
            queue,
            waiting: None,
            shared,
            stopper,
            napper,
            thread: Some(thread),
            packets_out: 0,
            bytes_out: 0,
            connected: false,
            ipv6,
        })
    }

    /// When nothing is queued, reads what the socket holds now (without waiting), as the receive thread would.
    fn fetch(&self) {
        if self.waiting.is_none() && self.inbox.is_empty() {
            let shared = &self.shared;
            shared
                .caller_read_at_us
                .store(shared.elapsed_us().max(1), Ordering::Relaxed);
            // One datagram is enough to answer; leaving the rest in the kernel saves the system call that would
            // only report it empty (the common case in a game's poll loop). If the receive thread is reading right
            // now, what it reads is queued in a moment: do not wait for it.
            if let Ok(mut buf) = shared.reader.try_lock() {
                drain_locked(&self.socket, &self.queue, shared, &mut buf, 1);
            }
        }
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// The address to use for `to` on this socket: IPv4 peers of a dual-stack socket are IPv4-mapped.
    fn route(&self, to: SocketAddr) -> SocketAddr {
        match to {
            SocketAddr::V4(v4) if self.ipv6 => {
                SocketAddr::V6(SocketAddrV6::new(v4.ip().to_ipv6_mapped(), v4.port(), 0, 0))
            }
            other => other,
        }
    }

    /// Sends a datagram to `to` (ignored when the socket is connected: it goes to the connected peer).
    pub fn send_to(&mut self, data: &[u8], to: SocketAddr) -> io::Result<()> {
        let sent = if self.connected {
            self.socket.send(data)?
        } else {
            self.socket.send_to(data, self.route(to))?
        };
        if sent != data.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "the datagram was cut short",
            ));
        }
        self.packets_out += 1;
        self.bytes_out += data.len() as u64;
        Ok(())
    }

    /// Connects the socket to `peer`: only its datagrams are received from now on, and what was queued is
    /// dropped (as Godot's PacketPeerUDP does).
    pub fn connect(&mut self, peer: SocketAddr) -> io::Result<()> {
        self.socket.connect(self.route(peer))?;
        self.connected = true;
        self.waiting = None;
        while let Ok(d) = self.inbox.try_recv() {
            self.shared
                .queued_bytes
                .fetch_sub(d.data.len(), Ordering::Relaxed);
        }
        Ok(())
    }

    /// Whether `connect` has been called on this socket.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Takes the oldest datagram received.
    pub fn recv(&mut self) -> Option<Datagram> {
        self.fetch();
        let datagram = self.waiting.take().or_else(|| self.inbox.try_recv().ok())?;
        self.shared
            .queued_bytes
            .fetch_sub(datagram.data.len(), Ordering::Relaxed);
        Some(datagram)
    }

    /// Takes the oldest datagram the receive thread has queued, without reading the socket itself (no system
    /// call): for a caller that polls often and reads the socket through [`recv`](Self::recv) once a frame.
    pub fn recv_queued(&mut self) -> Option<Datagram> {
        let datagram = self.waiting.take().or_else(|| self.inbox.try_recv().ok())?;
        self.shared
            .queued_bytes
            .fetch_sub(datagram.data.len(), Ordering::Relaxed);
        Some(datagram)
    }

    /// How many datagrams have been received and not taken (reading the socket first when none are queued).
    pub fn queued(&self) -> usize {
        self.fetch();
        self.inbox.len() + self.waiting.is_some() as usize
    }

    /// Blocks until a datagram is queued, or `timeout` passes (`None`: no limit). True when one is queued.
    pub fn wait(&mut self, timeout: Option<Duration>) -> bool {
        if self.queued() > 0 {
            return true;
        }
        // The caller now blocks instead of reading: the receive thread must not nap on its account.
        self.shared.caller_read_at_us.store(0, Ordering::Relaxed);
        let _ = self.napper.wake();
        let got = match timeout {
            Some(t) => self
                .inbox
                .recv_timeout(t)
                .map_err(|e| e == RecvTimeoutError::Disconnected),
            None => self.inbox.recv().map_err(|_| true),
        };
        match got {
            Ok(d) => {
                self.waiting = Some(d);
                true
            }
            Err(_) => false,
        }
    }

    /// Turns sending to broadcast addresses on or off.
    pub fn set_broadcast(&self, enabled: bool) -> io::Result<()> {
        self.socket.set_broadcast(enabled)
    }

    /// Joins a multicast group on one interface: for an IPv4 group the interface's IPv4 address, for an IPv6
    /// group its index (0 lets the system choose).
    pub fn join_multicast(&self, group: IpAddr, interface: MulticastInterface) -> io::Result<()> {
        match group {
            IpAddr::V4(g) => self.socket.join_multicast_v4(&g, &interface.v4),
            IpAddr::V6(g) => self.socket.join_multicast_v6(&g, interface.v6_index),
        }
    }

    /// Leaves a multicast group joined with `join_multicast` on the same interface.
    pub fn leave_multicast(&self, group: IpAddr, interface: MulticastInterface) -> io::Result<()> {
        match group {
            IpAddr::V4(g) => self.socket.leave_multicast_v4(&g, &interface.v4),
            IpAddr::V6(g) => self.socket.leave_multicast_v6(&g, interface.v6_index),
        }
    }

    /// This socket's counters.
    pub fn stats(&self) -> UdpStats {
        let s = &self.shared;
        UdpStats {
            packets_in: s.packets_in.load(Ordering::Relaxed),
            bytes_in: s.bytes_in.load(Ordering::Relaxed),
            packets_out: self.packets_out,
            bytes_out: self.bytes_out,
            dropped_overflow: s.dropped_overflow.load(Ordering::Relaxed),
            queue_high_water: s.high_water.load(Ordering::Relaxed),
        }
    }

    /// Stops the receive thread and waits for it (the waker ends its wait at once).
    fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        let _ = self.stopper.wake();
        let _ = self.napper.wake();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for UdpEndpoint {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Why the receive machinery could not start.
enum StartError {
    /// The readiness poll could not be made, the socket registered with it, or its address read.
    Poll(io::Error),
    /// The thread could not be spawned.
    Thread(io::Error),
}

impl Shared {
    fn new(byte_limit: usize) -> Self {
        Self {
            stop: AtomicBool::new(false),
            queued_bytes: AtomicUsize::new(0),
            byte_limit,
            packets_in: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            dropped_overflow: AtomicU64::new(0),
            high_water: AtomicU64::new(0),
            caller_read_at_us: AtomicU64::new(0),
            origin: Instant::now(),
            reader: Mutex::new(vec![0u8; MAX_DATAGRAM + 1]),
        }
    }

    fn elapsed_us(&self) -> u64 {
        self.origin.elapsed().as_micros() as u64
    }

    /// Whether the caller has read the socket itself within the last `CALLER_ACTIVE_US`.
    fn caller_is_reading(&self) -> bool {
        let at = self.caller_read_at_us.load(Ordering::Relaxed);
        at != 0 && self.elapsed_us().saturating_sub(at) < CALLER_ACTIVE_US
    }
}

fn receive_loop(
    mut poll: Poll,
    mut nap: Poll,
    socket: &UdpSocket,
    queue: &Sender<Datagram>,
    shared: &Shared,
) {
    let mut events = Events::with_capacity(4);
    while !shared.stop.load(Ordering::Acquire) {
        // A caller polling in a tight loop drains the socket itself; waking for every datagram would only race it
        // for the lock. Nap, and take over as soon as it stops reading (a stall), well before the kernel's
        // buffer fills.
        if shared.caller_is_reading() {
            // A wait (or stop) ends the nap at once through its waker; datagrams do not (they are the caller's
            // to read: waking for each would only race it).
            match nap.poll(&mut events, Some(NAP)) {
                Ok(()) => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        // Readiness is edge-triggered: take what arrived while napping before waiting for more.
        if !drain_all(socket, queue, shared, DRAIN_BATCH) {
            break;
        }
        match poll.poll(&mut events, None) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
        if shared.stop.load(Ordering::Acquire) {
            break;
        }
        // Readiness is edge-triggered: read until the socket is empty.
        if !drain_all(socket, queue, shared, DRAIN_BATCH) {
            break;
        }
    }
}

/// Reads until the socket is empty, a batch at a time, checking between batches whether to stop. False when it
/// stopped for that.
fn drain_all(socket: &UdpSocket, queue: &Sender<Datagram>, shared: &Shared, batch: usize) -> bool {
    while drain(socket, queue, shared, batch) == Drained::More {
        if shared.stop.load(Ordering::Acquire) {
            return false;
        }
    }
    true
}

/// How a round of reading ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Drained {
    /// The socket is empty (or reported an error that ends the round).
    Empty,
    /// The batch limit was reached: more may be waiting.
    More,
}

/// Reads what the socket holds now, up to `most` datagrams, into the queue (or counts them dropped when the
/// queue is full), as the one reader of the moment (holding the reader lock meanwhile).
fn drain(socket: &UdpSocket, queue: &Sender<Datagram>, shared: &Shared, most: usize) -> Drained {
    let mut buf = shared
        .reader
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    drain_locked(socket, queue, shared, &mut buf, most)
}

/// `drain`, with the reader lock's buffer already held.
fn drain_locked(
    socket: &UdpSocket,
    queue: &Sender<Datagram>,
    shared: &Shared,
    buf: &mut [u8],
    most: usize,
) -> Drained {
    for _ in 0..most {
        let (len, from) = match socket.recv_from(buf) {
            Ok(got) => got,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Drained::Empty,
            // An ICMP error from an earlier send is reported once: keep reading. Anything else: stop this round.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset
                ) =>
            {
                continue
            }
            Err(_) => return Drained::Empty,
        };
        shared.packets_in.fetch_add(1, Ordering::Relaxed);
        shared.bytes_in.fetch_add(len as u64, Ordering::Relaxed);
        if shared.queued_bytes.load(Ordering::Relaxed) + len > shared.byte_limit {
            shared.dropped_overflow.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let datagram = Datagram {
            data: Bytes::copy_from_slice(&buf[..len]),
            from: unmap(from),
        };
        match queue.try_send(datagram) {
            Ok(()) => {
                shared.queued_bytes.fetch_add(len, Ordering::Relaxed);
                shared
                    .high_water
                    .fetch_max(queue.len() as u64, Ordering::Relaxed);
            }
            Err(TrySendError::Full(_)) => {
                shared.dropped_overflow.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Disconnected(_)) => return Drained::Empty,
        }
    }
    Drained::More
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback() -> SocketAddr {
        "127.0.0.1:0".parse().unwrap()
    }

    /// One round of reading holds the reader lock for at most a batch, and a stop request ends the reading
    /// between batches (the receive thread used to drain a flood to the end under the lock, never checking).
    #[test]
    fn resolve_takes_addresses_and_names_and_keeps_to_a_family_when_asked() {
        let v4: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert_eq!(resolve("127.0.0.1", 9, None), Some(v4));
        assert_eq!(resolve("127.0.0.1", 9, Some(true)), Some(v4));
        assert_eq!(resolve("127.0.0.1", 9, Some(false)), None, "not IPv6");
        assert_eq!(
            resolve("::1", 9, Some(false)),
            Some("[::1]:9".parse().unwrap())
        );
        assert_eq!(
            resolve("localhost", 9, Some(true)),
            Some(v4),
            "a name, resolved"
        );
        assert_eq!(resolve("no such host.invalid", 9, None), None);
    }

    #[test]
    fn bind_candidates_read_a_star_as_both_families_and_refuse_names() {
        assert_eq!(
            bind_candidates("*", 7).unwrap(),
            vec![
                "[::]:7".parse::<SocketAddr>().unwrap(),
                "0.0.0.0:7".parse().unwrap()
            ]
        );
        assert_eq!(
            bind_candidates("127.0.0.1", 9).unwrap(),
            vec!["127.0.0.1:9".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(bind_candidates("localhost", 9), None);
        // The first that binds wins; with none, the last error is the one reported.
        let tried = std::cell::RefCell::new(Vec::new());
        let result = bind_first(&bind_candidates("*", 7).unwrap(), |addr| {
            tried.borrow_mut().push(addr);
            if addr.is_ipv6() {
                Err(UdpError::AddressInUse(addr))
            } else {
                Ok(addr)
            }
        });
        assert_eq!(result.unwrap(), "0.0.0.0:7".parse::<SocketAddr>().unwrap());
        assert_eq!(tried.borrow().len(), 2);
        let failed = bind_first::<()>(&bind_candidates("*", 7).unwrap(), |addr| {
            Err(UdpError::AddressInUse(addr))
        });
        assert!(matches!(failed, Err(UdpError::AddressInUse(a)) if a.is_ipv4()));
    }

    #[test]
    fn reading_goes_a_batch_at_a_time_and_stops_between_batches() {
        let socket = UdpSocket::bind(loopback()).unwrap();
        let to = socket.local_addr().unwrap();
        let tx = std::net::UdpSocket::bind(loopback()).unwrap();
        let send = |n: u32| {
            for i in 0..n {
                tx.send_to(&i.to_le_bytes(), to).unwrap();
            }
        };
        // Small batches, so the datagrams fit in the kernel's default receive buffer.
        let batch = 16;
        let shared = Shared::new(usize::MAX);
        let (queue, inbox) = crossbeam_channel::bounded(10_000);
        send(40);
        assert_eq!(drain(&socket, &queue, &shared, batch), Drained::More);
        assert_eq!(inbox.len(), batch);
        assert_eq!(drain(&socket, &queue, &shared, 100), Drained::Empty);
        assert_eq!(inbox.len(), 40);
        send(40);
        assert!(
            drain_all(&socket, &queue, &shared, batch),
            "read to the end"
        );
        assert_eq!(inbox.len(), 80);
        send(40);
        shared.stop.store(true, Ordering::Release);
        assert!(
            !drain_all(&socket, &queue, &shared, batch),
            "stopped between batches"
        );
        assert_eq!(inbox.len(), 80 + batch);
    }

    /// Waits (up to 5 s) until the thread has taken `sent` datagrams off the socket, less what the kernel
    /// dropped; returns the kernel's count of drops for the socket where the system tells it (Linux).
    fn settle(endpoint: &UdpEndpoint, sent: u64) -> Option<u64> {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let kernel = kernel_drops(endpoint.local_addr().unwrap().port());
            let taken = endpoint.stats().packets_in;
            if taken + kernel.unwrap_or(0) >= sent || std::time::Instant::now() >= deadline {
                return kernel;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// The kernel's count of datagrams dropped for the IPv4 UDP socket bound to `port` (its receive buffer was
    /// full): the last column of its line in /proc/net/udp; `None` where there is no such file.
    fn kernel_drops(port: u16) -> Option<u64> {
        let table = std::fs::read_to_string("/proc/net/udp").ok()?;
        let wanted = format!(":{port:04X}");
        table.lines().skip(1).find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.len() > 12 && fields[1].ends_with(&wanted))
                .then(|| fields.last()?.parse().ok())
                .flatten()
        })
    }

    fn wait_for(endpoint: &UdpEndpoint, count: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while endpoint.queued() < count && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn datagrams_queue_while_nobody_reads() {
        let mut rx = UdpEndpoint::bind(loopback(), RECV_BUFFER, QueueLimits::default()).unwrap();
        let to = rx.local_addr().unwrap();
        let mut tx = UdpEndpoint::bind(loopback(), RECV_BUFFER, QueueLimits::default()).unwrap();
        // Bursts of 50 a millisecond apart (about 50,000 a second), as a busy game server might send; the
        // receiver reads nothing until the end. (Unpaced, a sender can outrun any reader: the kernel buffer
        // between them then overflows, before the receive thread sees anything.)
        for i in 0..5000u32 {
            tx.send_to(&i.to_le_bytes(), to).unwrap();
            if i % 50 == 49 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        let kernel_dropped = settle(&rx, 5000);
        if cfg!(target_os = "linux") {
            assert!(
                kernel_dropped.is_some(),
                "the kernel's count for the socket is read"
            );
        }
        let got: Vec<u32> = std::iter::from_fn(|| rx.recv())
            .map(|d| u32::from_le_bytes(d.data[..].try_into().unwrap()))
            .collect();
        // What reached the socket is all queued (a machine so loaded that the thread is held off for long may
        // see the kernel's own buffer overflow first; that is counted where the system says).
        assert_eq!(
            got.len() as u64,
            rx.stats().packets_in,
            "every datagram taken off the socket is queued"
        );
        assert_eq!(rx.stats().dropped_overflow, 0);
        if let Some(kernel) = kernel_dropped {
            assert_eq!(
                got.len() as u64 + kernel,
                5000,
                "all arrive, but for what the kernel dropped ({kernel})"
            );
        }
        assert!(got.windows(2).all(|w| w[0] < w[1]), "in order");
        assert_eq!(tx.stats().packets_out, 5000);
    }

    #[test]
    fn a_full_queue_counts_exactly_what_it_drops() {
        let limits = QueueLimits {
            packets: 100,
            bytes: 1 << 20,
        };
        let rx = UdpEndpoint::bind(loopback(), RECV_BUFFER, limits).unwrap();
        let to = rx.local_addr().unwrap();
        let mut tx = UdpEndpoint::bind(loopback(), RECV_BUFFER, QueueLimits::default()).unwrap();
        for i in 0..1000 {
            tx.send_to(&[1; 32], to).unwrap();
            if i % 50 == 49 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        let kernel_dropped = settle(&rx, 1000);
        let stats = rx.stats();
        assert_eq!(rx.queued(), 100);
        assert_eq!(
            stats.dropped_overflow,
            stats.packets_in - 100,
            "exactly what did not fit is counted"
        );
        if let Some(kernel) = kernel_dropped {
            assert_eq!(
                stats.packets_in + kernel,
                1000,
                "the rest the kernel dropped ({kernel})"
            );
        }
        assert_eq!(stats.queue_high_water, 100);
        let byte_limited = QueueLimits {
            packets: 100,
            bytes: 100,
        };
        let mut small = UdpEndpoint::bind(loopback(), RECV_BUFFER, byte_limited).unwrap();
        let to = small.local_addr().unwrap();
        for _ in 0..10 {
            tx.send_to(&[2; 30], to).unwrap();
        }
        wait_for(&small, 3);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(
            small.queued(),
            3,
            "three datagrams of 30 B fit in 100 bytes"
        );
        assert!(small.recv().is_some());
    }

    #[test]
    fn dual_stack_takes_ipv4_and_reports_it_as_ipv4() {
        let mut rx =
            UdpEndpoint::bind("[::]:0".parse().unwrap(), 0, QueueLimits::default()).unwrap();
        let port = rx.local_addr().unwrap().port();
        let mut tx = UdpEndpoint::bind(loopback(), RECV_BUFFER, QueueLimits::default()).unwrap();
        let from = tx.local_addr().unwrap();
        tx.send_to(
            b"v4",
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
        )
        .unwrap();
        wait_for(&rx, 1);
        let d = rx.recv().unwrap();
        assert_eq!(&d.data[..], b"v4");
        assert_eq!(d.from, from);
        // And it sends to IPv4 peers.
        rx.send_to(b"back", from).unwrap();
        wait_for(&tx, 1);
        assert_eq!(&tx.recv().unwrap().data[..], b"back");
    }

    #[test]
    fn a_taken_address_is_reported_as_such() {
        let a = UdpEndpoint::bind(loopback(), RECV_BUFFER, QueueLimits::default()).unwrap();
        let taken = a.local_addr().unwrap();
        assert!(matches!(
            UdpEndpoint::bind(taken, 0, QueueLimits::default()),
            Err(UdpError::AddressInUse(_))
        ));
    }

    #[test]
    fn dropping_stops_the_thread_promptly() {
        // The thread waits with no timeout: only the waker ends that wait, so a drop that returns at all proves
        // it works. The bound (half a second each, 50 times what a slow emulated machine took) only catches a
        // stop that waits for some timeout instead.
        let slowest = slowest_drop(|| {
            UdpEndpoint::bind(loopback(), RECV_BUFFER, QueueLimits::default()).unwrap()
        });
        assert!(
            slowest < Duration::from_millis(500),
            "slowest drop took {slowest:?}"
        );
    }

    /// The longest of 50 drops of endpoints made by `make`.
    fn slowest_drop(make: impl Fn() -> UdpEndpoint) -> Duration {
        (0..50)
            .map(|_| {
                let e = make();
                let started = std::time::Instant::now();
                drop(e);
                started.elapsed()
            })
            .max()
            .unwrap_or_default()
    }

    #[test]
    fn wait_returns_when_a_datagram_arrives() {
        let mut rx = UdpEndpoint::bind(loopback(), RECV_BUFFER, QueueLimits::default()).unwrap();
        assert!(!rx.wait(Some(Duration::from_millis(10))));
        let to = rx.local_addr().unwrap();
        let mut tx = UdpEndpoint::bind(loopback(), RECV_BUFFER, QueueLimits::default()).unwrap();
        tx.send_to(b"x", to).unwrap();
        assert!(rx.wait(Some(Duration::from_secs(5))));
        assert_eq!(rx.queued(), 1);
        assert_eq!(&rx.recv().unwrap().data[..], b"x");
    }

    /// The caller reading the socket itself (when its queue is empty) and the receive thread reading it at the
    /// same time must never reorder datagrams.
    #[test]
    fn reads_by_the_caller_and_the_thread_keep_the_order() {
        let mut rx = UdpEndpoint::bind(loopback(), RECV_BUFFER, QueueLimits::default()).unwrap();
        let to = rx.local_addr().unwrap();
        let sender = std::thread::spawn(move || {
            let mut tx =
                UdpEndpoint::bind(loopback(), RECV_BUFFER, QueueLimits::default()).unwrap();
            for i in 0..20_000u32 {
                tx.send_to(&i.to_le_bytes(), to).unwrap();
                if i % 100 == 99 {
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
        });
        let mut got = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        // Once the sender is done, the last datagrams may still be on their way into the socket: read until
        // nothing has come for 100 ms.
        let mut quiet_since: Option<std::time::Instant> = None;
        while std::time::Instant::now() < deadline {
            match rx.recv() {
                Some(d) => {
                    got.push(u32::from_le_bytes(d.data[..].try_into().unwrap()));
                    quiet_since = None;
                }
                None if sender.is_finished() => {
                    let quiet = quiet_since.get_or_insert_with(std::time::Instant::now);
                    if quiet.elapsed() > Duration::from_millis(100) && rx.queued() == 0 {
                        break;
                    }
                }
                None => {}
            }
        }
        sender.join().unwrap();
        assert!(got.len() > 1000, "received {}", got.len());
        assert!(got.windows(2).all(|w| w[0] < w[1]), "in order");
        let stats = rx.stats();
        assert_eq!(stats.packets_in - stats.dropped_overflow, got.len() as u64);
    }

    #[test]
    fn a_connected_socket_stops_promptly_too() {
        let peer = UdpEndpoint::bind(loopback(), RECV_BUFFER, QueueLimits::default()).unwrap();
        let slowest = slowest_drop(|| {
            let mut e = UdpEndpoint::bind(loopback(), RECV_BUFFER, QueueLimits::default()).unwrap();
            e.connect(peer.local_addr().unwrap()).unwrap();
            e
        });
        assert!(
            slowest < Duration::from_millis(500),
            "slowest drop took {slowest:?}"
        );
    }

    /// A caller that was reading in a tight loop (so the receive thread napped) and then stalls loses nothing:
    /// the thread takes over.
    #[test]
    fn the_thread_takes_over_when_a_busy_reader_stalls() {
        let mut rx = UdpEndpoint::bind(loopback(), RECV_BUFFER, QueueLimits::default()).unwrap();
        let to = rx.local_addr().unwrap();
        let mut tx = UdpEndpoint::bind(loopback(), RECV_BUFFER, QueueLimits::default()).unwrap();
        // Read in a tight loop for at least 30 ms, and until the caller has just read the socket itself (so the
        // thread naps): on a loaded machine the thread may win the first races, so this waits for it, up to 5 s.
        let started = std::time::Instant::now();
        loop {
            tx.send_to(b"warm", to).unwrap();
            while rx.recv().is_none() {}
            let busy = started.elapsed();
            if busy >= Duration::from_millis(30) && rx.shared.caller_is_reading() {
                break;
            }
            assert!(
                busy < Duration::from_secs(5),
                "the caller never read the socket itself"
            );
        }
        // The stall: 5,000 datagrams while nobody reads, then a look at what was kept.
        for i in 0..5000u32 {
            tx.send_to(&i.to_le_bytes(), to).unwrap();
            if i % 50 == 49 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while rx.inbox.len() < 5000 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(
            rx.inbox.len(),
            5000,
            "the thread queued them all while the caller was away"
        );
        assert_eq!(rx.stats().dropped_overflow, 0);
    }
}
