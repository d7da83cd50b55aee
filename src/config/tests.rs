use super::*;

fn ov(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn defaults_start_one_node_on_localhost() {
    let (cfg, warnings) = BrokerConfig::from_sources("", &[]).unwrap();
    assert!(warnings.is_empty());
    assert_eq!(cfg.listeners[0].port, 9092);
    assert_eq!(cfg.listeners[0].host, "127.0.0.1");
    assert_eq!(cfg.log_dir, PathBuf::from("./sluice-data"));
    assert_eq!(cfg.group_initial_rebalance_delay_ms, 3_000, "Kafka's default");
}

#[test]
fn properties_syntax() {
    let text = "# comment\n! other\nnode.id=3\nlog.dirs : /tmp/x\nnum.partitions 4\nlisteners=PLAINTEXT://127.0.0.1:\\\n  9999\n";
    let (cfg, _) = BrokerConfig::from_sources(text, &[]).unwrap();
    assert_eq!(cfg.node_id, 3);
    assert_eq!(cfg.log_dir, PathBuf::from("/tmp/x"));
    assert_eq!(cfg.num_partitions, 4);
    assert_eq!(cfg.listeners[0].port, 9999);
    assert_eq!(cfg.advertised_listeners[0].port, 9999);
}

#[test]
fn overrides_win_and_unknown_keys_warn() {
    let (cfg, warnings) =
        BrokerConfig::from_sources("num.partitions=2\nfoo.bar=1\n", &ov(&[("num.partitions", "7")])).unwrap();
    assert_eq!(cfg.num_partitions, 7);
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].contains("foo.bar"));
}

#[test]
fn bad_values_name_key_and_range() {
    let err = BrokerConfig::from_sources("num.partitions=0\n", &[]).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("num.partitions") && msg.contains("[1, 10000]"), "{msg}");
    let err = BrokerConfig::from_sources("", &ov(&[("auto.create.topics.enable", "yes")])).unwrap_err();
    assert!(err.to_string().contains("auto.create.topics.enable"));
    let err = BrokerConfig::from_sources("log.message.timestamp.type=Foo", &[]).unwrap_err();
    assert!(err.to_string().contains("CreateTime or LogAppendTime"));
    assert!(BrokerConfig::from_sources("listeners=nonsense", &[]).is_err());
}

#[test]
fn cluster_roles_and_listeners() {
    let cfg = |pairs: &[(&str, &str)]| {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        BrokerConfig::from_sources("", &pairs).map(|(c, _)| c)
    };
    let voters = ("controller.quorum.voters", "1@127.0.0.1:9093,2@127.0.0.1:9095");
    let both = cfg(&[voters, ("listeners", "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093")]).unwrap();
    assert!(both.is_cluster());
    assert_eq!(both.client_listener().port, 9092);
    assert_eq!(both.controller_listener().unwrap().port, 9093);
    assert_eq!(both.controller_quorum_voters[&2], ("127.0.0.1".to_string(), 9095));
    assert!(cfg(&[voters]).is_err(), "a voter needs a controller listener");
    let broker_only = [("node.id", "3"), ("process.roles", "broker"), voters];
    assert!(cfg(&broker_only).is_ok());
    assert!(cfg(&[("process.roles", "broker"), voters]).is_err(), "node 1 is a voter");
    assert!(cfg(&[("process.roles", "broker")]).is_err(), "a broker alone needs the voters");
    let controller_only = [("process.roles", "controller"), voters, ("listeners", "CONTROLLER://127.0.0.1:9093")];
    assert!(cfg(&controller_only).is_ok(), "no client listener needed");
    assert!(cfg(&[("process.roles", "router")]).is_err());
    assert!(cfg(&[("controller.quorum.voters", "1@nohost")]).is_err());
    assert!(cfg(&[("listeners", "SSL://127.0.0.1:9092")]).is_err(), "SSL is not served yet");
    assert!(cfg(&[("listeners", "PLAINTEXT://127.0.0.1:9092,PLAINTEXT://127.0.0.1:9093")]).is_err());
    let two = [
        ("listeners", "PLAINTEXT://127.0.0.1:9092,REPL://127.0.0.1:9094"),
        ("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,REPL:PLAINTEXT"),
    ];
    let c = cfg(&two).unwrap();
    assert_eq!(c.client_listeners().count(), 2);
    assert_eq!(c.inter_broker_listener().port, 9092, "Kafka's default name: PLAINTEXT");
    let c = cfg(&[two[0], two[1], ("inter.broker.listener.name", "REPL")]).unwrap();
    assert_eq!(c.inter_broker_listener().port, 9094);
    assert!(cfg(&[two[0], two[1], ("inter.broker.listener.name", "NOPE")]).is_err(), "not a listener");
}

#[test]
fn admin_listener_forms() {
    let addr = |v: &str| BrokerConfig::from_sources("", &ov(&[("admin.listeners", v)])).map(|(c, _)| c.admin_listener);
    let default = BrokerConfig::default().admin_listener.unwrap();
    assert_eq!((default.host.as_str(), default.port), ("127.0.0.1", 9644));
    let l = addr("127.0.0.1:9700").unwrap().unwrap();
    assert_eq!((l.host.as_str(), l.port), ("127.0.0.1", 9700));
    let l = addr("http://[::1]:9701").unwrap().unwrap();
    assert_eq!((l.host.as_str(), l.port), ("::1", 9701));
    assert_eq!(addr("").unwrap(), None);
    for bad in ["https://127.0.0.1:1", "127.0.0.1", "127.0.0.1:99999", "a:1,b:2"] {
        let err = addr(bad).unwrap_err().to_string();
        assert!(err.contains("admin.listeners"), "{bad}: {err}");
    }
}

#[test]
fn topic_configs_validate_and_resolve() {
    assert!(validate_topic_config("retention.ms", "1000").is_ok());
    assert!(validate_topic_config("cleanup.policy", "compact,delete").is_ok());
    let err = validate_topic_config("segment.bytes", "10").unwrap_err().to_string();
    assert!(err.contains("segment.bytes"), "{err}");
    assert!(validate_topic_config("no.such.key", "1").is_err());
    let broker = BrokerConfig::default();
    let mut m = BTreeMap::new();
    m.insert("segment.bytes".to_string(), "8192".to_string());
    let t = TopicConfig::resolve(&broker, &m);
    assert_eq!(t.segment_bytes, 8192);
    assert_eq!(t.max_message_bytes, broker.message_max_bytes);
    // min.cleanable.dirty.ratio: a fraction, defaulting from the broker's (dynamic) key.
    assert!(validate_topic_config("min.cleanable.dirty.ratio", "0.25").is_ok());
    for bad in ["1.5", "-0.1", "half"] {
        let err = validate_topic_config("min.cleanable.dirty.ratio", bad).unwrap_err().to_string();
        assert!(err.contains("min.cleanable.dirty.ratio"), "{err}");
    }
    assert_eq!(t.min_cleanable_dirty_ratio, 0.5);
    let (b, _) = BrokerConfig::from_sources("log.cleaner.min.cleanable.ratio=0.2\n", &[]).unwrap();
    assert_eq!(TopicConfig::resolve(&b, &m).min_cleanable_dirty_ratio, 0.2);
    m.insert("min.cleanable.dirty.ratio".to_string(), "0.75".to_string());
    assert_eq!(TopicConfig::resolve(&b, &m).min_cleanable_dirty_ratio, 0.75);
    assert!(validate_dynamic_broker_config("log.cleaner.min.cleanable.ratio", "2").is_err());
}
