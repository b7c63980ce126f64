//! The network's admin API (`/network/v1`, DESIGN §12): served only with `network.admin_api`,
//! every operation needs the scope `camara-webrtc:network`. Without the setting its routes are
//! unknown routes (404 NOT_FOUND).

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::Method;
use axum::routing::get;
use serde::Serialize;

use super::error::ApiError;
use super::extract::{Authorized, ScopeInHandler, require_scope};
use super::{AppState, Route, router_of};
use crate::network::Numbers;

/// The scope of every admin operation.
pub const SCOPE: &str = "camara-webrtc:network";

/// The API's operations, in the order of the OpenAPI document.
pub static ROUTES: [Route; 1] = [Route::new(Method::GET, "/network/v1/numbers", || {
    get(numbers)
})];

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

/// `GET /network/v1/numbers`: the scripted receivers in force, built-in and configured.
async fn numbers(
    State(state): State<AppState>,
    authorized: Authorized<ScopeInHandler>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
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
