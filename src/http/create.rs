//! `POST /sessions`: a new outgoing call, in status Initial, owned by the calling API consumer.

use axum::extract::{OriginalUri, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use super::AppState;
use super::body::{Fields, session_response};
use super::error::{ApiError, Code};
use super::extract::{Authorized, CreateOp, JsonBody, RegistrationId, json_object};
use super::middleware::record_change;
use super::sessions::etag;
use crate::auth::Caller;
use crate::domain::{
    Address, CallType, Direction, Location, Sdp, SdpPolicy, Session, SessionId, SessionStatus,
};
use crate::store::StoreError;

/// The originator's address when its identity is withheld (RFC 3323).
const ANONYMOUS: &str = "sip:anonymous@anonymous.invalid";

/// A parsed, valid `MediaSessionCreate` body.
#[derive(Debug)]
pub struct NewSession {
    originator: Address,
    originator_name: Option<String>,
    receiver: Address,
    receiver_name: Option<String>,
    offer: Sdp,
    call_type: CallType,
    location: Option<Location>,
}

impl NewSession {
    pub fn parse(body: Map<String, Value>, policy: SdpPolicy) -> Result<Self, ApiError> {
        let mut fields = Fields::new("", body);
        for (key, why) in [
            ("status", "the network sets a session's status"),
            (
                "answer",
                "only the receiver answers, with PUT /sessions/{mediaSessionId}/status",
            ),
        ] {
            if fields.has(key) {
                return Err(ApiError::invalid(format!(
                    "{key} must not be sent when creating a session: {why}."
                )));
            }
        }
        let originator = fields
            .address("originatorAddress")?
            .ok_or_else(|| ApiError::invalid("originatorAddress is required."))?;
        let receiver = fields
            .address("receiverAddress")?
            .ok_or_else(|| ApiError::invalid("receiverAddress is required."))?;
        if receiver.as_str() == ANONYMOUS {
            return Err(ApiError::invalid(format!(
                "receiverAddress must not be {ANONYMOUS}: an anonymous address can only originate a call."
            )));
        }
        let offer = fields
            .sdp("offer", policy)?
            .ok_or_else(|| ApiError::invalid("offer is required: the originator's SDP offer."))?;
        Ok(Self {
            originator,
            originator_name: fields.name("originatorName")?,
            receiver,
            receiver_name: fields.name("receiverName")?,
            offer,
            call_type: fields
                .choice(
                    "callType",
                    &[
                        ("REGULAR", CallType::Regular),
                        ("EMERGENCY", CallType::Emergency),
                    ],
                )?
                .unwrap_or_default(),
            location: fields.location("locationDetails")?,
        })
    }

    /// A 3-legged caller can only call as its own subscriber, or withhold its identity.
    fn check_originator(&self, caller: &Caller) -> Result<(), ApiError> {
        match &caller.subscriber {
            Some(sub) if &self.originator != sub && self.originator.as_str() != ANONYMOUS => {
                Err(ApiError::new(
                    Code::InvalidTokenContext,
                    "originatorAddress is not consistent with access token.",
                ))
            }
            _ => Ok(()),
        }
    }

    fn into_session(self, id: SessionId, caller: &Caller) -> Session {
        let withheld_originator = if self.originator.as_str() == ANONYMOUS {
            caller.subscriber.clone()
        } else {
            None
        };
        Session {
            id,
            originator: self.originator,
            originator_name: self.originator_name.map(Into::into),
            receiver: self.receiver,
            receiver_name: self.receiver_name.map(Into::into),
            status: SessionStatus::Initial,
            offer: Some(self.offer),
            answer: None,
            call_type: self.call_type,
            location: self.location,
            owner: Some(caller.consumer().into()),
            direction: Direction::Outgoing,
            withheld_originator,
            ended: false,
        }
    }
}

/// A new `mediaSessionId`: 64 upper-case hex digits carrying 244 random bits from the operating
/// system's CSPRNG (two v4 UUIDs), so ids cannot be guessed or enumerated.
fn new_session_id() -> SessionId {
    let id = format!(
        "{:032X}{:032X}",
        uuid::Uuid::new_v4().as_u128(),
        uuid::Uuid::new_v4().as_u128()
    );
    SessionId::parse(id).expect("64 characters is a valid id")
}

/// Checks in DESIGN §5's order: 401 → 403 scope → 400 (header, body) → 404 (subscriber,
/// registration) → 403 token context → 501 emergency → 429 quota.
pub async fn create_session(
    State(state): State<AppState>,
    Authorized(caller, ..): Authorized<CreateOp>,
    OriginalUri(uri): OriginalUri,
    RegistrationId(registration): RegistrationId,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let new = NewSession::parse(json_object(&body)?, state.config.sdp.validation)?;
    state.check_subscriber(&caller)?;
    let sessions = &state.config.sessions;
    if sessions.check_registration && !sessions.registrations.contains(&registration) {
        return Err(ApiError::new(
            Code::IdentifierNotFound,
            "Device identifier not found: the registrationId is not a known registration.",
        ));
    }
    new.check_originator(&caller)?;
    if new.call_type == CallType::Emergency && !sessions.emergency_calls {
        return Err(ApiError::plain(Code::CallTypeEmergencyNotSupported));
    }
    let mut session = new.into_session(new_session_id(), &caller);
    let version = loop {
        match state.store.insert(session.clone()).await {
            Ok(version) => break version,
            // 244 random bits make this all but impossible; a fresh id is the right answer.
            Err(StoreError::AlreadyExists) => session.id = new_session_id(),
            Err(err) => return Err(err.into()),
        }
    };
    record_change(&session.id, None, session.status, version);
    tracing::debug!(
        call_type = ?session.call_type,
        offer_len = session.offer.as_ref().map(Sdp::len),
        "session created"
    );
    let location = format!(
        "{}/{}",
        uri.path().trim_end_matches('/'),
        session.id.as_str()
    );
    let location = HeaderValue::from_str(&location).map_err(|_| ApiError::plain(Code::Internal))?;
    Ok((
        StatusCode::CREATED,
        [etag(version), (header::LOCATION, location)],
        session_response(&session),
    )
        .into_response())
}
