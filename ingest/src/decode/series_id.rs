//! The `series_id` column: a stable 64-bit hash of metric name, resource and attributes.
//!
//! The recipe lives in [`phoenix_model::series_id`] (one implementation for the decoder and the
//! processors that recompute it); this module re-exports it where the decoder always found it.

pub use phoenix_model::series_id::{
    combine, name_hash, pair_hash, series_id, ATTRIBUTE_SEED, COMBINE_SEED, NAME_SEED,
    RESOURCE_SEED,
};

#[cfg(test)]
mod tests {
    use super::*;
    use xxhash_rust::xxh3::xxh3_64_with_seed;

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
