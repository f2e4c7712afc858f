//! `PeerkitPanicProbe`: a peer that panics on purpose, built only with the `test-hooks` feature, so the tests can
//! prove that a panic inside a virtual becomes an `Error` return and a logged message.

use godot::classes::{IPacketPeerExtension, PacketPeerExtension};
use godot::global::Error;
use godot::meta::conv::RawPtr;
use godot::prelude::*;

use super::ffi;

/// A test-only [PacketPeer] whose [method PacketPeer.put_packet] and [method PacketPeer.get_packet] panic inside
/// Rust. peerkit's guard must turn each panic into [constant ERR_BUG] and a logged error.
#[derive(GodotClass)]
#[class(tool, init, base = PacketPeerExtension)]
pub struct PeerkitPanicProbe {
    base: Base<PacketPeerExtension>,
}

#[godot_api]
impl IPacketPeerExtension for PeerkitPanicProbe {
    unsafe fn get_packet_rawptr(
        &mut self,
        _r_buffer: RawPtr<*mut RawPtr<*const u8>>,
        _r_buffer_size: RawPtr<*mut i32>,
    ) -> Error {
        ffi::guard("PeerkitPanicProbe.get_packet", || {
            panic!("deliberate panic in get_packet")
        })
    }

    unsafe fn put_packet_rawptr(
        &mut self,
        _p_buffer: RawPtr<*const u8>,
        p_buffer_size: i32,
    ) -> Error {
        ffi::guard("PeerkitPanicProbe.put_packet", || {
            panic!("deliberate panic in put_packet ({p_buffer_size} bytes)")
        })
    }

    fn get_available_packet_count(&self) -> i32 {
        1
    }

    fn get_max_packet_size(&self) -> i32 {
        1024
    }
}
