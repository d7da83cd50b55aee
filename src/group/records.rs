//! `__consumer_offsets` records in Kafka's own formats, so tools that read the topic
//! understand them: OffsetCommitKey v1 / OffsetCommitValue v3 and GroupMetadataKey v2 /
//! GroupMetadataValue v3 (big-endian, int16-length strings, int32-length bytes). A record
//! with a null value is a tombstone.

use super::coordinator::{restored_group, restored_member, CommittedOffset, Group};
use crate::protocol::internal::{Reader, Writer};

#[derive(Debug, Clone, PartialEq)]
pub enum OffsetsKey {
    Offset { group: String, topic: String, partition: i32 },
    Group { group: String },
}

pub fn offset_key(group: &str, topic: &str, partition: i32) -> Vec<u8> {
    let mut w = Writer(Vec::new());
    w.i16(1);
    w.str(group);
    w.str(topic);
    w.i32(partition);
    w.0
}

pub fn offset_value(o: &CommittedOffset) -> Vec<u8> {
    let mut w = Writer(Vec::new());
    w.i16(3);
    w.i64(o.offset);
    w.i32(o.leader_epoch);
    w.str(&o.metadata);
    w.i64(o.commit_timestamp_ms);
    w.0
}

pub fn group_key(group: &str) -> Vec<u8> {
    let mut w = Writer(Vec::new());
    w.i16(2);
    w.str(group);
    w.0
}

pub fn group_value(g: &Group, now_ms: i64) -> Vec<u8> {
    let mut w = Writer(Vec::new());
    w.i16(3);
    w.str(g.protocol_type.as_deref().unwrap_or(""));
    w.i32(g.generation);
    w.nullable_str(g.protocol_name.as_deref());
    w.nullable_str(g.leader.as_deref());
    w.i64(now_ms);
    w.i32(g.members.len() as i32);
    let protocol = g.protocol_name.clone().unwrap_or_default();
    for m in &g.members {
        w.str(&m.member_id);
        w.nullable_str(m.instance_id.as_deref());
        w.str(&m.client_id);
        w.str(&m.client_host);
        w.i32(m.rebalance_timeout_ms.min(i32::MAX as u64) as i32);
        w.i32(m.session_timeout_ms.min(i32::MAX as u64) as i32);
        let sub = m.protocols.iter().find(|(n, _)| *n == protocol).map(|(_, b)| b.clone()).unwrap_or_default();
        w.bytes(&sub);
        w.bytes(&m.assignment);
    }
    w.0
}

pub fn decode_key(key: &[u8]) -> Option<OffsetsKey> {
    let mut r = Reader(key);
    match r.i16()? {
        0 | 1 => Some(OffsetsKey::Offset { group: r.str()?, topic: r.str()?, partition: r.i32()? }),
        2 => Some(OffsetsKey::Group { group: r.str()? }),
        _ => None,
    }
}

pub fn decode_offset_value(value: &[u8]) -> Option<CommittedOffset> {
    let mut r = Reader(value);
    let version = r.i16()?;
    let offset = r.i64()?;
    let leader_epoch = if version >= 3 { r.i32()? } else { -1 };
    let metadata = r.str()?;
    let commit_timestamp_ms = r.i64()?;
    Some(CommittedOffset { offset, leader_epoch, metadata, commit_timestamp_ms })
}

pub fn decode_group_value(group: &str, value: &[u8]) -> Option<Group> {
    let mut r = Reader(value);
    let version = r.i16()?;
    let protocol_type = r.str()?;
    let generation = r.i32()?;
    let protocol = r.nullable_str()?;
    let leader = r.nullable_str()?;
    if version >= 2 {
        r.i64()?;
    }
    let count = r.i32()?;
    if count < 0 || count as usize > r.0.len() {
        return None;
    }
    let mut members = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let member_id = r.str()?;
        let instance_id = if version >= 3 { r.nullable_str()? } else { None };
        let client_id = r.str()?;
        let client_host = r.str()?;
        let rebalance_timeout = if version >= 1 { r.i32()? } else { 0 };
        let session_timeout = r.i32()?;
        let subscription = r.bytes()?;
        let assignment = r.bytes()?;
        members.push(restored_member(
            member_id,
            instance_id,
            client_id,
            client_host,
            rebalance_timeout.max(0) as u64,
            session_timeout.max(0) as u64,
            protocol.as_deref().unwrap_or(""),
            subscription,
            assignment,
        ));
    }
    let protocol_type = if protocol_type.is_empty() { None } else { Some(protocol_type) };
    Some(restored_group(group.to_string(), generation, protocol_type, protocol, leader, members))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_roundtrip() {
        let k = offset_key("g", "t", 3);
        assert_eq!(decode_key(&k), Some(OffsetsKey::Offset { group: "g".into(), topic: "t".into(), partition: 3 }));
        let o = CommittedOffset { offset: 42, leader_epoch: -1, metadata: "m".into(), commit_timestamp_ms: 7 };
        assert_eq!(decode_offset_value(&offset_value(&o)), Some(o));
        assert_eq!(decode_key(&group_key("g")), Some(OffsetsKey::Group { group: "g".into() }));
        assert_eq!(decode_key(&[0, 9]), None);
        assert_eq!(decode_offset_value(&[0, 3, 1]), None);
    }
}
