//! Compaction against a running broker, with real clients:
//!  * a `cleanup.policy=compact` topic: after the cleaner runs, a consumer reading it from
//!    the start sees fewer records, each at the offset it was produced at, and the latest
//!    value of every key;
//!  * `__consumer_offsets` is compacted too: thousands of commits shrink to a few records,
//!    and after a restart the group's committed offset is the last one committed.
mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

#[test]
fn a_compacted_topic_keeps_the_latest_value_of_each_key() {
    let broker = Broker::start_with(&[("log.cleaner.backoff.ms", "200")], DEFAULT_CORES);
    let bs = broker.bootstrap();
    create_topic_with_config(&bs, "latest", 1, &[("cleanup.policy", "compact"), ("segment.bytes", "16384")]);
    // Small produce requests, so that most of the data ends up in sealed segments (the
    // active one is never compacted).
    let p = producer(&bs, &[("linger.ms", "0"), ("batch.size", "4096")]);
    let msgs: Vec<TestMsg> = (0..3000)
        .map(|i| {
            let key = format!("key-{}", i % 40);
            TestMsg::kv(Some(key.as_bytes()), Some(format!("value-{i}-{}", "x".repeat(50)).as_bytes()))
        })
        .collect();
    let offsets = produce_ok(&p, "latest", &msgs, Duration::from_secs(60));
    let produced: HashMap<i64, &TestMsg> = offsets.iter().map(|&(_, o)| o).zip(&msgs).collect();
    let end = watermarks(&bs, "latest", 0).1;
    assert_eq!(end, 3000);

    let compacted = wait_until(Duration::from_secs(30), "the cleaner to compact the topic", || {
        let got = consume_sparse(&bs, "latest", end);
        (got.len() < 1500).then_some(got)
    });
    let mut last_value: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    let mut prev = -1;
    for c in &compacted {
        assert!(c.offset > prev, "offsets increase");
        prev = c.offset;
        let m = produced[&c.offset];
        assert_eq!(c.key, m.key, "key at offset {}", c.offset);
        assert_eq!(c.value, m.value, "value at offset {}", c.offset);
        last_value.insert(c.key.clone().unwrap(), c.value.clone().unwrap());
    }
    for i in 3000 - 40..3000 {
        let m = &msgs[i];
        assert_eq!(last_value.get(m.key.as_ref().unwrap()), m.value.as_ref(), "latest value of key {i}");
    }
}

/// Every record in `[0, end)` of partition 0, which may have gaps.
fn consume_sparse(bs: &str, topic: &str, end: i64) -> Vec<Consumed> {
    use rdkafka::consumer::BaseConsumer;
    use rdkafka::Message;
    let c: BaseConsumer = consumer(bs, &[("group.id", "sparse-reader"), ("auto.offset.reset", "earliest")]);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning).unwrap();
    c.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        match c.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                out.push(Consumed {
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().map(|k| k.to_vec()),
                    value: m.payload().map(|v| v.to_vec()),
                    headers: Vec::new(),
                    timestamp: m.timestamp(),
                });
                if m.offset() + 1 >= end {
                    return out;
                }
            }
            Some(Err(e)) => panic!("consume {topic}: {e}"),
            None => {}
        }
    }
    panic!("consuming {topic} up to {end} took over 30 s (got {} records)", out.len());
}

#[test]
fn consumer_offsets_are_compacted_and_the_last_commit_survives_a_restart() {
    let mut broker = Broker::start_with(
        &[
            ("log.cleaner.backoff.ms", "200"),
            ("offsets.topic.num.partitions", "1"),
            ("offsets.topic.segment.bytes", "16384"),
        ],
        DEFAULT_CORES,
    );
    let bs = broker.bootstrap();
    create_topic(&bs, "work", 1);
    let c = consumer(&bs, &[("group.id", "committer")]);
    for i in 0..3000 {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("work", 0, Offset::Offset(i)).unwrap();
        c.commit(&tpl, CommitMode::Sync).unwrap_or_else(|e| panic!("commit {i}: {e}"));
    }
    drop(c);
    let (_, commits_end) = watermarks(&bs, "__consumer_offsets", 0);
    assert!(commits_end >= 3000, "each commit is a record ({commits_end})");
    let kept = wait_until(Duration::from_secs(30), "the cleaner to compact __consumer_offsets", || {
        let n = consume_sparse(&bs, "__consumer_offsets", commits_end).len();
        (n < 300).then_some(n)
    });
    eprintln!("[compaction] __consumer_offsets: {commits_end} commit records compacted to {kept}");
    broker.stop();
    broker.restart();
    let bs = broker.bootstrap();
    let c = consumer(&bs, &[("group.id", "committer")]);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition("work", 0);
    let committed = c.committed_offsets(tpl, Duration::from_secs(20)).unwrap();
    assert_eq!(
        committed.elements()[0].offset(),
        Offset::Offset(2999),
        "the last commit, after compaction and a restart"
    );
}
