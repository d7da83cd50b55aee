//! `__transaction_state` records in Kafka's formats: TransactionLogKey v0 (the
//! transactional id) and TransactionLogValue v0 (written) or v1 (read too: Kafka writes it
//! for transaction version 2 clients). A null value is a tombstone: the id expired.
use std::collections::BTreeSet;

use super::coordinator::{TxnMeta, TxnState};
use crate::protocol::internal::{Reader, Writer};

pub fn key(transactional_id: &str) -> Vec<u8> {
    let mut w = Writer(Vec::new());
    w.i16(0);
    w.str(transactional_id);
    w.0
}

pub fn parse_key(key: &[u8]) -> Option<String> {
    let mut r = Reader(key);
    match r.i16()? {
        0 => r.str(),
        _ => None,
    }
}

/// TransactionLogValue v0. Partitions are grouped by topic, in order.
pub fn value(m: &TxnMeta) -> Vec<u8> {
    let mut w = Writer(Vec::new());
    w.i16(0);
    w.i64(m.producer_id);
    w.i16(m.producer_epoch);
    w.i32(m.timeout_ms);
    w.0.push(m.state.code() as u8);
    let topics = by_topic(&m.partitions);
    w.i32(topics.len() as i32);
    for (topic, ids) in &topics {
        w.str(topic);
        w.i32(ids.len() as i32);
        for p in ids {
            w.i32(*p);
        }
    }
    w.i64(m.last_update_ms);
    w.i64(m.start_ms);
    w.0
}

fn by_topic(partitions: &BTreeSet<(String, i32)>) -> Vec<(&str, Vec<i32>)> {
    let mut out: Vec<(&str, Vec<i32>)> = Vec::new();
    for (t, p) in partitions {
        match out.last_mut() {
            Some((last, ids)) if *last == t.as_str() => ids.push(*p),
            _ => out.push((t, vec![*p])),
        }
    }
    out
}

/// A value back; `None` if it is not one this broker can read (a newer version, cut short).
pub fn parse_value(transactional_id: &str, value: &[u8]) -> Option<TxnMeta> {
    let mut r = Reader(value);
    let version = r.i16()?;
    let flexible = match version {
        0 => false,
        1 => true,
        _ => return None,
    };
    let producer_id = r.i64()?;
    let producer_epoch = r.i16()?;
    let timeout_ms = r.i32()?;
    let state = TxnState::from_code(r.take(1)?[0] as i8)?;
    let mut partitions = BTreeSet::new();
    let topics = if flexible { uvarint(&mut r)? as i64 - 1 } else { r.i32()? as i64 };
    for _ in 0..topics.max(0) {
        let topic = if flexible {
            let len = uvarint(&mut r)?.checked_sub(1)? as usize;
            String::from_utf8_lossy(r.take(len)?).into_owned()
        } else {
            r.str()?
        };
        let n = if flexible { uvarint(&mut r)? as i64 - 1 } else { r.i32()? as i64 };
        if n < 0 || n as usize > r.0.len() / 4 {
            return None;
        }
        for _ in 0..n {
            partitions.insert((topic.clone(), r.i32()?));
        }
        if flexible {
            skip_tags(&mut r)?;
        }
    }
    let last_update_ms = r.i64()?;
    let start_ms = r.i64()?;
    Some(TxnMeta {
        transactional_id: transactional_id.to_string(),
        producer_id,
        producer_epoch,
        timeout_ms,
        state,
        partitions,
        start_ms,
        last_update_ms,
    })
}

fn uvarint(r: &mut Reader) -> Option<u32> {
    let mut v: u32 = 0;
    for shift in (0..35).step_by(7) {
        let b = r.take(1)?[0];
        v |= ((b & 0x7f) as u32) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

fn skip_tags(r: &mut Reader) -> Option<()> {
    for _ in 0..uvarint(r)? {
        uvarint(r)?;
        let len = uvarint(r)? as usize;
        r.take(len)?;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_keys_parse() {
        let m = TxnMeta {
            transactional_id: "app-1".into(),
            producer_id: 4000,
            producer_epoch: 7,
            timeout_ms: 60_000,
            state: TxnState::PrepareCommit,
            partitions: [("a".to_string(), 0), ("a".to_string(), 2), ("b".to_string(), 1)].into_iter().collect(),
            start_ms: 1_000,
            last_update_ms: 2_000,
        };
        assert_eq!(parse_value("app-1", &value(&m)), Some(m));
        assert_eq!(parse_key(&key("app-1")).as_deref(), Some("app-1"));
        assert_eq!(parse_key(&[0, 5, b'x']), None, "cut short");
        assert_eq!(parse_value("x", &value_cut()), None);
    }

    fn value_cut() -> Vec<u8> {
        let mut v = value(&TxnMeta::new("x", 1, 0, 1000, 0));
        v.truncate(v.len() - 3);
        v
    }

    #[test]
    fn a_flexible_v1_value_as_kafka_writes_it_is_read() {
        // v1: producer id 9, tagged fields after the fixed ones are skipped.
        let mut v = vec![0, 1];
        v.extend_from_slice(&9i64.to_be_bytes());
        v.extend_from_slice(&3i16.to_be_bytes());
        v.extend_from_slice(&5000i32.to_be_bytes());
        v.push(TxnState::Ongoing.code() as u8);
        v.push(2); // one topic (compact array: n + 1)
        v.push(2); // "t" (compact string: len + 1)
        v.push(b't');
        v.push(3); // two partitions
        v.extend_from_slice(&0i32.to_be_bytes());
        v.extend_from_slice(&1i32.to_be_bytes());
        v.push(0); // the topic's tagged fields
        v.extend_from_slice(&10i64.to_be_bytes());
        v.extend_from_slice(&5i64.to_be_bytes());
        v.push(0); // the value's tagged fields
        let m = parse_value("t-id", &v).unwrap();
        assert_eq!((m.producer_id, m.producer_epoch, m.timeout_ms, m.state), (9, 3, 5000, TxnState::Ongoing));
        assert_eq!(m.partitions.len(), 2);
        assert_eq!((m.last_update_ms, m.start_ms), (10, 5));
    }
}
