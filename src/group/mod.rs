//! Consumer groups (DESIGN §5): the classic group protocol as a state machine without I/O
//! (`coordinator`), and the `__consumer_offsets` record formats it persists (`records`).
//! The thin driver that feeds it requests, time and the log lives in `shard::groups`.
pub mod coordinator;
pub mod records;

pub use coordinator::{GroupCoordinator, GroupError, GroupState};

/// The internal topic holding commits and group metadata.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Kafka's placement of a group on a `__consumer_offsets` partition:
/// `abs(groupId.hashCode()) % partitions`, with Java's String.hashCode over UTF-16 units.
pub fn offsets_partition(group_id: &str, partitions: i32) -> i32 {
    let mut h: i32 = 0;
    for unit in group_id.encode_utf16() {
        h = h.wrapping_mul(31).wrapping_add(unit as i32);
    }
    // Kafka's Utils.abs maps i32::MIN to 0 (`n & 0x7fffffff`).
    (h & 0x7fff_ffff) % partitions.max(1)
}

#[cfg(test)]
mod tests {
    #[test]
    fn java_hash_placement() {
        // "hello".hashCode() == 99162322 in Java.
        assert_eq!(super::offsets_partition("hello", 50), 99162322 % 50);
        assert_eq!(super::offsets_partition("", 50), 0);
    }
}
