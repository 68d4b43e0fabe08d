//! A minimal HTTP/1.1 keep-alive client for the chat REST API (JSON bodies, Content-Length
//! responses only), parsed with httparse.

use std::net::SocketAddr;

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One keep-alive connection.
pub struct HttpConn {
    stream: TcpStream,
    host: String,
    buf: Vec<u8>,
}

/// A response: status and body.
#[derive(Debug)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl HttpConn {
    /// Connects to `addr` (Host header `host`).
    pub async fn connect(addr: SocketAddr, host: &str) -> Result<Self> {
        let stream = crate::client::tcp_connect(addr, None).await?;
        Ok(Self {
            stream,
            host: host.to_owned(),
            buf: Vec::with_capacity(2048),
        })
    }

    /// Sends one request and reads its response.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Result<Response> {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.host);
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if let Some(b) = body {
            req.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
                b.len()
            ));
        } else {
            req.push_str("\r\n");
        }
        self.stream.write_all(req.as_bytes()).await?;
        self.read_response().await
    }

    async fn read_response(&mut self) -> Result<Response> {
        loop {
            if let Some((head_len, status, body_len)) = parse_head(&self.buf)? {
                let total = head_len + body_len;
                while self.buf.len() < total {
                    self.fill().await?;
                }
                let body = self.buf[head_len..total].to_vec();
                self.buf.drain(..total);
                return Ok(Response { status, body });
            }
            self.fill().await?;
        }
    }

    async fn fill(&mut self) -> Result<()> {
        let mut chunk = [0u8; 4096];
        let n = self.stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("connection closed by the server");
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

/// `(head length, status, Content-Length)` once the head is complete.
fn parse_head(buf: &[u8]) -> Result<Option<(usize, u16, usize)>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(buf).context("bad HTTP response")? {
        httparse::Status::Partial => Ok(None),
        httparse::Status::Complete(n) => {
            let status = resp.code.unwrap_or(0);
            let len = resp
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok())
                .and_then(|v| v.trim().parse().ok());
            match len {
                Some(len) => Ok(Some((n, status, len))),
                None if status == 204 || status == 304 => Ok(Some((n, status, 0))),
                None => bail!("response without Content-Length (status {status})"),
            }
        }
    }
}
