//! The thin driver around the transaction coordinator state machine (`txn::coordinator`)
//! on one shard: it gives the machine request ids and the wall clock, writes its records to
//! this shard's `__transaction_state` partitions (acks=all, and only then feeds back
//! `persisted`), writes transaction markers to the partitions of a transaction (directly
//! on this broker's shards, with WriteTxnMarkers to other brokers, retried until done),
//! loads the state when a partition comes to lead, and ticks the machine for timeouts.
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::Duration;

use futures::channel::oneshot;
use kafka_protocol::error::ResponseError;

use super::txn_markers::Marker;
use super::{Shard, ShardMsg};
use crate::model::{NodeId, ProducerId, TopicPartition};
use crate::protocol::batch;
use crate::storage::{now_ms, PartitionLog};
use crate::txn::coordinator::{Answer, Output, ReqId, TxnConfig, TxnView};
use crate::txn::{transaction_partition, TxnCoordinator, TxnError, TxnState, TRANSACTION_STATE_TOPIC};

#[derive(Debug)]
pub enum TxnOp {
    Init {
        transactional_id: String,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
        fresh_id: i64,
    },
    AddPartitions {
        transactional_id: String,
        producer_id: i64,
        epoch: i16,
        partitions: Vec<(String, i32)>,
    },
    End {
        transactional_id: String,
        producer_id: i64,
        epoch: i16,
        commit: bool,
    },
    /// KIP-890: a partition leader asks whether partitions are in the transaction.
    Verify {
        transactional_id: String,
        producer_id: i64,
        epoch: i16,
        partitions: Vec<(String, i32)>,
    },
    Describe {
        transactional_ids: Vec<String>,
    },
    List {
        states: Vec<String>,
        producer_ids: Vec<i64>,
    },
}

impl TxnOp {
    fn transactional_id(&self) -> Option<&str> {
        match self {
            TxnOp::Init { transactional_id, .. }
            | TxnOp::AddPartitions { transactional_id, .. }
            | TxnOp::End { transactional_id, .. }
            | TxnOp::Verify { transactional_id, .. } => Some(transactional_id),
            TxnOp::Describe { .. } | TxnOp::List { .. } => None,
        }
    }
}

#[derive(Debug)]
pub enum TxnReply {
    Answer(Result<Answer, TxnError>),
    Describe(Vec<(String, Option<TxnView>)>),
    List(Vec<(String, i64, TxnState)>),
    Verify(Result<Vec<bool>, TxnError>),
}

pub struct TxnDriver {
    coordinator: RefCell<TxnCoordinator>,
    next_req: Cell<ReqId>,
    waiting: RefCell<HashMap<ReqId, oneshot::Sender<Result<Answer, TxnError>>>>,
    /// `__transaction_state` partitions being read back: their ids are not known yet, so
    /// their requests are refused (retriably) rather than answered from nothing.
    loading: RefCell<Vec<i32>>,
}

impl TxnDriver {
    pub fn new(config: &crate::config::BrokerConfig) -> TxnDriver {
        let c = TxnConfig {
            max_timeout_ms: config.transaction_max_timeout_ms,
            id_expiration_ms: config.transactional_id_expiration_ms,
        };
        TxnDriver {
            coordinator: RefCell::new(TxnCoordinator::new(c)),
            next_req: Cell::new(1),
            waiting: RefCell::new(HashMap::new()),
            loading: RefCell::new(Vec::new()),
        }
    }

    fn req_id(&self) -> ReqId {
        let id = self.next_req.get();
        self.next_req.set(id + 1);
        id
    }

    pub async fn execute(&self, shard: &Rc<Shard>, op: TxnOp) -> TxnReply {
        if let Some(id) = op.transactional_id() {
            if !self.serves(shard, id) {
                return match op {
                    TxnOp::Verify { .. } => TxnReply::Verify(Err(TxnError::NotCoordinator)),
                    _ => TxnReply::Answer(Err(TxnError::NotCoordinator)),
                };
            }
        }
        let now = now_ms();
        let req = self.req_id();
        let out = match op {
            TxnOp::Init { transactional_id, timeout_ms, expected, fresh_id } => {
                let mut fresh = Some(fresh_id);
                self.coordinator.borrow_mut().init_producer_id(
                    req,
                    &transactional_id,
                    timeout_ms,
                    expected,
                    now,
                    &mut || fresh.take().expect("one fresh producer id per InitProducerId"),
                )
            }
            TxnOp::AddPartitions { transactional_id, producer_id, epoch, partitions } => self
                .coordinator
                .borrow_mut()
                .add_partitions(req, &transactional_id, producer_id, epoch, &partitions, now),
            TxnOp::End { transactional_id, producer_id, epoch, commit } => {
                self.coordinator.borrow_mut().end_txn(req, &transactional_id, producer_id, epoch, commit, now)
            }
            TxnOp::Describe { transactional_ids } => {
                let c = self.coordinator.borrow();
                return TxnReply::Describe(
                    transactional_ids.into_iter().map(|id| (id.clone(), c.describe(&id))).collect(),
                );
            }
            TxnOp::Verify { transactional_id, producer_id, epoch, partitions } => {
                return TxnReply::Verify(self.coordinator.borrow().verify(
                    &transactional_id,
                    producer_id,
                    epoch,
                    &partitions,
                ));
            }
            TxnOp::List { states, producer_ids } => {
                return TxnReply::List(self.coordinator.borrow().list(&states, &producer_ids));
            }
        };
        let (tx, rx) = oneshot::channel();
        self.waiting.borrow_mut().insert(req, tx);
        self.process(shard, out);
        TxnReply::Answer(rx.await.unwrap_or(Err(TxnError::NotCoordinator)))
    }

    /// Delivers answers and starts the writes the machine asked for.
    fn process(&self, shard: &Rc<Shard>, outputs: Vec<Output>) {
        for o in outputs {
            match o {
                Output::Respond { req, result } => {
                    if let Some(tx) = self.waiting.borrow_mut().remove(&req) {
                        let _ = tx.send(result);
                    }
                }
                Output::Persist { transactional_id, key, value } => {
                    let shard2 = shard.clone();
                    spawn(shard, async move {
                        let ok = persist(&shard2, &transactional_id, key, value).await;
                        let driver = shard2.txns.clone();
                        let out = driver.coordinator.borrow_mut().persisted(&transactional_id, ok);
                        driver.process(&shard2, out);
                    });
                }
                Output::WriteMarkers { transactional_id, producer_id, producer_epoch, commit, partitions } => {
                    if commit && test_exit_before_markers() {
                        tracing::error!(transactional_id, "test hook: exiting before transaction markers");
                        std::process::exit(86);
                    }
                    let shard2 = shard.clone();
                    spawn(shard, async move {
                        let written =
                            write_markers(&shard2, &transactional_id, producer_id, producer_epoch, commit, partitions)
                                .await;
                        if written {
                            let driver = shard2.txns.clone();
                            let out = driver.coordinator.borrow_mut().markers_written(&transactional_id, now_ms());
                            driver.process(&shard2, out);
                        }
                    });
                }
            }
        }
    }

    /// Whether this shard leads `id`'s partition and has read it back.
    fn serves(&self, shard: &Rc<Shard>, id: &str) -> bool {
        let Some(p) = state_partition(shard, id) else { return false };
        !self.loading.borrow().contains(&p.log.topic_partition().partition)
    }

    /// Takes over one `__transaction_state` partition this shard now leads: its ids are
    /// read back from the log, and transactions caught between Prepare and Complete are
    /// finished.
    pub async fn load(&self, shard: &Rc<Shard>, log: &PartitionLog) {
        let partition = log.topic_partition().partition;
        let partitions = shard
            .image()
            .topic(TRANSACTION_STATE_TOPIC)
            .map_or(shard.config.transaction_state_log_num_partitions, |t| t.partitions);
        self.coordinator.borrow_mut().unload(|id| transaction_partition(id, partitions) == partition);
        self.loading.borrow_mut().push(partition);
        let mut loaded = 0usize;
        super::replay::each_batch(log, "transaction state", |_, _, records| {
            for r in records.iter().filter(|r| !r.control) {
                let Some(key) = r.key.as_deref() else { continue };
                self.coordinator.borrow_mut().replay(key, r.value.as_deref());
                loaded += 1;
            }
        })
        .await;
        self.loading.borrow_mut().retain(|p| *p != partition);
        if loaded > 0 {
            tracing::info!(partition = %log.topic_partition(), records = loaded, "loaded transaction state");
        }
        let out = self.coordinator.borrow_mut().loaded();
        self.process(shard, out);
    }

    /// Transaction timeouts and id expiration, on `transaction.abort.timed.out.transaction.
    /// cleanup.interval.ms`.
    pub async fn run_timers(self: Rc<Self>, shard: Rc<Shard>) {
        let every = Duration::from_millis(shard.config.transaction_abort_timed_out_transaction_cleanup_interval_ms);
        while !shard.shutting_down() {
            glommio::timer::sleep(every.min(Duration::from_secs(1))).await;
            let out = self.coordinator.borrow_mut().tick(now_ms());
            // Only for ids this shard still leads: a former leader's state must not act.
            let out = out.into_iter().filter(|o| leads_id(&shard, output_id(o))).collect();
            self.process(&shard, out);
        }
    }
}

fn output_id(o: &Output) -> &str {
    match o {
        Output::Respond { .. } => "",
        Output::Persist { transactional_id, .. } | Output::WriteMarkers { transactional_id, .. } => transactional_id,
    }
}

fn spawn(shard: &Rc<Shard>, f: impl std::future::Future<Output = ()> + 'static) {
    glommio::spawn_local_into(f, shard.data_tq).expect("data queue exists").detach();
}

/// The `__transaction_state` partition of `id` on this shard, if this shard leads it.
fn state_partition(shard: &Rc<Shard>, id: &str) -> Option<Rc<super::partition::Partition>> {
    let partitions = shard.image().topic(TRANSACTION_STATE_TOPIC)?.partitions;
    let p = shard.partition(&TopicPartition::new(TRANSACTION_STATE_TOPIC, transaction_partition(id, partitions)))?;
    p.is_leader().then_some(p)
}

fn leads_id(shard: &Rc<Shard>, id: &str) -> bool {
    id.is_empty() || state_partition(shard, id).is_some()
}

/// Appends one record to the id's partition and waits for every in-sync replica.
async fn persist(shard: &Rc<Shard>, id: &str, key: Vec<u8>, value: Option<Vec<u8>>) -> bool {
    let Some(p) = state_partition(shard, id) else {
        tracing::warn!(transactional_id = id, "not the leader of the id's __transaction_state partition; not written");
        return false;
    };
    let batch = batch::encode_batch(0, &[(Some(key.as_slice()), value.as_deref())], now_ms());
    match p.log.append(batch.into()) {
        Ok(outcome) => {
            let acked = p.wait_acknowledged(outcome.end_offset, -1, outcome.needs_sync);
            let timer = async {
                glommio::timer::sleep(STATE_WRITE_TIMEOUT).await;
                None
            };
            use futures_lite::FutureExt;
            match async { Some(acked.await) }.or(timer).await {
                Some(Ok(())) => true,
                Some(Err(e)) => {
                    tracing::warn!(transactional_id = id, error = ?e, "writing transaction state failed");
                    false
                }
                None => {
                    tracing::warn!(
                        transactional_id = id,
                        "the in-sync replicas did not confirm the transaction state in time"
                    );
                    false
                }
            }
        }
        Err(e) => {
            tracing::warn!(transactional_id = id, error = %e, "writing transaction state failed");
            false
        }
    }
}

/// Tests only (`SLUICE_TEST_EXIT_BEFORE_TXN_MARKERS=1`): the process exits when a commit's
/// markers are due, its PrepareCommit durable and no marker written (tests/transactions.rs).
fn test_exit_before_markers() -> bool {
    static EXIT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *EXIT.get_or_init(|| std::env::var("SLUICE_TEST_EXIT_BEFORE_TXN_MARKERS").is_ok_and(|v| v == "1"))
}

/// Kafka's `transaction.state.log` writes time out with the request timeout.
const STATE_WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Writes the markers to every partition, each to its leader, retrying those that fail
/// until all are written, the partition is gone, or this shard stops leading the id.
async fn write_markers(
    shard: &Rc<Shard>,
    id: &str,
    producer_id: i64,
    epoch: i16,
    commit: bool,
    partitions: Vec<(String, i32)>,
) -> bool {
    let mut left = partitions;
    let mut backoff = Duration::from_millis(50);
    loop {
        let Some(state) = state_partition(shard, id) else { return false };
        let m =
            Marker { producer_id: ProducerId(producer_id), epoch, coordinator_epoch: state.leader_epoch().0, commit };
        let image = shard.image();
        let mut by_leader: BTreeMap<i32, Vec<(String, i32)>> = BTreeMap::new();
        let mut retry = Vec::new();
        for (topic, p) in left {
            match image.topic(&topic) {
                // Deleted since: nothing to mark.
                None => {}
                Some(t) if p >= t.partitions => {}
                Some(t) => match t.placement(p).and_then(|pl| pl.leader()) {
                    Some(leader) => by_leader.entry(leader.0).or_default().push((topic, p)),
                    None => retry.push((topic, p)),
                },
            }
        }
        for (leader, tps) in by_leader {
            let failed = if leader == shard.node.node_id {
                write_local(shard, &tps, m).await
            } else {
                super::txn_markers::send(shard, NodeId(leader), &tps, m).await
            };
            retry.extend(failed);
        }
        if retry.is_empty() {
            return true;
        }
        if shard.shutting_down() {
            return false;
        }
        tracing::debug!(transactional_id = id, left = retry.len(), "transaction markers not all written yet; retrying");
        glommio::timer::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(1));
        left = retry;
    }
}

/// Writes markers to partitions this broker leads; gives back those that failed.
pub async fn write_local(shard: &Rc<Shard>, tps: &[(String, i32)], m: Marker) -> Vec<(String, i32)> {
    let image = shard.image();
    let mut calls = Vec::new();
    for (topic, p) in tps {
        let Some(t) = image.topic(topic) else { continue };
        let owner = shard.owner_in(t, *p);
        let tp = TopicPartition::new(topic.clone(), *p);
        let shard = shard.clone();
        calls.push(async move {
            shard
                .call(owner, |reply| ShardMsg::WriteMarker { tp, marker: m, reply })
                .await
                .unwrap_or(ResponseError::NotLeaderOrFollower.code())
        });
    }
    let codes = futures::future::join_all(calls).await;
    tps.iter().zip(codes).filter(|(_, c)| *c != 0).map(|(tp, _)| tp.clone()).collect()
}
