//! The controller listener's transport: Raft messages between voters, and brokers'
//! requests to the active controller (forwarded admin operations, registration,
//! heartbeats). Sluice's own framing, as DESIGN §6 allows: `[u32 length][json]`, one
//! request and its response at a time per connection. Frames are bounded
//! (`limits::CONTROLLER_FRAME_MAX`), every envelope names its cluster and sender, and a
//! frame that does not parse closes the connection: the same rules as the Kafka listener.
pub mod client;
pub mod secure;
pub mod server;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use uuid::Uuid;

use crate::controller::ops::{ControllerError, ControllerOp, ControllerResult};
use crate::controller::quorum::TypeConfig;
use crate::limits;
use crate::metadata::MetadataImage;

/// Every request and every response names the cluster and the node it comes from, and
/// that node's metadata directory id: a node whose metadata was wiped comes back with a new
/// one, and the nodes that knew it refuse it both ways (`Admission`), so it cannot vote a
/// second time in a term it already voted in.
#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope<T> {
    pub cluster_id: String,
    pub from: u64,
    pub directory_id: Uuid,
    /// The directory the sender knows the receiver by, if any: a node that finds another
    /// id here than its own was wiped and formatted again, and stops (the quorum knows it
    /// by its old directory).
    #[serde(default)]
    pub to_directory: Option<Uuid>,
    pub body: T,
}

#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    AppendEntries(openraft::raft::AppendEntriesRequest<TypeConfig>),
    Vote(openraft::raft::VoteRequest<u64>),
    InstallSnapshot(openraft::raft::InstallSnapshotRequest<TypeConfig>),
    /// An operation a broker forwards to the active controller: admin requests, its
    /// registration, its heartbeats.
    Execute(ControllerOp),
    /// A broker that is not a voter (`process.roles=broker`) follows the metadata: the
    /// image once it is newer than `have_index` (a long poll, answered within
    /// `limits::CONTROLLER_IMAGE_POLL`).
    FetchImage {
        have_index: u64,
    },
    /// The first request on a SASL controller listener (`secure`): a PLAIN token.
    Authenticate {
        mechanism: String,
        token: Vec<u8>,
    },
}

type RaftErr<E = openraft::error::Infallible> = openraft::error::RaftError<u64, E>;

#[derive(Debug, Serialize, Deserialize)]
pub enum Response {
    AppendEntries(Result<openraft::raft::AppendEntriesResponse<u64>, RaftErr>),
    Vote(Result<openraft::raft::VoteResponse<u64>, RaftErr>),
    InstallSnapshot(
        Result<openraft::raft::InstallSnapshotResponse<u64>, RaftErr<openraft::error::InstallSnapshotError>>,
    ),
    /// The operation's result and the metadata log index that holds it: the forwarding
    /// broker answers its client once its own image has reached that index.
    Executed {
        result: Result<ControllerResult, ControllerError>,
        index: u64,
    },
    /// The voter's image if newer than asked for, and the active controller it knows.
    Image {
        image: Option<Box<MetadataImage>>,
        leader: Option<u64>,
    },
    /// This node is not the active controller; try `leader` (its node id) if known.
    NotController {
        leader: Option<u64>,
    },
    /// The request was refused (another cluster, a wiped voter, a failed login): why.
    Refused(String),
    /// The login was accepted.
    Authenticated,
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {0} bytes is over the limit")]
    TooLarge(usize),
    #[error("malformed frame: {0}")]
    Malformed(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Which peers this node talks to: same cluster, and each peer with the metadata directory
/// it first came with (trust on first use, kept in `<dir>/peers`).
pub struct Admission {
    cluster_id: String,
    dir: std::path::PathBuf,
    known: std::sync::Mutex<std::collections::BTreeMap<u64, Uuid>>,
    /// The last refusal a peer sent this node: why it cannot take part (shown at start-up).
    pub refused_by_peer: std::sync::Mutex<Option<String>>,
}

const PEERS_FILE: &str = "peers";

impl Admission {
    pub fn open(cluster_id: &str, dir: &std::path::Path) -> std::io::Result<Admission> {
        let known = crate::controller::quorum::files::read_json(dir, PEERS_FILE)?.unwrap_or_default();
        Ok(Admission {
            cluster_id: cluster_id.to_string(),
            dir: dir.to_path_buf(),
            known: std::sync::Mutex::new(known),
            refused_by_peer: std::sync::Mutex::new(None),
        })
    }

    pub fn check(&self, cluster_id: &str, from: u64, directory_id: Uuid) -> Result<(), String> {
        if cluster_id != self.cluster_id {
            return Err(format!("node {from} belongs to cluster {cluster_id}, not to cluster {}", self.cluster_id));
        }
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        match known.get(&from) {
            Some(d) if *d == directory_id => Ok(()),
            Some(d) => Err(format!(
                "node {from} came with metadata directory {directory_id}, but was known with {d}: its metadata was wiped or replaced, and it may not rejoin the quorum"
            )),
            None => {
                known.insert(from, directory_id);
                let bytes = serde_json::to_vec(&*known).expect("ids serialize");
                crate::controller::quorum::files::write_atomic(&self.dir, PEERS_FILE, &bytes, true)
                    .map_err(|e| format!("cannot save {}: {e}", self.dir.join(PEERS_FILE).display()))
            }
        }
    }

    pub fn same_cluster(&self, cluster_id: &str) -> bool {
        cluster_id == self.cluster_id
    }

    /// The directory `node` is known by, if it was seen.
    pub fn known(&self, node: u64) -> Option<Uuid> {
        self.known.lock().unwrap_or_else(|p| p.into_inner()).get(&node).copied()
    }

    pub fn note_refusal(&self, why: &str) {
        *self.refused_by_peer.lock().unwrap_or_else(|p| p.into_inner()) = Some(why.to_string());
    }
}

pub async fn write_frame<W: AsyncWrite + Unpin + ?Sized, T: Serialize>(w: &mut W, value: &T) -> Result<(), FrameError> {
    let json = serde_json::to_vec(value).map_err(|e| FrameError::Malformed(e.to_string()))?;
    if json.len() > limits::CONTROLLER_FRAME_MAX {
        return Err(FrameError::TooLarge(json.len()));
    }
    let mut buf = Vec::with_capacity(4 + json.len());
    buf.extend_from_slice(&(json.len() as u32).to_be_bytes());
    buf.extend_from_slice(&json);
    w.write_all(&buf).await?;
    w.flush().await?;
    Ok(())
}

/// Reads one frame; `Ok(None)` at a clean end of stream.
pub async fn read_frame<R: AsyncRead + Unpin + ?Sized, T: serde::de::DeserializeOwned>(
    r: &mut R,
) -> Result<Option<T>, FrameError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > limits::CONTROLLER_FRAME_MAX {
        return Err(FrameError::TooLarge(len));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    serde_json::from_slice(&body).map(Some).map_err(|e| FrameError::Malformed(e.to_string()))
}
