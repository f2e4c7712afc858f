//! `ReliablePacketPeer`: the Godot face of [`peerkit_core::reliable`]. Moves datagrams between the inner peer
//! and the connection, feeds it the clock and a seed, and turns its events into signals; all protocol decisions
//! are the connection's.

use std::cell::RefCell;

use bytes::Bytes;
use godot::classes::{IPacketPeerExtension, PacketPeer, PacketPeerExtension};
use godot::global::Error;
use godot::meta::conv::RawPtr;
use godot::prelude::*;
use peerkit_core::link::Micros;
use peerkit_core::reliable::{
    Connection, ConnectionHandle, Event, ReliableConfig, ReliableError, Session, Status, Unfinished,
};

use super::clock::{os_seed, Clock};
use super::error::{transport_refusal, GodotErrorCode};
use super::ffi;
use super::live_links::Tracked;
use super::poll_watch;
use super::reliable_server::SharedServer;
use super::wrapping::{wraps, InnerPeer};

/// Where a ReliablePacketPeer's connection lives and its datagrams travel.
enum Backend {
    /// Over inner peers (set with `inner`): the session's current connection and the goodbyes of earlier ones,
    /// each transport (inner peer) numbered as the session's address for it.
    Inner {
        session: Box<Session>,
        transports: Vec<(u64, InnerPeer)>,
        next_transport: u64,
        clock: Clock,
    },
    /// A connection a ReliableServer accepted: its datagrams go through the server's socket, on its clock.
    Server {
        server: SharedServer,
        handle: ConnectionHandle,
    },
}

/// Everything `poll` touches, behind a `RefCell` because Godot calls `get_available_packet_count` through `&self`.
struct Channel {
    backend: Backend,
    /// With the manual clock, connection ids come from this seed (and how many connections came before).
    seed: u64,
    /// Reused for every datagram written.
    datagram: Vec<u8>,
    /// Whether anything was ever put (the first put asks for a later check that it was polled).
    put_before: bool,
}

impl Channel {
    fn new() -> Self {
        Self {
            backend: Backend::Inner {
                session: Box::new(Session::new(ReliableConfig::default(), os_seed())),
                transports: Vec::new(),
                next_transport: 0,
                clock: Clock::real(),
            },
            seed: 0,
            datagram: Vec::new(),
            put_before: false,
        }
    }

    /// Runs `f` on the current connection, if any.
    fn with_connection<R>(&self, f: impl FnOnce(Option<&Connection>) -> R) -> R {
        match &self.backend {
            Backend::Inner { session, .. } => f(session.connection()),
            Backend::Server { server, handle } => f(server.borrow().connection(*handle)),
        }
    }

    /// Runs `f` on the current connection, if any, to change it.
    fn with_connection_mut<R>(&mut self, f: impl FnOnce(Option<&mut Connection>) -> R) -> R {
        match &mut self.backend {
            Backend::Inner { session, .. } => f(session.connection_mut()),
            Backend::Server { server, handle } => f(server.borrow_mut().connection_mut(*handle)),
        }
    }

    fn now_us(&self) -> Micros {
        match &self.backend {
            Backend::Inner { clock, .. } => clock.now_us(),
            Backend::Server { server, .. } => server.borrow().now_us(),
        }
    }

    fn is_manual(&self) -> bool {
        matches!(&self.backend, Backend::Inner { clock, .. } if clock.is_manual())
    }

    /// Moves datagrams between the transport and the connection, runs the timers, and returns what happened to
    /// the current connection, with what its transport said to do the first time it could not send.
    fn poll(&mut self) -> (Vec<Event>, Option<String>) {
        let mut events = Vec::new();
        match &mut self.backend {
            Backend::Inner {
                session,
                transports,
                clock,
                ..
            } => {
                let now = clock.now_us();
                for (number, inner) in transports.iter_mut() {
                    let waiting = inner.available();
                    for _ in 0..waiting {
                        let Some(bytes) = inner.take() else {
                            break;
                        };
                        session.handle_datagram(now, *number, &bytes);
                    }
                }
                session.handle_timeout(now);
                transmit(session, transports, now, &mut self.datagram);
                while let Some(event) = session.poll_event() {
                    events.push(event);
                }
                (events, session.poll_transport_hint())
            }
            Backend::Server { server, handle } => {
                let mut server = server.borrow_mut();
                server.drive(Some(*handle));
                while let Some(event) = server.poll_event(*handle) {
                    events.push(event);
                }
                (events, None)
            }
        }
    }

    /// The number of `inner` as a transport: the one it already has if the session still uses it.
    fn transport_for(&mut self, inner: InnerPeer) -> Option<u64> {
        let Backend::Inner {
            transports,
            next_transport,
            ..
        } = &mut self.backend
        else {
            return None;
        };
        if let Some((number, _)) = transports.iter().find(|(_, known)| known.is(&inner)) {
            return Some(*number);
        }
        *next_transport += 1;
        transports.push((*next_transport, inner));
        Some(*next_transport)
    }

    /// Ends the current connection (closed properly, what it had not delivered counted) and starts one over
    /// `inner` (or none). A connection taken from a server is closed, and this peer goes over inner peers from
    /// then on. Returns what was let go of unacknowledged.
    fn restart(&mut self, inner: Option<InnerPeer>) -> Unfinished {
        let mut discarded = Unfinished::default();
        if let Backend::Server { server, handle } = &self.backend {
            let mut server = server.borrow_mut();
            let config = server
                .connection(*handle)
                .map(|c| c.config().clone())
                .unwrap_or_default();
            discarded = server.close_and_release(*handle);
            drop(server);
            self.backend = Backend::Inner {
                session: Box::new(Session::new(config, os_seed())),
                transports: Vec::new(),
                next_transport: 0,
                clock: Clock::real(),
            };
        }
        let ended = self.end_current();
        discarded.unsent += ended.unsent;
        discarded.unconfirmed += ended.unconfirmed;
        self.start(inner);
        discarded
    }

    /// Over inner peers, with no current connection: starts one over `inner` (or none). Its HELLO goes out at
    /// the next poll, so settings changed before then reach it.
    fn start(&mut self, inner: Option<InnerPeer>) {
        let transport = inner.and_then(|inner| self.transport_for(inner));
        if let Backend::Inner { session, clock, .. } = &mut self.backend {
            session.restart(clock.now_us(), transport);
        }
    }

    /// Over inner peers: ends the current connection, closed properly, its first CLOSE sent now over its
    /// transport. Returns what it let go of unacknowledged.
    fn end_current(&mut self) -> Unfinished {
        let Backend::Inner {
            session,
            clock,
            transports,
            ..
        } = &mut self.backend
        else {
            return Unfinished::default();
        };
        let now = clock.now_us();
        let discarded = session.end(now);
        transmit(session, transports, now, &mut self.datagram);
        discarded
    }

    /// The settings: the connection's, or (over inner peers) those the next connection starts with.
    fn config(&self) -> ReliableConfig {
        match &self.backend {
            Backend::Inner { session, .. } => session.config().clone(),
            Backend::Server { .. } => self
                .with_connection(|c| c.map(|c| c.config().clone()))
                .unwrap_or_default(),
        }
    }

    /// Changes a setting for the next connection (over inner peers) and, through `apply`, the current one.
    fn change_config(
        &mut self,
        set: impl FnOnce(&mut ReliableConfig),
        apply: impl FnOnce(&mut Connection),
    ) {
        if let Backend::Inner { session, .. } = &mut self.backend {
            set(session.config_mut());
        }
        self.with_connection_mut(|c| c.map(apply));
    }

    /// Messages discarded (never sent whole) and unconfirmed (sent, not acknowledged) over this object's life.
    fn messages_let_go(&self) -> (u64, u64) {
        match &self.backend {
            Backend::Inner { session, .. } => {
                (session.messages_discarded(), session.messages_unconfirmed())
            }
            Backend::Server { .. } => self.with_connection(|c| {
                c.map_or((0, 0), |c| {
                    (c.stats().messages_discarded, c.stats().messages_unconfirmed)
                })
            }),
        }
    }

    /// Datagrams the transport refused over this object's life (for a server's connection: the server's).
    fn transport_refused(&self) -> u64 {
        match &self.backend {
            Backend::Inner { session, .. } => session.transport_refused_count(),
            Backend::Server { server, .. } => server.borrow().transport_refused(),
        }
    }

    /// The inner peer the current connection uses.
    fn inner_peer(&self) -> Option<Gd<PacketPeer>> {
        let Backend::Inner {
            session,
            transports,
            ..
        } = &self.backend
        else {
            return None;
        };
        let current = session.transport()?;
        transports
            .iter()
            .find(|(number, _)| *number == current)
            .map(|(_, inner)| inner.packet_peer())
    }

    /// The script polled: puts since then are no longer unpolled.
    fn polled_by_script(&mut self) {
        if let Backend::Inner { session, .. } = &mut self.backend {
            session.note_polled();
        }
    }

    /// The script put a message: after a second of puts without a poll, says once that nothing moves without one.
    /// Returns whether this was the first put of the object's life (for the later check of a single put).
    fn put_by_script(&mut self) -> bool {
        if let Backend::Inner { session, clock, .. } = &mut self.backend {
            if let Some(waited) = session.note_put(clock.now_us()) {
                warn_unpolled(waited);
            }
        }
        !std::mem::replace(&mut self.put_before, true)
    }

    /// The later check of a first put: if it still waits for a poll, says so (once).
    fn check_unpolled(&mut self) {
        if let Backend::Inner { session, clock, .. } = &mut self.backend {
            if let Some(waited) = session.unpolled_due(clock.now_us()) {
                warn_unpolled(waited);
            }
        }
    }

    /// Runs the timers due now without sending (a status asked for between polls reflects the time: a handshake
    /// nobody polls still times out).
    fn check_timeouts(&mut self) {
        match &mut self.backend {
            Backend::Inner { session, clock, .. } => session.handle_timeout(clock.now_us()),
            Backend::Server { server, handle } => server.borrow_mut().handle_timeout(*handle),
        }
    }
}

/// Sends what the session's connections have due through their transports, tells the session what a transport
/// refused, and forgets the transports no connection uses any more.
fn transmit(
    session: &mut Session,
    transports: &mut Vec<(u64, InnerPeer)>,
    now: Micros,
    datagram: &mut Vec<u8>,
) {
    while let Some(sent) = session.poll_transmit(now, datagram) {
        let Some((_, inner)) = transports.iter_mut().find(|(n, _)| *n == sent.to) else {
            continue;
        };
        let result = inner.put(datagram);
        if result != Error::OK {
            session.transport_refused(&sent, transport_refusal(result, datagram.len()));
        }
    }
    transports.retain(|(number, _)| session.uses_transport(*number));
}

impl Drop for Channel {
    /// The peer is going (freed, or its process quitting): its connection is closed and the first CLOSE sent,
    /// best effort, so the other side learns at once rather than after its timeout. A connection taken from a
    /// server is closed and the server lets go of it.
    fn drop(&mut self) {
        match &self.backend {
            Backend::Server { server, handle } => {
                if let Ok(mut server) = server.try_borrow_mut() {
                    server.close_and_release(*handle);
                }
            }
            Backend::Inner { .. } => {
                self.end_current();
            }
        }
    }
}

/// A [PacketPeer] that delivers every message reliably and in order over any unreliable PacketPeer.
///
/// Wrap a [PacketPeerUDP], a [LinkConditioner], a [LocalPacketPeer], or any other packet peer: messages put on
/// one side come out of [method PacketPeer.get_packet] on the other exactly once, in order and intact, however
/// the transport loses, duplicates, reorders or corrupts datagrams — or the connection fails visibly
/// ([method get_status] becomes [constant STATUS_ERROR] and [signal connection_failed] is emitted).
/// Messages up to [member max_message_size] bytes are split into datagrams of at most [member mtu] bytes.
/// Both sides must be ReliablePacketPeers with the same [member max_message_size].
/// ```gdscript
/// var reliable := ReliablePacketPeer.new()
/// reliable.inner = udp_peer # connected with set_dest_address or connect_to_host
/// reliable.connected.connect(func(): print("connected"))
/// reliable.put_var({"chat": "hello"}) # queued until the handshake completes
/// # every frame:
/// reliable.poll()
/// while reliable.get_available_packet_count() > 0:
///     print(reliable.get_var())
/// ```
/// A connection starts with a handshake in which each side picks a random connection id; datagrams of any
/// other connection (an earlier one on the same ports, a stray) are dropped and counted, never delivered.
/// The receiver grants the sender credit as its reader reads, so a reader that falls behind holds the sender
/// back instead of losing data. Call [method poll] on both sides at least once per frame (get, put and
/// [method PacketPeer.get_available_packet_count] poll too): it sends handshakes, acknowledgements,
/// retransmissions and keepalives (a peer given a message and never polled warns once, a second later). When
/// the send buffer is full, [method PacketPeer.put_packet] returns [constant ERR_BUSY] and queues nothing.
/// Freeing the peer closes its connection, so the other side learns at once. For a server that takes many
/// clients on one port, see [ReliableServer]. The checksum on every datagram catches corruption; it is not a
/// defence against a deliberate attacker who can see the traffic (use [PacketPeerDTLS] underneath).
#[derive(GodotClass)]
#[class(tool, base = PacketPeerExtension)]
pub struct ReliablePacketPeer {
    /// The unreliable peer the messages travel over. Setting it closes the current connection properly (the
    /// other side is told; messages not yet acknowledged are let go, counted in [code]messages_discarded[/code]
    /// or [code]messages_unconfirmed[/code] with a warning) and starts a new one ([constant STATUS_CONNECTING]).
    /// Setting it to this peer, or to a peer that wraps this peer, is refused.
    #[var(get = get_inner, set = set_inner, usage_flags = [EDITOR])]
    inner: PhantomVar<Option<Gd<PacketPeer>>>,
    /// The largest datagram, in bytes (64 to 65507; default 1200, which fits in any internet path). Both sides
    /// announce theirs in the handshake and each sends at most the smaller. Set it before the connection starts.
    #[var(get = get_mtu, set = set_mtu, usage_flags = [EDITOR])]
    mtu: PhantomVar<i64>,
    /// The largest message, in bytes, sent or accepted (1 to 16777216; default 1048576). Both sides must set
    /// the same: the handshake fails naming both values otherwise. Set it before the connection starts; a change
    /// during a connection applies to the next one.
    #[var(get = get_max_message_size, set = set_max_message_size, usage_flags = [EDITOR])]
    max_message_size: PhantomVar<i64>,
    /// The connection fails when nothing has been heard from the other side for this many milliseconds
    /// (default 10000). Keepalives are sent every quarter of it (at most every second) while idle.
    #[var(get = get_timeout_ms, set = set_timeout_ms, usage_flags = [EDITOR])]
    timeout_ms: PhantomVar<i64>,
    /// When [code]true[/code], time stands still except through [method advance] (for deterministic tests).
    /// Turning it on starts the manual clock at 0 and starts a new connection (as setting [member inner] does).
    #[var(get = is_using_manual_clock, set = set_use_manual_clock, usage_flags = [EDITOR])]
    use_manual_clock: PhantomVar<bool>,
    /// With [member use_manual_clock], the connection ids and first sequence numbers come from this seed, so a
    /// test sends the same bytes every run (give the two sides different seeds). With the real clock they come
    /// from the OS. Applies from the next connection.
    #[var(get = get_seed, set = set_seed, usage_flags = [EDITOR])]
    seed: PhantomVar<i64>,
    channel: RefCell<Channel>,
    /// The message last handed to Godot by `_get_packet`; kept so its pointer stays valid until the next call.
    current: Bytes,
    /// This object's place in [`PeerkitLinks`](super::live_links)' list, while it lives.
    _tracked: Tracked,
    base: Base<PacketPeerExtension>,
}

#[godot_api]
impl IPacketPeerExtension for ReliablePacketPeer {
    fn init(base: Base<PacketPeerExtension>) -> Self {
        Self {
            inner: PhantomVar::default(),
            mtu: PhantomVar::default(),
            max_message_size: PhantomVar::default(),
            timeout_ms: PhantomVar::default(),
            use_manual_clock: PhantomVar::default(),
            seed: PhantomVar::default(),
            channel: RefCell::new(Channel::new()),
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
        ffi::guard("ReliablePacketPeer.get_packet", || {
            self.channel.get_mut().polled_by_script();
            self.poll_and_announce();
            let (message, empty) = self.channel.get_mut().with_connection_mut(|c| match c {
                Some(connection) => (connection.recv(), Error::ERR_UNAVAILABLE),
                None => (None, Error::ERR_UNCONFIGURED),
            });
            // SAFETY: Godot's out-pointers, and `self.current` is this object's message slot.
            unsafe { ffi::hand_out(&mut self.current, message, r_buffer, r_buffer_size, empty) }
        })
    }

    unsafe fn put_packet_rawptr(
        &mut self,
        p_buffer: RawPtr<*const u8>,
        p_buffer_size: i32,
    ) -> Error {
        // SAFETY: Godot keeps `p_buffer_size` bytes at `p_buffer` valid for this call; they are copied before queueing.
        unsafe {
            ffi::guard_put(
                "ReliablePacketPeer.put_packet",
                p_buffer,
                p_buffer_size,
                |message| {
                    if self.channel.get_mut().with_connection(|c| c.is_none()) {
                        godot_error!("ReliablePacketPeer.put_packet: no inner peer; set `inner` to the PacketPeer to send over");
                        return Error::ERR_UNCONFIGURED;
                    }
                    if self.channel.get_mut().put_by_script() {
                        let id = self.base().instance_id();
                        poll_watch::check_later(move || {
                            if let Ok(mut peer) = Gd::<ReliablePacketPeer>::try_from_instance_id(id)
                            {
                                peer.bind_mut().channel.get_mut().check_unpolled();
                            }
                        });
                    }
                    self.poll_and_announce();
                    // Check before copying, so a refused message costs nothing.
                    let result = self.channel.get_mut().with_connection_mut(|c| {
                        let connection = c.ok_or(ReliableError::NotOpen(Status::Closed))?;
                        connection
                            .check_send(message.len())
                            .and_then(|()| connection.send(Bytes::copy_from_slice(message)))
                    });
                    match result {
                        Ok(()) => {
                            self.poll_and_announce();
                            Error::OK
                        }
                        Err(e) => {
                            if matches!(e, ReliableError::MessageTooLarge { .. }) {
                                godot_error!("ReliablePacketPeer.put_packet: {e}");
                            }
                            e.error_code()
                        }
                    }
                },
            )
        }
    }

    fn get_available_packet_count(&self) -> i32 {
        // `try_borrow_mut` fails only if a poll is already running on this object, which the refusal of
        // wrapping cycles prevents; answering 0 then is still a correct (if late) answer.
        let (count, events) = match self.channel.try_borrow_mut() {
            Ok(mut channel) => {
                channel.polled_by_script();
                let events = channel.poll();
                let count = channel.with_connection(|c| c.map_or(0, Connection::ready_count));
                (count, events)
            }
            Err(_) => (0, (Vec::new(), None)),
        };
        self.announce(events);
        i32::try_from(count).unwrap_or(i32::MAX)
    }

    fn get_max_packet_size(&self) -> i32 {
        i32::try_from(self.get_max_message_size()).unwrap_or(i32::MAX)
    }
}

#[godot_api]
impl ReliablePacketPeer {
    /// Status: no connection: no [member inner] peer yet, or closed by [method close] or by the other side
    /// (as [constant PacketPeerDTLS.STATUS_DISCONNECTED]). Received messages stay readable.
    #[constant]
    const STATUS_DISCONNECTED: i64 = 0;
    /// Status: the handshake is under way (messages may already be put; they are sent once it completes).
    #[constant]
    const STATUS_CONNECTING: i64 = 1;
    /// Status: the handshake completed; messages flow.
    #[constant]
    const STATUS_CONNECTED: i64 = 2;
    /// Status: failed (timeout, the other side's protocol version or [member max_message_size] differs, a
    /// transport failure); see [method get_error_message]. Received messages stay readable; new ones are refused.
    #[constant]
    const STATUS_ERROR: i64 = 3;

    /// Emitted once per connection when its handshake completes. Emitted deferred, from the next idle time of
    /// the main loop.
    #[signal]
    fn connected();

    /// Emitted once per connection when it closes, by [method close] or by the other side
    /// ([method get_error_message] then says so). Not emitted when setting [member inner] replaces the
    /// connection. Emitted deferred.
    #[signal]
    fn closed();

    /// Emitted once per connection when it fails, with the reason (the same text as [method get_error_message]).
    /// Emitted deferred.
    #[signal]
    fn connection_failed(message: GString);

    /// Returns the wrapped peer, or [code]null[/code].
    #[func]
    fn get_inner(&self) -> Option<Gd<PacketPeer>> {
        self.inner_peer()
    }

    /// Sets the wrapped peer: closes the current connection (see [member inner]) and starts a new one. Refused
    /// (with an error, leaving [member inner] unchanged) when [param peer] is this peer or wraps it.
    #[func]
    fn set_inner(&mut self, peer: Option<Gd<PacketPeer>>) {
        if let Some(candidate) = &peer {
            if wraps(candidate, self.base().instance_id()) {
                godot_error!("ReliablePacketPeer.inner: a ReliablePacketPeer cannot wrap itself, directly or through other peers");
                return;
            }
        }
        let discarded = self.channel.get_mut().restart(peer.map(InnerPeer::new));
        warn_discarded("setting inner", discarded);
    }

    /// Returns [member mtu].
    #[func]
    fn get_mtu(&self) -> i64 {
        self.channel.borrow().config().mtu as i64
    }

    /// Sets [member mtu]; an out-of-range value pushes an error and changes nothing.
    #[func]
    fn set_mtu(&mut self, mtu: i64) {
        match ReliableConfig::check_mtu(mtu) {
            Ok(mtu) => self
                .channel
                .get_mut()
                .change_config(|c| c.mtu = mtu, |c| c.set_mtu(mtu)),
            Err(e) => godot_error!("ReliablePacketPeer.mtu: {e}"),
        }
    }

    /// Returns [member max_message_size].
    #[func]
    fn get_max_message_size(&self) -> i64 {
        self.channel.borrow().config().max_message_size as i64
    }

    /// Sets [member max_message_size]; an out-of-range value pushes an error and changes nothing.
    #[func]
    fn set_max_message_size(&mut self, size: i64) {
        match ReliableConfig::check_max_message_size(size) {
            Ok(size) => self.channel.get_mut().change_config(
                |c| c.max_message_size = size,
                |connection| {
                    if !connection.set_max_message_size(size) {
                        godot_warn!(
                            "ReliablePacketPeer.max_message_size: the connection already announced {}; {size} applies from the next connection (set inner again)",
                            connection.max_message_size()
                        );
                    }
                },
            ),
            Err(e) => godot_error!("ReliablePacketPeer.max_message_size: {e}"),
        }
    }

    /// Returns the largest message this peer sends or accepts: [member max_message_size].
    /// ([PacketPeer] itself does not offer [code]get_max_packet_size[/code] to scripts.)
    #[func(rename = get_max_packet_size)]
    fn max_packet_size(&self) -> i64 {
        self.get_max_message_size()
    }

    /// Returns [member timeout_ms].
    #[func]
    fn get_timeout_ms(&self) -> i64 {
        (self.channel.borrow().config().timeout_us / 1000) as i64
    }

    /// Sets [member timeout_ms]; an out-of-range value (1 to 3600000) pushes an error and changes nothing.
    #[func]
    fn set_timeout_ms(&mut self, ms: i64) {
        match ReliableConfig::check_timeout_ms(ms) {
            Ok(us) => self
                .channel
                .get_mut()
                .change_config(|c| c.timeout_us = us, |c| c.set_timeout_us(us)),
            Err(e) => godot_error!("ReliablePacketPeer.timeout_ms: {e}"),
        }
    }

    /// Returns [member seed].
    #[func]
    fn get_seed(&self) -> i64 {
        self.channel.borrow().seed as i64
    }

    /// Sets [member seed].
    #[func]
    fn set_seed(&mut self, seed: i64) {
        let channel = self.channel.get_mut();
        channel.seed = seed as u64;
        if let Backend::Inner { session, clock, .. } = &mut channel.backend {
            if clock.is_manual() {
                session.set_seed(seed as u64);
            }
        }
    }

    /// Returns [member use_manual_clock].
    #[func]
    fn is_using_manual_clock(&self) -> bool {
        self.channel.borrow().is_manual()
    }

    /// Sets [member use_manual_clock]. Switching closes the current connection and starts a new one, as
    /// setting [member inner] does.
    #[func]
    fn set_use_manual_clock(&mut self, manual: bool) {
        let channel = self.channel.get_mut();
        let seed = channel.seed;
        let Backend::Inner { clock, .. } = &channel.backend else {
            godot_error!("ReliablePacketPeer.use_manual_clock: this connection was taken from a ReliableServer and runs on the server's clock");
            return;
        };
        if manual == clock.is_manual() {
            return;
        }
        let inner = channel.inner_peer().map(InnerPeer::new);
        let discarded = channel.end_current();
        if let Backend::Inner { session, clock, .. } = &mut channel.backend {
            clock.switch(manual);
            session.set_seed(if manual { seed } else { os_seed() });
        }
        channel.start(inner);
        warn_discarded("switching use_manual_clock", discarded);
    }

    /// With [member use_manual_clock], moves time forward by [param msec] milliseconds, then polls.
    /// Without it, or with a negative or non-finite [param msec], pushes an error and does nothing.
    #[func]
    fn advance(&mut self, msec: f64) {
        let advanced = match &mut self.channel.get_mut().backend {
            Backend::Inner { clock, .. } => clock.advance(msec),
            Backend::Server { .. } => {
                Err("this connection was taken from a ReliableServer and runs on its real clock")
            }
        };
        if let Err(why) = advanced {
            godot_error!("ReliablePacketPeer.advance({msec}): {why}");
            return;
        }
        self.channel.get_mut().polled_by_script();
        self.poll_and_announce();
    }

    /// Returns this peer's clock in milliseconds.
    #[func]
    fn get_time_msec(&self) -> f64 {
        self.channel.borrow().now_us() as f64 / 1000.0
    }

    /// Receives datagrams from [member inner], sends the handshake, retransmits what was lost, sends
    /// acknowledgements and keepalives, and checks the timeout. Call it every frame.
    #[func]
    fn poll(&mut self) {
        self.channel.get_mut().polled_by_script();
        self.poll_and_announce();
    }

    /// Returns [constant STATUS_DISCONNECTED], [constant STATUS_CONNECTING], [constant STATUS_CONNECTED] or
    /// [constant STATUS_ERROR].
    #[func]
    fn get_status(&self) -> i64 {
        if let Ok(mut channel) = self.channel.try_borrow_mut() {
            channel.check_timeouts();
        }
        match self
            .channel
            .borrow()
            .with_connection(|c| c.map(Connection::status))
        {
            None | Some(Status::Closed) => Self::STATUS_DISCONNECTED,
            Some(Status::Connecting) => Self::STATUS_CONNECTING,
            Some(Status::Connected) => Self::STATUS_CONNECTED,
            Some(Status::Failed) => Self::STATUS_ERROR,
        }
    }

    /// Returns why the connection failed or was closed by the other side, or an empty string.
    #[func]
    fn get_error_message(&self) -> GString {
        self.channel
            .borrow()
            .with_connection(|c| {
                c.and_then(|c| c.error())
                    .map(|e| GString::from(&e.to_string()))
            })
            .unwrap_or_default()
    }

    /// Closes the connection: no more messages are accepted, messages not yet acknowledged are let go (counted
    /// in [code]messages_discarded[/code] or [code]messages_unconfirmed[/code], with a warning), and the other
    /// side is told (CLOSE is repeated until it answers, as long as this peer is polled). To close without
    /// losing any message, wait until [code]get_stats().messages_pending[/code] is 0.
    #[func]
    fn close(&mut self) {
        let channel = self.channel.get_mut();
        let now = channel.now_us();
        let discarded =
            channel.with_connection_mut(|c| c.map_or(Unfinished::default(), |c| c.close(now)));
        warn_discarded("close()", discarded);
        self.poll_and_announce();
    }

    /// Returns the counters and estimates: [code]rtt_ms[/code] (smoothed round-trip time; on a side that only
    /// receives, reading it makes the connection probe the path every 200 ms for the next 2 s, so the figure a
    /// game shows follows the path),
    /// [code]rtt_variance_ms[/code], [code]rto_ms[/code] (retransmission timeout), [code]messages_sent[/code],
    /// [code]messages_received[/code], [code]messages_pending[/code] (put but not yet acknowledged),
    /// [code]messages_discarded[/code] (put, then discarded by [method close], a new [member inner], or a
    /// failure before they were sent whole: they never reached the other side; counted over this object's life),
    /// [code]messages_unconfirmed[/code] (sent whole but not acknowledged when the connection ended: they may
    /// well have arrived, as when the other side quits right after its last message), [code]datagrams_sent[/code],
    /// [code]datagrams_received[/code], [code]retransmissions[/code], [code]bytes_in_flight[/code],
    /// [code]congestion_window[/code] (datagrams), [code]flow_blocked[/code] ([code]true[/code] while the other
    /// side's reader is behind and holds this side back), and datagrams dropped:
    /// [code]dropped_corrupt[/code] (checksum), [code]dropped_duplicate[/code], [code]dropped_invalid[/code]
    /// (foreign, malformed, too large, or acknowledging what was never sent),
    /// [code]dropped_other_connection[/code] (of another connection: an earlier one, a stray),
    /// [code]dropped_other_version[/code] (another protocol version), [code]dropped_no_room[/code] (too far
    /// ahead; sent again later), and [code]inner_refused[/code] (datagrams the inner peer refused; they are sent
    /// again).
    #[func]
    fn get_stats(&self) -> VarDictionary {
        // Reading the round trip asks for it to be kept fresh: a side that only receives then probes the path.
        if let Ok(mut channel) = self.channel.try_borrow_mut() {
            let now = channel.now_us();
            channel.with_connection_mut(|c| c.map(|c| c.want_rtt(now)));
        }
        let channel = self.channel.borrow();
        let s = channel
            .with_connection(|c| c.map(Connection::stats))
            .unwrap_or_default();
        let (discarded, unconfirmed) = channel.messages_let_go();
        let ms = |us: u64| us as f64 / 1000.0;
        vdict! {
            "rtt_ms" => ms(s.srtt_us),
            "rtt_variance_ms" => ms(s.rttvar_us),
            "rto_ms" => ms(s.rto_us),
            "messages_sent" => s.messages_sent as i64,
            "messages_received" => s.messages_received as i64,
            "messages_pending" => s.messages_pending as i64,
            "messages_discarded" => discarded as i64,
            "messages_unconfirmed" => unconfirmed as i64,
            "datagrams_sent" => s.datagrams_sent as i64,
            "datagrams_received" => s.datagrams_received as i64,
            "retransmissions" => s.retransmissions as i64,
            "bytes_in_flight" => s.bytes_in_flight as i64,
            "congestion_window" => s.congestion_window,
            "flow_blocked" => s.flow_blocked,
            "dropped_corrupt" => s.dropped_corrupt as i64,
            "dropped_duplicate" => s.dropped_duplicate as i64,
            "dropped_invalid" => s.dropped_invalid as i64,
            "dropped_other_connection" => s.dropped_other_connection as i64,
            "dropped_other_version" => s.dropped_other_version as i64,
            "dropped_no_room" => s.dropped_no_room as i64,
            "inner_refused" => channel.transport_refused() as i64,
        }
    }
}

/// Says that messages wait for a poll (once per peer).
fn warn_unpolled(waited: Micros) {
    godot_warn!(
        "ReliablePacketPeer: a message put {:.1} s ago waits for poll(): messages, acknowledgements and retransmissions move only when the peer is polled (and a LinkConditioner underneath moves packets only then too). Call poll() every frame, on both sides",
        waited as f64 / 1e6
    );
}

/// Warns that starting over or closing let go of messages that were accepted and not yet acknowledged.
fn warn_discarded(what: &str, unfinished: Unfinished) {
    let Unfinished {
        unsent,
        unconfirmed,
    } = unfinished;
    if unsent + unconfirmed > 0 {
        godot_warn!(
            "ReliablePacketPeer: {what} closed the connection with {} messages not yet acknowledged: {unsent} not yet sent were discarded (messages_discarded), {unconfirmed} sent and not acknowledged may have arrived (messages_unconfirmed); the other side was told",
            unsent + unconfirmed
        );
    }
}

impl ReliablePacketPeer {
    /// The wrapped peer.
    fn inner_peer(&self) -> Option<Gd<PacketPeer>> {
        self.channel.borrow().inner_peer()
    }

    /// A peer for a connection a ReliableServer accepted (`handle` on `server`'s endpoint).
    pub(crate) fn for_server(server: SharedServer, handle: ConnectionHandle) -> Gd<Self> {
        let mut peer = Self::new_gd();
        peer.bind_mut().channel.get_mut().backend = Backend::Server { server, handle };
        peer
    }

    fn poll_and_announce(&mut self) {
        let events = self.channel.get_mut().poll();
        self.announce(events);
    }

    /// Emits a signal for each event, deferred, so a handler that calls back into this peer finds it free; says
    /// once what to do about a transport that cannot send yet.
    fn announce(&self, (events, transport_hint): (Vec<Event>, Option<String>)) {
        if let Some(hint) = transport_hint {
            godot_warn!("ReliablePacketPeer: {hint}. The connection keeps trying and goes on by itself once the inner peer can send (setting inner again is not needed)");
        }
        for event in events {
            let (signal, args) = match event {
                Event::Connected => ("connected", Vec::new()),
                Event::Closed { .. } => ("closed", Vec::new()),
                Event::Failed(error) => {
                    let message = error.to_string();
                    godot_warn!("ReliablePacketPeer: connection failed: {message}");
                    (
                        "connection_failed",
                        vec![GString::from(&message).to_variant()],
                    )
                }
            };
            let mut call = vec![signal.to_variant()];
            call.extend(args);
            self.to_gd()
                .upcast::<Object>()
                .call_deferred("emit_signal", &call);
        }
    }
}
