//! The embedded in-memory broker.

use std::collections::{HashMap, VecDeque};
use std::future::ready;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use sse_channel_protocol::{EventId, EventKind, LostRange};
use tokio::sync::watch;

use crate::FastMap;

use super::{
    append_cost, event_cost, key_cost, Append, Appended, BoxFuture, Broker, BrokerError,
    ByteBudgets, Event, Head, NewChannel, Phase, ReadBatch,
};

/// Bounds of a [`MemoryBroker`].
#[derive(Debug, Clone)]
pub struct MemoryLimits {
    /// Channels held at most.
    pub max_channels: usize,
    /// Events kept per channel for replay.
    pub replay_events: usize,
    /// Payload bytes kept per channel for replay.
    pub replay_bytes: usize,
    /// Idempotency keys remembered per channel.
    pub idempotency_keys: usize,
    /// How long an ended channel is kept, in ms.
    pub ended_retention_ms: u64,
    /// Bytes held at most, in all and per creator address.
    pub budgets: ByteBudgets,
}

impl MemoryLimits {
    /// Whether a replay buffer of `len` events and `bytes` payload bytes drops
    /// its oldest event: over either bound, and never down to no event (the
    /// newest, perhaps the `end` event, always stays).
    fn over_replay(&self, len: usize, bytes: usize) -> bool {
        len > 1 && (len > self.replay_events || bytes > self.replay_bytes)
    }
}

/// Channels in this process's memory. Each channel has its own lock, so
/// publishers of different channels never contend; the map lock is held only
/// to find, add or remove a channel.
///
/// ```
/// use sse_relay::broker::{Append, Broker, MemoryBroker, MemoryLimits, NewChannel};
/// use sse_channel_protocol::EventKind;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let b = MemoryBroker::new(MemoryLimits { max_channels: 10, replay_events: 2, replay_bytes: 1 << 20,
///     idempotency_keys: 8, ended_retention_ms: 1000, budgets: sse_relay::broker::ByteBudgets::NONE });
/// let id = "0123456789abcdef0123456789abcdef";
/// b.create(NewChannel { id: id.into(), expires_at_ms: u64::MAX, creator: None }).await.unwrap();
/// for v in ["1", "2", "3"] {
///     b.append(id, Append { kind: EventKind::Message, payloads: vec![v.into()], idempotency_key: None, now_ms: 0, exempt: false }).await.unwrap();
/// }
/// let r = b.read(id, 0, 10, 0).await.unwrap();
/// assert_eq!((r.lost.unwrap().from, r.lost.unwrap().to), (1, 1));
/// assert_eq!(r.events.iter().map(|e| e.id).collect::<Vec<_>>(), [2, 3]);
/// # });
/// ```
#[derive(Debug)]
pub struct MemoryBroker {
    limits: MemoryLimits,
    channels: Mutex<FastMap<String, Arc<Channel>>>,
    /// Sum of every channel's [`State::held`].
    held: AtomicU64,
    /// The same per creator address (only addresses holding bytes).
    by_creator: Mutex<FastMap<Box<str>, u64>>,
}

#[derive(Debug)]
struct Channel {
    state: Mutex<State>,
    head: watch::Sender<Head>,
    /// [`NewChannel::creator`].
    creator: Option<Box<str>>,
}

#[derive(Debug)]
struct State {
    events: VecDeque<Arc<Event>>,
    bytes: usize,
    /// What the buffer and the keys cost ([`event_cost`], [`key_cost`]).
    held: u64,
    last_id: EventId,
    expires_at_ms: u64,
    ended_at_ms: Option<u64>,
    keys: HashMap<Box<str>, Appended>,
    key_order: VecDeque<Box<str>>,
}

impl State {
    /// What appending `append` gives back by the same eviction as
    /// [`MemoryBroker::append_now`]: the cost of the events it pushes out of
    /// the replay buffer (the oldest first, never the newest) and of the
    /// idempotency key it makes the channel forget.
    fn freed_by(&self, append: &Append, limits: &MemoryLimits) -> u64 {
        let lens = self.events.iter().map(|e| e.data.len());
        let mut lens = lens.chain(append.payloads.iter().map(|p| p.len()));
        let mut len = self.events.len() + append.payloads.len();
        let mut bytes = self.bytes + append.payloads.iter().map(|p| p.len()).sum::<usize>();
        let mut freed = 0;
        while limits.over_replay(len, bytes) {
            let Some(n) = lens.next() else { break };
            freed += event_cost(n);
            len -= 1;
            bytes -= n;
        }
        if append.idempotency_key.is_some() && self.key_order.len() >= limits.idempotency_keys {
            freed += self.key_order.front().map_or(0, |k| key_cost(k.len()));
        }
        freed
    }
}

/// The idempotency map's key: the client's key scoped by the request kind, so
/// that the same key on publish and on end are two requests. A space cannot
/// occur in a client's key (visible ASCII only), so the two never collide.
fn scoped_key(kind: EventKind, key: &str) -> Box<str> {
    let mut s = String::with_capacity(kind.as_str().len() + 1 + key.len());
    s.push_str(kind.as_str());
    s.push(' ');
    s.push_str(key);
    s.into()
}

impl MemoryBroker {
    /// An empty broker.
    pub fn new(limits: MemoryLimits) -> Self {
        Self {
            limits,
            channels: Mutex::default(),
            held: AtomicU64::new(0),
            by_creator: Mutex::default(),
        }
    }

    fn get(&self, id: &str) -> Result<Arc<Channel>, BrokerError> {
        lock(&self.channels)
            .get(id)
            .cloned()
            .ok_or(BrokerError::NotFound)
    }

    fn append_now(&self, id: &str, append: Append) -> Result<Appended, BrokerError> {
        let ch = self.get(id)?;
        let mut st = lock(&ch.state);
        let key = append
            .idempotency_key
            .as_deref()
            .map(|k| scoped_key(append.kind, k));
        // A retry of a stored request stores nothing: answered even when a
        // budget is full.
        if let Some(key) = &key {
            if let Some(done) = st.keys.get(key) {
                return Ok(Appended {
                    replayed: true,
                    ..*done
                });
            }
        }
        if st.ended_at_ms.is_some() {
            return Err(BrokerError::Ended);
        }
        if append.now_ms >= st.expires_at_ms {
            return Err(BrokerError::Expired);
        }
        if !append.exempt {
            // Charged what the channel grows by: a channel whose replay
            // buffer is full trades old events for new ones and holds no more
            // than before, so a full budget does not stop it for good.
            // (Counted only when the whole cost does not fit: the common
            // case costs no walk over the buffer.)
            let cost = append_cost(&append.payloads, key.as_deref());
            if self.admit(&ch, cost).is_err() {
                self.admit(&ch, cost.saturating_sub(st.freed_by(&append, &self.limits)))?;
            }
        }
        let first_id = st.last_id + 1;
        let held_before = st.held;
        for data in append.payloads {
            st.last_id += 1;
            st.bytes += data.len();
            st.held += event_cost(data.len());
            let ev = Arc::new(Event::new(st.last_id, append.kind, data));
            st.events.push_back(ev);
        }
        // Keep at least the newest event, so the `end` event is never evicted.
        while self.limits.over_replay(st.events.len(), st.bytes) {
            if let Some(old) = st.events.pop_front() {
                st.bytes -= old.data.len();
                st.held -= event_cost(old.data.len());
            }
        }
        if super::is_final(append.kind) {
            st.ended_at_ms = Some(append.now_ms);
        }
        let done = Appended {
            first_id,
            last_id: st.last_id,
            replayed: false,
            subscribers: None,
        };
        if let Some(key) = key {
            if st.key_order.len() >= self.limits.idempotency_keys {
                if let Some(old) = st.key_order.pop_front() {
                    st.keys.remove(&old);
                    st.held -= key_cost(old.len());
                }
            }
            st.held += key_cost(key.len());
            st.key_order.push_back(key.clone());
            st.keys.insert(key, done);
        }
        self.account(&ch, held_before, st.held);
        let phase = if st.ended_at_ms.is_some() {
            Phase::Ended
        } else {
            Phase::Open
        };
        ch.head.send_replace(Head {
            last_id: st.last_id,
            phase,
        });
        Ok(done)
    }

    /// Refuses an append of `cost` bytes to `ch` that would pass a budget.
    /// Checked under the channel's lock: appends to one channel cannot pass
    /// it together; appends to several channels at the same instant may pass
    /// it by what they add at once.
    fn admit(&self, ch: &Channel, cost: u64) -> Result<(), BrokerError> {
        let budgets = self.limits.budgets;
        if self.held.load(Relaxed).saturating_add(cost) > budgets.total {
            return Err(BrokerError::BufferFull);
        }
        if let (Some(c), per @ 1..) = (&ch.creator, budgets.per_creator) {
            let held = lock(&self.by_creator).get(c).copied().unwrap_or(0);
            if held.saturating_add(cost) > per {
                return Err(BrokerError::CreatorBufferFull);
            }
        }
        Ok(())
    }

    /// Moves the broker's totals by one channel's change from `before` to `after`.
    fn account(&self, ch: &Channel, before: u64, after: u64) {
        if after >= before {
            self.held.fetch_add(after - before, Relaxed);
        } else {
            self.held.fetch_sub(before - after, Relaxed);
        }
        if let Some(c) = &ch.creator {
            let mut by = lock(&self.by_creator);
            // The key is cloned only for a creator not counted yet.
            let held = match by.get_mut(&**c) {
                Some(held) => held,
                None => by.entry(c.clone()).or_insert(0),
            };
            *held = (*held + after).saturating_sub(before);
            if *held == 0 {
                by.remove(&**c);
            }
        }
    }

    fn read_now(
        &self,
        id: &str,
        after: EventId,
        max: usize,
        now_ms: u64,
    ) -> Result<ReadBatch, BrokerError> {
        let ch = self.get(id)?;
        let st = lock(&ch.state);
        if st.ended_at_ms.is_none() && now_ms >= st.expires_at_ms {
            return Err(BrokerError::Expired);
        }
        let head = *ch.head.borrow();
        let mut lost = None;
        let mut events = Vec::new();
        // `after` may be anything a client sent (up to u64::MAX).
        let next = after.saturating_add(1);
        if let Some(first) = st.events.front().map(|e| e.id) {
            if next < first {
                lost = Some(LostRange {
                    from: next,
                    to: first - 1,
                });
            }
            let skip = usize::try_from(next.saturating_sub(first)).unwrap_or(usize::MAX);
            events.extend(st.events.iter().skip(skip).take(max).cloned());
        } else if st.last_id > after {
            lost = Some(LostRange {
                from: next,
                to: st.last_id,
            });
        }
        Ok(ReadBatch { lost, events, head })
    }

    fn sweep_now(&self, now_ms: u64) -> Vec<String> {
        let retention = self.limits.ended_retention_ms;
        let mut map = lock(&self.channels);
        let mut released = Vec::new();
        map.retain(|id, ch| {
            let mut st = lock(&ch.state);
            let (keep, live) = match st.ended_at_ms {
                Some(at) => (now_ms < at.saturating_add(retention), true),
                // An expired channel is kept at least until its tokens expire
                // too (their `exp` is the expiry rounded up to the second), so a
                // token that still verifies never meets CHANNEL_NOT_FOUND.
                None => (
                    now_ms < tokens_expire_ms(st.expires_at_ms).saturating_add(retention),
                    now_ms < st.expires_at_ms,
                ),
            };
            if !live && ch.head.borrow().phase != Phase::Expired {
                // Expired before `end`: streams close with CHANNEL_EXPIRED, the
                // buffer is freed, and a tombstone answers CHANNEL_EXPIRED
                // (rather than CHANNEL_NOT_FOUND) for the retention time.
                ch.head.send_replace(Head {
                    last_id: st.last_id,
                    phase: Phase::Expired,
                });
                st.events = VecDeque::new();
                st.bytes = 0;
                st.keys = HashMap::new();
                st.key_order = VecDeque::new();
                self.account(ch, st.held, 0);
                st.held = 0;
                released.push(id.clone());
            } else if !keep {
                self.account(ch, st.held, 0);
                st.held = 0;
                released.push(id.clone());
            }
            keep
        });
        released
    }
}

/// When the relay's tokens for a channel expiring at `expires_at_ms` expire:
/// their `exp` is that time rounded up to the second.
fn tokens_expire_ms(expires_at_ms: u64) -> u64 {
    expires_at_ms.div_ceil(1000).saturating_mul(1000)
}

/// A poisoned lock only means another thread panicked mid-update; the data is
/// still consistent enough to serve (every update is a few assignments).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Broker for MemoryBroker {
    fn create(&self, channel: NewChannel) -> BoxFuture<'_, Result<(), BrokerError>> {
        let mut map = lock(&self.channels);
        let full = map.len() >= self.limits.max_channels;
        let res = match map.entry(channel.id) {
            _ if full => Err(BrokerError::Full),
            std::collections::hash_map::Entry::Occupied(_) => Err(BrokerError::Exists),
            std::collections::hash_map::Entry::Vacant(slot) => {
                let (head, _) = watch::channel(Head {
                    last_id: 0,
                    phase: Phase::Open,
                });
                slot.insert(Arc::new(Channel {
                    state: Mutex::new(State {
                        events: VecDeque::new(),
                        bytes: 0,
                        held: 0,
                        last_id: 0,
                        expires_at_ms: channel.expires_at_ms,
                        ended_at_ms: None,
                        keys: HashMap::new(),
                        key_order: VecDeque::new(),
                    }),
                    head,
                    creator: channel.creator.map(String::into_boxed_str),
                }));
                Ok(())
            }
        };
        Box::pin(ready(res))
    }

    fn append<'a>(
        &'a self,
        channel: &'a str,
        append: Append,
    ) -> BoxFuture<'a, Result<Appended, BrokerError>> {
        Box::pin(ready(self.append_now(channel, append)))
    }

    fn read<'a>(
        &'a self,
        channel: &'a str,
        after: EventId,
        max: usize,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<ReadBatch, BrokerError>> {
        Box::pin(ready(self.read_now(channel, after, max, now_ms)))
    }

    fn watch<'a>(
        &'a self,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<watch::Receiver<Head>, BrokerError>> {
        Box::pin(ready(self.get(channel).map(|c| c.head.subscribe())))
    }

    fn sweep(&self, now_ms: u64) -> BoxFuture<'_, Vec<String>> {
        Box::pin(ready(self.sweep_now(now_ms)))
    }

    fn channel_count(&self) -> usize {
        lock(&self.channels).len()
    }

    fn buffered_bytes(&self) -> u64 {
        self.held.load(Relaxed)
    }

    fn channel_buffered_bytes(&self, channel: &str) -> u64 {
        self.get(channel).map_or(0, |c| lock(&c.state).held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef";

    fn broker(replay_events: usize, replay_bytes: usize, keys: usize) -> MemoryBroker {
        let b = MemoryBroker::new(MemoryLimits {
            max_channels: 2,
            replay_events,
            replay_bytes,
            idempotency_keys: keys,
            ended_retention_ms: 100,
            budgets: ByteBudgets::NONE,
        });
        b.create_now(ID, 1_000);
        b
    }

    impl MemoryBroker {
        fn create_now(&self, id: &str, expires_at_ms: u64) {
            let f = self.create(NewChannel {
                id: id.into(),
                expires_at_ms,
                creator: None,
            });
            futures_util::FutureExt::now_or_never(f).unwrap().unwrap();
        }
    }

    fn append(
        b: &MemoryBroker,
        kind: EventKind,
        data: &[&str],
        key: Option<&str>,
        now: u64,
    ) -> Result<Appended, BrokerError> {
        b.append_now(
            ID,
            Append {
                kind,
                payloads: data.iter().map(|d| (*d).into()).collect(),
                idempotency_key: key.map(str::to_owned),
                now_ms: now,
                exempt: false,
            },
        )
    }

    fn ids(r: &ReadBatch) -> Vec<EventId> {
        r.events.iter().map(|e| e.id).collect()
    }

    #[test]
    fn ids_are_consecutive_and_reads_resume() {
        let b = broker(10, 1 << 20, 8);
        assert_eq!(
            append(&b, EventKind::Message, &["1", "2"], None, 0)
                .unwrap()
                .last_id,
            2
        );
        assert_eq!(
            append(&b, EventKind::Message, &["3"], None, 0)
                .unwrap()
                .first_id,
            3
        );
        assert_eq!(ids(&b.read_now(ID, 0, 10, 0).unwrap()), [1, 2, 3]);
        assert_eq!(ids(&b.read_now(ID, 2, 10, 0).unwrap()), [3]);
        assert_eq!(ids(&b.read_now(ID, 0, 2, 0).unwrap()), [1, 2]);
        assert!(b.read_now(ID, 3, 10, 0).unwrap().events.is_empty());
        assert!(b.read_now(ID, 99, 10, 0).unwrap().events.is_empty());
        let r = b.read_now(ID, u64::MAX, 10, 0).unwrap();
        assert!(r.events.is_empty() && r.lost.is_none());
    }

    #[test]
    fn eviction_by_bytes_keeps_the_newest_event() {
        let b = broker(10, 5, 8);
        append(&b, EventKind::Message, &["111", "222"], None, 0).unwrap();
        let r = b.read_now(ID, 0, 10, 0).unwrap();
        assert_eq!(ids(&r), [2]);
        let lost = r.lost.unwrap();
        assert_eq!((lost.from, lost.to), (1, 1));
        // Larger than the whole budget: still kept (the end event must survive).
        append(&b, EventKind::End, &["\"0123456789\""], None, 0).unwrap();
        assert_eq!(ids(&b.read_now(ID, 0, 10, 0).unwrap()), [3]);
    }

    #[test]
    fn idempotency_keys_are_bounded() {
        let b = broker(10, 1 << 20, 2);
        append(&b, EventKind::Message, &["1"], Some("a"), 0).unwrap();
        append(&b, EventKind::Message, &["2"], Some("b"), 0).unwrap();
        let again = append(&b, EventKind::Message, &["1"], Some("a"), 0).unwrap();
        assert!(again.replayed);
        assert_eq!(again.first_id, 1);
        append(&b, EventKind::Message, &["3"], Some("c"), 0).unwrap();
        // "a" was the oldest of three keys with room for two: forgotten.
        assert!(
            !append(&b, EventKind::Message, &["1"], Some("a"), 0)
                .unwrap()
                .replayed
        );
    }

    #[test]
    fn idempotency_keys_are_scoped_by_kind() {
        let b = broker(10, 1 << 20, 8);
        append(&b, EventKind::Message, &["1"], Some("k"), 0).unwrap();
        let end = append(&b, EventKind::End, &["null"], Some("k"), 0).unwrap();
        assert_eq!((end.first_id, end.replayed), (2, false));
        assert!(
            append(&b, EventKind::End, &["null"], Some("k"), 0)
                .unwrap()
                .replayed
        );
        assert!(
            append(&b, EventKind::Message, &["1"], Some("k"), 0)
                .unwrap()
                .replayed
        );
    }

    #[test]
    fn end_expiry_and_sweep() {
        let b = broker(10, 1 << 20, 8);
        let mut head = b.get(ID).unwrap().head.subscribe();
        append(&b, EventKind::Message, &["1"], None, 0).unwrap();
        assert_eq!(
            *head.borrow_and_update(),
            Head {
                last_id: 1,
                phase: Phase::Open
            }
        );
        assert_eq!(
            append(&b, EventKind::Message, &["1"], None, 1_000),
            Err(BrokerError::Expired)
        );
        assert_eq!(
            b.read_now(ID, 0, 10, 1_000).unwrap_err(),
            BrokerError::Expired
        );
        append(&b, EventKind::End, &["null"], None, 500).unwrap();
        assert_eq!(head.borrow_and_update().phase, Phase::Ended);
        assert_eq!(
            append(&b, EventKind::Message, &["1"], None, 501),
            Err(BrokerError::Ended)
        );
        // Ended channels outlive their TTL for the retention, then go.
        assert!(b.read_now(ID, 0, 10, 2_000).is_ok());
        assert!(b.sweep_now(599).is_empty());
        assert_eq!(b.sweep_now(600), [ID.to_owned()]);
        assert_eq!(
            b.read_now(ID, 0, 10, 600).unwrap_err(),
            BrokerError::NotFound
        );
        assert!(
            head.has_changed().is_err(),
            "the watch closes with the channel"
        );
    }

    #[test]
    fn expired_channels_leave_a_tombstone_then_go() {
        let b = broker(10, 1 << 20, 8);
        let head = b.get(ID).unwrap().head.subscribe();
        append(&b, EventKind::Message, &["1"], None, 0).unwrap();
        assert!(b.sweep_now(999).is_empty());
        assert_eq!(b.sweep_now(1_000).len(), 1);
        assert_eq!(head.borrow().phase, Phase::Expired);
        // A tombstone: the buffer is gone, the channel answers CHANNEL_EXPIRED.
        assert!(b.get(ID).unwrap().state.lock().unwrap().events.is_empty());
        assert_eq!(
            b.read_now(ID, 0, 10, 1_050).unwrap_err(),
            BrokerError::Expired
        );
        assert!(b.sweep_now(1_050).is_empty());
        assert_eq!(b.channel_count(), 1);
        assert_eq!(b.sweep_now(1_100).len(), 1);
        assert_eq!(b.channel_count(), 0);
    }

    #[test]
    fn tombstone_lasts_until_the_tokens_expire_plus_the_retention() {
        let b = MemoryBroker::new(MemoryLimits {
            max_channels: 2,
            replay_events: 10,
            replay_bytes: 1 << 20,
            idempotency_keys: 8,
            ended_retention_ms: 0,
            budgets: ByteBudgets::NONE,
        });
        // Expires at 1.2 s; its tokens carry exp = 2 (s).
        b.create_now(ID, 1_200);
        assert_eq!(b.sweep_now(1_200).len(), 1, "expired: no longer live");
        assert_eq!(b.channel_count(), 1, "kept while its tokens verify");
        assert_eq!(
            b.read_now(ID, 0, 10, 1_999).unwrap_err(),
            BrokerError::Expired
        );
        assert!(b.sweep_now(1_999).is_empty());
        assert_eq!(b.sweep_now(2_000).len(), 1);
        assert_eq!(b.channel_count(), 0);
    }

    #[test]
    fn buffered_bytes_follow_the_buffer_keys_and_sweeps() {
        let b = broker(2, 1 << 20, 1);
        assert_eq!(b.buffered_bytes(), 0);
        append(&b, EventKind::Message, &["1", "22"], Some("k"), 0).unwrap();
        let two = event_cost(1) + event_cost(2) + key_cost("message k".len());
        assert_eq!(
            (b.buffered_bytes(), b.channel_buffered_bytes(ID)),
            (two, two)
        );
        // Evicted events and forgotten keys are given back.
        append(&b, EventKind::Message, &["333"], Some("l"), 0).unwrap();
        let now = event_cost(2) + event_cost(3) + key_cost("message l".len());
        assert_eq!(b.buffered_bytes(), now);
        // A replay stores nothing.
        append(&b, EventKind::Message, &["333"], Some("l"), 0).unwrap();
        assert_eq!(b.buffered_bytes(), now);
        // Expiry frees the buffer (the tombstone costs nothing).
        assert_eq!(b.sweep_now(1_000).len(), 1);
        assert_eq!((b.buffered_bytes(), b.channel_buffered_bytes(ID)), (0, 0));
    }

    #[test]
    fn a_full_budget_stops_growth_not_a_channel_that_replaces_its_oldest() {
        let one = event_cost(1);
        let b = MemoryBroker::new(MemoryLimits {
            max_channels: 2,
            replay_events: 2,
            replay_bytes: 1 << 20,
            idempotency_keys: 1,
            ended_retention_ms: 100,
            budgets: ByteBudgets {
                total: 2 * one + key_cost("message k".len()),
                per_creator: 0,
            },
        });
        b.create_now(ID, 1_000);
        append(&b, EventKind::Message, &["1"], Some("k"), 0).unwrap();
        append(&b, EventKind::Message, &["2"], None, 0).unwrap();
        // The budget is full, and so is the replay buffer: each append pushes
        // out as much as it adds, so it is stored, as often as it comes.
        for (i, v) in ["3", "4", "5"].into_iter().enumerate() {
            let done = append(&b, EventKind::Message, &[v], None, 0).unwrap();
            assert_eq!(done.last_id, 3 + i as u64);
        }
        assert_eq!(ids(&b.read_now(ID, 3, 10, 0).unwrap()), [4, 5]);
        // A batch larger than the buffer nets out the same way.
        append(&b, EventKind::Message, &["6", "7", "8"], None, 0).unwrap();
        assert_eq!(ids(&b.read_now(ID, 0, 10, 0).unwrap()), [7, 8]);
        // A retry of a stored request is answered, full budget or not.
        assert!(
            append(&b, EventKind::Message, &["1"], Some("k"), 0)
                .unwrap()
                .replayed
        );
        // A key to remember on top of a full buffer: forgets the old one,
        // which costs the same.
        append(&b, EventKind::Message, &["9"], Some("l"), 0).unwrap();
        // Growth is still refused: another channel, and a larger event.
        let other = "1123456789abcdef0123456789abcdef";
        b.create_now(other, 1_000);
        let grow = b.append_now(
            other,
            Append {
                kind: EventKind::Message,
                payloads: vec!["1".into()],
                idempotency_key: None,
                now_ms: 0,
                exempt: false,
            },
        );
        assert_eq!(grow, Err(BrokerError::BufferFull));
        assert_eq!(
            append(&b, EventKind::Message, &["10"], None, 0),
            Err(BrokerError::BufferFull)
        );
        assert_eq!(b.buffered_bytes(), 2 * one + key_cost("message l".len()));
    }

    #[test]
    fn channel_limit() {
        let b = broker(10, 1 << 20, 8);
        let other = "1123456789abcdef0123456789abcdef";
        let third = "2123456789abcdef0123456789abcdef";
        let create = |id: &str| {
            let f = b.create(NewChannel {
                id: id.into(),
                expires_at_ms: 1,
                creator: None,
            });
            futures_util::FutureExt::now_or_never(f).unwrap()
        };
        assert_eq!(create(ID), Err(BrokerError::Exists));
        assert_eq!(create(other), Ok(()));
        assert_eq!(create(third), Err(BrokerError::Full));
    }
}
