//! The cross-shard message pump: each message from a peer runs as its own task (so one
//! slow request does not hold up the others), but only so many at once. A receiver takes
//! the next message from its channel only once a permit is free, so when a shard is
//! saturated its channels fill and the senders wait: the channel bound is backpressure,
//! not a queue of detached tasks that grows without limit.
//!
//! Long polls (`WaitForData`) have permits of their own: a crowd of idle consumers
//! waiting up to `fetch.max.wait.ms` must not take the permits that produce needs.
use std::future::Future;
use std::rc::Rc;

use futures::{Stream, StreamExt};
use glommio::sync::Semaphore;
use glommio::TaskQueueHandle;

/// Permits for the work a shard runs for its peers.
pub struct PumpPermits {
    work: Rc<Semaphore>,
    waits: Rc<Semaphore>,
}

impl PumpPermits {
    pub fn new(work: usize, waits: usize) -> PumpPermits {
        PumpPermits { work: Rc::new(Semaphore::new(work as u64)), waits: Rc::new(Semaphore::new(waits as u64)) }
    }

    /// Pumps `messages` until the stream ends: for each, waits for a permit of its kind
    /// (`is_wait`), then spawns `run(message)` in the queue `queue_of` picks, holding the
    /// permit until it completes.
    pub async fn pump<M, S, F, Fut>(
        &self,
        mut messages: S,
        is_wait: impl Fn(&M) -> bool,
        queue_of: impl Fn(&M) -> TaskQueueHandle,
        run: F,
    ) where
        S: Stream<Item = M> + Unpin,
        F: Fn(M) -> Fut,
        Fut: Future<Output = ()> + 'static,
    {
        // Take a permit before the message: with none free, the message stays in the
        // channel, where the sender sees it as a full channel.
        loop {
            // Which kind the next message is, is known only once it is taken; hold one
            // work permit while waiting for it, and swap it for a wait permit if needed.
            let work = self.work.acquire_static_permit(1).await.expect("pump permits are never closed");
            let Some(msg) = messages.next().await else { return };
            let permit = if is_wait(&msg) {
                drop(work);
                self.waits.acquire_static_permit(1).await.expect("pump permits are never closed")
            } else {
                work
            };
            let tq = queue_of(&msg);
            let fut = run(msg);
            glommio::spawn_local_into(
                async move {
                    fut.await;
                    drop(permit);
                },
                tq,
            )
            .expect("task queues exist")
            .detach();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn at_most_the_permits_run_and_the_rest_stay_in_the_channel() {
        let _one_at_a_time = crate::storage::executor_test_lock();
        glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .spawn(|| async {
                // Room for 8 messages (7 + one per sender); 7 is a "wait", with a permit
                // of its own.
                let (mut tx, rx) = futures::channel::mpsc::channel::<u32>(7);
                for i in 0..8 {
                    tx.try_send(i).unwrap();
                }
                let release = Rc::new(crate::sync::LocalNotify::new());
                let started = Rc::new(Cell::new(0u32));
                let permits = Rc::new(PumpPermits::new(3, 1));
                let tq = glommio::executor().current_task_queue();
                let (p, s, r) = (permits.clone(), started.clone(), release.clone());
                glommio::spawn_local(async move {
                    p.pump(
                        rx,
                        |m: &u32| *m == 7,
                        move |_| tq,
                        move |_m| {
                            let (s, r) = (s.clone(), r.clone());
                            async move {
                                s.set(s.get() + 1);
                                r.notified().await;
                            }
                        },
                    )
                    .await
                })
                .detach();
                glommio::timer::sleep(std::time::Duration::from_millis(50)).await;
                assert_eq!(started.get(), 3, "three work permits: three tasks");
                // The pump took only those three: the channel has room for three more, no
                // more; a sender now sees it full.
                for extra in 100..103 {
                    tx.try_send(extra).unwrap();
                }
                assert!(tx.try_send(103).unwrap_err().is_full(), "the pump must not drain the channel");
                for _ in 0..10 {
                    release.notify_all();
                    glommio::timer::sleep(std::time::Duration::from_millis(20)).await;
                }
                assert_eq!(started.get(), 11, "released permits admit the rest");
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
