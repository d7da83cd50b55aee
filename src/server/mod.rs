//! The Kafka listener of one shard and its connections. Every shard binds the same port
//! (SO_REUSEPORT) and keeps the connections it accepts. The admin HTTP listener (`admin`)
//! runs on shard 0 only.
pub mod admin;
pub mod admission;
pub mod connection;
pub mod context;
pub mod handlers;
pub mod request_budget;
pub mod stream;

use std::rc::Rc;

use futures_lite::FutureExt;
use glommio::net::TcpListener;

use crate::security::principal_mapping::PrincipalMapper;
use crate::shard::Shard;

/// Binds a shard's listener: SO_REUSEPORT so every shard accepts on the same port, and
/// SO_REUSEADDR so a restart is not refused while old connections sit in TIME_WAIT (as
/// Kafka's server sockets do; glommio's own `bind` sets only the first).
pub fn bind_listener(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    use std::os::fd::{FromRawFd, IntoRawFd};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    // SAFETY: the fd is a listening TCP socket we own; ownership moves to the listener.
    Ok(unsafe { TcpListener::from_raw_fd(socket.into_raw_fd()) })
}

/// Accepts connections until shutdown is requested, then waits (bounded) for them to drain.
/// Accepts and serves the connections of one listener (`listener_name`, a `listeners`
/// entry) until shutdown, then waits for them to finish what they have in flight.
pub async fn serve(shard: Rc<Shard>, listener: TcpListener, listener_name: Rc<str>) {
    let open = Rc::new(std::cell::Cell::new(0usize));
    let drained = Rc::new(crate::sync::LocalNotify::new());
    // This shard's share of `queued.max.request.bytes`.
    let request_budget = Rc::new(request_budget::RequestBudget::new(
        (shard.config.queued_max_request_bytes / shard.count as u64).max(2 << 20),
    ));
    let mut last_refusal_logged: Option<std::time::Instant> = None;
    // The listener's TLS settings were checked when the configuration was read.
    let tls: Option<(futures_rustls::TlsAcceptor, Rc<PrincipalMapper>)> =
        match shard.config.security_protocol(&listener_name) {
            "SSL" | "SASL_SSL" => {
                let keys = &shard.config.explicit_keys;
                let config =
                    crate::security::tls::server_config(keys, &listener_name).expect("TLS settings checked at start");
                let mapper = crate::security::tls::principal_mapper(keys, &listener_name)
                    .expect("mapping rules checked at start");
                Some((config.into(), Rc::new(mapper)))
            }
            _ => None,
        };
    loop {
        let accepted = async { Some(listener.accept().await) };
        let stop = async {
            shard.shutdown_requested().await;
            None
        };
        match accepted.or(stop).await {
            None => break,
            Some(Ok(stream)) => {
                let peer = match stream.peer_addr() {
                    Ok(a) => a,
                    Err(_) => continue,
                };
                let ip = peer.ip();
                let (max, per_ip) = (shard.config.max_connections, shard.config.max_connections_per_ip);
                let ticket = match shard.lifecycle.admission.admit(ip, max, per_ip) {
                    Ok(t) => t,
                    Err(refusal) => {
                        shard.metrics.connections_refused.add(1);
                        // Closed at once (Kafka closes a connection over its per-ip quota the
                        // same way); logged at most once a second per shard.
                        if last_refusal_logged.is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(1)) {
                            tracing::warn!(shard = shard.id.0, peer = %ip, reason = %refusal, "connection refused");
                            last_refusal_logged = Some(std::time::Instant::now());
                        }
                        drop(stream);
                        continue;
                    }
                };
                // KIP-612: the broker's connection creation rate holds back further accepts;
                // an ip over its connection_creation_rate quota is held, then closed.
                if let Some(rate) = shard.config.max_connection_creation_rate {
                    let wait = shard.lifecycle.admission.creation_throttle(rate as f64);
                    if wait > 0 {
                        glommio::timer::sleep(std::time::Duration::from_millis(wait)).await;
                    }
                }
                let ip_rate = {
                    let image = shard.image_ref();
                    (!image.quotas.is_empty()).then(|| image.quotas.ip_rate(&ip.to_string())).flatten()
                };
                if let Some(rate) = ip_rate {
                    let hold = shard.lifecycle.admission.ip_creation_throttle(ip, rate);
                    if hold > 0 {
                        shard.metrics.connections_refused.add(1);
                        drop(ticket);
                        glommio::spawn_local_into(
                            async move {
                                glommio::timer::sleep(std::time::Duration::from_millis(hold)).await;
                                drop(stream);
                            },
                            shard.background_tq,
                        )
                        .expect("background queue exists")
                        .detach();
                        continue;
                    }
                }
                let shard2 = shard.clone();
                let open2 = open.clone();
                let drained2 = drained.clone();
                let budget = request_budget.clone();
                let listener_name = listener_name.clone();
                let tls = tls.clone();
                open.set(open.get() + 1);
                shard.metrics.connections_accepted.add(1);
                shard.metrics.connections_open.add(1);
                glommio::spawn_local_into(
                    async move {
                        let metrics = shard2.metrics.clone();
                        let tls = tls.as_ref().map(|(acceptor, mapper)| (acceptor, &**mapper));
                        if let Some((stream, principal)) = secure(stream, tls, peer).await {
                            let protocol = match shard2.config.security_protocol(&listener_name) {
                                "SSL" => context::SecurityProtocol::Ssl,
                                "SASL_SSL" => context::SecurityProtocol::SaslSsl,
                                "SASL_PLAINTEXT" => context::SecurityProtocol::SaslPlaintext,
                                _ => context::SecurityProtocol::Plaintext,
                            };
                            let conn = Rc::new(context::ConnectionContext::new(listener_name, protocol, Some(peer)));
                            if let Some(p) = principal {
                                conn.set_principal(p);
                            }
                            connection::run(shard2, stream, conn, budget).await;
                        }
                        metrics.connections_open.sub(1);
                        drop(ticket);
                        open2.set(open2.get() - 1);
                        drained2.notify_all();
                    },
                    shard.data_tq,
                )
                .expect("data queue exists")
                .detach();
            }
            Some(Err(e)) => {
                tracing::warn!(shard = shard.id.0, error = %e, "accept failed");
                glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
    drop(listener);
    // Connections stop reading at shutdown and finish what they have in flight.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while open.get() > 0 && std::time::Instant::now() < deadline {
        let n = drained.notified();
        let timer = async {
            glommio::timer::sleep(std::time::Duration::from_millis(100)).await;
        };
        n.or(timer).await;
    }
}

/// The connection's stream: plain, or TLS once its handshake is done (within
/// `TLS_HANDSHAKE_TIMEOUT`), with the principal of the client's certificate if it gave one.
/// `None`: the handshake failed or took too long, and the connection is closed.
async fn secure(
    tcp: glommio::net::TcpStream,
    tls: Option<(&futures_rustls::TlsAcceptor, &PrincipalMapper)>,
    peer: std::net::SocketAddr,
) -> Option<(stream::ConnStream, Option<crate::security::principal::KafkaPrincipal>)> {
    let Some((acceptor, mapper)) = tls else { return Some((stream::ConnStream::Plain(tcp), None)) };
    let handshake = async { Some(acceptor.accept(stream::tls_transport(tcp)).await) };
    let timer = async {
        glommio::timer::sleep(crate::limits::TLS_HANDSHAKE_TIMEOUT).await;
        None
    };
    match handshake.or(timer).await {
        Some(Ok(s)) => {
            let principal = match crate::security::tls::peer_principal(s.get_ref().1.peer_certificates(), &mapper) {
                Ok(p) => p,
                Err(dn) => {
                    tracing::info!(%peer, %dn, "no ssl.principal.mapping.rules rule applies to the client certificate; connection closed");
                    return None;
                }
            };
            Some((stream::ConnStream::Tls(Box::new(s)), principal))
        }
        Some(Err(e)) => {
            tracing::info!(%peer, error = %e, "TLS handshake failed; connection closed");
            None
        }
        None => {
            tracing::info!(%peer, timeout_s = crate::limits::TLS_HANDSHAKE_TIMEOUT.as_secs(), "TLS handshake not finished in time; connection closed");
            None
        }
    }
}
