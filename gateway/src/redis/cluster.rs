//! [`ClusterConn`]: one executor's connections to a Redis Cluster — a [`RedisConn`] per
//! master, created on first use, and the slot map that says which master owns a key.
//!
//! Routing: a command goes to the owner of its first key's slot (`CRC16` of the key's hash
//! tag, [`redis_protocol::redis_keyslot`]); a command without a key (`PING`) to any master.
//! Every key one command or script touches must share that slot (the key schema puts one
//! conversation's keys under its `{id}` hash tag).
//!
//! Topology: the slot map comes from `CLUSTER SLOTS` of any known node (seeds first), read
//! before the first command and again whenever a master answers `MOVED` (the slot moved for
//! good: the command is re-sent to the new owner at once, and the whole map is re-read) or a
//! connection to a master fails (it may have failed over). `ASK` (a slot being migrated) sends
//! `ASKING` and the command to the named node, once, without changing the map. `TRYAGAIN`
//! (a multi-key command during a migration) is retried after a short pause. A command whose
//! connection failed is not re-sent — it may have run — the caller sees the error, as with
//! one Redis.
//!
//! Pub/Sub is sharded (`SSUBSCRIBE`, Redis 7): a channel is subscribed on the master that owns
//! its slot, so a publish reaches only that shard. When a slot moves, its master drops the
//! subscription (an unsolicited `sunsubscribe` push): it is made again on the new owner.
//!
//! Lives on: one executor, like the [`RedisConn`]s it holds.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::rc::{Rc, Weak};
use std::time::Duration;

use ::redis::{Cmd, FromRedisValue, PushInfo, PushKind, ServerErrorKind, ToRedisArgs, Value};
use redis_protocol::redis_keyslot;

use super::script::eval_cmd;
use super::{Error, RedisConfig, RedisConn, Script};

/// Slots of a Redis Cluster.
pub const SLOTS: usize = 16_384;

/// Redirections followed for one command before giving up.
const MAX_REDIRECTS: usize = 5;

/// Pause before re-sending a command answered `TRYAGAIN`.
const TRY_AGAIN_PAUSE: Duration = Duration::from_millis(20);

/// The caller's push handler, shared by every master's connection.
type PushHandler = Rc<dyn Fn(PushInfo)>;

/// A cluster's connections and slot map (cheap to clone: a handle).
#[derive(Clone)]
pub struct ClusterConn {
    inner: Rc<Inner>,
}

impl std::fmt::Debug for ClusterConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterConn")
            .field("seeds", &self.inner.seeds)
            .field("nodes", &self.inner.nodes.borrow().len())
            .finish()
    }
}

struct Inner {
    /// Settings of every node connection (host and port replaced per node).
    template: RedisConfig,
    /// `host:port` of the nodes given in the configuration.
    seeds: Vec<String>,
    /// Slot → `host:port` of its master (empty before the first map).
    slots: RefCell<Vec<Option<Rc<str>>>>,
    nodes: RefCell<HashMap<Rc<str>, RedisConn>>,
    handler: RefCell<Option<PushHandler>>,
    /// Shard channels the caller subscribed to (re-made on their slot's new owner).
    channels: RefCell<BTreeSet<Vec<u8>>>,
    /// Whether a map refresh runs (one at a time).
    refreshing: Cell<bool>,
    /// Maps read (for tests and metrics).
    refreshes: Cell<u64>,
}

impl ClusterConn {
    /// Connections to the cluster that `seeds` (`host:port`) belong to, with `template`'s
    /// settings for each. Nothing is connected until the first command.
    pub fn new(template: RedisConfig, seeds: Vec<String>) -> Result<Self, Error> {
        if seeds.is_empty() {
            return Err(Error::Config(
                "a Redis Cluster needs at least one node".into(),
            ));
        }
        if template.db != 0 {
            return Err(Error::Config("Redis Cluster has only database 0".into()));
        }
        Ok(Self {
            inner: Rc::new(Inner {
                template,
                seeds,
                slots: RefCell::new(vec![None; SLOTS]),
                nodes: RefCell::new(HashMap::new()),
                handler: RefCell::new(None),
                channels: RefCell::new(BTreeSet::new()),
                refreshing: Cell::new(false),
                refreshes: Cell::new(0),
            }),
        })
    }

    /// How many times the slot map was read.
    pub fn refreshes(&self) -> u64 {
        self.inner.refreshes.get()
    }

    /// Command round trips and failed requests of the connections to the current masters (a
    /// connection dropped with its master takes its share with it).
    pub fn command_stats(&self) -> (crate::metrics::Histogram, u64) {
        let mut total = (crate::metrics::Histogram::default(), 0);
        for c in self.inner.nodes.borrow().values() {
            total.0.add(&c.latency());
            total.1 += c.errors();
        }
        total
    }

    /// The masters this executor has connections to.
    pub fn node_count(&self) -> usize {
        self.inner.nodes.borrow().len()
    }

    /// Sends `cmd` to the owner of its key's slot, following redirections.
    pub fn query_value(&self, cmd: &Cmd) -> impl Future<Output = Result<Value, Error>> + 'static {
        let (this, cmd) = (self.clone(), cmd.clone());
        async move {
            let slot = key_slot(&cmd);
            this.run(slot, &cmd).await
        }
    }

    /// [`ClusterConn::query_value`], converting the reply to `T`.
    pub fn query<T: FromRedisValue + 'static>(
        &self,
        cmd: &Cmd,
    ) -> impl Future<Output = Result<T, Error>> + 'static {
        let reply = self.query_value(cmd);
        async move { T::from_redis_value(reply.await?).map_err(Error::from) }
    }

    /// Runs `script` on the owner of `keys[0]`'s slot (`EVALSHA`, `EVAL` on `NOSCRIPT`: each
    /// master loads scripts separately).
    pub async fn eval<T, K, A>(&self, script: &Script, keys: &[K], args: &[A]) -> Result<T, Error>
    where
        T: FromRedisValue,
        K: ToRedisArgs,
        A: ToRedisArgs,
    {
        let cmd = eval_cmd("EVALSHA", script.hash(), keys, args);
        let slot = key_slot(&cmd);
        let value = match self.run(slot, &cmd).await {
            Err(e) if e.server_kind() == Some(ServerErrorKind::NoScript) => {
                let cmd = eval_cmd("EVAL", script.source(), keys, args);
                self.run(slot, &cmd).await?
            }
            other => other?,
        };
        T::from_redis_value(value).map_err(Error::from)
    }

    /// Installs the handler of push frames from every master (see
    /// [`RedisConn::set_push_handler`]).
    pub fn set_push_handler(&self, handler: impl Fn(PushInfo) + 'static) {
        *self.inner.handler.borrow_mut() = Some(Rc::new(handler));
    }

    /// `SSUBSCRIBE` to `channels`, each on the master of its slot; returns once all confirmed.
    pub async fn ssubscribe<C: AsRef<[u8]>>(&self, channels: &[C]) -> Result<(), Error> {
        for c in channels {
            let c = c.as_ref();
            self.inner.channels.borrow_mut().insert(c.to_vec());
            let node = self.node_for(Some(redis_keyslot(c))).await?;
            node.ssubscribe(&[c]).await?;
        }
        Ok(())
    }

    /// `SUNSUBSCRIBE` from `channels`.
    pub async fn sunsubscribe<C: AsRef<[u8]>>(&self, channels: &[C]) -> Result<(), Error> {
        for c in channels {
            let c = c.as_ref();
            self.inner.channels.borrow_mut().remove(c);
            let node = self.node_for(Some(redis_keyslot(c))).await?;
            node.sunsubscribe(&[c]).await?;
        }
        Ok(())
    }

    /// A connection to every master (reading the map first if there is none): for commands
    /// that concern every shard, such as `SCAN`.
    pub async fn masters(&self) -> Result<Vec<RedisConn>, Error> {
        if self.owner(None).is_none() {
            self.refresh().await?;
        }
        let addrs: BTreeSet<Rc<str>> = self
            .inner
            .slots
            .borrow()
            .iter()
            .flatten()
            .cloned()
            .collect();
        addrs.iter().map(|a| self.conn(a)).collect()
    }

    /// Sends `cmd` (whose key hashes to `slot`) and follows `MOVED`, `ASK` and `TRYAGAIN`.
    async fn run(&self, slot: Option<u16>, cmd: &Cmd) -> Result<Value, Error> {
        let mut node = self.node_for(slot).await?;
        let mut asking = false;
        for _ in 0..MAX_REDIRECTS {
            let reply = if asking {
                let _ = node.send(&::redis::cmd("ASKING"));
                node.query_value(cmd).await
            } else {
                node.query_value(cmd).await
            };
            asking = false;
            let e = match reply {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            match e.server_kind() {
                Some(ServerErrorKind::Moved) => {
                    let Some((moved, addr)) = redirect(&e) else {
                        return Err(e);
                    };
                    self.inner.slots.borrow_mut()[usize::from(moved)] = Some(addr.clone());
                    self.refresh_soon();
                    node = self.conn(&addr)?;
                }
                Some(ServerErrorKind::Ask) => {
                    let Some((_, addr)) = redirect(&e) else {
                        return Err(e);
                    };
                    node = self.conn(&addr)?;
                    asking = true;
                }
                Some(ServerErrorKind::TryAgain) => glommio::timer::sleep(TRY_AGAIN_PAUSE).await,
                _ => {
                    if e.is_connection_error() {
                        // The master may have failed over: learn the new map for the next
                        // commands (this one may have run; it is not re-sent).
                        self.refresh_soon();
                    }
                    return Err(e);
                }
            }
        }
        Err(Error::Protocol(format!(
            "more than {MAX_REDIRECTS} cluster redirections for one command"
        )))
    }

    /// The connection to the master of `slot` (any master for `None`), reading the map first
    /// when it does not name one.
    async fn node_for(&self, slot: Option<u16>) -> Result<RedisConn, Error> {
        if let Some(addr) = self.owner(slot) {
            return self.conn(&addr);
        }
        self.refresh().await?;
        match self.owner(slot) {
            Some(addr) => self.conn(&addr),
            None => Err(Error::Protocol(format!(
                "no Redis Cluster master serves slot {slot:?}"
            ))),
        }
    }

    fn owner(&self, slot: Option<u16>) -> Option<Rc<str>> {
        let slots = self.inner.slots.borrow();
        match slot {
            Some(s) => slots.get(usize::from(s)).cloned().flatten(),
            None => slots.iter().flatten().next().cloned(),
        }
    }

    /// The connection to `addr` (made on first use, with the push handler forwarding).
    fn conn(&self, addr: &Rc<str>) -> Result<RedisConn, Error> {
        if let Some(c) = self.inner.nodes.borrow().get(addr) {
            return Ok(c.clone());
        }
        let (host, port) = split_addr(addr)?;
        let mut config = self.inner.template.clone();
        config.host = host;
        config.port = port;
        let conn = RedisConn::new(config)?;
        let weak = Rc::downgrade(&self.inner);
        conn.set_push_handler(move |push| on_push(&weak, push));
        self.inner
            .nodes
            .borrow_mut()
            .insert(addr.clone(), conn.clone());
        Ok(conn)
    }

    /// Reads the slot map from the first node that answers (known masters, then the seeds).
    pub async fn refresh(&self) -> Result<(), Error> {
        let mut candidates: Vec<Rc<str>> = self.inner.nodes.borrow().keys().cloned().collect();
        candidates.extend(self.inner.seeds.iter().map(|s| Rc::<str>::from(s.as_str())));
        let mut last = Error::Config("no Redis Cluster node to ask for the slot map".into());
        for addr in candidates {
            let reply = match self.conn(&addr) {
                Ok(c) => c.query_value(::redis::cmd("CLUSTER").arg("SLOTS")).await,
                Err(e) => Err(e),
            };
            match reply.and_then(|v| parse_slots(&v)) {
                Ok(map) => {
                    *self.inner.slots.borrow_mut() = map;
                    self.inner.refreshes.set(self.inner.refreshes.get() + 1);
                    return Ok(());
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Re-reads the map in the background (at most one refresh at a time).
    fn refresh_soon(&self) {
        if self.inner.refreshing.replace(true) {
            return;
        }
        let this = self.clone();
        glommio::spawn_local(async move {
            if let Err(e) = this.refresh().await {
                tracing::warn!(error = %e, "Redis Cluster slot map not refreshed");
            }
            this.inner.refreshing.set(false);
        })
        .detach();
    }
}

/// A push from one master: to the caller's handler; an unsolicited `sunsubscribe` (the
/// channel's slot moved) re-subscribes on the new owner.
fn on_push(inner: &Weak<Inner>, push: PushInfo) {
    let Some(inner) = inner.upgrade() else { return };
    if push.kind == PushKind::SUnsubscribe {
        if let Some(Value::BulkString(channel)) = push.data.first() {
            if inner.channels.borrow().contains(channel) {
                let (this, channel) = (
                    ClusterConn {
                        inner: inner.clone(),
                    },
                    channel.clone(),
                );
                glommio::spawn_local(async move {
                    let _ = this.refresh().await;
                    this.inner.channels.borrow_mut().remove(&channel);
                    if let Err(e) = this.ssubscribe(&[channel]).await {
                        tracing::warn!(error = %e, "shard channel not re-subscribed after a slot move");
                    }
                })
                .detach();
            }
        }
        return;
    }
    let handler = inner.handler.borrow().clone();
    if let Some(h) = handler {
        h(push);
    }
}

/// The slot of `cmd`'s first key (its second argument), `None` for `PING` and the like.
/// `EVAL`/`EVALSHA` name their first key after the key count.
fn key_slot(cmd: &Cmd) -> Option<u16> {
    let mut args = cmd.args_iter().filter_map(|a| match a {
        ::redis::Arg::Simple(b) => Some(b),
        _ => None,
    });
    let name = args.next()?;
    let key = if name.eq_ignore_ascii_case(b"EVALSHA") || name.eq_ignore_ascii_case(b"EVAL") {
        let mut rest = args.skip(1);
        let n = rest.next()?;
        if n == b"0" {
            return None;
        }
        rest.next()?
    } else if name.eq_ignore_ascii_case(b"PING") || name.eq_ignore_ascii_case(b"CLUSTER") {
        return None;
    } else {
        args.next()?
    };
    Some(redis_keyslot(key))
}

/// `(slot, "host:port")` of a `MOVED`/`ASK` error (`MOVED 3999 127.0.0.1:6381`).
fn redirect(e: &Error) -> Option<(u16, Rc<str>)> {
    let Error::Server(s) = e else { return None };
    let mut parts = s.details()?.split_whitespace();
    let slot = parts.next()?.parse().ok()?;
    let addr = parts.next()?;
    Some((slot, Rc::from(addr)))
}

fn split_addr(addr: &str) -> Result<(String, u16), Error> {
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| Error::Config(format!("bad Redis Cluster node address {addr:?}")))?;
    let port = port
        .parse()
        .map_err(|_| Error::Config(format!("bad Redis Cluster node port in {addr:?}")))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok((host.to_owned(), port))
}

/// The slot map of a `CLUSTER SLOTS` reply: `[[start, end, [host, port, id], replicas...]...]`.
fn parse_slots(v: &Value) -> Result<Vec<Option<Rc<str>>>, Error> {
    let bad = || Error::Type("unexpected CLUSTER SLOTS reply".into());
    let Value::Array(ranges) = v else {
        return Err(bad());
    };
    let mut map = vec![None; SLOTS];
    for r in ranges {
        let Value::Array(r) = r else {
            return Err(bad());
        };
        let (Some(Value::Int(start)), Some(Value::Int(end)), Some(Value::Array(master))) =
            (r.first(), r.get(1), r.get(2))
        else {
            return Err(bad());
        };
        let host = match master.first() {
            Some(Value::BulkString(h)) => String::from_utf8_lossy(h).into_owned(),
            Some(Value::SimpleString(h)) => h.clone(),
            _ => return Err(bad()),
        };
        let Some(Value::Int(port)) = master.get(1) else {
            return Err(bad());
        };
        let addr: Rc<str> = if host.contains(':') {
            format!("[{host}]:{port}").into()
        } else {
            format!("{host}:{port}").into()
        };
        let (start, end) = (usize::try_from(*start), usize::try_from(*end));
        let (Ok(start), Ok(end)) = (start, end) else {
            return Err(bad());
        };
        for slot in map.iter_mut().take(end.min(SLOTS - 1) + 1).skip(start) {
            *slot = Some(addr.clone());
        }
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_is_routed_by_its_first_key_and_a_script_by_its_first_key_after_the_count() {
        let mut get = ::redis::cmd("HGET");
        get.arg("lc:conversation:{abc}").arg("v");
        assert_eq!(key_slot(&get), Some(redis_keyslot(b"abc")));
        let eval = eval_cmd("EVALSHA", "deadbeef", &["lc:room:{abc}"], &["x"]);
        assert_eq!(key_slot(&eval), Some(redis_keyslot(b"abc")));
        let no_keys = eval_cmd::<&str, &str>("EVAL", "return 1", &[], &[]);
        assert_eq!(key_slot(&no_keys), None);
        assert_eq!(key_slot(&::redis::cmd("PING")), None);
    }

    #[test]
    fn redirections_and_slot_maps_parse() {
        let map = parse_slots(&Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(5460),
                Value::Array(vec![
                    Value::BulkString(b"127.0.0.1".to_vec()),
                    Value::Int(7000),
                ]),
            ]),
            Value::Array(vec![
                Value::Int(5461),
                Value::Int(16383),
                Value::Array(vec![Value::BulkString(b"::1".to_vec()), Value::Int(7001)]),
            ]),
        ]))
        .unwrap();
        assert_eq!(map[0].as_deref(), Some("127.0.0.1:7000"));
        assert_eq!(map[5460].as_deref(), Some("127.0.0.1:7000"));
        assert_eq!(map[16383].as_deref(), Some("[::1]:7001"));
        assert_eq!(split_addr("[::1]:7001").unwrap(), ("::1".to_owned(), 7001));
        assert!(parse_slots(&Value::Int(1)).is_err());
    }
}
