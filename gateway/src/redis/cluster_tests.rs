//! [`ClusterConn`] against a real three-master Redis Cluster (`test_cluster.rs`): routing by
//! slot, scripts per master, `MOVED` after a reshard, a restarted master, sharded Pub/Sub.

use std::cell::RefCell;
use std::rc::Rc;

use ::redis::{PushKind, Value};

use super::test_cluster::TestCluster;
use super::test_server::run;
use super::{Msg, Redis, RedisTarget, Script};

fn open(cluster: &TestCluster) -> Redis {
    RedisTarget::from_url(&cluster.url())
        .unwrap()
        .open()
        .unwrap()
}

fn set(key: &str, value: &str) -> ::redis::Cmd {
    let mut c = ::redis::cmd("SET");
    c.arg(key).arg(value);
    c
}

fn get(key: &str) -> ::redis::Cmd {
    let mut c = ::redis::cmd("GET");
    c.arg(key);
    c
}

#[test]
fn commands_and_scripts_reach_the_master_of_their_slot() {
    let cluster = TestCluster::start();
    run(async {
        let r = open(&cluster);
        let keys: Vec<String> = (0..200).map(|i| format!("k:{{{i}}}")).collect();
        // Pipelined over three masters, answered in order per key.
        let writes: Vec<_> = keys.iter().map(|k| r.query::<()>(&set(k, k))).collect();
        for w in writes {
            w.await.unwrap();
        }
        for k in &keys {
            let v: Option<String> = r.query(&get(k)).await.unwrap();
            assert_eq!(v.as_deref(), Some(k.as_str()));
        }
        let Redis::Cluster(c) = &r else {
            panic!("a cluster URL opens a cluster")
        };
        assert_eq!(c.node_count(), 3, "one connection per master");
        // A script touching two keys of one slot, on several slots (each master loads it).
        let script =
            Script::new("redis.call('SET', KEYS[1], ARGV[1]); return redis.call('INCR', KEYS[2])");
        for i in 0..20 {
            let (a, b) = (format!("s:{{{i}}}:a"), format!("s:{{{i}}}:b"));
            let n: i64 = r.eval(&script, &[&a, &b], &["x"]).await.unwrap();
            assert_eq!(n, 1);
        }
        // Keys of two slots in one script: Redis refuses, the error reaches the caller.
        let err = r
            .eval::<i64, _, _>(&script, &["x:{1}", "x:{2}"], &["x"])
            .await
            .unwrap_err();
        assert!(
            err.to_string().to_lowercase().contains("crossslot"),
            "{err}"
        );
    });
}

#[test]
fn a_resharded_slot_is_followed_and_the_map_reread() {
    let cluster = TestCluster::start();
    run(async {
        let r = open(&cluster);
        let keys: Vec<String> = (0..300).map(|i| format!("m:{{{i}}}")).collect();
        for k in &keys {
            r.query::<()>(&set(k, "v")).await.unwrap();
        }
        let Redis::Cluster(c) = &r else { panic!() };
        let before = c.refreshes();
        // Master 0's first 500 slots (and their keys) move to master 1 behind our back.
        cluster.reshard(0, 1, 500);
        for k in &keys {
            let v: Option<String> = r.query(&get(k)).await.unwrap();
            assert_eq!(v.as_deref(), Some("v"), "{k} after the reshard");
        }
        assert!(c.refreshes() > before, "MOVED made it read the map again");
    });
}

#[test]
fn a_restarted_master_serves_again_without_a_new_handle() {
    let mut cluster = TestCluster::start();
    run(async {
        let r = open(&cluster);
        for i in 0..50 {
            r.query::<()>(&set(&format!("r:{{{i}}}"), "v"))
                .await
                .unwrap();
        }
        cluster.restart(2);
        // Keys on the restarted master were not persisted: gone, but the master answers.
        let mut answered = 0;
        for i in 0..50 {
            // The first command on a dead connection may fail; the next reconnects.
            let mut tries = 0;
            loop {
                match r.query::<Option<String>>(&get(&format!("r:{{{i}}}"))).await {
                    Ok(_) => {
                        answered += 1;
                        break;
                    }
                    Err(e) if e.is_connection_error() && tries < 3 => tries += 1,
                    Err(e) => panic!("r:{{{i}}}: {e}"),
                }
            }
        }
        assert_eq!(answered, 50);
    });
}

#[test]
fn sharded_pubsub_delivers_from_every_shard() {
    let cluster = TestCluster::start();
    run(async {
        let sub = open(&cluster);
        let got: Rc<RefCell<Vec<(String, String)>>> = Rc::default();
        let sink = got.clone();
        sub.set_push_handler(move |push| {
            if push.kind == PushKind::SMessage {
                if let Some(m) = Msg::from_push_info(push) {
                    let payload: String = m.get_payload().unwrap();
                    sink.borrow_mut()
                        .push((m.get_channel_name().to_owned(), payload));
                }
            }
        });
        let channels: Vec<String> = (0..30).map(|i| format!("room:{{{i}}}")).collect();
        sub.subscribe(&channels).await.unwrap();
        let publisher = open(&cluster);
        for c in &channels {
            let mut p = ::redis::cmd("SPUBLISH");
            p.arg(c).arg(format!("hello {c}"));
            let n: i64 = publisher.query(&p).await.unwrap();
            assert_eq!(n, 1, "one subscriber on {c}'s shard");
        }
        // A round trip on every subscribed connection: the pushes came before its reply.
        for c in &channels {
            let mut ping = ::redis::cmd("EXISTS");
            ping.arg(c);
            let _: Value = sub.query(&ping).await.unwrap();
        }
        let got = got.borrow();
        assert_eq!(got.len(), channels.len(), "{got:?}");
        for c in &channels {
            assert!(got.contains(&(c.clone(), format!("hello {c}"))), "{c}");
        }
    });
}
