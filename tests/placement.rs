//! Where the broker's threads run when it has fewer shards than CPUs: the shards on the
//! lowest-numbered CPUs at every start (glommio lists CPUs from a hash set, so without a
//! sort the shard moved between starts), and the io_uring workers doing a shard's blocking
//! requests (fallocate, fsync, appends into new blocks) on the other CPUs, not on the
//! shard's own core.

mod common;

use std::time::Duration;

use common::*;

/// "0-2,5" -> [0, 1, 2, 5].
fn cpu_list(list: &str) -> Vec<usize> {
    list.trim()
        .split(',')
        .flat_map(|part| match part.split_once('-') {
            Some((a, b)) => (a.parse::<usize>().unwrap()..=b.parse().unwrap()).collect::<Vec<_>>(),
            None => vec![part.parse().unwrap()],
        })
        .collect()
}

/// Each thread of `pid`: (tid, name, CPUs it may run on).
fn threads(pid: u32) -> Vec<(u32, String, Vec<usize>)> {
    let mut out = Vec::new();
    for t in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap().flatten() {
        let (Ok(comm), Ok(status)) =
            (std::fs::read_to_string(t.path().join("comm")), std::fs::read_to_string(t.path().join("status")))
        else {
            continue; // the thread ended meanwhile
        };
        let cpus = status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")).map(cpu_list).unwrap();
        out.push((t.file_name().to_string_lossy().parse().unwrap(), comm.trim().to_string(), cpus));
    }
    out
}

#[test]
fn the_shard_takes_the_lowest_cpu_at_every_start_and_its_io_workers_the_others() {
    let online = cpu_list(&std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap());
    if online.len() < 2 {
        eprintln!("one CPU online: nothing to check");
        return;
    }
    let mut b = Broker::start_with(&[], 1);
    // Eight starts: with the CPUs in hash order the shard would land on the lowest CPU
    // every time in only one run in 2^8 on a two-CPU machine.
    for start in 0..8 {
        if start > 0 {
            b.stop();
            b.restart();
        }
        let bs = b.bootstrap();
        let topic = format!("placed-{start}");
        create_topic(&bs, &topic, 1);
        let p = producer(&bs, &[]);
        let msg = TestMsg { key: None, value: Some(b"x".to_vec()), headers: vec![], timestamp: None, partition: None };
        produce_ok(&p, &topic, &[msg], Duration::from_secs(20));
        let pid = b.pid().unwrap();
        // The segment's fallocate went to an io_uring worker, named after the thread whose
        // request it runs: that thread is the shard.
        let (shard, workers) = wait_until(Duration::from_secs(10), "an io_uring worker of the shard", || {
            let all = threads(pid);
            let shard_tid = all.iter().find_map(|(_, name, _)| name.strip_prefix("iou-wrk-")?.parse::<u32>().ok())?;
            let shard = all.iter().find(|(tid, _, _)| *tid == shard_tid)?.clone();
            let workers: Vec<_> =
                all.into_iter().filter(|(_, name, _)| *name == format!("iou-wrk-{shard_tid}")).collect();
            Some((shard, workers))
        });
        assert!(shard.1.starts_with("sluice-shard-0"), "start {start}: {shard:?} is not the shard");
        assert_eq!(shard.2, vec![online[0]], "start {start}: the shard is not on the lowest CPU");
        for w in &workers {
            assert_eq!(w.2, online[1..].to_vec(), "start {start}: io_uring worker {w:?} is not on the free CPUs");
        }
    }
    b.stop();
}
