//! Blocking file work of retention and compaction (unlinking old segments, writing and
//! syncing cleaned ones) on a thread of its own, one per shard, started on first use.
//!
//! Why not glommio's `spawn_blocking`: that pool (one thread per executor) also runs the
//! writer's own blocking calls (the ftruncate that trims a segment when it rolls), so a
//! retention pass unlinking dozens of segments, or a cleaned segment's fsync, queued the
//! next roll behind it and stalled produce for tens of milliseconds (BENCHMARKS.md,
//! "Retention and compaction against produce→fetch latency"). Background work now waits
//! only for other background work.
//!
//! Where it runs: a thread spawned from a shard inherits the shard's pinning, so the
//! cleaner's reading, decoding and re-encoding time-sliced with produce and fetch on the
//! shard's own core (client p90 x3.5-4 while compacting, BENCHMARKS.md). The thread
//! therefore moves to the CPUs no shard is pinned to (`set_placement`, from `main`). When
//! the shards take every CPU it shares them all at nice 19, the lowest share of normal
//! scheduling. Not `SCHED_IDLE`, although that would let a waking shard preempt it at
//! once: under full load an idle-class thread runs only every few hundred milliseconds,
//! and preempted inside the file system (an open journal handle, a directory lock during
//! an unlink or rename) it would hold up every shard's fdatasync that long.
use std::sync::{mpsc, Mutex};

use futures::channel::oneshot;

type Job = Box<dyn FnOnce() + Send + 'static>;

thread_local! {
    static WORKER: std::cell::OnceCell<mpsc::Sender<Job>> = const { std::cell::OnceCell::new() };
}

/// Where background I/O threads run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// Wherever their creator may (the default: tests, tools).
    Inherit,
    /// On these CPUs, which no shard is pinned to, at normal priority.
    Free(Vec<usize>),
    /// On these CPUs, shared with shards, at nice 19.
    Shared(Vec<usize>),
}

static PLACEMENT: Mutex<Placement> = Mutex::new(Placement::Inherit);

/// Sets where background I/O threads started from now on run.
pub fn set_placement(p: Placement) {
    *PLACEMENT.lock().unwrap_or_else(|e| e.into_inner()) = p;
}

/// The CPUs no shard is pinned to, when there are any.
pub(crate) fn free_cpus() -> Option<Vec<usize>> {
    match &*PLACEMENT.lock().unwrap_or_else(|e| e.into_inner()) {
        Placement::Free(cpus) => Some(cpus.clone()),
        _ => None,
    }
}

/// Moves the calling thread as `PLACEMENT` says. Failures are logged and otherwise
/// ignored: the thread still works, only less politely.
fn step_aside() {
    let placement = PLACEMENT.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let (cpus, nice) = match placement {
        Placement::Inherit => return,
        Placement::Free(cpus) => (cpus, 0),
        Placement::Shared(cpus) => (cpus, 19),
    };
    if !cpus.is_empty() {
        // SAFETY: `set` is a plain bit set owned by this frame; the calls only read it.
        let rc = unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            for &c in &cpus {
                libc::CPU_SET(c, &mut set);
            }
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
        };
        if rc != 0 {
            tracing::warn!(?cpus, error = %std::io::Error::last_os_error(), "background I/O thread: cannot set its CPUs");
        }
    }
    // SAFETY: plain syscalls on the calling thread (a thread id is a process id to them).
    if nice != 0 && unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, nice) } != 0 {
        tracing::warn!(error = %std::io::Error::last_os_error(), "background I/O thread: cannot lower its priority");
    }
}

fn start_worker() -> mpsc::Sender<Job> {
    let (tx, rx) = mpsc::channel::<Job>();
    // "sluice-shard-3" -> "sluice-bg-3": within the 15 characters Linux keeps of a name.
    let name = std::thread::current().name().unwrap_or("sluice").replace("shard", "bg");
    std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            step_aside();
            // Ends when the shard's sender goes, with its thread. A job that panics is
            // reported to its caller (its result channel closes); the thread goes on.
            for job in rx {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            }
        })
        .expect("spawn the background I/O thread");
    tx
}

/// Runs `f` on this shard's background I/O thread and waits for its result without
/// blocking the shard. An error only if `f` panicked.
pub async fn run<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> std::io::Result<T> {
    let (done, result) = oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = done.send(f());
    });
    let sent = WORKER.with(|w| w.get_or_init(start_worker).send(job).is_ok());
    if !sent {
        return Err(std::io::Error::other("the background I/O thread is gone"));
    }
    result.await.map_err(|_| std::io::Error::other("a background I/O job panicked"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn runs_off_the_executor_thread_and_returns_the_result() {
        let ex = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .spawn(|| async {
                let here = std::thread::current().id();
                let (there, sum) = super::run(|| (std::thread::current().id(), 2 + 3)).await.unwrap();
                assert_ne!(here, there);
                assert_eq!(sum, 5);
                // Jobs run in order on one thread.
                let a = super::run(|| std::thread::current().id()).await.unwrap();
                assert_eq!(a, there);
                // A job that panics is an error for its caller; the thread goes on.
                assert!(super::run(|| panic!("boom")).await.is_err());
                assert_eq!(super::run(|| 7).await.unwrap(), 7);
            })
            .unwrap();
        ex.join().unwrap();
    }

    /// What a job sees of its thread: (nice value, CPUs it may run on).
    fn where_am_i() -> (i32, Vec<usize>) {
        // SAFETY: `set` is owned by this frame and written by the call; getpriority only
        // reads the calling thread's priority.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            assert_eq!(libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set), 0);
            let cpus = (0..libc::CPU_SETSIZE as usize).filter(|&c| libc::CPU_ISSET(c, &set)).collect();
            (libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t), cpus)
        }
    }

    /// The thread leaves the shard's core: from a shard pinned to one CPU, the background
    /// thread runs on the free CPUs only (not on the shard's, as it would by inheritance),
    /// at normal priority; told to share every CPU, it does so at nice 19.
    #[test]
    fn leaves_the_shards_core_or_shares_it_at_the_lowest_priority() {
        use super::Placement;
        let online = glommio::CpuSet::online().unwrap().into_iter().map(|l| l.cpu).collect::<Vec<_>>();
        let (shard_cpu, free) = (online[0], online[1..].to_vec());
        if free.is_empty() {
            eprintln!("one CPU online: nothing to check");
            return;
        }
        for (placement, want) in [
            (Placement::Free(free.clone()), (0, free.clone())),
            (Placement::Shared(online.clone()), (19, online.clone())),
        ] {
            super::set_placement(placement);
            let got = glommio::LocalExecutorBuilder::new(glommio::Placement::Fixed(shard_cpu))
                .spawn(|| async { super::run(where_am_i).await.unwrap() })
                .unwrap()
                .join()
                .unwrap();
            let mut want = want;
            want.1.sort();
            assert_eq!(got, want);
        }
        super::set_placement(Placement::Inherit);
    }
}
