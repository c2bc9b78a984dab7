//! Object paths of table files: Hive-style hour partitions and file names carrying the time
//! range of their rows.

use chrono::DateTime;
use object_store::path::Path;

/// Nanoseconds in one hour; partitions are whole UTC hours.
pub const HOUR_NANOS: i64 = 3_600_000_000_000;

/// Hour index (hours since the Unix epoch) of a timestamp in nanoseconds.
pub(crate) fn hour_of(time_ns: i64) -> i64 {
    time_ns.div_euclid(HOUR_NANOS)
}

/// `{table}/date=YYYY-MM-DD/hour=HH` of the partition holding hour index `hour`.
pub fn partition_prefix(table: &str, hour: i64) -> String {
    let secs = hour.saturating_mul(3600);
    match DateTime::from_timestamp(secs, 0) {
        Some(t) => format!("{table}/{}", t.format("date=%Y-%m-%d/hour=%H")),
        // Out of chrono's range only for absurd timestamps; keep them readable and separate.
        None => format!("{table}/date=invalid/hour={hour}"),
    }
}

/// Full path of a new file in `hour` holding rows with times in `[min_ns, max_ns]`.
///
/// The range is written clamped to non-negative values: a `-` sign would make the name
/// ambiguous, and points before 1970 do not occur in practice.
pub(crate) fn file_path(table: &str, hour: i64, min_ns: i64, max_ns: i64) -> Path {
    let id = uuid::Uuid::now_v7();
    Path::from(format!(
        "{}/{}-{}-{id}.parquet",
        partition_prefix(table, hour),
        min_ns.max(0),
        max_ns.max(0)
    ))
}

/// Suffix of the stem of files written by compaction (`{min}-{max}-{uuid}-c.parquet`); only
/// those can replace other files, so only their footers are read when listing.
const COMPACTED_SUFFIX: &str = "-c";

/// Full path of a new compacted file in `hour` whose inputs span `[min_ns, max_ns]`.
pub(crate) fn compacted_file_path(table: &str, hour: i64, min_ns: i64, max_ns: i64) -> Path {
    let id = uuid::Uuid::now_v7();
    Path::from(format!(
        "{}/{}-{}-{id}{COMPACTED_SUFFIX}.parquet",
        partition_prefix(table, hour),
        min_ns.max(0),
        max_ns.max(0)
    ))
}

/// Whether a table file was written by compaction.
pub(crate) fn is_compacted(path: &Path) -> bool {
    path.filename()
        .and_then(|n| n.strip_suffix(".parquet"))
        .is_some_and(|stem| stem.ends_with(COMPACTED_SUFFIX))
}

/// Time range `(min_ns, max_ns)` encoded in a file name `{min}-{max}-{uuid}.parquet` (or
/// `…-{uuid}-c.parquet` for compacted files), or `None` when the name is not one of ours.
pub fn parse_file_name(name: &str) -> Option<(i64, i64)> {
    let stem = name.strip_suffix(".parquet")?;
    let stem = stem.strip_suffix(COMPACTED_SUFFIX).unwrap_or(stem);
    let mut parts = stem.splitn(3, '-');
    let min: i64 = parts.next()?.parse().ok()?;
    let max: i64 = parts.next()?.parse().ok()?;
    uuid::Uuid::parse_str(parts.next()?).ok()?;
    (min >= 0 && min <= max).then_some((min, max))
}

/// Table name and time range of an object path `{table}/date=…/hour=…/{file}`, or `None` for
/// objects that do not follow the layout.
pub(crate) fn parse_object_path(path: &Path) -> Option<(String, i64, i64)> {
    let parts: Vec<_> = path.parts().collect();
    let [table, date, hour, file] = parts.as_slice() else {
        return None;
    };
    if !date.as_ref().starts_with("date=") || !hour.as_ref().starts_with("hour=") {
        return None;
    }
    let (min, max) = parse_file_name(file.as_ref())?;
    Some((table.as_ref().to_string(), min, max))
}

/// Whether `name` is a valid table name: `[a-z_][a-z0-9_]*`, at most 64 bytes.
pub(crate) fn valid_table_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z' | '_'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
        && name.len() <= 64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hour partitions use UTC date and hour; negative times round down.
    #[test]
    fn partition_names() {
        // 2026-11-21T14:30:00Z
        let t = 1_795_271_400_000_000_000_i64;
        assert_eq!(
            partition_prefix("metrics", hour_of(t)),
            "metrics/date=2026-11-21/hour=14"
        );
        assert_eq!(hour_of(-1), -1);
        assert_eq!(hour_of(HOUR_NANOS), 1);
    }

    /// A written file name parses back to its range; foreign names are rejected.
    #[test]
    fn file_names_round_trip() {
        let p = file_path("metrics", 5, 100, 200);
        let (table, min, max) = parse_object_path(&p).expect("our own path parses");
        assert_eq!((table.as_str(), min, max), ("metrics", 100, 200));
        assert_eq!(parse_file_name("foo.parquet"), None);
        assert_eq!(parse_file_name("1-2-notauuid.parquet"), None);
        assert_eq!(
            parse_file_name("3-2-0191e7a0-0000-7000-8000-000000000000.parquet"),
            None
        );
        assert!(parse_object_path(&Path::from("metrics/x.parquet")).is_none());
        let c = compacted_file_path("metrics", 5, 100, 200);
        assert!(is_compacted(&c) && !is_compacted(&p));
        assert_eq!(parse_object_path(&c).map(|x| (x.1, x.2)), Some((100, 200)));
    }

    /// Table names are restricted to SQL-friendly identifiers.
    #[test]
    fn table_names() {
        assert!(valid_table_name("metrics"));
        assert!(valid_table_name("rollup_1m"));
        assert!(!valid_table_name("Metrics"));
        assert!(!valid_table_name("1x"));
        assert!(!valid_table_name("a/b"));
        assert!(!valid_table_name(""));
    }
}
