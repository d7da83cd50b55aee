//! The per-shard cache of recent batches. Segments are written with O_DIRECT, so the page
//! cache holds nothing: tail fetches are served from here. Each partition log keeps its
//! own FIFO of batches; this type holds the shard-wide byte budget and the global FIFO
//! that decides which partition gives a batch back when the budget is exceeded.
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Weak;

use bytes::Bytes;

use super::PartitionLog;
use crate::model::Offset;

/// One cached batch (patched, exactly as stored).
#[derive(Clone)]
pub struct CachedBatch {
    pub base_offset: Offset,
    pub last_offset: Offset,
    pub bytes: Bytes,
}

pub struct ShardCache {
    budget_bytes: u64,
    used_bytes: Cell<u64>,
    fifo: RefCell<VecDeque<(Weak<PartitionLog>, u64)>>,
    hits: Cell<u64>,
    misses: Cell<u64>,
}

impl ShardCache {
    pub fn new(budget_bytes: u64) -> Self {
        Self {
            budget_bytes,
            used_bytes: Cell::new(0),
            fifo: RefCell::new(VecDeque::new()),
            hits: Cell::new(0),
            misses: Cell::new(0),
        }
    }

    pub fn budget_bytes(&self) -> u64 {
        self.budget_bytes
    }
    pub fn used_bytes(&self) -> u64 {
        self.used_bytes.get()
    }
    pub fn record_hit(&self, hit: bool) {
        let c = if hit { &self.hits } else { &self.misses };
        c.set(c.get() + 1);
    }
    pub fn hits_misses(&self) -> (u64, u64) {
        (self.hits.get(), self.misses.get())
    }

    /// Accounts a batch just pushed onto `log`'s own FIFO and evicts the shard's oldest
    /// batches until the budget holds again.
    pub(super) fn admitted(&self, log: Weak<PartitionLog>, len: u64) {
        self.used_bytes.set(self.used_bytes.get() + len);
        self.fifo.borrow_mut().push_back((log, len));
        while self.used_bytes.get() > self.budget_bytes {
            let Some((owner, len)) = self.fifo.borrow_mut().pop_front() else { break };
            self.used_bytes.set(self.used_bytes.get() - len);
            if let Some(owner) = owner.upgrade() {
                owner.evict_oldest_cached();
            }
        }
    }
}
