//! A connection task that woke itself while being polled is polled again at
//! once, instead of going back through the runtime's scheduler.
//!
//! hyper's HTTP/1 dispatcher and the handler it drives share one task. When
//! the handler takes a request body, hyper's body channel wakes the
//! dispatcher, i.e. the task that is running. tokio's multi-threaded runtime
//! treats a task woken during its own poll as a yield: it is queued behind the
//! others and a sleeping worker thread is woken to steal it, a futex wake and
//! two context switches per request with a body (measured on single-message
//! publishes: BENCHMARKS.md, "sse-relay vs nchan"). [`Repoll`] notices the
//! self-wake and polls again in the same turn, up to [`MAX_REPOLLS`] times,
//! then yields to the runtime as before, so a connection that is always
//! ready still lets other tasks run. It wraps hyper's connection futures
//! only (`connection::one_request`, `connection::final_hyper`): the requests
//! and streams the relay serves itself never wake themselves, and would pay
//! for the extra waker (registered on every poll, forwarded on every wake)
//! with nothing to gain (BENCHMARKS.md, "Fewer cycles per publish").

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use futures_util::task::AtomicWaker;

/// Polls in a row for a future that keeps waking itself before it yields to
/// the runtime (hyper's dispatcher itself loops at most 16 times per poll).
pub(crate) const MAX_REPOLLS: usize = 4;

/// The wrapped future is being polled.
const POLLING: u8 = 1;
/// A wake arrived while it was.
const WOKEN: u8 = 2;

pin_project_lite::pin_project! {
    /// `inner`, re-polled at once when it wakes itself during a poll.
    pub(crate) struct Repoll<F> {
        #[pin]
        inner: F,
        shared: Arc<Shared>,
        waker: Waker,
    }
}

/// The waker given to the inner future: records wakes during a poll,
/// forwards the others to the task's own waker.
struct Shared {
    state: AtomicU8,
    task: AtomicWaker,
}

impl Wake for Shared {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let prev = self.state.fetch_or(WOKEN, Ordering::AcqRel);
        if prev & POLLING == 0 {
            self.task.wake();
        }
    }
}

impl<F> Repoll<F> {
    pub(crate) fn new(inner: F) -> Self {
        let shared = Arc::new(Shared {
            state: AtomicU8::new(0),
            task: AtomicWaker::new(),
        });
        let waker = Waker::from(shared.clone());
        Self {
            inner,
            shared,
            waker,
        }
    }
}

impl<F: Future> Future for Repoll<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let mut this = self.project();
        // Before the poll: a wake from elsewhere once `POLLING` is cleared
        // must find the task's current waker.
        this.shared.task.register(cx.waker());
        let mut inner_cx = Context::from_waker(this.waker);
        for _ in 0..MAX_REPOLLS {
            this.shared.state.store(POLLING, Ordering::Release);
            let res = this.inner.as_mut().poll(&mut inner_cx);
            let prev = this.shared.state.swap(0, Ordering::AcqRel);
            if res.is_ready() || prev & WOKEN == 0 {
                return res;
            }
        }
        // Woken during every poll: let the runtime run others first.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Counts wakes of the task.
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Ready after `n` polls, waking itself in each poll before.
    struct SelfWaking {
        polls: usize,
        ready_after: usize,
    }

    impl Future for SelfWaking {
        type Output = usize;

        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
            self.polls += 1;
            if self.polls >= self.ready_after {
                return Poll::Ready(self.polls);
            }
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    #[test]
    fn a_self_wake_is_polled_again_without_waking_the_task() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let task = Waker::from(count.clone());
        let mut cx = Context::from_waker(&task);
        let mut f = std::pin::pin!(Repoll::new(SelfWaking {
            polls: 0,
            ready_after: 3
        }));
        assert_eq!(f.as_mut().poll(&mut cx), Poll::Ready(3));
        assert_eq!(count.0.load(Ordering::SeqCst), 0, "the task was not woken");
    }

    #[test]
    fn a_future_that_always_wakes_itself_yields_to_the_task() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let task = Waker::from(count.clone());
        let mut cx = Context::from_waker(&task);
        let mut f = std::pin::pin!(Repoll::new(SelfWaking {
            polls: 0,
            ready_after: usize::MAX
        }));
        assert!(f.as_mut().poll(&mut cx).is_pending());
        assert_eq!(f.inner.polls, MAX_REPOLLS);
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "yielded with one wake");
    }

    #[test]
    fn a_wake_after_the_poll_reaches_the_task() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let task = Waker::from(count.clone());
        let mut cx = Context::from_waker(&task);
        let stored = Arc::new(std::sync::Mutex::new(None::<Waker>));
        let s2 = stored.clone();
        let mut f = std::pin::pin!(Repoll::new(std::future::poll_fn(move |cx| {
            *s2.lock().unwrap() = Some(cx.waker().clone());
            Poll::<()>::Pending
        })));
        assert!(f.as_mut().poll(&mut cx).is_pending());
        assert_eq!(count.0.load(Ordering::SeqCst), 0);
        // A wake from elsewhere (an I/O event, another task) once it is pending.
        stored.lock().unwrap().take().unwrap().wake();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
    }
}
