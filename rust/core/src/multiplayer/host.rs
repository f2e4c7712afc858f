//! A game's multiplayer host over a reliable [`Endpoint`]: Godot's peer ids (the server is 1, each client a
//! random id the server gives it), packets addressed by id on channels in Godot's three transfer modes, and the
//! peers' comings and goings. Sans-IO: the caller moves the endpoint's datagrams (as `io::server::ServerSocket`
//! does) and passes `now`.
//!
//! The server tells a client its id in a reliable message on [`CONTROL_CHANNEL`], which games cannot use; a
//! client counts as connected from then on. Packets between clients go through the server: Godot's
//! SceneMultiplayer relays them itself (this host reports relay support, as ENet's does).

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;

use crate::link::Micros;
use crate::reliable::{
    ConnectionHandle, Endpoint, ReliableConfig, ReliableError, ReliableStats, Status as ConnStatus,
};
use crate::rng::Rng;

use super::types::{PeerId, Status, TransferMode, SERVER_ID};

/// The channel the host's own messages use: games use channels 0 to 254.
pub const CONTROL_CHANNEL: u8 = 255;
/// The highest channel a game may use.
pub const MAX_GAME_CHANNEL: i64 = CONTROL_CHANNEL as i64 - 1;
/// The control message that gives a client its id: this byte, then the id (4 bytes, little-endian).
const ASSIGN: u8 = 1;

/// A packet received from a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPacket {
    /// The peer it came from.
    pub from: PeerId,
    /// Its channel.
    pub channel: u8,
    /// How it was sent.
    pub mode: TransferMode,
    /// Its bytes.
    pub data: Bytes,
}

/// A peer came or went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostEvent {
    /// A peer connected (for a client, the server: 1).
    Connected(PeerId),
    /// A peer disconnected, closed, timed out or was disconnected by this side.
    Disconnected(PeerId),
}

/// Why a packet was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// Nothing is connected to send to.
    #[error(
        "not connected: create_server() or create_client() first, and wait for the connection"
    )]
    NotConnected,
    /// No peer has this id.
    #[error("no peer has id {0}")]
    UnknownPeer(PeerId),
    /// A client sends only to the server (others are reached through it).
    #[error("a client sends to the server (1) or to everyone (0); SceneMultiplayer relays to other peers")]
    ClientTarget,
    /// The channel is out of range.
    #[error("channel must be between 0 and {MAX_GAME_CHANNEL}, got {0}")]
    Channel(i64),
    /// The connection refused the message.
    #[error(transparent)]
    Connection(#[from] ReliableError),
}

#[derive(Debug)]
enum Role {
    Server,
    Client {
        server: ConnectionHandle,
        /// The id the server gave, once it has.
        id: Option<PeerId>,
        /// Whether `Connected(1)` was reported (so `Disconnected(1)` is reported once, and only after it).
        announced: bool,
    },
}

/// One side of a game's multiplayer session: a server of many clients, or a client of one server.
#[derive(Debug)]
pub struct Host {
    role: Role,
    peers: HashMap<PeerId, ConnectionHandle>,
    ids: HashMap<ConnectionHandle, PeerId>,
    inbox: VecDeque<HostPacket>,
    events: VecDeque<HostEvent>,
    rng: Rng,
    closed: bool,
    /// The handles visited by `update`, kept to reuse the allocation.
    scratch: Vec<ConnectionHandle>,
}

impl Host {
    /// A server: accepts clients from `endpoint` (configured to accept) and gives each a random id.
    pub fn server(seed: u64) -> Self {
        Self::with_role(Role::Server, seed)
    }

    /// A client connecting to `server` through `endpoint` at `now`.
    pub fn client<A: Clone + Eq + std::hash::Hash>(
        endpoint: &mut Endpoint<A>,
        now: Micros,
        server: A,
        config: ReliableConfig,
        seed: u64,
    ) -> Self {
        let handle = endpoint.connect(now, server, config);
        let mut host = Self::with_role(
            Role::Client {
                server: handle,
                id: None,
                announced: false,
            },
            seed,
        );
        host.peers.insert(SERVER_ID, handle);
        host.ids.insert(handle, SERVER_ID);
        host
    }

    fn with_role(role: Role, seed: u64) -> Self {
        Self {
            role,
            peers: HashMap::new(),
            ids: HashMap::new(),
            inbox: VecDeque::new(),
            events: VecDeque::new(),
            rng: Rng::new(seed),
            closed: false,
            scratch: Vec::new(),
        }
    }

    /// Whether this is the server.
    pub fn is_server(&self) -> bool {
        matches!(self.role, Role::Server)
    }

    /// This side's id: 1 for the server, the id the server gave a client (0 until then).
    pub fn unique_id(&self) -> PeerId {
        match self.role {
            Role::Server => SERVER_ID,
            Role::Client { id, .. } => id.unwrap_or(0),
        }
    }

    /// Where this side stands: a server is connected while open; a client once it has its id.
    pub fn status(&self) -> Status {
        if self.closed {
            return Status::Disconnected;
        }
        match self.role {
            Role::Server => Status::Connected,
            Role::Client { id: Some(_), .. } => Status::Connected,
            Role::Client { .. } => Status::Connecting,
        }
    }

    /// The ids of the peers connected now.
    pub fn peer_ids(&self) -> impl Iterator<Item = PeerId> + '_ {
        self.peers.keys().copied()
    }

    /// The connection to peer `id`.
    pub fn handle(&self, id: PeerId) -> Option<ConnectionHandle> {
        self.peers.get(&id).copied()
    }

    /// Takes in what the endpoint has at `now` (call after it has been given what arrived): accepts new
    /// clients, reads every connection's messages, and notes who connected and who left.
    pub fn update<A: Clone + Eq + std::hash::Hash>(
        &mut self,
        endpoint: &mut Endpoint<A>,
        now: Micros,
    ) {
        if self.closed {
            return;
        }
        if self.is_server() {
            while let Some(handle) = endpoint.accept() {
                let id = self.new_id();
                let mut assign = vec![ASSIGN];
                assign.extend_from_slice(&id.to_le_bytes());
                if let Some(conn) = endpoint.connection_mut(handle) {
                    // Queued before the handshake completes; sent once it does.
                    let _ =
                        conn.send_on(CONTROL_CHANNEL, TransferMode::Reliable, Bytes::from(assign));
                }
                self.peers.insert(id, handle);
                self.ids.insert(handle, id);
                self.events.push_back(HostEvent::Connected(id));
            }
        }
        let mut handles = std::mem::take(&mut self.scratch);
        handles.clear();
        handles.extend(self.ids.keys().copied());
        for &handle in &handles {
            let Some(&from) = self.ids.get(&handle) else {
                continue;
            };
            let Some(conn) = endpoint.connection_mut(handle) else {
                self.forget(endpoint, handle, from);
                continue;
            };
            while let Some(m) = conn.recv_message() {
                if m.channel == CONTROL_CHANNEL {
                    if let (Role::Client { id, .. }, [ASSIGN, a, b, c, d]) =
                        (&mut self.role, m.payload.as_ref())
                    {
                        let given = i32::from_le_bytes([*a, *b, *c, *d]);
                        if id.is_none() && given > SERVER_ID {
                            *id = Some(given);
                        }
                    }
                    continue;
                }
                self.inbox.push_back(HostPacket {
                    from,
                    channel: m.channel,
                    mode: m.mode,
                    data: m.payload,
                });
            }
            if matches!(conn.status(), ConnStatus::Closed | ConnStatus::Failed) {
                self.forget(endpoint, handle, from);
            }
        }
        self.scratch = handles;
        if let Role::Client {
            id: Some(_),
            announced,
            ..
        } = &mut self.role
        {
            if !*announced && self.peers.contains_key(&SERVER_ID) {
                *announced = true;
                self.events.push_back(HostEvent::Connected(SERVER_ID));
            }
        }
        if let Role::Client { .. } = self.role {
            if self.peers.is_empty() {
                // The server went away (or refused, or never answered): the session is over.
                self.closed = true;
            }
        }
        let _ = now;
    }

    fn forget<A: Clone + Eq + std::hash::Hash>(
        &mut self,
        endpoint: &mut Endpoint<A>,
        handle: ConnectionHandle,
        id: PeerId,
    ) {
        self.ids.remove(&handle);
        self.peers.remove(&id);
        endpoint.release(handle);
        let report = match &self.role {
            Role::Server => true,
            Role::Client { announced, .. } => *announced,
        };
        if report {
            self.events.push_back(HostEvent::Disconnected(id));
        }
    }

    fn new_id(&mut self) -> PeerId {
        loop {
            // Godot's ids: positive, never 1 (the server); 31 bits as Godot's own generator gives.
            let id = (self.rng.next_u64() & 0x7FFF_FFFF) as i32;
            if id > SERVER_ID && !self.peers.contains_key(&id) {
                return id;
            }
        }
    }

    /// Sends `data` to `target` (0: every peer; a negative id: every peer but that one) on `channel` in
    /// `mode`. Refused whole, or queued for every peer it names.
    pub fn send<A: Clone + Eq + std::hash::Hash>(
        &mut self,
        endpoint: &mut Endpoint<A>,
        target: PeerId,
        channel: i64,
        mode: TransferMode,
        data: Bytes,
    ) -> Result<(), HostError> {
        if !(0..=MAX_GAME_CHANNEL).contains(&channel) {
            return Err(HostError::Channel(channel));
        }
        if self.status() != Status::Connected {
            return Err(HostError::NotConnected);
        }
        let targets: Vec<ConnectionHandle> = match (&self.role, target) {
            (Role::Client { server, .. }, 0 | SERVER_ID) => vec![*server],
            (Role::Client { .. }, _) => return Err(HostError::ClientTarget),
            (Role::Server, 0) => self.peers.values().copied().collect(),
            (Role::Server, t) if t < 0 => self
                .peers
                .iter()
                .filter(|(id, _)| **id != -t)
                .map(|(_, h)| *h)
                .collect(),
            (Role::Server, t) => vec![*self.peers.get(&t).ok_or(HostError::UnknownPeer(t))?],
        };
        // Checked for all before any is queued, so a refusal queues nothing.
        for handle in &targets {
            if let (TransferMode::Reliable, Some(conn)) = (mode, endpoint.connection(*handle)) {
                conn.check_send(data.len())?;
            }
        }
        for handle in targets {
            if let Some(conn) = endpoint.connection_mut(handle) {
                conn.send_on(channel as u8, mode, data.clone())?;
            }
        }
        Ok(())
    }

    /// The next packet received.
    pub fn pop(&mut self) -> Option<HostPacket> {
        self.inbox.pop_front()
    }

    /// The packet [`pop`](Self::pop) would return.
    pub fn front(&self) -> Option<&HostPacket> {
        self.inbox.front()
    }

    /// How many packets wait.
    pub fn available(&self) -> usize {
        self.inbox.len()
    }

    /// The next peer event.
    pub fn poll_event(&mut self) -> Option<HostEvent> {
        self.events.pop_front()
    }

    /// Disconnects peer `id` at `now`: with `force`, at once and without telling it (reported now); otherwise
    /// it is told, and reported when its connection has closed.
    pub fn disconnect_peer<A: Clone + Eq + std::hash::Hash>(
        &mut self,
        endpoint: &mut Endpoint<A>,
        now: Micros,
        id: PeerId,
        force: bool,
    ) -> Result<(), HostError> {
        let handle = *self.peers.get(&id).ok_or(HostError::UnknownPeer(id))?;
        if let Some(conn) = endpoint.connection_mut(handle) {
            conn.close(now);
        }
        if force {
            self.forget(endpoint, handle, id);
        }
        Ok(())
    }

    /// Closes every connection at `now` (each peer is told) and ends the session: no events follow.
    pub fn close<A: Clone + Eq + std::hash::Hash>(
        &mut self,
        endpoint: &mut Endpoint<A>,
        now: Micros,
    ) {
        for (_, handle) in self.peers.drain() {
            if let Some(conn) = endpoint.connection_mut(handle) {
                conn.close(now);
            }
            endpoint.release(handle);
        }
        self.ids.clear();
        self.inbox.clear();
        self.events.clear();
        self.closed = true;
    }

    /// The statistics of the connection to peer `id`.
    pub fn peer_stats<A: Clone + Eq + std::hash::Hash>(
        &self,
        endpoint: &Endpoint<A>,
        id: PeerId,
    ) -> Option<ReliableStats> {
        endpoint.connection(self.handle(id)?).map(|c| c.stats())
    }
}
