//! Backpressure from the slowest live reader to the writer.
//!
//! A writer sends its next batch only once the relay has answered the last
//! one. So the relay holds its answer to a publish while a reader of the
//! channel on this node is more than the high-water mark behind ([`Rule`]),
//! for a bounded time: a function writing faster than the page reads slows
//! down instead of pushing events out of the replay buffer before the page
//! took them.
//!
//! This layer is node-local and sits beside the [`crate::broker::Broker`],
//! not inside it: readers report the position they have taken from the
//! buffer (`ReaderSlot::advance`), publishes report what they stored
//! (`Flow::after_publish`), whatever the broker. Across relay nodes sharing a
//! broker, a publish is held only for the readers connected to the node that
//! took the publish.
//!
//! Positions are event ids; payload bytes are tracked from the publishes this
//! node stored, one mark per publish, so a reader's byte lag is counted from
//! the last mark at or before its position (never less than the true lag).

mod rule;
mod taken;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use sse_channel_protocol::EventId;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use crate::FastMap;

pub use rule::{Lag, ReaderView, Rule, Verdict};

/// Marks kept per channel at most: past it every other one goes (the oldest,
/// at or before the slowest reader, and the newest stay), which only makes
/// byte lags larger, by at most the bytes between two kept marks. A replay
/// buffer of more events than this (`--replay-buffer-events 20000`) holds
/// readers further behind than this many single-event publishes.
const MAX_MARKS: usize = 4096;
/// Disconnected readers kept per channel at most (the oldest go first).
const MAX_DETACHED: usize = 16;

/// Reader positions of every channel with readers on this node.
#[derive(Debug)]
pub(crate) struct Flow {
    rule: Rule,
    channels: Mutex<FastMap<String, Arc<ChannelFlow>>>,
}

#[derive(Debug)]
struct ChannelFlow {
    rule: Rule,
    state: Mutex<State>,
    /// Woken when a reader moves or goes (only while a publish waits).
    moved: Notify,
    waiters: AtomicUsize,
}

#[derive(Debug, Default)]
struct State {
    /// Newest id known on this node.
    head: EventId,
    /// Payload bytes stored through this node since the entry was made.
    bytes: u64,
    /// `(last id of a publish, bytes up to and including it)`, oldest first.
    marks: VecDeque<(EventId, u64)>,
    readers: HashMap<u64, Reader>,
    next: u64,
}

#[derive(Debug, Clone, Copy)]
struct Reader {
    after: EventId,
    detached_at: Option<Instant>,
    released: bool,
    /// Waiting at the head for the next event ([`ReaderSlot::idle`]).
    idle: bool,
}

/// What a publish's wait came to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Held {
    /// How long the answer waited (zero when it did not).
    pub(crate) waited: Duration,
    /// Readers released because the longest wait passed.
    pub(crate) released: usize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl State {
    fn lag(&self, after: EventId) -> Lag {
        // Bytes up to `after`: the last mark at or before it (0 before all).
        let i = self.marks.partition_point(|&(id, _)| id <= after);
        let base = if i == 0 { 0 } else { self.marks[i - 1].1 };
        Lag {
            events: self.head.saturating_sub(after),
            bytes: self.bytes.saturating_sub(base),
        }
    }

    fn view(&self, r: &Reader, now: Instant) -> ReaderView {
        ReaderView {
            lag: self.lag(r.after),
            detached_for: r.detached_at.map(|t| now.saturating_duration_since(t)),
            released: r.released,
        }
    }

    /// Applies the rule to every reader: forgets and releases as it says, and
    /// returns how long to wait at most (`None`: answer now).
    fn decide(
        &mut self,
        rule: &Rule,
        now: Instant,
        waited: Duration,
        held: &mut Held,
    ) -> Option<Duration> {
        let mut wait: Option<Duration> = None;
        // Allocated only when a reader is released or forgotten (not on
        // every publish).
        let (mut release, mut forget) = (Vec::new(), Vec::new());
        for (&id, r) in &self.readers {
            match rule.verdict(&self.view(r, now), waited) {
                Verdict::Clear => {}
                Verdict::Hold(d) => wait = Some(wait.map_or(d, |w| w.min(d))),
                Verdict::GiveUp => release.push(id),
                Verdict::Forget => forget.push(id),
            }
        }
        for id in release {
            if let Some(r) = self.readers.get_mut(&id) {
                r.released = true;
            }
            held.released += 1;
        }
        for id in forget {
            self.readers.remove(&id);
        }
        self.prune();
        wait
    }

    /// Drops marks no reader needs: all before the one at or below the
    /// slowest reader's position.
    fn prune(&mut self) {
        let Some(slowest) = self.readers.values().map(|r| r.after).min() else {
            self.marks.clear();
            return;
        };
        let i = self.marks.partition_point(|&(id, _)| id <= slowest);
        if i > 1 {
            self.marks.drain(..i - 1);
        }
        if self.marks.len() > MAX_MARKS {
            // Dropping the oldest instead would count the slowest reader from
            // the channel's first byte: far over the mark, so held, then
            // released, while it is well within it.
            let last = self.marks.len() - 1;
            let mut i = 0;
            self.marks.retain(|_| {
                let keep = i % 2 == 0 || i == last;
                i += 1;
                keep
            });
        }
    }
}

impl Flow {
    pub(crate) fn new(rule: Rule) -> Self {
        Self {
            rule,
            channels: Mutex::default(),
        }
    }

    /// True when publishes may be held at all (`max_wait` above zero).
    pub(crate) fn enabled(&self) -> bool {
        !self.rule.max_wait.is_zero()
    }

    /// Registers a reader of `channel` at position `after`, with `head` the
    /// channel's newest id. A reader that comes back within the grace takes
    /// the place of the disconnected reader furthest behind.
    pub(crate) fn attach(
        self: &Arc<Self>,
        channel: &str,
        after: EventId,
        head: EventId,
    ) -> ReaderSlot {
        let ch = lock(&self.channels)
            .entry(channel.to_owned())
            .or_insert_with(|| {
                Arc::new(ChannelFlow {
                    rule: self.rule,
                    state: Mutex::new(State::default()),
                    moved: Notify::new(),
                    waiters: AtomicUsize::new(0),
                })
            })
            .clone();
        let mut st = lock(&ch.state);
        st.head = st.head.max(head);
        // A mark at the head, so a reader that starts there is counted from
        // the exact byte total.
        if st.marks.back().is_none_or(|&(id, _)| id < st.head) {
            let mark = (st.head, st.bytes);
            st.marks.push_back(mark);
        }
        let back = st
            .readers
            .iter()
            .filter(|(_, r)| r.detached_at.is_some())
            .min_by_key(|(_, r)| r.after)
            .map(|(&id, _)| id);
        if let Some(id) = back {
            st.readers.remove(&id);
        }
        let id = st.next;
        st.next += 1;
        st.readers.insert(
            id,
            Reader {
                after,
                detached_at: None,
                released: false,
                idle: false,
            },
        );
        drop(st);
        ch.wake();
        ReaderSlot {
            flow: self.clone(),
            channel: channel.to_owned(),
            ch,
            id,
            left: false,
        }
    }

    /// Records a publish through this node (ids up to `last_id`, `bytes` of
    /// payload) and waits while the rule says so, or until `shutdown` turns
    /// true. Without readers of the channel on this node, returns at once.
    #[cfg(test)]
    pub(crate) async fn published(
        &self,
        channel: &str,
        last_id: EventId,
        bytes: u64,
        shutdown: &watch::Sender<bool>,
    ) -> Held {
        self.after_publish(channel, last_id, bytes, false, shutdown)
            .await
    }

    /// What a stored publish waits for before its answer, with one look-up
    /// of the channel: with `readers_first`, this node's readers waiting at
    /// the head taking it ([`ChannelFlow::taken`]), then the backpressure
    /// rule ([`ChannelFlow::hold`]).
    pub(crate) async fn after_publish(
        &self,
        channel: &str,
        last_id: EventId,
        bytes: u64,
        readers_first: bool,
        shutdown: &watch::Sender<bool>,
    ) -> Held {
        let Some(ch) = self.channel(channel) else {
            return Held::default();
        };
        // Bounded by the longest wait: none with backpressure off.
        if readers_first && self.enabled() {
            ch.taken(last_id, shutdown).await;
        }
        {
            let mut st = lock(&ch.state);
            st.head = st.head.max(last_id);
            st.bytes += bytes;
            let total = st.bytes;
            st.marks.push_back((last_id, total));
        }
        if !self.enabled() {
            return Held::default();
        }
        ch.hold(shutdown).await
    }

    fn channel(&self, channel: &str) -> Option<Arc<ChannelFlow>> {
        lock(&self.channels).get(channel).cloned()
    }

    /// Wakes every publish waiting on this node, to look again at its
    /// readers, the time and `shutdown`: called when the relay starts to shut
    /// down and on every [`crate::outcome::ABANDON_TICK`] (the bound of a
    /// first wait for readers, which arms no timer: [`ChannelFlow::taken`]).
    pub(crate) fn wake_all(&self) {
        for ch in lock(&self.channels).values() {
            ch.wake();
        }
    }

    /// Forgets readers disconnected for longer than the grace, and channels
    /// without readers.
    pub(crate) fn sweep(&self) {
        let now = Instant::now();
        lock(&self.channels).retain(|_, ch| {
            let mut st = lock(&ch.state);
            let grace = ch.rule.grace;
            st.readers.retain(|_, r| {
                r.detached_at
                    .is_none_or(|t| now.saturating_duration_since(t) < grace)
            });
            st.prune();
            !st.readers.is_empty()
        });
    }

    /// Channels with readers on this node (for tests and metrics).
    #[cfg(test)]
    fn channel_count(&self) -> usize {
        lock(&self.channels).len()
    }
}

/// Counts a waiting publish while alive (also when the request is dropped).
struct Waiting<'a>(&'a ChannelFlow);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiters.fetch_sub(1, Ordering::SeqCst);
    }
}

impl ChannelFlow {
    /// Waits while the rule holds a reader, or until `shutdown` turns true.
    /// A publish that is not held (nearly all) decides once, reading the
    /// clock once and registering nothing.
    async fn hold(&self, shutdown: &watch::Sender<bool>) -> Held {
        let start = Instant::now();
        let mut held = Held::default();
        if lock(&self.state)
            .decide(&self.rule, start, Duration::ZERO, &mut held)
            .is_none()
        {
            return held;
        }
        let mut stop = shutdown.subscribe();
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(self);
        let mut slept = false;
        loop {
            let moved = self.moved.notified();
            tokio::pin!(moved);
            moved.as_mut().enable();
            // Decided again once registered: a reader that moved since is seen.
            let now = Instant::now();
            let wait = lock(&self.state).decide(&self.rule, now, now - start, &mut held);
            let Some(wait) = wait else { break };
            if *stop.borrow() {
                break;
            }
            slept = true;
            tokio::select! {
                () = &mut moved => {}
                () = tokio::time::sleep(wait) => {}
                _ = stop.changed() => {}
            }
        }
        if slept {
            held.waited = start.elapsed();
        }
        held
    }

    fn wake(&self) {
        if self.waiters.load(Ordering::SeqCst) > 0 {
            self.moved.notify_waiters();
        }
    }
}

/// A reader's place in [`Flow`]. Dropped without [`ReaderSlot::leave`], the
/// reader counts as reconnecting: its position holds for the grace.
#[derive(Debug)]
pub(crate) struct ReaderSlot {
    flow: Arc<Flow>,
    channel: String,
    ch: Arc<ChannelFlow>,
    id: u64,
    left: bool,
}

impl ReaderSlot {
    /// The reader has taken every event up to `after` from the buffer.
    pub(crate) fn advance(&self, after: EventId) {
        let mut st = lock(&self.ch.state);
        let lag = st.lag(after);
        if let Some(r) = st.readers.get_mut(&self.id) {
            r.after = r.after.max(after);
            if r.released && self.ch.rule.within(lag) {
                r.released = false;
            }
        }
        drop(st);
        self.ch.wake();
    }

    /// The reader is done on purpose (it has the end, or closed cleanly): it
    /// will not come back, so it stops counting now.
    pub(crate) fn leave(mut self) {
        self.left = true;
    }
}

impl Drop for ReaderSlot {
    fn drop(&mut self) {
        let mut st = lock(&self.ch.state);
        if self.left {
            st.readers.remove(&self.id);
        } else if let Some(r) = st.readers.get_mut(&self.id) {
            r.detached_at = Some(Instant::now());
        }
        let detached: Vec<(u64, Instant)> = st
            .readers
            .iter()
            .filter_map(|(&id, r)| Some((id, r.detached_at?)))
            .collect();
        if detached.len() > MAX_DETACHED {
            if let Some(&(oldest, _)) = detached.iter().min_by_key(|(_, t)| *t) {
                st.readers.remove(&oldest);
            }
        }
        let empty = st.readers.is_empty();
        drop(st);
        self.ch.wake();
        if empty {
            let mut map = lock(&self.flow.channels);
            // Still empty under the map lock (a reader may have attached since).
            if map
                .get(&self.channel)
                .is_some_and(|c| Arc::ptr_eq(c, &self.ch) && lock(&c.state).readers.is_empty())
            {
                map.remove(&self.channel);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CH: &str = "0123456789abcdef0123456789abcdef";
    const MS: Duration = Duration::from_millis(1);

    /// High-water mark 10 events or 1,000 bytes.
    fn flow(max_wait: Duration, grace: Duration) -> Arc<Flow> {
        Arc::new(Flow::new(Rule::new(20, 2_000, 50, max_wait, grace)))
    }

    fn readers(f: &Flow) -> usize {
        lock(&f.channels)
            .get(CH)
            .map_or(0, |c| lock(&c.state).readers.len())
    }

    async fn publish(f: &Flow, last_id: EventId, bytes: u64) -> Held {
        let (tx, _rx) = watch::channel(false);
        f.published(CH, last_id, bytes, &tx).await
    }

    #[tokio::test]
    async fn without_readers_nothing_waits() {
        let f = flow(10_000 * MS, 10_000 * MS);
        assert_eq!(publish(&f, 1_000, 1 << 20).await, Held::default());
        assert_eq!(
            f.channel_count(),
            0,
            "no state for channels without readers"
        );
    }

    #[tokio::test]
    async fn a_publish_waits_until_the_reader_is_back_within_the_mark() {
        let f = flow(10_000 * MS, 10_000 * MS);
        let slot = f.attach(CH, 0, 0);
        assert_eq!(
            publish(&f, 10, 10).await,
            Held::default(),
            "10 behind: at the mark"
        );
        let f2 = f.clone();
        let held = tokio::spawn(async move { publish(&f2, 30, 10).await });
        tokio::time::sleep(50 * MS).await;
        assert!(!held.is_finished(), "30 behind: held");
        slot.advance(19);
        tokio::time::sleep(20 * MS).await;
        assert!(!held.is_finished(), "11 behind: still held");
        slot.advance(20);
        let held = held.await.unwrap();
        assert!(held.waited >= 50 * MS);
        assert_eq!(held.released, 0);
    }

    #[tokio::test]
    async fn bytes_count_from_the_mark_at_or_before_the_reader() {
        let f = flow(10_000 * MS, 10_000 * MS);
        let slot = f.attach(CH, 0, 0);
        assert_eq!(publish(&f, 1, 900).await, Held::default());
        let f2 = f.clone();
        let held = tokio::spawn(async move { publish(&f2, 2, 900).await });
        tokio::time::sleep(50 * MS).await;
        assert!(!held.is_finished(), "1,800 bytes behind: held");
        slot.advance(1);
        assert_eq!(held.await.unwrap().released, 0);
    }

    #[tokio::test]
    async fn a_reader_more_publishes_behind_than_the_marks_kept_is_counted_from_its_own_place() {
        // --replay-buffer-events 20000 (4 MiB): the mark is 10,000 events or
        // 2 MiB, more publishes than the marks kept.
        let f = Arc::new(Flow::new(Rule::new(
            20_000,
            4 << 20,
            50,
            50 * MS,
            10_000 * MS,
        )));
        let slot = f.attach(CH, 0, 0);
        let f2 = f.clone();
        let big = tokio::spawn(async move { publish(&f2, 1, 3 << 20).await });
        slot.advance(1);
        assert_eq!(big.await.unwrap().released, 0);
        // 6,000 single-event publishes of 10 bytes: the reader, still at 1,
        // is 6,000 events and 60 KB behind, well within the mark.
        for id in 2..=6_001 {
            assert_eq!(publish(&f, id, 10).await, Held::default(), "publish {id}");
        }
        let ch = lock(&f.channels).get(CH).cloned().unwrap();
        let st = lock(&ch.state);
        assert!(st.marks.len() <= MAX_MARKS + 1);
        assert_eq!(
            st.lag(1),
            Lag {
                events: 6_000,
                bytes: 60_000
            }
        );
        // A reader between two kept marks counts from the earlier one: more,
        // never less.
        let lag = st.lag(3_001);
        assert_eq!(lag.events, 3_000);
        assert!((30_000..=30_010).contains(&lag.bytes), "{lag:?}");
    }

    #[tokio::test]
    async fn a_stuck_reader_is_released_after_the_longest_wait_once() {
        let f = flow(100 * MS, 10_000 * MS);
        let slot = f.attach(CH, 0, 0);
        let held = publish(&f, 100, 0).await;
        assert!(held.waited >= 100 * MS);
        assert_eq!(held.released, 1);
        assert_eq!(
            publish(&f, 200, 0).await,
            Held::default(),
            "released: not waited for again"
        );
        // Back within the mark: it counts again.
        slot.advance(195);
        let held = publish(&f, 300, 0).await;
        assert_eq!(held.released, 1);
    }

    #[tokio::test]
    async fn a_disconnected_reader_counts_for_the_grace_then_not() {
        let f = flow(10_000 * MS, 100 * MS);
        drop(f.attach(CH, 0, 0));
        assert_eq!(readers(&f), 1, "kept at its last position");
        let held = publish(&f, 100, 0).await;
        assert!(
            held.waited >= 90 * MS,
            "held until the grace is over ({held:?})"
        );
        assert_eq!((held.released, readers(&f)), (0, 0));
        f.sweep();
        assert_eq!(f.channel_count(), 0);
    }

    #[tokio::test]
    async fn a_reconnecting_reader_takes_its_place_back() {
        let f = flow(10_000 * MS, 10_000 * MS);
        drop(f.attach(CH, 5, 5));
        let slot = f.attach(CH, 5, 5);
        assert_eq!(readers(&f), 1);
        slot.leave();
        assert_eq!(f.channel_count(), 0, "a reader that left holds nothing");
        assert_eq!(publish(&f, 100, 0).await, Held::default());
    }

    #[tokio::test]
    async fn shutdown_ends_the_wait() {
        let f = flow(10_000 * MS, 10_000 * MS);
        let _slot = f.attach(CH, 0, 0);
        let (tx, _rx) = watch::channel(false);
        let tx = Arc::new(tx);
        let (f2, tx2) = (f.clone(), tx.clone());
        let held = tokio::spawn(async move { f2.published(CH, 100, 0, &tx2).await });
        tokio::time::sleep(20 * MS).await;
        tx.send_replace(true);
        assert_eq!(held.await.unwrap().released, 0);
    }
}
