//! Moving a TCP connection from one executor to another as a file descriptor.
//!
//! glommio streams are bound to the executor that created them, so the accepting executor
//! duplicates the descriptor, drops its stream, and the owner builds a new stream from it.
//! This is only done between requests (nothing is in flight on the old stream), right before
//! the WebSocket handshake response, so no byte can be lost in between.

#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};

use glommio::net::TcpStream;

/// Detaches the connection from this executor.
pub fn detach(stream: TcpStream) -> io::Result<OwnedFd> {
    // SAFETY: `dup` on a descriptor we own; on success we own the new one exclusively.
    let fd = unsafe { libc::dup(stream.as_raw_fd()) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    drop(stream);
    // SAFETY: `fd` is a fresh descriptor returned by `dup` above and owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Adopts a detached connection on this executor.
pub fn attach(fd: OwnedFd) -> TcpStream {
    // SAFETY: the descriptor is a connected TCP socket detached by `detach`, and ownership is
    // transferred into the stream.
    unsafe { TcpStream::from_raw_fd(fd.into_raw_fd()) }
}
