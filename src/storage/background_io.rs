//! Blocking file work of retention and compaction (unlinking old segments, writing and
//! syncing cleaned ones) on a thread of its own, one per shard, started on first use.
//!
//! Why not glommio's `spawn_blocking`: that pool (one thread per executor) also runs the
//! writer's own blocking calls (the ftruncate that trims a segment when it rolls), so a
//! retention pass unlinking dozens of segments, or a cleaned segment's fsync, queued the
//! next roll behind it and stalled produce for tens of milliseconds (BENCHMARKS.md,
//! "Retention and compaction against produce→fetch latency"). Background work now waits
//! only for other background work.
use std::sync::mpsc;

use futures::channel::oneshot;

type Job = Box<dyn FnOnce() + Send + 'static>;

thread_local! {
    static WORKER: std::cell::OnceCell<mpsc::Sender<Job>> = const { std::cell::OnceCell::new() };
}

fn start_worker() -> mpsc::Sender<Job> {
    let (tx, rx) = mpsc::channel::<Job>();
    let name = format!("{}-bg", std::thread::current().name().unwrap_or("sluice"));
    std::thread::Builder::new()
        .name(name)
        .spawn(move || {
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
}
