//! A bounded ring buffer that grows lazily up to its capacity.

/// The last `cap` values pushed, oldest first when iterated.
#[derive(Debug, Clone)]
pub(crate) struct Ring<T> {
    buf: Vec<T>,
    /// Index of the oldest value once the buffer is full (0 before).
    head: usize,
    cap: usize,
}

impl<T: Copy> Ring<T> {
    /// An empty ring holding at most `cap` values.
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            buf: Vec::new(),
            head: 0,
            cap,
        }
    }

    /// Appends `v`, dropping the oldest value when full.
    pub(crate) fn push(&mut self, v: T) {
        if self.buf.len() < self.cap {
            if self.buf.len() == self.buf.capacity() {
                // Grow by doubling but never past `cap`, so the heap size stays bounded exactly.
                let want = (self.buf.len() * 2).max(8).min(self.cap);
                self.buf.reserve_exact(want - self.buf.len());
            }
            self.buf.push(v);
        } else {
            self.buf[self.head] = v;
            self.head = (self.head + 1) % self.cap;
        }
    }

    /// Number of values held.
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    /// The values, oldest first, as two slices.
    pub(crate) fn as_slices(&self) -> (&[T], &[T]) {
        (&self.buf[self.head..], &self.buf[..self.head])
    }

    /// The values in storage order (not time order); for order-free statistics.
    pub(crate) fn raw(&self) -> &[T] {
        &self.buf
    }

    /// The values in storage order, mutable; for order-free updates.
    pub(crate) fn raw_mut(&mut self) -> &mut [T] {
        &mut self.buf
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.buf.capacity() * std::mem::size_of::<T>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scenario: push more than capacity. Guarantee: keeps the newest values in order, heap bounded.
    #[test]
    fn keeps_newest_in_order() {
        let mut r = Ring::new(5);
        for i in 0..12 {
            r.push(i);
        }
        let (a, b) = r.as_slices();
        let all: Vec<i32> = a.iter().chain(b).copied().collect();
        assert_eq!(all, vec![7, 8, 9, 10, 11]);
        assert_eq!(r.heap_bytes(), 5 * 4);
    }
}
