//! Test helper: a throwaway Redis Cluster of three masters (no replicas) on free loopback
//! ports, each `redis-server --cluster-enabled yes` in a temporary directory of its own, joined
//! with `redis-cli --cluster create`. Killed and removed when dropped. A master can be
//! restarted (its `nodes.conf` keeps its slots), and slots can be moved between masters.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::test_server::TestRedis;

/// How long the cluster may take to agree on its slots after `--cluster create`.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(30);

/// Three masters.
pub(crate) struct TestCluster {
    nodes: Vec<TestRedis>,
    dirs: Vec<PathBuf>,
}

impl TestCluster {
    pub(crate) fn start() -> TestCluster {
        let mut nodes = Vec::new();
        let mut dirs = Vec::new();
        for _ in 0..3 {
            let dir = std::env::temp_dir().join(format!(
                "livechat-redis-cluster-{}-{:016x}",
                std::process::id(),
                fastrand::u64(..)
            ));
            std::fs::create_dir_all(&dir).expect("temp dir");
            let d = dir.to_string_lossy().into_owned();
            // A later `--dir` wins over the helper's default: each master keeps its own
            // `nodes.conf` there.
            nodes.push(TestRedis::start_on(
                cluster_port(),
                &[
                    "--dir",
                    &d,
                    "--cluster-enabled",
                    "yes",
                    "--cluster-node-timeout",
                    "2000",
                ],
            ));
            dirs.push(dir);
        }
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        let status = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("redis-cli runs");
        assert!(status.success(), "redis-cli --cluster create failed");
        let cluster = TestCluster { nodes, dirs };
        cluster.wait_ok();
        cluster
    }

    /// `redis+cluster://` with every master as a seed.
    pub(crate) fn url(&self) -> String {
        let hosts: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        format!("redis+cluster://{}", hosts.join(","))
    }

    pub(crate) fn port(&self, i: usize) -> u16 {
        self.nodes[i].port()
    }

    /// Kills master `i` and starts it again (same port, same directory: same node, same slots).
    pub(crate) fn restart(&mut self, i: usize) {
        self.nodes[i].restart();
        self.wait_ok();
    }

    /// Moves `count` slots from master `from` to master `to` (keys included).
    pub(crate) fn reshard(&self, from: usize, to: usize, count: u32) {
        let id = |i: usize| {
            let out = Command::new("redis-cli")
                .args(["-p", &self.port(i).to_string(), "CLUSTER", "MYID"])
                .output()
                .expect("redis-cli runs");
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        };
        let status = Command::new("redis-cli")
            .args([
                "--cluster",
                "reshard",
                &format!("127.0.0.1:{}", self.port(0)),
            ])
            .args(["--cluster-from", &id(from), "--cluster-to", &id(to)])
            .args(["--cluster-slots", &count.to_string(), "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("redis-cli runs");
        assert!(status.success(), "redis-cli --cluster reshard failed");
        self.wait_ok();
    }

    /// Polls `CLUSTER INFO` on every master until each says `cluster_state:ok` and all agree
    /// on the epoch (a bounded wait, the only polling here).
    fn wait_ok(&self) {
        let deadline = Instant::now() + CONVERGE_TIMEOUT;
        loop {
            let infos: Vec<String> = (0..self.nodes.len())
                .map(|i| raw(self.port(i), b"*2\r\n$7\r\nCLUSTER\r\n$4\r\nINFO\r\n"))
                .collect();
            let epochs: Vec<Option<&str>> = infos
                .iter()
                .map(|i| {
                    i.lines()
                        .find_map(|l| l.strip_prefix("cluster_current_epoch:"))
                        .map(str::trim)
                })
                .collect();
            if infos.iter().all(|i| i.contains("cluster_state:ok"))
                && epochs.windows(2).all(|w| w[0] == w[1])
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the test cluster did not converge: {infos:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            n.kill();
        }
        for d in &self.dirs {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// A free loopback port whose cluster bus port (port + 10,000, which must stay below 65,536)
/// is free too: ephemeral ports are too high for that.
fn cluster_port() -> u16 {
    loop {
        let port = fastrand::u16(20_000..45_000);
        let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
        if free(port) && free(port + 10_000) {
            return port;
        }
    }
}

/// Sends `command` (RESP) to `127.0.0.1:port` and returns what came back in one read.
fn raw(port: u16, command: &[u8]) -> String {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut buf = vec![0u8; 8192];
    if s.write_all(command).is_err() {
        return String::new();
    }
    let n = s.read(&mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}
