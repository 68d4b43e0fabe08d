//! Whether a client already closed its side of a connection, without reading from it.
//!
//! A long-polling GET can be read by an executor after its client gave up on it (a busy
//! executor reads late); the client's next request may already have reached the session's
//! owner from another executor. Peeking tells the two cases apart before the GET is forwarded
//! (`conn.rs`). One `recv(MSG_PEEK | MSG_DONTWAIT)` system call: glommio's own `peek` goes
//! through io_uring and waits for data, which is the opposite of what is needed here.
#![allow(unsafe_code)]

use std::os::fd::AsRawFd;

/// True when an orderly shutdown is the next thing to read on `socket` (no bytes before it);
/// false when bytes are waiting, nothing is, or the call fails.
pub fn peer_closed(socket: &impl AsRawFd) -> bool {
    let mut byte = 0u8;
    // SAFETY: `socket` is an open socket for the duration of the call, and the buffer is one
    // byte that outlives it; nothing is consumed (MSG_PEEK) and the call does not block.
    let n = unsafe {
        libc::recv(
            socket.as_raw_fd(),
            (&mut byte as *mut u8).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    n == 0
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::net::{Shutdown, TcpListener, TcpStream};

    use super::peer_closed;

    #[test]
    fn tells_a_closed_peer_from_an_open_one_or_pending_bytes() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        assert!(!peer_closed(&server), "open, nothing sent");
        client.write_all(b"x").unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        // Bytes come before the end: not "closed" until they are read.
        while !matches!(server.peek(&mut [0u8; 1]), Ok(1)) {}
        assert!(!peer_closed(&server), "a byte waits before the end");
        let (server2, client2) = {
            let c = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            (listener.accept().unwrap().0, c)
        };
        client2.shutdown(Shutdown::Write).unwrap();
        while server2.peek(&mut [0u8; 1]).unwrap() != 0 {}
        assert!(peer_closed(&server2), "the client shut down");
    }
}
