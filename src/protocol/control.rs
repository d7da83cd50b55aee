//! Transaction markers: the control batches a transaction coordinator has written to each
//! partition of a transaction (WriteTxnMarkers), in Kafka's format. One record, no value
//! beyond the marker's own: key = version (int16, 0) and type (int16: 0 ABORT, 1 COMMIT);
//! value = version (int16, 0) and the coordinator epoch (int32). The batch carries the
//! producer id and epoch, and the transactional and control attribute bits.
use super::batch::{
    compute_crc, put_varint, BatchHeader, ATTR_CONTROL, ATTR_TRANSACTIONAL, HEADER_BYTES, LOG_OVERHEAD,
};

/// A control batch ending a transaction of `producer_id`/`producer_epoch` (base offset 0:
/// the log assigns it).
pub fn marker_batch(producer_id: i64, producer_epoch: i16, coordinator_epoch: i32, commit: bool, ts: i64) -> Vec<u8> {
    let mut key = Vec::with_capacity(4);
    key.extend_from_slice(&0i16.to_be_bytes());
    key.extend_from_slice(&(commit as i16).to_be_bytes());
    let mut value = Vec::with_capacity(6);
    value.extend_from_slice(&0i16.to_be_bytes());
    value.extend_from_slice(&coordinator_epoch.to_be_bytes());
    let mut rec = vec![0u8]; // attributes
    put_varint(&mut rec, 0); // timestamp delta
    put_varint(&mut rec, 0); // offset delta
    put_varint(&mut rec, key.len() as i64);
    rec.extend_from_slice(&key);
    put_varint(&mut rec, value.len() as i64);
    rec.extend_from_slice(&value);
    put_varint(&mut rec, 0); // headers
    let mut b = vec![0u8; HEADER_BYTES];
    put_varint(&mut b, rec.len() as i64);
    b.extend_from_slice(&rec);
    let total = b.len();
    {
        let h = BatchHeader::read_mut(&mut b).expect("header-sized");
        h.batch_length.set((total - LOG_OVERHEAD) as i32);
        h.magic = 2;
        h.attributes.set(ATTR_TRANSACTIONAL | ATTR_CONTROL);
        h.base_timestamp.set(ts);
        h.max_timestamp.set(ts);
        h.producer_id.set(producer_id);
        h.producer_epoch.set(producer_epoch);
        h.base_sequence.set(-1);
        h.records_count.set(1);
    }
    let crc = compute_crc(&b);
    BatchHeader::read_mut(&mut b).expect("header-sized").crc.set(crc);
    b
}

/// Marks an encoded (uncompressed, offset-less) batch as part of a transaction of
/// `producer_id`/`producer_epoch`, with no sequence (a coordinator's own write, as Kafka's
/// TxnOffsetCommit appends are), and fixes its CRC.
pub fn make_transactional(batch: &mut [u8], producer_id: i64, producer_epoch: i16) {
    let h = BatchHeader::read_mut(batch).expect("a whole batch");
    h.attributes.set(h.attributes.get() | ATTR_TRANSACTIONAL);
    h.producer_id.set(producer_id);
    h.producer_epoch.set(producer_epoch);
    h.base_sequence.set(-1);
    let crc = compute_crc(batch);
    BatchHeader::read_mut(batch).expect("a whole batch").crc.set(crc);
}

/// Whether a (validated) batch is a control batch.
pub fn is_control(h: &BatchHeader) -> bool {
    h.attributes.get() & ATTR_CONTROL != 0
}

pub fn is_transactional(h: &BatchHeader) -> bool {
    h.attributes.get() & ATTR_TRANSACTIONAL != 0
}

/// A control batch's marker: `Some(true)` COMMIT, `Some(false)` ABORT, `None` for another
/// control type or records that do not parse (a control batch is never compressed).
pub fn marker_type(batch: &[u8]) -> Option<bool> {
    let h = BatchHeader::read(batch)?;
    if !is_control(h) || h.compression() != 0 || h.records_count.get() < 1 {
        return None;
    }
    let mut r = &batch[HEADER_BYTES..];
    let _len = varint(&mut r)?;
    r = r.get(1..)?; // attributes
    varint(&mut r)?; // timestamp delta
    varint(&mut r)?; // offset delta
    let key_len = varint(&mut r)?;
    if key_len < 4 {
        return None;
    }
    let key = r.get(..4)?;
    if i16::from_be_bytes([key[0], key[1]]) != 0 {
        return None;
    }
    match i16::from_be_bytes([key[2], key[3]]) {
        0 => Some(false),
        1 => Some(true),
        _ => None,
    }
}

/// A zigzag varint, as records carry them.
fn varint(r: &mut &[u8]) -> Option<i64> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = r.split_first()?;
        *r = rest;
        v |= ((b & 0x7f) as u64) << shift;
        if b & 0x80 == 0 {
            return Some((v >> 1) as i64 ^ -((v & 1) as i64));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::batch::validate;

    #[test]
    fn markers_are_valid_control_batches_kafka_clients_can_read() {
        for commit in [true, false] {
            let b = marker_batch(4000, 3, 7, commit, 1_700_000_000_000);
            validate(&b, usize::MAX).expect("a valid batch");
            let h = BatchHeader::read(&b).unwrap();
            assert!(is_control(h) && is_transactional(h));
            assert_eq!((h.producer_id.get(), h.producer_epoch.get()), (4000, 3));
            assert_eq!(marker_type(&b), Some(commit));
            // kafka-protocol's decoder (as a client would) sees one control record.
            let mut bytes = bytes::Bytes::from(b.clone());
            let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut bytes).unwrap();
            let rec = &set.records[0];
            assert!(rec.control && rec.transactional);
            assert_eq!(rec.key.as_deref(), Some(&[0, 0, 0, commit as u8][..]));
        }
        let data = crate::protocol::batch::build_batch(0, 1, 3, 0);
        assert_eq!(marker_type(&data), None, "not a control batch");
    }
}
