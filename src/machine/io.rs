//! What goes into the machine ([`Input`]) and what comes out ([`Effect`]).

use super::*;

/// What happened. Inputs from a connection carry its id (from
/// [`Effect::Connect`]); inputs of a connection that was given up are ignored,
/// as are timers that are not armed and anything after `closed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// `open()` was called.
    Open,
    /// The executor found a problem that ends the channel (e.g. no relay).
    Fatal(Failure),
    /// `POST /v1/channels` succeeded.
    Created,
    /// `POST /v1/channels` failed with this code (the executor keeps the message: [`Why::Relay`]).
    CreateFailed(ErrorCode),
    /// The relay's `ready` frame.
    Ready {
        /// The connection.
        conn: u32,
        /// The relay's heartbeat interval, if announced.
        heartbeat_ms: Option<u64>,
    },
    /// A `message` frame; the executor delivers its data on [`Effect::Message`].
    Message {
        /// The connection.
        conn: u32,
        /// Its id (a frame without one is never delivered).
        id: Option<EventId>,
    },
    /// `message` frames up to `id` that the executor delivered itself, without
    /// an input each, while [`Machine::delivering`] named `conn`: as many
    /// [`Input::Message`]s, in id order, whose [`Effect::Message`] was carried
    /// out. The browser's listeners then run without a call into wasm per event.
    Delivered {
        /// The connection.
        conn: u32,
        /// The last id delivered.
        id: EventId,
    },
    /// The `end` frame; the executor emits its data on [`Effect::End`].
    End {
        /// The connection.
        conn: u32,
        /// Its id.
        id: Option<EventId>,
    },
    /// A frame with nothing to deliver (heartbeat, pong, a kind this client does not know).
    Alive {
        /// The connection.
        conn: u32,
    },
    /// `MESSAGES_LOST`: the range is gone; the stream goes on.
    Lost {
        /// The connection.
        conn: u32,
        /// The missing ids.
        range: LostRange,
    },
    /// An `error` frame with an id (other than `MESSAGES_LOST`). A new id is the
    /// channel's stored, final `error` event (`FUNCTION_FAILED`,
    /// `CHANNEL_CANCELLED`): it closes the channel without reconnecting; the
    /// executor keeps its message and details. An id already seen is an
    /// in-band error frame ([`Input::StreamError`]): EventSource gives frames
    /// without an `id:` line the last id it saw.
    Final {
        /// The connection.
        conn: u32,
        /// Its id.
        id: EventId,
        /// Its code.
        code: ErrorCode,
    },
    /// An in-band error frame (other than `MESSAGES_LOST`); the stream is over.
    StreamError {
        /// The connection.
        conn: u32,
        /// Its code.
        code: ErrorCode,
    },
    /// The connection failed or closed without a reason; `opened` when its
    /// handshake had completed.
    Dropped {
        /// The connection.
        conn: u32,
        /// The handshake had completed.
        opened: bool,
    },
    /// The browser refused to start the connection (a URL it rejects).
    Refused {
        /// The connection.
        conn: u32,
    },
    /// An armed timer fired.
    Timer(Timer),
    /// The page's `online` event.
    Online,
    /// The page's `offline` event.
    Offline,
    /// `close()` was called.
    Close,
}

/// What the executor must do, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// `open()` is refused: reject it with `INVALID_STATE` (`closed`: after
    /// close, else called twice). Nothing else changes.
    Refuse {
        /// The channel is closed.
        closed: bool,
    },
    /// `open()` is accepted (its promise settles with [`Effect::Opened`],
    /// [`Effect::Fail`] or [`Effect::Close`]): start listening to the page's
    /// `online`/`offline` events (stopped on [`Effect::Close`]).
    Listen,
    /// Send `POST /v1/channels`.
    Create,
    /// Open connection `conn` of `kind`, resuming after `last_event_id`. Never
    /// while another connection is open.
    Connect {
        /// Its id, carried by its inputs.
        conn: u32,
        /// The transport.
        kind: Kind,
        /// The resume point (0: from the start).
        last_event_id: EventId,
    },
    /// Close the open connection and detach its callbacks.
    Disconnect,
    /// (Re)arm a timer to fire in this many ms.
    Arm(Timer, u32),
    /// Cancel a timer.
    Cancel(Timer),
    /// The state changed: emit `state` `{from, to}`.
    State(Transition),
    /// Emit `open` and resolve `open()`.
    Opened,
    /// Emit `message` with the current frame's data.
    Message,
    /// Emit `end` with the current frame's data.
    End,
    /// Emit `error` `MESSAGES_LOST` (with the relay's message) with `from`/`to`.
    Lost(LostRange),
    /// Emit `reconnecting` `{attempt, delayMs, code}`.
    Reconnecting {
        /// 1 for the first retry.
        attempt: u32,
        /// The delay before it.
        delay_ms: u32,
        /// Why.
        code: ErrorCode,
    },
    /// Emit `error` and reject a pending `open()` with it.
    Fail(Failure),
    /// Emit `close`; reject a pending `open()` (`INVALID_STATE`); stop
    /// listening to network events. The last effect of a channel.
    Close,
}
