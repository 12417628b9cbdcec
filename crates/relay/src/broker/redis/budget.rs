//! The byte budgets with the Redis broker, across every node sharing the Redis.
//!
//! A channel's append script counts what the channel holds in its metadata
//! (`held`: [`event_cost`](super::super::event_cost) per buffered event,
//! [`key_cost`](super::super::key_cost) per remembered key, updated as the
//! buffer is trimmed and keys are forgotten). The budgets need the sum over
//! all channels, and over one creator address's channels, which no script of
//! one channel can see (each script touches one hash slot). So a ledger in
//! its own slot (`sse:{bytes}:*`, `budget.lua`) keeps per channel the `held`
//! its last append reported (with the channel's last id, so an older report
//! never overwrites a newer one), plus the bytes nodes reserved since, and
//! the sums. An append first reserves its cost there (refused with
//! `BUFFER_FULL` or, per address, `RATE_LIMITED` before anything is stored),
//! then runs the append script, then settles: the reservation is replaced by
//! what the script counted. A refused reservation still lets the append
//! script store what grows the channel by no more than a second, smaller
//! reservation of the growth it counted (a channel whose buffer is full
//! pushes out about as much as it adds; `write.rs`). Settlements travel with the node's next ledger
//! call (the next append, or the sweep every cleanup interval), so a trim
//! shows in the sums a moment later; until then the sums count more, never
//! less.
//!
//! Drift corrects itself:
//! - keys Redis expires by itself: each ledger entry carries when the
//!   channel's keys go (its expiry plus the retention, or the end of the
//!   retention after `end`) and is dropped then;
//! - a node that dies (or cannot reach Redis) between a reservation and its
//!   settlement: reservations are kept per node, and those of a node silent
//!   for [`SILENT_NODE_MS`] are dropped;
//! - anything else (a settlement lost with a failed call): every sweep of
//!   every node re-reads a few random channels' `held` from their metadata
//!   and corrects their entries ([`AUDIT`]).

use std::sync::atomic::Ordering::Relaxed;

use super::{is_address, lock, meta_key, BrokerError, Inner};

/// The ledger's keys, in one hash slot.
pub(super) const KEYS: [&str; 5] = [
    "sse:{bytes}:c",
    "sse:{bytes}:sum",
    "sse:{bytes}:until",
    "sse:{bytes}:r",
    "sse:{bytes}:nodes",
];
/// A node that made no ledger call for this long (it calls at least once per
/// sweep) is taken for dead: its unsettled reservations are dropped.
pub(super) const SILENT_NODE_MS: u64 = 60_000;
/// Channels whose entry each sweep checks against their metadata.
const AUDIT: usize = 4;
/// Most settlements sent with one ledger call.
const MAX_SETTLE: usize = 256;
/// A version above any channel's last id: an audit of a channel that is gone.
const GONE: u64 = (1 << 53) - 1;

/// What an append (or an audit) found, for the ledger.
#[derive(Debug)]
pub(super) struct Settle {
    pub(super) id: String,
    /// Bytes this node reserved for the append (0 for an audit).
    pub(super) reserved: u64,
    /// What the channel holds after it (`None`: nothing stored, or unknown).
    pub(super) held: Option<u64>,
    /// The channel's last id at that time.
    pub(super) version: u64,
    /// When the channel's keys go, Unix ms.
    pub(super) until: Option<u64>,
    /// The channel's creator address, if any.
    pub(super) addr: String,
    /// Already sent with a call that failed: not sent a third time (a
    /// settlement the script refused must not block every later call).
    pub(super) retried: bool,
}

impl Settle {
    /// Gives back a reservation for which nothing is known to be stored.
    pub(super) fn release(id: &str, reserved: u64) -> Self {
        Self {
            id: id.to_owned(),
            reserved,
            held: None,
            version: 0,
            until: None,
            addr: String::new(),
            retried: false,
        }
    }
}

/// A reservation not yet settled: dropped unsettled (the request went away
/// half-way), it gives the bytes back with the node's next ledger call.
pub(super) struct Reserved<'a> {
    pub(super) inner: &'a Inner,
    pub(super) settle: Option<Settle>,
}

impl Reserved<'_> {
    /// Settles with what the append found.
    pub(super) fn settle(mut self, found: Settle) {
        self.settle = None;
        lock(&self.inner.settles).push(found);
    }
}

impl Drop for Reserved<'_> {
    fn drop(&mut self) {
        if let Some(s) = self.settle.take() {
            lock(&self.inner.settles).push(s);
        }
    }
}

/// A ledger call's reservation.
pub(super) struct Reserve<'a> {
    pub(super) id: &'a str,
    pub(super) bytes: u64,
    /// The creator's address ('' when unknown or none).
    pub(super) addr: &'a str,
    /// When the channel's keys go at the latest, Unix ms.
    pub(super) until: u64,
}

impl Inner {
    /// One ledger call: sends this node's pending settlements, makes the
    /// reservation if any, and returns channel ids to audit (up to `audit`).
    pub(super) async fn ledger(
        &self,
        reserve: Option<Reserve<'_>>,
        audit: usize,
    ) -> Result<Vec<String>, BrokerError> {
        let settles: Vec<Settle> = {
            let mut q = lock(&self.settles);
            let n = q.len().min(MAX_SETTLE);
            q.drain(..n).collect()
        };
        let budgets = self.limits.budgets;
        let mut inv = self.scripts.budget.prepare_invoke();
        for k in KEYS {
            inv.key(k);
        }
        inv.arg(crate::now_ms())
            .arg(&self.node)
            .arg(budgets.total)
            .arg(budgets.per_creator)
            .arg(SILENT_NODE_MS);
        match &reserve {
            Some(r) => inv
                .arg(r.id)
                .arg(r.bytes)
                .arg(if is_address(r.addr) { r.addr } else { "" })
                .arg(r.until),
            None => inv.arg("").arg(0).arg("").arg(0),
        };
        inv.arg(audit);
        for s in &settles {
            inv.arg(&s.id)
                .arg(s.reserved)
                .arg(s.held.map(|h| h.to_string()).unwrap_or_default())
                .arg(s.version)
                .arg(s.until.map(|u| u.to_string()).unwrap_or_default())
                .arg(if is_address(&s.addr) { &s.addr } else { "" });
        }
        let mut conn = self.conn.clone();
        let out: Vec<String> = match self.call(inv.invoke_async(&mut conn)).await {
            Ok(out) => out,
            Err(e) => {
                // Sent again with the next call, once.
                lock(&self.settles).extend(
                    settles
                        .into_iter()
                        .filter(|s| !s.retried)
                        .map(|s| Settle { retried: true, ..s }),
                );
                return Err(e);
            }
        };
        if let Some(total) = out.get(1).and_then(|t| t.parse::<u64>().ok()) {
            self.held_total.store(total, Relaxed);
        }
        match out.first().map(String::as_str) {
            Some("OK") => Ok(out.into_iter().skip(2).collect()),
            Some("FULL") => Err(BrokerError::BufferFull),
            Some("ADDR") => Err(BrokerError::CreatorBufferFull),
            _ => Err(super::malformed()),
        }
    }

    /// Reserves `bytes` for an append to `id`, or refuses it.
    pub(super) async fn reserve(&self, id: &str, bytes: u64) -> Result<Reserved<'_>, BrokerError> {
        let reserve = Reserve {
            id,
            bytes,
            addr: "",
            // A channel without an entry yet (it predates the ledger): its
            // first settlement gives the real time.
            until: crate::now_ms().saturating_add(SILENT_NODE_MS),
        };
        self.ledger(Some(reserve), 0).await?;
        Ok(Reserved {
            inner: self,
            settle: Some(Settle::release(id, bytes)),
        })
    }

    /// The sweep's part: sends the settlements, refreshes the total, and
    /// checks a few random channels' entries against their metadata.
    pub(super) async fn audit(&self) {
        let Ok(ids) = self.ledger(None, AUDIT).await else {
            return;
        };
        if ids.is_empty() {
            return;
        }
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.cmd("HMGET")
                .arg(meta_key(id))
                .arg("held")
                .arg("last")
                .arg("by");
            pipe.cmd("PEXPIRETIME").arg(meta_key(id));
        }
        let mut conn = self.conn.clone();
        let Ok(got) = self
            .call(pipe.query_async::<Vec<redis::Value>>(&mut conn))
            .await
        else {
            return;
        };
        let mut found = Vec::new();
        for (id, pair) in ids.iter().zip(got.chunks_exact(2)) {
            let fields: Vec<Option<String>> =
                redis::from_redis_value_ref(&pair[0]).unwrap_or_default();
            let gone_at: i64 = redis::from_redis_value_ref(&pair[1]).unwrap_or(-2);
            let num = |i: usize| {
                fields
                    .get(i)
                    .cloned()
                    .flatten()
                    .and_then(|v| v.parse::<u64>().ok())
            };
            found.push(match (u64::try_from(gone_at), num(1)) {
                (Ok(until), Some(last)) => Settle {
                    id: id.clone(),
                    reserved: 0,
                    held: Some(num(0).unwrap_or(0)),
                    version: last,
                    until: Some(until),
                    addr: fields.get(2).cloned().flatten().unwrap_or_default(),
                    retried: false,
                },
                // The channel is gone: its entry goes with the next call.
                _ => Settle {
                    id: id.clone(),
                    reserved: 0,
                    held: Some(0),
                    version: GONE,
                    until: Some(1),
                    addr: String::new(),
                    retried: false,
                },
            });
        }
        lock(&self.settles).extend(found);
    }
}
