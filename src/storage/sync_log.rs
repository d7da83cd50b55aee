//! A hook for the multi-process tests that simulate losing power (`tests/replication.rs`):
//! with `SLUICE_TEST_SYNC_LOG=<file>` in the environment, every group commit that succeeds
//! appends `<partition dir>\t<offset>` to that file: everything below the offset is on the
//! disk. A test kills the brokers, cuts each log back to its last such offset (what losing
//! power would leave) and checks that nothing acknowledged is missing. Unset, as in
//! production, it costs one check of a lazily read variable per fdatasync.
//! `SLUICE_TEST_SYNC_DELAY_MS` makes every group commit wait that long before its
//! fdatasync (a slow disk), so that a kill finds written but unsynced data on every replica.
use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use crate::model::Offset;

static LOG: OnceLock<Option<Mutex<std::fs::File>>> = OnceLock::new();

/// Notes that `dir`'s log is durable below `offset`.
pub fn note(dir: &Path, offset: Offset) {
    let log = LOG.get_or_init(|| {
        let path = std::env::var_os("SLUICE_TEST_SYNC_LOG")?;
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&path);
        Some(Mutex::new(file.unwrap_or_else(|e| panic!("SLUICE_TEST_SYNC_LOG {path:?}: {e}"))))
    });
    if let Some(file) = log {
        // One write per line: appends of a few bytes do not interleave.
        let line = format!("{}\t{}\n", dir.display(), offset.0);
        let _ = file.lock().unwrap_or_else(|p| p.into_inner()).write_all(line.as_bytes());
    }
}

static DELAY: OnceLock<Option<std::time::Duration>> = OnceLock::new();

/// How long a group commit waits before its fdatasync (`SLUICE_TEST_SYNC_DELAY_MS`; none
/// when unset).
pub fn delay() -> Option<std::time::Duration> {
    *DELAY.get_or_init(|| {
        let ms = std::env::var("SLUICE_TEST_SYNC_DELAY_MS").ok()?.parse().ok()?;
        Some(std::time::Duration::from_millis(ms))
    })
}
