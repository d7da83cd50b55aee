//! Multi-node clusters: formatted with one cluster id, each node a `Broker`.

use super::*;

/// `sluice random-uuid`: a new cluster id.
pub fn random_cluster_id() -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice")).arg("random-uuid").output().expect("run sluice");
    assert!(out.status.success(), "sluice random-uuid: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// `n` nodes, each a broker and a controller voter, on loopback, formatted with one new
/// cluster id and started (every voter must be up for the first election). Node `i + 1` is
/// `brokers[i]`. `extra` overrides go to every node.
pub fn start_cluster(n: usize, extra: &[(&str, &str)]) -> (String, Vec<Broker>) {
    let (id, _, brokers) = start_cluster_roles(n, false, extra);
    (id, brokers)
}

/// Like `start_cluster`; with `dedicated_controller`, the quorum is one controller-only
/// node (id 100, returned apart) and nodes 1..=n are brokers only, so that losing brokers
/// never costs the quorum.
pub fn start_cluster_roles(
    n: usize,
    dedicated_controller: bool,
    extra: &[(&str, &str)],
) -> (String, Option<Broker>, Vec<Broker>) {
    start_cluster_prepared(n, dedicated_controller, extra, &mut |_, _| {})
}

/// `start_cluster_roles`, with `prepare(node id, node)` called on each node before it
/// starts (the controller-only node is 100).
pub fn start_cluster_prepared(
    n: usize,
    dedicated_controller: bool,
    extra: &[(&str, &str)],
    prepare: &mut dyn FnMut(i32, &mut Broker),
) -> (String, Option<Broker>, Vec<Broker>) {
    let cluster_id = random_cluster_id();
    let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
    let controller_port = free_port();
    let voters = if dedicated_controller {
        format!("100@127.0.0.1:{controller_port}")
    } else {
        ports.iter().enumerate().map(|(i, (_, c))| format!("{}@127.0.0.1:{c}", i + 1)).collect::<Vec<_>>().join(",")
    };
    let node = |id: String, roles: &str, listeners: String, port: u16| {
        cluster_node(&cluster_id, &voters, &id, roles, listeners, port, extra)
    };
    let mut controller = dedicated_controller.then(|| {
        node("100".into(), "controller", format!("CONTROLLER://127.0.0.1:{controller_port}"), controller_port)
    });
    let mut brokers = Vec::new();
    for (i, (port, cport)) in ports.iter().enumerate() {
        let (roles, listeners) = if dedicated_controller {
            ("broker", format!("PLAINTEXT://127.0.0.1:{port}"))
        } else {
            ("broker,controller", format!("PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}"))
        };
        brokers.push(node((i + 1).to_string(), roles, listeners, *port));
    }
    if let Some(c) = controller.as_mut() {
        prepare(100, c);
        c.spawn();
    }
    for (i, b) in brokers.iter_mut().enumerate() {
        prepare(i as i32 + 1, b);
        b.spawn();
    }
    for b in brokers.iter_mut() {
        b.wait_ready();
    }
    (cluster_id, controller, brokers)
}

/// One node of a cluster (formatted, not started): `voters` is the
/// `controller.quorum.voters` value, `listeners` its listeners.
pub fn cluster_node(
    cluster_id: &str,
    voters: &str,
    id: &str,
    roles: &str,
    listeners: String,
    port: u16,
    extra: &[(&str, &str)],
) -> Broker {
    let mut overrides = vec![
        ("node.id".to_string(), id.to_string()),
        ("process.roles".to_string(), roles.to_string()),
        ("controller.quorum.voters".to_string(), voters.to_string()),
        ("listeners".to_string(), listeners),
    ];
    overrides.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let mut broker = Broker::unstarted(port, &overrides, 1);
    broker.format(cluster_id);
    broker
}
