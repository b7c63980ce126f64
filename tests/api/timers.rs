//! The network's timers on Redis, end to end (DESIGN §12): replicas that share one Redis play
//! every script step and no-answer timer exactly once; a replica that dies holding a timer loses
//! none — another plays it once the claim's lease (`events.claim_idle_ms`) is over. The
//! replicas are real `serve` processes, each with its own metrics.

use std::collections::BTreeMap;
use std::time::Duration;

use camara_webrtc::store::{Limits, RedisStore, TimerStore, now_ms};
use reqwest::StatusCode;
use serde_json::json;

use crate::cli::Served;
use crate::helpers::*;
use crate::network::{HEARD_FROM_TEST_NUMBERS, statuses_by_session};
use crate::outbox::{bob_subscribes, call};
use crate::redis_server::{RedisServer, unique_prefix};
use crate::sink::Sink;

/// How long a claimed timer is held before another replica may fire it, in these tests.
const LEASE_MS: u64 = 3000;

/// A `serve` process on `redis` under `prefix` whose simulated times run at `time_scale`.
fn served(redis: &RedisServer, prefix: &str, time_scale: &str) -> Served {
    Served::start(&[
        ("CAMARA_WEBRTC__STORE__BACKEND", "redis"),
        ("CAMARA_WEBRTC__STORE__REDIS_URL", redis.url.as_str()),
        ("CAMARA_WEBRTC__STORE__KEY_PREFIX", prefix),
        (
            "CAMARA_WEBRTC__EVENTS__CLAIM_IDLE_MS",
            &LEASE_MS.to_string(),
        ),
        ("CAMARA_WEBRTC__NETWORK__TIME_SCALE", time_scale),
    ])
}

/// Bob calls test number `n` (`tel:+120255501nn`) through the replica at `address`; the id.
async fn bob_calls_number(address: &str, n: usize) -> String {
    let body = json!({
        "originatorAddress": RECEIVER, "receiverAddress": format!("tel:+120255501{n:02}"),
        "offer": { "sdp": CLEAN_SDP }
    });
    let method = reqwest::Method::POST;
    let created = call(
        address,
        method,
        "/webrtc/sessions",
        RECEIVER,
        body,
        StatusCode::CREATED,
    );
    created.await["mediaSessionId"].as_str().unwrap().to_owned()
}

/// Waits (at most 30 s) until the sink has every status `expected` lists, then a second more;
/// asserts that every call was heard exactly as `expected` says (nothing twice, nothing
/// missing). Copies of one event (same id: resent after a replica died before it recorded the
/// delivery) count once.
async fn heard_exactly(sink: &Sink, expected: &BTreeMap<String, Vec<String>>) {
    let count = expected.values().map(Vec::len).sum();
    let statuses = || {
        let mut ids = std::collections::HashSet::new();
        (sink.received().into_iter())
            .filter(|r| {
                r.body["type"]
                    .as_str()
                    .unwrap()
                    .ends_with(".session-status")
            })
            .filter(|r| ids.insert(r.body["id"].as_str().unwrap().to_owned()))
            .collect::<Vec<_>>()
    };
    for _ in 0..600 {
        if statuses().len() >= count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(&statuses_by_session(&statuses()), expected);
}

/// The count of `camara_webrtc_timers_fired_total{kind}` in the replica at `address`.
async fn fired(address: &str, kind: &str) -> u64 {
    let metrics = reqwest::get(format!("{address}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let prefix = format!("camara_webrtc_timers_fired_total{{kind=\"{kind}\"}} ");
    (metrics.lines())
        .find_map(|line| line.strip_prefix(&prefix))
        .map_or(0, |n| n.parse().unwrap())
}

/// Five calls to each test number, placed through two replicas in turn: every call plays its
/// script, and the replicas together fire each timer once: 90 steps, and the no-answer timers
/// of the 25 calls not over by then (the others' went with their sessions).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_fire_every_timer_once() {
    let Some(redis) = RedisServer::start("two_replicas_fire_every_timer_once") else {
        return;
    };
    let prefix = unique_prefix("timers-two");
    let sink = Sink::start().await;
    let replicas = [
        served(&redis, &prefix, "0.01"),
        served(&redis, &prefix, "0.01"),
    ];
    let addresses = replicas.each_ref().map(|r| format!("http://{}", r.address));
    bob_subscribes(&addresses[0], &sink).await;
    let mut expected = BTreeMap::new();
    for round in 0..5 {
        for (n, heard) in HEARD_FROM_TEST_NUMBERS.iter().enumerate() {
            let id = bob_calls_number(&addresses[(round + n) % 2], n).await;
            expected.insert(id, heard.iter().map(|s| (*s).to_owned()).collect());
        }
    }
    heard_exactly(&sink, &expected).await;
    // The last no-answer timers may still be firing: wait (at most 30 s) for the count, then
    // see that it stays.
    let totals = || async {
        let mut totals = [0; 2];
        for address in &addresses {
            totals[0] += fired(address, "step").await;
            totals[1] += fired(address, "no_answer").await;
        }
        totals
    };
    for _ in 0..300 {
        if totals().await == [90, 25] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(totals().await, [90, 25]);
}

/// A replica that claims a timer and dies (the test claims it as a replica would, and never
/// finishes it) loses nothing: once the lease is over the live replica plays the step. Then a
/// real replica is killed (SIGKILL) while both play scripts: every call still ends as its script
/// says, each change heard once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_dies_holding_timers_loses_none() {
    let Some(redis) = RedisServer::start("a_replica_that_dies_holding_timers_loses_none") else {
        return;
    };
    let prefix = unique_prefix("timers-kill");
    let sink = Sink::start().await;
    let live = served(&redis, &prefix, "1");
    let address = format!("http://{}", live.address);
    bob_subscribes(&address, &sink).await;
    // An incoming call whose caller hangs up after 2 s.
    let admin = network_token(&camara_webrtc::config::Config::embedded().auth);
    let call = json!({
        "originatorAddress": "tel:+12025550123", "receiverAddress": RECEIVER,
        "offer": { "sdp": CLEAN_SDP },
        "steps": [{ "afterMs": 2000, "status": "SessionCancelled", "reason": "Caller hung up" }]
    });
    let placed = (reqwest::Client::new().post(format!("{address}/network/v1/calls")))
        .bearer_auth(admin)
        .json(&call)
        .send()
        .await
        .unwrap();
    let id = json_with(placed, StatusCode::CREATED).await["mediaSessionId"]
        .as_str()
        .unwrap()
        .to_owned();
    let now = now_ms();
    // Before the step is due, a replica claims it and dies.
    let limits = Limits {
        capacity: 8,
        per_owner: 8,
        ended_ttl: Duration::from_secs(60),
    };
    let dead = RedisStore::new(&redis.url, &prefix, limits, Duration::from_secs(2)).unwrap();
    let lease = Duration::from_millis(LEASE_MS);
    let (claimed, _) = dead.claim_timers(now + 2000, lease, 8).await.unwrap();
    let keys: Vec<&str> = claimed.iter().map(|c| c.scheduled.key.as_str()).collect();
    assert_eq!(keys, [format!("{id}/step")]);
    drop(dead);
    let expected = BTreeMap::from([(id, vec!["SessionCancelled (Caller hung up)".to_owned()])]);
    heard_exactly(&sink, &expected).await;
    assert!(
        now_ms() >= now + 2000 + LEASE_MS,
        "played after the lease only"
    );
    assert_eq!(fired(&address, "step").await, 1);

    let doomed = served(&redis, &prefix, "0.1");
    let doomed_address = format!("http://{}", doomed.address);
    let mut expected = expected;
    for _ in 0..3 {
        for (n, heard) in HEARD_FROM_TEST_NUMBERS.iter().enumerate() {
            let id = bob_calls_number(&doomed_address, n).await;
            expected.insert(id, heard.iter().map(|s| (*s).to_owned()).collect());
        }
    }
    // Mid-script (the longest runs 500 ms at this scale, the no-answer time 6 s): killed.
    tokio::time::sleep(Duration::from_millis(150)).await;
    doomed.kill();
    heard_exactly(&sink, &expected).await;
}
