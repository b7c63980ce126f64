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
//! This is the in-process queue (lost on restart); the Redis store's durable outbox is to come.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::Bytes;
use reqwest::dns::{Name, Resolve, Resolving};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use tokio::sync::mpsc;

use super::SinkGuard;
use crate::config::EventsConfig;
use crate::domain::Subscription;
use crate::store::{SubscriptionStore, now_ms};
use crate::telemetry::metrics;

/// Events waiting for their first attempt, per subscription; beyond it new ones are dropped.
const QUEUE: usize = 10_000;

/// First attempts one subscription may have in flight at once (started in order).
const IN_FLIGHT: usize = 64;

/// One event for one subscription: its serialised CloudEvent.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub subscription: Arc<Subscription>,
    pub event_id: String,
    /// The event type's name (`session-status`), for logs.
    pub kind: &'static str,
    pub body: Bytes,
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
        })
    }

    /// Queues `delivery` for its subscription's worker (started on the first event).
    pub fn send(self: &Arc<Self>, delivery: Delivery) {
        let id = delivery.subscription.id.clone();
        let mut workers = self.workers.lock().unwrap_or_else(PoisonError::into_inner);
        let queue = workers.entry(id.clone()).or_insert_with(|| {
            let (queue, events) = mpsc::channel(QUEUE);
            tokio::spawn(Arc::clone(self).work(events));
            queue
        });
        if queue.try_send(delivery).is_err() {
            tracing::warn!(
                subscription = id.as_str(),
                "event dropped: the subscription's queue is full"
            );
        }
    }

    /// Sends one event outside the subscription's worker (its `subscription-ended`, once the
    /// worker is forgotten), with retries, without starting a worker again.
    pub fn send_once(self: &Arc<Self>, delivery: Delivery) {
        let dispatcher = Arc::clone(self);
        tokio::spawn(async move {
            match dispatcher.attempt(&delivery).await {
                Outcome::Delivered | Outcome::Gone => {}
                Outcome::Retry(after) => {
                    metrics::retries_waiting(1.0);
                    dispatcher.retry_ended(delivery, after).await;
                }
            }
        });
    }

    /// Stops sending to a subscription: what waits in its queue and its retries are dropped
    /// (each checks before its attempt), and its worker ends.
    pub fn forget(&self, subscription: &str) {
        let mut workers = self.workers.lock().unwrap_or_else(PoisonError::into_inner);
        workers.remove(subscription);
    }

    fn forgotten(&self, subscription: &str) -> bool {
        let workers = self.workers.lock().unwrap_or_else(PoisonError::into_inner);
        !workers.contains_key(subscription)
    }

    /// One subscription's worker: first attempts in order; a failed event goes on retrying by
    /// itself.
    async fn work(self: Arc<Self>, mut events: mpsc::Receiver<Delivery>) {
        let in_flight = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
        while let Some(delivery) = events.recv().await {
            // Started in order; up to IN_FLIGHT at once, so one slow answer does not hold the
            // events behind it.
            let Ok(permit) = Arc::clone(&in_flight).acquire_owned().await else {
                return;
            };
            let dispatcher = Arc::clone(&self);
            tokio::spawn(async move {
                if dispatcher.forgotten(&delivery.subscription.id) {
                    return;
                }
                let outcome = dispatcher.attempt(&delivery).await;
                drop(permit);
                match outcome {
                    Outcome::Delivered => {}
                    Outcome::Gone => dispatcher.gone(&delivery).await,
                    Outcome::Retry(after) => {
                        metrics::retries_waiting(1.0);
                        dispatcher.retry(delivery, after).await;
                    }
                }
            });
        }
    }

    /// Retries `delivery` on the schedule, until it is delivered, the sink is gone, the
    /// subscription ended, or the schedule is over (then it is dropped).
    async fn retry(self: Arc<Self>, delivery: Delivery, after: Option<Duration>) {
        self.retry_on_schedule(&delivery, after, true).await;
        metrics::retries_waiting(-1.0);
    }

    /// [`Dispatcher::retry`] for an event sent after its subscription was forgotten.
    async fn retry_ended(self: Arc<Self>, delivery: Delivery, after: Option<Duration>) {
        self.retry_on_schedule(&delivery, after, false).await;
        metrics::retries_waiting(-1.0);
    }

    async fn retry_on_schedule(
        &self,
        delivery: &Delivery,
        mut after: Option<Duration>,
        while_subscribed: bool,
    ) {
        for (attempt, delay) in self.schedule.iter().enumerate() {
            let wait = match after {
                Some(asked) => asked.min(*delay * 2).max(jittered(*delay)),
                None => jittered(*delay),
            };
            tokio::time::sleep(wait).await;
            if while_subscribed && self.forgotten(&delivery.subscription.id) {
                return;
            }
            match self.attempt(delivery).await {
                Outcome::Delivered => {
                    tracing::info!(
                        event = delivery.event_id.as_str(),
                        subscription = delivery.subscription.id.as_str(),
                        retry = attempt + 1,
                        "event delivered after a retry"
                    );
                    return;
                }
                Outcome::Gone => return self.gone(delivery).await,
                Outcome::Retry(asked) => after = asked,
            }
        }
        metrics::delivery(delivery.kind, "dropped", None);
        tracing::warn!(
            event = delivery.event_id.as_str(),
            subscription = delivery.subscription.id.as_str(),
            kind = delivery.kind,
            "event dropped after its last retry"
        );
    }

    /// 410: the subscription ends now, and nothing more is sent to it.
    async fn gone(&self, delivery: &Delivery) {
        let id = delivery.subscription.id.as_str();
        tracing::info!(
            subscription = id,
            "sink answered 410 Gone: subscription ended"
        );
        if let Err(e) = self.subscriptions.unsubscribe(id, now_ms()).await {
            tracing::warn!(subscription = id, error = %e, "subscription not ended after 410");
        }
        self.forget(id);
    }

    /// One POST of the event to its sink.
    async fn attempt(&self, delivery: &Delivery) -> Outcome {
        let subscription = &delivery.subscription;
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
            return Outcome::Retry(None);
        }
        let Some(client) = &self.client else {
            return Outcome::Retry(None);
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
        let outcome = match request.send().await {
            Ok(response) if response.status().is_success() => Outcome::Delivered,
            Ok(response) if response.status() == reqwest::StatusCode::GONE => Outcome::Gone,
            Ok(response) => {
                let after = (response.headers().get(RETRY_AFTER))
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
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
        if outcome == Outcome::Delivered {
            tracing::info!(
                event = delivery.event_id.as_str(),
                subscription = subscription.id.as_str(),
                kind = delivery.kind,
                "event delivered"
            );
        }
        outcome
    }
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
        let refused = Dispatcher::new(&config, guard, store).err().unwrap();
        assert!(
            refused.starts_with("events.ca_file cannot be read: "),
            "{refused}"
        );
    }
}
