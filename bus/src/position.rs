//! Edge positions of a partitioned consumer: one `u64` carrying a Kafka partition and offset,
//! increasing with the offset within a partition, so a per-partition graph can use them as its
//! ack tokens and storage can record how far each file goes per partition.

/// Bits of a position holding `offset + 1`; the bits above hold `partition + 1`.
const OFFSET_BITS: u32 = 44;
/// Mask of the offset bits.
const OFFSET_MASK: u64 = (1 << OFFSET_BITS) - 1;

/// The position of the message at `offset` of `partition`: `(partition + 1) << 44 | offset + 1`.
/// Zero is never a position, and positions of one partition increase with the offset.
pub fn position(partition: i32, offset: i64) -> u64 {
    let p = u64::from(partition.max(0) as u32) + 1;
    let next = (offset.max(0) as u64 + 1) & OFFSET_MASK;
    (p << OFFSET_BITS) | next
}

/// `(partition, next offset)` of a position made by [`position`]: committing "next offset"
/// to Kafka marks the message itself as done. `None` for values that are not positions.
pub fn split_position(position: u64) -> Option<(u32, u64)> {
    let p = position >> OFFSET_BITS;
    let next = position & OFFSET_MASK;
    (p > 0 && next > 0).then(|| ((p - 1) as u32, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Positions round-trip and order by offset within a partition.
    #[test]
    fn round_trip_and_order() {
        assert_eq!(split_position(position(0, 0)), Some((0, 1)));
        assert_eq!(split_position(position(11, 123_456)), Some((11, 123_457)));
        assert!(position(3, 5) < position(3, 6));
        assert_eq!(split_position(0), None);
        assert_eq!(split_position(7), None, "a plain token has no partition");
    }
}
