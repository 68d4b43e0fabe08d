//! The HTTP/1.1 front door: request parsing, responses, routing and the per-connection loop.
//!
//! - [`request`]: heads and bodies from byte slices.
//! - [`response`]: responses and CORS headers.
//! - [`conn`]: the keep-alive loop of one TCP connection and the routes.

pub mod conn;
pub mod request;
pub mod response;

pub use request::{BodyFraming, RequestHead};
pub use response::Response;

/// The first value of `name` in a query string, percent-decoded (`+` is a space).
pub fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k).as_deref() == Some(name)).then(|| percent_decode(v))?
    })
}

/// Decodes `%XX` escapes and `+`. `None` when the result is not UTF-8 or an escape is broken.
pub fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = b.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params() {
        let q = "EIO=4&transport=polling&name=Ann+Lee&x=%C3%A9&empty";
        assert_eq!(query_param(q, "EIO").as_deref(), Some("4"));
        assert_eq!(query_param(q, "name").as_deref(), Some("Ann Lee"));
        assert_eq!(query_param(q, "x").as_deref(), Some("é"));
        assert_eq!(query_param(q, "empty").as_deref(), Some(""));
        assert_eq!(query_param(q, "nope"), None);
        assert_eq!(query_param("a=%zz", "a"), None);
    }
}
