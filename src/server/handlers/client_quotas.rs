//! AlterClientQuotas v0–1 and DescribeClientQuotas v0–1 (KIP-546;
//! `kafka-configs.sh --entity-type users|clients|ips`, `sluicectl quota`): quota values
//! per (user, client id) or ip entity, kept in the cluster metadata. Changing them needs
//! ALTER_CONFIGS on the cluster, reading them DESCRIBE_CONFIGS, as in Kafka.
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    alter_client_quotas_response, describe_client_quotas_response, AlterClientQuotasRequest, AlterClientQuotasResponse,
    DescribeClientQuotasRequest, DescribeClientQuotasResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::config_common::controller_error;
use super::{controller_call, respond, HandlerResult};
use crate::protocol::frame::Request;
use crate::security::operations::AclOperation;
use crate::security::quota::QuotaEntity;
use crate::server::context::RequestContext;
use crate::shard::controller::{ControllerError, ControllerOp, ControllerResult};

pub const MIN_VERSION: i16 = 0;
pub const MAX_VERSION: i16 = 1;

type Ops = Vec<(String, Option<f64>)>;

/// One AlterClientQuotas entry checked: its entity and operations, or why not.
fn check(
    entry: &kafka_protocol::messages::alter_client_quotas_request::EntryData,
) -> Result<(QuotaEntity, Ops), String> {
    let entity =
        QuotaEntity::from_parts(entry.entity.iter().map(|e| (e.entity_type.as_str(), e.entity_name.as_deref())))?;
    let mut ops: Ops = Vec::new();
    for op in &entry.ops {
        let key = op.key.to_string();
        if !entity.accepts(&key) {
            return Err(format!("{key} is not a valid quota key for this entity"));
        }
        if ops.iter().any(|(k, _)| *k == key) {
            return Err(format!("Duplicate quota key {key}"));
        }
        if !op.remove && !(op.value.is_finite() && op.value > 0.0) {
            return Err(format!("Quota {key} must be a positive number, not {}", op.value));
        }
        ops.push((key, (!op.remove).then_some(op.value)));
    }
    Ok((entity, ops))
}

pub async fn alter(ctx: &RequestContext, req: &Request) -> HandlerResult {
    let r: AlterClientQuotasRequest = req.decode()?;
    let allowed = ctx.cluster_authorized(AclOperation::AlterConfigs);
    let mut resp = AlterClientQuotasResponse::default();
    let mut asked = Vec::new();
    for (i, entry) in r.entries.iter().enumerate() {
        let mut out = alter_client_quotas_response::EntryData::default();
        out.entity = entry
            .entity
            .iter()
            .map(|e| {
                let mut d = alter_client_quotas_response::EntityData::default();
                d.entity_type = e.entity_type.clone();
                d.entity_name = e.entity_name.clone();
                d
            })
            .collect();
        if !allowed {
            out.error_code = ResponseError::ClusterAuthorizationFailed.code();
            out.error_message = Some(StrBytes::from_static_str("Cluster authorization failed."));
        } else {
            match check(entry) {
                Ok(checked) => asked.push((i, checked)),
                Err(why) => {
                    out.error_code = ResponseError::InvalidRequest.code();
                    out.error_message = Some(StrBytes::from_string(why));
                }
            }
        }
        resp.entries.push(out);
    }
    if !asked.is_empty() {
        let n = asked.len();
        let entries = asked.iter().map(|(_, c)| c.clone()).collect();
        let op = ControllerOp::AlterClientQuotas { entries, validate_only: r.validate_only };
        let outcomes = match controller_call(&ctx.shard, op).await {
            Ok(ControllerResult::Changed(results)) => results,
            Ok(_) => vec![Err(ControllerError::NotAvailable("unexpected answer".into())); n],
            Err(e) => vec![Err(e); n],
        };
        for ((i, _), outcome) in asked.iter().zip(outcomes) {
            if let Err(e) = outcome {
                let (code, why) = controller_error(e);
                resp.entries[*i].error_code = code.code();
                resp.entries[*i].error_message = Some(StrBytes::from_string(why));
            }
        }
    }
    respond(req, &resp)
}

pub fn describe(ctx: &RequestContext, req: &Request) -> HandlerResult {
    let r: DescribeClientQuotasRequest = req.decode()?;
    let mut resp = DescribeClientQuotasResponse::default();
    if !ctx.cluster_authorized(AclOperation::DescribeConfigs) {
        resp.error_code = ResponseError::ClusterAuthorizationFailed.code();
        resp.error_message = Some(StrBytes::from_static_str("Cluster authorization failed."));
        return respond(req, &resp);
    }
    // (entity type, match): Some(Some(name)) exact, Some(None) the default, None any.
    let mut components: Vec<(&str, Option<Option<&str>>)> = Vec::new();
    for c in &r.components {
        let t = c.entity_type.as_str();
        let m = match c.match_type {
            0 => Some(c._match.as_deref()),
            1 => Some(None),
            2 => None,
            other => {
                resp.error_code = ResponseError::InvalidRequest.code();
                resp.error_message = Some(StrBytes::from_string(format!("Unknown match type {other}")));
                return respond(req, &resp);
            }
        };
        if !matches!(t, "user" | "client-id" | "ip") || components.iter().any(|(x, _)| *x == t) {
            resp.error_code = ResponseError::InvalidRequest.code();
            resp.error_message = Some(StrBytes::from_string(format!("Invalid or duplicate entity type {t}")));
            return respond(req, &resp);
        }
        components.push((t, m));
    }
    let image = ctx.shard.image();
    let mut entries = Vec::new();
    for (entity, values) in image.quotas.iter() {
        let parts = entity.parts();
        let matches = components.iter().all(|(t, m)| {
            parts.iter().any(|(pt, name)| {
                pt == t
                    && match m {
                        None => true,
                        Some(wanted) => name == wanted,
                    }
            })
        });
        if !matches || (r.strict && parts.len() != components.len()) {
            continue;
        }
        let mut e = describe_client_quotas_response::EntryData::default();
        e.entity = parts
            .iter()
            .map(|(t, name)| {
                let mut d = describe_client_quotas_response::EntityData::default();
                d.entity_type = StrBytes::from_static_str(t);
                d.entity_name = name.map(|n| StrBytes::from_string(n.to_string()));
                d
            })
            .collect();
        e.values = values
            .iter()
            .map(|(k, v)| {
                let mut d = describe_client_quotas_response::ValueData::default();
                d.key = StrBytes::from_string(k.clone());
                d.value = *v;
                d
            })
            .collect();
        entries.push(e);
    }
    resp.entries = Some(entries);
    respond(req, &resp)
}
