//! Godot's `MultiplayerPeer.TransferMode` and the core's, both ways: the one mapping every multiplayer class uses.

use godot::classes::multiplayer_peer::TransferMode as GodotMode;
use peerkit_core::multiplayer::TransferMode;

/// The Godot mode of a core mode.
pub(crate) fn to_godot(mode: TransferMode) -> GodotMode {
    match mode {
        TransferMode::Unreliable => GodotMode::UNRELIABLE,
        TransferMode::UnreliableOrdered => GodotMode::UNRELIABLE_ORDERED,
        TransferMode::Reliable => GodotMode::RELIABLE,
    }
}

/// The core mode of a Godot mode (a value Godot does not define is treated as reliable, the safe reading).
pub(crate) fn from_godot(mode: GodotMode) -> TransferMode {
    match mode {
        GodotMode::UNRELIABLE => TransferMode::Unreliable,
        GodotMode::UNRELIABLE_ORDERED => TransferMode::UnreliableOrdered,
        _ => TransferMode::Reliable,
    }
}
