//! `POST /sessions`: a new outgoing call, in status Initial, owned by the calling API consumer.

use std::sync::Arc;

use axum::Json;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::{SdpText, SessionResponse, etag, location, name};
use crate::auth::Caller;
use crate::domain::{
    ANONYMOUS, Address, CallType, Direction, Location, Sdp, SdpPolicy, Session, SessionId,
    SessionStatus, UncheckedLocation,
};
use crate::domain::{Present, PresentObject, Registration};
use crate::http::AppState;
use crate::http::error::{ApiError, Code};
use crate::http::extract::{Authorized, CamaraJson, CreateOp, RegistrationId};
use crate::http::middleware::RequestLog;
use crate::store::{StoreError, now_ms};

/// CAMARA's `MediaSessionCreate`. Unknown fields are ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", expecting = "an object")]
pub struct CreateBody {
    originator_address: Present<Address>,
    originator_name: Present<String>,
    receiver_address: Present<Address>,
    receiver_name: Present<String>,
    offer: PresentObject<SdpText>,
    call_type: Present<CallType>,
    location_details: PresentObject<UncheckedLocation>,
    /// Refused when sent: the network sets a session's status.
    status: Present<IgnoredAny>,
    /// Refused when sent: only the receiver answers.
    answer: Present<IgnoredAny>,
}

/// A parsed, valid new session.
#[derive(Debug)]
struct NewSession {
    originator: Address,
    originator_name: Option<String>,
    receiver: Address,
    receiver_name: Option<String>,
    offer: Sdp,
    call_type: CallType,
    location: Option<Location>,
}

impl CreateBody {
    fn check(self, policy: SdpPolicy) -> Result<NewSession, ApiError> {
        for (sent, key, why) in [
            (
                self.status.is_some(),
                "status",
                "the network sets a session's status",
            ),
            (
                self.answer.is_some(),
                "answer",
                "only the receiver answers, with PUT /sessions/{mediaSessionId}/status",
            ),
        ] {
            if sent {
                return Err(ApiError::invalid(format!(
                    "{key} must not be sent when creating a session: {why}."
                )));
            }
        }
        let originator = self
            .originator_address
            .into_option()
            .ok_or_else(|| ApiError::invalid("originatorAddress is required."))?;
        let receiver = self
            .receiver_address
            .into_option()
            .ok_or_else(|| ApiError::invalid("receiverAddress is required."))?;
        if receiver.as_str() == ANONYMOUS {
            return Err(ApiError::invalid(format!(
                "receiverAddress must not be {ANONYMOUS}: an anonymous address can only originate a call."
            )));
        }
        let offer = self
            .offer
            .into_option()
            .ok_or_else(|| ApiError::invalid("offer is required: the originator's SDP offer."))?
            .check("offer", policy)?;
        Ok(NewSession {
            originator,
            originator_name: name("originatorName", self.originator_name)?,
            receiver,
            receiver_name: name("receiverName", self.receiver_name)?,
            offer,
            call_type: self.call_type.unwrap_or_default(),
            location: location("locationDetails", self.location_details)?,
        })
    }
}

impl NewSession {
    fn into_session(
        self,
        id: SessionId,
        caller: &Caller,
        registration: Option<Arc<str>>,
    ) -> Session {
        Session {
            registration,
            id,
            withheld_originator: caller.actor().withheld_originator(&self.originator),
            reason: None,
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
            ended: false,
            steps_played: 0,
            receiver_owner: None,
            hung_up: None,
            receiver_registration: None,
        }
    }
}

/// A new `mediaSessionId`: 64 upper-case hex digits carrying 244 random bits (two v4 UUIDs from
/// uuid's `fast-rng`, a CSPRNG seeded by the operating system), so ids cannot be guessed or
/// enumerated.
pub fn new_session_id() -> SessionId {
    let id = format!(
        "{:032X}{:032X}",
        uuid::Uuid::new_v4().as_u128(),
        uuid::Uuid::new_v4().as_u128()
    );
    SessionId::parse(id).expect("64 characters is a valid id")
}

/// The registration the call is made from, when the `registrationId` header names an active
/// registration of the caller's API consumer whose phone number is the originator's (the
/// withheld one, for an anonymous call): the call then ends with it (DESIGN §10).
async fn registered_caller(
    state: &AppState,
    caller: &Caller,
    new: &NewSession,
    id: &str,
) -> Result<Option<Registration>, ApiError> {
    // The service's registrationIds are UUIDs (read in any case): any other header value names
    // none, and costs no store read.
    let Some(id) = crate::domain::registration::uuid_key(id) else {
        return Ok(None);
    };
    let Some(found) = state.registrations.registration(&id, now_ms()).await? else {
        return Ok(None);
    };
    let originator = caller
        .actor()
        .withheld_originator(&new.originator)
        .unwrap_or_else(|| new.originator.clone());
    let matches = found.owner == caller.consumer()
        && originator.phone_number() == Some(found.phone_number.as_str());
    Ok(matches.then_some(found))
}

/// A call whose registration ended between the check and the insert (its expiry sweep ran in
/// between, so it never saw the call) ends now, as it would have with the registration: the
/// answer then shows it ended. Calls without a registration, EMERGENCY calls and those of a
/// service with `end_calls_on_expiry` off are returned as they are.
async fn ended_with_its_registration(
    state: &AppState,
    session: Session,
    version: u64,
) -> Result<(Session, u64), ApiError> {
    let Some(registration) = &session.registration else {
        return Ok((session, version));
    };
    if session.call_type != CallType::Regular
        || !state.config.registration.end_calls_on_expiry
        || (state
            .registrations
            .registration(registration, now_ms())
            .await?)
            .is_some()
    {
        return Ok((session, version));
    }
    let ended = session.end_by_network(crate::store::expiry::REASON);
    match state
        .store
        .compare_and_swap(version, Arc::new(ended.clone()))
        .await
    {
        Ok(version) => Ok((ended, version)),
        // Changed (or ended) by someone else already: it is answered as created.
        Err(StoreError::VersionConflict { .. } | StoreError::NotFound) => Ok((session, version)),
        Err(err) => Err(err.into()),
    }
}

/// Checks in DESIGN §5's order: 401 → 429 rate → 403 scope → 400 (header, body) → 404
/// (subscriber list, registration) → 403 token context → 501 emergency → 429 quota.
pub async fn create_session(
    State(state): State<AppState>,
    authorized: Authorized<CreateOp>,
    log: RequestLog,
    OriginalUri(uri): OriginalUri,
    RegistrationId(registration): RegistrationId,
    CamaraJson(body): CamaraJson<CreateBody>,
) -> Result<Response, ApiError> {
    let new = body.check(state.config.sdp.validation)?;
    let caller = authorized.caller()?;
    let sessions = &state.config.sessions;
    let registered = registered_caller(&state, &caller, &new, &registration).await?;
    if sessions.check_registration
        && registered.is_none()
        && !sessions.registrations.contains(&registration)
    {
        return Err(ApiError::new(
            Code::IdentifierNotFound,
            "Device identifier not found: the registrationId is not an active registration of this API consumer at originatorAddress.",
        ));
    }
    caller.actor().check_originator(&new.originator)?;
    if new.call_type == CallType::Emergency && !sessions.emergency_calls {
        return Err(ApiError::plain(Code::CallTypeEmergencyNotSupported));
    }
    // The network knows the caller's number: its own token's, or a proven registration's.
    let caller_proven =
        caller.phone_number().is_some() || registered.as_ref().is_some_and(|r| r.proven);
    let registered = registered.map(|registration| Arc::from(registration.id));
    let mut session = new.into_session(new_session_id(), &caller, registered);
    // On-net: delivered to another API consumer's app, when the network knows the caller. A
    // consumer's calls to its own registrations are not on-net: it sees and drives both sides.
    let registered_receiver = match state.network.scripts(&session.receiver) {
        true => Vec::new(),
        false => {
            let registrations = state.registrations.as_ref();
            crate::network::registrations_of(registrations, &session.receiver).await?
        }
    };
    let receiving = crate::network::receiving(&registered_receiver, Some(caller.consumer()));
    if let Some(registration) = receiving.filter(|_| caller_proven) {
        session.receiver_owner = Some(registration.owner.as_str().into());
        session.receiver_registration = Some(registration.id.as_str().into());
    }
    let placed = now_ms();
    let version = loop {
        let registered = !registered_receiver.is_empty();
        let timers = (state.network).outgoing_timers(&session, placed, registered);
        match state.store.insert_with(session.clone(), timers).await {
            Ok(version) => break version,
            // 244 random bits make this all but impossible; a fresh id is the right answer.
            Err(StoreError::AlreadyExists) => session.id = new_session_id(),
            Err(err) => return Err(err.into()),
        }
    };
    state.network.wake();
    log.change(&session.id, None, session.status, version);
    tracing::debug!(
        call_type = ?session.call_type,
        offer_len = session.offer.as_ref().map(Sdp::len),
        "session created"
    );
    let (session, version) = ended_with_its_registration(&state, session, version).await?;
    let location = format!(
        "{}/{}",
        uri.path().trim_end_matches('/'),
        session.id.as_str()
    );
    let location = HeaderValue::from_str(&location).map_err(|_| ApiError::plain(Code::Internal))?;
    Ok((
        StatusCode::CREATED,
        [etag(version), (header::LOCATION, location)],
        Json(SessionResponse::from(&session)),
    )
        .into_response())
}
