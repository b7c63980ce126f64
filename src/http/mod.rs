//! The HTTP edge: state, router and middleware stack. Handlers live in their resource's module.

mod body;
mod create;
mod error;
mod extract;
mod health;
mod json;
mod limits;
mod metrics;
mod middleware;
pub mod openapi;
mod sessions;
mod status;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{Method, Uri};
use axum::routing::{MethodRouter, delete, get, post, put};

pub use error::{ApiError, Code};
pub use metrics::upkeep as metrics_upkeep;
pub use status::StatusUpdate;

use crate::auth::{Caller, Verifier};
use crate::config::Config;
use crate::domain::Address;
use crate::store::SessionStore;

/// What every handler can reach. One `Arc`, so the several clones a request makes (one per
/// `State` extractor and middleware) cost one atomic increment each.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// The parts of [`AppState`].
pub struct Shared {
    pub config: Arc<Config>,
    pub store: Arc<dyn SessionStore>,
    pub verifier: Arc<Verifier>,
    /// `auth.subscribers` as TEL URIs; empty means any subscriber.
    subscribers: HashSet<Address>,
    /// The OpenAPI document, its servers set to the configured base paths.
    openapi: axum::body::Bytes,
    limits: limits::Limits,
    /// `server.request_timeout_ms`.
    request_timeout: Duration,
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    pub fn new(config: Arc<Config>, store: Arc<dyn SessionStore>, verifier: Arc<Verifier>) -> Self {
        metrics::handle();
        let subscribers = config
            .auth
            .subscribers
            .iter()
            .filter_map(|s| Address::from_phone_number(s))
            .collect();
        let openapi = openapi::document(&config.server.base_paths).into();
        let limits = limits::Limits::new(&config.server);
        let request_timeout = Duration::from_millis(config.server.request_timeout_ms);
        Self(Arc::new(Shared {
            limits,
            request_timeout,
            config,
            store,
            verifier,
            subscribers,
            openapi,
        }))
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

/// Where an operation is mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mount {
    /// Under every configured base path (`server.base_paths`).
    Api,
    /// At the root, unauthenticated.
    Root,
}

/// One operation the service serves. The router is built from [`ROUTES`], and a test proves the
/// OpenAPI document lists exactly these.
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub mount: Mount,
    handler: fn() -> MethodRouter<AppState>,
}

/// Every operation, in the order of the OpenAPI document.
pub static ROUTES: [Route; 8] = [
    Route {
        method: Method::POST,
        path: "/sessions",
        mount: Mount::Api,
        handler: || post(create::create_session),
    },
    Route {
        method: Method::GET,
        path: "/sessions/{mediaSessionId}",
        mount: Mount::Api,
        handler: || get(sessions::get_session),
    },
    Route {
        method: Method::DELETE,
        path: "/sessions/{mediaSessionId}",
        mount: Mount::Api,
        handler: || delete(sessions::delete_session),
    },
    Route {
        method: Method::PUT,
        path: "/sessions/{mediaSessionId}/status",
        mount: Mount::Api,
        handler: || put(status::put_status),
    },
    Route {
        method: Method::GET,
        path: "/health/live",
        mount: Mount::Root,
        handler: || get(health::live),
    },
    Route {
        method: Method::GET,
        path: "/health/ready",
        mount: Mount::Root,
        handler: || get(health::ready),
    },
    Route {
        method: Method::GET,
        path: "/metrics",
        mount: Mount::Root,
        handler: || get(metrics::serve),
    },
    Route {
        method: Method::GET,
        path: "/openapi.yaml",
        mount: Mount::Root,
        handler: || get(openapi::serve),
    },
];

/// The routes of one mount under `prefix` (a base path, or "" at the root); routes sharing a
/// path merge their methods. Full paths rather than `nest`, so no request pays for rewriting its
/// URI on the way in.
fn mounted(router: Router<AppState>, mount: Mount, prefix: &str) -> Router<AppState> {
    ROUTES
        .iter()
        .filter(|route| route.mount == mount)
        .fold(router, |router, route| {
            router.route(&format!("{prefix}{}", route.path), (route.handler)())
        })
}

/// The call-handling routes under one base path.
fn api_routes(router: Router<AppState>, base: &str) -> Router<AppState> {
    mounted(router, Mount::Api, base)
        // No id, or an empty one: CAMARA's feature files want 400, not 404/405. The static
        // `/sessions/status` shadows the parameter route, so it serves the id `status` itself.
        // These answer through method fallbacks, so `Allow` lists only documented operations.
        .route(
            &format!("{base}/sessions/status"),
            get(sessions::get_session_named_status)
                .delete(sessions::delete_session_named_status)
                .fallback(sessions::named_status_other_method),
        )
        .route(
            &format!("{base}/sessions"),
            MethodRouter::new().fallback(sessions::sessions_other_method),
        )
}

/// Unknown routes: 400 when the path is a session route with an empty id (`/sessions/`,
/// `/sessions//status`), else 404, both as CAMARA JSON.
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
    // The API routes shed load beyond the concurrency limit; the operational ones never do, so
    // an overloaded instance still reports itself alive and ready.
    let mut app = mounted(Router::new(), Mount::Root, "");
    for base in &state.config.server.base_paths {
        app = api_routes(app, base);
    }
    with_middleware(app.fallback(fallback), &state).with_state(state)
}

/// Whether a request was routed to an API operation (under a base path), which load shedding
/// applies to, rather than to an operational route at the root or to no route at all.
fn is_api_route(matched: Option<&axum::extract::MatchedPath>) -> bool {
    matched.is_some_and(|matched| {
        !ROUTES
            .iter()
            .any(|route| route.mount == Mount::Root && route.path == matched.as_str())
    })
}

/// Wraps every route (and the fallback) in the middleware: one layer, the edge (correlator, log
/// line, request timeout, panics, CAMARA-izing of framework errors), so even a 401, a timeout or
/// a panic carries the correlator and is logged. The body limit is applied where a body is read
/// ([`extract::JsonBody`]).
fn with_middleware(app: Router<AppState>, state: &AppState) -> Router<AppState> {
    app.layer(axum::middleware::from_fn_with_state(
        state.clone(),
        middleware::edge,
    ))
}

#[cfg(test)]
mod tests {
    use axum::body::{Body, to_bytes};
    use axum::http::{Request, StatusCode, header};
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
        let app = with_middleware(app, &state).with_state(state);
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

    /// Whatever prints a request's headers behind the edge shows `Sensitive`, not the token.
    #[tokio::test]
    async fn authorization_is_sensitive_behind_the_edge() {
        let state = crate::build_state(Config::embedded()).await.unwrap();
        let app = Router::new().route(
            "/headers",
            get(|headers: axum::http::HeaderMap| async move { format!("{headers:?}") }),
        );
        let app = with_middleware(app, &state).with_state(state);
        let request = Request::get("/headers")
            .header(header::AUTHORIZATION, "Bearer secret-token")
            .body(Body::empty())
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        let body = to_bytes(response.into_body(), 4096).await.unwrap();
        assert_eq!(body, r#"{"authorization": Sensitive}"#);
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
