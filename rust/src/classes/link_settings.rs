//! Link settings and counters as scripts see them: Dictionaries in and out, shared by every class that
//! exposes a simulated link.

use godot::global::Error;
use godot::prelude::*;
use peerkit_core::link::{LinkConfig, LinkConfigError, LinkStats, SettingValue};

use super::error::GodotErrorCode;

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
