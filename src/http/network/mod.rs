//! The network's admin API (`/network/v1`, DESIGN §12): served only with `network.admin_api`,
//! every operation needs the scope `camara-webrtc:network`. Without the setting its routes are
//! unknown routes (404 NOT_FOUND).

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use serde::Serialize;

use super::error::ApiError;
use super::extract::{
    Authorized, CamaraJson, RegistrationPath, ScopeInHandler, SessionPath, require_scope,
};
use super::sessions::{SdpText, SessionResponse};
use super::{AppState, Route, router_of};
use crate::domain::{EndReason, Present, PresentObject, SessionStatus};
use crate::network::Numbers;
use crate::store::{StoreError, now_ms};

/// The scope of every admin operation.
pub const SCOPE: &str = "camara-webrtc:network";

/// The API's operations, in the order of the OpenAPI document.
pub static ROUTES: [Route; 3] = [
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
    authorized: Authorized<ScopeInHandler>,
    SessionPath(id): SessionPath,
    CamaraJson(body): CamaraJson<MoveBody>,
) -> Result<Response, ApiError> {
    require_scope(authorized.peek(), SCOPE)?;
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
        let answer =
            (answer.clone()).or_else(|| crate::network::generated_answer(&current.session, status));
        let next = (current.session).network_move(status, offer.clone(), answer, reason.clone())?;
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
    authorized: Authorized<ScopeInHandler>,
    RegistrationPath(id): RegistrationPath,
) -> Result<Response, ApiError> {
    require_scope(authorized.peek(), SCOPE)?;
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
    authorized: Authorized<ScopeInHandler>,
) -> Result<Response, ApiError> {
    require_scope(authorized.peek(), SCOPE)?;
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
