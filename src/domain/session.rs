//! A media session, its identifiers and parties, and how a client's status change applies to it.

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::location::Location;
use super::sdp::Sdp;
use super::status::{SessionStatus, TransitionError};

/// The longest `mediaSessionId`, address or name CAMARA allows.
pub const MAX_ID_LEN: usize = 256;

/// A `mediaSessionId`: non-empty and at most 256 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionId(String);

/// Why a string is not a usable `mediaSessionId`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionIdError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most 256 characters")]
    TooLong,
}

impl SessionId {
    pub fn parse(raw: impl Into<String>) -> Result<Self, SessionIdError> {
        let raw = raw.into();
        if raw.is_empty() {
            Err(SessionIdError::Empty)
        } else if raw.chars().count() > MAX_ID_LEN {
            Err(SessionIdError::TooLong)
        } else {
            Ok(Self(raw))
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

/// CAMARA's current `Address` pattern: TEL URI, SIP URI, emergency URN or the anonymous SIP URI.
static ADDRESS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"^(tel:\+[1-9][0-9]{4,14}",
        r"|tel:[0-9*#]{1,15};phone-context=(?:\+[1-9][0-9]{0,14}|[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)+)",
        r"|sip:[A-Za-z0-9_.!%+\-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}",
        r"|sip:[0-9*#]{1,15};phone-context=(?:\+[1-9][0-9]{0,14}|[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)+)@[A-Za-z0-9.-]+\.[A-Za-z]{2,};user=phone",
        r"|urn:service:sos(?:\.[a-z0-9](?:[a-z0-9\-]{0,30}[a-z0-9])?)*",
        r"|sip:anonymous@anonymous\.invalid)$"
    ))
    .expect("the CAMARA address pattern compiles")
});

/// A party's address, valid against CAMARA's `Address` pattern (at most 256 characters).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Address(String);

/// The string does not match CAMARA's `Address` pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be a tel: or sip: URI matching CAMARA's Address pattern, at most 256 characters")]
pub struct AddressError;

impl Address {
    pub fn parse(raw: impl Into<String>) -> Result<Self, AddressError> {
        let raw = raw.into();
        if raw.len() <= MAX_ID_LEN && ADDRESS.is_match(&raw) {
            Ok(Self(raw))
        } else {
            Err(AddressError)
        }
    }

    /// The TEL URI of a phone number given as `+E.164` or `tel:+E.164` (a 3-legged token's `sub`).
    pub fn from_phone_number(sub: &str) -> Option<Self> {
        let digits = sub.strip_prefix("tel:").unwrap_or(sub).strip_prefix('+')?;
        let plausible = (5..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        plausible.then(|| Self(format!("tel:+{digits}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// CAMARA's `callType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum CallType {
    #[default]
    Regular,
    Emergency,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Originator,
    Receiver,
}

/// One media session as the service stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub id: SessionId,
    pub originator: Address,
    pub originator_name: Option<String>,
    pub receiver: Address,
    pub receiver_name: Option<String>,
    pub status: SessionStatus,
    pub offer: Option<Sdp>,
    pub answer: Option<Sdp>,
    pub call_type: CallType,
    pub location: Option<Location>,
    /// The API consumer the session belongs to; `None` for fixtures, which every consumer sees.
    pub owner: Option<String>,
    pub direction: Direction,
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
        if &self.originator == subscriber {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_follow_the_camara_pattern() {
        for ok in [
            "tel:+17085852753",
            "sip:alice@example.com",
            "sip:anonymous@anonymous.invalid",
            "urn:service:sos",
            "urn:service:sos.police",
            "tel:1234;phone-context=example.com",
        ] {
            assert!(Address::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "+17085852753",
            "tel:17085852753",
            "tel:+0123",
            "sip:bob",
            "mailto:a@b.c",
        ] {
            assert_eq!(Address::parse(bad), Err(AddressError), "{bad}");
        }
    }

    #[test]
    fn phone_number_subjects_normalise_to_tel_uris() {
        let tel = Address::parse("tel:+17085852753").unwrap();
        assert_eq!(
            Address::from_phone_number("+17085852753"),
            Some(tel.clone())
        );
        assert_eq!(Address::from_phone_number("tel:+17085852753"), Some(tel));
        assert_eq!(Address::from_phone_number("client-app"), None);
        assert_eq!(Address::from_phone_number("+1708x"), None);
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
}
