//! `GET /sessions/{mediaSessionId}`: the session as this caller may see it.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::{SessionResponse, etag, load_visible};
use crate::domain::SessionId;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{Authorized, ReadOp, SessionPath};

pub async fn get_session(
    State(state): State<AppState>,
    authorized: Authorized<ReadOp>,
    SessionPath(id): SessionPath,
) -> Result<Response, ApiError> {
    let caller = authorized.caller()?;
    let found = load_visible(&state, &caller, &id).await?;
    Ok((
        [etag(found.version)],
        Json(SessionResponse::from(&*found.session)),
    )
        .into_response())
}

/// `GET /sessions/status`: the session whose id is `status` (a static route shadows the
/// parameter route there).
pub async fn get_session_named_status(
    state: State<AppState>,
    caller: Authorized<ReadOp>,
) -> Result<Response, ApiError> {
    let id = SessionId::parse("status").expect("a valid id");
    get_session(state, caller, SessionPath(id)).await
}
