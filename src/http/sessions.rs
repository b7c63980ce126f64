//! `GET /sessions/{mediaSessionId}`, the visibility rules every session route shares, and the
//! answers for requests that name no session at all.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::IntoResponse;

use super::AppState;
use super::body::SessionBody;
use super::error::{ApiError, Code};
use super::extract::{Authorized, ReadOp, SessionPath};
use crate::auth::Caller;
use crate::domain::SessionId;
use crate::store::Versioned;

/// The session as this caller may see it: another consumer's session, or (3-legged) a call the
/// subscriber is not part of, does not exist for them.
pub async fn load_visible(
    state: &AppState,
    caller: &Caller,
    id: &SessionId,
) -> Result<Versioned, ApiError> {
    match state.store.get(id).await? {
        Some(found) if caller.can_see(&found.session) => Ok(found),
        _ => Err(ApiError::plain(Code::NotFound)),
    }
}

/// `ETag` carrying the stored version, so clients and tests can order updates.
pub fn etag(version: u64) -> (HeaderName, HeaderValue) {
    let value = HeaderValue::from_str(&format!("\"{version}\""))
        .unwrap_or(HeaderValue::from_static("\"0\""));
    (header::ETAG, value)
}

pub async fn get_session(
    State(state): State<AppState>,
    Authorized(caller, ..): Authorized<ReadOp>,
    SessionPath(id): SessionPath,
) -> Result<impl IntoResponse, ApiError> {
    state.check_subscriber(&caller)?;
    let found = load_visible(&state, &caller, &id).await?;
    Ok((
        [etag(found.version)],
        Json(SessionBody::from(&found.session)),
    )
        .into_response())
}

/// `GET /sessions/status` reads a session whose id happens to be `status`.
pub async fn get_session_named_status(
    state: State<AppState>,
    caller: Authorized<ReadOp>,
) -> Result<impl IntoResponse, ApiError> {
    let id = SessionId::parse("status").map_err(|e| ApiError::invalid(e.to_string()))?;
    get_session(state, caller, SessionPath(id)).await
}

/// The error for a route that needs a `mediaSessionId` and got none.
pub fn missing_id_error() -> ApiError {
    ApiError::invalid("mediaSessionId is missing from the path: use /sessions/{mediaSessionId}.")
}

pub async fn missing_id() -> ApiError {
    missing_id_error()
}
