//! A task's last waker dropped on another thread while its executor drops the task's join
//! handle (vendor/glommio/SLUICE-PATCH.md, second fix). Shards wake each other's tasks
//! this way on every cross-shard request: the reply's `oneshot` holds the waiting task's
//! waker and is dropped on the replying shard.
//!
//! With glommio 0.9.0, a foreign drop of the last waker took the count to zero and then
//! back to one to send the task home; a join handle dropped in between saw zero references
//! and freed the task, and the foreign thread then wrote to and queued the freed task,
//! which was freed a second time when the queue was drained. The process aborted
//! ("double free or corruption", once in CI), crashed, or panicked in glommio's waker
//! invariant check (caught and logged there, so the test counts panics). The two threads
//! here meet at that point 300 000 times at delays swept over the microseconds around it;
//! without the fix it crashes or panics in every run.
use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

const ROUNDS: u32 = 300_000;
/// Delays before the foreign drop, in spin-loop iterations, swept round by round: about
/// 0 to 4 µs, where the executor drops the handle.
const DELAY_SPINS_MAX: u32 = 64;
const TIMEOUT: Duration = Duration::from_secs(60);

#[test]
fn last_waker_dropped_on_another_thread_while_the_handle_is_dropped() {
    // glommio catches panics of foreign wakes it runs, so they are counted here.
    static PANICS: AtomicUsize = AtomicUsize::new(0);
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::Relaxed);
        default_hook(info);
    }));
    let slot: Arc<AtomicPtr<Waker>> = Arc::new(AtomicPtr::new(std::ptr::null_mut()));
    let done = Arc::new(AtomicBool::new(false));

    // The foreign thread: takes each waker as soon as it is published, waits a little, drops it.
    let dropper = {
        let (slot, done) = (slot.clone(), done.clone());
        std::thread::spawn(move || {
            let mut round = 0u32;
            while !done.load(Ordering::Acquire) {
                let p = slot.swap(std::ptr::null_mut(), Ordering::AcqRel);
                if p.is_null() {
                    std::hint::spin_loop();
                    continue;
                }
                // SAFETY: `p` came from `Box::into_raw` on the executor thread and was taken
                // out of the slot exactly once.
                let waker = unsafe { Box::from_raw(p) };
                round = round.wrapping_add(1);
                for _ in 0..(round.wrapping_mul(7919) % DELAY_SPINS_MAX) {
                    std::hint::spin_loop();
                }
                drop(waker);
            }
        })
    };

    let (finished, finish) = std::sync::mpsc::channel();
    let executor = {
        let slot = slot.clone();
        std::thread::spawn(move || {
            let ex = glommio::LocalExecutorBuilder::default().make().unwrap();
            ex.run(async move {
                let started = Instant::now();
                for _ in 0..ROUNDS {
                    assert!(started.elapsed() < TIMEOUT, "rounds did not finish within {TIMEOUT:?}");
                    let slot = slot.clone();
                    // A task that hands its waker to the other thread and completes at
                    // once: that waker becomes its last reference.
                    let task = glommio::spawn_local(poll_fn(move |cx| {
                        let p = Box::into_raw(Box::new(cx.waker().clone()));
                        while slot
                            .compare_exchange(std::ptr::null_mut(), p, Ordering::AcqRel, Ordering::Acquire)
                            .is_err()
                        {
                            std::hint::spin_loop();
                        }
                        Poll::Ready(())
                    }));
                    // Awaiting and dropping the handle races the foreign drop.
                    task.await;
                    // Let queued foreign wakes drain now and then.
                    glommio::yield_if_needed().await;
                }
            });
            let _ = finished.send(());
        })
    };

    // A corrupted executor can also spin forever: the wait has its own deadline.
    if finish.recv_timeout(TIMEOUT + Duration::from_secs(10)).is_err() && !executor.is_finished() {
        panic!("the executor neither finished nor failed within {TIMEOUT:?}");
    }
    let result = executor.join();
    done.store(true, Ordering::Release);
    dropper.join().unwrap();
    result.unwrap();
    assert_eq!(PANICS.load(Ordering::Relaxed), 0, "panics (above) while tasks were woken and dropped");
}
