//! `GET /network/v1/stream`: the feed ([`crate::events::feed`]) as Server-Sent Events, for the
//! console and for `curl -N`. A follower first gets the records this process kept (history:
//! statuses and deliveries), then a look at the store (up to [`FIRST_LOOK`] sessions, those
//! going first, then the most recently over; as many active registrations and subscriptions),
//! then `ready`, then every record as it comes, and a comment every [`KEEP_ALIVE`] so that
//! proxies keep the stream open.
//!
//! A follower more than [`BUFFER`](crate::events::feed::BUFFER) records behind gets `dropped`
//! and its stream ends: it never holds the service back. So does every follower when records
//! may have been missed ([`Feed::missed`](crate::events::feed::Feed::missed)). A follower that takes nothing at all
//! is closed by the server's write watchdog after `server.idle_timeout_ms`. On shutdown every
//! stream ends.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, watch};

use super::super::AppState;
use super::super::error::ApiError;
use super::super::extract::{Authorized, NetworkOp};
use crate::events::feed::{
    Frame, RegistrationRecord, SessionRecord, SubscriptionRecord, unnumbered as frame,
};
use crate::store::now_ms;

/// Sessions, registrations and subscriptions each in a stream's first look at the store.
pub const FIRST_LOOK: usize = 1_000;

/// How often a stream with nothing to say sends a comment.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// What `ready` says: how much the first look showed, of how many.
#[derive(Debug, Serialize)]
struct Ready {
    sessions: Shown,
    registrations: Shown,
    subscriptions: Shown,
    /// The history records sent before the first look.
    history: usize,
}

#[derive(Debug, Serialize)]
struct Shown {
    shown: usize,
    total: usize,
}

impl Shown {
    /// `shown` records of `total` (a store's count can lag what it just read: never less).
    fn of(shown: usize, total: usize) -> Self {
        Self {
            shown,
            total: total.max(shown),
        }
    }
}

/// `GET /network/v1/stream`.
pub async fn stream(
    State(state): State<AppState>,
    _authorized: Authorized<NetworkOp>,
) -> Result<Response, ApiError> {
    // Followed before the store is read: a change committed meanwhile is in the first look, or
    // in what follows, or both (records carry versions), never in neither.
    let (history, live) = state.feed.follow();
    // Taken before the store is read too: a gap from now on drops this follower.
    let gaps = state.feed.gaps();
    let now = now_ms();
    let (
        (mut sessions, sessions_total),
        (registrations, registrations_total),
        (subscriptions, subscriptions_total),
    ) = tokio::try_join!(
        state.store.list(FIRST_LOOK),
        state.registrations.active_registrations(now, FIRST_LOOK),
        state.subscriptions.active_subscriptions(now, FIRST_LOOK),
    )?;
    // The calls still going first, then those over, each by id.
    sessions.sort_by(|a, b| {
        let key = |v: &crate::store::Versioned| (v.session.is_over(), v.session.id.clone());
        key(a).cmp(&key(b))
    });
    let ready = Ready {
        sessions: Shown::of(sessions.len(), sessions_total),
        registrations: Shown::of(registrations.len(), registrations_total),
        subscriptions: Shown::of(subscriptions.len(), subscriptions_total),
        history: history.len(),
    };
    let mut first: Vec<Bytes> = history.into_iter().map(|f| f.bytes).collect();
    first.extend(
        sessions
            .iter()
            .map(|v| frame("session", &SessionRecord::of(&v.session, v.version, None))),
    );
    first.extend((registrations.iter()).map(|r| frame("registration", &RegistrationRecord::of(r))));
    first.extend((subscriptions.iter()).map(|s| frame("subscription", &SubscriptionRecord::of(s))));
    first.push(frame("ready", &ready));
    let follower = Follower {
        first: first.into_iter(),
        live,
        closed: state.feed.closed(),
        gaps,
        keep_alive: tokio::time::interval_at(tokio::time::Instant::now() + KEEP_ALIVE, KEEP_ALIVE),
        dropped: false,
    };
    let body = Body::from_stream(futures_util::stream::unfold(follower, Follower::next));
    Ok((
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
            // Proxies that buffer responses (nginx) pass this one on as it comes.
            (header::HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        body,
    )
        .into_response())
}

/// One follower's stream.
struct Follower {
    first: std::vec::IntoIter<Bytes>,
    live: broadcast::Receiver<Frame>,
    closed: watch::Receiver<bool>,
    gaps: watch::Receiver<u64>,
    keep_alive: tokio::time::Interval,
    /// Told `dropped` (it fell behind, or records may be missing): its stream ends.
    dropped: bool,
}

impl Follower {
    /// The next piece of the stream, `None` when it ends.
    async fn next(mut self) -> Option<(Result<Bytes, std::convert::Infallible>, Self)> {
        if self.dropped {
            return None;
        }
        if let Some(bytes) = self.first.next() {
            return Some((Ok(bytes), self));
        }
        // Ok: what to send; Err: why the stream ends with `dropped`.
        let next: Result<Bytes, String> = tokio::select! {
            biased;
            _ = self.closed.wait_for(|closed| *closed) => return None,
            // Before the records: none past a hole is shown.
            gap = self.gaps.changed() => {
                gap.ok()?;
                Err("This replica may have missed records (its Redis feed broke): the stream ends. Follow again for a fresh look.".to_owned())
            }
            received = self.live.recv() => match received {
                Ok(frame) => Ok(frame.bytes),
                Err(RecvError::Lagged(missed)) => {
                    tracing::info!(missed, "a stream's follower read too slowly: dropped");
                    Err(format!("This stream fell more than {} records behind: it ends. Read faster, or follow again.", crate::events::feed::BUFFER))
                }
                Err(RecvError::Closed) => return None,
            },
            _ = self.keep_alive.tick() => Ok(Bytes::from_static(b": keep-alive\n\n")),
        };
        let bytes = next.unwrap_or_else(|reason| self.drop_with(&reason));
        Some((Ok(bytes), self))
    }

    /// The `dropped` event saying `reason`, after which the stream ends (and is counted).
    fn drop_with(&mut self, reason: &str) -> Bytes {
        self.dropped = true;
        crate::telemetry::metrics::stream_dropped();
        frame("dropped", &serde_json::json!({ "reason": reason }))
    }
}
