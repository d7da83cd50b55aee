//! The records of an uncompressed v2 batch, walked where they lie: each record's length,
//! timestamp and offset deltas, key and whether its value is null, read from the varints
//! without decoding the record into owned parts (no allocation, no copy). For the checks
//! and the log cleaner that look at every record but keep most of the bytes as they are.
use super::batch::{compute_crc, BatchHeader, ATTR_TIMESTAMP_TYPE_LOG_APPEND, HEADER_BYTES, LOG_OVERHEAD};

/// One record of an uncompressed batch, as it lies in the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// The whole record, its length varint included: what `retain_records` copies.
    pub raw: &'a [u8],
    pub timestamp_delta: i64,
    pub offset_delta: i64,
    pub key: Option<&'a [u8]>,
    pub null_value: bool,
}

/// Calls `each` with every record of one uncompressed batch, in order, and returns how many
/// there were. `None` for a compressed batch, or when a record does not parse or the records
/// do not fill the batch exactly; `each` may have been called for the records before that,
/// which the caller undoes (it then decodes the batch fully and reports what is wrong).
pub fn walk_records<'a>(batch: &'a [u8], mut each: impl FnMut(RecordRef<'a>)) -> Option<i32> {
    let h = BatchHeader::read(batch)?;
    if h.compression() != 0 || batch.len() < HEADER_BYTES {
        return None;
    }
    let count = h.records_count.get();
    let mut pos = HEADER_BYTES;
    for _ in 0..count {
        let start = pos;
        let len = usize::try_from(get_varint(batch, &mut pos)?).ok()?;
        let end = pos.checked_add(len).filter(|&e| e <= batch.len())?;
        let rec = &batch[..end];
        let mut at = pos + 1; // attributes
        let timestamp_delta = get_varint(rec, &mut at)?;
        let offset_delta = get_varint(rec, &mut at)?;
        let key = field(rec, &mut at)?;
        let null_value = field(rec, &mut at)?.is_none();
        each(RecordRef { raw: &batch[start..end], timestamp_delta, offset_delta, key, null_value });
        pos = end;
    }
    (pos == batch.len()).then_some(count)
}

/// A length-prefixed bytes field (key or value): `Some(None)` for null (length -1).
fn field<'a>(rec: &'a [u8], at: &mut usize) -> Option<Option<&'a [u8]>> {
    let len = get_varint(rec, at)?;
    if len < 0 {
        return Some(None);
    }
    let end = at.checked_add(usize::try_from(len).ok()?).filter(|&e| e <= rec.len())?;
    let bytes = &rec[*at..end];
    *at = end;
    Some(Some(bytes))
}

/// Appends to `out` a copy of uncompressed `batch` that holds only `kept` (records walked
/// from it, in order, at least one), copied byte for byte. The header stays as it was: the
/// base offset and last offset delta (so the batch still ends at the same offset and the
/// producer state rebuilt from the log keeps its last sequence, as Kafka's cleaner does),
/// the producer id, epoch and base sequence, the base timestamp the records' deltas count
/// from. The record count, length, max timestamp (but a LogAppendTime one) and CRC are
/// redone.
pub fn retain_records(batch: &[u8], kept: &[RecordRef<'_>], out: &mut Vec<u8>) {
    debug_assert!(!kept.is_empty(), "a batch holds at least one record");
    let start = out.len();
    out.extend_from_slice(&batch[..HEADER_BYTES]);
    for r in kept {
        out.extend_from_slice(r.raw);
    }
    let rebuilt = &mut out[start..];
    let len = rebuilt.len();
    let h = BatchHeader::read_mut(rebuilt).expect("header copied");
    h.batch_length.set((len - LOG_OVERHEAD) as i32);
    h.records_count.set(kept.len() as i32);
    if h.attributes.get() & ATTR_TIMESTAMP_TYPE_LOG_APPEND == 0 {
        let newest = kept.iter().map(|r| r.timestamp_delta).max().unwrap_or(0);
        h.max_timestamp.set(h.base_timestamp.get().saturating_add(newest));
    }
    let crc = compute_crc(rebuilt);
    BatchHeader::read_mut(rebuilt).expect("header copied").crc.set(crc);
}

/// Reads a zigzag varint (Kafka's varint and varlong) at `*pos`, moving `*pos` past it.
pub(crate) fn get_varint(buf: &[u8], pos: &mut usize) -> Option<i64> {
    let zigzag = |z: u64| (z >> 1) as i64 ^ -((z & 1) as i64);
    // Most of a record's varints (deltas, key and value lengths under 64) are one byte.
    let first = *buf.get(*pos)?;
    if first < 0x80 {
        *pos += 1;
        return Some(zigzag(first as u64));
    }
    let mut z: u64 = 0;
    for shift in (0..70).step_by(7) {
        let byte = *buf.get(*pos)?;
        *pos += 1;
        z |= ((byte & 0x7f) as u64) << shift;
        if byte < 0x80 {
            return Some(zigzag(z));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use kafka_protocol::records::{Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType};

    use super::*;
    use crate::protocol::batch::{encode_batch, validate};

    fn record(offset: i64, ts: i64, key: Option<&'static [u8]>, value: Option<&'static [u8]>) -> Record {
        Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: 77,
            producer_epoch: 3,
            timestamp_type: TimestampType::Creation,
            offset,
            sequence: 10 + offset as i32,
            timestamp: ts,
            key: key.map(bytes::Bytes::from_static),
            value: value.map(bytes::Bytes::from_static),
            headers: [(kafka_protocol::protocol::StrBytes::from_static_str("h"), None)].into_iter().collect(),
        }
    }

    fn encode(records: &[Record]) -> Vec<u8> {
        let mut out = BytesMut::new();
        let options = RecordEncodeOptions { version: 2, compression: kafka_protocol::records::Compression::None };
        RecordBatchEncoder::encode(&mut out, records.iter(), &options).unwrap();
        out.to_vec()
    }

    #[test]
    fn walks_keys_values_and_deltas_as_the_decoder_reads_them() {
        let records = vec![
            record(100, 5_000, Some(b"a"), Some(b"1")),
            record(101, 5_009, None, Some(b"2")),
            record(102, 4_990, Some(b""), None),
            record(103, 5_003, Some(&[7u8; 300]), Some(&[1u8; 200])),
        ];
        let b = encode(&records);
        assert_eq!(BatchHeader::read(&b).unwrap().base_timestamp.get(), 4_990, "the encoder's base: the earliest");
        let mut seen = Vec::new();
        assert_eq!(walk_records(&b, |r| seen.push(r)), Some(4));
        let got: Vec<_> = seen.iter().map(|r| (r.offset_delta, r.timestamp_delta, r.key, r.null_value)).collect();
        assert_eq!(
            got,
            vec![
                (0, 10, Some(&b"a"[..]), false),
                (1, 19, None, false),
                (2, 0, Some(&b""[..]), true),
                (3, 13, Some(&[7u8; 300][..]), false)
            ]
        );
        assert_eq!(seen.iter().map(|r| r.raw.len()).sum::<usize>(), b.len() - HEADER_BYTES);
        // Truncated, padded or compressed: not walked.
        assert_eq!(walk_records(&b[..b.len() - 1], |_| {}), None);
        let mut padded = b.clone();
        padded.push(0);
        assert_eq!(walk_records(&padded, |_| {}), None);
        let mut z = b.clone();
        BatchHeader::read_mut(&mut z).unwrap().attributes.set(1);
        assert_eq!(walk_records(&z, |_| {}), None);
    }

    #[test]
    fn a_retained_batch_keeps_offsets_producer_fields_and_the_last_offset() {
        let records = vec![
            record(100, 5_000, Some(b"a"), Some(b"1")),
            record(101, 5_009, Some(b"b"), Some(b"2")),
            record(102, 5_004, Some(b"c"), None),
            record(103, 5_001, Some(b"d"), Some(b"4")),
        ];
        let b = encode(&records);
        let mut all = Vec::new();
        walk_records(&b, |r| all.push(r)).unwrap();
        let mut out = vec![9u8; 3]; // appended after what is there
        retain_records(&b, &[all[0], all[2]], &mut out);
        let rebuilt = &out[3..];
        let info = validate(rebuilt, usize::MAX).expect("valid batch, CRC redone");
        assert_eq!((info.records, info.last_offset_delta, info.max_timestamp), (2, 3, 5_004));
        let h = BatchHeader::read(rebuilt).unwrap();
        assert_eq!((h.base_offset.get(), h.producer_id.get(), h.producer_epoch.get()), (100, 77, 3));
        assert_eq!((h.base_sequence.get(), h.last_offset(), h.base_timestamp.get()), (110, 103, 5_000));
        let set = RecordBatchDecoder::decode(&mut bytes::Bytes::copy_from_slice(rebuilt)).unwrap();
        let got: Vec<_> = set.records.iter().map(|r| (r.offset, r.timestamp, r.key.clone(), r.value.clone())).collect();
        let want: Vec<_> = [&records[0], &records[2]]
            .iter()
            .map(|r| (r.offset, r.timestamp, r.key.clone(), r.value.clone()))
            .collect();
        assert_eq!(got, want);
        assert_eq!(set.records[1].headers.len(), 1, "headers copied with the record");
    }

    #[test]
    fn a_log_append_time_batch_keeps_its_max_timestamp() {
        let mut b = encode_batch(0, &[(Some(b"a"), Some(b"1")), (Some(b"b"), Some(b"2"))], 1_000);
        crate::protocol::batch::set_log_append_time(&mut b, 9_999);
        let mut all = Vec::new();
        walk_records(&b, |r| all.push(r)).unwrap();
        let mut out = Vec::new();
        retain_records(&b, &all[1..], &mut out);
        assert_eq!(validate(&out, usize::MAX).unwrap().max_timestamp, 9_999);
    }
}
