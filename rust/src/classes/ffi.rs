//! Raw-pointer helpers for the `PacketPeerExtension` virtuals, and the panic guard around them.
//!
//! All of peerkit's `unsafe` lives here and in the virtual overrides that call these helpers.

use std::panic::{catch_unwind, AssertUnwindSafe};

use godot::global::Error;
use godot::meta::conv::RawPtr;
use godot::prelude::godot_error;

/// Runs a virtual's body, turning a Rust panic into `ERR_BUG` and a logged message.
///
/// A panic escaping a virtual would leave Godot's return value unwritten; this keeps every return defined.
pub(crate) fn guard(what: &str, body: impl FnOnce() -> Error) -> Error {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(err) => err,
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            godot_error!(
                "peerkit: internal error in {what}: {message}. Please report this as a bug."
            );
            Error::ERR_BUG
        }
    }
}

/// Borrows the buffer Godot passes to `_put_packet`.
///
/// # Safety
/// `buffer` must point to `size` readable bytes that stay valid and unchanged for the returned lifetime
/// (Godot guarantees this for the duration of the `_put_packet` call).
unsafe fn put_buffer<'a>(buffer: RawPtr<*const u8>, size: i32) -> Option<&'a [u8]> {
    let len = usize::try_from(size).ok()?;
    let ptr = buffer.ptr();
    if len == 0 {
        return Some(&[]);
    }
    if ptr.is_null() {
        return None;
    }
    // SAFETY: non-null, and the caller guarantees `len` readable bytes for `'a`.
    Some(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Answers `_put_packet`: runs `body` on the packet Godot passes, inside the panic guard ([`guard`]). A buffer
/// that cannot be read is refused with `ERR_INVALID_PARAMETER` and a logged message, without calling `body`.
///
/// # Safety
/// As [`put_buffer`]: `buffer` must point to `size` readable bytes, valid for the duration of this call (Godot
/// guarantees this during `_put_packet`). `body` must not keep the slice.
pub(crate) unsafe fn guard_put(
    what: &str,
    buffer: RawPtr<*const u8>,
    size: i32,
    body: impl FnOnce(&[u8]) -> Error,
) -> Error {
    guard(what, || {
        // SAFETY: forwarded from the caller; the slice lives only for this call.
        match unsafe { put_buffer(buffer, size) } {
            Some(packet) => body(packet),
            None => {
                godot_error!("{what}: invalid buffer (size {size})");
                Error::ERR_INVALID_PARAMETER
            }
        }
    })
}

/// Answers `_get_packet`: hands `packet` to Godot, keeping it in `current` so its bytes stay valid until the
/// next `_get_packet` on the same object; with no packet, hands out an empty buffer and returns `empty_error`.
///
/// # Safety
/// `r_buffer` and `r_buffer_size` must be the out-pointers Godot passed to `_get_packet`, and `current` must be
/// a field of the object being called, left alone until its next `_get_packet`.
pub(crate) unsafe fn hand_out<P: std::ops::Deref<Target = [u8]>>(
    current: &mut P,
    packet: Option<P>,
    r_buffer: RawPtr<*mut RawPtr<*const u8>>,
    r_buffer_size: RawPtr<*mut i32>,
    empty_error: Error,
) -> Error {
    match packet {
        Some(packet) => {
            *current = packet;
            // SAFETY: valid out-pointers (caller); `current` keeps the bytes alive and unchanged until the next
            // `_get_packet` replaces it.
            unsafe { write_packet_out(r_buffer, r_buffer_size, current) };
            Error::OK
        }
        None => {
            // SAFETY: valid out-pointers (caller); an empty slice needs no keeping.
            unsafe { write_packet_out(r_buffer, r_buffer_size, &[]) };
            empty_error
        }
    }
}

/// Writes a packet's address and size into `_get_packet`'s out-parameters.
///
/// # Safety
/// `r_buffer` and `r_buffer_size` must be the valid, writable out-pointers Godot passed to `_get_packet`, and
/// `packet` must stay alive and unchanged until the next `_get_packet` call on the same object.
pub(crate) unsafe fn write_packet_out(
    r_buffer: RawPtr<*mut RawPtr<*const u8>>,
    r_buffer_size: RawPtr<*mut i32>,
    packet: &[u8],
) {
    // Godot's out-parameter is `const uint8_t **`; `RawPtr` promises no layout, so write a plain pointer.
    let out_ptr = r_buffer.ptr() as *mut *const u8;
    let out_size = r_buffer_size.ptr();
    // Packets are at most 16 MiB (checked at construction), so the length always fits.
    let size = i32::try_from(packet.len()).unwrap_or(i32::MAX);
    // SAFETY: the caller guarantees both out-pointers are valid for writes.
    unsafe {
        if !out_ptr.is_null() {
            out_ptr.write(packet.as_ptr());
        }
        if !out_size.is_null() {
            out_size.write(size);
        }
    }
}

/// The instance id of the object whose `init` is running, read from its base.
///
/// `Base::to_init_gd` would do, but for a `RefCounted` it works only on the main thread and keeps the object
/// alive until the next frame; the id alone needs neither. `None` if Godot reports no id (it always gives one).
pub(crate) fn init_instance_id<T: godot::obj::GodotClass>(
    base: &godot::obj::Base<T>,
) -> Option<godot::obj::InstanceId> {
    let object = base.obj_sys();
    if object.is_null() {
        return None;
    }
    // SAFETY: `object` is the live object under construction (the `Base` handed to `init`), and the GDExtension
    // interface is initialised before any class can be constructed.
    let raw = unsafe { godot::sys::interface_fn!(object_get_instance_id)(object) };
    godot::obj::InstanceId::try_from_i64(raw as i64)
}
