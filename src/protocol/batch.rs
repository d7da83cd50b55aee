//! Kafka record batch v2 (magic 2): the 61-byte header as a big-endian `#[repr(C)]` struct
//! read and patched in place with zerocopy, validation of untrusted batches, and iteration
//! over the batches in a records buffer. Records themselves are never decoded here.
use zerocopy::byteorder::big_endian::{I16, I32, I64, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::record_walk::walk_records;
use crate::limits;

/// The record batch v2 header, exactly as on the wire and on disk.
#[derive(Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct BatchHeader {
    pub base_offset: I64,
    /// Bytes after this field (the whole batch is `batch_length + 12` bytes).
    pub batch_length: I32,
    pub partition_leader_epoch: I32,
    pub magic: i8,
    /// CRC32C of everything from `attributes` to the end of the batch.
    pub crc: U32,
    pub attributes: I16,
    pub last_offset_delta: I32,
    pub base_timestamp: I64,
    pub max_timestamp: I64,
    pub producer_id: I64,
    pub producer_epoch: I16,
    pub base_sequence: I32,
    pub records_count: I32,
}

pub const HEADER_BYTES: usize = 61;
/// Offset of the first CRC-covered byte (`attributes`).
pub const CRC_START: usize = 21;
/// Bytes before `batch_length`'s coverage starts (base offset + length field).
pub const LOG_OVERHEAD: usize = 12;
const _: () = assert!(std::mem::size_of::<BatchHeader>() == HEADER_BYTES);

/// Attribute bits.
pub const ATTR_COMPRESSION_MASK: i16 = 0x07;
pub const ATTR_TIMESTAMP_TYPE_LOG_APPEND: i16 = 0x08;
pub const ATTR_TRANSACTIONAL: i16 = 0x10;
pub const ATTR_CONTROL: i16 = 0x20;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum BatchError {
    #[error("batch truncated: need {need} bytes, have {have}")]
    Truncated { need: usize, have: usize },
    #[error("batch length {0} is out of range")]
    BadLength(i64),
    #[error("unsupported magic {0} (only record batch v2 is accepted)")]
    BadMagic(i8),
    #[error("CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    BadCrc { stored: u32, computed: u32 },
    #[error("records count {count} is inconsistent with last offset delta {last_offset_delta} or batch size")]
    BadCount { count: i32, last_offset_delta: i32 },
    #[error("batch of {size} bytes exceeds the limit of {max} bytes")]
    TooLarge { size: usize, max: usize },
    #[error("unknown compression codec {0}")]
    BadCodec(i16),
}

impl BatchHeader {
    pub fn read(buf: &[u8]) -> Option<&BatchHeader> {
        BatchHeader::ref_from_prefix(buf).ok().map(|(h, _)| h)
    }
    pub fn read_mut(buf: &mut [u8]) -> Option<&mut BatchHeader> {
        BatchHeader::mut_from_prefix(buf).ok().map(|(h, _)| h)
    }
    /// Total bytes of this batch on the wire.
    pub fn total_bytes(&self) -> i64 {
        self.batch_length.get() as i64 + LOG_OVERHEAD as i64
    }
    pub fn last_offset(&self) -> i64 {
        self.base_offset.get() + self.last_offset_delta.get() as i64
    }
    pub fn compression(&self) -> i16 {
        self.attributes.get() & ATTR_COMPRESSION_MASK
    }
}

/// What validation learned about one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchInfo {
    pub bytes: usize,
    pub records: i32,
    pub last_offset_delta: i32,
    pub max_timestamp: i64,
}

/// Reads the total size of the batch at the start of `buf` from its length field alone,
/// checking only that the length is sane; used to step through a buffer.
pub fn peek_batch_bytes(buf: &[u8]) -> Result<usize, BatchError> {
    if buf.len() < LOG_OVERHEAD {
        return Err(BatchError::Truncated { need: LOG_OVERHEAD, have: buf.len() });
    }
    let len = i32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]) as i64;
    if len < (HEADER_BYTES - LOG_OVERHEAD) as i64 {
        return Err(BatchError::BadLength(len));
    }
    Ok(len as usize + LOG_OVERHEAD)
}

pub fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(&batch[CRC_START..])
}

/// Fully validates the batch at the start of `buf` (size bound, magic, CRC, counts).
/// `max_bytes` is the topic's `max.message.bytes`.
pub fn validate(buf: &[u8], max_bytes: usize) -> Result<BatchInfo, BatchError> {
    let bytes = peek_batch_bytes(buf)?;
    if buf.len() < HEADER_BYTES {
        return Err(BatchError::Truncated { need: HEADER_BYTES, have: buf.len() });
    }
    let header = BatchHeader::read(buf).expect("length checked");
    if header.magic != 2 {
        return Err(BatchError::BadMagic(header.magic));
    }
    if bytes > max_bytes {
        return Err(BatchError::TooLarge { size: bytes, max: max_bytes });
    }
    if buf.len() < bytes {
        return Err(BatchError::Truncated { need: bytes, have: buf.len() });
    }
    let batch = &buf[..bytes];
    let computed = compute_crc(batch);
    if computed != header.crc.get() {
        return Err(BatchError::BadCrc { stored: header.crc.get(), computed });
    }
    let count = header.records_count.get();
    let delta = header.last_offset_delta.get();
    let codec = header.compression();
    if codec > 4 {
        return Err(BatchError::BadCodec(codec));
    }
    let body = bytes - HEADER_BYTES;
    let count_fits = if codec == 0 {
        (count as i64) * (limits::RECORD_BYTES_MIN as i64) <= body as i64
    } else {
        count <= limits::RECORDS_PER_BATCH_MAX
    };
    // Control batches and batches written after compaction may have delta >= count - 1;
    // a producer's batch always has delta == count - 1.
    if count < 1 || delta < count - 1 || !count_fits {
        return Err(BatchError::BadCount { count, last_offset_delta: delta });
    }
    Ok(BatchInfo { bytes, records: count, last_offset_delta: delta, max_timestamp: header.max_timestamp.get() })
}

/// Sets the base offset in place (not covered by the CRC).
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    let header = BatchHeader::read_mut(batch).expect("validated batch");
    header.base_offset.set(base_offset);
}

/// Stamps the leader epoch the batch is appended under (not covered by the CRC).
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) {
    let header = BatchHeader::read_mut(batch).expect("validated batch");
    header.partition_leader_epoch.set(epoch);
}

/// Marks the batch LogAppendTime with `now_ms` as its max timestamp and fixes the CRC,
/// as Kafka does for topics with `message.timestamp.type=LogAppendTime`.
pub fn set_log_append_time(batch: &mut [u8], now_ms: i64) {
    {
        let header = BatchHeader::read_mut(batch).expect("validated batch");
        let attrs = header.attributes.get() | ATTR_TIMESTAMP_TYPE_LOG_APPEND;
        header.attributes.set(attrs);
        header.max_timestamp.set(now_ms);
    }
    let crc = compute_crc(batch);
    BatchHeader::read_mut(batch).expect("validated batch").crc.set(crc);
}

/// Iterates over whole batches in a buffer, yielding `(position, batch bytes)`; stops at the
/// first incomplete or insane length (the caller decides whether that is an error).
pub struct BatchIter<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> BatchIter<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }
    /// Bytes consumed by the whole batches yielded so far.
    pub fn position(&self) -> usize {
        self.pos
    }
}

impl<'a> Iterator for BatchIter<'a> {
    type Item = (usize, &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        let rest = &self.buf[self.pos..];
        let bytes = peek_batch_bytes(rest).ok()?;
        if rest.len() < bytes || bytes < HEADER_BYTES {
            return None;
        }
        let at = self.pos;
        self.pos += bytes;
        Some((at, &rest[..bytes]))
    }
}

/// Builds a valid uncompressed batch of `n` records of `value_len` bytes each (no keys, no
/// headers), as a producer would send it: for tests, benchmarks and load generators.
pub fn build_batch(base_offset: i64, n: i32, value_len: usize, ts: i64) -> Vec<u8> {
    let value = vec![b'v'; value_len];
    let records: Vec<(Option<&[u8]>, Option<&[u8]>)> = (0..n).map(|_| (None, Some(value.as_slice()))).collect();
    encode_batch(base_offset, &records, ts)
}

/// Encodes an uncompressed batch of `(key, value)` records (no headers), all stamped `ts`.
pub fn encode_batch(base_offset: i64, records: &[(Option<&[u8]>, Option<&[u8]>)], ts: i64) -> Vec<u8> {
    assert!(!records.is_empty(), "a batch holds at least one record");
    let mut body = Vec::new();
    for (i, (key, value)) in records.iter().enumerate() {
        let mut rec = Vec::new();
        rec.push(0); // attributes
        put_varint(&mut rec, 0); // timestamp delta
        put_varint(&mut rec, i as i64); // offset delta
        for field in [key, value] {
            match field {
                Some(b) => {
                    put_varint(&mut rec, b.len() as i64);
                    rec.extend_from_slice(b);
                }
                None => put_varint(&mut rec, -1),
            }
        }
        put_varint(&mut rec, 0); // headers
        put_varint(&mut body, rec.len() as i64);
        body.extend(rec);
    }
    let n = records.len() as i32;
    let mut b = vec![0u8; HEADER_BYTES];
    b.extend(body);
    let total = b.len();
    {
        let h = BatchHeader::read_mut(&mut b).expect("header-sized");
        h.base_offset.set(base_offset);
        h.batch_length.set((total - LOG_OVERHEAD) as i32);
        h.magic = 2;
        h.last_offset_delta.set(n - 1);
        h.base_timestamp.set(ts);
        h.max_timestamp.set(ts);
        h.producer_id.set(-1);
        h.producer_epoch.set(-1);
        h.base_sequence.set(-1);
        h.records_count.set(n);
    }
    let crc = compute_crc(&b);
    BatchHeader::read_mut(&mut b).expect("header-sized").crc.set(crc);
    b
}

/// For one uncompressed batch: pushes onto `out` the index (`first_index` + position in the
/// batch) of every record with a null key, and returns how many records it holds. Walks
/// the records' varints only (`record_walk`): no decoding, no allocation unless a record
/// has no key. `None` for a compressed batch or records that do not parse (the caller then
/// decodes the batch fully and reports what is wrong).
pub fn null_key_records(batch: &[u8], first_index: i32, out: &mut Vec<i32>) -> Option<i32> {
    let before = out.len();
    let mut index = first_index;
    let walked = walk_records(batch, |r| {
        if r.key.is_none() {
            out.push(index);
        }
        index += 1;
    });
    if walked.is_none() {
        out.truncate(before);
    }
    walked
}

pub fn put_varint(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    loop {
        if z < 0x80 {
            out.push(z as u8);
            return;
        }
        out.push((z as u8 & 0x7f) | 0x80);
        z >>= 7;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    pub use super::build_batch as make_batch;
    use super::*;
    use crate::protocol::record_walk::get_varint;

    #[test]
    fn null_keys_are_found_without_decoding() {
        let recs: Vec<(Option<&[u8]>, Option<&[u8]>)> = vec![
            (Some(b"a"), Some(b"1")),
            (None, Some(b"2")),
            (Some(b""), None),
            (None, None),
            (Some(&[7u8; 300][..]), Some(&[1u8; 200][..])),
        ];
        let b = encode_batch(0, &recs, 1);
        let mut out = Vec::new();
        assert_eq!(null_key_records(&b, 10, &mut out), Some(5));
        assert_eq!(out, vec![11, 13]);
        // Truncated or compressed: not walked, and nothing reported.
        let mut out = vec![99];
        assert_eq!(null_key_records(&b[..b.len() - 1], 0, &mut out), None);
        assert_eq!(out, vec![99]);
        let mut z = b.clone();
        BatchHeader::read_mut(&mut z).unwrap().attributes.set(1);
        assert_eq!(null_key_records(&z, 0, &mut Vec::new()), None);
        let mut v = Vec::new();
        for x in [0i64, 1, -1, 63, -64, 64, 300, -300, i32::MAX as i64, i64::MIN, i64::MAX] {
            v.clear();
            put_varint(&mut v, x);
            let mut pos = 0;
            assert_eq!(get_varint(&v, &mut pos), Some(x));
            assert_eq!(pos, v.len());
        }
    }

    #[test]
    fn valid_batch_passes_and_patches_keep_crc_valid() {
        let mut b = make_batch(0, 10, 100, 1_000);
        let info = validate(&b, 1 << 20).unwrap();
        assert_eq!(info.records, 10);
        assert_eq!(info.bytes, b.len());
        set_base_offset(&mut b, 12345);
        assert!(validate(&b, 1 << 20).is_ok(), "base offset is outside the CRC");
        assert_eq!(BatchHeader::read(&b).unwrap().last_offset(), 12354);
        set_log_append_time(&mut b, 99);
        validate(&b, 1 << 20).unwrap();
        let h = BatchHeader::read(&b).unwrap();
        assert_eq!(h.max_timestamp.get(), 99);
        assert_ne!(h.attributes.get() & ATTR_TIMESTAMP_TYPE_LOG_APPEND, 0);
    }

    #[test]
    fn rejects_bad_input() {
        let b = make_batch(0, 3, 10, 0);
        let mut corrupt = b.clone();
        *corrupt.last_mut().unwrap() ^= 0xff;
        assert!(matches!(validate(&corrupt, 1 << 20), Err(BatchError::BadCrc { .. })));
        assert!(matches!(validate(&b[..b.len() - 1], 1 << 20), Err(BatchError::Truncated { .. })));
        assert!(matches!(validate(&b, 10), Err(BatchError::TooLarge { .. })));
        let mut magic = b.clone();
        magic[16] = 1;
        assert!(matches!(validate(&magic, 1 << 20), Err(BatchError::BadMagic(1))));
        let mut huge = b.clone();
        BatchHeader::read_mut(&mut huge).unwrap().records_count.set(1_000_000_000);
        BatchHeader::read_mut(&mut huge).unwrap().last_offset_delta.set(999_999_999);
        let crc = compute_crc(&huge);
        BatchHeader::read_mut(&mut huge).unwrap().crc.set(crc);
        assert!(matches!(validate(&huge, 1 << 20), Err(BatchError::BadCount { .. })));
        let mut neg = b.clone();
        neg[8..12].copy_from_slice(&(-5i32).to_be_bytes());
        assert!(matches!(validate(&neg, 1 << 20), Err(BatchError::BadLength(-5))));
    }

    #[test]
    fn iterates_whole_batches_only() {
        let mut buf = make_batch(0, 2, 5, 0);
        let first = buf.len();
        buf.extend(make_batch(2, 3, 5, 0));
        buf.extend_from_slice(&[0u8; 30]);
        let mut it = BatchIter::new(&buf);
        assert_eq!(it.next().unwrap().0, 0);
        assert_eq!(it.next().unwrap().0, first);
        assert!(it.next().is_none());
    }
}
