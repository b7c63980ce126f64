//! The shared store: sessions in one Redis, so several replicas behave exactly like one process.
//!
//! Keys (all under `store.key_prefix`):
//! - `session:<id>`: a hash `{v: version, s: the session as JSON, st: its status, o: its owner
//!   ("" for none)}`, one per session;
//! - `live`: a set of the ids of sessions that have not ended;
//! - `ended`: a sorted set of ended ids, scored by when their key expires (ms since the epoch);
//! - `touched`: a sorted set of the live ids, scored by when each was last written (ms);
//! - `counts`: a hash of live sessions per status, and `owners`: of live sessions per owner, kept
//!   by the same scripts that write the sessions, so a metrics scrape and the per-owner quota read
//!   one small hash, never the sessions. A session written by an older version, which kept no
//!   counts, lacks its `st` or `o` field; [`RedisStore::reconcile`] counts those at start.
//!
//! Every write is one Lua script, so it is atomic across replicas: compare-and-swap checks the
//! version and writes in one step, exactly like the memory store's lock. Ended sessions expire
//! through Redis TTL. Commands are bounded by `store.timeout_ms`; an unreachable Redis is
//! [`StoreError::Unavailable`] (503), and the connection manager reconnects once Redis is back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, Script, ScriptInvocation};

use super::timers::Scheduled;
use super::{Limits, SessionStore, StoreError, StoreFuture, Versioned};

mod feed;
mod outbox;
mod registrations;
mod scripts;
mod subscriptions;
mod timers;
use crate::domain::{Session, SessionId, SessionStatus};
use scripts::{COMPARE_AND_SWAP, IDLE, INSERT, RECONCILE, REMOVE};

/// Sessions in Redis, shared by every replica that points at the same Redis and key prefix.
pub struct RedisStore {
    /// For connections of their own (the console feed's subscription).
    client: redis::Client,
    connection: ConnectionManager,
    /// The outbox's blocking reads, on a connection of their own.
    reader: ConnectionManager,
    reading: outbox::Reading,
    prefix: String,
    limits: Limits,
    timeout: Duration,
    /// A [`RedisStore::reconcile`] pass has completed in this process.
    reconciled: AtomicBool,
}

/// Live ids per `SSCAN` step and [`RECONCILE`] batch: one batch blocks Redis for about as long
/// as one write of a large session.
const RECONCILE_BATCH: usize = 256;

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password: it is not printed.
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store on `url` that connects lazily: it is created even while Redis is unreachable, and
    /// every operation until Redis answers is [`StoreError::Unavailable`].
    pub fn new(
        url: &str,
        prefix: &str,
        limits: Limits,
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        let client = redis::Client::open(url)
            .map_err(|_| StoreError::Unavailable("the Redis URL is not valid".into()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            // Reconnect quickly in the background; requests meanwhile fail fast with 503.
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let connection = ConnectionManager::new_lazy_with_config(client.clone(), config.clone())
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let reader = ConnectionManager::new_lazy_with_config(
            client.clone(),
            config.set_response_timeout(Some(timeout + Duration::from_secs(2))),
        )
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(Self {
            client,
            connection,
            reader,
            reading: outbox::Reading::new(Duration::from_secs(30)),
            prefix: prefix.to_owned(),
            limits,
            timeout,
            reconciled: AtomicBool::new(false),
        })
    }

    /// The store with `claim_idle` (`events.claim_idle_ms`): how long a recorded change may be
    /// left idle by the replica that took it before another takes it over.
    pub fn with_claim_idle(mut self, claim_idle: Duration) -> Self {
        self.reading = outbox::Reading::new(claim_idle);
        self
    }

    fn session_key(&self, id: &str) -> String {
        format!("{}session:{id}", self.prefix)
    }

    fn live_key(&self) -> String {
        format!("{}live", self.prefix)
    }

    fn ended_key(&self) -> String {
        format!("{}ended", self.prefix)
    }

    /// `script` with the seven keys of the session scripts, for the session `id`.
    fn session_keys<'s>(&self, script: &'s Script, id: &str) -> ScriptInvocation<'s> {
        let mut invocation = script.prepare_invoke();
        invocation
            .key(self.session_key(id))
            .key(self.live_key())
            .key(self.ended_key())
            .key(self.counts_key())
            .key(self.owners_key())
            .key(self.touched_key())
            .key(self.outbox_key());
        invocation
    }

    /// For a session created with a registration, the set of the registration's sessions and the
    /// registration's own hash; two empty strings for any other.
    fn registration_keys(&self, session: &Session) -> [String; 4] {
        let keys = |registration: Option<&str>| match registration {
            Some(r) => [self.registered_key(r), format!("{}reg:{r}", self.prefix)],
            None => [String::new(), String::new()],
        };
        let [caller, caller_hash] = keys(session.registration.as_deref());
        let [receiver, receiver_hash] = keys(session.receiver_registration.as_deref());
        [caller, caller_hash, receiver, receiver_hash]
    }

    /// The set of the sessions created with `registration` (see [`SessionStore::registered`]).
    fn registered_key(&self, registration: &str) -> String {
        format!("{}reg-sessions:{registration}", self.prefix)
    }

    fn counts_key(&self) -> String {
        format!("{}counts", self.prefix)
    }

    fn owners_key(&self) -> String {
        format!("{}owners", self.prefix)
    }

    fn touched_key(&self) -> String {
        format!("{}touched", self.prefix)
    }

    /// The sessions of `ids` that still exist, in that order (an id whose key has expired is
    /// simply gone).
    async fn read_all(&self, ids: &[String]) -> Result<Vec<Versioned>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.cmd("HMGET")
                .arg(self.session_key(id))
                .arg("v")
                .arg("s");
        }
        let mut con = self.connection.clone();
        let found: Vec<(Option<u64>, Option<String>)> =
            self.run(pipe.query_async(&mut con)).await?;
        found
            .into_iter()
            .filter_map(|(version, json)| Some(decode(version?, &json?)))
            .collect()
    }

    /// Counts the live sessions an older version left uncounted (see [`RECONCILE`]): one pass over
    /// `live` in batches of [`RECONCILE_BATCH`], each batch one atomic step, so Redis is never
    /// blocked for the whole store and replicas may run it at once. Run at start-up, and by the
    /// first metrics scrape if that failed.
    pub async fn reconcile(&self) -> Result<(), StoreError> {
        let mut con = self.connection.clone();
        let mut cursor: u64 = 0;
        let mut undecodable: u64 = 0;
        loop {
            let (next, ids): (u64, Vec<String>) = self
                .run(
                    redis::cmd("SSCAN")
                        .arg(self.live_key())
                        .arg(cursor)
                        .arg("COUNT")
                        .arg(RECONCILE_BATCH)
                        .query_async(&mut con),
                )
                .await?;
            if !ids.is_empty() {
                let mut batch = RECONCILE.prepare_invoke();
                batch
                    .key(self.live_key())
                    .key(self.counts_key())
                    .key(self.owners_key())
                    .key(self.touched_key())
                    .arg(self.session_key(""))
                    .arg(&ids);
                let skipped: u64 = self.run(batch.invoke_async(&mut con)).await?;
                undecodable += skipped;
            }
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        if undecodable > 0 {
            tracing::warn!(
                sessions = undecodable,
                "live sessions whose JSON does not decode are left uncounted"
            );
        }
        self.reconciled.store(true, Ordering::Release);
        Ok(())
    }

    /// Runs one Redis exchange, bounded by the timeout even if the connection hangs.
    async fn run<T>(
        &self,
        exchange: impl Future<Output = Result<T, RedisError>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.timeout * 2, exchange).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(StoreError::Unavailable(err.to_string())),
            Err(_) => Err(StoreError::Unavailable(
                "Redis did not answer in time".into(),
            )),
        }
    }
}

fn decode(version: u64, json: &str) -> Result<Versioned, StoreError> {
    let session = serde_json::from_str(json)
        .map_err(|e| StoreError::Unavailable(format!("a stored session does not parse: {e}")))?;
    Ok(Versioned {
        session: Arc::new(session),
        version,
    })
}

fn encode(session: &Session) -> Result<String, StoreError> {
    serde_json::to_string(session)
        .map_err(|e| StoreError::Unavailable(format!("a session does not serialise: {e}")))
}

impl SessionStore for RedisStore {
    fn get<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Option<Versioned>> {
        Box::pin(async move {
            let mut con = self.connection.clone();
            let (version, json): (Option<u64>, Option<String>) = self
                .run(
                    redis::cmd("HMGET")
                        .arg(self.session_key(id.as_str()))
                        .arg("v")
                        .arg("s")
                        .query_async(&mut con),
                )
                .await?;
            match (version, json) {
                (Some(version), Some(json)) => decode(version, &json).map(Some),
                _ => Ok(None),
            }
        })
    }

    fn insert_with(&self, session: Session, timers: Vec<Scheduled>) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let json = encode(&session)?;
            let timers = self.timer_args(&timers)?;
            let mut con = self.connection.clone();
            let outcome: i64 = self
                .run(
                    self.session_keys(&INSERT, session.id.as_str())
                        .arg(session.id.as_str())
                        .arg(json)
                        .arg(self.limits.capacity)
                        .arg(self.session_key(""))
                        .arg(session.owner.as_deref().unwrap_or(""))
                        .arg(self.limits.per_owner)
                        .arg(session.status.as_str())
                        .arg(&self.registration_keys(&session)[..])
                        .arg(&timers[..])
                        .invoke_async(&mut con),
                )
                .await?;
            match outcome {
                1 => Ok(1),
                -1 => Err(StoreError::AlreadyExists),
                -3 => Err(StoreError::OwnerFull(self.limits.per_owner)),
                _ => Err(StoreError::Full(self.limits.capacity)),
            }
        })
    }

    fn compare_and_swap(&self, expected: u64, session: Arc<Session>) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let json = encode(&session)?;
            let ttl_ms = super::millis(self.limits.ended_ttl);
            let mut con = self.connection.clone();
            let (outcome, version): (i64, u64) = self
                .run(
                    self.session_keys(&COMPARE_AND_SWAP, session.id.as_str())
                        .arg(session.id.as_str())
                        .arg(expected)
                        .arg(json)
                        .arg(if session.is_over() { "1" } else { "0" })
                        .arg(ttl_ms)
                        .arg(session.status.as_str())
                        .arg(&self.registration_keys(&session)[0])
                        .arg(&self.timer_keys()[..])
                        .arg(&self.registration_keys(&session)[2])
                        .invoke_async(&mut con),
                )
                .await?;
            match outcome {
                1 => Ok(version),
                2 => Err(StoreError::VersionConflict { current: version }),
                _ => Err(StoreError::NotFound),
            }
        })
    }

    fn remove<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Versioned> {
        Box::pin(async move {
            let mut con = self.connection.clone();
            let found: Vec<String> = self
                .run(
                    self.session_keys(&REMOVE, id.as_str())
                        .arg(id.as_str())
                        .arg(&self.timer_keys()[..])
                        .invoke_async(&mut con),
                )
                .await?;
            let removed = match found.as_slice() {
                [version, json] => decode(version.parse().unwrap_or(0), json)?,
                _ => return Err(StoreError::NotFound),
            };
            for registration in removed.session.registrations() {
                let _: i64 = self
                    .run(
                        redis::cmd("SREM")
                            .arg(self.registered_key(registration))
                            .arg(id.as_str())
                            .query_async(&mut con),
                    )
                    .await?;
            }
            Ok(removed)
        })
    }

    /// One round trip for the counts and ids (`SRANDMEMBER` of `live`: distinct, up to `limit`;
    /// of `ended`, those not yet expired, the latest expiry — the most recently over — first)
    /// and one for the sessions.
    fn list(&self, limit: usize) -> StoreFuture<'_, (Vec<Versioned>, usize)> {
        Box::pin(async move {
            let count = i64::try_from(limit).unwrap_or(i64::MAX);
            let kept = format!("({}", crate::store::now_ms());
            let mut con = self.connection.clone();
            let (live_total, ended_total, live, ended): (usize, usize, Vec<String>, Vec<String>) =
                self.run(
                    redis::pipe()
                        .cmd("SCARD")
                        .arg(self.live_key())
                        .cmd("ZCOUNT")
                        .arg(self.ended_key())
                        .arg(&kept)
                        .arg("+inf")
                        .cmd("SRANDMEMBER")
                        .arg(self.live_key())
                        .arg(count)
                        .cmd("ZREVRANGEBYSCORE")
                        .arg(self.ended_key())
                        .arg("+inf")
                        .arg(&kept)
                        .arg("LIMIT")
                        .arg(0)
                        .arg(count)
                        .query_async(&mut con),
                )
                .await?;
            let room = limit.saturating_sub(live.len());
            let ids: Vec<String> = live
                .into_iter()
                .chain(ended.into_iter().take(room))
                .collect();
            Ok((self.read_all(&ids).await?, live_total + ended_total))
        })
    }

    /// One `HGETALL` of the counts the write scripts keep (after a [`Self::reconcile`] pass, if
    /// none has completed in this process yet).
    fn status_counts(&self) -> StoreFuture<'_, Vec<(SessionStatus, u64)>> {
        Box::pin(async move {
            if !self.reconciled.load(Ordering::Acquire) {
                self.reconcile().await?;
            }
            let mut con = self.connection.clone();
            let counts: Vec<(String, i64)> = self
                .run(
                    redis::cmd("HGETALL")
                        .arg(self.counts_key())
                        .query_async(&mut con),
                )
                .await?;
            let mut known: Vec<(SessionStatus, u64)> = counts
                .into_iter()
                .filter_map(|(status, n)| {
                    let status = SessionStatus::try_from(status).ok()?;
                    Some((status, u64::try_from(n).ok().filter(|n| *n > 0)?))
                })
                .collect();
            known.sort_by_key(|(status, _)| SessionStatus::ALL.iter().position(|s| s == status));
            Ok(known)
        })
    }

    fn idle(&self, untouched_for: Duration, limit: usize) -> StoreFuture<'_, Vec<Versioned>> {
        Box::pin(async move {
            let mut con = self.connection.clone();
            let found: Vec<String> = self
                .run(
                    IDLE.key(self.touched_key())
                        .key(self.live_key())
                        .arg(super::millis(untouched_for))
                        .arg(limit)
                        .arg(self.session_key(""))
                        .invoke_async(&mut con),
                )
                .await?;
            // A session that does not decode (written by another version) cannot be ended
            // here; it leaves `touched`, so it does not hold a place in every later sweep.
            let mut idle = Vec::new();
            let mut undecodable = Vec::new();
            for found in found.chunks_exact(3) {
                match decode(found[1].parse().unwrap_or(0), &found[2]) {
                    Ok(session) => idle.push(session),
                    Err(_) => undecodable.push(&found[0]),
                }
            }
            if !undecodable.is_empty() {
                tracing::warn!(
                    sessions = undecodable.len(),
                    "idle sessions whose JSON does not decode are left as they are"
                );
                let _: i64 = self
                    .run(
                        redis::cmd("ZREM")
                            .arg(self.touched_key())
                            .arg(&undecodable)
                            .query_async(&mut con),
                    )
                    .await?;
            }
            Ok(idle)
        })
    }

    fn registered<'a>(&'a self, registration: &'a str) -> StoreFuture<'a, Vec<Versioned>> {
        Box::pin(async move {
            let key = self.registered_key(registration);
            let mut con = self.connection.clone();
            let ids: Vec<String> = self
                .run(redis::cmd("SMEMBERS").arg(&key).query_async(&mut con))
                .await?;
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let mut pipe = redis::pipe();
            for id in &ids {
                pipe.cmd("HMGET")
                    .arg(self.session_key(id))
                    .arg("v")
                    .arg("s");
            }
            let read: Vec<(Option<u64>, Option<String>)> =
                self.run(pipe.query_async(&mut con)).await?;
            let mut live = Vec::new();
            let mut gone = Vec::new();
            for (id, found) in ids.iter().zip(read) {
                // An undecodable session (another version's) is left as it is, not ended.
                match found {
                    (Some(version), Some(json)) => match decode(version, &json) {
                        Ok(found) if !found.session.is_over() => live.push(found),
                        Ok(_) => gone.push(id),
                        Err(e) => {
                            tracing::warn!(session = id.as_str(), error = %e, "registered session not read")
                        }
                    },
                    _ => gone.push(id),
                }
            }
            if !gone.is_empty() {
                let _: i64 = self
                    .run(redis::cmd("SREM").arg(&key).arg(gone).query_async(&mut con))
                    .await?;
            }
            Ok(live)
        })
    }

    fn ping(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let mut con = self.connection.clone();
            let _: String = self.run(redis::cmd("PING").query_async(&mut con)).await?;
            Ok(())
        })
    }
}
