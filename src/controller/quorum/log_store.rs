//! The quorum's durable log: `<dir>/log` holds entries framed `[u32 length][u32 crc32c]
//! [json entry]`, appended and fdatasync'ed before openraft is told they are persisted;
//! `vote` and `purged` are small files replaced atomically (`files`). The metadata log is
//! small (topics, partitions, registrations), so every entry since the last snapshot is
//! also kept in memory and reads never touch the disk.
//!
//! The I/O is plain blocking `std::fs` on the controller thread: entries are a few hundred
//! bytes, the thread serves nothing latency-sensitive (produce and fetch run on the
//! shards), and openraft requires the writes to be serialized anyway.
use std::collections::VecDeque;
use std::fmt::Debug;
use std::fs::File;
use std::ops::{Bound, RangeBounds};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, RaftLogReader};

use super::files::{read_json, write_atomic};
use super::{Entry, LogId, StorageError, TypeConfig, Vote};
use crate::limits;

const LOG_FILE: &str = "log";
const VOTE_FILE: &str = "vote";
const PURGED_FILE: &str = "purged";
const COMMITTED_FILE: &str = "committed";
const FRAME_HEADER: usize = 8;

fn io_err(subject: ErrorSubject<u64>, verb: ErrorVerb, e: std::io::Error) -> StorageError {
    StorageError::from_io_error(subject, verb, e)
}

struct Inner {
    dir: PathBuf,
    file: File,
    /// Bytes of valid frames in `file` (where the next one goes).
    file_len: u64,
    /// Entries after the purge point, contiguous by index, each with its frame's position.
    entries: VecDeque<(Entry, u64)>,
    purged: Option<LogId>,
    vote: Option<Vote>,
    committed: Option<LogId>,
}

/// The log store handed to openraft; clones share one log.
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Mutex<Inner>>,
}

impl LogStore {
    /// Opens (or creates) the log in `dir`. A torn or corrupt tail (a crash mid-append) is
    /// cut off: those entries were never reported persisted.
    pub fn open(dir: &Path) -> Result<LogStore, StorageError> {
        let io = |verb, e| io_err(ErrorSubject::Logs, verb, e);
        std::fs::create_dir_all(dir).map_err(|e| io(ErrorVerb::Write, e))?;
        let path = dir.join(LOG_FILE);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io(ErrorVerb::Read, e))?;
        let data = std::fs::read(&path).map_err(|e| io(ErrorVerb::Read, e))?;
        let purged: Option<LogId> = read_json(dir, PURGED_FILE).map_err(|e| io(ErrorVerb::Read, e))?;
        let vote = read_json(dir, VOTE_FILE).map_err(|e| io_err(ErrorSubject::Vote, ErrorVerb::Read, e))?;
        let committed = read_json(dir, COMMITTED_FILE).map_err(|e| io(ErrorVerb::Read, e))?;
        let mut entries: VecDeque<(Entry, u64)> = VecDeque::new();
        let mut pos = 0usize;
        while pos + FRAME_HEADER <= data.len() {
            let len = u32::from_be_bytes(data[pos..pos + 4].try_into().unwrap()) as usize;
            let crc = u32::from_be_bytes(data[pos + 4..pos + 8].try_into().unwrap());
            if len > limits::CONTROLLER_FRAME_MAX {
                break;
            }
            let Some(body) = data.get(pos + FRAME_HEADER..pos + FRAME_HEADER + len) else { break };
            if crc32c::crc32c(body) != crc {
                break;
            }
            let Ok(entry) = serde_json::from_slice::<Entry>(body) else { break };
            // A rewrite after a purge may leave the purged prefix behind if it was cut short.
            let keep = purged.is_none_or(|p: LogId| entry.log_id.index > p.index);
            // An entry that does not follow the one before is where an earlier truncation's
            // tail begins (a crash between the cut and its sync): the rest is not the log.
            if keep && entries.back().is_some_and(|(e, _)| e.log_id.index + 1 != entry.log_id.index) {
                break;
            }
            if keep {
                entries.push_back((entry, pos as u64));
            }
            pos += FRAME_HEADER + len;
        }
        if pos < data.len() {
            tracing::warn!(path = %path.display(), dropped_bytes = data.len() - pos, "controller log had a torn tail; truncated");
            file.set_len(pos as u64).map_err(|e| io(ErrorVerb::Write, e))?;
            file.sync_data().map_err(|e| io(ErrorVerb::Write, e))?;
        }
        let inner = Inner { dir: dir.to_path_buf(), file, file_len: pos as u64, entries, purged, vote, committed };
        Ok(LogStore { inner: Arc::new(Mutex::new(inner)) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// True if nothing was ever written (no vote, no entry): a node that was never part of
    /// a quorum, or whose metadata was wiped.
    pub fn is_pristine(&self) -> bool {
        let g = self.lock();
        g.vote.is_none() && g.entries.is_empty() && g.purged.is_none()
    }
}

impl Inner {
    fn last_log_id(&self) -> Option<LogId> {
        self.entries.back().map(|(e, _)| e.log_id).or(self.purged)
    }

    fn range(&self, range: impl RangeBounds<u64>) -> Vec<Entry> {
        let Some(first) = self.entries.front().map(|(e, _)| e.log_id.index) else { return Vec::new() };
        let start = match range.start_bound() {
            Bound::Included(&s) => s,
            Bound::Excluded(&s) => s + 1,
            Bound::Unbounded => first,
        }
        .max(first);
        let end = match range.end_bound() {
            Bound::Included(&e) => e.saturating_add(1),
            Bound::Excluded(&e) => e,
            Bound::Unbounded => u64::MAX,
        };
        let mut out = Vec::new();
        let mut i = start;
        while i < end {
            match self.entries.get((i - first) as usize) {
                Some((e, _)) => out.push(e.clone()),
                None => break,
            }
            i += 1;
        }
        out
    }

    fn append(&mut self, entries: Vec<Entry>) -> Result<(), StorageError> {
        let mut bytes = Vec::new();
        let mut placed = Vec::with_capacity(entries.len());
        let mut expect = self.entries.back().map(|(e, _)| e.log_id.index + 1);
        for entry in entries {
            if let Some(next) = expect {
                assert_eq!(entry.log_id.index, next, "controller log entries must be contiguous");
            }
            expect = Some(entry.log_id.index + 1);
            let json = serde_json::to_vec(&entry).expect("log entries serialize");
            let pos = self.file_len + bytes.len() as u64;
            bytes.extend_from_slice(&(json.len() as u32).to_be_bytes());
            bytes.extend_from_slice(&crc32c::crc32c(&json).to_be_bytes());
            bytes.extend_from_slice(&json);
            placed.push((entry, pos));
        }
        let subject = || ErrorSubject::Logs;
        self.file.write_all_at(&bytes, self.file_len).map_err(|e| io_err(subject(), ErrorVerb::Write, e))?;
        self.file.sync_data().map_err(|e| io_err(subject(), ErrorVerb::Write, e))?;
        self.file_len += bytes.len() as u64;
        self.entries.extend(placed);
        Ok(())
    }

    /// Removes entries from `index` on, from memory and from the file.
    fn truncate(&mut self, index: u64) -> Result<(), StorageError> {
        let Some(first) = self.entries.front().map(|(e, _)| e.log_id.index) else { return Ok(()) };
        let keep = index.saturating_sub(first) as usize;
        let Some(&(_, pos)) = self.entries.get(keep) else { return Ok(()) };
        let io = |e| io_err(ErrorSubject::LogIndex(index), ErrorVerb::Delete, e);
        self.file.set_len(pos).map_err(io)?;
        self.file.sync_data().map_err(io)?;
        self.file_len = pos;
        self.entries.truncate(keep);
        Ok(())
    }

    /// Forgets entries up to `log_id` (a snapshot covers them). The purge point is saved
    /// first; the file is rewritten without them once they are most of it.
    fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let io = |e| io_err(ErrorSubject::Log(log_id), ErrorVerb::Delete, e);
        write_atomic(&self.dir, PURGED_FILE, &serde_json::to_vec(&log_id).expect("log ids serialize"), true)
            .map_err(io)?;
        self.purged = Some(log_id);
        while self.entries.front().is_some_and(|(e, _)| e.log_id.index <= log_id.index) {
            self.entries.pop_front();
        }
        let live_from = self.entries.front().map(|&(_, p)| p).unwrap_or(self.file_len);
        if live_from > limits::CONTROLLER_LOG_REWRITE_BYTES && live_from * 2 > self.file_len {
            self.rewrite().map_err(io)?;
        }
        Ok(())
    }

    /// Writes the live entries to a new file that replaces the log.
    fn rewrite(&mut self) -> std::io::Result<()> {
        let live_from = self.entries.front().map(|&(_, p)| p).unwrap_or(self.file_len);
        let mut tail = vec![0u8; (self.file_len - live_from) as usize];
        self.file.read_exact_at(&mut tail, live_from)?;
        write_atomic(&self.dir, LOG_FILE, &tail, true)?;
        self.file = std::fs::OpenOptions::new().read(true).write(true).open(self.dir.join(LOG_FILE))?;
        self.file_len = tail.len() as u64;
        for (_, pos) in self.entries.iter_mut() {
            *pos -= live_from;
        }
        Ok(())
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        Ok(self.lock().range(range))
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let g = self.lock();
        Ok(LogState { last_purged_log_id: g.purged, last_log_id: g.last_log_id() })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let mut g = self.lock();
        let bytes = serde_json::to_vec(vote).expect("votes serialize");
        write_atomic(&g.dir, VOTE_FILE, &bytes, true).map_err(|e| io_err(ErrorSubject::Vote, ErrorVerb::Write, e))?;
        g.vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        Ok(self.lock().vote)
    }

    /// Saved so that a restarted node re-applies what it knows was committed before it
    /// answers anything (its image is then at least as new as what it last served).
    /// Not fdatasync'ed: an older pointer after a crash only means less is re-applied
    /// at start, and the leader's next commit brings the rest.
    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        let mut g = self.lock();
        let bytes = serde_json::to_vec(&committed).expect("log ids serialize");
        write_atomic(&g.dir, COMMITTED_FILE, &bytes, false)
            .map_err(|e| io_err(ErrorSubject::Store, ErrorVerb::Write, e))?;
        g.committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.lock().committed)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let r = self.lock().append(entries.into_iter().collect());
        match r {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(e)
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.lock().truncate(log_id.index)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.lock().purge(log_id)
    }
}

#[cfg(test)]
mod tests {
    use openraft::storage::RaftLogStorage;
    use openraft::{CommittedLeaderId, EntryPayload, RaftLogReader};

    use super::*;
    use crate::controller::quorum::MetadataCommand;

    fn entry(term: u64, index: u64) -> Entry {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(term, 1), index),
            payload: EntryPayload::Normal(MetadataCommand { records: Vec::new() }),
        }
    }

    fn append(store: &LogStore, entries: Vec<Entry>) {
        store.lock().append(entries).unwrap();
    }

    fn indexes(store: &mut LogStore) -> Vec<u64> {
        futures::executor::block_on(store.try_get_log_entries(..)).unwrap().iter().map(|e| e.log_id.index).collect()
    }

    #[test]
    fn survives_reopening_truncation_purge_and_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = LogStore::open(dir.path()).unwrap();
        assert!(store.is_pristine());
        append(&store, (0..10).map(|i| entry(1, i)).collect());
        futures::executor::block_on(store.save_vote(&Vote::new(2, 1))).unwrap();
        futures::executor::block_on(store.truncate(LogId::new(CommittedLeaderId::new(1, 1), 7))).unwrap();
        append(&store, vec![entry(2, 7), entry(2, 8)]);
        futures::executor::block_on(store.purge(LogId::new(CommittedLeaderId::new(1, 1), 2))).unwrap();
        drop(store);

        let mut store = LogStore::open(dir.path()).unwrap();
        assert_eq!(indexes(&mut store), (3..9).collect::<Vec<_>>(), "truncated at 7, purged through 2");
        assert_eq!(futures::executor::block_on(store.read_vote()).unwrap(), Some(Vote::new(2, 1)));
        let state = futures::executor::block_on(store.get_log_state()).unwrap();
        assert_eq!(state.last_log_id.unwrap().index, 8);
        assert_eq!(state.last_purged_log_id.unwrap().index, 2);
        drop(store);

        // A crash mid-append leaves part of a frame: it is cut off, the rest stays.
        let path = dir.path().join(LOG_FILE);
        let len = std::fs::metadata(&path).unwrap().len();
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(len - 5).unwrap();
        let mut store = LogStore::open(dir.path()).unwrap();
        assert_eq!(indexes(&mut store), (3..8).collect::<Vec<_>>());
        append(&store, vec![entry(3, 8)]);
        drop(store);
        let mut store = LogStore::open(dir.path()).unwrap();
        assert_eq!(indexes(&mut store), (3..9).collect::<Vec<_>>());
    }
}
