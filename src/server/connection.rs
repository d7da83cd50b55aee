//! One client connection: a reader that frames and parses requests and starts each one as
//! its own task (pipelining), and a writer that awaits those tasks in arrival order, so
//! responses leave in correlation-id order, as Kafka clients require. At most
//! `CONNECTION_INFLIGHT_MAX` requests are in flight; past that the reader stops reading.
use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use futures::channel::mpsc;
use futures::{SinkExt, StreamExt};
use futures_lite::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use futures_lite::FutureExt;
use glommio::sync::StaticPermit;
use glommio::task::JoinHandle;

use super::context::ConnectionContext;
use super::handlers;
use super::request_budget::RequestBudget;
use super::stream::ConnStream;
use crate::limits;
use crate::protocol::frame::parse_request;
use crate::shard::Shard;

/// `budget`: the shard's share of `queued.max.request.bytes`; a frame's bytes are taken
/// from it before they are allocated and given back when its response has been written.
/// `connection`: who is on the other end (listener, protocol, peer, principal), handed to
/// every request's handler.
pub async fn run(shard: Rc<Shard>, stream: ConnStream, connection: Rc<ConnectionContext>, budget: Rc<RequestBudget>) {
    stream.set_nodelay(true);
    let peer = connection.peer.map(|a| a.to_string()).unwrap_or_default();
    let (mut reader, writer) = futures_lite::io::split(stream);
    let (mut tx, mut rx) =
        mpsc::channel::<(glommio::Task<handlers::Reply>, StaticPermit)>(limits::CONNECTION_INFLIGHT_MAX);
    let max_frame = shard.config.socket_request_max_bytes;

    let writer_task: JoinHandle<()> = glommio::spawn_local_into(
        async move {
            let mut out = BufWriter::with_capacity(64 * 1024, writer);
            let mut queued: Option<(glommio::Task<handlers::Reply>, StaticPermit)> = None;
            loop {
                let (task, _permit) = match queued.take() {
                    Some(t) => t,
                    None => match rx.next().await {
                        Some(t) => t,
                        None => break,
                    },
                };
                let written = match task.await {
                    handlers::Reply::Frame(bytes) => out.write_all(&bytes).await,
                    // Chunks larger than the buffer bypass it: they go to the socket as they are.
                    handlers::Reply::Chunks(chunks) => {
                        async {
                            for c in &chunks {
                                out.write_all(c).await?;
                            }
                            Ok(())
                        }
                        .await
                    }
                    handlers::Reply::None => Ok(()),
                    handlers::Reply::Close => break,
                    handlers::Reply::FrameThenClose(bytes) => {
                        let _ = out.write_all(&bytes).await;
                        break;
                    }
                };
                if written.is_err() {
                    break;
                }
                // Flush only when nothing else is queued, so pipelined responses share writes.
                match rx.try_recv() {
                    Ok(t) => queued = Some(t),
                    Err(mpsc::TryRecvError::Closed) => break,
                    Err(mpsc::TryRecvError::Empty) => {
                        if out.flush().await.is_err() {
                            break;
                        }
                    }
                }
            }
            let _ = out.flush().await;
            let _ = out.close().await;
        },
        shard.data_tq,
    )
    .expect("data queue exists")
    .detach();

    let mut size_buf = [0u8; 4];
    loop {
        // A connection over its quota is not read from until its throttle time has passed
        // (KIP-219: the response already told the client how long).
        if let Some(until) = connection.muted_until() {
            let wait = async {
                glommio::timer::sleep(until.saturating_duration_since(std::time::Instant::now())).await;
                Some(())
            };
            let stop = async {
                shard.shutdown_requested().await;
                None
            };
            if wait.or(stop).await.is_none() {
                break;
            }
        }
        let read = async { Some(reader.read_exact(&mut size_buf).await) };
        let stop = async {
            shard.shutdown_requested().await;
            None
        };
        match read.or(stop).await {
            Some(Ok(())) => {}
            _ => break,
        }
        let size = i32::from_be_bytes(size_buf);
        if size < limits::FRAME_BYTES_MIN as i32 || size as u32 > max_frame {
            tracing::warn!(peer = %peer, size, max = max_frame, "closing connection: request frame size out of range");
            break;
        }
        // The frame takes its bytes from the shard's request budget before anything is
        // allocated, so all connections together stay within `queued.max.request.bytes`;
        // it is then read in steps of at most `FRAME_READ_STEP_BYTES`, so that what it
        // occupies is what the client has actually sent.
        let size = size as usize;
        let permit = async { Some(budget.take(size).await) };
        let stop = async {
            shard.shutdown_requested().await;
            None
        };
        let Some(permit) = permit.or(stop).await else {
            break;
        };
        let mut frame = BytesMut::new();
        let mut complete = true;
        while frame.len() < size {
            let step = (size - frame.len()).min(limits::FRAME_READ_STEP_BYTES);
            let at = frame.len();
            frame.resize(at + step, 0);
            let read = async { Some(reader.read_exact(&mut frame[at..]).await.is_ok()) };
            let stalled = async {
                glommio::timer::sleep(limits::FRAME_READ_TIMEOUT).await;
                None
            };
            match read.or(stalled).await {
                Some(true) => {}
                Some(false) => {
                    complete = false;
                    break;
                }
                None => {
                    tracing::warn!(peer = %peer, size, received = at, "closing connection: request frame stalled");
                    complete = false;
                    break;
                }
            }
        }
        if !complete {
            break;
        }
        let frame: Bytes = frame.freeze();
        let request = match parse_request(frame) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(peer = %peer, error = %e, "closing connection: unparseable request");
                break;
            }
        };
        let task =
            glommio::spawn_local_into(handlers::handle(shard.clone(), request, connection.clone()), shard.data_tq)
                .expect("data queue exists");
        if tx.send((task, permit)).await.is_err() {
            break;
        }
    }
    drop(tx);
    let _ = writer_task.await;
}
