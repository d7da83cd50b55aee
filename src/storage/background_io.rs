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
//! cleaner's decoding and re-encoding time-sliced with produce and fetch on the shard's own
//! core (client p90 x3.5-4 while compacting, BENCHMARKS.md). The thread therefore moves to
//! the CPUs no shard is pinned to (`set_cpus`, from `main`), and runs under `SCHED_IDLE`
//! so that, where it must share a core with a shard, the shard preempts it as soon as it
//! wakes. `SCHED_IDLE` still gets a small share of a busy core, so background work slows
//! down under full load but never stops.
use std::sync::{mpsc, Mutex};

use futures::channel::oneshot;

type Job = Box<dyn FnOnce() + Send + 'static>;

thread_local! {
    static WORKER: std::cell::OnceCell<mpsc::Sender<Job>> = const { std::cell::OnceCell::new() };
}

/// The CPUs background threads may run on; `None`: wherever their creator may.
static CPUS: Mutex<Option<Vec<usize>>> = Mutex::new(None);

/// Sets the CPUs that background I/O threads started from now on run on: the online CPUs
/// no shard is pinned to, or all online CPUs when the shards take every one. An empty
/// list is ignored.
pub fn set_cpus(cpus: Vec<usize>) {
    if !cpus.is_empty() {
        *CPUS.lock().unwrap_or_else(|e| e.into_inner()) = Some(cpus);
    }
}

/// Moves the calling thread to the configured CPUs and to `SCHED_IDLE`. Failures are
/// logged and otherwise ignored: the thread still works, only less politely.
fn step_aside() {
    let cpus = CPUS.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if let Some(cpus) = cpus {
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
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` lives across the call, which only reads it; 0 is the calling thread.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } != 0 {
        tracing::warn!(error = %std::io::Error::last_os_error(), "background I/O thread: cannot switch to SCHED_IDLE");
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

    /// The thread leaves the shard's core: a shard pinned to CPU 0 gets a background
    /// thread that runs on the configured CPUs only (not on 0, as it would by inheritance)
    /// and under SCHED_IDLE.
    #[test]
    fn leaves_the_shards_core_and_yields_to_it() {
        let online = glommio::CpuSet::online().unwrap().into_iter().map(|l| l.cpu).collect::<Vec<_>>();
        let (shard_cpu, others) = (online[0], online[1..].to_vec());
        if others.is_empty() {
            eprintln!("one CPU online: nothing to check");
            return;
        }
        super::set_cpus(others.clone());
        let ex = glommio::LocalExecutorBuilder::new(glommio::Placement::Fixed(shard_cpu))
            .spawn(move || async move {
                let (policy, cpus) = super::run(|| {
                    // SAFETY: `set` is owned by this frame and written by the call.
                    unsafe {
                        let mut set: libc::cpu_set_t = std::mem::zeroed();
                        assert_eq!(libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set), 0);
                        let cpus = (0..libc::CPU_SETSIZE as usize).filter(|&c| libc::CPU_ISSET(c, &set)).collect::<Vec<_>>();
                        (libc::sched_getscheduler(0), cpus)
                    }
                })
                .await
                .unwrap();
                assert_eq!(policy, libc::SCHED_IDLE);
                assert_eq!(cpus, others);
            })
            .unwrap();
        ex.join().unwrap();
    }
}
