//! The events a node last read from Redis for the readers of one channel.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use sse_channel_protocol::EventId;
use tokio::sync::Notify;

use crate::broker::{Event, Head, Phase, ReadBatch};

/// Events most recently read from Redis for the readers of one channel on
/// this node. When a notification wakes N readers, the first one reads the
/// new events from Redis and the others take them from here: one Redis call
/// per event and node rather than per reader, and each event's frames are
/// built once per node and shared, as with the in-memory broker.
pub(super) struct Recent {
    /// Consecutive ids.
    events: std::collections::VecDeque<Arc<Event>>,
    /// What the events cost ([`crate::broker::event_cost`]).
    cost: usize,
    /// The head at the last read from Redis.
    head: Option<Head>,
    /// What every [`Recent`] of the node holds, at most [`RECENT_TOTAL`].
    total: Arc<AtomicUsize>,
}

/// Most events kept in a [`Recent`].
const RECENT_EVENTS: usize = 256;
/// Most bytes ([`crate::broker::event_cost`]) kept in a [`Recent`] (the newest event
/// is always kept).
const RECENT_COST: usize = 256 * 1024;
/// Most bytes all the [`Recent`]s of a node hold together; past it, reads
/// go to Redis (correct, only slower).
const RECENT_TOTAL: usize = 32 * 1024 * 1024;

fn cost(e: &Event) -> usize {
    usize::try_from(crate::broker::event_cost(e.data.len())).unwrap_or(usize::MAX)
}

impl Drop for Recent {
    fn drop(&mut self) {
        self.total.fetch_sub(self.cost, Relaxed);
    }
}

/// A channel's [`Recent`] and its single read from Redis in flight: readers
/// that miss while another one reads wait for that read instead of making
/// their own, and are all woken at once when it is done.
pub(super) struct RecentShared {
    pub(super) recent: Mutex<Recent>,
    /// True while one reader reads from Redis for the others.
    pub(super) fetching: AtomicBool,
    /// Wakes the waiting readers when a read is done.
    pub(super) done: Notify,
}

/// Ends a read from Redis for the waiting readers, also when the reading
/// future is dropped half-way.
pub(super) struct Fetching<'a>(pub(super) &'a RecentShared);

impl Drop for Fetching<'_> {
    fn drop(&mut self) {
        self.0
            .fetching
            .store(false, std::sync::atomic::Ordering::Release);
        self.0.done.notify_waiters();
    }
}

impl RecentShared {
    pub(super) fn new(total: Arc<AtomicUsize>) -> Arc<Self> {
        Arc::new(Self {
            recent: Mutex::new(Recent {
                events: std::collections::VecDeque::new(),
                cost: 0,
                head: None,
                total,
            }),
            fetching: AtomicBool::new(false),
            done: Notify::new(),
        })
    }
}

impl Recent {
    pub(super) fn clear(&mut self) {
        self.total.fetch_sub(self.cost, Relaxed);
        self.events.clear();
        self.cost = 0;
    }

    /// The answer to a read after `after`, if what is held answers it: it
    /// reaches `after + 1` and holds everything up to `known`, the newest head
    /// the node has heard of.
    pub(super) fn serve(&self, after: EventId, max: usize, known: Head) -> Option<ReadBatch> {
        let held = self.head?;
        let first = self.events.front()?.id;
        let last = self.events.back()?.id;
        if first > after + 1 || last < known.last_id || last < held.last_id {
            return None;
        }
        let ended = held.phase == Phase::Ended || known.phase == Phase::Ended;
        Some(ReadBatch {
            lost: None,
            events: self
                .events
                .iter()
                .filter(|e| e.id > after)
                .take(max)
                .cloned()
                .collect(),
            head: Head {
                last_id: last,
                phase: if ended { Phase::Ended } else { Phase::Open },
            },
        })
    }

    /// Keeps what a read from Redis returned, within `max_events` and
    /// `max_bytes` (the replay buffer's bounds, so that what is kept here is
    /// still in Redis's buffer and `MESSAGES_LOST` answers as without it).
    pub(super) fn keep(&mut self, batch: &ReadBatch, max_events: usize, max_bytes: usize) {
        if self.head.is_none_or(|h| h.last_id <= batch.head.last_id) {
            self.head = Some(batch.head);
        }
        let Some(first) = batch.events.first().map(|e| e.id) else {
            return;
        };
        let joins = self
            .events
            .front()
            .zip(self.events.back())
            .is_some_and(|(f, l)| f.id <= first && first <= l.id + 1);
        if !joins {
            if self
                .events
                .front()
                .is_some_and(|f| batch.events.last().is_some_and(|l| l.id < f.id))
            {
                // A reader far behind: keep the newer events for the others.
                return;
            }
            self.clear();
        }
        let before = self.cost;
        let last = self.events.back().map_or(0, |e| e.id);
        for e in batch.events.iter().filter(|e| e.id > last) {
            self.cost += cost(e);
            self.events.push_back(e.clone());
        }
        let max_events = max_events.min(RECENT_EVENTS);
        // The replay buffer's bound is on payload bytes; a payload's cost is
        // more than its length, so this keeps no more than the buffer holds.
        let max_cost = max_bytes.min(RECENT_COST);
        while self.events.len() > 1 && (self.events.len() > max_events || self.cost > max_cost) {
            if let Some(old) = self.events.pop_front() {
                self.cost -= cost(&old);
            }
        }
        let grown = self.cost.saturating_sub(before);
        let shrunk = before.saturating_sub(self.cost);
        let total = self.total.fetch_add(grown, Relaxed) + grown;
        self.total.fetch_sub(shrunk, Relaxed);
        if total.saturating_sub(shrunk) > RECENT_TOTAL {
            self.clear();
        }
    }
}
