//! The client side: one connection per peer, opened on first use and again after any
//! error, one request at a time; and openraft's network factory on top of it.
use std::time::Duration;

use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::BasicNode;
use uuid::Uuid;

use super::{read_frame, write_frame, Envelope, FrameError, Request, Response};
use crate::controller::quorum::TypeConfig;

/// Who this node is, stamped on every request it sends, and whom it accepts answers from.
#[derive(Clone)]
pub struct Sender {
    pub cluster_id: String,
    pub node_id: u64,
    pub directory_id: Uuid,
    pub admission: std::sync::Arc<super::Admission>,
    /// TLS and SASL on the controller listener.
    pub security: super::secure::Security,
}

#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("cannot connect to {addr}: {reason}")]
    Connect { addr: String, reason: String },
    #[error("{addr}: {source}")]
    Frame { addr: String, source: FrameError },
    #[error("{addr}: no answer within {timeout:?}")]
    Timeout { addr: String, timeout: Duration },
    #[error("{addr}: connection closed")]
    Closed { addr: String },
    #[error("{addr}: {why}")]
    Refused { addr: String, why: String },
}

/// A connection to one peer's controller listener.
pub struct Peer {
    pub addr: String,
    /// The peer's node id.
    target: u64,
    sender: Sender,
    stream: Option<super::secure::Stream>,
}

impl Peer {
    pub fn new(target: u64, addr: String, sender: Sender) -> Peer {
        Peer { addr, target, sender, stream: None }
    }

    /// Sends `body` and waits for the answer, within `timeout` (connecting included).
    pub async fn call(&mut self, body: Request, timeout: Duration) -> Result<Response, CallError> {
        let addr = self.addr.clone();
        let r = tokio::time::timeout(timeout, self.call_inner(body)).await;
        let r = r.unwrap_or(Err(CallError::Timeout { addr, timeout }));
        if r.is_err() {
            self.stream = None;
        }
        r
    }

    async fn call_inner(&mut self, body: Request) -> Result<Response, CallError> {
        if self.stream.is_none() {
            let s = self
                .sender
                .security
                .connect(&self.addr)
                .await
                .map_err(|reason| CallError::Connect { addr: self.addr.clone(), reason })?;
            self.stream = Some(s);
            // On a SASL listener the login is the connection's first exchange.
            if let Some((mechanism, token)) = self.sender.security.login_token() {
                match self.exchange(Request::Authenticate { mechanism, token }).await? {
                    Response::Authenticated => {}
                    Response::Refused(why) => {
                        return Err(CallError::Refused {
                            addr: self.addr.clone(),
                            why: format!("login refused: {why}"),
                        })
                    }
                    other => {
                        return Err(CallError::Refused {
                            addr: self.addr.clone(),
                            why: format!("login answered {other:?}"),
                        })
                    }
                }
            }
        }
        self.exchange(body).await
    }

    /// One request and its answer on the open connection.
    async fn exchange(&mut self, body: Request) -> Result<Response, CallError> {
        let stream = self.stream.as_mut().expect("connected first");
        let envelope = Envelope {
            cluster_id: self.sender.cluster_id.clone(),
            from: self.sender.node_id,
            directory_id: self.sender.directory_id,
            to_directory: self.sender.admission.known(self.target),
            body,
        };
        let frame = |source| CallError::Frame { addr: self.addr.clone(), source };
        write_frame(stream.as_mut(), &envelope).await.map_err(frame)?;
        let answer = match read_frame::<_, Envelope<Response>>(stream.as_mut()).await.map_err(frame)? {
            Some(r) => r,
            None => return Err(CallError::Closed { addr: self.addr.clone() }),
        };
        let admission = &self.sender.admission;
        if let Err(why) = admission.check(&answer.cluster_id, answer.from, answer.directory_id) {
            tracing::warn!(peer = answer.from, %why, "controller answer refused");
            if !admission.same_cluster(&answer.cluster_id) {
                // A voter of this node's configuration is in another cluster: one of the
                // two was formatted with the wrong id, and they can never agree.
                admission.note_refusal(&format!("voter {} at {} is in another cluster: {why}", answer.from, self.addr));
            }
            return Err(CallError::Refused { addr: self.addr.clone(), why });
        }
        if let Response::Refused(why) = &answer.body {
            admission.note_refusal(&format!("node {} refused this node: {why}", answer.from));
        }
        Ok(answer.body)
    }
}

/// openraft's view of the transport.
pub struct NetworkFactory {
    pub sender: Sender,
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerNetwork;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> PeerNetwork {
        PeerNetwork { target, peer: Peer::new(target, node.addr.clone(), self.sender.clone()) }
    }
}

pub struct PeerNetwork {
    target: u64,
    peer: Peer,
}

type RpcResult<T, E = openraft::error::Infallible> = Result<T, RPCError<u64, BasicNode, RaftError<u64, E>>>;

impl PeerNetwork {
    async fn call<E: std::error::Error>(&mut self, req: Request, option: &RPCOption) -> RpcResult<Response, E> {
        match self.peer.call(req, option.hard_ttl()).await {
            Ok(Response::Refused(why)) => Err(RPCError::Unreachable(Unreachable::new(&std::io::Error::other(why)))),
            Ok(r) => Ok(r),
            Err(e @ (CallError::Connect { .. } | CallError::Refused { .. })) => {
                Err(RPCError::Unreachable(Unreachable::new(&e)))
            }
            Err(e) => Err(RPCError::Network(NetworkError::new(&e))),
        }
    }

    fn unexpected<E: std::error::Error>(&self, r: Response) -> RPCError<u64, BasicNode, RaftError<u64, E>> {
        RPCError::Network(NetworkError::new(&std::io::Error::other(format!("unexpected answer: {r:?}"))))
    }

    fn remote<E: std::error::Error>(&self, e: RaftError<u64, E>) -> RPCError<u64, BasicNode, RaftError<u64, E>> {
        RPCError::RemoteError(RemoteError::new(self.target, e))
    }
}

impl RaftNetwork<TypeConfig> for PeerNetwork {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<u64>> {
        match self.call(Request::AppendEntries(rpc), &option).await? {
            Response::AppendEntries(r) => r.map_err(|e| self.remote(e)),
            other => Err(self.unexpected(other)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<u64>, InstallSnapshotError> {
        match self.call(Request::InstallSnapshot(rpc), &option).await? {
            Response::InstallSnapshot(r) => r.map_err(|e| self.remote(e)),
            other => Err(self.unexpected(other)),
        }
    }

    async fn vote(&mut self, rpc: VoteRequest<u64>, option: RPCOption) -> RpcResult<VoteResponse<u64>> {
        match self.call(Request::Vote(rpc), &option).await? {
            Response::Vote(r) => r.map_err(|e| self.remote(e)),
            other => Err(self.unexpected(other)),
        }
    }
}
