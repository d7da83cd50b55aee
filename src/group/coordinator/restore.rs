//! Groups and members rebuilt from their `__consumer_offsets` records, and the topics of
//! a consumer-protocol subscription.
use super::*;

/// Builds a member for a restored group.
#[allow(clippy::too_many_arguments)]
pub fn restored_member(
    member_id: String,
    instance_id: Option<String>,
    client_id: String,
    client_host: String,
    rebalance_timeout_ms: u64,
    session_timeout_ms: u64,
    protocol: &str,
    subscription: Bytes,
    assignment: Bytes,
) -> Member {
    Member {
        member_id,
        instance_id,
        client_id,
        client_host,
        session_timeout_ms,
        rebalance_timeout_ms,
        protocols: vec![(protocol.to_string(), subscription)],
        assignment,
        last_heartbeat: 0,
        awaiting_join: None,
        awaiting_sync: None,
    }
}

/// A restored group in the given state.
pub fn restored_group(
    group_id: String,
    generation: i32,
    protocol_type: Option<String>,
    protocol_name: Option<String>,
    leader: Option<String>,
    members: Vec<Member>,
) -> Group {
    let mut group = Group::new(&group_id, 0);
    group.state = if members.is_empty() { GroupState::Empty } else { GroupState::Stable };
    group.generation = generation;
    group.protocol_type = protocol_type;
    group.protocol_name = protocol_name;
    group.leader = leader;
    group.members = members;
    group
}

/// The topics of a consumer-protocol subscription (empty if it is not one).
pub fn subscription_topics(metadata: &Bytes) -> Vec<String> {
    use kafka_protocol::messages::ConsumerProtocolSubscription;
    use kafka_protocol::protocol::Decodable;
    let mut buf = metadata.clone();
    if buf.len() < 2 {
        return Vec::new();
    }
    let version = i16::from_be_bytes([buf[0], buf[1]]);
    let _ = bytes::Buf::get_i16(&mut buf);
    ConsumerProtocolSubscription::decode(&mut buf, version.clamp(0, 3))
        .map(|s| s.topics.into_iter().map(|t| t.to_string()).collect())
        .unwrap_or_default()
}
