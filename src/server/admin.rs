//! The admin HTTP listener (`admin.listeners`): `GET /metrics` (Prometheus text 0.0.4),
//! `GET /health` (200 `ready` once every shard has loaded its partitions, else 503) and
//! `GET /v1/status` (JSON). Unknown paths get 404, other methods 405.
//!
//! Lives on shard 0, in its background task queue (as retention and compaction do), so a
//! scrape never competes with produce and fetch in the latency-sensitive queue; the other
//! shards answer a scrape's `ShardMsg::Stats` in their background queues too. Counters are
//! read straight from the shards' `ShardMetrics` blocks (see `crate::metrics`).
//!
//! Plain HTTP/1.1 by hand, one request per connection, closed after the response. Every
//! part is bounded: the request head (`ADMIN_REQUEST_HEAD_BYTES_MAX`, else 431), the time
//! to send it (`ADMIN_READ_TIMEOUT`, else 408) and to take the response
//! (`ADMIN_WRITE_TIMEOUT`), the lingering close (`ADMIN_LINGER_*`), and the connections
//! served at once (`ADMIN_CONNECTIONS_MAX`; more are closed at once). A request body is
//! never read.
use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use futures_lite::FutureExt;
use glommio::net::{TcpListener, TcpStream};

use crate::limits;
use crate::metrics::{BrokerInfo, ShardMetrics, ShardStats};
use crate::shard::{Shard, ShardMsg};

/// Takes over a listening socket bound by `main` (which binds it first, so that a port in
/// use is reported before the shards start).
pub fn from_std(listener: std::net::TcpListener) -> TcpListener {
    use std::os::fd::{FromRawFd, IntoRawFd};
    // SAFETY: the fd is a listening TCP socket we own; ownership moves to the listener.
    unsafe { TcpListener::from_raw_fd(listener.into_raw_fd()) }
}

/// Serves admin requests until shutdown. `metrics`: every shard's block, by shard id;
/// `started`: when the process started (for uptime).
pub async fn serve(shard: Rc<Shard>, listener: TcpListener, metrics: Arc<[Arc<ShardMetrics>]>, started: Instant) {
    let open = Rc::new(Cell::new(0usize));
    loop {
        let accepted = async { Some(listener.accept().await) };
        let stop = async {
            shard.shutdown_requested().await;
            None
        };
        match accepted.or(stop).await {
            None => break,
            Some(Ok(stream)) => {
                if open.get() >= limits::ADMIN_CONNECTIONS_MAX {
                    drop(stream);
                    continue;
                }
                open.set(open.get() + 1);
                let (shard2, metrics2, open2) = (shard.clone(), metrics.clone(), open.clone());
                let spawned = glommio::spawn_local_into(
                    async move {
                        serve_one(&shard2, stream, &metrics2, started).await;
                        open2.set(open2.get() - 1);
                    },
                    shard.background_tq,
                );
                match spawned {
                    Ok(task) => {
                        task.detach();
                    }
                    Err(_) => open.set(open.get() - 1),
                }
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "admin listener: accept failed");
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// An HTTP status with the body sent for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    BadRequest,
    NotFound,
    MethodNotAllowed,
    RequestTimeout,
    HeadersTooLarge,
    Unavailable,
}

impl Status {
    fn line(self) -> &'static str {
        match self {
            Status::Ok => "200 OK",
            Status::BadRequest => "400 Bad Request",
            Status::NotFound => "404 Not Found",
            Status::MethodNotAllowed => "405 Method Not Allowed",
            Status::RequestTimeout => "408 Request Timeout",
            Status::HeadersTooLarge => "431 Request Header Fields Too Large",
            Status::Unavailable => "503 Service Unavailable",
        }
    }
}

/// A parsed request line: the method and the path (query string dropped).
#[derive(Debug, PartialEq, Eq)]
pub struct Head<'a> {
    pub method: &'a str,
    pub path: &'a str,
}

/// Parses a request head (everything up to and including the blank line). Only the request
/// line is used; header lines are checked for shape and ignored.
pub fn parse_head(head: &[u8]) -> Result<Head<'_>, Status> {
    let text = std::str::from_utf8(head).map_err(|_| Status::BadRequest)?;
    let mut lines = text.split("\r\n");
    let request_line = lines.next().ok_or(Status::BadRequest)?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Status::BadRequest);
    };
    let method_ok = !method.is_empty() && method.bytes().all(|b| b.is_ascii_uppercase());
    if !method_ok || !target.starts_with('/') || !(version == "HTTP/1.1" || version == "HTTP/1.0") {
        return Err(Status::BadRequest);
    }
    for line in lines.filter(|l| !l.is_empty()) {
        let well_formed = line
            .split_once(':')
            .is_some_and(|(name, _)| !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':'));
        if !well_formed {
            return Err(Status::BadRequest);
        }
    }
    let path = target.split(['?', '#']).next().unwrap_or(target);
    Ok(Head { method, path })
}

enum ReadHead {
    Complete(Vec<u8>),
    TooLarge,
    TimedOut,
    /// The client closed or the read failed: nobody to answer.
    Gone,
}

/// Reads until the blank line that ends the head, within the size and time bounds.
async fn read_head(stream: &mut TcpStream, deadline: Instant) -> ReadHead {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let now = Instant::now();
        if now >= deadline {
            return ReadHead::TimedOut;
        }
        let read = async { Some(stream.read(&mut chunk).await) };
        let timer = async {
            glommio::timer::sleep(deadline - now).await;
            None
        };
        let n = match read.or(timer).await {
            None => return ReadHead::TimedOut,
            Some(Ok(0)) | Some(Err(_)) => return ReadHead::Gone,
            Some(Ok(n)) => n,
        };
        let search_from = head.len().saturating_sub(3);
        head.extend_from_slice(&chunk[..n]);
        if let Some(end) = head[search_from..].windows(4).position(|w| w == b"\r\n\r\n") {
            let end = search_from + end + 4;
            if end > limits::ADMIN_REQUEST_HEAD_BYTES_MAX {
                return ReadHead::TooLarge;
            }
            head.truncate(end);
            return ReadHead::Complete(head);
        }
        if head.len() > limits::ADMIN_REQUEST_HEAD_BYTES_MAX {
            return ReadHead::TooLarge;
        }
    }
}

async fn serve_one(shard: &Rc<Shard>, mut stream: TcpStream, metrics: &[Arc<ShardMetrics>], started: Instant) {
    let (status, content_type, body) = match read_head(&mut stream, Instant::now() + limits::ADMIN_READ_TIMEOUT).await {
        ReadHead::Gone => return,
        ReadHead::TimedOut => text(Status::RequestTimeout, "request timeout\n"),
        ReadHead::TooLarge => text(Status::HeadersTooLarge, "request head too large\n"),
        ReadHead::Complete(head) => match parse_head(&head) {
            Err(status) => text(status, "bad request\n"),
            Ok(h) if h.method != "GET" => text(Status::MethodNotAllowed, "only GET is allowed\n"),
            Ok(h) => route(shard, h.path, metrics, started).await,
        },
    };
    let mut response = format!(
        "HTTP/1.1 {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        status.line(),
        body.len()
    );
    if status == Status::MethodNotAllowed {
        response.push_str("Allow: GET\r\n");
    }
    response.push_str("\r\n");
    let mut bytes = response.into_bytes();
    bytes.extend_from_slice(body.as_bytes());
    let write = async { Some(stream.write_all(&bytes).await.is_ok() && stream.flush().await.is_ok()) };
    let timer = async {
        glommio::timer::sleep(limits::ADMIN_WRITE_TIMEOUT).await;
        None
    };
    if write.or(timer).await != Some(true) {
        return;
    }
    // A lingering close: closing with unread request bytes (a head past the limit, a body)
    // sends a reset, which can destroy the response before the client reads it. Stop
    // writing, then read and drop what the client still sends, bounded in bytes and time.
    let linger = async {
        if stream.shutdown(std::net::Shutdown::Write).await.is_err() {
            return;
        }
        let mut sink = [0u8; 1024];
        let mut drained = 0;
        while drained < limits::ADMIN_LINGER_BYTES_MAX {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    };
    let timer = async {
        glommio::timer::sleep(limits::ADMIN_LINGER_TIMEOUT).await;
    };
    linger.or(timer).await;
}

fn text(status: Status, body: &str) -> (Status, &'static str, String) {
    (status, "text/plain; charset=utf-8", body.to_string())
}

fn ready(shard: &Shard) -> bool {
    shard.lifecycle.loaded_shards.load(Ordering::Acquire) >= shard.count && !shard.shutting_down()
}

async fn route(
    shard: &Rc<Shard>,
    path: &str,
    metrics: &[Arc<ShardMetrics>],
    started: Instant,
) -> (Status, &'static str, String) {
    match path {
        "/health" => {
            if ready(shard) {
                text(Status::Ok, "ready\n")
            } else if shard.shutting_down() {
                text(Status::Unavailable, "shutting down\n")
            } else {
                text(Status::Unavailable, "loading partitions\n")
            }
        }
        "/metrics" => {
            let stats = collect(shard).await;
            let info = BrokerInfo {
                node_id: shard.node.node_id,
                version: env!("CARGO_PKG_VERSION"),
                uptime: started.elapsed(),
                ready: ready(shard),
            };
            let mut out = String::with_capacity(64 * 1024);
            crate::metrics::encode(&mut out, &info, metrics, &stats);
            (Status::Ok, "text/plain; version=0.0.4; charset=utf-8", out)
        }
        "/v1/status" => {
            let stats = collect(shard).await;
            let mut per_shard: Vec<Option<usize>> = vec![None; shard.count];
            for s in &stats {
                if let Some(slot) = per_shard.get_mut(s.shard) {
                    *slot = Some(s.partitions.len());
                }
            }
            let body = serde_json::json!({
                "node_id": shard.node.node_id,
                "cluster_id": shard.node.cluster_id,
                "version": env!("CARGO_PKG_VERSION"),
                "uptime_seconds": started.elapsed().as_secs(),
                "ready": ready(shard),
                "shards": shard.count,
                "partitions_per_shard": per_shard,
                "cluster": {
                    "active_controller": shard.controller.as_ref().and_then(|c| c.quorum().active_controller()),
                    "brokers": shard.image().live_brokers().map(|(id, _)| id).collect::<Vec<_>>(),
                },
            });
            (Status::Ok, "application/json", format!("{body}\n"))
        }
        _ => text(Status::NotFound, "not found\n"),
    }
}

/// Every shard's statistics, asked for in parallel; a shard that does not answer within
/// `ADMIN_COLLECT_TIMEOUT` is left out.
pub(crate) async fn collect(shard: &Rc<Shard>) -> Vec<ShardStats> {
    let calls = shard.all_shards().map(|i| async move {
        let call = async { shard.call(i, |reply| ShardMsg::Stats { reply }).await };
        let timer = async {
            glommio::timer::sleep(limits::ADMIN_COLLECT_TIMEOUT).await;
            None
        };
        call.or(timer).await
    });
    futures::future::join_all(calls).await.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_heads() {
        let h = parse_head(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n").unwrap();
        assert_eq!(h, Head { method: "GET", path: "/metrics" });
        let h = parse_head(b"POST /health HTTP/1.0\r\n\r\n").unwrap();
        assert_eq!(h.method, "POST");
        for bad in [
            &b"GARBAGE\r\n\r\n"[..],
            b"GET /metrics\r\n\r\n",
            b"GET metrics HTTP/1.1\r\n\r\n",
            b"GET /metrics HTTP/2.0\r\n\r\n",
            b"get /metrics HTTP/1.1\r\n\r\n",
            b"GET  /metrics HTTP/1.1\r\n\r\n",
            b"GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n",
            b"GET /metrics HTTP/1.1\r\n: empty name\r\n\r\n",
            b"\xff\xfe /x HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(parse_head(bad), Err(Status::BadRequest), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
