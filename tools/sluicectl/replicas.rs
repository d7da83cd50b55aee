//! Where replicas live: reassignment (kafka-reassign-partitions.sh --execute / --verify /
//! --cancel) and log directories (kafka-log-dirs.sh --describe). Spoken with
//! kafka-protocol: the rdkafka crate has no admin calls for these.
use kafka_protocol::messages::{ApiKey, BrokerId, TopicName};
use kafka_protocol::protocol::StrBytes;
use serde_json::json;

use crate::bench::wire;
use crate::util::{self, print_json, print_table};

/// A Kafka error code by its name (`TopicAuthorizationFailed`), as the messages say it.
pub fn error_name(code: i16) -> String {
    kafka_protocol::error::ResponseError::try_from_code(code)
        .map(|e| format!("{e:?}"))
        .unwrap_or_else(|| format!("error code {code}"))
}

fn connect(addr: &str, what: &str) -> Result<Box<dyn crate::security::Conn>, String> {
    crate::security::open_at(addr, what)
}

/// Starts moving a partition to `replicas`, or with `None` cancels its move.
pub fn reassign(cli: &crate::Cli, topic: &str, partition: i32, replicas: Option<&[i32]>) -> Result<(), String> {
    use kafka_protocol::messages::alter_partition_reassignments_request::{ReassignablePartition, ReassignableTopic};
    use kafka_protocol::messages::{AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse};
    let mut p = ReassignablePartition::default();
    p.partition_index = partition;
    p.replicas = replicas.map(|rs| rs.iter().map(|&b| BrokerId(b)).collect());
    let mut t = ReassignableTopic::default();
    t.name = TopicName(StrBytes::from_string(topic.to_string()));
    t.partitions = vec![p];
    let mut req = AlterPartitionReassignmentsRequest::default();
    req.timeout_ms = util::TIMEOUT.as_millis() as i32;
    req.topics = vec![t];
    let mut s = connect(&cli.bootstrap, "reassign")?;
    let resp: AlterPartitionReassignmentsResponse =
        wire::call(&mut s, ApiKey::AlterPartitionReassignments, 0, 1, &req).map_err(|e| format!("reassign: {e}"))?;
    if resp.error_code != 0 {
        return Err(format!("reassign: {}", error_name(resp.error_code)));
    }
    for t in &resp.responses {
        for p in &t.partitions {
            if p.error_code != 0 {
                let detail = p.error_message.as_ref().map(|m| format!(": {m}")).unwrap_or_default();
                return Err(format!(
                    "reassign {}-{}: {}{detail}",
                    t.name.0,
                    p.partition_index,
                    error_name(p.error_code)
                ));
            }
        }
    }
    let what = if replicas.is_some() { "started" } else { "cancelled" };
    if cli.json {
        print_json(&json!({"topic": topic, "partition": partition, "reassignment": what}));
    } else {
        println!("Reassignment of {topic}-{partition} {what}.");
    }
    Ok(())
}

/// The moves in progress.
pub fn reassignments(cli: &crate::Cli) -> Result<(), String> {
    use kafka_protocol::messages::{ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse};
    let mut req = ListPartitionReassignmentsRequest::default();
    req.timeout_ms = util::TIMEOUT.as_millis() as i32;
    let mut s = connect(&cli.bootstrap, "list reassignments")?;
    let resp: ListPartitionReassignmentsResponse = wire::call(&mut s, ApiKey::ListPartitionReassignments, 0, 1, &req)
        .map_err(|e| format!("list reassignments: {e}"))?;
    if resp.error_code != 0 {
        return Err(format!("list reassignments: {}", error_name(resp.error_code)));
    }
    let ids = |v: &[BrokerId]| v.iter().map(|b| b.0).collect::<Vec<i32>>();
    let mut rows = Vec::new();
    for t in &resp.topics {
        for p in &t.partitions {
            rows.push((
                t.name.0.to_string(),
                p.partition_index,
                ids(&p.replicas),
                ids(&p.adding_replicas),
                ids(&p.removing_replicas),
            ));
        }
    }
    rows.sort();
    if cli.json {
        let v: Vec<_> = rows
            .iter()
            .map(|(t, p, r, a, x)| json!({"topic": t, "partition": p, "replicas": r, "adding": a, "removing": x}))
            .collect();
        print_json(&json!(v));
    } else {
        let list = |v: &[i32]| format!("[{}]", util::join_ids(v));
        let table: Vec<Vec<String>> =
            rows.iter().map(|(t, p, r, a, x)| vec![t.clone(), p.to_string(), list(r), list(a), list(x)]).collect();
        print_table(&["TOPIC", "PARTITION", "REPLICAS", "ADDING", "REMOVING"], &table);
    }
    Ok(())
}

/// Every broker's log directory and the replicas in it, asked of each broker in turn.
pub fn log_dirs(cli: &crate::Cli, topic: Option<&str>) -> Result<(), String> {
    use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse};
    let c = util::query_consumer(cli, None)?;
    let md = util::fetch_metadata(cli, &c, None)?;
    let mut brokers: Vec<(i32, String)> =
        md.brokers().iter().map(|b| (b.id(), format!("{}:{}", b.host(), b.port()))).collect();
    brokers.sort();
    let mut rows = Vec::new();
    for (id, addr) in brokers {
        let mut req = DescribeLogDirsRequest::default();
        req.topics = None; // null: every replica
        let resp: DescribeLogDirsResponse = connect(&addr, "describe log dirs")
            .and_then(|mut s| wire::call(&mut s, ApiKey::DescribeLogDirs, 4, 1, &req))
            .map_err(|e| format!("describe log dirs of broker {id}: {e}"))?;
        for dir in &resp.results {
            for t in dir.topics.iter().filter(|t| topic.is_none_or(|n| *t.name.0 == *n)) {
                for p in &t.partitions {
                    rows.push((id, dir.log_dir.to_string(), t.name.0.to_string(), p.partition_index, p.partition_size));
                }
            }
        }
    }
    if cli.json {
        let v: Vec<_> = rows
            .iter()
            .map(|(b, d, t, p, s)| json!({"broker": b, "log_dir": d, "topic": t, "partition": p, "size": s}))
            .collect();
        print_json(&json!(v));
    } else {
        let table: Vec<Vec<String>> = rows
            .iter()
            .map(|(b, d, t, p, s)| vec![b.to_string(), d.clone(), t.clone(), p.to_string(), s.to_string()])
            .collect();
        print_table(&["BROKER", "LOG DIR", "TOPIC", "PARTITION", "SIZE"], &table);
    }
    Ok(())
}
