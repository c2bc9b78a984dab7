//! The `series_id` column: a stable 64-bit hash of metric name, resource and attributes.
//!
//! The recipe lives in [`phoenix_model::series_id`] (one implementation for the decoder and the
//! processors that recompute it); this module re-exports it where the decoder always found it.
//! Its tests, pinned values included, live with the recipe.

pub use phoenix_model::series_id::{
    combine, name_hash, pair_hash, series_id, ATTRIBUTE_SEED, COMBINE_SEED, NAME_SEED,
    RESOURCE_SEED,
};
