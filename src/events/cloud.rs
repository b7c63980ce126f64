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
    /// An event of type `kind` (the full type) from `source`, of a change committed at `at_ms`;
    /// `id` is [`event_id`]'s.
    pub fn new(id: String, source: &'a str, kind: String, at_ms: u64, data: D) -> Self {
        Self {
            id,
            source,
            kind,
            specversion: "1.0",
            time: rfc3339_ms(at_ms),
            datacontenttype: "application/json",
            data,
        }
    }
}

/// The id of the event that the recorded change `change` (its outbox id) makes for
/// `subscription`: a UUID (v5) of both, so a change made into events again (taken over from a
/// replica that died) makes events with the same ids, and consumers deduplicate them.
pub fn event_id(change: &str, subscription: &str) -> String {
    let name = format!("{change}/{subscription}");
    uuid::Uuid::new_v5(&NAMESPACE, name.as_bytes()).to_string()
}

/// The namespace of [`event_id`]'s UUIDs.
const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x8c0b_5f3e_41a7_4d6e_9b1f_2e5a_7c3d_9f10);

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
