//! Load profiles: YAML files in `configs/loadgen/` naming a workload shape.
//!
//! Every key is optional; flags given on the command line win over profile values, which
//! win over the built-in defaults. Unknown keys are errors that name the key.

use std::path::Path;

use serde::Deserialize;

use crate::args::{Compression, Protocol, Timestamps};
use crate::error::{LoadgenError, Result};
use crate::schedule::Phase;
use crate::series::Mix;

/// Profiles shipped in `configs/loadgen/`, embedded so they work from any directory.
const BUILTIN: [(&str, &str); 5] = [
    ("steady", include_str!("../../configs/loadgen/steady.yaml")),
    (
        "high-cardinality",
        include_str!("../../configs/loadgen/high-cardinality.yaml"),
    ),
    ("churn", include_str!("../../configs/loadgen/churn.yaml")),
    ("spike", include_str!("../../configs/loadgen/spike.yaml")),
    (
        "regular",
        include_str!("../../configs/loadgen/regular.yaml"),
    ),
];

/// Names of the built-in profiles.
pub fn builtin_names() -> impl Iterator<Item = &'static str> {
    BUILTIN.iter().map(|(name, _)| *name)
}

/// A load profile (`configs/loadgen/NAME.yaml`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// One line on what the profile models.
    pub description: Option<String>,
    /// OTLP endpoint URL.
    pub endpoint: Option<String>,
    /// `grpc` or `http`.
    pub protocol: Option<Protocol>,
    /// Base target rate in datapoints per second (phases scale it).
    pub rate_dps: Option<f64>,
    /// Run length; defaults to the sum of the phases when there are phases.
    pub duration_secs: Option<f64>,
    /// Datapoints per request.
    pub batch_size: Option<usize>,
    /// Concurrent connections.
    pub connections: Option<usize>,
    /// `none` or `gzip`.
    pub compression: Option<Compression>,
    /// Retry retryable answers with backoff.
    pub retry: Option<bool>,
    /// Seed of the value generator.
    pub seed: Option<u64>,
    /// The series set.
    #[serde(default)]
    pub series: SeriesProfile,
    /// Weights of the metric types.
    pub mix: Option<MixProfile>,
    /// Rate phases, cycled until the run ends.
    #[serde(default)]
    pub phases: Vec<PhaseProfile>,
}

/// The `series:` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesProfile {
    /// Active series.
    pub count: Option<u64>,
    /// Attributes per datapoint (the first is the id label).
    pub attributes: Option<usize>,
    /// Series given a fresh id every second: old ones disappear, new ones appear.
    pub churn_per_sec: Option<u64>,
    /// Name of the id label.
    pub id_attribute: Option<String>,
    /// `wall` or `aligned` (see `--timestamps`).
    pub timestamps: Option<Timestamps>,
    /// Decimals of gauge and delta-sum values (see `--decimals`).
    pub decimals: Option<u32>,
}

/// The `mix:` section: integer weights, missing kinds weigh 0.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixProfile {
    /// Gauges.
    #[serde(default)]
    pub gauge: u32,
    /// Cumulative monotonic sums.
    #[serde(default)]
    pub sum_cumulative: u32,
    /// Delta monotonic sums.
    #[serde(default)]
    pub sum_delta: u32,
    /// Cumulative histograms.
    #[serde(default)]
    pub histogram: u32,
}

impl From<MixProfile> for Mix {
    fn from(m: MixProfile) -> Mix {
        Mix {
            weights: [m.gauge, m.sum_cumulative, m.sum_delta, m.histogram],
        }
    }
}

/// One entry of `phases:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseProfile {
    /// Shown in the progress line.
    pub name: Option<String>,
    /// Length of the phase.
    pub duration_secs: f64,
    /// Multiplier of `rate_dps`.
    #[serde(default = "one")]
    pub rate_factor: f64,
}

fn one() -> f64 {
    1.0
}

impl Profile {
    /// Loads `name`: a file path, else `configs/loadgen/NAME.yaml` under the current
    /// directory, else the built-in profile of that name. Returns it with its origin.
    ///
    /// # Errors
    /// [`LoadgenError::ProfileNotFound`], [`LoadgenError::ProfileRead`], or
    /// [`LoadgenError::Profile`] naming the bad key.
    pub fn load(name: &str) -> Result<(Profile, String)> {
        let candidates = [name.to_string(), format!("configs/loadgen/{name}.yaml")];
        for path in &candidates {
            if Path::new(path).is_file() {
                let text =
                    std::fs::read_to_string(path).map_err(|source| LoadgenError::ProfileRead {
                        path: path.clone(),
                        source,
                    })?;
                return Ok((Profile::parse(&text, path)?, path.clone()));
            }
        }
        if let Some((_, text)) = BUILTIN.iter().find(|(n, _)| *n == name) {
            let origin = format!("built-in {name}");
            return Ok((Profile::parse(text, &origin)?, origin));
        }
        Err(LoadgenError::ProfileNotFound {
            name: name.to_string(),
            tried: format!(
                "{}, {}, built-ins {}",
                candidates[0],
                candidates[1],
                builtin_names().collect::<Vec<_>>().join(", ")
            ),
        })
    }

    /// Parses and validates profile YAML; `origin` names it in errors.
    ///
    /// # Errors
    /// [`LoadgenError::Profile`] with the dotted key path of the first bad key.
    pub fn parse(text: &str, origin: &str) -> Result<Profile> {
        let de = serde_yaml::Deserializer::from_str(text);
        let profile: Profile = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let mut message = e.into_inner().to_string();
            // serde_yaml prefixes the path ("series: unknown field ..."); the key already
            // says where, so drop it.
            if let Some((head, rest)) = message.split_once(": ") {
                if key.starts_with(head) {
                    message = rest.to_string();
                }
            }
            LoadgenError::Profile {
                origin: origin.to_string(),
                key: if key == "." {
                    "(top level)".into()
                } else {
                    key
                },
                message,
            }
        })?;
        profile
            .validate()
            .map_err(|(key, message)| LoadgenError::Profile {
                origin: origin.to_string(),
                key,
                message,
            })?;
        Ok(profile)
    }

    /// Checks value ranges; the error is (key path, message).
    fn validate(&self) -> Result<(), (String, String)> {
        fn named(key: &'static str) -> impl Fn(String) -> (String, String) {
            move |m| (key.to_string(), m)
        }
        if let Some(v) = self.rate_dps {
            check::rate(v).map_err(named("rate_dps"))?;
        }
        if let Some(v) = self.duration_secs {
            check::duration(v).map_err(named("duration_secs"))?;
        }
        if let Some(v) = self.batch_size {
            check::batch_size(v).map_err(named("batch_size"))?;
        }
        if let Some(v) = self.connections {
            check::connections(v).map_err(named("connections"))?;
        }
        if let Some(v) = self.series.count {
            check::series(v).map_err(named("series.count"))?;
        }
        if let Some(v) = self.series.attributes {
            check::attributes(v).map_err(named("series.attributes"))?;
        }
        if let Some(id) = &self.series.id_attribute {
            check::id_attribute(id).map_err(named("series.id_attribute"))?;
        }
        if let Some(d) = self.series.decimals {
            check::decimals(d).map_err(named("series.decimals"))?;
        }
        if let (Some(churn), Some(attrs)) = (self.series.churn_per_sec, self.series.attributes) {
            check::churn(churn, attrs).map_err(named("series.churn_per_sec"))?;
        }
        if let Some(m) = self.mix {
            if Mix::from(m).total() == 0 {
                return Err(("mix".into(), "at least one weight must be above 0".into()));
            }
        }
        for (i, p) in self.phases.iter().enumerate() {
            check::duration(p.duration_secs)
                .map_err(|m| (format!("phases[{i}].duration_secs"), m))?;
            if !p.rate_factor.is_finite() || p.rate_factor < 0.0 {
                return Err((
                    format!("phases[{i}].rate_factor"),
                    format!("must be a number >= 0, got {}", p.rate_factor),
                ));
            }
        }
        if !self.phases.is_empty() && self.phases.iter().all(|p| p.rate_factor == 0.0) {
            return Err(("phases".into(), "every phase has rate_factor 0".into()));
        }
        Ok(())
    }

    /// The phases with default names filled in.
    pub fn phases(&self) -> Vec<Phase> {
        self.phases
            .iter()
            .enumerate()
            .map(|(i, p)| Phase {
                name: p.name.clone().unwrap_or_else(|| format!("phase{}", i + 1)),
                duration_secs: p.duration_secs,
                rate_factor: p.rate_factor,
            })
            .collect()
    }
}

/// Range checks shared by profiles and flags; they return the message only.
pub(crate) mod check {
    /// Largest accepted rate (datapoints/s).
    const MAX_RATE: f64 = 1e9;
    /// Longest accepted run: one week.
    const MAX_DURATION_SECS: f64 = 7.0 * 86_400.0;

    pub(crate) fn rate(v: f64) -> Result<(), String> {
        if v.is_finite() && v > 0.0 && v <= MAX_RATE {
            Ok(())
        } else {
            Err(format!("must be above 0 and at most {MAX_RATE:e}, got {v}"))
        }
    }

    pub(crate) fn duration(v: f64) -> Result<(), String> {
        if v.is_finite() && (0.001..=MAX_DURATION_SECS).contains(&v) {
            Ok(())
        } else {
            Err(format!(
                "must be between 0.001 and {MAX_DURATION_SECS} seconds, got {v}"
            ))
        }
    }

    pub(crate) fn batch_size(v: usize) -> Result<(), String> {
        in_range(v as u64, 1, 1_000_000)
    }

    pub(crate) fn connections(v: usize) -> Result<(), String> {
        in_range(v as u64, 1, 1024)
    }

    pub(crate) fn series(v: u64) -> Result<(), String> {
        in_range(v, 1, 100_000_000)
    }

    pub(crate) fn attributes(v: usize) -> Result<(), String> {
        in_range(v as u64, 0, 64)
    }

    pub(crate) fn id_attribute(v: &str) -> Result<(), String> {
        if v.trim().is_empty() {
            Err("must not be empty".into())
        } else {
            Ok(())
        }
    }

    pub(crate) fn churn(churn: u64, attributes: usize) -> Result<(), String> {
        if churn > 0 && attributes == 0 {
            Err("churn needs at least 1 attribute (the id label)".into())
        } else {
            Ok(())
        }
    }

    pub(crate) fn decimals(v: u32) -> Result<(), String> {
        in_range(u64::from(v), 0, 9)
    }

    fn in_range(v: u64, lo: u64, hi: u64) -> Result<(), String> {
        if (lo..=hi).contains(&v) {
            Ok(())
        } else {
            Err(format!("must be between {lo} and {hi}, got {v}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every built-in profile parses and validates.
    #[test]
    fn builtins_parse() {
        for (name, text) in BUILTIN {
            Profile::parse(text, name).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    /// Unknown keys are refused with their path, bad values with their key.
    #[test]
    fn errors_name_the_key() {
        let e = Profile::parse("series:\n  count: 10\n  churn: 5\n", "t").expect_err("bad key");
        let msg = e.to_string();
        assert!(msg.contains("series") && msg.contains("churn"), "{msg}");
        let e = Profile::parse("rate_dps: -3\n", "t").expect_err("bad value");
        assert!(e.to_string().contains("rate_dps"), "{e}");
        let e = Profile::parse("phases:\n  - duration_secs: 0\n", "t").expect_err("bad phase");
        assert!(e.to_string().contains("phases[0].duration_secs"), "{e}");
        let e = Profile::parse("series:\n  attributes: 0\n  churn_per_sec: 5\n", "t")
            .expect_err("churn without id");
        assert!(e.to_string().contains("series.churn_per_sec"), "{e}");
    }

    /// A missing profile lists where it was looked for.
    #[test]
    fn missing_profile() {
        let e = Profile::load("no-such-profile").expect_err("missing");
        assert!(
            e.to_string()
                .contains("configs/loadgen/no-such-profile.yaml"),
            "{e}"
        );
        assert_eq!(e.exit_code(), 1);
    }
}
