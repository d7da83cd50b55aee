//! InitProducerId v0–5. For idempotent producers: a new producer id with epoch 0, or, when
//! the client names its id and epoch (v3+, KIP-360), the same id with the epoch bumped.
//! With a transactional id, the id's coordinator answers (`transactions`): the id's
//! producer id with its epoch bumped, fencing the previous instance. New ids come from a
//! block the active controller handed this broker (unique cluster-wide); an exhausted
//! block is replaced first.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::{respond, HandlerResult};
use crate::protocol::frame::Request;
use crate::security::operations::{AclOperation, ResourceType};
use crate::server::context::RequestContext;
use crate::shard::controller::{ControllerError, ControllerOp, ControllerResult};
use crate::shard::txns::TxnOp;
use crate::txn::coordinator::Answer;

pub const MIN_VERSION: i16 = 0;
pub const MAX_VERSION: i16 = 5;

/// An id from this broker's block, asking the controller for a new block when it is spent.
async fn new_producer_id(shard: &std::rc::Rc<crate::shard::Shard>) -> Result<i64, ControllerError> {
    if let Some(id) = shard.lifecycle.take_producer_id() {
        return Ok(id);
    }
    let op = ControllerOp::AllocateProducerIds { node_id: shard.node.node_id };
    match super::controller_call(shard, op).await? {
        ControllerResult::ProducerIds { first, count } => {
            shard.lifecycle.set_producer_ids(first..first + count);
            shard.lifecycle.take_producer_id().ok_or_else(|| ControllerError::Storage("empty producer id block".into()))
        }
        _ => Err(ControllerError::Storage("unexpected controller answer".into())),
    }
}

pub async fn handle(ctx: &RequestContext, req: &Request) -> HandlerResult {
    let shard = &ctx.shard;
    let r: InitProducerIdRequest = req.decode()?;
    let mut resp = InitProducerIdResponse::default();
    if let Some(id) = r.transactional_id.as_ref().map(|t| t.0.to_string()).filter(|t| !t.is_empty()) {
        resp.producer_id = ProducerId(-1);
        resp.producer_epoch = -1;
        if !ctx.authorized(AclOperation::Write, ResourceType::TransactionalId, &id) {
            resp.error_code = ResponseError::TransactionalIdAuthorizationFailed.code();
            return respond(req, &resp);
        }
        let fresh_id = match new_producer_id(shard).await {
            Ok(id) => id,
            Err(e) => {
                tracing::warn!(error = %e, "no producer id block from the controller");
                resp.error_code = ResponseError::CoordinatorLoadInProgress.code();
                return respond(req, &resp);
            }
        };
        let expected = (req.version() >= 3 && r.producer_id.0 >= 0).then_some((r.producer_id.0, r.producer_epoch));
        let op = TxnOp::Init { transactional_id: id.clone(), timeout_ms: r.transaction_timeout_ms, expected, fresh_id };
        match super::transactions::answer(shard, &id, op).await {
            Ok(Answer::ProducerId { producer_id, producer_epoch }) => {
                resp.producer_id = ProducerId(producer_id);
                resp.producer_epoch = producer_epoch;
            }
            Ok(Answer::Done) => resp.error_code = ResponseError::UnknownServerError.code(),
            Err(e) => resp.error_code = super::transactions::code(e, req.version() >= 4).code(),
        }
        return respond(req, &resp);
    }
    // Kafka: an idempotent producer needs IDEMPOTENT_WRITE on the cluster or WRITE on
    // some topic.
    if !ctx.may_write_idempotently() {
        resp.error_code = ResponseError::ClusterAuthorizationFailed.code();
        resp.producer_id = ProducerId(-1);
        resp.producer_epoch = -1;
        return respond(req, &resp);
    }
    let bump = req.version() >= 3 && r.producer_id.0 >= 0 && r.producer_epoch >= 0 && r.producer_epoch < i16::MAX - 1;
    let (id, epoch) = if bump {
        (r.producer_id.0, r.producer_epoch + 1)
    } else {
        match new_producer_id(shard).await {
            Ok(id) => (id, 0),
            Err(e) => {
                tracing::warn!(error = %e, "no producer id block from the controller");
                resp.error_code = ResponseError::CoordinatorLoadInProgress.code();
                resp.producer_id = ProducerId(-1);
                resp.producer_epoch = -1;
                return respond(req, &resp);
            }
        }
    };
    tracing::debug!(producer_id = id, epoch, "producer id issued");
    resp.producer_id = ProducerId(id);
    resp.producer_epoch = epoch;
    respond(req, &resp)
}
