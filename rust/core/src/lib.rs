//! The Godot-free core of peerkit.
//!
//! Everything here is plain Rust, so it is tested with `cargo test` alone. The `peerkit` crate wraps these types
//! in Godot classes and does nothing but translate at that boundary.
//!
//! Sans-IO (no clock, no socket, no OS randomness; every input explicit, every result deterministic):
//! [`link`] (the link model and the two-direction conditioner), [`reliable`] (the reliable protocol),
//! [`multiplayer`] (the in-process network), [`pair`] (the in-memory connected pair), [`rng`], [`unpolled`]
//! (when to say that a peer is not polled). The I/O
//! boundary: [`io`] (UDP sockets and their receive thread).

#![forbid(unsafe_code)]

pub mod io;
pub mod link;
pub mod multiplayer;
pub mod pair;
pub mod reliable;
pub mod rng;
pub mod sim;
pub mod unpolled;
