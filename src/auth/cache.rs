//! Verified tokens, remembered until they expire, so a client reusing its token pays for the
//! signature check once. An entry is keyed by the whole compact token and found only by an equal
//! one, so a token that differs in any byte — a tampered payload or signature included — can never
//! hit another token's entry; an entry is used only strictly before the token's `exp` (the leeway
//! applies to full verification only); only tokens that passed full verification are inserted;
//! the cache holds at most `capacity` entries, evicting by quick_cache's policy (recency and
//! frequency), so a flood of one-off tokens cannot push out the ones in use.

use std::sync::Arc;

use quick_cache::sync::Cache;

use super::Claims;

#[derive(Clone)]
struct Entry {
    claims: Arc<Claims>,
    /// The token's `exp`, in seconds since the epoch: the entry is dead from then on.
    exp: u64,
}

pub struct TokenCache {
    /// Verified tokens by their compact form; `None` when off.
    entries: Option<Cache<Box<str>, Entry>>,
}

impl TokenCache {
    /// A cache of at most `capacity` tokens; 0 turns caching off.
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: (capacity > 0).then(|| Cache::new(capacity)),
        }
    }

    /// The claims of `token` if it was verified before and `now` is before its `exp`.
    pub fn get(&self, token: &str, now: u64) -> Option<Arc<Claims>> {
        let entries = self.entries.as_ref()?;
        let entry = entries.get(token)?;
        if now < entry.exp {
            Some(entry.claims)
        } else {
            entries.remove(token);
            None
        }
    }

    /// Remembers a token that just passed full verification. Tokens without `exp`, or already at
    /// it, are not kept.
    pub fn insert(&self, token: &str, claims: Arc<Claims>, now: u64) {
        let (Some(entries), Some(exp)) = (&self.entries, claims.exp.filter(|&exp| now < exp))
        else {
            return;
        };
        entries.insert(token.into(), Entry { claims, exp });
    }

    /// Forgets `token`.
    pub fn remove(&self, token: &str) {
        if let Some(entries) = &self.entries {
            entries.remove(token);
        }
    }

    /// Forgets every token (the keys that verified them changed).
    pub fn clear(&self) {
        if let Some(entries) = &self.entries {
            entries.clear();
        }
    }

    pub fn len(&self) -> usize {
        self.entries.as_ref().map_or(0, Cache::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: Option<u64>) -> Arc<Claims> {
        Arc::new(Claims {
            sub: Some("tel:+17085854000".into()),
            client_id: None,
            azp: None,
            scope: vec!["webrtc-call-handling:sessions:write".into()],
            exp,
            subscriber: Default::default(),
        })
    }

    #[test]
    fn an_entry_is_used_only_before_exp() {
        let cache = TokenCache::new(8);
        cache.insert("a.b.c", claims(Some(100)), 50);
        assert_eq!(cache.get("a.b.c", 99), Some(claims(Some(100))));
        assert_eq!(cache.get("a.b.c", 100), None, "dead at exp");
        assert_eq!(cache.get("a.b.c", 5000), None);
    }

    #[test]
    fn only_the_identical_token_hits() {
        let cache = TokenCache::new(8);
        let token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
        cache.insert(token, claims(Some(100)), 0);
        assert!(cache.get(token, 1).is_some());
        // Any change anywhere — header, payload, signature, a byte added or dropped — misses.
        let mut tampered = Vec::new();
        for i in 0..token.len() {
            let mut bytes = token.as_bytes().to_vec();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            tampered.push(String::from_utf8(bytes).unwrap());
        }
        tampered.push(format!("{token}A"));
        tampered.push(token[..token.len() - 1].to_owned());
        for other in tampered {
            assert_eq!(cache.get(&other, 1), None, "{other}");
        }
    }

    #[test]
    fn the_size_is_bounded_and_expired_entries_are_never_served() {
        let cache = TokenCache::new(64);
        cache.insert("old", claims(Some(10)), 0);
        assert_eq!(cache.get("old", 10), None, "dead at exp");
        for i in 0..10_000 {
            cache.insert(&format!("n{i}"), claims(Some(1000)), 20);
            assert!(cache.len() <= 64);
        }
        // A token in use stays while one-off tokens stream past.
        cache.insert("hot", claims(Some(1000)), 20);
        for i in 0..10_000 {
            assert!(cache.get("hot", 21).is_some(), "after {i} one-off tokens");
            cache.insert(&format!("m{i}"), claims(Some(1000)), 20);
        }
    }

    #[test]
    fn tokens_without_exp_or_past_it_and_a_zero_capacity_keep_nothing() {
        let cache = TokenCache::new(8);
        cache.insert("no-exp", claims(None), 0);
        cache.insert("expired", claims(Some(10)), 10);
        assert!(cache.is_empty());
        let off = TokenCache::new(0);
        off.insert("t", claims(Some(100)), 0);
        assert!(off.get("t", 1).is_none() && off.is_empty());
    }
}
