//! The controller service: the Raft node, the controller logic of the active controller,
//! and the controller listener, all on one thread of its own ("sluice-controller") with a
//! current-thread tokio runtime.
//!
//! Why openraft 0.9 on its own thread (DESIGN §6 offers this or 0.10 on shard 0):
//! - 0.9 is openraft's stable line; 0.10 is an alpha whose API still moves, and the
//!   glommio runtime adapter it would need is more code to own and test.
//! - A thread of its own means produce load on the shards cannot starve Raft heartbeats:
//!   the shards' executors never run the controller's tasks, and the kernel schedules the
//!   controller thread like any other (it is mostly idle).
//! - tokio is already in the build (the tools' librdkafka client runs on it).
//!
//! The shards reach the service through `QuorumHandle` (Send + Sync): operations run as
//! tasks on the controller runtime, and committed images come back through a `watch`
//! that shard 0 installs on every shard.
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::error::{ClientWriteError, InitializeError, RaftError};
use openraft::BasicNode;
use tokio::sync::watch;
use uuid::Uuid;

use super::observer::Observer;
use super::ops::{plan, validate_only, ControllerError, ControllerOp, ControllerResult, Placer, Registration};
use super::quorum::log_store::LogStore;
use super::quorum::state_machine::MetadataStateMachine;
use super::quorum::{MetadataCommand, Raft};
use crate::limits;
use crate::metadata::{MetadataImage, MetadataRecord};
use crate::model::NodeId;
use crate::rpc::client::{NetworkFactory, Peer, Sender};
use crate::rpc::{Admission, Envelope, Request, Response};

/// What the service needs to start.
pub struct ServiceConfig {
    pub node_id: i32,
    pub cluster_id: String,
    /// This node's metadata directory id (`directory.id` in meta.properties).
    pub directory_id: Uuid,
    /// The voters: node id → controller listener address. A single node lists itself.
    pub voters: BTreeMap<u64, String>,
    /// The controller listener, already bound (none for a single node that has no peers).
    pub listener: Option<std::net::TcpListener>,
    /// `<log.dirs>/__cluster_metadata`.
    pub dir: PathBuf,
    pub shards: usize,
    /// `broker.session.timeout.ms`: the active controller fences a broker silent this long.
    pub broker_session_timeout: Duration,
    /// `auto.leader.rebalance.enable` with `leader.imbalance.check.interval.seconds`: how
    /// often the active controller moves leadership back to preferred replicas (`None`: never).
    pub leader_rebalance_interval: Option<Duration>,
    /// The controller listener's TLS and SASL, both ways.
    pub security: crate::rpc::secure::Security,
}

pub struct Service {
    raft: Raft,
    sm: MetadataStateMachine,
    node_id: u64,
    sender: Sender,
    voters: BTreeMap<u64, String>,
    placer: Placer,
    /// Operations run one at a time, each planned against the image its predecessor left.
    serial: tokio::sync::Mutex<()>,
    /// Connections to the other voters, for forwarding to the active controller.
    peers: tokio::sync::Mutex<BTreeMap<u64, Peer>>,
    /// The active controller's view of broker sessions: the last heartbeat of each, and
    /// since when this node has been the active controller (a broker it has not heard
    /// from yet gets a full session from then).
    sessions: Mutex<Sessions>,
    session_timeout: Duration,
    leader_rebalance_interval: Option<Duration>,
}

#[derive(Default)]
struct Sessions {
    leading_since: Option<tokio::time::Instant>,
    last_seen: BTreeMap<i32, tokio::time::Instant>,
}

/// What this node is in the quorum: a voter runs the Raft node; a broker that is not a
/// voter observes.
#[derive(Clone)]
enum Member {
    Voter(Arc<Service>),
    Observer(Arc<Observer>),
}

impl Member {
    async fn execute_anywhere(&self, op: ControllerOp) -> (Result<ControllerResult, ControllerError>, u64) {
        match self {
            Member::Voter(s) => s.execute_anywhere(op).await,
            Member::Observer(o) => o.execute_anywhere(op).await,
        }
    }

    async fn wait_ready(&self, timeout: Duration) -> Result<(), String> {
        match self {
            Member::Voter(s) => s.wait_ready(timeout).await,
            Member::Observer(o) => o.wait_ready(timeout).await,
        }
    }
}

/// The shards' handle on the service.
#[derive(Clone)]
pub struct QuorumHandle {
    member: Member,
    runtime: tokio::runtime::Handle,
    /// Set by a controlled shutdown: heartbeats from then on ask to stay out of leadership
    /// (Kafka's `wantShutDown`), so the next one does not unfence the broker again.
    shutting_down: Arc<std::sync::atomic::AtomicBool>,
    pub images: watch::Receiver<Arc<MetadataImage>>,
}

impl QuorumHandle {
    /// Runs `op` on the active controller; returns its result and the metadata log index
    /// that holds it (0 when nothing was written).
    pub async fn execute(&self, op: ControllerOp) -> (Result<ControllerResult, ControllerError>, u64) {
        let member = self.member.clone();
        match self.runtime.spawn(async move { member.execute_anywhere(op).await }).await {
            Ok(r) => r,
            Err(e) => (Err(ControllerError::NotAvailable(e.to_string())), 0),
        }
    }

    pub fn image(&self) -> Arc<MetadataImage> {
        self.images.borrow().clone()
    }

    /// The node id of the active controller (the Raft leader), if one is known.
    pub fn active_controller(&self) -> Option<u64> {
        match &self.member {
            Member::Voter(s) => s.raft.metrics().borrow().current_leader,
            Member::Observer(o) => o.active_controller(),
        }
    }

    /// Blocks the calling (non-shard) thread until the node knows an active controller and
    /// has applied the metadata log as far as it reaches, or `timeout`.
    pub fn wait_ready(&self, timeout: Duration) -> Result<Arc<MetadataImage>, String> {
        let member = self.member.clone();
        let task = self.runtime.spawn(async move { member.wait_ready(timeout).await });
        futures::executor::block_on(task).map_err(|e| e.to_string())??;
        Ok(self.image())
    }

    /// Registers this broker with the active controller and heartbeats every `interval`
    /// for the life of the process; registers again if the controller no longer knows this
    /// incarnation.
    pub fn start_heartbeats(&self, registration: Registration, interval: Duration) {
        let service = self.member.clone();
        let shutting_down = self.shutting_down.clone();
        self.runtime.spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let op = ControllerOp::Heartbeat {
                    node_id: registration.node_id,
                    incarnation: registration.incarnation,
                    shutting_down: shutting_down.load(std::sync::atomic::Ordering::Acquire),
                };
                match service.execute_anywhere(op).await.0 {
                    Err(ControllerError::StaleBroker(_)) => {
                        tracing::warn!("the controller does not know this broker's registration; registering again");
                        let _ = service.execute_anywhere(ControllerOp::RegisterBroker(registration.clone())).await;
                    }
                    Err(e) => tracing::warn!(error = %e, "broker heartbeat failed"),
                    Ok(_) => {}
                }
            }
        });
    }

    /// Controlled shutdown: asks the active controller to move this broker out of
    /// leadership, and waits (up to `timeout`) until it has, as Kafka's brokers do before
    /// they stop.
    pub fn controlled_shutdown(&self, registration: &Registration, timeout: Duration) {
        self.shutting_down.store(true, std::sync::atomic::Ordering::Release);
        let service = self.member.clone();
        let op = ControllerOp::Heartbeat {
            node_id: registration.node_id,
            incarnation: registration.incarnation,
            shutting_down: true,
        };
        let task = self.runtime.spawn(async move { tokio::time::timeout(timeout, service.execute_anywhere(op)).await });
        match futures::executor::block_on(task) {
            Ok(Ok((Ok(_), _))) => tracing::info!("controlled shutdown: out of leadership"),
            Ok(Ok((Err(e), _))) => tracing::warn!(error = %e, "controlled shutdown refused; stopping anyway"),
            _ => tracing::warn!(
                timeout_ms = timeout.as_millis() as u64,
                "controlled shutdown timed out; stopping anyway"
            ),
        }
    }

    /// Blocks the calling (non-shard) thread on `op` (start-up steps), until this node's
    /// image holds it.
    /// While no controller is active (an election that has not settled), the step is
    /// retried for up to `STARTUP_OP_WAIT`, as a Kafka broker retries its registration.
    pub fn execute_blocking(&self, op: ControllerOp) -> Result<ControllerResult, String> {
        let deadline = std::time::Instant::now() + STARTUP_OP_WAIT;
        let (r, index) = loop {
            match futures::executor::block_on(self.execute(op.clone())) {
                (Err(ControllerError::NotAvailable(why)), _) if std::time::Instant::now() < deadline => {
                    tracing::debug!(why, "no active controller yet; retrying");
                    std::thread::sleep(Duration::from_millis(100));
                }
                done => break done,
            }
        };
        let r = r.map_err(|e| e.to_string())?;
        let mut images = self.images.clone();
        futures::executor::block_on(images.wait_for(|i| i.log_index >= index)).map_err(|e| e.to_string())?;
        Ok(r)
    }
}

/// How long a start-up step waits for an active controller.
const STARTUP_OP_WAIT: Duration = Duration::from_secs(60);

/// Starts the controller thread and, on it, the Raft node (a voter) or the metadata
/// follower (a broker that is not a voter).
pub fn start(config: ServiceConfig) -> Result<QuorumHandle, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("sluice-controller".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = tx.send(Err(format!("controller runtime: {e}")));
                    return;
                }
            };
            rt.block_on(async move {
                let started = if config.voters.contains_key(&(config.node_id as u64)) {
                    Service::boot(config).await.map(|(s, images)| (Member::Voter(s), images))
                } else {
                    Service::observe(config).map(|(o, images)| (Member::Observer(o), images))
                };
                let ok = started.is_ok();
                let _ = tx.send(started.map(|(s, images)| (s, images, tokio::runtime::Handle::current())));
                if ok {
                    // The runtime lives as long as the process: its tasks are the service.
                    std::future::pending::<()>().await;
                }
            });
        })
        .map_err(|e| format!("cannot start the controller thread: {e}"))?;
    let (member, images, runtime) = rx.recv().map_err(|_| "the controller thread died at start".to_string())??;
    Ok(QuorumHandle { member, runtime, images, shutting_down: Arc::default() })
}

impl Service {
    /// A broker that is not a voter: no Raft node, a metadata follower instead.
    fn observe(config: ServiceConfig) -> Result<(Arc<Observer>, watch::Receiver<Arc<MetadataImage>>), String> {
        let dir = config.dir.join("observer");
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let admission = Arc::new(Admission::open(&config.cluster_id, &dir).map_err(|e| e.to_string())?);
        let sender = Sender {
            cluster_id: config.cluster_id.clone(),
            node_id: config.node_id as u64,
            directory_id: config.directory_id,
            admission,
            security: config.security.clone(),
        };
        let (observer, images) = Observer::new(config.voters, sender);
        tokio::spawn(observer.clone().follow());
        Ok((observer, images))
    }

    async fn boot(config: ServiceConfig) -> Result<(Arc<Service>, watch::Receiver<Arc<MetadataImage>>), String> {
        let raft_dir = config.dir.join("raft");
        let log = LogStore::open(&raft_dir).map_err(|e| format!("controller log: {e}"))?;
        let (sm, images) = MetadataStateMachine::open(&raft_dir).map_err(|e| format!("controller state: {e}"))?;
        let pristine = log.is_pristine();
        let raft_config = openraft::Config {
            cluster_name: config.cluster_id.clone(),
            heartbeat_interval: limits::CONTROLLER_RAFT_HEARTBEAT_MS,
            election_timeout_min: limits::CONTROLLER_ELECTION_TIMEOUT_MS,
            election_timeout_max: limits::CONTROLLER_ELECTION_TIMEOUT_MS * 2,
            ..Default::default()
        }
        .validate()
        .map_err(|e| format!("controller config: {e}"))?;
        let node_id = config.node_id as u64;
        let admission = Arc::new(Admission::open(&config.cluster_id, &raft_dir).map_err(|e| e.to_string())?);
        let sender = Sender {
            cluster_id: config.cluster_id.clone(),
            node_id,
            directory_id: config.directory_id,
            admission,
            security: config.security.clone(),
        };
        let network = NetworkFactory { sender: sender.clone() };
        let raft = Raft::new(node_id, Arc::new(raft_config), network, log, sm.clone())
            .await
            .map_err(|e| format!("controller quorum: {e}"))?;
        let service = Arc::new(Service {
            raft,
            sm,
            node_id,
            sender,
            voters: config.voters.clone(),
            placer: Placer { node: NodeId(config.node_id), shards: config.shards },
            serial: tokio::sync::Mutex::new(()),
            peers: tokio::sync::Mutex::new(BTreeMap::new()),
            sessions: Mutex::new(Sessions::default()),
            session_timeout: config.broker_session_timeout,
            leader_rebalance_interval: config.leader_rebalance_interval,
        });
        tokio::spawn(service.clone().expire_sessions());
        tokio::spawn(service.clone().rebalance_leaders());
        if pristine {
            let members: BTreeMap<u64, BasicNode> =
                config.voters.iter().map(|(id, addr)| (*id, BasicNode { addr: addr.clone() })).collect();
            match service.raft.initialize(members).await {
                Ok(()) => {
                    tracing::info!(voters = ?config.voters.keys().collect::<Vec<_>>(), "controller quorum initialized")
                }
                Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
                Err(e) => return Err(format!("controller quorum: cannot initialize: {e}")),
            }
        }
        if let Some(listener) = config.listener {
            listener.set_nonblocking(true).map_err(|e| e.to_string())?;
            let listener = tokio::net::TcpListener::from_std(listener).map_err(|e| e.to_string())?;
            tokio::spawn(crate::rpc::server::serve(listener, service.clone()));
        }
        Ok((service, images))
    }

    async fn is_leader(&self) -> bool {
        self.raft.current_leader().await == Some(self.node_id)
    }

    /// Waits until an active controller is known and this node has applied the log as far
    /// as it had it when the leader became known.
    async fn wait_ready(&self, timeout: Duration) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut metrics = self.raft.metrics();
        loop {
            {
                let m = metrics.borrow_and_update();
                if m.current_leader.is_some() && m.last_applied.map(|l| l.index) >= m.last_log_index {
                    return Ok(());
                }
            }
            if let Some(why) = self.sender.admission.refused_by_peer.lock().unwrap_or_else(|p| p.into_inner()).clone() {
                return Err(why);
            }
            let wait = tokio::time::sleep(Duration::from_millis(200));
            tokio::select! {
                _ = metrics.changed() => {}
                _ = wait => {}
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!("no controller quorum within {timeout:?}"));
            }
        }
    }

    /// Runs `op` here if this node is the active controller, else forwards it to the one
    /// that is.
    async fn execute_anywhere(&self, op: ControllerOp) -> (Result<ControllerResult, ControllerError>, u64) {
        let deadline = tokio::time::Instant::now() + limits::CONTROLLER_REQUEST_TIMEOUT;
        loop {
            let leader = self.raft.current_leader().await;
            let retry = match leader {
                Some(id) if id == self.node_id => {
                    let (r, index) = self.execute_here(op.clone()).await;
                    match r {
                        Err(ControllerError::NotAvailable(_)) => None,
                        r => return (r, index),
                    }
                }
                Some(id) => match self.forward(id, op.clone()).await {
                    Ok((r, index)) => return (r, index),
                    Err(e) => Some(e),
                },
                None => None,
            };
            if tokio::time::Instant::now() >= deadline {
                let why = retry.unwrap_or_else(|| "no leader elected".into());
                return (Err(ControllerError::NotAvailable(why)), 0);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn forward(
        &self,
        leader: u64,
        op: ControllerOp,
    ) -> Result<(Result<ControllerResult, ControllerError>, u64), String> {
        let addr = self.voters.get(&leader).ok_or_else(|| format!("leader {leader} is not a known voter"))?.clone();
        let mut peers = self.peers.lock().await;
        let peer = peers.entry(leader).or_insert_with(|| Peer::new(leader, addr, self.sender.clone()));
        match peer.call(Request::Execute(op), limits::CONTROLLER_REQUEST_TIMEOUT).await {
            Ok(Response::Executed { result, index }) => Ok((result, index)),
            Ok(Response::NotController { .. }) => Err(format!("node {leader} is no longer the active controller")),
            Ok(other) => Err(format!("unexpected answer from node {leader}: {other:?}")),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Runs `op` as the active controller: plans its steps against the current image and
    /// proposes each step's records as one entry, in order.
    async fn execute_here(&self, op: ControllerOp) -> (Result<ControllerResult, ControllerError>, u64) {
        let _serial = self.serial.lock().await;
        match &op {
            ControllerOp::Heartbeat { node_id, .. } | ControllerOp::RegisterBroker(Registration { node_id, .. }) => {
                let mut s = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
                s.last_seen.insert(*node_id, tokio::time::Instant::now());
            }
            _ => {}
        }
        let image = self.sm.image();
        let steps = plan(&image, &op, &self.placer);
        let mut index = 0;
        let mut outcomes = Vec::with_capacity(steps.len());
        let mut scratch = (*image).clone();
        for step in steps {
            let outcome = match step {
                Err(e) => Err(e),
                // Nothing to write (a heartbeat that changes nothing): no entry.
                Ok(records) if records.is_empty() => Ok(records),
                Ok(records) if validate_only(&op) => {
                    records.iter().for_each(|r| scratch.apply(r));
                    Ok(records)
                }
                Ok(records) => match self.propose(records.clone()).await {
                    Ok(i) => {
                        index = i;
                        Ok(records)
                    }
                    Err(e @ ControllerError::NotAvailable(_)) if outcomes.is_empty() => return (Err(e), 0),
                    Err(e) => Err(e),
                },
            };
            outcomes.push(outcome);
        }
        let image = if validate_only(&op) { Arc::new(scratch) } else { self.sm.image() };
        let created = |records: &Vec<MetadataRecord>| match records.first() {
            Some(MetadataRecord::CreateTopic { name, .. }) => {
                image.topic(name).cloned().ok_or(ControllerError::UnknownTopic)
            }
            _ => Err(ControllerError::UnknownTopic),
        };
        let result = match op {
            ControllerOp::CreateTopics { .. } => ControllerResult::Created(
                outcomes.iter().map(|o| o.as_ref().map_err(Clone::clone).and_then(created)).collect(),
            ),
            ControllerOp::DeleteTopics { .. } => {
                ControllerResult::Deleted(outcomes.into_iter().map(|o| o.map(drop)).collect())
            }
            ControllerOp::AllocateProducerIds { .. } => match outcomes.into_iter().next() {
                Some(Ok(records)) => match records.first() {
                    Some(MetadataRecord::ProducerIds { next, .. }) => ControllerResult::ProducerIds {
                        first: next - super::ops::PRODUCER_ID_BLOCK,
                        count: super::ops::PRODUCER_ID_BLOCK,
                    },
                    _ => return (Err(ControllerError::Storage("no producer id block planned".into())), index),
                },
                Some(Err(e)) => return (Err(e), index),
                None => return (Err(ControllerError::Storage("no producer id block planned".into())), index),
            },
            _ => ControllerResult::Changed(outcomes.into_iter().map(|o| o.map(drop)).collect()),
        };
        (Ok(result), index)
    }

    /// The active controller's preferred-leader timer (`auto.leader.rebalance.enable`):
    /// moves leadership back to each partition's first replica where it is alive and in
    /// sync, so that leaders spread again after failures.
    async fn rebalance_leaders(self: Arc<Self>) {
        let Some(every) = self.leader_rebalance_interval else { return };
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tick.tick().await;
            if !self.is_leader().await {
                continue;
            }
            let (r, _) = self.execute_here(ControllerOp::ElectLeaders { partitions: None, unclean: false }).await;
            match r {
                Ok(ControllerResult::Changed(moved)) if !moved.is_empty() => {
                    tracing::info!(partitions = moved.len(), "leadership moved back to preferred replicas")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "preferred leader election failed"),
            }
        }
    }

    /// The active controller's timer: fences the brokers whose sessions expired.
    async fn expire_sessions(self: Arc<Self>) {
        let mut tick = tokio::time::interval(limits::CONTROLLER_SESSION_CHECK_INTERVAL);
        loop {
            tick.tick().await;
            let now = tokio::time::Instant::now();
            if !self.is_leader().await {
                self.sessions.lock().unwrap_or_else(|p| p.into_inner()).leading_since = None;
                continue;
            }
            let image = self.sm.image();
            let expired: Vec<i32> = {
                let mut s = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
                let since = *s.leading_since.get_or_insert(now);
                image
                    .live_brokers()
                    .map(|(id, _)| id)
                    .filter(|id| {
                        now.duration_since(*s.last_seen.get(id).unwrap_or(&since).max(&since)) > self.session_timeout
                    })
                    .collect()
            };
            if !expired.is_empty() {
                tracing::warn!(brokers = ?expired, timeout_ms = self.session_timeout.as_millis() as u64, "broker sessions expired; fencing");
                let (r, _) = self.execute_here(ControllerOp::Fence { node_ids: expired }).await;
                if let Err(e) = r {
                    tracing::warn!(error = %e, "cannot fence expired brokers");
                }
            }
        }
    }

    /// Commits `records` as one entry; returns its index once applied here.
    async fn propose(&self, records: Vec<MetadataRecord>) -> Result<u64, ControllerError> {
        match self.raft.client_write(MetadataCommand { records }).await {
            Ok(r) => Ok(r.log_id.index),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                Err(ControllerError::NotAvailable(format!("not the active controller (leader: {:?})", f.leader_id)))
            }
            Err(e) => Err(ControllerError::Storage(e.to_string())),
        }
    }

    /// `response` stamped with who answers.
    pub fn envelope(&self, response: Response) -> Envelope<Response> {
        Envelope {
            cluster_id: self.sender.cluster_id.clone(),
            from: self.node_id,
            directory_id: self.sender.directory_id,
            to_directory: None,
            body: response,
        }
    }

    /// Answers one request from the controller listener.
    pub async fn handle(&self, envelope: Envelope<Request>) -> Response {
        if let Err(why) = self.sender.admission.check(&envelope.cluster_id, envelope.from, envelope.directory_id) {
            tracing::warn!(from = envelope.from, %why, "controller request refused");
            return Response::Refused(why);
        }
        if let Some(d) = envelope.to_directory.filter(|d| *d != self.sender.directory_id) {
            let why = format!(
                "node {} knows this node (node {}) by metadata directory {d}, but this directory is {}: this node's metadata was wiped and formatted again, and it may not rejoin the quorum as it is",
                envelope.from, self.node_id, self.sender.directory_id
            );
            tracing::error!("{why}");
            self.sender.admission.note_refusal(&why);
            return Response::Refused(why);
        }
        match envelope.body {
            Request::AppendEntries(r) => Response::AppendEntries(self.raft.append_entries(r).await),
            Request::Vote(r) => Response::Vote(self.raft.vote(r).await),
            Request::InstallSnapshot(r) => Response::InstallSnapshot(self.raft.install_snapshot(r).await),
            Request::Execute(op) => {
                if !self.is_leader().await {
                    return Response::NotController { leader: self.raft.current_leader().await };
                }
                let (result, index) = self.execute_here(op).await;
                Response::Executed { result, index }
            }
            Request::FetchImage { have_index } => {
                let mut images = self.sm.subscribe();
                let newer = images.wait_for(|i| i.log_index > have_index);
                let _ = tokio::time::timeout(limits::CONTROLLER_IMAGE_POLL, newer).await;
                let image = self.sm.image();
                let image = (image.log_index > have_index).then(|| Box::new((*image).clone()));
                Response::Image { image, leader: self.raft.current_leader().await }
            }
            // Only the first request of a connection (rpc/server.rs); a second is misuse.
            Request::Authenticate { .. } => Response::Refused("already authenticated".into()),
        }
    }

    /// How the controller listener is secured.
    pub fn security(&self) -> &crate::rpc::secure::Security {
        &self.sender.security
    }

    /// The metadata this voter holds now (its ACLs decide who may use the listener).
    pub fn current_image(&self) -> Arc<MetadataImage> {
        self.sm.image()
    }
}
