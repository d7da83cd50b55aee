//! The byte stream a client connection reads and writes: one type, so that TLS becomes a
//! variant here and the connection loop and handlers stay as they are.
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_lite::{AsyncRead, AsyncWrite};
use glommio::net::TcpStream;

/// What TLS runs over: the socket behind a read buffer, because rustls reads at most 4 KiB
/// at a time and each read would otherwise be its own trip through the ring.
pub type TlsTransport = futures_lite::io::BufReader<TcpStream>;

/// The read buffer under TLS.
pub const TLS_READ_BUFFER: usize = 64 * 1024;

pub fn tls_transport(tcp: TcpStream) -> TlsTransport {
    futures_lite::io::BufReader::with_capacity(TLS_READ_BUFFER, tcp)
}

pub enum ConnStream {
    Plain(TcpStream),
    /// SSL and SASL_SSL listeners (boxed: the TLS state is large).
    Tls(Box<futures_rustls::server::TlsStream<TlsTransport>>),
    /// This broker's own connection to another broker's SSL or SASL_SSL listener.
    TlsClient(Box<futures_rustls::client::TlsStream<TlsTransport>>),
}

impl ConnStream {
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        match self {
            ConnStream::Plain(s) => s.peer_addr().ok(),
            ConnStream::Tls(s) => s.get_ref().0.get_ref().peer_addr().ok(),
            ConnStream::TlsClient(s) => s.get_ref().0.get_ref().peer_addr().ok(),
        }
    }

    pub fn set_nodelay(&self, on: bool) {
        match self {
            ConnStream::Plain(s) => {
                let _ = s.set_nodelay(on);
            }
            ConnStream::Tls(s) => {
                let _ = s.get_ref().0.get_ref().set_nodelay(on);
            }
            ConnStream::TlsClient(s) => {
                let _ = s.get_ref().0.get_ref().set_nodelay(on);
            }
        }
    }
}

impl AsyncRead for ConnStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ConnStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ConnStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            ConnStream::TlsClient(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ConnStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ConnStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            ConnStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            ConnStream::TlsClient(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ConnStream::Plain(s) => Pin::new(s).poll_flush(cx),
            ConnStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            ConnStream::TlsClient(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ConnStream::Plain(s) => Pin::new(s).poll_close(cx),
            ConnStream::Tls(s) => Pin::new(s.as_mut()).poll_close(cx),
            ConnStream::TlsClient(s) => Pin::new(s.as_mut()).poll_close(cx),
        }
    }
}
