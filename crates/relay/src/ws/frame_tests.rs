//! Tests of `frame`: encoding of the three length forms, parsing of every
//! client frame kind, and the close code of each violation.

use super::*;

/// A client frame: masked with a fixed key, `fin` as given.
fn client(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
    match payload.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n @ 126..=0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

fn read_all(max: usize, bytes: &[u8]) -> Vec<Result<Incoming, Violation>> {
    let mut r = Reader::new(max, Vec::new());
    let mut out = Vec::new();
    // One byte at a time: every frame must wait for its last byte.
    for &b in bytes {
        r.read_buf().push(b);
        loop {
            match r.next() {
                Ok(Some(m)) => out.push(Ok(m)),
                Ok(None) => break,
                Err(v) => {
                    out.push(Err(v));
                    return out;
                }
            }
        }
    }
    out
}

#[test]
fn server_frames_use_the_three_length_forms() {
    for (len, header) in [
        (0, vec![0x81, 0]),
        (125, vec![0x81, 125]),
        (126, vec![0x81, 126, 0, 126]),
        (65_535, vec![0x81, 126, 0xFF, 0xFF]),
        (65_536, vec![0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]),
    ] {
        let text = "x".repeat(len);
        let mut out = vec![];
        put_text(&mut out, &text);
        assert_eq!(header_len(len), header.len(), "{len}");
        assert_eq!(&out[..header.len()], &header[..], "{len}");
        assert_eq!(&out[header.len()..], text.as_bytes(), "{len}");
    }
    let mut out = vec![];
    put_close(&mut out, 4401);
    assert_eq!(out, [0x88, 2, 0x11, 0x31]);
    put_frame(&mut out, OP_PONG, b"hi");
    assert_eq!(&out[4..], [0x8A, 2, b'h', b'i']);
}

#[test]
fn client_frames_of_every_length_form_are_unmasked() {
    for len in [0, 5, 125, 126, 1000, 65_535, 65_536, 70_000] {
        let text: String = (0..len)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        let got = read_all(100_000, &client(OP_TEXT, true, text.as_bytes()));
        assert_eq!(got, vec![Ok(Incoming::Text(text))], "{len}");
    }
}

#[test]
fn control_frames_and_fragments() {
    let mut bytes = client(OP_PING, true, b"p1");
    bytes.extend(client(OP_TEXT, false, b"{\"event\""));
    // A control frame may come between fragments.
    bytes.extend(client(OP_PONG, true, b""));
    bytes.extend(client(OP_CONTINUATION, false, b":\"pi"));
    bytes.extend(client(OP_CONTINUATION, true, b"ng\"}"));
    bytes.extend(client(OP_BINARY, true, &[0, 159, 146, 150]));
    bytes.extend(client(OP_CLOSE, true, &[0x03, 0xE8, b'b', b'y', b'e']));
    assert_eq!(
        read_all(1024, &bytes),
        vec![
            Ok(Incoming::Ping(b"p1".to_vec())),
            Ok(Incoming::Pong),
            Ok(Incoming::Text("{\"event\":\"ping\"}".into())),
            Ok(Incoming::Binary),
            Ok(Incoming::Close(vec![0x03, 0xE8, b'b', b'y', b'e'])),
        ]
    );
}

#[test]
fn close_frames_are_answered_by_the_rules() {
    let close = |payload: &[u8]| read_all(64, &client(OP_CLOSE, true, payload));
    assert_eq!(close(&[]), vec![Ok(Incoming::Close(vec![]))]);
    assert_eq!(
        close(&[0x0F, 0xA0]),
        vec![Ok(Incoming::Close(vec![0x0F, 0xA0]))]
    ); // 4000
    for bad in [0u16, 999, 1004, 1005, 1006, 1014, 1015, 2999, 5000] {
        assert_eq!(
            close(&bad.to_be_bytes()),
            vec![Ok(Incoming::Close(vec![0x03, 0xEA]))], // 1002
            "{bad}"
        );
    }
    assert_eq!(close(&[3]), vec![Err(Violation(CLOSE_PROTOCOL))]);
    assert_eq!(
        close(&[0x03, 0xE8, 0xFF]),
        vec![Err(Violation(CLOSE_INVALID))]
    );
}

#[test]
fn violations_carry_their_close_code() {
    let one = |bytes: Vec<u8>| read_all(16, &bytes).pop();
    let mut unmasked = client(OP_TEXT, true, b"hi");
    unmasked[1] &= 0x7F;
    assert_eq!(one(unmasked), Some(Err(Violation(CLOSE_PROTOCOL))));
    let mut rsv = client(OP_TEXT, true, b"hi");
    rsv[0] |= 0x40;
    assert_eq!(one(rsv), Some(Err(Violation(CLOSE_PROTOCOL))));
    for op in [3, 7, 11, 15] {
        assert_eq!(
            one(client(op, true, b"")),
            Some(Err(Violation(CLOSE_PROTOCOL)))
        );
    }
    assert_eq!(
        one(client(OP_PING, false, b"")),
        Some(Err(Violation(CLOSE_PROTOCOL)))
    );
    assert_eq!(
        one(client(OP_PING, true, &[0; 126])),
        Some(Err(Violation(CLOSE_PROTOCOL)))
    );
    assert_eq!(
        one(client(OP_CONTINUATION, true, b"x")),
        Some(Err(Violation(CLOSE_PROTOCOL)))
    );
    let mut two_starts = client(OP_TEXT, false, b"a");
    two_starts.extend(client(OP_TEXT, true, b"b"));
    assert_eq!(one(two_starts), Some(Err(Violation(CLOSE_PROTOCOL))));
    assert_eq!(
        one(client(OP_TEXT, true, &[0xC3, 0x28])),
        Some(Err(Violation(CLOSE_INVALID)))
    );
}

#[test]
fn oversized_messages_are_refused_from_their_header() {
    // 17 bytes against a limit of 16: refused once the header is read,
    // before the payload (only the first 4 bytes are fed).
    let frame = client(OP_TEXT, true, &[b'x'; 17]);
    let mut r = Reader::new(16, Vec::new());
    r.read_buf().extend_from_slice(&frame[..4]);
    assert_eq!(r.next(), Err(Violation(CLOSE_TOO_BIG)));
    // The 64-bit form, larger than any buffer.
    let mut huge = vec![0x81, 0x80 | 127];
    huge.extend_from_slice(&u64::MAX.to_be_bytes());
    let mut r = Reader::new(16, huge);
    assert_eq!(r.next(), Err(Violation(CLOSE_TOO_BIG)));
    // Fragments count together.
    let mut parts = client(OP_TEXT, false, &[b'x'; 10]);
    parts.extend(client(OP_CONTINUATION, true, &[b'x'; 7]));
    assert_eq!(
        read_all(16, &parts).pop(),
        Some(Err(Violation(CLOSE_TOO_BIG)))
    );
    // Exactly the limit passes.
    assert_eq!(
        read_all(16, &client(OP_TEXT, true, &[b'x'; 16])),
        vec![Ok(Incoming::Text("x".repeat(16)))]
    );
}

#[test]
fn a_large_read_buffer_is_given_back() {
    let mut r = Reader::new(100_000, client(OP_BINARY, true, &[1; 50_000]));
    assert_eq!(r.next(), Ok(Some(Incoming::Binary)));
    assert_eq!(r.next(), Ok(None));
    assert_eq!(r.buf.capacity(), 0);
}
