//! The call-handling API (`/sessions` under every base path): its routes, the session as it is
//! answered, and what every session route shares — visibility and the compare-and-swap loop.

mod create;
mod delete;
mod read;
mod status;

pub use create::new_session_id;
pub use status::StatusBody;

use std::fmt::{self, Display};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post, put};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::error::{ApiError, Code};
use super::extract::field_error;
use super::{AppState, Route, router_of};
use crate::auth::Caller;
use crate::domain::{
    Address, CallType, Location, Present, PresentObject, Sdp, SdpPolicy, Session, SessionId,
    SessionStatus, UncheckedLocation,
};
use crate::store::{StoreError, Versioned};

/// The API's operations, in the order of the OpenAPI document.
pub static ROUTES: [Route; 4] = [
    Route::new(Method::POST, "/sessions", || post(create::create_session)),
    Route::new(Method::GET, "/sessions/{mediaSessionId}", || {
        get(read::get_session)
    }),
    Route::new(Method::DELETE, "/sessions/{mediaSessionId}", || {
        delete(delete::delete_session)
    }),
    Route::new(Method::PUT, "/sessions/{mediaSessionId}/status", || {
        put(status::put_status)
    }),
];

/// The operations under `base`, plus the answers for requests that name no session: CAMARA's feature files
/// want 400 for `GET`/`DELETE /sessions` and `PUT /sessions/status`, not 404/405. The static
/// `/sessions/status` shadows the parameter route, so it serves the session `status` itself.
/// These answer through method fallbacks, so `Allow` lists only documented operations.
pub fn router(base: &str) -> Router<AppState> {
    router_of(base, &ROUTES)
        .route(
            &format!("{base}/sessions/status"),
            get(read::get_session_named_status)
                .delete(delete::delete_session_named_status)
                .fallback(named_status_other_method),
        )
        .route(
            &format!("{base}/sessions"),
            MethodRouter::new().fallback(sessions_other_method),
        )
}

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
        Some(found) if !found.session.ended && caller.actor().can_see(&found.session) => Ok(found),
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
/// contending for one session spread out instead of colliding again in lockstep.
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
    let value = HeaderValue::try_from(format!("\"{version}\""));
    (
        header::ETAG,
        value.expect("digits in quotes are a header value"),
    )
}

/// `{"sdp": "..."}` as sent: the JSON string literal itself, byte for byte, so the seed's
/// envelope answers it exactly as it came; [`SdpText::check`] reads its text.
#[derive(Debug, Deserialize, Serialize)]
#[serde(expecting = "an object")]
pub struct SdpText {
    sdp: Box<RawValue>,
}

impl SdpText {
    /// The SDP, which must be a string that passes `policy`; a refusal names the field by `path`.
    pub fn check(&self, path: impl Display, policy: SdpPolicy) -> Result<Sdp, ApiError> {
        let text = serde_json::from_str(self.sdp.get())
            .map_err(|e| field_error(&format!("{path}.sdp"), &e))?;
        Sdp::parse(text, policy).map_err(|e| ApiError::invalid(format!("{path}.sdp {e}.")))
    }
}

/// A name (`originatorName`, `receiverName`) of at most 256 characters.
pub fn name(field: impl Display, value: Present<String>) -> Result<Option<String>, ApiError> {
    match value.into_option() {
        Some(name) if name.chars().count() > 256 => Err(ApiError::invalid(format!(
            "{field} must be at most 256 characters."
        ))),
        other => Ok(other),
    }
}

/// A `locationDetails` with CAMARA's ranges checked: a value outside its range is OUT_OF_RANGE,
/// a malformed one INVALID_ARGUMENT; `path` names it.
pub fn location(
    path: impl Display,
    value: PresentObject<UncheckedLocation>,
) -> Result<Option<Location>, ApiError> {
    value
        .into_option()
        .map(UncheckedLocation::check)
        .transpose()
        .map_err(|e| ApiError::from_location(path, e))
}

/// A field's path in a body, `prefix` + `field` (`receiverSessionStatus.` + `offer`), written out
/// only when a refusal names it.
#[derive(Debug, Clone, Copy)]
pub struct FieldPath<'a> {
    pub prefix: &'a str,
    pub field: &'a str,
}

impl Display for FieldPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.prefix, self.field)
    }
}

/// `{"sdp": "..."}`, CAMARA's `SessionDescription`.
#[derive(Debug, Serialize)]
pub struct SdpBody<'a> {
    pub sdp: &'a Sdp,
}

impl<'a> SdpBody<'a> {
    pub fn of(sdp: Option<&'a Sdp>) -> Option<Self> {
        sdp.map(|sdp| Self { sdp })
    }
}

/// CAMARA's `MediaSessionResponse`: the full session.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionResponse<'a> {
    media_session_id: &'a SessionId,
    originator_address: &'a Address,
    #[serde(skip_serializing_if = "Option::is_none")]
    originator_name: Option<&'a str>,
    receiver_address: &'a Address,
    #[serde(skip_serializing_if = "Option::is_none")]
    receiver_name: Option<&'a str>,
    status: SessionStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    offer: Option<SdpBody<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    answer: Option<SdpBody<'a>>,
    call_type: CallType,
    #[serde(skip_serializing_if = "Option::is_none")]
    location_details: Option<&'a Location>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

impl<'a> From<&'a Session> for SessionResponse<'a> {
    fn from(s: &'a Session) -> Self {
        Self {
            media_session_id: &s.id,
            originator_address: &s.originator,
            originator_name: s.originator_name.as_deref(),
            receiver_address: &s.receiver,
            receiver_name: s.receiver_name.as_deref(),
            status: s.status,
            offer: SdpBody::of(s.offer.as_ref()),
            answer: SdpBody::of(s.answer.as_ref()),
            call_type: s.call_type,
            location_details: s.location.as_ref(),
            reason: s.reason.as_deref(),
        }
    }
}

impl<'a> SessionResponse<'a> {
    /// The session as a `session-invitation` carries it (DESIGN §11): the call as placed, without
    /// an answer, a location or a reason.
    pub fn invitation(s: &'a Session) -> Self {
        Self {
            answer: None,
            location_details: None,
            reason: None,
            ..Self::from(s)
        }
    }
}

/// The error for a route that needs a `mediaSessionId` and got none.
pub fn missing_id_error() -> ApiError {
    ApiError::invalid("mediaSessionId is missing from the path: use /sessions/{mediaSessionId}.")
}

/// A 405 naming the methods the path serves (the middleware adds CAMARA's body).
fn not_allowed(allow: &'static str) -> Response {
    (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, allow)]).into_response()
}

/// Methods `/sessions` has no operation for: GET and DELETE there lack an id (400); anything
/// else is 405, `Allow` listing only the real operation.
async fn sessions_other_method(method: Method) -> Response {
    if method == Method::GET || method == Method::DELETE {
        missing_id_error().into_response()
    } else {
        not_allowed("POST")
    }
}

/// `/sessions/status` beyond GET and DELETE (of the session `status`): a PUT there lacks an id.
async fn named_status_other_method(method: Method) -> Response {
    if method == Method::PUT {
        missing_id_error().into_response()
    } else {
        not_allowed("GET,HEAD,DELETE")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::location::{Coordinates, Number};
    use crate::domain::{CallType, SdpPolicy};

    fn written(session: &Session) -> String {
        serde_json::to_string(&SessionResponse::from(session)).unwrap()
    }

    #[test]
    fn a_session_is_written_in_schema_order() {
        let mut full = Session::example(SessionStatus::Initial);
        full.originator_name = Some("Al \"the\" caller".into());
        full.receiver_name = Some("Bob\n".into());
        full.status = SessionStatus::Connected;
        full.offer = Some(Sdp::parse("v=0\r\na=x\r\n".into(), SdpPolicy::Lenient).unwrap());
        full.answer = Some(Sdp::parse("v=0\r\n".into(), SdpPolicy::Lenient).unwrap());
        full.call_type = CallType::Emergency;
        let circle = Coordinates::Circle {
            latitude: Number(50.7),
            longitude: Number(-4.5),
            radius: Number(800.0),
        };
        full.location = Some(Location::new(circle, None, None, None).unwrap());
        assert_eq!(
            written(&full),
            r#"{"mediaSessionId":"s","originatorAddress":"tel:+17085852753","originatorName":"Al \"the\" caller","receiverAddress":"tel:+17085854000","receiverName":"Bob\n","status":"Connected","offer":{"sdp":"v=0\r\na=x\r\n"},"answer":{"sdp":"v=0\r\n"},"callType":"EMERGENCY","locationDetails":{"shape":"Circle","coordinates":{"latitude":50.7,"longitude":-4.5,"radius":800}}}"#
        );
        assert_eq!(
            written(&Session::example(SessionStatus::Initial)),
            r#"{"mediaSessionId":"s","originatorAddress":"tel:+17085852753","receiverAddress":"tel:+17085854000","status":"Initial","callType":"REGULAR"}"#
        );
    }

    #[test]
    fn etag_is_the_quoted_version() {
        for (version, expected) in [
            (0, "\"0\""),
            (7, "\"7\""),
            (u64::MAX, "\"18446744073709551615\""),
        ] {
            assert_eq!(
                etag(version),
                (header::ETAG, HeaderValue::from_static(expected))
            );
        }
    }
}
