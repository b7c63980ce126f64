//! The network's timers in Redis, shared by the replicas: `timers`, a sorted set of timer keys
//! scored by when each is due (or its claim's lease ends), and `timer-data`, a hash of each
//! timer as JSON. A claim moves a due timer's score to the end of its lease in one script, so
//! exactly one replica holds it; one that dies holding it leaves it due again when the lease is
//! over.

use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;

use super::RedisStore;
use crate::store::timers::{Claimed, Scheduled, TimerStore, encode};
use crate::store::{StoreError, StoreFuture};

/// KEYS: 1 `timers`, 2 `timer-data`. ARGV: 1 now, 2 lease (ms), 3 limit. Returns the claimed
/// timers' JSON, soonest first, then the score of the soonest timer left ("" for none); drops
/// keys whose data is gone.
static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local now = tonumber(ARGV[1])
        local out = {}
        for _, key in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, ARGV[3])) do
            local data = redis.call('HGET', KEYS[2], key)
            if data then
                redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), key)
                table.insert(out, data)
            else
                redis.call('ZREM', KEYS[1], key)
            end
        end
        local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
        table.insert(out, first[2] or '')
        return out
        ",
    )
});

/// KEYS: 1 `timers`, 2 `timer-data`. ARGV: 1 the key to end, 2 the JSON it was claimed as,
/// then optionally 3 the next timer's key, 4 its due time, 5 its JSON. Returns 1, or 0 (the
/// store no longer holds that timer; nothing scheduled).
static ADVANCE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
        redis.call('HDEL', KEYS[2], ARGV[1])
        redis.call('ZREM', KEYS[1], ARGV[1])
        if ARGV[3] then
            redis.call('ZADD', KEYS[1], ARGV[4], ARGV[3])
            redis.call('HSET', KEYS[2], ARGV[3], ARGV[5])
        end
        return 1
        ",
    )
});

impl RedisStore {
    /// The keys a session's insert schedules its timers under, then each timer as (key, due
    /// time, JSON): the arguments [`super::scripts::INSERT`] takes after its own.
    pub(super) fn timer_args(&self, timers: &[Scheduled]) -> Result<Vec<String>, StoreError> {
        let mut args = self.timer_keys().to_vec();
        for timer in timers {
            args.extend([timer.key.clone(), timer.due_ms.to_string(), encode(timer)?]);
        }
        Ok(args)
    }

    /// `timers` and `timer-data`: passed to the scripts that end or remove a session, which
    /// drop its timers.
    pub(super) fn timer_keys(&self) -> [String; 2] {
        [
            format!("{}timers", self.prefix),
            format!("{}timer-data", self.prefix),
        ]
    }
}

impl TimerStore for RedisStore {
    fn claim_timers(
        &self,
        now_ms: u64,
        lease: Duration,
        limit: usize,
    ) -> StoreFuture<'_, (Vec<Claimed>, Option<u64>)> {
        Box::pin(async move {
            let [timers, data] = self.timer_keys();
            let mut con = self.connection.clone();
            let mut claimed: Vec<String> = self
                .run(
                    CLAIM
                        .key(timers)
                        .key(data)
                        .arg(now_ms)
                        .arg(crate::store::millis(lease))
                        .arg(limit)
                        .invoke_async(&mut con),
                )
                .await?;
            // Scores are whole milliseconds, well inside f64's exact integers.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let next = (claimed.pop())
                .and_then(|score| score.parse::<f64>().ok())
                .map(|at| at as u64);
            // A timer this version cannot read (a newer one's, in a rolling upgrade) is left to
            // a replica that can: claimed, then due again after the lease.
            let claimed = (claimed.into_iter())
                .filter_map(|stored| match serde_json::from_str(&stored) {
                    Ok(scheduled) => Some(Claimed { scheduled, stored }),
                    Err(e) => {
                        tracing::warn!(error = %e, "a stored timer does not parse; left");
                        None
                    }
                })
                .collect();
            Ok((claimed, next))
        })
    }

    fn advance<'a>(
        &'a self,
        claimed: &'a Claimed,
        next: Option<Scheduled>,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let [timers, data] = self.timer_keys();
            let mut invocation = ADVANCE.prepare_invoke();
            invocation
                .key(timers)
                .key(data)
                .arg(&claimed.scheduled.key)
                .arg(&claimed.stored);
            if let Some(next) = &next {
                invocation
                    .arg(&next.key)
                    .arg(next.due_ms)
                    .arg(encode(next)?);
            }
            let mut con = self.connection.clone();
            let advanced: i64 = self.run(invocation.invoke_async(&mut con)).await?;
            Ok(advanced == 1)
        })
    }
}
