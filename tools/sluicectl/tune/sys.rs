//! Reading the machine: every procfs/sysfs path goes through [`Root`], so `--root <dir>`
//! points the whole check (and apply) at a fake tree. A file that cannot be read is
//! `None` (the caller reports "n/a"), never an error: VMs and containers lack many of them.
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The directory that stands for `/`.
#[derive(Debug, Clone)]
pub struct Root {
    dir: PathBuf,
    real: bool,
}

impl Root {
    pub fn new(dir: &Path) -> Root {
        let real = std::fs::canonicalize(dir).map(|p| p == Path::new("/")).unwrap_or(false);
        Root { dir: dir.to_path_buf(), real }
    }

    /// True when this is the machine's own `/` (limits come from getrlimit, and writes
    /// need root).
    pub fn is_real(&self) -> bool {
        self.real
    }

    /// `abs` (a machine path such as `/proc/sys/vm/swappiness`) under the root.
    pub fn path(&self, abs: impl AsRef<Path>) -> PathBuf {
        let abs = abs.as_ref();
        if self.real {
            return abs.to_path_buf();
        }
        self.dir.join(abs.strip_prefix("/").unwrap_or(abs))
    }

    /// The trimmed contents of `abs`, or `None` when it is missing or unreadable.
    pub fn read(&self, abs: impl AsRef<Path>) -> Option<String> {
        std::fs::read_to_string(self.path(abs)).ok().map(|s| s.trim().to_string())
    }

    /// Names in directory `abs`, sorted; empty when it is missing.
    pub fn list(&self, abs: impl AsRef<Path>) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.path(abs))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort_by_key(|a| natural_key(a));
        v
    }
}

/// Sorts "cpu2" before "cpu10".
fn natural_key(s: &str) -> (String, u64) {
    let digits = s.len() - s.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (prefix, num) = s.split_at(s.len() - digits);
    (prefix.to_string(), num.parse().unwrap_or(0))
}

/// A set of cores, as the kernel writes it ("0-3,6").
pub type Cores = BTreeSet<usize>;

/// Parses a kernel cpu list: "0-3,6", "1", "" (empty set).
pub fn parse_cpu_list(s: &str) -> Result<Cores, String> {
    let mut set = Cores::new();
    for part in s.trim().split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let num = |t: &str| t.trim().parse::<usize>().map_err(|_| format!("bad cpu list '{s}'"));
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b || b - a > 65_536 {
                    return Err(format!("bad cpu range '{part}'"));
                }
                set.extend(a..=b);
            }
            None => {
                set.insert(num(part)?);
            }
        }
    }
    Ok(set)
}

/// The kernel's compact form: {0,1,2,3,6} → "0-3,6".
pub fn format_cpu_list(cores: &Cores) -> String {
    let mut parts = Vec::new();
    let mut it = cores.iter().copied().peekable();
    while let Some(start) = it.next() {
        let mut end = start;
        while it.peek() == Some(&(end + 1)) {
            end += 1;
            it.next();
        }
        parts.push(if start == end { start.to_string() } else { format!("{start}-{end}") });
    }
    parts.join(",")
}

/// Online cores: `/sys/devices/system/cpu/online`, else the CPU columns of
/// `/proc/interrupts`, else the `cpuN` directories.
pub fn online_cores(root: &Root) -> Cores {
    if let Some(set) = root.read("/sys/devices/system/cpu/online").and_then(|s| parse_cpu_list(&s).ok()) {
        if !set.is_empty() {
            return set;
        }
    }
    if let Some(text) = root.read("/proc/interrupts") {
        let header = text.lines().next().unwrap_or("");
        let set: Cores = header.split_whitespace().filter_map(|c| c.strip_prefix("CPU")?.parse().ok()).collect();
        if !set.is_empty() {
            return set;
        }
    }
    root.list("/sys/devices/system/cpu").iter().filter_map(|n| n.strip_prefix("cpu")?.parse().ok()).collect()
}

/// One line of `/proc/interrupts` with a numeric IRQ.
#[derive(Debug, Clone)]
pub struct Irq {
    pub number: u32,
    /// The last column: the device's name for this vector, e.g. `nvme0q1`, `eth0-TxRx-3`.
    pub name: String,
}

/// The numbered IRQs of `/proc/interrupts` (NMI, LOC and other per-CPU rows are skipped).
pub fn interrupts(text: &str) -> Vec<Irq> {
    let mut lines = text.lines();
    let ncpu = lines.next().map_or(0, |h| h.split_whitespace().count());
    lines
        .filter_map(|line| {
            let (num, rest) = line.split_once(':')?;
            let number = num.trim().parse().ok()?;
            // Counts (one per CPU), then chip, hardware IRQ and trigger, then the name.
            let name = rest.split_whitespace().skip(ncpu).last()?.trim_end_matches(',').to_string();
            Some(Irq { number, name })
        })
        .collect()
}

/// True for the IRQs of NVMe queues and NICs, the ones that steal time from a shard when
/// they fire on its core. Matched by name as drivers register them.
pub fn is_io_irq(name: &str) -> bool {
    // Block and network queues of virtio: virtio2-input.0 / -output.0 (net), virtio1-req.0
    // (blk). Not virtioN-config, nor virtio-rng's plain "input" queue.
    if let Some(rest) = name.strip_prefix("virtio") {
        let queue = rest.split_once('-').map_or("", |(_, q)| q);
        return ["input.", "output.", "req."].iter().any(|p| queue.starts_with(p));
    }
    // nvme0q1; eth0-TxRx-0, enp3s0f0-TxRx-1, ens5-Tx-Rx-0; mlx5_comp0@pci:..;
    // Intel and Broadcom drivers prefix the queue names with their own name.
    ["nvme", "eth", "en", "mlx", "i40e-", "ice-", "ixgbe-", "bnxt_"].iter().any(|p| name.starts_with(p))
}

/// A resource limit: the soft value (what the process runs with) and the hard ceiling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// `None` is unlimited.
    pub soft: Option<u64>,
    pub hard: Option<u64>,
}

#[derive(Debug, Clone, Copy)]
pub enum LimitKind {
    OpenFiles,
    LockedMemory,
}

impl LimitKind {
    /// The row name in `/proc/<pid>/limits`.
    fn proc_name(self) -> &'static str {
        match self {
            LimitKind::OpenFiles => "Max open files",
            LimitKind::LockedMemory => "Max locked memory",
        }
    }
}

/// This process's limit: getrlimit on the real machine, `<root>/proc/self/limits` on a
/// fake tree.
pub fn limit(root: &Root, kind: LimitKind) -> Option<Limit> {
    if root.is_real() {
        let resource = match kind {
            LimitKind::OpenFiles => libc::RLIMIT_NOFILE,
            LimitKind::LockedMemory => libc::RLIMIT_MEMLOCK,
        };
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit writes into the valid rlimit struct it is given.
        if unsafe { libc::getrlimit(resource, &mut lim) } != 0 {
            return None;
        }
        let value = |v: libc::rlim_t| (v != libc::RLIM_INFINITY).then_some(v);
        return Some(Limit { soft: value(lim.rlim_cur), hard: value(lim.rlim_max) });
    }
    parse_limits(&root.read("/proc/self/limits")?, kind)
}

/// One row of a `/proc/<pid>/limits` table.
pub fn parse_limits(text: &str, kind: LimitKind) -> Option<Limit> {
    let line = text.lines().find_map(|l| l.strip_prefix(kind.proc_name()))?;
    let mut cols = line.split_whitespace();
    let value = |s: &str| if s == "unlimited" { Some(None) } else { s.parse().ok().map(Some) };
    let soft = value(cols.next()?)?;
    let hard = value(cols.next()?)?;
    Some(Limit { soft, hard })
}

/// The selected value of a sysfs choice file ("none [mq-deadline] kyber" → "mq-deadline");
/// a file without brackets is taken whole.
pub fn selected(choices: &str) -> String {
    match (choices.find('['), choices.find(']')) {
        (Some(a), Some(b)) if b > a => choices[a + 1..b].to_string(),
        _ => choices.trim().to_string(),
    }
}

/// The values a sysfs choice file offers, brackets removed.
pub fn offered(choices: &str) -> Vec<String> {
    choices.split_whitespace().map(|c| c.trim_matches(|ch| ch == '[' || ch == ']').to_string()).collect()
}

/// "1073741824" → "1 GiB", for the table.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut unit = 0;
    let mut v = bytes;
    while unit + 1 < UNITS.len() && v >= 1024 && v % 1024 == 0 {
        v /= 1024;
        unit += 1;
    }
    format!("{v} {}", UNITS[unit])
}

/// Single-quotes a path for a shell command when it holds anything unusual.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+:,=@".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}
