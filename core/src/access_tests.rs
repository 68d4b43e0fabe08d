//! The authorization rules, role by role, over every action and conversation state.

use super::*;
use crate::conversation::ConversationStatus;
use crate::lifecycle::start;
use crate::participant::Metadata;
use crate::time::Timestamp;

fn conversation(agent: Option<&str>) -> ConversationMetadata {
    let mut c = start(
        "conv".into(),
        ChatParticipant::new("c1", ParticipantKind::Customer, "Bob"),
        Metadata::new(),
        Timestamp(1),
    )
    .conversation;
    if let Some(a) = agent {
        c.status = ConversationStatus::Assigned;
        c.agent = Some(ChatParticipant::new(a, ParticipantKind::Agent, "Ann"));
    }
    c
}

fn who(id: &str, role: Role) -> Principal {
    Principal::new(ChatParticipant::new(id, role.kind(), id), role)
}

const ALL: [Action; 5] = [
    Action::Read,
    Action::Join,
    Action::Send,
    Action::Queue,
    Action::Close,
];

#[test]
fn customers_act_on_their_own_conversations_only() {
    let c = conversation(Some("a1"));
    for action in ALL {
        assert!(authorize(&who("c1", Role::Customer), action, &c).is_ok());
        let err = authorize(&who("c2", Role::Customer), action, &c).unwrap_err();
        assert!(err.0.contains("not yours"), "{err}");
    }
    // A token naming the conversation grants it; naming another one does not.
    let mut guest = who("c2", Role::Customer);
    guest.conversations = vec!["other".into()];
    assert!(authorize(&guest, Action::Send, &c).is_err());
    guest.conversations.push("conv".into());
    assert!(authorize(&guest, Action::Send, &c).is_ok());
}

#[test]
fn a_bearer_holds_the_conversation_id_as_its_capability() {
    let mut anyone = who("random", Role::Customer);
    anyone.bearer = true;
    for action in ALL {
        assert!(authorize(&anyone, action, &conversation(None)).is_ok());
    }
    assert!(authorize_queue(&anyone).is_err());
    assert_eq!(anyone.acts_as(&conversation(None)).id, "c1");
    // An unnamed development-mode agent acts as the assigned one, and only where one is.
    let mut agent = who("x", Role::Agent);
    agent.bearer = true;
    assert!(authorize(&agent, Action::Send, &conversation(Some("a1"))).is_ok());
    assert_eq!(agent.acts_as(&conversation(Some("a1"))).id, "a1");
    assert!(authorize(&agent, Action::Send, &conversation(None)).is_err());
}

#[test]
fn agents_act_on_what_is_assigned_to_them() {
    let mine = conversation(Some("a1"));
    let theirs = conversation(Some("a2"));
    let queued = conversation(None);
    for action in ALL {
        assert!(authorize(&who("a1", Role::Agent), action, &mine).is_ok());
        assert!(authorize(&who("a1", Role::Agent), action, &theirs).is_err());
        assert!(authorize(&who("a1", Role::Agent), action, &queued).is_err());
    }
    // A customer whose id equals an agent's gains nothing from it.
    assert!(authorize(&who("a1", Role::Customer), Action::Read, &mine).is_err());
    assert_eq!(
        Author::of(&who("a1", Role::Agent).participant),
        Some(Author::Agent("a1".into()))
    );
}

#[test]
fn admins_observe_and_close_anything_but_send_only_where_assigned() {
    let theirs = conversation(Some("a2"));
    let admin = who("boss", Role::Admin);
    for action in [Action::Read, Action::Join, Action::Close] {
        assert!(authorize(&admin, action, &theirs).is_ok());
    }
    assert_eq!(admin.acts_as(&theirs).id, "boss");
    for action in [Action::Send, Action::Queue] {
        assert!(authorize(&admin, action, &theirs).is_err());
        assert!(authorize(&admin, action, &conversation(Some("boss"))).is_ok());
    }
}

#[test]
fn queue_lists_and_starts_go_by_role() {
    assert!(authorize_queue(&who("c1", Role::Customer)).is_err());
    assert!(authorize_queue(&who("a1", Role::Agent)).is_ok());
    assert!(authorize_queue(&who("boss", Role::Admin)).is_ok());
    assert!(authorize_agent_list(&who("a1", Role::Agent), "a1").is_ok());
    assert!(authorize_agent_list(&who("a1", Role::Agent), "a2").is_err());
    assert!(authorize_agent_list(&who("boss", Role::Admin), "a2").is_ok());
    assert!(authorize_agent_list(&who("c1", Role::Customer), "c1").is_err());
    assert!(authorize_start(&who("c1", Role::Customer)).is_ok());
    assert!(authorize_start(&who("a1", Role::Agent)).is_err());
}

#[test]
fn authors_are_checked_against_the_stored_parties() {
    let c = conversation(Some("a1"));
    assert!(Author::Customer("c1".into()).admits(&c));
    assert!(!Author::Customer("a1".into()).admits(&c));
    assert!(Author::Agent("a1".into()).admits(&c));
    assert!(!Author::Agent("a2".into()).admits(&c));
    assert!(!Author::Agent("a1".into()).admits(&conversation(None)));
    assert_eq!(Role::parse("ADMIN"), Some(Role::Admin));
    assert_eq!(Role::parse("robot"), None);
}
