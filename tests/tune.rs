//! `sluicectl tune check|apply` against fake /proc and /sys trees (`--root`), run as the
//! real binary: untuned and tuned machines, missing settings, `apply --dry-run` changing
//! nothing, `apply` then `check`. One test checks the real machine, read-only.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn show(&self) -> String {
        format!("exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}", self.code, self.stdout, self.stderr)
    }
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.show()))
    }
}

fn from_output(o: Output) -> Run {
    Run {
        code: o.status.code(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn ctl(args: &[&str]) -> Run {
    from_output(Command::new(env!("CARGO_BIN_EXE_sluicectl")).args(args).output().expect("run sluicectl"))
}

/// A fake machine: files under a temporary directory that stands for `/`.
struct Fake {
    dir: tempfile::TempDir,
}

/// The log dir inside the fake root, and a ballast size small enough for a test.
const LOG_DIR: &str = "/var/lib/sluice";
const BALLAST: &str = "1M";
const BALLAST_BYTES: usize = 1 << 20;

impl Fake {
    fn new() -> Fake {
        Fake { dir: tempfile::tempdir().expect("tempdir") }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn path(&self, abs: &str) -> PathBuf {
        self.root().join(abs.trim_start_matches('/'))
    }

    fn write(&self, abs: &str, text: &str) {
        let p = self.path(abs);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, format!("{text}\n")).unwrap();
    }

    fn read(&self, abs: &str) -> String {
        std::fs::read_to_string(self.path(abs)).unwrap_or_else(|e| panic!("{abs}: {e}")).trim().to_string()
    }

    /// `tune <sub>` against this root, for broker cores 0-2 of 4.
    fn tune(&self, sub: &[&str]) -> Run {
        let root = self.root().to_str().unwrap().to_string();
        let mut args = vec!["tune"];
        args.extend_from_slice(sub);
        args.extend_from_slice(&["--root", &root, "--cores", "0-2", "--log-dir", LOG_DIR, "--ballast-size", BALLAST]);
        ctl(&args)
    }

    /// `tune check --json`, exit 0 required; setting → (current, status).
    fn check(&self) -> BTreeMap<String, (String, String)> {
        let r = self.tune(&["check"]);
        assert_eq!(r.code, Some(0), "{}", r.show());
        let jr = ctl(&[
            "--json",
            "tune",
            "check",
            "--root",
            self.root().to_str().unwrap(),
            "--cores",
            "0-2",
            "--log-dir",
            LOG_DIR,
            "--ballast-size",
            BALLAST,
        ]);
        assert_eq!(jr.code, Some(0), "{}", jr.show());
        let v = jr.json();
        let mut out = BTreeMap::new();
        for s in v["settings"].as_array().expect("settings array") {
            let name = s["setting"].as_str().unwrap().to_string();
            out.insert(name, (s["current"].as_str().unwrap().to_string(), s["status"].as_str().unwrap().to_string()));
        }
        // The table and the JSON agree on the verdict.
        let changes = v["changes"].as_u64().unwrap();
        let line = r.stdout.lines().find(|l| l.starts_with("verdict: ")).unwrap_or_else(|| panic!("{}", r.show()));
        if changes == 0 {
            assert_eq!(line, "verdict: tuned");
        } else {
            assert!(line.starts_with(&format!("verdict: {changes} setting")), "{line} vs {changes}");
        }
        out
    }

    /// Every file under the root with its bytes.
    fn snapshot(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
            for e in std::fs::read_dir(dir).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else {
                    out.insert(p.clone(), std::fs::read(&p).unwrap());
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(self.root(), &mut out);
        out
    }
}

const INTERRUPTS: &str = "\
           CPU0       CPU1       CPU2       CPU3
  0:         45          0          0          0   IO-APIC   2-edge      timer
 40:       1200          0          0          0   PCI-MSIX-0000:01:00.0   0-edge      nvme0q0
 41:     981234          0          0          0   PCI-MSIX-0000:01:00.0   1-edge      nvme0q1
 50:     554321          0          0          0   PCI-MSIX-0000:02:00.0   0-edge      eth0-TxRx-0
 60:          0          0          0          0   PCI-MSIX-0000:00:03.0   0-edge      virtio0-config
NMI:          0          0          0          0   Non-maskable interrupts
LOC:     123456     123456     123456     123456   Local timer interrupts";

fn limits(nofile: &str, memlock: &str) -> String {
    format!(
        "Limit                     Soft Limit           Hard Limit           Units\n\
         Max cpu time              unlimited            unlimited            seconds\n\
         Max open files            {nofile}                files\n\
         Max locked memory         {memlock}                bytes\n\
         Max address space         unlimited            unlimited            bytes\n"
    )
}

/// The parts every fake machine has: 4 cores, an NVMe disk, a rotational disk and a loop
/// device (both ignored), the IRQ table, a log dir.
fn base(fake: &Fake, clocksource: &str) {
    fake.write("/sys/devices/system/cpu/online", "0-3");
    fake.write("/sys/devices/system/clocksource/clocksource0/current_clocksource", clocksource);
    fake.write("/sys/devices/system/clocksource/clocksource0/available_clocksource", "tsc hpet acpi_pm kvm-clock");
    fake.write("/sys/block/sda/queue/rotational", "1");
    fake.write("/sys/block/sda/queue/scheduler", "[mq-deadline] none");
    fake.write("/sys/block/sda/queue/nomerges", "0");
    fake.write("/sys/block/loop0/queue/rotational", "0");
    fake.write("/sys/block/loop0/queue/scheduler", "[mq-deadline] none");
    fake.write("/proc/interrupts", INTERRUPTS);
    fake.write("/proc/irq/0/smp_affinity_list", "0");
    fake.write("/proc/irq/60/smp_affinity_list", "0-3");
    std::fs::create_dir_all(fake.path(LOG_DIR)).unwrap();
}

fn untuned(clocksource: &str) -> Fake {
    let f = Fake::new();
    base(&f, clocksource);
    for cpu in 0..4 {
        f.write(&format!("/sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_governor"), "powersave");
        f.write(
            &format!("/sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_available_governors"),
            "performance powersave",
        );
    }
    f.write("/sys/kernel/mm/transparent_hugepage/enabled", "[always] madvise never");
    f.write("/sys/block/nvme0n1/queue/rotational", "0");
    f.write("/sys/block/nvme0n1/queue/scheduler", "[mq-deadline] kyber none");
    f.write("/sys/block/nvme0n1/queue/nomerges", "0");
    f.write("/proc/sys/fs/aio-max-nr", "65536");
    f.write("/proc/sys/vm/swappiness", "60");
    // NVMe and NIC IRQs on the broker's cores (0-2).
    f.write("/proc/irq/40/smp_affinity_list", "0-3");
    f.write("/proc/irq/41/smp_affinity_list", "1");
    f.write("/proc/irq/50/smp_affinity_list", "0-3");
    f.write("/proc/self/limits", &limits("1024                 4096", "65536                65536"));
    f
}

fn tuned() -> Fake {
    let f = Fake::new();
    base(&f, "tsc");
    for cpu in 0..4 {
        f.write(&format!("/sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_governor"), "performance");
    }
    f.write("/sys/kernel/mm/transparent_hugepage/enabled", "always [madvise] never");
    f.write("/sys/block/nvme0n1/queue/rotational", "0");
    f.write("/sys/block/nvme0n1/queue/scheduler", "[none] mq-deadline kyber");
    f.write("/sys/block/nvme0n1/queue/nomerges", "2");
    f.write("/proc/sys/fs/aio-max-nr", "1048576");
    f.write("/proc/sys/vm/swappiness", "1");
    f.write("/proc/sys/net/core/somaxconn", "65535");
    f.write("/proc/sys/net/ipv4/tcp_max_syn_backlog", "4096");
    f.write("/proc/sys/net/core/netdev_max_backlog", "16384");
    f.write("/proc/sys/net/ipv4/tcp_slow_start_after_idle", "0");
    f.write("/proc/irq/40/smp_affinity_list", "3");
    f.write("/proc/irq/41/smp_affinity_list", "3");
    f.write("/proc/irq/50/smp_affinity_list", "3");
    f.write("/proc/self/limits", &limits("1048576              1048576", "unlimited            unlimited"));
    std::fs::write(f.path(&format!("{LOG_DIR}/ballast")), vec![0u8; BALLAST_BYTES]).unwrap();
    f
}

fn expect(found: &BTreeMap<String, (String, String)>, setting: &str, current: &str, status: &str) {
    let (c, s) = found.get(setting).unwrap_or_else(|| panic!("no row '{setting}' in {found:#?}"));
    assert_eq!((c.as_str(), s.as_str()), (current, status), "row '{setting}' in {found:#?}");
}

#[test]
fn untuned_machine_reports_each_change() {
    for clocksource in ["hpet", "kvm-clock"] {
        let f = untuned(clocksource);
        let found = f.check();
        expect(&found, "cpu governor", "powersave", "CHANGE");
        expect(&found, "clocksource", clocksource, "CHANGE");
        expect(&found, "transparent hugepages", "always", "CHANGE");
        expect(&found, "irq affinity", "3 of 3 IRQs on broker cores", "CHANGE");
        expect(&found, "nvme0n1 scheduler", "mq-deadline", "CHANGE");
        expect(&found, "nvme0n1 nomerges", "0", "CHANGE");
        expect(&found, "fs.aio-max-nr", "65536", "CHANGE");
        expect(&found, "vm.swappiness", "60", "CHANGE");
        expect(&found, "open files limit", "1024 (hard 4096)", "CHANGE");
        expect(&found, "locked memory limit", "65536", "CHANGE");
        expect(&found, &format!("ballast {LOG_DIR}"), "absent", "CHANGE");
        // Settings this machine lacks are not failures.
        expect(&found, "net.core.somaxconn", "n/a", "n/a");
        // Rotational disks and loop devices are left alone.
        assert!(!found.keys().any(|k| k.starts_with("sda") || k.starts_with("loop")), "{found:#?}");
        let changes = found.values().filter(|(_, s)| s == "CHANGE").count();
        assert_eq!(changes, 11, "{found:#?}");

        let r = f.tune(&["check"]);
        assert!(r.stdout.contains("verdict: 11 settings to change"), "{}", r.show());
        let strict = f.tune(&["check", "--strict"]);
        assert_eq!(strict.code, Some(3), "--strict exits 3 when not tuned:\n{}", strict.show());
    }
}

#[test]
fn tuned_machine_is_tuned() {
    let f = tuned();
    let found = f.check();
    assert!(found.values().all(|(_, s)| s == "ok"), "{found:#?}");
    expect(&found, "irq affinity", "3 IRQs on cpu 3", "ok");
    expect(&found, "nvme0n1 scheduler", "none", "ok");
    expect(&found, &format!("ballast {LOG_DIR}"), "1 MiB", "ok");
    let r = f.tune(&["check", "--strict"]);
    assert_eq!(r.code, Some(0), "{}", r.show());
    assert_eq!(r.stdout.lines().last(), Some("verdict: tuned"), "{}", r.show());
    // THP `never` is as good as madvise.
    f.write("/sys/kernel/mm/transparent_hugepage/enabled", "always madvise [never]");
    expect(&f.check(), "transparent hugepages", "never", "ok");
}

#[test]
fn missing_settings_are_not_applicable() {
    let f = tuned();
    std::fs::remove_dir_all(f.path("/sys/devices/system/cpu/cpu0")).unwrap();
    for cpu in 1..4 {
        std::fs::remove_dir_all(f.path(&format!("/sys/devices/system/cpu/cpu{cpu}/cpufreq"))).unwrap();
    }
    std::fs::remove_dir_all(f.path("/sys/kernel/mm")).unwrap();
    std::fs::remove_dir_all(f.path("/sys/block/nvme0n1")).unwrap();
    std::fs::remove_file(f.path("/proc/interrupts")).unwrap();
    let found = f.check();
    expect(&found, "cpu governor", "n/a", "n/a");
    expect(&found, "transparent hugepages", "n/a", "n/a");
    expect(&found, "block devices", "n/a", "n/a");
    expect(&found, "irq affinity", "n/a", "n/a");
    let r = f.tune(&["check", "--strict"]);
    assert_eq!(r.code, Some(0), "n/a settings do not fail the verdict:\n{}", r.show());
    assert!(r.stdout.contains("verdict: tuned"), "{}", r.show());

    // A clocksource the kernel does not offer cannot be chosen.
    f.write("/sys/devices/system/clocksource/clocksource0/current_clocksource", "kvm-clock");
    f.write("/sys/devices/system/clocksource/clocksource0/available_clocksource", "kvm-clock acpi_pm");
    expect(&f.check(), "clocksource", "kvm-clock", "n/a");
}

#[test]
fn broker_on_every_core_leaves_the_last_one_to_irqs() {
    let f = tuned();
    let root = f.root().to_str().unwrap();
    // Without --cores the broker is assumed on all 4 cores; IRQs already on core 3 are ok,
    // and the advice says to run the broker on the others.
    let r = ctl(&["tune", "check", "--root", root, "--log-dir", LOG_DIR, "--ballast-size", BALLAST]);
    assert_eq!(r.code, Some(0), "{}", r.show());
    let line = r.stdout.lines().find(|l| l.starts_with("irq affinity")).unwrap_or_else(|| panic!("{}", r.show()));
    assert!(line.contains("cpu 3") && line.contains("ok") && line.contains("--cores 3"), "{line}");
    // IRQs on core 0 are moved to core 3.
    f.write("/proc/irq/41/smp_affinity_list", "0");
    let r = ctl(&["tune", "apply", "--dry-run", "--root", root, "--log-dir", LOG_DIR, "--ballast-size", BALLAST]);
    assert!(r.stdout.contains(&format!("echo 3 > {root}/proc/irq/41/smp_affinity_list")), "{}", r.show());
}

#[test]
fn dry_run_prints_commands_and_changes_nothing() {
    let f = untuned("hpet");
    let before = f.snapshot();
    let r = f.tune(&["apply", "--dry-run"]);
    assert_eq!(r.code, Some(0), "{}", r.show());
    let root = f.root().to_str().unwrap();
    for cmd in [
        format!("echo performance > {root}/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        format!("echo performance > {root}/sys/devices/system/cpu/cpu3/cpufreq/scaling_governor"),
        format!("echo tsc > {root}/sys/devices/system/clocksource/clocksource0/current_clocksource"),
        format!("echo madvise > {root}/sys/kernel/mm/transparent_hugepage/enabled"),
        format!("echo 3 > {root}/proc/irq/40/smp_affinity_list"),
        format!("echo 3 > {root}/proc/irq/41/smp_affinity_list"),
        format!("echo 3 > {root}/proc/irq/50/smp_affinity_list"),
        format!("echo none > {root}/sys/block/nvme0n1/queue/scheduler"),
        format!("echo 2 > {root}/sys/block/nvme0n1/queue/nomerges"),
        format!("echo 1048576 > {root}/proc/sys/fs/aio-max-nr"),
        format!("echo 1 > {root}/proc/sys/vm/swappiness"),
        format!("fallocate -l {BALLAST_BYTES} {root}{LOG_DIR}/ballast"),
    ] {
        assert!(r.stdout.lines().any(|l| l == cmd), "missing `{cmd}`:\n{}", r.show());
    }
    assert!(r.stdout.contains("LimitNOFILE=1048576") && r.stdout.contains("LimitMEMLOCK=infinity"), "{}", r.show());
    // IRQs that are not NIC/NVMe queues are left alone.
    assert!(!r.stdout.contains("/proc/irq/60/") && !r.stdout.contains("/proc/irq/0/"), "{}", r.show());
    // Every line is a command or a comment, so the output can be reviewed and piped to sh.
    assert!(r.stdout.lines().all(|l| l.starts_with('#') || l.starts_with("echo ") || l.starts_with("fallocate ")));
    assert_eq!(before, f.snapshot(), "--dry-run must not change any file");
}

#[test]
fn apply_then_check_is_ok() {
    let f = untuned("hpet");
    let r = f.tune(&["apply"]);
    assert_eq!(r.code, Some(0), "apply on a fake root needs no privileges:\n{}", r.show());
    assert!(r.stdout.contains("14 applied, 2 to set by hand, 0 failed"), "{}", r.show());
    let found = f.check();
    for setting in [
        "cpu governor",
        "clocksource",
        "transparent hugepages",
        "irq affinity",
        "nvme0n1 scheduler",
        "nvme0n1 nomerges",
        "fs.aio-max-nr",
        "vm.swappiness",
    ] {
        let (_, status) = &found[setting];
        assert_eq!(status, "ok", "'{setting}' after apply: {found:#?}");
    }
    expect(&found, &format!("ballast {LOG_DIR}"), "1 MiB", "ok");
    // Limits belong to the broker's process: apply prints the unit line instead.
    expect(&found, "open files limit", "1024 (hard 4096)", "CHANGE");
    assert_eq!(f.read("/proc/sys/fs/aio-max-nr"), "1048576");
    assert_eq!(f.read("/proc/irq/41/smp_affinity_list"), "3");
    // The ballast has real blocks, not a hole.
    let meta = std::fs::metadata(f.path(&format!("{LOG_DIR}/ballast"))).unwrap();
    assert!(std::os::unix::fs::MetadataExt::blocks(&meta) * 512 >= BALLAST_BYTES as u64);
    // A second apply finds only the limits.
    let again = f.tune(&["apply"]);
    assert!(again.stdout.contains("0 applied, 2 to set by hand, 0 failed"), "{}", again.show());
}

#[test]
fn apply_on_the_real_machine_needs_root() {
    let bin = env!("CARGO_BIN_EXE_sluicectl");
    // SAFETY: geteuid has no preconditions.
    let is_root = unsafe { libc::geteuid() } == 0;
    let out = if is_root {
        // Drop to nobody to see the refusal; without setpriv there is no safe way here.
        let Ok(o) = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", bin, "tune", "apply"])
            .output()
        else {
            eprintln!("setpriv not found: skipping the unprivileged apply check");
            return;
        };
        o
    } else {
        Command::new(bin).args(["tune", "apply"]).output().unwrap()
    };
    let r = from_output(out);
    if r.stdout.contains("nothing to change") {
        return; // an already tuned machine has nothing to refuse
    }
    assert_eq!(r.code, Some(1), "{}", r.show());
    assert!(r.stderr.contains("needs root") && r.stderr.contains("--dry-run"), "{}", r.show());
}

#[test]
fn check_on_the_real_machine_is_read_only() {
    let r = ctl(&["tune", "check"]);
    assert_eq!(r.code, Some(0), "{}", r.show());
    let verdict = r.stdout.lines().find(|l| l.starts_with("verdict: ")).unwrap_or_else(|| panic!("{}", r.show()));
    assert!(verdict == "verdict: tuned" || verdict.ends_with(" to change"), "{verdict}");
    let j = ctl(&["--json", "tune", "check"]);
    assert_eq!(j.code, Some(0), "{}", j.show());
    assert!(j.json()["settings"].as_array().is_some_and(|a| !a.is_empty()), "{}", j.show());
}

#[test]
fn bad_arguments_fail_with_one_line() {
    let r = ctl(&["tune", "check", "--root", "/nonexistent/sluice-root"]);
    assert_eq!(r.code, Some(1), "{}", r.show());
    assert!(r.stderr.starts_with("sluicectl: --root"), "{}", r.show());
    let r = ctl(&["tune", "check", "--cores", "3-1"]);
    assert_eq!(r.code, Some(2), "clap rejects a bad core list:\n{}", r.show());
}
