//! A full disk, for real: the broker's `log.dirs` is a small ext4 file system on a loop
//! device, filled until the broker cannot claim space. Then:
//!  * produce fails with KAFKA_STORAGE_ERROR (and keeps failing while the disk is full);
//!  * fetches keep serving everything acknowledged;
//!  * once space is freed, produce succeeds again without a restart;
//!  * nothing acknowledged is lost, offsets stay contiguous, and a restart keeps it all.
//!
//! Needs root and a loop device (this machine and `.ci/run` have both); where mounting is
//! refused it says SKIPPED and returns (the storage unit tests inject the same fault).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use rskafka::client::error::ProtocolError;
use rskafka::client::partition::Compression;
use rskafka::record::Record;

const TOPIC: &str = "full";
const VALUE_BYTES: usize = 4096;
const PER_CALL: usize = 64;

/// An ext4 file system in a file, mounted on a loop device; unmounted on drop.
struct LoopFs {
    mnt: PathBuf,
    _dir: tempfile::TempDir,
}

impl LoopFs {
    /// `None` (with the reason printed) where this machine cannot mount a loop device: not
    /// root, or no loop support. The storage tests cover the same logic by fault injection.
    fn mount(mib: u64) -> Option<LoopFs> {
        if unsafe { libc::geteuid() } != 0 || !Path::new("/dev/loop-control").exists() {
            eprintln!("SKIPPED disk_full: needs root and /dev/loop-control");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("fs.img");
        std::fs::File::create(&img).unwrap().set_len(mib << 20).unwrap();
        run(Command::new("mkfs.ext4").args(["-q", "-F", "-m", "0"]).arg(&img));
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        let out = Command::new("mount").args(["-o", "loop"]).arg(&img).arg(&mnt).output().expect("run mount");
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            if err.contains("ermission denied") || err.contains("not permitted") {
                eprintln!("SKIPPED disk_full: mount refused here: {err}");
                return None;
            }
            panic!("mount -o loop failed ({}): {err}", out.status);
        }
        Some(LoopFs { mnt, _dir: dir })
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {} (this test needs root and a loop device)",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_bytes(path: &Path) -> u64 {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut st) }, 0, "statvfs {}", path.display());
    st.f_bavail as u64 * st.f_frsize as u64
}

/// A file that takes `bytes` of real space (fallocate, not a sparse file).
fn ballast(path: &Path, bytes: u64) {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::create(path).unwrap();
    let rc = unsafe { libc::fallocate(f.as_raw_fd(), 0, 0, bytes as libc::off_t) };
    assert_eq!(rc, 0, "fallocate ballast of {bytes} bytes: {}", std::io::Error::last_os_error());
}

/// Takes every block still free into the file at `path` (fallocate in 64 KiB, then 4 KiB
/// steps until ENOSPC, after a journal commit so that blocks freed meanwhile count); the
/// bytes taken.
fn take_the_rest(path: &Path, mnt: &Path) -> u64 {
    use std::os::fd::AsRawFd;
    let f = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
    assert_eq!(unsafe { libc::syncfs(f.as_raw_fd()) }, 0, "syncfs");
    let start = f.metadata().unwrap().len() as libc::off_t;
    let mut end = start;
    for step in [64 << 10, 4 << 10] {
        while unsafe { libc::fallocate(f.as_raw_fd(), 0, end, step) } == 0 {
            end += step;
        }
        let e = std::io::Error::last_os_error();
        assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "fallocate the rest: {e}");
    }
    assert!(free_bytes(mnt) < 64 << 10, "{} bytes still free", free_bytes(mnt));
    (end - start) as u64
}

fn record(seq: usize) -> Record {
    let mut v = format!("full-{seq:08}-").into_bytes();
    v.resize(VALUE_BYTES, b'a' + (seq % 26) as u8);
    rs_record(None, Some(&v), &[], 1_700_000_000_000 + seq as i64)
}

fn seq_of(r: &Record) -> usize {
    let v = r.value.as_deref().expect("a value");
    std::str::from_utf8(&v[5..13]).unwrap().parse().unwrap()
}

/// Produces the next `PER_CALL` records from `seq` (which moves past them, sent or not)
/// and notes each acknowledged one's offset in `acked`.
async fn produce_next(
    pc: &rskafka::client::partition::PartitionClient,
    seq: &mut usize,
    acked: &mut BTreeMap<i64, usize>,
) -> Result<(), rskafka::client::error::Error> {
    let from = *seq;
    *seq += PER_CALL;
    let records: Vec<Record> = (from..from + PER_CALL).map(record).collect();
    let offsets = within(Duration::from_secs(30), "produce", pc.produce(records, Compression::NoCompression)).await?;
    for (k, o) in offsets.into_iter().enumerate() {
        acked.insert(o, from + k);
    }
    Ok(())
}

/// Every record in the log is one we sent, unchanged; offsets are contiguous from 0; each
/// acknowledged record is at its acknowledged offset; no record appears twice.
async fn verify(pc: &rskafka::client::partition::PartitionClient, acked: &BTreeMap<i64, usize>, what: &str) -> i64 {
    let (_, hwm) = within(Duration::from_secs(20), "fetch", pc.fetch_records(0, 1..1000, 10)).await.unwrap();
    let all = rs_fetch_range(pc, 0, hwm, Duration::from_secs(60)).await;
    assert_eq!(all.len() as i64, hwm, "{what}: records below the high watermark");
    let mut seen = std::collections::HashSet::new();
    for (i, r) in all.iter().enumerate() {
        assert_eq!(r.offset, i as i64, "{what}: offsets are not contiguous");
        let seq = seq_of(&r.record);
        assert_eq!(r.record, record(seq), "{what}: record at offset {i} changed");
        assert!(seen.insert(seq), "{what}: seq {seq} appears twice");
    }
    for (&offset, &seq) in acked {
        assert_eq!(seq_of(&all[offset as usize].record), seq, "{what}: acknowledged seq {seq} moved");
    }
    hwm
}

#[test]
fn a_full_disk_refuses_produce_serves_fetch_and_recovers_when_space_returns() {
    let Some(fs) = LoopFs::mount(64) else { return };
    let data = fs.mnt.join("data");
    std::fs::create_dir(&data).unwrap();
    let data_dir = data.display().to_string();
    let mut broker = Broker::start_with(&[("log.dirs", data_dir.as_str())], 1);
    let bs = broker.bootstrap();
    create_topic_with_config(&bs, TOPIC, 1, &[("segment.bytes", "4194304")]);
    // Leave about 12 MiB: the fill below crosses a few segment rolls before it runs out.
    let ballast_path = fs.mnt.join("ballast");
    ballast(&ballast_path, free_bytes(&fs.mnt).saturating_sub(12 << 20));

    let rt = runtime();
    let mut acked: BTreeMap<i64, usize> = BTreeMap::new();
    let mut seq = 0usize;
    rt.block_on(async {
        let client = rs_client(&bs).await;
        let pc = rs_partition(&client, TOPIC, 0).await;

        // Fill the disk: produce until the broker refuses. Some space can come back a
        // little later by itself: finalizing the segment that rolled trims its preallocated
        // tail, and ext4 frees those blocks at the next journal commit; the writer may
        // already have claimed them for the active segment. So after a refusal the test
        // takes what is free (a second ballast) and tries again, until a produce is refused
        // with nothing free: the disk is full for good.
        let rest_path = fs.mnt.join("ballast-rest");
        let mut rounds = 0;
        loop {
            let refused = loop {
                assert!(seq < 100 * PER_CALL, "the disk never filled ({seq} records acknowledged)");
                if let Err(e) = produce_next(&pc, &mut seq, &mut acked).await {
                    break e;
                }
            };
            assert_eq!(rs_protocol_error(&refused), Some(ProtocolError::KafkaStorageError), "{refused}");
            tokio::time::sleep(Duration::from_millis(300)).await;
            let taken = take_the_rest(&rest_path, &fs.mnt);
            eprintln!("disk_full: refused after {} records; {taken} bytes came back", acked.len());
            if taken == 0 {
                // Still full: still refused.
                if let Err(e) = produce_next(&pc, &mut seq, &mut acked).await {
                    assert_eq!(rs_protocol_error(&e), Some(ProtocolError::KafkaStorageError), "{e}");
                    break;
                }
            }
            rounds += 1;
            assert!(rounds < 10, "produce accepted again after {rounds} refusals with the disk full");
        }
        assert!(acked.len() > 1000, "only {} records fit before the disk was full", acked.len());

        // It stays refused while the disk is full, and fetches serve everything acknowledged.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let again = produce_next(&pc, &mut seq, &mut acked).await.expect_err("produce on a full disk");
        assert_eq!(rs_protocol_error(&again), Some(ProtocolError::KafkaStorageError), "{again}");
        verify(&pc, &acked, "while the disk is full").await;

        // Space returns: produce works again, without a restart.
        std::fs::remove_file(&ballast_path).unwrap();
        std::fs::remove_file(&rest_path).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while let Err(e) = produce_next(&pc, &mut seq, &mut acked).await {
            assert_eq!(rs_protocol_error(&e), Some(ProtocolError::KafkaStorageError), "{e}");
            assert!(Instant::now() < deadline, "produce still refused 30 s after space returned: {e}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        verify(&pc, &acked, "after space returned").await;
    });

    broker.stop();
    broker.restart();
    rt.block_on(async {
        let client = rs_client(&broker.bootstrap()).await;
        let pc = rs_partition(&client, TOPIC, 0).await;
        let hwm = verify(&pc, &acked, "after a restart").await;
        let offsets = within(
            Duration::from_secs(30),
            "produce after restart",
            pc.produce((seq..seq + 4).map(record).collect(), Compression::NoCompression),
        )
        .await
        .unwrap();
        assert_eq!(offsets, (hwm..hwm + 4).collect::<Vec<_>>());
    });
    assert!(
        broker.log_tail(2000).contains("disk full: appends refused until space returns"),
        "the broker log must say the disk was full:\n{}",
        broker.log_tail(50)
    );
    drop(broker);
}
