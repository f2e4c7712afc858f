//! `UdpPacketPeer`: the Godot face of [`peerkit_core::io::udp`], with PacketPeerUDP's API and error codes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::Bytes;
use godot::classes::Ip;
use godot::classes::{IPacketPeerExtension, PacketPeerExtension};
use godot::global::Error;
use godot::meta::conv::RawPtr;
use godot::prelude::*;
use peerkit_core::io::udp::{
    bind_candidates, bind_first, resolve, MulticastInterface, QueueLimits, UdpEndpoint,
    MAX_DATAGRAM, RECV_BUFFER,
};

use super::{error, ffi};

/// A UDP [PacketPeer] that keeps receiving while the game is busy.
///
/// [PacketPeerUDP] reads its socket only when you poll it, from the game's thread: during a long frame (loading,
/// shader compilation, a slow physics step) the system's socket buffer fills and further datagrams are lost.
/// UdpPacketPeer has a thread of its own that takes every datagram off the socket as it arrives and queues it,
/// up to [member queue_limit_packets] and [member queue_limit_bytes]; what does not fit is dropped and counted
/// in [method get_stats], never silently. Closing or freeing the peer stops its thread and waits for it.
///
/// The methods are PacketPeerUDP's, with the same names, arguments and errors: [method bind],
/// [method set_dest_address], [method connect_to_host], [method get_packet_ip], [method get_packet_port] ...
/// so it drops into code written for PacketPeerUDP, and works as the [code]inner[/code] of a [LinkConditioner]
/// or a [ReliablePacketPeer]. IPv4 and IPv6; binding to [code]"*"[/code] takes both.
/// ```gdscript
/// var udp := UdpPacketPeer.new()
/// udp.bind(4242)
/// # ... a 300 ms hitch later, nothing sent meanwhile was lost:
/// while udp.get_available_packet_count() > 0:
///     print(udp.get_var(), " from ", udp.get_packet_ip(), ":", udp.get_packet_port())
/// ```
#[derive(GodotClass)]
#[class(tool, base = PacketPeerExtension)]
pub struct UdpPacketPeer {
    /// The most datagrams the receive queue holds (default 65536); more are dropped and counted. Takes effect at
    /// the next [method bind].
    #[var(get = get_queue_limit_packets, set = set_queue_limit_packets, usage_flags = [EDITOR])]
    queue_limit_packets: PhantomVar<i64>,
    /// The most payload bytes the receive queue holds (default 16777216); more are dropped and counted. Takes
    /// effect at the next [method bind].
    #[var(get = get_queue_limit_bytes, set = set_queue_limit_bytes, usage_flags = [EDITOR])]
    queue_limit_bytes: PhantomVar<i64>,
    endpoint: Option<UdpEndpoint>,
    dest: Option<SocketAddr>,
    broadcast: bool,
    limits: QueueLimits,
    packet_from: Option<SocketAddr>,
    /// The datagram last handed to Godot by `_get_packet`; kept so its pointer stays valid until the next call.
    current: Bytes,
    base: Base<PacketPeerExtension>,
}

#[godot_api]
impl IPacketPeerExtension for UdpPacketPeer {
    fn init(base: Base<PacketPeerExtension>) -> Self {
        Self {
            queue_limit_packets: PhantomVar::default(),
            queue_limit_bytes: PhantomVar::default(),
            endpoint: None,
            dest: None,
            broadcast: false,
            limits: QueueLimits::default(),
            packet_from: None,
            current: Bytes::new(),
            base,
        }
    }

    unsafe fn get_packet_rawptr(
        &mut self,
        r_buffer: RawPtr<*mut RawPtr<*const u8>>,
        r_buffer_size: RawPtr<*mut i32>,
    ) -> Error {
        ffi::guard("UdpPacketPeer.get_packet", || {
            // As PacketPeerUDP: FAILED when no socket is open.
            let Some(endpoint) = self.endpoint.as_mut() else {
                return Error::FAILED;
            };
            let datagram = endpoint.recv();
            if let Some(d) = &datagram {
                self.packet_from = Some(d.from);
            }
            let data = datagram.map(|d| d.data);
            // SAFETY: Godot's out-pointers, and `self.current` is this object's packet slot.
            unsafe {
                ffi::hand_out(
                    &mut self.current,
                    data,
                    r_buffer,
                    r_buffer_size,
                    Error::ERR_UNAVAILABLE,
                )
            }
        })
    }

    unsafe fn put_packet_rawptr(
        &mut self,
        p_buffer: RawPtr<*const u8>,
        p_buffer_size: i32,
    ) -> Error {
        // SAFETY: Godot keeps `p_buffer_size` bytes at `p_buffer` valid for this call; they are sent at once.
        unsafe {
            ffi::guard_put(
                "UdpPacketPeer.put_packet",
                p_buffer,
                p_buffer_size,
                |packet| {
                    let Some(dest) = self.dest else {
                        godot_error!("UdpPacketPeer.put_packet: no destination; call set_dest_address() or connect_to_host() first");
                        return Error::ERR_UNCONFIGURED;
                    };
                    if packet.len() > MAX_DATAGRAM {
                        // PacketPeerUDP's code for this, with the reason it does not give.
                        godot_error!("UdpPacketPeer.put_packet: a packet of {} bytes is larger than a UDP datagram can carry ({MAX_DATAGRAM} bytes); split it, or send it through a ReliablePacketPeer, which cuts messages into datagrams", packet.len());
                        return Error::FAILED;
                    }
                    if let Err(e) = self.ensure_open(dest.is_ipv6()) {
                        return e;
                    }
                    let Some(endpoint) = self.endpoint.as_mut() else {
                        return Error::ERR_UNAVAILABLE;
                    };
                    match endpoint.send_to(packet, dest) {
                        Ok(()) => Error::OK,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Error::ERR_BUSY,
                        Err(_) => Error::FAILED,
                    }
                },
            )
        }
    }

    fn get_available_packet_count(&self) -> i32 {
        // As PacketPeerUDP: -1 when no socket is open.
        self.endpoint
            .as_ref()
            .map_or(-1, |e| i32::try_from(e.queued()).unwrap_or(i32::MAX))
    }

    fn get_max_packet_size(&self) -> i32 {
        MAX_DATAGRAM as i32
    }
}

#[godot_api]
impl UdpPacketPeer {
    /// Opens the socket on [param port] (0: any free port) of [param bind_address] ([code]"*"[/code]: every
    /// address, IPv4 and IPv6) and starts the receive thread. The system is asked for a socket buffer of
    /// [param recv_buf_size] bytes or 4 MiB, whichever is larger (it may grant less). Errors as PacketPeerUDP: [constant ERR_ALREADY_IN_USE] when already bound,
    /// [constant ERR_INVALID_PARAMETER] for a bad port or address, [constant ERR_UNAVAILABLE] when the port is
    /// taken, [constant ERR_CANT_CREATE] when no socket can be made.
    #[func]
    fn bind(
        &mut self,
        port: i64,
        #[opt(default = "*")] bind_address: GString,
        #[opt(default = 65536)] recv_buf_size: i64,
    ) -> Error {
        if self.endpoint.is_some() {
            godot_error!("UdpPacketPeer.bind: already bound; close() first");
            return Error::ERR_ALREADY_IN_USE;
        }
        let address = bind_address.to_string();
        let Ok(port) = u16::try_from(port) else {
            godot_error!("UdpPacketPeer.bind: the local port number must be between 0 and 65535 (inclusive), got {port}");
            return Error::ERR_INVALID_PARAMETER;
        };
        let Some(candidates) = bind_candidates(&address, port) else {
            godot_error!("UdpPacketPeer.bind: \"{address}\" is not an IP address (or \"*\")");
            return Error::ERR_INVALID_PARAMETER;
        };
        // The system's socket buffer absorbs bursts faster than the receive thread: ask for RECV_BUFFER, or more
        // if asked (the system may grant less).
        let recv_buffer = usize::try_from(recv_buf_size).unwrap_or(0).max(RECV_BUFFER);
        let result = bind_first(&candidates, |addr| {
            UdpEndpoint::bind(addr, recv_buffer, self.limits)
        });
        match result {
            Ok(endpoint) => {
                let _ = endpoint.set_broadcast(self.broadcast);
                self.endpoint = Some(endpoint);
                Error::OK
            }
            Err(e) => error::report_bind_error("UdpPacketPeer.bind", &e),
        }
    }

    /// Closes the socket, stops the receive thread and waits for it, and forgets queued datagrams and the
    /// connection. The peer can be bound again.
    #[func]
    fn close(&mut self) {
        self.endpoint = None;
    }

    /// Blocks until a datagram is queued. [constant ERR_UNAVAILABLE] when no socket is open.
    #[func]
    fn wait(&mut self) -> Error {
        match self.endpoint.as_mut().map(|endpoint| endpoint.wait(None)) {
            Some(true) => Error::OK,
            Some(false) => Error::FAILED,
            None => Error::ERR_UNAVAILABLE,
        }
    }

    /// Returns [code]true[/code] while a socket is open.
    #[func]
    fn is_bound(&self) -> bool {
        self.endpoint.is_some()
    }

    /// Connects to [param host] (an IP address) and [param port]: only its datagrams are received from now on,
    /// and queued ones are dropped. Opens a socket on a free port when none is bound.
    /// [constant ERR_INVALID_PARAMETER] for a bad address or a port outside 1 to 65535; [constant FAILED]
    /// when the system refuses.
    #[func]
    fn connect_to_host(&mut self, host: GString, port: i64) -> Error {
        let Ok(ip) = host.to_string().parse::<IpAddr>() else {
            godot_error!("UdpPacketPeer.connect_to_host: \"{host}\" is not an IP address");
            return Error::ERR_INVALID_PARAMETER;
        };
        let port = match u16::try_from(port) {
            Ok(port) if port >= 1 => port,
            _ => {
                godot_error!("UdpPacketPeer.connect_to_host: the remote port number must be between 1 and 65535 (inclusive), got {port}");
                return Error::ERR_INVALID_PARAMETER;
            }
        };
        let peer = SocketAddr::new(ip, port);
        if let Err(e) = self.ensure_open(peer.is_ipv6()) {
            return e;
        }
        let Some(endpoint) = self.endpoint.as_mut() else {
            return Error::ERR_UNAVAILABLE;
        };
        match endpoint.connect(peer) {
            Ok(()) => {
                self.dest = Some(peer);
                Error::OK
            }
            Err(e) => {
                godot_error!("UdpPacketPeer.connect_to_host: unable to connect: {e}");
                self.close();
                Error::FAILED
            }
        }
    }

    /// Returns [code]true[/code] after a successful [method connect_to_host], until [method close].
    #[func]
    fn is_socket_connected(&self) -> bool {
        self.endpoint
            .as_ref()
            .is_some_and(UdpEndpoint::is_connected)
    }

    /// Returns the IP address the last packet read came from, or an empty string.
    #[func]
    fn get_packet_ip(&self) -> GString {
        self.packet_from
            .map(|a| GString::from(&a.ip().to_string()))
            .unwrap_or_default()
    }

    /// Returns the port the last packet read came from, or 0.
    #[func]
    fn get_packet_port(&self) -> i64 {
        self.packet_from.map_or(0, |a| a.port() as i64)
    }

    /// Returns the local port the socket is bound to, or 0.
    #[func]
    fn get_local_port(&self) -> i64 {
        self.endpoint
            .as_ref()
            .and_then(|e| e.local_addr().ok())
            .map_or(0, |a| a.port() as i64)
    }

    /// Sets where [method PacketPeer.put_packet] sends: [param host] is an IP address or a host name (resolved
    /// now, blocking). [constant ERR_CANT_RESOLVE] when the name does not resolve. On a connected socket it
    /// pushes an error and changes nothing, as PacketPeerUDP does.
    #[func]
    fn set_dest_address(&mut self, host: GString, port: i64) -> Error {
        let host = host.to_string();
        let port = u16::try_from(port).unwrap_or(0);
        let Some(addr) = resolve(&host, port, None) else {
            return Error::ERR_CANT_RESOLVE;
        };
        if self.is_socket_connected() {
            godot_error!("UdpPacketPeer.set_dest_address: destination address cannot be set for connected sockets");
            return Error::OK;
        }
        self.dest = Some(addr);
        Error::OK
    }

    /// Allows sending to broadcast addresses (off by default).
    #[func]
    fn set_broadcast_enabled(&mut self, enabled: bool) {
        self.broadcast = enabled;
        if let Some(endpoint) = self.endpoint.as_ref() {
            let _ = endpoint.set_broadcast(enabled);
        }
    }

    /// Joins the multicast group [param multicast_address] on the interface named [param interface_name] (a
    /// name from [method IP.get_local_interfaces], as PacketPeerUDP takes). Binds to a free port first when no
    /// socket is bound. [constant ERR_INVALID_PARAMETER] for a bad address, an unknown interface, or (for an
    /// IPv4 group) an interface without an IPv4 address; [constant FAILED] when the system refuses (for example,
    /// the group is already joined).
    #[func]
    fn join_multicast_group(
        &mut self,
        multicast_address: GString,
        interface_name: GString,
    ) -> Error {
        let Ok(group) = multicast_address.to_string().parse::<IpAddr>() else {
            return Error::ERR_INVALID_PARAMETER;
        };
        let Some(interface) = multicast_interface(&interface_name.to_string(), group) else {
            godot_error!("UdpPacketPeer.join_multicast_group: no interface named \"{interface_name}\" with an {} address", if group.is_ipv6() { "IPv6" } else { "IPv4" });
            return Error::ERR_INVALID_PARAMETER;
        };
        if let Err(e) = self.ensure_open(group.is_ipv6()) {
            return e;
        }
        match self
            .endpoint
            .as_ref()
            .map(|e| e.join_multicast(group, interface))
        {
            Some(Ok(())) => Error::OK,
            Some(Err(e)) => {
                godot_error!("UdpPacketPeer.join_multicast_group: {e}");
                Error::FAILED
            }
            None => Error::ERR_UNAVAILABLE,
        }
    }

    /// Leaves a group joined with [method join_multicast_group]. [constant ERR_UNCONFIGURED] when not bound.
    #[func]
    fn leave_multicast_group(
        &mut self,
        multicast_address: GString,
        interface_name: GString,
    ) -> Error {
        let Ok(group) = multicast_address.to_string().parse::<IpAddr>() else {
            return Error::ERR_INVALID_PARAMETER;
        };
        let Some(interface) = multicast_interface(&interface_name.to_string(), group) else {
            return Error::ERR_INVALID_PARAMETER;
        };
        match self
            .endpoint
            .as_ref()
            .map(|e| e.leave_multicast(group, interface))
        {
            Some(Ok(())) => Error::OK,
            Some(Err(_)) => Error::FAILED,
            None => Error::ERR_UNCONFIGURED,
        }
    }

    /// Returns [member queue_limit_packets].
    #[func]
    fn get_queue_limit_packets(&self) -> i64 {
        self.limits.packets as i64
    }

    /// Sets [member queue_limit_packets] (at least 1).
    #[func]
    fn set_queue_limit_packets(&mut self, packets: i64) {
        match usize::try_from(packets) {
            Ok(p) if p >= 1 => self.limits.packets = p,
            _ => {
                godot_error!("UdpPacketPeer.queue_limit_packets must be at least 1, got {packets}")
            }
        }
    }

    /// Returns [member queue_limit_bytes].
    #[func]
    fn get_queue_limit_bytes(&self) -> i64 {
        self.limits.bytes as i64
    }

    /// Sets [member queue_limit_bytes] (at least 65507, one largest datagram).
    #[func]
    fn set_queue_limit_bytes(&mut self, bytes: i64) {
        match usize::try_from(bytes) {
            Ok(b) if b >= MAX_DATAGRAM => self.limits.bytes = b,
            _ => godot_error!(
                "UdpPacketPeer.queue_limit_bytes must be at least {MAX_DATAGRAM}, got {bytes}"
            ),
        }
    }

    /// Returns the largest datagram UDP carries over IPv4: 65507. ([PacketPeer] does not offer this to scripts.)
    #[func(rename = get_max_packet_size)]
    fn max_packet_size(&self) -> i64 {
        MAX_DATAGRAM as i64
    }

    /// Returns the counters: [code]packets_in[/code], [code]bytes_in[/code] (taken off the socket),
    /// [code]packets_out[/code], [code]bytes_out[/code], [code]dropped_overflow[/code] (arrived while the queue
    /// was full), [code]queued[/code] and [code]queue_high_water[/code] (the most ever queued). Counters restart
    /// at each [method bind].
    #[func]
    fn get_stats(&self) -> VarDictionary {
        let stats = self
            .endpoint
            .as_ref()
            .map(UdpEndpoint::stats)
            .unwrap_or_default();
        let queued = self.endpoint.as_ref().map_or(0, UdpEndpoint::queued);
        vdict! {
            "packets_in" => stats.packets_in as i64,
            "bytes_in" => stats.bytes_in as i64,
            "packets_out" => stats.packets_out as i64,
            "bytes_out" => stats.bytes_out as i64,
            "dropped_overflow" => stats.dropped_overflow as i64,
            "queued" => queued as i64,
            "queue_high_water" => stats.queue_high_water as i64,
        }
    }
}

impl UdpPacketPeer {
    /// Opens a socket on a free port when none is bound (as PacketPeerUDP does for sending and connecting).
    fn ensure_open(&mut self, ipv6: bool) -> Result<(), Error> {
        if self.endpoint.is_some() {
            return Ok(());
        }
        let ip = if ipv6 {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        };
        match UdpEndpoint::bind(SocketAddr::new(ip, 0), 0, self.limits) {
            Ok(endpoint) => {
                let _ = endpoint.set_broadcast(self.broadcast);
                self.endpoint = Some(endpoint);
                Ok(())
            }
            Err(e) => {
                godot_error!("UdpPacketPeer: cannot open a socket: {e}");
                Err(Error::ERR_CANT_CREATE)
            }
        }
    }
}

/// The interface named `name` as Godot's `IP.get_local_interfaces()` lists it, for joining `group`: its first IPv4
/// address for an IPv4 group (none: `None`), its index for an IPv6 group. `None` for an unknown name.
fn multicast_interface(name: &str, group: IpAddr) -> Option<MulticastInterface> {
    let interfaces = Ip::singleton().get_local_interfaces();
    let info = interfaces
        .iter_shared()
        .find(|info| info.get("name").is_some_and(|n| n.to_string() == name))?;
    let v6_index = info
        .get("index")
        .and_then(|i| i.to_string().parse::<u32>().ok())
        .unwrap_or(0);
    let v4 = info
        .get("addresses")
        .and_then(|a| a.try_to::<PackedStringArray>().ok())
        .and_then(|addresses| {
            addresses
                .as_slice()
                .iter()
                .find_map(|a| a.to_string().parse::<Ipv4Addr>().ok())
        });
    match group {
        IpAddr::V4(_) => Some(MulticastInterface { v4: v4?, v6_index }),
        IpAddr::V6(_) => Some(MulticastInterface {
            v4: Ipv4Addr::UNSPECIFIED,
            v6_index,
        }),
    }
}
