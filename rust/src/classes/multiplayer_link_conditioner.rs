//! `MultiplayerLinkConditioner`: the Godot face of [`peerkit_core::multiplayer::conditioner`]. Moves packets and
//! peer events between the wrapped MultiplayerPeer and the core's per-peer links, and feeds them the clock; all
//! decisions are the core's.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use bytes::Bytes;
use godot::classes::multiplayer_peer::{ConnectionStatus, TransferMode as GodotMode};
use godot::classes::{
    IMultiplayerPeerExtension, MultiplayerPeer, MultiplayerPeerExtension, PacketPeer,
};
use godot::global::Error;
use godot::meta::conv::RawPtr;
use godot::obj::EngineEnum;
use godot::prelude::*;
use peerkit_core::link::conditioner::Directions;
use peerkit_core::link::LinkConfigError;
use peerkit_core::multiplayer::conditioner::{LinkChangeError, LinkPairStats, PeerLinks};
use peerkit_core::multiplayer::{PeerId, TransferMode, MAX_CHANNEL, MAX_PACKET_SIZE_LIMIT};

use super::clock::Clock;
use super::error::{refusal_hint, GodotErrorCode};
use super::live_links::{self, Tracked};
use super::local_multiplayer::LocalMultiplayerPeer;
use super::wrapping::wraps;
use super::{ffi, link_settings, transfer_mode};

/// What a WebSocketMultiplayerPeer adds to each packet: its largest packet is its outbound buffer less this.
const WEBSOCKET_HEADER: i64 = 9;

/// A remote peer connected to the wrapped peer, or left it, as its signals said.
#[derive(Debug, Clone, Copy)]
enum PeerEvent {
    Connected(PeerId),
    Disconnected(PeerId),
}

/// The wrapped peer and the connections to its two signals, which queue what they say for the next poll (the
/// callables hold only the queue, so the wrapped peer may emit while this object is busy).
struct Wrapped {
    peer: Gd<MultiplayerPeer>,
    connected: Callable,
    disconnected: Callable,
}

/// A [MultiplayerPeer] that wraps any other MultiplayerPeer ([ENetMultiplayerPeer], [WebSocketMultiplayerPeer],
/// [WebRTCMultiplayerPeer], a Steam peer, [LocalMultiplayerPeer]) and makes its network worse on purpose, per
/// remote peer and per direction.
///
/// Give it to [SceneMultiplayer] instead of the peer it wraps and change nothing else: it passes the whole
/// [MultiplayerPeer] contract through (connection status, unique id, [signal MultiplayerPeer.peer_connected] and
/// [signal MultiplayerPeer.peer_disconnected], target peer, transfer mode and channel of every packet both ways,
/// [member MultiplayerPeer.refuse_new_connections], [method MultiplayerPeer.disconnect_peer],
/// [method MultiplayerPeer.close], server relay). Each remote peer gets two simulated links, outbound (what
/// this peer sends it) and inbound (what it sends this peer), with the settings and presets of
/// [LinkConditioner]. Transfer modes keep their meaning, as in [LocalMultiplayerNetwork]:
/// [constant MultiplayerPeer.TRANSFER_MODE_UNRELIABLE] gets every impairment;
/// [constant MultiplayerPeer.TRANSFER_MODE_UNRELIABLE_ORDERED] also drops what comes out older than the newest
/// of its channel already passed on; [constant MultiplayerPeer.TRANSFER_MODE_RELIABLE] is never lost,
/// duplicated or reordered within its channel, pays each simulated loss as a retransmission timeout and waits
/// while a link is cut. The wrapped transport still does its own work underneath (ENet's reliability, for
/// instance): the impairment comes on top of the real network's.
/// ```gdscript
/// var enet := ENetMultiplayerPeer.new()
/// enet.create_client("127.0.0.1", 9999)
/// multiplayer.multiplayer_peer = MultiplayerLinkConditioner.wrap(enet, "3g")
/// ```
/// Packets move when [method MultiplayerPeer.poll] runs ([SceneMultiplayer] polls every frame): the resolution
/// of the delays is the frame time. With [member use_manual_clock], time moves only through [method advance]; the
/// same [member seed] and the same remote ids then give the same impairments on every run.
#[derive(GodotClass)]
#[class(tool, base = MultiplayerPeerExtension)]
pub struct MultiplayerLinkConditioner {
    /// The MultiplayerPeer whose network is simulated. Set it before giving this peer to a [SceneMultiplayer]
    /// (or use [method wrap]), best right after [code]create_server[/code] or [code]create_client[/code]: a
    /// server wrapped later knows of clients that connected before only once they send something.
    /// Once wrapped, use the peer through this one: [method MultiplayerPeer.close] and
    /// [method MultiplayerPeer.disconnect_peer] here, not on the wrapped peer (this peer reads its connection
    /// state after each of its own calls). Setting another drops what the links hold (counted as
    /// [code]dropped_disconnected[/code]). Refused, with an error, when it is this peer or wraps it.
    #[var(get = get_inner, set = set_inner, usage_flags = [EDITOR])]
    inner: PhantomVar<Option<Gd<MultiplayerPeer>>>,
    /// The seed of every random decision; each remote peer's links draw from it and the peer's id. Setting it
    /// restarts every link's random stream; packets in flight keep their schedule. Default 0.
    #[var(get = get_seed, set = set_seed, usage_flags = [EDITOR])]
    seed: PhantomVar<i64>,
    /// When [code]true[/code], time stands still except through [method advance]. Turning it on starts the
    /// manual clock at 0; packets in flight keep their remaining delay.
    #[var(get = is_using_manual_clock, set = set_use_manual_clock, usage_flags = [EDITOR])]
    use_manual_clock: PhantomVar<bool>,
    wrapped: Option<Wrapped>,
    /// The wrapped peer's largest packet, read when it is set.
    max_packet_size: i64,
    /// The wrapped peer's status and relay support when last asked. Its status leaves CONNECTED only in its
    /// poll, close or disconnect_peer, which this peer calls and then asks again; so while it reads CONNECTED
    /// this is the answer (SceneMultiplayer asks around every packet), and otherwise the wrapped peer is asked.
    status: Cell<ConnectionStatus>,
    relay: Cell<bool>,
    /// The wrapped peer's unique id, once it has one (it is fixed from create_server or create_client until it
    /// closes): SceneMultiplayer asks for it around every packet.
    unique_id: Cell<Option<i32>>,
    /// The target, mode and channel last set on the wrapped peer, so they are set only when they change.
    forwarded: Option<(PeerId, TransferMode, u8)>,
    links: PeerLinks,
    clock: Clock,
    /// What the wrapped peer's signals said since the last poll.
    events: Rc<RefCell<VecDeque<PeerEvent>>>,
    target_peer: PeerId,
    transfer_mode: TransferMode,
    transfer_channel: u8,
    /// The packet last handed to Godot by `_get_packet`; kept so its pointer stays valid until the next call.
    current: Bytes,
    /// This object's place in [`PeerkitLinks`](super::live_links)' list, while it lives.
    _tracked: Tracked,
    base: Base<MultiplayerPeerExtension>,
}

#[godot_api]
impl IMultiplayerPeerExtension for MultiplayerLinkConditioner {
    fn init(base: Base<MultiplayerPeerExtension>) -> Self {
        Self {
            inner: PhantomVar::default(),
            seed: PhantomVar::default(),
            use_manual_clock: PhantomVar::default(),
            wrapped: None,
            max_packet_size: 0,
            status: Cell::new(ConnectionStatus::DISCONNECTED),
            relay: Cell::new(false),
            unique_id: Cell::new(None),
            forwarded: None,
            links: starting_links(),
            clock: Clock::real(),
            events: Rc::default(),
            target_peer: 0,
            transfer_mode: TransferMode::Reliable,
            transfer_channel: 0,
            current: Bytes::new(),
            _tracked: Tracked::new(&base),
            base,
        }
    }

    unsafe fn get_packet_rawptr(
        &mut self,
        r_buffer: RawPtr<*mut RawPtr<*const u8>>,
        r_buffer_size: RawPtr<*mut i32>,
    ) -> Error {
        ffi::guard("MultiplayerLinkConditioner.get_packet", || {
            let packet = self.links.pop().map(|p| p.data);
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
        const WHAT: &str = "MultiplayerLinkConditioner.put_packet";
        // SAFETY: Godot keeps `p_buffer_size` bytes at `p_buffer` valid for this call; they are copied here.
        unsafe { ffi::guard_put(WHAT, p_buffer, p_buffer_size, |data| self.put(WHAT, data)) }
    }

    fn get_available_packet_count(&self) -> i32 {
        i32::try_from(self.links.available()).unwrap_or(i32::MAX)
    }

    fn get_max_packet_size(&self) -> i32 {
        i32::try_from(self.max_packet_size).unwrap_or(i32::MAX)
    }

    fn get_packet_channel(&self) -> i32 {
        self.links.front().map_or(0, |p| i32::from(p.channel))
    }

    fn get_packet_mode(&self) -> GodotMode {
        self.links
            .front()
            .map_or(GodotMode::RELIABLE, |p| transfer_mode::to_godot(p.mode))
    }

    fn set_transfer_channel(&mut self, channel: i32) {
        match u8::try_from(channel) {
            Ok(channel) => self.transfer_channel = channel,
            Err(_) => godot_error!("MultiplayerLinkConditioner.transfer_channel: channel must be between 0 and {MAX_CHANNEL}, got {channel}; kept {}", self.transfer_channel),
        }
    }

    fn get_transfer_channel(&self) -> i32 {
        i32::from(self.transfer_channel)
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
        self.links.front().map_or(0, |p| p.from)
    }

    fn is_server(&self) -> bool {
        self.get_unique_id() == 1
    }

    fn poll(&mut self) {
        let Some(mut inner) = self.inner_peer() else {
            return;
        };
        inner.poll();
        if self.observe(&inner) == ConnectionStatus::DISCONNECTED {
            self.unique_id.set(None);
        }
        let events = self.take_events();
        let now = self.clock.now_us();
        self.pull(&mut inner, now);
        self.links.poll_inbound(now);
        push(&mut inner, &mut self.links, &mut self.forwarded, now);
        self.emit(events);
    }

    fn close(&mut self) {
        if let Some(mut inner) = self.inner_peer() {
            inner.close();
            self.observe(&inner);
        }
        self.unique_id.set(None);
        self.links.clear();
        let events = self.take_events();
        self.emit(events);
    }

    fn disconnect_peer(&mut self, peer: i32, force: bool) {
        if let Some(mut inner) = self.inner_peer() {
            inner.disconnect_peer_ex(peer).force(force).done();
            self.observe(&inner);
        }
        let events = self.take_events();
        self.emit(events);
    }

    fn get_unique_id(&self) -> i32 {
        if let Some(id) = self.unique_id.get() {
            return id;
        }
        // A closed ENet peer answers with an error: ask only an open one (0 otherwise, as Godot's peers say then).
        match self.inner_ref() {
            Some(p) if p.get_connection_status() != ConnectionStatus::DISCONNECTED => {
                let id = p.get_unique_id();
                if id != 0 {
                    self.unique_id.set(Some(id));
                }
                id
            }
            _ => 0,
        }
    }

    fn set_refuse_new_connections(&mut self, enable: bool) {
        match self.inner_peer() {
            Some(mut inner) => inner.set_refuse_new_connections(enable),
            None => godot_error!("MultiplayerLinkConditioner.refuse_new_connections: no inner peer; set `inner` (or use wrap()) first"),
        }
    }

    fn is_refusing_new_connections(&self) -> bool {
        self.inner_ref()
            .is_some_and(|p| p.is_refusing_new_connections())
    }

    fn is_server_relay_supported(&self) -> bool {
        if self.status.get() != ConnectionStatus::CONNECTED {
            if let Some(inner) = self.inner_ref() {
                self.observe(inner);
            }
        }
        self.relay.get()
    }

    fn get_connection_status(&self) -> ConnectionStatus {
        match (self.status.get(), self.inner_ref()) {
            (ConnectionStatus::CONNECTED, Some(_)) => ConnectionStatus::CONNECTED,
            (_, Some(inner)) => self.observe(inner),
            (_, None) => ConnectionStatus::DISCONNECTED,
        }
    }
}

#[godot_api]
impl MultiplayerLinkConditioner {
    /// Direction: what this peer sends to the remote peer.
    #[constant]
    const DIRECTION_OUTBOUND: i64 = 1;
    /// Direction: what the remote peer sends to this peer.
    #[constant]
    const DIRECTION_INBOUND: i64 = 2;
    /// Direction: both [constant DIRECTION_OUTBOUND] and [constant DIRECTION_INBOUND].
    #[constant]
    const DIRECTION_BOTH: i64 = 3;

    /// Returns a new conditioner wrapping [param peer], with [param preset] (a [LinkConditioner] preset name,
    /// such as [code]"3g"[/code]) applied to every remote peer in [param direction], or clean links for
    /// [code]""[/code]. The one line to put a game on a bad network:
    /// [code]multiplayer.multiplayer_peer = MultiplayerLinkConditioner.wrap(peer, "3g")[/code].
    ///
    /// By default ([constant DIRECTION_OUTBOUND]) the preset applies to what this side sends, so when every side
    /// of the game wraps its peer (host and join running the same code), each direction of the path between two
    /// sides goes through the preset once: the path is the preset's. When only one side can be wrapped (a server
    /// you do not build), pass [constant DIRECTION_BOTH] for that side to impair both directions.
    ///
    /// A debug tool must not break the game it wraps: an unknown preset or direction pushes an error and the
    /// peer is still wrapped, with clean links (or outbound), so the game runs on. A null [param peer] pushes an
    /// error and returns [code]null[/code].
    #[func]
    fn wrap(
        peer: Option<Gd<MultiplayerPeer>>,
        #[opt(default = "")] preset: GString,
        #[opt(default = 1)] direction: i64,
    ) -> Option<Gd<Self>> {
        const WHAT: &str = "MultiplayerLinkConditioner.wrap";
        let Some(peer) = peer else {
            godot_error!("{WHAT}: peer is null; pass the MultiplayerPeer to wrap (an ENetMultiplayerPeer after create_server() or create_client(), say)");
            return None;
        };
        let directions =
            link_settings::directions(WHAT, direction, link_settings::OUTBOUND_INBOUND)
                .unwrap_or(Directions::Outbound);
        let preset = preset.to_string();
        let change = if preset.is_empty() {
            None
        } else {
            match link_settings::preset_change(WHAT, &preset) {
                Ok(change) => Some(change),
                Err(_) => {
                    godot_error!("{WHAT}: the game goes on with clean links (nothing impaired) until a known preset is applied");
                    None
                }
            }
        };
        let mut conditioner = Self::new_gd();
        {
            let mut this = conditioner.bind_mut();
            this.set_inner(Some(peer));
            this.wrapped.as_ref()?;
            if let Some(change) = change {
                let _ = this.links.configure(0, directions, &change);
            }
        }
        Some(conditioner)
    }

    /// Returns the wrapped peer, or [code]null[/code].
    #[func]
    fn get_inner(&self) -> Option<Gd<MultiplayerPeer>> {
        self.inner_peer()
    }

    /// Sets [member inner].
    #[func]
    fn set_inner(&mut self, peer: Option<Gd<MultiplayerPeer>>) {
        if let Some(candidate) = &peer {
            if wraps(
                &candidate.clone().upcast::<PacketPeer>(),
                self.base().instance_id(),
            ) {
                godot_error!("MultiplayerLinkConditioner.inner: a MultiplayerLinkConditioner cannot wrap itself, directly or through other peers");
                return;
            }
        }
        if let Some(mut old) = self.wrapped.take() {
            old.peer.disconnect("peer_connected", &old.connected);
            old.peer.disconnect("peer_disconnected", &old.disconnected);
        }
        let dropped = self.links.clear();
        if dropped > 0 {
            godot_warn!("MultiplayerLinkConditioner.inner: the new inner peer replaces the old one; {dropped} packets the links held for the old one were dropped (counted in get_stats().dropped_disconnected)");
        }
        self.events.borrow_mut().clear();
        self.max_packet_size = peer.as_ref().map_or(0, max_packet_size_of);
        self.forwarded = None;
        self.unique_id.set(None);
        self.status.set(ConnectionStatus::DISCONNECTED);
        self.relay.set(false);
        if let Some(p) = &peer {
            self.observe(p);
        }
        let Some(mut peer) = peer else {
            return;
        };
        let queue = |connected: bool| {
            let events = Rc::clone(&self.events);
            Callable::from_fn("MultiplayerLinkConditioner.inner_signal", move |args| {
                if let Some(id) = args.first().and_then(|id| id.try_to::<i64>().ok()) {
                    let id = id as PeerId;
                    events.borrow_mut().push_back(if connected {
                        PeerEvent::Connected(id)
                    } else {
                        PeerEvent::Disconnected(id)
                    });
                }
            })
        };
        let (connected, disconnected) = (queue(true), queue(false));
        peer.connect("peer_connected", &connected);
        peer.connect("peer_disconnected", &disconnected);
        // A client wrapped once connected told of its server already: its one remote peer is the server. (A
        // server's clients cannot be listed; one that connected before shows up when it sends something.)
        if peer.get_connection_status() == ConnectionStatus::CONNECTED && peer.get_unique_id() != 1
        {
            self.links.connect(1);
        }
        self.wrapped = Some(Wrapped {
            peer,
            connected,
            disconnected,
        });
    }

    /// Changes the links with remote peer [param peer_id] (0: every remote peer's, and those of peers that
    /// connect later) in [param direction] ([constant DIRECTION_OUTBOUND], [constant DIRECTION_INBOUND] or
    /// [constant DIRECTION_BOTH], the default). [param settings] takes the names and ranges of
    /// [method LinkConditioner.configure]; settings not named keep their value. Reliable packets take only the
    /// delay and bandwidth, plus a retransmission timeout (twice [code]latency_ms[/code] plus four times
    /// [code]jitter_ms[/code], at least 20 ms) per simulated loss, up to 8 in a row; while [code]link_up[/code]
    /// is [code]false[/code] they wait. Returns [constant ERR_INVALID_PARAMETER] (and changes nothing) for a peer
    /// that is not connected, or an unknown setting, value or direction.
    #[func]
    fn set_link_conditions(
        &mut self,
        peer_id: i64,
        settings: VarDictionary,
        #[opt(default = 3)] direction: i64,
    ) -> Error {
        const WHAT: &str = "MultiplayerLinkConditioner.set_link_conditions";
        match link_settings::settings_change(WHAT, &settings) {
            Ok(change) => self.change(WHAT, peer_id, direction, change),
            Err(code) => code,
        }
    }

    /// Replaces the settings of the links with remote peer [param peer_id] (0: every one, now and later) with a
    /// [LinkConditioner] preset ([code]"clean"[/code], [code]"wifi"[/code], [code]"4g"[/code], [code]"3g"[/code],
    /// [code]"lossy"[/code] or [code]"satellite"[/code]) in [param direction] ([constant DIRECTION_BOTH] by
    /// default).
    #[func]
    fn apply_preset(
        &mut self,
        peer_id: i64,
        name: GString,
        #[opt(default = 3)] direction: i64,
    ) -> Error {
        const WHAT: &str = "MultiplayerLinkConditioner.apply_preset";
        match link_settings::preset_change(WHAT, &name.to_string()) {
            Ok(change) => self.change(WHAT, peer_id, direction, change),
            Err(code) => code,
        }
    }

    /// Cuts the links with remote peer [param peer_id] (0: every one, now and later) in both directions, or
    /// restores them. While cut, unreliable packets are lost and reliable ones wait; the connection itself stays
    /// open (the wrapped transport may still time it out, as over a real pulled cable).
    #[func]
    fn set_link_up(&mut self, peer_id: i64, up: bool) -> Error {
        self.change(
            "MultiplayerLinkConditioner.set_link_up",
            peer_id,
            Self::DIRECTION_BOTH,
            Box::new(move |config| {
                config.link_up = up;
                Ok(())
            }),
        )
    }

    /// Returns the settings of one direction ([constant DIRECTION_OUTBOUND] or [constant DIRECTION_INBOUND]) of
    /// the links with remote peer [param peer_id] (0: what peers that connect later get), as a Dictionary in the
    /// form [method set_link_conditions] takes; empty (with an error) for a peer that is not connected.
    #[func]
    fn get_link_conditions(&self, peer_id: i64, direction: i64) -> VarDictionary {
        const WHAT: &str = "MultiplayerLinkConditioner.get_link_conditions";
        let Some(outbound) =
            link_settings::one_direction(WHAT, direction, link_settings::OUTBOUND_INBOUND)
        else {
            return VarDictionary::new();
        };
        match i32::try_from(peer_id)
            .ok()
            .and_then(|id| self.links.config(id, outbound))
        {
            Some(config) => link_settings::to_dictionary(config),
            None => {
                godot_error!("{WHAT}: peer {peer_id} is not connected to this one");
                VarDictionary::new()
            }
        }
    }

    /// Returns the ids of the remote peers connected now, in increasing order.
    #[func]
    fn get_peer_ids(&self) -> PackedInt32Array {
        self.links.peers().into_iter().collect()
    }

    /// With [member use_manual_clock], polls (so what the wrapped peer received so far is timed from now), moves
    /// time forward by [param msec] milliseconds (fractions allowed), then polls again. Without it, or with a
    /// negative or non-finite [param msec], pushes an error and does nothing.
    #[func]
    fn advance(&mut self, msec: f64) {
        IMultiplayerPeerExtension::poll(self);
        if let Err(why) = self.clock.advance(msec) {
            godot_error!("MultiplayerLinkConditioner.advance({msec}): {why}");
            return;
        }
        IMultiplayerPeerExtension::poll(self);
    }

    /// Returns the largest packet this peer accepts (a larger one is refused with
    /// [constant ERR_INVALID_PARAMETER]), read from [member inner] when it is set: ENet's 16777216 bytes, a
    /// [WebSocketMultiplayerPeer]'s [member WebSocketMultiplayerPeer.outbound_buffer_size] less its 9-byte
    /// header, a [LocalMultiplayerPeer]'s network's limit. Godot does not let one peer ask another for its limit,
    /// so for any other peer (WebRTC, Steam, a script's) it is 16777216, and the inner peer may still refuse
    /// less (counted as [code]inner_refused[/code] in [method get_stats]). 0 without an inner peer.
    #[func(rename = get_max_packet_size)]
    fn max_packet_size(&self) -> i64 {
        self.max_packet_size
    }

    /// Returns the conditioner's time in milliseconds (the manual clock's, or real time since it was made).
    #[func]
    fn get_time_msec(&self) -> f64 {
        self.clock.now_us() as f64 / 1000.0
    }

    /// Returns the time in milliseconds at which the next packet in a link is due, or -1 when none is.
    #[func]
    fn get_next_delivery_msec(&self) -> f64 {
        self.links
            .next_due()
            .map_or(-1.0, |due| due as f64 / 1000.0)
    }

    /// Returns the counters: [code]"time_msec"[/code]; [code]"available"[/code] (readable now);
    /// [code]"dropped_out_of_order"[/code] (unreliable-ordered packets that came out of a link older than one
    /// already passed on); [code]"dropped_disconnected"[/code] (held in a link when its peer left, or the
    /// conditioner was closed or given another inner peer); [code]"inner_refused"[/code] and
    /// [code]"last_inner_error"[/code] (packets the wrapped peer refused when their time came, and its last
    /// error); and [code]"peers"[/code], from each connected remote peer's id to
    /// [code]{"outbound": ..., "inbound": ...}[/code], each direction's counters as in
    /// [method LinkConditioner.get_stats] plus [code]"retransmitted"[/code] (simulated retransmissions of
    /// reliable packets); and [code]"departed"[/code], the same for remote peers that left (the 32 most
    /// recent, as their links stood when each left), so a report at the end of a match still has them after
    /// the other side quit.
    #[func]
    fn get_stats(&self) -> VarDictionary {
        let pair_stats = |pair: &LinkPairStats| {
            vdict! {
                "outbound" => &link_settings::lane_stats(&pair.outbound, pair.outbound_queued),
                "inbound" => &link_settings::lane_stats(&pair.inbound, pair.inbound_queued),
            }
        };
        let mut peers = VarDictionary::new();
        for id in self.links.peers() {
            if let Some(pair) = self.links.link_stats(id) {
                peers.set(id, &pair_stats(&pair));
            }
        }
        let mut departed = VarDictionary::new();
        for (id, pair) in self.links.departed() {
            departed.set(*id, &pair_stats(pair));
        }
        let own = self.links.stats();
        let (refused, last) = self.links.refusals();
        vdict! {
            "time_msec" => self.clock.now_us() as f64 / 1000.0,
            "available" => self.links.available() as i64,
            "dropped_out_of_order" => own.dropped_out_of_order as i64,
            "dropped_disconnected" => own.dropped_disconnected as i64,
            "inner_refused" => refused as i64,
            "last_inner_error" => last.map_or(Error::OK, |code| Error::from_ord(code as i32)),
            "peers" => &peers,
            "departed" => &departed,
        }
    }

    /// Returns [member seed].
    #[func]
    fn get_seed(&self) -> i64 {
        self.links.seed() as i64
    }

    /// Sets [member seed].
    #[func]
    fn set_seed(&mut self, seed: i64) {
        self.links.reseed(seed as u64);
    }

    /// Returns [member use_manual_clock].
    #[func]
    fn is_using_manual_clock(&self) -> bool {
        self.clock.is_manual()
    }

    /// Sets [member use_manual_clock].
    #[func]
    fn set_use_manual_clock(&mut self, manual: bool) {
        if manual == self.clock.is_manual() {
            return;
        }
        let (from, to) = self.clock.switch(manual);
        self.links.shift_time(from, to);
    }
}

impl MultiplayerLinkConditioner {
    fn inner_peer(&self) -> Option<Gd<MultiplayerPeer>> {
        self.inner_ref().cloned()
    }

    /// Asks `inner` for its status and relay support, keeps both, and returns the status.
    fn observe(&self, inner: &Gd<MultiplayerPeer>) -> ConnectionStatus {
        let status = inner.get_connection_status();
        self.status.set(status);
        self.relay.set(inner.is_server_relay_supported());
        status
    }

    /// The wrapped peer, borrowed (no reference-count traffic: for calls made around every packet).
    fn inner_ref(&self) -> Option<&Gd<MultiplayerPeer>> {
        self.wrapped.as_ref().map(|w| &w.peer)
    }

    /// A packet the game put: into the links of its destinations, then on to the wrapped peer what is due.
    fn put(&mut self, what: &str, data: &[u8]) -> Error {
        let Some(wrapped) = self.wrapped.as_mut() else {
            godot_error!("{what}: no inner peer; set `inner` (or use MultiplayerLinkConditioner.wrap()) first");
            return Error::ERR_UNCONFIGURED;
        };
        if self.status.get() != ConnectionStatus::CONNECTED {
            godot_error!("{what}: the inner peer is not connected");
            return Error::ERR_UNCONFIGURED;
        }
        if data.len() as i64 > self.max_packet_size {
            godot_error!(
                "{what}: packet of {} bytes is larger than the inner peer's maximum ({} bytes)",
                data.len(),
                self.max_packet_size
            );
            return Error::ERR_INVALID_PARAMETER;
        }
        let now = self.clock.now_us();
        let sent = self.links.send(
            now,
            self.target_peer,
            self.transfer_mode,
            self.transfer_channel,
            Bytes::copy_from_slice(data),
        );
        if let Err(e) = sent {
            godot_error!("{what}: {e}");
            return e.error_code();
        }
        push(&mut wrapped.peer, &mut self.links, &mut self.forwarded, now);
        Error::OK
    }

    /// Takes what the wrapped peer's signals said, and connects or drops the remote peers' links to match.
    fn take_events(&mut self) -> Vec<PeerEvent> {
        let events: Vec<PeerEvent> = self.events.borrow_mut().drain(..).collect();
        for event in &events {
            match *event {
                PeerEvent::Connected(id) => self.links.connect(id),
                PeerEvent::Disconnected(id) => {
                    self.links.disconnect(id);
                }
            }
        }
        events
    }

    /// Emits the wrapped peer's events as this peer's, through `base_mut` so handlers may call back in.
    fn emit(&mut self, events: Vec<PeerEvent>) {
        for event in events {
            let (signal, id) = match event {
                PeerEvent::Connected(id) => ("peer_connected", id),
                PeerEvent::Disconnected(id) => ("peer_disconnected", id),
            };
            self.base_mut()
                .emit_signal(signal, &[Variant::from(i64::from(id))]);
        }
    }

    /// Moves what the wrapped peer received into the inbound links (while they and the game's inbox have room).
    fn pull(&mut self, inner: &mut Gd<MultiplayerPeer>, now: u64) {
        // One count per poll (what arrives meanwhile waits for the next poll), not one question per packet.
        let available = inner.get_available_packet_count();
        for _ in 0..available {
            if !self.links.can_receive() {
                break;
            }
            let from = inner.get_packet_peer();
            let mode = transfer_mode::from_godot(inner.get_packet_mode());
            let channel = u8::try_from(inner.get_packet_channel()).unwrap_or(0);
            // A packet is available (just asked), so this does not fail.
            let packet = inner.get_packet();
            // `can_receive` said there is room, so this is never refused.
            let _ = self.links.receive(
                now,
                from,
                mode,
                channel,
                Bytes::copy_from_slice(packet.as_slice()),
            );
        }
    }

    fn change(
        &mut self,
        what: &str,
        peer_id: i64,
        direction: i64,
        change: link_settings::Change,
    ) -> Error {
        let Some(directions) =
            link_settings::directions(what, direction, link_settings::OUTBOUND_INBOUND)
        else {
            return Error::ERR_INVALID_PARAMETER;
        };
        let Ok(peer) = i32::try_from(peer_id) else {
            godot_error!("{what}: peer {peer_id} is not connected to this one");
            return Error::ERR_INVALID_PARAMETER;
        };
        match self.links.configure(peer, directions, change) {
            Ok(()) => Error::OK,
            Err(LinkChangeError::UnknownPeer(p)) => {
                godot_error!(
                    "{what}: {}",
                    LinkChangeError::<LinkConfigError>::UnknownPeer(p)
                );
                Error::ERR_INVALID_PARAMETER
            }
            Err(LinkChangeError::Setting(e)) => link_settings::report(what, &e),
        }
    }
}

/// A new conditioner's links: clean, or with the startup preset for every remote peer, outbound as `wrap`
/// applies a preset, so two game instances run from the editor share one preset's path
/// ([`live_links::startup_preset`]).
fn starting_links() -> PeerLinks {
    let mut links = PeerLinks::new(0);
    if let Some(name) = live_links::startup_preset(false) {
        if let Ok(change) =
            link_settings::preset_change("MultiplayerLinkConditioner (startup preset)", &name)
        {
            // Peer 0 is every remote peer, now and later; a preset is valid settings.
            let _ = links.configure(0, Directions::Outbound, change);
        }
    }
    links
}

impl Drop for MultiplayerLinkConditioner {
    fn drop(&mut self) {
        if let Some(mut old) = self.wrapped.take() {
            old.peer.disconnect("peer_connected", &old.connected);
            old.peer.disconnect("peer_disconnected", &old.disconnected);
        }
    }
}

/// Hands `inner` every outbound packet of `links` due by `now`, setting its target, mode and channel when they
/// differ from the last packet's (`forwarded`); a refusal is counted, and said once for each kind.
fn push(
    inner: &mut Gd<MultiplayerPeer>,
    links: &mut PeerLinks,
    forwarded: &mut Option<(PeerId, TransferMode, u8)>,
    now: u64,
) {
    while let Some((peer, packet)) = links.poll_outbound(now) {
        let wanted = (peer, packet.mode, packet.channel);
        let last = forwarded.replace(wanted);
        if last.map(|l| l.0) != Some(peer) {
            inner.set_target_peer(peer);
        }
        if last.map(|l| l.1) != Some(packet.mode) {
            inner.set_transfer_mode(transfer_mode::to_godot(packet.mode));
        }
        if last.map(|l| l.2) != Some(packet.channel) {
            inner.set_transfer_channel(i32::from(packet.channel));
        }
        let err = inner.put_packet(&PackedByteArray::from(&packet.data[..]));
        if err != Error::OK && links.refused(err.ord() as i64) {
            godot_warn!(
                "MultiplayerLinkConditioner: the inner peer refused a packet of {} bytes for peer {peer} with {err:?}: {}. Every refusal is counted in get_stats().inner_refused; this is said once for each kind of refusal",
                packet.data.len(),
                refusal_hint(err)
            );
        }
    }
}

/// The largest packet `peer` takes. Godot does not let one peer ask another (a MultiplayerPeer's
/// `_get_max_packet_size` is not exposed to scripts or extensions), so this knows the engine's own: ENet's
/// 16 MiB, a WebSocket peer's outbound buffer less its 9-byte header, peerkit's LocalMultiplayerPeer's
/// network limit; for any other peer (WebRTC, Steam, a script's), 16 MiB.
fn max_packet_size_of(peer: &Gd<MultiplayerPeer>) -> i64 {
    if let Ok(local) = peer.clone().try_cast::<LocalMultiplayerPeer>() {
        return i64::from(local.bind().get_max_packet_size());
    }
    if peer.is_class("WebSocketMultiplayerPeer") {
        if let Ok(size) = peer.get("outbound_buffer_size").try_to::<i64>() {
            return (size - WEBSOCKET_HEADER).max(0);
        }
    }
    MAX_PACKET_SIZE_LIMIT as i64
}
