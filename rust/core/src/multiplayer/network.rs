//! The network itself: peers, their inboxes and events, ids, routing by target, and the clients' links.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;

use crate::link::{change_all, LinkConfig, LinkModel, Micros};
use crate::rng::Rng;

use super::lane::{Lane, Route, RouteStats};
use super::types::*;

#[derive(Debug)]
struct PeerState {
    is_server: bool,
    status: Status,
    inbox: VecDeque<Packet>,
    events: VecDeque<Event>,
    stats: PeerStats,
}

impl PeerState {
    fn new(is_server: bool, status: Status) -> Self {
        Self {
            is_server,
            status,
            inbox: VecDeque::new(),
            events: VecDeque::new(),
            stats: PeerStats::default(),
        }
    }
}

/// The whole network: peers, their inboxes and events, and the links between clients and the server.
#[derive(Debug)]
pub struct Network {
    seed: u64,
    id_rng: Rng,
    sequential_ids: bool,
    max_packet_size: usize,
    refusing_new_connections: bool,
    peers: BTreeMap<PeerId, PeerState>,
    routes: BTreeMap<PeerId, Route>,
    /// Link settings for clients created from now on, per direction.
    default_to_server: LinkConfig,
    default_to_client: LinkConfig,
    /// How many clients were ever created: numbers their links' random streams and sequential ids.
    clients_created: u64,
}

impl Network {
    /// An empty network whose random decisions (client ids, every link's impairments) all come from `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            id_rng: Rng::new(seed),
            sequential_ids: false,
            max_packet_size: MAX_PACKET_SIZE_LIMIT,
            refusing_new_connections: false,
            peers: BTreeMap::new(),
            routes: BTreeMap::new(),
            default_to_server: LinkConfig::default(),
            default_to_client: LinkConfig::default(),
            clients_created: 0,
        }
    }

    /// The seed given to [`Network::new`] or [`Network::reseed`].
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Draws every random decision from `seed` from now on, keeping every setting (links for clients to come,
    /// sequential ids, packet size, refusing new connections). Only before any peer exists, since ids already
    /// given came from the old seed: returns how many peers exist otherwise, and changes nothing.
    pub fn reseed(&mut self, seed: u64) -> Result<(), usize> {
        if !self.peers.is_empty() {
            return Err(self.peers.len());
        }
        self.seed = seed;
        self.id_rng = Rng::new(seed);
        Ok(())
    }

    /// When true, clients created from now on get ids 2, 3, 4, ... in creation order instead of random ones.
    pub fn set_sequential_ids(&mut self, sequential: bool) {
        self.sequential_ids = sequential;
    }

    /// Whether new clients get sequential ids.
    pub fn sequential_ids(&self) -> bool {
        self.sequential_ids
    }

    /// Sets the largest packet any peer may send.
    pub fn set_max_packet_size(&mut self, size: i64) -> Result<(), MultiplayerError> {
        match usize::try_from(size) {
            Ok(s) if (1..=MAX_PACKET_SIZE_LIMIT).contains(&s) => {
                self.max_packet_size = s;
                Ok(())
            }
            _ => Err(MultiplayerError::InvalidMaxPacketSize(size)),
        }
    }

    /// The largest packet any peer may send.
    pub fn max_packet_size(&self) -> usize {
        self.max_packet_size
    }

    /// Creates the server (id 1), connected at once.
    pub fn create_server(&mut self) -> Result<PeerId, MultiplayerError> {
        if self
            .peers
            .get(&SERVER_ID)
            .is_some_and(|server| server.status != Status::Disconnected)
        {
            return Err(MultiplayerError::ServerExists);
        }
        self.peers
            .insert(SERVER_ID, PeerState::new(true, Status::Connected));
        self.refusing_new_connections = false;
        Ok(SERVER_ID)
    }

    /// Creates a client, connecting: it becomes connected at the next [`Network::step`] when a server exists and
    /// accepts new connections, and is refused (disconnected) when the server refuses them.
    pub fn create_client(&mut self) -> PeerId {
        let index = self.clients_created;
        self.clients_created += 1;
        let id = if self.sequential_ids {
            // Sequential ids continue after the largest id in use, so they never collide with random ones.
            let largest = self.peers.keys().next_back().copied().unwrap_or(SERVER_ID);
            largest.checked_add(1).unwrap_or_else(|| self.random_id())
        } else {
            self.random_id()
        };
        self.peers
            .insert(id, PeerState::new(false, Status::Connecting));
        let seed = |direction: u64| {
            self.seed ^ (index * 2 + direction + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        };
        self.routes.insert(
            id,
            Route {
                to_server: Lane::new(self.default_to_server.clone(), seed(0)),
                to_client: Lane::new(self.default_to_client.clone(), seed(1)),
            },
        );
        id
    }

    /// A random unused id: positive, 31-bit, not 1 (as Godot's `generate_unique_id`).
    fn random_id(&mut self) -> PeerId {
        loop {
            let id = (self.id_rng.next_u64() & 0x7FFF_FFFF) as PeerId;
            if id > SERVER_ID && !self.peers.contains_key(&id) {
                return id;
            }
        }
    }

    /// Whether `id` is the server.
    pub fn is_server(&self, id: PeerId) -> bool {
        self.peers.get(&id).is_some_and(|peer| peer.is_server)
    }

    /// The connection state of `id` (disconnected for an unknown id).
    pub fn status(&self, id: PeerId) -> Status {
        self.peers
            .get(&id)
            .map_or(Status::Disconnected, |peer| peer.status)
    }

    /// Every peer's id with its status, in id order.
    pub fn peers(&self) -> Vec<(PeerId, Status)> {
        self.peers.iter().map(|(id, p)| (*id, p.status)).collect()
    }

    /// Makes the server refuse (true) or accept (false) clients that have not connected yet.
    pub fn set_refusing_new_connections(&mut self, refuse: bool) {
        self.refusing_new_connections = refuse;
    }

    /// Whether the server refuses new clients.
    pub fn is_refusing_new_connections(&self) -> bool {
        self.refusing_new_connections
    }

    /// Connects waiting clients and delivers every packet due at or before `now`.
    pub fn step(&mut self, now: Micros) {
        let server_up = self.status(SERVER_ID) == Status::Connected;
        let waiting: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, p)| p.status == Status::Connecting)
            .map(|(id, _)| *id)
            .collect();
        if server_up {
            for id in waiting {
                if self.refusing_new_connections {
                    self.end_client(id);
                    continue;
                }
                self.set_status(id, Status::Connected);
                self.push_event(id, Event::Connected(SERVER_ID));
                self.push_event(SERVER_ID, Event::Connected(id));
            }
        }
        for (client, route) in &mut self.routes {
            for (lane, receiver) in [
                (&mut route.to_server, SERVER_ID),
                (&mut route.to_client, *client),
            ] {
                // A full inbox leaves the rest in the link, in order, until the peer reads.
                while self
                    .peers
                    .get(&receiver)
                    .is_none_or(|peer| peer.inbox.len() < MAX_INBOX)
                {
                    let Some(result) = lane.poll(now) else {
                        break;
                    };
                    let Some(peer) = self.peers.get_mut(&receiver) else {
                        continue;
                    };
                    match result {
                        Ok(packet) => {
                            peer.stats.packets_received += 1;
                            peer.stats.bytes_received += packet.data.len() as u64;
                            peer.inbox.push_back(packet);
                        }
                        Err(()) => peer.stats.dropped_out_of_order += 1,
                    }
                }
            }
        }
    }

    /// Moves the network onto a clock that reads `to` when the old one read `from`: everything in flight keeps
    /// its remaining delay (see [`LinkModel::shift_time`]).
    pub fn shift_time(&mut self, from: Micros, to: Micros) {
        for route in self.routes.values_mut() {
            for lane in [&mut route.to_server, &mut route.to_client] {
                lane.shift_time(from, to);
            }
        }
    }

    /// The earliest time a packet in flight is due, if any: when [`Network::step`] next has work.
    pub fn next_due(&self) -> Option<Micros> {
        self.routes
            .values()
            .flat_map(|r| [r.to_server.model.next_due(), r.to_client.model.next_due()])
            .flatten()
            .min()
    }

    /// Sends `data` from `from` at time `now`. A client's packets go to the server whatever `target` says; the
    /// server's go to client `target` (> 0), every client (0) or every client but `-target` (< 0). On error
    /// nothing is sent.
    pub fn send(
        &mut self,
        from: PeerId,
        now: Micros,
        target: PeerId,
        mode: TransferMode,
        channel: i64,
        data: Bytes,
    ) -> Result<(), MultiplayerError> {
        let channel =
            u8::try_from(channel).map_err(|_| MultiplayerError::InvalidChannel(channel))?;
        if data.len() > self.max_packet_size {
            return Err(MultiplayerError::Oversize {
                size: data.len(),
                max: self.max_packet_size,
            });
        }
        let sender = match self.peers.get(&from) {
            Some(peer) if peer.status == Status::Connected => peer,
            _ => return Err(MultiplayerError::NotConnected(from)),
        };
        let destinations: Vec<(PeerId, Direction)> = if !sender.is_server {
            vec![(from, Direction::ToServer)]
        } else {
            let connected = self
                .peers
                .iter()
                .filter(|(id, p)| !p.is_server && p.status == Status::Connected && **id != from);
            match target {
                0 => connected
                    .map(|(id, _)| (*id, Direction::ToClient))
                    .collect(),
                t if t > 0 => {
                    if self.status(t) != Status::Connected || t == from {
                        return Err(MultiplayerError::UnknownPeer(t));
                    }
                    vec![(t, Direction::ToClient)]
                }
                t => connected
                    .filter(|(id, _)| Some(**id) != t.checked_neg())
                    .map(|(id, _)| (*id, Direction::ToClient))
                    .collect(),
            }
        };
        if mode == TransferMode::Reliable {
            // All or nothing: refused whole when any destination's link is full of reliable packets.
            for (client, direction) in &destinations {
                let full = self.routes.get(client).is_some_and(|route| {
                    let lane = match direction {
                        Direction::ToServer => &route.to_server,
                        Direction::ToClient => &route.to_client,
                    };
                    !lane.model.has_reliable_room()
                });
                if full {
                    let peer = if *direction == Direction::ToServer {
                        SERVER_ID
                    } else {
                        *client
                    };
                    return Err(MultiplayerError::Backlog(peer));
                }
            }
        }
        let packet = Packet {
            from,
            mode,
            channel,
            data,
            order: 0,
        };
        let count = destinations.len() as u64;
        for (client, direction) in destinations {
            let Some(route) = self.routes.get_mut(&client) else {
                continue;
            };
            let lane = match direction {
                Direction::ToServer => &mut route.to_server,
                Direction::ToClient => &mut route.to_client,
            };
            lane.send(now, packet.clone());
        }
        if let Some(sender) = self.peers.get_mut(&from) {
            sender.stats.packets_sent += count;
            sender.stats.bytes_sent += count * packet.data.len() as u64;
        }
        Ok(())
    }

    /// The next packet `id` will read, if any.
    pub fn front(&self, id: PeerId) -> Option<&Packet> {
        self.peers.get(&id)?.inbox.front()
    }

    /// Takes the next packet `id` reads.
    pub fn pop(&mut self, id: PeerId) -> Option<Packet> {
        self.peers.get_mut(&id)?.inbox.pop_front()
    }

    /// How many packets `id` can read.
    pub fn available(&self, id: PeerId) -> usize {
        self.peers.get(&id).map_or(0, |p| p.inbox.len())
    }

    /// Takes what `id` has been told since last asked, oldest first.
    pub fn take_events(&mut self, id: PeerId) -> Vec<Event> {
        self.peers
            .get_mut(&id)
            .map(|p| p.events.drain(..).collect())
            .unwrap_or_default()
    }

    /// `by` (the server) disconnects client `client`: the client is told at once ([`Event::Disconnected`] of
    /// the server); the server too unless `force`. A client may disconnect itself from the server (`client` =
    /// 1), which is its [`Network::close`] except that with `force` it is not told.
    pub fn disconnect_peer(
        &mut self,
        by: PeerId,
        peer: PeerId,
        force: bool,
    ) -> Result<(), MultiplayerError> {
        if self.status(by) != Status::Connected {
            return Err(MultiplayerError::NotConnected(by));
        }
        if !self.is_server(by) {
            if peer != SERVER_ID {
                return Err(MultiplayerError::NotServer(peer));
            }
            if !force {
                self.push_event(by, Event::Disconnected(SERVER_ID));
            }
            self.push_event(SERVER_ID, Event::Disconnected(by));
            self.end_client(by);
            return Ok(());
        }
        if peer == by || self.status(peer) != Status::Connected {
            return Err(MultiplayerError::UnknownPeer(peer));
        }
        if !force {
            self.push_event(by, Event::Disconnected(peer));
        }
        self.push_event(peer, Event::Disconnected(SERVER_ID));
        self.end_client(peer);
        Ok(())
    }

    /// Closes `id`. It is told nothing and its unread packets and events are discarded. Closing the server
    /// disconnects every client (each is told); closing a connected client tells the server.
    pub fn close(&mut self, id: PeerId) {
        let Some(peer) = self.peers.get(&id) else {
            return;
        };
        if peer.is_server {
            let clients: Vec<(PeerId, Status)> = self
                .peers
                .iter()
                .filter(|(_, p)| !p.is_server && p.status != Status::Disconnected)
                .map(|(id, p)| (*id, p.status))
                .collect();
            for (client, status) in clients {
                if status == Status::Connected {
                    self.push_event(client, Event::Disconnected(SERVER_ID));
                }
                self.end_client(client);
            }
        } else if peer.status == Status::Connected {
            self.push_event(SERVER_ID, Event::Disconnected(id));
        }
        self.end_client(id);
    }

    /// Closes `id` and forgets it (its object is gone).
    pub fn remove(&mut self, id: PeerId) {
        self.close(id);
        self.peers.remove(&id);
    }

    /// Ends a client's connection (or the server's state): disconnected, links and everything in flight to or
    /// from it gone (counted), its inbox and the server's undelivered packets from it discarded.
    fn end_client(&mut self, id: PeerId) {
        let mut lost = 0u64;
        if let Some(route) = self.routes.remove(&id) {
            lost += (route.to_server.model.queued() + route.to_client.model.queued()) as u64;
        }
        if id != SERVER_ID {
            if let Some(server) = self.peers.get_mut(&SERVER_ID) {
                let before = server.inbox.len();
                server.inbox.retain(|p| p.from != id);
                let dropped = (before - server.inbox.len()) as u64;
                server.stats.dropped_disconnected += dropped;
            }
        }
        if let Some(peer) = self.peers.get_mut(&id) {
            peer.status = Status::Disconnected;
            peer.stats.dropped_disconnected += lost + peer.inbox.len() as u64;
            peer.inbox.clear();
            if peer.is_server {
                peer.events.clear();
            }
        }
    }

    fn set_status(&mut self, id: PeerId, status: Status) {
        if let Some(peer) = self.peers.get_mut(&id) {
            peer.status = status;
        }
    }

    fn push_event(&mut self, id: PeerId, event: Event) {
        if let Some(peer) = self.peers.get_mut(&id) {
            if peer.status != Status::Disconnected {
                peer.events.push_back(event);
            }
        }
    }

    /// A peer's counters.
    pub fn peer_stats(&self, id: PeerId) -> Option<PeerStats> {
        self.peers.get(&id).map(|p| p.stats)
    }

    /// The link counters of client `client`'s connection.
    pub fn route_stats(&self, client: PeerId) -> Option<RouteStats> {
        self.routes.get(&client).map(|r| RouteStats {
            to_server: *r.to_server.model.stats(),
            to_server_queued: r.to_server.model.queued(),
            to_client: *r.to_client.model.stats(),
            to_client_queued: r.to_client.model.queued(),
        })
    }

    /// The settings of one direction of `client`'s link, or the defaults for clients yet to come when `client`
    /// is 0.
    pub fn link_config(&self, client: PeerId, direction: Direction) -> Option<&LinkConfig> {
        if client == 0 {
            return Some(match direction {
                Direction::ToServer => &self.default_to_server,
                Direction::ToClient => &self.default_to_client,
            });
        }
        let route = self.routes.get(&client)?;
        Some(match direction {
            Direction::ToServer => route.to_server.model.config(),
            Direction::ToClient => route.to_client.model.config(),
        })
    }

    /// Changes one direction of `client`'s link with `change`; with `client` 0, of every client's link and of
    /// those created later. On error nothing changes.
    pub fn configure_link<E>(
        &mut self,
        client: PeerId,
        direction: Direction,
        change: impl Fn(&mut LinkConfig) -> Result<(), E>,
    ) -> Result<(), ConfigureError<E>> {
        let chosen: Vec<PeerId> = if client == 0 {
            self.routes.keys().copied().collect()
        } else if self.routes.contains_key(&client) {
            vec![client]
        } else {
            return Err(ConfigureError::NoLink(client));
        };
        fn lane(route: &mut Route, direction: Direction) -> &mut LinkModel<Packet> {
            match direction {
                Direction::ToServer => &mut route.to_server.model,
                Direction::ToClient => &mut route.to_client.model,
            }
        }
        let mut default = match direction {
            Direction::ToServer => self.default_to_server.clone(),
            Direction::ToClient => self.default_to_client.clone(),
        };
        let current: Vec<&LinkConfig> = chosen
            .iter()
            .filter_map(|id| self.routes.get(id))
            .map(|route| match direction {
                Direction::ToServer => route.to_server.model.config(),
                Direction::ToClient => route.to_client.model.config(),
            })
            .chain((client == 0).then_some(&default))
            .collect();
        let mut updated = change_all(current, &change).map_err(ConfigureError::Setting)?;
        if client == 0 {
            default = updated.pop().unwrap_or(default);
        }
        for (id, config) in chosen.iter().zip(updated) {
            if let Some(route) = self.routes.get_mut(id) {
                lane(route, direction).set_config(config);
            }
        }
        if client == 0 {
            match direction {
                Direction::ToServer => self.default_to_server = default,
                Direction::ToClient => self.default_to_client = default,
            }
        }
        Ok(())
    }
}

/// Why [`Network::configure_link`] refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigureError<E> {
    /// The id is not a client with a link (unknown, the server, or disconnected).
    #[error("peer {0} is not a client with a link to the server (use 0 for every client)")]
    NoLink(PeerId),
    /// The change itself was refused.
    #[error("{0}")]
    Setting(E),
}
