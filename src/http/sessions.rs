//! `GET` and `DELETE /sessions/{mediaSessionId}`, the visibility rules and the compare-and-swap
//! loop every session route shares, and the answers for requests that name no session at all.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::body::session_response;
use super::error::{ApiError, Code};
use super::extract::{Authorized, DeleteOp, ReadOp, SessionPath};
use super::middleware::record_change;
use crate::auth::Caller;
use crate::domain::{Session, SessionId};
use crate::store::{StoreError, Versioned};

/// How many times an update re-reads and retries after losing a compare-and-swap race.
const MAX_CAS_ATTEMPTS: usize = 32;

/// The session as this caller may see it. An ended session, another consumer's session, or
/// (3-legged) a call the subscriber is not part of, does not exist for them.
pub async fn load_visible(
    state: &AppState,
    caller: &Caller,
    id: &SessionId,
) -> Result<Versioned, ApiError> {
    match state.store.get(id).await? {
        Some(found) if !found.session.ended && caller.can_see(&found.session) => Ok(found),
        _ => Err(ApiError::plain(Code::NotFound)),
    }
}

/// Read → `change` → compare-and-swap, retried while other writers win the race. Returns the
/// session as it was read, as written, and its new version; [`Code::Aborted`] after
/// [`MAX_CAS_ATTEMPTS`] lost races.
pub async fn update_visible(
    state: &AppState,
    caller: &Caller,
    id: &SessionId,
    change: impl Fn(&Session) -> Result<Session, ApiError>,
) -> Result<(Arc<Session>, Arc<Session>, u64), ApiError> {
    for attempt in 0..MAX_CAS_ATTEMPTS {
        if attempt > 0 {
            backoff(attempt).await;
        }
        let current = load_visible(state, caller, id).await?;
        let next = Arc::new(change(&current.session)?);
        match state
            .store
            .compare_and_swap(current.version, Arc::clone(&next))
            .await
        {
            Ok(version) => return Ok((current.session, next, version)),
            Err(StoreError::VersionConflict { .. }) => continue,
            Err(err) => return Err(err.into()),
        }
    }
    Err(ApiError::plain(Code::Aborted))
}

/// After losing a race, waits a random time that grows with the attempt (up to 8 ms), so writers
/// contending for one session spread out instead of colliding again in lockstep. The first retry
/// only yields: against the in-process store a conflict is rare and brief.
async fn backoff(attempt: usize) {
    if attempt == 1 {
        tokio::task::yield_now().await;
        return;
    }
    let ceiling_us = 1000 * attempt.min(8) as u64;
    let jitter = uuid::Uuid::new_v4().as_u64_pair().0 % ceiling_us;
    tokio::time::sleep(Duration::from_micros(jitter)).await;
}

/// `ETag` carrying the stored version, so clients and tests can order updates.
pub fn etag(version: u64) -> (HeaderName, HeaderValue) {
    let mut digits = itoa::Buffer::new();
    let quoted = [b"\"", digits.format(version).as_bytes(), b"\""].concat();
    // Digits and quotes are valid header bytes; the vector becomes the value without a copy.
    let value = HeaderValue::from_maybe_shared(Bytes::from(quoted))
        .unwrap_or(HeaderValue::from_static("\"0\""));
    (header::ETAG, value)
}

pub async fn get_session(
    State(state): State<AppState>,
    Authorized(caller, ..): Authorized<ReadOp>,
    SessionPath(id): SessionPath,
) -> Result<Response, ApiError> {
    state.check_subscriber(&caller)?;
    let found = load_visible(&state, &caller, &id).await?;
    Ok(([etag(found.version)], session_response(&found.session)).into_response())
}

/// Ends the session: SessionCancelled (originator) or Declined (receiver) before it was answered,
/// Terminated after. The outcome stays in the store for `sessions.ended_ttl_seconds`; for the API
/// the session is gone at once.
pub async fn delete_session(
    State(state): State<AppState>,
    Authorized(caller, ..): Authorized<DeleteOp>,
    SessionPath(id): SessionPath,
) -> Result<StatusCode, ApiError> {
    state.check_subscriber(&caller)?;
    let (before, ended, version) = update_visible(&state, &caller, &id, |session| {
        // A 3-legged caller acts for its subscriber; a 2-legged one for the side its consumer
        // owns (an outgoing call's originator, an invitation's receiver).
        let role = caller
            .subscriber
            .as_ref()
            .and_then(|sub| session.role_of(sub))
            .unwrap_or_else(|| session.owner_role());
        Ok(session.end(role))
    })
    .await?;
    record_change(&id, Some(before.status), ended.status, version);
    tracing::debug!("session ended");
    Ok(StatusCode::NO_CONTENT)
}

/// The id `status`, for `GET`/`DELETE /sessions/status` (a static route shadows the parameter).
fn named_status() -> SessionPath {
    SessionPath(SessionId::parse("status").expect("a valid id"))
}

pub async fn get_session_named_status(
    state: State<AppState>,
    caller: Authorized<ReadOp>,
) -> Result<Response, ApiError> {
    get_session(state, caller, named_status()).await
}

pub async fn delete_session_named_status(
    state: State<AppState>,
    caller: Authorized<DeleteOp>,
) -> Result<StatusCode, ApiError> {
    delete_session(state, caller, named_status()).await
}

/// The error for a route that needs a `mediaSessionId` and got none.
pub fn missing_id_error() -> ApiError {
    ApiError::invalid("mediaSessionId is missing from the path: use /sessions/{mediaSessionId}.")
}

/// A 405 naming the methods the path serves (the error middleware adds CAMARA's body).
fn not_allowed(allow: &'static str) -> Response {
    (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, allow)]).into_response()
}

/// Methods `/sessions` has no operation for: GET and DELETE there lack an id (400, as CAMARA's
/// feature files want); anything else is 405, `Allow` listing only the real operation.
pub async fn sessions_other_method(method: Method) -> Response {
    if method == Method::GET || method == Method::DELETE {
        missing_id_error().into_response()
    } else {
        not_allowed("POST")
    }
}

/// `/sessions/status` beyond GET and DELETE (of the session `status`): a PUT there lacks an id.
pub async fn named_status_other_method(method: Method) -> Response {
    if method == Method::PUT {
        missing_id_error().into_response()
    } else {
        not_allowed("GET,HEAD,DELETE")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_is_the_quoted_version() {
        for (version, expected) in [
            (0, "\"0\""),
            (7, "\"7\""),
            (1_000, "\"1000\""),
            (u64::MAX, "\"18446744073709551615\""),
        ] {
            assert_eq!(
                etag(version),
                (header::ETAG, HeaderValue::from_static(expected))
            );
        }
    }
}
