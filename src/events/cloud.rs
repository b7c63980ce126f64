//! The CloudEvents 1.0 the service sends, in structured mode (DESIGN §11): the envelope and the
//! `data` of each event type.

use serde::Serialize;

use crate::domain::registration::rfc3339_ms;

/// One CloudEvent, `data` of type `D`.
#[derive(Debug, Serialize)]
pub struct CloudEvent<'a, D> {
    /// Unique per event; a retry sends the same one, so consumers deduplicate by it.
    pub id: String,
    pub source: &'a str,
    #[serde(rename = "type")]
    pub kind: String,
    pub specversion: &'static str,
    pub time: String,
    pub datacontenttype: &'static str,
    pub data: D,
}

impl<'a, D: Serialize> CloudEvent<'a, D> {
    /// A new event of type `kind` (the full type) from `source`, at `now_ms`.
    pub fn new(source: &'a str, kind: String, now_ms: u64, data: D) -> Self {
        Self {
            id: uuid::Uuid::new_v4().to_string(),
            source,
            kind,
            specversion: "1.0",
            time: rfc3339_ms(now_ms),
            datacontenttype: "application/json",
            data,
        }
    }
}

/// `session-invitation` and `session-status` data: the session as GET shows it (`S`), its
/// `sequenceNumber` (the version the change gave it: creation is 1) and the subscription.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionData<S> {
    #[serde(flatten)]
    pub session: S,
    pub sequence_number: u64,
    pub subscription_id: String,
}

/// `subscription-ended` data.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionEndedData<'a> {
    pub subscription_id: &'a str,
    pub termination_reason: crate::domain::SubscriptionEnd,
}

/// `registration-ends` data.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationEndsData<'a> {
    pub registration_id: &'a str,
    pub termination_reason: &'static str,
    pub termination_description: &'a str,
}
