//! A shard's share of `queued.max.request.bytes`: request frames take their bytes from it
//! before they are allocated and give them back once their response is written, so what
//! all connections hold together is bounded.
//!
//! Two pools, so that clients stalling in the middle of large requests (or flooding them)
//! cannot keep small requests (metadata, fetches, commits, heartbeats) from being read: a
//! frame of at most `SMALL_FRAME_BYTES` takes from the small pool, a larger one from the
//! large pool, 1 MiB at a time as its bytes arrive. A stalled frame is dropped after
//! `FRAME_READ_TIMEOUT`, which gives its bytes back.
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

    /// Takes the bytes for the next step of a frame of `frame_size` bytes, of which this
    /// frame already holds `held`; `None` when the step needs nothing more (a frame larger
    /// than the whole large pool holds all of it and reads on).
    pub async fn take(&self, frame_size: usize, step: usize, held: u64) -> Option<(StaticPermit, u64)> {
        let (pool, want) = if frame_size <= limits::SMALL_FRAME_BYTES {
            (&self.small, step as u64)
        } else {
            (&self.large, (step as u64).min(self.large_total - held))
        };
        if want == 0 {
            return None;
        }
        // Never closed, so acquiring only waits.
        pool.acquire_static_permit(want).await.ok().map(|p| (p, want))
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
                // Large frames take the whole large pool...
                let mut held = Vec::new();
                let mut taken = 0u64;
                while taken < b.large_total {
                    let p = b.take(100 << 20, 1 << 20, taken).await.unwrap();
                    taken += 1 << 20;
                    held.push(p);
                }
                assert!(b.take(100 << 20, 1 << 20, taken).await.is_none(), "a frame past the pool reads on");
                // ...and small frames are still admitted at once.
                let small = futures_lite::future::or(async { b.take(100, 100, 0).await.is_some() }, async {
                    glommio::timer::sleep(std::time::Duration::from_secs(5)).await;
                    false
                });
                assert!(small.await, "a small frame waited behind large ones");
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
