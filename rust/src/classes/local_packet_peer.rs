//! `LocalPacketPeer`: the Godot face of [`peerkit_core::pair`].

use bytes::Bytes;
use godot::classes::{IPacketPeerExtension, PacketPeerExtension};
use godot::global::Error;
use godot::meta::conv::RawPtr;
use godot::prelude::*;
use peerkit_core::pair::{self, Packet, PairConfig, PairEnd, PairError};

use super::error::GodotErrorCode;
use super::ffi;

/// One end of an in-memory, connected pair of packet peers.
///
/// What one end puts, the other end gets: in order, with nothing lost, duplicated or reordered. Use it to test
/// netcode without sockets, or to pass packets between threads: each end may be used from its own thread
/// ([Thread], [WorkerThreadPool]) while the other end is used elsewhere; the two ends share no lock.
///
/// Make a pair with [method create_pair]. A peer made with [code]LocalPacketPeer.new()[/code] has no other end:
/// it refuses every packet with [constant ERR_UNCONFIGURED].
/// ```gdscript
/// var ends := LocalPacketPeer.create_pair()
/// ends[0].put_var({"hello": "world"})
/// print(ends[1].get_var()) # {"hello": "world"}
/// ```
/// Errors: [method PacketPeer.put_packet] returns [constant ERR_INVALID_PARAMETER] for a packet over
/// [method get_max_packet_size] bytes, [constant ERR_BUSY] when the other end already holds [method get_capacity]
/// unread packets, and [constant ERR_CONNECTION_ERROR] once the pair is closed; a refused packet is not queued.
/// [method PacketPeer.get_packet] with nothing queued returns an empty array and sets
/// [method PacketPeer.get_packet_error] to [constant ERR_UNAVAILABLE].
#[derive(GodotClass)]
#[class(tool, base = PacketPeerExtension)]
pub struct LocalPacketPeer {
    /// This end of the pair; `None` for a peer made with `new()`.
    end: Option<PairEnd>,
    /// The packet last handed to Godot by `_get_packet`; kept so its pointer stays valid until the next call.
    current: Packet,
    base: Base<PacketPeerExtension>,
}

#[godot_api]
impl IPacketPeerExtension for LocalPacketPeer {
    fn init(base: Base<PacketPeerExtension>) -> Self {
        Self::with_end(None, base)
    }

    unsafe fn get_packet_rawptr(
        &mut self,
        r_buffer: RawPtr<*mut RawPtr<*const u8>>,
        r_buffer_size: RawPtr<*mut i32>,
    ) -> Error {
        ffi::guard("LocalPacketPeer.get_packet", || {
            let Some(end) = self.end.as_mut() else {
                return Error::ERR_UNCONFIGURED;
            };
            let (packet, empty) = match end.recv() {
                Ok(packet) => (Some(packet), Error::OK),
                Err(e) => (None, e.error_code()),
            };
            // SAFETY: Godot's out-pointers, and `self.current` is this object's packet slot.
            unsafe { ffi::hand_out(&mut self.current, packet, r_buffer, r_buffer_size, empty) }
        })
    }

    unsafe fn put_packet_rawptr(
        &mut self,
        p_buffer: RawPtr<*const u8>,
        p_buffer_size: i32,
    ) -> Error {
        // SAFETY: Godot keeps `p_buffer_size` bytes at `p_buffer` valid for this call; `send` copies them.
        unsafe {
            ffi::guard_put(
                "LocalPacketPeer.put_packet",
                p_buffer,
                p_buffer_size,
                |packet| self.send_packet(packet),
            )
        }
    }

    fn get_available_packet_count(&self) -> i32 {
        self.queued()
    }

    fn get_max_packet_size(&self) -> i32 {
        i32::try_from(self.max_packet_size_value()).unwrap_or(i32::MAX)
    }
}

#[godot_api]
impl LocalPacketPeer {
    /// Makes two connected peers and returns them as [code][end_a, end_b][/code].
    ///
    /// [param capacity] is how many unread packets each end holds before the sender gets [constant ERR_BUSY]
    /// (1 to 1048576; slots are reserved up front, 80 bytes each, and a packet of up to 64 bytes travels inside its slot). [param max_packet_size] is the largest
    /// packet either end accepts, in bytes (1 to 16777216). Invalid values push an error and return an empty array.
    #[func]
    fn create_pair(
        #[opt(default = 1024)] capacity: i64,
        #[opt(default = 65536)] max_packet_size: i64,
    ) -> Array<Gd<LocalPacketPeer>> {
        match PairConfig::new(capacity, max_packet_size) {
            Ok(config) => {
                let (a, b) = pair::pair(config);
                let mut ends = Array::new();
                ends.push(&Gd::from_init_fn(|base| Self::with_end(Some(a), base)));
                ends.push(&Gd::from_init_fn(|base| Self::with_end(Some(b), base)));
                ends
            }
            Err(e) => {
                godot_error!("LocalPacketPeer.create_pair: {e}");
                Array::new()
            }
        }
    }

    /// Closes the pair. Both ends then refuse new packets with [constant ERR_CONNECTION_ERROR]; packets already
    /// queued stay readable, so nothing sent before the close is lost. Freeing either end closes the pair too.
    #[func]
    fn close(&mut self) {
        if let Some(end) = self.end.as_mut() {
            end.close();
        }
    }

    /// Returns [code]false[/code] once either end has been closed or freed, and for a peer made with
    /// [code]new()[/code].
    #[func]
    fn is_open(&self) -> bool {
        self.end.as_ref().is_some_and(PairEnd::is_open)
    }

    /// Returns the largest packet, in bytes, this pair accepts (the [code]max_packet_size[/code] given to
    /// [method create_pair]); 0 when unpaired. [PacketPeer] itself does not offer this to scripts.
    #[func(rename = get_max_packet_size)]
    fn max_packet_size(&self) -> i64 {
        self.max_packet_size_value()
    }

    /// Returns how many unread packets this end's other end may hold before [method PacketPeer.put_packet]
    /// returns [constant ERR_BUSY] (the [code]capacity[/code] given to [method create_pair]); 0 when unpaired.
    #[func]
    fn get_capacity(&self) -> i64 {
        self.end
            .as_ref()
            .map_or(0, |end| end.config().capacity as i64)
    }

    /// Returns this end's counters: [code]packets_sent[/code], [code]packets_received[/code],
    /// [code]bytes_sent[/code], [code]bytes_received[/code], [code]packets_refused[/code] (all refusals), and the
    /// refusals by reason: [code]refused_busy[/code], [code]refused_oversize[/code], [code]refused_closed[/code].
    #[func]
    fn get_stats(&self) -> VarDictionary {
        let stats = self
            .end
            .as_ref()
            .map(|end| *end.stats())
            .unwrap_or_default();
        vdict! {
            "packets_sent" => stats.packets_sent as i64,
            "packets_received" => stats.packets_received as i64,
            "bytes_sent" => stats.bytes_sent as i64,
            "bytes_received" => stats.bytes_received as i64,
            "packets_refused" => stats.packets_refused() as i64,
            "refused_busy" => stats.refused_busy as i64,
            "refused_oversize" => stats.refused_oversize as i64,
            "refused_closed" => stats.refused_closed as i64,
        }
    }
}

impl LocalPacketPeer {
    /// Sends a copy of `packet` to the other end: the put path, for scripts and for wrappers calling directly.
    pub(crate) fn send_packet(&mut self, packet: &[u8]) -> Error {
        let Some(end) = self.end.as_mut() else {
            godot_error!(
                "LocalPacketPeer.put_packet: this peer has no other end; make peers with LocalPacketPeer.create_pair()"
            );
            return Error::ERR_UNCONFIGURED;
        };
        match end.send(packet) {
            Ok(()) => Error::OK,
            Err(e) => {
                if let PairError::Oversize { .. } = e {
                    godot_error!("LocalPacketPeer.put_packet: {e}");
                }
                e.error_code()
            }
        }
    }

    /// Takes the next packet for this end, for wrappers calling directly.
    pub(crate) fn take_packet(&mut self) -> Option<Bytes> {
        self.end.as_mut()?.recv().ok().map(Packet::into_bytes)
    }

    /// How many packets wait for this end.
    pub(crate) fn queued(&self) -> i32 {
        self.end
            .as_ref()
            .map_or(0, |end| i32::try_from(end.queued()).unwrap_or(i32::MAX))
    }

    /// The pair's maximum packet size; 0 when unpaired.
    pub(crate) fn max_packet_size_value(&self) -> i64 {
        self.end
            .as_ref()
            .map_or(0, |end| end.config().max_packet_size as i64)
    }

    fn with_end(end: Option<PairEnd>, base: Base<PacketPeerExtension>) -> Self {
        Self {
            end,
            current: Packet::default(),
            base,
        }
    }
}
