//! Resolved settings of a run: flags over profile over defaults, validated.

use std::time::Duration;

use crate::args::{Compression, LoadgenArgs, Protocol};
use crate::encode::Workload;
use crate::error::{LoadgenError, Result};
use crate::profile::{check, Profile};
use crate::schedule::{Phase, Timetable};
use crate::series::Mix;

/// Default target rate (datapoints/s).
pub const DEFAULT_RATE_DPS: f64 = 100_000.0;
/// Default active series.
pub const DEFAULT_SERIES: u64 = 10_000;
/// Default run length without phases.
pub const DEFAULT_DURATION_SECS: f64 = 10.0;
/// Default datapoints per request.
pub const DEFAULT_BATCH_SIZE: usize = 1000;
/// Default concurrent connections.
pub const DEFAULT_CONNECTIONS: usize = 8;
/// Default attributes per datapoint.
pub const DEFAULT_ATTRIBUTES: usize = 3;
/// Default id label name.
pub const DEFAULT_ID_ATTRIBUTE: &str = "series.id";

/// Everything a run needs, after merging flags, profile and defaults.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Full endpoint URL (for http including the path).
    pub endpoint: String,
    /// Transport.
    pub protocol: Protocol,
    /// Base target rate (phases scale it).
    pub rate_dps: f64,
    /// Run length.
    pub duration: Duration,
    /// Rate phases (empty: constant rate).
    pub phases: Vec<Phase>,
    /// The series set and request cut.
    pub workload: Workload,
    /// Body compression.
    pub compression: Compression,
    /// Retry retryable answers.
    pub retry: bool,
    /// Suppress the progress line.
    pub quiet: bool,
    /// Tokio worker threads for [`crate::run`].
    pub threads: usize,
    /// Where the profile came from, if any.
    pub profile: Option<String>,
}

impl Settings {
    /// Merges `args` over its `--profile` (if any) over the defaults and validates the result.
    ///
    /// # Errors
    /// User errors ([`LoadgenError::is_user_error`]) naming the bad flag or profile key.
    pub fn resolve(args: &LoadgenArgs) -> Result<Settings> {
        let (profile, origin) = match &args.profile {
            Some(name) => {
                let (p, origin) = Profile::load(name)?;
                (p, Some(origin))
            }
            None => (Profile::default(), None),
        };
        Self::merge(args, &profile, origin)
    }

    /// Merges `args` over `profile` over the defaults and validates the result.
    ///
    /// # Errors
    /// [`LoadgenError::Invalid`] naming the bad setting.
    pub fn merge(
        args: &LoadgenArgs,
        profile: &Profile,
        origin: Option<String>,
    ) -> Result<Settings> {
        let s = &profile.series;
        let protocol = args.protocol.or(profile.protocol).unwrap_or(Protocol::Grpc);
        let endpoint = endpoint_url(
            args.endpoint.as_deref().or(profile.endpoint.as_deref()),
            protocol,
        )?;
        let rate_dps = args.rate.or(profile.rate_dps).unwrap_or(DEFAULT_RATE_DPS);
        let phases = profile.phases();
        let phases_secs: f64 = phases.iter().map(|p| p.duration_secs).sum();
        let duration_secs =
            args.duration
                .or(profile.duration_secs)
                .unwrap_or(if phases.is_empty() {
                    DEFAULT_DURATION_SECS
                } else {
                    phases_secs
                });
        let workload = Workload {
            series: args.series.or(s.count).unwrap_or(DEFAULT_SERIES),
            attributes: args
                .attributes
                .or(s.attributes)
                .unwrap_or(DEFAULT_ATTRIBUTES),
            batch_size: args
                .batch_size
                .or(profile.batch_size)
                .unwrap_or(DEFAULT_BATCH_SIZE),
            connections: args
                .connections
                .or(profile.connections)
                .unwrap_or(DEFAULT_CONNECTIONS),
            mix: args.mix.or(profile.mix.map(Mix::from)).unwrap_or_default(),
            churn_per_sec: s.churn_per_sec.unwrap_or(0),
            id_attribute: s
                .id_attribute
                .clone()
                .unwrap_or_else(|| DEFAULT_ID_ATTRIBUTE.to_string()),
            seed: args.seed.or(profile.seed).unwrap_or(1),
            timestamps: args.timestamps.or(s.timestamps).unwrap_or_default(),
            decimals: args.decimals.or(s.decimals),
        };
        let w = &workload;
        let checks: [(&str, Result<(), String>); 9] = [
            ("rate_dps (--rate)", check::rate(rate_dps)),
            ("duration_secs (--duration)", check::duration(duration_secs)),
            ("series.count (--series)", check::series(w.series)),
            (
                "series.attributes (--attributes)",
                check::attributes(w.attributes),
            ),
            ("batch_size (--batch-size)", check::batch_size(w.batch_size)),
            (
                "connections (--connections)",
                check::connections(w.connections),
            ),
            (
                "series.decimals (--decimals)",
                w.decimals.map_or(Ok(()), check::decimals),
            ),
            (
                "series.churn_per_sec",
                check::churn(w.churn_per_sec, w.attributes),
            ),
            (
                "mix (--mix)",
                if w.mix.total() == 0 {
                    Err("at least one weight must be above 0".into())
                } else {
                    Ok(())
                },
            ),
        ];
        for (key, result) in checks {
            result.map_err(|m| LoadgenError::invalid(key, m))?;
        }
        let threads = match args.threads {
            Some(0) => return Err(LoadgenError::invalid("--threads", "must be at least 1")),
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, |n| n.get().min(2)),
        };
        Ok(Settings {
            endpoint,
            protocol,
            rate_dps,
            duration: Duration::try_from_secs_f64(duration_secs)
                .map_err(|e| LoadgenError::invalid("duration_secs (--duration)", e.to_string()))?,
            phases,
            workload,
            compression: args
                .compression
                .or(profile.compression)
                .unwrap_or(Compression::None),
            retry: !args.no_retry && (args.retry || profile.retry.unwrap_or(false)),
            quiet: args.quiet,
            threads,
            profile: origin,
        })
    }

    /// The open-loop timetable of this run.
    pub fn timetable(&self) -> Timetable {
        Timetable::new(self.rate_dps, self.duration.as_secs_f64(), &self.phases)
    }
}

/// Normalises the endpoint: default per protocol, `http://` added when there is no scheme,
/// `/v1/metrics` appended to an http URL without a path.
fn endpoint_url(given: Option<&str>, protocol: Protocol) -> Result<String> {
    let key = "endpoint (--endpoint)";
    let raw = match (given, protocol) {
        (Some(e), _) => e.trim().to_string(),
        (None, Protocol::Grpc) => "http://127.0.0.1:4317".to_string(),
        (None, Protocol::Http) => "http://127.0.0.1:4318".to_string(),
    };
    let with_scheme = if raw.contains("://") {
        raw
    } else {
        format!("http://{raw}")
    };
    let mut url = url::Url::parse(&with_scheme)
        .map_err(|e| LoadgenError::invalid(key, format!("{with_scheme:?} is not a URL: {e}")))?;
    if url.host_str().is_none() {
        return Err(LoadgenError::invalid(
            key,
            format!("{with_scheme:?} has no host"),
        ));
    }
    match (protocol, url.scheme()) {
        (Protocol::Grpc, "http") | (Protocol::Http, "http" | "https") => {}
        (Protocol::Grpc, other) => {
            return Err(LoadgenError::invalid(
                key,
                format!("scheme {other:?} is not supported for grpc (use http://)"),
            ))
        }
        (Protocol::Http, other) => {
            return Err(LoadgenError::invalid(
                key,
                format!("scheme {other:?} is not supported (use http:// or https://)"),
            ))
        }
    }
    if protocol == Protocol::Http && (url.path().is_empty() || url.path() == "/") {
        url.set_path("/v1/metrics");
    }
    let mut s = url.to_string();
    // Keep grpc URLs as typed (no trailing slash): tonic takes an authority-style URI.
    if protocol == Protocol::Grpc && url.path() == "/" {
        s.pop();
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Endpoints get their defaults, scheme and http path.
    #[test]
    fn endpoints() {
        assert_eq!(
            endpoint_url(None, Protocol::Grpc).expect("ok"),
            "http://127.0.0.1:4317"
        );
        assert_eq!(
            endpoint_url(None, Protocol::Http).expect("ok"),
            "http://127.0.0.1:4318/v1/metrics"
        );
        assert_eq!(
            endpoint_url(Some("localhost:9999"), Protocol::Http).expect("ok"),
            "http://localhost:9999/v1/metrics"
        );
        assert_eq!(
            endpoint_url(Some("http://h:1/otlp/v1/metrics"), Protocol::Http).expect("ok"),
            "http://h:1/otlp/v1/metrics"
        );
        assert!(endpoint_url(Some("https://h:1"), Protocol::Grpc).is_err());
        assert!(endpoint_url(Some("http://"), Protocol::Grpc).is_err());
    }

    /// Flags win over profile values, which win over defaults.
    #[test]
    fn flags_override_profile() {
        let profile = Profile::parse(
            "rate_dps: 500\nbatch_size: 50\nseries:\n  count: 70\nphases:\n  - {duration_secs: 2}\n  - {duration_secs: 3, rate_factor: 2}\n",
            "t",
        )
        .expect("profile");
        let args = LoadgenArgs {
            rate: Some(900.0),
            ..LoadgenArgs::default()
        };
        let s = Settings::merge(&args, &profile, None).expect("settings");
        assert_eq!(s.rate_dps, 900.0);
        assert_eq!(s.workload.batch_size, 50);
        assert_eq!(s.workload.series, 70);
        assert_eq!(s.workload.connections, DEFAULT_CONNECTIONS);
        assert_eq!(s.duration, Duration::from_secs(5));
        assert_eq!(s.phases.len(), 2);
        let bad = LoadgenArgs {
            connections: Some(0),
            ..LoadgenArgs::default()
        };
        let e = Settings::merge(&bad, &profile, None).expect_err("zero connections");
        assert!(e.to_string().contains("--connections"), "{e}");
        assert_eq!(e.exit_code(), 1);
    }
}
