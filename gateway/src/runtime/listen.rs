//! Listen addresses: every executor binds every address itself with SO_REUSEPORT, so the
//! kernel spreads connections over executors. Port 0 is resolved once here, so all executors
//! share the port the kernel picked.

use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

use crate::error::GatewayError;

/// Addresses with port 0 replaced by a free port, plus the sockets that keep those ports
/// reserved until the executors have bound them (drop them after).
pub fn resolve(addrs: &[SocketAddr]) -> Result<(Vec<SocketAddr>, Vec<Socket>), GatewayError> {
    let mut out = Vec::with_capacity(addrs.len());
    let mut guards = Vec::new();
    for &addr in addrs {
        if addr.port() != 0 {
            out.push(addr);
            continue;
        }
        let domain = if addr.is_ipv6() {
            Domain::IPV6
        } else {
            Domain::IPV4
        };
        let sock = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
        // Same options as the executors' listeners, so they can join this port. The guard is
        // bound but never listens, so it never receives connections.
        sock.set_reuse_port(true)?;
        sock.set_reuse_address(true)?;
        sock.bind(&addr.into())?;
        let local = sock
            .local_addr()?
            .as_socket()
            .ok_or_else(|| GatewayError::Startup(format!("cannot resolve {addr}")))?;
        out.push(local);
        guards.push(sock);
    }
    Ok((out, guards))
}
