//! Harness for black-box tests of the gateway: runs one of `livechat-gateway`'s example servers
//! as a child process and talks raw HTTP/1.1 to it over `std::net::TcpStream`.
//!
//! - [`Server`]: starts `<target>/debug/examples/<example> --listen 127.0.0.1:0 ...`, waits for
//!   its `listening on http://ADDR` line and stops it (SIGTERM) when dropped.
//! - [`raw_request`], [`get`], [`post`], [`HttpConn`]: one request per connection, or several
//!   on a keep-alive connection, with `Content-Length` framing and a 10 s read timeout.
//! - [`open_polling_session`], [`sio_connect_polling`], [`poll_until`]: Engine.IO long-polling
//!   and Socket.IO connect steps.
//! - [`proc_rss_kib`], [`proc_open_sockets`], [`wait_open_sockets_at_most`]: a server
//!   process's resident memory and open sockets, read from `/proc/<pid>` (soak tests).
//!
//! No helper sleeps to wait for the server: a polling GET parks on the server until it has
//! packets, so waiting for an event is reading a response. (Only [`wait_open_sockets_at_most`]
//! polls, the kernel's view of the server's descriptors, which has nothing to wait on.)

pub mod ws;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context};

/// How long a server may take to print its `listening on` line.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a read may block before a request is considered unanswered.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a stopped server may take to exit before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Engine.IO payload separator.
pub const SEPARATOR: char = '\x1e';
/// The Engine.IO / Socket.IO endpoint of the `conformance` example.
pub const SIO_PATH: &str = "/socket.io/";

/// Serializes builds of the examples when several tests find the binary missing at once.
static BUILD: Mutex<()> = Mutex::new(());

/// A running example server. Dropping it sends SIGTERM and waits for the process to exit.
#[derive(Debug)]
pub struct Server {
    child: Child,
    addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    /// The `conformance` example with `--executors executors`, heartbeats of 60 s (so pings
    /// never interfere with a test) and `extra` flags.
    pub fn conformance(executors: &str, extra: &[&str]) -> anyhow::Result<Server> {
        let mut args = vec![
            "--executors",
            executors,
            "--ping-interval-ms",
            "60000",
            "--ping-timeout-ms",
            "60000",
        ];
        args.extend_from_slice(extra);
        Server::start("conformance", &args)
    }

    /// Starts example `example` with `--listen 127.0.0.1:0` and `args`, and waits (at most 60 s)
    /// until it prints `listening on http://127.0.0.1:PORT`. Builds the examples first when the
    /// binary is missing.
    pub fn start(example: &str, args: &[&str]) -> anyhow::Result<Server> {
        let bin = example_binary(example)?;
        let mut cmd = Command::new(&bin);
        cmd.arg("--listen").arg("127.0.0.1:0").args(args);
        Server::spawn(cmd, &bin, args)
    }

    /// The `livechat` binary: `livechat serve --listen 127.0.0.1:0 args` (embedded backend,
    /// development identities on loopback). Builds it first when missing.
    pub fn livechat(args: &[&str]) -> anyhow::Result<Server> {
        let bin = livechat_binary()?;
        let mut cmd = Command::new(&bin);
        // No drain delay on SIGTERM: no balancer watches `/readyz` in these tests.
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--drain-delay", "0ms"])
            .args(args);
        Server::spawn(cmd, &bin, args)
    }

    /// Like [`Server::livechat`], with the process's descriptor limit (`ulimit -n`) set to
    /// `nofile` (through `sh -c 'ulimit -n N; exec ...'`, so the server itself runs as the
    /// shell's pid and is stopped like any other).
    pub fn livechat_with_nofile(nofile: u32, args: &[&str]) -> anyhow::Result<Server> {
        let bin = livechat_binary()?;
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!("ulimit -n {nofile} && exec \"$0\" \"$@\""))
            .arg(&bin)
            .args(["serve", "--listen", "127.0.0.1:0", "--drain-delay", "0ms"])
            .args(args);
        Server::spawn(cmd, &bin, args)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Runs `cmd` (which must end up printing `listening on http://ADDR`) and waits for it.
    fn spawn(mut cmd: Command, bin: &Path, args: &[&str]) -> anyhow::Result<Server> {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot run {}", bin.display()))?;
        let stderr = Arc::new(Mutex::new(String::new()));
        if let Some(err) = child.stderr.take() {
            let sink = stderr.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines() {
                    let Ok(line) = line else { break };
                    if let Ok(mut s) = sink.lock() {
                        // Keep the start of the log; a misbehaving server must not eat memory.
                        if s.len() < 1 << 20 {
                            s.push_str(&line);
                            s.push('\n');
                        }
                    }
                }
            });
        }
        let stdout = child.stdout.take().context("child stdout not captured")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if !sent {
                    if let Some(rest) = line.trim().strip_prefix("listening on http://") {
                        sent = true;
                        let _ = tx.send(rest.to_owned());
                    }
                }
                // Keep draining so the child never blocks on a full pipe.
            }
        });
        let mut server = Server {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stderr,
        };
        let line = match rx.recv_timeout(START_TIMEOUT) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                // stdout closed without the line: the process exited (or closed stdout).
                let status = wait_deadline(&mut server.child, STOP_TIMEOUT);
                bail!(
                    "{} {args:?} exited before listening ({status:?}); stderr:\n{}",
                    bin.display(),
                    server.stderr_log()
                );
            }
            Err(mpsc::RecvTimeoutError::Timeout) => bail!(
                "{} {args:?} did not print `listening on` within {START_TIMEOUT:?}; stderr:\n{}",
                bin.display(),
                server.stderr_log()
            ),
        };
        server.addr = line
            .parse()
            .with_context(|| format!("bad address in `listening on http://{line}`"))?;
        Ok(server)
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What the server wrote on stderr so far (its log).
    pub fn stderr_log(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(self.child.id().to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            if wait_deadline(&mut self.child, STOP_TIMEOUT).is_none() {
                eprintln!("server {} ignored SIGTERM; killing it", self.addr);
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
        if std::thread::panicking() {
            eprintln!("--- server {} stderr ---\n{}", self.addr, self.stderr_log());
        }
    }
}

/// Waits for `child` to exit, at most `timeout`. `None`: still running.
fn wait_deadline(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => return None,
        }
    }
}

/// The workspace root: the nearest ancestor of this package whose `Cargo.toml` has `[workspace]`.
pub fn workspace_root() -> anyhow::Result<PathBuf> {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in here.ancestors() {
        let manifest = dir.join("Cargo.toml");
        if let Ok(text) = std::fs::read_to_string(&manifest) {
            if text.lines().any(|l| l.trim() == "[workspace]") {
                return Ok(dir.to_path_buf());
            }
        }
    }
    bail!("no workspace Cargo.toml above {}", here.display())
}

/// The cargo target directory: `$CARGO_TARGET_DIR` (relative to the workspace root when
/// relative), else `<workspace root>/target`.
pub fn target_dir() -> anyhow::Result<PathBuf> {
    let root = workspace_root()?;
    Ok(match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root.join(dir),
        _ => root.join("target"),
    })
}

/// The path of example `example`'s binary, built with `cargo build -p livechat-gateway
/// --examples` when missing.
pub fn example_binary(example: &str) -> anyhow::Result<PathBuf> {
    let bin = target_dir()?.join("debug").join("examples").join(example);
    if bin.is_file() {
        return Ok(bin);
    }
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    if bin.is_file() {
        return Ok(bin);
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "-p", "livechat-gateway", "--examples"])
        .current_dir(workspace_root()?)
        .status()
        .context("cannot run cargo build")?;
    ensure!(
        status.success(),
        "cargo build -p livechat-gateway --examples failed: {status}"
    );
    ensure!(
        bin.is_file(),
        "{} still missing after building the examples",
        bin.display()
    );
    Ok(bin)
}

/// The path of the `livechat` binary, built with `cargo build -p livechat-gateway --bin
/// livechat` when missing.
pub fn livechat_binary() -> anyhow::Result<PathBuf> {
    let bin = target_dir()?.join("debug").join("livechat");
    if bin.is_file() {
        return Ok(bin);
    }
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    if bin.is_file() {
        return Ok(bin);
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "-p", "livechat-gateway", "--bin", "livechat"])
        .current_dir(workspace_root()?)
        .status()
        .context("cannot run cargo build")?;
    ensure!(
        status.success(),
        "cargo build --bin livechat failed: {status}"
    );
    ensure!(
        bin.is_file(),
        "{} still missing after the build",
        bin.display()
    );
    Ok(bin)
}

/// One HTTP/1.1 response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers in the order received (names as sent).
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_slice(&self.body)
            .with_context(|| format!("body is not JSON: {:?}", self.text()))
    }
}

/// A client connection that can carry several requests (keep-alive, pipelining).
#[derive(Debug)]
pub struct HttpConn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl HttpConn {
    /// Connects to `addr` with a 10 s read timeout.
    pub fn connect(addr: SocketAddr) -> anyhow::Result<HttpConn> {
        let stream =
            TcpStream::connect(addr).with_context(|| format!("cannot connect to {addr}"))?;
        stream.set_read_timeout(Some(READ_TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(HttpConn {
            stream,
            buf: Vec::new(),
        })
    }

    /// Writes raw bytes.
    pub fn send(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.stream.write_all(bytes).context("write failed")?;
        self.stream.flush()?;
        Ok(())
    }

    /// Writes `bytes` and reads one response.
    pub fn request(&mut self, bytes: &[u8]) -> anyhow::Result<HttpResponse> {
        self.send(bytes)?;
        self.read_response()
    }

    /// Reads more bytes into the buffer. `Ok(0)`: the server closed the connection.
    fn fill(&mut self) -> anyhow::Result<usize> {
        let mut chunk = [0u8; 8192];
        let n = match self.stream.read(&mut chunk) {
            Ok(n) => n,
            // EINTR: nothing was read; read again, as `Read::read_exact` does. A read with
            // SO_RCVTIMEO set returns it even without a signal handler, e.g. when the
            // process is stopped and continued (signal(7)); the test command saw it once.
            Err(e) if e.kind() == ErrorKind::Interrupted => return self.fill(),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                bail!("no response within {READ_TIMEOUT:?}")
            }
            Err(e) => return Err(e).context("read failed"),
        };
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// Reads one response (`Content-Length` framing; without one, the body runs to EOF).
    pub fn read_response(&mut self) -> anyhow::Result<HttpResponse> {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i;
            }
            if self.fill()? == 0 {
                bail!(
                    "connection closed before a full response head (got {:?})",
                    String::from_utf8_lossy(&self.buf)
                );
            }
        };
        let head = std::str::from_utf8(&self.buf[..head_end])
            .context("response head is not UTF-8")?
            .to_owned();
        self.buf.drain(..head_end + 4);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default();
        ensure!(
            version.starts_with("HTTP/1."),
            "bad status line {status_line:?}"
        );
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("bad status line {status_line:?}"))?;
        let mut headers = Vec::new();
        for line in lines {
            let (k, v) = line
                .split_once(':')
                .with_context(|| format!("bad header line {line:?}"))?;
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
        let mut resp = HttpResponse {
            status,
            headers,
            body: Vec::new(),
        };
        ensure!(
            resp.header("transfer-encoding").is_none(),
            "chunked responses are not supported by this harness"
        );
        match resp.header("content-length") {
            Some(len) => {
                let len: usize = len.parse().context("bad Content-Length in response")?;
                while self.buf.len() < len {
                    if self.fill()? == 0 {
                        bail!("connection closed mid-body");
                    }
                }
                resp.body = self.buf.drain(..len).collect();
            }
            None if status == 204 || status == 304 || status < 200 => {}
            None => {
                while self.fill()? > 0 {}
                resp.body = std::mem::take(&mut self.buf);
            }
        }
        Ok(resp)
    }

    /// Whether the server has closed the connection (EOF or reset) with nothing more to read.
    /// `false` when more bytes arrive or the connection stays open and silent for 10 s.
    pub fn is_closed(&mut self) -> anyhow::Result<bool> {
        if !self.buf.is_empty() {
            return Ok(false);
        }
        let mut chunk = [0u8; 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => Ok(true),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(false)
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => self.is_closed(), // see `fill`
            Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe) => {
                Ok(true)
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Ok(false),
            Err(e) => Err(e).context("read failed"),
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Writes `bytes` on a fresh connection to `addr` and reads one HTTP/1.1 response.
pub fn raw_request(addr: SocketAddr, bytes: &[u8]) -> anyhow::Result<HttpResponse> {
    HttpConn::connect(addr)?.request(bytes)
}

/// The bytes of a GET request for `path` (path and query).
pub fn get_request(addr: SocketAddr, path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: */*\r\n\r\n").into_bytes()
}

/// The bytes of a POST request for `path` with a text body (as Engine.IO clients send it).
pub fn post_request(addr: SocketAddr, path: &str, body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req
}

/// GET `path` on a fresh connection.
pub fn get(addr: SocketAddr, path: &str) -> anyhow::Result<HttpResponse> {
    raw_request(addr, &get_request(addr, path))
}

/// POST `body` to `path` on a fresh connection.
pub fn post(addr: SocketAddr, path: &str, body: impl AsRef<[u8]>) -> anyhow::Result<HttpResponse> {
    raw_request(addr, &post_request(addr, path, body.as_ref()))
}

/// The polling path of session `sid`: `/socket.io/?EIO=4&transport=polling&sid=SID`.
pub fn polling_path(sid: &str) -> String {
    format!("{SIO_PATH}?EIO=4&transport=polling&sid={sid}")
}

/// The packets of a polling payload (split on the record separator).
pub fn packets(body: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(body)
        .split(SEPARATOR)
        .map(str::to_owned)
        .collect()
}

/// Opens an Engine.IO polling session (`GET /socket.io/?EIO=4&transport=polling`) and returns
/// its sid, read from the `0{...}` open packet.
pub fn open_polling_session(addr: SocketAddr) -> anyhow::Result<String> {
    let resp = get(addr, &format!("{SIO_PATH}?EIO=4&transport=polling"))?;
    ensure!(
        resp.status == 200,
        "handshake answered {} {:?}",
        resp.status,
        resp.text()
    );
    let body = resp.text();
    let open = body
        .strip_prefix('0')
        .with_context(|| format!("handshake body is not an open packet: {body:?}"))?;
    let open: serde_json::Value =
        serde_json::from_str(open).with_context(|| format!("bad open packet {body:?}"))?;
    open.get("sid")
        .and_then(|s| s.as_str())
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("open packet without sid: {body:?}"))
}

/// GETs on session `sid` until a packet satisfies `done`; returns every packet received,
/// in order. Each GET parks on the server until it has packets; fails on a non-200 answer, when
/// the server closes the session (`1`), or after `max_polls` GETs.
pub fn poll_until(
    addr: SocketAddr,
    sid: &str,
    max_polls: usize,
    mut done: impl FnMut(&str) -> bool,
) -> anyhow::Result<Vec<String>> {
    let mut seen = Vec::new();
    for _ in 0..max_polls {
        let resp = get(addr, &polling_path(sid))?;
        ensure!(
            resp.status == 200,
            "polling GET answered {} {:?} (packets so far: {seen:?})",
            resp.status,
            resp.text()
        );
        let mut finished = false;
        for p in packets(&resp.body) {
            finished |= done(&p);
            let closed = p == "1";
            seen.push(p);
            if closed && !finished {
                bail!("session closed by the server; packets: {seen:?}");
            }
        }
        if finished {
            return Ok(seen);
        }
    }
    bail!("condition not met after {max_polls} polls; packets: {seen:?}")
}

/// Opens a polling session and connects it to Socket.IO namespace `/`: POST `40`, then GET
/// until the `40{"sid":...}` CONNECT reply arrives. Returns the Engine.IO sid.
pub fn sio_connect_polling(addr: SocketAddr) -> anyhow::Result<String> {
    let sid = open_polling_session(addr)?;
    let resp = post(addr, &polling_path(&sid), "40")?;
    ensure!(
        resp.status == 200 && resp.body == b"ok",
        "POST 40 answered {} {:?}",
        resp.status,
        resp.text()
    );
    poll_until(addr, &sid, 10, |p| p.starts_with("40{\"sid\":"))?;
    Ok(sid)
}

/// A session connected to namespace `/` whose queue is empty: the CONNECT reply and the `auth`
/// event the example emits on connect have both been read, so the next GET parks.
pub fn idle_session(addr: SocketAddr) -> anyhow::Result<String> {
    let sid = open_polling_session(addr)?;
    let resp = post(addr, &polling_path(&sid), "40")?;
    assert_eq!((resp.status, resp.text()), (200, "ok".into()), "POST 40");
    let (mut connected, mut auth) = (false, false);
    poll_until(addr, &sid, 10, |p| {
        connected |= p.starts_with(r#"40{"sid":"#);
        auth |= p.starts_with(r#"42["auth","#);
        connected && auth
    })?;
    Ok(sid)
}

/// The resident set size (`VmRSS` of `/proc/<pid>/status`) of process `pid`, in KiB.
pub fn proc_rss_kib(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no VmRSS in {path}"))
}

/// How many sockets (listeners and connections) process `pid` holds: the `socket:[...]`
/// entries of `/proc/<pid>/fd`. A connection counts until the process has closed its
/// descriptor, whichever side ended it first.
pub fn proc_open_sockets(pid: u32) -> anyhow::Result<usize> {
    let dir = format!("/proc/{pid}/fd");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).with_context(|| format!("cannot list {dir}"))? {
        // A descriptor closed between the listing and the readlink is simply not counted.
        let Ok(entry) = entry else { continue };
        if let Ok(target) = std::fs::read_link(entry.path()) {
            n += usize::from(target.to_string_lossy().starts_with("socket:"));
        }
    }
    Ok(n)
}

/// Waits until process `pid` holds at most `sockets` sockets ([`proc_open_sockets`]), polling
/// `/proc` every 10 ms for at most `timeout`; fails with the last count otherwise.
pub fn wait_open_sockets_at_most(
    pid: u32,
    sockets: usize,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let n = proc_open_sockets(pid)?;
        if n <= sockets {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "process {pid} still holds {n} sockets (want at most {sockets}) after {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The soft limit on open descriptors of this process (`Max open files` in
/// `/proc/self/limits`); `None` when unlimited or unreadable.
pub fn nofile_soft_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}
