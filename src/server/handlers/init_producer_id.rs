//! InitProducerId v0–5 for idempotent producers: a new producer id with epoch 0, or, when
//! the client names its id and epoch (v3+, KIP-360), the same id with the epoch bumped.
//! Transactions are not implemented: a transactional id is refused.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::{respond, HandlerResult};
use crate::protocol::frame::Request;
use crate::server::context::RequestContext;

pub const MIN_VERSION: i16 = 0;
pub const MAX_VERSION: i16 = 5;

pub async fn handle(ctx: &RequestContext, req: &Request) -> HandlerResult {
    let shard = &ctx.shard;
    let r: InitProducerIdRequest = req.decode()?;
    let mut resp = InitProducerIdResponse::default();
    if r.transactional_id.as_ref().is_some_and(|t| !t.0.is_empty()) {
        resp.error_code = ResponseError::UnsupportedVersion.code();
        resp.producer_id = ProducerId(-1);
        resp.producer_epoch = -1;
        return respond(req, &resp);
    }
    let (id, epoch) = if req.version() >= 3 && r.producer_id.0 >= 0 && r.producer_epoch >= 0 {
        if r.producer_epoch < i16::MAX - 1 {
            (r.producer_id.0, r.producer_epoch + 1)
        } else {
            (shard.lifecycle.next_producer_id(), 0)
        }
    } else {
        (shard.lifecycle.next_producer_id(), 0)
    };
    tracing::debug!(producer_id = id, epoch, "producer id issued");
    resp.producer_id = ProducerId(id);
    resp.producer_epoch = epoch;
    respond(req, &resp)
}
