//! `BenchNullPeer`: a do-nothing peer for benchmarks, built only with the `bench-peers` feature.
//!
//! Its put discards and its get hands back one fixed buffer, so timing it measures what Godot itself costs for a
//! put+get through a `PacketPeerExtension`: the floor under any extension peer.

use godot::classes::{IPacketPeerExtension, PacketPeerExtension};
use godot::global::Error;
use godot::meta::conv::RawPtr;
use godot::prelude::*;

use super::ffi;

/// A benchmark-only [PacketPeer]: [method PacketPeer.put_packet] discards, [method PacketPeer.get_packet]
/// returns the same buffer every time (of the size set with [method set_packet_size]), and a packet is always
/// available. It measures Godot's own cost of a put+get through a PacketPeerExtension.
#[derive(GodotClass)]
#[class(tool, init, base = PacketPeerExtension)]
pub struct BenchNullPeer {
    buffer: Vec<u8>,
    base: Base<PacketPeerExtension>,
}

#[godot_api]
impl IPacketPeerExtension for BenchNullPeer {
    unsafe fn get_packet_rawptr(
        &mut self,
        r_buffer: RawPtr<*mut RawPtr<*const u8>>,
        r_buffer_size: RawPtr<*mut i32>,
    ) -> Error {
        // SAFETY: Godot passes valid out-pointers; `self.buffer` lives as long as this object and only changes
        // in `set_packet_size`, never between a get and its use.
        unsafe { ffi::write_packet_out(r_buffer, r_buffer_size, &self.buffer) };
        Error::OK
    }

    unsafe fn put_packet_rawptr(
        &mut self,
        _p_buffer: RawPtr<*const u8>,
        _p_buffer_size: i32,
    ) -> Error {
        Error::OK
    }

    fn get_available_packet_count(&self) -> i32 {
        1
    }

    fn get_max_packet_size(&self) -> i32 {
        i32::MAX
    }
}

#[godot_api]
impl BenchNullPeer {
    /// Sets the size of the buffer [method PacketPeer.get_packet] returns.
    #[func]
    fn set_packet_size(&mut self, size: i64) {
        self.buffer = vec![0; size.clamp(0, 1 << 24) as usize];
    }
}
