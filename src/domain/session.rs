//! A media session, its identifiers and parties, and how a client's status change applies to it.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::address::Address;

use super::location::Location;
use super::sdp::Sdp;
use super::status::{SessionStatus, TransitionError};

/// The longest `mediaSessionId`, address or name CAMARA allows.
pub const MAX_ID_LEN: usize = 256;

/// Whether `reason` can be the `reason` the network gives a session: 1 to 256 characters.
pub fn is_reason(reason: &str) -> bool {
    !reason.is_empty() && reason.chars().count() <= 256
}

/// A `mediaSessionId`: non-empty and at most 256 characters. Shared, not copied: a session is
/// cloned on every read and update, and its id and addresses are most of what a clone allocates.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionId(Arc<str>);

/// Why a string is not a usable `mediaSessionId`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionIdError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most 256 characters")]
    TooLong,
}

impl SessionId {
    pub fn parse(raw: impl AsRef<str>) -> Result<Self, SessionIdError> {
        let raw = raw.as_ref();
        if raw.is_empty() {
            Err(SessionIdError::Empty)
        } else if raw.chars().count() > MAX_ID_LEN {
            Err(SessionIdError::TooLong)
        } else {
            Ok(Self(raw.into()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// CAMARA's `callType`, read from a string like [`super::SessionStatus`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE", try_from = "String")]
pub enum CallType {
    #[default]
    Regular,
    Emergency,
}

impl CallType {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Regular => "REGULAR",
            Self::Emergency => "EMERGENCY",
        }
    }
}

impl TryFrom<String> for CallType {
    type Error = &'static str;

    fn try_from(name: String) -> Result<Self, Self::Error> {
        [Self::Regular, Self::Emergency]
            .into_iter()
            .find(|call_type| call_type.as_str() == name)
            .ok_or("must be one of REGULAR, EMERGENCY")
    }
}

/// Which side of the call the API consumer that owns the session acts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// The consumer placed the call (it acts for the originator).
    #[default]
    Outgoing,
    /// The consumer received the invitation (it acts for the receiver).
    Incoming,
}

/// The two ends of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Originator,
    Receiver,
}

/// One media session as the service stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub id: SessionId,
    pub originator: Address,
    pub originator_name: Option<Arc<str>>,
    pub receiver: Address,
    pub receiver_name: Option<Arc<str>>,
    pub status: SessionStatus,
    pub offer: Option<Sdp>,
    pub answer: Option<Sdp>,
    pub call_type: CallType,
    pub location: Option<Location>,
    /// The API consumer the session belongs to; `None` for fixtures, which every consumer sees.
    pub owner: Option<Arc<str>>,
    pub direction: Direction,
    /// The originator's own address when `originator` is the anonymous SIP URI (identity withheld
    /// from the other party, still known to the network). Never shown in a response.
    #[serde(default)]
    pub withheld_originator: Option<Address>,
    /// Ended by DELETE: the session no longer exists for the API, and is kept (with its final
    /// status, for the events that come later) only until the store drops it.
    #[serde(default)]
    pub ended: bool,
    /// Why the network ended the session, when it did (CAMARA's `reason`).
    #[serde(default)]
    pub reason: Option<Arc<str>>,
    /// The `registrationId` header it was created with: the registration whose expiry ends it
    /// (a REGULAR call, with `registration.end_calls_on_expiry`). Never shown in a response.
    #[serde(default)]
    pub registration: Option<Arc<str>>,
    /// How many steps of the far end's script the network has played (DESIGN §12): a step is
    /// played only while this is at most its index, and sets it past it, in the same write, so a
    /// step fired twice (by two replicas) changes the session once. Never shown in a response.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub steps_played: u16,
    /// On an on-net call (DESIGN §12): the API consumer of the receiver's registration, whose
    /// apps see the session and act for the receiver. Never shown in a response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receiver_owner: Option<Arc<str>>,
    /// On an on-net call, the side whose app DELETEd it: gone for that side, still readable
    /// with its outcome by the other's until it DELETEs it too. Never shown in a response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hung_up: Option<Role>,
    /// On an on-net call, the registration it was delivered to: the call ends with it, as with
    /// the caller's (`registration`). Never shown in a response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receiver_registration: Option<Arc<str>>,
}

fn is_zero(n: &u16) -> bool {
    *n == 0
}

/// What a client's PUT asks to change, already parsed and valid.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusChange {
    pub status: SessionStatus,
    pub offer: Option<Sdp>,
    pub answer: Option<Sdp>,
    pub location: Option<Location>,
}

impl Session {
    /// The role `subscriber` plays in this call, if any.
    pub fn role_of(&self, subscriber: &Address) -> Option<Role> {
        if &self.originator == subscriber || self.withheld_originator.as_ref() == Some(subscriber) {
            Some(Role::Originator)
        } else if &self.receiver == subscriber {
            Some(Role::Receiver)
        } else {
            None
        }
    }

    /// The session after `change`, or why the state machine refuses it.
    pub fn apply(&self, change: &StatusChange) -> Result<Session, TransitionError> {
        let status = self.status.client_transition(change.status)?;
        let mut next = self.clone();
        next.status = status;
        if let Some(offer) = &change.offer {
            next.offer = Some(offer.clone());
        }
        if let Some(answer) = &change.answer {
            next.answer = Some(answer.clone());
        }
        if let Some(location) = &change.location {
            next.location = Some(location.clone());
        }
        Ok(next)
    }

    /// The session after a network move (the far end, the admin API) to `status`, with the SDPs
    /// and reason it gives, or why the network's table refuses it.
    pub fn network_move(
        &self,
        status: SessionStatus,
        offer: Option<Sdp>,
        answer: Option<Sdp>,
        reason: Option<Arc<str>>,
    ) -> Result<Session, TransitionError> {
        let mut next = self.clone();
        next.status = self.status.network_transition(status)?;
        next.offer = offer.or(next.offer);
        next.answer = answer.or(next.answer);
        next.reason = reason.or(next.reason);
        Ok(next)
    }

    /// The role the owning API consumer acts for, from the session's direction.
    pub fn owner_role(&self) -> Role {
        match self.direction {
            Direction::Outgoing => Role::Originator,
            Direction::Incoming => Role::Receiver,
        }
    }

    /// Whether the call is over: ended by DELETE, or in a terminal status (ended by the network).
    /// A store keeps a session that is over only for its `ended_ttl`, and no longer counts it live.
    pub fn is_over(&self) -> bool {
        self.ended || self.status.is_terminal()
    }

    /// The session ended by the network after `idle_seconds` without a change (see
    /// [`Session::end_by_network`]).
    pub fn end_idle(&self, idle_seconds: u64) -> Session {
        self.end_by_network(format!(
            "Ended by the network: no change for {idle_seconds} s"
        ))
    }

    /// The session ended by the network for `reason`: `Terminated` once answered (Connected,
    /// Hold, Resume), `Failed` before. It stays readable, with `reason`, until the store drops it.
    pub fn end_by_network(&self, reason: impl Into<Arc<str>>) -> Session {
        let status = if self.status.is_established() {
            SessionStatus::Terminated
        } else {
            SessionStatus::Failed
        };
        Session {
            status,
            reason: Some(reason.into()),
            ..self.clone()
        }
    }

    /// The registrations the call ends with: the caller's, and on an on-net call the
    /// receiver's.
    pub fn registrations(&self) -> impl Iterator<Item = &Arc<str>> {
        self.registration.iter().chain(&self.receiver_registration)
    }

    /// Whether the call runs between two apps of this service (DESIGN §12).
    pub fn is_on_net(&self) -> bool {
        self.receiver_owner.is_some()
    }

    /// The session after `role`'s app DELETEs it: as [`Session::end`] says, gone for the API;
    /// except that the first side to hang up an on-net call leaves it to the other side to
    /// read, over, with a reason that says who ended it.
    pub fn hang_up(&self, role: Role) -> Session {
        let ended = self.end(role);
        if !self.is_on_net() || self.hung_up.is_some() {
            return ended;
        }
        let reason = if self.status.is_terminal() {
            self.reason.clone()
        } else {
            let side = match role {
                Role::Originator => "caller",
                Role::Receiver => "receiver",
            };
            let what = match ended.status {
                SessionStatus::Declined => "declined",
                SessionStatus::SessionCancelled => "cancelled",
                _ => "terminated",
            };
            Some(format!("Call {what} by {side}").into())
        };
        Session {
            ended: false,
            hung_up: Some(role),
            reason,
            ..ended
        }
    }

    /// The session after `role` ends it (DELETE): before it was answered the originator cancels
    /// and the receiver declines; once answered either side terminates. A session the network
    /// already ended keeps its outcome.
    pub fn end(&self, role: Role) -> Session {
        let status = if self.status.is_terminal() {
            self.status
        } else if self.status.is_established() {
            SessionStatus::Terminated
        } else {
            match role {
                Role::Originator => SessionStatus::SessionCancelled,
                Role::Receiver => SessionStatus::Declined,
            }
        };
        Session {
            status,
            ended: true,
            ..self.clone()
        }
    }
}

#[cfg(test)]
impl Session {
    /// A bare outgoing session between two phone numbers, without SDP, for unit tests.
    pub(crate) fn example(status: SessionStatus) -> Self {
        Self {
            id: SessionId::parse("s").unwrap(),
            originator: Address::parse("tel:+17085852753").unwrap(),
            originator_name: None,
            receiver: Address::parse("tel:+17085854000").unwrap(),
            receiver_name: None,
            status,
            offer: None,
            answer: None,
            call_type: CallType::Regular,
            location: None,
            owner: None,
            direction: Direction::Outgoing,
            withheld_originator: None,
            registration: None,
            reason: None,
            ended: false,
            steps_played: 0,
            receiver_owner: None,
            hung_up: None,
            receiver_registration: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn in_status(status: SessionStatus) -> Session {
        Session::example(status)
    }

    #[test]
    fn ending_depends_on_role_and_whether_the_call_was_answered() {
        use SessionStatus::*;
        let cases = [
            (Initial, Role::Originator, SessionCancelled),
            (Initial, Role::Receiver, Declined),
            (InProgress, Role::Originator, SessionCancelled),
            (Ringing, Role::Receiver, Declined),
            (Proceeding, Role::Originator, SessionCancelled),
            (Waiting, Role::Receiver, Declined),
            (Connected, Role::Originator, Terminated),
            (Hold, Role::Receiver, Terminated),
            (Resume, Role::Originator, Terminated),
            (Busy, Role::Originator, Busy),
            (NoAnswer, Role::Receiver, NoAnswer),
            (Failed, Role::Originator, Failed),
        ];
        for (from, role, to) in cases {
            let ended = in_status(from).end(role);
            assert_eq!(
                (ended.status, ended.ended),
                (to, true),
                "{from} by {role:?}"
            );
        }
    }

    /// The first side to hang up an on-net call leaves it, over and readable, to the other,
    /// with who ended it; the second end (or any end of a call that is not on-net) is gone.
    #[test]
    fn hanging_up_an_on_net_call_leaves_it_to_the_other_side() {
        use SessionStatus::*;
        let on_net = |status| Session {
            owner: Some("alice-app".into()),
            receiver_owner: Some("bob-app".into()),
            ..in_status(status)
        };
        let cases = [
            (
                Ringing,
                Role::Receiver,
                Declined,
                "Call declined by receiver",
            ),
            (
                Initial,
                Role::Originator,
                SessionCancelled,
                "Call cancelled by caller",
            ),
            (
                Connected,
                Role::Receiver,
                Terminated,
                "Call terminated by receiver",
            ),
            (
                Hold,
                Role::Originator,
                Terminated,
                "Call terminated by caller",
            ),
        ];
        for (from, role, to, reason) in cases {
            let first = on_net(from).hang_up(role);
            let got = (
                first.status,
                first.ended,
                first.hung_up,
                first.reason.as_deref(),
            );
            assert_eq!(
                got,
                (to, false, Some(role), Some(reason)),
                "{from} by {role:?}"
            );
            let other = if role == Role::Originator {
                Role::Receiver
            } else {
                Role::Originator
            };
            let second = first.hang_up(other);
            assert_eq!(
                (second.status, second.ended, second.reason),
                (to, true, first.reason)
            );
        }
        // The network's outcome and reason stay; a call that is not on-net is gone at once.
        let no_answer = Session {
            reason: Some("Not answered in time".into()),
            ..on_net(NoAnswer)
        };
        let first = no_answer.hang_up(Role::Receiver);
        assert_eq!(
            (first.status, first.reason.as_deref()),
            (NoAnswer, Some("Not answered in time"))
        );
        let off_net = in_status(Ringing).hang_up(Role::Receiver);
        assert_eq!(
            (off_net.status, off_net.ended, off_net.hung_up),
            (Declined, true, None)
        );
    }

    #[test]
    fn a_withheld_originator_is_still_a_party() {
        let mut session = in_status(SessionStatus::Initial);
        let alice = session.originator.clone();
        session.originator = Address::parse("sip:anonymous@anonymous.invalid").unwrap();
        assert_eq!(session.role_of(&alice), None);
        session.withheld_originator = Some(alice.clone());
        assert_eq!(session.role_of(&alice), Some(Role::Originator));
    }

    #[test]
    fn session_ids_are_bounded() {
        assert_eq!(SessionId::parse(""), Err(SessionIdError::Empty));
        assert!(SessionId::parse("a".repeat(256)).is_ok());
        assert_eq!(
            SessionId::parse("a".repeat(257)),
            Err(SessionIdError::TooLong)
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any text is an address or an error; an address is the text it was parsed from.
        #[test]
        fn parsing_an_address_never_panics(
            raw in prop_oneof![
                any::<String>(),
                "(tel:\\+?|sip:|urn:service:sos)[ -~]{0,24}",
                "tel:\\+[0-9]{3,17}",
            ],
        ) {
            if let Ok(address) = Address::parse(raw.clone()) {
                prop_assert_eq!(address.as_str(), raw);
            }
        }

        /// `+`, or `tel:+`, then 5 to 15 digits, the first not 0: exactly the phone numbers.
        #[test]
        fn phone_numbers_round_trip_to_tel_uris(digits in "[0-9]{0,17}", tel in any::<bool>()) {
            let sub = format!("{}+{digits}", if tel { "tel:" } else { "" });
            let plausible = (5..=15).contains(&digits.len()) && !digits.starts_with('0');
            let address = Address::from_phone_number(&sub);
            prop_assert_eq!(address.is_some(), plausible);
            if let Some(address) = address {
                prop_assert_eq!(address.as_str(), format!("tel:+{digits}"));
                prop_assert_eq!(Address::parse(address.as_str()), Ok(address));
            }
        }
    }
}
