//! The Redis store's outbox: a stream, `outbox` (under `store.key_prefix`), written by the same
//! Lua script as the change it records, so no committed change is ever without its events.
//!
//! Entries: `k` the kind — `s` a session (`v` its version, `j` its JSON), `r` a registration
//! ended (`i d n o x e`, its fields), `e` a subscription ended (`j` its JSON).
//!
//! Every replica reads the stream through one consumer group, `dispatch`, as a consumer of its
//! own (a UUID per process): each entry goes to one replica. A replica keeps the entries it is
//! working on claimed (every third of `events.claim_idle_ms`, from a task of its own, and only
//! those still pending for it: [`KEEP`]); once the events of an entry are finished it
//! acknowledges and deletes it. An entry left idle for `events.claim_idle_ms` — its replica
//! died, or gave it up — is taken over by whichever replica looks next (`XAUTOCLAIM`, every
//! quarter of it, at most every 5 s), and its events are made again with the same ids. The
//! stream and the group are persisted with the rest of Redis, so a restart with persistence
//! loses none. An entry this version cannot decode (a newer version's, during an upgrade) is
//! left pending for a replica that can.

use std::collections::HashSet;
use std::sync::{LazyLock, Mutex, PoisonError};
use std::time::{Duration, Instant};

use redis::Script;
use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadReply};

use super::RedisStore;
use crate::domain::Subscription;
use crate::store::outbox::{Change, Outbox, Recorded};
use crate::store::{StoreError, StoreFuture, millis};

/// The consumer group every replica reads the outbox through.
const GROUP: &str = "dispatch";

/// How long one read waits for a new entry.
const BLOCK: Duration = Duration::from_secs(1);

/// Claims again (resetting their idle time) the entries of ARGV[3..] still pending for this
/// consumer; returns those that are not (taken over by another replica, or gone).
/// KEYS: 1 the stream; ARGV: 1 the group, 2 this consumer.
static KEEP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local lost = {}
        for i = 3, #ARGV do
            local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
            if p[1] and p[1][2] == ARGV[2] then
                redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
            else
                table.insert(lost, ARGV[i])
            end
        end
        return lost
        ",
    )
});

/// What this process is working on, and when it last looked after it.
#[derive(Debug)]
pub(super) struct Reading {
    /// This process's consumer name in the group.
    consumer: String,
    /// `events.claim_idle_ms`.
    claim_idle: Duration,
    state: Mutex<ReadState>,
}

#[derive(Debug)]
struct ReadState {
    group_made: bool,
    /// Entries handed out and not yet done or released.
    working: HashSet<String>,
    kept_at: Instant,
    looked_at: Instant,
    /// Where the next `XAUTOCLAIM` starts.
    cursor: String,
}

impl Reading {
    pub(super) fn new(claim_idle: Duration) -> Self {
        Self {
            consumer: uuid::Uuid::new_v4().to_string(),
            claim_idle,
            state: Mutex::new(ReadState {
                group_made: false,
                working: HashSet::new(),
                kept_at: Instant::now(),
                looked_at: Instant::now(),
                cursor: "0-0".into(),
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ReadState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How often this process looks for entries left idle by others.
    fn look_every(&self) -> Duration {
        (self.claim_idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(5))
    }
}

impl RedisStore {
    pub(super) fn outbox_key(&self) -> String {
        format!("{}outbox", self.prefix)
    }

    /// Makes the group (reading from the stream's start), once per process and again after
    /// Redis lost it.
    async fn make_group(&self) -> Result<(), StoreError> {
        if self.reading.state().group_made {
            return Ok(());
        }
        let mut con = self.connection.clone();
        let made: Result<String, _> = self
            .run(
                redis::cmd("XGROUP")
                    .arg("CREATE")
                    .arg(self.outbox_key())
                    .arg(GROUP)
                    .arg("0")
                    .arg("MKSTREAM")
                    .query_async(&mut con),
            )
            .await;
        match made {
            Ok(_) => {}
            Err(StoreError::Unavailable(e)) if e.contains("BUSYGROUP") => {}
            Err(e) => return Err(e),
        }
        self.reading.state().group_made = true;
        Ok(())
    }

    /// Entries left idle for `claim_idle` (by a replica that died or gave them up), when it is
    /// time to look.
    async fn take_over(&self, max: usize) -> Result<Vec<StreamId>, StoreError> {
        let cursor = {
            let mut state = self.reading.state();
            if state.looked_at.elapsed() < self.reading.look_every() {
                return Ok(Vec::new());
            }
            state.looked_at = Instant::now();
            state.cursor.clone()
        };
        let mut con = self.connection.clone();
        let reply: StreamAutoClaimReply = self
            .run(
                redis::cmd("XAUTOCLAIM")
                    .arg(self.outbox_key())
                    .arg(GROUP)
                    .arg(&self.reading.consumer)
                    .arg(millis(self.reading.claim_idle))
                    .arg(cursor)
                    .arg("COUNT")
                    .arg(max)
                    .query_async(&mut con),
            )
            .await?;
        let mut state = self.reading.state();
        state.cursor = reply.next_stream_id;
        // Entries this process is still working on (claimed back to it while a keep failed)
        // are not made into events twice.
        let claimed: Vec<StreamId> = (reply.claimed.into_iter())
            .filter(|entry| !state.working.contains(&entry.id))
            .collect();
        if !claimed.is_empty() {
            tracing::info!(
                changes = claimed.len(),
                "recorded changes taken over from a replica that left them"
            );
        }
        Ok(claimed)
    }

    /// Claims again the entries this process is working on and still holds, so no other
    /// replica takes them over while their events are being delivered; one another replica
    /// took meanwhile is left to it (and may be sent twice: at least once, same ids).
    async fn keep_working(&self) -> Result<(), StoreError> {
        let working: Vec<String> = {
            let mut state = self.reading.state();
            if state.kept_at.elapsed() < self.reading.claim_idle / 3 {
                return Ok(());
            }
            state.kept_at = Instant::now();
            state.working.iter().cloned().collect()
        };
        let mut con = self.connection.clone();
        for ids in working.chunks(256) {
            let mut keep = KEEP.prepare_invoke();
            keep.key(self.outbox_key())
                .arg(GROUP)
                .arg(&self.reading.consumer)
                .arg(ids);
            let mut lost: Vec<String> = self.run(keep.invoke_async(&mut con)).await?;
            // Those done meanwhile are not lost.
            lost.retain(|id| self.reading.state().working.contains(id));
            if !lost.is_empty() {
                tracing::warn!(
                    changes = lost.len(),
                    "recorded changes this replica was still working on were taken over by another"
                );
                self.release(&lost);
            }
        }
        Ok(())
    }

    /// New entries, waiting up to [`BLOCK`] for one (on a connection of its own: a blocked
    /// read holds its connection).
    async fn read_new(&self, max: usize) -> Result<Vec<StreamId>, StoreError> {
        let mut con = self.reader.clone();
        let mut command = redis::cmd("XREADGROUP");
        command
            .arg("GROUP")
            .arg(GROUP)
            .arg(&self.reading.consumer)
            .arg("COUNT")
            .arg(max)
            .arg("BLOCK")
            .arg(millis(BLOCK))
            .arg("STREAMS")
            .arg(self.outbox_key())
            .arg(">");
        let read = command.query_async::<Option<StreamReadReply>>(&mut con);
        let reply = match tokio::time::timeout(BLOCK + self.timeout * 2, read).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(e)) => {
                if e.code() == Some("NOGROUP") {
                    self.reading.state().group_made = false;
                }
                return Err(StoreError::Unavailable(e.to_string()));
            }
            Err(_) => {
                return Err(StoreError::Unavailable(
                    "Redis did not answer in time".into(),
                ));
            }
        };
        Ok((reply.map(|r| r.keys).unwrap_or_default().into_iter())
            .flat_map(|key| key.ids)
            .collect())
    }
}

/// The change an entry records; `None` when this version cannot read it (the reason is not
/// kept: a decoding error may quote the JSON, SDP and all).
fn decode(entry: &StreamId) -> Option<Change> {
    let text = |field: &str| -> Option<String> { entry.get(field) };
    match text("k")?.as_str() {
        "s" => Some(Change::Session {
            version: text("v")?.parse().ok()?,
            session: std::sync::Arc::new(serde_json::from_str(&text("j")?).ok()?),
        }),
        "r" => {
            let fields = ["i", "d", "n", "o", "x", "p", "e"].map(|f| text(f).unwrap_or_default());
            let registration = super::registrations::registrations(&fields).ok()?.pop()?;
            Some(Change::RegistrationEnded(Box::new(registration)))
        }
        "e" => {
            let subscription: Subscription = serde_json::from_str(&text("j")?).ok()?;
            Some(Change::SubscriptionEnded(Box::new(subscription)))
        }
        _ => None,
    }
}

/// When an entry was recorded: the milliseconds of its id.
fn recorded_at(id: &str) -> u64 {
    (id.split('-').next())
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(crate::store::now_ms)
}

impl Outbox for RedisStore {
    fn next(&self, max: usize) -> StoreFuture<'_, Vec<Recorded>> {
        Box::pin(async move {
            self.make_group().await?;
            let mut entries = self.take_over(max).await?;
            if entries.is_empty() {
                entries = self.read_new(max).await?;
            }
            let mut recorded = Vec::with_capacity(entries.len());
            for entry in entries {
                match decode(&entry) {
                    Some(change) => recorded.push(Recorded {
                        at_ms: recorded_at(&entry.id),
                        id: entry.id,
                        change,
                    }),
                    // Left pending: taken over after claim_idle by a replica that can read it.
                    None => tracing::warn!(
                        change = entry.id.as_str(),
                        "a recorded change this version cannot read (a newer version's?) is left to another replica"
                    ),
                }
            }
            let mut state = self.reading.state();
            state.working.extend(recorded.iter().map(|r| r.id.clone()));
            Ok(recorded)
        })
    }

    fn done(&self, ids: Vec<String>) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let mut con = self.connection.clone();
            let key = self.outbox_key();
            let _: (u64, u64) = self
                .run(
                    redis::pipe()
                        .cmd("XACK")
                        .arg(&key)
                        .arg(GROUP)
                        .arg(&ids)
                        .cmd("XDEL")
                        .arg(&key)
                        .arg(&ids)
                        .query_async(&mut con),
                )
                .await?;
            let mut state = self.reading.state();
            for id in &ids {
                state.working.remove(id);
            }
            Ok(())
        })
    }

    fn release(&self, ids: &[String]) {
        let mut state = self.reading.state();
        for id in ids {
            state.working.remove(id);
        }
    }

    fn keep(&self) -> StoreFuture<'_, ()> {
        Box::pin(self.keep_working())
    }
}
