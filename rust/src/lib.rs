//! peerkit: packet transports for Godot 4, as a GDExtension.
//!
//! The logic lives in the Godot-free `peerkit-core` crate; this crate only registers the Godot classes that
//! translate between Godot's `PacketPeer` API and that core.

use godot::prelude::*;

mod classes;

struct PeerkitExtension;

#[gdextension]
unsafe impl ExtensionLibrary for PeerkitExtension {}

#[cfg(test)]
mod tests;
