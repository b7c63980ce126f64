//! `PUT /sessions/{mediaSessionId}/status`: parse → authorise → load → transition →
//! compare-and-swap → respond, in the envelope the client used.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::{FieldPath, SdpText, SessionResponse, etag, location, name, update_visible};
use crate::domain::{AccessError, Present, PresentObject};
use crate::domain::{
    Address, Location, Sdp, SdpPolicy, Session, SessionStatus, StatusChange, UncheckedLocation,
};
use crate::http::AppState;
use crate::http::error::{ApiError, Code};
use crate::http::extract::{Authorized, CamaraJson, SessionPath, WriteOp};
use crate::http::middleware::RequestLog;

/// A PUT body: CAMARA's flat `MediaSessionStatusChange`, or the seed's envelope
/// `{"receiverSessionStatus": {...}}` (also spelled `ReceiverSessionStatus`) carrying the same
/// fields. Unknown fields are ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", expecting = "an object")]
pub struct StatusBody {
    status: Present<SessionStatus>,
    offer: PresentObject<SdpText>,
    answer: PresentObject<SdpText>,
    location_details: PresentObject<UncheckedLocation>,
    originator_address: Present<Address>,
    originator_name: Present<String>,
    receiver_address: Present<Address>,
    receiver_name: Present<String>,
    media_session_id: Present<String>,
    #[serde(rename = "receiverSessionStatus")]
    envelope: PresentObject<Box<StatusBody>>,
    #[serde(rename = "ReceiverSessionStatus")]
    envelope_capitalised: PresentObject<Box<StatusBody>>,
}

/// Which body shape the client used; the response mirrors it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// `{"status": ...}`: answered with the full session.
    Flat,
    /// `{"receiverSessionStatus": {...}}`: answered in the same envelope.
    Envelope,
    /// `{"ReceiverSessionStatus": {...}}`, as the seed's Hold and Resume examples spell it.
    EnvelopeCapitalised,
}

impl Shape {
    /// What a field's path starts with in this shape.
    const fn prefix(self) -> &'static str {
        match self {
            Self::Flat => "",
            Self::Envelope => "receiverSessionStatus.",
            Self::EnvelopeCapitalised => "ReceiverSessionStatus.",
        }
    }
}

/// The parties a body may name; they must be the session's own. The envelope's answer echoes
/// the ones that were sent.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct Parties {
    #[serde(skip_serializing_if = "Option::is_none")]
    originator_address: Option<Address>,
    #[serde(skip_serializing_if = "Option::is_none")]
    originator_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    receiver_address: Option<Address>,
    #[serde(skip_serializing_if = "Option::is_none")]
    receiver_name: Option<String>,
}

/// A parsed, valid PUT body.
#[derive(Debug)]
pub struct StatusUpdate {
    /// The offer and answer as sent, for the envelope's answer.
    sent_offer: Option<SdpText>,
    sent_answer: Option<SdpText>,
    shape: Shape,
    change: StatusChange,
    parties: Parties,
    media_session_id: Option<String>,
}

impl StatusBody {
    /// The update the body asks for, every field checked; a refusal names the field by its path.
    pub fn check(self, policy: SdpPolicy) -> Result<StatusUpdate, ApiError> {
        let (shape, fields, prefix) = match (
            self.envelope.into_option(),
            self.envelope_capitalised.into_option(),
        ) {
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid(
                    "Send either receiverSessionStatus or ReceiverSessionStatus, not both.",
                ));
            }
            (Some(_), None) | (None, Some(_)) if self.status.is_some() => {
                return Err(ApiError::invalid(
                    "Send either a top-level status or a receiverSessionStatus envelope, not both.",
                ));
            }
            (Some(inner), None) => (Shape::Envelope, *inner, Shape::Envelope.prefix()),
            (None, Some(inner)) => (
                Shape::EnvelopeCapitalised,
                *inner,
                Shape::EnvelopeCapitalised.prefix(),
            ),
            (None, None) if self.status.is_none() => {
                return Err(ApiError::invalid(
                    "status is required (or a receiverSessionStatus envelope carrying it).",
                ));
            }
            (None, None) => (
                Shape::Flat,
                Self {
                    envelope: Present::default(),
                    envelope_capitalised: Present::default(),
                    ..self
                },
                Shape::Flat.prefix(),
            ),
        };
        let path = |field: &'static str| FieldPath { prefix, field };
        let status = fields
            .status
            .ok_or_else(|| ApiError::invalid(format!("{} is required.", path("status"))))?;
        if !status.is_client_settable() {
            return Err(ApiError::new(
                Code::OutOfRange,
                format!(
                    "{} {status} is set by the network; use DELETE to end a session.",
                    path("status")
                ),
            ));
        }
        let sdp = |sdp: &PresentObject<SdpText>, field: &'static str| {
            sdp.as_ref()
                .map(|s| s.check(path(field), policy))
                .transpose()
        };
        let change = StatusChange {
            status,
            offer: sdp(&fields.offer, "offer")?,
            answer: sdp(&fields.answer, "answer")?,
            location: location(path("locationDetails"), fields.location_details)?,
        };
        let parties = Parties {
            originator_address: fields.originator_address.into_option(),
            originator_name: name(path("originatorName"), fields.originator_name)?,
            receiver_address: fields.receiver_address.into_option(),
            receiver_name: name(path("receiverName"), fields.receiver_name)?,
        };
        Ok(StatusUpdate {
            sent_offer: fields.offer.into_option(),
            sent_answer: fields.answer.into_option(),
            shape,
            change,
            parties,
            media_session_id: fields.media_session_id.into_option(),
        })
    }
}

/// A log-safe summary of an SDP: its length and a hash, never its text (SRTP keys, ICE passwords).
fn sdp_fingerprint(sdp: Option<&Sdp>) -> Option<String> {
    use std::hash::{DefaultHasher, Hash, Hasher};
    sdp.map(|sdp| {
        let mut hasher = DefaultHasher::new();
        sdp.text().hash(&mut hasher);
        format!("len={} hash={:016x}", sdp.len(), hasher.finish())
    })
}

pub async fn put_status(
    State(state): State<AppState>,
    authorized: Authorized<WriteOp>,
    log: RequestLog,
    SessionPath(id): SessionPath,
    CamaraJson(body): CamaraJson<StatusBody>,
) -> Result<Response, ApiError> {
    let update = body.check(state.config.sdp.validation)?;
    if update
        .media_session_id
        .as_deref()
        .is_some_and(|sent| sent != id.as_str())
    {
        return Err(ApiError::invalid(
            "mediaSessionId in the body does not match the one in the path.",
        ));
    }
    let caller = authorized.caller()?;
    let (before, next, version) = update_visible(&state, &caller, &id, |session| {
        let parties = &update.parties;
        caller.actor().check_parties(
            session,
            parties.originator_address.as_ref(),
            parties.receiver_address.as_ref(),
        )?;
        // A side's refusal names the field by its path in the body's shape.
        (caller.actor().check_side(session, &update.change)).map_err(|refused| match refused {
            AccessError::Side { field, why } => {
                ApiError::invalid(format!("{}{field}: {why}.", update.shape.prefix()))
            }
            other => other.into(),
        })?;
        Ok(session.apply(&update.change)?)
    })
    .await?;
    log.change(&id, Some(before.status), next.status, version);
    tracing::debug!(
        offer = sdp_fingerprint(update.change.offer.as_ref()),
        answer = sdp_fingerprint(update.change.answer.as_ref()),
        "session status updated"
    );
    let headers = [etag(version)];
    Ok(match update.shape {
        Shape::Flat => (headers, Json(SessionResponse::from(&*next))).into_response(),
        Shape::Envelope | Shape::EnvelopeCapitalised => {
            (headers, Json(Echo::new(&update, &next))).into_response()
        }
    })
}

/// The seed's envelope answer, under the key the client used: the fields the request carried,
/// the status as stored, the SDPs byte for byte as they were sent.
#[derive(Debug, Serialize)]
enum Echo<'a> {
    #[serde(rename = "receiverSessionStatus")]
    Lower(EchoFields<'a>),
    #[serde(rename = "ReceiverSessionStatus")]
    Capitalised(EchoFields<'a>),
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct EchoFields<'a> {
    status: SessionStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    answer: Option<&'a SdpText>,
    #[serde(skip_serializing_if = "Option::is_none")]
    offer: Option<&'a SdpText>,
    #[serde(flatten)]
    parties: &'a Parties,
    #[serde(skip_serializing_if = "Option::is_none")]
    location_details: Option<&'a Location>,
}

impl<'a> Echo<'a> {
    fn new(update: &'a StatusUpdate, session: &'a Session) -> Self {
        let fields = EchoFields {
            status: session.status,
            answer: update.sent_answer.as_ref(),
            offer: update.sent_offer.as_ref(),
            parties: &update.parties,
            location_details: update.change.location.as_ref(),
        };
        match update.shape {
            Shape::EnvelopeCapitalised => Self::Capitalised(fields),
            Shape::Flat | Shape::Envelope => Self::Lower(fields),
        }
    }
}
