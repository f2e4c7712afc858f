//! `LocalMultiplayerPeer`: one peer of a network, as the MultiplayerPeer a SceneMultiplayer uses.

use std::sync::MutexGuard;

use bytes::Bytes;
use godot::classes::multiplayer_peer::{ConnectionStatus, TransferMode as GodotMode};
use godot::classes::{IMultiplayerPeerExtension, MultiplayerPeerExtension};
use godot::global::Error;
use godot::meta::conv::RawPtr;
use godot::prelude::*;
use peerkit_core::multiplayer::{PeerId, Status, TransferMode, MAX_CHANNEL};

use crate::classes::error::GodotErrorCode;
use crate::classes::{ffi, transfer_mode};

use super::{link_stats, lock, peer_stats, signal_of, Shared, SharedRef};

/// One peer of a [LocalMultiplayerNetwork]: the server or a client, for a [SceneMultiplayer].
///
/// Get one from [method LocalMultiplayerNetwork.create_server] or [method LocalMultiplayerNetwork.create_client]
/// and assign it to [member MultiplayerAPI.multiplayer_peer]. It implements the whole [MultiplayerPeer]
/// contract: the target peer (0 for everyone, an id for one peer, [code]-id[/code] for everyone but that
/// peer; a client's packets always go to the server, which relays them), the transfer mode and channel
/// (0 to 255), the sender, mode and channel of the next packet, [signal MultiplayerPeer.peer_connected] and
/// [signal MultiplayerPeer.peer_disconnected], [method MultiplayerPeer.close],
/// [method MultiplayerPeer.disconnect_peer] and [member MultiplayerPeer.refuse_new_connections].
///
/// Transfer modes keep their meaning under the link's impairments: [constant MultiplayerPeer.TRANSFER_MODE_RELIABLE]
/// is delayed but never lost, duplicated or reordered within its channel;
/// [constant MultiplayerPeer.TRANSFER_MODE_UNRELIABLE] gets every impairment;
/// [constant MultiplayerPeer.TRANSFER_MODE_UNRELIABLE_ORDERED] also drops a packet that arrives older than the
/// newest already delivered on its channel (counted as [code]dropped_out_of_order[/code]).
///
/// A peer made with [code]LocalMultiplayerPeer.new()[/code] belongs to no network: it stays disconnected and
/// refuses packets with [constant ERR_UNCONFIGURED]. Freeing a peer closes it.
#[derive(GodotClass)]
#[class(tool, base = MultiplayerPeerExtension)]
pub struct LocalMultiplayerPeer {
    shared: Option<SharedRef>,
    id: PeerId,
    target_peer: PeerId,
    transfer_mode: TransferMode,
    transfer_channel: i64,
    /// The packet last handed to Godot by `_get_packet`; kept so its pointer stays valid until the next call.
    current: Bytes,
    base: Base<MultiplayerPeerExtension>,
}

impl LocalMultiplayerPeer {
    pub(super) fn attached(
        shared: SharedRef,
        id: PeerId,
        base: Base<MultiplayerPeerExtension>,
    ) -> Self {
        let mut peer = Self::init(base);
        peer.shared = Some(shared);
        peer.id = id;
        peer
    }

    fn shared(&self) -> Option<MutexGuard<'_, Shared>> {
        self.shared.as_ref().map(lock)
    }
}

impl Drop for LocalMultiplayerPeer {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            let mut shared = lock(&shared);
            shared.net.remove(self.id);
            let id = self.id;
            shared.objects.retain(|(peer, _)| *peer != id);
        }
    }
}

#[godot_api]
impl IMultiplayerPeerExtension for LocalMultiplayerPeer {
    fn init(base: Base<MultiplayerPeerExtension>) -> Self {
        Self {
            shared: None,
            id: 0,
            target_peer: 0,
            transfer_mode: TransferMode::Reliable,
            transfer_channel: 0,
            current: Bytes::new(),
            base,
        }
    }

    unsafe fn get_packet_rawptr(
        &mut self,
        r_buffer: RawPtr<*mut RawPtr<*const u8>>,
        r_buffer_size: RawPtr<*mut i32>,
    ) -> Error {
        ffi::guard("LocalMultiplayerPeer.get_packet", || {
            let id = self.id;
            let packet = self.shared().and_then(|mut s| s.net.pop(id));
            let packet = packet.map(|p| p.data);
            // SAFETY: Godot's out-pointers, and `self.current` is this object's packet slot.
            unsafe {
                ffi::hand_out(
                    &mut self.current,
                    packet,
                    r_buffer,
                    r_buffer_size,
                    Error::ERR_UNAVAILABLE,
                )
            }
        })
    }

    unsafe fn put_packet_rawptr(
        &mut self,
        p_buffer: RawPtr<*const u8>,
        p_buffer_size: i32,
    ) -> Error {
        const WHAT: &str = "LocalMultiplayerPeer.put_packet";
        // SAFETY: Godot keeps `p_buffer_size` bytes at `p_buffer` valid for this call; they are copied here.
        unsafe {
            ffi::guard_put(WHAT, p_buffer, p_buffer_size, |data| {
                let data = Bytes::copy_from_slice(data);
                let (id, target, mode, channel) = (
                    self.id,
                    self.target_peer,
                    self.transfer_mode,
                    self.transfer_channel,
                );
                let Some(mut shared) = self.shared() else {
                    godot_error!("{WHAT}: this peer belongs to no network; create peers with LocalMultiplayerNetwork");
                    return Error::ERR_UNCONFIGURED;
                };
                let now = shared.clock.now_us();
                match shared.net.send(id, now, target, mode, channel, data) {
                    Ok(()) => Error::OK,
                    Err(e) => {
                        godot_error!("{WHAT}: {e}");
                        e.error_code()
                    }
                }
            })
        }
    }

    fn get_available_packet_count(&self) -> i32 {
        self.shared().map_or(0, |s| {
            s.net.available(self.id).try_into().unwrap_or(i32::MAX)
        })
    }

    fn get_max_packet_size(&self) -> i32 {
        self.shared().map_or(0, |s| {
            s.net.max_packet_size().try_into().unwrap_or(i32::MAX)
        })
    }

    fn get_packet_channel(&self) -> i32 {
        self.shared()
            .and_then(|s| s.net.front(self.id).map(|p| i32::from(p.channel)))
            .unwrap_or(0)
    }

    fn get_packet_mode(&self) -> GodotMode {
        self.shared()
            .and_then(|s| {
                s.net
                    .front(self.id)
                    .map(|p| transfer_mode::to_godot(p.mode))
            })
            .unwrap_or(GodotMode::RELIABLE)
    }

    fn set_transfer_channel(&mut self, channel: i32) {
        if !(0..=MAX_CHANNEL).contains(&i64::from(channel)) {
            godot_error!("LocalMultiplayerPeer.transfer_channel: channel must be between 0 and {MAX_CHANNEL}, got {channel}; kept {}", self.transfer_channel);
            return;
        }
        self.transfer_channel = i64::from(channel);
    }

    fn get_transfer_channel(&self) -> i32 {
        self.transfer_channel as i32
    }

    fn set_transfer_mode(&mut self, mode: GodotMode) {
        self.transfer_mode = transfer_mode::from_godot(mode);
    }

    fn get_transfer_mode(&self) -> GodotMode {
        transfer_mode::to_godot(self.transfer_mode)
    }

    fn set_target_peer(&mut self, peer: i32) {
        self.target_peer = peer;
    }

    fn get_packet_peer(&self) -> i32 {
        self.shared()
            .and_then(|s| s.net.front(self.id).map(|p| p.from))
            .unwrap_or(0)
    }

    fn is_server(&self) -> bool {
        self.shared().is_some_and(|s| s.net.is_server(self.id))
    }

    fn poll(&mut self) {
        let id = self.id;
        let events = match self.shared() {
            Some(mut shared) => {
                shared.step();
                shared.net.take_events(id)
            }
            None => return,
        };
        for event in events {
            // Through `base_mut`, so handlers (SceneMultiplayer's) may call back into this peer.
            let (signal, args) = signal_of(event);
            self.base_mut().emit_signal(signal, &args);
        }
    }

    fn close(&mut self) {
        let id = self.id;
        if let Some(mut shared) = self.shared() {
            shared.net.close(id);
        }
    }

    fn disconnect_peer(&mut self, peer: i32, force: bool) {
        let id = self.id;
        if let Some(mut shared) = self.shared() {
            if let Err(e) = shared.net.disconnect_peer(id, peer, force) {
                godot_error!("LocalMultiplayerPeer.disconnect_peer({peer}): {e}");
            }
        }
    }

    fn get_unique_id(&self) -> i32 {
        self.id
    }

    fn set_refuse_new_connections(&mut self, enable: bool) {
        let id = self.id;
        match self.shared() {
            Some(mut shared) if shared.net.is_server(id) => {
                shared.net.set_refusing_new_connections(enable)
            }
            _ => godot_error!("LocalMultiplayerPeer.refuse_new_connections: only the server accepts or refuses connections"),
        }
    }

    fn is_refusing_new_connections(&self) -> bool {
        self.shared()
            .is_some_and(|s| s.net.is_server(self.id) && s.net.is_refusing_new_connections())
    }

    fn is_server_relay_supported(&self) -> bool {
        true
    }

    fn get_connection_status(&self) -> ConnectionStatus {
        match self.shared().map(|s| s.net.status(self.id)) {
            Some(Status::Connected) => ConnectionStatus::CONNECTED,
            Some(Status::Connecting) => ConnectionStatus::CONNECTING,
            _ => ConnectionStatus::DISCONNECTED,
        }
    }
}

#[godot_api]
impl LocalMultiplayerPeer {
    /// Returns this peer's counters: [code]packets_sent[/code] and [code]bytes_sent[/code] (one per
    /// destination), [code]packets_received[/code] and [code]bytes_received[/code] (delivered to this peer),
    /// [code]dropped_out_of_order[/code] (unreliable-ordered packets that arrived late and were dropped),
    /// [code]dropped_disconnected[/code] (in flight or unread when a connection ended), [code]available[/code]
    /// (readable now); and for a client, [code]"link"[/code]: its link's counters as in
    /// [method LocalMultiplayerNetwork.get_stats].
    #[func]
    fn get_stats(&self) -> VarDictionary {
        let Some(shared) = self.shared() else {
            return VarDictionary::new();
        };
        let mut stats = peer_stats(&shared.net, self.id);
        if let Some(link) = link_stats(&shared.net, self.id) {
            stats.set("link", &link);
        }
        stats
    }
}
