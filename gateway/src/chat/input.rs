//! What the chat accepts from clients beyond well-formed JSON: nesting depth (checked on the
//! bytes, before anything is built from them), identifier and display-name shapes, metadata
//! size. Every refusal is a 400 that says what is wrong without echoing the offending value at
//! length, so nothing a client sends comes back unbounded.

use crate::error::GatewayError;

/// Longest participant id (customer id, agent id, token subject), in characters.
pub const MAX_PARTICIPANT_ID: usize = 128;
/// Longest display name, in characters.
pub const MAX_DISPLAY_NAME: usize = 100;
/// Longest conversation id (server-issued ids are 36-character UUIDs).
pub const MAX_CONVERSATION_ID: usize = 64;

/// A value shortened for an error message.
fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(40).filter(|c| !c.is_control()).collect();
    if s.chars().count() > 40 {
        out.push('…');
    }
    out
}

/// Refuses JSON nested deeper than `max` (arrays and objects), scanning the bytes: strings and
/// their escapes are skipped, so brackets inside them do not count. Cheap enough to run on
/// every payload before it is parsed.
pub fn json_depth(bytes: &[u8], max: usize) -> Result<(), GatewayError> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return Err(GatewayError::BadRequest(format!(
                        "JSON nested deeper than {max} levels"
                    )));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// A conversation id: 1 to 64 of `A-Z a-z 0-9 - _`.
pub fn conversation_id(id: &str) -> Result<(), GatewayError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_CONVERSATION_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(GatewayError::BadRequest(format!(
            "invalid conversation id {:?} (1 to {MAX_CONVERSATION_ID} letters, digits, - or _)",
            clip(id)
        )))
    }
}

/// A participant id: 1 to 128 characters, no whitespace or control characters.
pub fn participant_id(id: &str) -> Result<(), GatewayError> {
    // Characters, as the message says (and as JSON Schema's `maxLength` counts; found by
    // schemathesis): 128 bytes refused ids of 43 three-byte characters.
    let ok = !id.is_empty()
        && id.chars().count() <= MAX_PARTICIPANT_ID
        && !id.chars().any(|c| c.is_control() || c.is_whitespace());
    if ok {
        Ok(())
    } else {
        Err(GatewayError::BadRequest(format!(
            "invalid participant id {:?} (1 to {MAX_PARTICIPANT_ID} characters, no spaces or control characters)",
            clip(id)
        )))
    }
}

/// A display name: at most 100 characters, no control characters.
pub fn display_name(name: &str) -> Result<(), GatewayError> {
    let ok = name.chars().count() <= MAX_DISPLAY_NAME && !name.chars().any(char::is_control);
    if ok {
        Ok(())
    } else {
        Err(GatewayError::BadRequest(format!(
            "invalid display name {:?} (at most {MAX_DISPLAY_NAME} characters, no control characters)",
            clip(name)
        )))
    }
}

/// A close reason: at most 500 characters, no control characters but line breaks.
pub fn close_reason(reason: &str) -> Result<(), GatewayError> {
    let ok = reason.chars().count() <= 500 && !reason.chars().any(|c| c.is_control() && c != '\n');
    if ok {
        Ok(())
    } else {
        Err(GatewayError::BadRequest(
            "invalid close reason (at most 500 characters, no control characters)".into(),
        ))
    }
}

/// A client's free-form object (`metadata`, conversation attributes) as it arrived: at most
/// `max_bytes` of JSON.
pub fn object_size(what: &str, raw_len: usize, max_bytes: usize) -> Result<(), GatewayError> {
    if raw_len <= max_bytes {
        Ok(())
    } else {
        Err(GatewayError::BadRequest(format!(
            "{what} is {raw_len} bytes of JSON; at most {max_bytes}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_containers_outside_strings() {
        assert!(json_depth(br#"{"a":[1,{"b":2}]}"#, 3).is_ok());
        assert!(json_depth(br#"{"a":[1,{"b":2}]}"#, 2).is_err());
        assert!(json_depth(br#"{"a":"[[[[[[[[\"{{{{"}"#, 1).is_ok());
        assert!(json_depth(br#"["\\",[[]]]"#, 2).is_err());
        let deep = "[".repeat(100_000);
        assert!(json_depth(deep.as_bytes(), 16).is_err());
    }

    #[test]
    fn ids_and_names_have_bounded_shapes() {
        assert!(conversation_id("0b0e-4f_x").is_ok());
        for bad in ["", "a/b", "a b", &"x".repeat(65), "é"] {
            assert!(conversation_id(bad).is_err(), "{bad:?}");
        }
        assert!(participant_id("user@example.com").is_ok());
        assert!(participant_id(&"é".repeat(128)).is_ok());
        for bad in ["", "a b", "a\u{0}b", &"x".repeat(129), &"é".repeat(129)] {
            assert!(participant_id(bad).is_err(), "{bad:?}");
        }
        assert!(display_name("Ann Lee — support").is_ok());
        assert!(display_name("").is_ok());
        assert!(display_name("a\u{7}").is_err());
        assert!(display_name(&"é".repeat(101)).is_err());
        // The error never carries the whole value.
        let e = participant_id(&"y".repeat(10_000)).unwrap_err().to_string();
        assert!(e.len() < 200, "{e}");
        assert!(object_size("metadata", 10, 10).is_ok());
        assert!(object_size("metadata", 11, 10).is_err());
    }
}
