//! Recomputes the `series_id` and `service` columns after a processor edited the maps, with
//! the one recipe of [`phoenix_model::series_id`] the ingest decoder uses.

use arrow::array::{Array, StringArray, StringBuilder, UInt64Array};
use phoenix_model::series_id::{combine, name_hash, pair_hash, ATTRIBUTE_SEED, RESOURCE_SEED};

use crate::columns::MapView;

/// Resource key whose value is the `service` column.
pub(crate) const SERVICE_NAME: &str = "service.name";

/// Step 3 of the recipe for one row: the wrapping sum of its entries' pair hashes.
#[inline]
fn map_sum(map: &MapView<'_>, row: usize, seed: u64) -> u64 {
    map.range(row).fold(0u64, |acc, i| {
        acc.wrapping_add(pair_hash(seed, map.key(i), map.value(i)))
    })
}

/// `series_id` of every row from its metric name, resource and attributes.
pub(crate) fn series_ids(
    metric: &StringArray,
    resource: &MapView<'_>,
    attributes: &MapView<'_>,
) -> UInt64Array {
    let mut out = Vec::with_capacity(metric.len());
    // Decoded batches hold long runs of one metric: hash a name once per run.
    let mut last: Option<(&str, u64)> = None;
    for row in 0..metric.len() {
        let name = metric.value(row);
        let n = match last {
            Some((prev, h)) if prev == name => h,
            _ => {
                let h = name_hash(name);
                last = Some((name, h));
                h
            }
        };
        let r = map_sum(resource, row, RESOURCE_SEED);
        let a = map_sum(attributes, row, ATTRIBUTE_SEED);
        out.push(combine(n, r, a));
    }
    UInt64Array::from(out)
}

/// The `service` column from a resource map: the first `service.name` value, or "" when it is
/// absent or has no value (as the decoder does).
pub(crate) fn services(resource: &MapView<'_>, rows: usize) -> StringArray {
    let mut b = StringBuilder::with_capacity(rows, rows * 8);
    for row in 0..rows {
        b.append_value(resource.get(row, SERVICE_NAME).flatten().unwrap_or(""));
    }
    b.finish()
}
