//! What a compaction pass keeps, on bytes in memory (no I/O here; `compaction` reads and
//! writes the segments): the map of the latest offset of each key, and the batches with
//! the superseded records and expired tombstones taken out.
//!
//! Uncompressed batches, what producers mostly send to compacted topics, are walked where
//! they lie (`record_walk`), never decoded: a batch that keeps all its records is copied
//! as it is, one that keeps some is rebuilt from the kept records' bytes under its own
//! header (same base and last offset, producer id, epoch and base sequence, as Kafka's
//! cleaner does). Compressed batches are decoded and re-encoded. Decoding every record
//! twice per pass was about a microsecond a record, on a core the clients need too.
//!
//! Like Kafka's cleaner (SkimpyOffsetMap, MD5), the map holds a 128-bit digest of each key,
//! not the key: 24 bytes an entry whatever the key's size, no allocation per key, and no
//! segment buffer kept alive by a key pointing into it. Two keys of a pass share a digest
//! with a probability of about n²/2¹²⁹ (10⁻²⁶ for a billion keys).
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions};
use siphasher::sip128::SipHasher13;

use crate::model::Offset;
use crate::protocol::batch::{BatchHeader, ATTR_CONTROL, ATTR_TRANSACTIONAL};
use crate::protocol::record_walk::{retain_records, walk_records, RecordRef};

/// The latest offset of each key seen, by the key's digest: SipHash-1-3 with 128-bit
/// output under a random key per map (a pass), so nobody can craft keys that collide.
pub struct KeyMap {
    sip: SipHasher13,
    latest: HashMap<u128, Offset, BuildHasherDefault<Prehashed>>,
}

impl Default for KeyMap {
    fn default() -> Self {
        let random = RandomState::new();
        let sip = SipHasher13::new_with_keys(random.hash_one(0u8), random.hash_one(1u8));
        Self { sip, latest: HashMap::default() }
    }
}

impl KeyMap {
    /// Keys mapped so far.
    pub fn len(&self) -> usize {
        self.latest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.latest.is_empty()
    }

    fn digest(&self, key: &[u8]) -> u128 {
        self.sip.hash(key).as_u128()
    }

    fn note(&mut self, key: &[u8], offset: Offset) {
        let digest = self.digest(key);
        let at = self.latest.entry(digest).or_insert(offset);
        *at = (*at).max(offset);
    }

    /// Whether the map has a later offset for `key` than `offset`.
    fn superseded(&self, key: &[u8], offset: Offset) -> bool {
        !self.latest.is_empty() && self.latest.get(&self.digest(key)).is_some_and(|&newest| newest > offset)
    }

    /// Adds the offset of every keyed record in `batches` (whole batches, in log order).
    /// Control batches (transaction markers) are not keyed data and stay out; so do
    /// transactional batches: a record of an aborted transaction must not supersede the
    /// committed one before it (Sluice keeps transactional data whole, where Kafka's
    /// cleaner removes aborted transactions first).
    pub fn add_batches(&mut self, batches: &[Bytes]) -> Result<(), String> {
        for b in batches {
            let Some(h) = BatchHeader::read(b) else { return Err("batch shorter than its header".into()) };
            if h.attributes.get() & (ATTR_CONTROL | ATTR_TRANSACTIONAL) != 0 {
                continue;
            }
            let base = Offset(h.base_offset.get());
            let walked = walk_records(b, |r| {
                if let Some(k) = r.key {
                    self.note(k, base + r.offset_delta);
                }
            });
            // Compressed or unwalkable: decode (noting a key twice at its offset is harmless).
            if walked.is_none() {
                let set = RecordBatchDecoder::decode(&mut b.clone()).map_err(|e| e.to_string())?;
                for r in set.records {
                    if let Some(k) = r.key {
                        self.note(&k, Offset(r.offset));
                    }
                }
            }
        }
        Ok(())
    }
}

/// The map's key is already a digest: its low 64 bits are the hash.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ b as u64;
        }
    }
    fn write_u128(&mut self, digest: u128) {
        self.0 = digest as u64;
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// Whether a record stays: unkeyed, or the latest of its key and not a tombstone past the
/// horizon (`expired`: its batch is older than `delete.retention.ms`).
fn keep(map: &KeyMap, key: Option<&[u8]>, null_value: bool, offset: Offset, expired: bool) -> bool {
    match key {
        None => true,
        Some(k) => !(map.superseded(k, offset) || null_value && expired),
    }
}

/// `batches` with every record dropped that `map` has a later offset for, or that is a
/// tombstone in a batch whose max timestamp is before `horizon`; a batch left empty goes
/// (its offsets become a gap). Returns the bytes and how many records went.
pub fn clean_batches(batches: &[Bytes], map: &KeyMap, horizon: i64) -> Result<(Vec<u8>, u64), String> {
    let mut out = Vec::with_capacity(batches.iter().map(|b| b.len()).sum());
    let mut removed = 0u64;
    let mut kept: Vec<RecordRef<'_>> = Vec::new();
    for b in batches {
        let Some(h) = BatchHeader::read(b) else { return Err("batch shorter than its header".into()) };
        // Markers and transactional data stay whole (see `add_batches`).
        if h.attributes.get() & (ATTR_CONTROL | ATTR_TRANSACTIONAL) != 0 {
            out.extend_from_slice(b);
            continue;
        }
        let (base, expired) = (Offset(h.base_offset.get()), h.max_timestamp.get() < horizon);
        kept.clear();
        let walked = walk_records(b, |r| {
            if keep(map, r.key, r.null_value, base + r.offset_delta, expired) {
                kept.push(r);
            }
        });
        let Some(total) = walked.map(|n| n as usize) else {
            removed += clean_decoded(b, map, expired, &mut out)?;
            continue;
        };
        removed += (total - kept.len()) as u64;
        if kept.len() == total {
            out.extend_from_slice(b);
        } else if !kept.is_empty() {
            retain_records(b, &kept, &mut out);
        }
    }
    Ok((out, removed))
}

/// `clean_batches` for one batch that cannot be walked (compressed): decoded, filtered,
/// re-encoded with its codec.
fn clean_decoded(b: &Bytes, map: &KeyMap, expired: bool, out: &mut Vec<u8>) -> Result<u64, String> {
    let set = RecordBatchDecoder::decode(&mut b.clone()).map_err(|e| e.to_string())?;
    let total = set.records.len();
    let kept: Vec<_> = set
        .records
        .into_iter()
        .filter(|r| keep(map, r.key.as_deref(), r.value.is_none(), Offset(r.offset), expired))
        .collect();
    if kept.len() == total {
        out.extend_from_slice(b);
    } else if !kept.is_empty() {
        let options = RecordEncodeOptions { version: set.version, compression: set.compression };
        let mut encoded = BytesMut::new();
        RecordBatchEncoder::encode(&mut encoded, kept.iter(), &options).map_err(|e| e.to_string())?;
        out.extend_from_slice(&encoded);
    }
    Ok((total - kept.len()) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::batch::{encode_batch, set_base_offset, validate};

    fn batch(base: i64, records: &[(Option<&[u8]>, Option<&[u8]>)], ts: i64) -> Bytes {
        let mut b = encode_batch(0, records, ts);
        set_base_offset(&mut b, base);
        Bytes::from(b)
    }

    fn compressed(base: i64, records: &[(Option<&[u8]>, Option<&[u8]>)], ts: i64) -> Bytes {
        let plain = batch(base, records, ts);
        let set = RecordBatchDecoder::decode(&mut plain.clone()).unwrap();
        let options = RecordEncodeOptions { version: 2, compression: kafka_protocol::records::Compression::Gzip };
        let mut out = BytesMut::new();
        RecordBatchEncoder::encode(&mut out, set.records.iter(), &options).unwrap();
        out.freeze()
    }

    /// (offset, key, value) of every record in `bytes`.
    fn records(bytes: &[u8]) -> Vec<(i64, Option<Bytes>, Option<Bytes>)> {
        let mut all = Bytes::copy_from_slice(bytes);
        let mut out = Vec::new();
        while !all.is_empty() {
            let n = validate(&all, usize::MAX).expect("valid batch").bytes;
            let set = RecordBatchDecoder::decode(&mut all.split_to(n)).unwrap();
            out.extend(set.records.into_iter().map(|r| (r.offset, r.key, r.value)));
        }
        out
    }

    fn kv(k: &'static [u8], v: Option<&'static [u8]>) -> (Option<&'static [u8]>, Option<&'static [u8]>) {
        (Some(k), v)
    }

    #[test]
    fn keeps_the_latest_record_per_key_in_walked_and_compressed_batches() {
        for pack in [batch, compressed] {
            let batches = vec![
                pack(0, &[kv(b"a", Some(b"a0")), kv(b"b", Some(b"b0")), (None, Some(b"n0"))], 10),
                pack(3, &[kv(b"a", Some(b"a1")), kv(b"c", Some(b"c1"))], 20),
                pack(5, &[kv(b"c", Some(b"c2")), kv(b"b", None)], 30),
            ];
            let mut map = KeyMap::default();
            map.add_batches(&batches).unwrap();
            assert_eq!(map.len(), 3);
            let (out, removed) = clean_batches(&batches, &map, 0).unwrap();
            assert_eq!(removed, 3);
            let want = vec![
                (2, None, Some(Bytes::from_static(b"n0"))),
                (3, Some(Bytes::from_static(b"a")), Some(Bytes::from_static(b"a1"))),
                (5, Some(Bytes::from_static(b"c")), Some(Bytes::from_static(b"c2"))),
                (6, Some(Bytes::from_static(b"b")), None),
            ];
            assert_eq!(records(&out), want);
            // The tombstone goes once its batch is older than the horizon.
            let (out, removed) = clean_batches(&batches, &map, 31).unwrap();
            assert_eq!(removed, 4);
            assert_eq!(records(&out), want[..3].to_vec());
        }
    }

    #[test]
    fn a_batch_that_keeps_everything_is_copied_and_an_emptied_one_goes() {
        let batches = vec![batch(0, &[kv(b"a", Some(b"1"))], 1), batch(1, &[kv(b"b", Some(b"2"))], 1)];
        let mut map = KeyMap::default();
        map.add_batches(&batches).unwrap();
        let (out, removed) = clean_batches(&batches, &map, 0).unwrap();
        assert_eq!((removed, out.len()), (0, batches[0].len() + batches[1].len()));
        assert_eq!(&out[..batches[0].len()], &batches[0][..]);
        let mut later = KeyMap::default();
        later.add_batches(&[batch(9, &[kv(b"a", Some(b"3"))], 1)]).unwrap();
        let (out, removed) = clean_batches(&batches, &later, 0).unwrap();
        assert_eq!((removed, &out[..]), (1, &batches[1][..]));
    }

    #[test]
    fn control_batches_are_neither_mapped_nor_cleaned() {
        let mut marker = encode_batch(0, &[kv(b"\0\0\0\0", Some(b"\0\0\0\0\0\0"))], 1);
        BatchHeader::read_mut(&mut marker).unwrap().attributes.set(ATTR_CONTROL);
        let batches = vec![Bytes::from(marker.clone()), {
            set_base_offset(&mut marker, 1);
            Bytes::from(marker)
        }];
        let mut map = KeyMap::default();
        map.add_batches(&batches).unwrap();
        assert!(map.is_empty());
        assert_eq!(clean_batches(&batches, &map, i64::MAX).unwrap().1, 0);
    }

    #[test]
    fn transactional_records_neither_supersede_nor_are_cleaned() {
        // A committed (plain) record for key k, then an aborted transaction's record for k:
        // the plain one must survive, and so must the transactional batch.
        let plain = batch(0, &[kv(b"k", Some(b"committed"))], 1);
        let mut txn = encode_batch(1, &[kv(b"k", Some(b"aborted"))], 1);
        crate::protocol::control::make_transactional(&mut txn, 7, 0);
        set_base_offset(&mut txn, 1);
        let batches = vec![plain.clone(), Bytes::from(txn)];
        let mut map = KeyMap::default();
        map.add_batches(&batches).unwrap();
        let (out, removed) = clean_batches(&batches, &map, i64::MIN).unwrap();
        assert_eq!(removed, 0);
        assert_eq!(out.len(), batches[0].len() + batches[1].len());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut b = batch(0, &[kv(b"a", Some(b"1"))], 1).to_vec();
        b.truncate(b.len() - 2);
        let b = vec![Bytes::from(b)];
        assert!(KeyMap::default().add_batches(&b).is_err());
        assert!(clean_batches(&b, &KeyMap::default(), 0).is_err());
        assert!(KeyMap::default().add_batches(&[Bytes::from_static(b"short")]).is_err());
    }
}
