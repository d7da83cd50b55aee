//! DescribeConfigs v1–4 for topic and broker resources, as Kafka reports them: a topic
//! config set on the topic has source DYNAMIC_TOPIC_CONFIG; one inherited from the broker
//! has STATIC_BROKER_CONFIG when server.properties (or `--override`) sets the broker key,
//! DEFAULT_CONFIG otherwise, or DYNAMIC_BROKER_CONFIG / DYNAMIC_DEFAULT_BROKER_CONFIG when a
//! dynamic broker config (AlterConfigs on this broker, or on the cluster default) sets it.
//! Synonyms list the topic value, then the broker ones, as Kafka's `configSynonyms` does.
//! Broker configs are read-only except the dynamic ones (`config::DYNAMIC_BROKER_KEYS`).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use super::config_common::*;
use super::{respond, HandlerResult};
use crate::config::{topic_broker_key, BrokerConfig, TopicConfig, DYNAMIC_BROKER_KEYS};
use crate::protocol::frame::Request;
use crate::security::operations::AclOperation;
use crate::server::context::RequestContext;

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

/// Kafka's synonyms of a broker key (`DynamicBrokerConfig.brokerConfigSynonyms`): the
/// units of one time setting, finest first.
fn broker_synonym_names(name: &str) -> Vec<&str> {
    match name {
        "log.roll.ms" | "log.roll.hours" => vec!["log.roll.ms", "log.roll.hours"],
        "log.retention.ms" | "log.retention.minutes" | "log.retention.hours" => {
            vec!["log.retention.ms", "log.retention.minutes", "log.retention.hours"]
        }
        other => vec![other],
    }
}

/// A broker key's default as Kafka has it: the finer units of the time settings (and
/// `log.flush.interval.ms`) have none, their defaults living in the hours keys.
fn kafka_default(defaults: &[(&'static str, String, bool)], name: &str) -> Option<String> {
    match name {
        "log.retention.ms" | "log.retention.minutes" | "log.roll.ms" | "log.flush.interval.ms" => None,
        "log.retention.hours" | "log.roll.hours" => Some("168".to_string()),
        _ => defaults.iter().find(|(k, _, _)| *k == name).map(|(_, v, _)| v.clone()),
    }
}

pub async fn handle(ctx: &RequestContext, req: &Request) -> HandlerResult {
    let shard = &ctx.shard;
    let r: DescribeConfigsRequest = req.decode()?;
    let v = req.version();
    let image = shard.image();
    let node = shard.node.node_id;
    let effective = shard.config.with_dynamic(&image.broker_config_layers(node));
    let defaults = BrokerConfig::default().describe();
    let static_value = |k: &str| {
        let alias = match k {
            "node.id" => "broker.id",
            "log.dirs" => "log.dir",
            other => other,
        };
        shard.config.explicit_keys.get(k).or_else(|| shard.config.explicit_keys.get(alias)).cloned()
    };
    // A broker key's synonyms as Kafka's `configSynonyms` lists them: per source, strongest
    // first (this broker's dynamic value, the cluster default, server.properties, the
    // default), each over the key's synonym names; then those before the first entry for
    // the key itself are dropped (so a key set nowhere has none, even if a coarser unit
    // of it has a default). `per_broker` false (the cluster default resource) leaves out
    // this broker's own dynamic values.
    let broker_synonyms = |k: &str, per_broker: bool| -> Vec<DescribeConfigsSynonym> {
        let names = broker_synonym_names(k);
        let mut out = Vec::new();
        for (entity, source) in
            [(node.to_string(), SOURCE_DYNAMIC_BROKER_CONFIG), (String::new(), SOURCE_DYNAMIC_DEFAULT_BROKER_CONFIG)]
        {
            if source == SOURCE_DYNAMIC_BROKER_CONFIG && !per_broker {
                continue;
            }
            for n in &names {
                if let Some(v) = image.broker_configs.get(&entity).and_then(|m| m.get(*n)) {
                    out.push(synonym(n, v, source));
                }
            }
        }
        for n in &names {
            if let Some(v) = static_value(n) {
                out.push(synonym(n, &v, SOURCE_STATIC_BROKER_CONFIG));
            }
        }
        for n in &names {
            if let Some(v) = kafka_default(&defaults, n) {
                out.push(synonym(n, &v, SOURCE_DEFAULT_CONFIG));
            }
        }
        let first = out.iter().position(|syn| syn.name.as_str() == k).unwrap_or(out.len());
        out.split_off(first)
    };
    // An entry's source is its first synonym's; with none, the built-in default.
    let source_of =
        |synonyms: &[DescribeConfigsSynonym]| synonyms.first().map_or(SOURCE_DEFAULT_CONFIG, |syn| syn.source);
    let mut resp = DescribeConfigsResponse::default();
    for res in &r.resources {
        let mut out = DescribeConfigsResult::default();
        out.resource_type = res.resource_type;
        out.resource_name = res.resource_name.clone();
        let name = res.resource_name.as_str();
        let wanted = |k: &str| res.configuration_keys.as_ref().is_none_or(|keys| keys.iter().any(|w| w.as_str() == k));
        // (key, value, source, read_only, synonyms)
        let refusal = config_refusal(ctx, res.resource_type, name, AclOperation::DescribeConfigs);
        let entries: Result<Vec<(String, String, i8, bool, Vec<DescribeConfigsSynonym>)>, (ResponseError, String)> =
            match res.resource_type {
                _ if refusal.is_some() => Err(refusal.expect("checked")),
                RESOURCE_TOPIC => match image.topic(name) {
                    None => Err((ResponseError::UnknownTopicOrPartition, format!("Topic {name} does not exist."))),
                    Some(meta) => Ok(TopicConfig::describe(&effective, &meta.configs)
                        .into_iter()
                        .filter(|(k, _, _)| wanted(k))
                        .map(|(k, value, set)| {
                            // The topic's own value, then its broker key's synonyms.
                            let mut synonyms = Vec::new();
                            if set {
                                synonyms.push(synonym(&k, &value, SOURCE_DYNAMIC_TOPIC_CONFIG));
                            }
                            if let Some(bk) = topic_broker_key(&k) {
                                synonyms.extend(broker_synonyms(bk, true));
                            }
                            let source = source_of(&synonyms);
                            (k, value, source, false, synonyms)
                        })
                        .collect()),
                },
                RESOURCE_BROKER if name.is_empty() || name == node.to_string() => {
                    let mut entries: Vec<_> = effective
                        .describe()
                        .into_iter()
                        .map(|(k, value, _)| {
                            let synonyms = broker_synonyms(k, !name.is_empty());
                            let source = source_of(&synonyms);
                            let read_only = !DYNAMIC_BROKER_KEYS.contains(&k);
                            (k.to_string(), value, source, read_only, synonyms)
                        })
                        .collect();
                    // Dynamic keys with no entry of their own above (Kafka's keys for parts
                    // Sluice lacks, or another unit of a time setting).
                    for (entity, own) in [(node.to_string(), true), (String::new(), false)] {
                        for (k, v) in image.broker_configs.get(&entity).into_iter().flatten() {
                            if !entries.iter().any(|e| &e.0 == k) {
                                let source = if own {
                                    SOURCE_DYNAMIC_BROKER_CONFIG
                                } else {
                                    SOURCE_DYNAMIC_DEFAULT_BROKER_CONFIG
                                };
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
