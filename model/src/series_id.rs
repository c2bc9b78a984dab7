//! The `series_id` column: a stable 64-bit hash of metric name, resource and attributes.
//!
//! One implementation for the whole workspace: the ingest decoder computes it while decoding,
//! processors recompute it after editing attributes or the resource.
//!
//! # Recipe (stable: other tools recompute it, so never change it)
//!
//! All hashes are XXH3-64 (`xxh3_64_with_seed`); integers are little-endian.
//!
//! 1. `name = xxh3(metric_name_utf8, NAME_SEED)`.
//! 2. For each attribute, with `v` its value rendered as in the `resource` / `attributes`
//!    columns (strings as is, other kinds as documented in `phoenix_ingest::decode::attributes`):
//!    `pair(seed, key, v) = xxh3(v_utf8, xxh3(key_utf8, seed))`; an attribute with no value
//!    (stored as a null map value) uses `xxh3(b"", !xxh3(key_utf8, seed))`.
//! 3. `resource = Σ pair(RESOURCE_SEED, k, v)` over the resource attributes and
//!    `attributes = Σ pair(ATTRIBUTE_SEED, k, v)` over the datapoint attributes, both sums
//!    wrapping modulo 2^64 (so attribute order does not matter, and 0 for no attributes).
//! 4. `series_id = xxh3(name ‖ resource ‖ attributes as 24 bytes LE, COMBINE_SEED)`.
//!
//! Seeds: `NAME_SEED = 0x5048_4e58_0000_0001`, `RESOURCE_SEED = 0x5048_4e58_0000_0002`,
//! `ATTRIBUTE_SEED = 0x5048_4e58_0000_0003`, `COMBINE_SEED = 0x5048_4e58_0000_0004`.

use xxhash_rust::xxh3::xxh3_64_with_seed;

/// Seed of the metric-name hash.
pub const NAME_SEED: u64 = 0x5048_4e58_0000_0001;
/// Seed of resource attribute pairs.
pub const RESOURCE_SEED: u64 = 0x5048_4e58_0000_0002;
/// Seed of datapoint attribute pairs.
pub const ATTRIBUTE_SEED: u64 = 0x5048_4e58_0000_0003;
/// Seed of the final combination.
pub const COMBINE_SEED: u64 = 0x5048_4e58_0000_0004;

/// Step 1: hash of the metric name.
#[inline]
pub fn name_hash(name: &str) -> u64 {
    xxh3_64_with_seed(name.as_bytes(), NAME_SEED)
}

/// Step 2: hash of one attribute; `value` is `None` for an attribute without a value.
#[inline]
pub fn pair_hash(seed: u64, key: &str, value: Option<&str>) -> u64 {
    let k = xxh3_64_with_seed(key.as_bytes(), seed);
    match value {
        Some(v) => xxh3_64_with_seed(v.as_bytes(), k),
        None => xxh3_64_with_seed(b"", !k),
    }
}

/// Step 4: combines the name hash with the resource and attribute sums of step 3.
#[inline]
pub fn combine(name: u64, resource: u64, attributes: u64) -> u64 {
    let mut buf = [0u8; 24];
    buf[..8].copy_from_slice(&name.to_le_bytes());
    buf[8..16].copy_from_slice(&resource.to_le_bytes());
    buf[16..].copy_from_slice(&attributes.to_le_bytes());
    xxh3_64_with_seed(&buf, COMBINE_SEED)
}

/// The whole recipe over already rendered `(key, value)` pairs, for tools outside the decoder.
pub fn series_id<'a>(
    metric: &str,
    resource: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    attributes: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> u64 {
    let sum = |seed: u64, it: &mut dyn Iterator<Item = (&'a str, Option<&'a str>)>| {
        it.fold(0u64, |acc, (k, v)| acc.wrapping_add(pair_hash(seed, k, v)))
    };
    let r = sum(RESOURCE_SEED, &mut resource.into_iter());
    let a = sum(ATTRIBUTE_SEED, &mut attributes.into_iter());
    combine(name_hash(metric), r, a)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixed input hashes to a pinned value, so an accidental recipe change fails here.
    #[test]
    fn pinned_value() {
        let id = series_id(
            "http.server.duration",
            [("service.name", Some("api")), ("host.name", Some("h1"))],
            [("http.route", Some("/users")), ("code", Some("200"))],
        );
        assert_eq!(id, PINNED);
        assert_eq!(series_id("m", [], []), PINNED_EMPTY);
        // The published XXH3-64 of empty input with seed 0: guards the hash implementation.
        assert_eq!(xxh3_64_with_seed(b"", 0), 0x2D06_8005_38D3_94C2);
    }

    const PINNED: u64 = 5902808705150896676;
    const PINNED_EMPTY: u64 = 10432527515806847446;

    /// Attribute order does not change the id; a different value, key side or name does.
    #[test]
    fn order_independent_value_sensitive() {
        let a = series_id(
            "m",
            [("r", Some("1"))],
            [("a", Some("x")), ("b", Some("y"))],
        );
        let b = series_id(
            "m",
            [("r", Some("1"))],
            [("b", Some("y")), ("a", Some("x"))],
        );
        assert_eq!(a, b);
        let c = series_id(
            "m",
            [("r", Some("1"))],
            [("a", Some("x")), ("b", Some("z"))],
        );
        assert_ne!(a, c);
        // the same pair on the resource side instead of the datapoint side
        let d = series_id(
            "m",
            [("r", Some("1")), ("a", Some("x"))],
            [("b", Some("y"))],
        );
        assert_ne!(a, d);
        assert_ne!(
            a,
            series_id(
                "n",
                [("r", Some("1"))],
                [("a", Some("x")), ("b", Some("y"))]
            )
        );
        // key/value boundary matters: ("ab","c") vs ("a","bc")
        assert_ne!(
            series_id("m", [], [("ab", Some("c"))]),
            series_id("m", [], [("a", Some("bc"))])
        );
        // a null value differs from an empty string
        assert_ne!(
            series_id("m", [], [("a", None)]),
            series_id("m", [], [("a", Some(""))])
        );
    }
}
