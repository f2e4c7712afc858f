//! `ReliableServer`: the Godot face of [`peerkit_core::io::server`], named and shaped like Godot's UDPServer.
//! Opens the socket, feeds the endpoint the real clock, and hands each accepted connection out as a
//! ReliablePacketPeer; routing, limits and refusals are the core endpoint's.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;

use godot::global::Error;
use godot::prelude::*;
use peerkit_core::io::server::ServerSocket;
use peerkit_core::io::udp::{bind_candidates, bind_first};
use peerkit_core::link::Micros;
use peerkit_core::reliable::{
    Connection, ConnectionHandle, EndpointConfig, Event, ReliableConfig, ReliableError, Unfinished,
};

use super::clock::{os_seed, Clock};
use super::error;
use super::reliable_packet_peer::ReliablePacketPeer;

/// A listening server's socket and clock, shared by the server and the ReliablePacketPeers it handed out (each
/// drives it when polled), for as long as any of them lives.
pub(crate) struct ServerState {
    socket: ServerSocket,
    clock: Clock,
}

/// How the server and its peers hold [`ServerState`].
pub(crate) type SharedServer = Rc<RefCell<ServerState>>;

impl ServerState {
    /// The server's clock.
    pub(crate) fn now_us(&self) -> Micros {
        self.clock.now_us()
    }

    /// Reads the socket, runs the timers of `only` (or every connection) and sends what is due.
    pub(crate) fn drive(&mut self, only: Option<ConnectionHandle>) {
        let now = self.clock.now_us();
        self.socket.drive(now, only);
    }

    /// The connection `handle` names.
    pub(crate) fn connection(&self, handle: ConnectionHandle) -> Option<&Connection> {
        self.socket.endpoint().connection(handle)
    }

    /// The connection `handle` names, to change.
    pub(crate) fn connection_mut(&mut self, handle: ConnectionHandle) -> Option<&mut Connection> {
        self.socket.endpoint_mut().connection_mut(handle)
    }

    /// Runs connection `handle`'s timers due now, sending nothing.
    pub(crate) fn handle_timeout(&mut self, handle: ConnectionHandle) {
        let now = self.clock.now_us();
        self.socket.endpoint_mut().handle_timeout_for(handle, now);
    }

    /// The next event of connection `handle`.
    pub(crate) fn poll_event(&mut self, handle: ConnectionHandle) -> Option<Event> {
        self.socket.endpoint_mut().poll_event(handle)
    }

    /// Closes connection `handle` (its client is told) and lets the endpoint free it once done; returns how many
    /// messages not yet acknowledged it let go of.
    pub(crate) fn close_and_release(&mut self, handle: ConnectionHandle) -> Unfinished {
        let now = self.clock.now_us();
        let endpoint = self.socket.endpoint_mut();
        let discarded = endpoint
            .connection_mut(handle)
            .map_or(Unfinished::default(), |c| c.close(now));
        endpoint.release(handle);
        self.socket.drive(now, Some(handle));
        discarded
    }

    /// Datagrams the socket could not send (each sent again later).
    pub(crate) fn transport_refused(&self) -> u64 {
        self.socket.endpoint().stats().transport_refused
    }
}

/// A server that accepts [ReliablePacketPeer] connections from many clients on one UDP port.
///
/// Shaped like [UDPServer]: [method listen] on a port, [method poll] every frame, and while
/// [method is_connection_available], [method take_connection] hands out a connected [ReliablePacketPeer] whose
/// [method PacketPeer.put_packet] and [method PacketPeer.get_packet] talk to that one client. A client is a
/// ReliablePacketPeer whose [member ReliablePacketPeer.inner] is a [UdpPacketPeer] (or [PacketPeerUDP])
/// connected to the server with [code]connect_to_host[/code], with the same [member max_message_size].
/// ```gdscript
/// var server := ReliableServer.new()
/// var clients: Array[ReliablePacketPeer] = []
///
/// func _ready():
///     server.listen(4242)
///
/// func _process(_delta):
///     server.poll()
///     while server.is_connection_available():
///         clients.append(server.take_connection())
///     for client in clients:
///         client.poll()
///         while client.get_available_packet_count() > 0:
///             client.put_var(client.get_var()) # echo
/// ```
/// A thread reads the socket as datagrams arrive, so a long frame loses nothing for any client. Clients
/// beyond [member max_connections], or beyond [member max_pending_connections] not yet taken, are refused: their
/// connection fails at once with a message saying why (it does not time out). A connection is identified by
/// random ids chosen in its handshake, so datagrams of any other connection, a client that restarted, or a
/// stray are dropped and counted ([method get_stats]), never delivered; a client that vanishes times out after
/// [member timeout_ms]. Freeing a taken peer closes its connection (the client is told). The peers keep
/// working when the server object itself is freed; [method stop] closes them all.
#[derive(GodotClass)]
#[class(tool, base = RefCounted)]
pub struct ReliableServer {
    /// The most connections waiting to be taken with [method take_connection], counting those still in their
    /// handshake (default 16, as UDPServer). A HELLO beyond it is refused.
    #[var(get = get_max_pending_connections, set = set_max_pending_connections, usage_flags = [EDITOR])]
    max_pending_connections: PhantomVar<i64>,
    /// The most connections held at once: pending and taken (default 32, 1 to 4096). A HELLO beyond it is
    /// refused. A taken connection counts until its peer is freed or closed.
    #[var(get = get_max_connections, set = set_max_connections, usage_flags = [EDITOR])]
    max_connections: PhantomVar<i64>,
    /// When [code]true[/code], new clients are refused (told the server does not accept new connections);
    /// connections already made go on.
    #[var(get = is_refusing_new_connections, set = set_refuse_new_connections, usage_flags = [EDITOR])]
    refuse_new_connections: PhantomVar<bool>,
    /// The largest datagram each connection sends, as [member ReliablePacketPeer.mtu] (default 1200). Applies
    /// to connections accepted after the change.
    #[var(get = get_mtu, set = set_mtu, usage_flags = [EDITOR])]
    mtu: PhantomVar<i64>,
    /// The largest message, as [member ReliablePacketPeer.max_message_size] (default 1048576): clients must set
    /// the same. Applies to connections accepted after the change.
    #[var(get = get_max_message_size, set = set_max_message_size, usage_flags = [EDITOR])]
    max_message_size: PhantomVar<i64>,
    /// A connection fails when nothing was heard from its client for this many milliseconds (default 10000),
    /// as [member ReliablePacketPeer.timeout_ms]. Applies to connections accepted after the change.
    #[var(get = get_timeout_ms, set = set_timeout_ms, usage_flags = [EDITOR])]
    timeout_ms: PhantomVar<i64>,
    /// The limits and connection settings, applied to the endpoint at [method listen] and on each change.
    config: EndpointConfig,
    refuse_new: bool,
    /// The socket and its connections, from [method listen] (kept after [method stop], so taken peers can still
    /// read what arrived).
    state: Option<SharedServer>,
    base: Base<RefCounted>,
}

#[godot_api]
impl IRefCounted for ReliableServer {
    fn init(base: Base<RefCounted>) -> Self {
        Self {
            max_pending_connections: PhantomVar::default(),
            max_connections: PhantomVar::default(),
            refuse_new_connections: PhantomVar::default(),
            mtu: PhantomVar::default(),
            max_message_size: PhantomVar::default(),
            timeout_ms: PhantomVar::default(),
            config: EndpointConfig {
                connection: ReliableConfig::default(),
                accept: true,
                ..EndpointConfig::default()
            },
            refuse_new: false,
            state: None,
            base,
        }
    }
}

#[godot_api]
impl ReliableServer {
    /// Opens a UDP socket on [param port] (0: any free port; see [method get_local_port]) of
    /// [param bind_address] ([code]"*"[/code]: every address, IPv4 and IPv6) and starts accepting clients.
    /// Errors: [constant ERR_ALREADY_IN_USE] when already listening, [constant ERR_INVALID_PARAMETER] for a bad
    /// port or address, [constant ERR_UNAVAILABLE] when the port is taken, [constant ERR_CANT_CREATE] when no
    /// socket can be made.
    #[func]
    fn listen(&mut self, port: i64, #[opt(default = "*")] bind_address: GString) -> Error {
        if self.is_listening() {
            godot_error!("ReliableServer.listen: already listening; stop() first");
            return Error::ERR_ALREADY_IN_USE;
        }
        let Ok(port) = u16::try_from(port) else {
            godot_error!(
                "ReliableServer.listen: the port must be between 0 and 65535 (inclusive), got {port}"
            );
            return Error::ERR_INVALID_PARAMETER;
        };
        let address = bind_address.to_string();
        let Some(candidates) = bind_candidates(&address, port) else {
            godot_error!("ReliableServer.listen: \"{address}\" is not an IP address (or \"*\")");
            return Error::ERR_INVALID_PARAMETER;
        };
        let mut config = self.config.clone();
        config.accept = true;
        match bind_first(&candidates, |addr| {
            ServerSocket::bind(addr, config.clone(), os_seed())
        }) {
            Ok(mut socket) => {
                socket.endpoint_mut().set_accepting(!self.refuse_new);
                self.state = Some(Rc::new(RefCell::new(ServerState {
                    socket,
                    clock: Clock::real(),
                })));
                Error::OK
            }
            Err(e) => error::report_bind_error("ReliableServer.listen", &e),
        }
    }

    /// Returns [code]true[/code] between [method listen] and [method stop].
    #[func]
    fn is_listening(&self) -> bool {
        self.state
            .as_ref()
            .is_some_and(|s| s.borrow().socket.is_open())
    }

    /// Takes in what arrived for every connection, completes handshakes, refuses what is beyond the limits,
    /// and sends what every connection has due (handshakes, acknowledgements, retransmissions, keepalives).
    /// Call it every frame (each taken peer's [method ReliablePacketPeer.poll] moves its own connection too).
    #[func]
    fn poll(&mut self) {
        if let Some(state) = &self.state {
            state.borrow_mut().drive(None);
        }
    }

    /// Returns [code]true[/code] when a client's handshake has completed and its connection waits for
    /// [method take_connection].
    #[func]
    fn is_connection_available(&self) -> bool {
        self.state
            .as_ref()
            .is_some_and(|s| s.borrow().socket.endpoint().waiting_count() > 0)
    }

    /// Returns the next connected client as a [ReliablePacketPeer] (already [constant
    /// ReliablePacketPeer.STATUS_CONNECTED]), or [code]null[/code] with an error when none is available.
    #[func]
    fn take_connection(&mut self) -> Option<Gd<ReliablePacketPeer>> {
        let state = self.state.as_ref()?;
        let handle = state.borrow_mut().socket.endpoint_mut().accept();
        match handle {
            Some(handle) => Some(ReliablePacketPeer::for_server(Rc::clone(state), handle)),
            None => {
                godot_error!("ReliableServer.take_connection: no connection available; check is_connection_available() first");
                None
            }
        }
    }

    /// Closes every connection (each client is told), stops accepting, and closes the socket. Taken peers
    /// become [constant ReliablePacketPeer.STATUS_DISCONNECTED]; what they received stays readable.
    #[func]
    fn stop(&mut self) {
        if let Some(state) = &self.state {
            let mut state = state.borrow_mut();
            let now = state.clock.now_us();
            state.socket.endpoint_mut().close_all(now);
            state.socket.drive(now, None);
            state.socket.close_socket();
        }
    }

    /// Returns the port the server listens on (useful after [code]listen(0)[/code]), or 0 when not listening.
    #[func]
    fn get_local_port(&self) -> i64 {
        self.state
            .as_ref()
            .and_then(|s| s.borrow().socket.local_addr().ok())
            .map_or(0, |addr: SocketAddr| addr.port() as i64)
    }

    /// Returns the counters: [code]connections[/code] (held now: pending and taken),
    /// [code]pending_connections[/code], [code]accepted[/code] (taken with [method take_connection]),
    /// [code]refused_full[/code] (beyond [member max_connections]), [code]refused_pending[/code] (beyond
    /// [member max_pending_connections]), [code]refused_not_accepting[/code] ([member refuse_new_connections],
    /// or stopped), [code]refusals_unsent[/code] (refused in a flood too fast to answer each),
    /// [code]pending_failed[/code] (clients that vanished or failed before being taken), datagrams dropped:
    /// [code]dropped_unknown_connection[/code] (an id no connection has: a stale or stray datagram),
    /// [code]dropped_wrong_address[/code] (a connection's id from another address),
    /// [code]dropped_corrupt[/code], [code]dropped_invalid[/code] (not this protocol); and the socket's
    /// [code]datagrams_in[/code], [code]bytes_in[/code], [code]datagrams_out[/code], [code]bytes_out[/code],
    /// [code]dropped_overflow[/code] (the receive queue was full), [code]send_refused[/code] (sends the system
    /// refused; sent again later), and [code]memory_bytes[/code] (an estimate of what the connections hold).
    #[func]
    fn get_stats(&self) -> VarDictionary {
        let Some(state) = &self.state else {
            return VarDictionary::new();
        };
        let state = state.borrow();
        let endpoint = state.socket.endpoint();
        let e = endpoint.stats();
        let udp = state.socket.udp_stats();
        vdict! {
            "connections" => endpoint.connection_count() as i64,
            "pending_connections" => endpoint.pending_count() as i64,
            "accepted" => e.accepted as i64,
            "refused_full" => e.refused_full as i64,
            "refused_pending" => e.refused_pending as i64,
            "refused_not_accepting" => e.refused_not_accepting as i64,
            "refusals_unsent" => e.refusals_unsent as i64,
            "pending_failed" => e.pending_failed as i64,
            "dropped_unknown_connection" => e.dropped_unknown_connection as i64,
            "dropped_wrong_address" => e.dropped_wrong_address as i64,
            "dropped_corrupt" => e.dropped_corrupt as i64,
            "dropped_invalid" => e.dropped_invalid as i64,
            "datagrams_in" => udp.packets_in as i64,
            "bytes_in" => udp.bytes_in as i64,
            "datagrams_out" => udp.packets_out as i64,
            "bytes_out" => udp.bytes_out as i64,
            "dropped_overflow" => udp.dropped_overflow as i64,
            "send_refused" => e.transport_refused as i64,
            "memory_bytes" => endpoint.memory_bytes() as i64,
        }
    }

    /// Returns [member max_pending_connections].
    #[func]
    fn get_max_pending_connections(&self) -> i64 {
        self.config.max_pending as i64
    }

    /// Sets [member max_pending_connections] (1 to 4096); out of range pushes an error and changes nothing.
    #[func]
    fn set_max_pending_connections(&mut self, count: i64) {
        let checked = EndpointConfig::check_limit("max_pending_connections", count);
        self.change("max_pending_connections", checked, |c, n| c.max_pending = n);
    }

    /// Returns [member max_connections].
    #[func]
    fn get_max_connections(&self) -> i64 {
        self.config.max_connections as i64
    }

    /// Sets [member max_connections] (1 to 4096); out of range pushes an error and changes nothing. Lowering it
    /// ends no connection: new ones are refused until fewer are held.
    #[func]
    fn set_max_connections(&mut self, count: i64) {
        let checked = EndpointConfig::check_limit("max_connections", count);
        self.change("max_connections", checked, |c, n| c.max_connections = n);
    }

    /// Returns [member refuse_new_connections].
    #[func]
    fn is_refusing_new_connections(&self) -> bool {
        self.refuse_new
    }

    /// Sets [member refuse_new_connections].
    #[func]
    fn set_refuse_new_connections(&mut self, refuse: bool) {
        self.refuse_new = refuse;
        if let Some(state) = &self.state {
            let mut state = state.borrow_mut();
            if state.socket.is_open() {
                state.socket.endpoint_mut().set_accepting(!refuse);
            }
        }
    }

    /// Returns [member mtu].
    #[func]
    fn get_mtu(&self) -> i64 {
        self.config.connection.mtu as i64
    }

    /// Sets [member mtu]; out of range (64 to 65507) pushes an error and changes nothing.
    #[func]
    fn set_mtu(&mut self, mtu: i64) {
        let checked = ReliableConfig::check_mtu(mtu);
        self.change("mtu", checked, |c, mtu| c.connection.mtu = mtu);
    }

    /// Returns [member max_message_size].
    #[func]
    fn get_max_message_size(&self) -> i64 {
        self.config.connection.max_message_size as i64
    }

    /// Sets [member max_message_size]; out of range (1 to 16777216) pushes an error and changes nothing.
    #[func]
    fn set_max_message_size(&mut self, size: i64) {
        let checked = ReliableConfig::check_max_message_size(size);
        self.change("max_message_size", checked, |c, size| {
            c.connection.max_message_size = size
        });
    }

    /// Returns [member timeout_ms].
    #[func]
    fn get_timeout_ms(&self) -> i64 {
        (self.config.connection.timeout_us / 1000) as i64
    }

    /// Sets [member timeout_ms]; out of range (1 to 3600000) pushes an error and changes nothing.
    #[func]
    fn set_timeout_ms(&mut self, ms: i64) {
        let checked = ReliableConfig::check_timeout_ms(ms);
        self.change("timeout_ms", checked, |c, us| c.connection.timeout_us = us);
    }
}

impl ReliableServer {
    /// Applies a setting the core checked (`set` writes it), or pushes the core's error naming the property and
    /// changes nothing.
    fn change<T>(
        &mut self,
        name: &str,
        checked: Result<T, ReliableError>,
        set: impl FnOnce(&mut EndpointConfig, T),
    ) {
        match checked {
            Ok(value) => {
                set(&mut self.config, value);
                self.apply_config();
            }
            Err(e) => godot_error!("ReliableServer.{name}: {e}"),
        }
    }

    /// Gives a listening endpoint the current limits and settings.
    fn apply_config(&mut self) {
        if let Some(state) = &self.state {
            let mut state = state.borrow_mut();
            if state.socket.is_open() {
                let accepting = state.socket.endpoint().is_accepting();
                let endpoint = state.socket.endpoint_mut();
                endpoint.set_config(self.config.clone());
                endpoint.set_accepting(accepting);
            }
        }
    }
}
