//! The change feed behind the console (DESIGN §12, `GET /network/v1/stream`): a compact record
//! of every committed change (sessions, registrations, subscriptions) and of every delivery
//! attempt, for whoever watches the service. Records ([`records`]) never carry an SDP, a token
//! or a sink credential: sessions are ids, parties and statuses; sinks are an origin and a
//! digest.
//!
//! Who publishes: the emitter, once per recorded change (sessions, registration and
//! subscription ends), in the order the outbox gives them to it (one session's versions in
//! order; on Redis, replicas' emitters interleave, and a follower tells a late record by its
//! version); the dispatcher, once per attempt; the registration and subscription handlers, for
//! what the outbox does not record (a registration made or refreshed, a subscription made or
//! changed).
//!
//! Where records go: with the memory store straight to this process's followers; with Redis
//! through a Redis channel (`{key_prefix}feed`) that every replica follows, so the console of any
//! replica sees every replica's changes ([`Relay`]). Each process keeps the last [`RECENT`]
//! records for a follower that joins later (a session's timeline), numbered in the order it
//! received them. A follower reads a bounded window ([`BUFFER`] records): one that falls
//! further behind is dropped (its stream ends), and never holds a publisher back.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Bytes;
use serde::Serialize;
use tokio::sync::{broadcast, watch};

use crate::domain::{Registration, Session, Subscription};

pub mod records;
pub use records::{
    DeliveryRecord, Outcome, RegistrationRecord, SessionRecord, SubscriptionRecord, shown_sink,
};

/// Records each process keeps for followers that join later.
pub const RECENT: usize = 2_048;

/// Records a follower may lag behind before it is dropped.
pub const BUFFER: usize = 1_024;

/// One record as a follower reads it: a Server-Sent Event, rendered once for every follower.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The record's number in this process (the SSE `id`).
    pub seq: u64,
    pub bytes: Bytes,
}

/// Where published records go when the service runs on several replicas: a channel every
/// replica follows, whose records come back through [`Feed::receive`] (its own included).
pub trait Relay: Send + Sync {
    /// Sends `message` ([`Feed::message`]'s form) to every replica; never waits.
    fn publish(&self, message: String);
}

/// The feed: the records this process received, the followers' channel, and the relay.
pub struct Feed {
    /// `network.admin_api`: without the console and the stream nobody reads it, and publishing
    /// does nothing.
    on: bool,
    kept: Mutex<Kept>,
    followers: broadcast::Sender<Frame>,
    relay: std::sync::OnceLock<Arc<dyn Relay>>,
    closed: watch::Sender<bool>,
    /// Bumped when records may have been missed (the relay broke): every follower is dropped.
    gaps: watch::Sender<u64>,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed")
            .field("on", &self.on)
            .field("followers", &self.followers.receiver_count())
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Kept {
    seq: u64,
    recent: VecDeque<Frame>,
}

impl Feed {
    /// A feed that keeps and sends records when `on` (`network.admin_api`).
    pub fn new(on: bool) -> Self {
        Self {
            on,
            kept: Mutex::default(),
            followers: broadcast::channel(BUFFER).0,
            relay: std::sync::OnceLock::new(),
            closed: watch::channel(false).0,
            gaps: watch::channel(0).0,
        }
    }

    /// Sends what is published through `relay` from now on (once; a second relay is ignored).
    pub fn relay_through(&self, relay: Arc<dyn Relay>) {
        let _ = self.relay.set(relay);
    }

    /// Whether records are kept and sent (`network.admin_api`).
    pub fn is_on(&self) -> bool {
        self.on
    }

    /// Publishes one record: `kind` names it (the SSE `event`), `data` is its body.
    pub fn publish(&self, kind: &str, data: &impl Serialize) {
        if !self.on {
            return;
        }
        let Ok(json) = serde_json::to_string(data) else {
            return;
        };
        match self.relay.get() {
            Some(relay) => relay.publish(Self::message(kind, &json)),
            None => self.receive_record(kind, &json),
        }
    }

    /// A record as a relay carries it: its kind, a newline, its JSON.
    pub fn message(kind: &str, json: &str) -> String {
        format!("{kind}\n{json}")
    }

    /// A record that came through the relay; a message not of [`Feed::message`]'s form is
    /// ignored.
    pub fn receive(&self, message: &str) {
        if let Some((kind, json)) = message.split_once('\n')
            && is_kind(kind)
            && !json.contains(['\n', '\r'])
        {
            self.receive_record(kind, json);
        }
    }

    fn receive_record(&self, kind: &str, json: &str) {
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        kept.seq += 1;
        let frame = Frame {
            seq: kept.seq,
            bytes: render(Some(kept.seq), kind, json),
        };
        if kept.recent.len() == RECENT {
            kept.recent.pop_front();
        }
        kept.recent.push_back(frame.clone());
        // Sent under the lock, so followers see records in the order they are kept.
        let _ = self.followers.send(frame);
    }

    /// The records kept so far and a receiver of every later one: no record is in both, none
    /// is missed.
    pub fn follow(&self) -> (Vec<Frame>, broadcast::Receiver<Frame>) {
        let kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        (
            kept.recent.iter().cloned().collect(),
            self.followers.subscribe(),
        )
    }

    /// Ends every follower's stream (the service is shutting down) and any later one at once.
    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    /// Becomes true when the feed closes.
    pub fn closed(&self) -> watch::Receiver<bool> {
        self.closed.subscribe()
    }

    /// Records may have been missed (the relay's subscription broke, or came back after a
    /// break): every follower's stream ends with `dropped`, so a console follows again and
    /// takes a fresh look at the store rather than show a view with a hole in it.
    pub fn missed(&self) {
        self.gaps.send_modify(|gaps| *gaps += 1);
    }

    /// Changes when [`Feed::missed`] is called.
    pub fn gaps(&self) -> watch::Receiver<u64> {
        self.gaps.subscribe()
    }

    /// A session as it is at `version` (`at_ms`: when that version was committed, if known).
    pub fn publish_session(&self, session: &Session, version: u64, at_ms: Option<u64>) {
        self.publish("session", &SessionRecord::of(session, version, at_ms));
    }

    /// A registration made, refreshed or ended.
    pub fn publish_registration(&self, registration: &Registration) {
        self.publish("registration", &RegistrationRecord::of(registration));
    }

    /// A subscription made, changed or ended.
    pub fn publish_subscription(&self, subscription: &Subscription) {
        self.publish("subscription", &SubscriptionRecord::of(subscription));
    }

    /// One delivery attempt's outcome (or an event dropped).
    pub fn publish_delivery(&self, record: &DeliveryRecord<'_>) {
        self.publish("delivery", record);
    }
}

/// The record kinds, as the SSE `event` field names them.
pub const KINDS: [&str; 4] = ["session", "registration", "subscription", "delivery"];

fn is_kind(kind: &str) -> bool {
    KINDS.contains(&kind)
}

/// One Server-Sent Event: `id` (when numbered), `event`, and one `data` line (JSON has no raw
/// newline).
pub fn render(seq: Option<u64>, kind: &str, json: &str) -> Bytes {
    let mut frame = String::with_capacity(json.len() + kind.len() + 32);
    if let Some(seq) = seq {
        let _ = writeln!(frame, "id: {seq}");
    }
    let _ = write!(frame, "event: {kind}\ndata: {json}\n\n");
    Bytes::from(frame)
}

/// A record outside the numbered feed (a stream's first look at the store, its `ready`).
pub fn unnumbered(kind: &str, data: &impl Serialize) -> Bytes {
    render(
        None,
        kind,
        &serde_json::to_string(data).unwrap_or_else(|_| "{}".into()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bodies(frames: &[Frame]) -> Vec<String> {
        frames
            .iter()
            .map(|f| String::from_utf8(f.bytes.to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn a_follower_gets_what_was_kept_then_every_later_record_once() {
        let feed = Feed::new(true);
        feed.publish("delivery", &serde_json::json!({"n": 1}));
        let (kept, mut later) = feed.follow();
        feed.publish("delivery", &serde_json::json!({"n": 2}));
        assert_eq!(
            bodies(&kept),
            ["id: 1\nevent: delivery\ndata: {\"n\":1}\n\n"]
        );
        let next = later.try_recv().unwrap();
        assert_eq!(
            bodies(&[next]),
            ["id: 2\nevent: delivery\ndata: {\"n\":2}\n\n"]
        );
        assert!(later.try_recv().is_err());
    }

    #[test]
    fn only_the_most_recent_records_are_kept() {
        let feed = Feed::new(true);
        for n in 0..RECENT + 5 {
            feed.publish("delivery", &n);
        }
        let (kept, _) = feed.follow();
        assert_eq!(kept.len(), RECENT);
        assert_eq!(kept[0].seq, 6);
    }

    #[test]
    fn a_relayed_message_must_be_a_known_kind_on_one_line() {
        let feed = Feed::new(true);
        feed.receive("session\n{\"id\":\"a\"}");
        feed.receive("nonsense\n{}");
        feed.receive("session\n{}\nid: 9");
        feed.receive("session\n{}\rid: 9");
        feed.receive("no newline");
        let (kept, _) = feed.follow();
        assert_eq!(
            bodies(&kept),
            ["id: 1\nevent: session\ndata: {\"id\":\"a\"}\n\n"]
        );
    }

    #[test]
    fn a_feed_that_is_off_keeps_nothing() {
        let feed = Feed::new(false);
        feed.publish("delivery", &1);
        assert!(feed.follow().0.is_empty());
    }
}
