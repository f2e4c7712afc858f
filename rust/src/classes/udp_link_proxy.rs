//! `UdpLinkProxy`: the Godot face of [`peerkit_core::io::proxy`]. Parses addresses and settings, maps errors;
//! the relaying and every link decision happen on the core's proxy thread.

use std::net::{IpAddr, SocketAddr};

use godot::global::Error;
use godot::prelude::*;
use peerkit_core::io::proxy::{ClientSelector, ProxyChangeError, ProxyError, UdpProxy};
use peerkit_core::io::udp::resolve;

use super::link_settings;

/// A UDP relay with a simulated bad network in between, for games that run as separate processes: two game
/// instances started from the editor, a dedicated server, a phone on the LAN.
///
/// It listens on a port and relays every datagram to a target address and back. Each client address gets its
/// own two-way link (to the server, to the client) with the settings and presets of [LinkConditioner], and its
/// own upstream socket, so the server sees each client as without the proxy. Point the client at the proxy's
/// port instead of the server's and change nothing else: it works with [ENetMultiplayerPeer],
/// [PacketPeerUDP], [UdpPacketPeer] and anything else over UDP.
/// ```gdscript
/// var proxy := UdpLinkProxy.new()
/// proxy.start(9998, "127.0.0.1", 9999) # clients connect to 9998, the server listens on 9999
/// proxy.apply_preset("", "3g")         # every client, now and later
/// ```
/// The proxy relays on a thread of its own in real time: a long frame in the game does not turn into loss or
/// delay. It is real time only (no manual clock): a process on the other side of a socket cannot wait for one.
/// Every datagram is treated as unreliable (the proxy cannot see transfer modes): ENet's own reliability then
/// repairs the loss, as it would on a real network. [method stop] (or freeing the proxy) closes everything. A
/// proxy keeps every client address it has seen until it stops, up to 1024 (datagrams from further addresses
/// are dropped and counted as [code]dropped_too_many_clients[/code]): restart it to forget them.
#[derive(GodotClass)]
#[class(tool, base = RefCounted)]
pub struct UdpLinkProxy {
    /// The seed of every random decision; each client's link draws from it and the order the client first sent
    /// in. Setting it while running restarts every link's random stream. Default 0.
    #[var(get = get_seed, set = set_seed, usage_flags = [EDITOR])]
    seed: PhantomVar<i64>,
    seed_value: u64,
    proxy: Option<UdpProxy>,
    base: Base<RefCounted>,
}

#[godot_api]
impl IRefCounted for UdpLinkProxy {
    fn init(base: Base<RefCounted>) -> Self {
        Self {
            seed: PhantomVar::default(),
            seed_value: 0,
            proxy: None,
            base,
        }
    }
}

#[godot_api]
impl UdpLinkProxy {
    /// Direction: from the client to the server.
    #[constant]
    const DIRECTION_TO_SERVER: i64 = 1;
    /// Direction: from the server to the client.
    #[constant]
    const DIRECTION_TO_CLIENT: i64 = 2;
    /// Direction: both.
    #[constant]
    const DIRECTION_BOTH: i64 = 3;

    /// Starts relaying: listens on [param listen_port] (0: any free port, see [method get_listen_port]) at
    /// [param bind_address] ([code]"127.0.0.1"[/code] by default; [code]"*"[/code] for every address, to reach
    /// other machines), and relays to [param target_host]:[param target_port]. Returns [constant OK],
    /// [constant ERR_ALREADY_IN_USE] when running already or the port is taken, [constant ERR_INVALID_PARAMETER]
    /// for a bad port, address or host (each with an error naming it), [constant ERR_CANT_CREATE] when the
    /// system refuses. Every client's link starts clean: change them once running.
    #[func]
    fn start(
        &mut self,
        listen_port: i64,
        target_host: GString,
        target_port: i64,
        #[opt(default = "127.0.0.1")] bind_address: GString,
    ) -> Error {
        const WHAT: &str = "UdpLinkProxy.start";
        if self.proxy.is_some() {
            godot_error!("{WHAT}: the proxy is running already; stop() it first");
            return Error::ERR_ALREADY_IN_USE;
        }
        let (Ok(listen_port), Ok(target_port)) =
            (u16::try_from(listen_port), u16::try_from(target_port))
        else {
            godot_error!("{WHAT}: ports must be between 0 and 65535 (inclusive), got {listen_port} and {target_port}");
            return Error::ERR_INVALID_PARAMETER;
        };
        if target_port == 0 {
            godot_error!("{WHAT}: the target port must be the server's port, not 0");
            return Error::ERR_INVALID_PARAMETER;
        }
        let bind = bind_address.to_string();
        let ip: IpAddr = if bind == "*" {
            IpAddr::from([0, 0, 0, 0])
        } else {
            match bind.parse() {
                Ok(ip) => ip,
                Err(_) => {
                    godot_error!(
                        "{WHAT}: bind_address must be an IP address or \"*\", got \"{bind}\""
                    );
                    return Error::ERR_INVALID_PARAMETER;
                }
            }
        };
        let host = target_host.to_string();
        let Some(target) = resolve(&host, target_port, Some(ip.is_ipv4())) else {
            godot_error!(
                "{WHAT}: cannot resolve the target host \"{host}\" to an IPv{} address",
                if ip.is_ipv4() { 4 } else { 6 }
            );
            return Error::ERR_INVALID_PARAMETER;
        };
        match UdpProxy::start(SocketAddr::new(ip, listen_port), target, self.seed_value) {
            Ok(proxy) => {
                self.proxy = Some(proxy);
                Error::OK
            }
            Err(e @ ProxyError::AddressInUse { .. }) => {
                godot_error!("{WHAT}: {e}");
                Error::ERR_ALREADY_IN_USE
            }
            Err(e) => {
                godot_error!("{WHAT}: {e}");
                Error::ERR_CANT_CREATE
            }
        }
    }

    /// Stops relaying and closes every socket; datagrams held in the links are dropped. Settings for clients to
    /// come are forgotten too. Does nothing when not running.
    #[func]
    fn stop(&mut self) {
        self.proxy = None;
    }

    /// Returns whether the proxy is relaying.
    #[func]
    fn is_running(&self) -> bool {
        self.proxy.is_some()
    }

    /// Returns the port the proxy listens on (the one the system chose, when [method start] was given 0), or 0
    /// when not running.
    #[func]
    fn get_listen_port(&self) -> i64 {
        self.proxy
            .as_ref()
            .map_or(0, |p| i64::from(p.local_addr().port()))
    }

    /// Changes the link of the client at [param client] ([code]"ip:port"[/code] as in [method get_clients]; an
    /// empty string for every client, now and later) in [param direction] ([constant DIRECTION_TO_SERVER],
    /// [constant DIRECTION_TO_CLIENT] or [constant DIRECTION_BOTH], the default). [param settings] takes the names
    /// and ranges of [method LinkConditioner.configure]; settings not named keep their value. Returns
    /// [constant ERR_INVALID_PARAMETER] (and changes nothing) for an unknown client, setting, value or direction,
    /// [constant ERR_UNCONFIGURED] when not running.
    #[func]
    fn set_link_conditions(
        &mut self,
        client: GString,
        settings: VarDictionary,
        #[opt(default = 3)] direction: i64,
    ) -> Error {
        const WHAT: &str = "UdpLinkProxy.set_link_conditions";
        match link_settings::settings_change(WHAT, &settings) {
            Ok(change) => self.change(WHAT, &client, direction, change),
            Err(code) => code,
        }
    }

    /// Replaces the settings of the client at [param client] (empty: every client, now and later) with a
    /// [LinkConditioner] preset in [param direction] ([constant DIRECTION_BOTH] by default).
    #[func]
    fn apply_preset(
        &mut self,
        client: GString,
        name: GString,
        #[opt(default = 3)] direction: i64,
    ) -> Error {
        const WHAT: &str = "UdpLinkProxy.apply_preset";
        match link_settings::preset_change(WHAT, &name.to_string()) {
            Ok(change) => self.change(WHAT, &client, direction, change),
            Err(code) => code,
        }
    }

    /// Cuts the link of the client at [param client] (empty: every client, now and later) in both directions,
    /// or restores it.
    #[func]
    fn set_link_up(&mut self, client: GString, up: bool) -> Error {
        self.change(
            "UdpLinkProxy.set_link_up",
            &client,
            Self::DIRECTION_BOTH,
            Box::new(move |config| {
                config.link_up = up;
                Ok(())
            }),
        )
    }

    /// Returns the settings of one direction ([constant DIRECTION_TO_SERVER] or [constant DIRECTION_TO_CLIENT])
    /// of the client at [param client] (empty: what clients to come get), in the form
    /// [method set_link_conditions] takes; empty (with an error) for an unknown client or when not running.
    #[func]
    fn get_link_conditions(&self, client: GString, direction: i64) -> VarDictionary {
        const WHAT: &str = "UdpLinkProxy.get_link_conditions";
        let Some(to_server) =
            link_settings::one_direction(WHAT, direction, link_settings::TO_SERVER_TO_CLIENT)
        else {
            return VarDictionary::new();
        };
        let Some(proxy) = self.running(WHAT) else {
            return VarDictionary::new();
        };
        let Some(selector) = selector(WHAT, &client) else {
            return VarDictionary::new();
        };
        match proxy.config(selector, to_server) {
            Some(config) => link_settings::to_dictionary(&config),
            None => {
                godot_error!("{WHAT}: no client at {client} has sent anything through the proxy");
                VarDictionary::new()
            }
        }
    }

    /// Returns the address ([code]"ip:port"[/code]) of every client that has sent through the proxy, in order.
    #[func]
    fn get_clients(&self) -> PackedStringArray {
        let Some(proxy) = &self.proxy else {
            return PackedStringArray::new();
        };
        proxy
            .stats()
            .0
            .iter()
            .map(|c| GString::from(c.addr.to_string().as_str()))
            .collect()
    }

    /// Returns the counters: [code]"clients"[/code], from each client's address to
    /// [code]{"to_server": ..., "to_client": ...}[/code], each direction's counters as in
    /// [method LinkConditioner.get_stats]; [code]"dropped_too_many_clients"[/code] (datagrams from addresses
    /// beyond the 1024 clients a proxy relays for); [code]"send_errors"[/code] (datagrams the system would not
    /// send on). Empty when not running.
    #[func]
    fn get_stats(&self) -> VarDictionary {
        let Some(proxy) = &self.proxy else {
            return VarDictionary::new();
        };
        let (clients, too_many, send_errors) = proxy.stats();
        let mut by_addr = VarDictionary::new();
        for c in clients {
            by_addr.set(
                c.addr.to_string().as_str(),
                &vdict! {
                    "to_server" => &link_settings::direction_stats(&c.link.outbound, c.link.outbound_queued),
                    "to_client" => &link_settings::direction_stats(&c.link.inbound, c.link.inbound_queued),
                },
            );
        }
        vdict! {
            "clients" => &by_addr,
            "dropped_too_many_clients" => too_many as i64,
            "send_errors" => send_errors as i64,
        }
    }

    /// Returns [member seed].
    #[func]
    fn get_seed(&self) -> i64 {
        self.seed_value as i64
    }

    /// Sets [member seed].
    #[func]
    fn set_seed(&mut self, seed: i64) {
        self.seed_value = seed as u64;
        if let Some(proxy) = &self.proxy {
            proxy.reseed(self.seed_value);
        }
    }
}

impl UdpLinkProxy {
    fn running(&self, what: &str) -> Option<&UdpProxy> {
        if self.proxy.is_none() {
            godot_error!("{what}: the proxy is not running; start() it first");
        }
        self.proxy.as_ref()
    }

    fn change(
        &mut self,
        what: &str,
        client: &GString,
        direction: i64,
        change: link_settings::Change,
    ) -> Error {
        let Some(directions) =
            link_settings::directions(what, direction, link_settings::TO_SERVER_TO_CLIENT)
        else {
            return Error::ERR_INVALID_PARAMETER;
        };
        let Some(proxy) = self.running(what) else {
            return Error::ERR_UNCONFIGURED;
        };
        let Some(selector) = selector(what, client) else {
            return Error::ERR_INVALID_PARAMETER;
        };
        match proxy.configure(selector, directions, change) {
            Ok(()) => Error::OK,
            Err(ProxyChangeError::Stopped) => {
                godot_error!("{what}: the proxy has stopped");
                Error::ERR_UNCONFIGURED
            }
            Err(e) => {
                godot_error!("{what}: {e}");
                Error::ERR_INVALID_PARAMETER
            }
        }
    }
}

/// The client a change names: every one for an empty string, else the one at that "ip:port".
fn selector(what: &str, client: &GString) -> Option<ClientSelector> {
    let text = client.to_string();
    if text.is_empty() {
        return Some(ClientSelector::All);
    }
    match text.parse::<SocketAddr>() {
        Ok(addr) => Some(ClientSelector::At(addr)),
        Err(_) => {
            godot_error!("{what}: a client is named by its \"ip:port\" (see get_clients()), or \"\" for every client; got \"{text}\"");
            None
        }
    }
}
