//! Network cuts between processes on loopback. Each process runs in a cgroup (v2) of its
//! own, and nftables rules drop the TCP packets that sockets of one group send to given
//! ports (`socket cgroupv2`): a cut node can neither reach the others nor be reached by
//! them, while the test itself (outside every group) still reaches everyone, as a client
//! on the node's side of a partition would. Needs root, nftables (`nft`) and a cgroup v2
//! hierarchy; without them the test fails saying so, never skips. The table and the groups
//! are removed on drop, also when the test fails.
use std::path::PathBuf;
use std::process::Command;

pub struct NetLab {
    table: String,
    /// Where the cgroup v2 hierarchy is mounted, and that mount relative to
    /// /sys/fs/cgroup (how nft names groups).
    mount: PathBuf,
    nft_prefix: String,
    groups: Vec<PathBuf>,
}

fn nft(args: &[&str]) -> Result<(), String> {
    let bin = if std::path::Path::new("/usr/sbin/nft").exists() { "/usr/sbin/nft" } else { "nft" };
    let out = Command::new(bin).args(args).output().map_err(|e| format!("cannot run nft ({e})"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("nft {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

const HINT: &str = "network-cut tests need root, nftables (apt-get install nftables; \
     scripts/install-test-deps.sh installs it) and a cgroup v2 hierarchy";

impl NetLab {
    pub fn new() -> NetLab {
        let mounts = std::fs::read_to_string("/proc/self/mounts").expect("read /proc/self/mounts");
        let mount = mounts
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.get(2) == Some(&"cgroup2")).then(|| PathBuf::from(f[1]))
            })
            .min_by_key(|p| p.as_os_str().len())
            .unwrap_or_else(|| panic!("no cgroup v2 hierarchy is mounted; {HINT}"));
        let nft_prefix = match mount.strip_prefix("/sys/fs/cgroup") {
            Ok(rel) if rel.as_os_str().is_empty() => String::new(),
            Ok(rel) => format!("{}/", rel.display()),
            Err(_) => panic!("the cgroup v2 hierarchy is at {}, not under /sys/fs/cgroup; {HINT}", mount.display()),
        };
        let table = format!("sluice_test_{}", std::process::id());
        nft(&["add", "table", "inet", &table]).unwrap_or_else(|e| panic!("{e}; {HINT}"));
        let lab = NetLab { table, mount, nft_prefix, groups: Vec::new() };
        for (chain, hook) in [("out", "output"), ("in", "input")] {
            let spec = format!("{{ type filter hook {hook} priority 0; policy accept; }}");
            nft(&["add", "chain", "inet", &lab.table, chain, &spec]).unwrap_or_else(|e| panic!("{e}; {HINT}"));
        }
        lab
    }

    /// A new group: its `cgroup.procs` file, for `Broker::set_cgroup`.
    pub fn group(&mut self, name: &str) -> PathBuf {
        let dir = self.mount.join(self.group_name(name));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create cgroup {}: {e}; {HINT}", dir.display()));
        self.groups.push(dir.clone());
        dir.join("cgroup.procs")
    }

    fn group_name(&self, name: &str) -> String {
        format!("sluice-test-{}-{name}", std::process::id())
    }

    /// Cuts groups `x` and `y` apart, whose processes listen on `x_ports` and `y_ports`:
    /// every connection between them has a listener of one at one end, so dropping what
    /// one sends to, or receives from, the other's listeners drops all of their traffic,
    /// also the answers to requests sent before the cut. Processes outside both groups
    /// still reach both.
    pub fn cut(&self, x: &str, x_ports: &[u16], y: &str, y_ports: &[u16]) {
        for (from, to_ports) in [(x, y_ports), (y, x_ports)] {
            self.rule("out", from, "dport", to_ports);
            self.rule("in", from, "sport", to_ports);
        }
    }

    fn rule(&self, chain: &str, group: &str, port_field: &str, ports: &[u16]) {
        let group = format!("\"{}{}\"", self.nft_prefix, self.group_name(group));
        let ports = format!("{{ {} }}", ports.iter().map(u16::to_string).collect::<Vec<_>>().join(", "));
        let rule = ["add", "rule", "inet", &self.table, chain, "socket", "cgroupv2", "level", "1", &group];
        let rule: Vec<&str> = rule.iter().copied().chain(["tcp", port_field, &ports, "drop"]).collect();
        nft(&rule).unwrap_or_else(|e| panic!("{e}; {HINT}"));
    }

    /// Removes every cut.
    pub fn heal(&self) {
        for chain in ["out", "in"] {
            nft(&["flush", "chain", "inet", &self.table, chain]).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

impl Drop for NetLab {
    fn drop(&mut self) {
        let _ = nft(&["delete", "table", "inet", &self.table]);
        for g in &self.groups {
            // The processes in it may take a moment to be gone.
            for _ in 0..50 {
                if std::fs::remove_dir(g).is_ok() || !g.exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
    }
}
