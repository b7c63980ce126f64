//! Which events a committed change makes, and for whom. A change is recorded by the request that
//! committed it ([`Events::session_changed`]: a channel send, nothing more) and turned into
//! CloudEvents by one emitter task, in the order recorded: it finds the active subscriptions to
//! each party's phone number whose API consumer may see the session, and hands each event to the
//! [`Dispatcher`].
//!
//! - A new session (version 1): `session-invitation` to the receiver's subscriptions.
//! - Every later change: `session-status` to both parties' subscriptions (narrowed to one call
//!   when the subscription named a `sessionId`), `sequenceNumber` being the session's version.
//! - A registration expired: `registration-ends` (REGISTRATION_EXPIRED) to the subscriptions
//!   that named it or its device.
//! - A subscription deleted: `subscription-ended` (SUBSCRIPTION_DELETED) to its sink.
//!
//! The store's own sweeps (idle sessions, calls ended with their registration, expired
//! registrations) report through [`crate::store::Notify`], which [`Events`] implements.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use serde::Serialize;
use tokio::sync::mpsc;

use super::cloud::{CloudEvent, RegistrationEndsData, SessionData, SubscriptionEndedData};
use super::dispatcher::{Delivery, Dispatcher};
use crate::config::EventsConfig;
use crate::domain::{EndReason, EventType, Registration, Session, Subscription, SubscriptionEnd};
use crate::http::SessionResponse;
use crate::store::{SubscriptionStore, now_ms};

/// A committed change, as recorded.
enum Change {
    Session { session: Arc<Session>, version: u64 },
    SubscriptionEnded(Box<Subscription>, SubscriptionEnd),
    RegistrationEnded(Box<Registration>),
}

/// What records changes and turns them into events.
pub struct Events {
    changes: mpsc::UnboundedSender<Change>,
}

/// The emitter task's own state.
struct Emitter {
    type_prefix: String,
    source: String,
    subscriptions: Arc<dyn SubscriptionStore>,
    dispatcher: Arc<Dispatcher>,
}

impl Events {
    /// Starts the emitter task; it ends when the [`Events`] is dropped.
    pub fn start(
        config: &EventsConfig,
        subscriptions: Arc<dyn SubscriptionStore>,
        dispatcher: Arc<Dispatcher>,
    ) -> Self {
        let (changes, recorded) = mpsc::unbounded_channel();
        let emitter = Emitter {
            type_prefix: config.type_prefix.clone(),
            source: config.source.clone(),
            subscriptions,
            dispatcher,
        };
        tokio::spawn(emitter.run(recorded));
        Self { changes }
    }

    /// Records a committed change of `session`, which gave it `version`.
    pub fn session_changed(&self, session: Arc<Session>, version: u64) {
        let _ = self.changes.send(Change::Session { session, version });
    }

    /// Records the end of `subscription`.
    pub fn subscription_ended(&self, subscription: Subscription, reason: SubscriptionEnd) {
        let _ = self
            .changes
            .send(Change::SubscriptionEnded(Box::new(subscription), reason));
    }
}

/// Changes the emitter takes from the channel at once. Under load one read of the subscriptions
/// of a number serves every change of the batch.
const BATCH: usize = 256;

/// The subscriptions of the numbers a batch touched, read once per batch.
type Subscribers = HashMap<String, Vec<Arc<Subscription>>>;

impl crate::store::Notify for Events {
    fn session_changed(&self, session: Arc<Session>, version: u64) {
        Events::session_changed(self, session, version);
    }

    fn registration_ended(&self, registration: Registration) {
        let _ = (self.changes).send(Change::RegistrationEnded(Box::new(registration)));
    }
}

impl Emitter {
    async fn run(self, mut recorded: mpsc::UnboundedReceiver<Change>) {
        let mut batch = Vec::with_capacity(BATCH);
        while recorded.recv_many(&mut batch, BATCH).await > 0 {
            let mut subscribers = Subscribers::new();
            for change in batch.drain(..) {
                match change {
                    Change::Session { session, version } => {
                        if let Err(e) = self.session(&session, version, &mut subscribers).await {
                            tracing::warn!(session = session.id.as_str(), error = %e, "events of a change not made: the store did not answer");
                        }
                    }
                    Change::RegistrationEnded(registration) => {
                        if let Err(e) = self.registration_ended(&registration).await {
                            tracing::warn!(registration = registration.id.as_str(), error = %e, "registration-ends not made: the store did not answer");
                        }
                    }
                    Change::SubscriptionEnded(subscription, reason) => {
                        // Later changes of the batch must not see it.
                        subscribers.clear();
                        self.subscription_ended(Arc::from(subscription), reason);
                    }
                }
            }
        }
    }

    /// The active subscriptions to `number`, read once per batch.
    async fn subscribers<'s>(
        &self,
        number: &str,
        subscribers: &'s mut Subscribers,
    ) -> Result<&'s [Arc<Subscription>], crate::store::StoreError> {
        if !subscribers.contains_key(number) {
            let found = self.subscriptions.for_number(number, now_ms()).await?;
            subscribers.insert(number.to_owned(), found.into_iter().map(Arc::new).collect());
        }
        Ok(&subscribers[number])
    }

    async fn session(
        &self,
        session: &Session,
        version: u64,
        subscribers: &mut Subscribers,
    ) -> Result<(), crate::store::StoreError> {
        let receiver = session.receiver.phone_number();
        let originator = (session.withheld_originator.as_ref())
            .unwrap_or(&session.originator)
            .phone_number();
        let mut seen: Vec<String> = Vec::new();
        let (event, name) = if version == 1 {
            (EventType::SessionInvitation, "session-invitation")
        } else {
            (EventType::SessionStatus, "session-status")
        };
        for number in [receiver, originator].into_iter().flatten() {
            let invited = Some(number) == receiver;
            for subscription in self.subscribers(number, subscribers).await?.to_vec() {
                let visible = session
                    .owner
                    .as_ref()
                    .is_none_or(|owner| **owner == *subscription.owner);
                let wanted = visible
                    && subscription.types.contains(&event)
                    && (version > 1 || invited)
                    && (event != EventType::SessionStatus
                        || (subscription.detail.session_id.as_deref())
                            .is_none_or(|one| one == session.id.as_str()));
                if !wanted || seen.contains(&subscription.id) {
                    continue;
                }
                let data = SessionData {
                    session: SessionResponse::from(session),
                    sequence_number: version,
                    subscription_id: subscription.id.clone(),
                };
                let kind = format!("{}.{name}", self.type_prefix);
                self.deliver_counted(&subscription, name, kind, &data).await;
                seen.push(subscription.id.clone());
            }
        }
        Ok(())
    }

    /// `registration-ends` to the subscriptions that named the registration (or its device) and
    /// asked for it.
    async fn registration_ended(
        &self,
        registration: &Registration,
    ) -> Result<(), crate::store::StoreError> {
        let reason = match registration.ended {
            Some(EndReason::Deleted) | None => return Ok(()),
            Some(EndReason::RegistrationExpired) => "REGISTRATION_EXPIRED",
        };
        let description = format!(
            "The registration expired at {} without a refresh.",
            registration.expires_at()
        );
        let found = (self.subscriptions)
            .for_number(&registration.phone_number, now_ms())
            .await?;
        for subscription in found {
            let named = subscription.detail.registration_id.as_deref() == Some(&registration.id)
                || subscription.detail.device_id.as_deref() == Some(&registration.device_id);
            if subscription.owner != registration.owner
                || !named
                || !subscription.types.contains(&EventType::RegistrationEnds)
            {
                continue;
            }
            let data = RegistrationEndsData {
                registration_id: &registration.id,
                termination_reason: reason,
                termination_description: &description,
            };
            let kind = format!("{}.registration-ends", self.type_prefix);
            (self.deliver_counted(&Arc::new(subscription), "registration-ends", kind, &data)).await;
        }
        Ok(())
    }

    /// [`Emitter::deliver`] for an event that counts against `subscriptionMaxEvents`: one
    /// beyond it is not sent, and the one that reaches it ends the subscription
    /// (MAX_EVENTS_REACHED, with its `subscription-ended`).
    async fn deliver_counted<D: Serialize>(
        &self,
        subscription: &Arc<Subscription>,
        name: &'static str,
        kind: String,
        data: &D,
    ) {
        let Some(max) = subscription.max_events else {
            return self.deliver(subscription, name, kind, data);
        };
        let count = match self.subscriptions.count_event(&subscription.id).await {
            Ok(count) => count,
            // Ended meanwhile (or the store is unreachable): nothing is sent.
            Err(_) => return,
        };
        if count > u64::from(max) {
            return;
        }
        self.deliver(subscription, name, kind, data);
        if count == u64::from(max) {
            let reason = SubscriptionEnd::MaxEventsReached;
            let ended = self
                .subscriptions
                .end_subscription(&subscription.id, reason, false, now_ms())
                .await;
            if let Ok(ended) = ended {
                self.subscription_ended(Arc::new(ended), reason);
            }
        }
    }

    /// `subscription-ended` to an ended subscription's sink (not counted as an event). Ended by
    /// its maximum, it goes through the subscription's worker, after the events before it; any
    /// other end forgets the worker first (nothing queued for it is sent after) and the event
    /// goes on its own.
    fn subscription_ended(&self, subscription: Arc<Subscription>, reason: SubscriptionEnd) {
        let data = SubscriptionEndedData {
            subscription_id: &subscription.id,
            termination_reason: reason,
        };
        let kind = format!("{}.subscription-ended", self.type_prefix);
        if reason == SubscriptionEnd::MaxEventsReached {
            return self.deliver(&subscription, "subscription-ended", kind, &data);
        }
        self.dispatcher.forget(&subscription.id);
        let event = CloudEvent::new(&self.source, kind, now_ms(), &data);
        match serde_json::to_vec(&event) {
            Ok(body) => self.dispatcher.send_once(Delivery {
                subscription: Arc::clone(&subscription),
                event_id: event.id.clone(),
                kind: "subscription-ended",
                body: Bytes::from(body),
            }),
            Err(e) => tracing::error!(error = %e, "an event does not serialise"),
        }
    }

    /// Serialises one CloudEvent for `subscription` and hands it to the dispatcher.
    fn deliver<D: Serialize>(
        &self,
        subscription: &Arc<Subscription>,
        name: &'static str,
        kind: String,
        data: &D,
    ) {
        let event = CloudEvent::new(&self.source, kind, now_ms(), data);
        match serde_json::to_vec(&event) {
            Ok(body) => self.dispatcher.send(Delivery {
                subscription: Arc::clone(subscription),
                event_id: event.id.clone(),
                kind: name,
                body: Bytes::from(body),
            }),
            Err(e) => tracing::error!(error = %e, "an event does not serialise"),
        }
    }
}

/// How often the due subscriptions are looked for: one ends at most this late.
const DUE_SWEEP: std::time::Duration = std::time::Duration::from_millis(250);

/// Ends the subscriptions that are due (their expiry, or their credential about to expire) while
/// the store and the events are alive; each one this replica ends gets its `subscription-ended`
/// (of several replicas, the one whose end lands).
pub async fn end_due_subscriptions(
    subscriptions: std::sync::Weak<dyn SubscriptionStore>,
    events: std::sync::Weak<Events>,
) {
    loop {
        tokio::time::sleep(DUE_SWEEP).await;
        let (Some(subscriptions), Some(events)) = (subscriptions.upgrade(), events.upgrade())
        else {
            return;
        };
        let now = now_ms();
        let due = match subscriptions.due_subscriptions(now, 64).await {
            Ok(due) => due,
            Err(_) => continue,
        };
        for subscription in due {
            let reason = subscription.due_reason(now);
            let ended = subscriptions.end_subscription(&subscription.id, reason, false, now);
            if let Ok(ended) = ended.await {
                tracing::info!(subscription = ended.id.as_str(), reason = ?reason, "subscription ended");
                events.subscription_ended(ended, reason);
            }
        }
    }
}
