//! Unauthenticated operational routes: liveness and readiness.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use super::error::{ApiError, Code};

/// The process is up and serving HTTP.
pub async fn live() -> Json<serde_json::Value> {
    Json(json!({ "status": "UP" }))
}

/// The store answers and the configuration is loaded: the instance can take traffic.
pub async fn ready(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => Json(json!({ "status": "UP" })).into_response(),
        Err(err) => {
            tracing::warn!(%err, "not ready");
            ApiError::new(
                Code::Unavailable,
                "Service Unavailable: the session store cannot be reached.",
            )
            .into_response()
        }
    }
}
