//! The transaction coordinator as a state machine: no I/O, no clock of its own. Callers
//! pass `now` (wall-clock milliseconds: they are persisted, and a transaction's timeout
//! runs on across a change of coordinator) and get back outputs: responses to deliver,
//! records to write to `__transaction_state`, and transaction markers to write to the
//! partitions of a transaction. The driver reports back when a record is durable
//! (`persisted`) and when every marker is written (`markers_written`).
//!
//! States and transitions follow Kafka's TransactionCoordinator for transaction version 1
//! (the clients' default against a broker without the `transaction.version` feature):
//!
//! ```text
//! Empty ──AddPartitions──▶ Ongoing ──EndTxn──▶ PrepareCommit ──markers──▶ CompleteCommit
//!   ▲                        │  │                                             │
//!   │                        │  └─EndTxn(abort), timeout, InitProducerId─▶ PrepareAbort ──markers──▶ CompleteAbort
//!   └──────────InitProducerId (epoch + 1) ◀───────────────────────────────────┘
//! ```
//!
//! Every change is persisted before it takes effect; while one is in flight, or while
//! markers are being written, other requests for that id get CONCURRENT_TRANSACTIONS and
//! retry, as Kafka's clients do.
use std::collections::{BTreeSet, HashMap};

pub type ReqId = u64;
pub type Now = i64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnState {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
    /// Expired: its tombstone is being written.
    Dead,
    PrepareEpochFence,
}

impl TxnState {
    /// The TransactionStatus code in `__transaction_state`.
    pub fn code(self) -> i8 {
        match self {
            TxnState::Empty => 0,
            TxnState::Ongoing => 1,
            TxnState::PrepareCommit => 2,
            TxnState::PrepareAbort => 3,
            TxnState::CompleteCommit => 4,
            TxnState::CompleteAbort => 5,
            TxnState::Dead => 6,
            TxnState::PrepareEpochFence => 7,
        }
    }

    pub fn from_code(code: i8) -> Option<TxnState> {
        Some(match code {
            0 => TxnState::Empty,
            1 => TxnState::Ongoing,
            2 => TxnState::PrepareCommit,
            3 => TxnState::PrepareAbort,
            4 => TxnState::CompleteCommit,
            5 => TxnState::CompleteAbort,
            6 => TxnState::Dead,
            7 => TxnState::PrepareEpochFence,
            _ => return None,
        })
    }

    /// The name DescribeTransactions and ListTransactions use.
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    fn preparing(self) -> bool {
        matches!(self, TxnState::PrepareCommit | TxnState::PrepareAbort)
    }
}

/// Why a request was refused (the handlers map these to Kafka error codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TxnError {
    #[error("the producer id does not match the transactional id")]
    InvalidProducerIdMapping,
    #[error("the producer was fenced by a newer instance")]
    ProducerFenced,
    #[error("another change to the transaction is in progress")]
    ConcurrentTransactions,
    #[error("the request is not valid in the transaction's state")]
    InvalidTxnState,
    #[error("the transaction timeout is larger than transaction.max.timeout.ms")]
    InvalidTransactionTimeout,
    /// The change could not be made durable (this broker lost the partition, or too few
    /// replicas): the client looks the coordinator up again.
    #[error("not the coordinator")]
    NotCoordinator,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    ProducerId { producer_id: i64, producer_epoch: i16 },
    Done,
}

/// A transactional id's persisted state (one `__transaction_state` record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMeta {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    pub partitions: BTreeSet<(String, i32)>,
    /// When the ongoing transaction started (-1 without one).
    pub start_ms: i64,
    pub last_update_ms: i64,
}

impl TxnMeta {
    pub fn new(transactional_id: &str, producer_id: i64, producer_epoch: i16, timeout_ms: i32, now: Now) -> TxnMeta {
        TxnMeta {
            transactional_id: transactional_id.to_string(),
            producer_id,
            producer_epoch,
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            start_ms: -1,
            last_update_ms: now,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Respond {
        req: ReqId,
        result: Result<Answer, TxnError>,
    },
    /// Write this record to the id's `__transaction_state` partition (acks=all), then call
    /// `persisted`. `value` None is a tombstone.
    Persist {
        transactional_id: String,
        key: Vec<u8>,
        value: Option<Vec<u8>>,
    },
    /// Write a COMMIT or ABORT marker for `producer_id`/`producer_epoch` to each partition
    /// (WriteTxnMarkers to their leaders, retried until done), then call `markers_written`.
    WriteMarkers {
        transactional_id: String,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        partitions: Vec<(String, i32)>,
    },
}

/// What is in flight for an id.
#[derive(Debug, Clone)]
enum Pending {
    /// A record is being written; `target` takes effect once it is durable, then `reply`
    /// is sent.
    Write { target: TxnMeta, reply: Option<(ReqId, Answer)> },
    /// The markers of a Prepare* state are being written.
    Markers,
}

#[derive(Debug)]
struct Txn {
    meta: TxnMeta,
    pending: Option<Pending>,
    /// The producer id and epoch the last InitProducerId bump replaced (KIP-360 retries).
    replaced: Option<(i64, i16)>,
}

/// Kafka's limits, from the broker config.
#[derive(Debug, Clone, Copy)]
pub struct TxnConfig {
    /// `transaction.max.timeout.ms`.
    pub max_timeout_ms: i32,
    /// `transactional.id.expiration.ms`.
    pub id_expiration_ms: i64,
}

impl Default for TxnConfig {
    fn default() -> Self {
        TxnConfig { max_timeout_ms: 900_000, id_expiration_ms: 7 * 24 * 3_600_000 }
    }
}

/// What DescribeTransactions shows of one id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnView {
    pub state: TxnState,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    pub start_ms: i64,
    pub partitions: Vec<(String, i32)>,
}

/// The last epoch a producer id may use: past it, InitProducerId hands out a new id.
const MAX_EPOCH: i16 = i16::MAX - 1;

#[derive(Default)]
pub struct TxnCoordinator {
    config: TxnConfig,
    txns: HashMap<String, Txn>,
}

impl TxnCoordinator {
    pub fn new(config: TxnConfig) -> TxnCoordinator {
        TxnCoordinator { config, txns: HashMap::new() }
    }

    /// InitProducerId with a transactional id: a new producer id, or the id's with its
    /// epoch bumped (fencing the previous instance). An ongoing transaction is aborted
    /// first (under a bumped epoch), and the client retries on CONCURRENT_TRANSACTIONS.
    /// `expected` is the producer id and epoch a client recovering from an abortable error
    /// sends (KIP-360, InitProducerId v3+): they must be the id's current ones (or, for a
    /// retry, the ones the last bump replaced). `fresh_id` hands out a producer id when
    /// one is needed.
    pub fn init_producer_id(
        &mut self,
        req: ReqId,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
        now: Now,
        fresh_id: &mut dyn FnMut() -> i64,
    ) -> Vec<Output> {
        if timeout_ms <= 0 || timeout_ms > self.config.max_timeout_ms {
            return respond(req, Err(TxnError::InvalidTransactionTimeout));
        }
        let Some(txn) = self.txns.get_mut(transactional_id) else {
            let mut target = TxnMeta::new(transactional_id, fresh_id(), 0, timeout_ms, now);
            target.last_update_ms = now;
            let answer = Answer::ProducerId { producer_id: target.producer_id, producer_epoch: 0 };
            let placeholder = TxnMeta { state: TxnState::Dead, ..target.clone() };
            let mut txn = Txn { meta: placeholder, pending: None, replaced: None };
            let out = write(&mut txn, target, Some((req, answer)));
            self.txns.insert(transactional_id.to_string(), txn);
            return out;
        };
        if txn.pending.is_some() {
            return respond(req, Err(TxnError::ConcurrentTransactions));
        }
        if let Some(pair) = expected {
            let current = (txn.meta.producer_id, txn.meta.producer_epoch);
            if txn.meta.state == TxnState::Empty && txn.replaced == Some(pair) {
                // The answer to that bump was lost: the same answer again.
                let (producer_id, producer_epoch) = current;
                return respond(req, Ok(Answer::ProducerId { producer_id, producer_epoch }));
            }
            if pair != current {
                return respond(req, Err(TxnError::ProducerFenced));
            }
        }
        match txn.meta.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::Dead | TxnState::PrepareEpochFence => {
                respond(req, Err(TxnError::ConcurrentTransactions))
            }
            TxnState::Ongoing => {
                // Fence the instance that left it open, then abort it; the client retries.
                let mut out = begin_end(txn, false, true, now, None);
                out.extend(respond(req, Err(TxnError::ConcurrentTransactions)));
                out
            }
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {
                let mut target = txn.meta.clone();
                if target.producer_epoch >= MAX_EPOCH {
                    target.producer_id = fresh_id();
                    target.producer_epoch = 0;
                } else {
                    target.producer_epoch += 1;
                }
                target.timeout_ms = timeout_ms;
                target.state = TxnState::Empty;
                target.partitions.clear();
                target.start_ms = -1;
                target.last_update_ms = now;
                let answer =
                    Answer::ProducerId { producer_id: target.producer_id, producer_epoch: target.producer_epoch };
                write(txn, target, Some((req, answer)))
            }
        }
    }

    /// AddPartitionsToTxn (and AddOffsetsToTxn, with the group's `__consumer_offsets`
    /// partition): the transaction is Ongoing from its first partition on.
    pub fn add_partitions(
        &mut self,
        req: ReqId,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
        now: Now,
    ) -> Vec<Output> {
        let txn = match self.check(transactional_id, producer_id, producer_epoch) {
            Ok(t) => t,
            Err(e) => return respond(req, Err(e)),
        };
        match txn.meta.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort => respond(req, Err(TxnError::ConcurrentTransactions)),
            TxnState::Dead | TxnState::PrepareEpochFence => respond(req, Err(TxnError::InvalidTxnState)),
            TxnState::Ongoing if partitions.iter().all(|p| txn.meta.partitions.contains(p)) => {
                respond(req, Ok(Answer::Done))
            }
            _ => {
                let mut target = txn.meta.clone();
                if target.state != TxnState::Ongoing {
                    target.state = TxnState::Ongoing;
                    target.start_ms = now;
                    target.partitions.clear();
                }
                target.partitions.extend(partitions.iter().cloned());
                target.last_update_ms = now;
                write(txn, target, Some((req, Answer::Done)))
            }
        }
    }

    /// KIP-890: which of `partitions` are in the ongoing transaction of `producer_id` at
    /// `producer_epoch`, for a partition leader about to append a batch that would open the
    /// transaction there. Reads only, and against the durable state: a pending
    /// AddPartitions write does not count yet, and does not hold the answer up either.
    /// While the transaction ends, CONCURRENT_TRANSACTIONS (the leader's client retries).
    pub fn verify(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
    ) -> Result<Vec<bool>, TxnError> {
        let txn = self.txns.get(transactional_id).ok_or(TxnError::InvalidProducerIdMapping)?;
        if txn.meta.state == TxnState::Dead || txn.meta.producer_id != producer_id {
            return Err(TxnError::InvalidProducerIdMapping);
        }
        if txn.meta.producer_epoch != producer_epoch {
            return Err(TxnError::ProducerFenced);
        }
        let ending = match &txn.pending {
            None => false,
            Some(Pending::Markers) => true,
            Some(Pending::Write { target, .. }) => target.state != TxnState::Ongoing,
        };
        if ending || matches!(txn.meta.state, TxnState::PrepareCommit | TxnState::PrepareAbort) {
            return Err(TxnError::ConcurrentTransactions);
        }
        let ongoing = txn.meta.state == TxnState::Ongoing;
        Ok(partitions.iter().map(|p| ongoing && txn.meta.partitions.contains(p)).collect())
    }

    /// EndTxn: commit or abort. Answered once the Prepare state is durable; the markers
    /// follow. A retry of an end already made is answered at once.
    pub fn end_txn(
        &mut self,
        req: ReqId,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        now: Now,
    ) -> Vec<Output> {
        let txn = match self.check(transactional_id, producer_id, producer_epoch) {
            Ok(t) => t,
            Err(e) => return respond(req, Err(e)),
        };
        match (txn.meta.state, commit) {
            (TxnState::Ongoing, _) => begin_end(txn, commit, false, now, Some(req)),
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => respond(req, Ok(Answer::Done)),
            (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
                respond(req, Err(TxnError::ConcurrentTransactions))
            }
            _ => respond(req, Err(TxnError::InvalidTxnState)),
        }
    }

    /// The record last asked for is durable (`ok`), or could not be written.
    pub fn persisted(&mut self, transactional_id: &str, ok: bool) -> Vec<Output> {
        let Some(txn) = self.txns.get_mut(transactional_id) else { return Vec::new() };
        let Some(Pending::Write { target, reply }) = txn.pending.take() else { return Vec::new() };
        let mut out = Vec::new();
        if !ok {
            // Nothing changed. A new id's placeholder goes; a Complete that did not land
            // leaves the Prepare state, whose markers `tick` writes again.
            if txn.meta.state == TxnState::Dead && target.state != TxnState::Dead {
                self.txns.remove(transactional_id);
            }
            if let Some((req, _)) = reply {
                out.extend(respond(req, Err(TxnError::NotCoordinator)));
            }
            return out;
        }
        if target.state == TxnState::Dead {
            self.txns.remove(transactional_id);
            return out;
        }
        let before = (txn.meta.producer_id, txn.meta.producer_epoch);
        if matches!(reply, Some((_, Answer::ProducerId { .. }))) && txn.meta.state != TxnState::Dead {
            txn.replaced = Some(before);
        }
        txn.meta = target;
        if let Some((req, answer)) = reply {
            out.extend(respond(req, Ok(answer)));
        }
        if txn.meta.state.preparing() {
            out.push(markers(txn));
        }
        out
    }

    /// Every marker of the id's Prepare state is written: the transaction completes.
    pub fn markers_written(&mut self, transactional_id: &str, now: Now) -> Vec<Output> {
        let Some(txn) = self.txns.get_mut(transactional_id) else { return Vec::new() };
        if !matches!(txn.pending, Some(Pending::Markers)) || !txn.meta.state.preparing() {
            return Vec::new();
        }
        txn.pending = None;
        let mut target = txn.meta.clone();
        target.state =
            if txn.meta.state == TxnState::PrepareCommit { TxnState::CompleteCommit } else { TxnState::CompleteAbort };
        target.partitions.clear();
        target.last_update_ms = now;
        write(txn, target, None)
    }

    /// Time passes: transactions open past their timeout are aborted (their producer
    /// fenced by an epoch bump, as Kafka does), ids idle past
    /// `transactional.id.expiration.ms` are removed, and a Prepare state whose completion
    /// failed has its markers written again.
    pub fn tick(&mut self, now: Now) -> Vec<Output> {
        let mut out = Vec::new();
        let expiration = self.config.id_expiration_ms;
        for txn in self.txns.values_mut() {
            if txn.pending.is_some() {
                continue;
            }
            match txn.meta.state {
                TxnState::Ongoing if now > txn.meta.start_ms + txn.meta.timeout_ms as i64 => {
                    out.extend(begin_end(txn, false, true, now, None));
                }
                TxnState::PrepareCommit | TxnState::PrepareAbort => out.push(markers(txn)),
                TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
                    if now > txn.meta.last_update_ms + expiration =>
                {
                    let target = TxnMeta { state: TxnState::Dead, ..txn.meta.clone() };
                    out.extend(write(txn, target, None));
                }
                _ => {}
            }
        }
        out
    }

    /// Applies a record of `__transaction_state` read back while loading a partition
    /// (`value` None: a tombstone).
    pub fn replay(&mut self, key: &[u8], value: Option<&[u8]>) {
        let Some(id) = super::records::parse_key(key) else { return };
        match value.and_then(|v| super::records::parse_value(&id, v)) {
            Some(meta) => {
                self.txns.insert(id, Txn { meta, pending: None, replaced: None });
            }
            None => {
                self.txns.remove(&id);
            }
        }
    }

    /// Loading is done: transactions caught between Prepare and Complete by the last
    /// coordinator's end get their markers written now.
    pub fn loaded(&mut self) -> Vec<Output> {
        self.txns.values_mut().filter(|t| t.pending.is_none() && t.meta.state.preparing()).map(markers).collect()
    }

    /// Drops the ids whose partition this broker no longer leads; their requests in
    /// flight are answered NOT_COORDINATOR by the driver.
    pub fn unload(&mut self, mut gone: impl FnMut(&str) -> bool) {
        self.txns.retain(|id, _| !gone(id));
    }

    pub fn describe(&self, transactional_id: &str) -> Option<TxnView> {
        let t = self.txns.get(transactional_id).filter(|t| t.meta.state != TxnState::Dead)?;
        Some(TxnView {
            state: t.meta.state,
            producer_id: t.meta.producer_id,
            producer_epoch: t.meta.producer_epoch,
            timeout_ms: t.meta.timeout_ms,
            start_ms: t.meta.start_ms,
            partitions: t.meta.partitions.iter().cloned().collect(),
        })
    }

    /// ListTransactions: (id, producer id, state), filtered by state names and producer
    /// ids (empty filters match all).
    pub fn list(&self, states: &[String], producer_ids: &[i64]) -> Vec<(String, i64, TxnState)> {
        let mut out: Vec<_> = self
            .txns
            .values()
            .map(|t| &t.meta)
            .filter(|m| m.state != TxnState::Dead)
            .filter(|m| states.is_empty() || states.iter().any(|s| s == m.state.name()))
            .filter(|m| producer_ids.is_empty() || producer_ids.contains(&m.producer_id))
            .map(|m| (m.transactional_id.clone(), m.producer_id, m.state))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The persisted state of an id (tests, and DescribeTransactions' partitions).
    pub fn meta(&self, transactional_id: &str) -> Option<&TxnMeta> {
        self.txns.get(transactional_id).map(|t| &t.meta)
    }

    fn check(&mut self, transactional_id: &str, producer_id: i64, producer_epoch: i16) -> Result<&mut Txn, TxnError> {
        let txn = self.txns.get_mut(transactional_id).ok_or(TxnError::InvalidProducerIdMapping)?;
        if txn.meta.state == TxnState::Dead || txn.meta.producer_id != producer_id {
            return Err(TxnError::InvalidProducerIdMapping);
        }
        if txn.meta.producer_epoch != producer_epoch {
            return Err(TxnError::ProducerFenced);
        }
        if txn.pending.is_some() {
            return Err(TxnError::ConcurrentTransactions);
        }
        Ok(txn)
    }
}

fn respond(req: ReqId, result: Result<Answer, TxnError>) -> Vec<Output> {
    vec![Output::Respond { req, result }]
}

/// Starts writing `target` for `txn`.
fn write(txn: &mut Txn, target: TxnMeta, reply: Option<(ReqId, Answer)>) -> Vec<Output> {
    let id = target.transactional_id.clone();
    let value = (target.state != TxnState::Dead).then(|| super::records::value(&target));
    txn.pending = Some(Pending::Write { target, reply });
    vec![Output::Persist { key: super::records::key(&id), transactional_id: id, value }]
}

/// Ongoing → PrepareCommit or PrepareAbort (with `fence`, under a bumped epoch so the
/// producer that left it open is fenced). `req` is answered once the Prepare is durable.
fn begin_end(txn: &mut Txn, commit: bool, fence: bool, now: Now, req: Option<ReqId>) -> Vec<Output> {
    let mut target = txn.meta.clone();
    target.state = if commit { TxnState::PrepareCommit } else { TxnState::PrepareAbort };
    if fence && target.producer_epoch < MAX_EPOCH {
        target.producer_epoch += 1;
    }
    target.last_update_ms = now;
    write(txn, target, req.map(|r| (r, Answer::Done)))
}

fn markers(txn: &mut Txn) -> Output {
    txn.pending = Some(Pending::Markers);
    Output::WriteMarkers {
        transactional_id: txn.meta.transactional_id.clone(),
        producer_id: txn.meta.producer_id,
        producer_epoch: txn.meta.producer_epoch,
        commit: txn.meta.state == TxnState::PrepareCommit,
        partitions: txn.meta.partitions.iter().cloned().collect(),
    }
}
