//! A sans-IO reliable, ordered message protocol over any unreliable datagram transport.
//!
//! [`Connection`] is a state machine in the manner of quinn-proto: it never touches a socket, a clock or the OS's
//! randomness (its connection id comes from the seed it is given). Feed it what arrives with
//! [`Connection::handle_datagram`], call [`Connection::handle_timeout`] when [`Connection::poll_timeout`] is due
//! (more often does no harm), then call [`Connection::poll_transmit`] until it returns `false` and send each
//! datagram it writes, and take what happened from [`Connection::poll_event`]. It starts with a handshake that
//! gives each side a random connection id; messages you [`Connection::send`] meanwhile wait for it. Messages
//! come out of the other side's [`Connection::recv`] exactly once and in order, or the connection fails visibly
//! ([`Connection::status`], [`Connection::error`]). The wire format is protocol version 3, described in
//! docs/PROTOCOL.md.

pub mod congestion;
mod connection;
pub mod endpoint;
pub mod packet;
pub mod recv;
pub mod send;
pub mod seq;
pub mod session;
pub mod unreliable;

pub use connection::Connection;
pub use endpoint::{
    ConnectionHandle, Endpoint, EndpointConfig, EndpointEvent, EndpointStats, Transmit,
    TransportRefusal,
};
pub use packet::RefuseReason;
pub use session::Session;

use crate::link::Micros;

/// The smallest datagram size accepted: room for the header and some payload.
pub const MIN_MTU: usize = 64;
/// The largest datagram size accepted: the largest UDP payload over IPv4.
pub const MAX_MTU: usize = 65_507;
/// The largest message size that may be configured: 16 MiB.
pub const MAX_MESSAGE_SIZE_LIMIT: usize = 16 * 1024 * 1024;

/// How a message travels: the multiplayer layer's transfer modes, which a connection carries as they say.
pub use crate::multiplayer::TransferMode;

/// A message taken from a connection, with the channel and mode it was sent with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Its channel (0 to 255).
    pub channel: u8,
    /// How it was sent.
    pub mode: TransferMode,
    /// Its bytes.
    pub payload: bytes::Bytes,
}

/// Where a connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Nothing has been received from the peer yet; messages may already be sent.
    Connecting,
    /// The peer has been heard from.
    Connected,
    /// Closed by this side or by the peer; received messages stay readable.
    Closed,
    /// Failed; see [`Connection::error`]. Received messages stay readable.
    Failed,
}

/// Something that happened to a connection, reported once by [`Connection::poll_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The handshake completed: messages flow.
    Connected,
    /// The connection closed, by this side (`close`) or by the peer.
    Closed {
        /// True when the peer closed it.
        by_peer: bool,
    },
    /// The connection failed, for this reason.
    Failed(ReliableError),
}

/// Why a message was refused or the connection failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReliableError {
    /// The message is larger than `max_message_size`; nothing was queued.
    #[error("message of {size} bytes is larger than max_message_size ({max} bytes)")]
    MessageTooLarge {
        /// The message's size.
        size: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The send buffer is full; nothing was queued. Try again after the peer has acknowledged more.
    #[error("send buffer full: {pending} bytes wait for acknowledgement (limit {limit})")]
    Busy {
        /// Bytes waiting.
        pending: usize,
        /// The send buffer size.
        limit: usize,
    },
    /// The connection is closed or failed; nothing was queued.
    #[error("the connection is {0:?}")]
    NotOpen(Status),
    /// Nothing was heard from the peer for the timeout.
    #[error("no datagram from the peer for {ms} ms (timeout_ms)")]
    TimedOut {
        /// The timeout in milliseconds.
        ms: u64,
    },
    /// The handshake got no answer for the timeout.
    #[error("no answer to the handshake for {ms} ms (timeout_ms){}", handshake_hint(*.foreign, .not_ready))]
    HandshakeTimedOut {
        /// The timeout in milliseconds.
        ms: u64,
        /// Datagrams that arrived but were not of this protocol (foreign or malformed).
        foreign: u64,
        /// Datagrams the transport could not send, and what it said to do about it.
        not_ready: Option<(u64, String)>,
    },
    /// A server answered the handshake with a refusal: at once when it is full or not accepting; when too many
    /// connections were pending, once the handshake timed out still refused.
    #[error("the server refused the connection: {}", refusal_text(*.0))]
    Refused(RefuseReason),
    /// The two sides announced different values for a setting that must match.
    #[error("the peer's {name} is {theirs} and this peer's is {ours}; set the same {name} on both sides")]
    SettingMismatch {
        /// The setting.
        name: &'static str,
        /// This side's value.
        ours: u64,
        /// The peer's value.
        theirs: u64,
    },
    /// The peer speaks another version of the protocol.
    #[error("the peer speaks protocol version {theirs}; this peer speaks version {ours}: use the same peerkit release on both sides")]
    VersionMismatch {
        /// The peer's version.
        theirs: u8,
        /// Ours.
        ours: u8,
    },
    /// The peer sent a message larger than this side accepts.
    #[error("the peer sent a message of {size} bytes, larger than max_message_size ({max} bytes); set the same max_message_size on both sides")]
    PeerMessageTooLarge {
        /// The message's size.
        size: usize,
        /// This side's maximum.
        max: usize,
    },
    /// The peer broke the protocol in a way a checksum cannot explain.
    #[error("protocol violation by the peer: {0}")]
    ProtocolViolation(&'static str),
    /// The peer closed the connection.
    #[error("the peer closed the connection")]
    PeerClosed,
    /// The transport underneath refused datagrams for good (closed, or too small for the MTU).
    #[error("the transport failed: {0}")]
    Transport(String),
    /// A setting is out of range; nothing changed.
    #[error("{name} must be between {min} and {max}, got {value}")]
    InvalidSetting {
        /// The setting's name.
        name: &'static str,
        /// The refused value.
        value: i64,
        /// The smallest accepted value.
        min: i64,
        /// The largest accepted value.
        max: i64,
    },
}

/// A connection's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReliableConfig {
    /// The largest datagram sent, in bytes.
    pub mtu: usize,
    /// The largest message sent or accepted, in bytes.
    pub max_message_size: usize,
    /// The connection fails when nothing has been heard from the peer for this long.
    pub timeout_us: Micros,
    /// Bytes of messages accepted and not yet acknowledged before `send` refuses more (raised to at least
    /// `max_message_size`).
    pub send_buffer_bytes: usize,
    /// The receive window: how much the peer may send beyond what the reader has taken, in bytes plus 64 per
    /// message (raised to hold at least one message of `max_message_size`). The peer's sending stops there until
    /// the reader reads.
    pub receive_buffer_bytes: usize,
    /// The most datagrams outstanding (sent, not yet acknowledged) at once, and buffered out of order.
    pub max_window: usize,
    /// The congestion window never grows beyond this many datagrams (nor beyond `max_window`). The default,
    /// `usize::MAX`, is no cap beyond `max_window`, whatever that is set to; a smaller one holds the window
    /// near a size of one's choosing, as the capped-link example's `--max-window` does to show what a window of
    /// that size gives on a link.
    pub max_congestion_window: usize,
    /// Retransmission timeout before any round trip has been measured.
    pub initial_rto_us: Micros,
    /// The smallest retransmission timeout.
    pub min_rto_us: Micros,
    /// The largest retransmission timeout.
    pub max_rto_us: Micros,
    /// The first sequence number this side sends: random (from the connection's seed) unless set, for tests
    /// of wrap-around.
    pub first_seq: Option<u32>,
}

impl Default for ReliableConfig {
    fn default() -> Self {
        Self {
            mtu: 1200,
            max_message_size: 1024 * 1024,
            timeout_us: 10_000_000,
            send_buffer_bytes: 4 * 1024 * 1024,
            receive_buffer_bytes: 8 * 1024 * 1024,
            max_window: 16384,
            max_congestion_window: usize::MAX,
            initial_rto_us: 200_000,
            min_rto_us: 30_000,
            max_rto_us: 2_000_000,
            first_seq: None,
        }
    }
}

impl ReliableConfig {
    /// Checks `mtu`.
    pub fn check_mtu(mtu: i64) -> Result<usize, ReliableError> {
        range("mtu", mtu, MIN_MTU as i64, MAX_MTU as i64)
    }

    /// Checks `max_message_size`.
    pub fn check_max_message_size(size: i64) -> Result<usize, ReliableError> {
        range("max_message_size", size, 1, MAX_MESSAGE_SIZE_LIMIT as i64)
    }

    /// Checks `timeout_ms` and returns it in microseconds.
    pub fn check_timeout_ms(ms: i64) -> Result<Micros, ReliableError> {
        Ok(range("timeout_ms", ms, 1, 3_600_000)? as Micros * 1000)
    }

    /// How often to send something when there is nothing to send, so the peer does not time out.
    pub fn keepalive_us(&self) -> Micros {
        (self.timeout_us / 4).clamp(1_000, 1_000_000)
    }
}

fn handshake_hint(foreign: u64, not_ready: &Option<(u64, String)>) -> String {
    if let Some((count, hint)) = not_ready {
        return format!("; the transport could not send {count} of its datagrams: {hint}");
    }
    if foreign == 0 {
        "; is a ReliablePacketPeer at the other end, and is it polled?".to_string()
    } else {
        format!(
            "; {foreign} datagrams of another protocol arrived meanwhile: is the other side a ReliablePacketPeer?"
        )
    }
}

fn refusal_text(reason: RefuseReason) -> &'static str {
    match reason {
        RefuseReason::Full => "it has max_connections clients already",
        RefuseReason::TooManyPending => {
            "max_pending_connections clients kept waiting to be taken until timeout_ms ran out (does the server call take_connection()?)"
        }
        RefuseReason::NotAccepting => "it does not accept new connections",
    }
}

pub(crate) fn range(
    name: &'static str,
    value: i64,
    min: i64,
    max: i64,
) -> Result<usize, ReliableError> {
    if (min..=max).contains(&value) {
        Ok(value as usize)
    } else {
        Err(ReliableError::InvalidSetting {
            name,
            value,
            min,
            max,
        })
    }
}

/// The messages a connection let go of, unacknowledged, when it closed or failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Unfinished {
    /// Not yet sent whole: they cannot have arrived (counted in `messages_discarded`).
    pub unsent: usize,
    /// Sent whole but never acknowledged: they may well have arrived, the acknowledgement did not (counted in
    /// `messages_unconfirmed`).
    pub unconfirmed: usize,
}

impl Unfinished {
    /// Both kinds together.
    pub fn total(self) -> usize {
        self.unsent + self.unconfirmed
    }
}

/// A connection's counters and estimates.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ReliableStats {
    /// Smoothed round-trip time (0 before the first sample).
    pub srtt_us: Micros,
    /// Round-trip time variation.
    pub rttvar_us: Micros,
    /// Current retransmission timeout.
    pub rto_us: Micros,
    /// Messages accepted by `send`.
    pub messages_sent: u64,
    /// Messages taken by `recv`.
    pub messages_received: u64,
    /// Datagrams written by `poll_transmit`.
    pub datagrams_sent: u64,
    /// Datagrams given to `handle_datagram` that passed the checks.
    pub datagrams_received: u64,
    /// DATA datagrams sent again.
    pub retransmissions: u64,
    /// Payload bytes sent and not yet acknowledged.
    pub bytes_in_flight: u64,
    /// Messages accepted and not yet fully acknowledged.
    pub messages_pending: u64,
    /// The congestion window, in datagrams.
    pub congestion_window: f64,
    /// The round trip the congestion controller takes as the path's without queueing (0 before the first
    /// sample); the smoothed RTT above it is queueing.
    pub base_rtt_us: Micros,
    /// Datagrams dropped because their checksum did not match.
    pub dropped_corrupt: u64,
    /// DATA datagrams already received.
    pub dropped_duplicate: u64,
    /// Datagrams that were not peerkit datagrams, malformed, or acknowledged data never sent.
    pub dropped_invalid: u64,
    /// DATA datagrams dropped, unacknowledged, for being further ahead than the receiver buffers; the peer sends
    /// them again.
    pub dropped_no_room: u64,
    /// Datagrams of another connection (a stale or stray datagram, another peer's handshake): never delivered.
    pub dropped_other_connection: u64,
    /// Checksum-valid datagrams of another protocol version (also counted in `dropped_invalid`).
    pub dropped_other_version: u64,
    /// Messages accepted and then discarded, not yet sent whole, because the connection closed or failed: they
    /// never reached the peer.
    pub messages_discarded: u64,
    /// Messages sent whole but not acknowledged when the connection closed or failed: they may have reached the
    /// peer (a peer that quits right after its last message leaves them so).
    pub messages_unconfirmed: u64,
    /// Whether new data waits because the receiver's window is full (its reader is behind).
    pub flow_blocked: bool,
    /// Payload bytes of DATA datagrams written: first sends, retransmissions and redundant copies.
    pub payload_bytes_sent: u64,
    /// Redundant copies of a thin stream's fragments sent in later datagrams and tail probes.
    pub copies_sent: u64,
    /// Tail probes sent: DATA datagrams of copies alone, when nothing followed a thin stream's last fragment.
    pub tail_probes: u64,
    /// Copies that arrived before the datagram they copy (which was lost or late): each a repair without a
    /// retransmission.
    pub copies_useful: u64,
    /// Unreliable messages accepted by `send_on`.
    pub unreliable_sent: u64,
    /// Unreliable messages taken by `recv`.
    pub unreliable_received: u64,
    /// Unreliable messages this side dropped: waiting to be sent when newer ones needed the room (or the
    /// connection closed), or received and not read before newer ones needed the room.
    pub unreliable_dropped: u64,
    /// Unreliable-ordered messages that arrived after a newer one of their channel: dropped.
    pub unreliable_late: u64,
    /// Unreliable messages of several fragments given up before all arrived (a fragment was lost).
    pub unreliable_incomplete: u64,
}
