//! DescribeConfigs v1–4 for topic and broker resources, as Kafka reports them: a topic
//! config set on the topic has source DYNAMIC_TOPIC_CONFIG; one inherited from the broker
//! has STATIC_BROKER_CONFIG when server.properties (or `--override`) sets the broker key,
//! DEFAULT_CONFIG otherwise, or DYNAMIC_BROKER_CONFIG / DYNAMIC_DEFAULT_BROKER_CONFIG when a
//! dynamic broker config (AlterConfigs on this broker, or on the cluster default) sets it.
//! Synonyms list the topic value, then the broker ones. Broker configs are read-only except
//! the dynamic ones (`config::DYNAMIC_BROKER_KEYS`).
use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use super::config_common::*;
use super::{respond, HandlerResult};
use crate::config::{TopicConfig, DYNAMIC_BROKER_KEYS};
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
    let node = shard.node.node_id;
    let effective = shard.config.with_dynamic(&image.broker_config_layers(node));
    let static_source = |explicit: bool| if explicit { SOURCE_STATIC_BROKER_CONFIG } else { SOURCE_DEFAULT_CONFIG };
    let dynamic_source =
        |own: bool| if own { SOURCE_DYNAMIC_BROKER_CONFIG } else { SOURCE_DYNAMIC_DEFAULT_BROKER_CONFIG };
    // The source of a broker key's effective value, and its synonyms, strongest first.
    let broker_key = |k: &str, explicit: bool| -> (i8, Vec<DescribeConfigsSynonym>) {
        let mut synonyms = Vec::new();
        for (entity, own) in [(node.to_string(), true), (String::new(), false)] {
            if let Some(v) = image.broker_configs.get(&entity).and_then(|m| m.get(k)) {
                synonyms.push(synonym(k, v, dynamic_source(own)));
            }
        }
        if let Some((_, v, _)) = shard.config.describe().into_iter().find(|(key, _, _)| *key == k) {
            synonyms.push(synonym(k, &v, static_source(explicit)));
        }
        let source =
            image.dynamic_broker_config(node, k).map_or(static_source(explicit), |(_, own)| dynamic_source(own));
        (source, synonyms)
    };
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
                    Some(meta) => Ok(TopicConfig::describe(&effective, &meta.configs)
                        .into_iter()
                        .filter(|(k, _, _)| wanted(k))
                        .map(|(k, value, set)| {
                            let mut synonyms = Vec::new();
                            if set {
                                synonyms.push(synonym(&k, &value, SOURCE_DYNAMIC_TOPIC_CONFIG));
                            }
                            let mut source = SOURCE_DYNAMIC_TOPIC_CONFIG;
                            if let Some((bk, _, explicit)) = effective.topic_default(&k) {
                                let (broker_source, broker_synonyms) = broker_key(bk, explicit);
                                if !set {
                                    source = broker_source;
                                }
                                synonyms.extend(broker_synonyms);
                            } else if !set {
                                source = SOURCE_DEFAULT_CONFIG;
                            }
                            (k, value, source, false, synonyms)
                        })
                        .collect()),
                },
                RESOURCE_BROKER if name.is_empty() || name == node.to_string() => {
                    let mut entries: Vec<_> = effective
                        .describe()
                        .into_iter()
                        .map(|(k, value, explicit)| {
                            let (source, synonyms) = broker_key(k, explicit);
                            let read_only = !DYNAMIC_BROKER_KEYS.contains(&k);
                            (k.to_string(), value, source, read_only, synonyms)
                        })
                        .collect();
                    // Dynamic keys with no entry of their own above (Kafka's keys for parts
                    // Sluice lacks, or another unit of a time setting).
                    for (entity, own) in [(node.to_string(), true), (String::new(), false)] {
                        for (k, v) in image.broker_configs.get(&entity).into_iter().flatten() {
                            if !entries.iter().any(|e| &e.0 == k) {
                                let source = dynamic_source(own);
                                entries.push((k.clone(), v.clone(), source, false, vec![synonym(k, v, source)]));
                            }
                        }
                    }
                    Ok(entries.into_iter().filter(|e| wanted(&e.0)).collect())
                }
                RESOURCE_BROKER => Err((ResponseError::InvalidRequest, format!("this is broker {node}"))),
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
