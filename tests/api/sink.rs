//! A webhook sink for the delivery tests: a real HTTP server on `127.0.0.1:0` that records every
//! request it gets (headers and body) and answers with the statuses the test queues up (200 once
//! the queue is empty), a `Retry-After` when one is queued with it. The model is svix's
//! `TestReceiver`. Every body it hands the test has been checked against the events document.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::Value;

/// One request the sink received.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Value,
}

#[derive(Default)]
struct Shared {
    /// While true, requests wait (recorded, unanswered) until it is false.
    held: tokio::sync::Mutex<()>,
    holding: std::sync::atomic::AtomicBool,
    received: Mutex<Vec<Received>>,
    /// Answers still to give, in order: a status and an optional `Retry-After` (seconds).
    answers: Mutex<VecDeque<(StatusCode, Option<u64>)>>,
    /// The answer once the queue is empty (0: 204).
    otherwise: std::sync::atomic::AtomicU16,
    /// The bodies answered with a 2xx, in order.
    delivered: Mutex<Vec<Value>>,
    /// The `Location` of 3xx answers.
    location: Mutex<Option<String>>,
}

pub struct Sink {
    /// `http://127.0.0.1:<port>/events`
    pub url: String,
    shared: Arc<Shared>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn receive(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: String) -> Response {
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::String(body));
    shared.received.lock().unwrap().push(Received {
        headers,
        body: body.clone(),
    });
    if shared.holding.load(std::sync::atomic::Ordering::SeqCst) {
        let _released = shared.held.lock().await;
    }
    let queued = shared.answers.lock().unwrap().pop_front();
    let otherwise = shared.otherwise.load(std::sync::atomic::Ordering::SeqCst);
    let (status, after) = queued.unwrap_or_else(|| {
        let status = StatusCode::from_u16(otherwise).unwrap_or(StatusCode::NO_CONTENT);
        (status, None)
    });
    if status.is_success() {
        shared.delivered.lock().unwrap().push(body);
    }
    let mut response = match after {
        Some(after) => (status, [("retry-after", after.to_string())]).into_response(),
        None => status.into_response(),
    };
    let location = shared.location.lock().unwrap().clone();
    if let (true, Some(location)) = (status.is_redirection(), location) {
        response
            .headers_mut()
            .insert("location", location.parse().unwrap());
    }
    response
}

impl Sink {
    fn app(shared: &Arc<Shared>) -> axum::Router {
        axum::Router::new()
            .route("/events", post(receive))
            .with_state(Arc::clone(shared))
    }

    /// An HTTPS sink at `https://localhost:<port>/events`, with the test CA's certificate for
    /// `localhost` (`tests/fixtures/tls`).
    pub async fn start_https() -> Self {
        use hyper_util::rt::{TokioExecutor, TokioIo};
        use tokio_rustls::rustls;
        use tokio_rustls::rustls::pki_types::pem::PemObject;
        use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
        use tower::ServiceExt;
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(crate::helpers::fixture_path("tls/server.pem"))
                .unwrap()
                .map(Result::unwrap)
                .collect();
        let key = PrivateKeyDer::from_pem_file(crate::helpers::fixture_path("tls/server-key.pem"))
            .unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "https://localhost:{}/events",
            listener.local_addr().unwrap().port()
        );
        let shared = Arc::new(Shared::default());
        let app = Self::app(&shared);
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            loop {
                let (tcp, _) = tokio::select! {
                    accepted = listener.accept() => accepted.unwrap(),
                    _ = &mut stopped => return,
                };
                let (acceptor, app) = (acceptor.clone(), app.clone());
                tokio::spawn(async move {
                    // A client that refuses the certificate ends its handshake here.
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |request| {
                        app.clone().oneshot(request.map(axum::body::Body::new))
                    });
                    let builder =
                        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    let _ = builder.serve_connection(TokioIo::new(tls), service).await;
                });
            }
        });
        Self {
            url,
            shared,
            _stop: stop,
        }
    }

    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/events", listener.local_addr().unwrap());
        let shared = Arc::new(Shared::default());
        let app = Self::app(&shared);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Self {
            url,
            shared,
            _stop: stop,
        }
    }

    /// Holds every answer until the returned guard is dropped: requests are recorded as they
    /// come and then wait, like a sink that stopped answering.
    pub async fn hold(&self) -> tokio::sync::MutexGuard<'_, ()> {
        let guard = self.shared.held.lock().await;
        (self.shared.holding).store(true, std::sync::atomic::Ordering::SeqCst);
        guard
    }

    /// Answers `status` to every request once the queued answers are given (`None`: 204).
    pub fn otherwise(&self, status: Option<u16>) {
        let status = status.unwrap_or(0);
        (self.shared.otherwise).store(status, std::sync::atomic::Ordering::SeqCst);
    }

    /// Sends 3xx answers with `Location: <url>`.
    pub fn redirect_to(&self, url: &str) {
        *self.shared.location.lock().unwrap() = Some(url.to_owned());
    }

    /// The bodies answered with a 2xx so far.
    pub fn delivered(&self) -> Vec<Value> {
        self.shared.delivered.lock().unwrap().clone()
    }

    /// Queues the answers to the next requests.
    pub fn answer(&self, answers: &[(u16, Option<u64>)]) {
        let mut queue = self.shared.answers.lock().unwrap();
        for (status, after) in answers {
            queue.push_back((StatusCode::from_u16(*status).unwrap(), *after));
        }
    }

    /// Everything received so far, each body checked against the events document's
    /// `CloudEvent` (the callback of `POST /subscriptions`): a body it does not allow fails the
    /// test.
    pub fn received(&self) -> Vec<Received> {
        let received = self.shared.received.lock().unwrap().clone();
        for event in &received {
            if let Err(violation) =
                crate::contract::EVENTS.validate("#/components/schemas/CloudEvent", &event.body)
            {
                panic!(
                    "a CloudEvent the document does not allow: {violation}\n{}",
                    event.body
                );
            }
        }
        received
    }

    /// Waits (at most 20 s, no timing asserted) until `count` requests have arrived; returns
    /// them.
    pub async fn wait_for(&self, count: usize) -> Vec<Received> {
        for _ in 0..400 {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "the sink got {} requests, not {count}",
            self.received().len()
        );
    }
}

/// The check the sink applies is live: the document refuses an event that lacks a field or
/// carries one it does not know.
#[test]
fn the_cloudevent_schema_refuses_what_it_does_not_allow() {
    let event = serde_json::json!({
        "id": "6e8bc430-9c3a-41d9-9669-0800200c9a66", "source": "urn:camara-webrtc",
        "type": "org.camaraproject.webrtc-events.v0.subscription-ended", "specversion": "1.0",
        "time": "2026-12-03T12:00:00.000Z", "datacontenttype": "application/json",
        "data": { "subscriptionId": "s", "terminationReason": "SUBSCRIPTION_DELETED" }
    });
    let check =
        |event: &Value| crate::contract::EVENTS.validate("#/components/schemas/CloudEvent", event);
    assert_eq!(check(&event), Ok(()));
    let mut unknown = event.clone();
    unknown["data"]["extra"] = serde_json::json!(1);
    assert!(check(&unknown).is_err());
    let mut missing = event.clone();
    missing["data"]
        .as_object_mut()
        .unwrap()
        .remove("subscriptionId");
    assert!(check(&missing).is_err());
    let mut wrong_type = event;
    wrong_type["type"] = serde_json::json!("org.camaraproject.webrtc-events.v0.session-status");
    assert!(check(&wrong_type).is_err());
}
