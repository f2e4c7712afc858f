//! The link model fed arbitrary settings and traffic. Invariants: nothing panics, settings are refused or applied
//! whole, and every packet sent is delivered, dropped for one counted reason, or still queued.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use peerkit_core::link::config::SETTING_NAMES;
use peerkit_core::link::{LinkConfig, LinkModel, SettingValue};

fuzz_target!(|data: &[u8]| {
    let mut model = LinkModel::new(LinkConfig::default(), data.len() as u64);
    let mut now = 0u64;
    let mut chunks = data.chunks_exact(10);
    for chunk in &mut chunks {
        let action = chunk[0] % 4;
        let arg = f64::from_le_bytes(chunk[2..10].try_into().unwrap_or([0; 8]));
        match action {
            0 => {
                let name = SETTING_NAMES[chunk[1] as usize % SETTING_NAMES.len()];
                let value = match chunk[1] % 5 {
                    0 => SettingValue::Bool(chunk[2] & 1 == 1),
                    1 => SettingValue::Text(["uniform", "normal", "pareto", "x"][chunk[2] as usize % 4].into()),
                    2 => SettingValue::Number((chunk[2] as f64) / 255.0),
                    3 => SettingValue::Number((chunk[2] as f64) * 37.0),
                    _ => SettingValue::Number(arg),
                };
                let mut config = model.config().clone();
                let before = config.clone();
                if config.set(name, value).is_err() {
                    assert_eq!(config, before, "a refused setting changes nothing");
                }
                model.set_config(config);
            }
            1 => {
                let len = chunk[1] as usize * 4;
                model.send(now, Bytes::from(vec![chunk[2]; len]));
            }
            2 => now += chunk[1] as u64 * 997,
            _ => while model.poll(now).is_some() {},
        }
        let s = *model.stats();
        assert_eq!(
            s.packets_in + s.duplicated,
            s.packets_delivered + s.dropped_loss + s.dropped_overflow + s.dropped_link_down + model.queued() as u64
        );
    }
});
