//! ListOffsets: earliest / latest / by timestamp (first offset whose
//! timestamp >= target), via rskafka `get_offset` and rdkafka
//! `offsets_for_times` / `fetch_watermarks`.

mod common;

use std::time::Duration;

use common::*;
use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};
use rskafka::client::partition::{Compression, OffsetAt};

const TOPIC: &str = "timeline";
const COUNT: i64 = 1000;
const BASE: i64 = 1_690_000_000_000;

fn ts(i: i64) -> i64 {
    BASE + i * 10
}

/// (target timestamp, expected offset); -1 = no such offset.
fn probes() -> Vec<(i64, i64)> {
    let mut v = vec![
        (0, 0),
        (BASE - 1_000, 0),
        (BASE, 0),
        (BASE + 1, 1),
        (BASE + 9, 1),
        (ts(1), 1),
        (ts(99), 99),
        (ts(99) + 1, 100), // crosses a batch boundary
        (ts(100), 100),
        (ts(101), 101),
        (ts(555) + 7, 556),
        (ts(999), 999),
        (ts(999) + 1, -1), // after the last message
        (BASE + 10_000_000, -1),
    ];
    for i in (0..COUNT).step_by(37) {
        v.push((ts(i), i));
        v.push((ts(i) - 5, i));
    }
    v
}

#[test]
fn earliest_latest_and_by_timestamp() {
    let broker = Broker::start();
    let bs = broker.bootstrap();
    create_topic(&bs, TOPIC, 2);

    let rt = runtime();
    rt.block_on(async {
        let client = rs_client(&bs).await;
        for part in 0..2 {
            let pc = rs_partition(&client, TOPIC, part).await;
            // Empty partition.
            for (at, want) in [(OffsetAt::Earliest, 0), (OffsetAt::Latest, 0)] {
                let got = within(Duration::from_secs(20), "get_offset", pc.get_offset(at))
                    .await
                    .unwrap_or_else(|e| panic!("get_offset({at:?}) on empty partition: {e}"));
                assert_eq!(got, want, "partition {part}: {at:?} on an empty partition");
            }
            let got = within(
                Duration::from_secs(20),
                "get_offset ts",
                pc.get_offset(OffsetAt::Timestamp(rs_ts(BASE))),
            )
            .await
            .unwrap_or_else(|e| panic!("get_offset(ts) on empty partition: {e}"));
            assert_eq!(got, -1, "partition {part}: by-timestamp lookup on an empty partition");

            // 10 batches of 100 records, timestamps BASE + 10*i. Partition 1
            // uses compressed batches.
            let codec = if part == 0 { Compression::NoCompression } else { Compression::Gzip };
            for b in 0..10 {
                let recs: Vec<_> = (b * 100..(b + 1) * 100)
                    .map(|i| {
                        rs_record(
                            Some(format!("k{i}").as_bytes()),
                            Some(format!("v{i}").as_bytes()),
                            &[],
                            ts(i),
                        )
                    })
                    .collect();
                let offs = within(Duration::from_secs(30), "produce", pc.produce(recs, codec))
                    .await
                    .unwrap_or_else(|e| panic!("produce batch {b}: {e}"));
                assert_eq!(offs.first(), Some(&(b * 100)));
            }

            let earliest = within(Duration::from_secs(20), "earliest", pc.get_offset(OffsetAt::Earliest))
                .await
                .unwrap();
            let latest = within(Duration::from_secs(20), "latest", pc.get_offset(OffsetAt::Latest))
                .await
                .unwrap();
            assert_eq!(earliest, 0, "partition {part}: earliest offset");
            assert_eq!(latest, COUNT, "partition {part}: latest offset (log end)");

            for (target, want) in probes() {
                let got = within(
                    Duration::from_secs(20),
                    "get_offset ts",
                    pc.get_offset(OffsetAt::Timestamp(rs_ts(target))),
                )
                .await
                .unwrap_or_else(|e| panic!("get_offset(ts={target}): {e}"));
                assert_eq!(
                    got, want,
                    "partition {part}: ListOffsets(timestamp={target} = BASE{:+}) should be the first offset with timestamp >= target",
                    target - BASE
                );
            }
        }
    });

    // rdkafka view of the same data.
    for part in 0..2 {
        assert_eq!(watermarks(&bs, TOPIC, part), (0, COUNT), "rdkafka watermarks of partition {part}");
    }
    let c = consumer(&bs, &[]);
    for (target, want) in probes() {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(TOPIC, 0, Offset::Offset(target)).unwrap();
        tpl.add_partition_offset(TOPIC, 1, Offset::Offset(target)).unwrap();
        let res = c
            .offsets_for_times(tpl, Duration::from_secs(20))
            .unwrap_or_else(|e| panic!("offsets_for_times({target}) failed: {e}"));
        for part in 0..2 {
            let el = res.find_partition(TOPIC, part).expect("partition in result");
            assert!(el.error().is_ok(), "offsets_for_times({target}) partition {part}: {:?}", el.error());
            let want_off = if want < 0 { Offset::End } else { Offset::Offset(want) };
            assert_eq!(
                el.offset(),
                want_off,
                "rdkafka offsets_for_times(timestamp={target} = BASE{:+}) partition {part}",
                target - BASE
            );
        }
    }

    // The special timestamps of newer versions, as the Java AdminClient and librdkafka send
    // them: the record with the largest timestamp (-3, v7, KIP-734; the last one here),
    // earliest local (-4, v8) and latest tiered (-5, v9: nothing is tiered, so -1).
    for (version, special, want_offset, want_ts) in
        [(7, -3, COUNT - 1, ts(COUNT - 1)), (8, -4, 0, -1), (9, -5, -1, -1), (10, -3, COUNT - 1, ts(COUNT - 1))]
    {
        let got = list_offsets_raw(&bs, version, special);
        for (part, error, offset, timestamp) in got {
            assert_eq!(error, 0, "ListOffsets v{version} timestamp {special} partition {part}: error");
            assert_eq!(
                (offset, timestamp),
                (want_offset, want_ts),
                "ListOffsets v{version} timestamp {special} partition {part}: (offset, timestamp)"
            );
        }
    }
}

/// ListOffsets at `version` for `timestamp` on both partitions of TOPIC:
/// (partition, error code, offset, timestamp).
fn list_offsets_raw(bs: &str, version: i16, timestamp: i64) -> Vec<(i32, i16, i64, i64)> {
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_protocol::messages::{ApiKey, ListOffsetsRequest, ListOffsetsResponse, TopicName};
    use kafka_protocol::protocol::StrBytes;
    let mut req = ListOffsetsRequest::default();
    req.replica_id = kafka_protocol::messages::BrokerId(-1);
    let mut t = ListOffsetsTopic::default();
    t.name = TopicName(StrBytes::from_static_str(TOPIC));
    t.partitions = (0..2)
        .map(|p| {
            let mut lp = ListOffsetsPartition::default();
            lp.partition_index = p;
            lp.timestamp = timestamp;
            lp
        })
        .collect();
    req.topics = vec![t];
    let resp: ListOffsetsResponse = kafka_call(bs, ApiKey::ListOffsets, version, &req);
    resp.topics[0].partitions.iter().map(|p| (p.partition_index, p.error_code, p.offset, p.timestamp)).collect()
}

#[test]
fn latest_tracks_appends() {
    let broker = Broker::start();
    let bs = broker.bootstrap();
    create_topic(&bs, "grow", 1);
    let p = producer(&bs, &[("linger.ms", "0")]);
    let rt = runtime();
    for round in 1..=5i64 {
        let msgs: Vec<TestMsg> = (0..round * 7)
            .map(|i| {
                let mut m = TestMsg::value(format!("r{round}-{i}"));
                m.partition = Some(0);
                m
            })
            .collect();
        produce_ok(&p, "grow", &msgs, Duration::from_secs(30));
        let want: i64 = (1..=round).map(|r| r * 7).sum();
        rt.block_on(async {
            let client = rs_client(&bs).await;
            let pc = rs_partition(&client, "grow", 0).await;
            let latest = within(Duration::from_secs(20), "latest", pc.get_offset(OffsetAt::Latest)).await.unwrap();
            assert_eq!(latest, want, "latest offset after round {round}");
            let earliest =
                within(Duration::from_secs(20), "earliest", pc.get_offset(OffsetAt::Earliest)).await.unwrap();
            assert_eq!(earliest, 0, "earliest offset after round {round}");
        });
    }
}
