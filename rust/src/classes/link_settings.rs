//! Link settings and counters as scripts see them: Dictionaries in and out, shared by every class that
//! exposes a simulated link.

use godot::global::Error;
use godot::prelude::*;
use peerkit_core::link::conditioner::Directions;
use peerkit_core::link::{LinkConfig, LinkConfigError, LinkStats, SettingValue};

use super::error::GodotErrorCode;

/// The names of a class's two one-way direction constants, whose values are 1 and 2 (and `DIRECTION_BOTH` 3) in
/// every class: outbound and inbound for a wrapper, to the server and to the client for a network or a proxy.
pub(crate) type DirectionNames = [&'static str; 2];
/// LinkConditioner's and MultiplayerLinkConditioner's.
pub(crate) const OUTBOUND_INBOUND: DirectionNames = ["DIRECTION_OUTBOUND", "DIRECTION_INBOUND"];
/// LocalMultiplayerNetwork's and UdpLinkProxy's.
pub(crate) const TO_SERVER_TO_CLIENT: DirectionNames =
    ["DIRECTION_TO_SERVER", "DIRECTION_TO_CLIENT"];

/// The directions a `direction` argument names: 1 the first of `names` (outbound, or to the server), 2 the other,
/// 3 both. Any other value is refused with an error naming `what` and the class's constants.
pub(crate) fn directions(what: &str, direction: i64, names: DirectionNames) -> Option<Directions> {
    match direction {
        1 => Some(Directions::Outbound),
        2 => Some(Directions::Inbound),
        3 => Some(Directions::Both),
        _ => {
            let [first, second] = names;
            godot_error!("{what}: direction must be {first} (1), {second} (2) or DIRECTION_BOTH (3), got {direction}");
            None
        }
    }
}

/// A one-way `direction` argument: `Some(true)` for 1 (outbound, or to the server), `Some(false)` for 2; any other
/// value is refused with an error naming `what` and the class's constants.
pub(crate) fn one_direction(what: &str, direction: i64, names: DirectionNames) -> Option<bool> {
    match direction {
        1 => Some(true),
        2 => Some(false),
        _ => {
            let [first, second] = names;
            godot_error!("{what}: direction must be {first} (1) or {second} (2), got {direction}");
            None
        }
    }
}

/// A change to a link's settings, as every class that takes settings hands it to the core.
pub(crate) type Change = Box<dyn Fn(&mut LinkConfig) -> Result<(), LinkConfigError> + Send>;

/// The change a settings Dictionary (in [method LinkConditioner.configure]'s form) asks for: names not given
/// keep their value. A key or value of the wrong type is refused here, with an error naming `what`; names and
/// ranges are checked when the change is applied.
pub(crate) fn settings_change(what: &str, settings: &VarDictionary) -> Result<Change, Error> {
    let parsed = parse(settings).map_err(|e| report(what, &e))?;
    Ok(Box::new(move |config: &mut LinkConfig| {
        config.set_all(parsed.iter().map(|(n, v)| (n.as_str(), v.clone())))
    }))
}

/// The change that replaces a link's settings with the preset `name`; an unknown name is refused, with an error
/// naming `what` and the presets there are.
pub(crate) fn preset_change(what: &str, name: &str) -> Result<Change, Error> {
    let preset = LinkConfig::preset(name).map_err(|e| report(what, &e))?;
    Ok(Box::new(move |config: &mut LinkConfig| {
        *config = preset.clone();
        Ok(())
    }))
}

/// Pushes `error` as `what`'s and returns its code.
pub(crate) fn report(what: &str, error: &LinkConfigError) -> Error {
    godot_error!("{what}: {error}");
    error.error_code()
}

/// Reads a settings Dictionary into (name, value) pairs; the core validates names and ranges.
pub(crate) fn parse(
    settings: &VarDictionary,
) -> Result<Vec<(String, SettingValue)>, LinkConfigError> {
    let mut parsed = Vec::new();
    for (key, value) in settings.iter_shared() {
        let name = match key.get_type() {
            VariantType::STRING | VariantType::STRING_NAME => key.to_string(),
            _ => return Err(LinkConfigError::UnknownSetting(key.to_string())),
        };
        let value = match value.get_type() {
            VariantType::BOOL => SettingValue::Bool(value.to::<bool>()),
            VariantType::INT => SettingValue::Number(value.to::<i64>() as f64),
            VariantType::FLOAT => SettingValue::Number(value.to::<f64>()),
            VariantType::STRING | VariantType::STRING_NAME => SettingValue::Text(value.to_string()),
            other => SettingValue::Unsupported(format!("a value of type {other:?}")),
        };
        parsed.push((name, value));
    }
    Ok(parsed)
}

/// The settings of one direction as a Dictionary in the form `configure` takes.
pub(crate) fn to_dictionary(config: &LinkConfig) -> VarDictionary {
    let mut dict = VarDictionary::new();
    for (name, value) in config.entries() {
        match value {
            SettingValue::Bool(b) => dict.set(name, b),
            SettingValue::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => {
                dict.set(name, n as i64)
            }
            SettingValue::Number(n) => dict.set(name, n),
            SettingValue::Text(t) | SettingValue::Unsupported(t) => dict.set(name, t.as_str()),
        }
    }
    dict
}

/// One direction's counters, with how many packets it holds now.
pub(crate) fn direction_stats(stats: &LinkStats, queued: usize) -> VarDictionary {
    vdict! {
        "packets_in" => stats.packets_in as i64,
        "bytes_in" => stats.bytes_in as i64,
        "packets_delivered" => stats.packets_delivered as i64,
        "bytes_delivered" => stats.bytes_delivered as i64,
        "dropped_loss" => stats.dropped_loss as i64,
        "dropped_overflow" => stats.dropped_overflow as i64,
        "dropped_link_down" => stats.dropped_link_down as i64,
        "duplicated" => stats.duplicated as i64,
        "reordered" => stats.reordered as i64,
        "corrupted" => stats.corrupted as i64,
        "queued" => queued as i64,
        "delay_min_ms" => stats.delay_min_us as f64 / 1000.0,
        "delay_mean_ms" => stats.delay_mean_us() / 1000.0,
        "delay_max_ms" => stats.delay_max_us as f64 / 1000.0,
    }
}

/// A multiplayer link's direction: its counters as [`direction_stats`], plus `retransmitted` (simulated
/// retransmissions of reliable packets).
pub(crate) fn lane_stats(stats: &LinkStats, queued: usize) -> VarDictionary {
    let mut dict = direction_stats(stats, queued);
    dict.set("retransmitted", stats.retransmitted as i64);
    dict
}
