//! DescribeLogDirs v1–4 (`kafka-log-dirs.sh --describe`, `Admin.describeLogDirs`): the one
//! log directory of this broker, the replicas it holds with their sizes, and (v4) the
//! file system's total and usable bytes.
use std::collections::BTreeMap;

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::{respond, HandlerResult};
use crate::protocol::frame::Request;
use crate::security::operations::AclOperation;
use crate::server::context::RequestContext;

pub const MIN_VERSION: i16 = 1;
pub const MAX_VERSION: i16 = 4;

pub async fn handle(ctx: &RequestContext, req: &Request) -> HandlerResult {
    let r: DescribeLogDirsRequest = req.decode()?;
    if !ctx.cluster_authorized(AclOperation::Describe) {
        let mut resp = DescribeLogDirsResponse::default();
        resp.error_code = kafka_protocol::error::ResponseError::ClusterAuthorizationFailed.code();
        return respond(req, &resp);
    }
    let wanted = |topic: &str, partition: i32| match &r.topics {
        None => true,
        Some(list) => list.iter().any(|t| &*t.topic.0 == topic && t.partitions.contains(&partition)),
    };
    let mut by_topic: BTreeMap<String, Vec<DescribeLogDirsPartition>> = BTreeMap::new();
    for stats in crate::server::admin::collect(&ctx.shard).await {
        for p in stats.partitions.into_iter().filter(|p| wanted(&p.tp.topic, p.tp.partition)) {
            let mut d = DescribeLogDirsPartition::default();
            d.partition_index = p.tp.partition;
            d.partition_size = p.log.size_bytes as i64;
            // Kafka's offset lag is a future replica's (a move between a broker's log
            // directories): Sluice has one directory per broker.
            d.offset_lag = 0;
            by_topic.entry(p.tp.topic.to_string()).or_default().push(d);
        }
    }
    let dir = &ctx.shard.config.log_dir;
    let mut result = DescribeLogDirsResult::default();
    result.log_dir = StrBytes::from_string(std::fs::canonicalize(dir).unwrap_or(dir.clone()).display().to_string());
    result.topics = by_topic
        .into_iter()
        .map(|(name, mut partitions)| {
            partitions.sort_by_key(|p| p.partition_index);
            let mut t = DescribeLogDirsTopic::default();
            t.name = TopicName(StrBytes::from_string(name));
            t.partitions = partitions;
            t
        })
        .collect();
    let (total, usable) = space(dir).unwrap_or((-1, -1));
    result.total_bytes = total;
    result.usable_bytes = usable;
    let mut resp = DescribeLogDirsResponse::default();
    resp.results = vec![result];
    respond(req, &resp)
}

/// The file system's size and the bytes an unprivileged writer may still use.
fn space(dir: &std::path::Path) -> Option<(i64, i64)> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is a valid C string and `st` a writable statvfs.
    if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let frag = st.f_frsize as i64;
    Some((st.f_blocks as i64 * frag, st.f_bavail as i64 * frag))
}
