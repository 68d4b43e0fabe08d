//! The byte stream under a connection: a glommio TCP socket, optionally wrapped in TLS
//! (`futures-rustls`, which drives any futures-io stream).
//!
//! Poll-style methods (not `async fn`) because the connection's reader and writer tasks share
//! one transport through a `RefCell` and must never hold the borrow across an await: each
//! borrows it for one `poll_*` call. glommio keeps separate readiness sources (and wakers)
//! for reading and writing, so a reader parked on `poll_read` and a writer parked on
//! `poll_write` do not steal each other's wake-ups. (With TLS, a read that must send a TLS
//! record — an alert, a key update — while the socket's send buffer is full would park on
//! the write source too; glommio keeps one waiter per source, so the writer's wake-up could
//! go to the reader. Rare, and the writer is woken again by the next request.)

use std::io;
use std::net::ToSocketAddrs;
use std::pin::Pin;
use std::task::{Context, Poll};

use std::sync::Arc;

use futures_lite::io::{AsyncRead, AsyncWrite};
use futures_rustls::client::TlsStream;
use futures_rustls::rustls::ClientConfig;
use futures_rustls::TlsConnector;
use glommio::net::TcpStream;

use super::config::RedisConfig;
use super::error::Error;

/// A connected stream to Redis.
///
/// Lives on: the executor that created it (glommio sockets are not `Send`).
pub(super) enum Transport {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP (`rediss://`). Boxed: the TLS state is large.
    Tls(Box<TlsStream<TcpStream>>),
}

impl Transport {
    /// Connects to `config`'s host and port: every address the name resolves to is tried in
    /// turn, each with the connect timeout. `TCP_NODELAY` is set: a pipelined client writes
    /// whole batches, and Nagle would only delay the last one.
    ///
    /// With `tls` (built by [`super::tls::client_config`]), the TLS handshake follows.
    ///
    /// A host name is resolved with the system resolver, which blocks the executor for the
    /// lookup; configure an IP address where that matters.
    pub(super) async fn connect(
        config: &RedisConfig,
        tls: Option<&Arc<ClientConfig>>,
    ) -> Result<Transport, Error> {
        let stream = tcp(config).await?;
        match tls {
            None => Ok(Transport::Plain(stream)),
            Some(tls) => {
                let name = super::tls::server_name(config)?;
                let stream = TlsConnector::from(tls.clone())
                    .connect(name, stream)
                    .await?;
                Ok(Transport::Tls(Box::new(stream)))
            }
        }
    }
    /// Reads into `buf`; `Ok(0)` is end of stream.
    pub(super) fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self {
            Transport::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }

    /// Writes some of `buf`.
    pub(super) fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self {
            Transport::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    /// Pushes out anything buffered (TLS records); a no-op for plain TCP.
    pub(super) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
}

/// A TCP connection to the first of `config`'s addresses that accepts, with `TCP_NODELAY`.
async fn tcp(config: &RedisConfig) -> Result<TcpStream, Error> {
    let addrs = (config.host.as_str(), config.port)
        .to_socket_addrs()
        .map_err(|e| {
            Error::from(io::Error::new(
                e.kind(),
                format!("cannot resolve {}: {e}", config.addr()),
            ))
        })?;
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect_timeout(addr, config.connect_timeout).await {
            Ok(stream) => {
                stream.set_nodelay(true).map_err(io::Error::from)?;
                return Ok(stream);
            }
            Err(e) => last = Some(io::Error::from(e)),
        }
    }
    Err(last
        .unwrap_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} resolves to no address", config.addr()),
            )
        })
        .into())
}
