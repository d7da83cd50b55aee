//! Sparse indexes of one segment, kept in memory and saved beside it in Kafka's formats:
//! `.index` maps relative offset (u32) → file position (u32), `.timeindex` maps
//! timestamp (i64) → relative offset (u32). Both big-endian, entries strictly increasing.
//! Pure code: no I/O here.

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct OffsetIndex {
    entries: Vec<(u32, u32)>,
}

impl OffsetIndex {
    pub fn push(&mut self, relative_offset: u32, position: u32) {
        if let Some(&(o, p)) = self.entries.last() {
            if relative_offset <= o || position <= p {
                return;
            }
        }
        self.entries.push((relative_offset, position));
    }

    /// The position of the last indexed batch whose relative offset is <= `relative_offset`,
    /// or 0: the place to start scanning for that offset.
    pub fn lookup(&self, relative_offset: u32) -> u32 {
        let i = self.entries.partition_point(|&(o, _)| o <= relative_offset);
        if i == 0 {
            0
        } else {
            self.entries[i - 1].1
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Drops entries at or past `position` (after a truncation).
    pub fn truncate_to_position(&mut self, position: u32) {
        self.entries.retain(|&(_, p)| p < position);
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len() * 8);
        for &(o, p) in &self.entries {
            out.extend_from_slice(&o.to_be_bytes());
            out.extend_from_slice(&p.to_be_bytes());
        }
        out
    }

    /// Decodes an index file; `None` if it is malformed (then it is rebuilt by a scan).
    /// Entries pointing at or past `segment_bytes` are invalid.
    pub fn decode(buf: &[u8], segment_bytes: u64) -> Option<OffsetIndex> {
        if buf.len() % 8 != 0 {
            return None;
        }
        let mut idx = OffsetIndex::default();
        for c in buf.chunks_exact(8) {
            let o = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
            let p = u32::from_be_bytes([c[4], c[5], c[6], c[7]]);
            if p as u64 >= segment_bytes {
                return None;
            }
            if let Some(&(lo, lp)) = idx.entries.last() {
                if o <= lo || p <= lp {
                    return None;
                }
            }
            idx.entries.push((o, p));
        }
        Some(idx)
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TimeIndex {
    entries: Vec<(i64, u32)>,
}

impl TimeIndex {
    /// Records that the batch ending at `relative_offset` has max timestamp `timestamp`;
    /// only strictly increasing timestamps are kept (Kafka's rule).
    pub fn push(&mut self, timestamp: i64, relative_offset: u32) {
        if let Some(&(t, _)) = self.entries.last() {
            if timestamp <= t {
                return;
            }
        }
        self.entries.push((timestamp, relative_offset));
    }

    /// The relative offset of the last entry whose timestamp is < `timestamp` (a safe
    /// starting point for a scan looking for the first record with ts >= `timestamp`).
    pub fn lookup(&self, timestamp: i64) -> Option<u32> {
        let i = self.entries.partition_point(|&(t, _)| t < timestamp);
        if i == 0 {
            None
        } else {
            Some(self.entries[i - 1].1)
        }
    }

    /// The largest timestamp indexed, if any.
    pub fn max_timestamp(&self) -> Option<i64> {
        self.entries.last().map(|&(t, _)| t)
    }

    pub fn truncate_to_relative_offset(&mut self, relative_offset_exclusive: u32) {
        self.entries.retain(|&(_, o)| o < relative_offset_exclusive);
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len() * 12);
        for &(t, o) in &self.entries {
            out.extend_from_slice(&t.to_be_bytes());
            out.extend_from_slice(&o.to_be_bytes());
        }
        out
    }

    pub fn decode(buf: &[u8]) -> Option<TimeIndex> {
        if buf.len() % 12 != 0 {
            return None;
        }
        let mut idx = TimeIndex::default();
        for c in buf.chunks_exact(12) {
            let t = i64::from_be_bytes(c[..8].try_into().unwrap());
            let o = u32::from_be_bytes(c[8..].try_into().unwrap());
            if let Some(&(lt, lo)) = idx.entries.last() {
                if t <= lt || o < lo {
                    return None;
                }
            }
            idx.entries.push((t, o));
        }
        Some(idx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_index_lookup_and_roundtrip() {
        let mut idx = OffsetIndex::default();
        idx.push(0, 0);
        idx.push(10, 4096);
        idx.push(20, 8192);
        idx.push(15, 9000); // not increasing: ignored
        assert_eq!(idx.lookup(0), 0);
        assert_eq!(idx.lookup(9), 0);
        assert_eq!(idx.lookup(10), 4096);
        assert_eq!(idx.lookup(25), 8192);
        let enc = idx.encode();
        assert_eq!(OffsetIndex::decode(&enc, 10_000), Some(idx.clone()));
        assert_eq!(OffsetIndex::decode(&enc, 8000), None, "entry past the segment end");
        assert_eq!(OffsetIndex::decode(&enc[..7], 10_000), None);
        idx.truncate_to_position(4096);
        assert_eq!(idx.len(), 1);
    }

    #[test]
    fn time_index_lookup_and_roundtrip() {
        let mut t = TimeIndex::default();
        t.push(100, 0);
        t.push(200, 5);
        t.push(150, 7); // not increasing
        t.push(300, 9);
        assert_eq!(t.lookup(50), None);
        assert_eq!(t.lookup(100), None);
        assert_eq!(t.lookup(101), Some(0));
        assert_eq!(t.lookup(300), Some(5));
        assert_eq!(t.max_timestamp(), Some(300));
        assert_eq!(TimeIndex::decode(&t.encode()), Some(t));
    }
}
