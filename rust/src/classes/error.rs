//! The one place where core errors become Godot `Error` codes.

use std::cell::Cell;

use godot::global::Error;
use peerkit_core::link::LinkConfigError;
use peerkit_core::multiplayer::MultiplayerError;
use peerkit_core::pair::PairError;
use peerkit_core::reliable::{ReliableError, TransportRefusal};

/// A core error that maps to a Godot `Error` code.
pub(crate) trait GodotErrorCode {
    /// The `Error` a script sees for this failure.
    fn error_code(&self) -> Error;
}

impl GodotErrorCode for PairError {
    fn error_code(&self) -> Error {
        match self {
            PairError::InvalidCapacity(_)
            | PairError::InvalidMaxPacketSize(_)
            | PairError::Oversize { .. } => Error::ERR_INVALID_PARAMETER,
            PairError::Full { .. } => Error::ERR_BUSY,
            PairError::Closed => Error::ERR_CONNECTION_ERROR,
            PairError::Empty => Error::ERR_UNAVAILABLE,
        }
    }
}

impl GodotErrorCode for LinkConfigError {
    fn error_code(&self) -> Error {
        Error::ERR_INVALID_PARAMETER
    }
}

impl GodotErrorCode for ReliableError {
    fn error_code(&self) -> Error {
        match self {
            ReliableError::MessageTooLarge { .. } | ReliableError::InvalidSetting { .. } => {
                Error::ERR_INVALID_PARAMETER
            }
            ReliableError::Busy { .. } => Error::ERR_BUSY,
            ReliableError::TimedOut { .. } | ReliableError::HandshakeTimedOut { .. } => {
                Error::ERR_TIMEOUT
            }
            ReliableError::NotOpen(_)
            | ReliableError::VersionMismatch { .. }
            | ReliableError::SettingMismatch { .. }
            | ReliableError::PeerMessageTooLarge { .. }
            | ReliableError::ProtocolViolation(_)
            | ReliableError::PeerClosed
            | ReliableError::Transport(_) => Error::ERR_CONNECTION_ERROR,
            ReliableError::Refused(_) => Error::ERR_CANT_CONNECT,
        }
    }
}

impl GodotErrorCode for MultiplayerError {
    fn error_code(&self) -> Error {
        match self {
            MultiplayerError::ServerExists => Error::ERR_ALREADY_IN_USE,
            MultiplayerError::NotConnected(_) => Error::ERR_UNCONFIGURED,
            MultiplayerError::UnknownPeer(_)
            | MultiplayerError::Oversize { .. }
            | MultiplayerError::InvalidChannel(_)
            | MultiplayerError::InvalidMaxPacketSize(_) => Error::ERR_INVALID_PARAMETER,
            MultiplayerError::NotServer(_) => Error::ERR_UNAVAILABLE,
            MultiplayerError::Backlog(_) => Error::ERR_BUSY,
        }
    }
}

/// Why a peer refuses a packet, in words a user can act on, for the error it returned.
impl GodotErrorCode for peerkit_core::multiplayer::host::HostError {
    fn error_code(&self) -> Error {
        use peerkit_core::multiplayer::host::HostError;
        match self {
            HostError::NotConnected => Error::ERR_UNCONFIGURED,
            HostError::UnknownPeer(_) | HostError::ClientTarget | HostError::Channel(_) => {
                Error::ERR_INVALID_PARAMETER
            }
            HostError::Connection(e) => e.error_code(),
        }
    }
}

/// Reports a socket that could not be bound, as `what` (e.g. "UdpPacketPeer.bind"), and returns its error code:
/// [constant ERR_UNAVAILABLE] when the port is taken, [constant ERR_CANT_CREATE] otherwise.
pub(crate) fn report_bind_error(what: &str, error: &peerkit_core::io::udp::UdpError) -> Error {
    match error {
        peerkit_core::io::udp::UdpError::AddressInUse(addr) => {
            godot::global::godot_error!("{what}: {addr} is already in use");
            Error::ERR_UNAVAILABLE
        }
        e => {
            godot::global::godot_error!("{what}: {e}");
            Error::ERR_CANT_CREATE
        }
    }
}

pub(crate) fn refusal_hint(err: Error) -> &'static str {
    match err {
        Error::ERR_UNCONFIGURED => {
            "it is not ready to send (a PacketPeerUDP needs bind, and set_dest_address or connect_to_host, first)"
        }
        Error::ERR_BUSY | Error::ERR_OUT_OF_MEMORY => {
            "its queue is full (the other end reads too slowly, or not at all)"
        }
        Error::ERR_INVALID_PARAMETER => "the packet is larger than it accepts",
        Error::ERR_CONNECTION_ERROR | Error::ERR_UNAVAILABLE | Error::ERR_CANT_CONNECT => {
            "it is closed, or nobody is listening at the other end (for UDP: no socket on that port)"
        }
        _ => "see that peer's documentation for this error",
    }
}

/// What the core's refusal rule is told when an inner peer refuses a datagram of `len` bytes with `err`: a full
/// queue is congestion; a peer not ready to send yet (no destination) is retried until it is, with the fix named;
/// anything else fails the connection with the reason.
pub(crate) fn transport_refusal(err: Error, len: usize) -> TransportRefusal {
    match err {
        Error::ERR_BUSY | Error::ERR_OUT_OF_MEMORY => TransportRefusal::Full,
        Error::ERR_UNCONFIGURED => TransportRefusal::NotReady {
            hint: format!(
                "the inner peer refused a datagram with {err:?}: {}",
                refusal_hint(err)
            ),
        },
        other => TransportRefusal::Fatal {
            reason: format!(
                "the inner peer refused a datagram of {len} bytes with {other:?}: {}{}",
                refusal_hint(other),
                if other == Error::ERR_INVALID_PARAMETER {
                    " (is mtu larger than it accepts?)"
                } else {
                    ""
                }
            ),
        },
    }
}

/// For a message said at most once per object: a call that keeps failing the same way (a loop that reads a
/// peer with no inner peer every frame) gets one clear error rather than one per frame.
#[derive(Debug, Default)]
pub(crate) struct Once(Cell<bool>);

impl Once {
    /// True the first time only.
    pub(crate) fn first(&self) -> bool {
        !self.0.replace(true)
    }
}
