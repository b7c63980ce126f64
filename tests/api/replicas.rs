//! Several replicas on one Redis behave exactly like one process: what one writes the other reads,
//! racing writes through both serialise, and a starting replica never overwrites live state.
//! Then the faults: Redis down at start, and Redis stopped and restarted mid-run.

use std::collections::BTreeMap;
use std::time::Duration;

use camara_webrtc::config::{Backend, Config, Secret};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;
use crate::operations::sample;
use crate::redis_server::{RedisServer, unique_prefix};

/// The embedded config on the Redis at `url`, under `prefix`.
fn on_redis(url: &str, prefix: &str) -> Config {
    let mut config = Config::embedded();
    config.store.backend = Backend::Redis;
    config.store.redis_url = Some(Secret::new(url));
    config.store.key_prefix = prefix.to_owned();
    config.store.timeout_ms = 500;
    config
}

#[tokio::test]
async fn a_write_on_one_replica_is_read_on_the_other() {
    let Some(redis) = RedisServer::start("a_write_on_one_replica_is_read_on_the_other") else {
        return;
    };
    let prefix = unique_prefix("replicas");
    let (a, b) = (
        spawn_with(on_redis(&redis.url, &prefix)).await,
        spawn_with(on_redis(&redis.url, &prefix)).await,
    );
    let token = a.app_token(RECEIVER, "app");
    let body = json!({ "status": "Ringing" }).to_string();
    json_ok(a.put_status(FIXTURE_ID, &body, &token).await).await;
    let read = json_ok(b.get_session(FIXTURE_ID, &token).await).await;
    assert_eq!(read["status"], "Ringing");
    // A session created on one replica is ended on the other, and is gone on both.
    let alice = a.app_token(ORIGINATOR, "app");
    let call = json!({
        "originatorAddress": ORIGINATOR, "receiverAddress": RECEIVER,
        "offer": { "sdp": CLEAN_SDP }
    });
    let created = json_with(
        b.create("/webrtc", &call, &alice).await,
        StatusCode::CREATED,
    )
    .await;
    let id = created["mediaSessionId"].as_str().unwrap();
    assert_eq!(json_ok(a.get_session(id, &alice).await).await, created);
    assert_eq!(
        a.delete("/webrtc", id, &alice).await.status(),
        StatusCode::NO_CONTENT
    );
    for replica in [&a, &b] {
        let gone = replica.get_session(id, &alice).await;
        assert_not_found(gone).await;
    }
    // A replica that starts now loads the fixture only where absent: Ringing stays.
    let c = spawn_with(on_redis(&redis.url, &prefix)).await;
    let read = json_ok(c.get_session(FIXTURE_ID, &token).await).await;
    assert_eq!(read["status"], "Ringing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_puts_through_two_replicas_lose_nothing() {
    let Some(redis) = RedisServer::start("racing_puts_through_two_replicas_lose_nothing") else {
        return;
    };
    let prefix = unique_prefix("race");
    let replicas = [
        spawn_with(on_redis(&redis.url, &prefix)).await,
        spawn_with(on_redis(&redis.url, &prefix)).await,
    ];
    let token = replicas[0].app_token(RECEIVER, "app");
    for status in ["Ringing", "Connected"] {
        let body = json!({ "status": status }).to_string();
        json_ok(replicas[0].put_status(FIXTURE_ID, &body, &token).await).await;
    }
    let targets = ["Hold", "Resume", "Connected"];
    let mut tasks = Vec::new();
    for i in 0..200 {
        let replica = &replicas[i % 2];
        let request = replica
            .client
            .put(replica.status_url("/webrtc", FIXTURE_ID))
            .bearer_auth(&token)
            .json(&json!({ "status": targets[i % 3] }));
        tasks.push(tokio::spawn(async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let etag = etag_version(&response);
            let body: serde_json::Value = response.json().await.unwrap();
            (status, etag, body)
        }));
    }
    // version → status written; only 200 and 409 are acceptable answers.
    let mut winners = BTreeMap::new();
    for task in tasks {
        let (status, etag, body) = task.await.unwrap();
        match status {
            200 => {
                let version = etag.expect("a 200 carries its version");
                assert!(winners.insert(version, body["status"].clone()).is_none());
            }
            409 => {
                assert!(["INCOMPATIBLE_STATE", "ABORTED"].contains(&body["code"].as_str().unwrap()))
            }
            other => panic!("a racing PUT answered {other}: {body}"),
        }
    }
    let versions: Vec<u64> = winners.keys().copied().collect();
    let expected: Vec<u64> = (4..4 + versions.len() as u64).collect();
    assert_eq!(
        versions, expected,
        "consecutive versions: no write lost or doubled"
    );
    let last = replicas[1].get_session(FIXTURE_ID, &token).await;
    let etag = last.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(etag, format!("\"{}\"", expected.last().unwrap()));
    assert_eq!(
        json_ok(last).await["status"],
        *winners.values().last().unwrap()
    );
}

/// Polls `url` until it answers `status` (or gives up after 15 s).
async fn eventually(app: &TestApp, path: &str, token: Option<&str>, status: StatusCode) {
    for _ in 0..150 {
        let mut request = app.client.get(app.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if request.send().await.unwrap().status() == status {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{path} never answered {status}");
}

const UNAVAILABLE: &str = "Service Unavailable: the session store cannot be reached.";

/// With Redis unreachable, every answer is a prompt 503 — the client gives up after 10 s, so a
/// hang fails the test.
async fn assert_unavailable(app: &TestApp, token: &str) {
    let patience = Duration::from_secs(10);
    let client = &app.client;
    let ready = client.get(app.url("/health/ready")).timeout(patience);
    assert_error(ready.send().await.unwrap(), 503, "UNAVAILABLE", UNAVAILABLE).await;
    let read = client
        .get(app.url(&format!("/webrtc/sessions/{FIXTURE_ID}")))
        .timeout(patience)
        .bearer_auth(token);
    assert_error(read.send().await.unwrap(), 503, "UNAVAILABLE", UNAVAILABLE).await;
    let write = client
        .put(app.status_url("/webrtc", FIXTURE_ID))
        .timeout(patience)
        .bearer_auth(token)
        .json(&json!({ "status": "Ringing" }));
    assert_error(write.send().await.unwrap(), 503, "UNAVAILABLE", UNAVAILABLE).await;
    let live = client
        .get(app.url("/health/live"))
        .timeout(patience)
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), StatusCode::OK, "the process itself is up");
}

#[tokio::test]
async fn redis_down_at_start_then_up_recovers_without_a_restart() {
    let Some(mut redis) =
        RedisServer::reserved("redis_down_at_start_then_up_recovers_without_a_restart")
    else {
        return;
    };
    let app = spawn_with(on_redis(&redis.url, &unique_prefix("down-at-start"))).await;
    let token = app.app_token(RECEIVER, "app");
    assert_unavailable(&app, &token).await;
    redis.restart();
    eventually(&app, "/health/ready", None, StatusCode::OK).await;
    // The fixture sessions are loaded in the background once Redis answers.
    let path = format!("/webrtc/sessions/{FIXTURE_ID}");
    eventually(&app, &path, Some(&token), StatusCode::OK).await;
}

#[tokio::test]
async fn redis_stopped_and_restarted_mid_run_recovers_without_a_restart() {
    let Some(mut redis) =
        RedisServer::spawn("redis_stopped_and_restarted_mid_run_recovers_without_a_restart")
    else {
        return;
    };
    let app = spawn_with(on_redis(&redis.url, &unique_prefix("restart"))).await;
    let token = app.app_token(RECEIVER, "app");
    json_ok(app.get_session(FIXTURE_ID, &token).await).await;
    redis.stop();
    assert_unavailable(&app, &token).await;
    redis.restart();
    eventually(&app, "/health/ready", None, StatusCode::OK).await;
    // The restarted Redis kept nothing (no persistence); the service works on it at once.
    let alice = app.app_token(ORIGINATOR, "app");
    let call = json!({
        "originatorAddress": ORIGINATOR, "receiverAddress": RECEIVER,
        "offer": { "sdp": CLEAN_SDP }
    });
    let created = json_with(
        app.create("/webrtc", &call, &alice).await,
        StatusCode::CREATED,
    )
    .await;
    let id = created["mediaSessionId"].as_str().unwrap();
    assert_eq!(json_ok(app.get_session(id, &alice).await).await, created);
}

/// A store written before the session counts were kept (sessions without their `st`/`o` fields,
/// no `counts`, no `owners`; one whose status a newer replica has since written, so it has `st`
/// but no `o`; one whose JSON does not decode): replicas starting on it count every session once,
/// however many of them start, leaving the undecodable one out; from then on `/metrics` reads the
/// counts without reading a session, and the per-consumer quota counts the old sessions too.
#[tokio::test]
async fn counts_of_an_older_store_are_built_once_and_scrapes_read_only_them() {
    let Some(redis) = RedisServer::start("counts_of_an_older_store_are_built_once") else {
        return;
    };
    let prefix = unique_prefix("counts");
    let client = redis::Client::open(redis.url.as_str()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let mut old = Config::embedded().fixture_sessions().unwrap().remove(0);
    for (id, status, counted) in [
        ("old-1", "Ringing", None),
        ("old-2", "Ringing", None),
        ("old-3", "Hold", Some("Hold")),
        ("old-4", "Connected", None),
    ] {
        old.id = camara_webrtc::domain::SessionId::parse(id).unwrap();
        old.status = status.to_owned().try_into().unwrap();
        old.owner = Some("old-app".into());
        let json = match id {
            "old-4" => "{not json".to_owned(),
            _ => serde_json::to_string(&old).unwrap(),
        };
        let mut fields = vec![("v", "1".to_owned()), ("s", json)];
        fields.extend(counted.map(|st| ("st", st.to_owned())));
        let _: () = redis::pipe()
            .cmd("HSET")
            .arg(format!("{prefix}session:{id}"))
            .arg(fields)
            .cmd("SADD")
            .arg(format!("{prefix}live"))
            .arg(id)
            .query_async(&mut con)
            .await
            .unwrap();
    }
    // old-3's status was counted by the replica that wrote its `st`.
    let _: () = redis::cmd("HSET")
        .arg(format!("{prefix}counts"))
        .arg("Hold")
        .arg(1)
        .query_async(&mut con)
        .await
        .unwrap();
    let mut config = on_redis(&redis.url, &prefix);
    config.sessions.max_sessions_per_consumer = 3;
    let (app, _second) = (spawn_with(config.clone()).await, spawn_with(config).await);
    let text = app.get("/metrics").await.text().await.unwrap();
    for (status, n) in [("Ringing", 2.0), ("Hold", 1.0), ("Initial", 1.0)] {
        let series = format!("camara_webrtc_sessions{{status=\"{status}\"}}");
        assert_eq!(sample(&text, &series), n, "{series}");
    }
    // A scrape reads the counts, not the sessions: a session's JSON made unreadable changes
    // nothing in it.
    let _: () = redis::cmd("HSET")
        .arg(format!("{prefix}session:old-1"))
        .arg("s")
        .arg("not json")
        .query_async(&mut con)
        .await
        .unwrap();
    let again = app.get("/metrics").await.text().await.unwrap();
    assert_eq!(
        sample(&again, r#"camara_webrtc_sessions{status="Ringing"}"#),
        2.0
    );
    // old-app's three old sessions fill its quota.
    assert_error(
        app.create("/webrtc", &new_call_body(), &app.app_token(ORIGINATOR, "old-app"))
            .await,
        429,
        "QUOTA_EXCEEDED",
        "Out of resource quota: this API consumer holds its maximum of 3 live sessions; end one to create another.",
    )
    .await;
}

fn new_call_body() -> serde_json::Value {
    json!({
        "originatorAddress": ORIGINATOR,
        "receiverAddress": RECEIVER,
        "offer": { "sdp": CLEAN_SDP }
    })
}
