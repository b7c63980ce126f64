//! The change feed behind the console (DESIGN §12, `GET /network/v1/stream`): a compact record
//! of every committed change (sessions, registrations, subscriptions) and of every delivery
//! attempt, for whoever watches the service. Records never carry an SDP, a token or a sink
//! credential: sessions are ids, parties and statuses; sinks are shown without their query or
//! user info.
//!
//! Who publishes: the emitter, once per recorded change (sessions, registration and
//! subscription ends), in commit order; the dispatcher, once per attempt; the registration and
//! subscription handlers, for what the outbox does not record (a registration made or
//! refreshed, a subscription made or changed).
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

use crate::domain::registration::rfc3339_ms;
use crate::domain::{
    CallType, Direction, EventType, Registration, Session, SessionStatus, Subscription,
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
    pub fn session(&self, session: &Session, version: u64, at_ms: Option<u64>) {
        self.publish("session", &SessionRecord::of(session, version, at_ms));
    }

    /// A registration made, refreshed or ended.
    pub fn registration(&self, registration: &Registration) {
        self.publish("registration", &RegistrationRecord::of(registration));
    }

    /// A subscription made, changed or ended.
    pub fn subscription(&self, subscription: &Subscription) {
        self.publish("subscription", &SubscriptionRecord::of(subscription));
    }

    /// One delivery attempt's outcome (or an event dropped).
    pub fn delivery(&self, record: &DeliveryRecord<'_>) {
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

/// A session as the feed shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionRecord<'a> {
    pub id: &'a str,
    pub version: u64,
    pub status: SessionStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
    pub originator: &'a str,
    pub receiver: &'a str,
    /// For the API consumer that owns it (the caller's, or the receiver's for an incoming call).
    pub direction: Direction,
    pub on_net: bool,
    pub call_type: CallType,
    /// Ended by a DELETE: gone for the API.
    pub deleted: bool,
    pub has_offer: bool,
    pub has_answer: bool,
    /// When this version was committed (absent in a stream's first look at the store).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// The network moves the table allows from its status ([`SessionStatus::network_targets`]).
    pub moves: &'static [SessionStatus],
}

impl<'a> SessionRecord<'a> {
    pub fn of(session: &'a Session, version: u64, at_ms: Option<u64>) -> Self {
        Self {
            id: session.id.as_str(),
            version,
            status: session.status,
            reason: session.reason.as_deref(),
            originator: session.originator.as_str(),
            receiver: session.receiver.as_str(),
            direction: session.direction,
            on_net: session.is_on_net(),
            call_type: session.call_type,
            deleted: session.ended,
            has_offer: session.offer.is_some(),
            has_answer: session.answer.is_some(),
            at: at_ms.map(rfc3339_ms),
            moves: match session.ended {
                true => &[],
                false => session.status.network_targets(),
            },
        }
    }
}

/// A registration as the feed shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationRecord<'a> {
    pub id: &'a str,
    pub device_id: &'a str,
    pub phone_number: &'a str,
    pub consumer: &'a str,
    pub expires_at: String,
    /// It receives on-net and admin API calls.
    pub proven: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended: Option<crate::domain::EndReason>,
}

impl<'a> RegistrationRecord<'a> {
    pub fn of(registration: &'a Registration) -> Self {
        Self {
            id: &registration.id,
            device_id: &registration.device_id,
            phone_number: &registration.phone_number,
            consumer: &registration.owner,
            expires_at: rfc3339_ms(registration.expires_at_ms),
            proven: registration.proven,
            ended: registration.ended,
        }
    }
}

/// A subscription as the feed shows it (its sink credential never).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionRecord<'a> {
    pub id: &'a str,
    pub consumer: &'a str,
    pub sink: String,
    pub types: &'a [EventType],
    pub phone_numbers: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_events: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended: Option<crate::domain::SubscriptionEnd>,
}

impl<'a> SubscriptionRecord<'a> {
    pub fn of(subscription: &'a Subscription) -> Self {
        let detail = &subscription.detail;
        Self {
            id: &subscription.id,
            consumer: &subscription.owner,
            sink: shown_sink(&subscription.sink),
            types: &subscription.types,
            phone_numbers: &subscription.phone_numbers,
            registration_id: detail.registration_id.as_deref(),
            device_id: detail.device_id.as_deref(),
            session_id: detail.session_id.as_deref(),
            expires_at: subscription.expires_at_ms.map(rfc3339_ms),
            max_events: subscription.max_events,
            ended: subscription.ended,
        }
    }
}

/// What became of one attempt to deliver an event (or of the event).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The sink answered 2xx.
    Delivered,
    /// It failed and is tried again later.
    Retrying,
    /// Given up: after its last retry, or never attempted (queues full).
    Dropped,
    /// The sink answered 410: the subscription ended, nothing more is sent.
    Gone,
}

/// One delivery attempt as the feed shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryRecord<'a> {
    pub event_id: &'a str,
    /// The event type's name (`session-status`).
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub subscription_id: &'a str,
    pub sink: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<&'a str>,
    pub outcome: Outcome,
    /// The sink's answer, when it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// Attempts made so far (1 for the first; 0 when dropped before any).
    pub attempt: u32,
    pub at: String,
}

/// A sink as the console shows it: its origin (scheme, host, port) and, to tell apart sinks on
/// one host, the first 8 hex digits of the UUIDv5 (URL namespace) of the whole URL. Nothing else
/// of the URL: user info, query and fragment hold credentials, and so may the path (webhook
/// services put their token there).
pub fn shown_sink(sink: &str) -> String {
    let Ok(url) = reqwest::Url::parse(sink) else {
        return "(not a URL)".to_owned();
    };
    let digest = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, sink.as_bytes()).simple();
    let digest = &digest.to_string()[..8];
    format!("{} ({digest})", url.origin().ascii_serialization())
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

    #[test]
    fn a_sink_is_shown_by_its_origin_and_a_digest() {
        let url = "https://user:pw@sink.example.com:8443/T0/B0/s3cret?token=s3cret#x";
        let digest = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, url.as_bytes());
        let shown = shown_sink(url);
        assert_eq!(
            shown,
            format!(
                "https://sink.example.com:8443 ({})",
                &digest.simple().to_string()[..8]
            )
        );
        assert!(
            !shown.contains("s3cret") && !shown.contains("pw"),
            "{shown}"
        );
        // The default port is not repeated; another path on the host is another digest.
        let other = shown_sink("https://sink.example.com/T0/B0/other");
        assert!(other.starts_with("https://sink.example.com ("), "{other}");
        assert_ne!(other[other.len() - 9..], shown[shown.len() - 9..]);
        assert_eq!(shown_sink("not a url"), "(not a URL)");
    }
}
