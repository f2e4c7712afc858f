//! The one-to-one side of the protocol: an [`Endpoint`] that holds one current connection, replaced when the
//! transport is (earlier ones say goodbye over theirs meanwhile), with what its owner reports over its life.
//!
//! This is ReliablePacketPeer's logic with an inner peer: the class gives each transport it has used a number
//! (its "address" here), feeds what each one receives to [`Session::handle_datagram`], and sends what
//! [`Session::poll_transmit`] writes through the transport it names.

use bytes::Bytes;

use super::endpoint::{ConnectionHandle, Endpoint, EndpointConfig, EndpointEvent, Transmit};
use super::{Connection, Event, ReliableConfig, TransportRefusal, Unfinished};
use crate::link::Micros;
use crate::unpolled::Unpolled;

/// One current connection over a numbered transport, and the goodbyes of the ones before it.
#[derive(Debug)]
pub struct Session {
    endpoint: Endpoint<u64>,
    current: Option<ConnectionHandle>,
    /// The settings the next connection starts with.
    config: ReliableConfig,
    /// Messages discarded and unconfirmed by connections that were replaced.
    discarded_before: u64,
    unconfirmed_before: u64,
    unpolled: Unpolled,
}

impl Session {
    /// A session with no connection yet, whose connections draw their ids from `seed`.
    pub fn new(config: ReliableConfig, seed: u64) -> Self {
        Self {
            endpoint: Endpoint::new(EndpointConfig::default(), seed),
            current: None,
            config,
            discarded_before: 0,
            unconfirmed_before: 0,
            unpolled: Unpolled::default(),
        }
    }

    /// Changes the seed that connections started from now on draw from.
    pub fn set_seed(&mut self, seed: u64) {
        self.endpoint.set_seed(seed);
    }

    /// The current connection.
    pub fn connection(&self) -> Option<&Connection> {
        self.endpoint.connection(self.current?)
    }

    /// The current connection, to send, receive and change settings on.
    pub fn connection_mut(&mut self) -> Option<&mut Connection> {
        self.endpoint.connection_mut(self.current?)
    }

    /// The transport the current connection uses.
    pub fn transport(&self) -> Option<u64> {
        self.endpoint.address(self.current?).copied()
    }

    /// The settings: the current connection's, or those the next one starts with.
    pub fn config(&self) -> &ReliableConfig {
        self.connection().map_or(&self.config, Connection::config)
    }

    /// The settings the next connection starts with (the current one keeps its own; change those through
    /// [`connection_mut`](Self::connection_mut)).
    pub fn config_mut(&mut self) -> &mut ReliableConfig {
        &mut self.config
    }

    /// Ends the current connection, if any, at `now`: closed properly (its CLOSE is repeated over its own
    /// transport until answered) and its events dropped. Returns what it let go of unacknowledged.
    pub fn end(&mut self, now: Micros) -> Unfinished {
        let Some(handle) = self.current.take() else {
            return Unfinished::default();
        };
        let mut discarded = Unfinished::default();
        if let Some(connection) = self.endpoint.connection_mut(handle) {
            discarded = connection.close(now);
            while connection.poll_event().is_some() {}
            self.discarded_before += connection.stats().messages_discarded;
            self.unconfirmed_before += connection.stats().messages_unconfirmed;
            self.config = connection.config().clone();
        }
        self.endpoint.release(handle);
        discarded
    }

    /// Ends the current connection (see [`end`](Self::end)) and starts a new one over `transport` at `now`
    /// (none when `transport` is `None`). Returns what the old one let go of unacknowledged.
    pub fn restart(&mut self, now: Micros, transport: Option<u64>) -> Unfinished {
        let discarded = self.end(now);
        self.current = transport.map(|t| self.endpoint.connect(now, t, self.config.clone()));
        discarded
    }

    /// Whether any connection, current or saying goodbye, still uses `transport`.
    pub fn uses_transport(&self, transport: u64) -> bool {
        self.endpoint.uses_address(&transport)
    }

    /// Takes in a datagram that arrived through `transport` at `now`: to the connection it is addressed to, or
    /// else to the newest connection over that transport (which counts it as another connection's).
    pub fn handle_datagram(&mut self, now: Micros, transport: u64, datagram: &Bytes) {
        self.endpoint.handle_datagram(now, transport, datagram);
    }

    /// Applies the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Micros) {
        self.endpoint.handle_timeout(now);
    }

    /// When `handle_timeout` or `poll_transmit` should next be called.
    pub fn poll_timeout(&self) -> Option<Micros> {
        self.endpoint.poll_timeout()
    }

    /// The next datagram to send and the transport it goes through (see [`Endpoint::poll_transmit`]).
    #[must_use]
    pub fn poll_transmit(&mut self, now: Micros, buf: &mut Vec<u8>) -> Option<Transmit<u64>> {
        self.endpoint.poll_transmit(now, buf)
    }

    /// The transport would not take a datagram: see [`Endpoint::transport_refused`].
    pub fn transport_refused(&mut self, transmit: &Transmit<u64>, refusal: TransportRefusal) {
        self.endpoint
            .transport_refused(transmit.connection, refusal);
    }

    /// Datagrams the transports refused, over this session's life.
    pub fn transport_refused_count(&self) -> u64 {
        self.endpoint.stats().transport_refused
    }

    /// The next event of the current connection; earlier connections' events are not reported.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.endpoint.poll_event(self.current?)
    }

    /// What the current connection's transport said to do, the first time it could not send.
    pub fn poll_transport_hint(&mut self) -> Option<String> {
        while let Some(EndpointEvent::TransportNotReady { connection, hint }) =
            self.endpoint.poll_endpoint_event()
        {
            if Some(connection) == self.current {
                return Some(hint);
            }
        }
        None
    }

    /// Messages discarded over this session's life (never sent whole): by replaced connections and by the
    /// current one.
    pub fn messages_discarded(&self) -> u64 {
        self.discarded_before
            + self
                .connection()
                .map_or(0, |c| c.stats().messages_discarded)
    }

    /// Messages sent whole but never acknowledged over this session's life (they may have arrived).
    pub fn messages_unconfirmed(&self) -> u64 {
        self.unconfirmed_before
            + self
                .connection()
                .map_or(0, |c| c.stats().messages_unconfirmed)
    }

    /// The owner polled: puts since then are no longer unpolled.
    pub fn note_polled(&mut self) {
        self.unpolled.polled();
    }

    /// The owner put a message at `now`: see [`Unpolled::put`].
    pub fn note_put(&mut self, now: Micros) -> Option<Micros> {
        self.unpolled.put(now)
    }

    /// A timer's check, at `now`, with nothing more put: see [`Unpolled::still_waiting`].
    pub fn unpolled_due(&mut self, now: Micros) -> Option<Micros> {
        self.unpolled.still_waiting(now)
    }
}
