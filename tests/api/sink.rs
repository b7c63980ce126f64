//! A webhook sink for the delivery tests: a real HTTP server on `127.0.0.1:0` that records every
//! request it gets (headers and body) and answers with the statuses the test queues up (200 once
//! the queue is empty), a `Retry-After` when one is queued with it. The model is svix's
//! `TestReceiver`.

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
    received: Mutex<Vec<Received>>,
    /// Answers still to give, in order: a status and an optional `Retry-After` (seconds).
    answers: Mutex<VecDeque<(StatusCode, Option<u64>)>>,
}

pub struct Sink {
    /// `http://127.0.0.1:<port>/events`
    pub url: String,
    shared: Arc<Shared>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn receive(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: String) -> Response {
    let body = serde_json::from_str(&body).unwrap_or(Value::String(body));
    shared
        .received
        .lock()
        .unwrap()
        .push(Received { headers, body });
    match shared.answers.lock().unwrap().pop_front() {
        Some((status, Some(after))) => {
            (status, [("retry-after", after.to_string())]).into_response()
        }
        Some((status, None)) => status.into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

impl Sink {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/events", listener.local_addr().unwrap());
        let shared = Arc::new(Shared::default());
        let app = axum::Router::new()
            .route("/events", post(receive))
            .with_state(Arc::clone(&shared));
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

    /// Queues the answers to the next requests.
    pub fn answer(&self, answers: &[(u16, Option<u64>)]) {
        let mut queue = self.shared.answers.lock().unwrap();
        for (status, after) in answers {
            queue.push_back((StatusCode::from_u16(*status).unwrap(), *after));
        }
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
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
