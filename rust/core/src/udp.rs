//! A UDP socket whose receive thread drains the kernel's buffer into a bounded queue, so datagrams keep being
//! taken off the socket while the game is busy (a long frame, a loading stall) and are not lost to the kernel
//! buffer overflowing. What does not fit the queue is dropped and counted, never silently.
//!
//! Unlike the rest of the core this does real I/O (a socket and a thread), but it knows nothing of Godot.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use socket2::{Domain, Protocol, Socket, Type};

/// The largest payload a UDP datagram carries over IPv4.
pub const MAX_DATAGRAM: usize = 65_507;
/// How long the receive thread waits on the socket before checking whether it should stop (a close also sends
/// it a wake-up datagram, so this only matters for connected sockets, which filter that out).
const STOP_CHECK: Duration = Duration::from_millis(20);

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

#[derive(Debug, Default)]
struct Shared {
    stop: AtomicBool,
    queued_bytes: AtomicUsize,
    packets_in: AtomicU64,
    bytes_in: AtomicU64,
    dropped_overflow: AtomicU64,
    high_water: AtomicU64,
}

/// An open UDP socket and its receive thread. Dropping it stops the thread and waits for it.
#[derive(Debug)]
pub struct UdpEndpoint {
    socket: Arc<UdpSocket>,
    inbox: Receiver<Datagram>,
    /// A datagram taken by `wait`, handed out first by the next `recv`.
    waiting: Option<Datagram>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    packets_out: u64,
    bytes_out: u64,
    connected: bool,
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
        let socket: UdpSocket = socket.into();
        socket.set_read_timeout(Some(STOP_CHECK)).map_err(open)?;
        Self::start(socket, limits)
    }

    fn start(socket: UdpSocket, limits: QueueLimits) -> Result<Self, UdpError> {
        let socket = Arc::new(socket);
        let (tx, inbox) = crossbeam_channel::bounded(limits.packets.max(1));
        let shared = Arc::new(Shared::default());
        let thread = {
            let socket = Arc::clone(&socket);
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("peerkit-udp-recv".into())
                .spawn(move || receive_loop(&socket, &tx, &shared, limits.bytes))
                .map_err(UdpError::Thread)?
        };
        Ok(Self {
            socket,
            inbox,
            waiting: None,
            shared,
            thread: Some(thread),
            packets_out: 0,
            bytes_out: 0,
            connected: false,
        })
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Whether the socket is IPv6 (possibly dual-stack).
    fn is_ipv6(&self) -> bool {
        self.local_addr().is_ok_and(|a| a.is_ipv6())
    }

    /// The address to use for `to` on this socket: IPv4 peers of a dual-stack socket are IPv4-mapped.
    fn route(&self, to: SocketAddr) -> SocketAddr {
        match to {
            SocketAddr::V4(v4) if self.is_ipv6() => {
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

    /// Takes the oldest queued datagram.
    pub fn recv(&mut self) -> Option<Datagram> {
        let datagram = self.waiting.take().or_else(|| self.inbox.try_recv().ok())?;
        self.shared
            .queued_bytes
            .fetch_sub(datagram.data.len(), Ordering::Relaxed);
        Some(datagram)
    }

    /// How many datagrams are queued.
    pub fn queued(&self) -> usize {
        self.inbox.len() + self.waiting.is_some() as usize
    }

    /// Blocks until a datagram is queued, or `timeout` passes (`None`: no limit). True when one is queued.
    pub fn wait(&mut self, timeout: Option<Duration>) -> bool {
        if self.queued() > 0 {
            return true;
        }
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

    /// Joins a multicast group, on the interface with the given index (0: the system's choice) for IPv6, or
    /// on any interface for IPv4.
    pub fn join_multicast(&self, group: IpAddr, interface: u32) -> io::Result<()> {
        match group {
            IpAddr::V4(g) => self.socket.join_multicast_v4(&g, &Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(g) => self.socket.join_multicast_v6(&g, interface),
        }
    }

    /// Leaves a multicast group joined with `join_multicast`.
    pub fn leave_multicast(&self, group: IpAddr, interface: u32) -> io::Result<()> {
        match group {
            IpAddr::V4(g) => self.socket.leave_multicast_v4(&g, &Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(g) => self.socket.leave_multicast_v6(&g, interface),
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

    /// Stops the receive thread and waits for it: a wake-up datagram to itself ends its wait at once (a connected
    /// socket filters that out and stops at its next `STOP_CHECK`).
    fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Ok(local) = self.socket.local_addr() {
            let ip = match local.ip() {
                IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
                ip => ip,
            };
            if !self.connected {
                let _ = self.socket.send_to(&[], SocketAddr::new(ip, local.port()));
            }
        }
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

fn receive_loop(socket: &UdpSocket, tx: &Sender<Datagram>, shared: &Shared, byte_limit: usize) {
    let mut buf = vec![0u8; MAX_DATAGRAM + 1];
    while !shared.stop.load(Ordering::Acquire) {
        let (len, from) = match socket.recv_from(&mut buf) {
            Ok(got) => got,
            // A timeout (to check `stop`), or an ICMP error from an earlier send: keep listening.
            Err(_) => continue,
        };
        if shared.stop.load(Ordering::Acquire) {
            break;
        }
        shared.packets_in.fetch_add(1, Ordering::Relaxed);
        shared.bytes_in.fetch_add(len as u64, Ordering::Relaxed);
        if shared.queued_bytes.load(Ordering::Relaxed) + len > byte_limit {
            shared.dropped_overflow.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let datagram = Datagram {
            data: Bytes::copy_from_slice(&buf[..len]),
            from: unmap(from),
        };
        match tx.try_send(datagram) {
            Ok(()) => {
                shared.queued_bytes.fetch_add(len, Ordering::Relaxed);
                shared
                    .high_water
                    .fetch_max(tx.len() as u64, Ordering::Relaxed);
            }
            Err(TrySendError::Full(_)) => {
                shared.dropped_overflow.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Disconnected(_)) => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback() -> SocketAddr {
        "127.0.0.1:0".parse().unwrap()
    }

    fn wait_for(endpoint: &UdpEndpoint, count: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while endpoint.queued() < count && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn datagrams_queue_while_nobody_reads() {
        let mut rx = UdpEndpoint::bind(loopback(), 0, QueueLimits::default()).unwrap();
        let to = rx.local_addr().unwrap();
        let mut tx = UdpEndpoint::bind(loopback(), 0, QueueLimits::default()).unwrap();
        // Bursts of 50 a millisecond apart (about 50,000 a second), as a busy game server might send; the
        // receiver reads nothing until the end. (Unpaced, a sender can outrun any reader: the kernel buffer
        // between them then overflows, before the receive thread sees anything.)
        for i in 0..5000u32 {
            tx.send_to(&i.to_le_bytes(), to).unwrap();
            if i % 50 == 49 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        wait_for(&rx, 5000);
        let got: Vec<u32> = std::iter::from_fn(|| rx.recv())
            .map(|d| u32::from_le_bytes(d.data[..].try_into().unwrap()))
            .collect();
        assert_eq!(got.len(), 5000, "all arrive");
        assert!(got.windows(2).all(|w| w[0] < w[1]), "in order");
        assert_eq!(rx.stats().packets_in, 5000);
        assert_eq!(tx.stats().packets_out, 5000);
    }

    #[test]
    fn a_full_queue_counts_exactly_what_it_drops() {
        let limits = QueueLimits {
            packets: 100,
            bytes: 1 << 20,
        };
        let rx = UdpEndpoint::bind(loopback(), 0, limits).unwrap();
        let to = rx.local_addr().unwrap();
        let mut tx = UdpEndpoint::bind(loopback(), 0, QueueLimits::default()).unwrap();
        for i in 0..1000 {
            tx.send_to(&[1; 32], to).unwrap();
            if i % 50 == 49 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while rx.stats().packets_in < 1000 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        let stats = rx.stats();
        assert_eq!(rx.queued(), 100);
        assert_eq!(stats.dropped_overflow, 900);
        assert_eq!(stats.queue_high_water, 100);
        let byte_limited = QueueLimits {
            packets: 100,
            bytes: 100,
        };
        let mut small = UdpEndpoint::bind(loopback(), 0, byte_limited).unwrap();
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
        let mut tx = UdpEndpoint::bind(loopback(), 0, QueueLimits::default()).unwrap();
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
        let a = UdpEndpoint::bind(loopback(), 0, QueueLimits::default()).unwrap();
        let taken = a.local_addr().unwrap();
        assert!(matches!(
            UdpEndpoint::bind(taken, 0, QueueLimits::default()),
            Err(UdpError::AddressInUse(_))
        ));
    }

    #[test]
    fn dropping_stops_the_thread_promptly() {
        let started = std::time::Instant::now();
        for _ in 0..200 {
            let e = UdpEndpoint::bind(loopback(), 0, QueueLimits::default()).unwrap();
            drop(e);
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "took {:?}",
            started.elapsed()
        );
    }

    #[test]
    fn wait_returns_when_a_datagram_arrives() {
        let mut rx = UdpEndpoint::bind(loopback(), 0, QueueLimits::default()).unwrap();
        assert!(!rx.wait(Some(Duration::from_millis(10))));
        let to = rx.local_addr().unwrap();
        let mut tx = UdpEndpoint::bind(loopback(), 0, QueueLimits::default()).unwrap();
        tx.send_to(b"x", to).unwrap();
        assert!(rx.wait(Some(Duration::from_secs(5))));
        assert_eq!(rx.queued(), 1);
        assert_eq!(&rx.recv().unwrap().data[..], b"x");
    }
}
