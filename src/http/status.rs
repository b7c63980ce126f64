//! `PUT /sessions/{mediaSessionId}/status`: parse → authorise → load → transition → compare-and-swap → respond.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::Map;

mod fast;

use super::AppState;
use super::body::{Fields, session_response};
use super::error::{ApiError, Code};
use super::extract::{Authorized, JsonBody, SessionPath, WriteOp, json_object};
use super::json::{self, Object};
use super::middleware::record_change;
use super::sessions::{etag, update_visible};
use crate::auth::Caller;
use crate::domain::{Address, Sdp, SdpPolicy, Session, StatusChange};

/// Which body shape the client used; the response mirrors it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Envelope {
    /// CAMARA's `MediaSessionStatusChange`: `{"status": ...}`; answered with the full session.
    Flat,
    /// The seed's `{"receiverSessionStatus": {...}}`, under exactly the key the client used.
    Receiver(&'static str),
}

/// The parties a body may name; they must be the session's own.
#[derive(Debug, Default)]
pub struct Parties {
    pub originator: Option<Address>,
    pub originator_name: Option<String>,
    pub receiver: Option<Address>,
    pub receiver_name: Option<String>,
}

/// A parsed, valid PUT body.
#[derive(Debug)]
pub struct StatusUpdate {
    pub envelope: Envelope,
    pub change: StatusChange,
    pub parties: Parties,
    pub media_session_id: Option<String>,
}

const ENVELOPE_KEYS: [&str; 2] = ["receiverSessionStatus", "ReceiverSessionStatus"];

impl StatusUpdate {
    /// The update a PUT body asks for. The common bodies (a status, perhaps an offer or answer,
    /// flat or in the seed's envelope) are read straight into typed values; any other body, and
    /// any body with something wrong in it, is read field by field by [`Self::parse`], which
    /// decides what it means and names the field at fault.
    pub fn from_json(body: &[u8], policy: SdpPolicy) -> Result<Self, ApiError> {
        match fast::read(body, policy) {
            Some(update) => Ok(update),
            None => Self::parse(json_object(body)?, policy),
        }
    }

    pub fn parse(
        mut top: Map<String, serde_json::Value>,
        policy: SdpPolicy,
    ) -> Result<Self, ApiError> {
        let wrapped: Vec<(&'static str, serde_json::Value)> = ENVELOPE_KEYS
            .iter()
            .filter_map(|key| top.remove(*key).map(|value| (*key, value)))
            .collect();
        let (envelope, mut fields) = match (wrapped.as_slice(), top.contains_key("status")) {
            ([], true) => (Envelope::Flat, Fields::new("", top)),
            ([], false) => {
                return Err(ApiError::invalid(
                    "status is required (or a receiverSessionStatus envelope carrying it).",
                ));
            }
            ([_], true) => {
                return Err(ApiError::invalid(
                    "Send either a top-level status or a receiverSessionStatus envelope, not both.",
                ));
            }
            ([(key, _)], false) => {
                let key = *key;
                let Some((_, serde_json::Value::Object(inner))) = wrapped.into_iter().next() else {
                    return Err(ApiError::invalid(format!("{key} must be an object.")));
                };
                (
                    Envelope::Receiver(key),
                    Fields::new(format!("{key}."), inner),
                )
            }
            _ => {
                return Err(ApiError::invalid(
                    "Send either receiverSessionStatus or ReceiverSessionStatus, not both.",
                ));
            }
        };
        let status = fields.status("status")?;
        if !status.is_client_settable() {
            return Err(ApiError::new(
                Code::OutOfRange,
                format!(
                    "{} {status} is set by the network; use DELETE to end a session.",
                    fields.path("status")
                ),
            ));
        }
        let change = StatusChange {
            status,
            offer: fields.sdp("offer", policy)?,
            answer: fields.sdp("answer", policy)?,
            location: fields.location("locationDetails")?,
        };
        let parties = Parties {
            originator: fields.address("originatorAddress")?,
            originator_name: fields.name("originatorName")?,
            receiver: fields.address("receiverAddress")?,
            receiver_name: fields.name("receiverName")?,
        };
        let media_session_id = fields.string("mediaSessionId")?;
        Ok(Self {
            envelope,
            change,
            parties,
            media_session_id,
        })
    }

    /// Parties cannot change: a 3-legged caller naming someone else contradicts its token (403), a
    /// 2-legged caller simply sent a wrong argument (400).
    fn check_parties(&self, caller: &Caller, session: &Session) -> Result<(), ApiError> {
        let named = [
            (
                "originatorAddress",
                self.parties.originator.as_ref(),
                &session.originator,
            ),
            (
                "receiverAddress",
                self.parties.receiver.as_ref(),
                &session.receiver,
            ),
        ];
        for (field, sent, stored) in named {
            if sent.is_some_and(|sent| sent != stored) {
                return Err(if caller.subscriber.is_some() {
                    ApiError::new(
                        Code::InvalidTokenContext,
                        format!(
                            "{field} is not consistent with access token: the parties of a session cannot change."
                        ),
                    )
                } else {
                    ApiError::invalid(format!(
                        "{field} does not match the session: the parties of a session cannot change."
                    ))
                });
            }
        }
        Ok(())
    }
}

fn sdp_fingerprint(sdp: Option<&Sdp>) -> Option<String> {
    use std::hash::{DefaultHasher, Hash, Hasher};
    sdp.map(|sdp| {
        let mut hasher = DefaultHasher::new();
        sdp.json().hash(&mut hasher);
        format!("len={} hash={:016x}", sdp.len(), hasher.finish())
    })
}

pub async fn put_status(
    State(state): State<AppState>,
    Authorized(caller, ..): Authorized<WriteOp>,
    SessionPath(id): SessionPath,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let update = StatusUpdate::from_json(&body, state.config.sdp.validation)?;
    if update
        .media_session_id
        .as_deref()
        .is_some_and(|sent| sent != id.as_str())
    {
        return Err(ApiError::invalid(
            "mediaSessionId in the body does not match the one in the path.",
        ));
    }
    state.check_subscriber(&caller)?;
    let (before, next, version) = update_visible(&state, &caller, &id, |session| {
        update.check_parties(&caller, session)?;
        Ok(session.apply(&update.change)?)
    })
    .await?;
    record_change(&id, Some(before.status), next.status, version);
    tracing::debug!(
        offer = sdp_fingerprint(update.change.offer.as_ref()),
        answer = sdp_fingerprint(update.change.answer.as_ref()),
        "session status updated"
    );
    Ok(respond(&update, &next, version))
}

fn respond(update: &StatusUpdate, session: &Session, version: u64) -> Response {
    let headers = [etag(version)];
    let Envelope::Receiver(key) = update.envelope else {
        return (headers, session_response(session)).into_response();
    };
    // The seed's envelope, under the key the client used: the fields the request carried, values
    // as stored.
    let (change, parties) = (&update.change, &update.parties);
    let mut out = json::buffer([change.answer.as_ref(), change.offer.as_ref()]);
    let mut top = Object::new(&mut out);
    let written = top
        .object(key)
        .str("status", session.status.as_str())
        .sdp("answer", change.answer.as_ref())
        .sdp("offer", change.offer.as_ref())
        .opt_str(
            "originatorAddress",
            parties.originator.as_ref().map(Address::as_str),
        )
        .opt_str("originatorName", parties.originator_name.as_deref())
        .opt_str(
            "receiverAddress",
            parties.receiver.as_ref().map(Address::as_str),
        )
        .opt_str("receiverName", parties.receiver_name.as_deref())
        .serde("locationDetails", change.location.as_ref())
        .map(Object::end);
    top.end();
    (headers, json::response(written.map(|()| out))).into_response()
}
