//! A segment's aborted-transactions index (`<base>.txnindex`), in Kafka's layout: one
//! 34-byte entry per transaction aborted by a marker in that segment (version int16 0,
//! producer id int64, first offset, last offset, last stable offset), in marker order.
//! Written when the segment is finalized; recovery rebuilds the active segment's from its
//! markers.
use super::producer_state::AbortedTxn;
use crate::model::{Offset, ProducerId};

const ENTRY_BYTES: usize = 34;

pub fn encode(entries: &[AbortedTxn]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * ENTRY_BYTES);
    for e in entries {
        out.extend_from_slice(&0i16.to_be_bytes());
        out.extend_from_slice(&e.producer_id.0.to_be_bytes());
        out.extend_from_slice(&e.first_offset.0.to_be_bytes());
        out.extend_from_slice(&e.last_offset.0.to_be_bytes());
        out.extend_from_slice(&e.last_stable_offset.0.to_be_bytes());
    }
    out
}

/// The entries of a saved index; `None` if it is damaged (not whole entries, another
/// version, offsets out of order).
pub fn decode(bytes: &[u8]) -> Option<Vec<AbortedTxn>> {
    if bytes.len() % ENTRY_BYTES != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / ENTRY_BYTES);
    for e in bytes.chunks_exact(ENTRY_BYTES) {
        if i16::from_be_bytes([e[0], e[1]]) != 0 {
            return None;
        }
        let at = |i: usize| i64::from_be_bytes(e[i..i + 8].try_into().expect("8 bytes"));
        let entry = AbortedTxn {
            producer_id: ProducerId(at(2)),
            first_offset: Offset(at(10)),
            last_offset: Offset(at(18)),
            last_stable_offset: Offset(at(26)),
        };
        if entry.first_offset > entry.last_offset
            || out.last().is_some_and(|l: &AbortedTxn| l.last_offset >= entry.last_offset)
        {
            return None;
        }
        out.push(entry);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_damage_is_refused() {
        let a = |pid, first, last| AbortedTxn {
            producer_id: ProducerId(pid),
            first_offset: Offset(first),
            last_offset: Offset(last),
            last_stable_offset: Offset(last + 1),
        };
        let entries = vec![a(1, 0, 10), a(2, 5, 12)];
        let bytes = encode(&entries);
        assert_eq!(bytes.len(), 68);
        assert_eq!(decode(&bytes), Some(entries));
        assert_eq!(decode(&bytes[..40]), None);
        assert_eq!(decode(&encode(&[a(1, 0, 10), a(2, 0, 9)])), None, "out of marker order");
        assert_eq!(decode(&[]), Some(vec![]));
    }
}
