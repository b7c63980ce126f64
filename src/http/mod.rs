//! The HTTP edge: the state every handler reaches, the router (one per API, mounted under every
//! base path, plus the operational routes) and the middleware stack. Handlers live in their API's
//! module.

mod cors;
mod error;
mod extract;
mod middleware;
mod network;
pub mod openapi;
mod ops;
mod registrations;
mod sessions;
mod subscriptions;

use std::collections::HashSet;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderName, Method, Uri};
use axum::routing::MethodRouter;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::timeout::TimeoutLayer;
use tower::util::option_layer;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::TraceLayer;
use tracing::Span;

pub use error::{ApiError, Code};
pub use extract::parse as read_json;
pub use sessions::{SessionResponse, StatusBody};

use crate::auth::Verifier;
use crate::config::Config;
use crate::domain::Address;
use crate::events::{Events, SinkGuard};
use crate::store::{RegistrationStore, SessionStore, SubscriptionStore};

/// The header carrying a request's correlation id, CAMARA's `x-correlator`.
pub static X_CORRELATOR: HeaderName = HeaderName::from_static("x-correlator");

/// What every handler can reach. Cheap to clone: one `Arc`.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// The parts of [`AppState`].
pub struct Shared {
    pub config: Arc<Config>,
    pub store: Arc<dyn SessionStore>,
    /// The registrations, on the same backend as the sessions.
    pub registrations: Arc<dyn RegistrationStore>,
    /// The event subscriptions, on the same backend.
    pub subscriptions: Arc<dyn SubscriptionStore>,
    /// Which sinks a subscription may name (`events.allow_http_sinks`,
    /// `events.allowed_sink_networks`).
    pub sink_guard: SinkGuard,
    /// Where committed changes are recorded for their events.
    pub events: Arc<Events>,
    /// The simulated far end: its scripts and times.
    pub network: Arc<crate::network::Network>,
    /// Every change and delivery, live, for the console (`GET /network/v1/stream`).
    pub feed: Arc<crate::events::Feed>,
    pub verifier: Arc<Verifier>,
    /// `auth.subscribers` as TEL URIs; empty means any subscriber.
    subscribers: HashSet<Address>,
    /// `server.rate_limit_per_second` per API consumer, when set.
    rate_limit: Option<DefaultKeyedRateLimiter<String>>,
    /// The OpenAPI documents (call handling, registration, events), their servers set to the configured
    /// base paths.
    openapi: axum::body::Bytes,
    openapi_registration: axum::body::Bytes,
    openapi_events: axum::body::Bytes,
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// Consumers the rate limiter remembers before it forgets those whose budget is full again.
const MAX_TRACKED_CONSUMERS: usize = 100_000;

impl AppState {
    pub fn new(
        config: Arc<Config>,
        stores: crate::store::Stores,
        verifier: Arc<Verifier>,
        events: Arc<Events>,
        network: Arc<crate::network::Network>,
        feed: Arc<crate::events::Feed>,
    ) -> Self {
        crate::telemetry::metrics::handle();
        let subscribers = config
            .auth
            .subscribers
            .iter()
            .filter_map(|s| Address::from_phone_number(s))
            .collect();
        let server = &config.server;
        let rate_limit = NonZeroU32::new(server.rate_limit_per_second).map(|rate| {
            let burst = NonZeroU32::new(server.rate_limit_burst).unwrap_or(rate);
            RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        let sink_guard = SinkGuard::from_config(&config.events);
        let openapi = openapi::document(openapi::DOCUMENT, &server.base_paths).into();
        let openapi_registration = openapi::document(
            openapi::REGISTRATION_DOCUMENT,
            &config.registration.base_paths,
        )
        .into();
        let openapi_events =
            openapi::document(openapi::EVENTS_DOCUMENT, &config.events.base_paths).into();
        Self(Arc::new(Shared {
            network,
            feed,
            config,
            store: stores.sessions,
            registrations: stores.registrations,
            subscriptions: stores.subscriptions,
            sink_guard,
            events,
            verifier,
            subscribers,
            rate_limit,
            openapi,
            openapi_registration,
            openapi_events,
        }))
    }

    /// Whether a 3-legged token's subscriber may use the API: any, unless a list is configured.
    pub fn subscriber_known(&self, subscriber: &Address) -> bool {
        self.subscribers.is_empty() || self.subscribers.contains(subscriber)
    }

    /// Takes one request from `consumer`'s budget, or answers 429 with the whole seconds until
    /// one is free in `Retry-After`.
    pub fn check_rate(&self, consumer: &str) -> Result<(), ApiError> {
        let Some(limiter) = &self.rate_limit else {
            return Ok(());
        };
        if limiter.len() > MAX_TRACKED_CONSUMERS {
            limiter.retain_recent();
        }
        limiter
            .check_key(&consumer.to_owned())
            .map_err(|not_until| {
                let wait = not_until.wait_time_from(governor::clock::Clock::now(limiter.clock()));
                ApiError::new(
                    Code::TooManyRequests,
                    format!(
                        "Rate limit reached: {} requests per second per API consumer.",
                        self.config.server.rate_limit_per_second
                    ),
                )
                .with_retry_after(wait.as_secs_f64().ceil().max(1.0) as u64)
            })
    }
}

/// Where an operation is mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mount {
    /// Under every base path of the call-handling API (`server.base_paths`).
    Api,
    /// Under every base path of the registration API (`registration.base_paths`).
    Registration,
    /// Under every base path of the events API (`events.base_paths`).
    Events,
    /// At the root, unauthenticated.
    Root,
    /// At the root (`/network/v1`), with `network.admin_api` only.
    Network,
}

/// One operation the service serves. Each API's router is built from its table of routes, and a
/// test proves the OpenAPI document lists exactly [`operations`].
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    handler: fn() -> MethodRouter<AppState>,
}

impl Route {
    pub const fn new(
        method: Method,
        path: &'static str,
        handler: fn() -> MethodRouter<AppState>,
    ) -> Self {
        Self {
            method,
            path,
            handler,
        }
    }
}

/// A router of `routes` under `prefix` (a base path, or "" at the root); routes sharing a path
/// merge their methods. Full paths rather than `nest`, so no request pays for rewriting its URI.
fn router_of<'a>(prefix: &str, routes: impl IntoIterator<Item = &'a Route>) -> Router<AppState> {
    routes.into_iter().fold(Router::new(), |router, route| {
        router.route(&format!("{prefix}{}", route.path), (route.handler)())
    })
}

/// Every operation the service serves and where it is mounted, in the order of the document.
pub fn operations() -> impl Iterator<Item = (&'static Route, Mount)> {
    let api = sessions::ROUTES.iter().map(|route| (route, Mount::Api));
    let registration = registrations::ROUTES
        .iter()
        .map(|route| (route, Mount::Registration));
    let events = subscriptions::ROUTES
        .iter()
        .map(|route| (route, Mount::Events));
    let network = network::ROUTES.iter().map(|route| (route, Mount::Network));
    api.chain(registration)
        .chain(events)
        .chain(network)
        .chain(ops::ROUTES.iter().map(|route| (route, Mount::Root)))
}

/// Methods a collection (`/sessions` of the registration API, `/subscriptions`) that serves GET
/// and POST has no operation for: PUT and DELETE there lack the item's id (`missing_id`, 400);
/// anything else is 405, `Allow` listing the real operations.
fn collection_other_method(
    method: &Method,
    missing_id: fn() -> ApiError,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if method == Method::PUT || method == Method::DELETE {
        missing_id().into_response()
    } else {
        (
            axum::http::StatusCode::METHOD_NOT_ALLOWED,
            [(axum::http::header::ALLOW, "GET,HEAD,POST")],
        )
            .into_response()
    }
}

/// Unknown routes: 400 when the path is a session, registration or subscription route with an
/// empty id (`/sessions/`, `/sessions//status`, `/subscriptions/`), else 404, both as CAMARA JSON.
async fn fallback(State(state): State<AppState>, method: Method, uri: Uri) -> ApiError {
    let path = uri.path();
    let config = &state.config;
    let empty_id = |bases: &[String], collection: &str| {
        bases.iter().any(|base| {
            path.strip_prefix(base.as_str())
                .and_then(|rest| rest.strip_prefix(collection))
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
    };
    if empty_id(&config.server.base_paths, "/sessions/") {
        return sessions::missing_id_error();
    }
    if empty_id(&config.registration.base_paths, "/sessions/") {
        return registrations::missing_id_error();
    }
    if empty_id(&config.events.base_paths, "/subscriptions/") {
        return subscriptions::missing_id_error();
    }
    tracing::debug!(%method, "no route");
    ApiError::new(
        Code::NotFound,
        "The specified resource is not found: no such route.",
    )
}

/// The whole application: the call-handling API under every base path, the operational routes
/// at the root, and the middleware stack around all of them.
pub fn router(state: AppState) -> Router {
    let server = &state.config.server;
    // API requests beyond the concurrency limit are shed at once with 503 (not queued); the
    // operational routes never are, so an overloaded instance still reports itself alive and ready.
    let shed = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
            tracing::warn!("request shed: the concurrency limit is reached");
            ApiError::new(
                Code::Unavailable,
                "Service Unavailable: the service is at its limit of concurrent requests; retry shortly.",
            )
        }))
        .load_shed()
        .layer(GlobalConcurrencyLimitLayer::new(
            server.max_concurrent_requests,
        ));
    let api = server
        .base_paths
        .iter()
        .fold(Router::new(), |api, base| api.merge(sessions::router(base)));
    let api = (state.config.registration.base_paths.iter())
        .fold(api, |api, base| api.merge(registrations::router(base)));
    let api = (state.config.events.base_paths.iter())
        .fold(api, |api, base| api.merge(subscriptions::router(base)));
    let api = match state.config.network.admin_api {
        true => api.merge(network::router()),
        false => api,
    }
    .route_layer(shed);
    let app = ops::router(server.metrics_listen.is_empty()).merge(api);
    with_stack(app.fallback(fallback), &state).with_state(state)
}

/// The service of the `server.metrics_listen` listener: `/metrics`, in the same stack (an
/// `x-correlator`, CAMARA errors, the request line), every other path 404.
pub fn metrics_router(state: AppState) -> Router {
    let app = ops::metrics_router().fallback(fallback);
    with_stack(app, &state).with_state(state)
}

/// The middleware every route and the fallback run in, outermost first:
/// 1. `Authorization` is marked sensitive before anything could print it.
/// 2. CORS, when `server.cors_allowed_origins` is not empty ([`cors`]): a preflight is answered
///    here, before everything below — no correlator, log line or metrics, no authentication, rate
///    limit or load shedding, no 405 for a route without `OPTIONS`. Every other response to a
///    request with `Origin` gets the CORS headers on its way out, whichever layer below made it (`edge`'s 400 for a bad
///    `x-correlator`, a 401, a shed 503, a 504), so a browser app can read its errors too.
/// 3. [`middleware::edge`] refuses an invalid `x-correlator` (400, not echoed), rewrites every
///    error the framework or a layer below answers in plain text (405, 504, ...) into CAMARA
///    JSON — so it sits outside everything that can make one — and writes the request's metrics
///    and log line, with the status and the correlator the client gets.
/// 4. A request without `x-correlator` gets a UUID; the value is echoed on the response, errors
///    included (a 401, a timeout, a panic).
/// 5. The request's span (method, route, correlator), for what a handler logs.
/// 6. The timeout (504). tower's, which polls the request before its timer, so a request answered
///    at once never arms one.
/// 7. Panics become CAMARA 500s, inside the timeout so a panicking handler is answered at once.
fn with_stack(app: Router<AppState>, state: &AppState) -> Router<AppState> {
    let timeout = Duration::from_millis(state.config.server.request_timeout_ms);
    // In the ServiceBuilder the first layer is the outermost (4 to 7 above); each later
    // `Router::layer` call wraps everything before it (3, then 2, then 1).
    app.layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(
                X_CORRELATOR.clone(),
                MakeRequestUuid,
            ))
            .layer(PropagateRequestIdLayer::new(X_CORRELATOR.clone()))
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(request_span as fn(&Request) -> Span)
                    .on_request(())
                    .on_response(())
                    .on_failure(()),
            )
            .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
                ApiError::plain(Code::Timeout)
            }))
            .layer(TimeoutLayer::new(timeout))
            .layer(CatchPanicLayer::custom(middleware::panic_response)),
    )
    .layer(axum::middleware::from_fn(middleware::edge))
    .layer(option_layer(cors::layer(
        &state.config.server.cors_allowed_origins,
    )))
    .layer(SetSensitiveRequestHeadersLayer::new([AUTHORIZATION]))
}

/// The span of one request, at debug level: events a handler logs inside the request carry its
/// method, route and correlator. (The request's own line is [`middleware::edge`]'s.)
fn request_span(request: &Request) -> Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("<unmatched>", MatchedPath::as_str);
    let correlator = request
        .headers()
        .get(&X_CORRELATOR)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    tracing::debug_span!("request", method = %request.method(), route, correlator)
}

#[cfg(test)]
mod tests {
    use axum::body::{Body, to_bytes};
    use axum::http::{Request, StatusCode, header};
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    async fn explode() -> &'static str {
        panic!("boom with a secret")
    }

    /// A handler that panics and one that outlives the timeout, behind the real middleware stack.
    async fn call(path: &str) -> (StatusCode, String, serde_json::Value) {
        let mut config = Config::embedded();
        config.server.request_timeout_ms = 50;
        let state = crate::build_state(config).await.unwrap();
        let app = Router::new().route("/panic", get(explode)).route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        );
        let app = with_stack(app, &state).with_state(state);
        let request = Request::get(path)
            .header("x-correlator", "c-1")
            .body(Body::empty())
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        let status = response.status();
        let correlator = response.headers()["x-correlator"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let body = to_bytes(response.into_body(), 4096).await.unwrap();
        (status, correlator, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn a_panic_is_camara_500_without_its_cause() {
        let (status, correlator, body) = call("/panic").await;
        assert_eq!(
            (status, correlator.as_str()),
            (StatusCode::INTERNAL_SERVER_ERROR, "c-1")
        );
        assert_eq!(
            body,
            serde_json::json!({"status": 500, "code": "INTERNAL", "message": "Unknown server error. Typically a server bug."})
        );
    }

    /// Whatever prints a request's headers behind the stack shows `Sensitive`, not the token.
    #[tokio::test]
    async fn authorization_is_sensitive_behind_the_stack() {
        let state = crate::build_state(Config::embedded()).await.unwrap();
        let app = Router::new().route(
            "/headers",
            get(|headers: axum::http::HeaderMap| async move {
                format!("{:?}", headers.get(header::AUTHORIZATION))
            }),
        );
        let app = with_stack(app, &state).with_state(state);
        let request = Request::get("/headers")
            .header(header::AUTHORIZATION, "Bearer secret-token")
            .body(Body::empty())
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        let body = to_bytes(response.into_body(), 4096).await.unwrap();
        assert_eq!(body, "Some(Sensitive)");
    }

    #[tokio::test]
    async fn a_timeout_is_camara_504() {
        let (status, correlator, body) = call("/slow").await;
        assert_eq!(
            (status, correlator.as_str()),
            (StatusCode::GATEWAY_TIMEOUT, "c-1")
        );
        assert_eq!(
            body,
            serde_json::json!({"status": 504, "code": "TIMEOUT", "message": "Request timeout exceeded."})
        );
    }
}
