//! Creating channels and appending to them.

use sse_channel_protocol::descriptor::is_channel_id;

use super::{
    budget, count, creator_keys, is_address, keys, lock, malformed, meta_key, parse_id, scoped_key,
    status_error, tokens_expire_ms, Inner, INDEX, NOTIFY,
};
use crate::broker::{Append, Appended, BrokerError, CreatorLimits, NewChannel};

impl Inner {
    pub(super) async fn create(&self, channel: NewChannel) -> Result<(), BrokerError> {
        if !is_channel_id(&channel.id) {
            return Err(BrokerError::NotFound);
        }
        let gone =
            tokens_expire_ms(channel.expires_at_ms).saturating_add(self.limits.ended_retention_ms);
        let mut conn = self.conn.clone();
        let admitted: String = self
            .call(
                self.scripts
                    .admit
                    .key(INDEX)
                    .arg(crate::now_ms())
                    .arg(self.limits.max_channels)
                    .arg(&channel.id)
                    .arg(gone)
                    .invoke_async(&mut conn),
            )
            .await?;
        if admitted == "FULL" {
            return Err(BrokerError::Full);
        }
        let admitted_by = lock(&self.creators).remove(&channel.id);
        let creator = channel.creator.clone().or(admitted_by).unwrap_or_default();
        let made: String = self
            .call(
                self.scripts
                    .create
                    .key(meta_key(&channel.id))
                    .arg(channel.expires_at_ms)
                    .arg(gone)
                    .arg(&creator)
                    .invoke_async(&mut conn),
            )
            .await?;
        if made == "EXISTS" {
            return Err(BrokerError::Exists);
        }
        if is_address(&creator) {
            // Admitted until the longest lifetime: now the real one is known.
            let [live, _] = creator_keys(&creator);
            let mut zadd = redis::cmd("ZADD");
            zadd.arg(live)
                .arg("XX")
                .arg(channel.expires_at_ms)
                .arg(&channel.id);
            self.call(zadd.query_async::<i64>(&mut conn)).await?;
        }
        // The channel's entry in the byte ledger, with its creator.
        let entry = budget::Reserve {
            id: &channel.id,
            bytes: 0,
            addr: &creator,
            until: gone,
        };
        self.ledger(Some(entry), 0).await?;
        lock(&self.created).insert(channel.id, channel.expires_at_ms);
        Ok(())
    }

    pub(super) async fn admit_creator(
        &self,
        creator: &str,
        channel: &str,
        until_ms: u64,
        limits: CreatorLimits,
    ) -> Result<(), BrokerError> {
        let [live, bucket] = creator_keys(creator);
        let mut conn = self.conn.clone();
        let answer: String = self
            .call(
                self.scripts
                    .creator
                    .key(live)
                    .key(bucket)
                    .arg(crate::now_ms())
                    .arg(limits.channels)
                    .arg(limits.rate_per_sec)
                    .arg(limits.burst)
                    .arg(channel)
                    .arg(until_ms)
                    .invoke_async(&mut conn),
            )
            .await?;
        match answer.as_str() {
            "OK" => {
                lock(&self.creators).insert(channel.to_owned(), creator.to_owned());
                Ok(())
            }
            "FULL" => Err(BrokerError::RateLimited(
                "this address holds its maximum of live channels",
            )),
            _ => Err(BrokerError::RateLimited(
                "channel creation rate exceeded for this address",
            )),
        }
    }

    /// Runs the append script; `allowed`: store only if what the channel
    /// holds grows by at most this much (else `{"GROWS", growth}`).
    async fn append_script(
        &self,
        id: &str,
        append: &Append,
        scoped: Option<&str>,
        allowed: Option<u64>,
    ) -> Result<Vec<String>, BrokerError> {
        let mut inv = self.scripts.append.prepare_invoke();
        for k in keys(id) {
            inv.key(k);
        }
        inv.arg(id)
            .arg(append.kind.as_str())
            .arg(scoped.unwrap_or_default())
            .arg(append.now_ms)
            .arg(self.limits.replay_events.max(1))
            .arg(self.limits.replay_bytes)
            .arg(self.limits.idempotency_keys.max(1))
            .arg(self.limits.ended_retention_ms)
            .arg(NOTIFY)
            .arg(allowed.map(|a| a.to_string()).unwrap_or_default());
        for p in &append.payloads {
            inv.arg(p.as_bytes());
        }
        let mut conn = self.conn.clone();
        self.call(inv.invoke_async(&mut conn)).await
    }

    pub(super) async fn append(&self, id: &str, append: Append) -> Result<Appended, BrokerError> {
        if !is_channel_id(id) {
            return Err(BrokerError::NotFound);
        }
        let ended = crate::broker::is_final(append.kind);
        let scoped = append
            .idempotency_key
            .as_deref()
            .map(|k| scoped_key(append.kind, k));
        // Before anything is stored: refused here, nothing is. An exempt
        // append reserves nothing; its settlement still counts what it stored.
        let cost = match append.exempt {
            false => crate::broker::append_cost(&append.payloads, scoped.as_deref()),
            true => 0,
        };
        // A full budget still takes what an append grows the channel by when
        // that fits: a channel whose buffer is full pushes out about as much
        // as it adds. The append script counts it before storing ("GROWS"
        // with the growth when it is more than allowed); the node then
        // reserves that growth and tries once more.
        let mut reserved = budget::Reserved {
            inner: self,
            settle: None,
        };
        let (mut cost, mut full) = (cost, None);
        if !append.exempt {
            match self.reserve(id, cost).await {
                Ok(r) => reserved = r,
                Err(e @ (BrokerError::BufferFull | BrokerError::CreatorBufferFull)) => {
                    (cost, full) = (0, Some(e));
                }
                Err(e) => return Err(e),
            }
        }
        let mut out = self
            .append_script(id, &append, scoped.as_deref(), full.as_ref().map(|_| 0))
            .await?;
        if let (Some(refused), Some("GROWS")) = (full.clone(), out.first().map(String::as_str)) {
            let grows = out
                .get(1)
                .and_then(|g| g.parse::<u64>().ok())
                .unwrap_or(u64::MAX);
            reserved = match self.reserve(id, grows).await {
                Ok(r) => r,
                Err(BrokerError::BufferFull | BrokerError::CreatorBufferFull) => {
                    return Err(refused)
                }
                Err(e) => return Err(e),
            };
            cost = grows;
            out = self
                .append_script(id, &append, scoped.as_deref(), Some(grows))
                .await?;
        }
        if out.first().map(String::as_str) == Some("OK") {
            let num = |i: usize| out.get(i).and_then(|v| v.parse::<u64>().ok());
            reserved.settle(budget::Settle {
                id: id.to_owned(),
                reserved: cost,
                held: num(5),
                version: num(2).unwrap_or(0),
                until: num(6),
                addr: out.get(3).cloned().unwrap_or_default(),
                retried: false,
            });
        }
        let done = match out.first().map(String::as_str) {
            Some("OK") => Appended {
                first_id: parse_id(out.get(1))?,
                last_id: parse_id(out.get(2))?,
                replayed: false,
                subscribers: out.get(4).and_then(|s| s.parse::<i64>().ok()).map(count),
            },
            Some("REPLAYED") => {
                let (first, last) = out
                    .get(1)
                    .and_then(|s| s.split_once(' '))
                    .ok_or_else(malformed)?;
                Appended {
                    first_id: first.parse().map_err(|_| malformed())?,
                    last_id: last.parse().map_err(|_| malformed())?,
                    replayed: true,
                    subscribers: out.get(2).and_then(|s| s.parse::<i64>().ok()).map(count),
                }
            }
            Some("GROWS") => return Err(full.unwrap_or(BrokerError::BufferFull)),
            other => return Err(status_error(other)),
        };
        if ended && !done.replayed {
            // The relay-wide index and the creator's count forget the channel
            // with its keys.
            let gone = append.now_ms.saturating_add(self.limits.ended_retention_ms);
            let mut pipe = redis::pipe();
            pipe.cmd("ZADD").arg(INDEX).arg("XX").arg(gone).arg(id);
            if let Some(by) = out.get(3).filter(|b| is_address(b)) {
                let [live, _] = creator_keys(by);
                pipe.cmd("ZADD").arg(live).arg("XX").arg(gone).arg(id);
            }
            let mut conn = self.conn.clone();
            let _: Result<Vec<i64>, _> = self.call(pipe.query_async(&mut conn)).await;
        }
        Ok(done)
    }
}
