//! What clients are told about the cluster's brokers, from the metadata image: the live
//! (registered, unfenced) brokers with their advertised endpoints and racks, and which of
//! them to name as the controller (KRaft brokers name a live broker: clients cannot reach
//! the controllers themselves).
use crate::metadata::MetadataImage;
use crate::shard::Shard;

pub struct BrokerView {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

/// The live brokers, by node id, with their endpoints on `listener` (the one the client
/// connected on: Kafka tells each listener's clients that listener's addresses; a broker
/// without it is left out). This node is always among them while it serves (an image from
/// before its own registration lists it from its configuration).
pub fn live_brokers(shard: &Shard, image: &MetadataImage, listener: &str) -> Vec<BrokerView> {
    let me = &shard.node;
    let mut out: Vec<BrokerView> = image
        .live_brokers()
        .filter_map(|(id, b)| {
            if id == me.node_id || b.host.is_empty() {
                return Some(self_view(shard, listener));
            }
            let (host, port) = b.endpoint(listener)?;
            Some(BrokerView { node_id: id, host: host.to_string(), port: port as i32, rack: b.rack.clone() })
        })
        .collect();
    if !out.iter().any(|b| b.node_id == me.node_id) {
        out.push(self_view(shard, listener));
        out.sort_by_key(|b| b.node_id);
    }
    out
}

fn self_view(shard: &Shard, listener: &str) -> BrokerView {
    let me = &shard.node;
    let config = &shard.config;
    let (host, port) = match config.client_listeners().find(|l| l.name == listener) {
        Some(l) => {
            let a = config.advertised(l);
            (a.host, a.port)
        }
        None => (me.advertised_host.clone(), me.advertised_port),
    };
    BrokerView { node_id: me.node_id, host, port: port as i32, rack: config.broker_rack.clone() }
}

/// The broker `node_id` if it is live (and has `listener`).
pub fn live_broker(shard: &Shard, image: &MetadataImage, node_id: i32, listener: &str) -> Option<BrokerView> {
    live_brokers(shard, image, listener).into_iter().find(|b| b.node_id == node_id)
}

/// The `controller_id` to report: the lowest live broker.
pub fn controller_id(shard: &Shard, image: &MetadataImage, listener: &str) -> i32 {
    live_brokers(shard, image, listener).first().map_or(shard.node.node_id, |b| b.node_id)
}

/// Replicas on brokers that are not live (fenced or never registered).
pub fn offline_replicas(image: &MetadataImage, replicas: &[i32]) -> Vec<i32> {
    replicas.iter().copied().filter(|r| image.brokers.get(r).is_none_or(|b| b.fenced)).collect()
}
