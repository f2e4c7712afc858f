//! The Godot-free core of peerkit.
//!
//! Everything here is plain Rust driven by explicit inputs, so it is tested with `cargo test` alone. The
//! `peerkit` crate wraps these types in Godot classes and does nothing but translate at that boundary.

pub mod link;
pub mod multiplayer;
pub mod pair;
pub mod reliable;
pub mod rng;
pub mod udp;
