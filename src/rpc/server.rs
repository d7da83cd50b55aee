//! The server side: accepts on the controller listener, reads one request at a time per
//! connection and hands it to the controller service. A frame over the limit or one that
//! does not parse closes that connection and nothing else.
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

use super::{read_frame, write_frame, Envelope, Request};
use crate::controller::service::Service;
use crate::limits;

pub async fn serve(listener: TcpListener, service: Arc<Service>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let service = service.clone();
                tokio::spawn(async move {
                    if let Err(e) = connection(stream, service).await {
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

async fn connection(mut stream: TcpStream, service: Arc<Service>) -> Result<(), super::FrameError> {
    loop {
        // An idle peer is dropped: voters and brokers reconnect on their next request.
        let next =
            tokio::time::timeout(limits::CONTROLLER_IDLE_TIMEOUT, read_frame::<_, Envelope<Request>>(&mut stream));
        let Ok(frame) = next.await else { return Ok(()) };
        let Some(envelope) = frame? else { return Ok(()) };
        let response = service.handle(envelope).await;
        write_frame(&mut stream, &service.envelope(response)).await?;
    }
}
