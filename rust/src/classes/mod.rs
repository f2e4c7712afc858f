//! The Godot classes. The only code in peerkit that imports `godot`.

mod error;
mod ffi;
mod link_conditioner;
mod local_packet_peer;
