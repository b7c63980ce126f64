//! Unauthenticated operational routes at the root: liveness, readiness, metrics and the OpenAPI
//! document.

use axum::extract::State;
use axum::http::Method;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use super::error::{ApiError, Code};
use super::{AppState, Route, router_of};

/// The operational routes, in the order of the OpenAPI document.
pub static ROUTES: [Route; 6] = [
    Route::new(Method::GET, "/health/live", || get(live)),
    Route::new(Method::GET, "/health/ready", || get(ready)),
    Route::new(Method::GET, "/metrics", || get(metrics)),
    Route::new(Method::GET, "/openapi.yaml", || get(openapi)),
    Route::new(Method::GET, "/openapi-registration.yaml", || {
        get(openapi_registration)
    }),
    Route::new(Method::GET, "/openapi-events.yaml", || get(openapi_events)),
];

/// The operational routes on the main listener: all of them, or all but `/metrics` when
/// `server.metrics_listen` gives it a listener of its own.
pub fn router(metrics_here: bool) -> Router<AppState> {
    router_of(
        "",
        ROUTES
            .iter()
            .filter(|route| metrics_here || route.path != "/metrics"),
    )
}

/// `/metrics` alone, for the listener of `server.metrics_listen`.
pub fn metrics_router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

/// `{"status": "UP"}`.
#[derive(Serialize)]
struct Health {
    status: &'static str,
}

/// The process is up and serving HTTP.
async fn live() -> Json<Health> {
    Json(Health { status: "UP" })
}

/// The store answers and every key source is in force: the instance can take traffic.
async fn ready(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    state.store.ping().await?;
    if !state.verifier.keys_in_force() {
        return Err(ApiError::new(
            Code::Unavailable,
            "Service Unavailable: the JWKS has not been read (or is past its max age), so tokens cannot be verified.",
        ));
    }
    Ok(Json(Health { status: "UP" }))
}

/// The recorded metrics, then this instance's sessions by status (read from its store).
async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let counts = state.store.status_counts().await?;
    let subscriptions = state.subscriptions.live_subscriptions().await?;
    let text = crate::telemetry::metrics::render(&counts, subscriptions);
    Ok(([(CONTENT_TYPE, "text/plain; version=0.0.4")], text))
}

/// The call-handling OpenAPI document, listing this instance's base paths.
async fn openapi(State(state): State<AppState>) -> impl IntoResponse {
    yaml(&state.openapi)
}

/// The registration API's OpenAPI document, listing this instance's registration base paths.
async fn openapi_registration(State(state): State<AppState>) -> impl IntoResponse {
    yaml(&state.openapi_registration)
}

/// The events API's OpenAPI document, listing this instance's events base paths.
async fn openapi_events(State(state): State<AppState>) -> impl IntoResponse {
    yaml(&state.openapi_events)
}

fn yaml(document: &axum::body::Bytes) -> impl IntoResponse + use<> {
    ([(CONTENT_TYPE, "application/yaml")], document.clone())
}
