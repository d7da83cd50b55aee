//! The server side: accepts on the controller listener, secures the connection (TLS, then
//! a SASL login as the first request, when the listener's protocol asks for them: see
//! `secure`), reads one request at a time per connection and hands it to the controller
//! service. A frame over the limit, one that does not parse, or a failed login closes that
//! connection and nothing else.
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

use super::secure::Stream;
use super::{read_frame, write_frame, Envelope, FrameError, Request, Response};
use crate::controller::service::Service;
use crate::limits;

pub async fn serve(listener: TcpListener, service: Arc<Service>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let service = service.clone();
                tokio::spawn(async move {
                    if let Err(e) = connection(stream, peer, service).await {
                        tracing::debug!(%peer, error = %e, "controller connection closed");
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "controller listener: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn connection(tcp: TcpStream, peer: SocketAddr, service: Arc<Service>) -> Result<(), FrameError> {
    let security = service.security();
    let (mut stream, principal) = match security.accept(tcp, limits::TLS_HANDSHAKE_TIMEOUT).await {
        Ok(s) => s,
        Err(why) => {
            tracing::info!(%peer, listener = security.listener(), %why, "controller connection refused");
            return Ok(());
        }
    };
    if security.needs_sasl() {
        if !login(&mut stream, peer, &service).await? {
            return Ok(());
        }
    } else if let Some(who) = principal {
        if !security.permits(&service.current_image().acls, &who, Some(peer.ip())) {
            tracing::info!(%peer, principal = %who, "controller connection refused: not a super user, no CLUSTER_ACTION");
            return Ok(());
        }
    }
    loop {
        // An idle peer is dropped: voters and brokers reconnect on their next request.
        let Some(envelope) = next_request(&mut stream).await? else { return Ok(()) };
        let response = service.handle(envelope).await;
        write_frame(stream.as_mut(), &service.envelope(response)).await?;
    }
}

async fn next_request(stream: &mut Stream) -> Result<Option<Envelope<Request>>, FrameError> {
    let next = tokio::time::timeout(limits::CONTROLLER_IDLE_TIMEOUT, read_frame(stream.as_mut()));
    match next.await {
        Ok(frame) => frame,
        Err(_) => Ok(None),
    }
}

/// The SASL login every connection on a SASL listener starts with; whether it passed. A
/// refusal is answered (the peer logs why), logged here without the password, and the
/// connection is closed.
async fn login(stream: &mut Stream, peer: SocketAddr, service: &Service) -> Result<bool, FrameError> {
    let security = service.security();
    let first =
        tokio::time::timeout(limits::TLS_HANDSHAKE_TIMEOUT, read_frame::<_, Envelope<Request>>(stream.as_mut()));
    let Ok(Some(envelope)) = first.await.unwrap_or(Ok(None)) else { return Ok(false) };
    let verdict = match envelope.body {
        Request::Authenticate { mechanism, token } => match security.check_login(&mechanism, &token) {
            Ok(who) if security.permits(&service.current_image().acls, &who, Some(peer.ip())) => Ok(who),
            Ok(who) => Err(format!("{who} is not a super user and has no CLUSTER_ACTION on the cluster")),
            Err(why) => Err(why),
        },
        _ => Err("authenticate first".to_string()),
    };
    match verdict {
        Ok(who) => {
            tracing::debug!(%peer, principal = %who, "controller connection authenticated");
            write_frame(stream.as_mut(), &service.envelope(Response::Authenticated)).await?;
            Ok(true)
        }
        Err(why) => {
            tracing::warn!(%peer, from = envelope.from, listener = security.listener(), %why, "controller login failed; connection closed");
            write_frame(stream.as_mut(), &service.envelope(Response::Refused(why))).await?;
            Ok(false)
        }
    }
}
