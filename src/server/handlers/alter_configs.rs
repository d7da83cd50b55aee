//! AlterConfigs v0–2 (the legacy API): each topic's configs are replaced by the request's
//! set, validated first; a bad value is INVALID_CONFIG with a message naming the key.
//! A broker resource (this node's id, or "" for the cluster-wide defaults) replaces that
//! entity's dynamic broker configs (`config::DYNAMIC_BROKER_KEYS`) the same way.
use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use super::config_common::*;
use super::{respond, HandlerResult};
use crate::protocol::frame::Request;
use crate::security::operations::AclOperation;
use crate::server::context::RequestContext;

pub const MIN_VERSION: i16 = 0;
pub const MAX_VERSION: i16 = 2;

pub async fn handle(ctx: &RequestContext, req: &Request) -> HandlerResult {
    let shard = &ctx.shard;
    let r: AlterConfigsRequest = req.decode()?;
    let mut plans = Vec::with_capacity(r.resources.len());
    for res in &r.resources {
        let name = res.resource_name.to_string();
        if let Some(why) = config_refusal(ctx, res.resource_type, &name, AclOperation::AlterConfigs) {
            plans.push(Planned::Denied(why));
            continue;
        }
        match res.resource_type {
            RESOURCE_TOPIC => {
                let mut configs = BTreeMap::new();
                let mut dup = None;
                for c in &res.configs {
                    if let Some(v) = &c.value {
                        if configs.insert(c.name.to_string(), v.to_string()).is_some() {
                            dup = Some(c.name.to_string());
                        }
                    }
                }
                let new = match dup {
                    Some(k) => Err((ResponseError::InvalidRequest, format!("duplicate config key {k}"))),
                    None => Ok(configs),
                };
                plans.push(Planned::Topic(name, new));
            }
            RESOURCE_BROKER => {
                let configs: BTreeMap<String, String> = res
                    .configs
                    .iter()
                    .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
                    .collect();
                plans.push(Planned::Broker(broker_entity(shard, &name).map(|e| (e, configs))));
            }
            other => plans.push(Planned::Other(other)),
        }
    }
    let results = alter_resources(shard, plans, r.validate_only).await;
    let mut resp = AlterConfigsResponse::default();
    for (res, result) in r.resources.iter().zip(results) {
        let mut out = AlterConfigsResourceResponse::default();
        out.resource_type = res.resource_type;
        out.resource_name = res.resource_name.clone();
        if let Err((code, message)) = result {
            out.error_code = code.code();
            out.error_message = Some(StrBytes::from_string(message));
        }
        resp.responses.push(out);
    }
    respond(req, &resp)
}
