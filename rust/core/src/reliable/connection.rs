//! The connection: the handshake, both halves, the timers, the status, and the datagrams that carry them.

use std::collections::VecDeque;

use bytes::Bytes;

use super::packet::{self, DataPlace, Datagram, DecodeError, Hello, Ids, Kind, RefuseReason};
use super::recv::{Arrival, Receiver};
use super::send::{RttEstimator, Sender};
use super::seq::Seq;
use super::unreliable::{Unreliable, UnreliableArrival, UnreliableKind};
use super::{
    Event, Received, ReliableConfig, ReliableError, ReliableStats, Status, TransferMode,
    Unfinished, MIN_MTU,
};
use crate::link::Micros;
use crate::rng::Rng;

/// While its round trip is asked for ([`Connection::want_rtt`]), a side that has sent no DATA for this long (a
/// receiver that only acknowledges) probes the round trip this often, so its estimate follows the path instead
/// of staying the handshake's.
const PROBE_INTERVAL_US: Micros = 200_000;
/// How long one [`Connection::want_rtt`] keeps the probes going.
const PROBE_WANTED_US: Micros = 2_000_000;

/// How many times `close` sends CLOSE, a retransmission timeout apart and doubling, before giving up on an
/// answer.
const CLOSE_ATTEMPTS: u32 = 8;

/// The other side, as its HELLO described it.
#[derive(Debug, Clone, Copy)]
struct Peer {
    id: u32,
    hello: Hello,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Sending HELLOs until the peer is known and has shown it knows this side's id.
    Handshake,
    /// Both sides know each other: data flows.
    Established,
    /// Closed by either side (CLOSE may still be repeated until answered).
    Closed,
    /// Failed; see `error`.
    Failed,
}

/// A CLOSE being repeated until the peer answers.
#[derive(Debug, Clone, Copy)]
struct Closing {
    due: Micros,
    attempts: u32,
}

/// One end of a reliable, ordered message connection. See the module documentation for the order of calls.
#[derive(Debug)]
pub struct Connection {
    config: ReliableConfig,
    sender: Sender,
    receiver: Receiver,
    /// Unreliable messages waiting to go, and those arriving (from the first one on).
    unreliable: Option<Box<Unreliable>>,
    /// The redundant copies of the datagram being written (kept to reuse the allocation).
    copies: Vec<super::send::Outgoing>,
    phase: Phase,
    error: Option<ReliableError>,
    local_id: u32,
    peer: Option<Peer>,
    /// What this side's HELLOs announce; fixed once the first one is sent.
    announced: Hello,
    hellos_sent: u32,
    hello_due: Micros,
    /// Whether the next HELLO answers the peer's (rather than repeating ours after a timeout).
    hello_answers: bool,
    /// Whether a HELLO was repeated after a timeout: the round trip since the first then includes the wait.
    hello_repeated: bool,
    /// A failed handshake still answers the peer once, so it finds the same mismatch instead of timing out.
    parting_hello: bool,
    closing: Option<Closing>,
    close_ack_due: bool,
    /// When to probe a receiver whose credit is used up, if this side is blocked by it.
    probe_due: Option<Micros>,
    /// Whether any datagram of this protocol version has been accepted from anyone (before that, a datagram of
    /// another version means the other side speaks another version).
    heard_peer: bool,
    events: VecDeque<Event>,
    last_received: Micros,
    last_sent: Micros,
    stats: ReliableStats,
    /// When `poll_transmit` last began a round, and the smoothed gap between rounds: how often this side is
    /// driven.
    last_poll: Option<Micros>,
    poll_interval_us: Micros,
    /// When the first HELLO went out.
    first_hello_at: Option<Micros>,
    /// Started by the other side's HELLO (a server's connection): HELLOs only answer the peer's, one for
    /// each, and are never repeated on a timer, so a forged sender address cannot be sent more than it sent.
    responder: bool,
    /// Datagrams the transport could not send yet, and what it said to do about it (reported by the
    /// handshake's timeout).
    not_ready: Option<(u64, String)>,
    /// A server answered a HELLO that too many connections were pending: the handshake goes on, and its
    /// timeout reports that refusal.
    refused_busy: bool,
    /// When this side last sent DATA or a probe (its own round-trip samples come from either).
    last_sampled_send: Micros,
    /// The round-trip probe in flight: its token and when it went out.
    probe_sent: Option<(u32, Micros)>,
    /// A probe of the peer's to answer: its token and when it arrived.
    echo_due: Option<(u32, Micros)>,
    /// Until when the owner wants a fresh round trip (probes are sent only then, so a connection nobody asks
    /// about sends nothing extra).
    probe_wanted_until: Option<Micros>,
}

impl Connection {
    /// A connection starting at time `now`, drawing its connection id and initial sequence number from `seed`
    /// (give each connection its own: from the OS normally, from a test's seed for determinism). The idle
    /// timeout counts from `now`.
    pub fn new(config: ReliableConfig, now: Micros, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let local_id = loop {
            let id = rng.next_u64() as u32;
            if id != 0 {
                break id;
            }
        };
        let initial_seq = Seq(config.first_seq.unwrap_or(rng.next_u64() as u32));
        let rtt = RttEstimator::new(config.initial_rto_us, config.min_rto_us, config.max_rto_us);
        let receiver = Receiver::new(
            Seq(0),
            config.max_window,
            config.receive_buffer_bytes,
            config.max_message_size,
        );
        let announced = Hello {
            initial_seq,
            mtu: config.mtu as u32,
            max_message_size: config.max_message_size as u32,
            receive_window: receiver.window_bytes().min(u32::MAX as u64) as u32,
        };
        Self {
            sender: Sender::new(
                initial_seq,
                config.mtu,
                config.max_window,
                config.max_congestion_window,
                rtt,
            ),
            receiver,
            unreliable: None,
            copies: Vec::new(),
            config,
            phase: Phase::Handshake,
            error: None,
            local_id,
            peer: None,
            announced,
            hellos_sent: 0,
            hello_due: now,
            hello_answers: false,
            hello_repeated: false,
            parting_hello: false,
            closing: None,
            close_ack_due: false,
            probe_due: None,
            heard_peer: false,
            events: VecDeque::new(),
            last_received: now,
            last_sent: now,
            stats: ReliableStats::default(),
            last_poll: None,
            poll_interval_us: 0,
            first_hello_at: None,
            responder: false,
            not_ready: None,
            refused_busy: false,
            last_sampled_send: now,
            probe_sent: None,
            echo_due: None,
            probe_wanted_until: None,
        }
    }

    /// A connection started by the other side, at `now`: as [`new`](Self::new), except that it sends no HELLO
    /// of its own; it answers each HELLO it is given with one (feed it the HELLO that started it next).
    pub fn incoming(config: ReliableConfig, now: Micros, seed: u64) -> Self {
        let mut connection = Self::new(config, now, seed);
        connection.responder = true;
        connection.hello_due = Micros::MAX;
        connection
    }

    /// The transport could not send a datagram yet, and said to do `hint`: the connection keeps trying, and if
    /// its handshake times out the message says how many were refused and what to do.
    pub fn note_transport_not_ready(&mut self, hint: &str) {
        let count = self.not_ready.as_ref().map_or(0, |(n, _)| *n);
        self.not_ready = Some((count + 1, hint.to_string()));
    }

    /// The settings.
    pub fn config(&self) -> &ReliableConfig {
        &self.config
    }

    /// This side's connection id.
    pub fn local_id(&self) -> u32 {
        self.local_id
    }

    /// Whether `datagram` claims to be addressed to this connection (its receiver id is this side's), without
    /// checking anything else: for sorting datagrams between connections that share a transport.
    pub fn is_addressed_to(&self, datagram: &[u8]) -> bool {
        packet::addressed_to(datagram) == Some(self.local_id)
    }

    /// The peer's connection id, once its HELLO has arrived.
    pub fn peer_id(&self) -> Option<u32> {
        self.peer.map(|p| p.id)
    }

    /// The largest datagram this side sends now: its `mtu`, and once connected no more than the peer announced.
    pub fn send_mtu(&self) -> usize {
        match self.peer {
            Some(peer) if self.phase != Phase::Handshake => {
                self.config.mtu.min(peer.hello.mtu as usize)
            }
            _ => self.config.mtu,
        }
    }

    /// Changes the datagram size. Before the handshake starts it is also what this side accepts; after, it
    /// changes only what this side sends, never beyond what the peer announced.
    pub fn set_mtu(&mut self, mtu: usize) {
        self.config.mtu = mtu;
        if self.hellos_sent == 0 {
            self.announced.mtu = mtu as u32;
        }
        self.sender.set_mtu(self.send_mtu());
    }

    /// Changes the largest message sent or accepted. Returns false when the handshake has already announced
    /// the old value: the change then applies to the next connection only.
    pub fn set_max_message_size(&mut self, size: usize) -> bool {
        self.config.max_message_size = size;
        if self.hellos_sent > 0 {
            return false;
        }
        self.receiver
            .set_max_message_size(size, self.config.receive_buffer_bytes);
        self.announced.max_message_size = size as u32;
        self.announced.receive_window = self.receiver.window_bytes().min(u32::MAX as u64) as u32;
        true
    }

    /// The largest message this connection sends or accepts: what it announced, or will announce.
    pub fn max_message_size(&self) -> usize {
        self.announced.max_message_size as usize
    }

    /// Changes the idle timeout.
    pub fn set_timeout_us(&mut self, timeout_us: Micros) {
        self.config.timeout_us = timeout_us;
    }

    /// Where the connection stands.
    pub fn status(&self) -> Status {
        match self.phase {
            Phase::Handshake => Status::Connecting,
            Phase::Established => Status::Connected,
            Phase::Closed => Status::Closed,
            Phase::Failed => Status::Failed,
        }
    }

    /// Why the connection failed or was closed by the peer.
    pub fn error(&self) -> Option<&ReliableError> {
        self.error.as_ref()
    }

    /// The next thing that happened to the connection (each happens once), oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Whether this closed connection still has datagrams to send (CLOSE not yet answered, or an answer owed):
    /// keep polling it, over the same transport, until this is false.
    pub fn is_draining(&self) -> bool {
        self.phase == Phase::Closed && (self.closing.is_some() || self.close_ack_due)
    }

    fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Handshake | Phase::Established)
    }

    fn fail(&mut self, error: ReliableError) {
        if self.is_open() {
            self.let_go();
            self.phase = Phase::Failed;
            self.events.push_back(Event::Failed(error.clone()));
            self.error = Some(error);
        }
    }

    /// Drops what the sender still holds, counted by kind.
    fn let_go(&mut self) -> Unfinished {
        let unfinished = self.sender.discard_all();
        if let Some(u) = self.unreliable.as_mut() {
            self.stats.unreliable_dropped += u.out.clear();
        }
        self.stats.messages_discarded += unfinished.unsent as u64;
        self.stats.messages_unconfirmed += unfinished.unconfirmed as u64;
        unfinished
    }

    /// Fails the connection because the transport underneath cannot carry its datagrams.
    pub fn fail_transport(&mut self, reason: String) {
        self.fail(ReliableError::Transport(reason));
    }

    /// Whether a message of `len` bytes would be accepted now (the checks `send` makes).
    pub fn check_send(&self, len: usize) -> Result<(), ReliableError> {
        if !self.is_open() {
            return Err(ReliableError::NotOpen(self.status()));
        }
        let max = self.max_message_size();
        if len > max {
            return Err(ReliableError::MessageTooLarge { size: len, max });
        }
        let pending = self.sender.pending_bytes();
        let limit = self.config.send_buffer_bytes.max(max);
        if pending > 0 && pending + len > limit {
            return Err(ReliableError::Busy { pending, limit });
        }
        Ok(())
    }

    /// Queues a reliable message on channel 0, or refuses it whole. Messages queued during the handshake are
    /// sent once it completes.
    pub fn send(&mut self, message: Bytes) -> Result<(), ReliableError> {
        self.send_on(0, TransferMode::Reliable, message)
    }

    /// Queues a message on `channel` in `mode`, or refuses it whole. Reliable messages are delivered once, in
    /// order within their channel, whatever happens on other channels; unreliable ones are sent once (cut into
    /// fragments when larger than a datagram: losing one loses the message) and, while too many wait to be
    /// sent, the oldest give way (counted in `unreliable_dropped`). Only reliable messages count against the
    /// send buffer.
    pub fn send_on(
        &mut self,
        channel: u8,
        mode: TransferMode,
        message: Bytes,
    ) -> Result<(), ReliableError> {
        match mode {
            TransferMode::Reliable => {
                self.check_send(message.len())?;
                self.sender.push_on(channel, message);
                self.stats.messages_sent += 1;
            }
            TransferMode::Unreliable | TransferMode::UnreliableOrdered => {
                if !self.is_open() {
                    return Err(ReliableError::NotOpen(self.status()));
                }
                let max = self.max_message_size();
                if message.len() > max {
                    return Err(ReliableError::MessageTooLarge {
                        size: message.len(),
                        max,
                    });
                }
                let kind = UnreliableKind {
                    channel,
                    ordered: mode == TransferMode::UnreliableOrdered,
                };
                self.unreliable
                    .get_or_insert_with(Default::default)
                    .out
                    .push(kind, message);
                self.stats.unreliable_sent += 1;
            }
        }
        Ok(())
    }

    /// The payload of the next message received, whatever its channel and mode (see
    /// [`recv_message`](Self::recv_message)).
    pub fn recv(&mut self) -> Option<Bytes> {
        self.recv_message().map(|m| m.payload)
    }

    /// The next message received, with its channel and mode: reliable messages first (in order within their
    /// channel), then unreliable ones in the order they completed.
    pub fn recv_message(&mut self) -> Option<Received> {
        if let Some((channel, payload)) = self.receiver.take_message_on() {
            self.stats.messages_received += 1;
            return Some(Received {
                channel,
                mode: TransferMode::Reliable,
                payload,
            });
        }
        let (kind, payload) = self.unreliable.as_mut()?.inn.take()?;
        self.stats.unreliable_received += 1;
        Some(Received {
            channel: kind.channel,
            mode: if kind.ordered {
                TransferMode::UnreliableOrdered
            } else {
                TransferMode::Unreliable
            },
            payload,
        })
    }

    /// How many received messages wait to be taken.
    pub fn ready_count(&self) -> usize {
        self.receiver.ready_count() + self.unreliable.as_ref().map_or(0, |u| u.inn.ready_count())
    }

    /// Takes in a datagram that arrived at `now`. Whatever its bytes, it never panics, and its cost is bounded by
    /// the datagrams in flight. The checks are made in the order docs/PROTOCOL.md gives.
    pub fn handle_datagram(&mut self, now: Micros, datagram: &[u8]) {
        self.handle_decoded(now, datagram.len(), packet::decode(datagram));
    }

    /// As [`handle_datagram`](Self::handle_datagram), for a datagram already in a `Bytes`: a DATA payload is kept
    /// as a slice of it rather than copied.
    pub fn handle_datagram_bytes(&mut self, now: Micros, datagram: &Bytes) {
        self.handle_decoded(now, datagram.len(), packet::decode_bytes(datagram));
    }

    fn handle_decoded(&mut self, now: Micros, len: usize, decoded: Result<Datagram, DecodeError>) {
        let decoded = match decoded {
            Ok(d) => d,
            Err(DecodeError::Corrupt) => {
                self.stats.dropped_corrupt += 1;
                return;
            }
            Err(DecodeError::Version(theirs)) => {
                self.stats.dropped_invalid += 1;
                self.stats.dropped_other_version += 1;
                // Before anyone of our version has answered, the other side speaks another version; after,
                // it is a stray and changes nothing.
                if self.phase == Phase::Handshake && !self.heard_peer {
                    self.fail(ReliableError::VersionMismatch {
                        theirs,
                        ours: packet::VERSION,
                    });
                }
                return;
            }
            Err(DecodeError::Foreign | DecodeError::Malformed) => {
                self.stats.dropped_invalid += 1;
                return;
            }
        };
        if len > self.announced.mtu as usize {
            self.stats.dropped_invalid += 1;
            return;
        }
        if !self.is_ours(&decoded) {
            self.stats.dropped_other_connection += 1;
            return;
        }
        match self.phase {
            Phase::Failed => {}
            Phase::Closed => self.handle_after_close(decoded),
            Phase::Handshake | Phase::Established => self.handle_open(now, decoded),
        }
    }

    /// Whether a datagram belongs to this connection: addressed to this side's id (or a first HELLO, addressed
    /// to nobody yet), and from the peer (or, while the handshake is unconfirmed, a HELLO from a new peer).
    fn is_ours(&self, d: &Datagram) -> bool {
        let first_hello = d.kind == Kind::Hello && d.ids.dst == 0;
        if d.ids.dst != self.local_id && !first_hello {
            return false;
        }
        match self.peer {
            Some(peer) if peer.id == d.ids.src => true,
            // Until the peer has shown it knows our id, a newer HELLO may replace a stale one, and a server may
            // refuse us.
            _ => matches!(d.kind, Kind::Hello | Kind::Refuse) && self.phase == Phase::Handshake,
        }
    }

    fn handle_after_close(&mut self, d: Datagram) {
        match d.kind {
            // The peer repeats its CLOSE until answered: answer every one.
            Kind::Close => self.close_ack_due = true,
            Kind::CloseAck => self.closing = None,
            _ => {}
        }
    }

    fn handle_open(&mut self, now: Micros, d: Datagram) {
        if let Some(reason) = d.refused {
            // Only a connection still in its handshake can be refused; later, a REFUSE is a stray.
            if self.phase == Phase::Handshake {
                // Counted, but a refusal does not keep the handshake alive: its timeout still runs.
                self.heard_peer = true;
                self.stats.datagrams_received += 1;
                if reason == RefuseReason::TooManyPending {
                    // A passing crowd at the door: HELLOs go on (with their backoff) until a place frees or
                    // the handshake times out, which then names this reason.
                    self.refused_busy = true;
                } else {
                    self.fail(ReliableError::Refused(reason));
                }
            }
            return;
        }
        if let Some(hello) = d.hello {
            self.accepted(now);
            self.on_hello(now, d.ids, hello);
            return;
        }
        if self.phase == Phase::Handshake {
            // From the known peer and addressed to us (checked by `is_ours`): it knows our id.
            self.establish(now, false);
            if !self.is_open() {
                return;
            }
        }
        if d.kind == Kind::CloseAck {
            return;
        }
        if let Some(fragment) = d.unreliable {
            self.accepted(now);
            let unreliable = self.unreliable.get_or_insert_with(Default::default);
            match unreliable.inn.receive(
                fragment,
                self.config.max_message_size,
                self.config.receive_buffer_bytes,
            ) {
                UnreliableArrival::Delivered | UnreliableArrival::Held => {}
                UnreliableArrival::Late => self.stats.unreliable_late += 1,
                UnreliableArrival::Invalid => self.stats.dropped_invalid += 1,
            }
            return;
        }
        let Some(acks) = d.acks else { return };
        if self.sender.on_acks(now, acks).is_err() {
            self.stats.dropped_invalid += 1;
            return;
        }
        self.accepted(now);
        match d.kind {
            Kind::Data => {
                // Copies first, the datagram's own fragment last (the most recent arrival).
                for fragment in d.bundled.into_iter().chain(d.fragment) {
                    let copy = fragment.copy;
                    match self.receiver.receive(now, fragment) {
                        Ok(Arrival::New) if copy => self.stats.copies_useful += 1,
                        Ok(Arrival::New) => {}
                        // A copy of what already arrived is what copies are: not a duplicate the link made.
                        Ok(Arrival::Duplicate) if copy => {}
                        Ok(Arrival::Duplicate) => self.stats.dropped_duplicate += 1,
                        Ok(Arrival::NoRoom) => self.stats.dropped_no_room += 1,
                        Err(e) => {
                            self.fail(e);
                            return;
                        }
                    }
                }
            }
            // A probe is answered by an echo (which carries acknowledgements too); a plain PING by an ACK.
            Kind::Ping => match d.probe {
                Some(token) => self.echo_due = Some((token, now)),
                None => self.receiver.request_ack(),
            },
            Kind::Ack => {
                if let (Some((token, delay_us)), Some((sent_token, sent_at))) =
                    (d.echo, self.probe_sent)
                {
                    if token == sent_token {
                        self.probe_sent = None;
                        let rtt = now
                            .saturating_sub(sent_at)
                            .saturating_sub(delay_us as Micros);
                        self.sender.rtt_probe_sample(now, rtt.max(1));
                    }
                }
            }
            Kind::Close => {
                self.let_go();
                self.phase = Phase::Closed;
                self.error = Some(ReliableError::PeerClosed);
                self.close_ack_due = true;
                self.events.push_back(Event::Closed { by_peer: true });
            }
            Kind::Hello | Kind::CloseAck | Kind::Refuse | Kind::Unreliable => {}
        }
    }

    fn accepted(&mut self, now: Micros) {
        self.heard_peer = true;
        self.stats.datagrams_received += 1;
        self.last_received = self.last_received.max(now);
    }

    fn on_hello(&mut self, now: Micros, ids: Ids, hello: Hello) {
        if self.phase == Phase::Established {
            // The peer has not heard from us since our HELLO: answer, so it learns that we have its HELLO.
            self.receiver.request_ack();
            return;
        }
        if self.peer.is_none_or(|p| p.id != ids.src) {
            self.peer = Some(Peer { id: ids.src, hello });
            self.receiver.start_at(hello.initial_seq);
        }
        if ids.dst == self.local_id {
            self.establish(now, true);
        } else {
            // The peer does not know our id yet: answer at once, addressed to it.
            self.hello_due = now;
            self.hello_answers = true;
        }
    }

    /// The peer is known and knows us, as of `now`: check what it announced, then let data flow. `by_answer`:
    /// the peer's HELLO answering ours told us (rather than its next datagram).
    fn establish(&mut self, now: Micros, by_answer: bool) {
        let Some(peer) = self.peer else { return };
        // The time since our first HELLO seeds the round-trip estimate, so a path slower than the initial RTO
        // does not start with spurious timeouts. It is the round trip when the peer's HELLO answers our first
        // one; when our HELLO was repeated on its timer, or the peer's next datagram told us instead (its answer
        // was lost), it is only an upper bound: good for the timeout (it errs towards a later one), no measure
        // of the path for the congestion controller.
        if let Some(sent) = self.first_hello_at {
            let exact = by_answer && !self.hello_repeated;
            self.sender
                .handshake_rtt(now, now.saturating_sub(sent), exact);
        }
        let theirs = peer.hello;
        if theirs.max_message_size != self.announced.max_message_size {
            // Answer once, so the peer completes its side of the handshake and reports the same mismatch.
            self.parting_hello = self.phase == Phase::Handshake;
            self.fail(ReliableError::SettingMismatch {
                name: "max_message_size",
                ours: self.announced.max_message_size as u64,
                theirs: theirs.max_message_size as u64,
            });
            return;
        }
        if (theirs.mtu as usize) < MIN_MTU {
            self.fail(ReliableError::ProtocolViolation(
                "the peer announced an mtu below 64 bytes",
            ));
            return;
        }
        self.phase = Phase::Established;
        self.sender.set_mtu(self.send_mtu());
        self.sender.grant_credit(theirs.receive_window as u64);
        // Tell the peer at once that we have its HELLO, in case it is still waiting for that.
        self.receiver.request_ack();
        self.events.push_back(Event::Connected);
    }

    /// Applies the timers due at `now`: the idle timeout and retransmission timeouts. Call it when
    /// [`poll_timeout`](Self::poll_timeout) is due (calling it more often is harmless: with nothing due it does
    /// nothing).
    pub fn handle_timeout(&mut self, now: Micros) {
        if !self.is_open() {
            return;
        }
        if now.saturating_sub(self.last_received) >= self.config.timeout_us {
            let ms = self.config.timeout_us / 1000;
            self.fail(if self.phase == Phase::Handshake && self.refused_busy {
                ReliableError::Refused(RefuseReason::TooManyPending)
            } else if self.phase == Phase::Handshake {
                ReliableError::HandshakeTimedOut {
                    ms,
                    foreign: self.stats.dropped_invalid,
                    not_ready: self.not_ready.clone(),
                }
            } else {
                ReliableError::TimedOut { ms }
            });
            return;
        }
        self.sender.on_timeout(now);
    }

    /// When `handle_timeout` or `poll_transmit` should next be called, if ever.
    pub fn poll_timeout(&self) -> Option<Micros> {
        if self.close_ack_due || self.parting_hello {
            return Some(self.last_sent);
        }
        match self.phase {
            Phase::Failed => None,
            Phase::Closed => self.closing.map(|c| c.due),
            Phase::Handshake => {
                Some((self.last_received + self.config.timeout_us).min(self.hello_due))
            }
            Phase::Established => {
                let mut due = (self.last_received + self.config.timeout_us)
                    .min(self.last_sent + self.config.keepalive_us());
                for timer in [
                    self.sender.timeout_due(),
                    self.probe_due,
                    self.sender.pacing_due(),
                    self.sender.tail_probe_due(),
                    self.next_probe(),
                    // A probe of the peer's waits for its echo.
                    self.echo_due.map(|(_, arrived)| arrived),
                ]
                .into_iter()
                .flatten()
                {
                    due = due.min(timer);
                }
                Some(due)
            }
        }
    }

    fn ids(&self) -> Ids {
        Ids {
            dst: self.peer.map_or(0, |p| p.id),
            src: self.local_id,
        }
    }

    /// Writes the next datagram to send into `buf` (replacing its contents) and returns true, or returns false
    /// when there is nothing to send now.
    ///
    /// Call it until it returns false every time the connection is driven: the gaps between those rounds tell the
    /// congestion control how coarse the caller's view of time is (acknowledgements are only seen then).
    #[must_use]
    pub fn poll_transmit(&mut self, now: Micros, buf: &mut Vec<u8>) -> bool {
        self.note_round(now);
        let ids = self.ids();
        if self.close_ack_due {
            self.close_ack_due = false;
            packet::encode_close_ack(buf, ids);
            return self.sent(now);
        }
        match self.phase {
            Phase::Failed if std::mem::take(&mut self.parting_hello) => {
                packet::encode_hello(buf, ids, self.announced);
                self.sent(now)
            }
            Phase::Failed => false,
            Phase::Closed => self.transmit_close(now, ids, buf),
            Phase::Handshake => {
                if now < self.hello_due {
                    return false;
                }
                if self.responder {
                    // One answer per HELLO received; the peer repeats its own.
                    if !std::mem::take(&mut self.hello_answers) {
                        self.hello_due = Micros::MAX;
                        return false;
                    }
                    packet::encode_hello(buf, ids, self.announced);
                    self.hellos_sent += 1;
                    self.first_hello_at.get_or_insert(now);
                    self.hello_due = Micros::MAX;
                    return self.sent(now);
                }
                packet::encode_hello(buf, ids, self.announced);
                if self.hellos_sent > 0 && !std::mem::take(&mut self.hello_answers) {
                    self.hello_repeated = true;
                }
                self.hellos_sent += 1;
                self.first_hello_at.get_or_insert(now);
                // Repeated, a retransmission timeout apart and doubling, until the peer answers.
                let backoff = 1u64 << self.hellos_sent.min(4);
                self.hello_due = now + (self.config.initial_rto_us * backoff / 2);
                self.sent(now)
            }
            Phase::Established => self.transmit_established(now, ids, buf),
        }
    }

    /// Measures the gap since the previous round of `poll_transmit` calls (the first call at a new `now`).
    fn note_round(&mut self, now: Micros) {
        if self.last_poll == Some(now) {
            return;
        }
        if let Some(last) = self.last_poll {
            // Smoothed like srtt; the gap is capped so one long stall does not blind the estimate.
            let gap = now.saturating_sub(last).min(100_000);
            self.poll_interval_us = (7 * self.poll_interval_us + gap) / 8;
            self.sender.set_poll_interval(self.poll_interval_us);
        }
        self.last_poll = Some(now);
    }

    fn transmit_close(&mut self, now: Micros, ids: Ids, buf: &mut Vec<u8>) -> bool {
        let Some(closing) = self.closing.as_mut() else {
            return false;
        };
        if now < closing.due {
            return false;
        }
        if closing.attempts >= CLOSE_ATTEMPTS {
            self.closing = None;
            return false;
        }
        closing.attempts += 1;
        let rto = self.sender.rtt().rto_us();
        closing.due = now + rto.saturating_mul(1 << closing.attempts.min(5));
        packet::encode_control(buf, Kind::Close, ids, self.receiver.acks(now));
        self.sent(now)
    }

    fn transmit_established(&mut self, now: Micros, ids: Ids, buf: &mut Vec<u8>) -> bool {
        if let Some((token, arrived)) = self.echo_due.take() {
            let delay = now.saturating_sub(arrived).min(u32::MAX as Micros) as u32;
            packet::encode_echo(buf, ids, self.receiver.acks(now), token, delay);
            return self.sent(now);
        }
        // Unreliable messages go first (they are worth least late) and take the pacer's tokens as DATA does, so
        // the congestion controller's rate covers both.
        let waiting = self.unreliable.as_ref().is_some_and(|u| u.out.has_next());
        if waiting && self.sender.pace_other(now) {
            let mtu = self.send_mtu();
            if let Some(fragment) = self.unreliable.as_mut().and_then(|u| u.out.pop(mtu)) {
                packet::encode_unreliable(buf, ids, &fragment);
                return self.sent(now);
            }
        }
        if let Some(out) = self.sender.next_fragment(now) {
            self.probe_due = None;
            self.last_sampled_send = now;
            self.stats.payload_bytes_sent += out.payload.len() as u64;
            let place = DataPlace {
                seq: out.seq,
                channel: out.channel,
                chan_seq: out.chan_seq,
            };
            packet::begin_data(buf, ids, self.receiver.acks(now));
            // A thin stream's recent small fragments ride along, so the loss of one is repaired by this datagram.
            let own = packet::bundled_len(out.payload.len(), out.message_len.is_some());
            let room = self.send_mtu().saturating_sub(buf.len() + own);
            let mut copies = std::mem::take(&mut self.copies);
            self.sender.copies(room, Some(out.seq), &mut copies);
            self.put_copies(buf, &copies, true);
            self.copies = copies;
            packet::put_fragment(buf, place, out.message_len, &out.payload, false, false);
            packet::seal(buf);
            return self.sent(now);
        }
        // Nothing followed a thin stream's last fragment: a tail probe carries copies of what is in flight.
        if self.sender.tail_probe_due().is_some_and(|due| now >= due) {
            let mut copies = std::mem::take(&mut self.copies);
            self.sender.copies(
                self.send_mtu().saturating_sub(packet::CONTROL_LEN),
                None,
                &mut copies,
            );
            self.sender.note_tail_probe(now);
            let sent = !copies.is_empty();
            if sent {
                // The acknowledgements are taken only for a datagram that goes: taking them marks them told.
                packet::begin_data(buf, ids, self.receiver.acks(now));
                self.put_copies(buf, &copies, false);
                packet::seal(buf);
                self.stats.tail_probes += 1;
            }
            self.copies = copies;
            if sent {
                return self.sent(now);
            }
        }
        if self.receiver.wants_ack() {
            packet::encode_control(buf, Kind::Ack, ids, self.receiver.acks(now));
            return self.sent(now);
        }
        // Blocked by the receiver's credit with nothing in flight to bring an acknowledgement: probe, once a
        // retransmission timeout, so a lost credit update costs one timeout, not a keepalive interval.
        if self.sender.is_flow_blocked() && self.sender.in_flight() == 0 {
            let due = *self
                .probe_due
                .get_or_insert(now + self.sender.rtt().rto_us());
            if now >= due {
                self.probe_due = Some(now + self.sender.rtt().rto_us());
                packet::encode_control(buf, Kind::Ping, ids, self.receiver.acks(now));
                return self.sent(now);
            }
        } else {
            self.probe_due = None;
        }
        // No DATA of its own for a while (a receiver that only acknowledges): probe the round trip.
        if self.next_probe().is_some_and(|due| now >= due) {
            let token = now as u32;
            self.probe_sent = Some((token, now));
            self.last_sampled_send = now;
            packet::encode_probe(buf, ids, self.receiver.acks(now), token);
            return self.sent(now);
        }
        if now.saturating_sub(self.last_sent) >= self.config.keepalive_us() {
            packet::encode_control(buf, Kind::Ping, ids, self.receiver.acks(now));
            return self.sent(now);
        }
        false
    }

    /// Appends `copies` to the DATA datagram in `buf`, each flagged a copy; the last is followed by another
    /// fragment only when `more_after`.
    fn put_copies(
        &mut self,
        buf: &mut Vec<u8>,
        copies: &[super::send::Outgoing],
        more_after: bool,
    ) {
        for (i, c) in copies.iter().enumerate() {
            let place = DataPlace {
                seq: c.seq,
                channel: c.channel,
                chan_seq: c.chan_seq,
            };
            let more = more_after || i + 1 < copies.len();
            packet::put_fragment(buf, place, c.message_len, &c.payload, more, true);
            self.stats.payload_bytes_sent += c.payload.len() as u64;
        }
        self.stats.copies_sent += copies.len() as u64;
    }

    /// When to probe the round trip next, while it is wanted: [`PROBE_INTERVAL_US`] after this side last sent
    /// DATA or a probe.
    fn next_probe(&self) -> Option<Micros> {
        let due = self.last_sampled_send + PROBE_INTERVAL_US;
        self.probe_wanted_until
            .filter(|&until| due <= until)
            .map(|_| due)
    }

    /// The owner reads the round trip at `now` (a game showing its ping): for the next few seconds, a side that
    /// sends no DATA of its own measures it with probes the peer echoes, 200 ms apart, so the figure follows the
    /// path rather than staying the handshake's.
    pub fn want_rtt(&mut self, now: Micros) {
        self.probe_wanted_until = Some(now + PROBE_WANTED_US);
    }

    fn sent(&mut self, now: Micros) -> bool {
        self.last_sent = self.last_sent.max(now);
        self.stats.datagrams_sent += 1;
        true
    }

    /// Closes this side at `now`: no more messages are accepted, messages not yet acknowledged are let go
    /// (counted in `messages_discarded` or `messages_unconfirmed`; returned), and the peer is told with CLOSE,
    /// repeated until it answers.
    /// Keep polling while [`is_draining`](Self::is_draining). To close without losing any message, wait until
    /// `stats().messages_pending` is 0.
    pub fn close(&mut self, now: Micros) -> Unfinished {
        if !self.is_open() {
            return Unfinished::default();
        }
        let discarded = self.let_go();
        if self.peer.is_some() {
            self.closing = Some(Closing {
                due: now,
                attempts: 0,
            });
        }
        self.phase = Phase::Closed;
        self.events.push_back(Event::Closed { by_peer: false });
        discarded
    }

    /// Slots visited by acknowledgement processing so far: each datagram costs at most the datagrams in flight
    /// plus a constant (for tests and fuzzing).
    pub fn ack_work(&self) -> u64 {
        self.sender.ack_work()
    }

    /// Datagrams from the oldest unacknowledged one to the newest sent (the bound on acknowledgement work).
    pub fn datagrams_outstanding(&self) -> usize {
        self.sender.outstanding()
    }

    /// An estimate of the memory the receiving half holds, in bytes (see `Receiver::worst_case_memory` for the
    /// bound).
    pub fn receive_memory_bytes(&self) -> usize {
        self.receiver.memory_bytes()
            + self.unreliable.as_ref().map_or(0, |u| {
                std::mem::size_of::<Unreliable>() + u.inn.memory_bytes() + u.out.memory_bytes()
            })
    }

    /// Counters and estimates.
    pub fn stats(&self) -> ReliableStats {
        let rtt = self.sender.rtt();
        ReliableStats {
            srtt_us: rtt.smoothed_us().unwrap_or(0),
            rttvar_us: rtt.variance_us(),
            rto_us: rtt.rto_us(),
            retransmissions: self.sender.retransmissions(),
            bytes_in_flight: self.sender.bytes_in_flight() as u64,
            messages_pending: self.sender.pending_messages() as u64,
            congestion_window: self.sender.congestion_window(),
            base_rtt_us: self.sender.base_rtt_us().unwrap_or(0),
            flow_blocked: self.sender.is_flow_blocked(),
            unreliable_dropped: self.stats.unreliable_dropped
                + self
                    .unreliable
                    .as_ref()
                    .map_or(0, |u| u.out.dropped + u.inn.overflowed),
            unreliable_incomplete: self.unreliable.as_ref().map_or(0, |u| u.inn.incomplete),
            ..self.stats
        }
    }
}
