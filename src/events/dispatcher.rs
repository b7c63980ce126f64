//! Delivery, off the request path: each subscription has a worker that starts the first attempt
//! of its events in the order they were recorded (up to 64 in flight, so a slow answer does not
//! hold those behind it); an event that fails is retried on its own
//! schedule (`events.retry_schedule_ms`, ± 20% jitter) while later events go on, so a retried
//! event may arrive after a later one (`sequenceNumber` orders them). A slow or dead sink holds
//! only its own subscription's worker. 2xx is delivered; a 429's `Retry-After` is honoured up to
//! twice the scheduled delay; 410 ends the subscription at once (nothing more is sent); after the
//! last retry the event is dropped. Redirects are never followed; every address connected to
//! passes the [`SinkGuard`], through the client's resolver and for address literals.
//!
//! Before every attempt the subscription is read again from the store: one that ended (on any
//! replica) gets nothing more, and a changed sink credential is used at once. At most
//! [`RETRYING`] events of one subscription wait for a retry (beyond it, events are dropped and
//! counted), and at most [`OUTBOUND`] attempts are in flight in the process (beyond it,
//! attempts wait).
//!
//! Every attempt's outcome (and every event dropped) is published on the [`Feed`], for the
//! console.
//!
//! Every delivery holds the [`Receipt`] of the recorded change that made it: when the last one
//! is finished the change is done in the store's outbox (on Redis, never taken over again).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::Bytes;
use reqwest::dns::{Name, Resolve, Resolving};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use tokio::sync::mpsc;

use super::SinkGuard;
use super::feed::{DeliveryRecord, Feed, Outcome as Reported, shown_sink};
use crate::config::EventsConfig;
use crate::domain::registration::rfc3339_ms;
use crate::domain::{SessionId, Subscription};
use crate::store::{SubscriptionStore, now_ms};
use crate::telemetry::metrics;

/// Events waiting for their first attempt, per subscription; beyond it new ones are dropped.
const QUEUE: usize = 10_000;

/// First attempts one subscription may have in flight at once (started in order).
const IN_FLIGHT: usize = 64;

/// How long a worker waits for an event before it ends (a new event starts another).
const IDLE: Duration = Duration::from_secs(60);

/// Events of one subscription that may wait for a retry at once.
pub const RETRYING: usize = 1_000;

/// Attempts in flight at once in the process, every subscription's together.
pub const OUTBOUND: usize = 1_024;

/// What becomes of a recorded change once its events are finished.
#[derive(Debug, PartialEq, Eq)]
pub enum Finished {
    /// Every event it made is delivered, dropped or no longer wanted.
    Done(String),
    /// Its events could not be made: given up, for the outbox to hand out again.
    Released(String),
}

/// Held by every delivery of one recorded change (and by the emitter while it makes them): when
/// the last holder lets go, the change is [`Finished`]. A process that dies holds on for ever,
/// which is what leaves the change to another replica.
#[derive(Debug, Clone)]
pub struct Receipt(Arc<Held>);

#[derive(Debug)]
struct Held {
    change: String,
    finished: mpsc::UnboundedSender<Finished>,
    released: std::sync::atomic::AtomicBool,
}

impl Receipt {
    pub fn new(change: String, finished: mpsc::UnboundedSender<Finished>) -> Self {
        Self(Arc::new(Held {
            change,
            finished,
            released: std::sync::atomic::AtomicBool::new(false),
        }))
    }

    /// Gives the change up rather than finishing it.
    pub fn release(&self) {
        (self.0.released).store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let change = std::mem::take(&mut self.change);
        let finished = match self.released.load(std::sync::atomic::Ordering::Relaxed) {
            true => Finished::Released(change),
            false => Finished::Done(change),
        };
        let _ = self.finished.send(finished);
    }
}

/// One event for one subscription: its serialised CloudEvent.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The subscription as the event was made; each attempt reads it again.
    pub subscription: Arc<Subscription>,
    pub event_id: String,
    /// The event type's name (`session-status`), for logs.
    pub kind: &'static str,
    pub body: Bytes,
    /// The subscription's `subscription-ended`: sent although it has ended.
    pub last: bool,
    /// The session the event is about, if any (for the console's timeline).
    pub session: Option<SessionId>,
    pub receipt: Receipt,
}

impl Delivery {
    /// Counts and logs the event as dropped, `why`.
    /// At most one line a second is logged (with how many drops it stands for), so that an
    /// overloaded sink does not flood the log; the metric counts every one.
    fn dropped(&self, why: &'static str) {
        use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
        static LOGGED_AT: AtomicU64 = AtomicU64::new(0);
        static UNLOGGED: AtomicU64 = AtomicU64::new(0);
        metrics::delivery(self.kind, "dropped", None);
        UNLOGGED.fetch_add(1, Relaxed);
        let second = now_ms() / 1000;
        if LOGGED_AT.fetch_max(second, Relaxed) >= second {
            return;
        }
        let unlogged = UNLOGGED.swap(0, Relaxed);
        tracing::warn!(
            event = self.event_id.as_str(),
            subscription = self.subscription.id.as_str(),
            kind = self.kind,
            dropped = unlogged,
            "{why}"
        );
    }
}

/// What an attempt came to.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Delivered,
    /// Try again, no sooner than the given delay when the sink said (`Retry-After`).
    Retry(Option<Duration>),
    /// 410: the sink is gone for good.
    Gone,
}

pub struct Dispatcher {
    /// `None` when no HTTP client could be built (no usable TLS roots on this machine): every
    /// attempt then fails, and the service still starts and serves its API.
    client: Option<reqwest::Client>,
    guard: SinkGuard,
    schedule: Vec<Duration>,
    subscriptions: Arc<dyn SubscriptionStore>,
    workers: Mutex<HashMap<String, mpsc::Sender<Delivery>>>,
    /// [`OUTBOUND`] permits.
    outbound: Arc<tokio::sync::Semaphore>,
    /// Where each attempt's outcome is published.
    feed: Arc<Feed>,
}

/// The client's resolver: the system's, keeping only the addresses the guard allows.
struct GuardedResolver(SinkGuard);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.0.clone();
        Box::pin(async move {
            let found = tokio::net::lookup_host((name.as_str(), 0)).await?;
            let allowed: Vec<SocketAddr> =
                found.filter(|a| guard.address_allowed(a.ip())).collect();
            if allowed.is_empty() {
                return Err("the sink's host resolves to no address it may be sent to".into());
            }
            Ok(Box::new(allowed.into_iter()) as Box<dyn Iterator<Item = SocketAddr> + Send>)
        })
    }
}

impl Dispatcher {
    /// A dispatcher for `config`'s delivery settings; an `events.ca_file` that cannot be read is
    /// the error.
    pub fn new(
        config: &EventsConfig,
        guard: SinkGuard,
        subscriptions: Arc<dyn SubscriptionStore>,
        feed: Arc<Feed>,
    ) -> Result<Self, String> {
        let mut client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_millis(config.delivery_timeout_ms))
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver(guard.clone())));
        if !config.ca_file.is_empty() {
            let pem = std::fs::read(&config.ca_file)
                .map_err(|e| format!("events.ca_file cannot be read: {e}"))?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("events.ca_file is not PEM certificates: {e}"))?;
            for certificate in certificates {
                client = client.add_root_certificate(certificate);
            }
        }
        let client = client
            .build()
            .inspect_err(|e| tracing::error!(error = %e, "no HTTP client for event delivery: events will not be delivered"))
            .ok();
        Ok(Self {
            client,
            guard,
            schedule: (config.retry_schedule_ms.iter())
                .map(|ms| Duration::from_millis(*ms))
                .collect(),
            subscriptions,
            workers: Mutex::default(),
            outbound: Arc::new(tokio::sync::Semaphore::new(OUTBOUND)),
            feed,
        })
    }

    /// Publishes what became of `delivery` at its `attempt`th attempt (0: before any).
    fn report(
        &self,
        delivery: &Delivery,
        sink: &str,
        outcome: Reported,
        http: Option<u16>,
        attempt: u32,
    ) {
        if !self.feed.is_on() {
            return;
        }
        self.feed.publish_delivery(&DeliveryRecord {
            event_id: &delivery.event_id,
            kind: delivery.kind,
            subscription_id: &delivery.subscription.id,
            sink: shown_sink(sink),
            session_id: delivery.session.as_ref().map(SessionId::as_str),
            outcome,
            http_status: http,
            attempt,
            at: rfc3339_ms(now_ms()),
        });
    }

    /// Queues `delivery` for its subscription's worker (started on the first event).
    pub fn send(self: &Arc<Self>, delivery: Delivery) {
        let id = delivery.subscription.id.clone();
        let queued = {
            let mut workers = self.workers.lock().unwrap_or_else(PoisonError::into_inner);
            let queue = workers.entry(id.clone()).or_insert_with(|| {
                let (queue, events) = mpsc::channel(QUEUE);
                tokio::spawn(Arc::clone(self).work(id, queue.downgrade(), events));
                queue
            });
            queue.try_send(delivery)
        };
        // The lock is released first: publishing a drop never holds up another subscription's
        // events.
        if let Err(refused) = queued {
            let delivery = refused.into_inner();
            delivery.dropped("event dropped: the subscription's queue is full");
            let sink = &delivery.subscription.sink;
            self.report(&delivery, sink, Reported::Dropped, None, 0);
        }
    }

    /// Sends one event outside the subscription's worker (its `subscription-ended`, once the
    /// worker is forgotten), with retries, without starting a worker again.
    pub fn send_once(self: &Arc<Self>, delivery: Delivery) {
        let dispatcher = Arc::clone(self);
        tokio::spawn(async move {
            let Ok(outbound) = dispatcher.outbound.acquire().await else {
                return;
            };
            let outcome = (dispatcher.attempt(&delivery, &delivery.subscription, 1)).await;
            drop(outbound);
            match outcome {
                Outcome::Delivered | Outcome::Gone => {}
                Outcome::Retry(after) => dispatcher.retry(delivery, after).await,
            }
        });
    }

    /// Stops sending to a subscription: what waits in its queue and its retries are dropped
    /// (each reads the subscription before its attempt), and its worker ends.
    pub fn forget(&self, subscription: &str) {
        let mut workers = self.workers.lock().unwrap_or_else(PoisonError::into_inner);
        workers.remove(subscription);
    }

    /// The subscription as it is now, if the delivery is still wanted: it is active, or the
    /// service ended it after its events ([`SubscriptionEnd::follows_its_events`]: the store
    /// keeps such a record for a day at least), or the delivery is its `subscription-ended`.
    /// When the store does not answer, the delivery's own copy is used.
    ///
    /// [`SubscriptionEnd::follows_its_events`]: crate::domain::SubscriptionEnd::follows_its_events
    async fn current(&self, delivery: &Delivery) -> Option<Arc<Subscription>> {
        if delivery.last {
            return Some(Arc::clone(&delivery.subscription));
        }
        let id = delivery.subscription.id.as_str();
        match self.subscriptions.stored_subscription(id).await {
            Ok(Some(found)) => Some(Arc::new(found)).filter(|s| {
                s.is_active(now_ms()) || s.ended.is_some_and(|end| end.follows_its_events())
            }),
            // Gone from the store: ended by a client (deleted, expired) longer ago than the
            // store keeps such a record.
            Ok(None) => None,
            Err(e) => {
                tracing::debug!(subscription = id, error = %e, "subscription not read again before an attempt");
                Some(Arc::clone(&delivery.subscription))
            }
        }
    }

    /// Ends the worker of `subscription` whose queue `queue` is, if that queue is the one the
    /// map holds and it is empty: returns whether it did.
    fn retire(&self, subscription: &str, queue: &mpsc::WeakSender<Delivery>) -> bool {
        let mut workers = self.workers.lock().unwrap_or_else(PoisonError::into_inner);
        // Forgotten already: the queue drains, and `recv` ends the worker.
        let (Some(held), Some(queue)) = (workers.get(subscription), queue.upgrade()) else {
            return false;
        };
        if !held.same_channel(&queue) || queue.capacity() < queue.max_capacity() {
            return false;
        }
        workers.remove(subscription);
        true
    }

    /// One subscription's worker: reads the subscription and starts first attempts in order; a
    /// failed event goes on retrying by itself, up to [`RETRYING`] at once. It ends when its
    /// subscription is forgotten, after the subscription's `subscription-ended`, or after
    /// [`IDLE`] without an event (a subscription that ended on another replica).
    async fn work(
        self: Arc<Self>,
        subscription: String,
        queue: mpsc::WeakSender<Delivery>,
        mut events: mpsc::Receiver<Delivery>,
    ) {
        let in_flight = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
        let retrying = Arc::new(tokio::sync::Semaphore::new(RETRYING));
        loop {
            let delivery = match tokio::time::timeout(IDLE, events.recv()).await {
                Ok(Some(delivery)) => delivery,
                Ok(None) => return,
                // Not while retries wait: they hold the subscription's limit.
                Err(_) if retrying.available_permits() < RETRYING => continue,
                Err(_) if self.retire(&subscription, &queue) => return,
                Err(_) => continue,
            };
            if delivery.last {
                self.forget(&subscription);
            }
            // Up to IN_FLIGHT at once, so one slow answer does not hold the events behind it.
            let Ok(permit) = Arc::clone(&in_flight).acquire_owned().await else {
                return;
            };
            let Ok(outbound) = Arc::clone(&self.outbound).acquire_owned().await else {
                return;
            };
            // Read once both waits are over, and here, in order, so first attempts start in
            // the order recorded.
            let Some(current) = self.current(&delivery).await else {
                continue;
            };
            let dispatcher = Arc::clone(&self);
            let retrying = Arc::clone(&retrying);
            tokio::spawn(async move {
                let subscription = current;
                let outcome = dispatcher.attempt(&delivery, &subscription, 1).await;
                drop((permit, outbound));
                match outcome {
                    Outcome::Delivered => {}
                    Outcome::Gone => dispatcher.gone(&delivery).await,
                    Outcome::Retry(after) => match retrying.try_acquire_owned() {
                        Ok(_waiting) => dispatcher.retry(delivery, after).await,
                        Err(_) => {
                            delivery.dropped(
                                "event dropped: the subscription has its maximum of events waiting for a retry",
                            );
                            let sink = &subscription.sink;
                            dispatcher.report(&delivery, sink, Reported::Dropped, None, 1);
                        }
                    },
                }
            });
        }
    }

    /// Retries `delivery` on the schedule, until it is delivered, the sink is gone, the
    /// subscription ended, or the schedule is over (then it is dropped).
    async fn retry(&self, delivery: Delivery, after: Option<Duration>) {
        metrics::retries_waiting(1.0);
        self.retries(&delivery, after).await;
        metrics::retries_waiting(-1.0);
    }

    async fn retries(&self, delivery: &Delivery, mut after: Option<Duration>) {
        for (retry, delay) in (1..).zip(&self.schedule) {
            let wait = match after {
                Some(asked) => asked.min(*delay * 2).max(jittered(*delay)),
                None => jittered(*delay),
            };
            tokio::time::sleep(wait).await;
            let Ok(_outbound) = self.outbound.acquire().await else {
                return;
            };
            let Some(subscription) = self.current(delivery).await else {
                // The subscription ended while the event waited: no more attempts, and the
                // console's row for it must not stay "retrying".
                delivery.dropped("event dropped: its subscription ended before the retry");
                let sink = &delivery.subscription.sink;
                self.report(delivery, sink, Reported::Dropped, None, retry);
                return;
            };
            match self.attempt(delivery, &subscription, retry + 1).await {
                Outcome::Delivered => {
                    tracing::info!(
                        event = delivery.event_id.as_str(),
                        subscription = delivery.subscription.id.as_str(),
                        retry,
                        "event delivered after a retry"
                    );
                    return;
                }
                Outcome::Gone => return self.gone(delivery).await,
                Outcome::Retry(asked) => after = asked,
            }
        }
        delivery.dropped("event dropped after its last retry");
    }

    /// 410: the subscription ends now, and nothing more is sent to it.
    async fn gone(&self, delivery: &Delivery) {
        let id = delivery.subscription.id.as_str();
        tracing::info!(
            subscription = id,
            "sink answered 410 Gone: subscription ended"
        );
        let reason = crate::domain::SubscriptionEnd::SinkGone;
        match (self
            .subscriptions
            .end_subscription(id, reason, false, now_ms()))
        .await
        {
            Ok(_) | Err(crate::store::StoreError::NotFound) => {}
            Err(e) => {
                tracing::warn!(subscription = id, error = %e, "subscription not ended after 410")
            }
        }
        self.forget(id);
    }

    /// The `number`th POST of the event to `subscription`'s sink (with its credential as it is
    /// now), its outcome published; the caller holds one of the [`OUTBOUND`] permits.
    async fn attempt(
        &self,
        delivery: &Delivery,
        subscription: &Subscription,
        number: u32,
    ) -> Outcome {
        let (outcome, http) = self.post(delivery, subscription).await;
        let last = usize::try_from(number).is_ok_and(|n| n > self.schedule.len());
        let shown = match outcome {
            Outcome::Delivered => Reported::Delivered,
            Outcome::Gone => Reported::Gone,
            Outcome::Retry(_) if last => Reported::Dropped,
            Outcome::Retry(_) => Reported::Retrying,
        };
        self.report(delivery, &subscription.sink, shown, http, number);
        outcome
    }

    /// One POST of the event to `subscription`'s sink: its outcome and the sink's status code,
    /// when it answered.
    async fn post(
        &self,
        delivery: &Delivery,
        subscription: &Subscription,
    ) -> (Outcome, Option<u16>) {
        // An address literal never goes through the resolver: the guard sees it here.
        let literal = reqwest::Url::parse(&subscription.sink)
            .ok()
            .and_then(|url| {
                url.host_str()
                    .map(|h| h.trim_matches(['[', ']']).parse().ok())
            })
            .flatten();
        if literal.is_some_and(|address| !self.guard.address_allowed(address)) {
            tracing::warn!(
                subscription = subscription.id.as_str(),
                "event not sent: the sink's address is not allowed"
            );
            return (Outcome::Retry(None), None);
        }
        let Some(client) = &self.client else {
            return (Outcome::Retry(None), None);
        };
        let mut request = client
            .post(&subscription.sink)
            .header(CONTENT_TYPE, "application/cloudevents+json")
            .header("x-correlator", &delivery.event_id)
            .body(delivery.body.clone());
        if let Some(credential) = &subscription.credential {
            request = request.header(AUTHORIZATION, format!("Bearer {}", credential.token));
        }
        let started = std::time::Instant::now();
        let sent = request.send().await;
        let http = sent.as_ref().ok().map(|r| r.status().as_u16());
        let outcome = match sent {
            Ok(response) if response.status().is_success() => Outcome::Delivered,
            Ok(response) if response.status() == reqwest::StatusCode::GONE => Outcome::Gone,
            Ok(response) => {
                let after = (response.headers().get(RETRY_AFTER))
                    .and_then(|v| v.to_str().ok())
                    .and_then(retry_after);
                tracing::info!(
                    event = delivery.event_id.as_str(),
                    subscription = subscription.id.as_str(),
                    status = response.status().as_u16(),
                    "sink refused the event; retrying"
                );
                Outcome::Retry(after)
            }
            Err(e) => {
                let why = if e.is_timeout() {
                    "timeout"
                } else if e.is_connect() {
                    "connect"
                } else {
                    "request"
                };
                tracing::info!(
                    event = delivery.event_id.as_str(),
                    subscription = subscription.id.as_str(),
                    error = why,
                    "event not delivered; retrying"
                );
                Outcome::Retry(None)
            }
        };
        let label = match outcome {
            Outcome::Delivered => "delivered",
            Outcome::Gone => "gone",
            Outcome::Retry(_) => "retrying",
        };
        metrics::delivery(delivery.kind, label, Some(started.elapsed()));
        // A delivery is counted in the metrics; its log line is at debug, as the request log
        // is what an operator reads at info: a busy sink would double the log otherwise.
        if outcome == Outcome::Delivered {
            tracing::debug!(
                event = delivery.event_id.as_str(),
                subscription = subscription.id.as_str(),
                kind = delivery.kind,
                "event delivered"
            );
        }
        (outcome, http)
    }
}

/// A `Retry-After` value, seconds or an HTTP date (RFC 9110 §10.2.3), as a delay from now.
fn retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

/// `delay` ± 20%.
fn jittered(delay: Duration) -> Duration {
    let spread = uuid::Uuid::new_v4().as_u64_pair().0 % 401;
    delay.mul_f64(0.8 + spread as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Limits, MemoryStore};

    #[test]
    fn retry_after_is_seconds_or_an_http_date() {
        assert_eq!(retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        let later = std::time::SystemTime::now() + Duration::from_secs(120);
        let waited = retry_after(&httpdate::fmt_http_date(later)).unwrap();
        assert!((118..=120).contains(&waited.as_secs()), "{waited:?}");
        assert_eq!(retry_after("soon"), None);
        assert_eq!(retry_after("-1"), None);
    }

    #[test]
    fn jitter_stays_within_a_fifth_of_the_delay() {
        for _ in 0..1000 {
            let waited = jittered(Duration::from_millis(1000));
            assert!((800..=1200).contains(&waited.as_millis()), "{waited:?}");
        }
    }

    #[tokio::test]
    async fn a_ca_file_that_cannot_be_read_is_refused() {
        let mut config = crate::Config::embedded().events;
        config.ca_file = "/nonexistent/ca.pem".into();
        let store = Arc::new(MemoryStore::new(Limits {
            capacity: 1,
            per_owner: 1,
            ended_ttl: Duration::ZERO,
        }));
        let guard = SinkGuard::from_config(&config);
        let feed = Arc::new(Feed::new(false));
        let refused = Dispatcher::new(&config, guard, store, feed).err().unwrap();
        assert!(
            refused.starts_with("events.ca_file cannot be read: "),
            "{refused}"
        );
    }
}
