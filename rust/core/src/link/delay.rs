//! Per-packet delay: latency plus correlated jitter of a chosen distribution.
//!
//! Correlation is made on a standard normal variable with an AR(1) step, `x = ρ·x_prev + √(1-ρ²)·z`, which keeps
//! its variance at 1 whatever ρ is. The chosen distribution is then reached through the normal CDF (a Gaussian
//! copula), so the delays have exactly the configured spread and successive delays are correlated. (Mixing raw
//! uniforms, as netem does, shrinks the spread as correlation grows.)

use super::config::{JitterDistribution, LinkConfig};
use crate::rng::Rng;

/// Pareto shape used for the `pareto` jitter: heavy-tailed but with finite variance.
const PARETO_SHAPE: f64 = 3.0;

/// Draws delays; holds the previous jitter state for correlation.
#[derive(Debug, Clone, Default)]
pub struct DelaySampler {
    previous: Option<f64>,
}

impl DelaySampler {
    /// The next packet's delay in microseconds (never negative).
    pub fn sample_us(&mut self, rng: &mut Rng, config: &LinkConfig) -> u64 {
        let latency_us = config.latency_ms * 1000.0;
        if config.jitter_ms == 0.0 {
            return latency_us.round() as u64;
        }
        let z = rng.standard_normal();
        let rho = config.jitter_correlation.min(0.999_999);
        let x = match self.previous {
            Some(prev) if rho > 0.0 => rho * prev + (1.0 - rho * rho).sqrt() * z,
            _ => z,
        };
        self.previous = Some(x);
        let offset = unit_jitter(config.jitter_distribution, x) * config.jitter_ms * 1000.0;
        (latency_us + offset).max(0.0).round() as u64
    }
}

/// Maps a standard normal `x` to a jitter offset with the distribution's shape, mean 0 and the documented spread
/// for a jitter of 1 (uniform: ±1; normal and Pareto: standard deviation 1).
fn unit_jitter(distribution: JitterDistribution, x: f64) -> f64 {
    match distribution {
        JitterDistribution::Normal => x,
        JitterDistribution::Uniform => 2.0 * normal_cdf(x) - 1.0,
        JitterDistribution::Pareto => {
            // Pareto(scale 1, shape a): mean a/(a-1), variance a/((a-1)^2 (a-2)).
            let a = PARETO_SHAPE;
            let mean = a / (a - 1.0);
            let sd = (a / ((a - 1.0).powi(2) * (a - 2.0))).sqrt();
            let tail = (1.0 - normal_cdf(x)).max(f64::MIN_POSITIVE);
            (tail.powf(-1.0 / a) - mean) / sd
        }
    }
}

/// Φ(x), the standard normal CDF.
fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

/// The complementary error function, by the rational approximation of Abramowitz & Stegun 7.1.26
/// (absolute error below 1.5e-7), extended to negative arguments by symmetry.
fn erfc(x: f64) -> f64 {
    let ax = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * ax);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let tail = poly * (-ax * ax).exp();
    if x >= 0.0 {
        tail
    } else {
        2.0 - tail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(
        distribution: JitterDistribution,
        latency: f64,
        jitter: f64,
        correlation: f64,
    ) -> LinkConfig {
        LinkConfig {
            latency_ms: latency,
            jitter_ms: jitter,
            jitter_distribution: distribution,
            jitter_correlation: correlation,
            ..LinkConfig::default()
        }
    }

    fn samples_ms(cfg: &LinkConfig, n: usize, seed: u64) -> Vec<f64> {
        let mut rng = Rng::new(seed);
        let mut sampler = DelaySampler::default();
        (0..n)
            .map(|_| sampler.sample_us(&mut rng, cfg) as f64 / 1000.0)
            .collect()
    }

    fn mean_sd(xs: &[f64]) -> (f64, f64) {
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        (mean, var.sqrt())
    }

    fn lag1_correlation(xs: &[f64]) -> f64 {
        let (mean, sd) = mean_sd(xs);
        let cov = xs
            .windows(2)
            .map(|w| (w[0] - mean) * (w[1] - mean))
            .sum::<f64>()
            / (xs.len() - 1) as f64;
        cov / (sd * sd)
    }

    #[test]
    fn erfc_matches_known_values() {
        assert!((erfc(0.0) - 1.0).abs() < 1e-6);
        assert!((erfc(1.0) - 0.157_299_207).abs() < 1e-6);
        assert!((erfc(-1.0) - 1.842_700_793).abs() < 1e-6);
        assert!((normal_cdf(1.959_964) - 0.975).abs() < 1e-6);
    }

    #[test]
    fn no_jitter_gives_exact_latency() {
        let cfg = config(JitterDistribution::Normal, 42.5, 0.0, 0.0);
        assert!(samples_ms(&cfg, 100, 1).iter().all(|d| *d == 42.5));
    }

    #[test]
    fn uniform_jitter_stays_within_its_band_with_the_right_mean() {
        let cfg = config(JitterDistribution::Uniform, 100.0, 20.0, 0.0);
        let xs = samples_ms(&cfg, 100_000, 2);
        assert!(xs.iter().all(|d| (80.0..=120.0).contains(d)));
        let (mean, sd) = mean_sd(&xs);
        assert!((mean - 100.0).abs() < 0.2, "mean {mean}");
        // A uniform band of ±20 has standard deviation 20/√3.
        assert!((sd - 20.0 / 3f64.sqrt()).abs() < 0.2, "sd {sd}");
    }

    #[test]
    fn normal_jitter_has_the_configured_standard_deviation() {
        let cfg = config(JitterDistribution::Normal, 100.0, 10.0, 0.0);
        let (mean, sd) = mean_sd(&samples_ms(&cfg, 100_000, 3));
        assert!((mean - 100.0).abs() < 0.2, "mean {mean}");
        assert!((sd - 10.0).abs() < 0.2, "sd {sd}");
    }

    #[test]
    fn pareto_jitter_has_the_configured_mean_and_a_long_tail() {
        let cfg = config(JitterDistribution::Pareto, 100.0, 10.0, 0.0);
        let xs = samples_ms(&cfg, 100_000, 4);
        let (mean, _) = mean_sd(&xs);
        assert!((mean - 100.0).abs() < 0.3, "mean {mean}");
        // Shape 3 Pareto never goes below its scale: the lowest delay is latency - 0.577 * jitter.
        let min = xs.iter().cloned().fold(f64::MAX, f64::min);
        assert!(min >= 94.2, "min {min}");
        // ... but has late stragglers far beyond what a normal with the same spread would produce.
        let late = xs.iter().filter(|d| **d > 140.0).count();
        assert!(late > 20, "only {late} packets more than 4 sd late");
    }

    #[test]
    fn correlation_correlates_successive_delays_and_keeps_the_spread() {
        let cfg = config(JitterDistribution::Normal, 100.0, 10.0, 0.8);
        let xs = samples_ms(&cfg, 100_000, 5);
        let rho = lag1_correlation(&xs);
        assert!((rho - 0.8).abs() < 0.02, "lag-1 correlation {rho}");
        let (_, sd) = mean_sd(&xs);
        assert!((sd - 10.0).abs() < 0.4, "sd {sd}");
        let independent = samples_ms(
            &config(JitterDistribution::Normal, 100.0, 10.0, 0.0),
            100_000,
            5,
        );
        assert!(lag1_correlation(&independent).abs() < 0.02);
    }

    #[test]
    fn delays_never_go_negative() {
        let cfg = config(JitterDistribution::Normal, 1.0, 50.0, 0.0);
        // Clamped at zero: the sampler returns u64 microseconds, so check it saturates rather than wraps.
        assert!(samples_ms(&cfg, 10_000, 6).iter().all(|d| *d < 1000.0));
    }
}
