//! CORS for browser apps, per `server.cors_allowed_origins`: tower-http's [`CorsLayer`] with the
//! API's methods and headers, given every request that carries `Origin` except an `OPTIONS` that
//! is not a preflight.
//!
//! A request without `Origin` is not a CORS request (a browser sends `Origin` on every
//! cross-origin request, and a same-origin one needs no CORS headers); it goes to the router
//! untouched, so curl, servers and gateways pay nothing for CORS.
//!
//! tower-http answers every `OPTIONS` itself as a preflight, by design (tower-http#497). A CORS
//! preflight is an `OPTIONS` carrying `Access-Control-Request-Method` (Fetch standard); any other
//! `OPTIONS` passes by the layer to the router, which answers it 405 like any method a route does
//! not serve.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::Request;
use axum::http::header::{
    ACCESS_CONTROL_REQUEST_METHOD, AUTHORIZATION, CONTENT_TYPE, ETAG, LOCATION, ORIGIN, RETRY_AFTER,
};
use axum::http::{HeaderName, HeaderValue, Method};
use tower::util::Either;
use tower::util::future::EitherResponseFuture;
use tower::{Layer, Service};
use tower_http::cors::{self, AllowOrigin, Cors, CorsLayer};

use super::X_CORRELATOR;

/// How long a browser may reuse a preflight's answer: two hours, the longest Chromium honours
/// (Firefox's limit is a day). The answer changes only with the configuration, and a removed
/// origin loses access at once anyway: its actual responses no longer carry its origin.
pub const MAX_AGE: Duration = Duration::from_secs(7200);

/// The layer for `origins` (`server.cors_allowed_origins`, validated): `["*"]` allows any origin,
/// a list exactly its origins; `None` for an empty list, which turns CORS off.
///
/// Preflights allow the API's methods and the request headers it reads; actual responses expose
/// the headers a client reads besides the safelisted ones. No `Access-Control-Allow-Credentials`:
/// the API takes a bearer token in `Authorization`, never a cookie. tower-http's default `Vary:
/// origin, access-control-request-method, access-control-request-headers` goes on every CORS
/// response, since with a list the `Access-Control-Allow-Origin` a response carries depends on
/// `Origin`.
pub fn layer(origins: &[String]) -> Option<BrowserCors> {
    let allow_origin = match origins {
        [] => return None,
        [any] if any == "*" => AllowOrigin::any(),
        // Validation admits only ASCII origins, each a valid header value.
        _ => AllowOrigin::list(
            origins
                .iter()
                .filter_map(|origin| HeaderValue::from_str(origin).ok()),
        ),
    };
    let cors = CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([
            AUTHORIZATION,
            CONTENT_TYPE,
            X_CORRELATOR.clone(),
            HeaderName::from_static("registrationid"),
        ])
        .expose_headers([X_CORRELATOR.clone(), ETAG, LOCATION, RETRY_AFTER])
        .max_age(MAX_AGE);
    Some(BrowserCors(cors))
}

/// A [`CorsLayer`] that answers as a preflight only what the Fetch standard calls one (`OPTIONS`
/// with `Access-Control-Request-Method`); see the module's documentation.
#[derive(Clone)]
pub struct BrowserCors(CorsLayer);

impl<S: Clone> Layer<S> for BrowserCors {
    type Service = BrowserCorsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BrowserCorsService {
            cors: Arc::new(self.0.clone()),
            inner,
        }
    }
}

/// The service of [`BrowserCors`]: the CORS layer around `inner` for a request with `Origin`,
/// but an `OPTIONS` without `Access-Control-Request-Method`; `inner` untouched for every other.
/// The layer is shared and put around `inner` only for a CORS request.
#[derive(Clone)]
pub struct BrowserCorsService<S> {
    cors: Arc<CorsLayer>,
    inner: S,
}

impl<S, B> Service<Request> for BrowserCorsService<S>
where
    S: Service<Request, Response = axum::http::Response<B>> + Clone,
    B: Default,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = EitherResponseFuture<cors::ResponseFuture<S::Future>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let headers = request.headers();
        let options_not_preflight = request.method() == Method::OPTIONS
            && !headers.contains_key(ACCESS_CONTROL_REQUEST_METHOD);
        let mut way: Either<Cors<S>, &mut S> =
            if headers.contains_key(ORIGIN) && !options_not_preflight {
                // The service made ready goes into the layer; a clone stays for the next call.
                let clone = self.inner.clone();
                let ready = std::mem::replace(&mut self.inner, clone);
                Either::Left(self.cors.layer(ready))
            } else {
                Either::Right(&mut self.inner)
            };
        way.call(request)
    }
}
