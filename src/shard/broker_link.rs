//! Requests a shard sends to other brokers on the inter-broker listener for transactions
//! (WriteTxnMarkers from a coordinator, AddPartitionsToTxn verification from a partition
//! leader), over connections kept open per broker: a connection costs a TCP handshake,
//! and TLS and SASL on a secured listener, which a transaction's markers or a producer's
//! first write to a partition should not pay each time. (Replica fetchers keep their own
//! connection each.)
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::FutureExt;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::{Decodable, Encodable};

use super::Shard;
use crate::model::NodeId;
use crate::server::stream::ConnStream;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A broker that takes longer than this to answer is treated as gone (the connection is
/// dropped; callers retry).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// Idle connections kept per broker: more only when calls overlap.
const IDLE_PER_BROKER: usize = 4;
const CLIENT_ID: &str = "sluice-broker";

#[derive(Default)]
pub struct BrokerLinks {
    idle: RefCell<HashMap<i32, Vec<ConnStream>>>,
    correlation: Cell<i32>,
}

impl BrokerLinks {
    /// Sends `req` to broker `node` and reads its answer (at most `answer_max` bytes). A
    /// kept connection that turns out dead (the broker restarted, or closed it idle) is
    /// replaced by a fresh one once.
    pub async fn call<Req: Encodable, Resp: Decodable>(
        &self,
        shard: &Rc<Shard>,
        node: NodeId,
        api: ApiKey,
        version: i16,
        req: &Req,
        answer_max: usize,
    ) -> Result<Resp, String> {
        let kept = self.idle.borrow_mut().get_mut(&node.0).and_then(|v| v.pop());
        if let Some(conn) = kept {
            match self.exchange(conn, node, api, version, req, answer_max).await {
                Ok(r) => return Ok(r),
                Err(e) => tracing::debug!(node = node.0, error = %e, "kept broker connection failed; reconnecting"),
            }
        }
        let conn = connect(shard, node).await?;
        self.exchange(conn, node, api, version, req, answer_max).await
    }

    async fn exchange<Req: Encodable, Resp: Decodable>(
        &self,
        mut conn: ConnStream,
        node: NodeId,
        api: ApiKey,
        version: i16,
        req: &Req,
        answer_max: usize,
    ) -> Result<Resp, String> {
        let correlation = self.correlation.get().wrapping_add(1);
        self.correlation.set(correlation);
        let answered =
            crate::security::outbound::call(&mut conn, api, version, correlation, CLIENT_ID, req, answer_max)
                .or(async {
                    glommio::timer::sleep(ANSWER_TIMEOUT).await;
                    Err(format!("no answer to {api:?} within {ANSWER_TIMEOUT:?}"))
                })
                .await;
        if answered.is_ok() {
            let mut idle = self.idle.borrow_mut();
            let kept = idle.entry(node.0).or_default();
            if kept.len() < IDLE_PER_BROKER {
                kept.push(conn);
            }
        }
        answered
    }
}

/// A new connection to `node`'s inter-broker listener, as the metadata image advertises it.
async fn connect(shard: &Rc<Shard>, node: NodeId) -> Result<ConnStream, String> {
    let image = shard.image();
    let b = image.brokers.get(&node.0).ok_or_else(|| format!("broker {} is not registered", node.0))?;
    let listener = &shard.config.inter_broker_listener().name;
    let (host, port) = b.endpoint(listener).ok_or_else(|| format!("broker {} has no listener {listener}", node.0))?;
    crate::security::outbound::connect(&shard.config, listener, host, port, CONNECT_TIMEOUT).await
}
