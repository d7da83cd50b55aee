//! Protocol error codes: MESSAGE_TOO_LARGE, UNKNOWN_TOPIC_OR_PARTITION,
//! TOPIC_ALREADY_EXISTS, INVALID_TOPIC_EXCEPTION, INVALID_PARTITIONS, and
//! topic auto-creation.

mod common;

use std::time::Duration;

use common::*;
use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::Producer;
use rskafka::client::error::ProtocolError;
use rskafka::client::partition::{Compression, UnknownTopicHandling};

#[test]
fn message_too_large_is_rejected() {
    let broker = Broker::start_with(&[("message.max.bytes", "10000")], DEFAULT_CORES);
    let bs = broker.bootstrap();
    create_topic(&bs, "big", 1);

    // The client allows big messages, so the broker must be the one rejecting.
    let p = producer(
        &bs,
        &[
            ("message.max.bytes", "10000000"),
            ("compression.type", "none"),
            ("linger.ms", "0"),
            ("message.timeout.ms", "20000"),
        ],
    );
    let big = TestMsg {
        key: Some(b"big".to_vec()),
        value: Some(vec![b'x'; 50_000]),
        headers: vec![],
        timestamp: None,
        partition: Some(0),
    };
    let res = produce_all(&p, "big", &[big], Duration::from_secs(30));
    match &res[0] {
        Err(KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge)) => {}
        other => {
            panic!("50 kB message with broker message.max.bytes=10000: expected MessageSizeTooLarge, got {other:?}")
        }
    }

    // A small message still goes through, at offset 0 (nothing was appended).
    let small = TestMsg {
        key: Some(b"small".to_vec()),
        value: Some(vec![b'y'; 2_000]),
        headers: vec![],
        timestamp: None,
        partition: Some(0),
    };
    let res = produce_ok(&p, "big", &[small], Duration::from_secs(30));
    assert_eq!(res[0], (0, 0), "small message after the rejected one");
    drop(p);

    // Same through rskafka: the server error code is MESSAGE_TOO_LARGE.
    let rt = runtime();
    rt.block_on(async {
        let client = rs_client(&bs).await;
        let pc = rs_partition(&client, "big", 0).await;
        let rec = rs_record(None, Some(vec![b'z'; 50_000].as_slice()), &[], now_millis());
        let err = within(
            Duration::from_secs(30),
            "rskafka produce too large",
            pc.produce(vec![rec], Compression::NoCompression),
        )
        .await
        .expect_err("produce of a 50 kB record must fail with message.max.bytes=10000");
        assert_eq!(rs_protocol_error(&err), Some(ProtocolError::MessageTooLarge), "rskafka error: {err}");
        let latest =
            within(Duration::from_secs(20), "latest", pc.get_offset(rskafka::client::partition::OffsetAt::Latest))
                .await
                .unwrap();
        assert_eq!(latest, 1, "rejected batches must not be appended");
    });
}

#[test]
fn unknown_topic_when_auto_create_disabled() {
    let broker = Broker::start_with(&[("auto.create.topics.enable", "false")], DEFAULT_CORES);
    let bs = broker.bootstrap();

    // Metadata for an unknown topic reports UNKNOWN_TOPIC_OR_PARTITION, even
    // from a producer (which asks for auto-creation).
    let p = producer(&bs, &[]);
    let md = p.client().fetch_metadata(Some("nope"), Duration::from_secs(20)).expect("metadata request");
    let md = convert_metadata(&md);
    let t = md.topic("nope").expect("metadata response must include the requested topic");
    assert_eq!(
        t.error,
        Some(RDKafkaErrorCode::UnknownTopicOrPartition),
        "metadata error for unknown topic with auto-create disabled"
    );
    drop(p);

    let rt = runtime();
    rt.block_on(async {
        let client = rs_client(&bs).await;
        let err = within(
            Duration::from_secs(30),
            "partition_client(nope)",
            client.partition_client("nope", 0, UnknownTopicHandling::Error),
        )
        .await
        .expect_err("partition client for a missing topic must fail");
        assert_eq!(rs_protocol_error(&err), Some(ProtocolError::UnknownTopicOrPartition), "rskafka error: {err}");
    });

    // The topic was not created as a side effect.
    assert!(
        !topic_names(&bs).contains(&"nope".to_string()),
        "topic must not be auto-created when auto.create.topics.enable=false"
    );

    // A partition index beyond the topic's partition count is unknown too.
    create_topic(&bs, "two", 2);
    let c: BaseConsumer = consumer(&bs, &[]);
    let r = c.fetch_watermarks("two", 5, Duration::from_secs(10));
    assert!(r.is_err(), "watermarks of non-existent partition two/5 must fail, got {r:?}");
}

#[test]
fn create_topic_errors() {
    let broker = Broker::start();
    let bs = broker.bootstrap();

    // TOPIC_ALREADY_EXISTS
    create_topic(&bs, "dup", 2);
    let res = create_topics_raw(&bs, &[NewTopic::new("dup", 2, TopicReplication::Fixed(1))], &admin_opts());
    assert_eq!(
        res,
        vec![Err(("dup".to_string(), RDKafkaErrorCode::TopicAlreadyExists))],
        "second CreateTopics for the same name"
    );
    // The original topic is untouched.
    wait_for_topic(&bs, "dup", 2);

    // INVALID_TOPIC_EXCEPTION for bad names.
    let long = "x".repeat(250);
    for name in ["bad/name", "..", ".", "spaces are bad", "colon:bad", long.as_str()] {
        let res = create_topics_raw(&bs, &[NewTopic::new(name, 1, TopicReplication::Fixed(1))], &admin_opts());
        assert_eq!(
            res,
            vec![Err((name.to_string(), RDKafkaErrorCode::InvalidTopic))],
            "CreateTopics with invalid name {:?}",
            if name.len() > 40 { "<250 x's>" } else { name }
        );
    }
    // A name of exactly 249 legal characters is fine.
    let ok249 = format!("a.b_c-{}", "z".repeat(243));
    assert_eq!(ok249.len(), 249);
    let res = create_topics_raw(&bs, &[NewTopic::new(&ok249, 1, TopicReplication::Fixed(1))], &admin_opts());
    assert_eq!(res, vec![Ok(ok249.clone())], "CreateTopics with a 249-char legal name");

    // INVALID_PARTITIONS for 0 partitions (rdkafka passes 0 through).
    let res = create_topics_raw(&bs, &[NewTopic::new("zero", 0, TopicReplication::Fixed(1))], &admin_opts());
    assert_eq!(
        res,
        vec![Err(("zero".to_string(), RDKafkaErrorCode::InvalidPartitions))],
        "CreateTopics with 0 partitions"
    );

    // INVALID_PARTITIONS for an explicit negative count (rskafka sends it raw;
    // -1 would mean "broker default", so use -3).
    let rt = runtime();
    rt.block_on(async {
        let client = rs_client(&bs).await;
        let ctrl = client.controller_client().unwrap();
        let err = within(
            Duration::from_secs(30),
            "create_topic(-3 partitions)",
            ctrl.create_topic("negative", -3, 1, 10_000),
        )
        .await
        .expect_err("create_topic with -3 partitions must fail");
        assert_eq!(rs_protocol_error(&err), Some(ProtocolError::InvalidPartitions), "rskafka error: {err}");
        // rskafka: TOPIC_ALREADY_EXISTS too.
        let err = within(Duration::from_secs(30), "create_topic(dup)", ctrl.create_topic("dup", 1, 1, 10_000))
            .await
            .expect_err("create_topic of existing topic must fail");
        assert_eq!(rs_protocol_error(&err), Some(ProtocolError::TopicAlreadyExists), "rskafka error: {err}");
    });

    let names = topic_names(&bs);
    for bad in ["zero", "negative", "bad/name"] {
        assert!(!names.contains(&bad.to_string()), "failed CreateTopics must not create {bad}; topics: {names:?}");
    }
}

#[test]
fn auto_create_topics_on_metadata_and_produce() {
    let broker = Broker::start_with(&[("num.partitions", "3")], DEFAULT_CORES);
    let bs = broker.bootstrap();

    // A producer's metadata request for an unknown topic creates it with
    // num.partitions partitions.
    let p = producer(&bs, &[]);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let md = p.client().fetch_metadata(Some("auto1"), Duration::from_secs(10)).expect("metadata request");
        let md = convert_metadata(&md);
        let t = md.topic("auto1").cloned();
        if let Some(t) = &t {
            if t.error.is_none() && t.partitions.len() == 3 && t.partitions.iter().all(|p| p.1 >= 0) {
                break;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "auto-created topic auto1 not ready within 20s; last metadata: {t:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_for_topic(&bs, "auto1", 3);

    // Producing to a never-created topic auto-creates it and delivers.
    let msgs: Vec<TestMsg> = (0..30)
        .map(|i| TestMsg {
            key: Some(format!("k{i}").into_bytes()),
            value: Some(format!("v{i}").into_bytes()),
            headers: vec![],
            timestamp: None,
            partition: None,
        })
        .collect();
    let del = produce_ok(&p, "auto2", &msgs, Duration::from_secs(60));
    drop(p);
    assert!(del.iter().all(|&(p, _)| (0..3).contains(&p)));
    wait_for_topic(&bs, "auto2", 3);
    let total: i64 = (0..3).map(|part| watermarks(&bs, "auto2", part).1).sum();
    assert_eq!(total, 30, "messages in auto-created topic auto2");

    // A consumer-style metadata request (allow_auto_topic_creation=false) must
    // NOT create a topic.
    let md = metadata(&bs, Some("not-auto"));
    if let Some(t) = md.topic("not-auto") {
        assert_eq!(
            t.error,
            Some(RDKafkaErrorCode::UnknownTopicOrPartition),
            "metadata with allow_auto_topic_creation=false"
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !topic_names(&bs).contains(&"not-auto".to_string()),
        "metadata request with allow_auto_topic_creation=false created the topic"
    );
}
