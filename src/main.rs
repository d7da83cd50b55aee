//! `sluice serve [server.properties] [--override key=value]... [--cores N]`
//!
//! Loads the configuration and the metadata, then runs one glommio executor per core, each
//! pinned, each owning its partitions and accepting on the shared port.
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use glommio::channels::channel_mesh::MeshBuilder;
use glommio::{CpuSet, Latency, LocalExecutorBuilder, Placement, PoolPlacement, Shares};

use sluice::config::BrokerConfig;
use sluice::controller::ops::Registration;
use sluice::limits;
use sluice::metadata::{self, store};
use sluice::metrics::ShardMetrics;
use sluice::shard::{controller::Controller, Lifecycle, NodeIdentity, Shard, ShardMsg};
use sluice::storage::background_io;

#[global_allocator]
static ALLOCATOR: sluice::alloc::BrokerAllocator = sluice::alloc::BrokerAllocator;

#[derive(Parser)]
#[command(name = "sluice", version, about = "A Kafka-compatible, thread-per-core message broker")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the broker.
    Serve {
        /// A server.properties file (Kafka's property names).
        properties: Option<PathBuf>,
        /// Override one property: --override key=value (repeatable; wins over the file).
        #[arg(long = "override", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
        /// Shards (one pinned executor per core); default: every online core.
        #[arg(long)]
        cores: Option<usize>,
    },
    /// Prepare a node's log directory for a cluster (like kafka-storage.sh format): writes
    /// meta.properties with the cluster id, the node id and a new directory id.
    Format {
        /// The cluster's id (make one with `sluice random-uuid`); the same on every node.
        /// May start with '-' (base64url ids do).
        #[arg(long = "cluster-id", short = 't', allow_hyphen_values = true)]
        cluster_id: String,
        /// A server.properties file (Kafka's property names).
        properties: Option<PathBuf>,
        /// Override one property: --override key=value (repeatable; wins over the file).
        #[arg(long = "override", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
        /// Succeed without changes when the directory is already formatted for this cluster.
        #[arg(long = "ignore-formatted", short = 'g')]
        ignore_formatted: bool,
    },
    /// Print a new random cluster id.
    RandomUuid,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,openraft=warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Serve { properties, overrides, cores }) => run(properties.as_deref(), &overrides, cores),
        Some(Command::Format { cluster_id, properties, overrides, ignore_formatted }) => {
            format_dir(&cluster_id, properties.as_deref(), &overrides, ignore_formatted)
        }
        Some(Command::RandomUuid) => {
            println!("{}", kafka_style_uuid(uuid::Uuid::new_v4()));
            Ok(())
        }
        None => run(None, &[], None),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("sluice: {msg}");
            ExitCode::from(2)
        }
    }
}

fn load_config(properties: Option<&Path>, overrides: &[String]) -> Result<BrokerConfig, String> {
    let text = match properties {
        Some(p) => std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?,
        None => String::new(),
    };
    let mut pairs = Vec::new();
    for o in overrides {
        let (k, v) = o.split_once('=').ok_or_else(|| format!("--override {o:?}: expected key=value"))?;
        pairs.push((k.trim().to_string(), v.trim().to_string()));
    }
    let (config, warnings) = BrokerConfig::from_sources(&text, &pairs).map_err(|e| e.to_string())?;
    for w in warnings {
        tracing::warn!("{w}");
    }
    Ok(config)
}

/// `sluice format`: writes meta.properties for `cluster_id` in the configured log directory.
/// A directory formatted for another cluster or node, or one holding data already, is
/// refused (Kafka's rules); the same cluster again is refused unless `ignore_formatted`.
fn format_dir(
    cluster_id: &str,
    properties: Option<&Path>,
    overrides: &[String],
    ignore_formatted: bool,
) -> Result<(), String> {
    let config = load_config(properties, overrides)?;
    if cluster_id.trim().is_empty() || cluster_id.contains(char::is_whitespace) {
        return Err(format!("--cluster-id {cluster_id:?}: a cluster id is one word (see sluice random-uuid)"));
    }
    let dir = &config.log_dir;
    std::fs::create_dir_all(dir).map_err(|e| format!("log.dirs {}: {e}", dir.display()))?;
    let path = dir.join("meta.properties");
    if let Some((stored, _)) = read_meta_properties(&path, config.node_id)? {
        if stored != cluster_id {
            return Err(format!("{} is formatted for cluster {stored}, not {cluster_id}", dir.display()));
        }
        if ignore_formatted {
            return Ok(());
        }
        return Err(format!("{} is already formatted (use --ignore-formatted to accept that)", dir.display()));
    }
    if dir.join("__cluster_metadata").exists() {
        return Err(format!("{} holds metadata already; format only an empty directory", dir.display()));
    }
    write_meta_properties(&path, cluster_id, config.node_id, uuid::Uuid::new_v4())?;
    println!("Formatted {} for cluster {cluster_id}, node {}", dir.display(), config.node_id);
    Ok(())
}

fn run(properties: Option<&Path>, overrides: &[String], cores: Option<usize>) -> Result<(), String> {
    let config = load_config(properties, overrides)?;
    // Sorted: glommio lists the CPUs from a hash set, in a different order each start, so
    // the shards landed on different cores from one start to the next (with `--cores 1` on
    // two cores, half the time on the one the user had kept for other work). Shards take the
    // lowest-numbered CPUs, helpers the rest.
    let mut online: Vec<usize> =
        CpuSet::online().map_err(|e| format!("cannot list CPUs: {e}"))?.into_iter().map(|l| l.cpu).collect();
    online.sort_unstable();
    let shards = cores.unwrap_or(online.len()).max(1);
    if shards > online.len() {
        return Err(format!("--cores {shards}: only {} cores are online", online.len()));
    }
    raise_memlock_limit();
    // Helper threads (background I/O, glommio's blocking pool) run on the CPUs the shards
    // leave free; a thread spawned from a shard would otherwise inherit its pinning and
    // take time from it on its own core.
    let (helper_cpus, placement) = match &online[shards..] {
        [] => (online.clone(), background_io::Placement::Shared(online.clone())),
        free => (free.to_vec(), background_io::Placement::Free(free.to_vec())),
    };
    background_io::set_placement(placement);
    let pool_cpus = CpuSet::online().map_err(|e| e.to_string())?.filter(|l| helper_cpus.contains(&l.cpu));

    std::fs::create_dir_all(&config.log_dir).map_err(|e| format!("log.dirs {}: {e}", config.log_dir.display()))?;
    let (cluster_id, directory_id) = load_or_create_meta_properties(&config)?;
    sluice::storage::io::write_iopoll_probe(&config.log_dir).map_err(|e| e.to_string())?;
    if !config.process_roles.broker {
        return run_controller_only(&config, &cluster_id, directory_id);
    }
    let (quorum, registration) = start_quorum(&config, &cluster_id, directory_id, shards)?;
    let image = quorum.image();
    remove_orphan_partitions(&config.log_dir, &image);
    let listener = config.client_listener().clone();
    // The shards bind with SO_REUSEPORT, which would let a second broker share the port
    // silently; a bind without it first fails with EADDRINUSE as Kafka does (std sets
    // SO_REUSEADDR, so connections left in TIME_WAIT do not block a restart).
    for l in config.client_listeners() {
        drop(
            bind_when_free(&l.host, l.port)
                .map_err(|e| format!("listeners: cannot bind {}:{}: {e}", l.host, l.port))?,
        );
    }
    let client_addrs: Vec<(String, String)> =
        config.client_listeners().map(|l| (l.name.clone(), format!("{}:{}", l.host, l.port))).collect();
    let mut admin = bind_admin_listener(&config)?;
    let admin_addr = admin.as_ref().and_then(|l| l.local_addr().ok()).map(|a| a.to_string());
    let advertised = config.advertised(&listener);
    let node = Arc::new(NodeIdentity {
        node_id: config.node_id,
        cluster_id,
        advertised_host: advertised.host.clone(),
        advertised_port: advertised.port,
    });
    let lifecycle = Arc::new(Lifecycle::default());
    install_signal_handler(lifecycle.clone(), quorum.clone(), config.is_cluster().then_some(registration))?;

    let config = Arc::new(config);
    let mesh: MeshBuilder<ShardMsg, _> = MeshBuilder::full(shards, limits::SHARD_CHANNEL_DEPTH);
    let started = Instant::now();
    let metrics: Arc<[Arc<ShardMetrics>]> = (0..shards).map(|_| Arc::new(ShardMetrics::new(shards))).collect();
    let mut handles = Vec::new();
    for (i, &cpu) in online.iter().take(shards).enumerate() {
        let (config, node, lifecycle, image, mesh, metrics, quorum) = (
            config.clone(),
            node.clone(),
            lifecycle.clone(),
            image.clone(),
            mesh.clone(),
            metrics.clone(),
            quorum.clone(),
        );
        let addrs = client_addrs.clone();
        let admin = if i == 0 { admin.take() } else { None };
        let admin_addr = admin_addr.clone();
        let handle = LocalExecutorBuilder::new(Placement::Fixed(cpu))
            .name(&format!("sluice-shard-{i}"))
            .blocking_thread_pool_placement(PoolPlacement::Fenced(1, pool_cpus.clone()))
            .io_memory(config.io_memory_bytes as usize)
            .spawn(move || async move {
                sluice::storage::io_workers::keep_off_the_shards_core();
                let data_tq = glommio::executor().create_task_queue(
                    Shares::Static(1000),
                    Latency::Matters(Duration::from_millis(1)),
                    "data",
                );
                let background_tq =
                    glommio::executor().create_task_queue(Shares::Static(100), Latency::NotImportant, "background");
                let (senders, receivers) = mesh.join().await.expect("shard mesh");
                let controller = (i == 0).then(|| std::rc::Rc::new(Controller::new(quorum, image.log_index)));
                sluice::metrics::install_for_this_thread(metrics[i].clone());
                let shard = Shard::new(
                    sluice::model::ShardId(i),
                    shards,
                    config,
                    node,
                    lifecycle.clone(),
                    image.clone(),
                    senders,
                    data_tq,
                    background_tq,
                    controller,
                    metrics[i].clone(),
                );
                shard.spawn_receivers(receivers);
                if let Some(admin) = admin {
                    // Before the partitions load, so /health answers 503 meanwhile.
                    let server = sluice::server::admin::serve(
                        shard.clone(),
                        sluice::server::admin::from_std(admin),
                        metrics.clone(),
                        started,
                    );
                    glommio::spawn_local_into(server, background_tq).map_err(|e| e.to_string())?.detach();
                }
                sluice::storage::io::prime_iopoll_probe(&shard.config.log_dir).await.map_err(|e| e.to_string())?;
                if i > 0 {
                    // Tests only: hold the other shards' first metadata apply, so that the
                    // controller's broadcast of a newer image overtakes it (tests/restart.rs).
                    if let Some(ms) =
                        std::env::var("SLUICE_TEST_DELAY_STARTUP_APPLY_MS").ok().and_then(|v| v.parse::<u64>().ok())
                    {
                        glommio::timer::sleep(std::time::Duration::from_millis(ms)).await;
                    }
                }
                shard.apply_metadata(image).await;
                if let Some(c) = shard.controller.clone() {
                    glommio::spawn_local(c.install_images(shard.clone())).detach();
                    // A single node has it from its first start; a cluster creates it on
                    // the first FindCoordinator, once its brokers have registered (Kafka's
                    // way), so that it gets all the replicas it should.
                    if !shard.config.is_cluster() {
                        sluice::server::handlers::ensure_offsets_topic(&shard).await;
                    }
                }
                let watcher = shard.clone();
                glommio::spawn_local_into(async move { watcher.watch_shutdown().await }, background_tq)
                    .map_err(|e| e.to_string())?
                    .detach();
                glommio::spawn_local_into(shard.groups.clone().run_timers(shard.clone()), background_tq)
                    .map_err(|e| e.to_string())?
                    .detach();
                glommio::spawn_local_into(shard.txns.clone().run_timers(shard.clone()), background_tq)
                    .map_err(|e| e.to_string())?
                    .detach();
                glommio::spawn_local_into(shard.clone().run_retention(), background_tq)
                    .map_err(|e| e.to_string())?
                    .detach();
                glommio::spawn_local_into(shard.clone().run_cleaner(), background_tq)
                    .map_err(|e| e.to_string())?
                    .detach();
                glommio::spawn_local_into(shard.clone().run_isr_checks(), background_tq)
                    .map_err(|e| e.to_string())?
                    .detach();
                barrier(&lifecycle.loaded_shards, shards, None).await;
                let mut servers = Vec::new();
                for (name, addr) in &addrs {
                    let bound = std::net::ToSocketAddrs::to_socket_addrs(addr)
                        .ok()
                        .and_then(|mut a| a.next())
                        .ok_or_else(|| std::io::Error::other("cannot resolve"))
                        .and_then(sluice::server::bind_listener);
                    match bound {
                        Ok(tcp) => servers.push(sluice::server::serve(shard.clone(), tcp, name.as_str().into())),
                        Err(e) => {
                            tracing::error!(%addr, error = %e, "cannot listen");
                            lifecycle.shutdown.store(true, Ordering::Release);
                            return Err(format!("listeners: cannot bind {addr}: {e}"));
                        }
                    }
                }
                if i == 0 {
                    tracing::info!(
                        addr = %addrs[0].1,
                        listeners = addrs.len(),
                        admin = admin_addr.as_deref().unwrap_or("disabled"),
                        shards,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "sluice ready"
                    );
                }
                futures::future::join_all(servers).await;
                barrier(&lifecycle.drained_shards, shards, Some(Duration::from_secs(15))).await;
                shard.close_logs().await;
                Ok(())
            })
            .map_err(|e| format!("cannot start shard {i}: {e}"))?;
        handles.push(handle);
    }
    let mut result = Ok(());
    for h in handles {
        match h.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => result = Err(e),
            Err(e) => result = Err(format!("shard failed: {e}")),
        }
    }
    if result.is_ok() {
        tracing::info!("sluice stopped cleanly");
    }
    result
}

/// How long start-up waits for a listener port still held by a broker that just died.
const PORT_RELEASE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Binds `host:port`, waiting up to `PORT_RELEASE_WAIT` while it is in use: the listening
/// sockets of a broker killed a moment ago are released by the kernel only once that
/// process's io_uring rings are torn down, which happens asynchronously after its exit (a
/// restart right after a crash, as systemd does, would otherwise fail). A port held by a
/// live process still fails, after the wait.
fn bind_when_free(host: &str, port: u16) -> std::io::Result<std::net::TcpListener> {
    let deadline = std::time::Instant::now() + PORT_RELEASE_WAIT;
    let mut warned = false;
    loop {
        match std::net::TcpListener::bind((host, port)) {
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && std::time::Instant::now() < deadline => {
                if !warned {
                    tracing::warn!(%host, port, "port in use; waiting up to 10 s for it to be released");
                    warned = true;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

/// Binds `admin.listeners` before the shards start. A port in use stops the broker when
/// the address was configured; the default address only draws a warning (a second broker
/// on one machine, started without `admin.listeners`, still runs, without metrics).
fn bind_admin_listener(config: &BrokerConfig) -> Result<Option<std::net::TcpListener>, String> {
    let Some(l) = &config.admin_listener else { return Ok(None) };
    let bound = if config.explicit_keys.contains_key("admin.listeners") {
        bind_when_free(&l.host, l.port)
    } else {
        std::net::TcpListener::bind((l.host.as_str(), l.port))
    };
    match bound {
        Ok(listener) => Ok(Some(listener)),
        Err(e) if !config.explicit_keys.contains_key("admin.listeners") => {
            tracing::warn!(
                addr = %format!("{}:{}", l.host, l.port),
                error = %e,
                "admin listener disabled: cannot bind the default address (set admin.listeners)"
            );
            Ok(None)
        }
        Err(e) => Err(format!("admin.listeners: cannot bind {}:{}: {e}", l.host, l.port)),
    }
}

/// Waits until `count` shards have arrived (each adds one), or the timeout passes.
async fn barrier(counter: &std::sync::atomic::AtomicUsize, count: usize, timeout: Option<Duration>) {
    counter.fetch_add(1, Ordering::AcqRel);
    let deadline = timeout.map(|t| Instant::now() + t);
    while counter.load(Ordering::Acquire) < count {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return;
        }
        glommio::timer::sleep(Duration::from_millis(2)).await;
    }
}

fn install_signal_handler(
    lifecycle: Arc<Lifecycle>,
    quorum: sluice::controller::service::QuorumHandle,
    registration: Option<Registration>,
) -> Result<(), String> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])
        .map_err(|e| format!("cannot install signal handler: {e}"))?;
    std::thread::Builder::new()
        .name("sluice-signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                tracing::info!(signal = sig, "shutting down");
                // With other brokers, leadership moves off this one first (Kafka's controlled
                // shutdown); a single node has nowhere to move it, and answers what is in
                // flight as it stops.
                if let Some(r) = &registration {
                    quorum.controlled_shutdown(r, CONTROLLED_SHUTDOWN_WAIT);
                }
                lifecycle.shutdown.store(true, Ordering::Release);
            }
        })
        .map_err(|e| format!("cannot start signal thread: {e}"))?;
    Ok(())
}

/// Registered io_uring buffers need locked memory; raise the limit when allowed to.
fn raise_memlock_limit() {
    let lim = libc::rlimit { rlim_cur: libc::RLIM_INFINITY, rlim_max: libc::RLIM_INFINITY };
    // SAFETY: setrlimit reads a valid rlimit struct; failure is harmless (glommio falls back).
    unsafe {
        libc::setrlimit(libc::RLIMIT_MEMLOCK, &lim);
    }
}

/// `meta.properties` as Kafka writes it: the cluster id and the node id this directory
/// belongs to, and the directory's own id (`directory.id`: a wiped and formatted-again
/// directory gets a new one, which the other voters notice). A directory of another node
/// is refused. A single node creates it on first start; a cluster node must have been
/// formatted (`sluice format`), so that a node whose disk was lost cannot come back
/// empty unnoticed. Returns the cluster id and the directory id.
fn load_or_create_meta_properties(config: &BrokerConfig) -> Result<(String, uuid::Uuid), String> {
    let path = config.log_dir.join("meta.properties");
    match read_meta_properties(&path, config.node_id)? {
        Some((cluster, Some(directory))) => Ok((cluster, directory)),
        Some((cluster, None)) => {
            // Written before directory ids existed.
            let directory = uuid::Uuid::new_v4();
            write_meta_properties(&path, &cluster, config.node_id, directory)?;
            Ok((cluster, directory))
        }
        None if config.is_cluster() => Err(format!(
            "{} is not formatted: a cluster node starts from a formatted directory (sluice format --cluster-id ID ...)",
            config.log_dir.display()
        )),
        None => {
            let (cluster, directory) = (kafka_style_uuid(uuid::Uuid::new_v4()), uuid::Uuid::new_v4());
            write_meta_properties(&path, &cluster, config.node_id, directory)?;
            Ok((cluster, directory))
        }
    }
}

/// The cluster id and directory id in `path`, `None` if there is no such file.
fn read_meta_properties(path: &Path, node_id: i32) -> Result<Option<(String, Option<uuid::Uuid>)>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let pairs = sluice::config::parse_properties(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let get = |k: &str| pairs.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    if let Some(stored) = get("node.id") {
        if stored != node_id.to_string() {
            return Err(format!("node.id: {node_id} does not match node.id={stored} in {}", path.display()));
        }
    }
    let cluster = get("cluster.id").ok_or_else(|| format!("{}: no cluster.id", path.display()))?;
    Ok(Some((cluster, get("directory.id").and_then(|d| parse_kafka_style_uuid(&d)))))
}

fn write_meta_properties(path: &Path, cluster: &str, node_id: i32, directory: uuid::Uuid) -> Result<(), String> {
    let text = format!(
        "#\n# Written by sluice\nversion=1\ncluster.id={cluster}\nnode.id={node_id}\ndirectory.id={}\n",
        kafka_style_uuid(directory)
    );
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The inverse of `kafka_style_uuid`.
fn parse_kafka_style_uuid(s: &str) -> Option<uuid::Uuid> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    if s.len() != 22 {
        return None;
    }
    let mut bytes = Vec::with_capacity(17);
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes() {
        acc = (acc << 6) | ALPHABET.iter().position(|&a| a == c)? as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            bytes.push((acc >> bits) as u8);
        }
    }
    uuid::Uuid::from_slice(&bytes[..16]).ok()
}

/// Kafka prints cluster ids as URL-safe base64 of the UUID without padding (22 chars).
fn kafka_style_uuid(id: uuid::Uuid) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = id.as_bytes();
    let mut out = String::with_capacity(22);
    let mut acc = 0u32;
    let mut bits = 0;
    for &b in bytes {
        acc = (acc << 8) | b as u32;
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            out.push(ALPHABET[((acc >> bits) & 63) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (6 - bits)) & 63) as usize] as char);
    }
    out
}

/// Removes partition directories whose topic no longer exists (a deletion interrupted by a
/// crash after its metadata record was written).
fn remove_orphan_partitions(dir: &Path, image: &metadata::MetadataImage) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if !e.path().is_dir() || name.starts_with("__cluster_metadata") {
            continue;
        }
        let Some((topic, part)) = name.rsplit_once('-') else { continue };
        let Ok(part) = part.parse::<i32>() else { continue };
        let live = image.topic(topic).is_some_and(|t| part < t.partitions);
        if !live {
            tracing::warn!(dir = %e.path().display(), "removing the directory of a deleted partition");
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Starts this node's part of the controller quorum (a voter, or a broker's metadata
/// follower; a single node is its own quorum) and waits until it knows the active
/// controller and has caught up.
fn start_controller(
    config: &BrokerConfig,
    cluster_id: &str,
    directory_id: uuid::Uuid,
    shards: usize,
) -> Result<sluice::controller::service::QuorumHandle, String> {
    let dir = config.log_dir.join("__cluster_metadata");
    let mut voters = std::collections::BTreeMap::new();
    for (id, (host, port)) in &config.controller_quorum_voters {
        voters.insert(*id as u64, format!("{host}:{port}"));
    }
    if voters.is_empty() {
        // The embedded default: this node is the only voter, and needs no listener.
        voters.insert(config.node_id as u64, "127.0.0.1:0".to_string());
    }
    let listener = match (config.is_cluster() && config.process_roles.controller, config.controller_listener()) {
        (true, Some(l)) => Some(
            bind_when_free(&l.host, l.port)
                .map_err(|e| format!("listeners: cannot bind the controller listener {}:{}: {e}", l.host, l.port))?,
        ),
        _ => None,
    };
    let service_config = sluice::controller::service::ServiceConfig {
        node_id: config.node_id,
        cluster_id: cluster_id.to_string(),
        directory_id,
        voters,
        listener,
        dir: dir.clone(),
        shards,
        broker_session_timeout: Duration::from_millis(config.broker_session_timeout_ms),
        leader_rebalance_interval: config
            .auto_leader_rebalance_enable
            .then(|| Duration::from_secs(config.leader_imbalance_check_interval_seconds)),
        security: sluice::rpc::secure::Security::from_config(config)?,
    };
    let quorum = sluice::controller::service::start(service_config)?;
    tracing::info!(voters = ?config.controller_quorum_voters.keys().collect::<Vec<_>>(), "waiting for the controller quorum");
    quorum.wait_ready(QUORUM_READY_WAIT)?;
    Ok(quorum)
}

/// `process.roles=controller`: a voter of the quorum that serves no clients and holds no
/// partitions. Runs until SIGTERM or SIGINT.
fn run_controller_only(config: &BrokerConfig, cluster_id: &str, directory_id: uuid::Uuid) -> Result<(), String> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])
        .map_err(|e| format!("cannot install signal handler: {e}"))?;
    let quorum = start_controller(config, cluster_id, directory_id, 1)?;
    tracing::info!(node_id = config.node_id, active_controller = ?quorum.active_controller(), "controller ready");
    if let Some(sig) = signals.forever().next() {
        tracing::info!(signal = sig, "controller stopping");
    }
    Ok(())
}

/// Joins the controller quorum, takes over a metadata log from before the quorum existed,
/// and registers this broker with the active controller: it then leads its partitions
/// again, each under a new leader epoch, as a KRaft controller re-elects a restarted
/// broker. Returns once this node's image holds the registration, and keeps heartbeating
/// from then on.
fn start_quorum(
    config: &BrokerConfig,
    cluster_id: &str,
    directory_id: uuid::Uuid,
    shards: usize,
) -> Result<(sluice::controller::service::QuorumHandle, Registration), String> {
    use sluice::controller::ops::ControllerOp;
    let quorum = start_controller(config, cluster_id, directory_id, shards)?;
    // A single-node metadata log from before the quorum: its records become the quorum's
    // first entry, and the file is kept aside (renamed) so it is taken over only once.
    let old = store::log_path(&config.log_dir);
    if old.exists() {
        let records = store::read_records(&config.log_dir).map_err(|e| e.to_string())?;
        if !records.is_empty() {
            quorum.execute_blocking(ControllerOp::Import { records })?;
        }
        std::fs::rename(&old, old.with_extension("log.imported")).map_err(|e| format!("{}: {e}", old.display()))?;
        tracing::info!(path = %old.display(), "took over the single-node metadata log");
    }
    let advertised = config.advertised(config.client_listener());
    let listeners = config
        .client_listeners()
        .map(|l| {
            let a = config.advertised(l);
            sluice::metadata::Endpoint { name: l.name.clone(), host: a.host, port: a.port }
        })
        .collect();
    let registration = Registration {
        node_id: config.node_id,
        incarnation: uuid::Uuid::new_v4(),
        host: advertised.host.clone(),
        port: advertised.port,
        rack: config.broker_rack.clone(),
        listeners,
    };
    quorum.execute_blocking(ControllerOp::RegisterBroker(registration.clone()))?;
    quorum.start_heartbeats(registration.clone(), Duration::from_millis(config.broker_heartbeat_interval_ms));
    Ok((quorum, registration))
}

/// How long a stopping broker waits for the controller to move it out of leadership.
const CONTROLLED_SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

/// How long start-up waits for the controller quorum.
const QUORUM_READY_WAIT: Duration = Duration::from_secs(60);
