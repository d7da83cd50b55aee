//! IncrementalAlterConfigs v0–1: SET, DELETE, APPEND and SUBTRACT (the last two on list
//! configs: `cleanup.policy`) applied to the topic's current configs, then validated and
//! stored as a whole. Broker configs are static and refused.
use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use super::config_common::*;
use super::{respond, HandlerResult};
use crate::protocol::frame::Request;
use crate::shard::Shard;

pub const MIN_VERSION: i16 = 0;
pub const MAX_VERSION: i16 = 1;

const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;
const LIST_KEYS: &[&str] = &["cleanup.policy"];

pub async fn handle(shard: &Rc<Shard>, req: &Request) -> HandlerResult {
    let r: IncrementalAlterConfigsRequest = req.decode()?;
    let image = shard.image();
    let mut plans = Vec::with_capacity(r.resources.len());
    for res in &r.resources {
        let name = res.resource_name.to_string();
        match res.resource_type {
            RESOURCE_TOPIC => {
                let mut configs = image.topic(&name).map(|t| t.configs.clone()).unwrap_or_default();
                let mut seen = std::collections::HashSet::new();
                let mut error = None;
                for c in &res.configs {
                    let key = c.name.to_string();
                    if !seen.insert(key.clone()) {
                        error = Some((ResponseError::InvalidRequest, format!("duplicate config key {key}")));
                        break;
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
                            let current = configs.get(&key).cloned().unwrap_or_else(|| "delete".into());
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
                            error = Some((ResponseError::InvalidConfig, format!("{key} is not a list config")));
                            break;
                        }
                        (SET | APPEND | SUBTRACT, None) => {
                            error = Some((ResponseError::InvalidConfig, format!("{key}: a value is required")));
                            break;
                        }
                        (op, _) => {
                            error = Some((ResponseError::InvalidRequest, format!("unknown config operation {op}")));
                            break;
                        }
                    }
                }
                plans.push(Planned::Topic(name, error.map_or(Ok(configs), Err)));
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
