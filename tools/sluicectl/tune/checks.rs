//! The checkers: each reads one setting under the root, compares it with the profile and
//! returns findings, with the fixes `tune apply` would make. They change nothing.
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::profile::Profile;
use super::sys::{self, Cores, LimitKind, Root};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Change,
    /// The setting does not exist here (no cpufreq in a VM, no NVMe, …).
    NotApplicable,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Change => "CHANGE",
            Status::NotApplicable => "n/a",
        }
    }
}

/// One row of `tune check`.
#[derive(Debug, Clone)]
pub struct Finding {
    pub setting: String,
    pub current: String,
    pub recommended: String,
    pub status: Status,
    pub why: String,
    /// What `tune apply` does; empty unless the status is `Change`.
    pub fixes: Vec<Fix>,
}

/// One change `tune apply` makes.
#[derive(Debug, Clone)]
pub enum Fix {
    /// Write `value` into a sysfs/procfs file (a machine path, taken under the root).
    Write { path: String, value: String },
    /// Set a sysctl (written under /proc/sys; `sysctl -w` on the real machine).
    Sysctl { key: String, value: String },
    /// Preallocate the ballast file (already resolved under the root).
    Ballast { path: PathBuf, bytes: u64 },
    /// Not something sluicectl can set for another process: the line to add instead.
    Manual(String),
}

/// What the checks need besides the root and the profile.
pub struct Target<'a> {
    pub root: &'a Root,
    pub profile: &'a Profile,
    /// The broker's cores.
    pub broker_cores: Cores,
    /// True when `--cores` was not given (the broker uses every core).
    pub broker_cores_default: bool,
    pub log_dirs: &'a [PathBuf],
    pub ballast_bytes: u64,
}

fn row(
    setting: &str,
    current: impl Into<String>,
    recommended: impl Into<String>,
    status: Status,
    why: &str,
) -> Finding {
    Finding {
        setting: setting.to_string(),
        current: current.into(),
        recommended: recommended.into(),
        status,
        why: why.to_string(),
        fixes: Vec::new(),
    }
}

fn na(setting: &str, recommended: impl Into<String>, why: &str) -> Finding {
    row(setting, "n/a", recommended, Status::NotApplicable, why)
}

/// Every check, in the order the table shows them.
pub fn all(t: &Target) -> Vec<Finding> {
    let mut out = vec![cpu_governor(t), clocksource(t), thp(t), irq_affinity(t)];
    out.extend(block_devices(t));
    out.extend(sysctls(t));
    out.push(nofile(t));
    out.push(memlock(t));
    out.extend(t.log_dirs.iter().map(|d| ballast(t, d)));
    out
}

fn cpu_governor(t: &Target) -> Finding {
    const WHY: &str = "powersave/ondemand/schedutil lower the clock when idle and ramp up only after a \
        burst has started, so the first requests after a pause run slow: that is the p99";
    let want = &t.profile.cpu_governor;
    let mut paths = Vec::new();
    let mut values = Vec::new();
    for cpu in t.root.list("/sys/devices/system/cpu") {
        if !cpu.strip_prefix("cpu").is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())) {
            continue;
        }
        let path = format!("/sys/devices/system/cpu/{cpu}/cpufreq/scaling_governor");
        let Some(current) = t.root.read(&path) else { continue };
        let available = t.root.read(format!("/sys/devices/system/cpu/{cpu}/cpufreq/scaling_available_governors"));
        if available.is_some_and(|a| !sys::offered(&a).contains(want)) {
            continue; // the driver cannot run this core at a fixed top speed
        }
        values.push(current);
        paths.push(path);
    }
    if values.is_empty() {
        return na("cpu governor", want.as_str(), "no cpufreq here (a VM, or no frequency driver): nothing to set");
    }
    let mut distinct = values.clone();
    distinct.sort();
    distinct.dedup();
    let current = if distinct.len() == 1 { distinct[0].clone() } else { format!("mixed: {}", distinct.join(",")) };
    let bad: Vec<Fix> = paths
        .iter()
        .zip(&values)
        .filter(|(_, v)| *v != want)
        .map(|(p, _)| Fix::Write { path: p.clone(), value: want.clone() })
        .collect();
    changed(row("cpu governor", current, want.as_str(), Status::Ok, WHY), bad)
}

/// Marks a finding `Change` when it has fixes.
fn changed(mut f: Finding, fixes: Vec<Fix>) -> Finding {
    if !fixes.is_empty() {
        f.status = Status::Change;
        f.fixes = fixes;
    }
    f
}

fn clocksource(t: &Target) -> Finding {
    const WHY: &str = "the broker reads the clock on every request; tsc is read in user space (vDSO) in \
        nanoseconds, hpet/acpi_pm cost a syscall and a slow device read, kvm-clock adds a pvclock step";
    const PATH: &str = "/sys/devices/system/clocksource/clocksource0/current_clocksource";
    let want = &t.profile.clocksource;
    let Some(current) = t.root.read(PATH) else {
        return na("clocksource", want.as_str(), "no clocksource in sysfs");
    };
    if &current == want {
        return row("clocksource", current, want.as_str(), Status::Ok, WHY);
    }
    let available = t.root.read("/sys/devices/system/clocksource/clocksource0/available_clocksource");
    if available.is_some_and(|a| !sys::offered(&a).contains(want)) {
        let why = format!("the kernel does not offer {want} here (unstable or absent TSC); keep {current}");
        return row("clocksource", current, want.as_str(), Status::NotApplicable, &why);
    }
    let fix = Fix::Write { path: PATH.to_string(), value: want.clone() };
    changed(row("clocksource", current, want.as_str(), Status::Ok, WHY), vec![fix])
}

fn thp(t: &Target) -> Finding {
    // madvise, not always: with `always` any page fault in any process may stall in direct
    // compaction to build a huge page, and khugepaged rewrites memory in the background.
    // glommio's buffers do not need THP. `never` is as good for the broker.
    const WHY: &str = "`always` lets any page fault stall in direct compaction (milliseconds) and khugepaged \
        collapse pages behind the broker's back; madvise keeps huge pages only for code that asks (never is fine too)";
    const PATH: &str = "/sys/kernel/mm/transparent_hugepage/enabled";
    let want = &t.profile.thp_enabled;
    let Some(text) = t.root.read(PATH) else {
        return na("transparent hugepages", want.as_str(), "kernel built without THP: nothing to set");
    };
    let current = sys::selected(&text);
    let ok = &current == want || current == "never";
    let fixes = if ok { Vec::new() } else { vec![Fix::Write { path: PATH.to_string(), value: want.clone() }] };
    changed(row("transparent hugepages", current, format!("{want} (or never)"), Status::Ok, WHY), fixes)
}

fn irq_affinity(t: &Target) -> Finding {
    const SETTING: &str = "irq affinity";
    let online = sys::online_cores(t.root);
    let Some(text) = t.root.read("/proc/interrupts") else {
        return na(SETTING, "off broker cores", "no /proc/interrupts");
    };
    let irqs: Vec<(sys::Irq, Cores)> = sys::interrupts(&text)
        .into_iter()
        .filter(|irq| sys::is_io_irq(&irq.name))
        .filter_map(|irq| {
            let list = t.root.read(format!("/proc/irq/{}/smp_affinity_list", irq.number))?;
            let cores = sys::parse_cpu_list(&list).ok()?;
            Some((irq, cores))
        })
        .collect();
    if irqs.is_empty() {
        return na(SETTING, "off broker cores", "no NIC or NVMe IRQs found");
    }
    let free: Cores = online.difference(&t.broker_cores).copied().collect();
    // With every core running a shard there is nowhere to move IRQs: keep the last core for
    // them (`sluice serve --cores N` pins shards to the first N online cores, so the last
    // one is the core a smaller --cores frees).
    let (target, why) = if !free.is_empty() {
        let why = format!(
            "a NIC or NVMe interrupt on a shard's core preempts it mid-request; IRQs belong on the cores the \
             broker leaves free ({}); stop irqbalance or set IRQBALANCE_BANNED_CPULIST to the broker cores",
            sys::format_cpu_list(&free)
        );
        (free, why)
    } else if let (true, Some(&last)) = (online.len() > 1, online.iter().next_back()) {
        let how =
            if t.broker_cores_default { "the broker is assumed to use every core" } else { "--cores is every core" };
        let why = format!(
            "a NIC or NVMe interrupt on a shard's core preempts it mid-request; {how}: leave core {last} to IRQs \
             (run `sluice serve --cores {}`, check with --cores {}); stop irqbalance or ban the broker cores",
            online.len() - 1,
            sys::format_cpu_list(&online.iter().copied().filter(|&c| c != last).collect())
        );
        (Cores::from([last]), why)
    } else {
        return na(SETTING, "off broker cores", "a single core: IRQs cannot be kept off the broker");
    };
    let on_broker = irqs.iter().filter(|(_, cores)| !cores.is_subset(&target)).count();
    let recommended = format!("cpu {}", sys::format_cpu_list(&target));
    if on_broker == 0 {
        let current = format!("{} IRQs on cpu {}", irqs.len(), sys::format_cpu_list(&target));
        return row(SETTING, current, recommended, Status::Ok, &why);
    }
    let value = sys::format_cpu_list(&target);
    let current = if online.is_subset(&t.broker_cores) {
        format!("{on_broker} of {} IRQs not on cpu {value}", irqs.len())
    } else {
        format!("{on_broker} of {} IRQs on broker cores", irqs.len())
    };
    let fixes = irqs
        .iter()
        .filter(|(_, cores)| !cores.is_subset(&target))
        .map(|(irq, _)| Fix::Write {
            path: format!("/proc/irq/{}/smp_affinity_list", irq.number),
            value: value.clone(),
        })
        .collect();
    changed(row(SETTING, current, recommended, Status::Ok, &why), fixes)
}

/// Devices that are not disks a broker writes to.
fn is_virtual_block(name: &str) -> bool {
    ["loop", "ram", "zram", "sr", "fd", "nbd"].iter().any(|p| name.starts_with(p))
}

fn block_devices(t: &Target) -> Vec<Finding> {
    // NVMe and SSDs have deep hardware queues and no seek: a software elevator only adds a
    // lock and reordering on the submit path.
    const WHY_SCHED: &str = "NVMe/SSD queue in hardware and do not seek: an elevator only adds locking and \
        reordering on the submit path; none hands requests straight to the device";
    // Segment appends are large, aligned O_DIRECT writes already; merge lookups cost CPU on
    // every submission for nothing.
    const WHY_MERGE: &str = "segment appends are already large aligned O_DIRECT writes: merge lookups only cost \
        CPU on each submission (2 = no merging)";
    let want_sched = &t.profile.block_scheduler;
    let want_merge = t.profile.block_nomerges.to_string();
    let mut out = Vec::new();
    for dev in t.root.list("/sys/block") {
        if is_virtual_block(&dev) {
            continue;
        }
        let q = format!("/sys/block/{dev}/queue");
        // Rotational disks do benefit from an elevator: leave them alone.
        if t.root.read(format!("{q}/rotational")).as_deref() != Some("0") {
            continue;
        }
        if let Some(text) = t.root.read(format!("{q}/scheduler")) {
            let setting = format!("{dev} scheduler");
            let current = sys::selected(&text);
            let offered = sys::offered(&text);
            if &current == want_sched {
                out.push(row(&setting, current, want_sched.as_str(), Status::Ok, WHY_SCHED));
            } else if offered.len() > 1 && !offered.contains(want_sched) {
                out.push(row(
                    &setting,
                    current,
                    want_sched.as_str(),
                    Status::NotApplicable,
                    &format!("the kernel does not offer {want_sched}"),
                ));
            } else {
                let fix = Fix::Write { path: format!("{q}/scheduler"), value: want_sched.clone() };
                out.push(changed(row(&setting, current, want_sched.as_str(), Status::Ok, WHY_SCHED), vec![fix]));
            }
        }
        if let Some(current) = t.root.read(format!("{q}/nomerges")) {
            let fixes = if current == want_merge {
                Vec::new()
            } else {
                vec![Fix::Write { path: format!("{q}/nomerges"), value: want_merge.clone() }]
            };
            out.push(changed(
                row(&format!("{dev} nomerges"), current, want_merge.as_str(), Status::Ok, WHY_MERGE),
                fixes,
            ));
        }
    }
    if out.is_empty() {
        out.push(na("block devices", format!("{want_sched}, nomerges {want_merge}"), "no non-rotational disks found"));
    }
    out
}

fn sysctls(t: &Target) -> Vec<Finding> {
    t.profile
        .sysctls
        .iter()
        .map(|s| match t.root.read(s.proc_path()) {
            None => na(&s.key, s.shown(), &s.why),
            Some(current) => {
                let current = super::profile::normalize(&current);
                let fixes = if s.is_ok(&current) {
                    Vec::new()
                } else {
                    vec![Fix::Sysctl { key: s.key.clone(), value: s.value.clone() }]
                };
                changed(row(&s.key, current, s.shown(), Status::Ok, &s.why), fixes)
            }
        })
        .collect()
}

/// "20000" or "20000 (hard 40000)" or "unlimited".
fn show_limit(l: &sys::Limit) -> String {
    let v = |x: Option<u64>| x.map_or("unlimited".to_string(), |n| n.to_string());
    if l.soft == l.hard {
        v(l.soft)
    } else {
        format!("{} (hard {})", v(l.soft), v(l.hard))
    }
}

fn nofile(t: &Target) -> Finding {
    const SETTING: &str = "open files limit";
    let why = "3 fds per segment (.log, .index, .timeindex) plus one per connection: running out fails \
        accepts and segment rolls with EMFILE; this is this shell's limit, the service gets LimitNOFILE";
    let want = t.profile.nofile_min;
    let recommended = format!(">= {want}");
    let Some(l) = sys::limit(t.root, LimitKind::OpenFiles) else { return na(SETTING, recommended, why) };
    let ok = l.soft.is_none_or(|n| n >= want);
    let fix = Fix::Manual(format!(
        "set LimitNOFILE={want} in the systemd unit (tuning/systemd/sluice.service), \
         or `sluice - nofile {want}` in /etc/security/limits.conf"
    ));
    changed(row(SETTING, show_limit(&l), recommended, Status::Ok, why), if ok { Vec::new() } else { vec![fix] })
}

fn memlock(t: &Target) -> Finding {
    const SETTING: &str = "locked memory limit";
    // glommio (sys/uring.rs) refuses to start a shard below 512 KiB, and when the limit does
    // not cover the shard's io_memory it skips buffer registration with a warning.
    let why = "glommio locks each shard's registered io_uring DMA buffers (io_memory, 64 MiB by default): \
        below 512 KiB a shard does not start, below io_memory the kernel pins pages on every I/O instead; \
        this is this shell's limit, the service gets LimitMEMLOCK";
    let want = &t.profile.memlock;
    let Some(l) = sys::limit(t.root, LimitKind::LockedMemory) else { return na(SETTING, want.as_str(), why) };
    let fix = Fix::Manual(
        "set LimitMEMLOCK=infinity in the systemd unit (tuning/systemd/sluice.service), \
         or `sluice - memlock unlimited` in /etc/security/limits.conf"
            .to_string(),
    );
    let fixes = if l.soft.is_none() { Vec::new() } else { vec![fix] };
    changed(row(SETTING, show_limit(&l), want.as_str(), Status::Ok, why), fixes)
}

/// A log dir as the machine sees it: absolute paths are taken under the root, relative
/// ones from the current directory.
fn resolve_dir(root: &Root, dir: &Path) -> PathBuf {
    if dir.is_absolute() {
        root.path(dir)
    } else {
        dir.to_path_buf()
    }
}

fn ballast(t: &Target, dir: &Path) -> Finding {
    const WHY: &str = "a preallocated file to delete when the disk fills: frees space at once so the broker \
        can roll segments and retention can run, instead of stopping on ENOSPC";
    let setting = format!("ballast {}", dir.display());
    let want = t.ballast_bytes;
    let recommended = sys::human_bytes(want);
    let resolved = resolve_dir(t.root, dir);
    if !resolved.is_dir() {
        return na(&setting, recommended, "no such log dir here (pass --log-dir with the broker's log.dirs)");
    }
    let path = resolved.join("ballast");
    // Allocated blocks, not the length: a sparse file would free nothing when deleted.
    let allocated = std::fs::metadata(&path).ok().map(|m| m.blocks() * 512);
    let current = allocated.map_or_else(|| "absent".to_string(), sys::human_bytes);
    let fixes =
        if allocated.is_some_and(|a| a >= want) { Vec::new() } else { vec![Fix::Ballast { path, bytes: want }] };
    changed(row(&setting, current, recommended, Status::Ok, WHY), fixes)
}
