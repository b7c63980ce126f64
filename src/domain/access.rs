//! Who may see and act on a session: ownership by API consumer, the 3-legged party rule, the
//! side a caller acts for, and the parties a request may name.

use super::address::Address;
use super::session::{Role, Session, StatusChange};
use super::status::SessionStatus;

/// The originator's address when its identity is withheld (RFC 3323).
pub const ANONYMOUS: &str = "sip:anonymous@anonymous.invalid";

/// Who acts on a session: the API consumer, and the subscriber a 3-legged token acts for.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    /// The API consumer (`client_id`, else `azp`, else `sub` of a 2-legged token).
    pub consumer: &'a str,
    /// The subscriber of a 3-legged token, as a TEL URI; `None` for a 2-legged token.
    pub subscriber: Option<&'a Address>,
}

/// Which party rule a 3-legged caller's request contradicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartyRule {
    /// On create: the originator is the subscriber itself, or [`ANONYMOUS`].
    OwnAddress,
    /// On update: the parties of a session cannot change.
    FixedParties,
}

impl PartyRule {
    /// The end of the message after "… is not consistent with access token".
    const fn tail(self) -> &'static str {
        match self {
            Self::OwnAddress => ".",
            Self::FixedParties => ": the parties of a session cannot change.",
        }
    }
}

/// Why an actor may not do what it asked. `Display` is the message the API sends; the http
/// layer answers `TokenContext` with 403 INVALID_TOKEN_CONTEXT and `Mismatch` with 400
/// INVALID_ARGUMENT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    /// A 3-legged caller named a party its token contradicts; `field` is the body's field.
    #[error("{field} is not consistent with access token{}", .rule.tail())]
    TokenContext {
        field: &'static str,
        rule: PartyRule,
    },
    /// A 2-legged caller named a party the session does not have.
    #[error("{field} does not match the session: the parties of a session cannot change.")]
    Mismatch { field: &'static str },
    /// The caller's side of an on-net call may not send `field`.
    #[error("{field}: {why}.")]
    Side {
        field: &'static str,
        why: &'static str,
    },
}

impl Actor<'_> {
    /// Whether the session exists for this actor: it belongs to the actor's consumer or is a
    /// fixture (no owner, visible to every consumer), and a 3-legged actor's subscriber is one
    /// of its parties (a withheld originator included). On an on-net call the consumer decides
    /// the side ([`Actor::on_net_side`]): a 3-legged subscriber must be that side's party, and
    /// a side that hung up no longer sees the call.
    pub fn can_see(&self, session: &Session) -> bool {
        if session.is_on_net() {
            return self.on_net_side(session).is_some_and(|side| {
                session.hung_up != Some(side)
                    && (self.subscriber)
                        .is_none_or(|subscriber| session.role_of(subscriber) == Some(side))
            });
        }
        let owned = session
            .owner
            .as_deref()
            .is_none_or(|owner| owner == self.consumer);
        let party = self
            .subscriber
            .is_none_or(|subscriber| session.role_of(subscriber).is_some());
        owned && party
    }

    /// The side an on-net call's consumer acts for: the caller's for the consumer that placed
    /// it, the receiver's for the consumer it was delivered to; `None` for any other consumer,
    /// whatever subscriber its token names.
    fn on_net_side(&self, session: &Session) -> Option<Role> {
        if session.owner.as_deref() == Some(self.consumer) {
            Some(Role::Originator)
        } else if session.receiver_owner.as_deref() == Some(self.consumer) {
            Some(Role::Receiver)
        } else {
            None
        }
    }

    /// The side of the call this actor acts for: on an on-net call its consumer's side; else a
    /// 3-legged actor's subscriber's role, or the side the owning consumer acts for.
    pub fn role_in(&self, session: &Session) -> Role {
        if let Some(side) = self.on_net_side(session).filter(|_| session.is_on_net()) {
            return side;
        }
        self.subscriber
            .and_then(|subscriber| session.role_of(subscriber))
            .unwrap_or_else(|| session.owner_role())
    }

    /// What a side may change on an on-net call (PUT): the caller's app neither answers nor
    /// sets the receiver's progress (it may hold and resume); the receiver's app does not
    /// replace the caller's offer or location, and connects only with an answer the caller can
    /// use. Any call that is not on-net: anything.
    pub fn check_side(&self, session: &Session, change: &StatusChange) -> Result<(), AccessError> {
        if !session.is_on_net() {
            return Ok(());
        }
        let refused = |field, why| Err(AccessError::Side { field, why });
        match self.role_in(session) {
            Role::Originator if change.answer.is_some() => {
                refused("answer", "only the receiver's app answers an on-net call")
            }
            Role::Originator
                if !matches!(change.status, SessionStatus::Hold | SessionStatus::Resume) =>
            {
                refused(
                    "status",
                    "the caller's app of an on-net call sets only Hold or Resume; the receiver's app sets the others",
                )
            }
            Role::Receiver if change.offer.is_some() => refused(
                "offer",
                "the offer of an on-net call is the caller's; the receiver's app answers it",
            ),
            Role::Receiver if change.location.is_some() => refused(
                "locationDetails",
                "the location of an on-net call is the caller's",
            ),
            Role::Receiver
                if change.status == SessionStatus::Connected
                    && change.answer.is_none()
                    && session.answer.is_none() =>
            {
                refused(
                    "answer",
                    "an on-net call is connected with the receiver's answer, which the caller's app needs",
                )
            }
            _ => Ok(()),
        }
    }

    /// A new call's originator (POST): a 3-legged actor calls as its own subscriber or as
    /// [`ANONYMOUS`]; a 2-legged actor may name any originator.
    pub fn check_originator(&self, originator: &Address) -> Result<(), AccessError> {
        match self.subscriber {
            Some(subscriber) if originator != subscriber && !is_anonymous(originator) => {
                Err(AccessError::TokenContext {
                    field: "originatorAddress",
                    rule: PartyRule::OwnAddress,
                })
            }
            _ => Ok(()),
        }
    }

    /// The address a new call's originator withholds (POST): the 3-legged actor's subscriber
    /// when the originator is [`ANONYMOUS`], otherwise none.
    pub fn withheld_originator(&self, originator: &Address) -> Option<Address> {
        if is_anonymous(originator) {
            self.subscriber.cloned()
        } else {
            None
        }
    }

    /// The parties an update names (PUT), checked in order originator then receiver: each one
    /// sent must be the session's own, as stored (so [`ANONYMOUS`] when the originator is
    /// withheld). A 3-legged actor naming another contradicts its token; a 2-legged one sent a
    /// wrong argument.
    pub fn check_parties(
        &self,
        session: &Session,
        originator: Option<&Address>,
        receiver: Option<&Address>,
    ) -> Result<(), AccessError> {
        let named = [
            ("originatorAddress", originator, &session.originator),
            ("receiverAddress", receiver, &session.receiver),
        ];
        for (field, sent, stored) in named {
            if sent.is_some_and(|sent| sent != stored) {
                return Err(match self.subscriber {
                    Some(_) => AccessError::TokenContext {
                        field,
                        rule: PartyRule::FixedParties,
                    },
                    None => AccessError::Mismatch { field },
                });
            }
        }
        Ok(())
    }
}

fn is_anonymous(address: &Address) -> bool {
    address.as_str() == ANONYMOUS
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Direction, SessionStatus};

    fn address(raw: &str) -> Address {
        Address::parse(raw).unwrap()
    }

    /// The example session (tel:+17085852753 calls tel:+17085854000), owned by `owner`.
    fn session(owner: Option<&str>) -> Session {
        Session {
            owner: owner.map(Into::into),
            ..Session::example(SessionStatus::Initial)
        }
    }

    fn two_legged(consumer: &str) -> Actor<'_> {
        Actor {
            consumer,
            subscriber: None,
        }
    }

    fn three_legged<'a>(consumer: &'a str, subscriber: &'a Address) -> Actor<'a> {
        Actor {
            consumer,
            subscriber: Some(subscriber),
        }
    }

    /// Alice's app (`alice-app`) calls Bob, delivered on-net to `bob-app`.
    fn on_net() -> Session {
        Session {
            receiver_owner: Some("bob-app".into()),
            ..session(Some("alice-app"))
        }
    }

    /// On an on-net call the consumer decides the side; a 3-legged token must be that side's
    /// party; any other consumer sees nothing; a side that hung up sees nothing more.
    #[test]
    fn on_an_on_net_call_the_consumer_decides_the_side() {
        let (alice, bob) = (address("tel:+17085852753"), address("tel:+17085854000"));
        let call = on_net();
        let cases = [
            (two_legged("alice-app"), Some(Role::Originator)),
            (three_legged("alice-app", &alice), Some(Role::Originator)),
            (three_legged("alice-app", &bob), None),
            (two_legged("bob-app"), Some(Role::Receiver)),
            (three_legged("bob-app", &bob), Some(Role::Receiver)),
            (three_legged("bob-app", &alice), None),
            (two_legged("other-app"), None),
            (three_legged("other-app", &bob), None),
        ];
        for (actor, side) in cases {
            let who = (actor.consumer, actor.subscriber.map(Address::as_str));
            assert_eq!(actor.can_see(&call), side.is_some(), "{who:?}");
            if let Some(side) = side {
                assert_eq!(actor.role_in(&call), side, "{who:?}");
                let hung_up = Session {
                    hung_up: Some(side),
                    ..call.clone()
                };
                assert!(!actor.can_see(&hung_up), "{who:?} after hanging up");
            }
        }
    }

    /// Each side of an on-net call changes only what is its own; an off-net call, anything.
    #[test]
    fn each_side_of_an_on_net_call_changes_only_its_own() {
        use crate::domain::Sdp;
        let sdp = Sdp::parse("v=0\r\n".to_owned(), crate::domain::SdpPolicy::Lenient).unwrap();
        let change = |status, offer: bool, answer: bool| StatusChange {
            status,
            offer: offer.then(|| sdp.clone()),
            answer: answer.then(|| sdp.clone()),
            location: None,
        };
        let field = |actor: Actor<'_>, call: &Session, change: &StatusChange| match actor
            .check_side(call, change)
        {
            Ok(()) => None,
            Err(AccessError::Side { field, .. }) => Some(field),
            Err(other) => panic!("{other}"),
        };
        let (caller, receiver) = (two_legged("alice-app"), two_legged("bob-app"));
        let call = on_net();
        use SessionStatus::*;
        assert_eq!(field(caller, &call, &change(Hold, true, false)), None);
        assert_eq!(field(caller, &call, &change(Resume, false, false)), None);
        assert_eq!(
            field(caller, &call, &change(Ringing, false, false)),
            Some("status")
        );
        assert_eq!(
            field(caller, &call, &change(Hold, false, true)),
            Some("answer")
        );
        assert_eq!(field(receiver, &call, &change(Ringing, false, false)), None);
        assert_eq!(
            field(receiver, &call, &change(Connected, false, true)),
            None
        );
        assert_eq!(
            field(receiver, &call, &change(Connected, false, false)),
            Some("answer")
        );
        assert_eq!(
            field(receiver, &call, &change(Ringing, true, false)),
            Some("offer")
        );
        let answered = Session {
            answer: Some(sdp.clone()),
            ..call
        };
        assert_eq!(
            field(receiver, &answered, &change(Connected, false, false)),
            None
        );
        let off_net = session(Some("alice-app"));
        assert_eq!(
            field(caller, &off_net, &change(Connected, true, true)),
            None
        );
    }

    #[test]
    fn a_fixture_is_visible_to_every_consumer() {
        let fixture = session(None);
        let originator = address("tel:+17085852753");
        for consumer in ["app", "other", ""] {
            assert!(two_legged(consumer).can_see(&fixture), "{consumer}");
            assert!(three_legged(consumer, &originator).can_see(&fixture));
        }
    }

    #[test]
    fn another_consumers_session_does_not_exist() {
        let owned = session(Some("app"));
        let receiver = address("tel:+17085854000");
        assert!(two_legged("app").can_see(&owned));
        assert!(three_legged("app", &receiver).can_see(&owned));
        assert!(!two_legged("other").can_see(&owned));
        assert!(!three_legged("other", &receiver).can_see(&owned));
    }

    #[test]
    fn a_three_legged_non_party_sees_nothing() {
        let stranger = address("tel:+4915112345678");
        assert!(!three_legged("app", &stranger).can_see(&session(Some("app"))));
        assert!(!three_legged("app", &stranger).can_see(&session(None)));
    }

    #[test]
    fn a_withheld_originator_is_still_a_party() {
        let alice = address("tel:+17085852753");
        let mut hidden = session(Some("app"));
        hidden.originator = address(ANONYMOUS);
        assert!(!three_legged("app", &alice).can_see(&hidden));
        hidden.withheld_originator = Some(alice.clone());
        assert!(three_legged("app", &alice).can_see(&hidden));
        assert_eq!(
            three_legged("app", &alice).role_in(&hidden),
            Role::Originator
        );
        // A PUT names the originator as stored: the anonymous URI, not the withheld address.
        let actor = three_legged("app", &alice);
        assert_eq!(
            actor.check_parties(&hidden, Some(&address(ANONYMOUS)), None),
            Ok(())
        );
        assert!(actor.check_parties(&hidden, Some(&alice), None).is_err());
    }

    #[test]
    fn delete_acts_for_the_subscriber_else_for_the_owning_side() {
        let originator = address("tel:+17085852753");
        let receiver = address("tel:+17085854000");
        let stranger = address("tel:+4915112345678");
        for (direction, owner_role) in [
            (Direction::Outgoing, Role::Originator),
            (Direction::Incoming, Role::Receiver),
        ] {
            let call = Session {
                direction,
                ..session(Some("app"))
            };
            assert_eq!(two_legged("app").role_in(&call), owner_role);
            assert_eq!(three_legged("app", &stranger).role_in(&call), owner_role);
            assert_eq!(
                three_legged("app", &originator).role_in(&call),
                Role::Originator
            );
            assert_eq!(
                three_legged("app", &receiver).role_in(&call),
                Role::Receiver
            );
        }
    }

    #[test]
    fn a_three_legged_caller_originates_as_itself_or_anonymously() {
        let alice = address("tel:+17085852753");
        let bob = address("tel:+17085854000");
        let anonymous = address(ANONYMOUS);
        let actor = three_legged("app", &alice);
        assert_eq!(actor.check_originator(&alice), Ok(()));
        assert_eq!(actor.check_originator(&anonymous), Ok(()));
        let err = actor.check_originator(&bob).unwrap_err();
        assert_eq!(
            err,
            AccessError::TokenContext {
                field: "originatorAddress",
                rule: PartyRule::OwnAddress
            }
        );
        assert_eq!(
            err.to_string(),
            "originatorAddress is not consistent with access token."
        );
        assert_eq!(two_legged("app").check_originator(&bob), Ok(()));
    }

    #[test]
    fn only_an_anonymous_originator_withholds_the_subscriber() {
        let alice = address("tel:+17085852753");
        let anonymous = address(ANONYMOUS);
        let actor = three_legged("app", &alice);
        assert_eq!(actor.withheld_originator(&anonymous), Some(alice.clone()));
        assert_eq!(actor.withheld_originator(&alice), None);
        assert_eq!(two_legged("app").withheld_originator(&anonymous), None);
    }

    #[test]
    fn the_parties_of_a_session_cannot_change() {
        let call = session(Some("app"));
        let (originator, receiver) = (call.originator.clone(), call.receiver.clone());
        let stranger = address("tel:+4915112345678");
        let subscriber = three_legged("app", &originator);
        let client = two_legged("app");
        for actor in [subscriber, client] {
            assert_eq!(actor.check_parties(&call, None, None), Ok(()));
            assert_eq!(
                actor.check_parties(&call, Some(&originator), Some(&receiver)),
                Ok(())
            );
        }
        let err = subscriber
            .check_parties(&call, None, Some(&stranger))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "receiverAddress is not consistent with access token: the parties of a session cannot change."
        );
        assert!(matches!(err, AccessError::TokenContext { .. }));
        // The originator is checked first.
        let err = client
            .check_parties(&call, Some(&stranger), Some(&stranger))
            .unwrap_err();
        assert_eq!(
            err,
            AccessError::Mismatch {
                field: "originatorAddress"
            }
        );
        assert_eq!(
            err.to_string(),
            "originatorAddress does not match the session: the parties of a session cannot change."
        );
    }
}
