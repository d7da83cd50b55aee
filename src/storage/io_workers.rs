//! Where the kernel runs a shard's io_uring requests that cannot complete without blocking.
//!
//! io_uring hands such a request to a worker thread (`iou-wrk-<tid>`) of the submitting
//! thread: every fallocate and fsync, and about half of the segment appends (an O_DIRECT
//! write into preallocated, unwritten ext4 blocks starts a journal handle to convert them,
//! so it is never tried without blocking). Those workers inherited the shard's pinning: a
//! trace of 12 s of keyed load counted 11 000 punted appends, each waking a worker on the
//! shard's own core that preempted the shard for the length of the write (BENCHMARKS.md,
//! "What was left of maintenance in produce latency"). `IORING_REGISTER_IOWQ_AFF` moves the
//! calling thread's workers to the CPUs no shard is pinned to. glommio does not expose its
//! rings, so a one-entry ring of our own carries the registration; it applies to the
//! thread's worker pool, which all its rings share.
use super::background_io;

/// `IORING_REGISTER_IOWQ_AFF` (linux/io_uring.h).
const REGISTER_IOWQ_AFF: libc::c_uint = 17;

/// Moves the calling thread's io_uring workers to the CPUs that background I/O runs on when
/// those are free of shards (`background_io::Placement::Free`); otherwise leaves them where
/// they are. Call it first thing on a shard's thread, before any file I/O, because workers
/// already running keep their pinning. Failures are logged: the broker works either way.
pub fn keep_off_the_shards_core() {
    let Some(cpus) = background_io::free_cpus() else { return };
    if let Err(e) = set_worker_cpus(&cpus) {
        tracing::warn!(?cpus, error = %e, "io_uring workers stay on the shard's core");
    }
}

fn set_worker_cpus(cpus: &[usize]) -> std::io::Result<()> {
    // SAFETY: `params` is a zeroed io_uring_params (120 bytes, 8-aligned) the kernel fills
    // in; the ring's memory is never mapped, and its descriptor is closed below.
    let fd = unsafe {
        let mut params = [0u64; 15];
        libc::syscall(libc::SYS_io_uring_setup, 1u32, params.as_mut_ptr())
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let fd = fd as libc::c_int;
    // SAFETY: `set` is a plain bit set owned by this frame; the kernel only reads it.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cpus {
            libc::CPU_SET(c, &mut set);
        }
        libc::syscall(
            libc::SYS_io_uring_register,
            fd,
            REGISTER_IOWQ_AFF,
            &set as *const libc::cpu_set_t,
            std::mem::size_of::<libc::cpu_set_t>(),
        )
    };
    let err = (rc < 0).then(std::io::Error::last_os_error);
    // SAFETY: `fd` is the ring opened above and nothing else holds it.
    unsafe { libc::close(fd) };
    err.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    /// The CPUs each io_uring worker of thread `tid` may run on.
    fn worker_cpus(tid: i32) -> Vec<String> {
        let name = format!("iou-wrk-{tid}");
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .flatten()
            .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == name))
            .filter_map(|t| std::fs::read_to_string(t.path().join("status")).ok())
            .filter_map(|s| s.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:").map(|v| v.trim().to_string())))
            .collect()
    }

    /// A shard pinned to one CPU makes a request that always goes to a worker (fallocate):
    /// the worker runs on the free CPUs, not on the shard's, as it would by inheritance.
    #[test]
    fn a_shards_blocking_requests_run_off_its_core() {
        let _serial = super::super::executor_test_lock();
        let online = glommio::CpuSet::online().unwrap().into_iter().map(|l| l.cpu).collect::<Vec<_>>();
        let (shard_cpu, free) = (online[0], online[1..].to_vec());
        if free.is_empty() {
            eprintln!("one CPU online: nothing to check");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let free_cpus = free.clone();
        let got = glommio::LocalExecutorBuilder::new(glommio::Placement::Fixed(shard_cpu))
            .spawn(move || async move {
                // What keep_off_the_shards_core does under Placement::Free, without
                // touching the process-wide placement other tests set.
                super::set_worker_cpus(&free_cpus).unwrap();
                let f = glommio::io::DmaFile::create(&path).await.unwrap();
                f.pre_allocate(1 << 20, false).await.unwrap();
                f.close().await.unwrap();
                // SAFETY: gettid has no preconditions.
                worker_cpus(unsafe { libc::gettid() })
            })
            .unwrap()
            .join()
            .unwrap();
        let want = free.iter().map(|c| c.to_string()).collect::<Vec<_>>();
        assert!(!got.is_empty(), "no io_uring worker seen");
        for cpus in got {
            let listed = expand(&cpus);
            assert_eq!(listed, want, "a worker may run on {cpus}, not only on the free CPUs");
        }
    }

    /// "0-2,5" -> ["0", "1", "2", "5"].
    fn expand(list: &str) -> Vec<String> {
        list.split(',')
            .flat_map(|part| match part.split_once('-') {
                Some((a, b)) => (a.parse::<usize>().unwrap()..=b.parse().unwrap()).collect::<Vec<_>>(),
                None => vec![part.parse().unwrap()],
            })
            .map(|c| c.to_string())
            .collect()
    }
}
