//! Shared by the group handlers: routing a group's request to its coordinator shard (the
//! owner of the group's `__consumer_offsets` partition) and mapping group errors to codes.
use std::rc::Rc;

use kafka_protocol::error::ResponseError;

use crate::group::{offsets_partition, GroupError, OFFSETS_TOPIC};
use crate::shard::groups::{GroupOp, GroupReply};
use crate::shard::{Shard, ShardMsg};

/// Runs `op` on the coordinator of `group_id`; `None` if it could not be reached, or this
/// node is not the group's coordinator (it does not lead the group's `__consumer_offsets`
/// partition: the client looks for the coordinator again).
pub async fn call(shard: &Rc<Shard>, group_id: &str, op: GroupOp) -> Option<GroupReply> {
    let owner = super::coordinator_shard(shard, OFFSETS_TOPIC, group_id, offsets_partition)?;
    shard.call(owner, |reply| ShardMsg::Group { op, reply }).await
}

pub fn code(e: &GroupError) -> ResponseError {
    match e {
        GroupError::UnknownMemberId => ResponseError::UnknownMemberId,
        GroupError::IllegalGeneration => ResponseError::IllegalGeneration,
        GroupError::RebalanceInProgress => ResponseError::RebalanceInProgress,
        GroupError::InconsistentGroupProtocol => ResponseError::InconsistentGroupProtocol,
        GroupError::MemberIdRequired => ResponseError::MemberIdRequired,
        GroupError::FencedInstanceId => ResponseError::FencedInstanceId,
        GroupError::InvalidSessionTimeout => ResponseError::InvalidSessionTimeout,
        GroupError::NonEmptyGroup => ResponseError::NonEmptyGroup,
        GroupError::GroupIdNotFound => ResponseError::GroupIdNotFound,
        GroupError::GroupSubscribedToTopic => ResponseError::GroupSubscribedToTopic,
        GroupError::InvalidGroupId => ResponseError::InvalidGroupId,
        GroupError::GroupMaxSizeReached => ResponseError::GroupMaxSizeReached,
        GroupError::CoordinatorNotAvailable => ResponseError::CoordinatorNotAvailable,
    }
}

pub fn opt_code(e: &Option<GroupError>) -> i16 {
    e.as_ref().map(|e| code(e).code()).unwrap_or(0)
}
