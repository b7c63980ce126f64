//! The in-process store: a map under a short-lived lock, bounded by `sessions.max_sessions`.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::future::ready;
use std::sync::{PoisonError, RwLock};

use super::{SessionStore, StoreError, StoreFuture, Versioned};
use crate::domain::{Session, SessionId};

/// Sessions in a `RwLock<HashMap>`. Each operation takes the lock, finishes, and releases it
/// before its (already ready) future is returned, so no guard ever crosses an await.
#[derive(Debug)]
pub struct MemoryStore {
    sessions: RwLock<HashMap<SessionId, Versioned>>,
    capacity: usize,
}

impl MemoryStore {
    pub fn new(capacity: usize) -> Self {
        Self {
            sessions: RwLock::new(HashMap::new()),
            capacity,
        }
    }

    fn write<T>(&self, f: impl FnOnce(&mut HashMap<SessionId, Versioned>) -> T) -> T {
        // A panic while holding the lock cannot leave a half-written entry (each write is one
        // map operation), so a poisoned lock is safe to keep using.
        f(&mut self
            .sessions
            .write()
            .unwrap_or_else(PoisonError::into_inner))
    }

    fn read<T>(&self, f: impl FnOnce(&HashMap<SessionId, Versioned>) -> T) -> T {
        f(&self.sessions.read().unwrap_or_else(PoisonError::into_inner))
    }
}

impl SessionStore for MemoryStore {
    fn get<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Option<Versioned>> {
        Box::pin(ready(Ok(self.read(|map| map.get(id).cloned()))))
    }

    fn insert(&self, session: Session) -> StoreFuture<'_, u64> {
        let result = self.write(|map| {
            if map.len() >= self.capacity && !map.contains_key(&session.id) {
                return Err(StoreError::Full(self.capacity));
            }
            match map.entry(session.id.clone()) {
                Entry::Occupied(_) => Err(StoreError::AlreadyExists),
                Entry::Vacant(slot) => {
                    slot.insert(Versioned {
                        session,
                        version: 1,
                    });
                    Ok(1)
                }
            }
        });
        Box::pin(ready(result))
    }

    fn compare_and_swap(&self, expected: u64, session: Session) -> StoreFuture<'_, u64> {
        let result = self.write(|map| match map.get_mut(&session.id) {
            None => Err(StoreError::NotFound),
            Some(stored) if stored.version != expected => Err(StoreError::VersionConflict {
                current: stored.version,
            }),
            Some(stored) => {
                stored.version += 1;
                stored.session = session;
                Ok(stored.version)
            }
        });
        Box::pin(ready(result))
    }

    fn remove<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Versioned> {
        Box::pin(ready(
            self.write(|map| map.remove(id).ok_or(StoreError::NotFound)),
        ))
    }

    fn list(&self) -> StoreFuture<'_, Vec<Versioned>> {
        Box::pin(ready(Ok(self.read(|map| map.values().cloned().collect()))))
    }

    fn ping(&self) -> StoreFuture<'_, ()> {
        Box::pin(ready(Ok(())))
    }
}

#[cfg(test)]
mod tests {
    use super::MemoryStore;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn memory_store_meets_the_contract() {
        super::super::contract::run_all(MemoryStore::new).await;
    }
}
