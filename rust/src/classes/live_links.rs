//! `PeerkitLinks`: the list of peerkit's live links, for the editor's debugger panel
//! (`addons/peerkit/debugger/`), and the preset a game run from the editor starts its conditioners with.
//!
//! Each [`LinkConditioner`](super::link_conditioner), `ReliablePacketPeer`, `MultiplayerLinkConditioner` and
//! `LocalMultiplayerNetwork` holds a [`Tracked`] field: made in `init`, it adds the object's instance id to the
//! list, and dropping it (when the object is freed) takes the id out. That is the whole cost: one lock when an
//! object is made and one when it goes, nothing per packet.

use std::sync::Mutex;

use godot::global::Error;
use godot::prelude::*;

use super::ffi;

/// The instance ids of every live tracked object, oldest first (a game has a handful, so a list will do).
static LIVE: Mutex<Vec<i64>> = Mutex::new(Vec::new());

/// What new conditioners start with: a preset name, and whether LinkConditioners take it too.
static STARTUP: Mutex<Option<(String, bool)>> = Mutex::new(None);

/// An object's place in the list of live links, for as long as the object lives.
pub(crate) struct Tracked(Option<i64>);

impl Tracked {
    /// Adds the object under construction (`base`, as handed to `init`) to the list.
    pub(crate) fn new<T: GodotClass>(base: &Base<T>) -> Self {
        let id = ffi::init_instance_id(base).map(InstanceId::to_i64);
        if let Some(id) = id {
            lock(&LIVE).push(id);
        }
        Self(id)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if let Some(id) = self.0 {
            lock(&LIVE).retain(|&live| live != id);
        }
    }
}

/// The preset a new conditioner of this kind starts with, if one was set with
/// `PeerkitLinks.set_startup_preset`: every MultiplayerLinkConditioner, and LinkConditioners when asked.
pub(crate) fn startup_preset(link_conditioner: bool) -> Option<String> {
    match &*lock(&STARTUP) {
        Some((name, all)) if !link_conditioner || *all => Some(name.clone()),
        _ => None,
    }
}

/// Locks a list, taking it over even if a thread panicked while holding it (the lists stay consistent: each
/// change is one push, removal or assignment).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The live peerkit links of this process, as the editor's debugger panel lists them: every
/// [LinkConditioner], [ReliablePacketPeer], [MultiplayerLinkConditioner] and [LocalMultiplayerNetwork] that
/// exists now, whichever script made it and whether or not it is still in use. Objects are added when they are
/// made and leave the list when they are freed; nothing is counted per packet.
///
/// The addon's debugger runtime (the autoload the peerkit editor plugin adds) reads this list to report the
/// links to the editor. You do not need it in a game, but it is there for your own tools:
/// [codeblock]
/// for link in PeerkitLinks.get_live_links():
///     print(link.get_class(), " ", link.get_stats())
/// [/codeblock]
#[derive(GodotClass)]
#[class(no_init, base = Object)]
pub struct PeerkitLinks {
    base: Base<Object>,
}

#[godot_api]
impl PeerkitLinks {
    /// Returns every live link, oldest first.
    #[func]
    fn get_live_links() -> Array<Gd<Object>> {
        let ids: Vec<i64> = lock(&LIVE).clone();
        let mut links = Array::new();
        for id in ids {
            let Some(id) = InstanceId::try_from_i64(id) else {
                continue;
            };
            // An object freed since the ids were read is skipped.
            if let Ok(link) = Gd::<Object>::try_from_instance_id(id) {
                links.push(&link);
            }
        }
        links
    }

    /// Makes every [MultiplayerLinkConditioner] made from now on start with the [LinkConditioner] preset
    /// [param preset] ([code]"clean"[/code], [code]"wifi"[/code], [code]"4g"[/code], [code]"3g"[/code],
    /// [code]"lossy"[/code] or [code]"satellite"[/code]) for every remote peer, and every [LinkConditioner]
    /// too when [param link_conditioners] is [code]true[/code]. An empty [param preset] turns this off. What a
    /// script sets afterwards (a preset passed to [method MultiplayerLinkConditioner.wrap], a
    /// [method LinkConditioner.configure]) still wins. The peerkit editor plugin calls it when the game runs
    /// from the editor, from the project setting [code]peerkit/debugger/startup_preset[/code]. Returns
    /// [constant ERR_INVALID_PARAMETER] (and changes nothing) for an unknown preset.
    #[func]
    fn set_startup_preset(
        preset: GString,
        #[opt(default = false)] link_conditioners: bool,
    ) -> Error {
        let name = preset.to_string();
        if name.is_empty() {
            *lock(&STARTUP) = None;
            return Error::OK;
        }
        if let Err(code) =
            super::link_settings::preset_change("PeerkitLinks.set_startup_preset", &name)
        {
            return code;
        }
        *lock(&STARTUP) = Some((name, link_conditioners));
        Error::OK
    }

    /// Returns the preset set with [method set_startup_preset], or an empty String.
    #[func]
    fn get_startup_preset() -> GString {
        lock(&STARTUP)
            .as_ref()
            .map_or_else(GString::new, |(name, _)| GString::from(name.as_str()))
    }
}
