//! A Sluice broker process for a test: started on a fresh port and data directory,
//! killed, restarted, stopped; its log kept for failure messages.

use super::*;

pub struct Broker {
    child: Option<Child>,
    port: u16,
    /// The admin HTTP listener's port (`admin.listeners`, unless a test overrides it).
    admin_port: u16,
    dir: tempfile::TempDir,
    data_dir: PathBuf,
    log_path: PathBuf,
    overrides: Vec<(String, String)>,
    /// Environment variables set on the broker process (test hooks), from the next start.
    env: Vec<(String, String)>,
    cores: usize,
    starts: usize,
    /// A cgroup's `cgroup.procs` the process joins before it runs (`netcut`).
    cgroup: Option<std::ffi::CString>,
}

/// A free port below the kernel's ephemeral range (`net.ipv4.ip_local_port_range`). Not
/// one the kernel hands out: while a broker is down (between a kill -9 and its restart) a
/// client connecting to it gets an ephemeral source port, and if that were the broker's own
/// port, the connection would connect to itself (TCP simultaneous open) and hold the port,
/// so the restarted broker could not bind it (seen: "Address already in use" in the crash
/// loop).
pub fn free_port() -> u16 {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    const LOWEST: usize = 10_000;
    let ephemeral_start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<usize>().ok())
        .unwrap_or(32_768)
        .max(LOWEST + 1_000);
    let span = ephemeral_start - LOWEST;
    // Test binaries run side by side with other processes: start somewhere of our own.
    let start = std::process::id() as usize * 7_919;
    for _ in 0..span {
        let port = LOWEST + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % span;
        if TcpListener::bind(("127.0.0.1", port as u16)).is_ok() {
            return port as u16;
        }
    }
    panic!("no free port in {LOWEST}..{ephemeral_start}");
}

impl Broker {
    /// Start a broker with default settings and `--cores 2`.
    pub fn start() -> Broker {
        Broker::start_with(&[], DEFAULT_CORES)
    }

    /// Start a broker with the given `--override key=value` pairs and `--cores N`.
    pub fn start_with(overrides: &[(&str, &str)], cores: usize) -> Broker {
        let dir = tempfile::tempdir().expect("create tempdir for broker");
        let data_dir = dir.path().join("data");
        std::fs::create_dir_all(&data_dir).expect("create log.dirs");
        let log_path = dir.path().join("broker.log");
        let mut b = Broker {
            child: None,
            port: free_port(),
            admin_port: free_port(),
            dir,
            data_dir,
            log_path,
            overrides: overrides.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            env: Vec::new(),
            cores,
            starts: 0,
            cgroup: None,
        };
        b.spawn_and_wait();
        b
    }

    /// A broker not started yet, listening for clients on `port` (the overrides name its
    /// listeners): a cluster node, to format and then start with the others.
    pub fn unstarted(port: u16, overrides: &[(String, String)], cores: usize) -> Broker {
        let dir = tempfile::tempdir().expect("create tempdir for broker");
        let data_dir = dir.path().join("data");
        std::fs::create_dir_all(&data_dir).expect("create log.dirs");
        let log_path = dir.path().join("broker.log");
        Broker {
            child: None,
            port,
            admin_port: free_port(),
            dir,
            data_dir,
            log_path,
            overrides: overrides.to_vec(),
            env: Vec::new(),
            cores,
            starts: 0,
            cgroup: None,
        }
    }

    /// From the next start, the process runs in the cgroup whose `cgroup.procs` this is
    /// (`netcut::NetLab::group`), from before its first socket.
    pub fn set_cgroup(&mut self, procs: &Path) {
        use std::os::unix::ffi::OsStrExt;
        self.cgroup = Some(std::ffi::CString::new(procs.as_os_str().as_bytes()).expect("a path without NUL"));
    }

    /// Sets (or replaces) one of the broker's overrides before it starts; the previous
    /// value, if any.
    /// This broker's setting `key`, if the harness or a test set it.
    pub fn override_value(&self, key: &str) -> Option<&str> {
        self.overrides.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    pub fn set_override(&mut self, key: &str, value: &str) -> Option<String> {
        match self.overrides.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => Some(std::mem::replace(v, value.to_string())),
            None => {
                self.overrides.push((key.to_string(), value.to_string()));
                None
            }
        }
    }

    /// `sluice format --cluster-id ID` on this broker's data directory, with its overrides.
    pub fn format(&mut self, cluster_id: &str) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
        cmd.arg("format").arg("--cluster-id").arg(cluster_id);
        for (k, v) in &self.overrides {
            cmd.arg("--override").arg(format!("{k}={v}"));
        }
        cmd.arg("--override").arg(format!("log.dirs={}", self.data_dir.display()));
        let out = cmd.output().expect("run sluice format");
        assert!(out.status.success(), "sluice format: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Removes everything in the data directory (a lost disk).
    pub fn wipe_data(&mut self) {
        assert!(self.child.is_none(), "wipe_data: broker running");
        let _ = std::fs::remove_dir_all(&self.data_dir);
        std::fs::create_dir_all(&self.data_dir).expect("create log.dirs");
        self.note("data directory wiped");
    }

    /// Starts the broker without waiting for it to listen (cluster nodes wait for each other).
    pub fn spawn(&mut self) {
        self.spawn_only();
    }

    /// Starts a broker that is expected to refuse to run: returns its exit status, or panics
    /// if it is still running after `timeout`.
    pub fn start_expecting_exit(&mut self, timeout: Duration) -> ExitStatus {
        self.spawn_only();
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                self.child = None;
                return status;
            }
            if Instant::now() >= deadline {
                self.kill_quietly();
                panic!("broker still running after {timeout:?}\n{}", self.log_tail(100));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn spawn_and_wait(&mut self) {
        self.spawn_only();
        self.wait_ready();
    }

    fn spawn_only(&mut self) {
        assert!(self.child.is_none(), "broker already running");
        self.starts += 1;
        let log = OpenOptions::new().create(true).append(true).open(&self.log_path).expect("open broker log file");
        {
            use std::io::Write;
            let mut l = &log;
            let _ = writeln!(l, "===== harness: starting broker (start #{}) on port {} =====", self.starts, self.port);
        }
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
        cmd.arg("serve");
        cmd.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let mut has_listeners = false;
        let mut has_logdirs = false;
        let mut has_admin = false;
        let mut has_rebalance_delay = false;
        for (k, v) in &self.overrides {
            if k == "group.initial.rebalance.delay.ms" {
                has_rebalance_delay = true;
            }
            if k == "listeners" {
                has_listeners = true;
            }
            if k == "admin.listeners" {
                has_admin = true;
            }
            if k == "log.dirs" {
                has_logdirs = true;
            }
            cmd.arg("--override").arg(format!("{k}={v}"));
        }
        if !has_listeners {
            cmd.arg("--override").arg(format!("listeners=PLAINTEXT://127.0.0.1:{}", self.port));
        }
        if !has_admin {
            cmd.arg("--override").arg(format!("admin.listeners=127.0.0.1:{}", self.admin_port));
        }
        if !has_rebalance_delay {
            // Kafka's default (3000 ms) makes every new group wait for more members; tests
            // want their groups formed at once, unless they set the key themselves.
            cmd.arg("--override").arg("group.initial.rebalance.delay.ms=0");
        }
        if !has_logdirs {
            cmd.arg("--override").arg(format!("log.dirs={}", self.data_dir.display()));
        }
        cmd.arg("--cores").arg(self.cores.to_string());
        cmd.stdin(Stdio::null()).stdout(Stdio::from(log.try_clone().expect("clone log fd"))).stderr(Stdio::from(log));
        if let Some(procs) = self.cgroup.clone() {
            use std::os::unix::process::CommandExt;
            // SAFETY: between fork and exec only async-signal-safe calls (open, write,
            // close) on memory prepared before the fork.
            unsafe {
                cmd.pre_exec(move || {
                    let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
                    if fd < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    // "0": the writing process itself.
                    let written = libc::write(fd, b"0".as_ptr().cast(), 1);
                    let err = std::io::Error::last_os_error();
                    libc::close(fd);
                    if written == 1 {
                        Ok(())
                    } else {
                        Err(err)
                    }
                });
            }
        }
        let child = cmd.spawn().unwrap_or_else(|e| panic!("failed to spawn sluice binary: {e}"));
        self.child = Some(child);
    }

    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        let addr = format!("127.0.0.1:{}", self.port);
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    panic!("broker exited during startup with {status}\n{}", self.log_tail(200));
                }
            }
            if TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_millis(200)).is_ok() {
                return;
            }
            if Instant::now() >= deadline {
                self.kill_quietly();
                panic!(
                    "broker did not accept connections on {addr} within {:?}\n{}",
                    READY_TIMEOUT,
                    self.log_tail(200)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// "127.0.0.1:PORT"
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// "127.0.0.1:PORT" of the admin HTTP listener (metrics, health, status).
    pub fn admin_addr(&self) -> String {
        format!("127.0.0.1:{}", self.admin_port)
    }

    /// The broker's `log.dirs` directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Directory of one partition: `<log.dirs>/<topic>-<partition>`.
    pub fn partition_dir(&self, topic: &str, partition: i32) -> PathBuf {
        self.data_dir.join(format!("{topic}-{partition}"))
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Crash the broker with SIGKILL and reap it.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("kill9: broker not running");
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        self.note("broker killed with SIGKILL");
    }

    /// Clean shutdown: SIGTERM, wait up to 20 s. If the broker does not exit by
    /// itself it is SIGKILLed and the test fails. Returns the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("stop: broker not running");
        let pid = child.id();
        let _ =
            Command::new("kill").arg("-TERM").arg(pid.to_string()).stdout(Stdio::null()).stderr(Stdio::null()).status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    self.note(&format!("broker exited after SIGTERM with {status}"));
                    if !status.success() {
                        eprintln!("[harness] warning: broker exited with {status} after SIGTERM (port {})", self.port);
                    }
                    return status;
                }
                Ok(None) => {}
                Err(e) => panic!("waiting for broker: {e}"),
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "broker did not exit within {:?} after SIGTERM (killed it)\n{}",
                    STOP_TIMEOUT,
                    self.log_tail(200)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Change the `--cores` used by the next `restart()`.
    /// Sets an environment variable (a test hook) on the broker process from its next start.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
    }

    pub fn set_cores(&mut self, cores: usize) {
        self.cores = cores;
    }

    /// Start the broker again with the same port, data dir and overrides.
    /// The previous process must have been stopped (`stop`/`kill9`).
    pub fn restart(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
        self.spawn_and_wait();
    }

    fn note(&self, msg: &str) {
        use std::io::Write;
        if let Ok(mut f) = OpenOptions::new().append(true).open(&self.log_path) {
            let _ = writeln!(f, "===== harness: {msg} =====");
        }
    }

    fn kill_quietly(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Last `n` lines of the broker's combined stdout/stderr.
    pub fn log_tail(&self, n: usize) -> String {
        let mut s = String::new();
        if let Ok(mut f) = File::open(&self.log_path) {
            let _ = f.read_to_string(&mut s);
        }
        let lines: Vec<&str> = s.lines().collect();
        let start = lines.len().saturating_sub(n);
        format!(
            "----- broker log ({}; last {} lines) -----\n{}\n----- end broker log -----",
            self.log_path.display(),
            lines.len() - start,
            lines[start..].join("\n")
        )
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill_quietly();
        if std::thread::panicking() {
            eprintln!("{}", self.log_tail(300));
        }
    }
}
