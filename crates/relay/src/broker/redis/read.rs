//! Reading a channel's events and watching its head.

use std::sync::Arc;

use sse_channel_protocol::descriptor::is_channel_id;
use sse_channel_protocol::{EventId, EventKind, LostRange};
use tokio::sync::watch;

use super::recent::{Fetching, RecentShared};
use super::{
    keys, lock, malformed, parse_id, status_error, stream_id, tokens_expire_ms, Inner, Local,
};
use crate::broker::{BrokerError, Event, Head, Phase, ReadBatch};

impl Inner {
    pub(super) async fn read(
        &self,
        id: &str,
        after: EventId,
        max: usize,
        now_ms: u64,
    ) -> Result<ReadBatch, BrokerError> {
        // A check (max 0, at admission) always asks Redis whether the
        // channel is still there.
        if max == 0 {
            return self.read_at(id, after, max, now_ms).await.map(|(b, _)| b);
        }
        loop {
            let local = lock(&self.local)
                .get(id)
                .filter(|l| now_ms < l.gone_at_ms)
                .map(|l| (l.recent.clone(), *l.head.borrow(), l.expires_at_ms));
            let Some((shared, known, expires_at_ms)) = local else {
                return self.read_at(id, after, max, now_ms).await.map(|(b, _)| b);
            };
            let served = || {
                let batch = lock(&shared.recent).serve(after, max, known)?;
                Some(
                    if batch.head.phase != Phase::Ended && now_ms >= expires_at_ms {
                        Err(BrokerError::Expired)
                    } else {
                        Ok(batch)
                    },
                )
            };
            if let Some(answer) = served() {
                return answer;
            }
            // Registered before the flag is looked at: a read that ends
            // after the look wakes this reader.
            let done = shared.done.notified();
            tokio::pin!(done);
            done.as_mut().enable();
            if shared
                .fetching
                .swap(true, std::sync::atomic::Ordering::AcqRel)
            {
                // Another reader is reading from Redis: take its result.
                done.await;
                continue;
            }
            let fetching = Fetching(&shared);
            if let Some(answer) = served() {
                return answer;
            }
            let (batch, meta) = self.read_at(id, after, max, now_ms).await?;
            if let Some(l) = lock(&self.local).get_mut(id) {
                l.gone_at_ms = meta.gone_at_ms;
            }
            lock(&shared.recent).keep(&batch, self.limits.replay_events, self.limits.replay_bytes);
            drop(fetching);
            return Ok(batch);
        }
    }

    /// [`Inner::read`], with the channel's times.
    pub(super) async fn read_at(
        &self,
        id: &str,
        after: EventId,
        max: usize,
        now_ms: u64,
    ) -> Result<(ReadBatch, Meta), BrokerError> {
        if !is_channel_id(id) {
            return Err(BrokerError::NotFound);
        }
        let [meta, stream, ..] = keys(id);
        let mut conn = self.conn.clone();
        let out: Vec<String> = self
            .call(
                self.scripts
                    .read
                    .key(meta)
                    .key(stream)
                    .arg(after)
                    .arg(max)
                    .arg(now_ms)
                    .invoke_async(&mut conn),
            )
            .await?;
        if out.first().map(String::as_str) != Some("OK") {
            return Err(status_error(out.first().map(String::as_str)));
        }
        let last_id = parse_id(out.get(1))?;
        let ended_at_ms = out.get(2).and_then(|s| s.parse::<u64>().ok());
        let ended = ended_at_ms.is_some();
        let expires_at_ms = parse_id(out.get(3))?;
        let first = stream_id(out.get(4).ok_or_else(malformed)?)?;
        let head = Head {
            last_id,
            phase: if ended { Phase::Ended } else { Phase::Open },
        };
        let mut events = Vec::with_capacity((out.len() - 5) / 3);
        for e in out[5..].chunks_exact(3) {
            let kind = EventKind::parse(&e[1]).ok_or_else(malformed)?;
            events.push(Arc::new(Event::new(
                stream_id(&e[0])?,
                kind,
                e[2].as_str().into(),
            )));
        }
        let lost = if first != 0 {
            (after + 1 < first).then(|| LostRange {
                from: after + 1,
                to: first - 1,
            })
        } else {
            (last_id > after).then(|| LostRange {
                from: after + 1,
                to: last_id,
            })
        };
        let meta = Meta {
            expires_at_ms,
            gone_at_ms: match ended_at_ms {
                Some(at) => at.saturating_add(self.limits.ended_retention_ms),
                None => {
                    tokens_expire_ms(expires_at_ms).saturating_add(self.limits.ended_retention_ms)
                }
            },
        };
        Ok((ReadBatch { lost, events, head }, meta))
    }

    pub(super) async fn watch(&self, id: &str) -> Result<watch::Receiver<Head>, BrokerError> {
        if let Some(l) = lock(&self.local).get(id) {
            return Ok(l.head.subscribe());
        }
        // Registered after this read: a notification in between is not lost,
        // because a subscriber reads once before it first waits.
        let (batch, meta) = self.read_at(id, 0, 0, 0).await?;
        let mut local = lock(&self.local);
        let l = local.entry(id.to_owned()).or_insert_with(|| Local {
            head: watch::channel(batch.head).0,
            expires_at_ms: meta.expires_at_ms,
            gone_at_ms: meta.gone_at_ms,
            recent: RecentShared::new(self.recent_total.clone()),
        });
        Ok(l.head.subscribe())
    }
}

/// A channel's times, as a read found them.
pub(super) struct Meta {
    expires_at_ms: u64,
    /// When its keys go (the end of the retention after `end`, or of the
    /// tombstone after expiry).
    gone_at_ms: u64,
}
