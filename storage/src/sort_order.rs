//! The flush sort's permutation for the usual key shape: string keys replaced by their ranks and
//! packed into one u64, then the series id, then the time; ties keep input order.
//!
//! A flush holds many points of fewer series, each series' points mostly arriving in time order
//! (one per request). So rows are grouped by series with a hash map and a counting sort, only
//! the distinct series are sorted by key, and a series' points are sorted by time only when
//! they did not arrive in order: on a flush of 100k series × 5 points this costs a third of
//! sorting every row's (key, id, time, row) tuple.

use std::collections::HashMap;

use arrow::array::{Array, StringArray};
use rustc_hash::FxBuildHasher;

/// Row order by (`keys`, `ids`, `times`) with ties in input order: exactly what a stable
/// lexicographic sort by the three gives. All three have the same length, below `u32::MAX`.
pub(crate) fn series_time_order(keys: &[u64], ids: &[u64], times: &[i64]) -> Vec<u32> {
    let n = keys.len();
    // Dense series codes in order of first appearance.
    // Series ids are hashes already: FxHash, as the processors' series maps.
    // Sized for a few points per series (a flush at 1M dp/s holds ~5), so that growing the
    // map rarely rehashes it.
    let guess = n / 4;
    let mut code_of: HashMap<(u64, u64), u32, FxBuildHasher> =
        HashMap::with_capacity_and_hasher(guess, FxBuildHasher);
    let mut series: Vec<(u64, u64, u32)> = Vec::with_capacity(guess);
    let mut codes: Vec<u32> = Vec::with_capacity(n);
    let mut last: Option<((u64, u64), u32)> = None;
    for (&key, &id) in keys.iter().zip(ids) {
        let code = match last {
            Some((prev, code)) if prev == (key, id) => code,
            _ => *code_of.entry((key, id)).or_insert_with(|| {
                let code = series.len() as u32;
                series.push((key, id, code));
                code
            }),
        };
        last = Some(((key, id), code));
        codes.push(code);
    }
    drop(code_of);
    // Keys of distinct series are distinct, so an unstable sort is exact.
    series.sort_unstable();
    let mut rank = vec![0_u32; series.len()];
    for (r, &(_, _, code)) in series.iter().enumerate() {
        rank[code as usize] = r as u32;
    }
    // Counting sort by series rank: stable, so each series' rows stay in input order.
    let mut starts = vec![0_u32; series.len() + 1];
    for code in codes.iter_mut() {
        *code = rank[*code as usize];
        starts[*code as usize + 1] += 1;
    }
    for r in 0..series.len() {
        starts[r + 1] += starts[r];
    }
    let mut next = starts.clone();
    let mut order = vec![0_u32; n];
    for (row, &r) in codes.iter().enumerate() {
        let slot = &mut next[r as usize];
        order[*slot as usize] = row as u32;
        *slot += 1;
    }
    for w in starts.windows(2) {
        let rows = &mut order[w[0] as usize..w[1] as usize];
        let in_time_order = rows
            .windows(2)
            .all(|p| times[p[0] as usize] <= times[p[1] as usize]);
        if !in_time_order {
            // Rows are in input order already: a stable sort by time keeps ties that way.
            rows.sort_by_key(|&row| times[row as usize]);
        }
    }
    order
}

/// Each value's rank among the distinct values of non-null string arrays taken as one, in
/// byte order, and the number of distinct values.
pub(crate) fn string_ranks(arrays: &[&StringArray]) -> (Vec<u32>, usize) {
    let n = arrays.iter().map(|a| a.len()).sum();
    // A column with one value throughout (`kind` of a gauge-only flush) needs no lookups.
    let non_empty = || arrays.iter().filter(|a| !a.is_empty());
    let first = non_empty().next().map(|a| a.value(0));
    let constant = non_empty().all(|a| {
        a.null_count() == 0 && crate::take_rows::same_strings(a) && Some(a.value(0)) == first
    });
    if constant {
        return (vec![0; n], usize::from(n > 0));
    }
    // Strings come from clients: the keyed std hasher, so no input can force collisions; the
    // previous-row check below skips most lookups anyway.
    let mut codes_of: HashMap<&[u8], u32> = HashMap::new();
    let mut codes = Vec::with_capacity(n);
    // Rows come grouped by metric and service, so most rows repeat the previous value.
    let mut last: Option<(&[u8], u32)> = None;
    for values in arrays {
        let data = values.value_data();
        for w in values.value_offsets().windows(2) {
            let v = &data[w[0] as usize..w[1] as usize];
            let code = match last {
                Some((prev, code)) if prev == v => code,
                _ => {
                    let next = codes_of.len() as u32;
                    *codes_of.entry(v).or_insert(next)
                }
            };
            last = Some((v, code));
            codes.push(code);
        }
    }
    let mut distinct: Vec<(&[u8], u32)> = codes_of.into_iter().collect();
    distinct.sort_unstable();
    let mut rank = vec![0_u32; distinct.len()];
    for (r, (_, code)) in distinct.iter().enumerate() {
        rank[*code as usize] = r as u32;
    }
    for c in codes.iter_mut() {
        *c = rank[*c as usize];
    }
    (codes, distinct.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The order equals a stable sort by (key, id, time) on rows with many ties, series whose
    /// points arrive out of time order, and repeated (key, id, time) triples.
    #[test]
    fn equals_stable_sort() {
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let n = 20_000;
        let (mut keys, mut ids, mut times) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..n {
            let r = rnd();
            keys.push(r % 5);
            ids.push((r >> 8) % 300);
            // Mostly increasing, sometimes late or equal.
            times.push(if r % 7 == 0 {
                (r >> 20) as i64 % 50
            } else {
                i as i64 / 3
            });
        }
        let got = series_time_order(&keys, &ids, &times);
        let mut want: Vec<u32> = (0..n as u32).collect();
        want.sort_by_key(|&i| (keys[i as usize], ids[i as usize], times[i as usize]));
        assert_eq!(got, want);
    }

    /// Ranks follow byte order, repeated values share a rank, and the empty string ranks first.
    #[test]
    fn ranks_in_byte_order() {
        let values = StringArray::from(vec!["b", "a", "a", "", "ab", "b", "B", "é"]);
        let (ranks, distinct) = string_ranks(&[&values]);
        assert_eq!(distinct, 6);
        assert_eq!(ranks, [4, 2, 2, 0, 3, 4, 1, 5]);
    }
}
