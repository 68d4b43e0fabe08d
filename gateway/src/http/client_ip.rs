//! The client address a request is limited by: the TCP peer, or — only when the peer is one of
//! the configured trusted proxies — the last address in `X-Forwarded-For` that is not itself a
//! trusted proxy.
//!
//! Why the *last* untrusted one: every proxy appends the address it received the request from,
//! so entries to the right were written by proxies we trust and the first untrusted one from the
//! right is the address that connected to our outermost proxy. Everything left of it was
//! written by the client and is worth nothing. With no trusted proxies (the default) the
//! header is ignored entirely, so a client cannot pick its own rate-limit bucket.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use super::cidr::Cidr;

/// Whether `ip` is a trusted proxy.
pub fn is_trusted(ip: IpAddr, trusted: &[Cidr]) -> bool {
    trusted.iter().any(|c| c.contains(ip))
}

/// The client address of a request that arrived from `peer` with `headers`.
pub fn client_ip(peer: IpAddr, headers: &http::HeaderMap, trusted: &[Cidr]) -> IpAddr {
    let peer = peer.to_canonical();
    if !is_trusted(peer, trusted) {
        return peer;
    }
    // Several headers are one comma-separated list, in order (RFC 9110 §5.3). Walk it from
    // the right; an entry that does not parse ends the walk at the last address we trust.
    let mut client = peer;
    for value in headers.get_all("x-forwarded-for").iter().rev() {
        let Ok(list) = value.to_str() else {
            return client;
        };
        for entry in list.rsplit(',') {
            let Some(ip) = parse_entry(entry.trim()) else {
                return client;
            };
            client = ip;
            if !is_trusted(ip, trusted) {
                return ip;
            }
        }
    }
    client
}

/// `1.2.3.4`, `2001:db8::1`, or either with a port (`1.2.3.4:5678`, `[2001:db8::1]:5678`).
fn parse_entry(s: &str) -> Option<IpAddr> {
    s.parse::<IpAddr>()
        .ok()
        .or_else(|| s.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .map(|ip| ip.to_canonical())
}

/// The key an address is counted under: IPv4 addresses one by one, IPv6 addresses by their
/// /64 (one subscriber typically holds a whole /64, so counting single IPv6 addresses would
/// give one client 2^64 budgets).
pub fn limit_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let masked = u128::from(v6) & (u128::MAX << 64);
            IpAddr::V6(Ipv6Addr::from(masked))
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn xff(values: &[&str]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_header_is_ignored_from_untrusted_peers() {
        let h = xff(&["1.1.1.1"]);
        assert_eq!(client_ip(ip("9.9.9.9"), &h, &[]), ip("9.9.9.9"));
        let trusted = ["10.0.0.0/8".parse().unwrap()];
        assert_eq!(client_ip(ip("9.9.9.9"), &h, &trusted), ip("9.9.9.9"));
    }

    #[test]
    fn the_last_untrusted_address_from_a_trusted_peer() {
        let trusted: Vec<Cidr> = vec!["10.0.0.0/8".parse().unwrap()];
        let peer = ip("10.0.0.1");
        // The client forged the first entry; our proxies appended 2.2.2.2 and 10.0.0.7.
        let h = xff(&["6.6.6.6, 2.2.2.2", "10.0.0.7"]);
        assert_eq!(client_ip(peer, &h, &trusted), ip("2.2.2.2"));
        assert_eq!(
            client_ip(peer, &xff(&["3.3.3.3:443"]), &trusted),
            ip("3.3.3.3")
        );
        assert_eq!(
            client_ip(peer, &xff(&["[2001:db8::1]:443"]), &trusted),
            ip("2001:db8::1")
        );
        // No header, only trusted hops, or garbage: the last trusted address.
        assert_eq!(client_ip(peer, &xff(&[]), &trusted), peer);
        assert_eq!(
            client_ip(peer, &xff(&["10.0.0.9"]), &trusted),
            ip("10.0.0.9")
        );
        assert_eq!(
            client_ip(peer, &xff(&["1.1.1.1, garbage, 10.0.0.3"]), &trusted),
            ip("10.0.0.3")
        );
        // A dual-stack listener reports IPv4 peers as mapped IPv6 addresses.
        assert_eq!(
            client_ip(ip("::ffff:10.0.0.1"), &xff(&["4.4.4.4"]), &trusted),
            ip("4.4.4.4")
        );
    }

    #[test]
    fn ipv6_addresses_are_limited_by_their_64() {
        assert_eq!(limit_key(ip("2001:db8:1:2:3:4:5:6")), ip("2001:db8:1:2::"));
        assert_eq!(limit_key(ip("::ffff:1.2.3.4")), ip("1.2.3.4"));
        assert_eq!(limit_key(ip("1.2.3.4")), ip("1.2.3.4"));
    }
}
