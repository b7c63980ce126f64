//! Cross-cutting request handling, in one layer: `x-correlator`, the request's log line and
//! metrics, CAMARA JSON for every error the framework makes itself; and panics.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::panic::AssertUnwindSafe;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header::{ALLOW, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use tracing::Instrument;

use super::AppState;
use super::error::{ApiError, Code};
use crate::auth::Caller;
use crate::domain::{SessionId, SessionStatus};

pub static X_CORRELATOR: HeaderName = HeaderName::from_static("x-correlator");

/// CAMARA's `XCorrelator` pattern: `^[a-zA-Z0-9-_:;./<>{}]{0,256}$`.
pub fn valid_correlator(value: &[u8]) -> bool {
    value.len() <= 256
        && value
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_:;./<>{}".contains(b))
}

/// A random (version 4) UUID for a request that came without `x-correlator`. It names a request,
/// it guards nothing, so it comes from a per-thread SplitMix64 generator seeded once by the OS
/// rather than from a `getrandom` system call per request.
fn generated_correlator() -> HeaderValue {
    thread_local! {
        static STATE: Cell<u64> = Cell::new(uuid::Uuid::new_v4().as_u64_pair().0);
    }
    let next = || {
        STATE.with(|state| {
            let mut z = state.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
            state.set(z);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        })
    };
    let random = (u128::from(next()) << 64 | u128::from(next())).to_be_bytes();
    let uuid = uuid::Builder::from_random_bytes(random).into_uuid();
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    HeaderValue::from_bytes(uuid.hyphenated().encode_lower(&mut text).as_bytes())
        .unwrap_or(HeaderValue::from_static(""))
}

/// What a request's handler learned, for its log line: who called, and what it changed. Shared
/// values, so noting them copies nothing.
#[derive(Debug, Default)]
struct Facts {
    caller: Option<Caller>,
    session: Option<SessionId>,
    from: Option<&'static str>,
    to: Option<&'static str>,
    version: Option<u64>,
}

tokio::task_local! {
    static FACTS: RefCell<Facts>;
}

/// Notes the authenticated caller for the request's log line (its API consumer is logged).
pub fn record_caller(caller: &Caller) {
    let _ = FACTS.try_with(|facts| facts.borrow_mut().caller = Some(caller.clone()));
}

/// Notes which session a handler changed, from and to which status, and the version written, for
/// the request's log line; and counts the transition.
pub fn record_change(
    session: &SessionId,
    from: Option<SessionStatus>,
    to: SessionStatus,
    version: u64,
) {
    let _ = FACTS.try_with(|facts| {
        let mut facts = facts.borrow_mut();
        facts.session = Some(session.clone());
        facts.from = from.map(SessionStatus::as_str);
        facts.to = Some(to.as_str());
        facts.version = Some(version);
    });
    super::metrics::transition(from, to);
}

/// The edge of every request, as one layer: each `from_fn` layer costs a clone of the service
/// stack and boxed futures on every request, and three of them were a fifth of `/health/live`'s
/// work. In order:
/// 1. `x-correlator`: an invalid one is refused (400) before anything else; a valid one is echoed
///    on the response, errors included, and an absent one is generated.
/// 2. Load shedding: beyond `server.max_concurrent_requests` an API request is answered 503 at
///    once; the operational routes (health, metrics, the document) are never shed.
/// 3. The request timeout (`server.request_timeout_ms`): 504 TIMEOUT; and a panicking handler:
///    500 INTERNAL ([`panic_response`]).
/// 4. CAMARA JSON for every error response the framework made itself ([`camara_json`]).
/// 5. One log line and the request metrics, written when the request finishes: method, route
///    template, correlator, consumer, the session and the move a handler made, status and latency
///    — never the headers or the body. The facts are gathered in a task-local, not recorded field
///    by field on a span; the `request` span exists at `debug` (so events inside a request carry
///    its correlator when debug logging is on) and costs nothing at `info`.
pub async fn edge(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    // Marked sensitive before anything could print it: a header map's `Debug` then hides it.
    if let Some(authorization) = req.headers_mut().get_mut(AUTHORIZATION) {
        authorization.set_sensitive(true);
    }
    let correlator = match req.headers().get(&X_CORRELATOR) {
        Some(value) if valid_correlator(value.as_bytes()) => value.clone(),
        Some(_) => {
            tracing::info!("invalid x-correlator refused");
            return ApiError::invalid("x-correlator must match ^[a-zA-Z0-9-_:;./<>{}]{0,256}$.")
                .into_response();
        }
        None => generated_correlator(),
    };
    // The matched path is a shared handle, not a copy; the correlator was checked to be ASCII.
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or("<unmatched>", MatchedPath::as_str);
    let correlator_text = correlator.to_str().unwrap_or("");
    let method = req.method().clone();
    let span = tracing::debug_span!("request", %method, route, correlator = correlator_text);
    let sheddable = super::is_api_route(matched.as_ref());
    let start = Instant::now();
    let (mut response, facts) = FACTS
        .scope(RefCell::default(), async {
            let response = match sheddable.then(|| state.limits.admit()).transpose() {
                Ok(_permit) => {
                    // tokio's timeout polls the request first: one that is answered at once
                    // never arms its timer (tower-http's did, and so woke the I/O driver with a
                    // system call on every request). The deadline counts from `start`, which
                    // saves reading the clock again.
                    let deadline = tokio::time::Instant::from_std(start + state.request_timeout);
                    let run = tokio::time::timeout_at(deadline, next.run(req).instrument(span));
                    // A panic is caught here rather than by a layer of its own (tower-http's
                    // boxed every response body on the way out).
                    match AssertUnwindSafe(run).catch_unwind().await {
                        Ok(Ok(response)) => response,
                        Ok(Err(_elapsed)) => StatusCode::GATEWAY_TIMEOUT.into_response(),
                        Err(panic) => panic_response(panic),
                    }
                }
                Err(shed) => shed.into_response(),
            };
            (camara_json(response), FACTS.with(RefCell::take))
        })
        .await;
    let status = response.status().as_u16();
    let elapsed = start.elapsed();
    super::metrics::request(route, &method, status, elapsed);
    // Whole microseconds: the text line stays short, and the JSON value exact.
    let latency_ms = elapsed.as_micros() as f64 / 1000.0;
    macro_rules! line {
        ($level:ident, $message:literal) => {
            // Plain strings and numbers: the text format writes them without `fmt` machinery.
            tracing::$level!(
                method = method.as_str(),
                route,
                correlator = correlator_text,
                consumer = facts.caller.as_ref().map(Caller::consumer),
                session = facts.session.as_ref().map(SessionId::as_str),
                from = facts.from,
                to = facts.to,
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
    response
        .headers_mut()
        .insert(X_CORRELATOR.clone(), correlator);
    response
}

/// Replaces an error response that is not JSON (axum's 405, the edge's own 504 for a timeout,
/// ...) with the CAMARA body for its status, keeping the headers that matter.
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
    let mut replacement = ApiError::plain(Code::for_status(status)).into_response();
    for name in [ALLOW, RETRY_AFTER, WWW_AUTHENTICATE] {
        if let Some(value) = response.headers().get(&name) {
            replacement.headers_mut().insert(name, value.clone());
        }
    }
    replacement
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
