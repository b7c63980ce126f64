//! The network's admin API (`/network/v1`, DESIGN §12): served only with `network.admin_api`,
//! every operation needs the scope `camara-webrtc:network` ([`NetworkOp`], checked before the
//! path and the body). Without the setting its routes are
//! unknown routes (404 NOT_FOUND).

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use serde::Serialize;

use super::error::ApiError;
use super::extract::{Authorized, CamaraJson, NetworkOp, RegistrationPath, SessionPath};
use super::sessions::{SdpText, SessionResponse};
use super::{AppState, Route, router_of};
use crate::domain::{
    Address, CallType, Direction, EndReason, Present, PresentObject, Session, SessionStatus,
};
use crate::network::Numbers;
use crate::store::{StoreError, now_ms};

/// The API's operations, in the order of the OpenAPI document.
pub static ROUTES: [Route; 4] = [
    Route::new(Method::POST, "/network/v1/calls", || {
        axum::routing::post(incoming_call)
    }),
    Route::new(
        Method::POST,
        "/network/v1/sessions/{mediaSessionId}/events",
        || axum::routing::post(network_move),
    ),
    Route::new(
        Method::DELETE,
        "/network/v1/registrations/{registrationId}",
        || delete(end_registration),
    ),
    Route::new(Method::GET, "/network/v1/numbers", || get(numbers)),
];

pub fn router() -> Router<AppState> {
    router_of("", &ROUTES)
}

/// A scripted receiver as `GET /numbers` shows it: its steps with the times in force
/// (`network.time_scale` applied).
#[derive(Debug, Serialize)]
struct NumberView<'a> {
    address: &'a str,
    steps: Vec<StepView<'a>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct StepView<'a> {
    after_ms: u64,
    status: crate::domain::SessionStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

/// `POST /calls`: an incoming call from outside to a registered receiver.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(
    default,
    rename_all = "camelCase",
    deny_unknown_fields,
    expecting = "an object"
)]
struct CallBody {
    originator_address: Present<Address>,
    receiver_address: Present<Address>,
    offer: PresentObject<SdpText>,
    call_type: Present<CallType>,
}

/// `POST /network/v1/calls`: a call from outside the service to a receiver with an active
/// registration here (404 IDENTIFIER_NOT_FOUND otherwise). The session belongs to the API
/// consumer of the receiver's registration (of several, the one expiring last), is incoming
/// for it, is linked to that registration (it ends with it, as calls do), and its creation
/// sends `session-invitation` to the receiver's subscriptions. 201 with the session.
async fn incoming_call(
    State(state): State<AppState>,
    _authorized: Authorized<NetworkOp>,
    CamaraJson(body): CamaraJson<CallBody>,
) -> Result<Response, ApiError> {
    let originator = (body.originator_address.into_option())
        .ok_or_else(|| ApiError::invalid("originatorAddress is required."))?;
    let receiver = (body.receiver_address.into_option())
        .ok_or_else(|| ApiError::invalid("receiverAddress is required."))?;
    let policy = state.config.sdp.validation;
    let offer = (body.offer.as_ref())
        .map(|offer| offer.check("offer", policy))
        .transpose()?;
    let unregistered = || {
        ApiError::new(
            super::error::Code::IdentifierNotFound,
            "Device identifier not found: receiverAddress has no active registration.",
        )
    };
    let number = receiver.phone_number().ok_or_else(unregistered)?;
    let registrations = (state.registrations)
        .number_registrations(number, now_ms())
        .await?;
    let registration = registrations.last().ok_or_else(unregistered)?;
    let mut session = Session {
        id: super::sessions::new_session_id(),
        originator,
        originator_name: None,
        receiver,
        receiver_name: None,
        status: SessionStatus::Initial,
        offer,
        answer: None,
        call_type: body.call_type.into_option().unwrap_or_default(),
        location: None,
        owner: Some(registration.owner.as_str().into()),
        direction: Direction::Incoming,
        withheld_originator: None,
        ended: false,
        reason: None,
        registration: Some(registration.id.as_str().into()),
    };
    loop {
        match state.store.insert(session.clone()).await {
            Ok(_) => break,
            Err(StoreError::AlreadyExists) => session.id = super::sessions::new_session_id(),
            Err(err) => return Err(err.into()),
        }
    }
    tracing::info!(
        session = session.id.as_str(),
        registration = registration.id.as_str(),
        "incoming call from the network"
    );
    Ok((StatusCode::CREATED, Json(SessionResponse::from(&session))).into_response())
}

/// `POST /sessions/{id}/events`: a move of the network.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(
    default,
    rename_all = "camelCase",
    deny_unknown_fields,
    expecting = "an object"
)]
struct MoveBody {
    status: Present<SessionStatus>,
    offer: PresentObject<SdpText>,
    answer: PresentObject<SdpText>,
    reason: Present<String>,
}

/// How many times a move is tried again when a client's write wins the race.
const MOVE_ATTEMPTS: usize = 8;

/// `POST /network/v1/sessions/{mediaSessionId}/events`: the network moves any session (of any
/// consumer) as its table allows (409 INCOMPATIBLE_STATE otherwise), with the SDPs and reason
/// given — to InProgress or Connected without an answer, one generated for the session's offer
/// (while it has none); 200 with the session as GET shows it. Its events follow as for any
/// change.
async fn network_move(
    State(state): State<AppState>,
    _authorized: Authorized<NetworkOp>,
    SessionPath(id): SessionPath,
    CamaraJson(body): CamaraJson<MoveBody>,
) -> Result<Response, ApiError> {
    let policy = state.config.sdp.validation;
    let status =
        (body.status.into_option()).ok_or_else(|| ApiError::invalid("status is required."))?;
    let sdp = |sdp: &PresentObject<SdpText>, field: &str| {
        sdp.as_ref().map(|s| s.check(field, policy)).transpose()
    };
    let (offer, answer) = (sdp(&body.offer, "offer")?, sdp(&body.answer, "answer")?);
    let reason = match body.reason.into_option() {
        Some(reason) if reason.is_empty() || reason.chars().count() > 256 => {
            return Err(ApiError::invalid("reason must have 1 to 256 characters."));
        }
        other => other.map(std::sync::Arc::from),
    };
    for _ in 0..MOVE_ATTEMPTS {
        // A session its client DELETEd is gone (DESIGN §4).
        let Some(current) = (state.store.get(&id).await?).filter(|c| !c.session.ended) else {
            return Err(ApiError::plain(super::error::Code::NotFound));
        };
        let mut next = (current.session).network_move(
            status,
            offer.clone(),
            answer.clone(),
            reason.clone(),
        )?;
        // Generated for the offer in force after the move (one sent with it included).
        if let Some(generated) = crate::network::generated_answer(&next, status) {
            next.answer = Some(generated);
        }
        match (state.store)
            .compare_and_swap(current.version, std::sync::Arc::new(next.clone()))
            .await
        {
            Ok(version) => {
                crate::telemetry::metrics::transition(Some(current.session.status), status);
                tracing::info!(session = id.as_str(), from = %current.session.status, to = %status, version, "network move");
                return Ok(Json(SessionResponse::from(&next)).into_response());
            }
            Err(StoreError::VersionConflict { .. }) => continue,
            Err(StoreError::NotFound) => return Err(ApiError::plain(super::error::Code::NotFound)),
            Err(err) => return Err(err.into()),
        }
    }
    Err(ApiError::plain(super::error::Code::Aborted))
}

/// `DELETE /network/v1/registrations/{registrationId}`: the network ends an active registration
/// of any consumer (NETWORK_TERMINATED): its REGULAR calls end first, as on expiry, when
/// `registration.end_calls_on_expiry`; then `registration-ends` goes to the subscriptions that
/// named it, and those it was made for end.
async fn end_registration(
    State(state): State<AppState>,
    _authorized: Authorized<NetworkOp>,
    RegistrationPath(id): RegistrationPath,
) -> Result<Response, ApiError> {
    let now = now_ms();
    if state.registrations.registration(&id, now).await?.is_none() {
        return Err(super::registrations::not_found());
    }
    if state.config.registration.end_calls_on_expiry {
        crate::store::end_regular_calls(state.store.as_ref(), &id).await?;
    }
    let reason = EndReason::NetworkTerminated;
    match state.registrations.end_registration(&id, reason, now).await {
        Ok(_) => {}
        Err(StoreError::NotFound) => return Err(super::registrations::not_found()),
        Err(err) => return Err(err.into()),
    }
    crate::telemetry::metrics::registration_ended(reason.as_str());
    tracing::info!(
        registration = id.as_str(),
        "registration ended by the network"
    );
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /network/v1/numbers`: the scripted receivers in force, built-in and configured.
async fn numbers(
    State(state): State<AppState>,
    _authorized: Authorized<NetworkOp>,
) -> Result<Response, ApiError> {
    let numbers = Numbers::from_config(&state.config.network);
    let views: Vec<NumberView<'_>> = (numbers.all().iter())
        .map(|script| NumberView {
            address: &script.address,
            steps: (script.steps.iter())
                .map(|step| StepView {
                    after_ms: u64::try_from(numbers.due_after(step).as_millis())
                        .unwrap_or(u64::MAX),
                    status: step.status,
                    reason: step.reason.as_deref(),
                })
                .collect(),
        })
        .collect();
    Ok(Json(views).into_response())
}
