//! DeleteTopics v0–6 (by name; v6 also by topic id). Refused with TOPIC_DELETION_DISABLED
//! when `delete.topic.enable=false`.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::{controller_call, respond, HandlerResult};
use crate::protocol::frame::Request;
use crate::security::operations::{AclOperation, ResourceType};
use crate::server::context::RequestContext;
use crate::shard::controller::{ControllerOp, ControllerResult};

pub const MIN_VERSION: i16 = 0;
pub const MAX_VERSION: i16 = 6;

pub async fn handle(ctx: &RequestContext, req: &Request) -> HandlerResult {
    let shard = &ctx.shard;
    let r: DeleteTopicsRequest = req.decode()?;
    let image = shard.image();
    // (name if resolved, id as asked, error)
    let wanted: Vec<(Option<String>, Uuid, Option<ResponseError>)> = if req.version() >= 6 {
        r.topics
            .iter()
            .map(|t| match &t.name {
                Some(n) => (Some(n.0.to_string()), Uuid::nil(), None),
                None => match image.topic_by_id(t.topic_id) {
                    Some(m) => (Some(m.name.to_string()), t.topic_id, None),
                    None => (None, t.topic_id, Some(ResponseError::UnknownTopicId)),
                },
            })
            .collect()
    } else {
        r.topic_names.iter().map(|n| (Some(n.0.to_string()), Uuid::nil(), None)).collect()
    };
    let mut results: Vec<DeletableTopicResult> = wanted
        .iter()
        .map(|(name, id, err)| {
            let mut res = DeletableTopicResult::default();
            res.name = name.clone().map(|n| TopicName(StrBytes::from_string(n)));
            if req.version() >= 6 {
                res.topic_id = name.as_deref().and_then(|n| image.topic(n)).map(|m| m.id).unwrap_or(*id);
            }
            if let Some(e) = err {
                res.error_code = e.code();
            } else if name.as_deref().is_some_and(|n| !ctx.authorized(AclOperation::Delete, ResourceType::Topic, n)) {
                res.error_code = ResponseError::TopicAuthorizationFailed.code();
            } else if name.as_deref().is_some_and(|n| n.starts_with("__")) {
                res.error_code = ResponseError::InvalidTopicException.code();
            } else if !shard.config.delete_topic_enable {
                res.error_code = ResponseError::TopicDeletionDisabled.code();
                if req.version() >= 5 {
                    res.error_message = Some(StrBytes::from_static_str("Topic deletion is disabled."));
                }
            }
            res
        })
        .collect();
    let pending: Vec<usize> = (0..results.len()).filter(|&i| results[i].error_code == 0).collect();
    if !pending.is_empty() {
        let names = pending.iter().map(|&i| wanted[i].0.clone().expect("resolved")).collect();
        match controller_call(shard, ControllerOp::DeleteTopics { names }).await {
            Ok(ControllerResult::Deleted(out)) => {
                for (i, res) in pending.into_iter().zip(out) {
                    if let Err(e) = res {
                        results[i].error_code = super::config_common::controller_error(e.clone()).0.code();
                        if req.version() >= 5 {
                            results[i].error_message = Some(StrBytes::from_string(e.to_string()));
                        }
                    }
                }
            }
            other => {
                let code = match other {
                    Err(e) => super::config_common::controller_error(e).0,
                    Ok(_) => ResponseError::UnknownServerError,
                };
                for i in pending {
                    results[i].error_code = code.code();
                }
            }
        }
    }
    let mut resp = DeleteTopicsResponse::default();
    resp.responses = results;
    respond(req, &resp)
}
