//! The records the feed carries: what a follower reads of a session, a registration, a
//! subscription and a delivery attempt. They never hold an SDP, a token or a sink credential.

use serde::Serialize;

use crate::domain::registration::rfc3339_ms;
use crate::domain::{
    CallType, Direction, EventType, Registration, Session, SessionStatus, Subscription,
};

/// A session as the feed shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionRecord<'a> {
    pub id: &'a str,
    pub version: u64,
    pub status: SessionStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
    pub originator: &'a str,
    pub receiver: &'a str,
    /// For the API consumer that owns it (the caller's, or the receiver's for an incoming call).
    pub direction: Direction,
    pub on_net: bool,
    pub call_type: CallType,
    /// Ended by a DELETE: gone for the API.
    pub deleted: bool,
    pub has_offer: bool,
    pub has_answer: bool,
    /// When this version was committed (absent in a stream's first look at the store).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// The network moves the table allows from its status ([`SessionStatus::network_targets`]).
    pub moves: &'static [SessionStatus],
}

impl<'a> SessionRecord<'a> {
    pub fn of(session: &'a Session, version: u64, at_ms: Option<u64>) -> Self {
        Self {
            id: session.id.as_str(),
            version,
            status: session.status,
            reason: session.reason.as_deref(),
            originator: session.originator.as_str(),
            receiver: session.receiver.as_str(),
            direction: session.direction,
            on_net: session.is_on_net(),
            call_type: session.call_type,
            deleted: session.ended,
            has_offer: session.offer.is_some(),
            has_answer: session.answer.is_some(),
            at: at_ms.map(rfc3339_ms),
            moves: match session.ended {
                true => &[],
                false => session.status.network_targets(),
            },
        }
    }
}

/// A registration as the feed shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationRecord<'a> {
    pub id: &'a str,
    pub device_id: &'a str,
    pub phone_number: &'a str,
    pub consumer: &'a str,
    pub expires_at: String,
    /// It receives on-net and admin API calls.
    pub proven: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended: Option<crate::domain::EndReason>,
}

impl<'a> RegistrationRecord<'a> {
    pub fn of(registration: &'a Registration) -> Self {
        Self {
            id: &registration.id,
            device_id: &registration.device_id,
            phone_number: &registration.phone_number,
            consumer: &registration.owner,
            expires_at: rfc3339_ms(registration.expires_at_ms),
            proven: registration.proven,
            ended: registration.ended,
        }
    }
}

/// A subscription as the feed shows it (its sink credential never).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionRecord<'a> {
    pub id: &'a str,
    pub consumer: &'a str,
    pub sink: String,
    pub types: &'a [EventType],
    pub phone_numbers: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_events: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended: Option<crate::domain::SubscriptionEnd>,
}

impl<'a> SubscriptionRecord<'a> {
    pub fn of(subscription: &'a Subscription) -> Self {
        let detail = &subscription.detail;
        Self {
            id: &subscription.id,
            consumer: &subscription.owner,
            sink: shown_sink(&subscription.sink),
            types: &subscription.types,
            phone_numbers: &subscription.phone_numbers,
            registration_id: detail.registration_id.as_deref(),
            device_id: detail.device_id.as_deref(),
            session_id: detail.session_id.as_deref(),
            expires_at: subscription.expires_at_ms.map(rfc3339_ms),
            max_events: subscription.max_events,
            ended: subscription.ended,
        }
    }
}

/// What became of one attempt to deliver an event (or of the event).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The sink answered 2xx.
    Delivered,
    /// It failed and is tried again later.
    Retrying,
    /// Given up: after its last retry, never attempted (queues full), or its subscription
    /// ended while it waited for a retry (reported when that retry was due).
    Dropped,
    /// The sink answered 410: the subscription ended, nothing more is sent.
    Gone,
}

/// One delivery attempt as the feed shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryRecord<'a> {
    pub event_id: &'a str,
    /// The event type's name (`session-status`).
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub subscription_id: &'a str,
    pub sink: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<&'a str>,
    pub outcome: Outcome,
    /// The sink's answer, when it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// Attempts made so far (1 for the first; 0 when dropped before any).
    pub attempt: u32,
    pub at: String,
}

/// A sink as the console shows it: its origin (scheme, host, port) and, to tell apart sinks on
/// one host, the first 8 hex digits of the UUIDv5 (URL namespace) of the whole URL. Nothing else
/// of the URL: user info, query and fragment hold credentials, and so may the path (webhook
/// services put their token there).
pub fn shown_sink(sink: &str) -> String {
    let Ok(url) = reqwest::Url::parse(sink) else {
        return "(not a URL)".to_owned();
    };
    let digest = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, sink.as_bytes()).simple();
    let digest = &digest.to_string()[..8];
    format!("{} ({digest})", url.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sink_is_shown_by_its_origin_and_a_digest() {
        let url = "https://user:pw@sink.example.com:8443/T0/B0/s3cret?token=s3cret#x";
        let digest = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, url.as_bytes());
        let shown = shown_sink(url);
        assert_eq!(
            shown,
            format!(
                "https://sink.example.com:8443 ({})",
                &digest.simple().to_string()[..8]
            )
        );
        assert!(
            !shown.contains("s3cret") && !shown.contains("pw"),
            "{shown}"
        );
        // The default port is not repeated; another path on the host is another digest.
        let other = shown_sink("https://sink.example.com/T0/B0/other");
        assert!(other.starts_with("https://sink.example.com ("), "{other}");
        assert_ne!(other[other.len() - 9..], shown[shown.len() - 9..]);
        assert_eq!(shown_sink("not a url"), "(not a URL)");
    }
}
