//! The one hand-written middleware: `x-correlator` validation, the request's metrics, and CAMARA
//! JSON for every error response made without it (axum's 405, the timeout's 504, ...). Also the
//! panic handler the stack's catch-panic layer answers with.

use std::any::Any;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::X_CORRELATOR;
use super::error::{ApiError, Code};

/// CAMARA's `XCorrelator` pattern: `^[a-zA-Z0-9-_:;./<>{}]{0,256}$`.
pub fn valid_correlator(value: &[u8]) -> bool {
    value.len() <= 256
        && value
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_:;./<>{}".contains(b))
}

/// Refuses a request whose `x-correlator` breaks CAMARA's pattern (400, the value not echoed);
/// otherwise runs it, records its metrics, and makes an error response CAMARA JSON.
pub async fn correlator(req: Request, next: Next) -> Response {
    if req
        .headers()
        .get(&X_CORRELATOR)
        .is_some_and(|value| !valid_correlator(value.as_bytes()))
    {
        tracing::info!("invalid x-correlator refused");
        return ApiError::invalid("x-correlator must match ^[a-zA-Z0-9-_:;./<>{}]{0,256}$.")
            .into_response();
    }
    let route = req.extensions().get::<MatchedPath>().cloned();
    let method = req.method().clone();
    let start = Instant::now();
    let response = camara_json(next.run(req).await);
    crate::telemetry::metrics::request(
        route.as_ref().map_or("<unmatched>", MatchedPath::as_str),
        &method,
        response.status().as_u16(),
        start.elapsed(),
    );
    response
}

/// An error response that is not JSON gets the CAMARA body for its status; its headers (`Allow`,
/// `Retry-After`, `x-correlator`, ...) are kept.
fn camara_json(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let (camara, body) = ApiError::plain(Code::for_status(status))
        .into_response()
        .into_parts();
    parts.headers.remove(CONTENT_LENGTH);
    for (name, value) in camara.headers {
        if let Some(name) = name {
            parts.headers.insert(name, value);
        }
    }
    Response::from_parts(parts, body)
}

/// A panicking handler answers 500 INTERNAL; the cause goes to the log, not to the client.
pub fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response<Body> {
    let cause = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned());
    tracing::error!(%cause, "handler panicked");
    ApiError::plain(Code::Internal).into_response()
}
