//! A transactional producer spoken in raw protocol, for what real clients never do on
//! purpose: a transactional write to a partition never added to the transaction, and a
//! write that arrives after its transaction ended (a "hanging" write, KIP-890). Each
//! request goes to the broker that must answer it (the coordinator, or the leader).
use std::time::{Duration, Instant};

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::{kafka_call, metadata, try_kafka_call};

pub const NOT_ENOUGH_REPLICAS: i16 = 19;
pub const INVALID_PRODUCER_EPOCH: i16 = 47;
pub const INVALID_TXN_STATE: i16 = 48;
pub const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 = 53;

pub struct TxnProbe {
    pub id: String,
    pub coordinator: String,
    pub producer_id: i64,
    pub epoch: i16,
    next_seq: i32,
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// The address of broker `id` in `bootstrap`'s metadata.
pub fn broker_addr(bootstrap: &str, id: i32) -> String {
    let md = metadata(bootstrap, None);
    let (_, host, port) = md.brokers.iter().find(|b| b.0 == id).unwrap_or_else(|| panic!("no broker {id}"));
    format!("{host}:{port}")
}

/// The coordinator (node id, address) of transactional id `id`, once it answers.
pub fn find_coordinator(bootstrap: &str, id: &str) -> (i32, String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut req = FindCoordinatorRequest::default();
        req.key = s(id);
        req.key_type = 1;
        let r: FindCoordinatorResponse = kafka_call(bootstrap, ApiKey::FindCoordinator, 3, &req);
        if r.error_code == 0 {
            return (r.node_id.0, format!("{}:{}", r.host, r.port));
        }
        assert!(Instant::now() < deadline, "no coordinator for {id}: error {}", r.error_code);
        std::thread::sleep(Duration::from_millis(200));
    }
}

impl TxnProbe {
    /// InitProducerId for `id` at its coordinator (retried while it loads).
    pub fn init(bootstrap: &str, id: &str) -> TxnProbe {
        let (_, coordinator) = find_coordinator(bootstrap, id);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut req = InitProducerIdRequest::default();
            req.transactional_id = Some(TransactionalId(s(id)));
            req.transaction_timeout_ms = 60_000;
            let r: InitProducerIdResponse = kafka_call(&coordinator, ApiKey::InitProducerId, 1, &req);
            if r.error_code == 0 {
                return TxnProbe {
                    id: id.to_string(),
                    coordinator,
                    producer_id: r.producer_id.0,
                    epoch: r.producer_epoch,
                    next_seq: 0,
                };
            }
            assert!(Instant::now() < deadline, "InitProducerId({id}): error {}", r.error_code);
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// AddPartitionsToTxn v3; the partition's error code.
    pub fn add_partition(&self, topic: &str, partition: i32) -> i16 {
        let mut req = AddPartitionsToTxnRequest::default();
        req.v3_and_below_transactional_id = TransactionalId(s(&self.id));
        req.v3_and_below_producer_id = ProducerId(self.producer_id);
        req.v3_and_below_producer_epoch = self.epoch;
        let mut t = AddPartitionsToTxnTopic::default();
        t.name = TopicName(s(topic));
        t.partitions = vec![partition];
        req.v3_and_below_topics = vec![t];
        let r: AddPartitionsToTxnResponse = kafka_call(&self.coordinator, ApiKey::AddPartitionsToTxn, 3, &req);
        r.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code
    }

    /// EndTxn v3; its error code.
    pub fn end(&self, commit: bool) -> i16 {
        let mut req = EndTxnRequest::default();
        req.transactional_id = TransactionalId(s(&self.id));
        req.producer_id = ProducerId(self.producer_id);
        req.producer_epoch = self.epoch;
        req.committed = commit;
        let r: EndTxnResponse = kafka_call(&self.coordinator, ApiKey::EndTxn, 3, &req);
        r.error_code
    }

    /// One transactional batch of one record (the next sequence number) to `leader`,
    /// acks=all, with or without the transactional id in the request. The partition's error
    /// code and base offset. The sequence moves on only when the write is taken. Retried,
    /// as clients do, while the answer is NOT_ENOUGH_REPLICAS: what a leader answers while
    /// the coordinator cannot say yet (the transaction is still completing).
    pub fn produce(&mut self, leader: &str, topic: &str, partition: i32, with_id: bool) -> (i16, i64) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (code, offset) = self.produce_once(leader, topic, partition, with_id);
            if code != NOT_ENOUGH_REPLICAS || Instant::now() > deadline {
                return (code, offset);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn produce_once(&mut self, leader: &str, topic: &str, partition: i32, with_id: bool) -> (i16, i64) {
        let now = super::now_millis();
        let mut b = sluice::protocol::batch::encode_batch(0, &[(Some(b"k".as_slice()), Some(b"v".as_slice()))], now);
        sluice::protocol::control::make_transactional(&mut b, self.producer_id, self.epoch);
        let h = sluice::protocol::batch::BatchHeader::read_mut(&mut b).unwrap();
        h.base_sequence.set(self.next_seq);
        let crc = sluice::protocol::batch::compute_crc(&b);
        sluice::protocol::batch::BatchHeader::read_mut(&mut b).unwrap().crc.set(crc);
        let mut pd = PartitionProduceData::default();
        pd.index = partition;
        pd.records = Some(bytes::Bytes::from(b));
        let mut td = TopicProduceData::default();
        td.name = TopicName(s(topic));
        td.partition_data = vec![pd];
        let mut req = ProduceRequest::default();
        req.transactional_id = with_id.then(|| TransactionalId(s(&self.id)));
        req.acks = -1;
        req.timeout_ms = 10_000;
        req.topic_data = vec![td];
        let r: ProduceResponse = try_kafka_call(leader, ApiKey::Produce, 9, &req, Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("Produce to {leader}: {e}"));
        let p = &r.responses[0].partition_responses[0];
        if p.error_code == 0 {
            self.next_seq += 1;
        }
        (p.error_code, p.base_offset)
    }
}

/// ListOffsets latest at `leader`: (read_uncommitted, read_committed), i.e. the high
/// watermark and the last stable offset.
pub fn end_offsets(leader: &str, topic: &str, partition: i32) -> (i64, i64) {
    let at = |isolation: i8| {
        let mut p = ListOffsetsPartition::default();
        p.partition_index = partition;
        p.timestamp = -1;
        p.current_leader_epoch = -1;
        let mut t = ListOffsetsTopic::default();
        t.name = TopicName(s(topic));
        t.partitions = vec![p];
        let mut req = ListOffsetsRequest::default();
        req.replica_id = BrokerId(-1);
        req.isolation_level = isolation;
        req.topics = vec![t];
        let r: ListOffsetsResponse = kafka_call(leader, ApiKey::ListOffsets, 5, &req);
        let p = &r.topics[0].partitions[0];
        assert_eq!(p.error_code, 0, "ListOffsets {topic}-{partition} at {leader}");
        p.offset
    };
    (at(0), at(1))
}

/// KIP-890 against whatever `bootstrap` is: a transactional write to `topic`/`partition`
/// (at its leader `leader`) is refused with INVALID_TXN_STATE unless the partition is in
/// the producer's ongoing transaction: before AddPartitionsToTxn, and again after the
/// transaction committed (the hanging write that would otherwise open a transaction no
/// one ends and hold the last stable offset back). A transactional batch without a
/// transactional id is refused too. Nothing refused is appended.
pub fn hanging_writes_are_refused(bootstrap: &str, leader: &str, topic: &str, partition: i32, id: &str) {
    let mut p = TxnProbe::init(bootstrap, id);
    let before = end_offsets(leader, topic, partition);
    assert_eq!(p.produce(leader, topic, partition, true).0, INVALID_TXN_STATE, "a write before AddPartitionsToTxn");
    assert_eq!(
        p.produce(leader, topic, partition, false).0,
        TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
        "a transactional batch without a transactional id"
    );
    assert_eq!(end_offsets(leader, topic, partition), before, "nothing refused is appended");
    assert_eq!(p.add_partition(topic, partition), 0);
    let (code, offset) = p.produce(leader, topic, partition, true);
    assert_eq!((code, offset), (0, before.0), "the verified write");
    assert_eq!(p.produce(leader, topic, partition, true).0, 0, "a second write in the open transaction");
    assert_eq!(p.end(true), 0);
    // The commit marker lands: the last stable offset reaches the high watermark.
    let deadline = Instant::now() + Duration::from_secs(30);
    let settled = loop {
        let (hw, lso) = end_offsets(leader, topic, partition);
        if hw == before.0 + 3 && lso == hw {
            break hw;
        }
        assert!(Instant::now() < deadline, "the commit never settled: hw {hw}, lso {lso}");
        std::thread::sleep(Duration::from_millis(50));
    };
    // The hanging write: same producer and epoch, the next sequence, after the commit.
    assert_eq!(p.produce(leader, topic, partition, true).0, INVALID_TXN_STATE, "a write after the commit");
    assert_eq!(end_offsets(leader, topic, partition), (settled, settled), "no transaction left open");
    // A second instance fences the first: its next write is refused as fenced.
    let _newer = TxnProbe::init(bootstrap, id);
    assert_eq!(p.produce(leader, topic, partition, true).0, INVALID_PRODUCER_EPOCH, "a fenced producer's write");
    assert_eq!(end_offsets(leader, topic, partition), (settled, settled));
}
