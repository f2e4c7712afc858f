//! A check a little later, for a peer given work that is never polled: with no further call, nothing would
//! ever tell the script. The rule (when to say it, once) is the core's [`peerkit_core::unpolled`]; this only asks
//! the SceneTree for a timer.

use godot::classes::{Engine, SceneTree};
use godot::prelude::*;
use peerkit_core::unpolled::UNPOLLED_WARNING_US;

/// Runs `check` once, on the main thread, [`UNPOLLED_WARNING_US`] from now (plus a little, so the wait has
/// passed), when the main loop is a SceneTree; otherwise does nothing. Timers run while the game is paused too.
pub(crate) fn check_later(check: impl FnOnce() + 'static) {
    let Some(mut tree) = Engine::singleton()
        .get_main_loop()
        .and_then(|main| main.try_cast::<SceneTree>().ok())
    else {
        return;
    };
    let Some(mut timer) = tree
        .create_timer_ex(UNPOLLED_WARNING_US as f64 / 1e6 + 0.05)
        .process_always(true)
        .done()
    else {
        return;
    };
    let mut check = Some(check);
    let callable = Callable::from_fn("peerkit.unpolled_check", move |_args| {
        if let Some(check) = check.take() {
            check();
        }
    });
    timer.connect("timeout", &callable);
}
