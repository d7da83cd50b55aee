//! A cluster of three `sluice serve` processes on loopback: formatted with one cluster id,
//! one Raft controller quorum, every broker a bootstrap server. One cluster is shared by
//! the phases of `three_nodes` (each phase leaves it whole again); every wait is bounded.
mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::*;
use kafka_protocol::messages::{
    ApiKey, DescribeClusterRequest, DescribeClusterResponse, InitProducerIdRequest, InitProducerIdResponse,
    ProduceRequest, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{NewTopic, TopicReplication};

const NODES: usize = 3;
/// Short sessions, so that a dead broker is fenced within a few seconds.
const SESSION_MS: u64 = 3_000;

struct Node {
    broker: Broker,
}

struct Cluster {
    cluster_id: String,
    nodes: Vec<Node>,
}

impl Cluster {
    fn start() -> Cluster {
        let session = SESSION_MS.to_string();
        let (cluster_id, brokers) =
            start_cluster(NODES, &[("broker.session.timeout.ms", &session), ("broker.heartbeat.interval.ms", "500")]);
        Cluster { cluster_id, nodes: brokers.into_iter().map(|broker| Node { broker }).collect() }
    }

    fn node(&mut self, id: i32) -> &mut Broker {
        &mut self.nodes[id as usize - 1].broker
    }

    fn bootstrap(&self, id: i32) -> String {
        self.nodes[id as usize - 1].broker.bootstrap()
    }

    /// The active controller, as the node's admin listener reports it.
    fn controller_seen_by(&self, id: i32) -> Option<i32> {
        let status = http_get(&self.nodes[id as usize - 1].broker.admin_addr(), "/v1/status").ok()?;
        let v: serde_json::Value = serde_json::from_str(&status).ok()?;
        v["cluster"]["active_controller"].as_i64().map(|c| c as i32)
    }
}

fn broker_ids(bootstrap: &str) -> BTreeSet<i32> {
    let md = metadata(bootstrap, None);
    md.brokers.iter().map(|b| b.0).collect()
}

fn describe_cluster(bootstrap: &str) -> DescribeClusterResponse {
    kafka_call(bootstrap, ApiKey::DescribeCluster, 1, &DescribeClusterRequest::default())
}

fn produce_raw(bootstrap: &str, topic: &str, partition: i32) -> i16 {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    let mut p = PartitionProduceData::default();
    p.index = partition;
    let records: &[(Option<&[u8]>, Option<&[u8]>)] = &[(Some(b"k"), Some(b"v"))];
    p.records = Some(sluice::protocol::batch::encode_batch(0, records, now_millis()).into());
    let mut t = TopicProduceData::default();
    t.name = TopicName(StrBytes::from_string(topic.to_string()));
    t.partition_data = vec![p];
    let mut req = ProduceRequest::default();
    req.acks = 1;
    req.timeout_ms = 5_000;
    req.topic_data = vec![t];
    let resp: ProduceResponse = kafka_call(bootstrap, ApiKey::Produce, 9, &req);
    resp.responses[0].partition_responses[0].error_code
}

#[test]
fn three_nodes() {
    let mut c = Cluster::start();
    let all: BTreeSet<i32> = (1..=NODES as i32).collect();

    // Every broker is a bootstrap server and knows every broker.
    for id in 1..=NODES as i32 {
        wait_until(Duration::from_secs(20), "every broker listed", || {
            (broker_ids(&c.bootstrap(id)) == all).then_some(())
        });
        let d = describe_cluster(&c.bootstrap(id));
        assert!(all.contains(&d.controller_id.0), "controller id {} is a live broker", d.controller_id.0);
        assert_eq!(d.cluster_id.to_string(), c.cluster_id);
        assert_eq!(d.brokers.len(), NODES);
    }

    // A topic with replication factor 3, created through node 2, is visible on all, its
    // leaders spread over the brokers.
    let res = create_topics_raw(&c.bootstrap(2), &[NewTopic::new("rf3", 6, TopicReplication::Fixed(3))], &admin_opts());
    assert!(res[0].is_ok(), "create rf3: {res:?}");
    let res = create_topics_raw(&c.bootstrap(1), &[NewTopic::new("rf4", 1, TopicReplication::Fixed(4))], &admin_opts());
    assert!(matches!(&res[0], Err((_, rdkafka::types::RDKafkaErrorCode::InvalidReplicationFactor))), "rf4: {res:?}");
    let mut leaders = BTreeSet::new();
    for id in 1..=NODES as i32 {
        let t = wait_for_topic(&c.bootstrap(id), "rf3", 6);
        for (_, leader, replicas, _, _) in &t.partitions {
            assert_eq!(replicas.len(), 3, "{replicas:?}");
            leaders.insert(*leader);
        }
    }
    assert_eq!(leaders, all, "leaders spread over every broker");

    // A client bootstrapped from one broker reaches every partition's leader; a broker that
    // does not lead a partition answers NOT_LEADER_OR_FOLLOWER.
    let p = producer(&c.bootstrap(3), &[("acks", "all")]);
    let keys: Vec<String> = (0..60).map(|i| format!("key-{i}")).collect();
    let msgs: Vec<TestMsg> = keys.iter().map(|k| TestMsg::kv(Some(k.as_bytes()), Some(b"v"))).collect();
    let written = produce_ok(&p, "rf3", &msgs, Duration::from_secs(30));
    assert_eq!(written.iter().map(|(p, _)| *p).collect::<BTreeSet<_>>().len(), 6, "every partition written");
    drop(p);
    let t = wait_for_topic(&c.bootstrap(1), "rf3", 6);
    for &(id, leader, _, _, _) in &t.partitions {
        let other = (1..=NODES as i32).find(|&n| n != leader).unwrap();
        assert_eq!(produce_raw(&c.bootstrap(other), "rf3", id), 6, "partition {id} sent to node {other}");
        assert_eq!(produce_raw(&c.bootstrap(leader), "rf3", id), 0);
        let got = consume_all_partition(&c.bootstrap(other), "rf3", id);
        assert!(!got.is_empty(), "partition {id} read through node {other}'s bootstrap");
    }

    // rskafka, bootstrapped from node 1, finds and writes every partition's leader.
    runtime().block_on(async {
        let client = rs_client(&c.bootstrap(1)).await;
        for partition in 0..6 {
            let pc = rs_partition(&client, "rf3", partition).await;
            let record = rs_record(Some(b"rs"), Some(b"v"), &[], now_millis());
            let written = within(
                Duration::from_secs(20),
                "rskafka produce",
                pc.produce(vec![record], rskafka::client::partition::Compression::NoCompression),
            )
            .await
            .unwrap_or_else(|e| panic!("rskafka produce to rf3/{partition}: {e}"));
            assert_eq!(written.len(), 1);
        }
    });

    // Producer ids come from blocks the controller hands out: unique across brokers.
    let mut ids = BTreeSet::new();
    for id in 1..=NODES as i32 {
        for _ in 0..2 {
            let r: InitProducerIdResponse = kafka_call(
                &c.bootstrap(id),
                ApiKey::InitProducerId,
                4,
                &InitProducerIdRequest::default().with_transaction_timeout_ms(60_000),
            );
            assert_eq!(r.error_code, 0);
            assert!(ids.insert(r.producer_id.0), "producer id {} handed out twice", r.producer_id.0);
        }
    }

    // A consumer group bootstrapped from any broker finds its coordinator (the leader of
    // its __consumer_offsets partition) and commits there.
    let group = "cluster-group";
    let consumer = consumer(
        &c.bootstrap(2),
        &[("group.id", group), ("auto.offset.reset", "earliest"), ("enable.auto.offset.store", "true")],
    );
    rdkafka::consumer::Consumer::subscribe(&consumer, &["rf3"]).unwrap();
    let mut seen = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen < msgs.len() && Instant::now() < deadline {
        if let Some(Ok(_)) = consumer.poll(Duration::from_millis(200)) {
            seen += 1;
        }
    }
    assert_eq!(seen, msgs.len(), "the group read everything");
    rdkafka::consumer::Consumer::commit_consumer_state(&consumer, rdkafka::consumer::CommitMode::Sync).unwrap();
    drop(consumer);
    let offsets_topic = wait_for_topic(&c.bootstrap(1), "__consumer_offsets", 50);
    assert_eq!(offsets_topic.partitions[0].2.len(), 3, "min(3, brokers) replicas");

    // Kill -9 the active controller: another voter takes over within seconds; topics can be
    // created and deleted again; the restarted node catches up.
    let active = wait_until(Duration::from_secs(10), "an active controller", || c.controller_seen_by(1));
    c.node(active).kill9();
    let survivor = (1..=NODES as i32).find(|&n| n != active).unwrap();
    let started = Instant::now();
    let new_active = wait_until(Duration::from_secs(15), "a new active controller", || {
        c.controller_seen_by(survivor).filter(|&a| a != active)
    });
    eprintln!("controller {active} killed; {new_active} took over in {:?}", started.elapsed());
    let res = create_topics_raw(
        &c.bootstrap(survivor),
        &[NewTopic::new("after-failover", 2, TopicReplication::Fixed(2))],
        &admin_opts(),
    );
    assert!(res[0].is_ok(), "create after failover: {res:?}");
    let res = delete_topics_raw(&c.bootstrap(survivor), &["after-failover"]);
    assert!(res[0].is_ok(), "delete after failover: {res:?}");
    let res = create_topics_raw(
        &c.bootstrap(survivor),
        &[NewTopic::new("while-down", 1, TopicReplication::Fixed(1))],
        &admin_opts(),
    );
    assert!(res[0].is_ok(), "{res:?}");
    c.node(active).restart();
    wait_for_topic(&c.bootstrap(active), "while-down", 1);
    assert!(metadata(&c.bootstrap(active), None).topic("after-failover").is_none());

    // Kill a broker: once its session expires it is fenced, Metadata stops naming it, and
    // what it led moves to another in-sync replica; restarted, it registers again, catches
    // up and rejoins every ISR.
    let victim = (1..=NODES as i32).find(|&n| n != new_active).unwrap();
    let witness = (1..=NODES as i32).find(|&n| n != victim).unwrap();
    c.node(victim).kill9();
    wait_until(Duration::from_secs(SESSION_MS / 1000 + 10), "the dead broker fenced", || {
        (!broker_ids(&c.bootstrap(witness)).contains(&victim)).then_some(())
    });
    let md = metadata(&c.bootstrap(witness), Some("rf3"));
    let t = md.topic("rf3").expect("rf3 listed");
    for (id, leader, _, isr, _) in &t.partitions {
        assert!(*leader >= 0 && *leader != victim, "partition {id} led by a live broker: {t:?}");
        assert!(!isr.contains(&victim), "a fenced broker leaves the ISR: {t:?}");
    }
    c.node(victim).restart();
    wait_until(Duration::from_secs(30), "the broker back in every ISR", || {
        let t = metadata(&c.bootstrap(witness), Some("rf3"));
        let t = t.topic("rf3")?;
        t.partitions.iter().all(|p| p.3.contains(&victim)).then_some(())
    });

    // A voter whose metadata was wiped, formatted again, is refused; so is a node of
    // another cluster.
    let wiped = victim;
    c.node(wiped).stop();
    c.node(wiped).wipe_data();
    let id = c.cluster_id.clone();
    c.node(wiped).format(&id);
    let status = c.node(wiped).start_expecting_exit(Duration::from_secs(30));
    assert!(!status.success(), "a wiped voter must not start");
    assert!(c.node(wiped).log_tail(50).contains("wiped"), "{}", c.node(wiped).log_tail(50));
    c.node(wiped).wipe_data();
    c.node(wiped).format(&random_cluster_id());
    let status = c.node(wiped).start_expecting_exit(Duration::from_secs(30));
    assert!(!status.success(), "a node of another cluster must not start");
    assert!(c.node(wiped).log_tail(50).contains("cluster"), "{}", c.node(wiped).log_tail(50));
}

/// `process.roles` apart: node 1 only a controller (no client listener, no partitions),
/// nodes 2 and 3 both, node 4 only a broker (not a voter: it follows the metadata).
#[test]
fn dedicated_roles() {
    let cluster_id = random_cluster_id();
    let ports: Vec<(u16, u16)> = (0..4).map(|_| (free_port(), free_port())).collect();
    // The brokers also listen on REPLICATION, the inter-broker listener: followers fetch
    // there, and clients connected there are told the brokers' REPLICATION addresses.
    let repl_ports: Vec<u16> = (0..4).map(|_| free_port()).collect();
    let voters = (0..3).map(|i| format!("{}@127.0.0.1:{}", i + 1, ports[i].1)).collect::<Vec<_>>().join(",");
    let mut nodes = Vec::new();
    for (i, (port, cport)) in ports.iter().enumerate() {
        let id = i as i32 + 1;
        let repl = repl_ports[i];
        let (roles, listeners) = match id {
            1 => ("controller", format!("CONTROLLER://127.0.0.1:{cport}")),
            4 => ("broker", format!("PLAINTEXT://127.0.0.1:{port},REPLICATION://127.0.0.1:{repl}")),
            _ => (
                "broker,controller",
                format!("PLAINTEXT://127.0.0.1:{port},REPLICATION://127.0.0.1:{repl},CONTROLLER://127.0.0.1:{cport}"),
            ),
        };
        let overrides = vec![
            ("node.id".to_string(), id.to_string()),
            ("process.roles".to_string(), roles.to_string()),
            ("controller.quorum.voters".to_string(), voters.clone()),
            ("listeners".to_string(), listeners),
            (
                "listener.security.protocol.map".to_string(),
                "PLAINTEXT:PLAINTEXT,REPLICATION:PLAINTEXT,CONTROLLER:PLAINTEXT".to_string(),
            ),
            ("inter.broker.listener.name".to_string(), "REPLICATION".to_string()),
            // Long sessions: a broker that leaves sooner than this did so by controlled shutdown.
            ("broker.session.timeout.ms".to_string(), "60000".to_string()),
            ("broker.heartbeat.interval.ms".to_string(), "500".to_string()),
        ];
        let mut broker = Broker::unstarted(*port, &overrides, 1);
        broker.format(&cluster_id);
        nodes.push(broker);
    }
    for n in nodes.iter_mut() {
        n.spawn();
    }
    for n in nodes.iter_mut().skip(1) {
        n.wait_ready();
    }
    let brokers: BTreeSet<i32> = [2, 3, 4].into();
    for b in nodes.iter().skip(1) {
        wait_until(Duration::from_secs(20), "the brokers listed", || {
            (broker_ids(&b.bootstrap()) == brokers).then_some(())
        });
    }
    let alive = nodes[0].is_running();
    assert!(alive, "the controller-only node runs:\n{}", nodes[0].log_tail(30));
    // Created through the broker-only node (forwarded to the active controller), placed on
    // the three brokers only, and written through it.
    let res = create_topics_raw(
        &nodes[3].bootstrap(),
        &[NewTopic::new("roles", 3, TopicReplication::Fixed(3))],
        &admin_opts(),
    );
    assert!(res[0].is_ok(), "{res:?}");
    for b in nodes.iter().skip(1) {
        let t = wait_for_topic(&b.bootstrap(), "roles", 3);
        for (_, _, replicas, _, _) in &t.partitions {
            assert_eq!(replicas.iter().copied().collect::<BTreeSet<_>>(), brokers, "{replicas:?}");
        }
    }
    let p = producer(&nodes[3].bootstrap(), &[("acks", "all")]);
    let keys: Vec<String> = (0..30).map(|i| format!("k{i}")).collect();
    let msgs: Vec<TestMsg> = keys.iter().map(|k| TestMsg::kv(Some(k.as_bytes()), Some(b"v"))).collect();
    produce_ok(&p, "roles", &msgs, Duration::from_secs(30));
    drop(p);
    // Each listener's clients are told that listener's addresses.
    let on = |port: u16| {
        let md = metadata(&format!("127.0.0.1:{port}"), None);
        md.brokers.iter().map(|b| (b.0, b.2)).collect::<BTreeSet<(i32, i32)>>()
    };
    let client: BTreeSet<(i32, i32)> = (1..4).map(|i| (i as i32 + 1, ports[i].0 as i32)).collect();
    let repl: BTreeSet<(i32, i32)> = (1..4).map(|i| (i as i32 + 1, repl_ports[i] as i32)).collect();
    assert_eq!(on(ports[3].0), client);
    assert_eq!(on(repl_ports[3]), repl);
    // The acks=all writes above needed the followers, and they fetched on REPLICATION.
    let fetched_from: BTreeSet<String> = nodes[1..]
        .iter()
        .flat_map(|n| {
            let log = n.log_tail(100_000);
            log.lines()
                .filter(|l| l.contains("replica fetcher connected"))
                .filter_map(|l| l.split("addr=").nth(1).and_then(|a| a.split_whitespace().next()).map(str::to_string))
                .collect::<Vec<_>>()
        })
        .collect();
    let repl_addrs: BTreeSet<String> = repl_ports[1..].iter().map(|p| format!("127.0.0.1:{p}")).collect();
    assert!(
        !fetched_from.is_empty() && fetched_from.is_subset(&repl_addrs),
        "followers fetched from {fetched_from:?}, not only the REPLICATION listeners {repl_addrs:?}"
    );
    // SIGTERM: the broker asks to be moved out of leadership before it stops (controlled
    // shutdown), so it is fenced at once, not after its 60 s session.
    nodes[2].stop();
    wait_until(Duration::from_secs(15), "node 3 out after its controlled shutdown", || {
        (!broker_ids(&nodes[1].bootstrap()).contains(&3)).then_some(())
    });
    let md = metadata(&nodes[1].bootstrap(), Some("roles"));
    assert!(md.topic("roles").unwrap().partitions.iter().all(|p| p.1 != 3), "node 3 leads nothing");
    for n in nodes.iter_mut() {
        if n.is_running() {
            n.stop();
        }
    }
}

/// `sluice format` takes any cluster id `sluice random-uuid` makes, also one starting with
/// '-' (a base64url id does one time in 64).
#[test]
fn format_takes_an_id_starting_with_a_dash() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["format", "--cluster-id", "-8Lq3vJjRWyqzN0fG2b1xA"])
        .arg("--override")
        .arg(format!("log.dirs={}", dir.path().display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let meta = std::fs::read_to_string(dir.path().join("meta.properties")).unwrap();
    assert!(meta.contains("cluster.id=-8Lq3vJjRWyqzN0fG2b1xA"), "{meta}");
}
