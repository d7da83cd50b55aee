//! Leader epochs as clients see them (KIP-101/279/320), over the wire with raw requests:
//! Metadata reports each partition's epoch, every fetched batch carries the epoch it was
//! written under, OffsetForLeaderEpoch answers for current and past epochs, and
//! Fetch, ListOffsets and OffsetForLeaderEpoch refuse a stale epoch with
//! FENCED_LEADER_EPOCH (74) and a future one with UNKNOWN_LEADER_EPOCH (75). A restart
//! bumps the epoch (the node is elected again, as KRaft does), and recovery rebuilds the
//! epoch cache from the batches when `leader-epoch-checkpoint` is gone.
//!
//! `current_epoch_answers_match_kafka` restarts nothing, and runs against Apache Kafka
//! too (`SLUICE_TEST_BOOTSTRAP`, see tests/clients/README.md): its answers are Kafka's.
mod common;

use std::time::Duration;

use common::external::{unique, Target};
use common::*;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::StrBytes;

const FENCED_LEADER_EPOCH: i16 = 74;
const UNKNOWN_LEADER_EPOCH: i16 = 75;

fn name(t: &str) -> kafka_protocol::messages::TopicName {
    kafka_protocol::messages::TopicName(StrBytes::from_string(t.to_string()))
}

/// The leader epoch Metadata v12 reports for partition 0 of `topic`.
fn metadata_epoch(bs: &str, topic: &str) -> i32 {
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    use kafka_protocol::messages::{MetadataRequest, MetadataResponse};
    let mut req = MetadataRequest::default();
    let mut t = MetadataRequestTopic::default();
    t.name = Some(name(topic));
    req.topics = Some(vec![t]);
    let resp: MetadataResponse = kafka_call(bs, ApiKey::Metadata, 12, &req);
    let p = &resp.topics[0].partitions[0];
    assert_eq!(p.error_code, 0);
    p.leader_epoch
}

/// OffsetForLeaderEpoch at `version` for partition 0: (error, epoch, end offset).
fn epoch_end(bs: &str, topic: &str, version: i16, current: i32, epoch: i32) -> (i16, i32, i64) {
    use kafka_protocol::messages::offset_for_leader_epoch_request::{OffsetForLeaderPartition, OffsetForLeaderTopic};
    use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
    let mut req = OffsetForLeaderEpochRequest::default();
    req.replica_id = kafka_protocol::messages::BrokerId(-1);
    let mut t = OffsetForLeaderTopic::default();
    t.topic = name(topic);
    let mut p = OffsetForLeaderPartition::default();
    p.partition = 0;
    p.current_leader_epoch = current;
    p.leader_epoch = epoch;
    t.partitions = vec![p];
    req.topics = vec![t];
    let resp: OffsetForLeaderEpochResponse = kafka_call(bs, ApiKey::OffsetForLeaderEpoch, version, &req);
    let p = &resp.topics[0].partitions[0];
    (p.error_code, p.leader_epoch, p.end_offset)
}

struct Fetched {
    error: i16,
    high_watermark: i64,
    /// (base offset, partition_leader_epoch) of each batch.
    batches: Vec<(i64, i32)>,
    diverging: (i32, i64),
}

/// Fetch v12 of partition 0 from `offset`.
fn fetch(bs: &str, topic: &str, offset: i64, current: i32, last_fetched: i32) -> Fetched {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::{FetchRequest, FetchResponse};
    let mut req = FetchRequest::default();
    req.replica_id = kafka_protocol::messages::BrokerId(-1);
    req.max_wait_ms = 0;
    req.min_bytes = 0;
    req.max_bytes = 1 << 20;
    let mut t = FetchTopic::default();
    t.topic = name(topic);
    let mut p = FetchPartition::default();
    p.partition = 0;
    p.fetch_offset = offset;
    p.current_leader_epoch = current;
    p.last_fetched_epoch = last_fetched;
    p.partition_max_bytes = 1 << 20;
    t.partitions = vec![p];
    req.topics = vec![t];
    let resp: FetchResponse = kafka_call(bs, ApiKey::Fetch, 12, &req);
    let p = &resp.responses[0].partitions[0];
    let mut batches = Vec::new();
    if let Some(records) = &p.records {
        let mut at = 0usize;
        while at + 61 <= records.len() {
            let b = &records[at..];
            let base = i64::from_be_bytes(b[0..8].try_into().unwrap());
            let len = i32::from_be_bytes(b[8..12].try_into().unwrap()) as usize;
            let epoch = i32::from_be_bytes(b[12..16].try_into().unwrap());
            batches.push((base, epoch));
            at += 12 + len;
        }
    }
    Fetched {
        error: p.error_code,
        high_watermark: p.high_watermark,
        batches,
        diverging: (p.diverging_epoch.epoch, p.diverging_epoch.end_offset),
    }
}

/// ListOffsets v9 of partition 0: (error, offset, leader epoch).
fn list_offset(bs: &str, topic: &str, timestamp: i64, current: i32) -> (i16, i64, i32) {
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
    let mut req = ListOffsetsRequest::default();
    req.replica_id = kafka_protocol::messages::BrokerId(-1);
    let mut t = ListOffsetsTopic::default();
    t.name = name(topic);
    let mut p = ListOffsetsPartition::default();
    p.partition_index = 0;
    p.timestamp = timestamp;
    p.current_leader_epoch = current;
    t.partitions = vec![p];
    req.topics = vec![t];
    let resp: ListOffsetsResponse = kafka_call(bs, ApiKey::ListOffsets, 9, &req);
    let p = &resp.topics[0].partitions[0];
    (p.error_code, p.offset, p.leader_epoch)
}

fn produce(bs: &str, topic: &str, n: usize) {
    let p = producer(bs, &[("linger.ms", "0")]);
    // One batch per message: each is its own produce request.
    for i in 0..n {
        produce_ok(&p, topic, &[TestMsg::value(format!("m{i}"))], Duration::from_secs(30));
    }
}

#[test]
fn epochs_are_stamped_reported_checked_and_survive_restarts() {
    let mut broker = Broker::start();
    let bs = broker.bootstrap();
    let topic = "epochs";
    create_topic(&bs, topic, 1);
    assert_eq!(metadata_epoch(&bs, topic), 0, "a new partition starts at epoch 0");
    produce(&bs, topic, 5);

    // A restart fences the old incarnation and elects this node again: epoch 2, as Kafka
    // 4.4 goes from 0 to 2. Writes go on under it.
    broker.restart();
    let bs = broker.bootstrap();
    assert_eq!(metadata_epoch(&bs, topic), 2);
    produce(&bs, topic, 3);

    let f = fetch(&bs, topic, 0, 2, -1);
    assert_eq!(f.error, 0);
    assert_eq!(f.high_watermark, 8);
    let epochs: Vec<i32> = f.batches.iter().map(|b| b.1).collect();
    assert_eq!(epochs, vec![0, 0, 0, 0, 0, 2, 2, 2], "each batch carries the epoch it was written under");

    // OffsetForLeaderEpoch, v2 as librdkafka sends it, and v4.
    for v in [2, 3, 4] {
        assert_eq!(epoch_end(&bs, topic, v, 2, 0), (0, 0, 5), "v{v}: epoch 0 ended where epoch 2 began");
        assert_eq!(epoch_end(&bs, topic, v, 2, 1), (0, 0, 5), "v{v}: epoch 1 had no data: its floor, 0");
        assert_eq!(epoch_end(&bs, topic, v, 2, 2), (0, 2, 8), "v{v}: the current epoch ends at the log end");
        assert_eq!(epoch_end(&bs, topic, v, -1, 2), (0, 2, 8), "v{v}: no current epoch given: not checked");
        assert_eq!(epoch_end(&bs, topic, v, 2, 7), (0, -1, -1), "v{v}: an epoch not yet seen");
        assert_eq!(epoch_end(&bs, topic, v, 1, 0), (FENCED_LEADER_EPOCH, -1, -1), "v{v}: stale");
        assert_eq!(epoch_end(&bs, topic, v, 3, 0), (UNKNOWN_LEADER_EPOCH, -1, -1), "v{v}: future");
    }

    // Fetch checks the fetcher's epoch, and tells a fetcher whose log diverges where.
    assert_eq!(fetch(&bs, topic, 0, 0, -1).error, FENCED_LEADER_EPOCH);
    assert_eq!(fetch(&bs, topic, 0, 3, -1).error, UNKNOWN_LEADER_EPOCH);
    let d = fetch(&bs, topic, 7, 2, 0);
    assert_eq!((d.error, d.diverging, d.batches.len()), (0, (0, 5), 0), "fetched epoch 0 up to 7; it ended at 5");
    let ok = fetch(&bs, topic, 5, 2, 0);
    assert_eq!((ok.error, ok.diverging.0, ok.batches.len()), (0, -1, 3), "no divergence at the epoch's end");

    // ListOffsets checks it too, and reports the epoch of what it found.
    assert_eq!(list_offset(&bs, topic, -1, 2), (0, 8, 2));
    assert_eq!(list_offset(&bs, topic, -2, -1), (0, 0, 0));
    assert_eq!(list_offset(&bs, topic, -1, 1).0, FENCED_LEADER_EPOCH);
    assert_eq!(list_offset(&bs, topic, -1, 5).0, UNKNOWN_LEADER_EPOCH);

    // Without its checkpoint, recovery rebuilds the cache from the batches; the epoch
    // goes on rising.
    broker.stop();
    std::fs::remove_file(broker.partition_dir(topic, 0).join("leader-epoch-checkpoint")).unwrap();
    broker.restart();
    let bs = broker.bootstrap();
    assert_eq!(metadata_epoch(&bs, topic), 4);
    assert_eq!(epoch_end(&bs, topic, 2, 4, 0), (0, 0, 5));
    assert_eq!(epoch_end(&bs, topic, 2, 4, 2), (0, 2, 8), "epoch 2 ends where epoch 4 begins: the log end");
    assert_eq!(epoch_end(&bs, topic, 2, 4, 4), (0, 4, 8));
    let checkpoint = std::fs::read_to_string(broker.partition_dir(topic, 0).join("leader-epoch-checkpoint")).unwrap();
    assert_eq!(checkpoint, "0\n3\n0 0\n2 5\n4 8\n");
}

#[test]
fn current_epoch_answers_match_kafka() {
    let target = Target::start(&[]);
    let bs = target.bootstrap();
    let topic = unique("epochs-now");
    create_topic(&bs, &topic, 1);
    wait_for_topic(&bs, &topic, 1);
    produce(&bs, &topic, 5);
    let e = metadata_epoch(&bs, &topic);
    assert!(e >= 0, "a led partition has an epoch");

    let f = fetch(&bs, &topic, 0, e, -1);
    assert_eq!((f.error, f.high_watermark), (0, 5));
    assert!(f.batches.iter().all(|b| b.1 == e), "batches carry the epoch: {:?}", f.batches);
    assert_eq!(epoch_end(&bs, &topic, 2, e, e), (0, e, 5), "the current epoch ends at the log end");
    assert_eq!(epoch_end(&bs, &topic, 4, -1, e), (0, e, 5));
    assert_eq!(epoch_end(&bs, &topic, 2, e, e + 1), (0, -1, -1), "an epoch not yet seen");
    assert_eq!(epoch_end(&bs, &topic, 2, e + 1, e), (UNKNOWN_LEADER_EPOCH, -1, -1));
    assert_eq!(fetch(&bs, &topic, 0, e + 1, -1).error, UNKNOWN_LEADER_EPOCH);
    assert_eq!(list_offset(&bs, &topic, -1, e + 1).0, UNKNOWN_LEADER_EPOCH);
    assert_eq!(list_offset(&bs, &topic, -1, e), (0, 5, e));
    assert_eq!(list_offset(&bs, &topic, -2, -1), (0, 0, e));
    if e > 0 {
        assert_eq!(epoch_end(&bs, &topic, 2, e - 1, e).0, FENCED_LEADER_EPOCH);
        assert_eq!(fetch(&bs, &topic, 0, e - 1, -1).error, FENCED_LEADER_EPOCH);
    }
    // A fetcher that last fetched epoch e up to offset 7 is past where e ends here (5).
    let d = fetch(&bs, &topic, 7, e, e);
    assert_eq!((d.error, d.diverging, d.batches.len()), (0, (e, 5), 0));
    let ok = fetch(&bs, &topic, 3, e, e);
    assert_eq!((ok.error, ok.diverging.0), (0, -1));
}
