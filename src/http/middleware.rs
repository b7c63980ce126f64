//! The one hand-written middleware, [`edge`]: `x-correlator` validation, the request's log line
//! and metrics, and CAMARA JSON for every error response made without it (axum's 405, the
//! timeout's 504, ...). Also the panic handler the stack's catch-panic layer answers with.

use std::any::Any;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{FromRequestParts, MatchedPath, Request};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::X_CORRELATOR;
use super::error::{ApiError, Code};
use crate::auth::Caller;
use crate::domain::{SessionId, SessionStatus};

/// CAMARA's `XCorrelator` pattern: `^[a-zA-Z0-9-_:;./<>{}]{0,256}$`.
pub fn valid_correlator(value: &[u8]) -> bool {
    value.len() <= 256
        && value
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_:;./<>{}".contains(b))
}

/// What a request's extractors and handler learned, for its one log line: who called, and what
/// it changed. Every request carries one in its extensions; a handler takes it as an extractor.
#[derive(Debug, Clone, Default)]
pub struct RequestLog(Arc<Mutex<Facts>>);

#[derive(Debug, Default)]
struct Facts {
    caller: Option<Caller>,
    session: Option<SessionId>,
    from: Option<SessionStatus>,
    to: Option<SessionStatus>,
    version: Option<u64>,
}

impl RequestLog {
    fn with<R>(&self, f: impl FnOnce(&mut Facts) -> R) -> R {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The authenticated caller (its API consumer is logged).
    pub fn caller(&self, caller: &Caller) {
        self.with(|facts| facts.caller = Some(caller.clone()));
    }

    /// Which session the handler changed, from and to which status (`from` is `None` for a new
    /// session), and the version written; the transition is counted too.
    pub fn change(
        &self,
        id: &SessionId,
        from: Option<SessionStatus>,
        to: SessionStatus,
        version: u64,
    ) {
        self.with(|facts| {
            facts.session = Some(id.clone());
            (facts.from, facts.to, facts.version) = (from, Some(to), Some(version));
        });
        crate::telemetry::metrics::transition(from, to);
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestLog {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts.extensions.get::<Self>().cloned().unwrap_or_default())
    }
}

/// Refuses a request whose `x-correlator` breaks CAMARA's pattern (400, the value not echoed);
/// otherwise runs it, makes an error response CAMARA JSON, and writes the request's metrics and
/// its one log line: method, route template, correlator, consumer, the change a handler made,
/// status and latency — never the headers or the body. An error for a 5xx, else info.
pub async fn edge(mut req: Request, next: Next) -> Response {
    let start = Instant::now();
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or("<unmatched>", MatchedPath::as_str);
    let method = req.method().clone();
    let refused = req
        .headers()
        .get(&X_CORRELATOR)
        .is_some_and(|value| !valid_correlator(value.as_bytes()));
    let log = RequestLog::default();
    let response = if refused {
        tracing::info!("invalid x-correlator refused");
        ApiError::invalid("x-correlator must match ^[a-zA-Z0-9-_:;./<>{}]{0,256}$.").into_response()
    } else {
        req.extensions_mut().insert(log.clone());
        camara_json(next.run(req).await)
    };
    let elapsed = start.elapsed();
    let status = response.status().as_u16();
    crate::telemetry::metrics::request(route, &method, status, elapsed);
    if refused {
        return response;
    }
    // The generated or echoed correlator, checked above or made by the request-id layer.
    let correlator = response
        .headers()
        .get(&X_CORRELATOR)
        .and_then(|v| v.to_str().ok());
    // Whole microseconds: the text line stays short, and the JSON value exact.
    let latency_ms = elapsed.as_micros() as f64 / 1000.0;
    log.with(|facts| {
        macro_rules! line {
            ($level:ident, $message:literal) => {
                // Values the service itself chose or checked (the method, the route template,
                // a correlator matching CAMARA's pattern, statuses) are written as they are;
                // the consumer and the session id come from the client and are quoted and
                // escaped.
                tracing::$level!(
                    method = %method,
                    route = %route,
                    correlator = correlator.map(tracing::field::display),
                    consumer = facts.caller.as_ref().map(Caller::consumer),
                    session = facts.session.as_ref().map(SessionId::as_str),
                    from = facts.from.map(tracing::field::display),
                    to = facts.to.map(tracing::field::display),
                    version = facts.version,
                    status,
                    latency_ms,
                    $message
                )
            };
        }
        if status >= 500 {
            line!(error, "request failed");
        } else {
            line!(info, "request finished");
        }
    });
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
    tracing::error!(cause = cause.as_str(), "handler panicked");
    ApiError::plain(Code::Internal).into_response()
}
