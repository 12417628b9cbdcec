//! WebSocket framing (RFC 6455 §5) as the relay needs it, without I/O: the
//! server's frames are written whole into one buffer per socket write (final,
//! unmasked, no extension), the client's frames are parsed from the bytes read
//! so far ([`Reader`]), with the limits and close codes of `docs/protocol.md`.

/// Continuation frame.
const OP_CONTINUATION: u8 = 0x0;
/// Text frame.
pub(crate) const OP_TEXT: u8 = 0x1;
/// Binary frame.
const OP_BINARY: u8 = 0x2;
/// Close frame.
pub(crate) const OP_CLOSE: u8 = 0x8;
/// Ping frame.
const OP_PING: u8 = 0x9;
/// Pong frame.
pub(crate) const OP_PONG: u8 = 0xA;

/// Close code: a frame that breaks the protocol (unmasked, reserved bits or
/// opcode, a control frame fragmented or over 125 bytes, a lone continuation).
pub(crate) const CLOSE_PROTOCOL: u16 = 1002;
/// Close code: a text message that is not UTF-8.
pub(crate) const CLOSE_INVALID: u16 = 1007;
/// Close code: a message over the relay's limit.
pub(crate) const CLOSE_TOO_BIG: u16 = 1009;

/// Largest payload of a control frame (RFC 6455 §5.5).
const MAX_CONTROL: usize = 125;

/// Bytes of the header of a server frame carrying `len` payload bytes: 2, 4
/// or 10 (server frames are never masked).
///
/// ```text
/// len < 126         -> 2
/// len <= 65,535     -> 4 (126, then a 16-bit length)
/// larger            -> 10 (127, then a 64-bit length)
/// ```
pub(crate) fn header_len(len: usize) -> usize {
    match len {
        0..=125 => 2,
        126..=0xFFFF => 4,
        _ => 10,
    }
}

/// Appends one final, unmasked frame of `opcode` carrying `payload`.
pub(crate) fn put_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    out.reserve(header_len(payload.len()) + payload.len());
    put_header(out, opcode, payload.len());
    out.extend_from_slice(payload);
}

/// Appends the header of a final, unmasked frame of `opcode` whose `len`
/// payload bytes the caller appends next.
pub(crate) fn put_header(out: &mut Vec<u8>, opcode: u8, len: usize) {
    out.push(0x80 | opcode);
    match len {
        0..=125 => out.push(len as u8),
        126..=0xFFFF => {
            out.push(126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
}

/// Appends a text frame.
pub(crate) fn put_text(out: &mut Vec<u8>, text: &str) {
    put_frame(out, OP_TEXT, text.as_bytes());
}

/// Appends a close frame with `code` and no reason.
pub(crate) fn put_close(out: &mut Vec<u8>, code: u16) {
    put_frame(out, OP_CLOSE, &code.to_be_bytes());
}

/// A close code a peer may send (RFC 6455 §7.4; the same set tungstenite
/// accepts): the relay echoes it; any other is answered with 1002.
fn close_code_allowed(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1013 | 3000..=4999)
}

/// A complete message or control frame from the client.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Incoming {
    /// A text message (fragments joined), checked to be UTF-8.
    Text(String),
    /// A binary message (ignored by the relay).
    Binary,
    /// A ping: answer with a pong carrying the same payload.
    Ping(Vec<u8>),
    /// A pong (ignored).
    Pong,
    /// A close frame: the payload of the close frame to answer with (the
    /// client's code and reason, 1002 for a code a peer may not send, empty
    /// when the client gave no code).
    Close(Vec<u8>),
}

/// Why the client's bytes end the connection: the close code to send.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub(crate) struct Violation(pub(crate) u16);

/// Parses client frames from the bytes read so far. Holds no memory until
/// bytes arrive, and gives back what a large message needed once it is read.
#[derive(Debug)]
pub(crate) struct Reader {
    /// Bytes read and not yet parsed.
    buf: Vec<u8>,
    /// The message being received in fragments: its opcode and payload.
    partial: Option<(u8, Vec<u8>)>,
    /// Largest message (and frame payload) accepted.
    max: usize,
}

/// Bytes reserved before a read: a browser's ping frame is about 22.
const READ_STEP: usize = 256;

impl Reader {
    /// A reader of messages up to `max` bytes, starting with the bytes
    /// already read past the handshake.
    pub(crate) fn new(max: usize, read: Vec<u8>) -> Self {
        Self {
            buf: read,
            partial: None,
            max,
        }
    }

    /// The buffer to read more bytes into (room reserved).
    pub(crate) fn read_buf(&mut self) -> &mut Vec<u8> {
        if self.buf.capacity() - self.buf.len() < READ_STEP / 2 {
            self.buf.reserve(READ_STEP);
        }
        &mut self.buf
    }

    /// The next complete message or control frame, `None` until more bytes
    /// are read. Once it returns an error, the connection is over.
    pub(crate) fn next(&mut self) -> Result<Option<Incoming>, Violation> {
        loop {
            let Some((opcode, fin, payload)) = self.frame()? else {
                if self.buf.is_empty() && self.buf.capacity() > 4 * READ_STEP {
                    self.buf = Vec::new();
                }
                return Ok(None);
            };
            let message = match opcode {
                OP_PING => return Ok(Some(Incoming::Ping(payload))),
                OP_PONG => return Ok(Some(Incoming::Pong)),
                OP_CLOSE => return close_reply(payload).map(Some),
                OP_CONTINUATION => {
                    let Some((op, mut data)) = self.partial.take() else {
                        return Err(Violation(CLOSE_PROTOCOL));
                    };
                    if data.len() + payload.len() > self.max {
                        return Err(Violation(CLOSE_TOO_BIG));
                    }
                    data.extend_from_slice(&payload);
                    if !fin {
                        self.partial = Some((op, data));
                        continue;
                    }
                    (op, data)
                }
                _ if self.partial.is_some() => return Err(Violation(CLOSE_PROTOCOL)),
                _ if !fin => {
                    self.partial = Some((opcode, payload));
                    continue;
                }
                _ => (opcode, payload),
            };
            return Ok(Some(match message {
                (OP_TEXT, data) => {
                    Incoming::Text(String::from_utf8(data).map_err(|_| Violation(CLOSE_INVALID))?)
                }
                _ => Incoming::Binary,
            }));
        }
    }

    /// The next whole frame, unmasked and taken out of the buffer:
    /// `(opcode, fin, payload)`.
    fn frame(&mut self) -> Result<Option<(u8, bool, Vec<u8>)>, Violation> {
        let b = &self.buf;
        if b.len() < 2 {
            return Ok(None);
        }
        let (fin, rsv, opcode) = (b[0] & 0x80 != 0, b[0] & 0x70, b[0] & 0x0F);
        let (masked, len7) = (b[1] & 0x80 != 0, b[1] & 0x7F);
        // A client must mask every frame (RFC 6455 §5.1) and, without an
        // extension, leave the reserved bits clear.
        if rsv != 0 || !masked {
            return Err(Violation(CLOSE_PROTOCOL));
        }
        let control = opcode >= OP_CLOSE;
        match opcode {
            OP_CONTINUATION | OP_TEXT | OP_BINARY => {}
            OP_CLOSE | OP_PING | OP_PONG if fin && usize::from(len7) <= MAX_CONTROL => {}
            _ => return Err(Violation(CLOSE_PROTOCOL)),
        }
        let (len, at) = match len7 {
            126 => match b.get(2..4) {
                Some(l) => (u64::from(u16::from_be_bytes([l[0], l[1]])), 4),
                None => return Ok(None),
            },
            127 => match b.get(2..10) {
                Some(l) => (u64::from_be_bytes(l.try_into().unwrap_or_default()), 10),
                None => return Ok(None),
            },
            n => (u64::from(n), 2),
        };
        // Refused from its header: an oversized frame is never buffered.
        let len = match usize::try_from(len) {
            Ok(len) if control || len <= self.max => len,
            _ => return Err(Violation(CLOSE_TOO_BIG)),
        };
        let start = at + 4;
        if b.len() < start + len {
            return Ok(None);
        }
        let mask = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        let mut payload = b[start..start + len].to_vec();
        for (i, byte) in payload.iter_mut().enumerate() {
            *byte ^= mask[i % 4];
        }
        self.buf.drain(..start + len);
        Ok(Some((opcode, fin, payload)))
    }
}

/// What answers a client's close frame of `payload` (RFC 6455 §5.5.1).
fn close_reply(payload: Vec<u8>) -> Result<Incoming, Violation> {
    match payload.len() {
        0 => Ok(Incoming::Close(Vec::new())),
        1 => Err(Violation(CLOSE_PROTOCOL)),
        _ => {
            if std::str::from_utf8(&payload[2..]).is_err() {
                return Err(Violation(CLOSE_INVALID));
            }
            if close_code_allowed(u16::from_be_bytes([payload[0], payload[1]])) {
                Ok(Incoming::Close(payload))
            } else {
                Ok(Incoming::Close(CLOSE_PROTOCOL.to_be_bytes().to_vec()))
            }
        }
    }
}

#[cfg(test)]
#[path = "frame_tests.rs"]
mod tests;
