//! `LocalMultiplayerNetwork`: creates the peers, owns the clock, and sets each client's link.

use std::sync::{Arc, Mutex};

use godot::global::Error;
use godot::prelude::*;
use peerkit_core::link::conditioner::Directions;
use peerkit_core::link::LinkConfigError;
use peerkit_core::multiplayer::{ConfigureError, Direction, Event, Network, PeerId};

use crate::classes::clock::Clock;
use crate::classes::link_settings;

use super::peer::LocalMultiplayerPeer;
use super::{link_stats, lock, peer_stats, signal_of, Shared, SharedRef};
use crate::classes::live_links::Tracked;

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
    /// This object's place in [`PeerkitLinks`](super::live_links)' list, while it lives.
    _tracked: Tracked,
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
            _tracked: Tracked::new(&base),
            base,
        }
    }
}

#[godot_api]
impl LocalMultiplayerNetwork {
    /// [method set_link_conditions] and friends: the client-to-server direction.
    #[constant]
    const DIRECTION_TO_SERVER: i64 = 1;
    /// [method set_link_conditions] and friends: the server-to-client direction.
    #[constant]
    const DIRECTION_TO_CLIENT: i64 = 2;
    /// [method set_link_conditions] and friends: both directions.
    #[constant]
    const DIRECTION_BOTH: i64 = 3;

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

    /// Changes the link between client [param peer_id] and the server, in one direction ([constant DIRECTION_TO_SERVER],
    /// [constant DIRECTION_TO_CLIENT]) or [constant DIRECTION_BOTH]. [param settings] takes the names and ranges of
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
        match link_settings::settings_change(WHAT, &settings) {
            Ok(change) => self.change_links(WHAT, peer_id, direction, change),
            Err(code) => code,
        }
    }

    /// Replaces the settings of client [param peer_id]'s link (0: every client's, now and later) with a
    /// [LinkConditioner] preset: [code]"clean"[/code], [code]"wifi"[/code], [code]"4g"[/code], [code]"3g"[/code],
    /// [code]"lossy"[/code] or [code]"satellite"[/code], in [param direction] ([constant DIRECTION_BOTH] by default).
    #[func]
    fn apply_preset(
        &mut self,
        peer_id: i64,
        name: GString,
        #[opt(default = 3)] direction: i64,
    ) -> Error {
        const WHAT: &str = "LocalMultiplayerNetwork.apply_preset";
        match link_settings::preset_change(WHAT, &name.to_string()) {
            Ok(change) => self.change_links(WHAT, peer_id, direction, change),
            Err(code) => code,
        }
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
            Self::DIRECTION_BOTH,
            Box::new(move |config| {
                config.link_up = up;
                Ok(())
            }),
        )
    }

    /// Returns the settings of one direction ([constant DIRECTION_TO_SERVER] or [constant DIRECTION_TO_CLIENT]) of client
    /// [param peer_id]'s link (0: the settings new clients get), as a Dictionary in the form
    /// [method set_link_conditions] takes; empty (with an error) for an unknown client.
    #[func]
    fn get_link_conditions(&self, peer_id: i64, direction: i64) -> VarDictionary {
        let direction = match link_settings::one_direction(
            "LocalMultiplayerNetwork.get_link_conditions",
            direction,
            link_settings::TO_SERVER_TO_CLIENT,
        ) {
            Some(true) => Direction::ToServer,
            Some(false) => Direction::ToClient,
            None => return VarDictionary::new(),
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
        change: link_settings::Change,
    ) -> Error {
        let directions: &[Direction] =
            match link_settings::directions(what, direction, link_settings::TO_SERVER_TO_CLIENT) {
                Some(Directions::Outbound) => &[Direction::ToServer],
                Some(Directions::Inbound) => &[Direction::ToClient],
                Some(Directions::Both) => &[Direction::ToServer, Direction::ToClient],
                None => return Error::ERR_INVALID_PARAMETER,
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
                return link_settings::report(what, &e);
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
