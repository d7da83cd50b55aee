//! The executor never parks while a task is runnable (vendor/glommio/SLUICE-PATCH.md).
//! With glommio 0.9.0 from crates.io, an executor that found a preemption pending before it
//! ran anything parked with the woken task still queued, until some later I/O or timer:
//! the storage simulation stalled in an `openat`/`statx` whose completion had already woken
//! its task. A 1 ns preempt timer makes a preemption pending on nearly every tick.
use std::sync::mpsc;
use std::time::Duration;

#[test]
fn runnable_tasks_run_even_when_a_preemption_is_pending() {
    let (tx, rx) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        let ex = glommio::LocalExecutorBuilder::default().preempt_timer(Duration::from_nanos(1)).make().unwrap();
        for i in 0..1_000 {
            // A task that is woken from I/O, then one that only needs to run.
            ex.run(async {
                glommio::timer::sleep(Duration::from_micros(10)).await;
            });
            ex.run(async {});
            let _ = tx.send(i);
        }
    });
    let mut last = None;
    while last != Some(999) {
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(i) => last = Some(i),
            Err(_) => panic!("the executor stopped running runnable tasks after {last:?} of 1000 runs"),
        }
    }
    worker.join().unwrap();
}
