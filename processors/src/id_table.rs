//! A hash table for keys that carry a series id (already a hash): one array of cells, probed
//! linearly.
//!
//! With 100k series the per-row lookups of the rollup and the cardinality cap miss the cache.
//! hashbrown keeps its control bytes apart from its entries, so a lookup misses twice (the
//! control group, then the entry it points to); here a probe reads the cell itself, and its
//! neighbours share its cache line.

/// A key with a well-mixed 64-bit id (the `series_id`).
pub(crate) trait IdKey: Copy + Eq {
    /// The id the cell is placed by.
    fn id(&self) -> u64;
}

impl IdKey for u64 {
    #[inline]
    fn id(&self) -> u64 {
        *self
    }
}

/// Map from `K` to `V` in one open-addressing array (linear probing, backward-shift removal).
#[derive(Debug, Clone)]
pub(crate) struct IdTable<K, V> {
    /// Empty or a power of two long.
    cells: Vec<Option<(K, V)>>,
    len: usize,
}

impl<K, V> Default for IdTable<K, V> {
    fn default() -> Self {
        IdTable {
            cells: Vec::new(),
            len: 0,
        }
    }
}

impl<K: IdKey, V> IdTable<K, V> {
    /// Smallest table allocated.
    const MIN_CELLS: usize = 16;

    /// Entries held.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Home cell of `id` in a table of `len` cells (a power of two).
    #[inline]
    fn home(id: u64, len: usize) -> usize {
        // Fibonacci hashing: ids are hashes already, the multiply guards against weak ones.
        let bits = len.trailing_zeros();
        (id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits)) as usize
    }

    /// The cell holding `key`.
    #[inline]
    fn find(&self, key: &K) -> Option<usize> {
        if self.cells.is_empty() {
            return None;
        }
        let mask = self.cells.len() - 1;
        let mut i = Self::home(key.id(), self.cells.len());
        loop {
            match &self.cells[i] {
                Some((k, _)) if k == key => return Some(i),
                Some(_) => i = (i + 1) & mask,
                None => return None,
            }
        }
    }

    /// The value of `key`.
    #[inline]
    pub(crate) fn get(&self, key: &K) -> Option<&V> {
        let i = self.find(key)?;
        self.cells[i].as_ref().map(|(_, v)| v)
    }

    /// The value of `key`, mutably.
    #[inline]
    pub(crate) fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let i = self.find(key)?;
        self.cells[i].as_mut().map(|(_, v)| v)
    }

    /// Sets `key` to `value`; returns the value it replaced.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        // At most 4/5 full: probe runs stay a few cells long.
        if (self.len + 1) * 5 > self.cells.len() * 4 {
            self.grow();
        }
        let mask = self.cells.len() - 1;
        let mut i = Self::home(key.id(), self.cells.len());
        loop {
            match &mut self.cells[i] {
                Some((k, v)) if *k == key => return Some(std::mem::replace(v, value)),
                Some(_) => i = (i + 1) & mask,
                cell @ None => {
                    *cell = Some((key, value));
                    self.len += 1;
                    return None;
                }
            }
        }
    }

    /// Removes `key`; returns its value.
    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        let mut hole = self.find(key)?;
        let (_, value) = self.cells[hole].take()?;
        self.len -= 1;
        // Backward shift: later cells of the run move into the hole unless that would put
        // them before their home, so lookups never meet a gap inside a run.
        let len = self.cells.len();
        let mask = len - 1;
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let home = match &self.cells[j] {
                Some((k, _)) => Self::home(k.id(), len),
                None => break,
            };
            if (j.wrapping_sub(home) & mask) >= (j.wrapping_sub(hole) & mask) {
                self.cells[hole] = self.cells[j].take();
                hole = j;
            }
        }
        Some(value)
    }

    /// Keeps the entries for which `keep` returns true.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        let cells = std::mem::take(&mut self.cells);
        let capacity = cells.len();
        self.len = 0;
        self.cells.resize_with(capacity, || None);
        for (k, mut v) in cells.into_iter().flatten() {
            if keep(&k, &mut v) {
                self.place(k, v);
            }
        }
    }

    /// Removes every entry, keeping the allocation.
    pub(crate) fn clear(&mut self) {
        self.cells.iter_mut().for_each(|c| *c = None);
        self.len = 0;
    }

    /// Puts an entry known to be absent into a table with room.
    fn place(&mut self, key: K, value: V) {
        let mask = self.cells.len() - 1;
        let mut i = Self::home(key.id(), self.cells.len());
        while self.cells[i].is_some() {
            i = (i + 1) & mask;
        }
        self.cells[i] = Some((key, value));
        self.len += 1;
    }

    /// Doubles the table (or allocates the first one) and re-places every entry.
    fn grow(&mut self) {
        let len = (self.cells.len() * 2).max(Self::MIN_CELLS);
        let mut cells = Vec::with_capacity(len);
        cells.resize_with(len, || None);
        let old = std::mem::replace(&mut self.cells, cells);
        self.len = 0;
        for (k, v) in old.into_iter().flatten() {
            self.place(k, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// A key whose id collides on purpose (`n % 7`), so long runs form and wrap around.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    struct Weak(u64);

    impl IdKey for Weak {
        fn id(&self) -> u64 {
            self.0 % 7
        }
    }

    /// Random inserts, replacements, removals and retains give the same answers as a
    /// `HashMap`, with well-mixed ids and with ids that collide in long runs.
    #[test]
    fn matches_a_hash_map() {
        fn run<K: IdKey + std::hash::Hash + std::fmt::Debug>(key: impl Fn(u64) -> K) {
            let mut table: IdTable<K, u64> = IdTable::default();
            let mut model: HashMap<K, u64> = HashMap::new();
            let mut x = 0x2545_f491_4f6c_dd1d_u64;
            for step in 0..20_000_u64 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let k = key(x % 500);
                match x % 10 {
                    0..=5 => assert_eq!(table.insert(k, step), model.insert(k, step)),
                    6..=8 => assert_eq!(table.remove(&k), model.remove(&k)),
                    _ if step % 1000 == 9 => {
                        table.retain(|_, v| *v % 3 != 0);
                        model.retain(|_, v| *v % 3 != 0);
                    }
                    _ => {}
                }
                assert_eq!(table.get(&k), model.get(&k), "step {step}");
                assert_eq!(table.len(), model.len());
            }
            for (k, v) in &model {
                assert_eq!(table.get(k), Some(v));
            }
            for n in 500..600 {
                assert_eq!(table.get(&key(n)), None);
            }
            table.clear();
            assert_eq!(table.len(), 0);
            assert!(model.keys().all(|k| table.get(k).is_none()));
        }
        run(|n| n.wrapping_mul(0xD6E8_FEB8_6659_FD93));
        run(Weak);
    }

    /// `get_mut` changes the stored value in place.
    #[test]
    fn get_mut_updates() {
        let mut table: IdTable<u64, i64> = IdTable::default();
        table.insert(42, 1);
        if let Some(v) = table.get_mut(&42) {
            *v += 10;
        }
        assert_eq!(table.get(&42), Some(&11));
        assert_eq!(table.get_mut(&43), None);
    }
}
