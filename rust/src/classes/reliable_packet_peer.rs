//! `ReliablePacketPeer`: the Godot face of [`peerkit_core::reliable`]. Moves datagrams between the inner peer
//! and the connection, feeds it the clock and a seed, and turns its events into signals; all protocol decisions
//! are the connection's.

use std::cell::RefCell;

use bytes::Bytes;
use godot::classes::{IPacketPeerExtension, PacketPeer, PacketPeerExtension};
use godot::global::Error;
use godot::meta::conv::RawPtr;
use godot::prelude::*;
use peerkit_core::reliable::{Connection, Event, ReliableConfig, ReliableError, Status};
use peerkit_core::rng::Rng;

use super::clock::{os_seed, Clock};
use super::error::GodotErrorCode;
use super::ffi;
use super::live_links::Tracked;
use super::wrapping::{wraps, InnerPeer};

/// A connection and the peer its datagrams travel through.
struct Link {
    inner: InnerPeer,
    connection: Connection,
}

impl Link {
    /// Reads every datagram the inner peer holds into `connection` (or into `draining`, the closed connection
    /// still saying goodbye over the same peer, when addressed to it), runs the timers, and sends what the
    /// connection has to send. Returns how many datagrams the inner peer refused.
    fn poll(
        &mut self,
        now: u64,
        datagram: &mut Vec<u8>,
        mut draining: Option<&mut Connection>,
    ) -> u64 {
        let waiting = self.inner.available();
        for _ in 0..waiting {
            let Some(bytes) = self.inner.take() else {
                break;
            };
            match draining.as_deref_mut() {
                Some(old) if old.is_addressed_to(&bytes) => old.handle_datagram_bytes(now, &bytes),
                _ => self.connection.handle_datagram_bytes(now, &bytes),
            }
        }
        self.connection.handle_timeout(now);
        let mut refused = 0;
        while self.connection.poll_transmit(now, datagram) {
            match self.inner.put(datagram) {
                Error::OK => {}
                // A full inner queue is congestion: the datagram counts as lost and is sent again later.
                Error::ERR_BUSY | Error::ERR_OUT_OF_MEMORY => refused += 1,
                other => {
                    refused += 1;
                    self.connection.fail_transport(format!(
                        "the inner peer refused a datagram of {} bytes with {other:?}{}",
                        datagram.len(),
                        if other == Error::ERR_INVALID_PARAMETER {
                            " (is mtu larger than it accepts?)"
                        } else {
                            ""
                        }
                    ));
                }
            }
        }
        refused
    }
}

/// How long a script may put without polling before it is warned (once).
const UNPOLLED_WARNING_US: u64 = 1_000_000;

/// Everything `poll` touches, behind a `RefCell` because Godot calls `get_available_packet_count` through `&self`.
struct Channel {
    /// The current connection, when there is an inner peer.
    link: Option<Link>,
    /// The settings the next connection starts with (kept while there is no inner peer).
    config: ReliableConfig,
    /// Earlier connections, closed, still repeating CLOSE over their inner peer until answered.
    draining: Vec<Link>,
    clock: Clock,
    /// With the manual clock, connection ids come from this seed (and how many connections came before).
    seed: u64,
    connections_started: u64,
    /// Reused for every datagram written.
    datagram: Vec<u8>,
    inner_refused: u64,
    /// Messages discarded by connections that were replaced (closed by a new `inner`, or by the clock switch).
    discarded_before: u64,
    /// The first put since the script last polled (poll, advance, get, or asking what is available), and whether
    /// putting without polling has been warned about.
    put_unpolled_since: Option<u64>,
    warned_unpolled: bool,
}

impl Channel {
    /// Polls the draining connections, then the current one; returns what happened to the current one.
    fn poll(&mut self) -> Vec<Event> {
        let now = self.clock.now_us();
        let mut refused = 0;
        let mut same_inner_draining = None;
        for (i, old) in self.draining.iter_mut().enumerate() {
            let shares = self
                .link
                .as_ref()
                .is_some_and(|link| link.inner.is(&old.inner));
            if shares {
                // Its datagrams arrive through the current connection's inner peer: sorted out below.
                same_inner_draining = Some(i);
                old.connection.handle_timeout(now);
                while old.connection.poll_transmit(now, &mut self.datagram) {
                    if old.inner.put(&self.datagram) != Error::OK {
                        refused += 1;
                    }
                }
            } else {
                refused += old.poll(now, &mut self.datagram, None);
            }
        }
        let mut events = Vec::new();
        if let Some(link) = self.link.as_mut() {
            let draining = same_inner_draining.map(|i| &mut self.draining[i].connection);
            refused += link.poll(now, &mut self.datagram, draining);
            while let Some(event) = link.connection.poll_event() {
                events.push(event);
            }
        }
        self.draining.retain(|old| old.connection.is_draining());
        self.inner_refused += refused;
        events
    }

    /// The seed for the next connection: from the OS under the real clock, from `seed` under the manual clock.
    fn next_seed(&mut self) -> u64 {
        self.connections_started += 1;
        if self.clock.is_manual() {
            Rng::new(self.seed ^ self.connections_started.wrapping_mul(0x9E37_79B9_7F4A_7C15))
                .next_u64()
        } else {
            os_seed()
        }
    }

    /// Ends the current connection, if any: closed properly (its first CLOSE sent now, then repeated until
    /// answered, over its own inner peer) and what it had not delivered counted. Returns how many messages were
    /// discarded, and the inner peer it used.
    fn end_connection(&mut self) -> (u64, Option<InnerPeer>) {
        let Some(mut link) = self.link.take() else {
            return (0, None);
        };
        let now = self.clock.now_us();
        let discarded = link.connection.close(now) as u64;
        self.inner_refused += link.poll(now, &mut self.datagram, None);
        // The script no longer sees this connection: its events go with it.
        while link.connection.poll_event().is_some() {}
        self.discarded_before += link.connection.stats().messages_discarded;
        self.config = link.connection.config().clone();
        let inner = link.inner.clone();
        if link.connection.is_draining() {
            self.draining.push(link);
        }
        (discarded, Some(inner))
    }

    /// Starts a connection over `inner` (or none) with the current settings, at the current time.
    fn start(&mut self, inner: Option<InnerPeer>) {
        self.link = inner.map(|inner| {
            let seed = self.next_seed();
            Link {
                inner,
                connection: Connection::new(self.config.clone(), self.clock.now_us(), seed),
            }
        });
    }

    /// The script polled: puts since then are no longer unpolled.
    fn polled_by_script(&mut self) {
        self.put_unpolled_since = None;
    }

    /// The script put a message: after a second of puts without a poll, says once that nothing moves without one.
    fn put_by_script(&mut self) {
        let now = self.clock.now_us();
        let since = *self.put_unpolled_since.get_or_insert(now);
        let waited = now.saturating_sub(since);
        if waited >= UNPOLLED_WARNING_US && !self.warned_unpolled {
            self.warned_unpolled = true;
            godot_warn!(
                "ReliablePacketPeer: put_packet was called for {:.1} s without poll(): messages, acknowledgements and retransmissions move only when the peer is polled (and a LinkConditioner underneath moves packets only then too). Call poll() every frame, on both sides",
                waited as f64 / 1e6
            );
        }
    }

    fn config(&self) -> &ReliableConfig {
        self.link
            .as_ref()
            .map_or(&self.config, |link| link.connection.config())
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
/// retransmissions and keepalives. When the send buffer is full, [method PacketPeer.put_packet] returns
/// [constant ERR_BUSY] and queues nothing. The checksum on every datagram catches corruption; it is not a
/// defence against a deliberate attacker who can see the traffic (use [PacketPeerDTLS] underneath).
#[derive(GodotClass)]
#[class(tool, base = PacketPeerExtension)]
pub struct ReliablePacketPeer {
    /// The unreliable peer the messages travel over. Setting it closes the current connection properly (the
    /// other side is told; messages not yet acknowledged are discarded, counted in
    /// [code]messages_discarded[/code] with a warning) and starts a new one ([constant STATUS_CONNECTING]).
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
            channel: RefCell::new(Channel {
                link: None,
                config: ReliableConfig::default(),
                draining: Vec::new(),
                clock: Clock::real(),
                seed: 0,
                connections_started: 0,
                datagram: Vec::new(),
                inner_refused: 0,
                discarded_before: 0,
                put_unpolled_since: None,
                warned_unpolled: false,
            }),
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
            let (message, empty) = match self.channel.get_mut().link.as_mut() {
                Some(link) => (link.connection.recv(), Error::ERR_UNAVAILABLE),
                None => (None, Error::ERR_UNCONFIGURED),
            };
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
                    if self.channel.get_mut().link.is_none() {
                        godot_error!("ReliablePacketPeer.put_packet: no inner peer; set `inner` to the PacketPeer to send over");
                        return Error::ERR_UNCONFIGURED;
                    }
                    self.channel.get_mut().put_by_script();
                    self.poll_and_announce();
                    let Some(link) = self.channel.get_mut().link.as_mut() else {
                        return Error::ERR_UNCONFIGURED;
                    };
                    // Check before copying, so a refused message costs nothing.
                    let result = link
                        .connection
                        .check_send(message.len())
                        .and_then(|()| link.connection.send(Bytes::copy_from_slice(message)));
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
                let count = channel
                    .link
                    .as_ref()
                    .map_or(0, |link| link.connection.ready_count());
                (count, events)
            }
            Err(_) => (0, Vec::new()),
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
        let channel = self.channel.get_mut();
        let (discarded, _) = channel.end_connection();
        channel.start(peer.map(InnerPeer::new));
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
            Ok(mtu) => {
                let channel = self.channel.get_mut();
                channel.config.mtu = mtu;
                if let Some(link) = channel.link.as_mut() {
                    link.connection.set_mtu(mtu);
                }
            }
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
            Ok(size) => {
                let channel = self.channel.get_mut();
                channel.config.max_message_size = size;
                if let Some(link) = channel.link.as_mut() {
                    if !link.connection.set_max_message_size(size) {
                        godot_warn!(
                            "ReliablePacketPeer.max_message_size: the connection already announced {}; {size} applies from the next connection (set inner again)",
                            link.connection.max_message_size()
                        );
                    }
                }
            }
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
            Ok(us) => {
                let channel = self.channel.get_mut();
                channel.config.timeout_us = us;
                if let Some(link) = channel.link.as_mut() {
                    link.connection.set_timeout_us(us);
                }
            }
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
        self.channel.get_mut().seed = seed as u64;
    }

    /// Returns [member use_manual_clock].
    #[func]
    fn is_using_manual_clock(&self) -> bool {
        self.channel.borrow().clock.is_manual()
    }

    /// Sets [member use_manual_clock]. Switching closes the current connection and starts a new one, as
    /// setting [member inner] does.
    #[func]
    fn set_use_manual_clock(&mut self, manual: bool) {
        let channel = self.channel.get_mut();
        if manual != channel.clock.is_manual() {
            let (discarded, inner) = channel.end_connection();
            channel.clock.switch(manual);
            channel.start(inner);
            warn_discarded("switching use_manual_clock", discarded);
        }
    }

    /// With [member use_manual_clock], moves time forward by [param msec] milliseconds, then polls.
    /// Without it, or with a negative or non-finite [param msec], pushes an error and does nothing.
    #[func]
    fn advance(&mut self, msec: f64) {
        if let Err(why) = self.channel.get_mut().clock.advance(msec) {
            godot_error!("ReliablePacketPeer.advance({msec}): {why}");
            return;
        }
        self.channel.get_mut().polled_by_script();
        self.poll_and_announce();
    }

    /// Returns this peer's clock in milliseconds.
    #[func]
    fn get_time_msec(&self) -> f64 {
        self.channel.borrow().clock.now_us() as f64 / 1000.0
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
        match self
            .channel
            .borrow()
            .link
            .as_ref()
            .map(|l| l.connection.status())
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
            .link
            .as_ref()
            .and_then(|link| link.connection.error())
            .map(|e| GString::from(&e.to_string()))
            .unwrap_or_default()
    }

    /// Closes the connection: no more messages are accepted, messages not yet acknowledged are discarded
    /// (counted in [code]messages_discarded[/code], with a warning), and the other side is told (CLOSE is
    /// repeated until it answers, as long as this peer is polled). To close without losing any message, wait
    /// until [code]get_stats().messages_pending[/code] is 0.
    #[func]
    fn close(&mut self) {
        let channel = self.channel.get_mut();
        let now = channel.clock.now_us();
        let discarded = channel
            .link
            .as_mut()
            .map_or(0, |link| link.connection.close(now));
        warn_discarded("close()", discarded as u64);
        self.poll_and_announce();
    }

    /// Returns the counters and estimates: [code]rtt_ms[/code] (smoothed round-trip time),
    /// [code]rtt_variance_ms[/code], [code]rto_ms[/code] (retransmission timeout), [code]messages_sent[/code],
    /// [code]messages_received[/code], [code]messages_pending[/code] (put but not yet acknowledged),
    /// [code]messages_discarded[/code] (put, then discarded by [method close], a new [member inner], or a
    /// failure, before they were acknowledged; counted over this object's life), [code]datagrams_sent[/code],
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
        let channel = self.channel.borrow();
        let s = channel
            .link
            .as_ref()
            .map(|link| link.connection.stats())
            .unwrap_or_default();
        let ms = |us: u64| us as f64 / 1000.0;
        vdict! {
            "rtt_ms" => ms(s.srtt_us),
            "rtt_variance_ms" => ms(s.rttvar_us),
            "rto_ms" => ms(s.rto_us),
            "messages_sent" => s.messages_sent as i64,
            "messages_received" => s.messages_received as i64,
            "messages_pending" => s.messages_pending as i64,
            "messages_discarded" => (channel.discarded_before + s.messages_discarded) as i64,
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
            "inner_refused" => channel.inner_refused as i64,
        }
    }
}

/// Warns that starting over or closing discarded messages that were accepted and not yet acknowledged.
fn warn_discarded(what: &str, discarded: u64) {
    if discarded > 0 {
        godot_warn!(
            "ReliablePacketPeer: {what} closed the connection with {discarded} messages not yet acknowledged; they were discarded (messages_discarded) and the other side was told"
        );
    }
}

impl ReliablePacketPeer {
    /// The wrapped peer.
    fn inner_peer(&self) -> Option<Gd<PacketPeer>> {
        self.channel
            .borrow()
            .link
            .as_ref()
            .map(|link| link.inner.packet_peer())
    }

    fn poll_and_announce(&mut self) {
        let events = self.channel.get_mut().poll();
        self.announce(events);
    }

    /// Emits a signal for each event, deferred, so a handler that calls back into this peer finds it free.
    fn announce(&self, events: Vec<Event>) {
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
