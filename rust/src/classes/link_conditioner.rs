//! `LinkConditioner`: the Godot face of [`peerkit_core::link::conditioner`]. Moves packets between the inner peer
//! and the core's two-direction conditioner and feeds it the clock; all decisions are the core's.

use std::cell::RefCell;

use bytes::Bytes;
use godot::classes::{IPacketPeerExtension, PacketPeer, PacketPeerExtension};
use godot::global::Error;
use godot::meta::conv::RawPtr;
use godot::obj::EngineEnum;
use godot::prelude::*;
use peerkit_core::link::conditioner::{Conditioner, Directions, Sent};
use peerkit_core::link::{LinkConfigError, Micros};
use peerkit_core::unpolled::Unpolled;

use super::clock::Clock;
use super::error::refusal_hint;
use super::error::Once;
use super::live_links::{self, Tracked};
use super::wrapping::{wraps, InnerPeer};
use super::{ffi, link_settings, poll_watch};

/// The packet size reported when the inner peer does not tell its own: 16 MiB.
const UNKNOWN_INNER_MAX_PACKET_SIZE: i64 = 16 * 1024 * 1024;

/// Everything `poll` touches, behind a `RefCell` because Godot calls `get_available_packet_count` through `&self`.
struct Link {
    inner: Option<InnerPeer>,
    /// The inner peer's packet size limit, read when `inner` is set (it is fixed for peerkit's peers).
    inner_max_packet_size: i64,
    conditioner: Conditioner,
    clock: Clock,
    /// Whether a packet the link holds waits for a poll, and whether that was said.
    unpolled: Unpolled,
    /// Whether a packet was ever held (the first asks for a later check that it was polled).
    held_before: bool,
}

impl Link {
    /// Moves both directions: what is due goes out to the inner peer, what the inner peer received comes in.
    fn poll(&mut self) {
        self.unpolled.polled();
        let now = self.clock.now_us();
        while let Some(packet) = self.conditioner.poll_outbound(now) {
            self.deliver(&packet);
        }
        if let Some(inner) = self.inner.as_mut() {
            for _ in 0..inner.available() {
                let Some(packet) = inner.take() else {
                    break;
                };
                self.conditioner.receive(now, packet);
            }
        }
        self.conditioner.poll_inbound(now);
    }

    /// Offers a packet put by the user to the outbound direction, then sends what is due. Returns whether this
    /// is the first packet of the object's life that the link holds (for the later check that it is polled).
    fn put(&mut self, packet: &[u8]) -> bool {
        let now = self.clock.now_us();
        if let Sent::Now(bytes) = self.conditioner.send(now, packet) {
            self.deliver(bytes);
        }
        while let Some(packet) = self.conditioner.poll_outbound(now) {
            self.deliver(&packet);
        }
        // Only a packet the outbound model still holds waits for a poll (one sent at once, or dropped, does not).
        if self.conditioner.outbound_stats().1 == 0 {
            return false;
        }
        if let Some(waited) = self.unpolled.put(now) {
            warn_unpolled(waited);
        }
        !std::mem::replace(&mut self.held_before, true)
    }

    /// The later check of a first held packet: if it still waits for a poll, says so (once).
    fn check_unpolled(&mut self) {
        if let Some(waited) = self.unpolled.still_waiting(self.clock.now_us()) {
            warn_unpolled(waited);
        }
    }
}

/// Says that packets wait for a poll (once per conditioner).
fn warn_unpolled(waited: Micros) {
    godot_warn!(
        "LinkConditioner: a packet put {:.1} s ago waits for poll(): a LinkConditioner moves packets only when it is polled (poll(), get_packet() and get_available_packet_count() poll). Call poll() every frame",
        waited as f64 / 1e6
    );
}

impl Link {
    /// Gives a packet to the inner peer, counting a refusal and explaining each kind the first time.
    fn deliver(&mut self, packet: &[u8]) {
        let Some(inner) = self.inner.as_mut() else {
            return;
        };
        let err = inner.put(packet);
        if err != Error::OK && self.conditioner.refused(err.ord() as i64) {
            godot_warn!(
                "LinkConditioner: the inner peer refused a packet of {} bytes with {err:?}: {}. Every refusal is counted in get_stats().inner_refused; this is said once for each kind of refusal",
                packet.len(),
                refusal_hint(err)
            );
        }
    }
}

/// A [PacketPeer] that wraps any other PacketPeer and makes its network worse on purpose, deterministically.
///
/// Packets you put go through the [i]outbound[/i] link model, then to [member inner]; packets from [member inner]
/// go through the [i]inbound[/i] model before [method PacketPeer.get_packet] returns them. Each direction has its
/// own settings: latency and jitter (uniform, normal or Pareto, optionally correlated), independent and
/// Gilbert–Elliott burst loss, duplication, reordering, bit corruption, a bandwidth cap with a bounded queue,
/// and a switch that cuts the link. Everything is off by default. See [method configure] for the settings and
/// [method apply_preset] for ready-made links.
/// ```gdscript
/// var ends := LocalPacketPeer.create_pair()
/// var lagged := LinkConditioner.new()
/// lagged.inner = ends[0]
/// lagged.configure({"latency_ms": 100, "jitter_ms": 20, "loss": 0.05})
/// lagged.put_var("hello") # arrives at ends[1] about 100 ms later, unless lost
/// ```
/// Time is real time by default. With [member use_manual_clock], time moves only through [method advance], and
/// with the same [member seed] the same calls give the same deliveries on every run: use that in tests.
/// Queued packets move when [method poll] is called; [method PacketPeer.get_available_packet_count],
/// [method PacketPeer.get_packet] and [method PacketPeer.put_packet] poll too. A conditioner that holds a
/// packet and is never polled says so once, a second later. A [MultiplayerPeer] is refused as [member inner]:
/// wrap it with [method MultiplayerLinkConditioner.wrap].
#[derive(GodotClass)]
#[class(tool, base = PacketPeerExtension)]
pub struct LinkConditioner {
    /// The peer whose link is simulated: any [PacketPeer], including another LinkConditioner. Setting it to this
    /// conditioner, or to a peer that wraps this conditioner, is refused with an error.
    #[var(get = get_inner, set = set_inner, usage_flags = [EDITOR])]
    inner: PhantomVar<Option<Gd<PacketPeer>>>,
    /// When [code]true[/code], time stands still except through [method advance]. Turning it on starts the
    /// manual clock at 0 (so a test gets the same times on every run); queued packets keep their remaining delay.
    #[var(get = is_using_manual_clock, set = set_use_manual_clock, usage_flags = [EDITOR])]
    use_manual_clock: PhantomVar<bool>,
    /// The seed of every random decision (loss, jitter, duplication ...). Setting it restarts both directions'
    /// random streams; queued packets keep their schedule. Default 0.
    #[var(get = get_seed, set = set_seed, usage_flags = [EDITOR])]
    seed: PhantomVar<i64>,
    /// [code]false[/code] cuts the link in both directions: packets queued and packets sent are dropped and
    /// counted as [code]dropped_link_down[/code], until it is set back to [code]true[/code]. Reads
    /// [code]true[/code] only when both directions are up.
    #[var(get = is_link_up, set = set_link_up, usage_flags = [EDITOR])]
    link_up: PhantomVar<bool>,
    link: RefCell<Link>,
    /// The packet last handed to Godot by `_get_packet`; kept so its pointer stays valid until the next call.
    current: Bytes,
    /// Each says once that there is no inner peer, when its call cannot work without one.
    no_inner_get: Once,
    no_inner_size: Once,
    /// This object's place in [`PeerkitLinks`](super::live_links)' list, while it lives.
    _tracked: Tracked,
    base: Base<PacketPeerExtension>,
}

#[godot_api]
impl IPacketPeerExtension for LinkConditioner {
    fn init(base: Base<PacketPeerExtension>) -> Self {
        Self {
            inner: PhantomVar::default(),
            use_manual_clock: PhantomVar::default(),
            seed: PhantomVar::default(),
            link_up: PhantomVar::default(),
            link: RefCell::new(Link {
                inner: None,
                inner_max_packet_size: 0,
                conditioner: starting_conditioner(),
                clock: Clock::real(),
                unpolled: Unpolled::default(),
                held_before: false,
            }),
            current: Bytes::new(),
            no_inner_get: Once::default(),
            no_inner_size: Once::default(),
            _tracked: Tracked::new(&base),
            base,
        }
    }

    unsafe fn get_packet_rawptr(
        &mut self,
        r_buffer: RawPtr<*mut RawPtr<*const u8>>,
        r_buffer_size: RawPtr<*mut i32>,
    ) -> Error {
        ffi::guard("LinkConditioner.get_packet", || {
            let link = self.link.get_mut();
            link.poll();
            let empty = if link.inner.is_none() {
                if self.no_inner_get.first() {
                    godot_error!("LinkConditioner.get_packet: no inner peer; set `inner` to the PacketPeer to wrap");
                }
                Error::ERR_UNCONFIGURED
            } else {
                Error::ERR_UNAVAILABLE
            };
            let packet = link.conditioner.take_ready();
            // SAFETY: Godot's out-pointers, and `self.current` is this object's packet slot.
            unsafe { ffi::hand_out(&mut self.current, packet, r_buffer, r_buffer_size, empty) }
        })
    }

    unsafe fn put_packet_rawptr(
        &mut self,
        p_buffer: RawPtr<*const u8>,
        p_buffer_size: i32,
    ) -> Error {
        // SAFETY: Godot keeps `p_buffer_size` bytes at `p_buffer` valid for this call; they are copied into the link.
        unsafe {
            ffi::guard_put(
                "LinkConditioner.put_packet",
                p_buffer,
                p_buffer_size,
                |packet| {
                    let link = self.link.get_mut();
                    let max = link.inner_max_packet_size;
                    if link.inner.is_none() {
                        godot_error!("LinkConditioner.put_packet: no inner peer; set `inner` to the PacketPeer to wrap");
                        return Error::ERR_UNCONFIGURED;
                    }
                    if packet.len() as i64 > max {
                        godot_error!(
                    "LinkConditioner.put_packet: packet of {} bytes is larger than the inner peer's maximum ({max} bytes)",
                    packet.len()
                );
                        return Error::ERR_INVALID_PARAMETER;
                    }
                    if link.put(packet) {
                        let id = self.base().instance_id();
                        poll_watch::check_later(move || {
                            if let Ok(mut conditioner) =
                                Gd::<LinkConditioner>::try_from_instance_id(id)
                            {
                                conditioner.bind_mut().link.get_mut().check_unpolled();
                            }
                        });
                    }
                    Error::OK
                },
            )
        }
    }

    fn get_available_packet_count(&self) -> i32 {
        // `try_borrow_mut` cannot fail unless a poll is already running on this object, which the refusal of
        // wrapping cycles prevents; answering 0 then is still a correct (if late) answer.
        match self.link.try_borrow_mut() {
            Ok(mut link) => {
                link.poll();
                i32::try_from(link.conditioner.ready_count()).unwrap_or(i32::MAX)
            }
            Err(_) => 0,
        }
    }

    fn get_max_packet_size(&self) -> i32 {
        i32::try_from(self.max_packet_size()).unwrap_or(i32::MAX)
    }
}

#[godot_api]
impl LinkConditioner {
    /// Direction: packets this conditioner sends to [member inner].
    #[constant]
    const DIRECTION_OUTBOUND: i64 = 1;
    /// Direction: packets this conditioner receives from [member inner].
    #[constant]
    const DIRECTION_INBOUND: i64 = 2;
    /// Direction: both [constant DIRECTION_OUTBOUND] and [constant DIRECTION_INBOUND].
    #[constant]
    const DIRECTION_BOTH: i64 = 3;

    /// Returns the wrapped peer, or [code]null[/code].
    #[func]
    fn get_inner(&self) -> Option<Gd<PacketPeer>> {
        self.inner_peer()
    }

    /// Sets the wrapped peer. Refused (with an error, leaving [member inner] unchanged) when [param peer] is this
    /// conditioner or wraps it, directly or through other peerkit peers, and when it is a [MultiplayerPeer]
    /// (for those, [method MultiplayerLinkConditioner.wrap] is the conditioner).
    #[func]
    fn set_inner(&mut self, peer: Option<Gd<PacketPeer>>) {
        if let Some(candidate) = &peer {
            if wraps(candidate, self.base().instance_id()) {
                godot_error!("LinkConditioner.inner: a LinkConditioner cannot wrap itself, directly or through other peers");
                return;
            }
            if candidate.is_class("MultiplayerPeer") {
                godot_error!(
                    "LinkConditioner.inner: {} is a MultiplayerPeer, for SceneMultiplayer; wrap it with MultiplayerLinkConditioner.wrap(peer) instead and give that to multiplayer.multiplayer_peer",
                    candidate.get_class()
                );
                return;
            }
        }
        let link = self.link.get_mut();
        link.inner = peer.map(InnerPeer::new);
        link.inner_max_packet_size = link.inner.as_ref().map_or(0, |inner| {
            inner
                .max_packet_size()
                .unwrap_or(UNKNOWN_INNER_MAX_PACKET_SIZE)
        });
        link.conditioner.clear_ready();
    }

    /// Returns [member use_manual_clock].
    #[func]
    fn is_using_manual_clock(&self) -> bool {
        self.link.borrow().clock.is_manual()
    }

    /// Sets [member use_manual_clock].
    #[func]
    fn set_use_manual_clock(&mut self, manual: bool) {
        let link = self.link.get_mut();
        if manual == link.clock.is_manual() {
            return;
        }
        let (from, to) = link.clock.switch(manual);
        link.conditioner.shift_time(from, to);
    }

    /// Returns [member seed].
    #[func]
    fn get_seed(&self) -> i64 {
        self.link.borrow().conditioner.seed() as i64
    }

    /// Sets [member seed].
    #[func]
    fn set_seed(&mut self, seed: i64) {
        self.link.get_mut().conditioner.reseed(seed as u64);
    }

    /// Returns [member link_up].
    #[func]
    fn is_link_up(&self) -> bool {
        self.link.borrow().conditioner.is_up()
    }

    /// Sets [member link_up].
    #[func]
    fn set_link_up(&mut self, up: bool) {
        let _ = self
            .link
            .get_mut()
            .conditioner
            .configure(Directions::Both, |config| {
                config.link_up = up;
                Ok::<(), LinkConfigError>(())
            });
    }

    /// Changes settings of one direction or both ([constant DIRECTION_OUTBOUND], [constant DIRECTION_INBOUND], [constant DIRECTION_BOTH]).
    /// Settings not named keep their values. Returns [constant OK], or [constant ERR_INVALID_PARAMETER] with an
    /// error naming the problem, in which case nothing changes. Settings (all off by default):
    /// [code]latency_ms[/code] (mean one-way delay), [code]jitter_ms[/code] (spread of the delay),
    /// [code]jitter_distribution[/code] ([code]"uniform"[/code]: latency ± jitter; [code]"normal"[/code] and
    /// [code]"pareto"[/code]: standard deviation jitter, Pareto with a long tail of late packets),
    /// [code]jitter_correlation[/code] (0 to 1: how much each packet's jitter follows the previous one's),
    /// [code]jitter_may_reorder[/code] (if [code]false[/code], the default, jitter never reorders packets: a
    /// packet waits behind those sent before it, so when jitter exceeds the gap between packets the mean delay
    /// rises above [code]latency_ms[/code]),
    /// [code]loss[/code] (probability), Gilbert–Elliott burst loss with [code]burst_enter_probability[/code]
    /// (good to bad state, per packet; 0 turns it off), [code]burst_exit_probability[/code] (bad to good),
    /// [code]loss_in_good_state[/code] and [code]loss_in_bad_state[/code], [code]duplicate[/code],
    /// [code]reorder[/code] (probability that a packet skips the delay and overtakes earlier ones),
    /// [code]corrupt[/code] (probability that one random bit is flipped), [code]bandwidth_bytes_per_second[/code]
    /// (0: unlimited), [code]queue_limit[/code] (packets held per direction before more are dropped; default
    /// 10000) and [code]link_up[/code]. Probabilities are 0 to 1; times are milliseconds, 0 to 3600000.
    #[func]
    fn configure(&mut self, settings: VarDictionary, #[opt(default = 3)] direction: i64) -> Error {
        const WHAT: &str = "LinkConditioner.configure";
        let Some(directions) =
            link_settings::directions(WHAT, direction, link_settings::OUTBOUND_INBOUND)
        else {
            return Error::ERR_INVALID_PARAMETER;
        };
        match link_settings::settings_change(WHAT, &settings) {
            Ok(change) => self.change(WHAT, directions, change),
            Err(code) => code,
        }
    }

    /// Replaces the settings of one direction or both with a named preset: [code]"clean"[/code] (no
    /// impairment), [code]"wifi"[/code], [code]"4g"[/code], [code]"3g"[/code], [code]"lossy"[/code],
    /// [code]"satellite"[/code]. Each describes one direction of a typical link of that kind (see the README
    /// for the numbers and where they come from). An unknown name returns [constant ERR_INVALID_PARAMETER].
    #[func]
    fn apply_preset(&mut self, name: GString, #[opt(default = 3)] direction: i64) -> Error {
        const WHAT: &str = "LinkConditioner.apply_preset";
        let Some(directions) =
            link_settings::directions(WHAT, direction, link_settings::OUTBOUND_INBOUND)
        else {
            return Error::ERR_INVALID_PARAMETER;
        };
        match link_settings::preset_change(WHAT, &name.to_string()) {
            Ok(change) => self.change(WHAT, directions, change),
            Err(code) => code,
        }
    }

    /// Returns the settings of [param direction] as a Dictionary in the form [method configure] takes. With
    /// [constant DIRECTION_BOTH] (the default, as for [method configure]) both directions must have the same
    /// settings; when they differ, pushes an error and returns an empty Dictionary: ask for
    /// [constant DIRECTION_OUTBOUND] or [constant DIRECTION_INBOUND].
    #[func]
    fn get_settings(&self, #[opt(default = 3)] direction: i64) -> VarDictionary {
        let link = self.link.borrow();
        let (outbound, inbound) = (link.conditioner.outbound(), link.conditioner.inbound());
        let config = match direction {
            Self::DIRECTION_OUTBOUND => outbound,
            Self::DIRECTION_INBOUND => inbound,
            Self::DIRECTION_BOTH if outbound == inbound => outbound,
            Self::DIRECTION_BOTH => {
                godot_error!("LinkConditioner.get_settings: the two directions have different settings; ask for DIRECTION_OUTBOUND or DIRECTION_INBOUND");
                return VarDictionary::new();
            }
            _ => {
                godot_error!("LinkConditioner.get_settings: direction must be DIRECTION_OUTBOUND (1), DIRECTION_INBOUND (2) or DIRECTION_BOTH (3), got {direction}");
                return VarDictionary::new();
            }
        };
        link_settings::to_dictionary(config)
    }

    /// Moves packets whose time has come: reads what [member inner] has received into the inbound model,
    /// hands due outbound packets to [member inner], and makes due inbound packets available. Calling it once
    /// per frame (or relying on the polling done by get/put) is enough.
    #[func]
    fn poll(&mut self) {
        self.link.get_mut().poll();
    }

    /// With [member use_manual_clock], polls (so what [member inner] received so far is timed from now), moves
    /// time forward by [param msec] milliseconds (fractions allowed), then polls again. Without it, or with a
    /// negative or non-finite [param msec], pushes an error and does nothing. (With the real clock, a packet that
    /// reaches [member inner] is timed from the next poll: the resolution is how often you poll.)
    #[func]
    fn advance(&mut self, msec: f64) {
        let link = self.link.get_mut();
        link.poll();
        if let Err(why) = link.clock.advance(msec) {
            godot_error!("LinkConditioner.advance({msec}): {why}");
            return;
        }
        link.poll();
    }

    /// Returns the conditioner's current time in milliseconds (the manual clock's, or real time since the
    /// conditioner was made).
    #[func]
    fn get_time_msec(&self) -> f64 {
        self.link.borrow().clock.now_us() as f64 / 1000.0
    }

    /// Returns the largest packet this conditioner accepts: the inner peer's [code]get_max_packet_size()[/code]
    /// when it offers one to scripts (peerkit's peers do), otherwise 16777216; 0 without an inner peer. It is read
    /// when [member inner] is set.
    #[func(rename = get_max_packet_size)]
    fn max_packet_size(&self) -> i64 {
        let link = self.link.borrow();
        if link.inner.is_none() && self.no_inner_size.first() {
            godot_error!("LinkConditioner.get_max_packet_size: no inner peer; it is 0 until `inner` is set, then the inner peer's");
        }
        link.inner_max_packet_size
    }

    /// Returns the counters: [code]"outbound"[/code] and [code]"inbound"[/code] each hold
    /// [code]packets_in[/code], [code]bytes_in[/code], [code]packets_delivered[/code],
    /// [code]bytes_delivered[/code], [code]dropped_loss[/code], [code]dropped_overflow[/code],
    /// [code]dropped_link_down[/code], [code]duplicated[/code], [code]reordered[/code], [code]corrupted[/code],
    /// [code]queued[/code] (held now), and [code]delay_min_ms[/code], [code]delay_mean_ms[/code],
    /// [code]delay_max_ms[/code] (over delivered packets). Every packet in is delivered, dropped for one
    /// reason, or queued (duplicates add to delivered). [code]"inner_refused"[/code] counts outbound packets the
    /// inner peer refused, and [code]"last_inner_error"[/code] is its last refusal's error code.
    #[func]
    fn get_stats(&self) -> VarDictionary {
        let link = self.link.borrow();
        let (outbound, outbound_queued) = link.conditioner.outbound_stats();
        let (inbound, inbound_queued) = link.conditioner.inbound_stats();
        let (refused, last) = link.conditioner.refusals();
        vdict! {
            "outbound" => &link_settings::direction_stats(outbound, outbound_queued),
            "inbound" => &link_settings::direction_stats(inbound, inbound_queued),
            "inner_refused" => refused as i64,
            "last_inner_error" => last.map_or(Error::OK, |code| Error::from_ord(code as i32)),
        }
    }
}

/// A new conditioner's model: clean, or with the startup preset when one applies to LinkConditioners
/// ([`live_links::startup_preset`]).
fn starting_conditioner() -> Conditioner {
    let mut conditioner = Conditioner::new(0);
    if let Some(name) = live_links::startup_preset(true) {
        if let Ok(change) = link_settings::preset_change("LinkConditioner (startup preset)", &name)
        {
            // A preset is valid settings; a refusal would have been pushed as an error.
            let _ = conditioner.configure(Directions::Both, &change);
        }
    }
    conditioner
}

impl LinkConditioner {
    /// Applies `change` to `directions`, all or none; a refusal is pushed as `what`'s error.
    fn change(
        &mut self,
        what: &str,
        directions: Directions,
        change: link_settings::Change,
    ) -> Error {
        match self
            .link
            .get_mut()
            .conditioner
            .configure(directions, &change)
        {
            Ok(()) => Error::OK,
            Err(e) => link_settings::report(what, &e),
        }
    }

    /// The wrapped peer.
    fn inner_peer(&self) -> Option<Gd<PacketPeer>> {
        self.link
            .borrow()
            .inner
            .as_ref()
            .map(InnerPeer::packet_peer)
    }
}
