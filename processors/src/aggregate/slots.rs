//! A map from output series slot to a window's accumulator, as a dense vector.
//!
//! Slots are small dense integers (the [`super::group::Groups`] slab), so indexing replaces
//! the hash probe a map needs per row: with 100k series the probe's cache miss was a large
//! share of the aggregator's time.

use serde::{Deserialize, Serialize};

/// Values by slot; absent slots are `None`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Slots<T> {
    items: Vec<Option<T>>,
    len: usize,
}

impl<T> Default for Slots<T> {
    fn default() -> Self {
        Slots {
            items: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Slots<T> {
    /// Values held.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The value of `slot`, inserted by `make` when absent.
    #[inline]
    pub(super) fn get_or_insert_with(&mut self, slot: u32, make: impl FnOnce() -> T) -> &mut T {
        let i = slot as usize;
        if i >= self.items.len() {
            // Slots grow as series are created, so amortised growth keeps this rare.
            self.items.resize_with(i + 1, || None);
        }
        let item = &mut self.items[i];
        if item.is_none() {
            self.len += 1;
        }
        item.get_or_insert_with(make)
    }

    /// The value of `slot`.
    #[inline]
    pub(super) fn get_mut(&mut self, slot: u32) -> Option<&mut T> {
        self.items.get_mut(slot as usize).and_then(Option::as_mut)
    }

    /// Every slot held.
    pub(super) fn keys(&self) -> impl Iterator<Item = u32> + '_ {
        self.items
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_some())
            // Slots come from u32 indices.
            .map(|(i, _)| i as u32)
    }

    /// Every `(slot, value)` held, by reference, in slot order.
    pub(super) fn pairs(&self) -> impl Iterator<Item = (u32, &T)> + '_ {
        self.items
            .iter()
            .enumerate()
            // Slots come from u32 indices.
            .filter_map(|(i, v)| v.as_ref().map(|v| (i as u32, v)))
    }

    /// Every `(slot, value)`, in slot order.
    pub(super) fn into_pairs(self) -> impl Iterator<Item = (u32, T)> {
        self.items
            .into_iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| (i as u32, v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inserting, finding and listing by slot; the count follows inserts only.
    #[test]
    fn dense_by_slot() {
        let mut s: Slots<u32> = Slots::default();
        *s.get_or_insert_with(5, || 1) += 10;
        *s.get_or_insert_with(5, || 100) += 1;
        s.get_or_insert_with(2, || 7);
        assert_eq!(s.len(), 2);
        assert_eq!(s.get_mut(5).copied(), Some(12));
        assert_eq!(s.get_mut(3), None);
        assert_eq!(s.get_mut(99), None);
        assert_eq!(s.keys().collect::<Vec<_>>(), [2, 5]);
        assert_eq!(s.pairs().map(|(_, v)| *v).sum::<u32>(), 19);
        assert_eq!(s.pairs().map(|(k, _)| k).collect::<Vec<_>>(), [2, 5]);
        assert_eq!(s.into_pairs().collect::<Vec<_>>(), [(2, 7), (5, 12)]);
    }
}
