//! Test helpers: a throwaway `redis-server` (or the one `LIVECHAT_TEST_REDIS_URL` names) and a
//! glommio executor to run a test on.
//!
//! The throwaway server listens on a free loopback port, persists nothing, and is killed when
//! dropped. Starting it waits until it answers `PING` (a bounded poll: the only waiting by
//! polling in these tests).

use std::future::Future;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use glommio::{LocalExecutorBuilder, Placement};

/// How long a fresh server may take to answer `PING`.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// A Redis server for one test.
pub(crate) struct TestRedis {
    child: Option<Child>,
    port: u16,
    args: Vec<String>,
    url: String,
    tls: bool,
}

impl TestRedis {
    /// The server `LIVECHAT_TEST_REDIS_URL` names when set, else a throwaway one. For tests
    /// that neither stop the server nor need special settings.
    pub(crate) fn any() -> TestRedis {
        match std::env::var("LIVECHAT_TEST_REDIS_URL") {
            Ok(url) if !url.is_empty() => TestRedis {
                child: None,
                port: 0,
                args: Vec::new(),
                url,
                tls: false,
            },
            _ => TestRedis::start(&[]),
        }
    }

    /// A throwaway `redis-server` with `extra` arguments (e.g. `--requirepass x`).
    pub(crate) fn start(extra: &[&str]) -> TestRedis {
        Self::start_on(free_port(), extra)
    }

    /// [`TestRedis::start`] on `port`.
    pub(crate) fn start_on(port: u16, extra: &[&str]) -> TestRedis {
        let mut server = TestRedis {
            child: None,
            port,
            args: extra.iter().map(|s| s.to_string()).collect(),
            url: format!("redis://127.0.0.1:{port}"),
            tls: false,
        };
        server.spawn();
        server
    }

    /// A throwaway `redis-server` speaking only TLS, with the server certificate `ca` issued;
    /// its URL is `rediss://127.0.0.1:PORT`.
    pub(crate) fn start_tls(ca: &TestCa) -> TestRedis {
        let port = free_port();
        let path = |p: PathBuf| p.to_string_lossy().into_owned();
        let args = [
            "--port".to_owned(),
            "0".to_owned(),
            "--tls-port".to_owned(),
            port.to_string(),
            "--tls-cert-file".to_owned(),
            path(ca.dir.join("server.crt")),
            "--tls-key-file".to_owned(),
            path(ca.dir.join("server.key")),
            "--tls-ca-cert-file".to_owned(),
            path(ca.ca_file()),
            "--tls-auth-clients".to_owned(),
            "no".to_owned(),
        ];
        let mut server = TestRedis {
            child: None,
            port,
            args: args.to_vec(),
            url: format!("rediss://127.0.0.1:{port}"),
            tls: true,
        };
        server.spawn();
        server
    }

    /// `redis://127.0.0.1:PORT` (or the external URL).
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// The port of a throwaway server.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    fn spawn(&mut self) {
        let port = self.port.to_string();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--dir", &std::env::temp_dir().to_string_lossy()])
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs (apt-get install redis-server)");
        self.child = Some(child);
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        if self.tls {
            wait_listening(addr);
        } else {
            wait_answering(addr);
        }
    }

    /// Kills the server (SIGKILL) and waits for it to exit.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port with the same arguments.
    pub(crate) fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Sends `signal` (`STOP`, `CONT`) to the server process.
    pub(crate) fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("a throwaway server");
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} failed");
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        // SIGKILL ends a SIGSTOPped server too, so a test that panicked while the server was
        // stopped leaves nothing behind.
        self.kill();
    }
}

/// A loopback port nothing listens on right now.
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// Polls `addr` with `PING` until the server answers (`+PONG`, or `-NOAUTH` when it wants a
/// password), at most [`START_TIMEOUT`].
fn wait_answering(addr: SocketAddr) {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(mut s) = TcpStream::connect(addr) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = [0u8; 64];
            if s.write_all(b"PING\r\n").is_ok() {
                if let Ok(n) = s.read(&mut buf) {
                    if buf[..n].starts_with(b"+PONG") || buf[..n].starts_with(b"-NOAUTH") {
                        return;
                    }
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "redis-server on {addr} did not answer PING"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `addr` until it accepts TCP connections (a TLS port: `PING` would need TLS), at
/// most [`START_TIMEOUT`].
fn wait_listening(addr: SocketAddr) {
    let deadline = Instant::now() + START_TIMEOUT;
    while TcpStream::connect(addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "redis-server on {addr} did not listen"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A throwaway certificate authority and a server certificate it issued for `127.0.0.1` and
/// `localhost`, made with `openssl` in a temporary directory that is removed on drop.
pub(crate) struct TestCa {
    dir: PathBuf,
}

impl TestCa {
    pub(crate) fn new() -> TestCa {
        let dir = std::env::temp_dir().join(format!(
            "livechat-redis-tls-{}-{:016x}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )
        .expect("write ext file");
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let steps: [&[&str]; 3] = [
            &[
                &["req", "-x509"][..],
                &ec,
                &["-keyout", "ca.key", "-out", "ca.crt", "-days", "2"],
                &["-subj", "/CN=livechat test CA"],
            ]
            .concat(),
            &[
                &["req"][..],
                &ec,
                &[
                    "-keyout",
                    "server.key",
                    "-out",
                    "server.csr",
                    "-subj",
                    "/CN=localhost",
                ],
            ]
            .concat(),
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.crt",
                "-days",
                "2",
                "-extfile",
                "server.ext",
            ],
        ];
        for args in steps {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .stdin(Stdio::null())
                .output()
                .expect("openssl runs");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        TestCa { dir }
    }

    /// The CA certificate (PEM) to trust.
    pub(crate) fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }
}

impl Drop for TestCa {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `fut` on a fresh glommio executor on this thread.
pub(crate) fn run<F: Future>(fut: F) -> F::Output {
    LocalExecutorBuilder::new(Placement::Unbound)
        .io_memory(64 << 10)
        .make()
        .expect("a glommio executor")
        .run(fut)
}
