//! Fetch responses (v4–12) framed by hand around the record bytes, as a list of chunks: the
//! small fields are written into one growing buffer, and each partition's batches are
//! referenced, not copied. With kafka-protocol's encoder a cached batch was copied twice
//! on its way out (joined, then encoded); now the socket reads it straight from the cache.
//!
//! The byte layout is kafka-protocol's own (the test below compares the two at every
//! version), minus fields this broker never sets: the only tagged field written is a
//! partition's `diverging_epoch` (v12+).
use bytes::{BufMut, Bytes, BytesMut};

use super::record_set::RecordSet;

pub struct PartitionOut {
    pub partition_index: i32,
    pub error_code: i16,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    pub records: Option<RecordSet>,
    /// (epoch, end offset): the fetcher's log diverges from the leader's (v12+, tag 0).
    pub diverging_epoch: Option<(i32, i64)>,
    /// (producer id, first offset) of the aborted transactions in the fetched range
    /// (read_committed only; empty otherwise).
    pub aborted: Vec<(i64, i64)>,
}

pub struct TopicOut<'a> {
    pub name: &'a str,
    pub partitions: Vec<PartitionOut>,
}

/// Writes a complete, size-prefixed Fetch response frame as chunks to send in order.
pub fn encode(version: i16, correlation_id: i32, throttle_time_ms: i32, topics: &[TopicOut<'_>]) -> Vec<Bytes> {
    assert!((4..=12).contains(&version), "Fetch v{version} is not framed here");
    let flexible = version >= 12;
    // chunks[0] is the size prefix, known only at the end.
    let mut w = Writer { flexible, chunks: vec![Bytes::new()], buf: BytesMut::with_capacity(256), total: 0 };

    // Response header (v1 when flexible: with an empty tagged-field section).
    w.buf.put_i32(correlation_id);
    w.tags();
    w.buf.put_i32(throttle_time_ms);
    if version >= 7 {
        w.buf.put_i16(0); // error_code
        w.buf.put_i32(0); // session_id: no fetch sessions
    }
    w.array_len(topics.len());
    for t in topics {
        w.string(t.name);
        w.array_len(t.partitions.len());
        for p in &t.partitions {
            w.buf.put_i32(p.partition_index);
            w.buf.put_i16(p.error_code);
            w.buf.put_i64(p.high_watermark);
            w.buf.put_i64(p.last_stable_offset);
            if version >= 5 {
                w.buf.put_i64(p.log_start_offset);
            }
            w.array_len(p.aborted.len());
            for &(producer_id, first_offset) in &p.aborted {
                w.buf.put_i64(producer_id);
                w.buf.put_i64(first_offset);
                w.tags();
            }
            if version >= 11 {
                w.buf.put_i32(-1); // preferred_read_replica
            }
            match &p.records {
                None => w.bytes_len(0),
                Some(set) => {
                    w.bytes_len(set.len());
                    w.cut();
                    for c in set.chunks() {
                        w.total += c.len();
                        w.chunks.push(c.clone());
                    }
                }
            }
            match p.diverging_epoch {
                Some((epoch, end_offset)) if flexible => {
                    w.uvarint(1); // one tagged field
                    w.uvarint(0); // tag 0: diverging_epoch
                    w.uvarint(13); // its size: i32, i64, an empty tag section
                    w.buf.put_i32(epoch);
                    w.buf.put_i64(end_offset);
                    w.uvarint(0);
                }
                _ => w.tags(),
            }
        }
        w.tags();
    }
    w.tags();
    w.cut();
    w.chunks[0] = Bytes::copy_from_slice(&(w.total as i32).to_be_bytes());
    w.chunks
}

struct Writer {
    flexible: bool,
    chunks: Vec<Bytes>,
    buf: BytesMut,
    total: usize,
}

impl Writer {
    /// Ends the current run of small fields as a chunk.
    fn cut(&mut self) {
        if !self.buf.is_empty() {
            let chunk = self.buf.split().freeze();
            self.total += chunk.len();
            self.chunks.push(chunk);
        }
    }
    fn uvarint(&mut self, mut v: u32) {
        while v >= 0x80 {
            self.buf.put_u8((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.put_u8(v as u8);
    }
    fn tags(&mut self) {
        if self.flexible {
            self.uvarint(0);
        }
    }
    fn array_len(&mut self, n: usize) {
        if self.flexible {
            self.uvarint(n as u32 + 1);
        } else {
            self.buf.put_i32(n as i32);
        }
    }
    fn bytes_len(&mut self, n: usize) {
        self.array_len(n);
    }
    fn string(&mut self, s: &str) {
        if self.flexible {
            self.uvarint(s.len() as u32 + 1);
        } else {
            self.buf.put_i16(s.len() as i16);
        }
        self.buf.put_slice(s.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::frame::encode_response;
    use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use kafka_protocol::messages::{ApiKey, BrokerId, FetchResponse, TopicName};
    use kafka_protocol::protocol::StrBytes;

    fn sample(with_records: bool) -> Vec<TopicOut<'static>> {
        let mut set = RecordSet::new();
        set.push(Bytes::from(vec![7u8; 300]));
        set.push(Bytes::from(vec![9u8; 5]));
        vec![
            TopicOut {
                name: "orders",
                partitions: vec![
                    PartitionOut {
                        partition_index: 0,
                        error_code: 0,
                        high_watermark: 42,
                        last_stable_offset: 42,
                        log_start_offset: 3,
                        records: with_records.then_some(set),
                        diverging_epoch: None,
                        aborted: vec![(4000, 40), (4001, 41)],
                    },
                    PartitionOut {
                        partition_index: 1,
                        error_code: 3,
                        high_watermark: -1,
                        last_stable_offset: -1,
                        log_start_offset: -1,
                        records: None,
                        diverging_epoch: Some((4, 17)),
                        aborted: vec![],
                    },
                ],
            },
            TopicOut { name: "empty", partitions: vec![] },
        ]
    }

    fn reference(version: i16, topics: &[TopicOut<'_>]) -> Bytes {
        let mut resp = FetchResponse::default();
        for t in topics {
            let mut tr = FetchableTopicResponse::default();
            tr.topic = TopicName(StrBytes::from_string(t.name.to_string()));
            for p in &t.partitions {
                let mut pd = PartitionData::default();
                pd.partition_index = p.partition_index;
                pd.error_code = p.error_code;
                pd.high_watermark = p.high_watermark;
                pd.last_stable_offset = p.last_stable_offset;
                pd.log_start_offset = if version >= 5 { p.log_start_offset } else { -1 };
                pd.preferred_read_replica = BrokerId(-1);
                pd.records = Some(p.records.as_ref().map(|r| r.to_bytes()).unwrap_or_default());
                pd.aborted_transactions = Some(
                    p.aborted
                        .iter()
                        .map(|&(pid, first)| {
                            let mut a = kafka_protocol::messages::fetch_response::AbortedTransaction::default();
                            a.producer_id = kafka_protocol::messages::ProducerId(pid);
                            a.first_offset = first;
                            a
                        })
                        .collect(),
                );
                if let (Some((epoch, end)), true) = (p.diverging_epoch, version >= 12) {
                    pd.diverging_epoch.epoch = epoch;
                    pd.diverging_epoch.end_offset = end;
                }
                tr.partitions.push(pd);
            }
            resp.responses.push(tr);
        }
        encode_response(ApiKey::Fetch, version, 77, &resp).unwrap()
    }

    #[test]
    fn matches_kafka_protocol_at_every_version() {
        for version in 4..=12 {
            for with_records in [true, false] {
                let topics = sample(with_records);
                let chunks = encode(version, 77, 0, &topics);
                let joined: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
                assert_eq!(joined, reference(version, &topics)[..], "v{version} records={with_records}");
            }
        }
    }

    #[test]
    fn record_chunks_are_shared_not_copied() {
        let topics = sample(true);
        let chunks = encode(12, 1, 0, &topics);
        let src = topics[0].partitions[0].records.as_ref().unwrap().chunks()[0].as_ptr();
        assert!(chunks.iter().any(|c| c.as_ptr() == src));
    }
}
