//! `UdpMultiplayerPeer`: peerkit's protocol as a game's MultiplayerPeer, over one UDP socket.

use std::net::SocketAddr;

use bytes::Bytes;
use godot::classes::multiplayer_peer::{ConnectionStatus, TransferMode as GodotMode};
use godot::classes::{IMultiplayerPeerExtension, MultiplayerPeerExtension};
use godot::global::Error;
use godot::meta::conv::RawPtr;
use godot::prelude::*;
use peerkit_core::io::server::ServerSocket;
use peerkit_core::io::udp::{bind_candidates, bind_first, resolve};
use peerkit_core::multiplayer::host::{Host, HostEvent, MAX_GAME_CHANNEL};
use peerkit_core::multiplayer::{Status, TransferMode};
use peerkit_core::reliable::endpoint::MAX_CONNECTIONS_LIMIT;
use peerkit_core::reliable::{EndpointConfig, ReliableConfig};

use super::clock::{os_seed, Clock};
use super::error::{report_bind_error, GodotErrorCode};
use super::{ffi, transfer_mode};

/// A socket and the session it carries.
struct Session {
    socket: ServerSocket,
    host: Host,
    clock: Clock,
}

/// A [MultiplayerPeer] over UDP that speaks peerkit's reliable protocol: a drop-in for
/// [ENetMultiplayerPeer] in a [SceneMultiplayer] game.
///
/// [method create_server] or [method create_client], then assign it to [member MultiplayerAPI.multiplayer_peer].
/// Peer ids are Godot's (the server is 1, each client a random id the server gives it). All three transfer
/// modes keep their meaning on channels 0 to 254, each channel independent of the others:
/// [constant MultiplayerPeer.TRANSFER_MODE_RELIABLE] delivers every packet once, in order within its channel,
/// and a loss on one channel never delays another; [constant MultiplayerPeer.TRANSFER_MODE_UNRELIABLE_ORDERED]
/// may lose a packet and never delivers one after a newer one of its channel;
/// [constant MultiplayerPeer.TRANSFER_MODE_UNRELIABLE] may lose or reorder. Unreliable packets are sent once,
/// paced with the reliable ones by the same congestion control; one larger than a datagram is cut into
/// fragments and is lost whole if any fragment is. A receive thread reads the socket while the game stalls
/// (a level loading), so nothing is lost and nobody is disconnected for a stall shorter than
/// [member timeout_ms]. Packets between clients go through the server (SceneMultiplayer relays them).
///
/// Both sides must run peerkit of the same protocol version; an older one fails at connect time with a message
/// saying so.
#[derive(GodotClass)]
#[class(tool, base = MultiplayerPeerExtension)]
pub struct UdpMultiplayerPeer {
    /// Silence (nothing heard) after which a peer counts as gone, in milliseconds (1 to 3600000). Applies to
    /// connections made after it is set.
    #[var(get = get_timeout_ms, set = set_timeout_ms, usage_flags = [EDITOR])]
    timeout_ms: PhantomVar<i64>,
    config: ReliableConfig,
    session: Option<Session>,
    target_peer: i32,
    transfer_mode: TransferMode,
    transfer_channel: i64,
    refuse_new: bool,
    /// The packet last handed to Godot by `_get_packet`; kept so its pointer stays valid until the next call.
    current: Bytes,
    base: Base<MultiplayerPeerExtension>,
}

impl UdpMultiplayerPeer {
    fn emit(&mut self, event: HostEvent) {
        let (signal, id) = match event {
            HostEvent::Connected(id) => ("peer_connected", id),
            HostEvent::Disconnected(id) => ("peer_disconnected", id),
        };
        self.base_mut()
            .emit_signal(signal, &[Variant::from(i64::from(id))]);
    }

    fn open(
        &mut self,
        what: &str,
        candidates: &[SocketAddr],
        accept: bool,
        max: usize,
    ) -> Result<ServerSocket, Error> {
        if self.session.is_some() {
            godot_error!("{what}: already open; close() first");
            return Err(Error::ERR_ALREADY_IN_USE);
        }
        let config = EndpointConfig {
            connection: self.config.clone(),
            accept,
            max_connections: max,
            max_pending: max,
        };
        bind_first(candidates, |addr| {
            ServerSocket::bind(addr, config.clone(), os_seed())
        })
        .map_err(|e| report_bind_error(what, &e))
    }
}

#[godot_api]
impl IMultiplayerPeerExtension for UdpMultiplayerPeer {
    fn init(base: Base<MultiplayerPeerExtension>) -> Self {
        Self {
            timeout_ms: PhantomVar::default(),
            config: ReliableConfig::default(),
            session: None,
            target_peer: 0,
            transfer_mode: TransferMode::Reliable,
            transfer_channel: 0,
            refuse_new: false,
            current: Bytes::new(),
            base,
        }
    }

    unsafe fn get_packet_rawptr(
        &mut self,
        r_buffer: RawPtr<*mut RawPtr<*const u8>>,
        r_buffer_size: RawPtr<*mut i32>,
    ) -> Error {
        ffi::guard("UdpMultiplayerPeer.get_packet", || {
            let packet = self
                .session
                .as_mut()
                .and_then(|s| s.host.pop())
                .map(|p| p.data);
            // SAFETY: Godot's out-pointers, and `self.current` is this object's packet slot.
            unsafe {
                ffi::hand_out(
                    &mut self.current,
                    packet,
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
        const WHAT: &str = "UdpMultiplayerPeer.put_packet";
        // SAFETY: Godot keeps `p_buffer_size` bytes at `p_buffer` valid for this call; they are copied here.
        unsafe {
            ffi::guard_put(WHAT, p_buffer, p_buffer_size, |data| {
                let data = Bytes::copy_from_slice(data);
                let (target, channel, mode) =
                    (self.target_peer, self.transfer_channel, self.transfer_mode);
                let Some(s) = self.session.as_mut() else {
                    godot_error!(
                        "{WHAT}: not connected; call create_server() or create_client() first"
                    );
                    return Error::ERR_UNCONFIGURED;
                };
                match s
                    .host
                    .send(s.socket.endpoint_mut(), target, channel, mode, data)
                {
                    Ok(()) => Error::OK,
                    Err(e) => {
                        godot_error!("{WHAT}: {e}");
                        e.error_code()
                    }
                }
            })
        }
    }

    fn get_available_packet_count(&self) -> i32 {
        self.session
            .as_ref()
            .map_or(0, |s| s.host.available().try_into().unwrap_or(i32::MAX))
    }

    fn get_max_packet_size(&self) -> i32 {
        self.config.max_message_size.try_into().unwrap_or(i32::MAX)
    }

    fn get_packet_channel(&self) -> i32 {
        self.session
            .as_ref()
            .and_then(|s| s.host.front().map(|p| i32::from(p.channel)))
            .unwrap_or(0)
    }

    fn get_packet_mode(&self) -> GodotMode {
        self.session
            .as_ref()
            .and_then(|s| s.host.front().map(|p| transfer_mode::to_godot(p.mode)))
            .unwrap_or(GodotMode::RELIABLE)
    }

    fn set_transfer_channel(&mut self, channel: i32) {
        if !(0..=MAX_GAME_CHANNEL).contains(&i64::from(channel)) {
            godot_error!(
                "UdpMultiplayerPeer.transfer_channel: channel must be between 0 and {MAX_GAME_CHANNEL}, got {channel}; kept {}",
                self.transfer_channel
            );
            return;
        }
        self.transfer_channel = i64::from(channel);
    }

    fn get_transfer_channel(&self) -> i32 {
        self.transfer_channel as i32
    }

    fn set_transfer_mode(&mut self, mode: GodotMode) {
        self.transfer_mode = transfer_mode::from_godot(mode);
    }

    fn get_transfer_mode(&self) -> GodotMode {
        transfer_mode::to_godot(self.transfer_mode)
    }

    fn set_target_peer(&mut self, peer: i32) {
        self.target_peer = peer;
    }

    fn get_packet_peer(&self) -> i32 {
        self.session
            .as_ref()
            .and_then(|s| s.host.front().map(|p| p.from))
            .unwrap_or(0)
    }

    fn is_server(&self) -> bool {
        self.session.as_ref().is_some_and(|s| s.host.is_server())
    }

    fn poll(&mut self) {
        let mut events = Vec::new();
        if let Some(s) = self.session.as_mut() {
            let now = s.clock.now_us();
            // Takes in what arrived and sends what is due (acknowledgements, and what the game put since the
            // last poll); what the game's handlers put in answer goes out at the next poll.
            s.socket.drive(now, None);
            s.host.update(s.socket.endpoint_mut(), now);
            events.extend(std::iter::from_fn(|| s.host.poll_event()));
        }
        for event in events {
            self.emit(event);
        }
    }

    fn close(&mut self) {
        if let Some(mut s) = self.session.take() {
            let now = s.clock.now_us();
            s.host.close(s.socket.endpoint_mut(), now);
            // Tell every peer now: the socket goes with this session.
            s.socket.drive(now, None);
        }
    }

    fn disconnect_peer(&mut self, peer: i32, force: bool) {
        let mut events = Vec::new();
        if let Some(s) = self.session.as_mut() {
            let now = s.clock.now_us();
            if let Err(e) = s
                .host
                .disconnect_peer(s.socket.endpoint_mut(), now, peer, force)
            {
                godot_error!("UdpMultiplayerPeer.disconnect_peer({peer}): {e}");
            }
            s.socket.drive(now, None);
            events.extend(std::iter::from_fn(|| s.host.poll_event()));
        }
        for event in events {
            self.emit(event);
        }
    }

    fn get_unique_id(&self) -> i32 {
        self.session.as_ref().map_or(0, |s| s.host.unique_id())
    }

    fn set_refuse_new_connections(&mut self, enable: bool) {
        self.refuse_new = enable;
        if let Some(s) = self.session.as_mut() {
            if s.host.is_server() {
                s.socket.endpoint_mut().set_accepting(!enable);
            }
        }
    }

    fn is_refusing_new_connections(&self) -> bool {
        self.refuse_new
    }

    fn is_server_relay_supported(&self) -> bool {
        true
    }

    fn get_connection_status(&self) -> ConnectionStatus {
        match self.session.as_ref().map(|s| s.host.status()) {
            Some(Status::Connected) => ConnectionStatus::CONNECTED,
            Some(Status::Connecting) => ConnectionStatus::CONNECTING,
            _ => ConnectionStatus::DISCONNECTED,
        }
    }
}

#[godot_api]
impl UdpMultiplayerPeer {
    /// Starts a server on [param port] of [param bind_address] ([code]"*"[/code]: every address, IPv4 and
    /// IPv6) for at most [param max_clients] clients (1 to 4096). Errors: [constant ERR_ALREADY_IN_USE] when
    /// already open, [constant ERR_UNAVAILABLE] when the port is taken, [constant ERR_INVALID_PARAMETER] for a
    /// bad port, address or count, [constant ERR_CANT_CREATE] when no socket can be made.
    #[func]
    fn create_server(
        &mut self,
        port: i64,
        #[opt(default = 32)] max_clients: i64,
        #[opt(default = "*")] bind_address: GString,
    ) -> Error {
        const WHAT: &str = "UdpMultiplayerPeer.create_server";
        let Ok(port) = u16::try_from(port) else {
            godot_error!("{WHAT}: the port must be between 0 and 65535, got {port}");
            return Error::ERR_INVALID_PARAMETER;
        };
        if !(1..=MAX_CONNECTIONS_LIMIT as i64).contains(&max_clients) {
            godot_error!("{WHAT}: max_clients must be between 1 and {MAX_CONNECTIONS_LIMIT}, got {max_clients}");
            return Error::ERR_INVALID_PARAMETER;
        }
        let address = bind_address.to_string();
        let Some(candidates) = bind_candidates(&address, port) else {
            godot_error!("{WHAT}: \"{address}\" is not an IP address (or \"*\")");
            return Error::ERR_INVALID_PARAMETER;
        };
        match self.open(WHAT, &candidates, true, max_clients as usize) {
            Ok(mut socket) => {
                socket.endpoint_mut().set_accepting(!self.refuse_new);
                self.session = Some(Session {
                    socket,
                    host: Host::server(os_seed()),
                    clock: Clock::real(),
                });
                Error::OK
            }
            Err(e) => e,
        }
    }

    /// Connects to the server at [param address] (an IP address or a host name) and [param port], from
    /// [param local_port] (0: any free port). [signal MultiplayerPeer.peer_connected] with id 1 follows once
    /// the server has answered and given this client its id. Errors: [constant ERR_ALREADY_IN_USE] when
    /// already open, [constant ERR_INVALID_PARAMETER] for a bad port or an address that does not resolve,
    /// [constant ERR_CANT_CREATE] when no socket can be made.
    #[func]
    fn create_client(
        &mut self,
        address: GString,
        port: i64,
        #[opt(default = 0)] local_port: i64,
    ) -> Error {
        const WHAT: &str = "UdpMultiplayerPeer.create_client";
        let (Ok(port), Ok(local_port)) = (u16::try_from(port), u16::try_from(local_port)) else {
            godot_error!("{WHAT}: ports must be between 0 and 65535, got {port} and {local_port}");
            return Error::ERR_INVALID_PARAMETER;
        };
        let host = address.to_string();
        let Some(server) = resolve(&host, port, None) else {
            godot_error!("{WHAT}: \"{host}\" does not resolve to an address");
            return Error::ERR_INVALID_PARAMETER;
        };
        let any = if server.is_ipv4() { "0.0.0.0" } else { "::" };
        let candidates = bind_candidates(any, local_port).unwrap_or_default();
        match self.open(WHAT, &candidates, false, 1) {
            Ok(mut socket) => {
                let clock = Clock::real();
                let now = clock.now_us();
                let host = Host::client(
                    socket.endpoint_mut(),
                    now,
                    server,
                    self.config.clone(),
                    os_seed(),
                );
                socket.drive(now, None);
                self.session = Some(Session {
                    socket,
                    host,
                    clock,
                });
                Error::OK
            }
            Err(e) => e,
        }
    }

    /// Returns the UDP port this peer's socket is bound to (0 when closed): the port
    /// [code]create_server(0)[/code] picked.
    #[func]
    fn get_local_port(&self) -> i64 {
        self.session
            .as_ref()
            .and_then(|s| s.socket.local_addr().ok())
            .map_or(0, |a| i64::from(a.port()))
    }

    /// Returns the connection to peer [param peer_id]'s figures, as [method ENetPacketPeer.get_statistic]
    /// gives ENet's and [method ReliablePacketPeer.get_stats] peerkit's: [code]round_trip_ms[/code],
    /// [code]round_trip_variance_ms[/code], [code]loss[/code] (share of DATA sent again, 0 to 1),
    /// [code]retransmissions[/code], [code]datagrams_sent[/code], [code]datagrams_received[/code],
    /// [code]messages_sent[/code], [code]messages_received[/code], [code]messages_pending[/code],
    /// [code]unreliable_sent[/code], [code]unreliable_received[/code], [code]unreliable_dropped[/code],
    /// [code]unreliable_late[/code], [code]unreliable_incomplete[/code]. Empty for an unknown peer.
    #[func]
    fn get_peer_stats(&self, peer_id: i64) -> VarDictionary {
        let Some(stats) = self.session.as_ref().and_then(|s| {
            let id = i32::try_from(peer_id).ok()?;
            s.host.peer_stats(s.socket.endpoint(), id)
        }) else {
            return VarDictionary::new();
        };
        let loss = stats.retransmissions as f64 / stats.datagrams_sent.max(1) as f64;
        vdict! {
            "round_trip_ms" => stats.srtt_us as f64 / 1000.0,
            "round_trip_variance_ms" => stats.rttvar_us as f64 / 1000.0,
            "loss" => loss,
            "retransmissions" => stats.retransmissions as i64,
            "datagrams_sent" => stats.datagrams_sent as i64,
            "datagrams_received" => stats.datagrams_received as i64,
            "messages_sent" => stats.messages_sent as i64,
            "messages_received" => stats.messages_received as i64,
            "messages_pending" => stats.messages_pending as i64,
            "unreliable_sent" => stats.unreliable_sent as i64,
            "unreliable_received" => stats.unreliable_received as i64,
            "unreliable_dropped" => stats.unreliable_dropped as i64,
            "unreliable_late" => stats.unreliable_late as i64,
            "unreliable_incomplete" => stats.unreliable_incomplete as i64,
        }
    }

    /// Returns [member timeout_ms].
    #[func]
    fn get_timeout_ms(&self) -> i64 {
        (self.config.timeout_us / 1000) as i64
    }

    /// Sets [member timeout_ms]; a value out of range is refused with an error and the old one kept.
    #[func]
    fn set_timeout_ms(&mut self, ms: i64) {
        match ReliableConfig::check_timeout_ms(ms) {
            Ok(us) => self.config.timeout_us = us,
            Err(e) => godot_error!(
                "UdpMultiplayerPeer.timeout_ms: {e}; kept {}",
                self.get_timeout_ms()
            ),
        }
    }
}

impl Drop for UdpMultiplayerPeer {
    fn drop(&mut self) {
        self.close();
    }
}
