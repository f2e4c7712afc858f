//! `LocalMultiplayerNetwork` and `LocalMultiplayerPeer`: the Godot face of [`peerkit_core::multiplayer`].

use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use godot::classes::multiplayer_peer::{ConnectionStatus, TransferMode as GodotMode};
use godot::classes::{IMultiplayerPeerExtension, MultiplayerPeerExtension};
use godot::global::Error;
use godot::meta::conv::RawPtr;
use godot::prelude::*;
use peerkit_core::link::{LinkConfig, LinkConfigError};
use peerkit_core::multiplayer::{
    ConfigureError, Direction, Event, Network, PeerId, Status, TransferMode, MAX_CHANNEL,
};

use super::clock::Clock;
use super::error::GodotErrorCode;
use super::{ffi, link_settings};

/// What a network object and its peers share: the core network, the clock, and which object is which peer.
struct Shared {
    net: Network,
    clock: Clock,
    /// Each live peer object, to emit its signals when the network is polled.
    objects: Vec<(PeerId, InstanceId)>,
}

type SharedRef = Arc<Mutex<Shared>>;

fn lock(shared: &SharedRef) -> MutexGuard<'_, Shared> {
    // A panic while locked (turned into ERR_BUG at the boundary) leaves the state usable: every core method keeps
    // it consistent before anything that could panic.
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    /// Steps the network to now.
    fn step(&mut self) {
        let now = self.clock.now_us();
        self.net.step(now);
    }
}

/// A whole multiplayer session inside one process: one server and any number of clients, joined by simulated
/// links instead of sockets.
///
/// Create the peers here and give each to its own [SceneMultiplayer] (one per subtree with
/// [method SceneTree.set_multiplayer]); RPCs, [MultiplayerSpawner] and [MultiplayerSynchronizer] then work as over
/// ENet. Each client's link with the server takes the [LinkConditioner]'s settings, per direction, so a session
/// can run under latency, loss or a cut cable; with [member use_manual_clock], time moves only when you
/// [method advance] it, and the same [member seed] and the same calls give the same session every run.
///
/// The network is a star, as with ENet: clients talk to the server only, and [SceneMultiplayer] relays
/// client-to-client RPCs through it ([method MultiplayerPeer.is_server_relay_supported] is [code]true[/code]).
/// A packet sent now is delivered at the next poll at which its delay has passed: [method poll] here, or the
/// peers' own polls, which [SceneMultiplayer] runs every frame. Set each subtree's multiplayer before its nodes
/// enter the tree: spawners and synchronizers register with the multiplayer of their path when they enter.
/// ```gdscript
/// var network := LocalMultiplayerNetwork.new()
/// network.use_manual_clock = true
/// var server_mp := SceneMultiplayer.new()
/// server_mp.multiplayer_peer = network.create_server()
/// get_tree().set_multiplayer(server_mp, ^"/root/Server")
/// var client_mp := SceneMultiplayer.new()
/// client_mp.multiplayer_peer = network.create_client()
/// get_tree().set_multiplayer(client_mp, ^"/root/Client")
/// network.set_link_conditions(0, {"latency_ms": 100})
/// network.advance(100) # time passes; packets due by now are delivered
/// ```
#[derive(GodotClass)]
#[class(tool, base = RefCounted)]
pub struct LocalMultiplayerNetwork {
    shared: SharedRef,
    /// The seed of every random decision: client ids and each link's impairments (each client's link draws from
    /// its own stream). Set it before creating peers; once peers exist, setting it is refused with an error.
    /// Default 0.
    #[var(get = get_seed, set = set_seed, usage_flags = [EDITOR])]
    seed: PhantomVar<i64>,
    /// If [code]true[/code], time stands still except when [method advance] moves it: the session is then
    /// deterministic. If [code]false[/code] (default), it is real time since the network was made. Switching
    /// keeps every packet in flight's remaining delay; the manual clock starts at 0.
    #[var(get = is_using_manual_clock, set = set_use_manual_clock, usage_flags = [EDITOR])]
    use_manual_clock: PhantomVar<bool>,
    /// If [code]true[/code], clients created from now on get ids 2, 3, 4, ... in creation order (after the
    /// largest id in use). If [code]false[/code] (default), each gets a random positive 31-bit id drawn from
    /// [member seed], as Godot's own peers do ([method MultiplayerPeer.generate_unique_id]), so code that assumes
    /// small ids is caught.
    #[var(get = is_using_sequential_ids, set = set_sequential_ids, usage_flags = [EDITOR])]
    sequential_ids: PhantomVar<bool>,
    /// The largest packet any peer may send, in bytes (1 to 16777216, the default, as ENet's). A larger one is
    /// refused with [constant ERR_INVALID_PARAMETER].
    #[var(get = get_max_packet_size, set = set_max_packet_size, usage_flags = [EDITOR])]
    max_packet_size: PhantomVar<i64>,
    base: Base<RefCounted>,
}

#[godot_api]
impl IRefCounted for LocalMultiplayerNetwork {
    fn init(base: Base<RefCounted>) -> Self {
        Self {
            shared: Arc::new(Mutex::new(Shared {
                net: Network::new(0),
                clock: Clock::real(),
                objects: Vec::new(),
            })),
            seed: PhantomVar::default(),
            use_manual_clock: PhantomVar::default(),
            sequential_ids: PhantomVar::default(),
            max_packet_size: PhantomVar::default(),
            base,
        }
    }
}

#[godot_api]
impl LocalMultiplayerNetwork {
    /// [method set_link_conditions] and friends: the client-to-server direction.
    #[constant]
    const TO_SERVER: i64 = 1;
    /// [method set_link_conditions] and friends: the server-to-client direction.
    #[constant]
    const TO_CLIENT: i64 = 2;
    /// [method set_link_conditions] and friends: both directions.
    #[constant]
    const BOTH: i64 = 3;

    /// Creates the server (unique id 1), connected at once. A network has one server at a time: while it is
    /// open, this pushes an error and returns [code]null[/code].
    #[func]
    fn create_server(&mut self) -> Option<Gd<LocalMultiplayerPeer>> {
        let id = match lock(&self.shared).net.create_server() {
            Ok(id) => id,
            Err(e) => {
                godot_error!("LocalMultiplayerNetwork.create_server: {e}");
                return None;
            }
        };
        Some(self.make_peer(id))
    }

    /// Creates a client. It is [constant MultiplayerPeer.CONNECTION_CONNECTING] until the next poll, which
    /// connects it if a server exists (both emit [signal MultiplayerPeer.peer_connected]) or disconnects it if
    /// the server refuses new connections ([SceneMultiplayer] then emits [code]connection_failed[/code]); without
    /// a server it keeps waiting.
    #[func]
    fn create_client(&mut self) -> Gd<LocalMultiplayerPeer> {
        let id = lock(&self.shared).net.create_client();
        self.make_peer(id)
    }

    /// Connects waiting clients, delivers every packet whose time has come, and emits the peers' pending
    /// [signal MultiplayerPeer.peer_connected] and [signal MultiplayerPeer.peer_disconnected] signals. Each
    /// peer's own [method MultiplayerPeer.poll] (run every frame by its [SceneMultiplayer]) does the same for
    /// that peer; calling this is needed only for peers no [SceneMultiplayer] polls.
    #[func]
    fn poll(&mut self) {
        let pending: Vec<(InstanceId, Vec<Event>)> = {
            let mut shared = lock(&self.shared);
            shared.step();
            let objects = shared.objects.clone();
            objects
                .into_iter()
                .map(|(id, object)| (object, shared.net.take_events(id)))
                .collect()
        };
        for (object, events) in pending {
            if let Ok(peer) = Gd::<LocalMultiplayerPeer>::try_from_instance_id(object) {
                let mut object = peer.upcast::<Object>();
                for event in events {
                    let (signal, args) = signal_of(event);
                    object.emit_signal(signal, &args);
                }
            }
        }
    }

    /// With [member use_manual_clock], moves time forward by [param msec] milliseconds (fractions allowed), then
    /// polls (see [method poll]). Without it, or with a negative or non-finite [param msec], pushes an error and
    /// does nothing.
    #[func]
    fn advance(&mut self, msec: f64) {
        if let Err(why) = lock(&self.shared).clock.advance(msec) {
            godot_error!("LocalMultiplayerNetwork.advance({msec}): {why}");
            return;
        }
        self.poll();
    }

    /// Returns the network's time in milliseconds (the manual clock's, or real time since it was made).
    #[func]
    fn get_time_msec(&self) -> f64 {
        lock(&self.shared).clock.now_us() as f64 / 1000.0
    }

    /// Returns the time in milliseconds at which the next packet in flight is due, or -1 when none is.
    #[func]
    fn get_next_delivery_msec(&self) -> f64 {
        lock(&self.shared)
            .net
            .next_due()
            .map_or(-1.0, |due| due as f64 / 1000.0)
    }

    /// Changes the link between client [param peer_id] and the server, in one direction ([constant TO_SERVER],
    /// [constant TO_CLIENT]) or [constant BOTH]. [param settings] takes the names and ranges of
    /// [method LinkConditioner.configure] ([code]latency_ms[/code], [code]jitter_ms[/code], [code]loss[/code],
    /// [code]link_up[/code], ...); settings not named keep their value. [param peer_id] 0 changes every
    /// client's link and those of clients created later. Unreliable packets get every impairment; reliable ones
    /// only the delay and bandwidth, plus a retransmission timeout (twice [code]latency_ms[/code] plus four
    /// times [code]jitter_ms[/code], at least 20 ms) for each simulated loss, up to 8 in a row; while
    /// [code]link_up[/code] is [code]false[/code] they wait. Returns [constant ERR_INVALID_PARAMETER] (and
    /// changes nothing) for an unknown client, setting, value or direction.
    #[func]
    fn set_link_conditions(
        &mut self,
        peer_id: i64,
        settings: VarDictionary,
        #[opt(default = 3)] direction: i64,
    ) -> Error {
        const WHAT: &str = "LocalMultiplayerNetwork.set_link_conditions";
        let parsed = match link_settings::parse(&settings) {
            Ok(parsed) => parsed,
            Err(e) => return report_setting(WHAT, &e),
        };
        self.change_links(WHAT, peer_id, direction, |config| {
            config.set_all(parsed.iter().map(|(n, v)| (n.as_str(), v.clone())))
        })
    }

    /// Replaces the settings of client [param peer_id]'s link (0: every client's, now and later) with a
    /// [LinkConditioner] preset: [code]"clean"[/code], [code]"wifi"[/code], [code]"4g"[/code], [code]"3g"[/code],
    /// [code]"lossy"[/code] or [code]"satellite"[/code], in [param direction] ([constant BOTH] by default).
    #[func]
    fn apply_preset(
        &mut self,
        peer_id: i64,
        name: GString,
        #[opt(default = 3)] direction: i64,
    ) -> Error {
        const WHAT: &str = "LocalMultiplayerNetwork.apply_preset";
        let preset = match LinkConfig::preset(&name.to_string()) {
            Ok(preset) => preset,
            Err(e) => return report_setting(WHAT, &e),
        };
        self.change_links(WHAT, peer_id, direction, |config| {
            *config = preset.clone();
            Ok(())
        })
    }

    /// Cuts client [param peer_id] off (both directions of its link down) or restores it. While cut, its
    /// unreliable packets are lost and reliable ones wait; the connection itself stays open (as a cable pulled
    /// for less than a timeout): to end it, call [method MultiplayerPeer.disconnect_peer] on the server.
    /// [param peer_id] 0 cuts or restores every client.
    #[func]
    fn set_link_up(&mut self, peer_id: i64, up: bool) -> Error {
        self.change_links(
            "LocalMultiplayerNetwork.set_link_up",
            peer_id,
            Self::BOTH,
            |config| {
                config.link_up = up;
                Ok(())
            },
        )
    }

    /// Returns the settings of one direction ([constant TO_SERVER] or [constant TO_CLIENT]) of client
    /// [param peer_id]'s link (0: the settings new clients get), as a Dictionary in the form
    /// [method set_link_conditions] takes; empty (with an error) for an unknown client.
    #[func]
    fn get_link_conditions(&self, peer_id: i64, direction: i64) -> VarDictionary {
        let direction = match direction {
            Self::TO_SERVER => Direction::ToServer,
            Self::TO_CLIENT => Direction::ToClient,
            _ => {
                godot_error!("LocalMultiplayerNetwork.get_link_conditions: direction must be TO_SERVER (1) or TO_CLIENT (2), got {direction}");
                return VarDictionary::new();
            }
        };
        let shared = lock(&self.shared);
        match i32::try_from(peer_id)
            .ok()
            .and_then(|id| shared.net.link_config(id, direction))
        {
            Some(config) => link_settings::to_dictionary(config),
            None => {
                godot_error!("LocalMultiplayerNetwork.get_link_conditions: peer {peer_id} is not a client with a link to the server");
                VarDictionary::new()
            }
        }
    }

    /// Returns the ids of every peer this network has made and not forgotten (a peer is forgotten when its
    /// object is freed), in increasing order, closed ones included.
    #[func]
    fn get_peer_ids(&self) -> PackedInt32Array {
        lock(&self.shared)
            .net
            .peers()
            .into_iter()
            .map(|(id, _)| id)
            .collect()
    }

    /// Returns the counters: [code]"time_msec"[/code]; [code]"peers"[/code], a Dictionary from each peer's id to
    /// its counters (see [method LocalMultiplayerPeer.get_stats]); and [code]"links"[/code], from each connected
    /// client's id to [code]{"to_server": ..., "to_client": ...}[/code], each direction's counters as in
    /// [method LinkConditioner.get_stats] plus [code]"retransmitted"[/code] (simulated retransmissions of
    /// reliable packets).
    #[func]
    fn get_stats(&self) -> VarDictionary {
        let shared = lock(&self.shared);
        let mut peers = VarDictionary::new();
        let mut links = VarDictionary::new();
        for (id, _) in shared.net.peers() {
            peers.set(id, &peer_stats(&shared.net, id));
            if let Some(route) = link_stats(&shared.net, id) {
                links.set(id, &route);
            }
        }
        vdict! {
            "time_msec" => shared.clock.now_us() as f64 / 1000.0,
            "peers" => &peers,
            "links" => &links,
        }
    }

    /// Returns [member seed].
    #[func]
    fn get_seed(&self) -> i64 {
        lock(&self.shared).net.seed() as i64
    }

    /// Sets [member seed].
    #[func]
    fn set_seed(&mut self, seed: i64) {
        if let Err(peers) = lock(&self.shared).net.reseed(seed as u64) {
            godot_error!("LocalMultiplayerNetwork.seed: set the seed before creating peers (this network has {peers} already)");
        }
    }

    /// Returns [member use_manual_clock].
    #[func]
    fn is_using_manual_clock(&self) -> bool {
        lock(&self.shared).clock.is_manual()
    }

    /// Sets [member use_manual_clock].
    #[func]
    fn set_use_manual_clock(&mut self, manual: bool) {
        let mut shared = lock(&self.shared);
        if shared.clock.is_manual() == manual {
            return;
        }
        let (from, to) = shared.clock.switch(manual);
        shared.net.shift_time(from, to);
    }

    /// Returns [member sequential_ids].
    #[func]
    fn is_using_sequential_ids(&self) -> bool {
        lock(&self.shared).net.sequential_ids()
    }

    /// Sets [member sequential_ids].
    #[func]
    fn set_sequential_ids(&mut self, sequential: bool) {
        lock(&self.shared).net.set_sequential_ids(sequential);
    }

    /// Returns [member max_packet_size].
    #[func]
    fn get_max_packet_size(&self) -> i64 {
        lock(&self.shared).net.max_packet_size() as i64
    }

    /// Sets [member max_packet_size].
    #[func]
    fn set_max_packet_size(&mut self, size: i64) {
        if let Err(e) = lock(&self.shared).net.set_max_packet_size(size) {
            godot_error!("LocalMultiplayerNetwork.max_packet_size: {e}");
        }
    }
}

impl LocalMultiplayerNetwork {
    fn make_peer(&mut self, id: PeerId) -> Gd<LocalMultiplayerPeer> {
        let shared = Arc::clone(&self.shared);
        let peer = Gd::from_init_fn(|base| LocalMultiplayerPeer::attached(shared, id, base));
        lock(&self.shared).objects.push((id, peer.instance_id()));
        peer
    }

    fn change_links(
        &mut self,
        what: &str,
        peer_id: i64,
        direction: i64,
        change: impl Fn(&mut LinkConfig) -> Result<(), LinkConfigError>,
    ) -> Error {
        let directions: &[Direction] = match direction {
            Self::TO_SERVER => &[Direction::ToServer],
            Self::TO_CLIENT => &[Direction::ToClient],
            Self::BOTH => &[Direction::ToServer, Direction::ToClient],
            _ => {
                godot_error!("{what}: direction must be TO_SERVER (1), TO_CLIENT (2) or BOTH (3), got {direction}");
                return Error::ERR_INVALID_PARAMETER;
            }
        };
        let Ok(client) = i32::try_from(peer_id) else {
            godot_error!("{what}: peer {peer_id} is not a client with a link to the server");
            return Error::ERR_INVALID_PARAMETER;
        };
        let mut shared = lock(&self.shared);
        // Check every direction first, so a refusal changes nothing.
        for &d in directions {
            let mut config = match shared.net.link_config(client, d) {
                Some(config) => config.clone(),
                None => {
                    godot_error!(
                        "{what}: {}",
                        ConfigureError::<LinkConfigError>::NoLink(client)
                    );
                    return Error::ERR_INVALID_PARAMETER;
                }
            };
            if let Err(e) = change(&mut config) {
                return report_setting(what, &e);
            }
        }
        for &d in directions {
            if let Err(e) = shared.net.configure_link(client, d, &change) {
                godot_error!("{what}: {e}");
                return Error::ERR_INVALID_PARAMETER;
            }
        }
        Error::OK
    }
}

fn report_setting(what: &str, error: &LinkConfigError) -> Error {
    godot_error!("{what}: {error}");
    error.error_code()
}

/// The signal an event is emitted as, with its argument.
fn signal_of(event: Event) -> (&'static str, [Variant; 1]) {
    let (signal, id) = match event {
        Event::Connected(id) => ("peer_connected", id),
        Event::Disconnected(id) => ("peer_disconnected", id),
    };
    (signal, [Variant::from(i64::from(id))])
}

fn peer_stats(net: &Network, id: PeerId) -> VarDictionary {
    let stats = net.peer_stats(id).unwrap_or_default();
    vdict! {
        "packets_sent" => stats.packets_sent as i64,
        "bytes_sent" => stats.bytes_sent as i64,
        "packets_received" => stats.packets_received as i64,
        "bytes_received" => stats.bytes_received as i64,
        "dropped_out_of_order" => stats.dropped_out_of_order as i64,
        "dropped_disconnected" => stats.dropped_disconnected as i64,
        "available" => net.available(id) as i64,
    }
}

fn link_stats(net: &Network, client: PeerId) -> Option<VarDictionary> {
    let route = net.route_stats(client)?;
    let direction = |stats, queued| {
        let mut dict = link_settings::direction_stats(stats, queued);
        dict.set("retransmitted", stats.retransmitted as i64);
        dict
    };
    Some(vdict! {
        "to_server" => &direction(&route.to_server, route.to_server_queued),
        "to_client" => &direction(&route.to_client, route.to_client_queued),
    })
}

/// One peer of a [LocalMultiplayerNetwork]: the server or a client, for a [SceneMultiplayer].
///
/// Get one from [method LocalMultiplayerNetwork.create_server] or [method LocalMultiplayerNetwork.create_client]
/// and assign it to [member MultiplayerAPI.multiplayer_peer]. It implements the whole [MultiplayerPeer]
/// contract: the target peer (0 for everyone, an id for one peer, [code]-id[/code] for everyone but that
/// peer; a client's packets always go to the server, which relays them), the transfer mode and channel
/// (0 to 255), the sender, mode and channel of the next packet, [signal MultiplayerPeer.peer_connected] and
/// [signal MultiplayerPeer.peer_disconnected], [method MultiplayerPeer.close],
/// [method MultiplayerPeer.disconnect_peer] and [member MultiplayerPeer.refuse_new_connections].
///
/// Transfer modes keep their meaning under the link's impairments: [constant MultiplayerPeer.TRANSFER_MODE_RELIABLE]
/// is delayed but never lost, duplicated or reordered within its channel;
/// [constant MultiplayerPeer.TRANSFER_MODE_UNRELIABLE] gets every impairment;
/// [constant MultiplayerPeer.TRANSFER_MODE_UNRELIABLE_ORDERED] also drops a packet that arrives older than the
/// newest already delivered on its channel (counted as [code]dropped_out_of_order[/code]).
///
/// A peer made with [code]LocalMultiplayerPeer.new()[/code] belongs to no network: it stays disconnected and
/// refuses packets with [constant ERR_UNCONFIGURED]. Freeing a peer closes it.
#[derive(GodotClass)]
#[class(tool, base = MultiplayerPeerExtension)]
pub struct LocalMultiplayerPeer {
    shared: Option<SharedRef>,
    id: PeerId,
    target_peer: PeerId,
    transfer_mode: TransferMode,
    transfer_channel: i64,
    /// The packet last handed to Godot by `_get_packet`; kept so its pointer stays valid until the next call.
    current: Bytes,
    base: Base<MultiplayerPeerExtension>,
}

impl LocalMultiplayerPeer {
    fn attached(shared: SharedRef, id: PeerId, base: Base<MultiplayerPeerExtension>) -> Self {
        let mut peer = Self::init(base);
        peer.shared = Some(shared);
        peer.id = id;
        peer
    }

    fn shared(&self) -> Option<MutexGuard<'_, Shared>> {
        self.shared.as_ref().map(lock)
    }
}

impl Drop for LocalMultiplayerPeer {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            let mut shared = lock(&shared);
            shared.net.remove(self.id);
            let id = self.id;
            shared.objects.retain(|(peer, _)| *peer != id);
        }
    }
}

fn to_godot_mode(mode: TransferMode) -> GodotMode {
    match mode {
        TransferMode::Unreliable => GodotMode::UNRELIABLE,
        TransferMode::UnreliableOrdered => GodotMode::UNRELIABLE_ORDERED,
        TransferMode::Reliable => GodotMode::RELIABLE,
    }
}

#[godot_api]
impl IMultiplayerPeerExtension for LocalMultiplayerPeer {
    fn init(base: Base<MultiplayerPeerExtension>) -> Self {
        Self {
            shared: None,
            id: 0,
            target_peer: 0,
            transfer_mode: TransferMode::Reliable,
            transfer_channel: 0,
            current: Bytes::new(),
            base,
        }
    }

    unsafe fn get_packet_rawptr(
        &mut self,
        r_buffer: RawPtr<*mut RawPtr<*const u8>>,
        r_buffer_size: RawPtr<*mut i32>,
    ) -> Error {
        ffi::guard("LocalMultiplayerPeer.get_packet", || {
            let id = self.id;
            let packet = self.shared().and_then(|mut s| s.net.pop(id));
            let packet = packet.map(|p| p.data);
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
        const WHAT: &str = "LocalMultiplayerPeer.put_packet";
        // SAFETY: Godot keeps `p_buffer_size` bytes at `p_buffer` valid for this call; they are copied here.
        unsafe {
            ffi::guard_put(WHAT, p_buffer, p_buffer_size, |data| {
                let data = Bytes::copy_from_slice(data);
                let (id, target, mode, channel) = (
                    self.id,
                    self.target_peer,
                    self.transfer_mode,
                    self.transfer_channel,
                );
                let Some(mut shared) = self.shared() else {
                    godot_error!("{WHAT}: this peer belongs to no network; create peers with LocalMultiplayerNetwork");
                    return Error::ERR_UNCONFIGURED;
                };
                let now = shared.clock.now_us();
                match shared.net.send(id, now, target, mode, channel, data) {
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
        self.shared().map_or(0, |s| {
            s.net.available(self.id).try_into().unwrap_or(i32::MAX)
        })
    }

    fn get_max_packet_size(&self) -> i32 {
        self.shared().map_or(0, |s| {
            s.net.max_packet_size().try_into().unwrap_or(i32::MAX)
        })
    }

    fn get_packet_channel(&self) -> i32 {
        self.shared()
            .and_then(|s| s.net.front(self.id).map(|p| i32::from(p.channel)))
            .unwrap_or(0)
    }

    fn get_packet_mode(&self) -> GodotMode {
        self.shared()
            .and_then(|s| s.net.front(self.id).map(|p| to_godot_mode(p.mode)))
            .unwrap_or(GodotMode::RELIABLE)
    }

    fn set_transfer_channel(&mut self, channel: i32) {
        if !(0..=MAX_CHANNEL).contains(&i64::from(channel)) {
            godot_error!("LocalMultiplayerPeer.transfer_channel: channel must be between 0 and {MAX_CHANNEL}, got {channel}; kept {}", self.transfer_channel);
            return;
        }
        self.transfer_channel = i64::from(channel);
    }

    fn get_transfer_channel(&self) -> i32 {
        self.transfer_channel as i32
    }

    fn set_transfer_mode(&mut self, mode: GodotMode) {
        self.transfer_mode = match mode {
            GodotMode::UNRELIABLE => TransferMode::Unreliable,
            GodotMode::UNRELIABLE_ORDERED => TransferMode::UnreliableOrdered,
            _ => TransferMode::Reliable,
        };
    }

    fn get_transfer_mode(&self) -> GodotMode {
        to_godot_mode(self.transfer_mode)
    }

    fn set_target_peer(&mut self, peer: i32) {
        self.target_peer = peer;
    }

    fn get_packet_peer(&self) -> i32 {
        self.shared()
            .and_then(|s| s.net.front(self.id).map(|p| p.from))
            .unwrap_or(0)
    }

    fn is_server(&self) -> bool {
        self.shared().is_some_and(|s| s.net.is_server(self.id))
    }

    fn poll(&mut self) {
        let id = self.id;
        let events = match self.shared() {
            Some(mut shared) => {
                shared.step();
                shared.net.take_events(id)
            }
            None => return,
        };
        for event in events {
            // Through `base_mut`, so handlers (SceneMultiplayer's) may call back into this peer.
            let (signal, args) = signal_of(event);
            self.base_mut().emit_signal(signal, &args);
        }
    }

    fn close(&mut self) {
        let id = self.id;
        if let Some(mut shared) = self.shared() {
            shared.net.close(id);
        }
    }

    fn disconnect_peer(&mut self, peer: i32, force: bool) {
        let id = self.id;
        if let Some(mut shared) = self.shared() {
            if let Err(e) = shared.net.disconnect_peer(id, peer, force) {
                godot_error!("LocalMultiplayerPeer.disconnect_peer({peer}): {e}");
            }
        }
    }

    fn get_unique_id(&self) -> i32 {
        self.id
    }

    fn set_refuse_new_connections(&mut self, enable: bool) {
        let id = self.id;
        match self.shared() {
            Some(mut shared) if shared.net.is_server(id) => {
                shared.net.set_refusing_new_connections(enable)
            }
            _ => godot_error!("LocalMultiplayerPeer.refuse_new_connections: only the server accepts or refuses connections"),
        }
    }

    fn is_refusing_new_connections(&self) -> bool {
        self.shared()
            .is_some_and(|s| s.net.is_server(self.id) && s.net.is_refusing_new_connections())
    }

    fn is_server_relay_supported(&self) -> bool {
        true
    }

    fn get_connection_status(&self) -> ConnectionStatus {
        match self.shared().map(|s| s.net.status(self.id)) {
            Some(Status::Connected) => ConnectionStatus::CONNECTED,
            Some(Status::Connecting) => ConnectionStatus::CONNECTING,
            _ => ConnectionStatus::DISCONNECTED,
        }
    }
}

#[godot_api]
impl LocalMultiplayerPeer {
    /// Returns this peer's counters: [code]packets_sent[/code] and [code]bytes_sent[/code] (one per
    /// destination), [code]packets_received[/code] and [code]bytes_received[/code] (delivered to this peer),
    /// [code]dropped_out_of_order[/code] (unreliable-ordered packets that arrived late and were dropped),
    /// [code]dropped_disconnected[/code] (in flight or unread when a connection ended), [code]available[/code]
    /// (readable now); and for a client, [code]"link"[/code]: its link's counters as in
    /// [method LocalMultiplayerNetwork.get_stats].
    #[func]
    fn get_stats(&self) -> VarDictionary {
        let Some(shared) = self.shared() else {
            return VarDictionary::new();
        };
        let mut stats = peer_stats(&shared.net, self.id);
        if let Some(link) = link_stats(&shared.net, self.id) {
            stats.set("link", &link);
        }
        stats
    }
}
