//! Protection from overload: a bound on API requests in flight (the excess is shed at once with
//! 503, not queued), and an optional per-consumer rate limit (429 with `Retry-After`).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use tokio::sync::{Semaphore, SemaphorePermit};

use super::error::{ApiError, Code};
use crate::config::ServerConfig;

/// Most consumers remembered by the rate limiter; beyond it, idle (full) buckets are forgotten.
const MAX_TRACKED_CONSUMERS: usize = 100_000;

pub struct Limits {
    in_flight: Semaphore,
    rate: Option<RateLimiter>,
}

impl Limits {
    /// Admits one API request, or sheds it at once (503) when `server.max_concurrent_requests`
    /// are already in flight. The permit is held until the request is answered.
    pub fn admit(&self) -> Result<SemaphorePermit<'_>, ApiError> {
        self.in_flight.try_acquire().map_err(|_| {
            tracing::warn!("request shed: the concurrency limit is reached");
            ApiError::new(
                Code::Unavailable,
                "Service Unavailable: the service is at its limit of concurrent requests; retry shortly.",
            )
        })
    }

    pub fn new(server: &ServerConfig) -> Self {
        let rate = (server.rate_limit_per_second > 0).then(|| RateLimiter {
            per_second: f64::from(server.rate_limit_per_second),
            burst: f64::from(if server.rate_limit_burst == 0 {
                server.rate_limit_per_second
            } else {
                server.rate_limit_burst
            }),
            buckets: Mutex::default(),
        });
        Self {
            in_flight: Semaphore::new(server.max_concurrent_requests),
            rate,
        }
    }

    /// Takes one request from `consumer`'s budget, or says how many seconds until one is free.
    pub fn check_rate(&self, consumer: &str) -> Result<(), ApiError> {
        match &self.rate {
            None => Ok(()),
            Some(limiter) => limiter
                .take(consumer, Instant::now())
                .map_err(|retry_after| {
                    ApiError::new(
                        Code::TooManyRequests,
                        format!(
                            "Rate limit reached: {} requests per second per API consumer.",
                            limiter.per_second
                        ),
                    )
                    .with_retry_after(retry_after)
                }),
        }
    }
}

/// A token bucket per consumer.
struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    fn take(&self, consumer: &str, now: Instant) -> Result<(), u64> {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= MAX_TRACKED_CONSUMERS && !buckets.contains_key(consumer) {
            let (rate, burst) = (self.per_second, self.burst);
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * rate < burst
            });
        }
        let (tokens, at) = buckets
            .entry(consumer.to_owned())
            .or_insert((self.burst, now));
        *tokens =
            (*tokens + now.duration_since(*at).as_secs_f64() * self.per_second).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / self.per_second).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limiter(per_second: f64, burst: f64) -> RateLimiter {
        RateLimiter {
            per_second,
            burst,
            buckets: Mutex::default(),
        }
    }

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let limiter = limiter(2.0, 3.0);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.take("a", t0), Ok(()));
        }
        assert_eq!(limiter.take("a", t0), Err(1), "empty: retry after a second");
        // Another consumer has its own bucket.
        assert_eq!(limiter.take("b", t0), Ok(()));
        // Half a second refills one request at 2/s.
        assert_eq!(limiter.take("a", t0 + Duration::from_millis(500)), Ok(()));
        assert_eq!(limiter.take("a", t0 + Duration::from_millis(500)), Err(1));
        // Idle for long, the bucket is full again, never above the burst.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(limiter.take("a", later), Ok(()));
        }
        assert_eq!(limiter.take("a", later), Err(1));
    }

    #[test]
    fn retry_after_is_the_whole_seconds_until_a_request_is_free() {
        let limiter = limiter(0.25, 1.0);
        let t0 = Instant::now();
        assert_eq!(limiter.take("a", t0), Ok(()));
        assert_eq!(limiter.take("a", t0), Err(4));
        assert_eq!(limiter.take("a", t0 + Duration::from_secs(3)), Err(1));
        assert_eq!(limiter.take("a", t0 + Duration::from_secs(4)), Ok(()));
    }
}
