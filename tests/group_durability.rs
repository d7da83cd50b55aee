//! SyncGroup is answered only once the group's record (generation, members and their
//! assignments) is durable in `__consumer_offsets`, as Kafka answers after its append: a
//! broker killed right after a member was told its assignment still has it on restart.
//! `SLUICE_TEST_DELAY_GROUP_PERSIST_MS` holds every group append, so that without that
//! ordering the kill would always come first.
mod common;

use bytes::Bytes;
use common::*;
use kafka_protocol::messages::{
    ApiKey, DescribeGroupsRequest, DescribeGroupsResponse, GroupId, JoinGroupRequest, JoinGroupResponse,
    SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::StrBytes;

const MEMBER_ID_REQUIRED: i16 = 79;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

#[test]
fn an_announced_assignment_survives_a_kill() {
    use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
    let mut broker = Broker::start_with(&[], 2);
    broker.set_env("SLUICE_TEST_DELAY_GROUP_PERSIST_MS", "1500");
    broker.restart();
    let bs = broker.bootstrap();
    let group = "g-durable-sync";

    let mut join = JoinGroupRequest::default();
    join.group_id = GroupId(s(group));
    join.session_timeout_ms = 30_000;
    join.rebalance_timeout_ms = 30_000;
    join.protocol_type = s("consumer");
    let mut proto = JoinGroupRequestProtocol::default();
    proto.name = s("range");
    proto.metadata = Bytes::from_static(b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00");
    join.protocols = vec![proto];
    let first: JoinGroupResponse = kafka_call(&bs, ApiKey::JoinGroup, 9, &join);
    assert_eq!(first.error_code, MEMBER_ID_REQUIRED);
    join.member_id = first.member_id.clone();
    let joined: JoinGroupResponse = kafka_call(&bs, ApiKey::JoinGroup, 9, &join);
    assert_eq!(joined.error_code, 0);
    assert_eq!(joined.leader, joined.member_id, "the only member leads");

    let assignment = Bytes::from_static(b"\x00\x03the assignment this member was told");
    let mut sync = SyncGroupRequest::default();
    sync.group_id = GroupId(s(group));
    sync.generation_id = joined.generation_id;
    sync.member_id = joined.member_id.clone();
    sync.protocol_type = Some(s("consumer"));
    sync.protocol_name = Some(s("range"));
    let mut a = SyncGroupRequestAssignment::default();
    a.member_id = joined.member_id.clone();
    a.assignment = assignment.clone();
    sync.assignments = vec![a];
    let synced: SyncGroupResponse = kafka_call(&bs, ApiKey::SyncGroup, 5, &sync);
    assert_eq!(synced.error_code, 0);
    assert_eq!(synced.assignment, assignment);
    // The member has its assignment: the broker dies at once.
    broker.kill9();
    broker.restart();
    let bs = broker.bootstrap();

    let mut describe = DescribeGroupsRequest::default();
    describe.groups = vec![GroupId(s(group))];
    // Right after a restart a connection may still be refused or reset: ask until answered.
    let d: DescribeGroupsResponse = wait_until(std::time::Duration::from_secs(30), "DescribeGroups answered", || {
        std::panic::catch_unwind(|| kafka_call::<_, DescribeGroupsResponse>(&bs, ApiKey::DescribeGroups, 5, &describe))
            .ok()
    });
    let g = &d.groups[0];
    assert_eq!(g.error_code, 0);
    assert_eq!(g.members.len(), 1, "the member announced before the kill: {g:?}");
    assert_eq!(g.members[0].member_id, joined.member_id);
    assert_eq!(g.members[0].member_assignment, assignment, "its assignment as SyncGroup told it");
}
