//! The Lua scripts of the Redis store: each is one atomic step across replicas. The session
//! scripts take the same seven keys (`RedisStore::session_keys`): 1 the session, 2 `live`, 3
//! `ended`, 4 `counts`, 5 `owners`, 6 `touched`, 7 `outbox` (the stream every change that makes
//! events is recorded in, with the change: see `outbox.rs`).

use std::sync::LazyLock;

use redis::Script;

/// `body` after `drop_timers(timers, data, id)`, which drops the session `id`'s timers (the keys
/// of `crate::store::timers::keys_of`) from the sorted set `timers` and the hash `data`.
fn with_drop_timers(body: &str) -> Script {
    Script::new(&format!(
        r"
        local function drop_timers(timers, data, id)
            local step, no_answer = id .. '/step', id .. '/no-answer'
            redis.call('ZREM', timers, step, no_answer)
            redis.call('HDEL', data, step, no_answer)
        end
        {body}"
    ))
}

/// Drops index entries of expired sessions; makes room by dropping the oldest ended session;
/// refuses an owner at its quota; then stores the new session at version 1 and counts it.
/// Adds the id to its registrations' sets (`ARGV[8]` for the caller's and `ARGV[10]` for an
/// on-net receiver's, when it has them) if that registration (`ARGV[9]`, `ARGV[11]`) has not
/// ended, so no set outlives its registration. Schedules its timers (`ARGV[14..]`, each key,
/// due time and JSON) in `ARGV[12]` and `ARGV[13]`. Records it in the
/// outbox.
/// Returns 1, or -1 (id taken), -2 (full) or -3 (the owner is at its quota).
pub(super) static INSERT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
        if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
        local owner = ARGV[5]
        if owner ~= '' and tonumber(redis.call('HGET', KEYS[5], owner) or '0') >= tonumber(ARGV[6]) then
            return -3
        end
        local capacity = tonumber(ARGV[3])
        while redis.call('SCARD', KEYS[2]) + redis.call('ZCARD', KEYS[3]) >= capacity do
            local oldest = redis.call('ZRANGE', KEYS[3], 0, 0)[1]
            if not oldest then return -2 end
            redis.call('DEL', ARGV[4] .. oldest)
            redis.call('ZREM', KEYS[3], oldest)
        end
        redis.call('HSET', KEYS[1], 'v', 1, 's', ARGV[2], 'st', ARGV[7], 'o', owner)
        redis.call('SADD', KEYS[2], ARGV[1])
        if owner ~= '' then redis.call('ZADD', KEYS[6], now, ARGV[1]) end
        redis.call('HINCRBY', KEYS[4], ARGV[7], 1)
        if owner ~= '' then redis.call('HINCRBY', KEYS[5], owner, 1) end
        for i = 8, 10, 2 do
            if ARGV[i] ~= '' and redis.call('HEXISTS', ARGV[i + 1], 'd') == 1
                and redis.call('HEXISTS', ARGV[i + 1], 'e') == 0 then
                redis.call('SADD', ARGV[i], ARGV[1])
            end
        end
        for i = 14, #ARGV, 3 do
            redis.call('ZADD', ARGV[12], ARGV[i + 1], ARGV[i])
            redis.call('HSET', ARGV[13], ARGV[i], ARGV[i + 2])
        end
        redis.call('XADD', KEYS[7], '*', 'k', 's', 'v', 1, 'j', ARGV[2])
        return 1
        ",
    )
});

/// Writes the session if it is still at the expected version and moves its count to its new
/// status. A session that is over with this write leaves `live`, `touched`, its status count and
/// its owner's count and its registrations' sets (`ARGV[7]`, and `ARGV[10]` for an on-net
/// receiver's, when it has them), and expires after
/// the TTL (at once for 0), and its timers go (from `ARGV[8]` and `ARGV[9]`). Records the
/// change in the outbox. Returns `{1, new version}`, `{0, 0}` (absent) or
/// `{2, current version}` (conflict).
pub(super) static COMPARE_AND_SWAP: LazyLock<Script> = LazyLock::new(|| {
    with_drop_timers(
        r"
        local found = redis.call('HMGET', KEYS[1], 'v', 'st', 'o')
        if not found[1] then return {0, 0} end
        local v = tonumber(found[1])
        if v ~= tonumber(ARGV[2]) then return {2, v} end
        local before, status = found[2], ARGV[6]
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        redis.call('HSET', KEYS[1], 'v', v + 1, 's', ARGV[3], 'st', status)
        if ARGV[4] == '1' then
            redis.call('ZREM', KEYS[6], ARGV[1])
            if ARGV[7] ~= '' then redis.call('SREM', ARGV[7], ARGV[1]) end
            if ARGV[10] ~= '' then redis.call('SREM', ARGV[10], ARGV[1]) end
            drop_timers(ARGV[8], ARGV[9], ARGV[1])
            if redis.call('SREM', KEYS[2], ARGV[1]) == 1 then
                if before then redis.call('HINCRBY', KEYS[4], before, -1) end
                if found[3] and found[3] ~= '' then redis.call('HINCRBY', KEYS[5], found[3], -1) end
                local ttl = tonumber(ARGV[5])
                if ttl <= 0 then
                    redis.call('DEL', KEYS[1])
                else
                    redis.call('PEXPIRE', KEYS[1], ttl)
                    redis.call('ZADD', KEYS[3], now + ttl, ARGV[1])
                end
            end
        elseif redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then
            if found[3] and found[3] ~= '' then redis.call('ZADD', KEYS[6], now, ARGV[1]) end
            if before ~= status then
                if before then redis.call('HINCRBY', KEYS[4], before, -1) end
                redis.call('HINCRBY', KEYS[4], status, 1)
            end
        end
        redis.call('XADD', KEYS[7], '*', 'k', 's', 'v', v + 1, 'j', ARGV[3])
        return {1, v + 1}
        ",
    )
});

/// Deletes the session, its index entries (and its counts, if it was live) and its timers
/// (from `ARGV[2]` and `ARGV[3]`), returning `{version, json}` (empty if absent).
pub(super) static REMOVE: LazyLock<Script> = LazyLock::new(|| {
    with_drop_timers(
        r"
        local found = redis.call('HMGET', KEYS[1], 'v', 's', 'st', 'o')
        if not found[1] then return {} end
        redis.call('DEL', KEYS[1])
        drop_timers(ARGV[2], ARGV[3], ARGV[1])
        if redis.call('SREM', KEYS[2], ARGV[1]) == 1 then
            if found[3] then redis.call('HINCRBY', KEYS[4], found[3], -1) end
            if found[4] and found[4] ~= '' then redis.call('HINCRBY', KEYS[5], found[4], -1) end
        end
        redis.call('ZREM', KEYS[3], ARGV[1])
        redis.call('ZREM', KEYS[6], ARGV[1])
        return {found[1], found[2]}
        ",
    )
});

/// Counts the sessions of ARGV[2..] that a store written before the counts were kept (or by a
/// replica of that version) left uncounted: a live session without its `st` field is counted
/// under its status, one without its `o` field under its owner (and enters `touched`). A session
/// with both is left alone, so a batch can run any number of times, beside the write scripts,
/// from any replica. An id in `live` whose key is gone leaves `live`. Returns how many sessions
/// could not be counted because their JSON does not decode; they are left as they are.
/// KEYS: 1 `live`, 2 `counts`, 3 `owners`, 4 `touched`; ARGV[1] the session key prefix.
pub(super) static RECONCILE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local undecodable = 0
        for i = 2, #ARGV do
            local id = ARGV[i]
            local key = ARGV[1] .. id
            local found = redis.call('HMGET', key, 's', 'st', 'o')
            if not found[1] then
                redis.call('SREM', KEYS[1], id)
            elseif (not found[2] or not found[3]) and redis.call('SISMEMBER', KEYS[1], id) == 1 then
                local ok, session = pcall(cjson.decode, found[1])
                if ok and type(session) == 'table' and type(session.status) == 'string' then
                    if not found[2] then
                        redis.call('HSET', key, 'st', session.status)
                        redis.call('HINCRBY', KEYS[2], session.status, 1)
                    end
                    if not found[3] then
                        local owner = session.owner
                        if type(owner) ~= 'string' then owner = '' end
                        redis.call('HSET', key, 'o', owner)
                        if owner ~= '' then
                            redis.call('HINCRBY', KEYS[3], owner, 1)
                            redis.call('ZADD', KEYS[4], 'NX', now, id)
                        end
                    end
                else
                    undecodable = undecodable + 1
                end
            end
        end
        return undecodable
        ",
    )
});

/// Up to ARGV[2] live sessions not written for ARGV[1] ms (by Redis's clock), oldest first, as
/// `{id, version, json}` triples read in the same step as the idle check, so a compare-and-swap on that
/// version fails if the session was written since. Ids left in `touched` for a session that is
/// gone or no longer live are dropped from it, so they cannot hold up later sweeps.
/// KEYS: 1 `touched`, 2 `live`; ARGV[3] the session key prefix.
pub(super) static IDLE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]), 'LIMIT', 0, tonumber(ARGV[2]))
        local found = {}
        for _, id in ipairs(ids) do
            local session = redis.call('HMGET', ARGV[3] .. id, 'v', 's')
            if session[1] and redis.call('SISMEMBER', KEYS[2], id) == 1 then
                table.insert(found, id)
                table.insert(found, session[1])
                table.insert(found, session[2])
            else
                redis.call('ZREM', KEYS[1], id)
            end
        end
        return found
        ",
    )
});
