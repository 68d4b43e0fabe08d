//! Node-wide connection admission: a cap on open connections (kept below the descriptor limit,
//! so Redis, PostgreSQL, Kafka and files always find a descriptor and `/healthz` is answered
//! again as soon as connections close), and a cap on concurrent connections per client address.
//!
//! Shared by every executor (one `Arc`), because descriptors are a process-wide resource and a
//! client's connections land on any executor. The total is one atomic; the per-address counts
//! are a map behind one mutex, taken once when a connection is admitted and once when it
//! closes — never per request.
//!
//! Beyond the node cap a connection is closed right after `accept` without a word: answering
//! would cost a write to a peer that may not read, and the point is to give the descriptor
//! back at once. Beyond the per-address cap the connection is answered `429` with
//! `Retry-After` (by the connection loop, after reading the head, so the client sees it) and
//! closed. Connections from trusted proxies are not capped per address: they carry many
//! clients (their requests are still rate-limited by the forwarded address).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use livechat_shard_router::Counters;

use super::cidr::Cidr;
use super::client_ip::{is_trusted, limit_key};

/// The node's connection admission state.
#[derive(Debug)]
pub struct ConnLimits {
    max: usize,
    per_ip: u32,
    trusted: Vec<Cidr>,
    open: AtomicUsize,
    by_ip: Mutex<HashMap<IpAddr, u32>>,
    counters: Arc<Counters>,
}

/// What to do with a connection just accepted.
#[derive(Debug)]
pub enum Admission {
    /// Serve it; the slot is held for as long as the connection lives.
    Admitted(ConnSlot),
    /// Over the node-wide cap: close it now.
    NodeFull,
    /// Over its address's cap: answer 429 and close (it holds a node slot meanwhile).
    AddressFull(ConnSlot),
}

/// One open connection, counted until dropped.
#[derive(Debug)]
pub struct ConnSlot {
    limits: Arc<ConnLimits>,
    /// The per-address entry this slot counts in, if it counts in one.
    key: Option<IpAddr>,
}

impl ConnLimits {
    /// At most `max` connections on the node and `per_ip` per client address (0: no
    /// per-address cap), connections from `trusted` proxies exempt from the latter.
    pub fn new(max: usize, per_ip: u32, trusted: Vec<Cidr>, counters: Arc<Counters>) -> Arc<Self> {
        Arc::new(Self {
            max,
            per_ip,
            trusted,
            open: AtomicUsize::new(0),
            by_ip: Mutex::new(HashMap::new()),
            counters,
        })
    }

    /// Open connections on the node.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// The trusted proxies.
    pub fn trusted(&self) -> &[Cidr] {
        &self.trusted
    }

    /// Decides on a connection accepted from `peer`, counting the refusal if it is one.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Admission {
        if self.open.fetch_add(1, Ordering::Relaxed) >= self.max {
            self.open.fetch_sub(1, Ordering::Relaxed);
            Counters::bump(&self.counters.http_refused_node_cap);
            return Admission::NodeFull;
        }
        if self.per_ip == 0 || is_trusted(peer, &self.trusted) {
            return Admission::Admitted(self.slot(None));
        }
        let key = limit_key(peer);
        let mut by_ip = self.by_ip.lock().unwrap_or_else(|e| e.into_inner());
        let n = by_ip.entry(key).or_insert(0);
        if *n >= self.per_ip {
            drop(by_ip);
            Counters::bump(&self.counters.http_refused_ip_conns);
            return Admission::AddressFull(self.slot(None));
        }
        *n += 1;
        drop(by_ip);
        Admission::Admitted(self.slot(Some(key)))
    }

    /// Counts a connection that is already open (a WebSocket handed over from another
    /// executor, whose slot was given back when it left there), without refusing it.
    pub fn adopt(self: &Arc<Self>, peer: IpAddr) -> ConnSlot {
        self.open.fetch_add(1, Ordering::Relaxed);
        if self.per_ip == 0 || is_trusted(peer, &self.trusted) {
            return self.slot(None);
        }
        let key = limit_key(peer);
        *self
            .by_ip
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key)
            .or_insert(0) += 1;
        self.slot(Some(key))
    }

    fn slot(self: &Arc<Self>, key: Option<IpAddr>) -> ConnSlot {
        ConnSlot {
            limits: self.clone(),
            key,
        }
    }
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        let l = &self.limits;
        if let Some(key) = self.key {
            let mut by_ip = l.by_ip.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = by_ip.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    by_ip.remove(&key);
                }
            }
        }
        l.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The default node-wide cap for a descriptor limit of `nofile`: the limit minus a reserve for
/// everything else the process opens (io_uring rings, listeners, Redis / PostgreSQL / Kafka
/// sockets, log files) — 128 descriptors or 1/16 of the limit, whichever is more — but never
/// below half the limit.
pub fn default_cap(nofile: u64) -> usize {
    let reserve = (nofile / 16).max(128);
    let cap = nofile.saturating_sub(reserve).max(nofile / 2);
    usize::try_from(cap).unwrap_or(usize::MAX)
}

/// The soft `RLIMIT_NOFILE` of this process, from `/proc/self/limits` (read without `unsafe`;
/// glommio runs only on Linux). `None`: unlimited or unknown.
pub fn nofile_soft_limit() -> Option<u64> {
    parse_nofile(&std::fs::read_to_string("/proc/self/limits").ok()?)
}

/// The soft limit of the `Max open files` line of a `/proc/<pid>/limits` text.
pub fn parse_nofile(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn node_cap_and_address_cap() {
        let counters = Arc::new(Counters::default());
        let l = ConnLimits::new(3, 2, vec!["10.0.0.0/8".parse().unwrap()], counters.clone());
        let a1 = l.admit(ip("1.1.1.1"));
        let a2 = l.admit(ip("1.1.1.1"));
        assert!(matches!(a1, Admission::Admitted(_)));
        assert!(matches!(a2, Admission::Admitted(_)));
        // Third from the same address: over its cap, but it holds a node slot until answered.
        let a3 = l.admit(ip("::ffff:1.1.1.1"));
        assert!(matches!(a3, Admission::AddressFull(_)));
        assert_eq!(l.open(), 3);
        assert!(matches!(l.admit(ip("2.2.2.2")), Admission::NodeFull));
        assert_eq!(l.open(), 3);
        drop(a3);
        drop(a1);
        assert_eq!(l.open(), 1);
        // A slot of 1.1.1.1 is free again.
        let b = l.admit(ip("1.1.1.1"));
        assert!(matches!(b, Admission::Admitted(_)));
        // Trusted proxies are not capped per address.
        let p1 = l.admit(ip("10.0.0.1"));
        assert!(matches!(p1, Admission::Admitted(_)));
        let s = counters.snapshot();
        assert_eq!((s.http_refused_node_cap, s.http_refused_ip_conns), (1, 1));
        drop((a2, b, p1));
        assert_eq!(l.open(), 0);
        assert!(l.by_ip.lock().unwrap().is_empty());
    }

    #[test]
    fn ipv6_clients_are_capped_by_their_64() {
        let l = ConnLimits::new(100, 1, Vec::new(), Arc::new(Counters::default()));
        let _a = l.admit(ip("2001:db8::1"));
        assert!(matches!(
            l.admit(ip("2001:db8::2")),
            Admission::AddressFull(_)
        ));
        assert!(matches!(
            l.admit(ip("2001:db8:0:1::1")),
            Admission::Admitted(_)
        ));
    }

    #[test]
    fn adopted_connections_count() {
        let l = ConnLimits::new(1, 1, Vec::new(), Arc::new(Counters::default()));
        let s = l.adopt(ip("1.1.1.1"));
        assert!(matches!(l.admit(ip("2.2.2.2")), Admission::NodeFull));
        drop(s);
        assert!(matches!(l.admit(ip("1.1.1.1")), Admission::Admitted(_)));
    }

    #[test]
    fn default_cap_from_the_descriptor_limit() {
        assert_eq!(default_cap(256), 128);
        assert_eq!(default_cap(1024), 896);
        assert_eq!(default_cap(65_536), 61_440);
        assert_eq!(default_cap(100), 50);
        let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
                    Max processes             63704                63704                processes \n\
                    Max open files            1024                 524288               files     \n";
        assert_eq!(parse_nofile(text), Some(1024));
        assert_eq!(
            parse_nofile(
                "Max open files            unlimited            unlimited            files"
            ),
            None
        );
        assert!(nofile_soft_limit().is_some());
    }
}
