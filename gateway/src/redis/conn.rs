//! [`RedisConn`]: one executor's pipelined connection to Redis — the handle callers use, and
//! the reconnect policy around the [`Session`] that does the IO.
//!
//! Reconnecting: a request finding no live session starts one (connect, handshake) and queues
//! behind its handshake. A session that was up and died allows an immediate reconnect; a
//! failed connection attempt sets a backoff (doubling from `reconnect_backoff_min` to
//! `reconnect_backoff_max`, each wait drawn from its upper half so that the executors of every
//! node do not reconnect in step after an outage) during which requests fail at once with
//! that attempt's error —
//! never a busy loop, never an unbounded queue of requests waiting for a server that is down.
//! A connection with subscriptions reconnects by itself (after the backoff) so Pub/Sub
//! resumes without waiting for a request.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ::redis::{Cmd, FromRedisValue, PushInfo, Value};
use futures_rustls::rustls::ClientConfig;

use super::config::RedisConfig;
use super::error::Error;
use super::pubsub::Subscriptions;
use super::session::{disconnection_push, Session};
use super::slot::{Expect, Reply};
use crate::metrics::{Histogram, LocalHistogram};

/// Counters of one connection (all its sessions), for tests and metrics.
///
/// Lives on: anywhere (a plain snapshot, `Copy`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnStats {
    /// Handshakes completed (the first connection and each reconnection).
    pub connects: u64,
    /// Connection attempts that failed before the handshake completed.
    pub connect_failures: u64,
    /// Connections lost after their handshake completed.
    pub disconnects: u64,
    /// Commands queued (handshake commands included).
    pub commands: u64,
    /// `write_all` calls of the writer task: each carries every command queued since the last.
    pub flushes: u64,
    /// Bytes those writes carried.
    pub bytes_written: u64,
    /// Replies handed to waiting requests.
    pub replies: u64,
    /// Replies dropped unparsed because their request timed out or was abandoned.
    pub discarded: u64,
    /// Push frames delivered to the push handler.
    pub pushes: u64,
    /// Push frames dropped because no push handler was installed.
    pub pushes_dropped: u64,
    /// Requests failed with [`Error::Timeout`].
    pub timeouts: u64,
    /// Requests refused with [`Error::Busy`].
    pub refused: u64,
    /// `EVALSHA` answered `NOSCRIPT` and retried with the script's source.
    pub script_reloads: u64,
}

/// A pipelined RESP3 connection to Redis on the current glommio executor. Cheap to clone
/// (clones share the connection); dropping the last clone closes it and fails what is in
/// flight with [`Error::Closed`].
///
/// Requests are sent in the order they are first polled; every request queued in one
/// executor tick goes out in one write. Error replies fail only their request.
///
/// Lives on: the executor that created it (it is `!Send`; create one per executor).
#[derive(Clone)]
pub struct RedisConn {
    handle: Rc<Handle>,
}

/// Closes the connection when the last [`RedisConn`] clone goes.
struct Handle {
    shared: Rc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.close();
    }
}

impl RedisConn {
    /// A connection that connects on its first request (and after each loss, on the next).
    /// With TLS, the trusted roots are loaded here (file IO, once).
    pub fn new(config: RedisConfig) -> Result<RedisConn, Error> {
        let tls = if config.tls {
            Some(super::tls::client_config(&config)?)
        } else {
            None
        };
        if config.max_in_flight == 0 {
            return Err(Error::Config("max_in_flight must be at least 1".to_owned()));
        }
        let backoff = config.reconnect_backoff_min;
        Ok(RedisConn {
            handle: Rc::new(Handle {
                shared: Rc::new(Shared {
                    config,
                    tls,
                    stats: Cell::new(ConnStats::default()),
                    latency: LocalHistogram::default(),
                    errors: Cell::new(0),
                    handler: RefCell::new(None),
                    subs: RefCell::new(Subscriptions::default()),
                    session: RefCell::new(None),
                    retry_at: Cell::new(None),
                    backoff: Cell::new(backoff),
                    last_error: RefCell::new(None),
                    closed: Cell::new(false),
                    keeper: Cell::new(false),
                }),
            }),
        })
    }

    /// [`RedisConn::new`], then connects and checks the server answers `PING`.
    pub async fn connect(config: RedisConfig) -> Result<RedisConn, Error> {
        let conn = RedisConn::new(config)?;
        conn.query_value(&::redis::cmd("PING")).await?;
        Ok(conn)
    }

    /// Queues `cmd` now and returns the future of its reply (an error reply is
    /// [`Error::Server`]). Use it to fix the order of requests without awaiting each.
    pub fn send(&self, cmd: &Cmd) -> Result<Reply, Error> {
        if cmd.args_iter().len() == 0 {
            return Err(Error::Config("empty command".to_owned()));
        }
        self.request(Expect::Reply, |out| cmd.write_packed_command(out))
    }

    /// Sends `cmd` and waits for its reply. The command is queued when this is called, not
    /// when the future is first polled, and the future borrows nothing: futures made one
    /// after another go out in that order, in one write, however they are awaited.
    pub fn query_value(&self, cmd: &Cmd) -> impl Future<Output = Result<Value, Error>> + 'static {
        let reply = self.send(cmd);
        async move { reply?.await }
    }

    /// [`RedisConn::query_value`], converting the reply to `T` ([`Error::Type`] when it does
    /// not fit).
    pub fn query<T: FromRedisValue + 'static>(
        &self,
        cmd: &Cmd,
    ) -> impl Future<Output = Result<T, Error>> + 'static {
        let reply = self.send(cmd);
        async move { T::from_redis_value(reply?.await?).map_err(Error::from) }
    }

    /// Installs the handler of push frames: Pub/Sub messages (`message`, `smessage`,
    /// `pmessage`; decode with `redis::Msg::from_push_info`), unsolicited (un)subscription
    /// notices, and [`PushKind::Disconnection`](redis::PushKind::Disconnection) when the
    /// connection is lost (messages published until it is back are lost; subscriptions are
    /// restored by the reconnection). Runs on the reader task: keep it short, do not block.
    /// It must not hold a clone of this connection (that would keep it open forever).
    pub fn set_push_handler(&self, handler: impl Fn(PushInfo) + 'static) {
        *self.shared().handler.borrow_mut() = Some(Rc::new(handler));
    }

    /// Removes the push handler; push frames are then counted and dropped.
    pub fn clear_push_handler(&self) {
        *self.shared().handler.borrow_mut() = None;
    }

    /// Counters since the connection was created.
    pub fn stats(&self) -> ConnStats {
        self.shared().stats.get()
    }

    /// Round trips of answered requests (queued → reply read), for `/metrics`.
    pub fn latency(&self) -> Histogram {
        self.shared().latency.snapshot()
    }

    /// Requests that failed: refused (connection down, in-flight bound), timed out, lost with
    /// the connection, or answered with an error (except `NOSCRIPT`, which is retried).
    pub fn errors(&self) -> u64 {
        self.shared().errors.get()
    }

    /// Requests waiting for their replies on the current connection.
    pub fn in_flight(&self) -> usize {
        match &*self.shared().session.borrow() {
            Some(s) if !s.is_dead() => s.in_flight(),
            _ => 0,
        }
    }

    /// Whether a connection is up (handshake done).
    pub fn is_connected(&self) -> bool {
        matches!(&*self.shared().session.borrow(), Some(s) if s.is_ready())
    }

    /// The settings this connection was made with.
    pub fn config(&self) -> &RedisConfig {
        &self.shared().config
    }

    pub(super) fn shared(&self) -> &Rc<Shared> {
        &self.handle.shared
    }

    pub(super) fn request(
        &self,
        expect: Expect,
        encode: impl FnOnce(&mut Vec<u8>),
    ) -> Result<Reply, Error> {
        self.shared().request(expect, encode)
    }
}

impl std::fmt::Debug for RedisConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConn")
            .field("addr", &self.config().addr())
            .field("connected", &self.is_connected())
            .field("in_flight", &self.in_flight())
            .finish()
    }
}

/// The owner's callback for push frames.
type PushHandler = Rc<dyn Fn(PushInfo)>;

/// What the handle, the sessions and the re-subscribe task share.
///
/// Lives on: the executor that created the connection.
pub(super) struct Shared {
    pub(super) config: RedisConfig,
    /// The TLS client configuration, built once (`rediss://` only).
    pub(super) tls: Option<Arc<ClientConfig>>,
    stats: Cell<ConnStats>,
    /// Round trips, one `Cell` add per reply (this executor's share of the Redis histogram).
    latency: LocalHistogram,
    errors: Cell<u64>,
    handler: RefCell<Option<PushHandler>>,
    pub(super) subs: RefCell<Subscriptions>,
    session: RefCell<Option<Rc<Session>>>,
    /// No connection attempt before this instant (backoff after a failed attempt).
    retry_at: Cell<Option<Instant>>,
    backoff: Cell<Duration>,
    last_error: RefCell<Option<Error>>,
    /// The last handle was dropped.
    closed: Cell<bool>,
    /// A re-subscribe task is running.
    keeper: Cell<bool>,
}

impl Shared {
    pub(super) fn bump(&self, f: impl FnOnce(&mut ConnStats)) {
        let mut s = self.stats.get();
        f(&mut s);
        self.stats.set(s);
    }

    /// A request answered `took` after it was queued.
    pub(super) fn answered(&self, took: Duration) {
        self.latency.observe(took);
    }

    /// `n` requests failed (see [`RedisConn::errors`]).
    pub(super) fn failed(&self, n: u64) {
        self.errors.set(self.errors.get() + n);
    }

    fn request(
        self: &Rc<Self>,
        expect: Expect,
        encode: impl FnOnce(&mut Vec<u8>),
    ) -> Result<Reply, Error> {
        let r = self.session().and_then(|s| s.request(expect, encode));
        if r.is_err() {
            self.failed(1);
        }
        r
    }

    /// The live session, or a new one unless a failed attempt's backoff is running.
    fn session(self: &Rc<Self>) -> Result<Rc<Session>, Error> {
        if self.closed.get() {
            return Err(Error::Closed("connection dropped"));
        }
        if let Some(s) = &*self.session.borrow() {
            if !s.is_dead() {
                return Ok(s.clone());
            }
        }
        if let Some(at) = self.retry_at.get() {
            if Instant::now() < at {
                let last = self.last_error.borrow().clone();
                return Err(last.unwrap_or(Error::Closed("reconnecting")));
            }
        }
        let s = Session::start(self.clone());
        *self.session.borrow_mut() = Some(s.clone());
        Ok(s)
    }

    /// The handshake of a new session: `HELLO 3` (with `AUTH` when there is a password),
    /// `SELECT` when the database is not 0, then the subscriptions to restore.
    pub(super) fn encode_handshake(&self, out: &mut Vec<u8>, expects: &mut Vec<Expect>) {
        let config = &self.config;
        let mut hello = ::redis::cmd("HELLO");
        hello.arg(3);
        if let Some(password) = &config.password {
            let user = config.username.as_deref().unwrap_or("default");
            hello.arg("AUTH").arg(user).arg(password);
        }
        hello.write_packed_command(out);
        expects.push(Expect::Reply);
        if config.db != 0 {
            ::redis::cmd("SELECT")
                .arg(config.db)
                .write_packed_command(out);
            expects.push(Expect::Reply);
        }
        self.subs.borrow().encode_restore(out, expects);
    }

    pub(super) fn session_ready(&self) {
        self.retry_at.set(None);
        self.backoff.set(self.config.reconnect_backoff_min);
        self.bump(|s| s.connects += 1);
    }

    /// Bookkeeping when a session dies: backoff after a failed attempt, the disconnection
    /// notice after a lost connection, and re-subscribing when there is something to restore.
    pub(super) fn session_ended(self: &Rc<Self>, was_ready: bool, err: &Error) {
        if self.closed.get() {
            return;
        }
        if was_ready {
            self.bump(|s| s.disconnects += 1);
            self.retry_at.set(None);
            self.deliver_push(disconnection_push());
        } else {
            self.bump(|s| s.connect_failures += 1);
            let backoff = self.backoff.get();
            self.retry_at
                .set(Instant::now().checked_add(jittered(backoff)));
            self.backoff.set(
                backoff
                    .saturating_mul(2)
                    .min(self.config.reconnect_backoff_max),
            );
            *self.last_error.borrow_mut() = Some(err.clone());
        }
        if !self.subs.borrow().is_empty() && !self.keeper.replace(true) {
            glommio::spawn_local(keep_subscribed(Rc::downgrade(self))).detach();
        }
    }

    /// Hands a push frame to the handler (outside any borrow, so the handler may use the
    /// connection).
    pub(super) fn deliver_push(&self, push: PushInfo) {
        let handler = self.handler.borrow().clone();
        match handler {
            Some(h) => {
                self.bump(|s| s.pushes += 1);
                h(push);
            }
            None => self.bump(|s| s.pushes_dropped += 1),
        }
    }

    fn close(&self) {
        self.closed.set(true);
        let session = self.session.borrow_mut().take();
        if let Some(s) = session {
            s.fail(Error::Closed("connection dropped"));
        }
    }
}

/// Reconnects a connection that has subscriptions, so Pub/Sub resumes without waiting for
/// a request: pings (which starts a session, whose handshake re-subscribes) after each
/// backoff until one succeeds. Holds the connection only weakly while sleeping.
async fn keep_subscribed(shared: Weak<Shared>) {
    loop {
        let wait = match shared.upgrade() {
            Some(s) if !s.closed.get() && !s.subs.borrow().is_empty() => {
                let min = s.config.reconnect_backoff_min;
                s.retry_at.get().map_or(min, |at| {
                    at.saturating_duration_since(Instant::now()).max(min)
                })
            }
            Some(s) => {
                s.keeper.set(false);
                return;
            }
            None => return,
        };
        glommio::timer::sleep(wait).await;
        let reply = match shared.upgrade() {
            Some(s) if !s.closed.get() => s.request(Expect::Reply, |out| {
                ::redis::cmd("PING").write_packed_command(out)
            }),
            _ => return,
        };
        if let Ok(reply) = reply {
            if reply.await.is_ok() {
                if let Some(s) = shared.upgrade() {
                    s.keeper.set(false);
                }
                return;
            }
        }
    }
}

/// `backoff` scaled by a random factor in [0.5, 1): the jitter of reconnection attempts.
fn jittered(backoff: Duration) -> Duration {
    backoff.mul_f64(0.5 + fastrand::f64() / 2.0)
}
