//! Unit tests for the Socket.IO packet codec; expected strings come from the
//! reference JS `socket.io-parser` encoder/decoder.

use super::*;

fn enc(f: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut out = Vec::new();
    f(&mut out);
    String::from_utf8(out).expect("encoder output is UTF-8")
}

fn ok(input: &str) -> Packet<'_> {
    decode(input).unwrap_or_else(|e| panic!("{input:?} should decode, got {e}"))
}

fn err(input: &str) -> PacketError {
    match decode(input) {
        Ok(p) => panic!("{input:?} should fail, got {p:?}"),
        Err(e) => e,
    }
}

fn raw_texts(args: &[&RawValue]) -> Vec<String> {
    args.iter().map(|a| a.get().to_owned()).collect()
}

/// Destructures an event payload into (name, raw args).
fn event(p: &Packet<'_>) -> (String, Vec<String>) {
    match &p.payload {
        Payload::Event { name, args } => (name.to_string(), raw_texts(args)),
        other => panic!("expected event payload, got {other:?}"),
    }
}

fn ack_args(p: &Packet<'_>) -> Vec<String> {
    match &p.payload {
        Payload::Ack { args } => raw_texts(args),
        other => panic!("expected ack payload, got {other:?}"),
    }
}

fn raw<'a>(p: &Packet<'a>) -> &'a str {
    match &p.payload {
        Payload::Raw(r) => r.get(),
        other => panic!("expected raw payload, got {other:?}"),
    }
}

// ---- CONNECT ----------------------------------------------------------------

#[test]
fn connect_encodes_and_round_trips() {
    let s = enc(|o| encode_connect(o, "/", "abc"));
    assert_eq!(s, r#"0{"sid":"abc"}"#);
    let p = ok(&s);
    assert_eq!(
        (p.kind, p.nsp, p.id, p.attachments),
        (PacketKind::Connect, "/", None, 0)
    );
    assert_eq!(raw(&p), r#"{"sid":"abc"}"#);

    let s = enc(|o| encode_connect(o, "/custom", "abc"));
    assert_eq!(s, r#"0/custom,{"sid":"abc"}"#);
    let p = ok(&s);
    assert_eq!(p.nsp, "/custom");
    assert_eq!(raw(&p), r#"{"sid":"abc"}"#);
}

#[test]
fn connect_without_auth() {
    let p = ok("0");
    assert_eq!((p.kind, p.nsp), (PacketKind::Connect, "/"));
    assert!(matches!(p.payload, Payload::None));

    // No trailing comma: namespace runs to the end of the string.
    let p = ok("0/custom");
    assert_eq!(p.nsp, "/custom");
    assert!(matches!(p.payload, Payload::None));

    let p = ok("0/custom,");
    assert_eq!(p.nsp, "/custom");
    assert!(matches!(p.payload, Payload::None));
}

#[test]
fn connect_with_auth_keeps_raw_text() {
    let p = ok(r#"0/custom,{"token":"123"}"#);
    assert_eq!((p.kind, p.nsp), (PacketKind::Connect, "/custom"));
    assert_eq!(raw(&p), r#"{"token":"123"}"#);

    let p = ok(r#"0{"b":1,"a":2.50}"#);
    assert_eq!(raw(&p), r#"{"b":1,"a":2.50}"#);
}

#[test]
fn connect_rejects_non_object() {
    assert_eq!(err("0[]"), PacketError::InvalidPayload(PacketKind::Connect));
    assert_eq!(
        err(r#"0"str""#),
        PacketError::InvalidPayload(PacketKind::Connect)
    );
    assert_eq!(
        err("0null"),
        PacketError::InvalidPayload(PacketKind::Connect)
    );
    assert!(matches!(err("0{"), PacketError::InvalidJson { .. }));
}

#[test]
fn encode_appends_without_clearing() {
    let mut out = b"4".to_vec();
    encode_connect(&mut out, "/", "abc");
    encode_disconnect(&mut out, "/a");
    assert_eq!(out, br#"40{"sid":"abc"}1/a,"#);
}

#[test]
fn sid_and_message_are_json_escaped() {
    assert_eq!(
        enc(|o| encode_connect(o, "/", "a\"b\\c")),
        r#"0{"sid":"a\"b\\c"}"#
    );
    assert_eq!(
        enc(|o| encode_connect_error(o, "/", "bad\n\u{1}é", None)),
        "4{\"message\":\"bad\\n\\u0001é\"}"
    );
}

// ---- DISCONNECT ---------------------------------------------------------------

#[test]
fn disconnect_round_trips() {
    assert_eq!(enc(|o| encode_disconnect(o, "/")), "1");
    assert_eq!(enc(|o| encode_disconnect(o, "/admin")), "1/admin,");
    let p = ok("1");
    assert_eq!((p.kind, p.nsp), (PacketKind::Disconnect, "/"));
    assert!(matches!(p.payload, Payload::None));
    let p = ok("1/admin,");
    assert_eq!(p.nsp, "/admin");
    assert_eq!(ok("1/admin").nsp, "/admin");
}

#[test]
fn disconnect_rejects_payload() {
    assert_eq!(
        err("1{}"),
        PacketError::UnexpectedPayload(PacketKind::Disconnect)
    );
    assert_eq!(
        err("1/a,[]"),
        PacketError::UnexpectedPayload(PacketKind::Disconnect)
    );
}

// ---- EVENT ------------------------------------------------------------------

#[test]
fn event_encodes_byte_exact() {
    let args = ["1", r#""2""#, r#"{"3":[true]}"#];
    let s = enc(|o| encode_event(o, "/", None, 0, "message-back", &args));
    assert_eq!(s, r#"2["message-back",1,"2",{"3":[true]}]"#);
    let s = enc(|o| encode_event(o, "/", Some(12), 0, "ev", &args[..0]));
    assert_eq!(s, r#"212["ev"]"#);
    let s = enc(|o| encode_event(o, "/chat", Some(7), 0, "ev", &[String::from("null")]));
    assert_eq!(s, r#"2/chat,7["ev",null]"#);
    let s = enc(|o| encode_event(o, "/", None, 0, "q\"", &args[..1]));
    assert_eq!(s, r#"2["q\"",1]"#);
}

#[test]
fn event_round_trips() {
    for nsp in ["/", "/chat"] {
        for id in [None, Some(0), Some(456), Some(u64::MAX)] {
            let args = ["1", r#""2""#, r#"{"3":[true]}"#];
            let s = enc(|o| encode_event(o, nsp, id, 0, "message-back", &args));
            let p = ok(&s);
            assert_eq!(
                (p.kind, p.nsp, p.id, p.attachments),
                (PacketKind::Event, nsp, id, 0)
            );
            let (name, got) = event(&p);
            assert_eq!(name, "message-back");
            assert_eq!(got, args);
            // Re-encoding what we decoded reproduces the input exactly.
            let again = enc(|o| encode_event(o, p.nsp, p.id, p.attachments, &name, &got));
            assert_eq!(again, s);
        }
    }
}

#[test]
fn event_args_keep_original_text() {
    let input = r#"2/x,9["ev",{"b":1,"a":2.50},[1e3, 10],"\u00e9",12345678901234567890]"#;
    let p = ok(input);
    let (name, args) = event(&p);
    assert_eq!(name, "ev");
    assert_eq!(
        args,
        [
            r#"{"b":1,"a":2.50}"#,
            "[1e3, 10]",
            r#""\u00e9""#,
            "12345678901234567890"
        ]
    );
    assert!(matches!(
        p.payload,
        Payload::Event {
            name: Cow::Borrowed(_),
            ..
        }
    ));
}

#[test]
fn event_tolerates_json_whitespace() {
    let p = ok("2 [ \"a\" , 1 ] ");
    let (name, args) = event(&p);
    assert_eq!(name, "a");
    assert_eq!(args, ["1"]);
}

#[test]
fn event_head_writer_streams_args() {
    let mut out = Vec::new();
    write_event_head(&mut out, "/x", Some(12), 0, "ev");
    assert_eq!(out, br#"2/x,12["ev""#);
    out.push(b',');
    serde_json::to_writer(&mut out, &vec![1, 2]).expect("vec serializes");
    out.push(b']');
    assert_eq!(out, br#"2/x,12["ev",[1,2]]"#);
    let mut out = Vec::new();
    write_event_head(&mut out, "/", None, 2, "ev");
    assert_eq!(out, br#"52-["ev""#);
}

#[test]
fn event_name_with_escapes_is_unescaped() {
    let p = ok(r#"2["a\"b\u0041"]"#);
    assert!(matches!(&p.payload, Payload::Event { name: Cow::Owned(n), .. } if n == "a\"bA"));
    // Escaped reserved names are still reserved.
    assert_eq!(
        err(r#"2["\u0063onnect"]"#),
        PacketError::ReservedEventName("connect")
    );
}

#[test]
fn numeric_event_names() {
    let p = ok(r#"2[1,"x"]"#);
    let (name, args) = event(&p);
    assert_eq!((name.as_str(), args), ("1", vec![r#""x""#.to_owned()]));
    assert!(matches!(
        p.payload,
        Payload::Event {
            name: Cow::Borrowed("1"),
            ..
        }
    ));
    let name_of = |s: &str| event(&ok(s)).0;
    assert_eq!(name_of("2[-42]"), "-42");
    assert_eq!(name_of("2[1.5]"), "1.5");
    assert_eq!(name_of("2[1.50]"), "1.5");
    assert_eq!(name_of("2[1e3]"), "1000");
    assert_eq!(name_of("2[-0]"), "0");
    assert_eq!(name_of("2[1e21]"), "1e+21");
    assert_eq!(name_of("2[1.5e-7]"), "1.5e-7");
    assert_eq!(name_of("2[1e400]"), "Infinity");
    assert_eq!(name_of("2[12345678901234567890]"), "12345678901234567000");
}

#[test]
fn event_rejects_bad_payloads() {
    assert_eq!(err("2"), PacketError::MissingPayload(PacketKind::Event));
    assert_eq!(
        err("2/chat,"),
        PacketError::MissingPayload(PacketKind::Event)
    );
    assert_eq!(err("2[]"), PacketError::MissingEventName);
    assert_eq!(err("2{}"), PacketError::InvalidPayload(PacketKind::Event));
    assert_eq!(
        err(r#"2"ev""#),
        PacketError::InvalidPayload(PacketKind::Event)
    );
    assert_eq!(err("2[true]"), PacketError::InvalidEventName);
    assert_eq!(err("2[null]"), PacketError::InvalidEventName);
    assert_eq!(err("2[{}]"), PacketError::InvalidEventName);
    assert_eq!(err("2[[\"a\"]]"), PacketError::InvalidEventName);
    assert!(matches!(err(r#"2["a""#), PacketError::InvalidJson { .. }));
    assert!(matches!(err(r#"2["a"]x"#), PacketError::InvalidJson { .. }));
    assert!(matches!(err("2{"), PacketError::InvalidJson { .. }));
    assert!(matches!(err("2[\"a\",]"), PacketError::InvalidJson { .. }));
    assert!(matches!(err("2['a']"), PacketError::InvalidJson { .. }));
    // Attachment counts are only meaningful on binary packets.
    assert!(matches!(
        err(r#"21-["a"]"#),
        PacketError::InvalidJson { .. }
    ));
}

#[test]
fn reserved_event_names() {
    for name in RESERVED_EVENTS {
        assert!(is_reserved_event(name));
        let input = format!("2[\"{name}\",1]");
        assert_eq!(err(&input), PacketError::ReservedEventName(name));
        let input = format!("51-[\"{name}\"]");
        assert_eq!(err(&input), PacketError::ReservedEventName(name));
    }
    assert_eq!(
        err(r#"2["connect"]"#),
        PacketError::ReservedEventName("connect")
    );
    assert!(!is_reserved_event("Connect"));
    assert!(!is_reserved_event("message"));
    assert_eq!(event(&ok(r#"2["connection"]"#)).0, "connection");
}

// ---- BINARY_EVENT -------------------------------------------------------------

#[test]
fn binary_event_round_trips() {
    let args = [
        r#"{"_placeholder":true,"num":0}"#,
        r#"{"_placeholder":true,"num":1}"#,
    ];
    let s = enc(|o| encode_event(o, "/", None, 2, "message-back", &args));
    assert_eq!(
        s,
        r#"52-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#
    );
    let p = ok(&s);
    assert_eq!(
        (p.kind, p.nsp, p.id, p.attachments),
        (PacketKind::BinaryEvent, "/", None, 2)
    );
    assert_eq!(
        event(&p),
        ("message-back".to_owned(), args.map(String::from).to_vec())
    );

    let s = enc(|o| encode_event(o, "/bin", Some(3), 1, "up", &args[..1]));
    assert_eq!(s, r#"51-/bin,3["up",{"_placeholder":true,"num":0}]"#);
    let p = ok(&s);
    assert_eq!(
        (p.kind, p.nsp, p.id, p.attachments),
        (PacketKind::BinaryEvent, "/bin", Some(3), 1)
    );

    // JS encodes a BINARY_EVENT with 0 attachments as "50-"; accept it.
    assert_eq!(ok(r#"50-["a"]"#).attachments, 0);
    assert_eq!(ok(r#"510-["a"]"#).attachments, MAX_ATTACHMENTS);
}

#[test]
fn binary_attachment_errors() {
    assert_eq!(err(r#"5["a"]"#), PacketError::MissingAttachments);
    assert_eq!(err(r#"5-["a"]"#), PacketError::MissingAttachments);
    assert_eq!(err(r#"5x-["a"]"#), PacketError::MissingAttachments);
    assert_eq!(err("5"), PacketError::MissingAttachments);
    assert_eq!(err(r#"52["a"]"#), PacketError::MissingAttachmentsDelimiter);
    assert_eq!(err("52"), PacketError::MissingAttachmentsDelimiter);
    assert_eq!(err(r#"511-["a"]"#), PacketError::TooManyAttachments);
    assert_eq!(
        err(r#"599999999999999999999999-["a"]"#),
        PacketError::TooManyAttachments
    );
    assert_eq!(err(r#"6[]"#), PacketError::MissingAttachments);
    assert_eq!(err(r#"611-1[]"#), PacketError::TooManyAttachments);
    assert_eq!(
        err("51-"),
        PacketError::MissingPayload(PacketKind::BinaryEvent)
    );
}

// ---- ACK / BINARY_ACK -----------------------------------------------------------

#[test]
fn ack_encodes_and_round_trips() {
    let args = ["1", r#""2""#, r#"{"3":[false]}"#];
    let s = enc(|o| encode_ack(o, "/", 456, 0, &args));
    assert_eq!(s, r#"3456[1,"2",{"3":[false]}]"#);
    let p = ok(&s);
    assert_eq!(
        (p.kind, p.nsp, p.id, p.attachments),
        (PacketKind::Ack, "/", Some(456), 0)
    );
    assert_eq!(ack_args(&p), args);

    let s = enc(|o| encode_ack::<&str>(o, "/chat", 0, 0, &[]));
    assert_eq!(s, "3/chat,0[]");
    let p = ok(&s);
    assert_eq!((p.nsp, p.id), ("/chat", Some(0)));
    assert!(ack_args(&p).is_empty());

    let mut out = Vec::new();
    write_ack_head(&mut out, "/x", 5, 0);
    assert_eq!(out, b"3/x,5[");
}

#[test]
fn binary_ack_round_trips() {
    let args = [r#"{"_placeholder":true,"num":0}"#];
    let s = enc(|o| encode_ack(o, "/", 7, 1, &args));
    assert_eq!(s, r#"61-7[{"_placeholder":true,"num":0}]"#);
    let p = ok(&s);
    assert_eq!(
        (p.kind, p.id, p.attachments),
        (PacketKind::BinaryAck, Some(7), 1)
    );
    assert_eq!(ack_args(&p), args);

    let s = enc(|o| encode_ack(o, "/n", 8, 3, &args));
    assert_eq!(s, r#"63-/n,8[{"_placeholder":true,"num":0}]"#);
    let p = ok(&s);
    assert_eq!((p.nsp, p.id, p.attachments), ("/n", Some(8), 3));
}

#[test]
fn ack_rejects_bad_payloads() {
    assert_eq!(err("3[]"), PacketError::MissingAckId(PacketKind::Ack));
    assert_eq!(err("3/chat,[]"), PacketError::MissingAckId(PacketKind::Ack));
    assert_eq!(
        err("61-[]"),
        PacketError::MissingAckId(PacketKind::BinaryAck)
    );
    assert_eq!(err("31"), PacketError::MissingPayload(PacketKind::Ack));
    assert!(matches!(err("31["), PacketError::InvalidJson { .. }));
    assert!(matches!(
        err("3["),
        PacketError::MissingAckId(_) | PacketError::InvalidJson { .. }
    ));
    assert_eq!(err("31{}"), PacketError::InvalidPayload(PacketKind::Ack));
    assert_eq!(err("3{}"), PacketError::MissingAckId(PacketKind::Ack));
    assert_eq!(err("31\"a\""), PacketError::InvalidPayload(PacketKind::Ack));
}

// ---- CONNECT_ERROR --------------------------------------------------------------

#[test]
fn connect_error_encodes_and_round_trips() {
    let s = enc(|o| encode_connect_error(o, "/", "Invalid namespace", None));
    assert_eq!(s, r#"4{"message":"Invalid namespace"}"#);
    let p = ok(&s);
    assert_eq!((p.kind, p.nsp), (PacketKind::ConnectError, "/"));
    assert_eq!(raw(&p), r#"{"message":"Invalid namespace"}"#);

    let data: &RawValue = serde_json::from_str(r#"{"z":1,"a":[2.0]}"#).expect("valid JSON");
    let s = enc(|o| encode_connect_error(o, "/admin", "nope", Some(data)));
    assert_eq!(s, r#"4/admin,{"message":"nope","data":{"z":1,"a":[2.0]}}"#);
    assert_eq!(ok(&s).nsp, "/admin");

    let p = ok(r#"4"plain string""#);
    assert_eq!(raw(&p), r#""plain string""#);
}

#[test]
fn connect_error_rejects_bad_payloads() {
    assert_eq!(
        err("4"),
        PacketError::MissingPayload(PacketKind::ConnectError)
    );
    assert_eq!(
        err("4[]"),
        PacketError::InvalidPayload(PacketKind::ConnectError)
    );
    assert_eq!(
        err("41"),
        PacketError::MissingPayload(PacketKind::ConnectError)
    );
    assert_eq!(
        err("4null"),
        PacketError::InvalidPayload(PacketKind::ConnectError)
    );
}

// ---- framing --------------------------------------------------------------------

#[test]
fn framing_errors() {
    assert_eq!(err(""), PacketError::Empty);
    assert_eq!(err("7"), PacketError::UnknownType('7'));
    assert_eq!(err("9"), PacketError::UnknownType('9'));
    assert_eq!(err(r#"x["a"]"#), PacketError::UnknownType('x'));
    assert_eq!(err("é"), PacketError::UnknownType('é'));
    assert_eq!(err(r#"["a"]"#), PacketError::UnknownType('['));
    assert_eq!(
        err(r#"2999999999999999999999["a"]"#),
        PacketError::AckIdOverflow
    );
    assert_eq!(
        err(r#"2/a,18446744073709551616["a"]"#),
        PacketError::AckIdOverflow
    );
    assert_eq!(ok(r#"218446744073709551615["a"]"#).id, Some(u64::MAX));
}

#[test]
fn namespace_edge_cases() {
    // A namespace may hold any non-comma text, including non-ASCII.
    let p = ok(r#"2/ünï-code,1["a"]"#);
    assert_eq!((p.nsp, p.id), ("/ünï-code", Some(1)));
    // Data without a namespace that starts with a digit is the ack id.
    let p = ok(r#"21["a"]"#);
    assert_eq!((p.nsp, p.id), ("/", Some(1)));
    // An empty namespace is written like the default one.
    assert_eq!(enc(|o| encode_disconnect(o, "")), "1");
}

#[test]
fn errors_have_readable_messages() {
    assert_eq!(
        PacketError::TooManyAttachments.to_string(),
        "too many attachments (max 10)"
    );
    assert_eq!(
        PacketError::MissingAckId(PacketKind::BinaryAck).to_string(),
        "BINARY_ACK packet requires an ack id"
    );
    assert_eq!(
        PacketError::ReservedEventName("connect").to_string(),
        "event name \"connect\" is reserved"
    );
}

#[test]
fn kind_digits_round_trip() {
    for b in b'0'..=b'6' {
        let kind = PacketKind::from_byte(b).expect("valid digit");
        assert_eq!(kind.as_byte(), b);
        assert_eq!(kind.is_binary(), b == b'5' || b == b'6');
    }
    assert_eq!(PacketKind::from_byte(b'7'), None);
}

#[test]
fn write_u64_digits() {
    for n in [0, 7, 10, 99, 100, 4_294_967_296, u64::MAX] {
        let mut out = b"x".to_vec();
        write_u64(&mut out, n);
        assert_eq!(out, format!("x{n}").as_bytes());
    }
}
