//! The vocabulary of the network: ids, transfer modes, statuses, events, packets, errors and counters.

use bytes::Bytes;

use crate::link::{Payload, MAX_RELIABLE_HELD};

/// A peer's id: 1 for the server, a positive number for a client.
pub type PeerId = i32;

/// The server's id, as in Godot.
pub const SERVER_ID: PeerId = 1;

/// The largest channel number (channels are 0 to this).
pub const MAX_CHANNEL: i64 = 255;

/// The default and largest `max_packet_size`, as Godot's ENet peer: 16 MiB.
pub const MAX_PACKET_SIZE_LIMIT: usize = 1 << 24;
/// The most packets a peer's inbox holds unread. Beyond it, deliveries to that peer wait in its link (where
/// unreliable ones are subject to `queue_limit`, reliable ones to [`MAX_RELIABLE_HELD`]), so a peer that stops
/// reading costs at most this many packets, plus what its link holds.
pub const MAX_INBOX: usize = 65_536;

/// How a packet is delivered; Godot's `MultiplayerPeer.TransferMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferMode {
    /// May be lost, duplicated, corrupted or reordered, as the link decides.
    Unreliable,
    /// As unreliable, but never delivered after a newer packet of the same channel and sender.
    UnreliableOrdered,
    /// Always delivered, once, in order within its channel; only delayed by the link.
    Reliable,
}

/// A peer's connection state; Godot's `MultiplayerPeer.ConnectionStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Closed, refused, or disconnected.
    Disconnected,
    /// A client waiting for the next [`Network::step`] (and for a server that accepts it).
    Connecting,
    /// Able to send and receive.
    Connected,
}

/// Something a peer is told about another peer, in the order it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The peer with this id is now connected to this one (Godot's `peer_connected`).
    Connected(PeerId),
    /// The peer with this id is no longer connected to this one (Godot's `peer_disconnected`).
    Disconnected(PeerId),
}

/// One direction of a client's link with the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the client to the server.
    ToServer,
    /// From the server to the client.
    ToClient,
}

/// A packet in flight or waiting to be read, with what the receiver learns about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Who sent it.
    pub from: PeerId,
    /// How it was sent.
    pub mode: TransferMode,
    /// Its channel, 0 to [`MAX_CHANNEL`].
    pub channel: u8,
    /// The bytes.
    pub data: Bytes,
    /// Position among the sender's unreliable-ordered packets of this channel on this link.
    pub(super) order: u64,
}

impl Payload for Packet {
    fn len(&self) -> usize {
        self.data.len()
    }

    fn with_bit_flipped(&self, bit: u64) -> Self {
        Self {
            data: self.data.with_bit_flipped(bit),
            ..self.clone()
        }
    }
}

/// Why the network refused a request. Nothing changes when a request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MultiplayerError {
    /// A server exists already and has not been closed.
    #[error("this network already has a server; close it before creating another")]
    ServerExists,
    /// The peer is not connected (never was, still connecting, or closed).
    #[error("peer {0} is not connected")]
    NotConnected(PeerId),
    /// No such peer, or it is not connected to the one asking.
    #[error("peer {0} is not connected to this one")]
    UnknownPeer(PeerId),
    /// The packet is larger than `max_packet_size`.
    #[error("packet of {size} bytes is larger than max_packet_size ({max} bytes)")]
    Oversize {
        /// The packet's size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A channel outside 0 to [`MAX_CHANNEL`].
    #[error("channel must be between 0 and {MAX_CHANNEL}, got {0}")]
    InvalidChannel(i64),
    /// A `max_packet_size` outside 1 to [`MAX_PACKET_SIZE_LIMIT`].
    #[error("max_packet_size must be between 1 and {MAX_PACKET_SIZE_LIMIT} bytes, got {0}")]
    InvalidMaxPacketSize(i64),
    /// Only the server may do this (clients have one connection: the server).
    #[error("only the server can disconnect peer {0}; a client disconnects itself with close()")]
    NotServer(PeerId),
    /// The link towards this peer holds as many reliable packets as it may: the peer reads too slowly, or its
    /// link is cut. Nothing was sent; try again later.
    #[error("the link to peer {0} holds {MAX_RELIABLE_HELD} reliable packets already (it reads too slowly, or its link is cut); nothing was sent")]
    Backlog(PeerId),
}

/// Counters of one peer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerStats {
    /// Packets this peer sent (one per destination).
    pub packets_sent: u64,
    /// Bytes this peer sent (counted per destination).
    pub bytes_sent: u64,
    /// Packets delivered to this peer's inbox.
    pub packets_received: u64,
    /// Bytes delivered to this peer's inbox.
    pub bytes_received: u64,
    /// Unreliable-ordered packets that arrived older than one already delivered, and were dropped.
    pub dropped_out_of_order: u64,
    /// Packets to or from this peer dropped because a disconnection or close ended the connection first.
    pub dropped_disconnected: u64,
}
