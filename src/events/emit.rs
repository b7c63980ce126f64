//! Which events a committed change makes, and for whom. The store records every such change in
//! its outbox with the change itself ([`crate::store::outbox`]); one emitter task per process
//! reads them in commit order, finds the active subscriptions to each party's phone number whose
//! API consumer may see the session, and hands each event to the [`Dispatcher`]. A change is
//! done in the outbox once every event it made is finished ([`Receipt`]).
//!
//! - A new session (version 1): `session-invitation` to the receiver's subscriptions.
//! - Every later change: `session-status` to both parties' subscriptions (narrowed to one call
//!   when the subscription named a `sessionId`), `sequenceNumber` being the session's version.
//! - A registration expired: `registration-ends` (REGISTRATION_EXPIRED) to the subscriptions
//!   that named it or its device; a registration that ended (expired or deleted) ends the
//!   subscriptions it was created for (NETWORK_TERMINATED) once none of their registrations
//!   is left.
//! - A subscription ended: `subscription-ended` to its sink (not after a 410).
//!
//! Every change is also published on the [`Feed`] (for the console) before its events are made.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use serde::Serialize;
use tokio::sync::mpsc;

use super::cloud::{
    CloudEvent, RegistrationEndsData, SessionData, SubscriptionEndedData, event_id,
};
use super::dispatcher::{Delivery, Dispatcher, Finished, Receipt};
use super::feed::Feed;
use crate::config::EventsConfig;
use crate::domain::{EndReason, EventType, Registration, Session, Subscription, SubscriptionEnd};
use crate::http::SessionResponse;
use crate::store::{
    Change, Outbox, Recorded, RegistrationStore, StoreError, Stores, SubscriptionStore, now_ms,
};

/// The emitter, its acknowledger and the outbox's keeper, running while this is held.
pub struct Events {
    tasks: [tokio::task::JoinHandle<()>; 3],
}

impl Drop for Events {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The emitter task's own state.
struct Emitter {
    type_prefix: String,
    source: String,
    subscriptions: Arc<dyn SubscriptionStore>,
    registrations: Arc<dyn RegistrationStore>,
    outbox: Arc<dyn Outbox>,
    dispatcher: Arc<Dispatcher>,
    finished: mpsc::UnboundedSender<Finished>,
    feed: Arc<Feed>,
}

impl Events {
    /// Starts the emitter on the stores' outbox, publishing each change on `feed`; it stops when
    /// the [`Events`] is dropped.
    pub fn start(
        config: &EventsConfig,
        stores: &Stores,
        dispatcher: Arc<Dispatcher>,
        feed: Arc<Feed>,
    ) -> Self {
        let outbox = Arc::clone(&stores.outbox);
        let (finished, receipts) = mpsc::unbounded_channel();
        let emitter = Emitter {
            type_prefix: config.type_prefix.clone(),
            source: config.source.clone(),
            subscriptions: Arc::clone(&stores.subscriptions),
            registrations: Arc::clone(&stores.registrations),
            outbox: Arc::clone(&outbox),
            dispatcher,
            finished,
            feed,
        };
        Self {
            tasks: [
                tokio::spawn(emitter.run()),
                tokio::spawn(acknowledge(Arc::clone(&outbox), receipts)),
                tokio::spawn(keep(outbox)),
            ],
        }
    }
}

/// Changes the emitter takes from the outbox at once. Under load one read of the subscriptions
/// of a number serves every change of the batch.
const BATCH: usize = 256;

/// The subscriptions of the numbers a batch touched, read once per batch.
type Subscribers = HashMap<String, Vec<Arc<Subscription>>>;

/// Keeps the changes being worked on from being taken over (see [`Outbox::keep`]).
async fn keep(outbox: Arc<dyn Outbox>) {
    let mut failing = false;
    loop {
        tokio::time::sleep(crate::store::outbox::KEEP_EVERY).await;
        match outbox.keep().await {
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "recorded changes being worked on not kept; retrying");
            }
            Ok(()) => failing = false,
            Err(_) => {}
        }
    }
}

/// Marks the changes whose events are finished done in the outbox (batched), and hands back
/// those given up; a failed write is tried again a second later.
async fn acknowledge(outbox: Arc<dyn Outbox>, mut receipts: mpsc::UnboundedReceiver<Finished>) {
    let mut finished = Vec::new();
    let mut done: Vec<String> = Vec::new();
    let mut failing = false;
    loop {
        if done.is_empty() {
            if receipts.recv_many(&mut finished, BATCH).await == 0 {
                return;
            }
        } else {
            // Changes whose write failed wait for at most a second, more or not.
            let more = receipts.recv_many(&mut finished, BATCH);
            let _ = tokio::time::timeout(Duration::from_secs(1), more).await;
        }
        let mut released = Vec::new();
        for one in finished.drain(..) {
            match one {
                Finished::Done(id) => done.push(id),
                Finished::Released(id) => released.push(id),
            }
        }
        outbox.release(&released);
        if done.is_empty() {
            continue;
        }
        if let Err(e) = outbox.done(done.clone()).await {
            if !failing {
                tracing::warn!(changes = done.len(), error = %e, "finished changes not marked done yet; retrying");
            }
            failing = true;
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        failing = false;
        done.clear();
    }
}

impl Emitter {
    async fn run(self) {
        let mut failing = false;
        loop {
            let batch = match self.outbox.next(BATCH).await {
                Ok(batch) => batch,
                Err(e) => {
                    if !failing {
                        tracing::warn!(error = %e, "recorded changes not read; retrying");
                    }
                    failing = true;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            if failing {
                tracing::info!("recorded changes read again");
                failing = false;
            }
            let mut subscribers = Subscribers::new();
            for recorded in batch {
                self.emit(recorded, &mut subscribers).await;
            }
        }
    }

    /// Makes the events of one recorded change. If the store does not answer, the change is
    /// given up, to be taken over (on Redis) after `events.claim_idle_ms`.
    async fn emit(&self, recorded: Recorded, subscribers: &mut Subscribers) {
        let receipt = Receipt::new(recorded.id.clone(), self.finished.clone());
        match &recorded.change {
            Change::Session { session, version } => {
                (self.feed).publish_session(session, *version, Some(recorded.at_ms))
            }
            Change::RegistrationEnded(registration) => self.feed.publish_registration(registration),
            Change::SubscriptionEnded(subscription) => self.feed.publish_subscription(subscription),
        }
        let made = match &recorded.change {
            Change::Session { session, version } => {
                (self.session(&recorded, session, *version, &receipt, subscribers)).await
            }
            Change::RegistrationEnded(registration) => {
                // Later changes of the batch must not see the subscriptions it ends.
                subscribers.clear();
                (self.registration_ended(&recorded, registration, &receipt)).await
            }
            Change::SubscriptionEnded(subscription) => {
                // Later changes of the batch must not see it.
                subscribers.clear();
                self.subscription_ended(&recorded, subscription, &receipt);
                Ok(())
            }
        };
        if let Err(e) = made {
            tracing::warn!(change = recorded.id.as_str(), error = %e, "events of a change not made: the store did not answer");
            receipt.release();
        }
    }

    /// The active subscriptions to `number`, read once per batch.
    async fn subscribers<'s>(
        &self,
        number: &str,
        subscribers: &'s mut Subscribers,
    ) -> Result<&'s [Arc<Subscription>], StoreError> {
        if !subscribers.contains_key(number) {
            let found = self.subscriptions.for_number(number, now_ms()).await?;
            subscribers.insert(number.to_owned(), found.into_iter().map(Arc::new).collect());
        }
        Ok(&subscribers[number])
    }

    async fn session(
        &self,
        recorded: &Recorded,
        session: &Session,
        version: u64,
        receipt: &Receipt,
        subscribers: &mut Subscribers,
    ) -> Result<(), StoreError> {
        let receiver = session.receiver.phone_number();
        let originator = (session.withheld_originator.as_ref())
            .unwrap_or(&session.originator)
            .phone_number();
        let mut seen: Vec<String> = Vec::new();
        // A session without an owner is a fixture: loaded with the configuration, not called.
        if version == 1 && session.owner.is_none() {
            return Ok(());
        }
        let (event, name) = if version == 1 {
            (EventType::SessionInvitation, "session-invitation")
        } else {
            (EventType::SessionStatus, "session-status")
        };
        for number in [receiver, originator].into_iter().flatten() {
            let invited = Some(number) == receiver;
            for subscription in self.subscribers(number, subscribers).await?.to_vec() {
                // On an on-net call each consumer hears of it at its own side's number only: the
                // receiver's at the caller's (withheld, perhaps) would learn who is calling, and
                // the caller's would be invited to a call it cannot answer.
                let visible = match (&session.owner, &session.receiver_owner) {
                    (Some(owner), Some(receiver_owner)) => {
                        let side = if invited { receiver_owner } else { owner };
                        **side == *subscription.owner
                    }
                    (owner, _) => owner.as_ref().is_none_or(|o| **o == *subscription.owner),
                };
                let wanted = visible
                    && subscription.types.contains(&event)
                    && (version > 1 || invited)
                    && (event != EventType::SessionStatus
                        || (subscription.detail.session_id.as_deref())
                            .is_none_or(|one| one == session.id.as_str()));
                if !wanted || seen.contains(&subscription.id) {
                    continue;
                }
                let shown = match event {
                    EventType::SessionInvitation => SessionResponse::invitation(session),
                    _ => SessionResponse::from(session),
                };
                let data = SessionData {
                    session: shown,
                    sequence_number: version,
                    subscription_id: subscription.id.clone(),
                };
                let event = self.event(recorded, &subscription, name, &data, receipt);
                self.deliver_counted(event).await?;
                seen.push(subscription.id.clone());
            }
        }
        Ok(())
    }

    /// A registration ended. Expired or ended by the network, it makes `registration-ends` for
    /// the subscriptions that named it (or its device) and asked for it. Then every subscription it was created for
    /// whose registrations have all ended ends (NETWORK_TERMINATED): it named this one, or its
    /// device has no active registration of its consumer at one of its numbers left. So a later
    /// registration of the same number never receives an ended one's events.
    async fn registration_ended(
        &self,
        recorded: &Recorded,
        registration: &Registration,
        receipt: &Receipt,
    ) -> Result<(), StoreError> {
        let ends = match registration.ended {
            Some(EndReason::RegistrationExpired) => Some((
                "REGISTRATION_EXPIRED",
                format!(
                    "The registration expired at {} without a refresh.",
                    registration.expires_at()
                ),
            )),
            Some(EndReason::NetworkTerminated) => Some((
                "NETWORK_TERMINATED",
                "The network ended the registration.".to_owned(),
            )),
            Some(EndReason::Deleted) | None => None,
        };
        let now = now_ms();
        let found = (self.subscriptions)
            .for_number(&registration.phone_number, now)
            .await?;
        // The device's registrations still active, read once (for the subscriptions by device).
        let mut device_left: Option<Vec<Registration>> = None;
        for subscription in found {
            let by_id = subscription.detail.registration_id.as_deref() == Some(&registration.id);
            let by_device =
                subscription.detail.device_id.as_deref() == Some(&registration.device_id);
            if subscription.owner != registration.owner || !(by_id || by_device) {
                continue;
            }
            let subscription = Arc::new(subscription);
            if let Some((reason, description)) = &ends
                && subscription.types.contains(&EventType::RegistrationEnds)
            {
                let data = RegistrationEndsData {
                    registration_id: &registration.id,
                    termination_reason: reason,
                    termination_description: description,
                };
                let event =
                    self.event(recorded, &subscription, "registration-ends", &data, receipt);
                self.deliver_counted(event).await?;
            }
            if !by_id {
                if device_left.is_none() {
                    let left = (self.registrations)
                        .device_registrations(&registration.owner, &registration.device_id, now)
                        .await?;
                    device_left = Some(left);
                }
                // Still made for a registration of one of its numbers: it goes on.
                let left = device_left.iter().flatten();
                if left
                    .into_iter()
                    .any(|r| subscription.phone_numbers.contains(&r.phone_number))
                {
                    continue;
                }
            }
            let end = SubscriptionEnd::NetworkTerminated;
            match (self.subscriptions)
                .end_subscription(&subscription.id, end, false, now)
                .await
            {
                Ok(_) | Err(StoreError::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Hands an event that counts against `subscriptionMaxEvents` to the dispatcher: one beyond
    /// it is not sent, and the one that reaches it ends the subscription (MAX_EVENTS_REACHED:
    /// the store records the end, whose `subscription-ended` follows this event).
    async fn deliver_counted(&self, delivery: Option<Delivery>) -> Result<(), StoreError> {
        let Some(delivery) = delivery else {
            return Ok(());
        };
        let subscription = Arc::clone(&delivery.subscription);
        let Some(max) = subscription.max_events else {
            self.dispatcher.send(delivery);
            return Ok(());
        };
        let count = match self.subscriptions.count_event(&subscription.id).await {
            Ok(count) => count,
            // Ended meanwhile: nothing is sent.
            Err(StoreError::NotFound) => return Ok(()),
            Err(e) => return Err(e),
        };
        if count > u64::from(max) {
            return Ok(());
        }
        self.dispatcher.send(delivery);
        if count == u64::from(max) {
            let reason = SubscriptionEnd::MaxEventsReached;
            match (self.subscriptions)
                .end_subscription(&subscription.id, reason, false, now_ms())
                .await
            {
                Ok(_) | Err(StoreError::NotFound) => {}
                Err(e) => {
                    tracing::warn!(subscription = subscription.id.as_str(), error = %e, "subscription not ended at its max events; the store did not answer");
                }
            }
        }
        Ok(())
    }

    /// `subscription-ended` to an ended subscription's sink (not counted as an event). Ended by
    /// the service after its events (max events, its registrations ended), it goes through the
    /// subscription's worker, after them; any other end forgets the worker first (nothing
    /// queued for it is sent after) and the event goes on its own; after a 410 nothing is sent.
    fn subscription_ended(
        &self,
        recorded: &Recorded,
        subscription: &Subscription,
        receipt: &Receipt,
    ) {
        let Some(reason) = subscription.ended else {
            return;
        };
        crate::telemetry::metrics::subscription_ended(reason);
        let subscription = Arc::new(subscription.clone());
        if !reason.follows_its_events() {
            self.dispatcher.forget(&subscription.id);
        }
        if !reason.is_announced() {
            return;
        }
        let data = SubscriptionEndedData {
            subscription_id: &subscription.id,
            termination_reason: reason,
        };
        let Some(mut delivery) = self.event(
            recorded,
            &subscription,
            "subscription-ended",
            &data,
            receipt,
        ) else {
            return;
        };
        delivery.last = true;
        if reason.follows_its_events() {
            self.dispatcher.send(delivery);
        } else {
            self.dispatcher.send_once(delivery);
        }
    }

    /// One CloudEvent `name` of the change `recorded` for `subscription`, serialised.
    fn event<D: Serialize>(
        &self,
        recorded: &Recorded,
        subscription: &Arc<Subscription>,
        name: &'static str,
        data: &D,
        receipt: &Receipt,
    ) -> Option<Delivery> {
        let id = event_id(&recorded.id, &subscription.id);
        let kind = format!("{}.{name}", self.type_prefix);
        let event = CloudEvent::new(id, &self.source, kind, recorded.at_ms, data);
        match serde_json::to_vec(&event) {
            Ok(body) => Some(Delivery {
                subscription: Arc::clone(subscription),
                event_id: event.id,
                kind: name,
                body: Bytes::from(body),
                last: false,
                session: match &recorded.change {
                    Change::Session { session, .. } => Some(session.id.clone()),
                    _ => None,
                },
                receipt: receipt.clone(),
            }),
            Err(e) => {
                tracing::error!(error = %e, "an event does not serialise");
                None
            }
        }
    }
}

/// How often the due subscriptions are looked for: one ends at most this late.
pub const DUE_SWEEP: std::time::Duration = std::time::Duration::from_millis(250);

/// Ends the subscriptions that are due (their expiry, or their credential about to expire), up
/// to a batch: one pass of the scheduler ([`crate::network::timers`]). The store records each
/// end, which makes its `subscription-ended` (of several replicas, the one whose end lands).
pub async fn end_due_subscriptions(
    subscriptions: &dyn SubscriptionStore,
) -> Result<(), StoreError> {
    let now = now_ms();
    for subscription in subscriptions.due_subscriptions(now, 64).await? {
        let reason = subscription.due_reason(now);
        let ended = subscriptions.end_subscription(&subscription.id, reason, false, now);
        match ended.await {
            Ok(ended) => {
                tracing::info!(subscription = ended.id.as_str(), reason = ?reason, "subscription ended");
            }
            // Ended meanwhile (another replica, a DELETE).
            Err(StoreError::NotFound) => {}
            Err(e) => {
                tracing::warn!(subscription = subscription.id.as_str(), error = %e, "due subscription not ended yet")
            }
        }
    }
    Ok(())
}
