//! Subscriber streams: EventSource (`/events`) and WebSocket (`/ws`, served
//! by `crate::ws`).
//!
//! Both transports drive one [`Subscriber`]: a cursor over the channel's
//! replay buffer that wakes when the channel's head moves. Frames are built
//! once per event and shared by every subscriber ([`Event::sse_frame`]).

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sse_channel_protocol::api::{self, ErrorDetail};
use sse_channel_protocol::frame::{
    parse_event_id, sse_event, sse_named, ReadyData, SSE_BATCH, SSE_HEARTBEAT,
};
use sse_channel_protocol::{ErrorCode, EventId, EventKind, LostRange, Scope};
use tokio::sync::watch;
use tokio::time::{Instant, Interval, MissedTickBehavior};

use crate::broker::{Event, Head, Phase};
use crate::flow::ReaderSlot;
use crate::metrics::{ConnectionGauge, Transport};
use crate::request::{check_channel_id, Shared};
use crate::{now_ms, ApiError, StreamGuard};

pub(crate) use crate::ws::ws;

/// Most events taken from the buffer per wake-up (one SSE write each).
const READ_MAX: usize = 256;
/// A batch (`batch=1`: a WebSocket frame or an SSE `batch` event) is closed
/// once its JSON array holds this many bytes.
const BATCH_BYTES: usize = 32 * 1024;

/// What a subscriber has to send next.
pub(crate) enum Step {
    Events(Vec<Arc<Event>>),
    Lost(LostRange),
    Ping,
    /// Send an error frame, then close.
    Fail(ApiError),
    /// Drop the connection without a goodbye (test hook).
    Abort,
}

pub(crate) struct Subscriber {
    pub(crate) relay: Shared,
    channel: String,
    after: EventId,
    head: watch::Receiver<Head>,
    shutdown: watch::Receiver<bool>,
    kill: Option<watch::Receiver<u64>>,
    heartbeat: Interval,
    need_read: bool,
    pending: Option<Vec<Arc<Event>>>,
    finished: bool,
    /// `batch=1`: a burst of events goes out as arrays of frames (WebSocket
    /// frames or SSE `batch` events).
    pub(crate) batch: bool,
    /// Its position for backpressure (`None` when backpressure is off).
    slot: Option<ReaderSlot>,
    _guard: StreamGuard,
    _gauge: ConnectionGauge,
}

impl Subscriber {
    /// The next thing to send; `None` once the stream is over. Cancel-safe:
    /// `need_read` stays set until a read has completed.
    pub(crate) async fn next(&mut self) -> Option<Step> {
        if self.finished {
            return None;
        }
        if let Some(events) = self.pending.take() {
            return Some(self.events(events));
        }
        loop {
            if self.need_read {
                self.head.borrow_and_update();
                let read = self
                    .relay
                    .broker
                    .read(&self.channel, self.after, READ_MAX, now_ms())
                    .await;
                let batch = match read {
                    Ok(b) => b,
                    Err(e) => {
                        self.finished = true;
                        let err = if self.head.borrow().phase == Phase::Expired {
                            ApiError::new(ErrorCode::ChannelExpired, "the channel has expired")
                        } else {
                            e.into()
                        };
                        return Some(Step::Fail(err));
                    }
                };
                self.need_read = batch.events.len() == READ_MAX;
                if let Some(lost) = batch.lost {
                    self.after = self.after.max(lost.to);
                    self.advance();
                    if !batch.events.is_empty() {
                        self.pending = Some(batch.events);
                    }
                    return Some(Step::Lost(lost));
                }
                if !batch.events.is_empty() {
                    return Some(self.events(batch.events));
                }
                if batch.head.phase == Phase::Ended && self.after >= batch.head.last_id {
                    // Resumed after the end event: nothing more will come.
                    self.finished = true;
                    self.leave();
                    return None;
                }
            }
            let kill = async {
                // A dropped sender (the hook forgotten with its channel) is no kill.
                let killed = match &mut self.kill {
                    Some(k) => k.changed().await.is_ok(),
                    None => false,
                };
                if !killed {
                    std::future::pending::<()>().await;
                }
            };
            // Waiting at the head: a publish through this node waits for
            // this reader to take its event before answering (flow::taken).
            let _idle = self.slot.as_ref().map(ReaderSlot::idle);
            tokio::select! {
                biased;
                _ = self.shutdown.changed() => {
                    self.finished = true;
                    return Some(Step::Fail(ApiError::new(
                        ErrorCode::ShuttingDown,
                        "the relay is shutting down; reconnect",
                    )));
                }
                _ = kill => {
                    self.finished = true;
                    return Some(Step::Abort);
                }
                _ = self.head.changed() => self.need_read = true,
                _ = self.heartbeat.tick() => return Some(Step::Ping),
            }
        }
    }

    /// Tells backpressure the position taken from the buffer.
    fn advance(&self) {
        if let Some(slot) = &self.slot {
            slot.advance(self.after);
        }
    }

    /// This reader will not come back for more (it has the end, or closed
    /// cleanly): it stops counting for backpressure.
    pub(crate) fn leave(&mut self) {
        if let Some(slot) = self.slot.take() {
            slot.leave();
        }
    }

    fn events(&mut self, events: Vec<Arc<Event>>) -> Step {
        if let Some(last) = events.last() {
            self.after = last.id;
            if crate::broker::is_final(last.kind) {
                self.finished = true;
                self.leave();
            } else {
                self.advance();
            }
        }
        self.relay
            .metrics
            .deliveries
            .fetch_add(events.len() as u64, Relaxed);
        Step::Events(events)
    }
}

pub(crate) enum Admission {
    Go(Box<Subscriber>),
    /// Refused with a plain 503 (test hook pause): looks like a network failure.
    Paused,
}

pub(crate) async fn admit(
    relay: &Shared,
    id: &str,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    headers: &HeaderMap,
    transport: Transport,
) -> Result<Admission, ApiError> {
    check_channel_id(id)?;
    if relay.is_paused(id) {
        return Ok(Admission::Paused);
    }
    let Query(q) = query.map_err(|_| ApiError::bad_request("malformed query string"))?;
    let after = resume_point(
        headers.get(api::HEADER_LAST_EVENT_ID).map(|v| v.as_bytes()),
        q.get(api::QUERY_LAST_EVENT_ID).map(String::as_str),
    )?;
    let batch = match q.get(api::QUERY_BATCH).map(String::as_str) {
        None | Some("0") => false,
        Some("1") => true,
        Some(_) => return Err(ApiError::bad_request("batch must be 0 or 1")),
    };
    let token = q.get(api::QUERY_TOKEN).map(String::as_str).unwrap_or("");
    relay
        .key
        .verify(token, id, Scope::Subscribe, now_ms() / 1000)?;
    if relay.is_shutting_down() {
        return Err(ApiError::new(
            ErrorCode::ShuttingDown,
            "the relay is shutting down",
        ));
    }
    let head = relay.broker.watch(id).await?;
    let last_id = head.borrow().last_id;
    // Refuse an expired channel before `ready` (reads nothing: max 0).
    relay
        .broker
        .read(id, after.min(last_id), 0, now_ms())
        .await?;
    if after > last_id {
        // Never published here: waiting would silently skip the events up to
        // `after` once they are, and no id is ever this large by accident.
        return Err(ApiError::owned(
            ErrorCode::BadRequest,
            format!(
                "Last-Event-ID / lastEventId {after} is beyond the channel's newest event ({last_id})"
            ),
        ));
    }
    // Test hooks: only for channels that exist, so the hook table stays bounded.
    let kill = relay.kill_switch(id);
    let guard = relay.open_stream(id)?;
    let slot = relay.flow.enabled().then(|| {
        let last_id = head.borrow().last_id;
        relay.flow.attach(id, after, last_id)
    });
    let period = Duration::from_millis(relay.config.heartbeat_ms.max(1));
    let mut heartbeat = tokio::time::interval_at(Instant::now() + period, period);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    Ok(Admission::Go(Box::new(Subscriber {
        relay: relay.clone(),
        channel: id.to_owned(),
        after,
        head,
        shutdown: relay.shutdown.subscribe(),
        kill,
        heartbeat,
        need_read: true,
        pending: None,
        finished: false,
        batch,
        slot,
        _guard: guard,
        _gauge: relay.metrics.connection(transport),
    })))
}

pub(crate) fn ready_json(relay: &Shared) -> String {
    serde_json::to_string(&ReadyData {
        heartbeat_ms: relay.config.heartbeat_ms,
    })
    .unwrap_or_default()
}

#[derive(Serialize)]
struct LostData {
    #[serde(flatten)]
    detail: ErrorDetail,
    #[serde(flatten)]
    range: LostRange,
}

pub(crate) fn lost_json(l: LostRange) -> String {
    serde_json::to_string(&LostData {
        detail: ErrorDetail {
            code: ErrorCode::MessagesLost.as_str().to_owned(),
            message: format!("events {}..={} are no longer buffered", l.from, l.to),
        },
        range: l,
    })
    .unwrap_or_default()
}

pub(crate) fn plain_503() -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, "paused by test hook").into_response()
}

fn sse_headers(res: &mut Response) {
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        HeaderName::from_static("x-accel-buffering"),
        HeaderValue::from_static("no"),
    );
}

/// `GET /v1/channels/{id}/events`.
pub(crate) async fn sse(
    State(relay): State<Shared>,
    Path(id): Path<String>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let in_band = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    let sub = match admit(&relay, &id, query, &headers, Transport::Sse).await {
        Ok(Admission::Go(sub)) => sub,
        Ok(Admission::Paused) => return plain_503(),
        Err(e) if in_band => {
            relay.metrics.error(e.code);
            let mut s = String::new();
            sse_event(&mut s, None, EventKind::Error, &e.detail_json());
            let mut res = Response::new(Body::from(s));
            sse_headers(&mut res);
            return res;
        }
        Err(e) => return e.into_response(),
    };
    let mut first = String::new();
    sse_event(&mut first, None, EventKind::Ready, &ready_json(&relay));
    let first = futures_util::stream::once(std::future::ready(Ok::<_, std::io::Error>(
        Bytes::from(first),
    )));
    let rest = futures_util::stream::unfold(sub, |mut sub| async move {
        let chunk = match sub.next().await? {
            Step::Events(events) => {
                let out = if events.len() == 1 {
                    events[0].sse_frame().clone()
                } else if sub.batch {
                    // One SSE event per array: the browser pays per event. Its
                    // `id:` is the array's last, so Last-Event-ID stays exact.
                    let mut buf = Vec::new();
                    for run in batch_runs(&events) {
                        match run {
                            [one] => buf.extend_from_slice(one.sse_frame()),
                            [.., last] => {
                                let mut s = String::new();
                                sse_named(&mut s, Some(last.id), SSE_BATCH, &json_array(run));
                                buf.extend_from_slice(s.as_bytes());
                            }
                            [] => {}
                        }
                    }
                    Bytes::from(buf)
                } else {
                    let len = events.iter().map(|e| e.sse_frame().len()).sum();
                    let mut buf = Vec::with_capacity(len);
                    for e in &events {
                        buf.extend_from_slice(e.sse_frame());
                    }
                    Bytes::from(buf)
                };
                sub.relay
                    .metrics
                    .bytes_out
                    .fetch_add(out.len() as u64, Relaxed);
                out
            }
            Step::Lost(l) => {
                sub.relay.metrics.error(ErrorCode::MessagesLost);
                let mut s = String::new();
                sse_event(&mut s, None, EventKind::Error, &lost_json(l));
                Bytes::from(s)
            }
            Step::Ping => Bytes::from_static(SSE_HEARTBEAT.as_bytes()),
            Step::Fail(e) => {
                sub.relay.metrics.error(e.code);
                let mut s = String::new();
                sse_event(&mut s, None, EventKind::Error, &e.detail_json());
                Bytes::from(s)
            }
            Step::Abort => {
                return Some((Err(std::io::Error::other("dropped by test hook")), sub));
            }
        };
        Some((Ok(chunk), sub))
    });
    use futures_util::StreamExt as _;
    let mut res = Response::new(Body::from_stream(first.chain(rest)));
    sse_headers(&mut res);
    res
}

/// The events cut into runs, in order, one JSON array each: a run is closed
/// before its array would pass [`BATCH_BYTES`] (an event larger than that is a
/// run of one).
pub(crate) fn batch_runs(events: &[Arc<Event>]) -> Vec<&[Arc<Event>]> {
    let mut out = Vec::new();
    let (mut start, mut len) = (0, 1);
    for (i, e) in events.iter().enumerate() {
        let f = e.ws_frame().len() + 1;
        if i > start && len + f + 1 > BATCH_BYTES {
            out.push(&events[start..i]);
            (start, len) = (i, 1);
        }
        len += f;
    }
    if start < events.len() {
        out.push(&events[start..]);
    }
    out
}

/// `[frame,frame,…]`: the events' WebSocket frames as one JSON array.
fn json_array(run: &[Arc<Event>]) -> String {
    let len = run.iter().map(|e| e.ws_frame().len() + 1).sum::<usize>() + 1;
    let mut out = String::with_capacity(len);
    for e in run {
        out.push(if out.is_empty() { '[' } else { ',' });
        out.push_str(e.ws_frame());
    }
    out.push(']');
    out
}

/// The resume point: the larger of the `Last-Event-ID` header (raw bytes, as
/// any client may send them) and the `lastEventId` query value.
pub(crate) fn resume_point(
    header: Option<&[u8]>,
    query: Option<&str>,
) -> Result<EventId, ApiError> {
    let bad_id = || ApiError::bad_request("Last-Event-ID / lastEventId must be a decimal event id");
    let mut after = 0;
    if let Some(v) = header {
        let v = std::str::from_utf8(v).map_err(|_| bad_id())?;
        after = parse_event_id(v.trim()).ok_or_else(bad_id)?;
    }
    if let Some(v) = query {
        after = after.max(parse_event_id(v).ok_or_else(bad_id)?);
    }
    Ok(after)
}

pub(crate) fn is_client_ping(text: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Frame<'a> {
        #[serde(borrow)]
        event: Option<&'a str>,
    }
    serde_json::from_str::<Frame<'_>>(text)
        .ok()
        .and_then(|f| f.event)
        .and_then(EventKind::parse)
        == Some(EventKind::Ping)
}
