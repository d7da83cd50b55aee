//! Consumer groups: list, describe (offsets and lag), reset offsets, delete.
use std::collections::BTreeMap;

use clap::{ArgGroup, Args, Subcommand};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::groups::GroupInfo;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::json;

use crate::util::{self, admin_opts, block_on, code_desc, kerr, print_json, print_table};

#[derive(Subcommand)]
pub enum GroupCmd {
    /// List consumer groups.
    List,
    /// Per-partition committed offset, log end offset, lag and owning member.
    Describe { group: String },
    /// Set a group's committed offsets (the group must have no active members).
    ResetOffsets(ResetArgs),
    /// Delete a group (the group must have no active members).
    Delete { group: String },
}

#[derive(Args)]
#[command(group(ArgGroup::new("target").required(true).args(["to_earliest", "to_latest", "to_offset"])))]
pub struct ResetArgs {
    pub group: String,
    /// Topic whose offsets to reset.
    #[arg(short, long)]
    pub topic: String,
    /// Only this partition (default: all partitions of the topic).
    #[arg(short, long)]
    pub partition: Option<i32>,
    /// Reset to the earliest offset.
    #[arg(long)]
    pub to_earliest: bool,
    /// Reset to the log end offset.
    #[arg(long)]
    pub to_latest: bool,
    /// Reset to this offset (clamped to the partition's earliest..latest range).
    #[arg(long, value_name = "N")]
    pub to_offset: Option<i64>,
    /// Show the new offsets without committing them.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn group(cli: &crate::Cli, cmd: &GroupCmd) -> Result<(), String> {
    match cmd {
        GroupCmd::List => list(cli),
        GroupCmd::Describe { group } => describe(cli, group),
        GroupCmd::ResetOffsets(a) => reset(cli, a),
        GroupCmd::Delete { group } => delete(cli, group),
    }
}

fn list(cli: &crate::Cli) -> Result<(), String> {
    let c = util::query_consumer(cli, None)?;
    let gl = c.fetch_group_list(None, util::TIMEOUT).map_err(|e| format!("list groups: {}", kerr(&e)))?;
    let mut groups: Vec<&GroupInfo> = gl.groups().iter().collect();
    groups.sort_by(|a, b| a.name().cmp(b.name()));
    if cli.json {
        let v: Vec<_> = groups
            .iter()
            .map(|g| {
                json!({"group": g.name(), "state": g.state(), "protocol_type": g.protocol_type(),
                       "protocol": g.protocol(), "members": g.members().len()})
            })
            .collect();
        print_json(&json!(v));
    } else {
        let rows: Vec<Vec<String>> = groups
            .iter()
            .map(|g| {
                vec![
                    g.name().to_string(),
                    or_dash(g.state()),
                    g.members().len().to_string(),
                    or_dash(g.protocol_type()),
                    or_dash(g.protocol()),
                ]
            })
            .collect();
        print_table(&["GROUP", "STATE", "MEMBERS", "PROTOCOL-TYPE", "ASSIGNOR"], &rows);
    }
    Ok(())
}

fn or_dash(s: &str) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s.to_string()
    }
}

/// The group's state and members, via DescribeGroups.
struct GroupState {
    state: String,
    protocol: String,
    members: Vec<Member>,
}

/// (member id, client id, host, assigned (topic, partition)s)
type Member = (String, String, String, Vec<(String, i32)>);

fn group_state(c: &BaseConsumer, group: &str) -> Result<GroupState, String> {
    let gl = c
        .fetch_group_list(Some(group), util::TIMEOUT)
        .map_err(|e| format!("describe group '{group}': {}", kerr(&e)))?;
    let Some(g) = gl.groups().iter().find(|g| g.name() == group) else {
        return Ok(GroupState { state: "Dead".into(), protocol: String::new(), members: vec![] });
    };
    let members = g
        .members()
        .iter()
        .map(|m| {
            let assigned = m.assignment().map(parse_assignment).unwrap_or_default();
            (m.id().to_string(), m.client_id().to_string(), m.client_host().to_string(), assigned)
        })
        .collect();
    Ok(GroupState { state: g.state().to_string(), protocol: g.protocol().to_string(), members })
}

/// Topic-partitions of a ConsumerProtocolAssignment (all versions share this prefix:
/// version i16, [topic string, [partition i32]]). Returns nothing if unparsable.
fn parse_assignment(b: &[u8]) -> Vec<(String, i32)> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        if b.len() < n {
            return None;
        }
        let (h, t) = b.split_at(n);
        *b = t;
        Some(h)
    }
    fn i16_(b: &mut &[u8]) -> Option<i16> {
        take(b, 2).map(|x| i16::from_be_bytes([x[0], x[1]]))
    }
    fn i32_(b: &mut &[u8]) -> Option<i32> {
        take(b, 4).map(|x| i32::from_be_bytes([x[0], x[1], x[2], x[3]]))
    }
    let mut b = b;
    let mut out = Vec::new();
    let mut go = || -> Option<()> {
        i16_(&mut b)?;
        let topics = i32_(&mut b)?;
        for _ in 0..topics.max(0) {
            let len = i16_(&mut b)?;
            let name = String::from_utf8_lossy(take(&mut b, len.max(0) as usize)?).into_owned();
            let n = i32_(&mut b)?;
            for _ in 0..n.max(0) {
                out.push((name.clone(), i32_(&mut b)?));
            }
        }
        Some(())
    };
    match go() {
        Some(()) => out,
        None => Vec::new(),
    }
}

fn describe(cli: &crate::Cli, group: &str) -> Result<(), String> {
    let c = util::query_consumer(cli, Some(group))?;
    let st = group_state(&c, group)?;
    // Committed offsets: ask for every partition of every (non-internal) topic in
    // one OffsetFetch; keep those the group has an offset for.
    let md = util::fetch_metadata(cli, &c, None)?;
    let mut tpl = TopicPartitionList::new();
    for t in md.topics().iter().filter(|t| t.error().is_none() && !t.name().starts_with("__")) {
        for p in t.partitions() {
            tpl.add_partition(t.name(), p.id());
        }
    }
    let mut rows: BTreeMap<(String, i32), Option<i64>> = BTreeMap::new();
    if tpl.count() > 0 {
        let committed = c
            .committed_offsets(tpl, util::TIMEOUT)
            .map_err(|e| format!("committed offsets of '{group}': {}", kerr(&e)))?;
        for e in committed.elements() {
            if let Offset::Offset(o) = e.offset() {
                rows.insert((e.topic().to_string(), e.partition()), Some(o));
            }
        }
    }
    let mut owner: BTreeMap<(String, i32), usize> = BTreeMap::new();
    for (i, m) in st.members.iter().enumerate() {
        for tp in &m.3 {
            owner.insert(tp.clone(), i);
            rows.entry(tp.clone()).or_insert(None);
        }
    }
    if rows.is_empty() && st.members.is_empty() && (st.state == "Dead" || st.state.is_empty()) {
        return Err(format!("unknown group '{group}'"));
    }
    struct Row {
        topic: String,
        partition: i32,
        current: Option<i64>,
        end: Option<i64>,
        member: Option<usize>,
    }
    let mut out = Vec::new();
    for ((topic, partition), current) in rows {
        let end = c.fetch_watermarks(&topic, partition, util::TIMEOUT).ok().map(|(_, hi)| hi);
        let member = owner.get(&(topic.clone(), partition)).copied();
        out.push(Row { topic, partition, current, end, member });
    }
    let lag = |r: &Row| match (r.current, r.end) {
        (Some(c), Some(e)) => Some((e - c).max(0)),
        _ => None,
    };
    let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
    if cli.json {
        let parts: Vec<_> = out
            .iter()
            .map(|r| {
                let m = r.member.map(|i| &st.members[i]);
                json!({
                    "topic": r.topic, "partition": r.partition,
                    "current_offset": r.current, "log_end_offset": r.end, "lag": lag(r),
                    "member_id": m.map(|m| &m.0), "client_id": m.map(|m| &m.1), "host": m.map(|m| &m.2),
                })
            })
            .collect();
        let members: Vec<_> = st
            .members
            .iter()
            .map(|m| {
                let a: Vec<_> = m.3.iter().map(|(t, p)| json!({"topic": t, "partition": p})).collect();
                json!({"member_id": m.0, "client_id": m.1, "host": m.2, "assignment": a})
            })
            .collect();
        let total: i64 = out.iter().filter_map(lag).sum();
        print_json(&json!({
            "group": group, "state": st.state, "assignor": st.protocol,
            "members": members, "partitions": parts, "total_lag": total,
        }));
        return Ok(());
    }
    println!("GROUP        {group}");
    println!("STATE        {}", or_dash(&st.state));
    println!("MEMBERS      {}", st.members.len());
    println!("TOTAL-LAG    {}", out.iter().filter_map(lag).sum::<i64>());
    println!();
    let rows: Vec<Vec<String>> = out
        .iter()
        .map(|r| {
            let m = r.member.map(|i| &st.members[i]);
            vec![
                r.topic.clone(),
                r.partition.to_string(),
                opt(r.current),
                opt(r.end),
                opt(lag(r)),
                m.map(|m| m.0.clone()).unwrap_or_else(|| "-".into()),
                m.map(|m| m.1.clone()).unwrap_or_else(|| "-".into()),
                m.map(|m| m.2.clone()).unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    print_table(
        &["TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "MEMBER-ID", "CLIENT-ID", "HOST"],
        &rows,
    );
    Ok(())
}

fn reset(cli: &crate::Cli, a: &ResetArgs) -> Result<(), String> {
    let c = util::query_consumer(cli, Some(&a.group))?;
    let st = group_state(&c, &a.group)?;
    if !st.members.is_empty() {
        return Err(format!(
            "reset offsets: group '{}' has {} active member(s) (state {}); offsets can only be reset while the group is inactive",
            a.group,
            st.members.len(),
            st.state
        ));
    }
    let mut parts = util::topic_partitions(cli, &c, &a.topic)?;
    if let Some(p) = a.partition {
        if !parts.contains(&p) {
            return Err(format!("unknown partition {p} of topic '{}'", a.topic));
        }
        parts = vec![p];
    }
    let mut before_tpl = TopicPartitionList::new();
    for p in &parts {
        before_tpl.add_partition(&a.topic, *p);
    }
    let before: BTreeMap<i32, Option<i64>> = c
        .committed_offsets(before_tpl, util::TIMEOUT)
        .map_err(|e| format!("committed offsets of '{}': {}", a.group, kerr(&e)))?
        .elements()
        .iter()
        .map(|e| (e.partition(), if let Offset::Offset(o) = e.offset() { Some(o) } else { None }))
        .collect();
    let mut plan = Vec::new();
    for p in &parts {
        let (lo, hi) = c
            .fetch_watermarks(&a.topic, *p, util::TIMEOUT)
            .map_err(|e| format!("offsets of {}/{p}: {}", a.topic, kerr(&e)))?;
        let target = if a.to_earliest {
            lo
        } else if a.to_latest {
            hi
        } else {
            a.to_offset.unwrap_or(lo).clamp(lo, hi)
        };
        plan.push((*p, before.get(p).copied().flatten(), target));
    }
    if !a.dry_run {
        let mut tpl = TopicPartitionList::new();
        for (p, _, o) in &plan {
            tpl.add_partition_offset(&a.topic, *p, Offset::Offset(*o))
                .map_err(|e| format!("reset offsets: {}", kerr(&e)))?;
        }
        // Commit as a "simple" (non-subscribed) consumer of the group.
        c.assign(&tpl).map_err(|e| format!("reset offsets: assign: {}", kerr(&e)))?;
        c.commit(&tpl, CommitMode::Sync).map_err(|e| match e.rdkafka_error_code() {
            Some(RDKafkaErrorCode::UnknownMemberId)
            | Some(RDKafkaErrorCode::IllegalGeneration)
            | Some(RDKafkaErrorCode::RebalanceInProgress) => {
                format!(
                    "reset offsets: group '{}' became active; offsets can only be reset while it is inactive",
                    a.group
                )
            }
            _ => format!("reset offsets of group '{}': {}", a.group, kerr(&e)),
        })?;
        let _ = c.unassign();
    }
    let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
    if cli.json {
        let v: Vec<_> = plan
            .iter()
            .map(|(p, b, n)| json!({"topic": a.topic, "partition": p, "previous_offset": b, "new_offset": n}))
            .collect();
        print_json(&json!({"group": a.group, "dry_run": a.dry_run, "offsets": v}));
    } else {
        let rows: Vec<Vec<String>> =
            plan.iter().map(|(p, b, n)| vec![a.topic.clone(), p.to_string(), opt(*b), n.to_string()]).collect();
        print_table(&["TOPIC", "PARTITION", "PREVIOUS-OFFSET", "NEW-OFFSET"], &rows);
        if a.dry_run {
            println!("(dry run: nothing committed)");
        }
    }
    Ok(())
}

fn delete(cli: &crate::Cli, group: &str) -> Result<(), String> {
    let admin = util::admin(cli)?;
    let res = block_on(admin.delete_groups(&[group], &admin_opts()))
        .map_err(|e| format!("delete group '{group}': {}", kerr(&e)))?;
    for r in res {
        match r {
            Err((_, RDKafkaErrorCode::GroupIdNotFound)) => return Err(format!("unknown group '{group}'")),
            Err((_, RDKafkaErrorCode::NonEmptyGroup)) => {
                return Err(format!("delete group '{group}': the group has active members"))
            }
            Err((_, code)) => return Err(format!("delete group '{group}': {}", code_desc(code))),
            Ok(_) => {}
        }
    }
    if cli.json {
        print_json(&json!({"group": group, "deleted": true}));
    } else {
        println!("deleted group '{group}'");
    }
    Ok(())
}
