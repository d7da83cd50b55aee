//! The quorum's state machine is the metadata image: committed entries are applied with
//! `MetadataImage::apply`, and every new image is published (a `watch`: the shards take
//! the newest, skipping any they were too slow to see). A snapshot is the image itself,
//! serialized, saved durably in `<dir>/snapshot` when built or received; a restart loads it
//! and openraft re-applies the committed entries after it.
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use openraft::storage::RaftStateMachine;
use openraft::{
    BasicNode, EntryPayload, ErrorSubject, ErrorVerb, RaftSnapshotBuilder, Snapshot, SnapshotMeta, StoredMembership,
};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::files::{read_json, write_atomic};
use super::{Applied, Entry, LogId, StorageError, TypeConfig};
use crate::metadata::MetadataImage;

const SNAPSHOT_FILE: &str = "snapshot";

#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<u64, BasicNode>,
    image: MetadataImage,
}

struct Inner {
    dir: PathBuf,
    last_applied: Option<LogId>,
    membership: StoredMembership<u64, BasicNode>,
    image: MetadataImage,
    /// The latest snapshot's bytes (a `StoredSnapshot`), as saved.
    snapshot: Option<(SnapshotMeta<u64, BasicNode>, Vec<u8>)>,
    snapshots_built: u64,
}

/// The state machine handed to openraft; clones share it (the snapshot builder is one).
#[derive(Clone)]
pub struct MetadataStateMachine {
    inner: Arc<Mutex<Inner>>,
    published: Arc<watch::Sender<Arc<MetadataImage>>>,
}

fn io_err(subject: ErrorSubject<u64>, verb: ErrorVerb, e: std::io::Error) -> StorageError {
    StorageError::from_io_error(subject, verb, e)
}

impl MetadataStateMachine {
    /// Opens the state machine in `dir`, starting from the saved snapshot if any. Returns
    /// it and the receiver of the images it applies (the first is the snapshot's).
    pub fn open(dir: &Path) -> Result<(MetadataStateMachine, watch::Receiver<Arc<MetadataImage>>), StorageError> {
        std::fs::create_dir_all(dir).map_err(|e| io_err(ErrorSubject::StateMachine, ErrorVerb::Write, e))?;
        let stored: Option<StoredSnapshot> =
            read_json(dir, SNAPSHOT_FILE).map_err(|e| io_err(ErrorSubject::Snapshot(None), ErrorVerb::Read, e))?;
        let mut inner = Inner {
            dir: dir.to_path_buf(),
            last_applied: None,
            membership: StoredMembership::default(),
            image: MetadataImage::default(),
            snapshot: None,
            snapshots_built: 0,
        };
        if let Some(s) = stored {
            let bytes = serde_json::to_vec(&s).expect("snapshots serialize");
            inner.last_applied = s.meta.last_log_id;
            inner.membership = s.meta.last_membership.clone();
            inner.image = s.image;
            inner.snapshot = Some((s.meta, bytes));
        }
        let (tx, rx) = watch::channel(Arc::new(inner.image.clone()));
        Ok((MetadataStateMachine { inner: Arc::new(Mutex::new(inner)), published: Arc::new(tx) }, rx))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A receiver of the images applied from now on.
    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.published.subscribe()
    }

    /// The image as of the last applied entry.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.published.borrow().clone()
    }

    fn publish(&self, image: MetadataImage) {
        self.published.send_replace(Arc::new(image));
    }

    fn install(&self, meta: &SnapshotMeta<u64, BasicNode>, bytes: Vec<u8>) -> Result<(), StorageError> {
        let subject = || ErrorSubject::Snapshot(Some(meta.signature()));
        let stored: StoredSnapshot = serde_json::from_slice(&bytes)
            .map_err(|e| io_err(subject(), ErrorVerb::Read, std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
        let image = {
            let mut g = self.lock();
            write_atomic(&g.dir, SNAPSHOT_FILE, &bytes, true).map_err(|e| io_err(subject(), ErrorVerb::Write, e))?;
            g.last_applied = meta.last_log_id;
            g.membership = meta.last_membership.clone();
            g.image = stored.image;
            g.image.log_index = meta.last_log_id.map_or(0, |l| l.index);
            g.snapshot = Some((meta.clone(), bytes));
            g.image.clone()
        };
        self.publish(image);
        Ok(())
    }
}

impl RaftSnapshotBuilder<TypeConfig> for MetadataStateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let mut g = self.lock();
        g.snapshots_built += 1;
        let last = g.last_applied;
        let meta = SnapshotMeta {
            last_log_id: last,
            last_membership: g.membership.clone(),
            snapshot_id: format!(
                "{}-{}-{}",
                last.map_or(0, |l| l.leader_id.term),
                last.map_or(0, |l| l.index),
                g.snapshots_built
            ),
        };
        let stored = StoredSnapshot { meta: meta.clone(), image: g.image.clone() };
        let bytes = serde_json::to_vec(&stored).expect("snapshots serialize");
        write_atomic(&g.dir, SNAPSHOT_FILE, &bytes, true)
            .map_err(|e| io_err(ErrorSubject::Snapshot(Some(meta.signature())), ErrorVerb::Write, e))?;
        g.snapshot = Some((meta.clone(), bytes.clone()));
        Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(bytes)) })
    }
}

impl RaftStateMachine<TypeConfig> for MetadataStateMachine {
    type SnapshotBuilder = MetadataStateMachine;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership<u64, BasicNode>), StorageError> {
        let g = self.lock();
        Ok((g.last_applied, g.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Applied>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut out = Vec::new();
        let image = {
            let mut g = self.lock();
            let mut changed = false;
            for entry in entries {
                g.last_applied = Some(entry.log_id);
                match entry.payload {
                    EntryPayload::Blank => {}
                    EntryPayload::Normal(cmd) => {
                        for r in &cmd.records {
                            g.image.apply(r);
                        }
                    }
                    EntryPayload::Membership(m) => {
                        g.membership = StoredMembership::new(Some(entry.log_id), m);
                    }
                }
                g.image.log_index = entry.log_id.index;
                changed = true;
                out.push(Applied { index: entry.log_id.index });
            }
            changed.then(|| g.image.clone())
        };
        if let Some(image) = image {
            self.publish(image);
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        self.install(meta, snapshot.into_inner())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let g = self.lock();
        Ok(g.snapshot
            .as_ref()
            .map(|(meta, bytes)| Snapshot { meta: meta.clone(), snapshot: Box::new(Cursor::new(bytes.clone())) }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::log_store::LogStore;
    use super::*;

    struct Builder;

    impl openraft::testing::StoreBuilder<TypeConfig, LogStore, MetadataStateMachine, tempfile::TempDir> for Builder {
        async fn build(&self) -> Result<(tempfile::TempDir, LogStore, MetadataStateMachine), StorageError> {
            let dir = tempfile::tempdir().expect("temp dir");
            let log = LogStore::open(&dir.path().join("log"))?;
            let (sm, _) = MetadataStateMachine::open(&dir.path().join("sm"))?;
            Ok((dir, log, sm))
        }
    }

    /// openraft's own storage suite, against the real files.
    #[test]
    fn passes_openraft_storage_suite() {
        openraft::testing::Suite::test_all(Builder).expect("openraft storage suite");
    }
}
