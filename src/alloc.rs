//! The broker's global allocator: the system allocator, except that very large requests
//! are served by lazily committed anonymous mappings (`MAP_NORESERVE`).
//!
//! Why: the kafka-protocol crate sizes a `Vec` by the element count it reads from the wire
//! before it knows the elements are there, so a 20-byte request can ask for 150 GB and the
//! system allocator would abort the process. Reserving address space costs nothing: the
//! decoder then runs out of input, fails, and the mapping is released untouched. Real
//! memory is still only what is written. (Bounds on untrusted input are checked in
//! `limits` and the handlers; this is the backstop for the decoder we do not own.)
use std::alloc::{GlobalAlloc, Layout, System};

/// Allocations at least this large go to their own mapping.
const MAPPED_BYTES_MIN: usize = 64 << 20;
const PAGE: usize = 4096;

pub struct BrokerAllocator;

fn mapped(layout: &Layout) -> bool {
    layout.size() >= MAPPED_BYTES_MIN && layout.align() <= PAGE
}

unsafe impl GlobalAlloc for BrokerAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if mapped(&layout) {
            // SAFETY: an anonymous private mapping; no file, no aliasing.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    layout.size(),
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                    -1,
                    0,
                )
            };
            if p == libc::MAP_FAILED {
                std::ptr::null_mut()
            } else {
                p as *mut u8
            }
        } else {
            // SAFETY: forwarded unchanged.
            unsafe { System.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if mapped(&layout) {
            // Fresh anonymous mappings are zero-filled.
            unsafe { self.alloc(layout) }
        } else {
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if mapped(&layout) {
            // SAFETY: `ptr` came from our mmap of exactly this size.
            unsafe {
                libc::munmap(ptr as *mut libc::c_void, layout.size());
            }
        } else {
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (mapped(&layout), mapped(&new_layout)) {
            (false, false) => unsafe { System.realloc(ptr, layout, new_size) },
            (true, true) => {
                // Move the mapping's page tables; copying would commit every page.
                // SAFETY: `ptr` is our mapping of `layout.size()` bytes.
                let p =
                    unsafe { libc::mremap(ptr as *mut libc::c_void, layout.size(), new_size, libc::MREMAP_MAYMOVE) };
                if p == libc::MAP_FAILED {
                    std::ptr::null_mut()
                } else {
                    p as *mut u8
                }
            }
            _ => {
                let new = unsafe { self.alloc(new_layout) };
                if !new.is_null() {
                    // SAFETY: both regions are valid for the smaller size (at most
                    // MAPPED_BYTES_MIN here) and do not overlap.
                    unsafe {
                        std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                }
                new
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_reservations_cost_nothing_and_small_ones_work() {
        let a = BrokerAllocator;
        unsafe {
            let huge = Layout::from_size_align(100 << 30, 8).unwrap();
            let p = a.alloc(huge);
            assert!(!p.is_null(), "100 GiB of address space is reservable");
            *p = 7;
            let p2 = a.realloc(p, huge, 200 << 30);
            assert_eq!(*p2, 7);
            a.dealloc(p2, Layout::from_size_align(200 << 30, 8).unwrap());
            let small = Layout::from_size_align(64, 8).unwrap();
            let q = a.alloc_zeroed(small);
            assert_eq!(*q, 0);
            a.dealloc(q, small);
        }
    }
}
