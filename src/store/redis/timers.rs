//! The network's timers in Redis, shared by the replicas: `timers`, a sorted set of timer keys
//! scored by when each is due (or its claim's lease ends), and `timer-data`, a hash of each
//! timer as JSON. A claim moves a due timer's score to the end of its lease in one script, so
//! exactly one replica holds it; one that dies holding it leaves it due again when the lease is
//! over.

use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;

use super::RedisStore;
use crate::store::timers::{Scheduled, TimerStore};
use crate::store::{StoreError, StoreFuture};

/// KEYS: 1 `timers`, 2 `timer-data`. ARGV: 1 now, 2 lease (ms), 3 limit. Returns the claimed
/// timers' JSON, soonest first; drops keys whose data is gone.
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
        return out
        ",
    )
});

/// KEYS: 1 `timers`, 2 `timer-data`. ARGV: 1 the key to end, then optionally 2 the next key,
/// 3 its due time, 4 its JSON. Returns 1, or 0 (the key had ended; nothing scheduled).
static ADVANCE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        if redis.call('HDEL', KEYS[2], ARGV[1]) == 0 then return 0 end
        redis.call('ZREM', KEYS[1], ARGV[1])
        if ARGV[2] then
            redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
            redis.call('HSET', KEYS[2], ARGV[2], ARGV[4])
        end
        return 1
        ",
    )
});

impl RedisStore {
    /// The keys a session's insert schedules its timers under, then each timer as (key, due
    /// time, JSON): the arguments [`super::scripts::INSERT`] takes after its own.
    pub(super) fn timer_args(&self, timers: &[Scheduled]) -> Result<Vec<String>, StoreError> {
        let mut args = vec![self.timers_key(), self.timer_data_key()];
        for timer in timers {
            args.extend([timer.key.clone(), timer.due_ms.to_string(), encode(timer)?]);
        }
        Ok(args)
    }

    fn timers_key(&self) -> String {
        format!("{}timers", self.prefix)
    }

    fn timer_data_key(&self) -> String {
        format!("{}timer-data", self.prefix)
    }
}

fn encode(timer: &Scheduled) -> Result<String, StoreError> {
    serde_json::to_string(timer)
        .map_err(|e| StoreError::Unavailable(format!("a timer does not serialise: {e}")))
}

impl TimerStore for RedisStore {
    fn claim_timers(
        &self,
        now_ms: u64,
        lease: Duration,
        limit: usize,
    ) -> StoreFuture<'_, Vec<Scheduled>> {
        Box::pin(async move {
            let lease_ms = u64::try_from(lease.as_millis()).unwrap_or(u64::MAX);
            let mut con = self.connection.clone();
            let claimed: Vec<String> = self
                .run(
                    CLAIM
                        .key(self.timers_key())
                        .key(self.timer_data_key())
                        .arg(now_ms)
                        .arg(lease_ms)
                        .arg(limit)
                        .invoke_async(&mut con),
                )
                .await?;
            // A timer a newer version wrote, which this one cannot read, stays claimed by no
            // one that can play it: it is left for its lease and logged, never played wrongly.
            Ok((claimed.iter())
                .filter_map(|json| {
                    serde_json::from_str(json)
                        .inspect_err(
                            |e| tracing::warn!(error = %e, "a stored timer does not parse; left"),
                        )
                        .ok()
                })
                .collect())
        })
    }

    fn advance<'a>(&'a self, key: &'a str, next: Option<Scheduled>) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut invocation = ADVANCE.prepare_invoke();
            invocation
                .key(self.timers_key())
                .key(self.timer_data_key())
                .arg(key);
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

    fn next_due(&self) -> StoreFuture<'_, Option<u64>> {
        Box::pin(async move {
            let mut con = self.connection.clone();
            let first: Vec<(String, f64)> = self
                .run(
                    redis::cmd("ZRANGE")
                        .arg(self.timers_key())
                        .arg(0)
                        .arg(0)
                        .arg("WITHSCORES")
                        .query_async(&mut con),
                )
                .await?;
            // Scores are whole milliseconds, well inside f64's exact integers.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Ok(first.first().map(|(_, at)| *at as u64))
        })
    }
}
