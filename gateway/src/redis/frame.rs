//! RESP3 reply framing, sans-IO: bytes read from the server go in, complete frames come out.
//! No socket, no clock; the connection's reader task feeds it and the tests feed it byte by
//! byte.
//!
//! Two libraries split the work because neither does both: `redis-protocol`'s
//! `decode_range` says whether the buffer starts with a complete frame and how long it is (it
//! does not build values we can use), and `redis::parse_redis_value` builds the
//! `redis::Value` (but cannot say how many bytes it consumed). So the frame's length comes
//! from the first, and the second parses exactly that slice.
//!
//! Why a reader that owns its buffer: replies arrive cut anywhere (a bulk string of several
//! megabytes spans many reads, many small replies share one read). The buffer keeps only the
//! unconsumed tail; it grows with a frame being assembled so a large frame is re-scanned a
//! logarithmic, not linear, number of times, and shrinks back once drained so one large reply
//! does not pin memory.

use ::redis::{PushInfo, Value};
use redis_protocol::resp3::decode::complete::decode_range;

use super::error::Error;

/// Size of a fresh buffer.
const MIN_READ: usize = 16 * 1024;
/// Smallest room offered to a read: below it, the buffer is compacted (or grown).
const MIN_ROOM: usize = MIN_READ / 2;
/// A drained buffer larger than this is shrunk back to `MIN_READ`.
const KEEP_CAPACITY: usize = 256 * 1024;

/// One frame from the server.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// The answer to the oldest request in flight (possibly an error reply,
    /// [`Value::ServerError`]).
    Reply(Value),
    /// Out-of-band data: Pub/Sub messages, subscription confirmations, invalidations. Not the
    /// answer to a request, whatever arrives around it.
    Push(PushInfo),
}

/// Accumulates bytes read from the server and cuts them into complete frames.
///
/// Lives on: whoever owns it (plain data; the connection's reader task).
#[derive(Debug, Default)]
pub struct FrameReader {
    /// `buf[start..end]` are bytes received and not yet consumed; `buf[end..]` is room to
    /// read into (initialised, so it can be handed to `read` as a `&mut [u8]`).
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl FrameReader {
    /// An empty reader; it allocates on the first [`FrameReader::read_buf`].
    pub fn new() -> FrameReader {
        FrameReader::default()
    }

    /// Room to read into, at least 8 KiB and at least as much as is already buffered (so a
    /// frame being assembled doubles the read size each time). Report what was read with
    /// [`FrameReader::filled`].
    pub fn read_buf(&mut self) -> &mut [u8] {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if self.buf.len() > KEEP_CAPACITY {
                self.buf = Vec::new();
            }
        }
        let pending = self.end - self.start;
        let want = pending.max(MIN_ROOM);
        if self.buf.is_empty() {
            self.buf.resize(MIN_READ.max(want), 0);
        }
        if self.buf.len() - self.end < want {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.start = 0;
                self.end = pending;
            }
            if self.buf.len() - self.end < want {
                self.buf.resize(self.end + want, 0);
            }
        }
        &mut self.buf[self.end..]
    }

    /// Records that `n` bytes were read into the slice returned by the last
    /// [`FrameReader::read_buf`].
    pub fn filled(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }

    /// Appends `bytes` (for callers that already hold the bytes, and for tests).
    pub fn extend(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let room = self.read_buf();
            let n = room.len().min(bytes.len());
            room[..n].copy_from_slice(&bytes[..n]);
            self.filled(n);
            bytes = &bytes[n..];
        }
    }

    /// Bytes received and not yet consumed as frames.
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// Bytes of buffer memory held.
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// The bytes of the next complete frame, consumed; `None` until one is complete.
    ///
    /// An error means the stream is not RESP3 (or is out of step): nothing after it can be
    /// framed, so the connection must be dropped.
    pub fn next_raw(&mut self) -> Result<Option<&[u8]>, Error> {
        let pending = &self.buf[self.start..self.end];
        if pending.is_empty() {
            return Ok(None);
        }
        match decode_range(pending) {
            Ok(Some((_, len))) if len > 0 && len <= pending.len() => {
                let at = self.start;
                self.start += len;
                Ok(Some(&self.buf[at..at + len]))
            }
            Ok(Some((_, len))) => Err(Error::Protocol(format!(
                "decoder reported a frame of {len} bytes in {} buffered",
                pending.len()
            ))),
            Ok(None) => Ok(None),
            // RESP2 nulls, which the RESP3 decoder refuses. A RESP3 server sends `_`; accept
            // them at top level anyway (older servers, proxies) rather than drop the link.
            Err(_) if pending.starts_with(b"$-1\r\n") || pending.starts_with(b"*-1\r\n") => {
                let at = self.start;
                self.start += 5;
                Ok(Some(&self.buf[at..at + 5]))
            }
            Err(e) => Err(Error::Protocol(format!("bad RESP3 frame: {e}"))),
        }
    }

    /// The next complete frame, parsed and consumed; `None` until one is complete.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, Error> {
        match self.next_raw()? {
            Some(bytes) => parse_frame(bytes).map(Some),
            None => Ok(None),
        }
    }
}

/// Whether the complete frame `bytes` is a push frame, read from its type byte without
/// parsing (so a reply nobody waits for any more can be skipped unparsed).
pub fn is_push(bytes: &[u8]) -> bool {
    bytes.first() == Some(&b'>')
}

/// Parses one complete frame, exactly as returned by [`FrameReader::next_raw`].
pub fn parse_frame(bytes: &[u8]) -> Result<Frame, Error> {
    match ::redis::parse_redis_value(bytes) {
        Ok(Value::Push { kind, data }) => Ok(Frame::Push(PushInfo { kind, data })),
        Ok(value) => Ok(Frame::Reply(value)),
        Err(e) => Err(Error::Protocol(format!("unparsable frame: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use ::redis::{PushKind, ServerErrorKind};

    use super::*;

    fn frames(reader: &mut FrameReader) -> Vec<Frame> {
        let mut out = Vec::new();
        while let Some(f) = reader.next_frame().expect("valid frames") {
            out.push(f);
        }
        out
    }

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn a_frame_fed_byte_by_byte_appears_only_when_complete() {
        let wire = b"*2\r\n$3\r\nfoo\r\n:42\r\n";
        let mut r = FrameReader::new();
        for (i, b) in wire.iter().enumerate() {
            r.extend(&[*b]);
            let got = r.next_frame().expect("valid prefix");
            if i + 1 < wire.len() {
                assert_eq!(
                    got,
                    None,
                    "complete after {} of {} bytes",
                    i + 1,
                    wire.len()
                );
            } else {
                assert_eq!(
                    got,
                    Some(Frame::Reply(Value::Array(vec![
                        bulk("foo"),
                        Value::Int(42)
                    ])))
                );
            }
        }
        assert_eq!(r.buffered(), 0);
    }

    #[test]
    fn several_replies_in_one_read_come_out_in_order() {
        let mut r = FrameReader::new();
        r.extend(b"+OK\r\n$5\r\nhello\r\n:7\r\n_\r\n#t\r\n,1.5\r\n$-1\r\n*-1\r\n:8");
        assert_eq!(
            frames(&mut r),
            vec![
                Frame::Reply(Value::Okay),
                Frame::Reply(bulk("hello")),
                Frame::Reply(Value::Int(7)),
                Frame::Reply(Value::Nil),
                Frame::Reply(Value::Boolean(true)),
                Frame::Reply(Value::Double(1.5)),
                // RESP2 nulls, tolerated at top level.
                Frame::Reply(Value::Nil),
                Frame::Reply(Value::Nil),
            ]
        );
        // The partial `:8` waits for its CRLF.
        assert_eq!(r.buffered(), 2);
        r.extend(b"\r\n");
        assert_eq!(frames(&mut r), vec![Frame::Reply(Value::Int(8))]);
    }

    #[test]
    fn push_frames_between_replies_are_pushes_not_replies() {
        let mut r = FrameReader::new();
        r.extend(b":1\r\n>3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n:2\r\n");
        r.extend(b">3\r\n$8\r\nsmessage\r\n$1\r\ns\r\n$1\r\nx\r\n");
        assert_eq!(
            frames(&mut r),
            vec![
                Frame::Reply(Value::Int(1)),
                Frame::Push(PushInfo {
                    kind: PushKind::Message,
                    data: vec![bulk("ch"), bulk("hi")],
                }),
                Frame::Reply(Value::Int(2)),
                Frame::Push(PushInfo {
                    kind: PushKind::SMessage,
                    data: vec![bulk("s"), bulk("x")],
                }),
            ]
        );
    }

    #[test]
    fn is_push_reads_the_type_byte() {
        assert!(is_push(b">2\r\n$9\r\nsubscribe\r\n$1\r\na\r\n"));
        assert!(!is_push(b"*1\r\n:1\r\n"));
        assert!(!is_push(b""));
    }

    #[test]
    fn error_replies_are_replies_carrying_the_server_error() {
        let mut r = FrameReader::new();
        r.extend(b"-NOSCRIPT No matching script.\r\n!21\r\nSYNTAX invalid syntax\r\n");
        let got = frames(&mut r);
        assert_eq!(got.len(), 2);
        let Frame::Reply(Value::ServerError(e)) = &got[0] else {
            panic!("{got:?}");
        };
        assert_eq!(e.kind(), Some(ServerErrorKind::NoScript));
        let Frame::Reply(Value::ServerError(e)) = &got[1] else {
            panic!("{got:?}");
        };
        assert_eq!(e.code(), "SYNTAX");
    }

    #[test]
    fn nested_arrays_maps_and_sets_parse_whole() {
        let mut r = FrameReader::new();
        r.extend(b"*2\r\n*2\r\n:1\r\n*1\r\n$1\r\na\r\n%1\r\n+k\r\n~1\r\n:3\r\n");
        assert_eq!(
            frames(&mut r),
            vec![Frame::Reply(Value::Array(vec![
                Value::Array(vec![Value::Int(1), Value::Array(vec![bulk("a")])]),
                Value::Map(vec![(
                    Value::SimpleString("k".to_owned()),
                    Value::Set(vec![Value::Int(3)])
                )]),
            ]))]
        );
    }

    #[test]
    fn a_big_bulk_string_split_across_reads_is_assembled_and_memory_is_released() {
        let payload: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let mut wire = format!("${}\r\n", payload.len()).into_bytes();
        wire.extend_from_slice(&payload);
        wire.extend_from_slice(b"\r\n:5\r\n");
        let mut r = FrameReader::new();
        let mut reads = 0;
        let mut rest = &wire[..];
        let mut got = Vec::new();
        while !rest.is_empty() {
            // Like a socket: fill at most what read_buf offers, and at most 10 KiB at a time.
            let room = r.read_buf();
            let n = room.len().min(rest.len()).min(10_000);
            room[..n].copy_from_slice(&rest[..n]);
            r.filled(n);
            rest = &rest[n..];
            reads += 1;
            got.extend(frames(&mut r));
        }
        assert!(
            reads > 100,
            "the test must actually split the frame ({reads} reads)"
        );
        assert_eq!(
            got,
            vec![
                Frame::Reply(Value::BulkString(payload)),
                Frame::Reply(Value::Int(5))
            ]
        );
        assert!(r.capacity() >= 3_000_000);
        let _ = r.read_buf();
        assert!(r.capacity() <= MIN_READ, "kept {} bytes", r.capacity());
    }

    #[test]
    fn garbage_is_a_protocol_error() {
        let mut r = FrameReader::new();
        r.extend(b"hello\r\n");
        assert!(matches!(r.next_frame(), Err(Error::Protocol(_))));
        let mut r = FrameReader::new();
        r.extend(b"$abc\r\n");
        assert!(matches!(r.next_frame(), Err(Error::Protocol(_))));
    }

    #[test]
    fn consumed_bytes_are_compacted_before_growing() {
        let mut r = FrameReader::new();
        let cap = r.read_buf().len();
        // Fill nearly all of the buffer with complete frames plus a partial one.
        let mut wire = Vec::new();
        while wire.len() < cap - 100 {
            wire.extend_from_slice(b":12345\r\n");
        }
        wire.extend_from_slice(b"$10\r\n01234");
        r.extend(&wire);
        let n = frames(&mut r).len();
        assert!(n > 1000);
        let _ = r.read_buf();
        assert_eq!(r.capacity(), cap, "compacted in place instead of growing");
        r.extend(b"56789\r\n");
        assert_eq!(frames(&mut r), vec![Frame::Reply(bulk("0123456789"))]);
    }
}
