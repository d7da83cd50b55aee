//! 100k keyed messages through a 4-partition topic with rdkafka:
//! murmur2 partitioning, ordering, contiguous offsets, and exact round trip of
//! keys / values / headers / timestamps (including null key, null value and
//! empty value).

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use rdkafka::Timestamp;

const N: usize = 100_000;
const PARTITIONS: i32 = 4;

#[test]
fn murmur2_matches_kafka_reference_vectors() {
    // Vectors from Apache Kafka's UtilsTest.testMurmur2.
    let cases: [(&[u8], i32); 6] = [
        (b"21", -973_932_308),
        (b"foobar", -790_332_482),
        (b"a-little-bit-long-string", -985_981_536),
        (b"a-little-bit-longer-string", -1_486_304_829),
        (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58_897_971),
        (b"abc", 479_470_107),
    ];
    for (k, want) in cases {
        assert_eq!(murmur2(k), want, "murmur2({:?})", String::from_utf8_lossy(k));
    }
}

fn build_messages(ts_base: i64) -> Vec<TestMsg> {
    (0..N)
        .map(|i| {
            let key = if i % 1000 == 7 {
                None // null key
            } else {
                Some(format!("user-{}", i % 5003).into_bytes())
            };
            let value = match i % 1000 {
                13 => None,             // null value
                17 => Some(Vec::new()), // empty value
                _ => Some(format!("value-{i:06}-{}", "x".repeat(i % 61)).into_bytes()),
            };
            let mut headers = Vec::new();
            if i % 10 == 0 {
                headers.push(("idx".to_string(), Some(i.to_string().into_bytes())));
                headers.push(("trace".to_string(), Some(vec![0u8, 1, 2, 255])));
            }
            if i % 30 == 0 {
                headers.push(("null-header".to_string(), None));
            }
            if i % 70 == 0 {
                headers.push(("empty-header".to_string(), Some(Vec::new())));
                // duplicate header keys are legal and must keep their order
                headers.push(("idx".to_string(), Some(b"dup".to_vec())));
            }
            let timestamp = if i % 3 == 0 { None } else { Some(ts_base + i as i64) };
            TestMsg { key, value, headers, timestamp, partition: None }
        })
        .collect()
}

#[test]
fn produce_consume_100k_keyed_messages() {
    let broker = Broker::start();
    let bs = broker.bootstrap();
    let topic = "orders";
    create_topic(&bs, topic, PARTITIONS);

    let ts_base = now_millis() - 3_600_000;
    let msgs = build_messages(ts_base);

    let t_start = now_millis();
    let p = producer(&bs, &[("acks", "all"), ("partitioner", "murmur2_random"), ("linger.ms", "10")]);
    let deliveries = produce_ok(&p, topic, &msgs, Duration::from_secs(240));
    drop(p);
    let t_end = now_millis();

    // 1. Partition choice: Kafka's murmur2 partitioner for every keyed message.
    let mut wrong_partition = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        let (part, _off) = deliveries[i];
        assert!((0..PARTITIONS).contains(&part), "message {i} delivered to invalid partition {part}");
        if let Some(k) = &m.key {
            let want = kafka_partition(k, PARTITIONS);
            if part != want {
                wrong_partition.push((i, String::from_utf8_lossy(k).to_string(), part, want));
            }
        }
    }
    assert!(
        wrong_partition.is_empty(),
        "{} keyed messages landed in a partition different from Kafka's murmur2; first: {:?}",
        wrong_partition.len(),
        &wrong_partition[..wrong_partition.len().min(5)]
    );

    // 2. Delivery-report offsets: per partition contiguous from 0 and in send order.
    let mut per_part: HashMap<i32, Vec<(i64, usize)>> = HashMap::new();
    for (i, &(part, off)) in deliveries.iter().enumerate() {
        per_part.entry(part).or_default().push((off, i));
    }
    let mut counts: HashMap<i32, i64> = HashMap::new();
    for part in 0..PARTITIONS {
        let v = per_part.remove(&part).unwrap_or_default();
        // v is in send order; offsets must be strictly increasing and exactly 0..n.
        for (j, (off, i)) in v.iter().enumerate() {
            assert_eq!(
                *off, j as i64,
                "partition {part}: message {i} (the {j}-th sent to this partition) got offset {off}; expected {j} (offsets must be contiguous from 0 and in send order)"
            );
        }
        counts.insert(part, v.len() as i64);
    }
    assert_eq!(counts.values().sum::<i64>(), N as i64);
    for part in 0..PARTITIONS {
        assert!(counts[&part] > 0, "partition {part} received no messages");
    }

    // 3. Watermarks.
    for part in 0..PARTITIONS {
        let (lo, hi) = watermarks(&bs, topic, part);
        assert_eq!((lo, hi), (0, counts[&part]), "watermarks of partition {part} (low, high)");
    }

    // 4. Consume everything back, per partition from offset 0.
    let index: HashMap<(i32, i64), usize> = deliveries.iter().enumerate().map(|(i, &(p, o))| ((p, o), i)).collect();
    let ranges: Vec<(i32, i64, i64)> = (0..PARTITIONS).map(|p| (p, 0, counts[&p])).collect();
    let consumed = consume_range(&bs, topic, &ranges, Duration::from_secs(240));

    let mut mismatches = Vec::new();
    let mut total = 0usize;
    for part in 0..PARTITIONS {
        let got = &consumed[&part];
        assert_eq!(got.len() as i64, counts[&part], "partition {part}: consumed message count");
        assert_contiguous(got, 0, &format!("partition {part}"));
        for c in got {
            total += 1;
            let i = index[&(part, c.offset)];
            let m = &msgs[i];
            // Where we consumed it from must also be murmur2's choice.
            if let Some(k) = &m.key {
                assert_eq!(c.partition, kafka_partition(k, PARTITIONS));
            }
            let ts_ok = match m.timestamp {
                Some(t) => c.timestamp == Timestamp::CreateTime(t),
                None => matches!(c.timestamp, Timestamp::CreateTime(t)
                    if t >= t_start - 60_000 && t <= t_end + 60_000),
            };
            if c.key != m.key || c.value != m.value || c.headers != m.headers || !ts_ok {
                mismatches.push(format!("p{part}@{}: produced #{i} {:?} / consumed {:?}", c.offset, m, c));
            }
        }
    }
    assert_eq!(total, N);
    assert!(
        mismatches.is_empty(),
        "{} consumed messages differ from what was produced; first: {:#?}",
        mismatches.len(),
        &mismatches[..mismatches.len().min(5)]
    );

    // Spot-check special messages explicitly (clear failure messages).
    let find = |i: usize| -> &Consumed {
        let (p, o) = deliveries[i];
        &consumed[&p][o as usize]
    };
    assert_eq!(find(7).key, None, "null key must stay null");
    assert_eq!(find(13).value, None, "null value must stay null");
    assert_eq!(find(17).value, Some(Vec::new()), "empty value must stay empty (not null)");
    assert_eq!(
        find(30).headers,
        vec![
            ("idx".to_string(), Some(b"30".to_vec())),
            ("trace".to_string(), Some(vec![0u8, 1, 2, 255])),
            ("null-header".to_string(), None),
        ],
        "headers of message 30"
    );
}
