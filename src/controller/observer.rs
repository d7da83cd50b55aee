//! A broker that is not a voter (`process.roles=broker`): it holds no Raft log, and
//! follows the metadata from the voters instead (as KRaft brokers observe the metadata log
//! without voting). It long-polls a voter for the image once it is newer than its own, and
//! sends its operations (admin requests, registration, heartbeats) to the active
//! controller, finding it through whichever voter answers.
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::ops::{ControllerError, ControllerOp, ControllerResult};
use crate::limits;
use crate::metadata::MetadataImage;
use crate::rpc::client::{Peer, Sender};
use crate::rpc::{Request, Response};

pub struct Observer {
    voters: BTreeMap<u64, String>,
    sender: Sender,
    /// Connections for requests (Execute), one at a time per voter.
    peers: tokio::sync::Mutex<BTreeMap<u64, Peer>>,
    /// Connections for the image long-poll, apart: a request must not queue behind a poll
    /// that holds its connection for seconds.
    poll_peers: tokio::sync::Mutex<BTreeMap<u64, Peer>>,
    /// The active controller, as last heard from a voter.
    leader: Mutex<Option<u64>>,
    published: watch::Sender<Arc<MetadataImage>>,
}

impl Observer {
    pub fn new(voters: BTreeMap<u64, String>, sender: Sender) -> (Arc<Observer>, watch::Receiver<Arc<MetadataImage>>) {
        let (tx, rx) = watch::channel(Arc::new(MetadataImage::default()));
        let observer = Observer {
            voters,
            sender,
            peers: tokio::sync::Mutex::new(BTreeMap::new()),
            poll_peers: tokio::sync::Mutex::new(BTreeMap::new()),
            leader: Mutex::new(None),
            published: tx,
        };
        (Arc::new(observer), rx)
    }

    pub fn active_controller(&self) -> Option<u64> {
        *self.leader.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set_leader(&self, leader: Option<u64>) {
        if leader.is_some() {
            *self.leader.lock().unwrap_or_else(|p| p.into_inner()) = leader;
        }
    }

    async fn call(&self, voter: u64, req: Request, timeout: Duration) -> Result<Response, String> {
        let addr = self.voters.get(&voter).ok_or_else(|| format!("{voter} is not a voter"))?.clone();
        let mut peers = if matches!(req, Request::FetchImage { .. }) {
            self.poll_peers.lock().await
        } else {
            self.peers.lock().await
        };
        let peer = peers.entry(voter).or_insert_with(|| Peer::new(voter, addr, self.sender.clone()));
        peer.call(req, timeout).await.map_err(|e| e.to_string())
    }

    /// The voters to try, the active controller first.
    fn candidates(&self) -> Vec<u64> {
        let leader = self.active_controller();
        leader.into_iter().chain(self.voters.keys().copied().filter(|v| Some(*v) != leader)).collect()
    }

    /// Follows the voters' image for the life of the process.
    pub async fn follow(self: Arc<Self>) {
        let mut turn = 0usize;
        loop {
            let candidates = self.candidates();
            let voter = candidates[turn % candidates.len()];
            let have_index = self.published.borrow().log_index;
            let timeout = limits::CONTROLLER_IMAGE_POLL + Duration::from_secs(3);
            match self.call(voter, Request::FetchImage { have_index }, timeout).await {
                Ok(Response::Image { image, leader }) => {
                    self.set_leader(leader);
                    if let Some(image) = image.filter(|i| i.log_index > have_index) {
                        self.published.send_replace(Arc::new(*image));
                    }
                }
                Ok(other) => {
                    tracing::debug!(voter, answer = ?other, "metadata poll: unexpected answer");
                    turn += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => {
                    tracing::debug!(voter, error = %e, "metadata poll failed");
                    turn += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }

    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut images = self.published.subscribe();
        loop {
            if images.borrow_and_update().log_index > 0 && self.active_controller().is_some() {
                return Ok(());
            }
            if let Some(why) = self.sender.admission.refused_by_peer.lock().unwrap_or_else(|p| p.into_inner()).clone() {
                return Err(why);
            }
            let _ = tokio::time::timeout(Duration::from_millis(200), images.changed()).await;
            if tokio::time::Instant::now() >= deadline {
                return Err(format!("no controller quorum reachable within {timeout:?}"));
            }
        }
    }

    /// Runs `op` on the active controller, found through the voters.
    pub async fn execute_anywhere(&self, op: ControllerOp) -> (Result<ControllerResult, ControllerError>, u64) {
        let deadline = tokio::time::Instant::now() + limits::CONTROLLER_REQUEST_TIMEOUT;
        let mut why = String::from("no voter answered");
        loop {
            for voter in self.candidates() {
                match self.call(voter, Request::Execute(op.clone()), limits::CONTROLLER_REQUEST_TIMEOUT).await {
                    Ok(Response::Executed { result, index }) => {
                        self.set_leader(Some(voter));
                        return (result, index);
                    }
                    Ok(Response::NotController { leader }) => {
                        self.set_leader(leader);
                        why = format!("node {voter} is not the active controller");
                    }
                    Ok(other) => why = format!("unexpected answer from node {voter}: {other:?}"),
                    Err(e) => why = e,
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return (Err(ControllerError::NotAvailable(why)), 0);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
