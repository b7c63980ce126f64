//! The HTTP edge: state, router and middleware stack. Handlers live in their resource's module.

mod body;
mod error;
mod extract;
mod health;
mod middleware;
mod sessions;
mod status;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{Method, StatusCode, Uri, header};
use axum::routing::{get, put};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;

pub use error::{ApiError, Code};

use crate::auth::{Caller, Verifier};
use crate::config::Config;
use crate::domain::Address;
use crate::store::SessionStore;

/// What every handler can reach; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Arc<dyn SessionStore>,
    pub verifier: Arc<Verifier>,
    /// `auth.subscribers` as TEL URIs; empty means any subscriber.
    subscribers: Arc<HashSet<Address>>,
}

impl AppState {
    pub fn new(config: Arc<Config>, store: Arc<dyn SessionStore>, verifier: Arc<Verifier>) -> Self {
        let subscribers = config
            .auth
            .subscribers
            .iter()
            .filter_map(|s| Address::from_phone_number(s))
            .collect();
        Self {
            config,
            store,
            verifier,
            subscribers: Arc::new(subscribers),
        }
    }

    /// A 3-legged subscriber must be known when a subscriber list is configured.
    pub fn check_subscriber(&self, caller: &Caller) -> Result<(), ApiError> {
        match &caller.subscriber {
            Some(sub) if !self.subscribers.is_empty() && !self.subscribers.contains(sub) => {
                Err(ApiError::plain(Code::IdentifierNotFound))
            }
            _ => Ok(()),
        }
    }
}

/// The call-handling routes, relative to one base path.
fn api_routes() -> Router<AppState> {
    Router::new()
        .route("/sessions/{mediaSessionId}/status", put(status::put_status))
        .route("/sessions/{mediaSessionId}", get(sessions::get_session))
        // No id, or an empty one: CAMARA's feature files want 400, not 404/405.
        .route(
            "/sessions/status",
            put(sessions::missing_id).get(sessions::get_session_named_status),
        )
        .route(
            "/sessions",
            get(sessions::missing_id).delete(sessions::missing_id),
        )
        .route("/sessions/", axum::routing::any(sessions::missing_id))
}

/// Unknown routes: 400 when the path is a session route with an empty id (`/sessions//status`),
/// else 404, both as CAMARA JSON.
async fn fallback(State(state): State<AppState>, method: Method, uri: Uri) -> ApiError {
    let path = uri.path();
    let empty_id = state.config.server.base_paths.iter().any(|base| {
        path.strip_prefix(base.as_str())
            .and_then(|rest| rest.strip_prefix("/sessions/"))
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    });
    if empty_id {
        return sessions::missing_id_error();
    }
    tracing::debug!(%method, "no route");
    ApiError::new(
        Code::NotFound,
        "The specified resource is not found: no such route.",
    )
}

/// The whole application: every base path, the operational routes and the middleware stack.
pub fn router(state: AppState) -> Router {
    let server = &state.config.server;
    let mut app = Router::new()
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready));
    for base in &server.base_paths {
        app = app.nest(base, api_routes());
    }
    // Outermost first. Authorization is marked sensitive before anything could print it; the
    // correlator wraps everything so even a 401 or a panic carries it; the span sits inside it to
    // record it; CAMARA-izing of framework errors wraps the timeout, panic and body-limit layers
    // whose bare responses it rewrites.
    let middleware = ServiceBuilder::new()
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
        ]))
        .layer(axum::middleware::from_fn(middleware::correlator))
        .layer(axum::middleware::from_fn(middleware::request_span))
        .layer(axum::middleware::from_fn(middleware::camara_errors))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::GATEWAY_TIMEOUT,
            Duration::from_millis(server.request_timeout_ms),
        ))
        .layer(CatchPanicLayer::custom(middleware::panic_response))
        .layer(DefaultBodyLimit::max(server.max_body_bytes));
    app.fallback(fallback).layer(middleware).with_state(state)
}
