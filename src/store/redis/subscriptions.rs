//! Subscriptions in Redis, shared by every replica on the same Redis and key prefix.
//!
//! Keys (under `store.key_prefix`):
//! - `sub:<id>`: a hash `{v: version, j: the subscription as JSON, o: owner, x: expiry (ms, 0
//!   for none), e: end reason ("" while not ended)}`; an ended one expires after `ended_ttl`
//!   (a day at least when the service ended it: `ended_record_ms`);
//! - `subs`: a set of the ids not yet ended; `subs-owner:<owner>` and `subs-number:<phone>`: the
//!   same, per owner and per phone number; `subs-due`: those that end by themselves, scored by
//!   when (`Subscription::due_at_ms`); the hash's `n` counts the events sent to it.
//!
//! A new subscription is one script (the owner's quota and the capacity checked with the write);
//! a change or an end is read, changed in Rust, and written back by a compare-and-swap on `v`.

use std::sync::LazyLock;

use redis::Script;

use super::RedisStore;
use crate::domain::{Subscription, SubscriptionEnd};
use crate::store::{StoreError, StoreFuture, SubscriptionChange, SubscriptionStore};

/// ARGV: 1 prefix, 2 id, 3 JSON, 4 owner, 5 expiry (0: none), 6 max per owner, 7 now,
/// 8 capacity, 9 due time (0: none), 10... its phone numbers. Returns 1, -1 (exists), -2 (owner
/// full), -3 (store full).
static SUBSCRIBE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local p, now = ARGV[1], tonumber(ARGV[7])
        local mine = p .. 'subs-owner:' .. ARGV[4]
        local held = 0
        for _, other in ipairs(redis.call('SMEMBERS', mine)) do
            local f = redis.call('HMGET', p .. 'sub:' .. other, 'x', 'e')
            if not f[1] then
                redis.call('SREM', mine, other)
                redis.call('SREM', p .. 'subs', other)
            elseif f[2] == '' and (f[1] == '0' or tonumber(f[1]) > now) then
                held = held + 1
            end
        end
        if held >= tonumber(ARGV[6]) then return -2 end
        if redis.call('SCARD', p .. 'subs') >= tonumber(ARGV[8]) then return -3 end
        local key = p .. 'sub:' .. ARGV[2]
        if redis.call('EXISTS', key) == 1 then return -1 end
        redis.call('HSET', key, 'v', 1, 'j', ARGV[3], 'o', ARGV[4], 'x', ARGV[5], 'e', '')
        redis.call('SADD', mine, ARGV[2])
        redis.call('SADD', p .. 'subs', ARGV[2])
        if ARGV[9] ~= '0' then redis.call('ZADD', p .. 'subs-due', ARGV[9], ARGV[2]) end
        for i = 10, #ARGV do redis.call('SADD', p .. 'subs-number:' .. ARGV[i], ARGV[2]) end
        return 1
        ",
    )
});

/// ARGV: 1 prefix, 2 id, 3 expected version, 4 JSON, 5 expiry, 6 end reason ("" for none),
/// 7 ms to keep an ended record, 8 due time (0: none), 9... its phone numbers. An end is
/// recorded in the outbox (`k` `e`, the JSON). Returns 1, 0 (absent) or 2 (version moved on).
static WRITE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local p, id = ARGV[1], ARGV[2]
        local key = p .. 'sub:' .. id
        local f = redis.call('HMGET', key, 'v', 'o')
        if not f[1] then return 0 end
        if tonumber(f[1]) ~= tonumber(ARGV[3]) then return 2 end
        redis.call('HSET', key, 'v', tonumber(f[1]) + 1, 'j', ARGV[4], 'x', ARGV[5], 'e', ARGV[6])
        if ARGV[6] ~= '' then
            redis.call('SREM', p .. 'subs-owner:' .. f[2], id)
            redis.call('SREM', p .. 'subs', id)
            for i = 9, #ARGV do redis.call('SREM', p .. 'subs-number:' .. ARGV[i], id) end
            redis.call('ZREM', p .. 'subs-due', id)
            local keep = tonumber(ARGV[7])
            if keep > 0 then redis.call('PEXPIRE', key, keep) else redis.call('DEL', key) end
            redis.call('XADD', p .. 'outbox', '*', 'k', 'e', 'j', ARGV[4])
        elseif ARGV[8] ~= '0' then
            redis.call('ZADD', p .. 'subs-due', ARGV[8], id)
        else
            redis.call('ZREM', p .. 'subs-due', id)
        end
        return 1
        ",
    )
});

/// Counts one event of a subscription not yet ended. ARGV: 1 its key. Returns the count, or -1.
static COUNT_EVENT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local e = redis.call('HGET', ARGV[1], 'e')
        if e ~= '' then return -1 end
        return redis.call('HINCRBY', ARGV[1], 'n', 1)
        ",
    )
});

/// How many times a change re-reads after losing a race.
const WRITE_ATTEMPTS: usize = 16;

fn decode(json: &str) -> Result<Subscription, StoreError> {
    serde_json::from_str(json)
        .map_err(|e| StoreError::Unavailable(format!("a stored subscription does not parse: {e}")))
}

impl RedisStore {
    /// The stored version and subscription of `id`, whatever its state.
    async fn read_subscription(&self, id: &str) -> Result<Option<(u64, Subscription)>, StoreError> {
        let mut con = self.connection.clone();
        let (version, json): (Option<u64>, Option<String>) = self
            .run(
                redis::cmd("HMGET")
                    .arg(format!("{}sub:{id}", self.prefix))
                    .arg("v")
                    .arg("j")
                    .query_async(&mut con),
            )
            .await?;
        match (version, json) {
            (Some(version), Some(json)) => Ok(Some((version, decode(&json)?))),
            _ => Ok(None),
        }
    }

    /// The active subscriptions of the set at `key`, oldest first.
    async fn active_in(&self, key: &str, now_ms: u64) -> Result<Vec<Subscription>, StoreError> {
        let mut con = self.connection.clone();
        let ids: Vec<String> = self
            .run(redis::cmd("SMEMBERS").arg(key).query_async(&mut con))
            .await?;
        self.active_subscriptions_of(&ids, now_ms).await
    }

    /// The active subscriptions of `ids`, oldest first.
    async fn active_subscriptions_of(
        &self,
        ids: &[String],
        now_ms: u64,
    ) -> Result<Vec<Subscription>, StoreError> {
        let mut con = self.connection.clone();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.cmd("HGET")
                .arg(format!("{}sub:{id}", self.prefix))
                .arg("j");
        }
        let found: Vec<Option<String>> = self.run(pipe.query_async(&mut con)).await?;
        let mut active = Vec::new();
        for json in found.into_iter().flatten() {
            let subscription = decode(&json)?;
            if subscription.is_active(now_ms) {
                active.push(subscription);
            }
        }
        active.sort_by(|a, b| (a.starts_at_ms, &a.id).cmp(&(b.starts_at_ms, &b.id)));
        Ok(active)
    }

    /// Read → `edit` → compare-and-swap, for a subscription not yet ended (and active, with
    /// `active_only`); the result as written.
    async fn rewrite(
        &self,
        id: &str,
        now_ms: u64,
        active_only: bool,
        edit: impl Fn(&mut Subscription),
    ) -> Result<Subscription, StoreError> {
        for _ in 0..WRITE_ATTEMPTS {
            let Some((version, mut subscription)) = self.read_subscription(id).await? else {
                return Err(StoreError::NotFound);
            };
            let usable = match active_only {
                true => subscription.is_active(now_ms),
                false => subscription.ended.is_none(),
            };
            if !usable {
                return Err(StoreError::NotFound);
            }
            edit(&mut subscription);
            let json = serde_json::to_string(&subscription)
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
            let ended = match subscription.ended {
                Some(reason) => serde_json::to_value(reason)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                None => String::new(),
            };
            let keep = (subscription.ended).map_or(0, |reason| {
                crate::store::subscriptions::ended_record_ms(self.limits.ended_ttl, reason)
            });
            let mut invocation = WRITE.prepare_invoke();
            invocation
                .arg(&self.prefix)
                .arg(id)
                .arg(version)
                .arg(json)
                .arg(subscription.expires_at_ms.unwrap_or(0))
                .arg(ended)
                .arg(keep)
                .arg(subscription.due_at_ms().unwrap_or(0))
                .arg(&subscription.phone_numbers[..]);
            let mut con = self.connection.clone();
            let outcome: i64 = self.run(invocation.invoke_async(&mut con)).await?;
            match outcome {
                1 => return Ok(subscription),
                2 => continue,
                _ => return Err(StoreError::NotFound),
            }
        }
        // Writers kept winning the race: the caller answers 409 ABORTED.
        Err(StoreError::VersionConflict { current: 0 })
    }
}

impl SubscriptionStore for RedisStore {
    fn subscribe(
        &self,
        subscription: Subscription,
        max_per_owner: usize,
        now_ms: u64,
    ) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let json = serde_json::to_string(&subscription)
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
            let mut invocation = SUBSCRIBE.prepare_invoke();
            invocation
                .arg(&self.prefix)
                .arg(&subscription.id)
                .arg(json)
                .arg(&subscription.owner)
                .arg(subscription.expires_at_ms.unwrap_or(0))
                .arg(max_per_owner)
                .arg(now_ms)
                .arg(self.limits.capacity)
                .arg(subscription.due_at_ms().unwrap_or(0))
                .arg(&subscription.phone_numbers[..]);
            let mut con = self.connection.clone();
            let done: i64 = self.run(invocation.invoke_async(&mut con)).await?;
            match done {
                1 => Ok(()),
                -1 => Err(StoreError::AlreadyExists),
                -2 => Err(StoreError::OwnerFull(max_per_owner)),
                _ => Err(StoreError::Full(self.limits.capacity)),
            }
        })
    }

    fn stored_subscription<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<Subscription>> {
        Box::pin(async move { Ok(self.read_subscription(id).await?.map(|(_, s)| s)) })
    }

    fn owned<'a>(&'a self, owner: &'a str, now_ms: u64) -> StoreFuture<'a, Vec<Subscription>> {
        Box::pin(async move {
            let key = format!("{}subs-owner:{owner}", self.prefix);
            self.active_in(&key, now_ms).await
        })
    }

    fn for_number<'a>(
        &'a self,
        phone_number: &'a str,
        now_ms: u64,
    ) -> StoreFuture<'a, Vec<Subscription>> {
        Box::pin(async move {
            let key = format!("{}subs-number:{phone_number}", self.prefix);
            self.active_in(&key, now_ms).await
        })
    }

    fn change<'a>(
        &'a self,
        id: &'a str,
        change: SubscriptionChange,
        now_ms: u64,
    ) -> StoreFuture<'a, Subscription> {
        Box::pin(async move {
            self.rewrite(id, now_ms, true, |subscription| change.apply(subscription))
                .await
        })
    }

    fn end_subscription<'a>(
        &'a self,
        id: &'a str,
        reason: SubscriptionEnd,
        active_only: bool,
        now_ms: u64,
    ) -> StoreFuture<'a, Subscription> {
        Box::pin(async move {
            self.rewrite(id, now_ms, active_only, |subscription| {
                subscription.ended = Some(reason);
            })
            .await
        })
    }

    fn due_subscriptions(&self, now_ms: u64, limit: usize) -> StoreFuture<'_, Vec<Subscription>> {
        Box::pin(async move {
            let mut con = self.connection.clone();
            let ids: Vec<String> = self
                .run(
                    redis::cmd("ZRANGEBYSCORE")
                        .arg(format!("{}subs-due", self.prefix))
                        .arg("-inf")
                        .arg(now_ms)
                        .arg("LIMIT")
                        .arg(0)
                        .arg(limit)
                        .query_async(&mut con),
                )
                .await?;
            let mut due = Vec::new();
            for id in ids {
                if let Some((_, subscription)) = self.read_subscription(&id).await? {
                    due.push(subscription);
                }
            }
            Ok(due)
        })
    }

    fn active_subscriptions(
        &self,
        now_ms: u64,
        limit: usize,
    ) -> StoreFuture<'_, (Vec<Subscription>, usize)> {
        Box::pin(async move {
            let key = format!("{}subs", self.prefix);
            let count = i64::try_from(limit).unwrap_or(i64::MAX);
            let mut con = self.connection.clone();
            // SRANDMEMBER with a positive count: distinct members, all of them when fewer.
            let (total, ids): (usize, Vec<String>) = (self.run(
                redis::pipe()
                    .cmd("SCARD")
                    .arg(&key)
                    .cmd("SRANDMEMBER")
                    .arg(&key)
                    .arg(count)
                    .query_async(&mut con),
            ))
            .await?;
            Ok((self.active_subscriptions_of(&ids, now_ms).await?, total))
        })
    }

    fn live_subscriptions(&self) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let mut con = self.connection.clone();
            let key = format!("{}subs", self.prefix);
            self.run(redis::cmd("SCARD").arg(key).query_async(&mut con))
                .await
        })
    }

    fn count_event<'a>(&'a self, id: &'a str) -> StoreFuture<'a, u64> {
        Box::pin(async move {
            let mut invocation = COUNT_EVENT.prepare_invoke();
            invocation.arg(format!("{}sub:{id}", self.prefix));
            let mut con = self.connection.clone();
            let count: i64 = self.run(invocation.invoke_async(&mut con)).await?;
            u64::try_from(count).map_err(|_| StoreError::NotFound)
        })
    }
}
