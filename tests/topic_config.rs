//! The configuration APIs with rdkafka's admin client: DescribeConfigs (topic and broker,
//! sources as Kafka reports them), AlterConfigs (applied to the running partition and kept
//! across a restart; a bad value is INVALID_CONFIG), CreatePartitions (new partitions
//! usable at once, shrinking refused), and `sluicectl topic alter` on top of them.
//! Per-resource errors of AlterConfigs and IncrementalAlterConfigs are checked with raw
//! protocol calls: the rdkafka crate reports every AlterConfigs resource as a success.

mod common;

use std::time::Duration;

use common::*;
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, ApiKey, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{ConfigSource, NewPartitions, ResourceSpecifier};
use rdkafka::error::RDKafkaErrorCode;

fn describe_topic(bs: &str, topic: &str) -> rdkafka::admin::ConfigResource {
    let admin = admin(bs);
    let res = block_on(
        ADMIN_TIMEOUT,
        "DescribeConfigs",
        admin.describe_configs([&ResourceSpecifier::Topic(topic)], &admin_opts()),
    )
    .expect("DescribeConfigs request");
    res.into_iter().next().unwrap().unwrap_or_else(|e| panic!("DescribeConfigs({topic}): {e:?}"))
}

/// AlterConfigs (the legacy, replace-all API) for one resource; returns the error code.
/// Raw, because the rdkafka crate reports every resource of an AlterConfigs result as Ok.
fn alter(bs: &str, resource_type: i8, name: &str, entries: &[(&str, &str)]) -> (i16, Option<String>) {
    use kafka_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
    let mut res = AlterConfigsResource::default();
    res.resource_type = resource_type;
    res.resource_name = StrBytes::from_string(name.to_string());
    for (k, v) in entries {
        let mut c = AlterableConfig::default();
        c.name = StrBytes::from_string(k.to_string());
        c.value = Some(StrBytes::from_string(v.to_string()));
        res.configs.push(c);
    }
    let mut req = AlterConfigsRequest::default();
    req.resources.push(res);
    let resp: AlterConfigsResponse = kafka_call(bs, ApiKey::AlterConfigs, 2, &req);
    let r = &resp.responses[0];
    (r.error_code, r.error_message.as_ref().map(|m| m.to_string()))
}

fn alter_topic(bs: &str, topic: &str, entries: &[(&str, &str)]) -> Result<(), i16> {
    match alter(bs, 2, topic, entries) {
        (0, _) => Ok(()),
        (code, _) => Err(code),
    }
}

/// IncrementalAlterConfigs on one topic: (key, op, value); op 0 SET, 1 DELETE, 2 APPEND, 3 SUBTRACT.
fn incremental(bs: &str, topic: &str, ops: &[(&str, i8, Option<&str>)]) -> (i16, Option<String>) {
    incremental_on(bs, 2, topic, ops)
}

/// IncrementalAlterConfigs on one resource of any type (2 topic, 4 broker).
fn incremental_on(bs: &str, resource_type: i8, name: &str, ops: &[(&str, i8, Option<&str>)]) -> (i16, Option<String>) {
    use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
    let mut res = AlterConfigsResource::default();
    res.resource_type = resource_type;
    res.resource_name = StrBytes::from_string(name.to_string());
    for (k, op, v) in ops {
        let mut c = AlterableConfig::default();
        c.name = StrBytes::from_string(k.to_string());
        c.config_operation = *op;
        c.value = v.map(|v| StrBytes::from_string(v.to_string()));
        res.configs.push(c);
    }
    let mut req = IncrementalAlterConfigsRequest::default();
    req.resources.push(res);
    let resp: IncrementalAlterConfigsResponse = kafka_call(bs, ApiKey::IncrementalAlterConfigs, 1, &req);
    let r = &resp.responses[0];
    (r.error_code, r.error_message.as_ref().map(|m| m.to_string()))
}

const INVALID_CONFIG: i16 = 40;
const INVALID_REQUEST: i16 = 42;
const UNKNOWN_TOPIC: i16 = 3;

#[test]
fn describe_and_alter_topic_configs() {
    let mut broker = Broker::start_with(&[("log.retention.ms", "86400000")], 1);
    let bs = broker.bootstrap();
    create_topic_with_config(&bs, "cfg", 1, &[("segment.bytes", "1048576")]);

    let c = describe_topic(&bs, "cfg");
    let seg = c.get("segment.bytes").expect("segment.bytes described");
    assert_eq!(seg.value.as_deref(), Some("1048576"));
    assert_eq!(seg.source, ConfigSource::DynamicTopic);
    assert!(!seg.is_read_only);
    // Inherited from a broker key set at start-up: STATIC_BROKER_CONFIG.
    let ret = c.get("retention.ms").expect("retention.ms described");
    assert_eq!(ret.value.as_deref(), Some("86400000"));
    assert_eq!(ret.source, ConfigSource::StaticBroker);
    // Inherited from a broker default: DEFAULT_CONFIG.
    let mmb = c.get("max.message.bytes").expect("max.message.bytes described");
    assert_eq!(mmb.value.as_deref(), Some("1048588"));
    assert_eq!(mmb.source, ConfigSource::Default);
    assert_eq!(c.get("cleanup.policy").and_then(|e| e.value.as_deref()), Some("delete"));

    // AlterConfigs replaces the set: segment.bytes goes back to the default.
    alter_topic(&bs, "cfg", &[("max.message.bytes", "2048"), ("retention.ms", "3600000")]).expect("alter");
    let c = describe_topic(&bs, "cfg");
    assert_eq!(c.get("max.message.bytes").unwrap().value.as_deref(), Some("2048"));
    assert_eq!(c.get("max.message.bytes").unwrap().source, ConfigSource::DynamicTopic);
    assert_eq!(c.get("retention.ms").unwrap().value.as_deref(), Some("3600000"));
    assert_eq!(c.get("segment.bytes").unwrap().source, ConfigSource::Default);

    // The running partition applies it at once: a 4 KiB message is now too large.
    let p = producer(&bs, &[("message.timeout.ms", "10000"), ("retries", "0")]);
    let big =
        TestMsg { key: None, value: Some(vec![b'x'; 4096]), headers: vec![], timestamp: None, partition: Some(0) };
    let d = produce_all(&p, "cfg", &[big.clone()], Duration::from_secs(30));
    assert!(
        matches!(&d[0], Err(e) if format!("{e:?}").contains("SizeTooLarge")),
        "a 4 KiB message must be refused with max.message.bytes=2048: {d:?}"
    );

    // Invalid values and unknown keys: INVALID_CONFIG with a message naming the key; nothing changes.
    let (code, msg) = alter(&bs, 2, "cfg", &[("segment.bytes", "12")]);
    assert_eq!(code, INVALID_CONFIG);
    assert!(msg.unwrap_or_default().contains("segment.bytes"));
    let (code, msg) = alter(&bs, 2, "cfg", &[("no.such.config", "1")]);
    assert_eq!(code, INVALID_CONFIG);
    assert!(msg.unwrap_or_default().contains("no.such.config"));
    assert_eq!(describe_topic(&bs, "cfg").get("max.message.bytes").unwrap().value.as_deref(), Some("2048"));
    // Unknown topic.
    assert_eq!(alter_topic(&bs, "nope", &[("retention.ms", "1")]), Err(UNKNOWN_TOPIC));

    // IncrementalAlterConfigs: SET keeps the others, DELETE reverts to the default, APPEND
    // and SUBTRACT edit list configs, a bad value changes nothing.
    assert_eq!(incremental(&bs, "cfg", &[("segment.ms", 0, Some("60000"))]).0, 0);
    let c = describe_topic(&bs, "cfg");
    assert_eq!(c.get("segment.ms").unwrap().value.as_deref(), Some("60000"));
    assert_eq!(c.get("max.message.bytes").unwrap().value.as_deref(), Some("2048"));
    assert_eq!(incremental(&bs, "cfg", &[("max.message.bytes", 1, None)]).0, 0);
    assert_eq!(describe_topic(&bs, "cfg").get("max.message.bytes").unwrap().source, ConfigSource::Default);
    assert_eq!(incremental(&bs, "cfg", &[("cleanup.policy", 2, Some("compact"))]).0, 0);
    assert_eq!(describe_topic(&bs, "cfg").get("cleanup.policy").unwrap().value.as_deref(), Some("delete,compact"));
    assert_eq!(incremental(&bs, "cfg", &[("cleanup.policy", 3, Some("delete"))]).0, 0);
    assert_eq!(describe_topic(&bs, "cfg").get("cleanup.policy").unwrap().value.as_deref(), Some("compact"));
    let (code, msg) = incremental(&bs, "cfg", &[("retention.ms", 0, Some("soon"))]);
    assert_eq!(code, INVALID_CONFIG);
    assert!(msg.unwrap_or_default().contains("retention.ms"));
    assert_eq!(incremental(&bs, "cfg", &[("segment.ms", 2, Some("1"))]).0, INVALID_CONFIG, "APPEND to a non-list");
    assert_eq!(incremental(&bs, "nope", &[("segment.ms", 0, Some("1"))]).0, UNKNOWN_TOPIC);
    assert_eq!(describe_topic(&bs, "cfg").get("segment.ms").unwrap().value.as_deref(), Some("60000"));
    assert_eq!(incremental(&bs, "cfg", &[("max.message.bytes", 0, Some("2048"))]).0, 0);
    // (Raw: librdkafka drops a DescribeConfigs resource's error and reports no entries.)
    use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
    let mut res = DescribeConfigsResource::default();
    res.resource_type = 2;
    res.resource_name = StrBytes::from_static_str("nope");
    let mut req = DescribeConfigsRequest::default();
    req.resources.push(res);
    let resp: DescribeConfigsResponse = kafka_call(&bs, ApiKey::DescribeConfigs, 4, &req);
    assert_eq!(resp.results[0].error_code, UNKNOWN_TOPIC);
    assert!(resp.results[0].configs.is_empty());

    // Configs are metadata: they survive a restart.
    broker.stop();
    broker.restart();
    let bs = broker.bootstrap();
    wait_for_topic(&bs, "cfg", 1);
    assert_eq!(describe_topic(&bs, "cfg").get("max.message.bytes").unwrap().value.as_deref(), Some("2048"));
}

#[test]
fn describe_broker_configs() {
    let broker = Broker::start_with(&[("num.partitions", "3")], 1);
    let bs = broker.bootstrap();
    let admin = admin(&bs);
    let res = block_on(
        ADMIN_TIMEOUT,
        "DescribeConfigs",
        admin.describe_configs([&ResourceSpecifier::Broker(1)], &admin_opts()),
    )
    .expect("DescribeConfigs request");
    let c = res.into_iter().next().unwrap().expect("broker configs");
    let np = c.get("num.partitions").expect("num.partitions");
    assert_eq!(np.value.as_deref(), Some("3"));
    assert_eq!(np.source, ConfigSource::StaticBroker);
    assert!(np.is_read_only);
    let seg = c.get("log.segment.bytes").expect("log.segment.bytes");
    assert_eq!(seg.value.as_deref(), Some("1073741824"));
    assert_eq!(seg.source, ConfigSource::Default);
    // Only the dynamic broker configs can change at run time (INVALID_REQUEST, as Kafka).
    let (code, msg) = alter(&bs, 4, "1", &[("num.partitions", "5")]);
    assert_eq!(code, INVALID_REQUEST);
    let msg = msg.unwrap_or_default();
    assert!(msg.contains("num.partitions") && msg.contains("server.properties"), "{msg}");
}

fn describe_broker(bs: &str) -> rdkafka::admin::ConfigResource {
    let admin = admin(bs);
    let res = block_on(
        ADMIN_TIMEOUT,
        "DescribeConfigs",
        admin.describe_configs([&ResourceSpecifier::Broker(1)], &admin_opts()),
    )
    .expect("DescribeConfigs request");
    res.into_iter().next().unwrap().expect("broker configs")
}

/// Dynamic broker configs (AlterConfigs / IncrementalAlterConfigs on a broker resource):
/// the cluster-wide default ("") and this broker's own ("1") change the defaults of every
/// topic that does not set the key itself, at once and on the running partitions; they are
/// shown with Kafka's sources, kept across a restart, and bad keys or values are refused
/// with a message naming the key.
#[test]
fn dynamic_broker_configs_change_topic_defaults() {
    let mut broker = Broker::start_with(&[], 1);
    let bs = broker.bootstrap();
    create_topic(&bs, "dyn", 1);
    create_topic_with_config(&bs, "own", 1, &[("retention.ms", "5000")]);

    assert_eq!(alter(&bs, 4, "", &[("log.retention.ms", "3600000")]).0, 0);
    let c = describe_topic(&bs, "dyn");
    let ret = c.get("retention.ms").unwrap();
    assert_eq!(ret.value.as_deref(), Some("3600000"));
    assert_eq!(ret.source, ConfigSource::DynamicDefaultBroker);
    assert_eq!(describe_topic(&bs, "own").get("retention.ms").unwrap().value.as_deref(), Some("5000"));

    // This broker's own value wins over the cluster-wide default.
    assert_eq!(alter(&bs, 4, "1", &[("log.retention.ms", "7200000")]).0, 0);
    let c = describe_topic(&bs, "dyn");
    let ret = c.get("retention.ms").unwrap();
    assert_eq!((ret.value.as_deref(), &ret.source), (Some("7200000"), &ConfigSource::DynamicBroker));
    let b = describe_broker(&bs);
    let lr = b.get("log.retention.ms").unwrap();
    assert_eq!(
        (lr.value.as_deref(), &lr.source, lr.is_read_only),
        (Some("7200000"), &ConfigSource::DynamicBroker, false)
    );

    // Incremental ops on a broker, Kafka's keys for parts Sluice lacks are kept and shown.
    assert_eq!(incremental_on(&bs, 4, "1", &[("background.threads", 0, Some("9"))]).0, 0);
    assert_eq!(incremental_on(&bs, 4, "1", &[("log.cleanup.policy", 2, Some("compact"))]).0, 0);
    assert_eq!(describe_topic(&bs, "dyn").get("cleanup.policy").unwrap().value.as_deref(), Some("delete,compact"));
    assert_eq!(incremental_on(&bs, 4, "1", &[("log.cleanup.policy", 3, Some("compact"))]).0, 0);
    assert_eq!(describe_topic(&bs, "dyn").get("cleanup.policy").unwrap().value.as_deref(), Some("delete"));
    let b = describe_broker(&bs);
    assert_eq!(b.get("background.threads").and_then(|e| e.value.as_deref()), Some("9"));
    assert_eq!(b.get("log.retention.ms").unwrap().value.as_deref(), Some("7200000"), "SET kept the others");

    // Bad values, keys that are not dynamic and other brokers are refused; nothing changes.
    // A broker's config is INVALID_REQUEST, as Kafka ("Invalid config value for resource").
    let (code, msg) = incremental_on(&bs, 4, "1", &[("log.retention.ms", 0, Some("soon"))]);
    assert_eq!(code, INVALID_REQUEST);
    assert!(msg.unwrap_or_default().contains("log.retention.ms"));
    assert_eq!(incremental_on(&bs, 4, "1", &[("background.threads", 0, Some("0"))]).0, INVALID_REQUEST);
    assert_eq!(incremental_on(&bs, 4, "1", &[("log.dirs", 0, Some("/tmp/elsewhere"))]).0, INVALID_REQUEST);
    assert_eq!(alter(&bs, 4, "7", &[("log.retention.ms", "1")]).0, INVALID_REQUEST);
    assert_eq!(describe_topic(&bs, "dyn").get("retention.ms").unwrap().value.as_deref(), Some("7200000"));

    // The running partition applies a new default at once: a 4 KiB message is now too large.
    assert_eq!(incremental_on(&bs, 4, "", &[("message.max.bytes", 0, Some("2048"))]).0, 0);
    let p = producer(&bs, &[("message.timeout.ms", "10000"), ("retries", "0")]);
    let big =
        TestMsg { key: None, value: Some(vec![b'x'; 4096]), headers: vec![], timestamp: None, partition: Some(0) };
    let d = produce_all(&p, "dyn", &[big], Duration::from_secs(30));
    assert!(matches!(&d[0], Err(e) if format!("{e:?}").contains("SizeTooLarge")), "{d:?}");
    drop(p);

    // Dynamic configs are metadata: they survive a restart.
    broker.stop();
    broker.restart();
    let bs = broker.bootstrap();
    wait_for_topic(&bs, "dyn", 1);
    let c = describe_topic(&bs, "dyn");
    assert_eq!(c.get("retention.ms").unwrap().value.as_deref(), Some("7200000"));
    assert_eq!(c.get("max.message.bytes").unwrap().source, ConfigSource::DynamicDefaultBroker);
}

#[test]
fn create_partitions_are_usable_at_once() {
    let broker = Broker::start_with(&[], 2);
    let bs = broker.bootstrap();
    create_topic(&bs, "grow", 2);
    let admin = admin(&bs);
    let res = block_on(
        ADMIN_TIMEOUT,
        "CreatePartitions",
        admin.create_partitions([&NewPartitions::new("grow", 5)], &admin_opts()),
    )
    .expect("CreatePartitions request");
    assert!(res[0].is_ok(), "{res:?}");
    wait_for_topic(&bs, "grow", 5);
    // Produce to and read back from every partition, new ones included.
    let msgs: Vec<TestMsg> = (0..50)
        .map(|i| TestMsg {
            key: None,
            value: Some(format!("m{i}").into_bytes()),
            headers: vec![],
            timestamp: None,
            partition: Some((i % 5) as i32),
        })
        .collect();
    let p = producer(&bs, &[]);
    produce_ok(&p, "grow", &msgs, Duration::from_secs(30));
    for part in 0..5 {
        let got = consume_all_partition(&bs, "grow", part);
        assert_eq!(got.len(), 10, "partition {part}");
        assert_contiguous(&got, 0, &format!("grow/{part}"));
    }
    // Shrinking or keeping the count: INVALID_PARTITIONS; unknown topic; internal topic.
    for (topic, n, want) in [
        ("grow", 5, RDKafkaErrorCode::InvalidPartitions),
        ("grow", 3, RDKafkaErrorCode::InvalidPartitions),
        ("nope", 3, RDKafkaErrorCode::UnknownTopicOrPartition),
        ("__consumer_offsets", 60, RDKafkaErrorCode::InvalidRequest),
    ] {
        let res = block_on(
            ADMIN_TIMEOUT,
            "CreatePartitions",
            admin.create_partitions([&NewPartitions::new(topic, n)], &admin_opts()),
        )
        .expect("CreatePartitions request");
        assert!(matches!(&res[0], Err((_, code)) if *code == want), "{topic} -> {n}: {res:?}");
    }
    // validate_only changes nothing.
    let opts = admin_opts().validate_only(true);
    let res =
        block_on(ADMIN_TIMEOUT, "CreatePartitions", admin.create_partitions([&NewPartitions::new("grow", 8)], &opts))
            .expect("CreatePartitions request");
    assert!(res[0].is_ok(), "{res:?}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(metadata(&bs, Some("grow")).topic("grow").unwrap().partitions.len(), 5);
}
