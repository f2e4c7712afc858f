//! Many connections over one datagram transport, in the manner of quinn-proto's `Endpoint`.
//!
//! An [`Endpoint`] owns routing, limits and the refusal policy; each connection's protocol state stays in its
//! [`Connection`]. It is sans-IO: feed what arrives with [`Endpoint::handle_datagram`] (the sender's address of
//! any type `A`: a socket address for a server, a transport number for a one-to-one peer), call
//! [`Endpoint::handle_timeout`] when [`Endpoint::poll_timeout`] is due, then call [`Endpoint::poll_transmit`]
//! until it returns `None`, sending each datagram to the address it names, and take the new connections a
//! server accepted with [`Endpoint::accept`]. A datagram the transport refused is reported back with
//! [`Endpoint::transport_refused`], whose rule (retry, or fail the connection) is the one place that policy lives.
//!
//! Routing: a datagram addressed to a connection id goes to that connection, if it came from that connection's
//! address. A first HELLO (addressed to nobody yet) goes to the connection that HELLO started, if any; when
//! accepting, a new valid HELLO starts a connection, within `max_pending` and `max_connections`, and one beyond
//! them is answered with a REFUSE saying why (smaller than the HELLO, so an endpoint never answers with more
//! bytes than it received, and a half-open connection answers each HELLO once and repeats nothing on a timer).
//! Anything else goes to the newest connection of its address, which counts it (a stray, an earlier
//! connection's), or, when there is none, is counted by the endpoint and dropped: never delivered.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hash, Hasher};

use bytes::Bytes;

use super::packet::{self, DecodeError, Ids, Kind, RefuseReason};
use super::{Connection, Event, ReliableConfig, Status};
use crate::link::Micros;
use crate::rng::Rng;

/// The most REFUSE answers waiting to be sent; refusals beyond it are counted and not answered (the client's
/// HELLO is simply lost to it, and it tries again).
const MAX_QUEUED_REFUSALS: usize = 64;

/// Mixes the endpoint's seed with a connection's number into that connection's seed.
const SEED_MIX: u64 = 0x9E37_79B9_7F4A_7C15;

/// Names one connection of an endpoint for as long as the endpoint holds it (never reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnectionHandle(pub u64);

/// An endpoint's limits and the settings of the connections it accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointConfig {
    /// The settings each accepted connection starts with.
    pub connection: ReliableConfig,
    /// Whether a HELLO from an unknown sender starts a connection (a server); otherwise connections are only
    /// made by [`Endpoint::connect`].
    pub accept: bool,
    /// The most connections held at once: in their handshake, waiting to be accepted, or accepted.
    pub max_connections: usize,
    /// The most connections in their handshake or waiting for [`Endpoint::accept`] at once.
    pub max_pending: usize,
}

/// The largest `max_connections` or `max_pending` a setter accepts.
pub const MAX_CONNECTIONS_LIMIT: usize = 4096;

impl EndpointConfig {
    /// Checks a connection limit (`max_connections` or `max_pending`, named `name`): 1 to
    /// [`MAX_CONNECTIONS_LIMIT`].
    pub fn check_limit(name: &'static str, value: i64) -> Result<usize, super::ReliableError> {
        super::range(name, value, 1, MAX_CONNECTIONS_LIMIT as i64)
    }
}

impl Default for EndpointConfig {
    fn default() -> Self {
        Self {
            connection: ReliableConfig::default(),
            accept: false,
            max_connections: 32,
            max_pending: 16,
        }
    }
}

/// What a transport said when it would not take a datagram, as [`Endpoint::transport_refused`] is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportRefusal {
    /// Its queue is full: congestion. The datagram counts as lost and is sent again later.
    Full,
    /// It cannot send yet (no destination, not open). The datagram counts as lost and the connection keeps
    /// trying, so it recovers once the transport can send; `hint` says what to do, and is part of the
    /// handshake's timeout message if it never can.
    NotReady {
        /// What the user should do, e.g. "call set_dest_address() on it".
        hint: String,
    },
    /// It will never carry this datagram (too large for it, closed for good): the connection fails with this
    /// reason.
    Fatal {
        /// Why, in words a user can act on.
        reason: String,
    },
}

/// A datagram [`Endpoint::poll_transmit`] wrote: where to send it, and for which connection (none for a
/// REFUSE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit<A> {
    /// The address to send it to.
    pub to: A,
    /// The connection that sent it; `None` for the endpoint's own answers.
    pub connection: Option<ConnectionHandle>,
}

/// Something the endpoint tells its owner once, from [`Endpoint::poll_endpoint_event`]. (Refusals are only
/// counted, in [`EndpointStats`]: a flood of them must not grow a queue.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointEvent {
    /// A connection's transport cannot send yet (the first time only, per connection): what to do.
    TransportNotReady {
        /// The connection.
        connection: ConnectionHandle,
        /// What to do.
        hint: String,
    },
}

/// An endpoint's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointStats {
    /// Connections accepted: handshake completed, then handed out by `accept`.
    pub accepted: u64,
    /// HELLOs refused because `max_connections` were held.
    pub refused_full: u64,
    /// HELLOs refused because `max_pending` connections were pending.
    pub refused_pending: u64,
    /// HELLOs refused because the endpoint was not accepting.
    pub refused_not_accepting: u64,
    /// Refusals not answered because too many answers were already waiting to be sent.
    pub refusals_unsent: u64,
    /// Connections that failed or closed before they were accepted (a client that vanished mid-handshake, a
    /// settings mismatch); their memory is freed.
    pub pending_failed: u64,
    /// Datagrams of no connection of this endpoint (an unknown or stale id), dropped.
    pub dropped_unknown_connection: u64,
    /// Datagrams for a connection that came from another address, dropped.
    pub dropped_wrong_address: u64,
    /// Datagrams of no connection whose checksum did not match, dropped.
    pub dropped_corrupt: u64,
    /// Datagrams of no connection that were not this protocol (foreign, malformed, another version), dropped.
    pub dropped_invalid: u64,
    /// Datagrams the transport refused (full, or not ready); each is sent again later.
    pub transport_refused: u64,
}

/// Where a connection is in its life at the endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Started by a HELLO the endpoint accepted; its handshake is under way.
    HalfOpen,
    /// Handshake complete, waiting for `accept`.
    Waiting,
    /// Made by `connect`, or handed out by `accept`: the owner's.
    Owned,
    /// The owner let go of it; kept while it still says goodbye, then freed.
    Released,
}

#[derive(Debug)]
struct Slot<A> {
    connection: Connection,
    addr: A,
    stage: Stage,
    /// The peer id of the HELLO that started it (accepted connections), for finding it from repeated HELLOs.
    hello_from: Option<u32>,
    warned_not_ready: bool,
}

/// Many connections over one datagram transport: see the module documentation.
#[derive(Debug)]
pub struct Endpoint<A> {
    config: EndpointConfig,
    seed: u64,
    connections_started: u64,
    next_handle: u64,
    slots: BTreeMap<ConnectionHandle, Slot<A>>,
    /// By this side's connection id: ids are random and this side's own, so a plain multiplicative hash will do.
    by_local_id: HashMap<u32, ConnectionHandle, BuildHasherDefault<IdHasher>>,
    by_hello: HashMap<(A, u32), ConnectionHandle>,
    newest_at: HashMap<A, ConnectionHandle>,
    waiting: VecDeque<ConnectionHandle>,
    refusals: VecDeque<(A, Ids, RefuseReason)>,
    /// The connections still to be asked for datagrams in this round of `poll_transmit`.
    round: VecDeque<ConnectionHandle>,
    round_open: bool,
    events: VecDeque<EndpointEvent>,
    stats: EndpointStats,
    accepting: bool,
}

impl<A: Clone + Eq + Hash> Endpoint<A> {
    /// An endpoint whose connections draw their ids and first sequence numbers from `seed` (from the OS
    /// normally, from a test's seed for determinism).
    pub fn new(config: EndpointConfig, seed: u64) -> Self {
        Self {
            accepting: config.accept,
            config,
            seed,
            connections_started: 0,
            next_handle: 1,
            slots: BTreeMap::new(),
            by_local_id: HashMap::default(),
            by_hello: HashMap::new(),
            newest_at: HashMap::new(),
            waiting: VecDeque::new(),
            refusals: VecDeque::new(),
            round: VecDeque::new(),
            round_open: false,
            events: VecDeque::new(),
            stats: EndpointStats::default(),
        }
    }

    /// The limits and the accepted connections' settings.
    pub fn config(&self) -> &EndpointConfig {
        &self.config
    }

    /// Changes the limits and the settings of connections accepted from now on (held ones keep theirs).
    pub fn set_config(&mut self, config: EndpointConfig) {
        self.accepting = self.accepting && config.accept;
        self.config = config;
    }

    /// Changes the seed that connections started from now on draw from.
    pub fn set_seed(&mut self, seed: u64) {
        self.seed = seed;
    }

    /// Whether new HELLOs are accepted now.
    pub fn is_accepting(&self) -> bool {
        self.accepting
    }

    /// Stops (or resumes, for an endpoint configured to accept) accepting new connections; refused HELLOs are
    /// told the endpoint is not accepting.
    pub fn set_accepting(&mut self, accepting: bool) {
        self.accepting = accepting && self.config.accept;
    }

    /// The counters.
    pub fn stats(&self) -> EndpointStats {
        self.stats
    }

    /// Connections held: in their handshake, waiting to be accepted, or owned (not those only saying goodbye).
    pub fn connection_count(&self) -> usize {
        self.slots
            .values()
            .filter(|s| s.stage != Stage::Released)
            .count()
    }

    /// Connections in their handshake or waiting to be accepted.
    pub fn pending_count(&self) -> usize {
        self.slots
            .values()
            .filter(|s| matches!(s.stage, Stage::HalfOpen | Stage::Waiting))
            .count()
    }

    /// Every connection held, including those only saying goodbye (each costs memory until freed).
    pub fn held_count(&self) -> usize {
        self.slots.len()
    }

    /// The connection `handle` names, while the endpoint holds it.
    pub fn connection(&self, handle: ConnectionHandle) -> Option<&Connection> {
        self.slots.get(&handle).map(|s| &s.connection)
    }

    /// The connection `handle` names, to send, receive and change settings on.
    pub fn connection_mut(&mut self, handle: ConnectionHandle) -> Option<&mut Connection> {
        self.slots.get_mut(&handle).map(|s| &mut s.connection)
    }

    /// The address the connection sends to.
    pub fn address(&self, handle: ConnectionHandle) -> Option<&A> {
        self.slots.get(&handle).map(|s| &s.addr)
    }

    /// Whether any held connection (goodbyes included) sends to `addr`.
    pub fn uses_address(&self, addr: &A) -> bool {
        self.slots.values().any(|s| &s.addr == addr)
    }

    /// The handles of all connections held, oldest first.
    pub fn handles(&self) -> impl Iterator<Item = ConnectionHandle> + '_ {
        self.slots.keys().copied()
    }

    /// The next seed for a connection, and one whose id no held connection has.
    fn new_connection(
        &mut self,
        config: ReliableConfig,
        now: Micros,
        incoming: bool,
    ) -> Connection {
        loop {
            self.connections_started += 1;
            let seed =
                Rng::new(self.seed ^ self.connections_started.wrapping_mul(SEED_MIX)).next_u64();
            let connection = if incoming {
                Connection::incoming(config.clone(), now, seed)
            } else {
                Connection::new(config.clone(), now, seed)
            };
            if !self.by_local_id.contains_key(&connection.local_id()) {
                return connection;
            }
        }
    }

    fn insert(&mut self, slot: Slot<A>) -> ConnectionHandle {
        let handle = ConnectionHandle(self.next_handle);
        self.next_handle += 1;
        self.by_local_id.insert(slot.connection.local_id(), handle);
        if let Some(peer) = slot.hello_from {
            self.by_hello.insert((slot.addr.clone(), peer), handle);
        }
        self.newest_at.insert(slot.addr.clone(), handle);
        self.slots.insert(handle, slot);
        handle
    }

    /// Starts a connection to `addr` at `now` with `config`: it sends HELLOs until the other side answers.
    /// The caller owns it (see [`release`](Self::release)).
    pub fn connect(&mut self, now: Micros, addr: A, config: ReliableConfig) -> ConnectionHandle {
        let connection = self.new_connection(config, now, false);
        self.insert(Slot {
            connection,
            addr,
            stage: Stage::Owned,
            hello_from: None,
            warned_not_ready: false,
        })
    }

    /// The next connection whose handshake completed, for the caller to own; `None` when none waits.
    pub fn accept(&mut self) -> Option<ConnectionHandle> {
        let handle = self.waiting.pop_front()?;
        if let Some(slot) = self.slots.get_mut(&handle) {
            slot.stage = Stage::Owned;
            self.stats.accepted += 1;
        }
        Some(handle)
    }

    /// How many connections wait for [`accept`](Self::accept).
    pub fn waiting_count(&self) -> usize {
        self.waiting.len()
    }

    /// The owner lets go of a connection: it is freed once closed or failed and done saying goodbye (close it
    /// first for the other side to be told).
    pub fn release(&mut self, handle: ConnectionHandle) {
        if let Some(slot) = self.slots.get_mut(&handle) {
            slot.stage = Stage::Released;
        }
        self.waiting.retain(|h| *h != handle);
        self.collect(handle);
    }

    /// Closes every connection (each tells its peer) and stops accepting; returns how many messages not yet
    /// acknowledged were discarded.
    pub fn close_all(&mut self, now: Micros) -> u64 {
        self.accepting = false;
        let mut discarded = 0;
        for slot in self.slots.values_mut() {
            discarded += slot.connection.close(now).total() as u64;
        }
        let handles: Vec<_> = self.slots.keys().copied().collect();
        for handle in handles {
            self.collect(handle);
        }
        discarded
    }

    /// Takes in a datagram that arrived at `now` from `from`, and routes it (see the module documentation).
    pub fn handle_datagram(&mut self, now: Micros, from: A, datagram: &Bytes) {
        let handle = match self.route(&from, datagram) {
            Route::To(handle) => handle,
            Route::Accept => match self.try_accept(now, from, datagram) {
                Some(handle) => handle,
                None => return,
            },
            Route::Dropped => return,
        };
        if let Some(slot) = self.slots.get_mut(&handle) {
            slot.connection.handle_datagram_bytes(now, datagram);
        }
        self.update(handle);
    }

    fn route(&mut self, from: &A, datagram: &[u8]) -> Route {
        match packet::addressed_to(datagram) {
            Some(0) => {
                if let Some(src) = sender_id(datagram) {
                    if let Some(&handle) = self.by_hello.get(&(from.clone(), src)) {
                        return Route::To(handle);
                    }
                }
            }
            Some(dst) => {
                if let Some(&handle) = self.by_local_id.get(&dst) {
                    if self.slots.get(&handle).is_some_and(|s| &s.addr == from) {
                        return Route::To(handle);
                    }
                    if self.config.accept {
                        self.stats.dropped_wrong_address += 1;
                        return Route::Dropped;
                    }
                }
            }
            None => {}
        }
        if !self.config.accept {
            if let Some(&handle) = self.newest_at.get(from) {
                return Route::To(handle);
            }
        }
        match packet::decode(datagram) {
            Ok(d) if d.kind == Kind::Hello && d.ids.dst == 0 && self.config.accept => Route::Accept,
            Ok(_) => {
                self.stats.dropped_unknown_connection += 1;
                Route::Dropped
            }
            Err(DecodeError::Corrupt) => {
                self.stats.dropped_corrupt += 1;
                Route::Dropped
            }
            Err(DecodeError::Foreign | DecodeError::Malformed | DecodeError::Version(_)) => {
                self.stats.dropped_invalid += 1;
                Route::Dropped
            }
        }
    }

    /// A valid first HELLO from a sender no connection knows: a new half-open connection, or a refusal.
    fn try_accept(&mut self, now: Micros, from: A, datagram: &[u8]) -> Option<ConnectionHandle> {
        let src = sender_id(datagram)?;
        let reason = if !self.accepting {
            Some(RefuseReason::NotAccepting)
        } else if self.connection_count() >= self.config.max_connections {
            Some(RefuseReason::Full)
        } else if self.pending_count() >= self.config.max_pending {
            Some(RefuseReason::TooManyPending)
        } else {
            None
        };
        if let Some(reason) = reason {
            match reason {
                RefuseReason::Full => self.stats.refused_full += 1,
                RefuseReason::TooManyPending => self.stats.refused_pending += 1,
                RefuseReason::NotAccepting => self.stats.refused_not_accepting += 1,
            }
            if self.refusals.len() < MAX_QUEUED_REFUSALS {
                // Addressed to the HELLO's sender; its own id as ours too, since none is given out for it.
                let ids = Ids { dst: src, src };
                self.refusals.push_back((from.clone(), ids, reason));
            } else {
                self.stats.refusals_unsent += 1;
            }
            return None;
        }
        let connection = self.new_connection(self.config.connection.clone(), now, true);
        Some(self.insert(Slot {
            connection,
            addr: from,
            stage: Stage::HalfOpen,
            hello_from: Some(src),
            warned_not_ready: false,
        }))
    }

    /// After a connection was driven: a half-open one whose handshake completed waits to be accepted, and one
    /// nobody will read any more is freed once it is done.
    fn update(&mut self, handle: ConnectionHandle) {
        let Some(slot) = self.slots.get_mut(&handle) else {
            return;
        };
        if slot.stage == Stage::Owned {
            // The owner frees it; nothing moves on by itself.
            return;
        }
        if slot.stage == Stage::HalfOpen && slot.connection.status() == Status::Connected {
            slot.stage = Stage::Waiting;
            self.waiting.push_back(handle);
        }
        self.collect(handle);
    }

    /// Frees a connection that is finished and that no owner reads: a pending one that failed or closed, or a
    /// released one done saying goodbye.
    fn collect(&mut self, handle: ConnectionHandle) {
        let Some(slot) = self.slots.get(&handle) else {
            return;
        };
        let finished = matches!(slot.connection.status(), Status::Closed | Status::Failed)
            && !slot.connection.is_draining();
        let free = match slot.stage {
            Stage::Owned => false,
            Stage::Released => finished,
            Stage::HalfOpen | Stage::Waiting => finished,
        };
        if !free {
            return;
        }
        if matches!(slot.stage, Stage::HalfOpen | Stage::Waiting) {
            self.stats.pending_failed += 1;
        }
        let Some(slot) = self.slots.remove(&handle) else {
            return;
        };
        self.waiting.retain(|h| *h != handle);
        self.by_local_id.remove(&slot.connection.local_id());
        if let Some(peer) = slot.hello_from {
            self.by_hello.remove(&(slot.addr.clone(), peer));
        }
        if self.newest_at.get(&slot.addr) == Some(&handle) {
            self.newest_at.remove(&slot.addr);
            if let Some((&newer, _)) = self.slots.iter().rev().find(|(_, s)| s.addr == slot.addr) {
                self.newest_at.insert(slot.addr, newer);
            }
        }
    }

    /// Applies every connection's timers due at `now` (see [`Connection::handle_timeout`]), and frees the
    /// pending ones that timed out.
    pub fn handle_timeout(&mut self, now: Micros) {
        let mut changed = Vec::new();
        for (&handle, slot) in &mut self.slots {
            slot.connection.handle_timeout(now);
            if slot.stage != Stage::Owned {
                changed.push(handle);
            }
        }
        // Only connections the owner does not hold can move on by themselves (accepted, or freed).
        for handle in changed {
            self.update(handle);
        }
    }

    /// Applies one connection's timers due at `now`.
    pub fn handle_timeout_for(&mut self, handle: ConnectionHandle, now: Micros) {
        if let Some(slot) = self.slots.get_mut(&handle) {
            slot.connection.handle_timeout(now);
        }
        self.update(handle);
    }

    /// The earliest moment any connection wants `handle_timeout` or `poll_transmit`, or now if answers wait.
    pub fn poll_timeout(&self) -> Option<Micros> {
        self.slots
            .values()
            .filter_map(|s| s.connection.poll_timeout())
            .min()
    }

    /// Whether the endpoint's own answers (refusals) wait to be sent.
    pub fn has_answers(&self) -> bool {
        !self.refusals.is_empty()
    }

    /// Writes the next datagram to send into `buf` and says where it goes, or returns `None` when nothing more
    /// is due at `now`. The endpoint's refusals come first, then the connections in turn, one datagram each
    /// at a time, so a connection with much to send does not hold the others back. Call it until it returns
    /// `None` each time the endpoint is driven.
    #[must_use]
    pub fn poll_transmit(&mut self, now: Micros, buf: &mut Vec<u8>) -> Option<Transmit<A>> {
        if let Some((to, ids, reason)) = self.refusals.pop_front() {
            packet::encode_refuse(buf, ids, reason);
            return Some(Transmit {
                to,
                connection: None,
            });
        }
        if !self.round_open {
            self.round.clear();
            self.round.extend(self.slots.keys().copied());
            self.round_open = true;
        }
        while let Some(handle) = self.round.pop_front() {
            let Some(slot) = self.slots.get_mut(&handle) else {
                continue;
            };
            if slot.connection.poll_transmit(now, buf) {
                let to = slot.addr.clone();
                self.round.push_back(handle);
                return Some(Transmit {
                    to,
                    connection: Some(handle),
                });
            }
            if slot.stage != Stage::Owned {
                self.collect(handle);
            }
        }
        self.round_open = false;
        None
    }

    /// As [`poll_transmit`](Self::poll_transmit), for one connection only (the endpoint's own answers still
    /// come first): for an owner that drives just its connection.
    #[must_use]
    pub fn poll_transmit_for(
        &mut self,
        handle: ConnectionHandle,
        now: Micros,
        buf: &mut Vec<u8>,
    ) -> Option<Transmit<A>> {
        if let Some((to, ids, reason)) = self.refusals.pop_front() {
            packet::encode_refuse(buf, ids, reason);
            return Some(Transmit {
                to,
                connection: None,
            });
        }
        let slot = self.slots.get_mut(&handle)?;
        if slot.connection.poll_transmit(now, buf) {
            return Some(Transmit {
                to: slot.addr.clone(),
                connection: Some(handle),
            });
        }
        if slot.stage != Stage::Owned {
            self.collect(handle);
        }
        None
    }

    /// The transport would not take a datagram `poll_transmit` wrote for `handle`: applies the rule for what
    /// it said (see [`TransportRefusal`]).
    pub fn transport_refused(
        &mut self,
        handle: Option<ConnectionHandle>,
        refusal: TransportRefusal,
    ) {
        // Without a connection it was a refusal answer: the client's HELLO is repeated and answered again.
        let Some((connection, slot)) = handle.and_then(|h| Some((h, self.slots.get_mut(&h)?)))
        else {
            return;
        };
        match refusal {
            TransportRefusal::Full => self.stats.transport_refused += 1,
            TransportRefusal::NotReady { hint } => {
                self.stats.transport_refused += 1;
                slot.connection.note_transport_not_ready(&hint);
                if !std::mem::replace(&mut slot.warned_not_ready, true) {
                    self.events
                        .push_back(EndpointEvent::TransportNotReady { connection, hint });
                }
            }
            TransportRefusal::Fatal { reason } => slot.connection.fail_transport(reason),
        }
    }

    /// The next thing the endpoint has to tell (each once), oldest first.
    pub fn poll_endpoint_event(&mut self) -> Option<EndpointEvent> {
        self.events.pop_front()
    }

    /// The next event of connection `handle` (see [`Connection::poll_event`]).
    pub fn poll_event(&mut self, handle: ConnectionHandle) -> Option<Event> {
        self.slots.get_mut(&handle)?.connection.poll_event()
    }

    /// An estimate of the memory the endpoint holds, in bytes: each connection's own size and what its
    /// receiving half holds, and the tables that find them. A half-open connection holds no message data, so a
    /// flood of HELLOs costs at most `max_pending` times [`HALF_OPEN_BYTES`] or so.
    pub fn memory_bytes(&self) -> usize {
        let per_slot = std::mem::size_of::<Slot<A>>()
            + std::mem::size_of::<ConnectionHandle>() * 4
            + std::mem::size_of::<(A, u32)>()
            + std::mem::size_of::<A>();
        self.slots
            .values()
            .map(|s| per_slot + s.connection.receive_memory_bytes())
            .sum::<usize>()
            + self.refusals.len() * std::mem::size_of::<(A, Ids, RefuseReason)>()
            + self.events.len() * std::mem::size_of::<EndpointEvent>()
    }
}

/// What a half-open connection costs at most, in bytes, beyond its share of the tables: the connection itself
/// (it buffers nothing before its handshake completes).
pub const HALF_OPEN_BYTES: usize = std::mem::size_of::<Connection>();

/// Hashes a connection id (random, picked by this side) with one multiplication: the ids an attacker sends are
/// looked up, never inserted, so they cannot crowd one bucket.
#[derive(Debug, Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | b as u64).wrapping_mul(SEED_MIX);
        }
    }

    fn write_u32(&mut self, id: u32) {
        self.0 = (id as u64).wrapping_mul(SEED_MIX);
    }
}

enum Route {
    To(ConnectionHandle),
    Accept,
    Dropped,
}

/// The sender id of a datagram of this version, read without checking the rest.
fn sender_id(datagram: &[u8]) -> Option<u32> {
    packet::addressed_to(datagram)?;
    let id = u32::from_le_bytes(datagram.get(12..16)?.try_into().ok()?);
    (id != 0).then_some(id)
}
