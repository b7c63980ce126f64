//! The store contract: one suite, generic over [`SessionStore`], that every backend must pass.

use std::sync::Arc;

use super::{SessionStore, StoreError};
use crate::config::Config;
use crate::domain::{Session, SessionId, SessionStatus};

fn session(id: &str) -> Session {
    let mut session = Config::embedded()
        .fixture_sessions()
        .expect("fixtures are valid")
        .remove(0);
    session.id = SessionId::parse(id).expect("valid id");
    session
}

/// Runs every contract check against a fresh, empty store with room for at least 8 sessions
/// (`make` is called once per check).
pub async fn run_all<S: SessionStore>(make: impl Fn(usize) -> S) {
    insert_get_remove(&make(8)).await;
    compare_and_swap_needs_the_current_version(&make(8)).await;
    capacity_is_enforced(&make(2)).await;
    racing_compare_and_swap_loses_nothing(Arc::new(make(8))).await;
}

async fn insert_get_remove<S: SessionStore>(store: &S) {
    let id = SessionId::parse("a").unwrap();
    assert_eq!(store.get(&id).await, Ok(None));
    assert_eq!(store.insert(session("a")).await, Ok(1));
    assert_eq!(
        store.insert(session("a")).await,
        Err(StoreError::AlreadyExists)
    );
    let found = store.get(&id).await.unwrap().unwrap();
    assert_eq!((found.session, found.version), (session("a"), 1));
    assert_eq!(store.list().await.unwrap().len(), 1);
    assert_eq!(store.remove(&id).await.unwrap().version, 1);
    assert_eq!(store.remove(&id).await, Err(StoreError::NotFound));
    assert_eq!(store.get(&id).await, Ok(None));
    assert_eq!(store.ping().await, Ok(()));
}

async fn compare_and_swap_needs_the_current_version<S: SessionStore>(store: &S) {
    store.insert(session("b")).await.unwrap();
    let mut next = session("b");
    next.status = SessionStatus::Ringing;
    assert_eq!(store.compare_and_swap(1, next.clone()).await, Ok(2));
    assert_eq!(
        store.compare_and_swap(1, next.clone()).await,
        Err(StoreError::VersionConflict { current: 2 })
    );
    assert_eq!(store.compare_and_swap(2, session("b")).await, Ok(3));
    assert_eq!(
        store.compare_and_swap(1, session("missing")).await,
        Err(StoreError::NotFound)
    );
    let id = SessionId::parse("b").unwrap();
    assert_eq!(
        store.get(&id).await.unwrap().unwrap().session.status,
        SessionStatus::Initial
    );
}

async fn capacity_is_enforced<S: SessionStore>(store: &S) {
    store.insert(session("c1")).await.unwrap();
    store.insert(session("c2")).await.unwrap();
    assert_eq!(store.insert(session("c3")).await, Err(StoreError::Full(2)));
    store
        .remove(&SessionId::parse("c1").unwrap())
        .await
        .unwrap();
    assert_eq!(store.insert(session("c3")).await, Ok(1));
}

/// 16 tasks × 25 read-modify-write loops on one session: every write lands exactly once.
async fn racing_compare_and_swap_loses_nothing<S: SessionStore>(store: Arc<S>) {
    store.insert(session("race")).await.unwrap();
    let id = SessionId::parse("race").unwrap();
    let mut tasks = Vec::new();
    for task in 0..16 {
        let store = Arc::clone(&store);
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            let mut won = Vec::new();
            for round in 0..25 {
                loop {
                    let current = store.get(&id).await.unwrap().unwrap();
                    let mut next = current.session.clone();
                    // Record who wrote, so the final history can be checked.
                    next.receiver_name = Some(format!("{task}-{round}"));
                    match store.compare_and_swap(current.version, next).await {
                        Ok(version) => {
                            won.push(version);
                            break;
                        }
                        Err(StoreError::VersionConflict { .. }) => tokio::task::yield_now().await,
                        Err(other) => panic!("unexpected {other}"),
                    }
                }
            }
            won
        }));
    }
    let mut versions = Vec::new();
    for task in tasks {
        versions.extend(task.await.unwrap());
    }
    versions.sort_unstable();
    assert_eq!(
        versions,
        (2..=401).collect::<Vec<u64>>(),
        "each write got its own version, none lost"
    );
    assert_eq!(store.get(&id).await.unwrap().unwrap().version, 401);
}
