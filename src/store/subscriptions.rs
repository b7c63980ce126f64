//! Where subscriptions live: the third member of the store family, on the same backend.
//!
//! A subscription is *active* until it ends or its expiry passes
//! ([`Subscription::is_active`]); only active ones exist for the API. An ended one is kept as a
//! record, with its [`SubscriptionEnd`](crate::domain::SubscriptionEnd), for the store's
//! `ended_ttl`.

use super::StoreFuture;
use crate::domain::{AccessToken, Subscription, SubscriptionEnd};

/// How long (ms) an ended subscription's record is kept: the store's `ended_ttl`, but a day at
/// least when the service ended it after its events (max events, its registrations ended), so
/// that those events' retries still find why it ended (see the dispatcher).
pub fn ended_record_ms(ended_ttl: std::time::Duration, reason: SubscriptionEnd) -> u64 {
    const DAY_MS: u64 = 24 * 60 * 60 * 1000;
    let ttl = super::millis(ended_ttl);
    match reason.follows_its_events() {
        true => ttl.max(DAY_MS),
        false => ttl,
    }
}

/// What a PUT changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscriptionChange {
    pub credential: Option<AccessToken>,
    pub expires_at_ms: Option<u64>,
}

impl SubscriptionChange {
    /// `subscription` with the change made.
    pub fn apply(&self, subscription: &mut Subscription) {
        if let Some(credential) = &self.credential {
            subscription.credential = Some(credential.clone());
        }
        if let Some(at) = self.expires_at_ms {
            subscription.expires_at_ms = Some(at);
        }
    }
}

pub trait SubscriptionStore: Send + Sync + 'static {
    /// Stores a new subscription. [`StoreError::OwnerFull`](super::StoreError) when its owner
    /// holds `max_per_owner` active ones; [`StoreError::Full`](super::StoreError) at the store's
    /// capacity of subscriptions not yet ended.
    fn subscribe(
        &self,
        subscription: Subscription,
        max_per_owner: usize,
        now_ms: u64,
    ) -> StoreFuture<'_, ()>;

    /// The subscription as stored, active or not (one that ended is kept for the store's
    /// `ended_ttl`).
    fn stored_subscription<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<Subscription>>;

    /// The subscription, if it is active.
    fn subscription<'a>(
        &'a self,
        id: &'a str,
        now_ms: u64,
    ) -> StoreFuture<'a, Option<Subscription>> {
        Box::pin(async move {
            let stored = self.stored_subscription(id).await?;
            Ok(stored.filter(|s| s.is_active(now_ms)))
        })
    }

    /// The active subscriptions to the events of `phone_number` (every owner's), oldest first.
    fn for_number<'a>(
        &'a self,
        phone_number: &'a str,
        now_ms: u64,
    ) -> StoreFuture<'a, Vec<Subscription>>;

    /// `owner`'s active subscriptions, oldest first.
    fn owned<'a>(&'a self, owner: &'a str, now_ms: u64) -> StoreFuture<'a, Vec<Subscription>>;

    /// Applies `change` to an active subscription; [`StoreError::NotFound`](super::StoreError)
    /// if it is not active.
    fn change<'a>(
        &'a self,
        id: &'a str,
        change: SubscriptionChange,
        now_ms: u64,
    ) -> StoreFuture<'a, Subscription>;

    /// Ends an active subscription now (deleted), returning it;
    /// [`StoreError::NotFound`](super::StoreError) if it is not active.
    fn unsubscribe<'a>(&'a self, id: &'a str, now_ms: u64) -> StoreFuture<'a, Subscription> {
        self.end_subscription(id, SubscriptionEnd::SubscriptionDeleted, true, now_ms)
    }

    /// Ends a subscription that has not ended for `reason`, returning it ended;
    /// [`StoreError::NotFound`](super::StoreError) if it has ended (or, with `active_only`, is
    /// past its expiry). Of several callers exactly one ends it.
    fn end_subscription<'a>(
        &'a self,
        id: &'a str,
        reason: SubscriptionEnd,
        active_only: bool,
        now_ms: u64,
    ) -> StoreFuture<'a, Subscription>;

    /// Up to `limit` subscriptions not yet ended whose [`Subscription::due_at_ms`] is at or
    /// before `now_ms`, soonest first.
    fn due_subscriptions(&self, now_ms: u64, limit: usize) -> StoreFuture<'_, Vec<Subscription>>;

    /// How many subscriptions have not ended (every owner's); its cost does not grow with them.
    fn live_subscriptions(&self) -> StoreFuture<'_, u64>;

    /// Up to `limit` subscriptions active at `now_ms` (every owner's; any of them when there are
    /// more), oldest first, and how many have not ended in all: the console's first look. On a
    /// shared store it reads only what it returns and a count.
    fn active_subscriptions(
        &self,
        now_ms: u64,
        limit: usize,
    ) -> StoreFuture<'_, (Vec<Subscription>, usize)>;

    /// Counts one more event sent to an active subscription, returning the count;
    /// [`StoreError::NotFound`](super::StoreError) when it has ended.
    fn count_event<'a>(&'a self, id: &'a str) -> StoreFuture<'a, u64>;
}
