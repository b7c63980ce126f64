//! The client of every test app: every response the suite receives through `TestApp::client` is
//! read whole and checked before the test sees it — the x-correlator must be echoed, and the
//! response must [`conforms`] to the OpenAPI document; the one exception, a CORS preflight
//! answered 200, must be a CORS layer's answer ([`preflight_conforms`]). Tests of the binary use one too
//! ([`ContractClient::embedded`]), and a body sent in pieces goes through it as a
//! [`pieces`] body, and a test that speaks HTTP with a client of its own passes what it read to
//! [`check`], so no response the suite reads escapes the check.

use std::fmt;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::header::ACCESS_CONTROL_REQUEST_METHOD;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use reqwest::{IntoUrl, RequestBuilder, ResponseBuilderExt};
use serde::Serialize;

use http_body_util::channel::Channel;
pub use http_body_util::channel::Sender;

use crate::contract::{Mounts, conforms, preflight_conforms};

/// The client of every test app: a `reqwest::Client` whose every response is read whole and
/// [`check`]ed before the test sees it.
#[derive(Clone)]
pub struct ContractClient {
    client: reqwest::Client,
    /// Where the app serves each document's API operations.
    mounts: Mounts,
}

impl ContractClient {
    /// A client for an app on the embedded default config (the binary's `serve`).
    pub fn embedded() -> Self {
        Self::new(Mounts::embedded())
    }

    pub fn new(mounts: Mounts) -> Self {
        Self::with(reqwest::Client::new(), mounts)
    }

    /// A client that speaks HTTP/2 from its first byte (h2c with prior knowledge), for an app
    /// serving its APIs under `mounts`.
    pub fn h2c(mounts: Mounts) -> Self {
        let client = reqwest::Client::builder()
            .http2_prior_knowledge()
            .build()
            .expect("an HTTP/2 client");
        Self::with(client, mounts)
    }

    fn with(client: reqwest::Client, mounts: Mounts) -> Self {
        Self { client, mounts }
    }

    pub fn request(&self, method: Method, url: impl IntoUrl) -> ContractRequest {
        ContractRequest {
            builder: self.client.request(method, url),
            mounts: self.mounts.clone(),
        }
    }

    pub fn get(&self, url: impl IntoUrl) -> ContractRequest {
        self.request(Method::GET, url)
    }

    pub fn put(&self, url: impl IntoUrl) -> ContractRequest {
        self.request(Method::PUT, url)
    }

    pub fn post(&self, url: impl IntoUrl) -> ContractRequest {
        self.request(Method::POST, url)
    }

    pub fn delete(&self, url: impl IntoUrl) -> ContractRequest {
        self.request(Method::DELETE, url)
    }
}

/// A request of a [`ContractClient`]: the `reqwest::RequestBuilder` methods the suite uses, and a
/// `send` that checks the response.
#[must_use]
pub struct ContractRequest {
    builder: RequestBuilder,
    mounts: Mounts,
}

impl ContractRequest {
    pub fn bearer_auth(self, token: impl fmt::Display) -> Self {
        self.map(|builder| builder.bearer_auth(token))
    }

    pub fn header<K, V>(self, key: K, value: V) -> Self
    where
        HeaderName: TryFrom<K>,
        <HeaderName as TryFrom<K>>::Error: Into<axum::http::Error>,
        HeaderValue: TryFrom<V>,
        <HeaderValue as TryFrom<V>>::Error: Into<axum::http::Error>,
    {
        self.map(|builder| builder.header(key, value))
    }

    pub fn body(self, body: impl Into<reqwest::Body>) -> Self {
        self.map(|builder| builder.body(body))
    }

    pub fn json<T: Serialize + ?Sized>(self, json: &T) -> Self {
        self.map(|builder| builder.json(json))
    }

    pub fn timeout(self, timeout: Duration) -> Self {
        self.map(|builder| builder.timeout(timeout))
    }

    fn map(self, f: impl FnOnce(RequestBuilder) -> RequestBuilder) -> Self {
        Self {
            builder: f(self.builder),
            ..self
        }
    }

    /// Sends the request, reads the whole response and [`check`]s it. The response the test gets
    /// is rebuilt from what was read: the same status, version, headers, body and `url()`
    /// (extensions such as `remote_addr()` are not carried over).
    pub async fn send(self) -> reqwest::Result<reqwest::Response> {
        let (client, request) = self.builder.build_split();
        let request = request?;
        let method = request.method().clone();
        let path = request.url().path().to_owned();
        let sent = request.headers().get("x-correlator").cloned();
        let preflight = is_preflight(&method, request.headers());
        let mut response = client.execute(request).await?;
        let headers = std::mem::take(response.headers_mut());
        let mut read = axum::http::Response::builder()
            .status(response.status())
            .version(response.version())
            .url(response.url().clone())
            .body(response.bytes().await?)
            .expect("the status and version of a response");
        *read.headers_mut() = headers;
        // The one exception to `check`: a CORS preflight the service answers as one (200). The
        // CORS layer answers it before everything that makes what `check` expects (a correlator,
        // an operation of the document), so `preflight_conforms` checks it instead. A preflight
        // the service does not answer as one (CORS off: a 405) is checked like any request.
        if preflight && read.status() == StatusCode::OK {
            if let Err(violation) = preflight_conforms(read.headers(), read.body()) {
                panic!("CORS preflight violation: {method} {path}: {violation}");
            }
        } else {
            check(&self.mounts, &method, &path, sent.as_ref(), &read);
        }
        Ok(read.into())
    }
}

/// A CORS preflight, as the Fetch standard defines one: `OPTIONS` with
/// `Access-Control-Request-Method`. Any other `OPTIONS` is an ordinary request (a CAMARA 405).
fn is_preflight(method: &Method, headers: &axum::http::HeaderMap) -> bool {
    method == Method::OPTIONS && headers.contains_key(ACCESS_CONTROL_REQUEST_METHOD)
}

/// Checks one response a test app gave to `method path` (also for tests that read responses
/// with a client of their own): it echoes the `x-correlator` sent (an
/// invalid one is refused with 400 and not echoed; without one the app makes one up) and it
/// [`conforms`] to the document. A violation panics, failing the test with the message printed.
pub fn check(
    mounts: &Mounts,
    method: &Method,
    path: &str,
    sent: Option<&HeaderValue>,
    response: &axum::http::Response<Bytes>,
) {
    let (status, headers, body) = (response.status(), response.headers(), response.body());
    let correlator = match (sent, headers.get("x-correlator")) {
        (Some(_), None) if status == StatusCode::BAD_REQUEST => Ok(()),
        (Some(sent), Some(echoed)) if sent != echoed => Err("x-correlator not echoed".to_owned()),
        (_, None) => Err("no x-correlator header".to_owned()),
        _ => Ok(()),
    };
    if let Err(violation) =
        correlator.and_then(|()| conforms(mounts, method, path, status, headers, body))
    {
        panic!(
            "OpenAPI contract violation: {method} {path} answered {status}: {violation}\nbody: {}",
            String::from_utf8_lossy(body)
        );
    }
}

/// A request body sent in pieces as the test pushes them (chunked transfer encoding); it ends
/// when the sender is dropped. Up to `capacity` pieces wait unsent.
pub fn pieces(capacity: usize) -> (Sender<Bytes>, reqwest::Body) {
    let (sender, body) = Channel::new(capacity);
    (sender, reqwest::Body::wrap(body))
}
