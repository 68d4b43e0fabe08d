//! Pub/Sub on the same connection as commands: subscribe helpers, and the record of what the
//! connection is subscribed to so a reconnection can restore it.
//!
//! Under RESP3 a subscribed connection still takes every command; messages arrive as push
//! frames between replies and go to the push handler
//! ([`RedisConn::set_push_handler`]). The answer to `SUBSCRIBE a b` is not a reply but one
//! `subscribe` push per channel; the subscribe helpers wait for all of them.
//!
//! Subscriptions are restored on every new connection (in its handshake, before any queued
//! request goes out), and a connection with subscriptions reconnects on its own. Messages
//! published while it was down are lost: the handler gets a
//! [`PushKind::Disconnection`](redis::PushKind::Disconnection) push to say so.

use std::collections::BTreeSet;

use super::conn::RedisConn;
use super::error::Error;
use super::slot::{AckKind, Expect};

/// Channels, shard channels and patterns a connection is subscribed to.
///
/// Lives on: the executor of its connection.
#[derive(Debug, Default)]
pub(super) struct Subscriptions {
    channels: BTreeSet<Vec<u8>>,
    shard_channels: BTreeSet<Vec<u8>>,
    patterns: BTreeSet<Vec<u8>>,
}

impl Subscriptions {
    pub(super) fn is_empty(&self) -> bool {
        self.channels.is_empty() && self.shard_channels.is_empty() && self.patterns.is_empty()
    }

    fn set(&mut self, kind: Kind) -> &mut BTreeSet<Vec<u8>> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Shard => &mut self.shard_channels,
            Kind::Pattern => &mut self.patterns,
        }
    }

    /// The commands that restore every subscription, and what answers them.
    ///
    /// One `SSUBSCRIBE` per shard channel: in a cluster the channels of one `SSUBSCRIBE`
    /// must share a hash slot.
    pub(super) fn encode_restore(&self, out: &mut Vec<u8>, expects: &mut Vec<Expect>) {
        if !self.channels.is_empty() {
            let mut cmd = ::redis::cmd("SUBSCRIBE");
            for c in &self.channels {
                cmd.arg(c.as_slice());
            }
            cmd.write_packed_command(out);
            expects.push(Expect::Acks(AckKind::Subscribe, self.channels.len()));
        }
        if !self.patterns.is_empty() {
            let mut cmd = ::redis::cmd("PSUBSCRIBE");
            for p in &self.patterns {
                cmd.arg(p.as_slice());
            }
            cmd.write_packed_command(out);
            expects.push(Expect::Acks(AckKind::PSubscribe, self.patterns.len()));
        }
        for c in &self.shard_channels {
            ::redis::cmd("SSUBSCRIBE")
                .arg(c.as_slice())
                .write_packed_command(out);
            expects.push(Expect::Acks(AckKind::SSubscribe, 1));
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Channel,
    Shard,
    Pattern,
}

impl RedisConn {
    /// `SUBSCRIBE`: messages published on `channels` reach the push handler as `message`
    /// pushes. Returns once the server confirmed every channel.
    pub async fn subscribe<C: AsRef<[u8]>>(&self, channels: &[C]) -> Result<(), Error> {
        self.change(Kind::Channel, true, channels).await
    }

    /// `UNSUBSCRIBE` from `channels` (at least one: unsubscribing from everything is
    /// `unsubscribe` with the full list).
    pub async fn unsubscribe<C: AsRef<[u8]>>(&self, channels: &[C]) -> Result<(), Error> {
        self.change(Kind::Channel, false, channels).await
    }

    /// `SSUBSCRIBE` (sharded Pub/Sub, Redis 7): messages arrive as `smessage` pushes. In a
    /// cluster all `channels` must hash to one slot.
    pub async fn ssubscribe<C: AsRef<[u8]>>(&self, channels: &[C]) -> Result<(), Error> {
        self.change(Kind::Shard, true, channels).await
    }

    /// `SUNSUBSCRIBE` from `channels` (at least one).
    pub async fn sunsubscribe<C: AsRef<[u8]>>(&self, channels: &[C]) -> Result<(), Error> {
        self.change(Kind::Shard, false, channels).await
    }

    /// `PSUBSCRIBE`: messages on channels matching `patterns` arrive as `pmessage` pushes.
    pub async fn psubscribe<C: AsRef<[u8]>>(&self, patterns: &[C]) -> Result<(), Error> {
        self.change(Kind::Pattern, true, patterns).await
    }

    /// `PUNSUBSCRIBE` from `patterns` (at least one).
    pub async fn punsubscribe<C: AsRef<[u8]>>(&self, patterns: &[C]) -> Result<(), Error> {
        self.change(Kind::Pattern, false, patterns).await
    }

    async fn change<C: AsRef<[u8]>>(
        &self,
        kind: Kind,
        subscribe: bool,
        names: &[C],
    ) -> Result<(), Error> {
        if names.is_empty() {
            return Err(Error::Config("no channel or pattern given".to_owned()));
        }
        let (name, ack) = match (kind, subscribe) {
            (Kind::Channel, true) => ("SUBSCRIBE", AckKind::Subscribe),
            (Kind::Channel, false) => ("UNSUBSCRIBE", AckKind::Unsubscribe),
            (Kind::Shard, true) => ("SSUBSCRIBE", AckKind::SSubscribe),
            (Kind::Shard, false) => ("SUNSUBSCRIBE", AckKind::SUnsubscribe),
            (Kind::Pattern, true) => ("PSUBSCRIBE", AckKind::PSubscribe),
            (Kind::Pattern, false) => ("PUNSUBSCRIBE", AckKind::PUnsubscribe),
        };
        let mut cmd = ::redis::cmd(name);
        for n in names {
            cmd.arg(n.as_ref());
        }
        // Forget before sending an unsubscribe, remember after queueing a subscribe: a
        // reconnection in between then restores exactly what the caller last asked for.
        if !subscribe {
            let mut subs = self.shared().subs.borrow_mut();
            let set = subs.set(kind);
            for n in names {
                set.remove(n.as_ref());
            }
        }
        let reply = self.request(Expect::Acks(ack, names.len()), |out| {
            cmd.write_packed_command(out)
        })?;
        if subscribe {
            let mut subs = self.shared().subs.borrow_mut();
            let set = subs.set(kind);
            for n in names {
                set.insert(n.as_ref().to_vec());
            }
        }
        let result = reply.await.map(|_| ());
        if subscribe && matches!(result, Err(Error::Server(_))) {
            // Refused (ACL, cluster slot): nothing to restore.
            let mut subs = self.shared().subs.borrow_mut();
            let set = subs.set(kind);
            for n in names {
                set.remove(n.as_ref());
            }
        }
        result
    }
}
