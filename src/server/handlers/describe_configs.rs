//! DescribeConfigs v1–4 for topic and broker resources, as Kafka reports them: a topic
//! config set on the topic has source DYNAMIC_TOPIC_CONFIG; one inherited from the broker
//! has STATIC_BROKER_CONFIG when server.properties (or `--override`) sets the broker key,
//! DEFAULT_CONFIG otherwise. Synonyms list the topic value, then the broker one. Broker
//! configs are read-only: Sluice has no dynamic broker configs.
use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use super::config_common::*;
use super::{respond, HandlerResult};
use crate::config::TopicConfig;
use crate::protocol::frame::Request;
use crate::shard::Shard;

pub const MIN_VERSION: i16 = 1;
pub const MAX_VERSION: i16 = 4;

fn s(v: impl Into<String>) -> StrBytes {
    StrBytes::from_string(v.into())
}

fn synonym(name: &str, value: &str, source: i8) -> DescribeConfigsSynonym {
    let mut syn = DescribeConfigsSynonym::default();
    syn.name = s(name);
    syn.value = Some(s(value));
    syn.source = source;
    syn
}

pub async fn handle(shard: &Rc<Shard>, req: &Request) -> HandlerResult {
    let r: DescribeConfigsRequest = req.decode()?;
    let v = req.version();
    let image = shard.image();
    let broker_source = |explicit: bool| if explicit { SOURCE_STATIC_BROKER_CONFIG } else { SOURCE_DEFAULT_CONFIG };
    let mut resp = DescribeConfigsResponse::default();
    for res in &r.resources {
        let mut out = DescribeConfigsResult::default();
        out.resource_type = res.resource_type;
        out.resource_name = res.resource_name.clone();
        let name = res.resource_name.as_str();
        let wanted = |k: &str| res.configuration_keys.as_ref().is_none_or(|keys| keys.iter().any(|w| w.as_str() == k));
        // (key, value, source, read_only, synonyms)
        let entries: Result<Vec<(String, String, i8, bool, Vec<DescribeConfigsSynonym>)>, (ResponseError, String)> =
            match res.resource_type {
                RESOURCE_TOPIC => match image.topic(name) {
                    None => Err((ResponseError::UnknownTopicOrPartition, format!("Topic {name} does not exist."))),
                    Some(meta) => Ok(TopicConfig::describe(&shard.config, &meta.configs)
                        .into_iter()
                        .filter(|(k, _, _)| wanted(k))
                        .map(|(k, value, set)| {
                            let mut synonyms = Vec::new();
                            if set {
                                synonyms.push(synonym(&k, &value, SOURCE_DYNAMIC_TOPIC_CONFIG));
                            }
                            let inherited = shard.config.topic_default(&k);
                            if let Some((bk, bv, explicit)) = &inherited {
                                synonyms.push(synonym(bk, bv, broker_source(*explicit)));
                            }
                            let source = if set {
                                SOURCE_DYNAMIC_TOPIC_CONFIG
                            } else {
                                broker_source(inherited.is_some_and(|(_, _, e)| e))
                            };
                            (k, value, source, false, synonyms)
                        })
                        .collect()),
                },
                RESOURCE_BROKER if name.is_empty() || name == shard.node.node_id.to_string() => Ok(shard
                    .config
                    .describe()
                    .into_iter()
                    .filter(|(k, _, _)| wanted(k))
                    .map(|(k, value, explicit)| {
                        let source = broker_source(explicit);
                        (k.to_string(), value.clone(), source, true, vec![synonym(k, &value, source)])
                    })
                    .collect()),
                RESOURCE_BROKER => {
                    Err((ResponseError::InvalidRequest, format!("this is broker {}", shard.node.node_id)))
                }
                other => Err((ResponseError::InvalidRequest, format!("resource type {other} is not supported"))),
            };
        match entries {
            Ok(entries) => {
                for (k, value, source, read_only, synonyms) in entries {
                    let mut c = DescribeConfigsResourceResult::default();
                    c.config_type = if v >= 3 { config_type(&k, &value) } else { 0 };
                    c.name = s(k);
                    c.value = Some(s(value));
                    c.read_only = read_only;
                    c.config_source = source;
                    if r.include_synonyms {
                        c.synonyms = synonyms;
                    }
                    out.configs.push(c);
                }
            }
            Err((code, message)) => {
                out.error_code = code.code();
                out.error_message = Some(s(message));
            }
        }
        resp.results.push(out);
    }
    respond(req, &resp)
}
