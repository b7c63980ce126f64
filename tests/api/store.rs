//! The store contract: one suite, generic over [`SessionStore`], that every backend must pass —
//! run here against the memory store and against a real `redis-server`.

use std::sync::Arc;
use std::time::Duration;

use camara_webrtc::config::Config;
use camara_webrtc::domain::{
    AccessToken, Detail, EndReason, EventType, Registration, Subscription, SubscriptionEnd,
};
use camara_webrtc::domain::{Role, Session, SessionId, SessionStatus};
use camara_webrtc::store::{
    Limits, MemoryStore, RedisStore, RegistrationStore, Scheduled, ScriptStep, SessionStore,
    StoreError, SubscriptionChange, SubscriptionStore, TimerStore, Versioned, sweep_idle,
};

use crate::redis_server::{RedisServer, unique_prefix};

fn session(id: &str) -> Session {
    let mut session = Config::embedded()
        .fixture_sessions()
        .expect("fixtures are valid")
        .remove(0);
    session.id = SessionId::parse(id).expect("valid id");
    session
}

/// An hour: longer than any test runs.
const KEEP: Duration = Duration::from_secs(3600);

/// `capacity` sessions at most, as many per owner, ended ones kept for `ended_ttl`.
fn limits(capacity: usize, ended_ttl: Duration) -> Limits {
    Limits {
        capacity,
        per_owner: capacity,
        ended_ttl,
    }
}

/// Runs every contract check against a fresh, empty store made by `make(limits)` (called once
/// per check).
pub async fn run_all<S: SessionStore>(make: impl Fn(Limits) -> S) {
    insert_get_remove(&make(limits(8, KEEP))).await;
    compare_and_swap_needs_the_current_version(&make(limits(8, KEEP))).await;
    capacity_is_enforced(&make(limits(2, KEEP))).await;
    ended_sessions_are_kept_for_their_ttl(&make(limits(8, KEEP))).await;
    ended_sessions_expire(&make(limits(8, Duration::ZERO))).await;
    ended_sessions_give_way_at_capacity(&make(limits(2, KEEP))).await;
    a_list_is_bounded_going_sessions_first(&make(limits(8, KEEP))).await;
    racing_compare_and_swap_loses_nothing(Arc::new(make(limits(8, KEEP)))).await;
    live_sessions_count_against_their_owner(&make(Limits {
        per_owner: 2,
        ..limits(16, KEEP)
    }))
    .await;
    status_counts_follow_every_write(&make(limits(16, KEEP))).await;
    a_session_the_network_ends_is_over_but_readable(&make(limits(16, KEEP))).await;
    over_sessions_expire(&make(limits(16, Duration::ZERO))).await;
    idle_sessions_are_found_by_their_last_write(&make(limits(16, KEEP))).await;
    one_sweep_ends_every_idle_session_beyond_a_batch(&make(limits(1000, KEEP))).await;
    an_owner_at_its_quota_drops_no_ended_session(&make(Limits {
        per_owner: 1,
        ..limits(2, KEEP)
    }))
    .await;
}

/// The sessions created from a registration that has not ended are found by it while they are
/// not over; removed, ended and other registrations' sessions are not, nor those created once it
/// had ended.
async fn sessions_are_found_by_their_registration<S: SessionStore + RegistrationStore>(store: &S) {
    let now = camara_webrtc::store::now_ms();
    for (id, phone) in [
        ("reg-a", "+17085854000"),
        ("reg-b", "+17085852753"),
        ("reg-c", "+17085850000"),
    ] {
        let linked = registration(id, "app", DEVICE, phone, now + 60_000);
        store.register(linked, 10, now).await.unwrap();
    }
    store.unregister("reg-c", now).await.unwrap();
    let from = |id: &str, registration: Option<&str>| Session {
        registration: registration.map(Into::into),
        ..session(id)
    };
    for (id, registration) in [
        ("r1", Some("reg-a")),
        ("r2", Some("reg-a")),
        ("r3", Some("reg-a")),
        ("r4", Some("reg-b")),
        ("r5", None),
        ("r6", Some("reg-c")),
    ] {
        store.insert(from(id, registration)).await.unwrap();
    }
    let ids = async |registration: &str| {
        let mut ids: Vec<String> = (store.registered(registration).await.unwrap())
            .iter()
            .map(|v| v.session.id.as_str().to_owned())
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(ids("reg-a").await, ["r1", "r2", "r3"]);
    assert_eq!(ids("reg-b").await, ["r4"]);
    assert_eq!(ids("reg-c").await, Vec::<String>::new());
    let mut over = from("r2", Some("reg-a")).end(Role::Receiver);
    over.registration = Some("reg-a".into());
    store.compare_and_swap(1, over.into()).await.unwrap();
    store
        .remove(&SessionId::parse("r3").unwrap())
        .await
        .unwrap();
    assert_eq!(ids("reg-a").await, ["r1"]);
    let found = store.registered("reg-a").await.unwrap();
    assert_eq!(found[0].session.registration.as_deref(), Some("reg-a"));
    assert_eq!(found[0].version, 1);
}

/// An insert refused for its owner's quota leaves the store as it was: the ended session that a
/// full store would drop to make room is still there.
async fn an_owner_at_its_quota_drops_no_ended_session<S: SessionStore>(store: &S) {
    store.insert(owned("q1", "busy")).await.unwrap();
    store.insert(session("kept")).await.unwrap();
    store
        .compare_and_swap(1, ended("kept").into())
        .await
        .unwrap();
    assert_eq!(
        store.insert(owned("q2", "busy")).await,
        Err(StoreError::OwnerFull(1))
    );
    let kept = store.get(&SessionId::parse("kept").unwrap()).await.unwrap();
    assert_eq!(kept.map(|v| v.version), Some(2));
}

/// `s` moved to a terminal status by the network (not DELETEd).
fn network_ended(id: &str, owner: &str) -> Session {
    let mut over = owned(id, owner);
    over.status = SessionStatus::Busy;
    over.reason = Some("486 Busy Here".into());
    over
}

/// A session in a terminal status stays readable, and no longer counts as live.
async fn a_session_the_network_ends_is_over_but_readable<S: SessionStore>(store: &S) {
    store.insert(owned("n1", "app")).await.unwrap();
    assert_eq!(
        store
            .compare_and_swap(1, network_ended("n1", "app").into())
            .await,
        Ok(2)
    );
    let kept = store.get(&SessionId::parse("n1").unwrap()).await.unwrap();
    assert_eq!(
        kept.map(|v| v.session.reason.clone()),
        Some(Some("486 Busy Here".into()))
    );
    assert_eq!(store.status_counts().await, Ok(vec![]));
    assert_eq!(store.idle(Duration::ZERO, 10).await, Ok(vec![]));
}

async fn over_sessions_expire<S: SessionStore>(store: &S) {
    store.insert(owned("n2", "app")).await.unwrap();
    store
        .compare_and_swap(1, network_ended("n2", "app").into())
        .await
        .unwrap();
    assert_eq!(store.get(&SessionId::parse("n2").unwrap()).await, Ok(None));
}

fn ids(found: &[Versioned]) -> Vec<&str> {
    found.iter().map(|v| v.session.id.as_str()).collect()
}

/// Idle sessions are the live, owned ones by their last write, oldest first.
/// A sweep reads batch after batch while they come full: 600 idle sessions (over two batches
/// and a half) all end in one sweep, as the network ends an unanswered call.
async fn one_sweep_ends_every_idle_session_beyond_a_batch<S: SessionStore>(store: &S) {
    for n in 0..600 {
        let mut idle = session(&format!("sweep-{n}"));
        idle.owner = Some("app".into());
        store.insert(idle).await.unwrap();
    }
    sweep_idle(store, Duration::ZERO).await.unwrap();
    assert_eq!(store.idle(Duration::ZERO, 1000).await, Ok(vec![]));
    for n in [0, 299, 599] {
        let id = SessionId::parse(format!("sweep-{n}")).unwrap();
        let read = store.get(&id).await.unwrap().unwrap();
        assert_eq!(read.version, 2);
        assert_eq!(read.session.status, SessionStatus::Failed);
        assert!(read.session.is_over());
    }
}

async fn idle_sessions_are_found_by_their_last_write<S: SessionStore>(store: &S) {
    store.insert(owned("i1", "app")).await.unwrap();
    store.insert(owned("i2", "app")).await.unwrap();
    store.insert(session("fixture-like")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut touched = owned("i1", "app");
    touched.status = SessionStatus::Ringing;
    store.compare_and_swap(1, touched.into()).await.unwrap();
    assert_eq!(
        ids(&store.idle(Duration::from_millis(200), 10).await.unwrap()),
        ["i2"]
    );
    assert_eq!(
        ids(&store.idle(Duration::ZERO, 10).await.unwrap()),
        ["i2", "i1"]
    );
    assert_eq!(ids(&store.idle(Duration::ZERO, 1).await.unwrap()), ["i2"]);
    store
        .compare_and_swap(1, network_ended("i2", "app").into())
        .await
        .unwrap();
    assert_eq!(ids(&store.idle(Duration::ZERO, 10).await.unwrap()), ["i1"]);
    store
        .remove(&SessionId::parse("i1").unwrap())
        .await
        .unwrap();
    assert_eq!(store.idle(Duration::ZERO, 10).await, Ok(vec![]));
}

fn owned(id: &str, owner: &str) -> Session {
    Session {
        owner: Some(owner.into()),
        ..session(id)
    }
}

/// An owner holds at most `per_owner` live sessions; ended and removed ones stop counting, other
/// owners and sessions without one are not affected.
async fn live_sessions_count_against_their_owner<S: SessionStore>(store: &S) {
    store.insert(owned("o1", "busy")).await.unwrap();
    store.insert(owned("o2", "busy")).await.unwrap();
    assert_eq!(
        store.insert(owned("o3", "busy")).await,
        Err(StoreError::OwnerFull(2))
    );
    assert_eq!(store.insert(owned("q1", "quiet")).await, Ok(1));
    assert_eq!(store.insert(session("nobody")).await, Ok(1));
    let mut ended = owned("o1", "busy").end(Role::Receiver);
    ended.receiver_name = Some("ended".into());
    store.compare_and_swap(1, ended.into()).await.unwrap();
    assert_eq!(store.insert(owned("o3", "busy")).await, Ok(1));
    assert_eq!(
        store.insert(owned("o4", "busy")).await,
        Err(StoreError::OwnerFull(2))
    );
    store
        .remove(&SessionId::parse("o2").unwrap())
        .await
        .unwrap();
    assert_eq!(store.insert(owned("o4", "busy")).await, Ok(1));
}

/// The live sessions per status, through insert, a status change, ending and removal.
async fn status_counts_follow_every_write<S: SessionStore>(store: &S) {
    assert_eq!(store.status_counts().await, Ok(vec![]));
    for id in ["s1", "s2", "s3"] {
        store.insert(session(id)).await.unwrap();
    }
    let mut ringing = session("s1");
    ringing.status = SessionStatus::Ringing;
    store.compare_and_swap(1, ringing.into()).await.unwrap();
    store.compare_and_swap(1, ended("s2").into()).await.unwrap();
    assert_eq!(
        store.status_counts().await,
        Ok(vec![
            (SessionStatus::Initial, 1),
            (SessionStatus::Ringing, 1)
        ])
    );
    store
        .remove(&SessionId::parse("s1").unwrap())
        .await
        .unwrap();
    store
        .remove(&SessionId::parse("s2").unwrap())
        .await
        .unwrap();
    assert_eq!(
        store.status_counts().await,
        Ok(vec![(SessionStatus::Initial, 1)])
    );
}

fn ended(id: &str) -> Session {
    let mut session = session(id).end(Role::Receiver);
    session.receiver_name = Some("ended".into());
    session
}

async fn ended_sessions_are_kept_for_their_ttl<S: SessionStore>(store: &S) {
    let id = SessionId::parse("e1").unwrap();
    store.insert(session("e1")).await.unwrap();
    assert_eq!(store.compare_and_swap(1, ended("e1").into()).await, Ok(2));
    let kept = store.get(&id).await.unwrap().expect("kept until its TTL");
    assert_eq!((&*kept.session, kept.version), (&ended("e1"), 2));
    assert_eq!(kept_status(store, &id).await, Some(SessionStatus::Declined));
    assert_eq!(store.list(10).await.unwrap().0.len(), 1);
}

async fn kept_status<S: SessionStore>(store: &S, id: &SessionId) -> Option<SessionStatus> {
    store.get(id).await.unwrap().map(|v| v.session.status)
}

async fn ended_sessions_expire<S: SessionStore>(store: &S) {
    let id = SessionId::parse("e2").unwrap();
    store.insert(session("e2")).await.unwrap();
    store.insert(session("live")).await.unwrap();
    assert_eq!(store.compare_and_swap(1, ended("e2").into()).await, Ok(2));
    assert_eq!(store.get(&id).await, Ok(None), "dropped after a zero TTL");
    assert_eq!(
        store.compare_and_swap(2, ended("e2").into()).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(store.remove(&id).await, Err(StoreError::NotFound));
    let (left, total) = store.list(10).await.unwrap();
    assert_eq!((left.len(), total), (1, 1));
    assert_eq!(left[0].session.id.as_str(), "live");
    // The id is free again.
    assert_eq!(store.insert(session("e2")).await, Ok(1));
}

/// A bounded list: the sessions going first (any of them when there are more than the limit),
/// then the most recently over, with the total stored.
async fn a_list_is_bounded_going_sessions_first<S: SessionStore>(store: &S) {
    for id in ["l1", "l2", "l3", "o1", "o2"] {
        store.insert(session(id)).await.unwrap();
    }
    // o1 ends last, so it is the most recently over (its name sorts first: a tie is no help).
    store.compare_and_swap(1, ended("o2").into()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    store.compare_and_swap(1, ended("o1").into()).await.unwrap();
    let ids = |listed: &[Versioned]| {
        let mut ids: Vec<&str> = listed.iter().map(|v| v.session.id.as_str()).collect();
        ids.sort();
        ids.join(" ")
    };
    let (all, total) = store.list(10).await.unwrap();
    assert_eq!((ids(&all).as_str(), total), ("l1 l2 l3 o1 o2", 5));
    let (four, total) = store.list(4).await.unwrap();
    assert_eq!((ids(&four).as_str(), total), ("l1 l2 l3 o1", 5));
    let (two, total) = store.list(2).await.unwrap();
    assert_eq!((two.len(), total), (2, 5));
    assert!(two.iter().all(|v| !v.session.is_over()), "going ones first");
    assert_eq!(store.list(0).await.unwrap(), (vec![], 5));
}

async fn ended_sessions_give_way_at_capacity<S: SessionStore>(store: &S) {
    store.insert(session("g1")).await.unwrap();
    store.insert(session("g2")).await.unwrap();
    store.compare_and_swap(1, ended("g1").into()).await.unwrap();
    assert_eq!(store.insert(session("g3")).await, Ok(1));
    assert_eq!(store.get(&SessionId::parse("g1").unwrap()).await, Ok(None));
    assert_eq!(store.insert(session("g4")).await, Err(StoreError::Full(2)));
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
    assert_eq!((&*found.session, found.version), (&session("a"), 1));
    assert_eq!(store.list(10).await.unwrap().0.len(), 1);
    assert_eq!(store.remove(&id).await.unwrap().version, 1);
    assert_eq!(store.remove(&id).await, Err(StoreError::NotFound));
    assert_eq!(store.get(&id).await, Ok(None));
    assert_eq!(store.ping().await, Ok(()));
}

async fn compare_and_swap_needs_the_current_version<S: SessionStore>(store: &S) {
    store.insert(session("b")).await.unwrap();
    let mut next = session("b");
    next.status = SessionStatus::Ringing;
    assert_eq!(store.compare_and_swap(1, next.clone().into()).await, Ok(2));
    assert_eq!(
        store.compare_and_swap(1, next.clone().into()).await,
        Err(StoreError::VersionConflict { current: 2 })
    );
    assert_eq!(store.compare_and_swap(2, session("b").into()).await, Ok(3));
    assert_eq!(
        store.compare_and_swap(1, session("missing").into()).await,
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
                    let mut next = Session::clone(&current.session);
                    // Record who wrote, so the final history can be checked.
                    next.receiver_name = Some(format!("{task}-{round}").into());
                    match store.compare_and_swap(current.version, next.into()).await {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_meets_the_contract() {
    run_all(MemoryStore::new).await;
    run_registrations(MemoryStore::new).await;
    run_subscriptions(MemoryStore::new).await;
    timers_are_claimed_once_per_lease_and_advance_once(&MemoryStore::new(limits(8, KEEP))).await;
}

/// A Redis store with a fresh key prefix on `server`.
fn redis_store(server: &RedisServer, limits: Limits) -> RedisStore {
    let prefix = unique_prefix("contract");
    RedisStore::new(&server.url, &prefix, limits, Duration::from_secs(2)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_store_meets_the_contract() {
    let Some(server) = RedisServer::start("redis_store_meets_the_contract") else {
        return;
    };
    run_all(|limits| redis_store(&server, limits)).await;
    run_registrations(|limits| redis_store(&server, limits)).await;
    run_subscriptions(|limits| redis_store(&server, limits)).await;
    timers_are_claimed_once_per_lease_and_advance_once(&redis_store(&server, limits(8, KEEP)))
        .await;
}

/// A store of 8 sessions under a fresh prefix named after `name`, the prefix, and a connection of
/// the test's own to the same Redis, to look at (or break) what the store wrote.
async fn store_beside_its_redis(
    server: &RedisServer,
    name: &str,
) -> (RedisStore, String, redis::aio::MultiplexedConnection) {
    let prefix = unique_prefix(name);
    let store = RedisStore::new(
        &server.url,
        &prefix,
        limits(8, KEEP),
        Duration::from_secs(2),
    )
    .unwrap();
    let client = redis::Client::open(server.url.as_str()).unwrap();
    let con = client.get_multiplexed_async_connection().await.unwrap();
    (store, prefix, con)
}

/// An ended session's key carries a Redis TTL of `ended_ttl`; a live one has none.
#[tokio::test]
async fn redis_expires_ended_sessions_through_ttl() {
    let Some(server) = RedisServer::start("redis_expires_ended_sessions_through_ttl") else {
        return;
    };
    let (store, prefix, mut con) = store_beside_its_redis(&server, "ttl").await;
    store.insert(session("t")).await.unwrap();
    let key = format!("{prefix}session:t");
    let pttl = async |con: &mut redis::aio::MultiplexedConnection| -> i64 {
        redis::cmd("PTTL").arg(&key).query_async(con).await.unwrap()
    };
    assert_eq!(pttl(&mut con).await, -1, "a live session does not expire");
    store.compare_and_swap(1, ended("t").into()).await.unwrap();
    let left = pttl(&mut con).await;
    assert!(left > 3_500_000 && left <= 3_600_000, "PTTL {left}");
}

/// A live session whose JSON does not decode (written by another version) does not stop the
/// idle sweep: the others are ended, it is left as it is and no longer offered to later sweeps.
#[tokio::test]
async fn an_undecodable_session_does_not_stop_the_idle_sweep() {
    let Some(server) = RedisServer::start("an_undecodable_session_does_not_stop_the_idle_sweep")
    else {
        return;
    };
    let (store, prefix, mut con) = store_beside_its_redis(&server, "undecodable").await;
    for id in ["bad", "good"] {
        let mut owned = session(id);
        owned.owner = Some("app".into());
        store.insert(owned).await.unwrap();
    }
    let _: () = redis::cmd("HSET")
        .arg(format!("{prefix}session:bad"))
        .arg("s")
        .arg("{not json")
        .query_async(&mut con)
        .await
        .unwrap();
    sweep_idle(&store, Duration::ZERO).await.unwrap();
    let good = store
        .get(&SessionId::parse("good").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(good.session.status, SessionStatus::Failed);
    assert_eq!(store.idle(Duration::ZERO, 8).await, Ok(vec![]));
    let live: Vec<String> = redis::cmd("SMEMBERS")
        .arg(format!("{prefix}live"))
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(live, ["bad"]);
}

/// Every registration check, against fresh stores made by `make`.
async fn run_registrations<S: RegistrationStore + SessionStore>(make: impl Fn(Limits) -> S) {
    sessions_are_found_by_their_registration(&make(limits(16, Duration::ZERO))).await;
    registrations_are_read_listed_refreshed_and_deleted(&make(limits(8, KEEP))).await;
    one_active_registration_per_owner_device_and_number(&make(limits(8, KEEP))).await;
    a_phone_number_holds_at_most_its_limit(&make(limits(8, KEEP))).await;
    expired_registrations_are_claimed_once_per_lease_and_finished_once(&make(limits(8, KEEP)))
        .await;
    registrations_beyond_capacity_are_refused(&make(Limits {
        per_owner: 100,
        ..limits(2, KEEP)
    }))
    .await;
    an_owner_holds_at_most_its_quota_of_registrations(&make(Limits {
        per_owner: 2,
        ..limits(8, KEEP)
    }))
    .await;
}

/// An owner holds at most `per_owner` registrations not yet ended; an ended one frees its place,
/// and other owners are not affected.
async fn an_owner_holds_at_most_its_quota_of_registrations<S: RegistrationStore>(store: &S) {
    let device = |n: u8| format!("00000000-0000-4000-8000-0000000000{n:02}");
    for n in 1..=2 {
        let id = format!("q{n}");
        let mine = registration(&id, "busy", &device(n), "+17085854000", T0 + 60_000);
        store.register(mine, 10, T0).await.unwrap();
    }
    let third = registration("q3", "busy", &device(3), "+17085854000", T0 + 60_000);
    assert_eq!(
        store.register(third.clone(), 10, T0).await,
        Err(StoreError::OwnerFull(2))
    );
    let other = registration("q4", "other", &device(3), "+17085854000", T0 + 60_000);
    store.register(other, 10, T0).await.unwrap();
    store.unregister("q1", T0).await.unwrap();
    store.register(third, 10, T0).await.unwrap();
}

/// The clock of the registration checks: 2026-12-03T12:00:00Z, in ms.
const T0: u64 = 1_796_299_200_000;
const DEVICE: &str = "7d444840-9dc0-11d1-b245-5ffdce74fad2";

fn registration(
    id: &str,
    owner: &str,
    device: &str,
    phone: &str,
    expires_at_ms: u64,
) -> Registration {
    Registration {
        id: id.to_owned(),
        device_id: device.to_owned(),
        phone_number: phone.to_owned(),
        owner: owner.to_owned(),
        expires_at_ms,
        // Both kinds, so that every read-back comparison covers the flag.
        proven: phone != "+17085852753",
        ended: None,
    }
}

async fn registrations_are_read_listed_refreshed_and_deleted<S: RegistrationStore>(store: &S) {
    let first = registration("r1", "app", DEVICE, "+17085854000", T0 + 60_000);
    let second = registration("r2", "app", DEVICE, "+17085852753", T0 + 30_000);
    store.register(first.clone(), 10, T0).await.unwrap();
    store.register(second.clone(), 10, T0).await.unwrap();
    assert_eq!(store.registration("r1", T0).await, Ok(Some(first.clone())));
    assert_eq!(store.registration("nobody", T0).await, Ok(None));
    // Soonest expiry first; another owner's device of the same id is another device.
    assert_eq!(
        store.device_registrations("app", DEVICE, T0).await,
        Ok(vec![second.clone(), first.clone()])
    );
    assert_eq!(
        store.device_registrations("other", DEVICE, T0).await,
        Ok(vec![])
    );
    // By phone number: every owner's, soonest expiry first.
    let elsewhere = registration("r3", "other", "d2", "+17085854000", T0 + 45_000);
    store.register(elsewhere.clone(), 10, T0).await.unwrap();
    assert_eq!(
        store.number_registrations("+17085854000", T0).await,
        Ok(vec![elsewhere.clone(), first.clone()])
    );
    assert_eq!(
        store.number_registrations("+10000000000", T0).await,
        Ok(vec![])
    );
    // Every owner's, soonest expiry first, up to a limit (the console's first look).
    assert_eq!(
        store.active_registrations(T0, 10).await,
        Ok((vec![second.clone(), elsewhere.clone(), first.clone()], 3))
    );
    assert_eq!(
        store.active_registrations(T0, 2).await,
        Ok((vec![second.clone(), elsewhere.clone()], 3))
    );
    assert_eq!(
        store
            .active_registrations(T0 + 50_000, 10)
            .await
            .map(|(found, _)| found),
        Ok(vec![first.clone()])
    );
    store.unregister("r3", T0).await.unwrap();
    assert_eq!(
        store.number_registrations("+17085854000", T0).await,
        Ok(vec![first.clone()])
    );
    assert_eq!(
        store.active_registrations(T0, 10).await,
        Ok((vec![second.clone(), first.clone()], 2))
    );
    let refreshed = store.refresh("r2", T0 + 90_000, T0 + 1000).await.unwrap();
    assert_eq!(refreshed.expires_at_ms, T0 + 90_000);
    assert_eq!(
        store.device_registrations("app", DEVICE, T0 + 1000).await,
        Ok(vec![first.clone(), refreshed.clone()])
    );
    let deleted = store.unregister("r1", T0 + 2000).await.unwrap();
    assert_eq!(deleted.ended, Some(EndReason::Deleted));
    assert_eq!(store.registration("r1", T0 + 2000).await, Ok(None));
    assert_eq!(
        store.unregister("r1", T0 + 2000).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        store.refresh("r1", T0 + 90_000, T0 + 2000).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        store.device_registrations("app", DEVICE, T0 + 2000).await,
        Ok(vec![refreshed.clone()])
    );
    // Past its expiry a registration is gone for every read and write, claimed or not.
    let late = T0 + 90_000;
    assert_eq!(store.registration("r2", late).await, Ok(None));
    assert_eq!(
        store.device_registrations("app", DEVICE, late).await,
        Ok(vec![])
    );
    assert_eq!(
        store.refresh("r2", late + 60_000, late).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        store.unregister("r2", late).await,
        Err(StoreError::NotFound)
    );
}

async fn one_active_registration_per_owner_device_and_number<S: RegistrationStore>(store: &S) {
    let phone = "+17085854000";
    store
        .register(
            registration("u1", "app", DEVICE, phone, T0 + 60_000),
            10,
            T0,
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .register(
                registration("u2", "app", DEVICE, phone, T0 + 60_000),
                10,
                T0
            )
            .await,
        Err(StoreError::AlreadyExists)
    );
    // Another owner, another number or another device is another registration.
    for (id, owner, device, number) in [
        ("u3", "other-app", DEVICE, phone),
        ("u4", "app", DEVICE, "+17085852753"),
        ("u5", "app", "0b8a7c1e-4f5d-4e9a-8c3b-2d1e0f9a8b7c", phone),
    ] {
        store
            .register(registration(id, owner, device, number, T0 + 60_000), 10, T0)
            .await
            .unwrap();
    }
    // Once the first has expired (or been deleted), the same triple registers again.
    store
        .register(
            registration("u6", "app", DEVICE, phone, T0 + 120_000),
            10,
            T0 + 60_000,
        )
        .await
        .unwrap();
    store.unregister("u6", T0 + 61_000).await.unwrap();
    store
        .register(
            registration("u7", "app", DEVICE, phone, T0 + 120_000),
            10,
            T0 + 61_000,
        )
        .await
        .unwrap();
}

async fn a_phone_number_holds_at_most_its_limit<S: RegistrationStore>(store: &S) {
    let phone = "+17085854000";
    let device = |n: u8| format!("00000000-0000-4000-8000-0000000000{n:02}");
    for n in 0..2 {
        let owner = format!("app-{n}");
        store
            .register(
                registration(&format!("n{n}"), &owner, &device(n), phone, T0 + 60_000),
                2,
                T0,
            )
            .await
            .unwrap();
    }
    assert_eq!(
        store
            .register(
                registration("n2", "app-2", &device(2), phone, T0 + 60_000),
                2,
                T0
            )
            .await,
        Err(StoreError::NumberFull(2))
    );
    store.unregister("n0", T0).await.unwrap();
    store
        .register(
            registration("n2", "app-2", &device(2), phone, T0 + 60_000),
            2,
            T0,
        )
        .await
        .unwrap();
    // Expired ones do not count, claimed and finished or not.
    store
        .register(
            registration("n3", "app-3", &device(3), phone, T0 + 120_000),
            2,
            T0 + 60_000,
        )
        .await
        .unwrap();
}

async fn expired_registrations_are_claimed_once_per_lease_and_finished_once<
    S: RegistrationStore,
>(
    store: &S,
) {
    let lease = Duration::from_secs(30);
    for (id, expires) in [("e1", T0 + 1000), ("e2", T0 + 2000), ("e3", T0 + 60_000)] {
        store
            .register(
                registration(
                    id,
                    "app",
                    DEVICE,
                    &format!("+1708585{id}00").replace('e', "9"),
                    expires,
                ),
                10,
                T0,
            )
            .await
            .unwrap();
    }
    let ids = |found: Vec<Registration>| found.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.claim_expired(T0 + 999, lease, 10).await.unwrap()),
        Vec::<String>::new()
    );
    // At its expiry a registration is due; the soonest first, as many as asked.
    assert_eq!(
        ids(store.claim_expired(T0 + 2000, lease, 1).await.unwrap()),
        ["e1"]
    );
    // Claimed, it is ending: a refresh by a caller whose clock is behind is refused.
    assert_eq!(
        store.refresh("e1", T0 + 90_000, T0 + 500).await,
        Err(StoreError::NotFound)
    );
    // A claim holds for its lease: another claimant gets only what is left.
    assert_eq!(
        ids(store.claim_expired(T0 + 2000, lease, 10).await.unwrap()),
        ["e2"]
    );
    assert_eq!(
        ids(store.claim_expired(T0 + 3000, lease, 10).await.unwrap()),
        Vec::<String>::new()
    );
    let ended = store
        .finish_expired("e2", T0 + 3000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ended.ended, Some(EndReason::RegistrationExpired));
    assert_eq!(store.finish_expired("e2", T0 + 3000).await, Ok(None));
    // e1's claimant died: once its lease is over, e1 is claimed again (and e2, finished, is not).
    let after_lease = T0 + 2000 + 30_000;
    assert_eq!(
        ids(store.claim_expired(after_lease, lease, 10).await.unwrap()),
        ["e1"]
    );
    assert!(
        store
            .finish_expired("e1", after_lease)
            .await
            .unwrap()
            .is_some()
    );
    // e3 is refreshed before its expiry: it is not due then, but at its new one.
    store
        .refresh("e3", T0 + 120_000, T0 + 59_000)
        .await
        .unwrap();
    assert_eq!(
        ids(store.claim_expired(T0 + 60_000, lease, 10).await.unwrap()),
        Vec::<String>::new()
    );
    assert_eq!(
        ids(store.claim_expired(T0 + 120_000, lease, 10).await.unwrap()),
        ["e3"]
    );
    assert_eq!(store.registration("e3", T0 + 120_000).await, Ok(None));
}

async fn registrations_beyond_capacity_are_refused<S: RegistrationStore>(store: &S) {
    for id in ["c1", "c2"] {
        let phone = if id == "c1" {
            "+17085854000"
        } else {
            "+17085852753"
        };
        store
            .register(registration(id, "app", DEVICE, phone, T0 + 60_000), 10, T0)
            .await
            .unwrap();
    }
    assert_eq!(
        store
            .register(
                registration("c3", "app", DEVICE, "+17085850000", T0 + 60_000),
                10,
                T0
            )
            .await,
        Err(StoreError::Full(2))
    );
    store.unregister("c1", T0).await.unwrap();
    store
        .register(
            registration("c3", "app", DEVICE, "+17085850000", T0 + 60_000),
            10,
            T0,
        )
        .await
        .unwrap();
}

/// Every subscription check, against fresh stores made by `make`.
async fn run_subscriptions<S: SubscriptionStore>(make: impl Fn(Limits) -> S) {
    subscriptions_are_read_listed_changed_and_deleted(&make(limits(8, KEEP))).await;
    subscriptions_end_when_due_once_and_count_their_events(&make(limits(8, KEEP))).await;
    subscriptions_are_bounded_per_owner_and_in_all(&make(Limits {
        per_owner: 100,
        ..limits(3, Duration::ZERO)
    }))
    .await;
}

fn subscription(id: &str, owner: &str, starts_at_ms: u64, expires: Option<u64>) -> Subscription {
    Subscription {
        id: id.to_owned(),
        owner: owner.to_owned(),
        sink: "https://sink.example.com/events".into(),
        types: vec![EventType::SessionStatus, EventType::SessionInvitation],
        detail: Detail {
            registration_id: Some("r1".into()),
            ..Detail::default()
        },
        phone_numbers: vec!["+17085854000".into()],
        credential: None,
        starts_at_ms,
        expires_at_ms: expires,
        max_events: Some(5),
        initial_event: None,
        ended: None,
    }
}

async fn subscriptions_are_read_listed_changed_and_deleted<S: SubscriptionStore>(store: &S) {
    let first = subscription("s1", "app", T0, None);
    let second = subscription("s2", "app", T0 + 1, Some(T0 + 60_000));
    for s in [&second, &first] {
        store.subscribe(s.clone(), 10, T0).await.unwrap();
    }
    store
        .subscribe(subscription("s3", "other", T0, None), 10, T0)
        .await
        .unwrap();
    assert_eq!(store.subscription("s1", T0).await, Ok(Some(first.clone())));
    assert_eq!(store.subscription("nope", T0).await, Ok(None));
    // Oldest first; another owner's are not listed.
    assert_eq!(
        store.owned("app", T0).await,
        Ok(vec![first.clone(), second.clone()])
    );
    // By phone number, every owner's.
    let mut third = subscription("s3", "other", T0, None);
    third.phone_numbers = vec!["+17085854000".into()];
    assert_eq!(
        store.for_number("+17085854000", T0).await,
        Ok(vec![first.clone(), third.clone(), second.clone()])
    );
    assert_eq!(store.for_number("+17085850000", T0).await, Ok(vec![]));
    // Every owner's, oldest first, up to a limit (the console's first look).
    let (all, total) = store.active_subscriptions(T0, 10).await.unwrap();
    let ids: Vec<&str> = all.iter().map(|s| s.id.as_str()).collect();
    assert_eq!((ids, total), (vec!["s1", "s3", "s2"], 3));
    let (two, total) = store.active_subscriptions(T0, 2).await.unwrap();
    assert_eq!((two.len(), total), (2, 3));
    assert!(two.iter().all(|s| all.contains(s)));
    let token = AccessToken {
        token: "t0ken".into(),
        expires_at_ms: T0 + 3_600_000,
    };
    let change = SubscriptionChange {
        credential: Some(token.clone()),
        expires_at_ms: Some(T0 + 120_000),
    };
    let changed = store.change("s2", change, T0).await.unwrap();
    assert_eq!(changed.credential, Some(token));
    assert_eq!(changed.expires_at_ms, Some(T0 + 120_000));
    assert_eq!(
        store.subscription("s2", T0).await,
        Ok(Some(changed.clone()))
    );
    // Past its expiry it is gone for every read and write.
    let late = T0 + 120_000;
    assert_eq!(store.subscription("s2", late).await, Ok(None));
    assert_eq!(store.owned("app", late).await, Ok(vec![first.clone()]));
    assert_eq!(
        store
            .change("s2", SubscriptionChange::default(), late)
            .await,
        Err(StoreError::NotFound)
    );
    let deleted = store.unsubscribe("s1", T0).await.unwrap();
    assert_eq!(store.live_subscriptions().await, Ok(2));
    assert_eq!(deleted.ended, Some(SubscriptionEnd::SubscriptionDeleted));
    assert_eq!(store.subscription("s1", T0).await, Ok(None));
    assert_eq!(store.unsubscribe("s1", T0).await, Err(StoreError::NotFound));
    assert_eq!(store.owned("app", T0).await, Ok(vec![changed.clone()]));
    assert_eq!(
        store
            .active_subscriptions(late, 10)
            .await
            .map(|(found, _)| found),
        Ok(vec![third.clone()])
    );
    assert_eq!(
        store.for_number("+17085854000", T0).await,
        Ok(vec![third, changed])
    );
}

async fn subscriptions_are_bounded_per_owner_and_in_all<S: SubscriptionStore>(store: &S) {
    store
        .subscribe(subscription("b1", "app", T0, None), 2, T0)
        .await
        .unwrap();
    store
        .subscribe(subscription("b2", "app", T0, None), 2, T0)
        .await
        .unwrap();
    assert_eq!(
        store
            .subscribe(subscription("b3", "app", T0, None), 2, T0)
            .await,
        Err(StoreError::OwnerFull(2))
    );
    store
        .subscribe(subscription("b4", "other", T0, None), 2, T0)
        .await
        .unwrap();
    assert_eq!(
        store
            .subscribe(subscription("b5", "third", T0, None), 2, T0)
            .await,
        Err(StoreError::Full(3))
    );
    // A deleted one frees its place (it is gone at once with an ended_ttl of 0).
    store.unsubscribe("b1", T0).await.unwrap();
    store
        .subscribe(subscription("b3", "app", T0, None), 2, T0)
        .await
        .unwrap();
    assert_eq!(
        store
            .subscribe(subscription("b1", "third", T0, None), 2, T0)
            .await,
        Err(StoreError::Full(3))
    );
}

/// Subscriptions due to end (expiry, or a credential about to expire) are found in due order;
/// each ends exactly once, for the caller's reason; events are counted while it lasts.
async fn subscriptions_end_when_due_once_and_count_their_events<S: SubscriptionStore>(store: &S) {
    let expiring = subscription("d1", "app", T0, Some(T0 + 10_000));
    let mut token_ending = subscription("d2", "app", T0, None);
    token_ending.credential = Some(AccessToken {
        token: "t".into(),
        expires_at_ms: T0 + 65_000,
    });
    let lasting = subscription("d3", "app", T0, None);
    for s in [&expiring, &token_ending, &lasting] {
        store.subscribe(s.clone(), 10, T0).await.unwrap();
    }
    let ids = |found: Vec<Subscription>| found.into_iter().map(|s| s.id).collect::<Vec<_>>();
    // d2 is due a minute before its credential expires.
    let none: Vec<String> = vec![];
    assert_eq!(
        ids(store.due_subscriptions(T0 + 4_999, 10).await.unwrap()),
        none
    );
    assert_eq!(
        ids(store.due_subscriptions(T0 + 5_000, 10).await.unwrap()),
        ["d2"]
    );
    assert_eq!(
        ids(store.due_subscriptions(T0 + 10_000, 10).await.unwrap()),
        ["d2", "d1"]
    );
    assert_eq!(
        ids(store.due_subscriptions(T0 + 10_000, 1).await.unwrap()),
        ["d2"]
    );
    // Past its expiry (not active) it can still be ended, once.
    let reason = SubscriptionEnd::SubscriptionExpired;
    let ended = store
        .end_subscription("d1", reason, false, T0 + 10_000)
        .await
        .unwrap();
    assert_eq!(ended.ended, Some(reason));
    assert_eq!(
        store
            .end_subscription("d1", reason, false, T0 + 10_000)
            .await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        ids(store.due_subscriptions(T0 + 10_000, 10).await.unwrap()),
        ["d2"]
    );
    // A new expiry moves it in the due order.
    let change = SubscriptionChange {
        credential: None,
        expires_at_ms: Some(T0 + 1_000),
    };
    store.change("d3", change, T0).await.unwrap();
    assert_eq!(
        ids(store.due_subscriptions(T0 + 10_000, 10).await.unwrap()),
        ["d3", "d2"]
    );
    assert_eq!(store.count_event("d2").await, Ok(1));
    assert_eq!(store.count_event("d2").await, Ok(2));
    assert_eq!(store.count_event("d1").await, Err(StoreError::NotFound));
    assert_eq!(store.count_event("nope").await, Err(StoreError::NotFound));
}

/// The timers' contract: scheduled with a session's insert (not with a refused one), claimed
/// when due by one caller per lease, taken over once the lease is over, and ended with the next
/// one scheduled in the same step — once, by the claimant of the timer the store still holds;
/// and gone with their session when it ends or is removed.
async fn timers_are_claimed_once_per_lease_and_advance_once<S: SessionStore + TimerStore>(
    store: &S,
) {
    let at = 1_000_000;
    let id = SessionId::parse("timed").unwrap();
    let script: Arc<[ScriptStep]> = Arc::from(vec![
        ScriptStep {
            after_ms: 500,
            status: SessionStatus::Ringing,
            reason: None,
        },
        ScriptStep {
            after_ms: 1500,
            status: SessionStatus::Terminated,
            reason: Some("bye".into()),
        },
    ]);
    let first = Scheduled::step(&id, at, 0, &script).unwrap();
    let no_answer = Scheduled::no_answer(&id, at + 60_000);
    let lease = Duration::from_secs(30);
    let claim = |now| async move {
        let (claimed, next) = store.claim_timers(now, lease, 8).await.unwrap();
        let timers: Vec<Scheduled> = claimed.iter().map(|c| c.scheduled.clone()).collect();
        (claimed, timers, next)
    };
    assert_eq!(claim(at).await.2, None);
    store
        .insert_with(session("timed"), vec![first.clone(), no_answer.clone()])
        .await
        .unwrap();
    assert_eq!(
        (store.insert_with(session("timed"), vec![Scheduled::no_answer(&id, 1)])).await,
        Err(StoreError::AlreadyExists)
    );
    assert_eq!(claim(at + 499).await.1, vec![]);
    let (held, timers, next) = claim(at + 500).await;
    // The soonest left is the claimed one, at the end of its lease.
    assert_eq!(
        (timers, next),
        (vec![first.clone()], Some(at + 500 + 30_000))
    );
    // Claimed: no one else gets it until the lease is over; then it is due again.
    assert_eq!(claim(at + 600).await.1, vec![]);
    let (taken_over, timers, _) = claim(at + 500 + 30_000).await;
    assert_eq!(timers, vec![first.clone()]);
    let second = Scheduled::step(&id, at, 1, &script).unwrap();
    assert_eq!((second.due_ms, &second.key), (at + 1500, &first.key));
    assert!(
        store
            .advance(&taken_over[0], Some(second.clone()))
            .await
            .unwrap()
    );
    // The first claimant finishing late ends nothing: the store holds the next step now.
    let stray = Scheduled::no_answer(&SessionId::parse("stray").unwrap(), at);
    assert!(!store.advance(&held[0], Some(stray)).await.unwrap());
    let (due, timers, next) = claim(at + 60_000).await;
    assert_eq!(
        (timers, next),
        (vec![second.clone(), no_answer.clone()], Some(at + 90_000))
    );
    assert!(store.advance(&due[0], None).await.unwrap());
    assert!(store.advance(&due[1], None).await.unwrap());
    assert_eq!(claim(u64::MAX / 2).await, (vec![], vec![], None));

    // A session's timers go when it ends, and when it is removed; others' stay.
    for (name, end) in [("ends", true), ("removed", false)] {
        let id = SessionId::parse(name).unwrap();
        let step = Scheduled::step(&id, at, 0, &script).unwrap();
        let timers = vec![step, Scheduled::no_answer(&id, at + 60_000)];
        store.insert_with(session(name), timers).await.unwrap();
        if end {
            let busy = Session {
                status: SessionStatus::Busy,
                ..session(name)
            };
            store.compare_and_swap(1, Arc::new(busy)).await.unwrap();
        } else {
            store.remove(&id).await.unwrap();
        }
    }
    let kept = Scheduled::no_answer(&SessionId::parse("kept").unwrap(), at);
    store
        .insert_with(session("kept"), vec![kept.clone()])
        .await
        .unwrap();
    assert_eq!(claim(u64::MAX / 2).await.1, vec![kept]);
}
