//! Registrations in Redis, shared by every replica on the same Redis and key prefix.
//!
//! Keys (under `store.key_prefix`):
//! - `reg:<id>`: a hash `{d: deviceId, n: phone number, o: owner, x: expiry (ms), p: "1" when
//!   proven, e: end reason}`, `p` absent for an unproven one, `e` present once it has ended; an ended one expires after the store's `ended_ttl`;
//! - `reg-due`: a sorted set of the registrations not yet ended, scored by when the expiry sweep
//!   looks at them next (their expiry, or the end of a claim's lease);
//! - `reg-number:<phone>` and `reg-device:<deviceId>:<owner>`: sets of the ids not yet ended;
//! - `reg-sessions:<id>`: the sessions created with it (the session store's), dropped when it ends;
//! - `reg-owners`: a hash of how many registrations not yet ended each owner holds.
//!
//! Each operation is one Lua script, atomic across replicas. Times are the callers' (`now_ms`).

use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;

use super::RedisStore;
use crate::domain::{EndReason, Registration};
use crate::store::{RegistrationStore, StoreError, StoreFuture, millis};

/// Reads a registration hash's fields as `{id, d, n, o, x, p, e}` (`p` "1" when proven, `e` ""
/// while not ended); the
/// scripts below append it to their answer through `add`. `finish` ends one and records the end
/// in the outbox (`k` `r`, its fields: see `outbox.rs`).
const FIELDS: &str = r"
local function add(out, p, id)
    local f = redis.call('HMGET', p .. 'reg:' .. id, 'd', 'n', 'o', 'x', 'e', 'p')
    if not f[1] then return false end
    table.insert(out, id)
    for i = 1, 4 do table.insert(out, f[i]) end
    table.insert(out, f[6] or '')
    table.insert(out, f[5] or '')
    return true
end
local function active(f, now)
    return f[1] and not f[5] and tonumber(f[4]) > now
end
local function finish(p, id, due, reason, keep)
    local key = p .. 'reg:' .. id
    local f = redis.call('HMGET', key, 'd', 'n', 'o', 'x')
    redis.call('XADD', p .. 'outbox', '*', 'k', 'r', 'i', id, 'd', f[1], 'n', f[2], 'o', f[3],
        'x', f[4], 'e', reason)
    redis.call('HSET', key, 'e', reason)
    if keep > 0 then redis.call('PEXPIRE', key, keep) else redis.call('DEL', key) end
    redis.call('ZREM', due, id)
    redis.call('SREM', p .. 'reg-number:' .. f[2], id)
    redis.call('SREM', p .. 'reg-device:' .. f[1] .. ':' .. f[3], id)
    redis.call('DEL', p .. 'reg-sessions:' .. id)
    if redis.call('HINCRBY', p .. 'reg-owners', f[3], -1) <= 0 then
        redis.call('HDEL', p .. 'reg-owners', f[3])
    end
end
";

fn script(body: &str) -> Script {
    Script::new(&format!("{FIELDS}{body}"))
}

/// ARGV: 1 prefix, 2 id, 3 device, 4 number, 5 owner, 6 expiry, 7 max per number, 8 now,
/// 9 capacity, 10 max per owner, 11 proven ("1" or "0"). Returns 1, -1 (exists), -2 (number full), -3 (store full), -4
/// (owner full).
static REGISTER: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        local p, now = ARGV[1], tonumber(ARGV[8])
        local numbers = p .. 'reg-number:' .. ARGV[4]
        local count = 0
        for _, other in ipairs(redis.call('SMEMBERS', numbers)) do
            local f = redis.call('HMGET', p .. 'reg:' .. other, 'd', 'n', 'o', 'x', 'e')
            if not f[1] then
                redis.call('SREM', numbers, other)
            elseif active(f, now) then
                if f[3] == ARGV[5] and f[1] == ARGV[3] then return -1 end
                count = count + 1
            end
        end
        if count >= tonumber(ARGV[7]) then return -2 end
        if tonumber(redis.call('HGET', p .. 'reg-owners', ARGV[5]) or '0') >= tonumber(ARGV[10]) then
            return -4
        end
        if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[9]) then return -3 end
        local key = p .. 'reg:' .. ARGV[2]
        if redis.call('EXISTS', key) == 1 then return -1 end
        redis.call('HSET', key, 'd', ARGV[3], 'n', ARGV[4], 'o', ARGV[5], 'x', ARGV[6])
        if ARGV[11] == '1' then redis.call('HSET', key, 'p', '1') end
        redis.call('ZADD', KEYS[1], ARGV[6], ARGV[2])
        redis.call('SADD', numbers, ARGV[2])
        redis.call('SADD', p .. 'reg-device:' .. ARGV[3] .. ':' .. ARGV[5], ARGV[2])
        redis.call('HINCRBY', p .. 'reg-owners', ARGV[5], 1)
        return 1
        ",
    )
});

/// ARGV: 1 prefix, 2 id, 3 new expiry, 4 now. Returns the registration, or {} if not active or
/// claimed by an expiry sweep (due at its lease's end rather than at its expiry: it is ending).
static REFRESH: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        local p, id = ARGV[1], ARGV[2]
        local f = redis.call('HMGET', p .. 'reg:' .. id, 'd', 'n', 'o', 'x', 'e')
        local out = {}
        if not active(f, tonumber(ARGV[4])) then return out end
        local due = redis.call('ZSCORE', KEYS[1], id)
        if not due or tonumber(due) ~= tonumber(f[4]) then return out end
        redis.call('HSET', p .. 'reg:' .. id, 'x', ARGV[3])
        redis.call('ZADD', KEYS[1], ARGV[3], id)
        add(out, p, id)
        return out
        ",
    )
});

/// ARGV: 1 prefix, 2 id, 3 now, 4 ms to keep the record, 5 the reason (`DELETED`,
/// `NETWORK_TERMINATED`). Ends an active registration; returns it, or {}.
static UNREGISTER: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        local p, id = ARGV[1], ARGV[2]
        local f = redis.call('HMGET', p .. 'reg:' .. id, 'd', 'n', 'o', 'x', 'e')
        local out = {}
        if not active(f, tonumber(ARGV[3])) then return out end
        add(out, p, id)
        out[#out] = ARGV[5]
        finish(p, id, KEYS[1], ARGV[5], tonumber(ARGV[4]))
        return out
        ",
    )
});

/// ARGV: 1 prefix, 2 now, 3 lease (ms), 4 limit. Leases up to `limit` due registrations.
static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        local p, now = ARGV[1], tonumber(ARGV[2])
        local out = {}
        for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[4]))) do
            if add(out, p, id) then
                redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), id)
            else
                redis.call('ZREM', KEYS[1], id)
            end
        end
        return out
        ",
    )
});

/// ARGV: 1 prefix, 2 id, 3 now, 4 ms to keep the record. Ends an expired registration; returns
/// it, or {} when ended already or refreshed in time (then due again at its expiry).
static FINISH: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        local p, id, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
        local f = redis.call('HMGET', p .. 'reg:' .. id, 'd', 'n', 'o', 'x', 'e')
        local out = {}
        if not f[1] or f[5] then return out end
        if tonumber(f[4]) > now then
            redis.call('ZADD', KEYS[1], f[4], id)
            return out
        end
        add(out, p, id)
        out[#out] = 'REGISTRATION_EXPIRED'
        finish(p, id, KEYS[1], 'REGISTRATION_EXPIRED', tonumber(ARGV[4]))
        return out
        ",
    )
});

/// Registrations from a script's flat answer (`id, d, n, o, x, p, e` each).
pub(super) fn registrations(fields: &[String]) -> Result<Vec<Registration>, StoreError> {
    fields
        .chunks_exact(7)
        .map(|f| {
            let ended = match f[6].as_str() {
                "" => None,
                "DELETED" => Some(EndReason::Deleted),
                "NETWORK_TERMINATED" => Some(EndReason::NetworkTerminated),
                _ => Some(EndReason::RegistrationExpired),
            };
            Ok(Registration {
                id: f[0].clone(),
                device_id: f[1].clone(),
                phone_number: f[2].clone(),
                owner: f[3].clone(),
                expires_at_ms: f[4].parse().map_err(|_| {
                    StoreError::Unavailable("a stored registration's expiry is not a number".into())
                })?,
                proven: f[5] == "1",
                ended,
            })
        })
        .collect()
}

impl RedisStore {
    fn due_key(&self) -> String {
        format!("{}reg-due", self.prefix)
    }

    /// Runs a registration script with `reg-due` and the prefix, then `args`.
    async fn registration_script(
        &self,
        script: &Script,
        args: &[String],
    ) -> Result<Vec<String>, StoreError> {
        let mut invocation = script.prepare_invoke();
        invocation.key(self.due_key()).arg(&self.prefix);
        for arg in args {
            invocation.arg(arg);
        }
        let mut con = self.connection.clone();
        self.run(invocation.invoke_async(&mut con)).await
    }

    /// The first registration of a script's answer, or [`StoreError::NotFound`].
    async fn one(&self, script: &Script, args: &[String]) -> Result<Registration, StoreError> {
        let found = self.registration_script(script, args).await?;
        registrations(&found)?
            .into_iter()
            .next()
            .ok_or(StoreError::NotFound)
    }

    /// The registrations of the set `key` that are active at `now_ms`, soonest expiry first.
    async fn active_sorted(&self, key: &str, now_ms: u64) -> Result<Vec<Registration>, StoreError> {
        let mut con = self.connection.clone();
        let ids: Vec<String> =
            (self.run(redis::cmd("SMEMBERS").arg(key).query_async(&mut con))).await?;
        let mut found = self.active_of(&ids, now_ms).await?;
        crate::store::registrations::soonest_first(&mut found);
        Ok(found)
    }

    /// The registrations of `ids` that are active at `now_ms`, in that order.
    async fn active_of(
        &self,
        ids: &[String],
        now_ms: u64,
    ) -> Result<Vec<Registration>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.cmd("HMGET")
                .arg(format!("{}reg:{id}", self.prefix))
                .arg(&["d", "n", "o", "x", "e", "p"]);
        }
        let mut con = self.connection.clone();
        let found: Vec<Vec<Option<String>>> = self.run(pipe.query_async(&mut con)).await?;
        let mut flat = Vec::new();
        for (id, fields) in ids.iter().zip(found) {
            if let [Some(d), Some(n), Some(o), Some(x), e, p] = &fields[..] {
                flat.extend([id, d, n, o, x].map(Clone::clone));
                flat.extend([p, e].map(|f| f.clone().unwrap_or_default()));
            }
        }
        Ok(registrations(&flat)?
            .into_iter()
            .filter(|r| r.is_active(now_ms))
            .collect())
    }
}

impl RegistrationStore for RedisStore {
    fn register(
        &self,
        registration: Registration,
        max_per_number: usize,
        now_ms: u64,
    ) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let args = [
                registration.id,
                registration.device_id,
                registration.phone_number,
                registration.owner,
                registration.expires_at_ms.to_string(),
                max_per_number.to_string(),
                now_ms.to_string(),
                self.limits.capacity.to_string(),
                self.limits.per_owner.to_string(),
                if registration.proven { "1" } else { "0" }.to_owned(),
            ];
            let mut invocation = REGISTER.prepare_invoke();
            invocation
                .key(self.due_key())
                .arg(&self.prefix)
                .arg(&args[..]);
            let mut con = self.connection.clone();
            let done: i64 = self.run(invocation.invoke_async(&mut con)).await?;
            match done {
                1 => Ok(()),
                -1 => Err(StoreError::AlreadyExists),
                -2 => Err(StoreError::NumberFull(max_per_number)),
                -4 => Err(StoreError::OwnerFull(self.limits.per_owner)),
                _ => Err(StoreError::Full(self.limits.capacity)),
            }
        })
    }

    fn registration<'a>(
        &'a self,
        id: &'a str,
        now_ms: u64,
    ) -> StoreFuture<'a, Option<Registration>> {
        Box::pin(async move {
            Ok(self
                .active_of(&[id.to_owned()], now_ms)
                .await?
                .into_iter()
                .next())
        })
    }

    fn device_registrations<'a>(
        &'a self,
        owner: &'a str,
        device_id: &'a str,
        now_ms: u64,
    ) -> StoreFuture<'a, Vec<Registration>> {
        Box::pin(async move {
            let key = format!("{}reg-device:{device_id}:{owner}", self.prefix);
            self.active_sorted(&key, now_ms).await
        })
    }

    fn active_registrations(
        &self,
        now_ms: u64,
        limit: usize,
    ) -> StoreFuture<'_, (Vec<Registration>, usize)> {
        Box::pin(async move {
            // Those due later than now: a registration due already has expired (or is being
            // ended), even if no sweep has taken it yet.
            let later = format!("({now_ms}");
            let count = i64::try_from(limit).unwrap_or(i64::MAX);
            let mut con = self.connection.clone();
            let (total, ids): (usize, Vec<String>) = (self.run(
                redis::pipe()
                    .cmd("ZCOUNT")
                    .arg(self.due_key())
                    .arg(&later)
                    .arg("+inf")
                    .cmd("ZRANGEBYSCORE")
                    .arg(self.due_key())
                    .arg(&later)
                    .arg("+inf")
                    .arg("LIMIT")
                    .arg(0)
                    .arg(count)
                    .query_async(&mut con),
            ))
            .await?;
            let mut found = self.active_of(&ids, now_ms).await?;
            crate::store::registrations::soonest_first(&mut found);
            Ok((found, total))
        })
    }

    fn number_registrations<'a>(
        &'a self,
        phone_number: &'a str,
        now_ms: u64,
    ) -> StoreFuture<'a, Vec<Registration>> {
        Box::pin(async move {
            let key = format!("{}reg-number:{phone_number}", self.prefix);
            self.active_sorted(&key, now_ms).await
        })
    }

    fn refresh<'a>(
        &'a self,
        id: &'a str,
        expires_at_ms: u64,
        now_ms: u64,
    ) -> StoreFuture<'a, Registration> {
        Box::pin(async move {
            let args = [id.to_owned(), expires_at_ms.to_string(), now_ms.to_string()];
            self.one(&REFRESH, &args).await
        })
    }

    fn end_registration<'a>(
        &'a self,
        id: &'a str,
        reason: EndReason,
        now_ms: u64,
    ) -> StoreFuture<'a, Registration> {
        Box::pin(async move {
            let keep = millis(self.limits.ended_ttl).to_string();
            let args = [
                id.to_owned(),
                now_ms.to_string(),
                keep,
                reason.as_str().to_owned(),
            ];
            self.one(&UNREGISTER, &args).await
        })
    }

    fn claim_expired(
        &self,
        now_ms: u64,
        lease: Duration,
        limit: usize,
    ) -> StoreFuture<'_, Vec<Registration>> {
        Box::pin(async move {
            let args = [
                now_ms.to_string(),
                millis(lease).to_string(),
                limit.to_string(),
            ];
            registrations(&self.registration_script(&CLAIM, &args).await?)
        })
    }

    fn finish_expired<'a>(
        &'a self,
        id: &'a str,
        now_ms: u64,
    ) -> StoreFuture<'a, Option<Registration>> {
        Box::pin(async move {
            let keep = millis(self.limits.ended_ttl).to_string();
            let args = [id.to_owned(), now_ms.to_string(), keep];
            match self.one(&FINISH, &args).await {
                Ok(ended) => Ok(Some(ended)),
                Err(StoreError::NotFound) => Ok(None),
                Err(err) => Err(err),
            }
        })
    }
}
