//! RFC 6455 framing, server side, on byte slices: no sockets, no clock (like mini-redis'
//! `Frame::check`). [`WsDecoder`] turns bytes read from a client into messages; [`encode_frame`]
//! writes the unmasked frames a server sends.
//!
//! Why our own and not tungstenite's: the gateway reads every connection into one
//! executor-wide scratch buffer and parses complete frames in place, so an idle connection owns
//! no read buffer at all; only a frame split across reads is copied (into [`WsDecoder`]'s
//! carry-over, freed again when it is large). Writes encode many queued frames into one buffer
//! and one `send`.

pub use crate::error::WsError;

/// Largest header a server frame needs: 2 bytes + 8 bytes of extended length.
pub const MAX_HEADER: usize = 10;

/// Carry-over buffers above this size are freed once empty, so one large message does not pin
/// memory on an otherwise idle connection.
const KEEP_CAPACITY: usize = 4096;

/// Frame opcodes (RFC 6455 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    /// Continuation of a fragmented message.
    Continuation = 0x0,
    /// UTF-8 text.
    Text = 0x1,
    /// Binary data.
    Binary = 0x2,
    /// Close (control).
    Close = 0x8,
    /// Ping (control).
    Ping = 0x9,
    /// Pong (control).
    Pong = 0xA,
}

impl Opcode {
    fn from_bits(b: u8) -> Option<Self> {
        Some(match b {
            0x0 => Self::Continuation,
            0x1 => Self::Text,
            0x2 => Self::Binary,
            0x8 => Self::Close,
            0x9 => Self::Ping,
            0xA => Self::Pong,
            _ => return None,
        })
    }

    fn is_control(self) -> bool {
        (self as u8) & 0x8 != 0
    }
}

/// One complete message or control frame, borrowed from the buffer it was parsed in.
#[derive(Debug, PartialEq, Eq)]
pub enum WsEvent<'a> {
    /// A text message (already checked to be UTF-8).
    Text(&'a str),
    /// A binary message.
    Binary(&'a [u8]),
    /// A ping; the server answers with a pong carrying the same payload.
    Ping(&'a [u8]),
    /// A pong (ignored: Engine.IO has its own heartbeat).
    Pong,
    /// The client closes, with its status code if it sent one.
    Close(Option<u16>),
}

/// The head of one frame, as found by [`check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHead {
    /// Last fragment of its message.
    pub fin: bool,
    /// Opcode.
    pub opcode: Opcode,
    /// Client masking key.
    pub mask: [u8; 4],
    /// Bytes of header (2–14).
    pub header_len: usize,
    /// Bytes of payload.
    pub payload_len: usize,
}

impl FrameHead {
    /// Header plus payload.
    pub fn total_len(&self) -> usize {
        self.header_len + self.payload_len
    }
}

/// Whether `buf` starts with a complete client frame: `Ok(None)` means "read more".
/// Refuses a frame as soon as its header shows it is invalid or larger than `max_payload`, so
/// a peer cannot make us buffer a frame we would refuse anyway.
pub fn check(buf: &[u8], max_payload: usize) -> Result<Option<FrameHead>, WsError> {
    let [b0, b1, ..] = *buf else {
        return Ok(None);
    };
    if b0 & 0x70 != 0 {
        return Err(WsError::Protocol); // RSV bits: no extension was negotiated
    }
    let fin = b0 & 0x80 != 0;
    let opcode = Opcode::from_bits(b0 & 0x0F).ok_or(WsError::Protocol)?;
    if b1 & 0x80 == 0 {
        return Err(WsError::Protocol); // clients must mask (§5.1)
    }
    let (len, len_bytes) = match b1 & 0x7F {
        126 => match buf.get(2..4) {
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 2),
            None => return Ok(None),
        },
        127 => match buf.get(2..10) {
            Some(b) => {
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                let n = u64::from_be_bytes(a);
                if n >> 63 != 0 {
                    return Err(WsError::Protocol);
                }
                (n, 8)
            }
            None => return Ok(None),
        },
        n => (u64::from(n), 0),
    };
    if opcode.is_control() && (!fin || len > 125) {
        return Err(WsError::Protocol);
    }
    let payload_len = usize::try_from(len).map_err(|_| WsError::TooBig)?;
    if payload_len > max_payload {
        return Err(WsError::TooBig);
    }
    let header_len = 2 + len_bytes + 4;
    let Some(m) = buf.get(header_len - 4..header_len) else {
        return Ok(None);
    };
    let mask = [m[0], m[1], m[2], m[3]];
    if buf.len() - header_len < payload_len {
        return Ok(None);
    }
    Ok(Some(FrameHead {
        fin,
        opcode,
        mask,
        header_len,
        payload_len,
    }))
}

/// XORs `data` with the masking key (applying it twice restores the original).
pub fn unmask(data: &mut [u8], mask: [u8; 4]) {
    let word = u32::from_ne_bytes(mask);
    let mut chunks = data.chunks_exact_mut(4);
    for c in &mut chunks {
        let v = u32::from_ne_bytes([c[0], c[1], c[2], c[3]]) ^ word;
        c.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i];
    }
}

/// Appends one unmasked, unfragmented server frame.
pub fn encode_frame(out: &mut Vec<u8>, opcode: Opcode, payload: &[u8]) {
    out.push(0x80 | opcode as u8);
    let n = payload.len();
    if n < 126 {
        out.push(n as u8);
    } else if let Ok(n16) = u16::try_from(n) {
        out.push(126);
        out.extend_from_slice(&n16.to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(n as u64).to_be_bytes());
    }
    out.extend_from_slice(payload);
}

/// Appends a close frame with a status code.
pub fn encode_close(out: &mut Vec<u8>, code: u16) {
    encode_frame(out, Opcode::Close, &code.to_be_bytes());
}

/// Whether to keep reading after a message was handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Go on with the next frame.
    Continue,
    /// Stop parsing; the rest of the input is dropped (the connection is closing).
    Stop,
}

/// Per-connection decoder state: only what must survive between reads.
///
/// Lives on: the executor that serves the connection.
#[derive(Debug)]
pub struct WsDecoder {
    max_payload: usize,
    /// Bytes of a frame that arrived incomplete (empty almost always).
    carry: Vec<u8>,
    /// The payload so far of a fragmented message, and its opcode.
    message: Vec<u8>,
    message_op: Option<Opcode>,
}

impl WsDecoder {
    /// A decoder refusing messages larger than `max_payload`.
    pub fn new(max_payload: usize) -> Self {
        Self {
            max_payload,
            carry: Vec::new(),
            message: Vec::new(),
            message_op: None,
        }
    }

    /// Parses `input` (freshly read; unmasked in place), calling `on` for every complete
    /// message or control frame. Incomplete trailing bytes are kept for the next call.
    pub fn feed(
        &mut self,
        input: &mut [u8],
        mut on: impl FnMut(WsEvent<'_>) -> Flow,
    ) -> Result<Flow, WsError> {
        if self.carry.is_empty() {
            let (used, flow) = self.parse(input, &mut on)?;
            if flow == Flow::Continue {
                self.carry.extend_from_slice(&input[used..]);
            }
            return Ok(flow);
        }
        // A frame is split across reads: finish it in the carry-over buffer.
        let mut buf = std::mem::take(&mut self.carry);
        buf.extend_from_slice(input);
        let (used, flow) = self.parse(&mut buf, &mut on)?;
        if flow == Flow::Continue {
            buf.drain(..used);
            if buf.is_empty() && buf.capacity() > KEEP_CAPACITY {
                buf = Vec::new();
            }
            self.carry = buf;
        }
        Ok(flow)
    }

    fn parse(
        &mut self,
        buf: &mut [u8],
        on: &mut impl FnMut(WsEvent<'_>) -> Flow,
    ) -> Result<(usize, Flow), WsError> {
        let mut pos = 0;
        while let Some(head) = check(&buf[pos..], self.max_payload)? {
            let start = pos + head.header_len;
            let end = start + head.payload_len;
            pos = end;
            let payload = &mut buf[start..end];
            unmask(payload, head.mask);
            if self.frame(head, payload, on)? == Flow::Stop {
                return Ok((pos, Flow::Stop));
            }
        }
        Ok((pos, Flow::Continue))
    }

    fn frame(
        &mut self,
        head: FrameHead,
        payload: &[u8],
        on: &mut impl FnMut(WsEvent<'_>) -> Flow,
    ) -> Result<Flow, WsError> {
        match head.opcode {
            Opcode::Ping => Ok(on(WsEvent::Ping(payload))),
            Opcode::Pong => Ok(on(WsEvent::Pong)),
            Opcode::Close => {
                let code = match payload {
                    [] => None,
                    [_] => return Err(WsError::Protocol),
                    [a, b, reason @ ..] => {
                        std::str::from_utf8(reason).map_err(|_| WsError::InvalidUtf8)?;
                        Some(u16::from_be_bytes([*a, *b]))
                    }
                };
                Ok(on(WsEvent::Close(code)))
            }
            Opcode::Text | Opcode::Binary if self.message_op.is_some() => Err(WsError::Protocol),
            Opcode::Text | Opcode::Binary if head.fin => deliver(head.opcode, payload, on),
            Opcode::Text | Opcode::Binary => {
                self.message_op = Some(head.opcode);
                self.message.extend_from_slice(payload);
                Ok(Flow::Continue)
            }
            Opcode::Continuation => {
                let Some(op) = self.message_op else {
                    return Err(WsError::Protocol);
                };
                if self.message.len() + payload.len() > self.max_payload {
                    return Err(WsError::TooBig);
                }
                self.message.extend_from_slice(payload);
                if !head.fin {
                    return Ok(Flow::Continue);
                }
                self.message_op = None;
                let message = std::mem::take(&mut self.message);
                let flow = deliver(op, &message, on);
                if message.capacity() <= KEEP_CAPACITY {
                    self.message = message;
                    self.message.clear();
                }
                flow
            }
        }
    }
}

fn deliver(
    op: Opcode,
    payload: &[u8],
    on: &mut impl FnMut(WsEvent<'_>) -> Flow,
) -> Result<Flow, WsError> {
    Ok(match op {
        Opcode::Text => on(WsEvent::Text(
            std::str::from_utf8(payload).map_err(|_| WsError::InvalidUtf8)?,
        )),
        _ => on(WsEvent::Binary(payload)),
    })
}

#[cfg(test)]
#[path = "ws_frame_tests.rs"]
mod tests;
