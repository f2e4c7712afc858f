//! The Godot classes. The only code in peerkit that imports `godot`.

mod clock;
mod error;
mod ffi;
mod link_conditioner;
mod local_packet_peer;
mod reliable_packet_peer;
mod wrapping;
