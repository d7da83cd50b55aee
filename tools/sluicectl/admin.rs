//! Topic administration (create, list, describe, delete, alter), per-partition
//! offsets, and cluster information.
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use rdkafka::admin::{ConfigSource, NewPartitions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::consumer::Consumer;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use serde_json::json;

use crate::util::{self, admin_opts, block_on, code_desc, is_unsupported, kerr, print_json, print_table};

#[derive(Subcommand)]
pub enum TopicCmd {
    /// Create a topic.
    Create {
        name: String,
        /// Number of partitions.
        #[arg(short, long, default_value_t = 1)]
        partitions: i32,
        /// Replication factor.
        #[arg(short = 'r', long, default_value_t = 1)]
        replication_factor: i32,
        /// Topic config, KEY=VALUE (repeatable).
        #[arg(short, long = "config", value_name = "KEY=VALUE", value_parser = util::kv_arg)]
        config: Vec<(String, String)>,
    },
    /// List topics.
    List {
        /// Include internal topics (names starting with "__").
        #[arg(short, long)]
        internal: bool,
    },
    /// Show partitions (leader, replicas, ISR) and configs of a topic.
    Describe {
        name: String,
        /// Show every config, not only the ones set on the topic.
        #[arg(long)]
        all_configs: bool,
    },
    /// Delete a topic.
    Delete { name: String },
    /// Add partitions or change configs of a topic.
    Alter {
        name: String,
        /// New total number of partitions (must be larger than the current one).
        #[arg(short, long)]
        partitions: Option<usize>,
        /// Config to set, KEY=VALUE (repeatable). Other topic overrides are kept.
        #[arg(short, long = "config", value_name = "KEY=VALUE", value_parser = util::kv_arg)]
        config: Vec<(String, String)>,
    },
}

#[derive(Args)]
pub struct OffsetsArgs {
    pub topic: String,
    /// Only this partition.
    #[arg(short, long)]
    pub partition: Option<i32>,
}

#[derive(Subcommand)]
pub enum ClusterCmd {
    /// Brokers, controller, cluster id and topic count.
    Info,
    /// Partitions whose ISR is smaller than their replica set, and offline ones (no
    /// leader), like kafka-topics --under-replicated-partitions / --unavailable-partitions.
    UnderReplicated,
    /// Moves leadership back to preferred replicas (kafka-leader-election.sh), or with
    /// --unclean gives leaderless partitions any live replica.
    ElectLeaders {
        /// Only this topic (default: every partition).
        #[arg(long)]
        topic: Option<String>,
        /// Only this partition of --topic.
        #[arg(long, requires = "topic")]
        partition: Option<i32>,
        /// Unclean election: may lose what only dead replicas had.
        #[arg(long)]
        unclean: bool,
    },
    /// Moves a partition to other brokers (kafka-reassign-partitions.sh --execute): the
    /// new replicas catch up before the old ones leave. --cancel stops a move.
    Reassign {
        #[arg(long)]
        topic: String,
        #[arg(long)]
        partition: i32,
        /// The new replica list, comma-separated; the first is the preferred leader.
        #[arg(long, value_delimiter = ',', required_unless_present = "cancel", conflicts_with = "cancel")]
        replicas: Vec<i32>,
        #[arg(long)]
        cancel: bool,
    },
    /// Moves in progress (kafka-reassign-partitions.sh --verify).
    Reassignments,
    /// Each broker's log directory and the replicas in it, with their sizes
    /// (kafka-log-dirs.sh --describe).
    LogDirs {
        /// Only this topic.
        #[arg(long)]
        topic: Option<String>,
    },
}

pub fn topic(cli: &crate::Cli, cmd: &TopicCmd) -> Result<(), String> {
    match cmd {
        TopicCmd::Create { name, partitions, replication_factor, config } => {
            create(cli, name, *partitions, *replication_factor, config)
        }
        TopicCmd::List { internal } => list(cli, *internal),
        TopicCmd::Describe { name, all_configs } => describe(cli, name, *all_configs),
        TopicCmd::Delete { name } => delete(cli, name),
        TopicCmd::Alter { name, partitions, config } => alter(cli, name, *partitions, config),
    }
}

fn create(cli: &crate::Cli, name: &str, partitions: i32, rf: i32, config: &[(String, String)]) -> Result<(), String> {
    if partitions < 1 {
        return Err("create topic: --partitions must be at least 1".into());
    }
    if rf < 1 {
        return Err("create topic: --replication-factor must be at least 1".into());
    }
    let admin = util::admin(cli)?;
    let mut t = NewTopic::new(name, partitions, TopicReplication::Fixed(rf));
    for (k, v) in config {
        t = t.set(k, v);
    }
    let res = block_on(admin.create_topics([&t], &admin_opts()))
        .map_err(|e| format!("create topic '{name}': {}", kerr(&e)))?;
    for r in res {
        if let Err((_, code)) = r {
            return Err(format!("create topic '{name}': {}", code_desc(code)));
        }
    }
    // Wait (briefly) until the topic is visible with all its partitions.
    let deadline = Instant::now() + util::TIMEOUT;
    let c = util::query_consumer(cli, None)?;
    while Instant::now() < deadline {
        if let Ok(p) = util::topic_partitions(cli, &c, name) {
            if p.len() as i32 >= partitions {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if cli.json {
        print_json(&json!({"topic": name, "partitions": partitions, "replication_factor": rf, "created": true}));
    } else {
        println!("created topic '{name}' ({partitions} partitions, replication factor {rf})");
    }
    Ok(())
}

fn list(cli: &crate::Cli, internal: bool) -> Result<(), String> {
    let c = util::query_consumer(cli, None)?;
    let md = util::fetch_metadata(cli, &c, None)?;
    let mut topics: Vec<_> = md
        .topics()
        .iter()
        .filter(|t| t.error().is_none())
        .filter(|t| internal || !t.name().starts_with("__"))
        .collect();
    topics.sort_by(|a, b| a.name().cmp(b.name()));
    if cli.json {
        let v: Vec<_> = topics
            .iter()
            .map(|t| {
                let rf = t.partitions().first().map(|p| p.replicas().len()).unwrap_or(0);
                json!({"name": t.name(), "partitions": t.partitions().len(), "replication_factor": rf})
            })
            .collect();
        print_json(&json!(v));
    } else {
        let rows: Vec<Vec<String>> = topics
            .iter()
            .map(|t| {
                let rf = t.partitions().first().map(|p| p.replicas().len()).unwrap_or(0);
                vec![t.name().to_string(), t.partitions().len().to_string(), rf.to_string()]
            })
            .collect();
        print_table(&["NAME", "PARTITIONS", "REPLICAS"], &rows);
    }
    Ok(())
}

/// Configs of a topic: `Ok(Some(entries))`, `Ok(None)` when the broker does not
/// implement DescribeConfigs, `Err` on other failures.
type ConfigRow = (String, Option<String>, String, bool);

fn topic_configs(admin: &util::Admin, name: &str) -> Result<Option<Vec<ConfigRow>>, String> {
    let spec = ResourceSpecifier::Topic(name);
    match block_on(admin.describe_configs([&spec], &admin_opts())) {
        Err(KafkaError::AdminOp(code)) if is_unsupported(code) => Ok(None),
        Err(e) => Err(format!("describe configs of '{name}': {}", kerr(&e))),
        Ok(results) => {
            let mut rows = Vec::new();
            for r in results {
                match r {
                    Err(code) if is_unsupported(code) => return Ok(None),
                    Err(code) => return Err(format!("describe configs of '{name}': {}", code_desc(code))),
                    Ok(res) => {
                        for e in res.entries {
                            let source = match e.source {
                                ConfigSource::Unknown => "unknown",
                                ConfigSource::DynamicTopic => "topic",
                                ConfigSource::DynamicBroker => "dynamic-broker",
                                ConfigSource::DynamicDefaultBroker => "dynamic-default-broker",
                                ConfigSource::StaticBroker => "static-broker",
                                ConfigSource::Default => "default",
                            };
                            let value = if e.is_sensitive { Some("(sensitive)".to_string()) } else { e.value };
                            rows.push((e.name, value, source.to_string(), e.is_default));
                        }
                    }
                }
            }
            rows.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(Some(rows))
        }
    }
}

fn describe(cli: &crate::Cli, name: &str, all_configs: bool) -> Result<(), String> {
    let c = util::query_consumer(cli, None)?;
    util::topic_partitions(cli, &c, name)?;
    let md = util::fetch_metadata(cli, &c, Some(name))?;
    let t = md.topics().iter().find(|t| t.name() == name).ok_or_else(|| format!("unknown topic '{name}'"))?;
    let mut parts: Vec<_> = t.partitions().iter().collect();
    parts.sort_by_key(|p| p.id());
    let admin = util::admin(cli)?;
    let configs = topic_configs(&admin, name)?;
    let shown: Option<Vec<&ConfigRow>> =
        configs.as_ref().map(|v| v.iter().filter(|r| all_configs || r.2 == "topic").collect());
    if cli.json {
        let partitions: Vec<_> = parts
            .iter()
            .map(|p| {
                json!({
                    "partition": p.id(),
                    "leader": p.leader(),
                    "replicas": p.replicas(),
                    "isr": p.isr(),
                    "error": p.error().map(|e| code_desc(RDKafkaErrorCode::from(e))),
                })
            })
            .collect();
        let cfg = shown.as_ref().map(|v| {
            v.iter().map(|r| json!({"name": r.0, "value": r.1, "source": r.2, "default": r.3})).collect::<Vec<_>>()
        });
        print_json(&json!({
            "name": name,
            "partitions": partitions,
            "replication_factor": parts.first().map(|p| p.replicas().len()).unwrap_or(0),
            "configs": cfg,
            "configs_available": configs.is_some(),
        }));
        return Ok(());
    }
    println!("NAME         {name}");
    println!("PARTITIONS   {}", parts.len());
    println!("REPLICAS     {}", parts.first().map(|p| p.replicas().len()).unwrap_or(0));
    println!();
    let rows: Vec<Vec<String>> = parts
        .iter()
        .map(|p| {
            vec![
                p.id().to_string(),
                p.leader().to_string(),
                format!("[{}]", util::join_ids(p.replicas())),
                format!("[{}]", util::join_ids(p.isr())),
                p.error().map(|e| code_desc(RDKafkaErrorCode::from(e))).unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    print_table(&["PARTITION", "LEADER", "REPLICAS", "ISR", "ERROR"], &rows);
    println!();
    match shown {
        None => println!("configs: unavailable from this broker (DescribeConfigs is not supported)"),
        Some(v) if v.is_empty() => println!("configs: none set on the topic (use --all-configs to show defaults)"),
        Some(v) => {
            let rows: Vec<Vec<String>> =
                v.iter().map(|r| vec![r.0.clone(), r.1.clone().unwrap_or_else(|| "-".into()), r.2.clone()]).collect();
            print_table(&["CONFIG", "VALUE", "SOURCE"], &rows);
        }
    }
    Ok(())
}

fn delete(cli: &crate::Cli, name: &str) -> Result<(), String> {
    let admin = util::admin(cli)?;
    let res = block_on(admin.delete_topics(&[name], &admin_opts()))
        .map_err(|e| format!("delete topic '{name}': {}", kerr(&e)))?;
    for r in res {
        match r {
            Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) | Err((_, RDKafkaErrorCode::UnknownTopic)) => {
                return Err(format!("unknown topic '{name}'"))
            }
            Err((_, code)) => return Err(format!("delete topic '{name}': {}", code_desc(code))),
            Ok(_) => {}
        }
    }
    if cli.json {
        print_json(&json!({"topic": name, "deleted": true}));
    } else {
        println!("deleted topic '{name}'");
    }
    Ok(())
}

fn alter(cli: &crate::Cli, name: &str, partitions: Option<usize>, config: &[(String, String)]) -> Result<(), String> {
    if partitions.is_none() && config.is_empty() {
        return Err("alter topic: give --partitions N and/or --config KEY=VALUE".into());
    }
    let c = util::query_consumer(cli, None)?;
    let current = util::topic_partitions(cli, &c, name)?.len();
    let admin = util::admin(cli)?;
    let mut done = Vec::new();
    if let Some(n) = partitions {
        if n <= current {
            return Err(format!(
                "alter partitions: topic '{name}' has {current} partitions; --partitions must be larger"
            ));
        }
        let np = NewPartitions::new(name, n);
        let unsupported = || "alter partitions: the broker does not support CreatePartitions".to_string();
        let res = block_on(admin.create_partitions([&np], &admin_opts())).map_err(|e| match e {
            KafkaError::AdminOp(code) if is_unsupported(code) => unsupported(),
            e => format!("alter partitions of '{name}': {}", kerr(&e)),
        })?;
        for r in res {
            match r {
                Err((_, code)) if is_unsupported(code) => return Err(unsupported()),
                Err((_, code)) => return Err(format!("alter partitions of '{name}': {}", code_desc(code))),
                Ok(_) => {}
            }
        }
        done.push(format!("partitions {current} -> {n}"));
    }
    if !config.is_empty() {
        incremental_set(cli, name, config)?;
        for (k, v) in config {
            done.push(format!("{k}={v}"));
        }
    }
    if cli.json {
        print_json(&json!({"topic": name, "altered": done}));
    } else {
        println!("altered topic '{name}': {}", done.join(", "));
    }
    Ok(())
}

pub fn offsets(cli: &crate::Cli, args: &OffsetsArgs) -> Result<(), String> {
    let c = util::query_consumer(cli, None)?;
    let mut parts = util::topic_partitions(cli, &c, &args.topic)?;
    if let Some(p) = args.partition {
        if !parts.contains(&p) {
            return Err(format!("unknown partition {p} of topic '{}'", args.topic));
        }
        parts = vec![p];
    }
    let mut rows = Vec::new();
    for p in parts {
        let (lo, hi) = c
            .fetch_watermarks(&args.topic, p, util::TIMEOUT)
            .map_err(|e| format!("offsets of {}/{p}: {}", args.topic, kerr(&e)))?;
        rows.push((p, lo, hi));
    }
    if cli.json {
        let v: Vec<_> = rows
            .iter()
            .map(|(p, lo, hi)| {
                json!({"topic": args.topic, "partition": p, "earliest": lo, "latest": hi, "records": hi - lo})
            })
            .collect();
        print_json(&json!(v));
    } else {
        let rows: Vec<Vec<String>> = rows
            .iter()
            .map(|(p, lo, hi)| vec![args.topic.clone(), p.to_string(), lo.to_string(), hi.to_string()])
            .collect();
        print_table(&["TOPIC", "PARTITION", "EARLIEST", "LATEST"], &rows);
    }
    Ok(())
}

pub fn cluster(cli: &crate::Cli, cmd: &ClusterCmd) -> Result<(), String> {
    match cmd {
        ClusterCmd::Info => cluster_info(cli),
        ClusterCmd::UnderReplicated => under_replicated(cli),
        ClusterCmd::ElectLeaders { topic, partition, unclean } => {
            elect_leaders(cli, topic.as_deref(), *partition, *unclean)
        }
        ClusterCmd::Reassign { topic, partition, replicas, cancel } => {
            crate::replicas::reassign(cli, topic, *partition, (!*cancel).then_some(replicas.as_slice()))
        }
        ClusterCmd::Reassignments => crate::replicas::reassignments(cli),
        ClusterCmd::LogDirs { topic } => crate::replicas::log_dirs(cli, topic.as_deref()),
    }
}

fn cluster_info(cli: &crate::Cli) -> Result<(), String> {
    let c = util::query_consumer(cli, None)?;
    let md = util::fetch_metadata(cli, &c, None)?;
    let cluster_id = c.client().fetch_cluster_id(util::TIMEOUT);
    // SAFETY: the client pointer is valid for the lifetime of `c`; the call only
    // reads cached metadata (waiting up to the timeout) and returns an id.
    let controller =
        unsafe { rdkafka::bindings::rd_kafka_controllerid(c.client().native_ptr(), util::TIMEOUT.as_millis() as i32) };
    let controller = (controller >= 0).then_some(controller);
    let mut brokers: Vec<_> = md.brokers().iter().map(|b| (b.id(), b.host().to_string(), b.port())).collect();
    brokers.sort();
    let topics = md.topics().iter().filter(|t| t.error().is_none()).count();
    if cli.json {
        let b: Vec<_> = brokers
            .iter()
            .map(|(id, h, p)| json!({"id": id, "host": h, "port": p, "controller": Some(*id) == controller}))
            .collect();
        print_json(&json!({"cluster_id": cluster_id, "controller": controller, "brokers": b, "topics": topics}));
    } else {
        println!("CLUSTER      {}", cluster_id.as_deref().unwrap_or("-"));
        println!("CONTROLLER   {}", controller.map(|c| c.to_string()).unwrap_or_else(|| "-".into()));
        println!("TOPICS       {topics}");
        println!();
        let rows: Vec<Vec<String>> = brokers
            .iter()
            .map(|(id, h, p)| {
                let id_s = if Some(*id) == controller { format!("{id}*") } else { id.to_string() };
                vec![id_s, h.clone(), p.to_string()]
            })
            .collect();
        print_table(&["ID", "HOST", "PORT"], &rows);
    }
    Ok(())
}

fn under_replicated(cli: &crate::Cli) -> Result<(), String> {
    let c = util::query_consumer(cli, None)?;
    let md = util::fetch_metadata(cli, &c, None)?;
    let mut rows = Vec::new();
    for t in md.topics() {
        for p in t.partitions() {
            let state = if p.leader() < 0 {
                "offline"
            } else if p.isr().len() < p.replicas().len() {
                "under-replicated"
            } else {
                continue;
            };
            rows.push((t.name().to_string(), p.id(), p.leader(), p.replicas().to_vec(), p.isr().to_vec(), state));
        }
    }
    rows.sort();
    if cli.json {
        let v: Vec<_> = rows
            .iter()
            .map(|(t, p, l, r, i, s)| json!({"topic": t, "partition": p, "leader": l, "replicas": r, "isr": i, "state": s}))
            .collect();
        print_json(&json!(v));
    } else {
        let table: Vec<Vec<String>> = rows
            .iter()
            .map(|(t, p, l, r, i, s)| {
                vec![
                    t.clone(),
                    p.to_string(),
                    l.to_string(),
                    format!("[{}]", util::join_ids(r)),
                    format!("[{}]", util::join_ids(i)),
                    s.to_string(),
                ]
            })
            .collect();
        print_table(&["TOPIC", "PARTITION", "LEADER", "REPLICAS", "ISR", "STATE"], &table);
    }
    Ok(())
}

/// ElectLeaders, spoken with kafka-protocol (the rdkafka crate has no admin call for it).
fn elect_leaders(cli: &crate::Cli, topic: Option<&str>, partition: Option<i32>, unclean: bool) -> Result<(), String> {
    use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
    use kafka_protocol::messages::{ApiKey, ElectLeadersRequest, ElectLeadersResponse, TopicName};
    use kafka_protocol::protocol::StrBytes;

    use crate::bench::wire;
    let mut req = ElectLeadersRequest::default();
    req.election_type = i8::from(unclean);
    req.timeout_ms = util::TIMEOUT.as_millis() as i32;
    if let Some(name) = topic {
        let partitions = match partition {
            Some(p) => vec![p],
            None => {
                let c = util::query_consumer(cli, None)?;
                (0..util::topic_partitions(cli, &c, name)?.len() as i32).collect()
            }
        };
        let mut tp = TopicPartitions::default();
        tp.topic = TopicName(StrBytes::from_string(name.to_string()));
        tp.partitions = partitions;
        req.topic_partitions = Some(vec![tp]);
    }
    let mut s = crate::security::open(cli, "elect leaders")?;
    let resp: ElectLeadersResponse =
        wire::call(&mut s, ApiKey::ElectLeaders, 0, 1, &req).map_err(|e| format!("elect leaders: {e}"))?;
    let mut rows = Vec::new();
    for t in &resp.replica_election_results {
        for p in &t.partition_result {
            let outcome = match p.error_code {
                0 => "elected".to_string(),
                code => kafka_protocol::error::ResponseError::try_from_code(code)
                    .map(|e| format!("{e:?}"))
                    .unwrap_or_else(|| format!("error code {code}")),
            };
            rows.push((t.topic.0.to_string(), p.partition_id, outcome));
        }
    }
    if cli.json {
        let v: Vec<_> = rows.iter().map(|(t, p, o)| json!({"topic": t, "partition": p, "outcome": o})).collect();
        print_json(&json!(v));
    } else {
        let table: Vec<Vec<String>> = rows.iter().map(|(t, p, o)| vec![t.clone(), p.to_string(), o.clone()]).collect();
        print_table(&["TOPIC", "PARTITION", "OUTCOME"], &table);
    }
    Ok(())
}

/// Sets topic configs with IncrementalAlterConfigs (KIP-339, what kafka-configs uses): the
/// other configs of the topic stay as they are. Spoken directly with kafka-protocol: the
/// rdkafka crate has no IncrementalAlterConfigs and reports AlterConfigs errors as success.
fn incremental_set(cli: &crate::Cli, name: &str, config: &[(String, String)]) -> Result<(), String> {
    use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
    use kafka_protocol::messages::{ApiKey, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
    use kafka_protocol::protocol::StrBytes;

    use crate::bench::wire;
    let mut res = AlterConfigsResource::default();
    res.resource_type = 2; // topic
    res.resource_name = StrBytes::from_string(name.to_string());
    for (k, v) in config {
        let mut c = AlterableConfig::default();
        c.name = StrBytes::from_string(k.clone());
        c.config_operation = 0; // SET
        c.value = Some(StrBytes::from_string(v.clone()));
        res.configs.push(c);
    }
    let mut req = IncrementalAlterConfigsRequest::default();
    req.resources.push(res);
    let mut s = crate::security::open(cli, "alter config")?;
    let resp: IncrementalAlterConfigsResponse = wire::call(&mut s, ApiKey::IncrementalAlterConfigs, 0, 1, &req)
        .map_err(|e| format!("alter config of '{name}': {e} (does the broker support IncrementalAlterConfigs?)"))?;
    for r in &resp.responses {
        if r.error_code != 0 {
            let code = kafka_protocol::error::ResponseError::try_from_code(r.error_code)
                .map(|e| format!("{e:?}"))
                .unwrap_or_else(|| format!("error code {}", r.error_code));
            let detail = r.error_message.as_ref().map(|m| format!(": {m}")).unwrap_or_default();
            return Err(format!("alter config of '{name}': {code}{detail}"));
        }
    }
    Ok(())
}
