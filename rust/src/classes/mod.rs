//! The Godot classes. The only code in peerkit that imports `godot`.

#[cfg(feature = "bench-peers")]
mod bench_null_peer;
mod clock;
mod error;
mod ffi;
mod link_conditioner;
mod link_settings;
mod live_links;
mod local_multiplayer;
mod local_packet_peer;
mod multiplayer_link_conditioner;
#[cfg(feature = "test-hooks")]
mod panic_probe;
mod poll_watch;
mod reliable_packet_peer;
mod reliable_server;
mod transfer_mode;
mod udp_link_proxy;
mod udp_multiplayer_peer;
mod udp_packet_peer;
mod wrapping;
