//! The HTTP/1.1 front door: request parsing, responses, routing and the per-connection loop.
//!
//! - [`request`]: heads and bodies from byte slices.
//! - [`response`]: responses and CORS headers.
//! - [`conn`]: the keep-alive loop of one TCP connection and the routes.
//! - [`conn_limit`]: node-wide admission (connection cap, concurrent connections per address).
//! - [`rate_limit`]: requests per second per address (token buckets, per executor).
//! - [`client_ip`]: the address a request is limited by (`X-Forwarded-For` from trusted proxies).
//! - [`cidr`]: address blocks (trusted proxies).
//! - [`accept_backoff`]: back-off and bounded logging when `accept` fails.
//! - [`readiness`]: `/readyz` (draining, executor heartbeats, the application's backends).
//! - [`peer_closed`]: whether a client already closed a connection (a long-polling GET it gave
//!   up on before it was read).

pub mod accept_backoff;
pub mod cidr;
pub mod client_ip;
pub mod conn;
pub mod conn_limit;
pub mod peer_closed;
pub mod rate_limit;
pub mod readiness;
pub mod request;
pub mod response;

pub use request::{BodyFraming, RequestHead};
pub use response::Response;

/// The first value of `name` in a query string, percent-decoded (`+` is a space).
pub fn query_param(query: &str, name: &str) -> Option<String> {
    query_values(query, name).next()
}

/// Every value of `name` in a query string (`status=OPEN&status=QUEUED`), in order,
/// percent-decoded (`+` is a space). Values that do not decode are left out.
pub fn query_params(query: &str, name: &str) -> Vec<String> {
    query_values(query, name).collect()
}

fn query_values<'a>(query: &'a str, name: &'a str) -> impl Iterator<Item = String> + 'a {
    query.split('&').filter_map(move |pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k).as_deref() == Some(name)).then(|| percent_decode(v))?
    })
}

/// Decodes a form-urlencoded query component: `%XX` escapes and `+` (a space; a literal plus
/// arrives as `%2B`, so replacing before decoding is safe). `None` when the result is not
/// UTF-8 or an escape is broken.
pub fn percent_decode(s: &str) -> Option<String> {
    // The crate passes a malformed escape (`%zz`, a trailing `%`) through verbatim; a client
    // that sends one has a bug, and a value silently different from what it meant is worse
    // than a missing one, so such components are refused as before.
    let escapes_ok = s.split('%').skip(1).all(|rest| {
        rest.as_bytes()
            .get(..2)
            .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit))
    });
    if !escapes_ok {
        return None;
    }
    let s = s.replace('+', " ");
    percent_encoding::percent_decode_str(&s)
        .decode_utf8()
        .ok()
        .map(String::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_query_param() {
        let q = "EIO=4&transport=polling&name=Ann+Lee&x=%C3%A9&empty";
        assert_eq!(query_param(q, "EIO").as_deref(), Some("4"));
        assert_eq!(query_param(q, "name").as_deref(), Some("Ann Lee"));
        assert_eq!(query_param(q, "x").as_deref(), Some("é"));
        assert_eq!(query_param(q, "empty").as_deref(), Some(""));
        assert_eq!(query_param(q, "nope"), None);
        assert_eq!(query_param("a=%zz", "a"), None);
        assert_eq!(query_param("a=1%", "a"), None);
        assert_eq!(query_param("a=%4", "a"), None);
        assert_eq!(query_param("a=%FF", "a"), None);
        assert_eq!(query_param("a=1%2B1%3d2", "a").as_deref(), Some("1+1=2"));
        assert_eq!(query_param("a%5Fb=1&a=2", "a_b").as_deref(), Some("1"));
    }

    #[test]
    fn repeated_query_params() {
        let q = "status=OPEN&x=1&status=IN+PROGRESS&status=%zz&status=Q%C3%A9";
        assert_eq!(query_params(q, "status"), ["OPEN", "IN PROGRESS", "Qé"]);
        assert_eq!(query_params(q, "x"), ["1"]);
        assert!(query_params(q, "nope").is_empty());
        assert!(query_params("", "status").is_empty());
    }
}
