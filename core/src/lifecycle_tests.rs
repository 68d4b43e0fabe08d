//! Exhaustive tests of the lifecycle: every status × every command.

use super::*;
use crate::participant::ParticipantKind;

const T0: Timestamp = Timestamp(1_000_000);
const T1: Timestamp = Timestamp(2_000_000);

fn customer() -> ChatParticipant {
    ChatParticipant::new("c1", ParticipantKind::Customer, "Bob")
}

fn agent(id: &str) -> ChatParticipant {
    ChatParticipant::new(id, ParticipantKind::Agent, "Ann")
}

fn conversation(status: ConversationStatus) -> ConversationMetadata {
    let mut attrs = Metadata::new();
    attrs.insert("channel".into(), "web".into());
    attrs.insert("customerPhone".into(), "+100".into());
    let mut c = start("conv".into(), customer(), attrs, T0).conversation;
    c.status = status;
    if status == ConversationStatus::Assigned {
        c.agent = Some(agent("a1"));
        c.accepted_at = Some(T0);
    }
    if status == ConversationStatus::Closed {
        c.closed_at = Some(T0);
    }
    c
}

fn send(content: &str) -> Command {
    Command::Send {
        sender: customer(),
        content: content.into(),
        kind: MessageType::Text,
        metadata: Metadata::new(),
        client_message_id: None,
        max_length: 10,
    }
}

fn accept(id: &str) -> Command {
    Command::Accept {
        agent: agent(id),
        max_per_agent: 3,
    }
}

fn all_commands() -> Vec<Command> {
    vec![
        Command::Enqueue { channel: None },
        accept("a1"),
        accept("a2"),
        send("hi"),
        Command::Close {
            by: customer(),
            reason: None,
        },
        Command::QueueTimeout { enqueued_by: T0 },
        Command::Expire(ExpireReason::Inactivity),
        Command::Expire(ExpireReason::MaxDuration),
    ]
}

use ConversationStatus::*;

/// What each (status, command index) must produce: `Ok(new status)` or an error.
fn expected(status: ConversationStatus, cmd: usize) -> Result<ConversationStatus, LifecycleError> {
    match (status, cmd) {
        (Closed, 0..=3) => Err(LifecycleError::Closed),
        (Closed, _) => Ok(Closed),
        (_, 0) => Ok(Queued),
        (Queued, 1 | 2) => Ok(Assigned),
        (Assigned, 1) => Ok(Assigned),
        (Assigned, 2) => Err(LifecycleError::AssignedToOther("a1".into())),
        (Open, 1 | 2) => Err(LifecycleError::NotQueued),
        (s, 3) => Ok(s),
        (_, 4 | 6 | 7) => Ok(Closed),
        (Queued, 5) => Ok(Open),
        (s, 5) => Ok(s),
        _ => unreachable!(),
    }
}

#[test]
fn every_status_times_every_command() {
    for status in [Open, Queued, Assigned, Closed] {
        for (i, cmd) in all_commands().into_iter().enumerate() {
            let got = apply(&conversation(status), cmd.clone(), T1).map(|t| t.conversation.status);
            assert_eq!(got, expected(status, i), "{status:?} × {cmd:?}");
        }
    }
}

#[test]
fn start_is_open_with_an_event() {
    let t = start("x".into(), customer(), Metadata::new(), T0);
    assert_eq!(t.conversation.status, Open);
    assert_eq!(t.conversation.created_at, T0);
    assert_eq!(t.conversation.version, 1);
    assert_eq!(
        t.effects,
        vec![Effect::Publish(ChatEventType::ConversationStarted)]
    );
}

#[test]
fn enqueue_adds_a_queue_entry_and_notifies() {
    let t = apply(
        &conversation(Open),
        Command::Enqueue {
            channel: Some("ios".into()),
        },
        T1,
    )
    .unwrap();
    let Effect::QueueAdd(entry) = &t.effects[0] else {
        panic!("{:?}", t.effects)
    };
    assert_eq!(entry.conversation_id, "conv");
    assert_eq!(entry.enqueued_at, T1);
    assert_eq!(entry.channel.as_deref(), Some("ios"));
    assert_eq!(entry.customer_name.as_deref(), Some("Bob"));
    assert_eq!(entry.customer_phone.as_deref(), Some("+100"));
    assert!(t
        .effects
        .contains(&Effect::Notify(Notice::ConversationQueued)));
    assert_eq!(t.conversation.version, 2);
    assert_eq!(t.conversation.updated_at, T1);
}

#[test]
fn requeue_releases_the_agent() {
    let t = apply(
        &conversation(Assigned),
        Command::Enqueue { channel: None },
        T1,
    )
    .unwrap();
    assert_eq!(t.effects[0], Effect::ReleaseAgent("a1".into()));
    assert_eq!(t.conversation.agent, None);
    assert_eq!(t.conversation.accepted_at, None);
}

#[test]
fn enqueue_twice_is_idempotent() {
    let c = conversation(Queued);
    let t = apply(&c, Command::Enqueue { channel: None }, T1).unwrap();
    assert_eq!(t.conversation, c);
    assert!(t.effects.is_empty());
}

#[test]
fn accept_claims_the_agent_and_leaves_the_queue() {
    let t = apply(&conversation(Queued), accept("a2"), T1).unwrap();
    assert_eq!(
        t.effects,
        vec![
            Effect::QueueRemove,
            Effect::ClaimAgent {
                agent_id: "a2".into(),
                max: 3
            },
            Effect::Notify(Notice::ConversationAccepted),
            Effect::Publish(ChatEventType::ConversationAccepted),
        ]
    );
    assert_eq!(
        t.conversation.agent.as_ref().map(|a| a.id.as_str()),
        Some("a2")
    );
    assert_eq!(t.conversation.accepted_at, Some(T1));
}

#[test]
fn accepting_again_is_idempotent() {
    let c = conversation(Assigned);
    let t = apply(&c, accept("a1"), T1).unwrap();
    assert_eq!(t.conversation, c);
    assert!(t.effects.is_empty());
}

#[test]
fn send_validates_content() {
    let c = conversation(Assigned);
    assert_eq!(
        apply(&c, send("   "), T1),
        Err(LifecycleError::EmptyContent)
    );
    assert_eq!(
        apply(&c, send("01234567890"), T1),
        Err(LifecycleError::ContentTooLong(10))
    );
    // Characters, not bytes.
    assert!(apply(&c, send("éééééééééé"), T1).is_ok());
    let sys = Command::Send {
        sender: customer(),
        content: "x".into(),
        kind: MessageType::System,
        metadata: Metadata::new(),
        client_message_id: None,
        max_length: 10,
    };
    assert_eq!(apply(&c, sys, T1), Err(LifecycleError::SystemReserved));
}

#[test]
fn send_appends_a_draft_and_touches_activity() {
    let t = apply(&conversation(Open), send("hi"), T1).unwrap();
    let Effect::Append(d) = &t.effects[0] else {
        panic!()
    };
    assert_eq!(d.content, "hi");
    assert_eq!(d.kind, MessageType::Text);
    assert_eq!(
        t.effects[1],
        Effect::Publish(ChatEventType::MessageReceived)
    );
    assert_eq!(t.conversation.updated_at, T1);
    // Activity, not a metadata change: concurrent senders do not conflict.
    assert_eq!(t.conversation.version, conversation(Open).version);
}

#[test]
fn agent_close_appends_the_chat_closed_notice() {
    let t = apply(
        &conversation(Assigned),
        Command::Close {
            by: agent("a1"),
            reason: Some("done".into()),
        },
        T1,
    )
    .unwrap();
    assert_eq!(t.effects[0], Effect::ReleaseAgent("a1".into()));
    let Effect::Append(d) = &t.effects[1] else {
        panic!()
    };
    assert_eq!(d.kind, MessageType::System);
    assert_eq!(d.sender, ChatParticipant::system());
    assert_eq!(d.content, "Ann closed the chat.");
    assert_eq!(d.metadata["event"], "CHAT_CLOSED");
    assert_eq!(d.metadata["closedByType"], "AGENT");
    assert_eq!(d.metadata["closedByDisplayName"], "Ann");
    assert_eq!(d.metadata["reason"], "done");
    assert_eq!(t.conversation.closed_at, Some(T1));
    assert!(t
        .effects
        .contains(&Effect::Notify(Notice::ConversationClosed)));
}

#[test]
fn customer_close_of_a_queued_conversation_leaves_the_queue() {
    let t = apply(
        &conversation(Queued),
        Command::Close {
            by: customer(),
            reason: None,
        },
        T1,
    )
    .unwrap();
    assert_eq!(t.effects[0], Effect::QueueRemove);
    let Effect::Append(d) = &t.effects[1] else {
        panic!()
    };
    assert_eq!(d.content, "Bob ended the chat.");
    assert_eq!(d.metadata["closedByType"], "CUSTOMER");
}

#[test]
fn closing_twice_changes_nothing() {
    let c = conversation(Closed);
    let t = apply(
        &c,
        Command::Close {
            by: customer(),
            reason: None,
        },
        T1,
    )
    .unwrap();
    assert_eq!(t.conversation, c);
    assert!(t.effects.is_empty());
}

#[test]
fn queue_timeout_reopens_with_a_system_message() {
    let t = apply(
        &conversation(Queued),
        Command::QueueTimeout { enqueued_by: T0 },
        T1,
    )
    .unwrap();
    assert_eq!(t.conversation.status, Open);
    assert_eq!(t.effects[0], Effect::QueueExpire(T0));
    let Effect::Append(d) = &t.effects[1] else {
        panic!()
    };
    assert_eq!(d.kind, MessageType::System);
    assert_eq!(d.metadata["event"], "QUEUE_TIMEOUT");
}

#[test]
fn expiry_closes_with_reason() {
    for (why, reason) in [
        (ExpireReason::Inactivity, "INACTIVITY"),
        (ExpireReason::MaxDuration, "MAX_DURATION"),
    ] {
        let t = apply(&conversation(Assigned), Command::Expire(why), T1).unwrap();
        assert_eq!(t.conversation.status, Closed);
        let Effect::Append(d) = &t.effects[1] else {
            panic!()
        };
        assert_eq!(d.metadata["closedByType"], "SYSTEM");
        assert_eq!(d.metadata["reason"], reason);
    }
}

#[test]
fn control_characters_are_refused_but_line_breaks_and_tabs_are_text() {
    let ok = compose(
        customer(),
        "a\tb\r\nc".into(),
        MessageType::Text,
        Metadata::new(),
        None,
        10,
    );
    assert!(ok.is_ok());
    for bad in ["\u{1b}[2J", "nul\u{0}", "c1\u{85}x"] {
        assert_eq!(
            compose(
                customer(),
                bad.into(),
                MessageType::Text,
                Metadata::new(),
                None,
                10
            )
            .unwrap_err(),
            LifecycleError::ControlCharacters,
            "{bad:?}"
        );
    }
}
