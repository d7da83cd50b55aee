//! Admin APIs: CreateTopics with configs and validate_only, DeleteTopics
//! (and re-creation), delete.topic.enable=false, and Metadata (one broker
//! with the right id/host/port, leaders = that broker).
//!
//! DescribeCluster is not exposed by the rdkafka 0.39 crate, so it is not
//! tested here.

mod common;

use std::time::Duration;

use common::*;
use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::error::RDKafkaErrorCode;

#[test]
fn create_with_configs_and_validate_only() {
    let broker = Broker::start();
    let bs = broker.bootstrap();

    create_topic_with_config(
        &bs,
        "configured",
        3,
        &[("retention.ms", "3600000"), ("cleanup.policy", "delete"), ("segment.bytes", "1048576")],
    );
    create_topic_with_config(&bs, "compacted", 1, &[("cleanup.policy", "compact")]);
    let t = wait_for_topic(&bs, "configured", 3);
    let mut ids: Vec<i32> = t.partitions.iter().map(|p| p.0).collect();
    ids.sort();
    assert_eq!(ids, vec![0, 1, 2], "partition ids of 'configured'");

    // validate_only: success reported, but nothing is created.
    let res = create_topics_raw(
        &bs,
        &[NewTopic::new("dry-run", 5, TopicReplication::Fixed(1)).set("retention.ms", "1000")],
        &admin_opts().validate_only(true),
    );
    assert_eq!(res, vec![Ok("dry-run".to_string())], "validate_only CreateTopics result");
    std::thread::sleep(Duration::from_millis(500));
    let names = topic_names(&bs);
    assert!(!names.contains(&"dry-run".to_string()), "validate_only must not create the topic; topics: {names:?}");
    let md = metadata(&bs, Some("dry-run"));
    if let Some(t) = md.topic("dry-run") {
        assert_eq!(t.error, Some(RDKafkaErrorCode::UnknownTopicOrPartition), "dry-run topic metadata");
    }
    // No partition directory was created either.
    assert!(!broker.partition_dir("dry-run", 0).exists(), "validate_only created a partition directory");

    // validate_only still reports errors.
    let res = create_topics_raw(
        &bs,
        &[
            NewTopic::new("configured", 1, TopicReplication::Fixed(1)),
            NewTopic::new("bad/dry", 1, TopicReplication::Fixed(1)),
            NewTopic::new("zero-dry", 0, TopicReplication::Fixed(1)),
        ],
        &admin_opts().validate_only(true),
    );
    assert_eq!(
        res,
        vec![
            Err(("configured".to_string(), RDKafkaErrorCode::TopicAlreadyExists)),
            Err(("bad/dry".to_string(), RDKafkaErrorCode::InvalidTopic)),
            Err(("zero-dry".to_string(), RDKafkaErrorCode::InvalidPartitions)),
        ],
        "validate_only CreateTopics with invalid requests"
    );

    // Then actually creating the dry-run topic works.
    create_topic(&bs, "dry-run", 5);

    // Several topics in one request, each with its own result.
    let res = create_topics_raw(
        &bs,
        &[
            NewTopic::new("multi-a", 1, TopicReplication::Fixed(1)),
            NewTopic::new("multi-b", 2, TopicReplication::Fixed(1)),
            NewTopic::new("dry-run", 1, TopicReplication::Fixed(1)),
        ],
        &admin_opts(),
    );
    let mut res_sorted = res.clone();
    res_sorted.sort_by(|a, b| {
        let n = |r: &Result<String, (String, RDKafkaErrorCode)>| match r {
            Ok(n) => n.clone(),
            Err((n, _)) => n.clone(),
        };
        n(a).cmp(&n(b))
    });
    assert_eq!(
        res_sorted,
        vec![
            Err(("dry-run".to_string(), RDKafkaErrorCode::TopicAlreadyExists)),
            Ok("multi-a".to_string()),
            Ok("multi-b".to_string()),
        ],
        "multi-topic CreateTopics results"
    );
    wait_for_topic(&bs, "multi-a", 1);
    wait_for_topic(&bs, "multi-b", 2);
}

#[test]
fn delete_and_recreate_topic() {
    let broker = Broker::start();
    let bs = broker.bootstrap();
    create_topic(&bs, "doomed", 2);
    create_topic(&bs, "survivor", 1);

    let msgs: Vec<TestMsg> = (0..200)
        .map(|i| {
            let mut m = TestMsg::value(format!("old-{i}"));
            m.partition = Some((i % 2) as i32);
            m
        })
        .collect();
    let p = producer(&bs, &[]);
    produce_ok(&p, "doomed", &msgs, Duration::from_secs(30));
    let keep = vec![TestMsg::value("keep-me")];
    produce_ok(&p, "survivor", &keep, Duration::from_secs(30));
    drop(p);

    let res = delete_topics_raw(&bs, &["doomed"]);
    assert_eq!(res, vec![Ok("doomed".to_string())], "DeleteTopics result");

    // Gone from metadata (allow a short propagation delay).
    wait_until(Duration::from_secs(15), "deleted topic disappears from metadata", || {
        (!topic_names(&bs).contains(&"doomed".to_string())).then_some(())
    });
    let md = metadata(&bs, Some("doomed"));
    if let Some(t) = md.topic("doomed") {
        assert_eq!(t.error, Some(RDKafkaErrorCode::UnknownTopicOrPartition), "metadata of deleted topic");
    }
    // Other topics are untouched.
    assert_eq!(watermarks(&bs, "survivor", 0), (0, 1), "survivor watermarks");

    // Deleting again: UNKNOWN_TOPIC_OR_PARTITION.
    let res = delete_topics_raw(&bs, &["doomed"]);
    assert_eq!(
        res,
        vec![Err(("doomed".to_string(), RDKafkaErrorCode::UnknownTopicOrPartition))],
        "DeleteTopics of a deleted topic"
    );

    // Recreate with a different partition count: starts empty.
    create_topic(&bs, "doomed", 3);
    for part in 0..3 {
        assert_eq!(watermarks(&bs, "doomed", part), (0, 0), "recreated topic partition {part} must be empty");
    }
    let new_msgs: Vec<TestMsg> = (0..30)
        .map(|i| {
            let mut m = TestMsg::value(format!("new-{i}"));
            m.partition = Some((i % 3) as i32);
            m.timestamp = Some(1_700_000_000_000 + i as i64);
            m
        })
        .collect();
    let p = producer(&bs, &[]);
    let del = produce_ok(&p, "doomed", &new_msgs, Duration::from_secs(30));
    drop(p);
    let ranges: Vec<(i32, i64, i64)> = (0..3).map(|p| (p, 0, 10)).collect();
    let got = consume_range(&bs, "doomed", &ranges, Duration::from_secs(60));
    for (i, m) in new_msgs.iter().enumerate() {
        let (p, o) = del[i];
        assert!(o < 10, "recreated topic: offset {o} for message {i}");
        assert!(got[&p][o as usize].matches(m), "recreated topic: message {i}");
    }
}

#[test]
fn delete_disabled() {
    let broker = Broker::start_with(&[("delete.topic.enable", "false")], DEFAULT_CORES);
    let bs = broker.bootstrap();
    create_topic(&bs, "permanent", 1);
    let res = delete_topics_raw(&bs, &["permanent"]);
    assert_eq!(
        res,
        vec![Err(("permanent".to_string(), RDKafkaErrorCode::TopicDeletionDisabled))],
        "DeleteTopics with delete.topic.enable=false"
    );
    std::thread::sleep(Duration::from_millis(300));
    wait_for_topic(&bs, "permanent", 1);
}

#[test]
fn metadata_shows_single_broker_leading_everything() {
    let broker = Broker::start();
    let bs = broker.bootstrap();
    create_topic(&bs, "m1", 4);
    create_topic(&bs, "m2", 1);

    let md = metadata(&bs, None);
    assert_eq!(
        md.brokers,
        vec![(1, "127.0.0.1".to_string(), broker.port() as i32)],
        "Metadata brokers (default node.id=1)"
    );
    for (name, n) in [("m1", 4usize), ("m2", 1)] {
        let t = md.topic(name).unwrap_or_else(|| panic!("topic {name} missing from all-topics metadata: {md:?}"));
        assert_eq!(t.error, None, "topic {name} error");
        assert_eq!(t.partitions.len(), n, "topic {name} partition count");
        for (id, leader, replicas, isr, err) in &t.partitions {
            assert_eq!(*err, None, "{name}/{id} error");
            assert_eq!(*leader, 1, "{name}/{id} leader");
            assert_eq!(replicas, &vec![1], "{name}/{id} replicas");
            assert_eq!(isr, &vec![1], "{name}/{id} isr");
        }
    }
}

#[test]
fn metadata_uses_configured_node_id() {
    let broker = Broker::start_with(&[("node.id", "7")], DEFAULT_CORES);
    let bs = broker.bootstrap();
    create_topic(&bs, "n7", 2);
    let md = metadata(&bs, Some("n7"));
    assert_eq!(md.brokers, vec![(7, "127.0.0.1".to_string(), broker.port() as i32)], "Metadata brokers with node.id=7");
    let t = md.topic("n7").unwrap();
    for (id, leader, replicas, _isr, _err) in &t.partitions {
        assert_eq!(*leader, 7, "n7/{id} leader");
        assert_eq!(replicas, &vec![7], "n7/{id} replicas");
    }
    // Producing and consuming works through the advertised broker id.
    let p = producer(&bs, &[]);
    let mut m = TestMsg::value("hello");
    m.partition = Some(1);
    let del = produce_ok(&p, "n7", &[m.clone()], Duration::from_secs(30));
    assert_eq!(del, vec![(1, 0)]);
    let got = consume_range(&bs, "n7", &[(1, 0, 1)], Duration::from_secs(30));
    assert!(got[&1][0].matches(&m));
}

/// DescribeTopicPartitions v0 (what the Java AdminClient and Kafka's 4.x tools describe
/// topics with): sorted topics, partitions paged by `response_partition_limit` and the
/// cursor, an unknown topic named with its error, empty ELR lists.
#[test]
fn describe_topic_partitions_pages_with_a_cursor() {
    use kafka_protocol::messages::describe_topic_partitions_request::{Cursor, TopicRequest};
    use kafka_protocol::messages::{
        ApiKey, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, TopicName,
    };
    use kafka_protocol::protocol::StrBytes;
    let broker = Broker::start();
    let bs = broker.bootstrap();
    create_topic(&bs, "dtp-b", 3);
    create_topic(&bs, "dtp-a", 2);
    wait_for_topic(&bs, "dtp-b", 3);
    wait_for_topic(&bs, "dtp-a", 2);
    let name = |n: &str| TopicName(StrBytes::from_string(n.to_string()));
    let describe = |limit: i32, cursor: Option<(&str, i32)>| -> DescribeTopicPartitionsResponse {
        let mut req = DescribeTopicPartitionsRequest::default();
        req.topics = ["dtp-b", "dtp-missing", "dtp-a"]
            .iter()
            .map(|n| {
                let mut t = TopicRequest::default();
                t.name = name(n);
                t
            })
            .collect();
        req.response_partition_limit = limit;
        req.cursor = cursor.map(|(t, p)| {
            let mut c = Cursor::default();
            c.topic_name = name(t);
            c.partition_index = p;
            c
        });
        kafka_call(&bs, ApiKey::DescribeTopicPartitions, 0, &req)
    };
    // Everything at once: a, b, missing (by name), each partition led by this node.
    let all = describe(2000, None);
    let seen: Vec<(String, i16, Vec<i32>)> = all
        .topics
        .iter()
        .map(|t| {
            let n = t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
            (n, t.error_code, t.partitions.iter().map(|p| p.partition_index).collect())
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("dtp-a".to_string(), 0, vec![0, 1]),
            ("dtp-b".to_string(), 0, vec![0, 1, 2]),
            ("dtp-missing".to_string(), 3, vec![]),
        ],
        "sorted topics, their partitions, UNKNOWN_TOPIC_OR_PARTITION for the missing one"
    );
    assert!(all.next_cursor.is_none());
    let p = &all.topics[0].partitions[0];
    assert_eq!((p.leader_id.0, p.isr_nodes.len()), (1, 1));
    assert_eq!((p.eligible_leader_replicas.as_deref(), p.last_known_elr.as_deref()), (Some(&[][..]), Some(&[][..])));
    // Three partitions a page: a/0, a/1, b/0, then the cursor b/1, then b/1, b/2 and the rest.
    let page = describe(3, None);
    assert_eq!(page.topics.iter().map(|t| t.partitions.len()).collect::<Vec<_>>(), vec![2, 1]);
    let next = page.next_cursor.expect("a cursor after a full page");
    assert_eq!((next.topic_name.0.as_str(), next.partition_index), ("dtp-b", 1));
    let rest = describe(3, Some(("dtp-b", 1)));
    assert_eq!(rest.topics[0].partitions.iter().map(|p| p.partition_index).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(rest.topics.len(), 2, "dtp-b from the cursor, then dtp-missing");
    assert!(rest.next_cursor.is_none());
    // A page that fills up at a topic boundary names the next topic, not an empty entry.
    let page = describe(2, None);
    assert_eq!(page.topics.len(), 1, "only dtp-a fits");
    let next = page.next_cursor.expect("a cursor at the boundary");
    assert_eq!((next.topic_name.0.as_str(), next.partition_index), ("dtp-b", 0));
}
