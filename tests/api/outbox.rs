//! The Redis store's outbox, end to end: replicas that share one Redis deliver every event of
//! every committed change to a real sink, exactly once while both live; at least once (with the
//! same event ids) when one is killed mid-run, or when Redis itself restarts from its
//! append-only file. The killed replica is a real `serve` process, killed with SIGKILL.

use std::collections::{BTreeMap, BTreeSet};

use camara_webrtc::config::{Backend, Config, Secret};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::cli::Served;
use crate::helpers::*;
use crate::redis_server::{RedisServer, unique_prefix};
use crate::sink::Sink;

const PREFIX: &str = "org.camaraproject.webrtc-events.v0";

/// How long a change may be left idle before another replica takes it over, in these tests
/// (claims are renewed every third of it: long enough for a loaded machine).
const CLAIM_IDLE_MS: &str = "3000";

/// Calls each test places: each makes an invitation and one session-status.
const CALLS: usize = 10;

/// An in-process replica on `redis` under `prefix`, taking changes over after
/// [`CLAIM_IDLE_MS`], retrying every second for half a minute, waiting 30 s for an answer.
async fn replica(redis: &RedisServer, prefix: &str) -> TestApp {
    let mut config = Config::embedded();
    config.store.backend = Backend::Redis;
    config.store.redis_url = Some(Secret::new(&redis.url));
    config.store.key_prefix = prefix.to_owned();
    config.events.claim_idle_ms = CLAIM_IDLE_MS.parse().unwrap();
    config.events.retry_schedule_ms = vec![1000; 30];
    config.events.delivery_timeout_ms = 30_000;
    spawn_with(config).await
}

/// How many recorded changes each replica (consumer) holds unfinished in the outbox.
async fn held_by_consumer(redis: &RedisServer, prefix: &str) -> Vec<u64> {
    let client = redis::Client::open(redis.url.as_str()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    type Summary = (u64, redis::Value, redis::Value, Option<Vec<(String, u64)>>);
    let (_, _, _, consumers): Summary = redis::cmd("XPENDING")
        .arg(format!("{prefix}outbox"))
        .arg("dispatch")
        .query_async(&mut con)
        .await
        .unwrap();
    consumers
        .unwrap_or_default()
        .into_iter()
        .map(|(_, n)| n)
        .collect()
}

/// A `serve` process on `redis` under `prefix` (the embedded config otherwise: its retries
/// come after 1 s, 5 s, 30 s…).
fn served(redis: &RedisServer, prefix: &str) -> Served {
    Served::start(&[
        ("CAMARA_WEBRTC__STORE__BACKEND", "redis"),
        ("CAMARA_WEBRTC__STORE__REDIS_URL", redis.url.as_str()),
        ("CAMARA_WEBRTC__STORE__KEY_PREFIX", prefix),
        ("CAMARA_WEBRTC__EVENTS__CLAIM_IDLE_MS", CLAIM_IDLE_MS),
    ])
}

/// A token of the embedded config (every replica here verifies with its key).
fn token(sub: &str) -> String {
    let auth = Config::embedded().auth;
    let scopes = crate::delivery::every_scope();
    camara_webrtc::auth::mint(&auth, sub, &scopes, Some("app"), 3600).unwrap()
}

/// `method path` with `body` on the replica at `address`, answered `status`; its JSON.
pub async fn call(
    address: &str,
    method: reqwest::Method,
    path: &str,
    sub: &str,
    body: Value,
    status: StatusCode,
) -> Value {
    let response = reqwest::Client::new()
        .request(method, format!("{address}{path}"))
        .bearer_auth(token(sub))
        // The embedded config's registration for calls (`sessions.registrations`).
        .header("registrationId", "a4b1c2d3-0000-4000-8000-000000000001")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), status, "{path}");
    response.json().await.unwrap_or(Value::Null)
}

/// Bob registers through the replica at `address` and subscribes `sink` to his invitations
/// and call updates.
pub async fn bob_subscribes(address: &str, sink: &Sink) {
    let device = json!({ "deviceId": uuid::Uuid::new_v4().to_string() });
    let path = "/webrtc-registration/vwip/sessions";
    let registered = call(
        address,
        reqwest::Method::POST,
        path,
        RECEIVER,
        device,
        StatusCode::CREATED,
    );
    let registration = registered.await["registrationId"].clone();
    let subscription = json!({
        "protocol": "HTTP", "sink": sink.url,
        "types": [format!("{PREFIX}.session-invitation"), format!("{PREFIX}.session-status")],
        "config": { "subscriptionDetail": { "registrationId": registration } }
    });
    let path = "/webrtc-events/vwip/subscriptions";
    call(
        address,
        reqwest::Method::POST,
        path,
        RECEIVER,
        subscription,
        StatusCode::CREATED,
    )
    .await;
}

/// Alice calls Bob [`CALLS`] times, each call created through one replica of `addresses` in
/// turn and rung through the next; what the sink must get: (session, type, sequenceNumber).
async fn calls_through(addresses: &[&str]) -> BTreeSet<(String, String, u64)> {
    let mut expected = BTreeSet::new();
    for i in 0..CALLS {
        let (create, ring) = (
            addresses[i % addresses.len()],
            addresses[(i + 1) % addresses.len()],
        );
        let offer = json!({
            "originatorAddress": ORIGINATOR, "receiverAddress": RECEIVER,
            "offer": { "sdp": CLEAN_SDP }
        });
        let created = call(
            create,
            reqwest::Method::POST,
            "/webrtc/sessions",
            ORIGINATOR,
            offer,
            StatusCode::CREATED,
        );
        let id = created.await["mediaSessionId"].as_str().unwrap().to_owned();
        let path = format!("/webrtc/sessions/{id}/status");
        let ringing = json!({ "status": "Ringing" });
        call(
            ring,
            reqwest::Method::PUT,
            &path,
            RECEIVER,
            ringing,
            StatusCode::OK,
        )
        .await;
        expected.insert((id.clone(), format!("{PREFIX}.session-invitation"), 1));
        expected.insert((id, format!("{PREFIX}.session-status"), 2));
    }
    expected
}

/// The (session, type, sequenceNumber) of an event.
fn key(event: &Value) -> (String, String, u64) {
    let data = &event["data"];
    (
        data["mediaSessionId"].as_str().unwrap().to_owned(),
        event["type"].as_str().unwrap().to_owned(),
        data["sequenceNumber"].as_u64().unwrap(),
    )
}

/// Waits (at most 30 s, nothing timed) until the sink has taken an event of every key of
/// `expected`; asserts that it took nothing else and that every copy of an event, taken or
/// refused, carried the same id.
async fn every_event_delivered(sink: &Sink, expected: &BTreeSet<(String, String, u64)>) {
    for _ in 0..600 {
        let delivered: BTreeSet<_> = sink.delivered().iter().map(key).collect();
        if delivered.len() >= expected.len() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let delivered: BTreeSet<_> = sink.delivered().iter().map(key).collect();
    assert_eq!(&delivered, expected);
    let mut ids: BTreeMap<(String, String, u64), BTreeSet<String>> = BTreeMap::new();
    for received in sink.received() {
        let id = received.body["id"].as_str().unwrap().to_owned();
        ids.entry(key(&received.body)).or_default().insert(id);
    }
    for (event, ids) in ids {
        assert_eq!(
            ids.len(),
            1,
            "{event:?} was sent with different ids: {ids:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_deliver_every_event_exactly_once() {
    let Some(redis) = RedisServer::start("two_replicas_deliver_every_event_exactly_once") else {
        return;
    };
    let prefix = unique_prefix("outbox");
    let (a, b) = (
        replica(&redis, &prefix).await,
        replica(&redis, &prefix).await,
    );
    let sink = Sink::start().await;
    bob_subscribes(&a.address, &sink).await;
    let expected = calls_through(&[&a.address, &b.address]).await;
    every_event_delivered(&sink, &expected).await;
    // Longer than a change may be left idle: nothing is taken over and sent again.
    tokio::time::sleep(std::time::Duration::from_millis(4000)).await;
    let received = sink.received();
    assert_eq!(received.len(), expected.len(), "each event once");
    let ids: BTreeSet<&str> = received
        .iter()
        .map(|r| r.body["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), expected.len());
}

/// A sink that takes longer to answer than a change may be left idle: the replicas working on
/// the changes keep them claimed, so neither takes the other's over, and each event is sent once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_sink_does_not_make_live_replicas_send_twice() {
    let Some(redis) = RedisServer::start("a_slow_sink_does_not_make_live_replicas_send_twice")
    else {
        return;
    };
    let prefix = unique_prefix("outbox-slow");
    let (a, b) = (
        replica(&redis, &prefix).await,
        replica(&redis, &prefix).await,
    );
    let sink = Sink::start().await;
    bob_subscribes(&a.address, &sink).await;
    let held = sink.hold().await;
    let expected = calls_through(&[&a.address, &b.address]).await;
    sink.wait_for(expected.len()).await;
    // Longer than claim_idle_ms, within the delivery timeout.
    tokio::time::sleep(std::time::Duration::from_millis(4500)).await;
    drop(held);
    every_event_delivered(&sink, &expected).await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(sink.received().len(), expected.len(), "each event once");
}

/// One replica is killed while the sink still refuses every event (so the changes it took are
/// unfinished); the other takes them over and every event arrives, with the ids it first had.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_run_loses_no_event() {
    let Some(redis) = RedisServer::start("a_replica_killed_mid_run_loses_no_event") else {
        return;
    };
    let prefix = unique_prefix("outbox-kill");
    let sink = Sink::start().await;
    sink.otherwise(Some(503));
    let a = served(&redis, &prefix);
    let a_address = format!("http://{}", a.address);
    let b = replica(&redis, &prefix).await;
    bob_subscribes(&a_address, &sink).await;
    let expected = calls_through(&[&a_address, &b.address]).await;
    // Every event has had its first attempt (refused), and both replicas hold changes.
    sink.wait_for(expected.len()).await;
    let held = held_by_consumer(&redis, &prefix).await;
    assert!(held.len() == 2 && held.iter().all(|n| *n > 0), "{held:?}");
    a.kill();
    sink.otherwise(None);
    every_event_delivered(&sink, &expected).await;
}

/// Changes recorded and not yet delivered survive a restart of Redis from its append-only file:
/// the replica that took them is gone too, and a new one delivers them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_with_persistence_loses_no_event() {
    let Some(mut redis) =
        RedisServer::spawn_persistent("a_redis_restart_with_persistence_loses_no_event")
    else {
        return;
    };
    let prefix = unique_prefix("outbox-restart");
    let sink = Sink::start().await;
    sink.otherwise(Some(503));
    let a = served(&redis, &prefix);
    let a_address = format!("http://{}", a.address);
    bob_subscribes(&a_address, &sink).await;
    let expected = calls_through(&[&a_address]).await;
    sink.wait_for(expected.len()).await;
    a.kill();
    redis.stop();
    redis.restart();
    sink.otherwise(None);
    let _b = replica(&redis, &prefix).await;
    every_event_delivered(&sink, &expected).await;
}

/// A recorded change this version cannot read (a newer version's, during an upgrade) is left
/// pending for a replica that can, and the changes around it are delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_this_version_cannot_read_is_left_pending() {
    let Some(redis) = RedisServer::start("a_change_this_version_cannot_read_is_left_pending")
    else {
        return;
    };
    let prefix = unique_prefix("outbox-unreadable");
    let a = replica(&redis, &prefix).await;
    let sink = Sink::start().await;
    bob_subscribes(&a.address, &sink).await;
    let client = redis::Client::open(redis.url.as_str()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let _: String = redis::cmd("XADD")
        .arg(format!("{prefix}outbox"))
        .arg("*")
        .arg(&["k", "s2", "j", "{}"])
        .query_async(&mut con)
        .await
        .unwrap();
    let expected = calls_through(&[&a.address]).await;
    every_event_delivered(&sink, &expected).await;
    assert_eq!(held_by_consumer(&redis, &prefix).await, vec![1]);
    let length: u64 = redis::cmd("XLEN")
        .arg(format!("{prefix}outbox"))
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(
        length, 1,
        "the unreadable change is kept, the others deleted once done"
    );
}
