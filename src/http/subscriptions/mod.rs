//! The events API (CAMARA webrtc-events, `/subscriptions` under every `events.base_paths` entry):
//! an API consumer subscribes a sink to the events of its registrations, reads, lists, refreshes
//! and deletes its subscriptions (DESIGN §11). Event types and scopes carry the configured
//! `events.type_prefix` and `events.scope_prefix`.

mod handlers;

use axum::Router;
use axum::http::Method;
use axum::response::Response;
use axum::routing::{MethodRouter, delete, get, post, put};
use serde::Serialize;

use super::error::{ApiError, Code};
use super::{AppState, Route, router_of};
use crate::config::EventsConfig;
use crate::domain::registration::rfc3339_ms;
use crate::domain::{EventType, Subscription};

/// The API's operations, in the order of its OpenAPI document.
pub static ROUTES: [Route; 5] = [
    Route::new(Method::POST, "/subscriptions", || post(handlers::subscribe)),
    Route::new(Method::GET, "/subscriptions", || get(handlers::list)),
    Route::new(Method::GET, "/subscriptions/{subscriptionId}", || {
        get(handlers::read)
    }),
    Route::new(Method::PUT, "/subscriptions/{subscriptionId}", || {
        put(handlers::change)
    }),
    Route::new(Method::DELETE, "/subscriptions/{subscriptionId}", || {
        delete(handlers::unsubscribe)
    }),
];

/// The operations under `base`, plus 400 for `PUT`/`DELETE /subscriptions` (no id).
pub fn router(base: &str) -> Router<AppState> {
    router_of(base, &ROUTES).route(
        &format!("{base}/subscriptions"),
        MethodRouter::new().fallback(collection_other_method),
    )
}

async fn collection_other_method(method: Method) -> Response {
    super::collection_other_method(&method, missing_id_error)
}

/// The error for a route that needs a `subscriptionId` and got none.
pub fn missing_id_error() -> ApiError {
    ApiError::invalid(
        "subscriptionId is missing from the path: use /subscriptions/{subscriptionId}.",
    )
}

/// 404 for a subscription that is not there for the caller: never was, ended, or someone else's.
pub fn not_found() -> ApiError {
    ApiError::new(
        Code::NotFound,
        "The specified resource is not found: no active subscription with this subscriptionId.",
    )
}

/// The names an operation's scopes and the answer's types carry.
pub struct Names<'a>(pub &'a EventsConfig);

impl Names<'_> {
    /// `{type_prefix}.{name}`.
    pub fn full_type(&self, event: EventType) -> String {
        format!("{}.{}", self.0.type_prefix, event.name())
    }

    /// `{scope_prefix}:{full type}:create`.
    pub fn create_scope(&self, event: EventType) -> String {
        format!("{}:{}:create", self.0.scope_prefix, self.full_type(event))
    }

    /// `{scope_prefix}:{action}` (`read`, `update`, `delete`).
    pub fn scope(&self, action: &str) -> String {
        format!("{}:{action}", self.0.scope_prefix)
    }
}

/// CAMARA's `Subscription`, as answered: never the sink credential.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionResponse<'a> {
    protocol: &'static str,
    sink: &'a str,
    types: Vec<String>,
    config: ConfigResponse<'a>,
    id: &'a str,
    starts_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<String>,
    status: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ConfigResponse<'a> {
    subscription_detail: DetailResponse<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subscription_expire_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subscription_max_events: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    initial_event: Option<bool>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct DetailResponse<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    device_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    registration_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_id: Option<&'a str>,
}

impl<'a> SubscriptionResponse<'a> {
    pub fn new(names: &Names<'_>, s: &'a Subscription) -> Self {
        let expires_at = s.expires_at_ms.map(rfc3339_ms);
        Self {
            protocol: "HTTP",
            sink: &s.sink,
            types: s.types.iter().map(|t| names.full_type(*t)).collect(),
            config: ConfigResponse {
                subscription_detail: DetailResponse {
                    device_id: s.detail.device_id.as_deref(),
                    registration_id: s.detail.registration_id.as_deref(),
                    session_id: s.detail.session_id.as_deref(),
                },
                subscription_expire_time: expires_at.clone(),
                subscription_max_events: s.max_events,
                initial_event: s.initial_event,
            },
            id: &s.id,
            starts_at: rfc3339_ms(s.starts_at_ms),
            expires_at,
            status: "ACTIVE",
        }
    }
}
