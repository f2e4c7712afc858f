//! `ReliablePacketPeer`: the Godot face of [`peerkit_core::reliable`]. Moves datagrams between the inner peer
//! and the connection, and feeds it the clock; all protocol decisions are the connection's.

use std::cell::RefCell;

use bytes::Bytes;
use godot::classes::{IPacketPeerExtension, PacketPeer, PacketPeerExtension};
use godot::global::Error;
use godot::meta::conv::RawPtr;
use godot::prelude::*;
use peerkit_core::reliable::{Connection, ReliableConfig, ReliableError, Status};

use super::clock::Clock;
use super::error::GodotErrorCode;
use super::ffi;
use super::wrapping::{wraps, InnerPeer};

/// Everything `poll` touches, behind a `RefCell` because Godot calls `get_available_packet_count` through `&self`.
struct Channel {
    inner: Option<InnerPeer>,
    connection: Connection,
    clock: Clock,
    /// Reused for every datagram written.
    datagram: Vec<u8>,
    inner_refused: u64,
    /// Whether the failure has been announced (once, by the `connection_failed` signal).
    failure_announced: bool,
}

impl Channel {
    /// Reads every datagram the inner peer holds, runs the timers, and sends what the connection has to send.
    fn poll(&mut self) {
        let now = self.clock.now_us();
        let Some(inner) = self.inner.as_mut() else {
            return;
        };
        let waiting = inner.available();
        for _ in 0..waiting {
            let Some(datagram) = inner.take() else {
                break;
            };
            self.connection.handle_datagram(now, &datagram);
        }
        self.connection.handle_timeout(now);
        while self.connection.poll_transmit(now, &mut self.datagram) {
            match inner.put(&self.datagram) {
                Error::OK => {}
                // A full inner queue is congestion: the datagram counts as lost and is sent again later.
                Error::ERR_BUSY | Error::ERR_OUT_OF_MEMORY => self.inner_refused += 1,
                other => {
                    self.inner_refused += 1;
                    self.connection.fail_transport(format!(
                        "the inner peer refused a datagram of {} bytes with {other:?}{}",
                        self.datagram.len(),
                        if other == Error::ERR_INVALID_PARAMETER {
                            " (is mtu larger than it accepts?)"
                        } else {
                            ""
                        }
                    ));
                }
            }
        }
    }

    /// The failure message to announce, the first time the connection is seen failed.
    fn take_failure(&mut self) -> Option<String> {
        if self.connection.status() == Status::Failed && !self.failure_announced {
            self.failure_announced = true;
            return Some(
                self.connection
                    .error()
                    .map(|e| e.to_string())
                    .unwrap_or_default(),
            );
        }
        None
    }
}

/// A [PacketPeer] that delivers every message reliably and in order over any unreliable PacketPeer.
///
/// Wrap a [PacketPeerUDP], a [LinkConditioner], a [LocalPacketPeer], or any other packet peer: messages put on
/// one side come out of [method PacketPeer.get_packet] on the other exactly once, in order and intact, however
/// the transport loses, duplicates, reorders or corrupts datagrams — or the connection fails visibly
/// ([method get_status] becomes [constant STATUS_FAILED] and [signal connection_failed] is emitted).
/// Messages up to [member max_message_size] bytes are split into datagrams of at most [member mtu] bytes.
/// Both sides must use ReliablePacketPeer with the same [member max_message_size].
/// ```gdscript
/// var reliable := ReliablePacketPeer.new()
/// reliable.inner = udp_peer # connected with set_dest_address or connect_to_host
/// reliable.put_var({"chat": "hello"})
/// # every frame:
/// reliable.poll()
/// while reliable.get_available_packet_count() > 0:
///     print(reliable.get_var())
/// ```
/// Call [method poll] at least once per frame (get, put and [method PacketPeer.get_available_packet_count] poll
/// too): it sends acknowledgements, retransmissions and keepalives. When the send buffer is full,
/// [method PacketPeer.put_packet] returns [constant ERR_BUSY] and queues nothing. The checksum on every datagram
/// catches corruption; it is not a defence against a deliberate attacker (use [PacketPeerDTLS] underneath).
#[derive(GodotClass)]
#[class(tool, base = PacketPeerExtension)]
pub struct ReliablePacketPeer {
    /// The unreliable peer the messages travel over. Setting it starts a new connection (status
    /// [constant STATUS_CONNECTING]); setting it to this peer, or to a peer that wraps this peer, is refused.
    #[var(get = get_inner, set = set_inner)]
    inner: PhantomVar<Option<Gd<PacketPeer>>>,
    /// The largest datagram sent, in bytes (64 to 65507; default 1200, which fits in any internet path).
    /// Applies to what is sent from now on.
    #[var(get = get_mtu, set = set_mtu)]
    mtu: PhantomVar<i64>,
    /// The largest message, in bytes, sent or accepted (1 to 16777216; default 1048576). Both sides must agree.
    #[var(get = get_max_message_size, set = set_max_message_size)]
    max_message_size: PhantomVar<i64>,
    /// The connection fails when nothing has been heard from the other side for this many milliseconds
    /// (default 10000). Keepalives are sent every quarter of it (at most every second) while idle.
    #[var(get = get_timeout_ms, set = set_timeout_ms)]
    timeout_ms: PhantomVar<i64>,
    /// When [code]true[/code], time stands still except through [method advance] (for deterministic tests).
    /// Turning it on starts the manual clock at 0 and starts a new connection.
    #[var(get = is_using_manual_clock, set = set_use_manual_clock)]
    use_manual_clock: PhantomVar<bool>,
    channel: RefCell<Channel>,
    /// The message last handed to Godot by `_get_packet`; kept so its pointer stays valid until the next call.
    current: Bytes,
    base: Base<PacketPeerExtension>,
}

#[godot_api]
impl IPacketPeerExtension for ReliablePacketPeer {
    fn init(base: Base<PacketPeerExtension>) -> Self {
        let clock = Clock::real();
        Self {
            inner: PhantomVar::default(),
            mtu: PhantomVar::default(),
            max_message_size: PhantomVar::default(),
            timeout_ms: PhantomVar::default(),
            use_manual_clock: PhantomVar::default(),
            channel: RefCell::new(Channel {
                inner: None,
                connection: Connection::new(ReliableConfig::default(), clock.now_us()),
                clock,
                datagram: Vec::new(),
                inner_refused: 0,
                failure_announced: false,
            }),
            current: Bytes::new(),
            base,
        }
    }

    unsafe fn get_packet_rawptr(
        &mut self,
        r_buffer: RawPtr<*mut RawPtr<*const u8>>,
        r_buffer_size: RawPtr<*mut i32>,
    ) -> Error {
        ffi::guard("ReliablePacketPeer.get_packet", || {
            self.poll_and_announce();
            let channel = self.channel.get_mut();
            let empty = if channel.inner.is_none() {
                Error::ERR_UNCONFIGURED
            } else {
                Error::ERR_UNAVAILABLE
            };
            let message = channel.connection.recv();
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
                    if self.channel.get_mut().inner.is_none() {
                        godot_error!("ReliablePacketPeer.put_packet: no inner peer; set `inner` to the PacketPeer to send over");
                        return Error::ERR_UNCONFIGURED;
                    }
                    self.poll_and_announce();
                    let channel = self.channel.get_mut();
                    // Check before copying, so a refused message costs nothing.
                    let result = channel
                        .connection
                        .check_send(message.len())
                        .and_then(|()| channel.connection.send(Bytes::copy_from_slice(message)));
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
        let (count, failure) = match self.channel.try_borrow_mut() {
            Ok(mut channel) => {
                channel.poll();
                (channel.connection.ready_count(), channel.take_failure())
            }
            Err(_) => (0, None),
        };
        if let Some(message) = failure {
            self.announce_failure(message);
        }
        i32::try_from(count).unwrap_or(i32::MAX)
    }

    fn get_max_packet_size(&self) -> i32 {
        i32::try_from(self.get_max_message_size()).unwrap_or(i32::MAX)
    }
}

#[godot_api]
impl ReliablePacketPeer {
    /// Status: nothing heard from the other side yet (messages may already be put).
    #[constant]
    const STATUS_CONNECTING: i64 = 0;
    /// Status: the other side has been heard from.
    #[constant]
    const STATUS_CONNECTED: i64 = 1;
    /// Status: closed by [method close] or by the other side. Received messages stay readable.
    #[constant]
    const STATUS_CLOSED: i64 = 2;
    /// Status: failed (timeout, protocol version mismatch, transport failure); see [method get_error_message].
    /// Received messages stay readable; new ones are refused.
    #[constant]
    const STATUS_FAILED: i64 = 3;

    /// Emitted once when the connection fails, with the reason (the same text as [method get_error_message]).
    /// Emitted deferred, from the next idle time of the main loop.
    #[signal]
    fn connection_failed(message: GString);

    /// Returns the wrapped peer, or [code]null[/code].
    #[func]
    fn get_inner(&self) -> Option<Gd<PacketPeer>> {
        self.inner_peer()
    }

    /// Sets the wrapped peer and starts a new connection. Refused (with an error, leaving [member inner]
    /// unchanged) when [param peer] is this peer or wraps it.
    #[func]
    fn set_inner(&mut self, peer: Option<Gd<PacketPeer>>) {
        if let Some(candidate) = &peer {
            if wraps(candidate, self.base().instance_id()) {
                godot_error!("ReliablePacketPeer.inner: a ReliablePacketPeer cannot wrap itself, directly or through other peers");
                return;
            }
        }
        let channel = self.channel.get_mut();
        channel.inner = peer.map(InnerPeer::new);
        Self::restart(channel);
    }

    /// Returns [member mtu].
    #[func]
    fn get_mtu(&self) -> i64 {
        self.channel.borrow().connection.config().mtu as i64
    }

    /// Sets [member mtu]; an out-of-range value pushes an error and changes nothing.
    #[func]
    fn set_mtu(&mut self, mtu: i64) {
        match ReliableConfig::check_mtu(mtu) {
            Ok(mtu) => self.channel.get_mut().connection.set_mtu(mtu),
            Err(e) => godot_error!("ReliablePacketPeer.mtu: {e}"),
        }
    }

    /// Returns [member max_message_size].
    #[func]
    fn get_max_message_size(&self) -> i64 {
        self.channel.borrow().connection.config().max_message_size as i64
    }

    /// Sets [member max_message_size]; an out-of-range value pushes an error and changes nothing.
    #[func]
    fn set_max_message_size(&mut self, size: i64) {
        match ReliableConfig::check_max_message_size(size) {
            Ok(size) => self.channel.get_mut().connection.set_max_message_size(size),
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
        (self.channel.borrow().connection.config().timeout_us / 1000) as i64
    }

    /// Sets [member timeout_ms]; an out-of-range value (1 to 3600000) pushes an error and changes nothing.
    #[func]
    fn set_timeout_ms(&mut self, ms: i64) {
        match ReliableConfig::check_timeout_ms(ms) {
            Ok(us) => self.channel.get_mut().connection.set_timeout_us(us),
            Err(e) => godot_error!("ReliablePacketPeer.timeout_ms: {e}"),
        }
    }

    /// Returns [member use_manual_clock].
    #[func]
    fn is_using_manual_clock(&self) -> bool {
        self.channel.borrow().clock.is_manual()
    }

    /// Sets [member use_manual_clock].
    #[func]
    fn set_use_manual_clock(&mut self, manual: bool) {
        let channel = self.channel.get_mut();
        if manual != channel.clock.is_manual() {
            channel.clock.switch(manual);
            Self::restart(channel);
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
        self.poll_and_announce();
    }

    /// Returns this peer's clock in milliseconds.
    #[func]
    fn get_time_msec(&self) -> f64 {
        self.channel.borrow().clock.now_us() as f64 / 1000.0
    }

    /// Receives datagrams from [member inner], retransmits what was lost, sends acknowledgements and
    /// keepalives, and checks the timeout. Call it every frame.
    #[func]
    fn poll(&mut self) {
        self.poll_and_announce();
    }

    /// Returns [constant STATUS_CONNECTING], [constant STATUS_CONNECTED], [constant STATUS_CLOSED] or
    /// [constant STATUS_FAILED].
    #[func]
    fn get_status(&self) -> i64 {
        match self.channel.borrow().connection.status() {
            Status::Connecting => Self::STATUS_CONNECTING,
            Status::Connected => Self::STATUS_CONNECTED,
            Status::Closed => Self::STATUS_CLOSED,
            Status::Failed => Self::STATUS_FAILED,
        }
    }

    /// Returns why the connection failed or was closed by the other side, or an empty string.
    #[func]
    fn get_error_message(&self) -> GString {
        self.channel
            .borrow()
            .connection
            .error()
            .map(|e| GString::from(&e.to_string()))
            .unwrap_or_default()
    }

    /// Closes the connection: no more messages are accepted and the other side is told (best effort). Messages
    /// not yet acknowledged may be lost: to close without losing any, wait until
    /// [code]get_stats().messages_pending[/code] is 0.
    #[func]
    fn close(&mut self) {
        let channel = self.channel.get_mut();
        channel.connection.close();
        channel.poll();
    }

    /// Returns the counters and estimates: [code]rtt_ms[/code] (smoothed round-trip time),
    /// [code]rtt_variance_ms[/code], [code]rto_ms[/code] (retransmission timeout), [code]messages_sent[/code],
    /// [code]messages_received[/code], [code]messages_pending[/code] (put but not yet acknowledged),
    /// [code]datagrams_sent[/code], [code]datagrams_received[/code], [code]retransmissions[/code],
    /// [code]bytes_in_flight[/code], [code]congestion_window[/code] (datagrams), and datagrams dropped:
    /// [code]dropped_corrupt[/code] (checksum), [code]dropped_duplicate[/code], [code]dropped_invalid[/code]
    /// (foreign or malformed), [code]dropped_no_room[/code] (receive buffer full; sent again later), and
    /// [code]inner_refused[/code] (datagrams the inner peer refused; they are sent again).
    #[func]
    fn get_stats(&self) -> VarDictionary {
        let channel = self.channel.borrow();
        let s = channel.connection.stats();
        let ms = |us: u64| us as f64 / 1000.0;
        vdict! {
            "rtt_ms" => ms(s.srtt_us),
            "rtt_variance_ms" => ms(s.rttvar_us),
            "rto_ms" => ms(s.rto_us),
            "messages_sent" => s.messages_sent as i64,
            "messages_received" => s.messages_received as i64,
            "messages_pending" => s.messages_pending as i64,
            "datagrams_sent" => s.datagrams_sent as i64,
            "datagrams_received" => s.datagrams_received as i64,
            "retransmissions" => s.retransmissions as i64,
            "bytes_in_flight" => s.bytes_in_flight as i64,
            "congestion_window" => s.congestion_window,
            "dropped_corrupt" => s.dropped_corrupt as i64,
            "dropped_duplicate" => s.dropped_duplicate as i64,
            "dropped_invalid" => s.dropped_invalid as i64,
            "dropped_no_room" => s.dropped_no_room as i64,
            "inner_refused" => channel.inner_refused as i64,
        }
    }
}

impl ReliablePacketPeer {
    /// The wrapped peer, for the wrapping-cycle check.
    pub(crate) fn inner_peer(&self) -> Option<Gd<PacketPeer>> {
        self.channel
            .borrow()
            .inner
            .as_ref()
            .map(InnerPeer::packet_peer)
    }

    /// Starts a new connection with the current settings, at the current time.
    fn restart(channel: &mut Channel) {
        let config = channel.connection.config().clone();
        channel.connection = Connection::new(config, channel.clock.now_us());
        channel.failure_announced = false;
    }

    fn poll_and_announce(&mut self) {
        let channel = self.channel.get_mut();
        channel.poll();
        if let Some(message) = channel.take_failure() {
            self.announce_failure(message);
        }
    }

    /// Emits `connection_failed` deferred, so a handler that calls back into this peer finds it free.
    fn announce_failure(&self, message: String) {
        godot_warn!("ReliablePacketPeer: connection failed: {message}");
        let mut object = self.to_gd().upcast::<Object>();
        object.call_deferred(
            "emit_signal",
            &[
                "connection_failed".to_variant(),
                GString::from(&message).to_variant(),
            ],
        );
    }
}
