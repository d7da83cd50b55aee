//! One module per Kafka API. Each states the versions it supports; `SUPPORTED` is what
//! ApiVersions advertises, no more. Kafka error codes are chosen here and only here.
pub mod acls;
pub mod alter_configs;
pub mod alter_partition_reassignments;
pub mod api_versions;
pub mod client_quotas;
mod cluster_view;
mod config_common;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_log_dirs;
pub mod describe_topic_partitions;
pub mod elect_leaders;
pub mod fetch;
pub mod find_coordinator;
mod group_common;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod list_partition_reassignments;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod sasl;
pub mod scram_credentials;
pub mod sync_group;
pub mod transactions;
mod txn_verification;

use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::Encodable;

use crate::protocol::frame::{encode_response, FrameError, Request};
use crate::security::quota::QuotaKind;
use crate::server::context::{ConnectionContext, RequestContext};
use crate::shard::controller::{ControllerError, ControllerOp, ControllerResult};
use crate::shard::{Shard, ShardMsg};

/// What the connection writer does with a request's outcome.
pub enum Reply {
    /// A complete response frame.
    Frame(Bytes),
    /// A complete response frame in pieces, written in order (Fetch: record bytes are
    /// referenced from the cache, not copied into the frame).
    Chunks(Vec<Bytes>),
    /// No response (acks=0 produce).
    None,
    /// Close the connection, as Kafka does for requests it cannot parse.
    Close,
    /// A response, then the connection is closed (a failed SASL authentication).
    FrameThenClose(Bytes),
}

pub type HandlerResult = Result<Reply, FrameError>;

/// (API, min version, max version) this broker implements.
pub const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, produce::MIN_VERSION, produce::MAX_VERSION),
    (ApiKey::Fetch, fetch::MIN_VERSION, fetch::MAX_VERSION),
    (ApiKey::ListOffsets, list_offsets::MIN_VERSION, list_offsets::MAX_VERSION),
    (ApiKey::Metadata, metadata::MIN_VERSION, metadata::MAX_VERSION),
    (ApiKey::ApiVersions, api_versions::MIN_VERSION, api_versions::MAX_VERSION),
    (ApiKey::CreateTopics, create_topics::MIN_VERSION, create_topics::MAX_VERSION),
    (ApiKey::DeleteTopics, delete_topics::MIN_VERSION, delete_topics::MAX_VERSION),
    (ApiKey::DescribeCluster, describe_cluster::MIN_VERSION, describe_cluster::MAX_VERSION),
    (ApiKey::FindCoordinator, find_coordinator::MIN_VERSION, find_coordinator::MAX_VERSION),
    (ApiKey::JoinGroup, join_group::MIN_VERSION, join_group::MAX_VERSION),
    (ApiKey::SyncGroup, sync_group::MIN_VERSION, sync_group::MAX_VERSION),
    (ApiKey::Heartbeat, heartbeat::MIN_VERSION, heartbeat::MAX_VERSION),
    (ApiKey::LeaveGroup, leave_group::MIN_VERSION, leave_group::MAX_VERSION),
    (ApiKey::OffsetCommit, offset_commit::MIN_VERSION, offset_commit::MAX_VERSION),
    (ApiKey::OffsetFetch, offset_fetch::MIN_VERSION, offset_fetch::MAX_VERSION),
    (ApiKey::OffsetDelete, offset_delete::MIN_VERSION, offset_delete::MAX_VERSION),
    (ApiKey::ListGroups, list_groups::MIN_VERSION, list_groups::MAX_VERSION),
    (ApiKey::DescribeGroups, describe_groups::MIN_VERSION, describe_groups::MAX_VERSION),
    (ApiKey::DeleteGroups, delete_groups::MIN_VERSION, delete_groups::MAX_VERSION),
    (ApiKey::DescribeConfigs, describe_configs::MIN_VERSION, describe_configs::MAX_VERSION),
    (ApiKey::AlterConfigs, alter_configs::MIN_VERSION, alter_configs::MAX_VERSION),
    (ApiKey::IncrementalAlterConfigs, incremental_alter_configs::MIN_VERSION, incremental_alter_configs::MAX_VERSION),
    (ApiKey::CreatePartitions, create_partitions::MIN_VERSION, create_partitions::MAX_VERSION),
    (ApiKey::ElectLeaders, elect_leaders::MIN_VERSION, elect_leaders::MAX_VERSION),
    (
        ApiKey::AlterPartitionReassignments,
        alter_partition_reassignments::MIN_VERSION,
        alter_partition_reassignments::MAX_VERSION,
    ),
    (
        ApiKey::ListPartitionReassignments,
        list_partition_reassignments::MIN_VERSION,
        list_partition_reassignments::MAX_VERSION,
    ),
    (ApiKey::DescribeLogDirs, describe_log_dirs::MIN_VERSION, describe_log_dirs::MAX_VERSION),
    (ApiKey::InitProducerId, init_producer_id::MIN_VERSION, init_producer_id::MAX_VERSION),
    (ApiKey::DeleteRecords, delete_records::MIN_VERSION, delete_records::MAX_VERSION),
    (ApiKey::DescribeTopicPartitions, describe_topic_partitions::MIN_VERSION, describe_topic_partitions::MAX_VERSION),
    (ApiKey::OffsetForLeaderEpoch, offset_for_leader_epoch::MIN_VERSION, offset_for_leader_epoch::MAX_VERSION),
    (ApiKey::CreateAcls, acls::MIN_VERSION, acls::MAX_VERSION),
    (ApiKey::DescribeAcls, acls::MIN_VERSION, acls::MAX_VERSION),
    (ApiKey::DeleteAcls, acls::MIN_VERSION, acls::MAX_VERSION),
    (ApiKey::AlterUserScramCredentials, scram_credentials::MIN_VERSION, scram_credentials::MAX_VERSION),
    (ApiKey::DescribeUserScramCredentials, scram_credentials::MIN_VERSION, scram_credentials::MAX_VERSION),
    (ApiKey::AlterClientQuotas, client_quotas::MIN_VERSION, client_quotas::MAX_VERSION),
    (ApiKey::DescribeClientQuotas, client_quotas::MIN_VERSION, client_quotas::MAX_VERSION),
    (ApiKey::AddPartitionsToTxn, 0, transactions::ADD_PARTITIONS_MAX_VERSION),
    (ApiKey::AddOffsetsToTxn, 0, transactions::ADD_OFFSETS_MAX_VERSION),
    (ApiKey::EndTxn, 0, transactions::END_TXN_MAX_VERSION),
    (ApiKey::TxnOffsetCommit, 0, transactions::TXN_OFFSET_COMMIT_MAX_VERSION),
    (ApiKey::WriteTxnMarkers, 1, 1),
    (ApiKey::DescribeTransactions, 0, 0),
    (ApiKey::ListTransactions, 0, 1),
    (ApiKey::SaslHandshake, 1, 1),
    (ApiKey::SaslAuthenticate, 0, 2),
];

/// Handles one request and counts it in the shard's metrics (a request answered by
/// closing the connection counts as an error).
pub async fn handle(shard: Rc<Shard>, req: Request, connection: Rc<ConnectionContext>) -> Reply {
    let started = std::time::Instant::now();
    let api = req.api_key;
    let ctx = RequestContext::new(shard, connection, &req);
    let reply = handle_counted(&ctx, req).await;
    ctx.shard.metrics.request(api, started.elapsed(), matches!(reply, Reply::Close));
    reply
}

async fn handle_counted(ctx: &RequestContext, mut req: Request) -> Reply {
    if req.api_key == ApiKey::ApiVersions {
        return to_reply(&req, api_versions::handle(&req));
    }
    let version = req.version();
    let supported = SUPPORTED.iter().find(|(k, _, _)| *k == req.api_key);
    match supported {
        Some(&(_, min, max)) if version >= min && version <= max => {}
        _ => {
            tracing::warn!(api = ?req.api_key, version, "closing connection: unsupported API or version");
            return Reply::Close;
        }
    }
    let api = req.api_key;
    // Before SASL authentication only ApiVersions and the SASL requests run (Kafka closes
    // the connection on anything else).
    if !ctx.connection.sasl.borrow().authenticated() && !matches!(api, ApiKey::SaslHandshake | ApiKey::SaslAuthenticate)
    {
        tracing::info!(?api, peer = ?ctx.connection.peer, "closing connection: request before SASL authentication");
        return Reply::Close;
    }
    // A SASL session past `connections.max.reauth.ms` serves nothing but a
    // re-authentication (KIP-368), as Kafka closes such a connection.
    if ctx.connection.session_expires.get().is_some_and(|t| t <= std::time::Instant::now())
        && !matches!(api, ApiKey::SaslHandshake | ApiKey::SaslAuthenticate)
    {
        tracing::info!(?api, peer = ?ctx.connection.peer, "closing connection: SASL session expired without re-authentication");
        return Reply::Close;
    }
    // Produce owns its body (see produce::handle); every other handler decodes from `req`.
    let body = if api == ApiKey::Produce { std::mem::take(&mut req.body) } else { Bytes::new() };
    // A bug in one handler must not take the shard down: answer it by closing the connection.
    let dispatched = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(dispatch(ctx, &req, body)));
    // With client quotas configured, the handler's time on this thread (its polls, not its
    // waits) counts against `request_percentage`, as Kafka counts request-thread time.
    let measured = !ctx.shard.image_ref().quotas.is_empty();
    let (outcome, busy) = if measured { busy_time(dispatched).await } else { (dispatched.await, Duration::ZERO) };
    let encode_started = measured.then(std::time::Instant::now);
    let reply = match outcome {
        Ok(result) => to_reply(&req, result),
        Err(_) => {
            tracing::error!(?api, version, "handler panicked; closing the connection");
            Reply::Close
        }
    };
    if let Some(t) = encode_started.filter(|_| !ctx.request_quota_exempt.get()) {
        // Percent of one thread for one second: 10 ms of thread time is 1.
        let percent_seconds = (busy + t.elapsed()).as_secs_f64() * 100.0;
        ctx.record_quota(QuotaKind::Request, percent_seconds);
    }
    reply
}

/// Runs `f` to completion, and the time spent inside its polls: the thread time it used,
/// without the time it waited.
async fn busy_time<F: std::future::Future>(f: F) -> (F::Output, Duration) {
    let mut f = std::pin::pin!(f);
    let mut busy = Duration::ZERO;
    let out = std::future::poll_fn(|cx| {
        let t = std::time::Instant::now();
        let r = f.as_mut().poll(cx);
        busy += t.elapsed();
        r
    })
    .await;
    (out, busy)
}

async fn dispatch(ctx: &RequestContext, req: &Request, body: Bytes) -> HandlerResult {
    match req.api_key {
        ApiKey::Produce => produce::handle(ctx, req, body).await,
        ApiKey::Fetch => fetch::handle(ctx, req).await,
        ApiKey::ListOffsets => list_offsets::handle(ctx, req).await,
        ApiKey::Metadata => metadata::handle(ctx, req).await,
        ApiKey::CreateTopics => create_topics::handle(ctx, req).await,
        ApiKey::DeleteTopics => delete_topics::handle(ctx, req).await,
        ApiKey::DescribeCluster => describe_cluster::handle(ctx, req).await,
        ApiKey::FindCoordinator => find_coordinator::handle(ctx, req).await,
        ApiKey::JoinGroup => join_group::handle(ctx, req).await,
        ApiKey::SyncGroup => sync_group::handle(ctx, req).await,
        ApiKey::Heartbeat => heartbeat::handle(ctx, req).await,
        ApiKey::LeaveGroup => leave_group::handle(ctx, req).await,
        ApiKey::OffsetCommit => offset_commit::handle(ctx, req).await,
        ApiKey::OffsetFetch => offset_fetch::handle(ctx, req).await,
        ApiKey::OffsetDelete => offset_delete::handle(ctx, req).await,
        ApiKey::ListGroups => list_groups::handle(ctx, req).await,
        ApiKey::DescribeGroups => describe_groups::handle(ctx, req).await,
        ApiKey::DeleteGroups => delete_groups::handle(ctx, req).await,
        ApiKey::DescribeConfigs => describe_configs::handle(ctx, req).await,
        ApiKey::AlterConfigs => alter_configs::handle(ctx, req).await,
        ApiKey::IncrementalAlterConfigs => incremental_alter_configs::handle(ctx, req).await,
        ApiKey::CreatePartitions => create_partitions::handle(ctx, req).await,
        ApiKey::ElectLeaders => elect_leaders::handle(ctx, req).await,
        ApiKey::AlterPartitionReassignments => alter_partition_reassignments::handle(ctx, req).await,
        ApiKey::ListPartitionReassignments => list_partition_reassignments::handle(ctx, req).await,
        ApiKey::DescribeLogDirs => describe_log_dirs::handle(ctx, req).await,
        ApiKey::InitProducerId => init_producer_id::handle(ctx, req).await,
        ApiKey::DeleteRecords => delete_records::handle(ctx, req).await,
        ApiKey::DescribeTopicPartitions => describe_topic_partitions::handle(ctx, req).await,
        ApiKey::OffsetForLeaderEpoch => offset_for_leader_epoch::handle(ctx, req).await,
        ApiKey::CreateAcls => acls::create(ctx, req).await,
        ApiKey::DescribeAcls => acls::describe(ctx, req),
        ApiKey::DeleteAcls => acls::delete(ctx, req).await,
        ApiKey::AlterUserScramCredentials => scram_credentials::alter(ctx, req).await,
        ApiKey::DescribeUserScramCredentials => scram_credentials::describe(ctx, req),
        ApiKey::AlterClientQuotas => client_quotas::alter(ctx, req).await,
        ApiKey::DescribeClientQuotas => client_quotas::describe(ctx, req),
        ApiKey::AddPartitionsToTxn => transactions::add_partitions(ctx, req).await,
        ApiKey::AddOffsetsToTxn => transactions::add_offsets(ctx, req).await,
        ApiKey::EndTxn => transactions::end_txn(ctx, req).await,
        ApiKey::TxnOffsetCommit => transactions::txn_offset_commit(ctx, req).await,
        ApiKey::WriteTxnMarkers => transactions::write_txn_markers(ctx, req).await,
        ApiKey::DescribeTransactions => transactions::describe_transactions(ctx, req).await,
        ApiKey::ListTransactions => transactions::list_transactions(ctx, req).await,
        ApiKey::SaslHandshake => sasl::handshake(ctx, req),
        ApiKey::SaslAuthenticate => sasl::authenticate(ctx, req),
        _ => unreachable!("checked against SUPPORTED"),
    }
}

fn to_reply(req: &Request, result: HandlerResult) -> Reply {
    match result {
        Ok(reply) => reply,
        Err(e) => {
            tracing::warn!(api = ?req.api_key, version = req.version(), error = %e, "closing connection: bad request");
            Reply::Close
        }
    }
}

/// Encodes `body` as the response to `req`.
pub fn respond<T: Encodable>(req: &Request, body: &T) -> HandlerResult {
    encode_response(req.api_key, req.version(), req.correlation_id(), body).map(Reply::Frame)
}

/// Runs a metadata change on the controller shard.
pub async fn controller_call(shard: &Rc<Shard>, op: ControllerOp) -> Result<ControllerResult, ControllerError> {
    shard
        .call(crate::model::ShardId(0), |reply| ShardMsg::Controller { op, reply })
        .await
        .unwrap_or_else(|| Err(ControllerError::NotAvailable("the broker is shutting down".into())))
}

/// The shard of this node that coordinates `key`: the owner of `key`'s partition of the
/// internal `topic` (`partition_of`: Kafka's placement), if this node leads it. `None`
/// otherwise (the client looks for the coordinator again).
pub fn coordinator_shard(
    shard: &Shard,
    topic: &str,
    key: &str,
    partition_of: fn(&str, i32) -> i32,
) -> Option<crate::model::ShardId> {
    let image = shard.image();
    let t = image.topic(topic)?;
    let partition = partition_of(key, t.partitions);
    let leader = t.placement(partition).and_then(|p| p.leader());
    (leader == Some(crate::model::NodeId(shard.node.node_id))).then(|| shard.owner_in(t, partition))
}

/// Creates `__transaction_state` (compacted, `transaction.state.log.num.partitions`
/// partitions, `transaction.state.log.replication.factor` replicas, else min(3, live
/// brokers), `min.insync.replicas` from `transaction.state.log.min.isr` but at most the
/// replicas) if it does not exist yet.
pub async fn ensure_transaction_state_topic(shard: &Rc<Shard>) {
    use crate::shard::controller::NewTopic;
    use crate::txn::TRANSACTION_STATE_TOPIC;
    let image = shard.image();
    if image.topic(TRANSACTION_STATE_TOPIC).is_some() {
        return;
    }
    let live = image.live_brokers().count().max(1);
    let rf = shard.config.transaction_state_log_replication_factor.unwrap_or(live.min(3) as i16);
    let mut configs = std::collections::BTreeMap::new();
    configs.insert("cleanup.policy".to_string(), "compact".to_string());
    configs.insert("segment.bytes".to_string(), shard.config.transaction_state_log_segment_bytes.to_string());
    configs.insert(
        "min.insync.replicas".to_string(),
        shard.config.transaction_state_log_min_isr.min(rf as i32).to_string(),
    );
    let topic = NewTopic {
        name: TRANSACTION_STATE_TOPIC.into(),
        partitions: shard.config.transaction_state_log_num_partitions,
        replication_factor: rf,
        assignments: Vec::new(),
        configs,
    };
    let op = ControllerOp::CreateTopics { topics: vec![topic], validate_only: false };
    if let Err(e) = controller_call(shard, op).await {
        tracing::warn!(error = %e, "cannot create {TRANSACTION_STATE_TOPIC}");
    }
}

/// Creates `__consumer_offsets` (compacted, `offsets.topic.num.partitions` partitions,
/// `offsets.topic.replication.factor` replicas, else min(3, live brokers)) if it does not
/// exist yet.
pub async fn ensure_offsets_topic(shard: &Rc<Shard>) {
    use crate::group::OFFSETS_TOPIC;
    use crate::shard::controller::NewTopic;
    let image = shard.image();
    if image.topic(OFFSETS_TOPIC).is_some() {
        return;
    }
    let mut configs = std::collections::BTreeMap::new();
    configs.insert("cleanup.policy".to_string(), "compact".to_string());
    configs.insert("segment.bytes".to_string(), shard.config.offsets_topic_segment_bytes.to_string());
    let live = image.live_brokers().count().max(1);
    let topic = NewTopic {
        name: OFFSETS_TOPIC.into(),
        partitions: shard.config.offsets_topic_num_partitions,
        replication_factor: shard.config.offsets_topic_replication_factor.unwrap_or(live.min(3) as i16),
        assignments: Vec::new(),
        configs,
    };
    let op = ControllerOp::CreateTopics { topics: vec![topic], validate_only: false };
    if let Err(e) = controller_call(shard, op).await {
        tracing::warn!(error = %e, "cannot create {OFFSETS_TOPIC}");
    }
}

/// The error for a request whose `current_leader_epoch` does not match the replica's:
/// FENCED_LEADER_EPOCH (74) when the client's is older, UNKNOWN_LEADER_EPOCH (75) newer.
pub fn epoch_error(e: crate::cluster::partition::EpochCheck) -> kafka_protocol::error::ResponseError {
    use crate::cluster::partition::EpochCheck;
    match e {
        EpochCheck::Fenced => kafka_protocol::error::ResponseError::FencedLeaderEpoch,
        EpochCheck::Unknown => kafka_protocol::error::ResponseError::UnknownLeaderEpoch,
    }
}

pub fn code(e: kafka_protocol::error::ResponseError) -> i16 {
    e.code()
}
