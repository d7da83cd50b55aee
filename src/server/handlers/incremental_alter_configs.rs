//! IncrementalAlterConfigs v0–1: SET, DELETE, APPEND and SUBTRACT (the last two on list
//! configs: `cleanup.policy`) applied to the topic's current configs, then validated and
//! stored as a whole. A broker resource (this node's id, or "" for the cluster-wide
//! defaults) changes that entity's dynamic broker configs the same way.
use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use super::config_common::*;
use super::{respond, HandlerResult};
use crate::config::TOPIC_CONFIG_KEYS;
use crate::protocol::frame::Request;
use crate::security::operations::AclOperation;
use crate::server::context::RequestContext;

pub const MIN_VERSION: i16 = 0;
pub const MAX_VERSION: i16 = 1;

const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;
const LIST_KEYS: &[&str] = &["cleanup.policy", "log.cleanup.policy"];

pub async fn handle(ctx: &RequestContext, req: &Request) -> HandlerResult {
    let shard = &ctx.shard;
    let r: IncrementalAlterConfigsRequest = req.decode()?;
    let image = shard.image();
    // A list op on a key not set yet starts from its effective value (the broker's,
    // with dynamic broker configs applied).
    let effective = shard.config.with_dynamic(&image.broker_config_layers(shard.node.node_id));
    let base = |k: &str| {
        let broker_key = TOPIC_CONFIG_KEYS.iter().find(|(t, _)| *t == k).map_or(k, |(_, b)| *b);
        effective.describe().into_iter().find(|(key, _, _)| *key == broker_key).map(|(_, v, _)| v)
    };
    let mut plans = Vec::with_capacity(r.resources.len());
    for res in &r.resources {
        let name = res.resource_name.to_string();
        if let Some(why) = config_refusal(ctx, res.resource_type, &name, AclOperation::AlterConfigs) {
            plans.push(Planned::Denied(why));
            continue;
        }
        match res.resource_type {
            RESOURCE_BROKER => {
                let planned = broker_entity(shard, &name).and_then(|entity| {
                    let current = image.broker_configs.get(&entity).cloned().unwrap_or_default();
                    apply_ops(current, &res.configs, &base).map(|c| (entity, c))
                });
                plans.push(Planned::Broker(planned));
            }
            RESOURCE_TOPIC => {
                let current = image.topic(&name).map(|t| t.configs.clone()).unwrap_or_default();
                plans.push(Planned::Topic(name, apply_ops(current, &res.configs, &base)));
            }
            other => plans.push(Planned::Other(other)),
        }
    }
    let results = alter_resources(shard, plans, r.validate_only).await;
    let mut resp = IncrementalAlterConfigsResponse::default();
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

/// Applies SET, DELETE, APPEND and SUBTRACT to `configs`; `base` gives the value a list
/// op starts from when the key is not in `configs`.
fn apply_ops(
    mut configs: BTreeMap<String, String>,
    ops: &[AlterableConfig],
    base: &dyn Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, String>, (ResponseError, String)> {
    let mut seen = std::collections::HashSet::new();
    for c in ops {
        let key = c.name.to_string();
        if !seen.insert(key.clone()) {
            return Err((ResponseError::InvalidRequest, format!("duplicate config key {key}")));
        }
        let value = c.value.as_ref().map(|v| v.to_string());
        let list = LIST_KEYS.contains(&key.as_str());
        match (c.config_operation, value) {
            (SET, Some(v)) => {
                configs.insert(key, v);
            }
            (DELETE, _) => {
                configs.remove(&key);
            }
            (APPEND | SUBTRACT, Some(v)) if list => {
                let current = configs.get(&key).cloned().or_else(|| base(&key)).unwrap_or_default();
                let mut items: Vec<String> =
                    current.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
                for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    if c.config_operation == APPEND {
                        if !items.iter().any(|i| i == item) {
                            items.push(item.to_string());
                        }
                    } else {
                        items.retain(|i| i != item);
                    }
                }
                configs.insert(key, items.join(","));
            }
            (APPEND | SUBTRACT, Some(_)) => {
                return Err((ResponseError::InvalidConfig, format!("{key} is not a list config")));
            }
            (SET | APPEND | SUBTRACT, None) => {
                return Err((ResponseError::InvalidConfig, format!("{key}: a value is required")));
            }
            (op, _) => return Err((ResponseError::InvalidRequest, format!("unknown config operation {op}"))),
        }
    }
    Ok(configs)
}
