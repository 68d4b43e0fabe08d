//! Tests of [`RedisConn`] against a real Redis: `LIVECHAT_TEST_REDIS_URL` when set (for the
//! tests that do not stop the server), else a throwaway `redis-server` per test.
//!
//! Every wait is on an event (a reply, a pushed message); nothing sleeps, nothing asserts on
//! durations.

use std::time::Duration;

use ::redis::{cmd, Msg, PushInfo, PushKind, ServerErrorKind, Value};
use futures_util::future::join_all;

use super::test_server::{run, TestCa, TestRedis};
use super::{Error, RedisConfig, RedisConn, Script};

fn config(url: &str) -> RedisConfig {
    RedisConfig::from_url(url).expect("test URL parses")
}

async fn connect(url: &str) -> RedisConn {
    RedisConn::connect(config(url)).await.expect("connects")
}

/// A key prefix no other test (or run, on a shared server) uses.
fn prefix() -> String {
    format!(
        "livechat-test:{}:{:016x}",
        std::process::id(),
        fastrand::u64(..)
    )
}

/// A flume channel fed by `conn`'s push handler.
fn pushes(conn: &RedisConn) -> flume::Receiver<PushInfo> {
    let (tx, rx) = flume::unbounded();
    conn.set_push_handler(move |push| {
        let _ = tx.send(push);
    });
    rx
}

/// The next pushed Pub/Sub message, skipping other pushes.
async fn next_message(rx: &flume::Receiver<PushInfo>) -> Msg {
    loop {
        let push = rx.recv_async().await.expect("handler alive");
        if let Some(msg) = Msg::from_push_info(push) {
            return msg;
        }
    }
}

#[test]
fn pipelined_commands_of_one_tick_go_out_in_one_write_with_their_own_replies() {
    let server = TestRedis::any();
    run(async {
        let conn = connect(server.url()).await;
        let p = prefix();
        let before = conn.stats();
        // Queued synchronously, in this order, before the writer task can run.
        let mut replies = Vec::new();
        for i in 0..200 {
            let key = format!("{p}:{i}");
            replies.push(conn.send(cmd("SET").arg(&key).arg(i)).expect("queued"));
            replies.push(conn.send(cmd("INCR").arg(&key)).expect("queued"));
            replies.push(conn.send(cmd("GET").arg(&key)).expect("queued"));
        }
        assert_eq!(conn.in_flight(), 600);
        let got = join_all(replies).await;
        let after = conn.stats();
        assert_eq!(after.flushes - before.flushes, 1, "600 commands, one write");
        assert_eq!(after.replies - before.replies, 600);
        for (i, r) in got.chunks(3).enumerate() {
            assert_eq!(r[0].as_ref().expect("SET"), &Value::Okay);
            assert_eq!(r[1].as_ref().expect("INCR"), &Value::Int(i as i64 + 1));
            let n: i64 =
                ::redis::from_redis_value(r[2].clone().expect("GET")).expect("GET is a number");
            assert_eq!(n, i as i64 + 1);
        }
        // The async-fn form: futures polled together in one tick are one write as well.
        let before = conn.stats();
        let keys: Vec<String> = (0..50).map(|i| format!("{p}:{i}")).collect();
        let values: Vec<Result<i64, Error>> =
            join_all(keys.iter().map(|k| conn.query(cmd("INCR").arg(k)))).await;
        assert_eq!(conn.stats().flushes - before.flushes, 1);
        let values: Vec<i64> = values.into_iter().map(|v| v.expect("INCR")).collect();
        assert_eq!(values, (0..50).map(|i| i + 2).collect::<Vec<i64>>());
        conn.query::<()>(cmd("DEL").arg(&keys)).await.expect("DEL");
    });
}

#[test]
fn an_error_reply_fails_only_its_request() {
    let server = TestRedis::any();
    run(async {
        let conn = connect(server.url()).await;
        let key = prefix();
        conn.query::<()>(cmd("SET").arg(&key).arg("text"))
            .await
            .expect("SET");
        let incr = conn.send(cmd("INCR").arg(&key)).expect("queued");
        let get = conn.send(cmd("GET").arg(&key)).expect("queued");
        let push = conn.send(cmd("LPUSH").arg(&key).arg("x")).expect("queued");
        let bogus = conn.send(&cmd("NOSUCHCOMMAND")).expect("queued");
        let ping = conn.send(&cmd("PING")).expect("queued");
        let (incr, get, push, bogus, ping) =
            (incr.await, get.await, push.await, bogus.await, ping.await);
        let Err(Error::Server(e)) = incr else {
            panic!("INCR of text: {incr:?}");
        };
        assert_eq!(e.kind(), Some(ServerErrorKind::ResponseError));
        assert_eq!(get.expect("GET"), Value::BulkString(b"text".to_vec()));
        let Err(Error::Server(e)) = push else {
            panic!("LPUSH on a string: {push:?}");
        };
        assert_eq!(e.code(), "WRONGTYPE");
        assert!(matches!(bogus, Err(Error::Server(_))), "{bogus:?}");
        assert_eq!(ping.expect("PING"), Value::SimpleString("PONG".to_owned()));
        // A reply of the wrong type is a per-request error too.
        let wrong = conn.query::<Vec<i64>>(cmd("GET").arg(&key)).await;
        assert!(matches!(wrong, Err(Error::Type(_))), "{wrong:?}");
        assert!(conn.is_connected());
        conn.query::<()>(cmd("DEL").arg(&key)).await.expect("DEL");
    });
}

#[test]
fn evalsha_after_script_flush_reloads_the_script_transparently() {
    let server = TestRedis::any();
    run(async {
        let conn = connect(server.url()).await;
        let key = prefix();
        // A source unique to this run, so the server cannot know it yet.
        let script = Script::new(&format!(
            "-- {key}\nreturn redis.call('INCRBY', KEYS[1], ARGV[1])"
        ));
        let n: i64 = conn.eval(&script, &[&key], &[5]).await.expect("first eval");
        assert_eq!(n, 5);
        assert_eq!(
            conn.stats().script_reloads,
            1,
            "unknown at first: loaded once"
        );
        let n: i64 = conn
            .eval(&script, &[&key], &[1])
            .await
            .expect("cached eval");
        assert_eq!(n, 6);
        assert_eq!(conn.stats().script_reloads, 1, "then EVALSHA alone");
        conn.query::<()>(cmd("SCRIPT").arg("FLUSH"))
            .await
            .expect("SCRIPT FLUSH");
        let n: i64 = conn
            .eval(&script, &[&key], &[1])
            .await
            .expect("eval after flush");
        assert_eq!(n, 7);
        assert_eq!(conn.stats().script_reloads, 2);
        // A script error is the caller's error, not retried.
        let bad = Script::new("return redis.call('NOSUCHCOMMAND')");
        let r = conn.eval::<Value, &str, &str>(&bad, &[], &[]).await;
        assert!(matches!(r, Err(Error::Server(_))), "{r:?}");
        conn.query::<()>(cmd("DEL").arg(&key)).await.expect("DEL");
    });
}

#[test]
fn pubsub_messages_reach_the_push_handler_while_commands_continue_on_the_same_connection() {
    let server = TestRedis::any();
    run(async {
        let conn = connect(server.url()).await;
        let publisher = connect(server.url()).await;
        let rx = pushes(&conn);
        let p = prefix();
        let (ch, sch, counter) = (format!("{p}:ch"), format!("{p}:sch"), format!("{p}:n"));
        conn.subscribe(&[&ch]).await.expect("SUBSCRIBE");
        conn.ssubscribe(&[&sch]).await.expect("SSUBSCRIBE");
        conn.psubscribe(&[format!("{p}:pat:*")])
            .await
            .expect("PSUBSCRIBE");
        // Commands and deliveries interleave on the one connection.
        for i in 1..=20i64 {
            let (n, receivers) = futures_lite::future::zip(
                conn.query::<i64>(cmd("INCR").arg(&counter)),
                publisher.query::<i64>(cmd("PUBLISH").arg(&ch).arg(format!("m{i}"))),
            )
            .await;
            assert_eq!(n.expect("INCR"), i);
            assert_eq!(receivers.expect("PUBLISH"), 1);
        }
        for i in 1..=20 {
            let msg = next_message(&rx).await;
            assert_eq!(msg.get_channel_name(), ch);
            assert_eq!(msg.get_payload::<String>().expect("text"), format!("m{i}"));
        }
        let receivers: i64 = publisher
            .query(cmd("SPUBLISH").arg(&sch).arg("sharded"))
            .await
            .expect("SPUBLISH");
        assert_eq!(receivers, 1);
        let msg = next_message(&rx).await;
        assert_eq!(msg.get_channel_name(), sch);
        assert_eq!(msg.get_payload::<String>().expect("text"), "sharded");
        let receivers: i64 = publisher
            .query(cmd("PUBLISH").arg(format!("{p}:pat:x")).arg("by pattern"))
            .await
            .expect("PUBLISH");
        assert_eq!(receivers, 1);
        let msg = next_message(&rx).await;
        assert!(msg.from_pattern());
        assert_eq!(msg.get_channel_name(), format!("{p}:pat:x"));
        assert_eq!(msg.get_payload::<String>().expect("text"), "by pattern");
        conn.punsubscribe(&[format!("{p}:pat:*")])
            .await
            .expect("PUNSUBSCRIBE");
        // Unsubscribed: nobody receives any more.
        conn.unsubscribe(&[&ch]).await.expect("UNSUBSCRIBE");
        conn.sunsubscribe(&[&sch]).await.expect("SUNSUBSCRIBE");
        let receivers: i64 = publisher
            .query(cmd("PUBLISH").arg(&ch).arg("late"))
            .await
            .expect("PUBLISH");
        assert_eq!(receivers, 0);
        assert_eq!(
            conn.query::<String>(&cmd("PING")).await.expect("PING"),
            "PONG"
        );
        conn.query::<()>(cmd("DEL").arg(&counter))
            .await
            .expect("DEL");
        assert_eq!(conn.stats().pushes_dropped, 0);
    });
}

#[test]
fn a_killed_server_fails_pending_requests_and_the_next_request_reconnects() {
    let mut server = TestRedis::start(&[]);
    run(async {
        let mut cfg = config(server.url());
        // So the test never meets a backoff window after the restart below.
        cfg.reconnect_backoff_min = Duration::from_millis(1);
        cfg.reconnect_backoff_max = Duration::from_millis(1);
        let conn = RedisConn::connect(cfg).await.expect("connects");
        let observer = connect(server.url()).await;
        let key = prefix();
        // BLPOP blocks the connection server-side; the GET queues behind it.
        let blocked = conn.send(cmd("BLPOP").arg(&key).arg(0)).expect("queued");
        let behind = conn.send(cmd("GET").arg(&key)).expect("queued");
        // Wait until the server has the BLPOP (an event observed from another connection).
        let mut seen = false;
        for _ in 0..10_000 {
            let info: String = observer
                .query(cmd("INFO").arg("clients"))
                .await
                .expect("INFO");
            if info.contains("blocked_clients:1") {
                seen = true;
                break;
            }
        }
        assert!(seen, "the BLPOP never reached the server");
        server.kill();
        let (blocked, behind) = (blocked.await, behind.await);
        assert!(
            blocked.as_ref().is_err_and(Error::is_connection_error),
            "{blocked:?}"
        );
        assert!(
            behind.as_ref().is_err_and(Error::is_connection_error),
            "{behind:?}"
        );
        // Down: a request fails (connection refused), it does not hang.
        let down = conn.query_value(&cmd("PING")).await;
        assert!(matches!(down, Err(Error::Io(_))), "{down:?}");
        server.restart();
        let pong: String = conn.query(&cmd("PING")).await.expect("reconnected");
        assert_eq!(pong, "PONG");
        let stats = conn.stats();
        assert_eq!((stats.connects, stats.disconnects), (2, 1), "{stats:?}");
        assert!(stats.connect_failures >= 1, "{stats:?}");
    });
}

#[test]
fn a_failed_connection_attempt_backs_off_instead_of_retrying_at_once() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    run(async {
        let mut cfg = config(&format!("redis://127.0.0.1:{port}"));
        cfg.reconnect_backoff_min = Duration::from_secs(600);
        let conn = RedisConn::new(cfg).expect("valid config");
        let first = conn.query_value(&cmd("PING")).await;
        let Err(Error::Io(e)) = &first else {
            panic!("{first:?}");
        };
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
        // Within the backoff: refused at once with the same error, no new attempt.
        let second = conn.query_value(&cmd("PING")).await;
        assert!(matches!(second, Err(Error::Io(_))), "{second:?}");
        assert_eq!(conn.stats().connect_failures, 1);
        assert_eq!(conn.stats().connects, 0);
    });
}

#[test]
fn a_stopped_server_times_requests_out_and_once_resumed_answers_the_next_in_order() {
    let server = TestRedis::start(&[]);
    run(async {
        let mut cfg = config(server.url());
        cfg.request_timeout = Duration::from_millis(300);
        let conn = RedisConn::connect(cfg).await.expect("connects");
        let key = prefix();
        conn.query::<()>(cmd("SET").arg(&key).arg("v"))
            .await
            .expect("SET");
        server.signal("STOP");
        let late = conn.query_value(cmd("GET").arg(&key)).await;
        server.signal("CONT");
        assert!(matches!(late, Err(Error::Timeout(_))), "{late:?}");
        // The GET's reply arrives first and is dropped; PING gets its own reply.
        let pong: String = conn.query(&cmd("PING")).await.expect("PING after SIGCONT");
        assert_eq!(pong, "PONG");
        let stats = conn.stats();
        assert_eq!((stats.timeouts, stats.discarded), (1, 1), "{stats:?}");
        assert_eq!(stats.disconnects, 0, "the connection survived");
    });
}

#[test]
fn a_connection_that_reads_nothing_for_the_stall_timeout_is_replaced() {
    let server = TestRedis::start(&[]);
    run(async {
        let mut cfg = config(server.url());
        cfg.request_timeout = Duration::from_millis(100);
        cfg.stall_timeout = Duration::from_millis(400);
        let conn = RedisConn::connect(cfg).await.expect("connects");
        let rx = pushes(&conn);
        server.signal("STOP");
        let late = conn.query_value(&cmd("PING")).await;
        assert!(matches!(late, Err(Error::Timeout(_))), "{late:?}");
        // The event: the stalled connection is dropped and the handler told.
        let push = rx.recv_async().await.expect("handler alive");
        server.signal("CONT");
        assert_eq!(push.kind, PushKind::Disconnection);
        let pong: String = conn.query(&cmd("PING")).await.expect("a new connection");
        assert_eq!(pong, "PONG");
        let stats = conn.stats();
        assert_eq!((stats.connects, stats.disconnects), (2, 1), "{stats:?}");
    });
}

#[test]
fn auth_and_select_come_from_the_url() {
    let server = TestRedis::start(&["--requirepass", "s3cret"]);
    run(async {
        let base = format!("redis://:s3cret@127.0.0.1:{}", server.port());
        let db5 = connect(&format!("{base}/5")).await;
        let db0 = connect(&base).await;
        let key = prefix();
        db5.query::<()>(cmd("SET").arg(&key).arg("in-5"))
            .await
            .expect("SET");
        let in0: Option<String> = db0.query(cmd("GET").arg(&key)).await.expect("GET");
        let in5: Option<String> = db5.query(cmd("GET").arg(&key)).await.expect("GET");
        assert_eq!((in0.as_deref(), in5.as_deref()), (None, Some("in-5")));
        // An ACL user with its own password.
        db0.query::<()>(cmd("ACL").arg(&["SETUSER", "alice", "on", ">pw", "~*", "&*", "+@all"]))
            .await
            .expect("ACL SETUSER");
        let alice = connect(&format!("redis://alice:pw@127.0.0.1:{}/2", server.port())).await;
        let who: String = alice.query(cmd("ACL").arg("WHOAMI")).await.expect("WHOAMI");
        assert_eq!(who, "alice");
        // A wrong password fails the request with the server's error.
        let wrong = RedisConn::new(config(&format!(
            "redis://:nope@127.0.0.1:{}",
            server.port()
        )))
        .expect("valid config");
        let r = wrong.query_value(&cmd("PING")).await;
        let Err(Error::Server(e)) = &r else {
            panic!("{r:?}");
        };
        assert_eq!(e.code(), "WRONGPASS");
        // No password at all: the server refuses the commands.
        let anonymous = RedisConn::new(config(&format!("redis://127.0.0.1:{}", server.port())))
            .expect("valid config");
        let r = anonymous.query_value(&cmd("PING")).await;
        assert!(matches!(&r, Err(Error::Server(_))), "{r:?}");
    });
}

#[test]
fn beyond_max_in_flight_requests_are_refused_at_once() {
    let server = TestRedis::any();
    run(async {
        let mut cfg = config(server.url());
        cfg.max_in_flight = 4;
        let conn = RedisConn::connect(cfg).await.expect("connects");
        let sent: Vec<_> = (0..6).map(|_| conn.send(&cmd("PING"))).collect();
        let refused = sent
            .iter()
            .filter(|r| matches!(r, Err(Error::Busy(4))))
            .count();
        assert_eq!(refused, 2);
        assert_eq!(conn.stats().refused, 2);
        for reply in sent.into_iter().flatten() {
            assert_eq!(
                reply.await.expect("PING"),
                Value::SimpleString("PONG".into())
            );
        }
        // Room again once the replies are in.
        assert_eq!(conn.in_flight(), 0);
        assert!(conn.send(&cmd("PING")).is_ok());
    });
}

#[test]
fn an_abandoned_request_is_answered_and_skipped() {
    let server = TestRedis::any();
    run(async {
        let conn = connect(server.url()).await;
        let key = prefix();
        drop(conn.send(cmd("SET").arg(&key).arg("x")).expect("queued"));
        let got: String = conn.query(cmd("GET").arg(&key)).await.expect("GET");
        assert_eq!(got, "x", "the abandoned SET was still sent, in order");
        assert_eq!(conn.stats().discarded, 1);
        conn.query::<()>(cmd("DEL").arg(&key)).await.expect("DEL");
    });
}

#[test]
fn dropping_the_last_handle_fails_what_is_in_flight() {
    let server = TestRedis::any();
    run(async {
        let conn = connect(server.url()).await;
        let reply = conn.send(&cmd("PING")).expect("queued");
        let clone = conn.clone();
        drop(conn);
        assert!(clone.is_connected(), "a clone keeps it open");
        drop(clone);
        let r = reply.await;
        assert!(matches!(r, Err(Error::Closed(_))), "{r:?}");
    });
}

#[test]
fn large_values_cross_many_reads_intact() {
    let server = TestRedis::any();
    run(async {
        let conn = connect(server.url()).await;
        let key = prefix();
        let value: Vec<u8> = (0..4_000_000u32).map(|i| (i % 253) as u8).collect();
        conn.query::<()>(cmd("SET").arg(&key).arg(&value))
            .await
            .expect("SET");
        let (got, pong) = futures_lite::future::zip(
            conn.query::<Vec<u8>>(cmd("GET").arg(&key)),
            conn.query::<String>(&cmd("PING")),
        )
        .await;
        assert!(got.expect("GET") == value);
        assert_eq!(pong.expect("PING"), "PONG");
        conn.query::<()>(cmd("DEL").arg(&key)).await.expect("DEL");
    });
}

#[test]
fn subscriptions_are_restored_after_a_reconnect() {
    let mut server = TestRedis::start(&[]);
    run(async {
        let mut cfg = config(server.url());
        cfg.reconnect_backoff_min = Duration::from_millis(1);
        cfg.reconnect_backoff_max = Duration::from_millis(1);
        let conn = RedisConn::connect(cfg).await.expect("connects");
        let rx = pushes(&conn);
        let ch = prefix();
        conn.subscribe(&[&ch]).await.expect("SUBSCRIBE");
        server.restart();
        // The loss is reported to the handler.
        let push = rx.recv_async().await.expect("handler alive");
        assert_eq!(push.kind, PushKind::Disconnection);
        // Any request queues behind the new connection's handshake, which re-subscribes.
        let pong: String = conn.query(&cmd("PING")).await.expect("reconnected");
        assert_eq!(pong, "PONG");
        let publisher = connect(server.url()).await;
        let n: i64 = publisher
            .query(cmd("PUBLISH").arg(&ch).arg("after"))
            .await
            .expect("PUBLISH");
        assert_eq!(n, 1, "subscribed again");
        let msg = next_message(&rx).await;
        assert_eq!(msg.get_payload::<String>().expect("text"), "after");
    });
}

#[test]
fn rediss_talks_tls_to_a_server_with_a_private_ca() {
    let ca = TestCa::new();
    let server = TestRedis::start_tls(&ca);
    run(async {
        let mut cfg = config(server.url());
        cfg.tls_ca_file = Some(ca.ca_file());
        let conn = RedisConn::connect(cfg).await.expect("TLS connection");
        let key = prefix();
        // Pipelined, and large enough to span many TLS records and reads.
        let value: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let set = conn.query::<()>(cmd("SET").arg(&key).arg(&value));
        let get = conn.query::<Vec<u8>>(cmd("GET").arg(&key));
        let incrs: Vec<_> = (0..100)
            .map(|_| conn.query::<i64>(cmd("INCR").arg(format!("{key}:n"))))
            .collect();
        set.await.expect("SET");
        assert!(get.await.expect("GET") == value);
        let counts: Vec<i64> = join_all(incrs)
            .await
            .into_iter()
            .map(|r| r.expect("INCR"))
            .collect();
        assert_eq!(counts, (1..=100).collect::<Vec<i64>>());
        // Pub/Sub over TLS too.
        let rx = pushes(&conn);
        conn.subscribe(&[&key]).await.expect("SUBSCRIBE");
        // `#insecure`: no CA file, any certificate accepted.
        let insecure = config(&format!("{}#insecure", server.url()));
        let publisher = RedisConn::connect(insecure)
            .await
            .expect("insecure TLS connection");
        let n: i64 = publisher
            .query(cmd("PUBLISH").arg(&key).arg("over tls"))
            .await
            .expect("PUBLISH");
        assert_eq!(n, 1);
        assert_eq!(
            next_message(&rx)
                .await
                .get_payload::<String>()
                .expect("text"),
            "over tls"
        );
    });
}

#[test]
fn rediss_refuses_a_certificate_no_trusted_root_issued() {
    let ca = TestCa::new();
    let server = TestRedis::start_tls(&ca);
    run(async {
        // System roots only: the test CA is unknown.
        let conn = match RedisConn::new(config(server.url())) {
            Ok(conn) => conn,
            // A machine without a system certificate store refuses earlier.
            Err(Error::Config(m)) if m.contains("no trusted root") => return,
            Err(e) => panic!("{e}"),
        };
        let r = conn.query_value(&cmd("PING")).await;
        let Err(Error::Io(e)) = &r else {
            panic!("{r:?}");
        };
        assert!(e.to_string().contains("certificate"), "{e}");
        assert_eq!(conn.stats().connects, 0);
    });
}
