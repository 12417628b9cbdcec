//! [`Broker`] for [`RedisBroker`]: each call goes to [`super::Inner`].

use std::sync::atomic::Ordering::Relaxed;

use sse_channel_protocol::descriptor::is_channel_id;
use sse_channel_protocol::EventId;
use tokio::sync::watch;

use super::{count, creator_keys, is_address, lock, meta_key, RedisBroker};
use crate::broker::{
    Append, Appended, BoxFuture, Broker, BrokerError, BrokerStatus, CreatorLimits, Head,
    NewChannel, ReadBatch, SharedCount,
};

impl Broker for RedisBroker {
    fn create(&self, channel: NewChannel) -> BoxFuture<'_, Result<(), BrokerError>> {
        Box::pin(self.inner.create(channel))
    }

    fn append<'a>(
        &'a self,
        channel: &'a str,
        append: Append,
    ) -> BoxFuture<'a, Result<Appended, BrokerError>> {
        Box::pin(self.inner.append(channel, append))
    }

    fn read<'a>(
        &'a self,
        channel: &'a str,
        after: EventId,
        max: usize,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<ReadBatch, BrokerError>> {
        Box::pin(self.inner.read(channel, after, max, now_ms))
    }

    fn watch<'a>(
        &'a self,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<watch::Receiver<Head>, BrokerError>> {
        Box::pin(self.inner.watch(channel))
    }

    fn sweep(&self, now_ms: u64) -> BoxFuture<'_, Vec<String>> {
        Box::pin(self.inner.sweep(now_ms))
    }

    fn channel_count(&self) -> usize {
        self.inner.channels.load(Relaxed)
    }

    fn buffered_bytes(&self) -> u64 {
        self.inner.held_total.load(Relaxed)
    }

    fn admit_creator<'a>(
        &'a self,
        creator: &'a str,
        channel: &'a str,
        until_ms: u64,
        limits: CreatorLimits,
    ) -> Option<BoxFuture<'a, Result<(), BrokerError>>> {
        if !is_address(creator) || !is_channel_id(channel) {
            return None;
        }
        Some(Box::pin(
            self.inner.admit_creator(creator, channel, until_ms, limits),
        ))
    }

    fn forget_creator<'a>(&'a self, creator: &'a str, channel: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            lock(&self.inner.creators).remove(channel);
            if is_address(creator) {
                let [live, _] = creator_keys(creator);
                let mut conn = self.inner.conn.clone();
                let mut zrem = redis::cmd("ZREM");
                zrem.arg(live).arg(channel);
                let _ = self.inner.call(zrem.query_async::<i64>(&mut conn)).await;
            }
        })
    }

    fn subscribers_changed<'a>(
        &'a self,
        channel: &'a str,
        delta: i64,
        now_ms: u64,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if !is_channel_id(channel) {
                return;
            }
            let mut conn = self.inner.conn.clone();
            let _ = self
                .inner
                .call(
                    self.inner
                        .scripts
                        .subs
                        .key(meta_key(channel))
                        .arg(delta)
                        .arg(now_ms)
                        .invoke_async::<i64>(&mut conn),
                )
                .await;
        })
    }

    fn shared_subscribers<'a>(&'a self, channel: &'a str) -> BoxFuture<'a, Option<SharedCount>> {
        Box::pin(async move {
            if !is_channel_id(channel) {
                return None;
            }
            let mut conn = self.inner.conn.clone();
            let mut cmd = redis::cmd("HMGET");
            cmd.arg(meta_key(channel)).arg("subs").arg("empty");
            let got: Vec<Option<i64>> = self.inner.call(cmd.query_async(&mut conn)).await.ok()?;
            Some(SharedCount {
                subscribers: count(got.first().copied().flatten().unwrap_or(0)),
                empty_since_ms: got.get(1).copied().flatten().map(count),
            })
        })
    }

    fn status(&self) -> BrokerStatus {
        BrokerStatus {
            kind: "redis",
            up: self.inner.up.load(Relaxed) && self.inner.listening.load(Relaxed),
            errors: self.inner.errors.load(Relaxed),
            round_trip_us: Some(self.inner.rtt_us.load(Relaxed)),
        }
    }
}
