//! Fault injection for storage tests, compiled into test builds only: a thread-local (so
//! shard-local) list of faults that make matching operations of `io` fail with an errno.
//! Production builds carry no hook at all.
use std::cell::RefCell;

pub struct Fault {
    /// The operation: "fdatasync", "fallocate", "write".
    pub op: &'static str,
    /// Only paths containing this.
    pub path_contains: String,
    /// The errno to fail with.
    pub errno: i32,
}

#[derive(Default)]
struct Plan {
    faults: Vec<Fault>,
    /// When set, each successful fdatasync of a file under this path records the file's
    /// contents: what a crash cannot take away.
    record_syncs_under: Option<std::path::PathBuf>,
    synced: std::collections::HashMap<std::path::PathBuf, Vec<u8>>,
    /// How many times each faulty operation was attempted (and failed).
    failures: Vec<(&'static str, u64)>,
    /// fdatasyncs of paths containing one of these wait until `release` (a slow disk or a
    /// busy journal, as long as a test needs).
    held: Vec<String>,
}

thread_local! {
    static PLAN: RefCell<Plan> = RefCell::new(Plan::default());
}

/// From now on, every matching operation fails.
pub fn inject(f: Fault) {
    PLAN.with(|p| p.borrow_mut().faults.push(f));
}

/// From now on, fdatasyncs of paths containing `path_contains` wait until `release`.
pub fn hold_syncs(path_contains: &str) {
    PLAN.with(|p| p.borrow_mut().held.push(path_contains.to_string()));
}

/// Lets held fdatasyncs go on.
pub fn release() {
    PLAN.with(|p| p.borrow_mut().held.clear());
}

/// Waits while an fdatasync of `path` is held.
pub(super) async fn wait_if_held(path: &std::path::Path) {
    let path = path.to_string_lossy().to_string();
    while PLAN.with(|p| p.borrow().held.iter().any(|h| path.contains(h.as_str()))) {
        glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
    }
}

/// Removes every fault (the failure counts stay).
pub fn clear() {
    PLAN.with(|p| p.borrow_mut().faults.clear());
}

/// How many `op`s have failed by injection on this thread.
pub fn failures(op: &str) -> u64 {
    PLAN.with(|p| p.borrow().failures.iter().filter(|(o, _)| *o == op).map(|(_, n)| n).sum())
}

/// Records, from now on, the contents of every file under `dir` as of its last fdatasync.
pub fn record_syncs_under(dir: &std::path::Path) {
    PLAN.with(|p| p.borrow_mut().record_syncs_under = Some(dir.to_path_buf()));
}

/// The contents of `path` as of its last fdatasync, if it had one.
pub fn synced_contents(path: &std::path::Path) -> Option<Vec<u8>> {
    PLAN.with(|p| p.borrow().synced.get(path).cloned())
}

pub(super) fn synced(path: &std::path::Path) {
    PLAN.with(|p| {
        let mut p = p.borrow_mut();
        if p.record_syncs_under.as_ref().is_some_and(|d| path.starts_with(d)) {
            if let Ok(bytes) = std::fs::read(path) {
                p.synced.insert(path.to_path_buf(), bytes);
            }
        }
    })
}

pub(super) fn check(op: &'static str, path: &std::path::Path) -> std::io::Result<()> {
    PLAN.with(|p| {
        let mut p = p.borrow_mut();
        let path = path.to_string_lossy();
        let Some(errno) = p.faults.iter().find(|f| f.op == op && path.contains(&f.path_contains)).map(|f| f.errno)
        else {
            return Ok(());
        };
        match p.failures.iter_mut().find(|(o, _)| *o == op) {
            Some((_, n)) => *n += 1,
            None => p.failures.push((op, 1)),
        }
        Err(std::io::Error::from_raw_os_error(errno))
    })
}
