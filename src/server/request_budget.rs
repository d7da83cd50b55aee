//! A shard's share of `queued.max.request.bytes`: request frames take their bytes from it
//! before they are allocated and give them back once their response is written, so what
//! all connections hold together is bounded.
//!
//! Two pools, so that clients stalling in the middle of large requests (or flooding them)
//! cannot keep small requests (metadata, fetches, commits, heartbeats) from being read: a
//! frame of at most `SMALL_FRAME_BYTES` takes from the small pool, a larger one from the
//! large pool. A stalled frame is dropped after `FRAME_READ_TIMEOUT`, which gives its bytes
//! back.
//!
//! A frame takes all its bytes at once, when its size is known (capped at the pool, so that
//! a frame larger than the pool still gets read). Taking them piecemeal as they arrive
//! would deadlock: frames each holding part of the pool while waiting for more, none of
//! them reading its socket, so not even a closed connection would free anything.
use std::rc::Rc;

use glommio::sync::{Semaphore, StaticPermit};

use crate::limits;

pub struct RequestBudget {
    small: Rc<Semaphore>,
    large: Rc<Semaphore>,
    large_total: u64,
}

impl RequestBudget {
    pub fn new(total: u64) -> RequestBudget {
        let small_total = (total / 8).max(1 << 20);
        let large_total = total.saturating_sub(small_total).max(1 << 20);
        RequestBudget {
            small: Rc::new(Semaphore::new(small_total)),
            large: Rc::new(Semaphore::new(large_total)),
            large_total,
        }
    }

    /// Takes the bytes of a frame of `frame_size` bytes (at most the whole pool); the frame
    /// holds them until its response is written.
    pub async fn take(&self, frame_size: usize) -> StaticPermit {
        let (pool, want) = if frame_size <= limits::SMALL_FRAME_BYTES {
            (&self.small, frame_size as u64)
        } else {
            (&self.large, (frame_size as u64).min(self.large_total))
        };
        // The pools are never closed, so acquiring only waits.
        pool.acquire_static_permit(want).await.expect("request budget pools are never closed")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_frames_cannot_starve_small_ones() {
        let _one_at_a_time = crate::storage::executor_test_lock();
        glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .spawn(|| async {
                let b = RequestBudget::new(16 << 20);
                // A frame larger than the pool takes all of it (and is still read)...
                let held = b.take(100 << 20).await;
                assert_eq!(b.large.available(), 0);
                // ...and small frames are still admitted at once.
                let small = futures_lite::future::or(
                    async {
                        b.take(100).await;
                        true
                    },
                    async {
                        glommio::timer::sleep(std::time::Duration::from_secs(5)).await;
                        false
                    },
                );
                assert!(small.await, "a small frame waited behind large ones");
                drop(held);
                assert_eq!(b.large.available(), b.large_total);
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
