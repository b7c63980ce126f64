//! The network's admin API (`/network/v1`, DESIGN §12): served only with `network.admin_api`,
//! every operation needs the scope `camara-webrtc:network` ([`NetworkOp`], checked before the
//! path and the body). Without the setting its routes are
//! unknown routes (404 NOT_FOUND), as are the console's page and assets ([`console`]).

mod console;
mod stream;

use std::sync::Arc;

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
    is_reason,
};
use crate::network::numbers::{DAY_MS, MAX_STEPS};
use crate::network::{self, Applied};
use crate::store::{ScriptStep, millis};
use crate::store::{StoreError, now_ms};

/// The API's operations, in the order of the OpenAPI document.
pub static ROUTES: [Route; 6] = [
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
    Route::new(Method::GET, "/network/v1/sessions/{mediaSessionId}", || {
        get(read_session)
    }),
    Route::new(Method::GET, "/network/v1/stream", || get(stream::stream)),
];

/// The admin API and the console.
pub fn router() -> Router<AppState> {
    router_of("", &ROUTES).merge(console::router())
}

/// `GET /network/v1/sessions/{mediaSessionId}`: any session (of any consumer) as GET shows it,
/// its SDPs' secrets masked ([`crate::domain::Sdp::masked`]): the network's view, for the
/// console. A session DELETEd by its client is gone (404), as for the API.
async fn read_session(
    State(state): State<AppState>,
    _authorized: Authorized<NetworkOp>,
    SessionPath(id): SessionPath,
) -> Result<Response, ApiError> {
    let stored = (state.store.get(&id).await?)
        .filter(|found| !found.session.ended)
        .ok_or_else(|| ApiError::plain(super::error::Code::NotFound))?;
    let mut shown = Session::clone(&stored.session);
    shown.offer = shown.offer.as_ref().map(crate::domain::Sdp::masked);
    shown.answer = shown.answer.as_ref().map(crate::domain::Sdp::masked);
    Ok(Json(SessionResponse::from(&shown)).into_response())
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
    steps: Present<Vec<CallStep>>,
}

/// One step of the caller's script sent with an incoming call.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, expecting = "an object")]
struct CallStep {
    after_ms: u64,
    status: SessionStatus,
    #[serde(default)]
    reason: Present<String>,
}

/// The caller's script, checked and scaled by `network.time_scale`: at most [`MAX_STEPS`]
/// steps, each a status the network can set (not Initial), in time order, within a day, with a
/// reason of 1 to 256 characters. Whether the table allows a step is known only when it comes:
/// one it refuses then is skipped.
fn caller_script(
    steps: Vec<CallStep>,
    numbers: &network::Numbers,
) -> Result<Arc<[ScriptStep]>, ApiError> {
    if steps.len() > MAX_STEPS {
        return Err(ApiError::invalid(format!(
            "steps must have at most {MAX_STEPS} items."
        )));
    }
    let mut at = 0;
    let mut script = Vec::with_capacity(steps.len());
    for (i, step) in steps.into_iter().enumerate() {
        let field = |name: &str| format!("steps[{i}].{name}");
        if step.status == SessionStatus::Initial {
            return Err(ApiError::invalid(format!(
                "{} must be a status the network sets: not Initial.",
                field("status")
            )));
        }
        if step.after_ms > DAY_MS || step.after_ms < at {
            return Err(ApiError::invalid(format!(
                "{} must be at least the step before's and at most {DAY_MS} (a day).",
                field("afterMs")
            )));
        }
        if (step.reason.as_deref()).is_some_and(|r| !is_reason(r)) {
            return Err(ApiError::invalid(format!(
                "{} must have 1 to 256 characters.",
                field("reason")
            )));
        }
        at = step.after_ms;
        script.push(ScriptStep {
            after_ms: millis(numbers.due_after_ms(step.after_ms)),
            status: step.status,
            reason: step.reason.into_option().map(Arc::from),
        });
    }
    Ok(script.into())
}

/// `POST /network/v1/calls`: a call from outside the service to a receiver with an active
/// registration here (404 IDENTIFIER_NOT_FOUND otherwise). The session belongs to the API
/// consumer of the receiver's registration (of several, the one expiring last), is incoming
/// for it, is linked to that registration (it ends with it, as calls do), and its creation
/// sends `session-invitation` to the receiver's subscriptions. The caller's `steps` play as a
/// scripted number's do, and a call not answered within `network.no_answer_seconds` ends
/// NoAnswer. 201 with the session.
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
    // Required, though DESIGN §12 shows it optional: a CAMARA session always has an offer.
    let offer = (body.offer.as_ref())
        .ok_or_else(|| ApiError::invalid("offer is required: the caller's SDP offer."))?
        .check("offer", policy)?;
    let script = caller_script(
        body.steps.into_option().unwrap_or_default(),
        &state.network.numbers,
    )?;
    let unregistered = || {
        ApiError::new(
            super::error::Code::IdentifierNotFound,
            "Device identifier not found: receiverAddress has no active registration that receives calls (one made with a 3-legged token of its number).",
        )
    };
    let found = network::registrations_of(state.registrations.as_ref(), &receiver).await?;
    let registration = network::receiving(&found, None).ok_or_else(unregistered)?;
    let mut session = Session {
        id: super::sessions::new_session_id(),
        originator,
        originator_name: None,
        receiver,
        receiver_name: None,
        status: SessionStatus::Initial,
        offer: Some(offer),
        answer: None,
        call_type: body.call_type.into_option().unwrap_or_default(),
        location: None,
        owner: Some(registration.owner.as_str().into()),
        direction: Direction::Incoming,
        withheld_originator: None,
        ended: false,
        reason: None,
        registration: Some(registration.id.as_str().into()),
        steps_played: 0,
        receiver_owner: None,
        hung_up: None,
        receiver_registration: None,
    };
    let placed = now_ms();
    loop {
        let timers = (state.network).timers(&session.id, placed, &script);
        match state.store.insert_with(session.clone(), timers).await {
            Ok(_) => break,
            Err(StoreError::AlreadyExists) => session.id = super::sessions::new_session_id(),
            Err(err) => return Err(err.into()),
        }
    }
    state.network.wake();
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
        Some(reason) if !is_reason(&reason) => {
            return Err(ApiError::invalid("reason must have 1 to 256 characters."));
        }
        other => other.map(std::sync::Arc::from),
    };
    let applied = network::apply(state.store.as_ref(), &id, |session| {
        network::moved(
            session,
            status,
            offer.clone(),
            answer.clone(),
            reason.clone(),
        )
        .map(Some)
    })
    .await;
    match applied {
        Ok(Applied::Moved(next)) => Ok(Json(SessionResponse::from(next.as_ref())).into_response()),
        Ok(Applied::Refused(refused)) => Err(refused.into()),
        Ok(Applied::Gone | Applied::Left(_)) => Err(ApiError::plain(super::error::Code::NotFound)),
        Err(StoreError::VersionConflict { .. }) => {
            Err(ApiError::plain(super::error::Code::Aborted))
        }
        Err(err) => Err(err.into()),
    }
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
    let numbers = &state.network.numbers;
    let views: Vec<NumberView<'_>> = (numbers.all().iter())
        .map(|script| NumberView {
            address: &script.address,
            steps: (script.steps.iter())
                .map(|step| StepView {
                    after_ms: millis(numbers.due_after(step)),
                    status: step.status,
                    reason: step.reason.as_deref(),
                })
                .collect(),
        })
        .collect();
    Ok(Json(views).into_response())
}
