//! Readers first: the answer to a publish waits until this node's readers
//! that were waiting at the head have taken the event.
//!
//! With the in-memory broker a publish wakes those readers at once, and they
//! run on the same worker thread right after the publishing request's task.
//! Without this wait that task writes its answer first and the readers their
//! event after it; with it, the readers write first and the answer follows in
//! the same turn of the runtime (a hub that writes to its subscribers inside
//! the publish, like nchan, has the same order). It costs no system call: the
//! reader that takes the event wakes the waiting publish. The wait is bounded
//! by the backpressure's longest wait ([`Rule::max_wait`], default 5 s; a
//! woken reader takes the event within microseconds, so the bound is only a
//! safety net): its first part arms no timer and ends at the relay's next
//! sweep tick at the latest ([`Flow::wake_all`], every 250 ms), the rest runs
//! under a timer up to the bound.

use sse_channel_protocol::EventId;
use tokio::sync::watch;

use tokio::time::Instant;

use super::{lock, ChannelFlow, Flow, ReaderSlot, Waiting};

/// Readers of a channel on this node up to which a publish waits for them
/// (a channel fanned out to more answers without waiting: its answer would
/// wait for every reader's write, and each would wake the publish again).
pub(crate) const READERS_FIRST_MAX_READERS: usize = 8;
#[cfg(doc)]
use super::Rule;

/// A reader waiting at the head for the next event, while alive.
pub(crate) struct Idle<'a>(&'a ReaderSlot);

impl ReaderSlot {
    /// Marks the reader as waiting at the head until the guard is dropped:
    /// when it has been woken, or stopped waiting for any other reason.
    pub(crate) fn idle(&self) -> Idle<'_> {
        if let Some(r) = lock(&self.ch.state).readers.get_mut(&self.id) {
            r.idle = true;
        }
        Idle(self)
    }
}

impl Drop for Idle<'_> {
    fn drop(&mut self) {
        let slot = self.0;
        if let Some(r) = lock(&slot.ch.state).readers.get_mut(&slot.id) {
            r.idle = false;
        }
        slot.ch.wake();
    }
}

impl Flow {
    /// [`ChannelFlow::taken`] on `channel` (nothing to wait for without
    /// readers of it on this node).
    #[cfg(test)]
    pub(crate) async fn taken(
        &self,
        channel: &str,
        last_id: EventId,
        shutdown: &watch::Sender<bool>,
    ) {
        if let Some(ch) = self.channel(channel) {
            ch.taken(last_id, shutdown).await;
        }
    }
}

impl ChannelFlow {
    /// Waits until no reader of this channel waiting at the head is before
    /// `last_id` (the publish that stored it woke them), at most
    /// [`Rule::max_wait`] or until `shutdown` turns true. Returns at once when
    /// the channel has more than [`READERS_FIRST_MAX_READERS`] readers on this
    /// node. The first wait arms no timer (the woken readers take the event
    /// within microseconds, and one timer per publish, armed and cancelled,
    /// was a measurable part of a publish's cost): it ends when a reader
    /// moves, or at the next [`Flow::wake_all`] (every
    /// [`crate::outcome::ABANDON_TICK`], and at shutdown), after which the
    /// wait goes on under a timer until [`Rule::max_wait`] from the publish.
    pub(super) async fn taken(&self, last_id: EventId, shutdown: &watch::Sender<bool>) {
        let waiting = |ch: &Self| {
            let st = lock(&ch.state);
            st.readers.len() <= READERS_FIRST_MAX_READERS
                && st.readers.values().any(|r| r.idle && r.after < last_id)
        };
        if !waiting(self) {
            return;
        }
        let start = Instant::now();
        self.waiters
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let _waiting = Waiting(self);
        let mut limit = None;
        loop {
            let moved = self.moved.notified();
            tokio::pin!(moved);
            moved.as_mut().enable();
            if !waiting(self) || *shutdown.borrow() {
                return;
            }
            let Some(limit) = limit.as_mut() else {
                moved.await;
                limit = Some(Box::pin(tokio::time::sleep_until(
                    start + self.rule.max_wait,
                )));
                continue;
            };
            tokio::select! {
                () = &mut moved => {}
                () = limit.as_mut() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use std::time::Duration;

    use super::*;
    use crate::flow::Rule;

    const CH: &str = "0123456789abcdef0123456789abcdef";
    const MS: Duration = Duration::from_millis(1);

    /// Longest wait 200 ms.
    const MAX_WAIT: Duration = Duration::from_millis(200);

    fn flow() -> Arc<Flow> {
        Arc::new(Flow::new(Rule::new(20, 2_000, 50, MAX_WAIT, 10_000 * MS)))
    }

    #[tokio::test]
    async fn a_publish_waits_for_idle_readers_to_take_it() {
        let f = flow();
        let (tx, _rx) = watch::channel(false);
        let slot = Arc::new(f.attach(CH, 0, 0));
        // Not idle (reading or writing): not waited for.
        tokio::time::timeout(10 * MS, f.taken(CH, 1, &tx))
            .await
            .expect("a busy reader is not waited for");
        let (ready_tx, ready) = tokio::sync::oneshot::channel();
        let s2 = slot.clone();
        let reader = tokio::spawn(async move {
            let idle = s2.idle();
            let _ = ready_tx.send(());
            tokio::time::sleep(30 * MS).await;
            // Woken: stops waiting, then takes the event.
            drop(idle);
            s2.advance(2);
        });
        ready.await.unwrap();
        let start = tokio::time::Instant::now();
        f.taken(CH, 2, &tx).await;
        assert!(start.elapsed() >= 20 * MS, "waited for the idle reader");
        reader.await.unwrap();
        // Idle but already at the event: nothing to wait for.
        let _idle = slot.idle();
        tokio::time::timeout(10 * MS, f.taken(CH, 2, &tx))
            .await
            .expect("an idle reader at the id is not waited for");
    }

    #[tokio::test]
    async fn a_reader_that_never_takes_it_holds_the_answer_at_most_the_limit() {
        let f = flow();
        let (tx, _rx) = watch::channel(false);
        let slot = f.attach(CH, 0, 0);
        let _idle = slot.idle();
        // The relay's sweep tick: the first wait arms no timer and ends there.
        let f2 = f.clone();
        let tick = tokio::spawn(async move {
            loop {
                tokio::time::sleep(20 * MS).await;
                f2.wake_all();
            }
        });
        let start = tokio::time::Instant::now();
        tokio::time::timeout(20 * MAX_WAIT, f.taken(CH, 1, &tx))
            .await
            .expect("the wait ends after the longest wait");
        let waited = start.elapsed();
        tick.abort();
        assert!(waited >= MAX_WAIT, "{waited:?}");
    }

    #[tokio::test]
    async fn a_reader_that_stops_waiting_without_taking_it_releases_the_answer() {
        // E.g. a WebSocket reader answering a client ping, or a connection
        // that closes: its wait for the head ends without reading.
        let f = flow();
        let slot = Arc::new(f.attach(CH, 0, 0));
        let idle_slot = slot.clone();
        let (ready_tx, ready) = tokio::sync::oneshot::channel();
        let (stop_tx, stop) = tokio::sync::oneshot::channel::<()>();
        let reader = tokio::spawn(async move {
            let _idle = idle_slot.idle();
            let _ = ready_tx.send(());
            let _ = stop.await;
        });
        ready.await.unwrap();
        let f2 = f.clone();
        let publish = tokio::spawn(async move {
            let (tx, _rx) = watch::channel(false);
            f2.taken(CH, 1, &tx).await;
        });
        tokio::time::sleep(10 * MS).await;
        assert!(!publish.is_finished(), "waits while the reader is idle");
        let _ = stop_tx.send(());
        reader.await.unwrap();
        tokio::time::timeout(50 * MS, publish)
            .await
            .expect("released when the reader stopped waiting")
            .unwrap();
    }

    #[tokio::test]
    async fn a_channel_with_many_readers_is_not_waited_for() {
        let f = flow();
        let (tx, _rx) = watch::channel(false);
        let slots: Vec<_> = (0..=READERS_FIRST_MAX_READERS)
            .map(|_| f.attach(CH, 0, 0))
            .collect();
        let _idle: Vec<_> = slots.iter().map(ReaderSlot::idle).collect();
        tokio::time::timeout(10 * MS, f.taken(CH, 1, &tx))
            .await
            .expect("fan-out: answered without waiting");
    }

    #[tokio::test]
    async fn shutdown_ends_the_wait() {
        let f = flow();
        let slot = f.attach(CH, 0, 0);
        let _idle = slot.idle();
        let (tx, _rx) = watch::channel(false);
        tx.send_replace(true);
        tokio::time::timeout(10 * MS, f.taken(CH, 1, &tx))
            .await
            .expect("no wait while shutting down");
    }
}
