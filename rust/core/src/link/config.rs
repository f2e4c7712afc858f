//! Settings of one direction of a simulated link, validated, addressable by name, with presets.

use std::fmt;

/// The largest time setting accepted, in milliseconds (one hour).
pub const MAX_TIME_MS: f64 = 3_600_000.0;
/// The largest `queue_limit` accepted, in packets.
pub const MAX_QUEUE_LIMIT: usize = 10_000_000;

/// Why a setting was refused. A refused setting leaves the configuration unchanged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LinkConfigError {
    /// No setting has this name.
    #[error("unknown link setting \"{0}\"; valid settings: {names}", names = SETTING_NAMES.join(", "))]
    UnknownSetting(String),
    /// The value has the wrong type for the setting.
    #[error("link setting \"{name}\" takes {expected}, got {got}")]
    WrongType {
        /// The setting's name.
        name: &'static str,
        /// What the setting takes.
        expected: &'static str,
        /// What was given.
        got: String,
    },
    /// A probability outside `0..=1`.
    #[error("link setting \"{name}\" is a probability and must be between 0 and 1, got {value}")]
    ProbabilityOutOfRange {
        /// The setting's name.
        name: &'static str,
        /// The refused value.
        value: f64,
    },
    /// A time that is negative, not finite, or over an hour.
    #[error("link setting \"{name}\" is a time in milliseconds and must be between 0 and {MAX_TIME_MS}, got {value}")]
    TimeOutOfRange {
        /// The setting's name.
        name: &'static str,
        /// The refused value.
        value: f64,
    },
    /// A count or rate outside its range.
    #[error("link setting \"{name}\" must be a whole number between {min} and {max}, got {value}")]
    CountOutOfRange {
        /// The setting's name.
        name: &'static str,
        /// The refused value.
        value: f64,
        /// The smallest accepted value.
        min: u64,
        /// The largest accepted value.
        max: u64,
    },
    /// A jitter distribution name that is not known.
    #[error("unknown jitter distribution \"{0}\"; use \"uniform\", \"normal\" or \"pareto\"")]
    UnknownDistribution(String),
    /// A preset name that is not known.
    #[error("unknown link preset \"{0}\"; presets: {names}", names = PRESET_NAMES.join(", "))]
    UnknownPreset(String),
}

/// The shape of the random part of the delay. Every shape has mean `latency_ms` and spread `jitter_ms`
/// (before delays below zero are clamped to zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JitterDistribution {
    /// Evenly spread over `latency ± jitter`.
    #[default]
    Uniform,
    /// Normal, with standard deviation `jitter`.
    Normal,
    /// Pareto (shape 3): mostly a little under the latency, with a long tail of late packets; standard
    /// deviation `jitter`.
    Pareto,
}

impl JitterDistribution {
    /// The name used in settings.
    pub fn name(self) -> &'static str {
        match self {
            Self::Uniform => "uniform",
            Self::Normal => "normal",
            Self::Pareto => "pareto",
        }
    }

    fn parse(name: &str) -> Result<Self, LinkConfigError> {
        match name {
            "uniform" => Ok(Self::Uniform),
            "normal" => Ok(Self::Normal),
            "pareto" => Ok(Self::Pareto),
            other => Err(LinkConfigError::UnknownDistribution(other.to_string())),
        }
    }
}

/// A setting's value as it arrives from a script.
#[derive(Debug, Clone, PartialEq)]
pub enum SettingValue {
    /// A boolean.
    Bool(bool),
    /// An integer or float.
    Number(f64),
    /// A string.
    Text(String),
    /// A value of a type no setting takes, described for the error message.
    Unsupported(String),
}

impl fmt::Display for SettingValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bool(b) => write!(f, "{b}"),
            Self::Number(n) => write!(f, "{n}"),
            Self::Text(t) => write!(f, "\"{t}\""),
            Self::Unsupported(what) => write!(f, "{what}"),
        }
    }
}

/// Settings of one direction of a link. The default impairs nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkConfig {
    /// When false, every packet is dropped (and counted) as if the cable were pulled.
    pub link_up: bool,
    /// Mean one-way delay added to every packet, in milliseconds.
    pub latency_ms: f64,
    /// Spread of the delay around `latency_ms`, in milliseconds (see [`JitterDistribution`]).
    pub jitter_ms: f64,
    /// The shape of the jitter.
    pub jitter_distribution: JitterDistribution,
    /// Correlation of each packet's jitter with the previous packet's, 0 (independent) to 1 (constant).
    pub jitter_correlation: f64,
    /// Whether jitter may deliver a packet before one sent earlier. When false, a packet is held until the
    /// packets sent before it have been delivered, so jitter never reorders.
    pub jitter_may_reorder: bool,
    /// Probability that a packet is lost, independently of the others.
    pub loss: f64,
    /// Gilbert–Elliott burst loss: probability of moving from the good state to the bad state at each packet.
    /// 0 turns burst loss off.
    pub burst_enter_probability: f64,
    /// Gilbert–Elliott: probability of moving from the bad state back to the good state at each packet.
    /// Bursts last `1 / burst_exit_probability` packets on average.
    pub burst_exit_probability: f64,
    /// Gilbert–Elliott: probability that a packet is lost while the link is in the good state.
    pub loss_in_good_state: f64,
    /// Gilbert–Elliott: probability that a packet is lost while the link is in the bad state.
    pub loss_in_bad_state: f64,
    /// Probability that a packet is delivered twice.
    pub duplicate: f64,
    /// Probability that a packet skips the latency and jitter and so overtakes packets sent before it.
    pub reorder: f64,
    /// Probability that one random bit of a packet is flipped.
    pub corrupt: f64,
    /// Bandwidth cap in bytes per second; 0 means unlimited. Packets wait in a queue to be sent at this rate.
    pub bandwidth_bytes_per_second: u64,
    /// The most packets the direction holds (waiting for bandwidth or latency); more are dropped and counted.
    pub queue_limit: usize,
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self {
            link_up: true,
            latency_ms: 0.0,
            jitter_ms: 0.0,
            jitter_distribution: JitterDistribution::Uniform,
            jitter_correlation: 0.0,
            jitter_may_reorder: false,
            loss: 0.0,
            burst_enter_probability: 0.0,
            burst_exit_probability: 1.0,
            loss_in_good_state: 0.0,
            loss_in_bad_state: 1.0,
            duplicate: 0.0,
            reorder: 0.0,
            corrupt: 0.0,
            bandwidth_bytes_per_second: 0,
            queue_limit: 10_000,
        }
    }
}

/// Every setting's name, in the order `entries()` lists them.
pub const SETTING_NAMES: &[&str] = &[
    "link_up",
    "latency_ms",
    "jitter_ms",
    "jitter_distribution",
    "jitter_correlation",
    "jitter_may_reorder",
    "loss",
    "burst_enter_probability",
    "burst_exit_probability",
    "loss_in_good_state",
    "loss_in_bad_state",
    "duplicate",
    "reorder",
    "corrupt",
    "bandwidth_bytes_per_second",
    "queue_limit",
];

/// Every preset's name.
pub const PRESET_NAMES: &[&str] = &["clean", "wifi", "4g", "3g", "lossy", "satellite"];

impl LinkConfig {
    /// True when this configuration delays, drops or alters nothing, so packets can pass straight through.
    pub fn is_transparent(&self) -> bool {
        self.link_up
            && self.latency_ms == 0.0
            && self.jitter_ms == 0.0
            && self.loss == 0.0
            && self.burst_enter_probability == 0.0
            && self.duplicate == 0.0
            && self.reorder == 0.0
            && self.corrupt == 0.0
            && self.bandwidth_bytes_per_second == 0
    }

    /// Sets one setting by name, validating it; on error nothing changes.
    pub fn set(&mut self, name: &str, value: SettingValue) -> Result<(), LinkConfigError> {
        let key = SETTING_NAMES
            .iter()
            .copied()
            .find(|n| *n == name)
            .ok_or_else(|| LinkConfigError::UnknownSetting(name.to_string()))?;
        match key {
            "link_up" => self.link_up = boolean(key, &value)?,
            "jitter_may_reorder" => self.jitter_may_reorder = boolean(key, &value)?,
            "latency_ms" => self.latency_ms = time(key, &value)?,
            "jitter_ms" => self.jitter_ms = time(key, &value)?,
            "jitter_distribution" => match &value {
                SettingValue::Text(t) => self.jitter_distribution = JitterDistribution::parse(t)?,
                other => return Err(wrong_type(key, "a string", other)),
            },
            "jitter_correlation" => self.jitter_correlation = probability(key, &value)?,
            "loss" => self.loss = probability(key, &value)?,
            "burst_enter_probability" => self.burst_enter_probability = probability(key, &value)?,
            "burst_exit_probability" => self.burst_exit_probability = probability(key, &value)?,
            "loss_in_good_state" => self.loss_in_good_state = probability(key, &value)?,
            "loss_in_bad_state" => self.loss_in_bad_state = probability(key, &value)?,
            "duplicate" => self.duplicate = probability(key, &value)?,
            "reorder" => self.reorder = probability(key, &value)?,
            "corrupt" => self.corrupt = probability(key, &value)?,
            "bandwidth_bytes_per_second" => {
                self.bandwidth_bytes_per_second = count(key, &value, 0, u32::MAX as u64 * 16)?
            }
            "queue_limit" => {
                self.queue_limit = count(key, &value, 1, MAX_QUEUE_LIMIT as u64)? as usize
            }
            // Every name in SETTING_NAMES is matched above (a test sets each one).
            _ => return Err(LinkConfigError::UnknownSetting(name.to_string())),
        }
        Ok(())
    }

    /// Sets several settings at once: all of them, or (on the first error) none.
    pub fn set_all<'a>(
        &mut self,
        settings: impl IntoIterator<Item = (&'a str, SettingValue)>,
    ) -> Result<(), LinkConfigError> {
        let mut next = self.clone();
        for (name, value) in settings {
            next.set(name, value)?;
        }
        *self = next;
        Ok(())
    }

    /// Every setting with its current value, in `SETTING_NAMES` order.
    pub fn entries(&self) -> Vec<(&'static str, SettingValue)> {
        use SettingValue::{Bool, Number, Text};
        vec![
            ("link_up", Bool(self.link_up)),
            ("latency_ms", Number(self.latency_ms)),
            ("jitter_ms", Number(self.jitter_ms)),
            (
                "jitter_distribution",
                Text(self.jitter_distribution.name().to_string()),
            ),
            ("jitter_correlation", Number(self.jitter_correlation)),
            ("jitter_may_reorder", Bool(self.jitter_may_reorder)),
            ("loss", Number(self.loss)),
            (
                "burst_enter_probability",
                Number(self.burst_enter_probability),
            ),
            (
                "burst_exit_probability",
                Number(self.burst_exit_probability),
            ),
            ("loss_in_good_state", Number(self.loss_in_good_state)),
            ("loss_in_bad_state", Number(self.loss_in_bad_state)),
            ("duplicate", Number(self.duplicate)),
            ("reorder", Number(self.reorder)),
            ("corrupt", Number(self.corrupt)),
            (
                "bandwidth_bytes_per_second",
                Number(self.bandwidth_bytes_per_second as f64),
            ),
            ("queue_limit", Number(self.queue_limit as f64)),
        ]
    }

    /// A named preset: one direction of a typical link of that kind. See the README for where the numbers
    /// come from; they are starting points, to be tuned to your own measurements.
    pub fn preset(name: &str) -> Result<Self, LinkConfigError> {
        let base = Self::default();
        Ok(match name {
            "clean" => base,
            // Home Wi-Fi: a few ms of air time, with contention spikes and occasional retries lost.
            "wifi" => Self {
                latency_ms: 3.0,
                jitter_ms: 2.0,
                jitter_distribution: JitterDistribution::Pareto,
                loss: 0.005,
                ..base
            },
            // LTE: about 30-60 ms round trip to a nearby server, so ~20 ms each way, jitter ~5 ms.
            "4g" => Self {
                latency_ms: 20.0,
                jitter_ms: 5.0,
                jitter_distribution: JitterDistribution::Normal,
                jitter_correlation: 0.25,
                loss: 0.002,
                bandwidth_bytes_per_second: 2_500_000,
                ..base
            },
            // UMTS/HSPA: 100-200 ms round trip, wide jitter, ~1 Mbit/s.
            "3g" => Self {
                latency_ms: 75.0,
                jitter_ms: 20.0,
                jitter_distribution: JitterDistribution::Normal,
                jitter_correlation: 0.25,
                loss: 0.01,
                bandwidth_bytes_per_second: 125_000,
                ..base
            },
            // A congested or poor link: 5% of packets lost in bursts (Gilbert–Elliott), some reordering.
            "lossy" => Self {
                latency_ms: 30.0,
                jitter_ms: 10.0,
                jitter_may_reorder: true,
                burst_enter_probability: 0.02,
                burst_exit_probability: 0.4,
                loss_in_good_state: 0.0,
                loss_in_bad_state: 1.0,
                duplicate: 0.01,
                ..base
            },
            // Geostationary satellite: ground -> satellite -> ground is 2 x 35,786 km at light speed,
            // at least 239 ms one way; add processing and terrestrial hops.
            "satellite" => Self {
                latency_ms: 280.0,
                jitter_ms: 10.0,
                jitter_distribution: JitterDistribution::Normal,
                loss: 0.005,
                bandwidth_bytes_per_second: 1_250_000,
                ..base
            },
            other => return Err(LinkConfigError::UnknownPreset(other.to_string())),
        })
    }
}

fn wrong_type(name: &'static str, expected: &'static str, got: &SettingValue) -> LinkConfigError {
    LinkConfigError::WrongType {
        name,
        expected,
        got: got.to_string(),
    }
}

fn boolean(name: &'static str, value: &SettingValue) -> Result<bool, LinkConfigError> {
    match value {
        SettingValue::Bool(b) => Ok(*b),
        other => Err(wrong_type(name, "true or false", other)),
    }
}

fn number(name: &'static str, value: &SettingValue) -> Result<f64, LinkConfigError> {
    match value {
        SettingValue::Number(n) => Ok(*n),
        other => Err(wrong_type(name, "a number", other)),
    }
}

fn probability(name: &'static str, value: &SettingValue) -> Result<f64, LinkConfigError> {
    let p = number(name, value)?;
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(LinkConfigError::ProbabilityOutOfRange { name, value: p })
    }
}

fn time(name: &'static str, value: &SettingValue) -> Result<f64, LinkConfigError> {
    let t = number(name, value)?;
    if (0.0..=MAX_TIME_MS).contains(&t) {
        Ok(t)
    } else {
        Err(LinkConfigError::TimeOutOfRange { name, value: t })
    }
}

fn count(
    name: &'static str,
    value: &SettingValue,
    min: u64,
    max: u64,
) -> Result<u64, LinkConfigError> {
    let n = number(name, value)?;
    if n.fract() == 0.0 && n >= min as f64 && n <= max as f64 {
        Ok(n as u64)
    } else {
        Err(LinkConfigError::CountOutOfRange {
            name,
            value: n,
            min,
            max,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SettingValue::{Bool, Number, Text};

    #[test]
    fn default_is_transparent_and_every_preset_but_clean_is_not() {
        assert!(LinkConfig::default().is_transparent());
        for name in PRESET_NAMES {
            let preset = LinkConfig::preset(name).unwrap();
            assert_eq!(preset.is_transparent(), *name == "clean", "preset {name}");
        }
        assert!(matches!(
            LinkConfig::preset("dialup"),
            Err(LinkConfigError::UnknownPreset(_))
        ));
    }

    #[test]
    fn entries_round_trip_through_set() {
        let preset = LinkConfig::preset("lossy").unwrap();
        let mut copy = LinkConfig::default();
        let entries = preset.entries();
        assert_eq!(entries.len(), SETTING_NAMES.len());
        copy.set_all(entries.iter().map(|(n, v)| (*n, v.clone())))
            .unwrap();
        assert_eq!(copy, preset);
    }

    #[test]
    fn bad_values_are_refused_and_change_nothing() {
        let mut config = LinkConfig::default();
        let before = config.clone();
        let cases = [
            ("loss", Number(1.5)),
            ("loss", Number(-0.1)),
            ("loss", Number(f64::NAN)),
            ("latency_ms", Number(-1.0)),
            ("latency_ms", Number(f64::INFINITY)),
            ("jitter_ms", Text("ten".into())),
            ("link_up", Number(1.0)),
            ("queue_limit", Number(0.0)),
            ("queue_limit", Number(2.5)),
            ("bandwidth_bytes_per_second", Number(-5.0)),
            ("jitter_distribution", Text("gamma".into())),
            ("no_such_setting", Bool(true)),
        ];
        for (name, value) in cases {
            assert!(config.set(name, value.clone()).is_err(), "{name} = {value}");
        }
        assert_eq!(config, before);
        let partial = config.set_all([("loss", Number(0.5)), ("duplicate", Number(2.0))]);
        assert!(partial.is_err());
        assert_eq!(config, before, "set_all is all or nothing");
    }

    #[test]
    fn error_messages_name_the_setting_and_the_range() {
        let mut config = LinkConfig::default();
        let err = config.set("loss", Number(1.5)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "link setting \"loss\" is a probability and must be between 0 and 1, got 1.5"
        );
        let err = config.set("lag", Number(1.0)).unwrap_err();
        assert!(
            err.to_string()
                .contains("valid settings: link_up, latency_ms"),
            "{err}"
        );
    }
}
