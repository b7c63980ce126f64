//! An event subscription (CAMARA webrtc-events): an API consumer's sink, the event types it
//! receives and whose events (a registration, or every registration of a device), until it
//! expires, reaches its maximum number of events or is deleted.

use serde::{Deserialize, Serialize};

/// The event types a subscription may ask for (`subscription-ended` is sent to every one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "session-invitation")]
    SessionInvitation,
    #[serde(rename = "session-status")]
    SessionStatus,
    #[serde(rename = "registration-ends")]
    RegistrationEnds,
}

impl EventType {
    pub const ALL: [EventType; 3] = [
        EventType::SessionInvitation,
        EventType::SessionStatus,
        EventType::RegistrationEnds,
    ];

    /// The type's name, after the configured prefix and a dot.
    pub const fn name(self) -> &'static str {
        match self {
            EventType::SessionInvitation => "session-invitation",
            EventType::SessionStatus => "session-status",
            EventType::RegistrationEnds => "registration-ends",
        }
    }

    /// The type whose full name (`{prefix}.{name}`) is `full`.
    pub fn from_full(prefix: &str, full: &str) -> Option<Self> {
        let name = full.strip_prefix(prefix)?.strip_prefix('.')?;
        Self::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// Whose events a subscription receives, as the request named them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Detail {
    /// r2.2: one registration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_id: Option<String>,
    /// The draft: every active registration of the caller's device (when subscribing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// r2.2: session-status of one call only (`sessionId`, or `mediaSessionId` as r2.2's example
    /// writes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
}

/// A sink's access token, sent as `Authorization: Bearer` with each event. Never answered or
/// logged.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessToken {
    pub token: String,
    pub expires_at_ms: u64,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &"[redacted]")
            .field("expires_at_ms", &self.expires_at_ms)
            .finish()
    }
}

/// Why a subscription ended (CAMARA's `terminationReason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SubscriptionEnd {
    SubscriptionExpired,
    SubscriptionDeleted,
    MaxEventsReached,
    AccessTokenExpired,
    /// The registrations it was created for have ended: the service stops sending.
    NetworkTerminated,
    /// The sink answered 410 Gone: ended without a `subscription-ended` (nobody would take it).
    SinkGone,
}

impl SubscriptionEnd {
    /// Whether its `subscription-ended` is sent.
    pub fn is_announced(self) -> bool {
        self != Self::SinkGone
    }

    /// Whether the service ended it after the events it had made (its max events reached, its
    /// registrations ended): those are still sent, and its `subscription-ended` after them.
    pub fn follows_its_events(self) -> bool {
        matches!(self, Self::MaxEventsReached | Self::NetworkTerminated)
    }
}

/// A subscription as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    /// A UUID v4 the service allocates.
    pub id: String,
    /// The API consumer that created it.
    pub owner: String,
    pub sink: String,
    pub types: Vec<EventType>,
    pub detail: Detail,
    /// The phone numbers whose events it receives: those of the registrations it named, when it
    /// was created.
    pub phone_numbers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<AccessToken>,
    pub starts_at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_events: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_event: Option<bool>,
    /// Why it ended, once it has: it is then gone for the API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<SubscriptionEnd>,
}

/// How long before its sink credential expires a subscription ends (ACCESS_TOKEN_EXPIRED), so
/// that its `subscription-ended` still carries a valid token.
pub const ACCESS_TOKEN_NOTICE_MS: u64 = 60_000;

impl Subscription {
    /// Whether the API still sees it at `now_ms`: not ended, and not past its expiry.
    pub fn is_active(&self, now_ms: u64) -> bool {
        self.ended.is_none() && self.expires_at_ms.is_none_or(|at| at > now_ms)
    }

    /// When it is due to end by itself: at its expiry, or [`ACCESS_TOKEN_NOTICE_MS`] before its
    /// credential expires, whichever comes first; `None` when neither applies.
    pub fn due_at_ms(&self) -> Option<u64> {
        let credential = (self.credential.as_ref())
            .map(|c| c.expires_at_ms.saturating_sub(ACCESS_TOKEN_NOTICE_MS));
        match (self.expires_at_ms, credential) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Why it ends when it is due at `now_ms`: its expiry, or else its credential's.
    pub fn due_reason(&self, now_ms: u64) -> SubscriptionEnd {
        if self.expires_at_ms.is_some_and(|at| at <= now_ms) {
            SubscriptionEnd::SubscriptionExpired
        } else {
            SubscriptionEnd::AccessTokenExpired
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_read_by_their_full_name() {
        let prefix = "org.camaraproject.webrtc-events.v0";
        assert_eq!(
            EventType::from_full(prefix, "org.camaraproject.webrtc-events.v0.session-status"),
            Some(EventType::SessionStatus)
        );
        for bad in [
            "org.camaraproject.webrtc-events.v0.subscription-ended",
            "org.camaraproject.webrtc-events.v0session-status",
            "session-status",
            "org.camaraproject.webrtc-events.v1.session-status",
        ] {
            assert_eq!(EventType::from_full(prefix, bad), None, "{bad}");
        }
    }

    #[test]
    fn a_credential_is_never_printed() {
        let token = AccessToken {
            token: "secret-token".into(),
            expires_at_ms: 1,
        };
        assert!(!format!("{token:?}").contains("secret"));
    }
}
