//! `DELETE /sessions/{mediaSessionId}`: the caller hangs up.

use axum::extract::State;
use axum::http::StatusCode;

use super::update_visible;
use crate::domain::SessionId;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{Authorized, DeleteOp, SessionPath};
use crate::http::middleware::RequestLog;

/// Ends the session: SessionCancelled (originator) or Declined (receiver) before it was answered,
/// Terminated after. The outcome stays in the store for `sessions.ended_ttl_seconds`; for the API
/// the session is gone at once.
pub async fn delete_session(
    State(state): State<AppState>,
    authorized: Authorized<DeleteOp>,
    log: RequestLog,
    SessionPath(id): SessionPath,
) -> Result<StatusCode, ApiError> {
    let caller = authorized.caller()?;
    let (before, ended, version) = update_visible(&state, &caller, &id, |session| {
        Ok(session.hang_up(caller.actor().role_in(session)))
    })
    .await?;
    log.change(&id, Some(before.status), ended.status, version);
    tracing::debug!("session ended");
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /sessions/status`: the session whose id is `status`.
pub async fn delete_session_named_status(
    state: State<AppState>,
    caller: Authorized<DeleteOp>,
    log: RequestLog,
) -> Result<StatusCode, ApiError> {
    let id = SessionId::parse("status").expect("a valid id");
    delete_session(state, caller, log, SessionPath(id)).await
}
