//! The console (DESIGN §12): `GET /network/v1/stream` as a follower reads it (what it shows
//! first, every change after, a slow follower dropped, the end on shutdown), the network's
//! masked view of a session, and the page with its policy. The page in a real browser is
//! `console_browser`.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

const STREAM: &str = "/network/v1/stream";

/// A hang guard only: every event awaited is due at once.
const HANG_GUARD: Duration = Duration::from_secs(30);

/// One Server-Sent Event as a follower reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Its number in the instance's feed (absent in the first look at the store and `ready`).
    pub id: Option<u64>,
    pub kind: String,
    pub data: Value,
}

/// A follower of the stream, reading it as it comes.
pub struct Follower {
    response: reqwest::Response,
    buffer: String,
    /// Comments (keep-alives) read so far.
    pub comments: usize,
}

impl Follower {
    /// Follows the stream of the app at `address` with `token`: 200, `text/event-stream`.
    pub async fn start(address: &str, token: &str) -> Self {
        // Not the contract client: it reads whole bodies, and this one does not end.
        let response = reqwest::Client::new()
            .get(format!("{address}{STREAM}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let headers = response.headers();
        assert_eq!(headers["content-type"], "text/event-stream");
        assert_eq!(headers["cache-control"], "no-cache");
        assert_eq!(headers["x-accel-buffering"], "no");
        Self {
            response,
            buffer: String::new(),
            comments: 0,
        }
    }

    /// The next event, `None` once the stream has ended.
    pub async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                match parse(&block) {
                    Some(event) => return Some(event),
                    None => {
                        self.comments += 1;
                        continue;
                    }
                }
            }
            let chunk = tokio::time::timeout(HANG_GUARD, self.response.chunk())
                .await
                .expect("the stream says something")
                .expect("the stream reads");
            match chunk {
                Some(bytes) => self.buffer.push_str(std::str::from_utf8(&bytes).unwrap()),
                None => {
                    assert_eq!(self.buffer, "", "the stream ended inside an event");
                    return None;
                }
            }
        }
    }

    /// Every event up to and including the first of `kind`.
    pub async fn until(&mut self, kind: &str) -> Vec<Event> {
        let mut read = Vec::new();
        loop {
            let event = self.next().await.expect("the stream goes on");
            let done = event.kind == kind;
            read.push(event);
            if done {
                return read;
            }
        }
    }

    /// The next `count` events.
    pub async fn take(&mut self, count: usize) -> Vec<Event> {
        let mut read = Vec::with_capacity(count);
        for _ in 0..count {
            read.push(self.next().await.expect("the stream goes on"));
        }
        read
    }
}

/// One SSE block: `None` for a comment. Every event carries one `data` line of JSON.
fn parse(block: &str) -> Option<Event> {
    let mut id = None;
    let mut kind = None;
    let mut data = None;
    for line in block.lines() {
        if line.is_empty() || line.starts_with(':') {
            continue;
        }
        let (field, value) = line
            .split_once(": ")
            .unwrap_or_else(|| panic!("field: value in {block:?}"));
        match field {
            "id" => id = Some(value.parse().unwrap()),
            "event" => kind = Some(value.to_owned()),
            "data" => {
                assert!(data.is_none(), "one data line per event: {block}");
                data = Some(serde_json::from_str(value).unwrap());
            }
            other => panic!("an unexpected field {other} in {block}"),
        }
    }
    let kind = kind?;
    Some(Event {
        id,
        kind,
        data: data.expect("every event has data"),
    })
}

/// The record's times (`at`, `expiresAt`) checked as RFC 3339 UTC and replaced by `"<time>"`, and
/// its body checked against its schema in the OpenAPI document.
fn shown(event: &Event) -> Value {
    let schema = match event.kind.as_str() {
        "session" => "StreamSession",
        "registration" => "StreamRegistration",
        "subscription" => "StreamSubscription",
        "delivery" => "StreamDelivery",
        "ready" => "StreamReady",
        "dropped" => "StreamDropped",
        other => panic!("an unknown kind {other}"),
    };
    let pointer = format!("#/components/schemas/{schema}");
    crate::contract::DOCUMENT
        .validate(&pointer, &event.data)
        .unwrap_or_else(|e| panic!("{} does not fit {schema}: {e}", event.data));
    let mut data = event.data.clone();
    for field in ["at", "expiresAt"] {
        if let Some(time) = data.get_mut(field) {
            let text = time.as_str().unwrap();
            assert!(
                text.len() == 24 && text.ends_with('Z') && text.as_bytes()[10] == b'T',
                "{text}"
            );
            *time = json!("<time>");
        }
    }
    json!({ "id": event.id, "event": event.kind, "data": data })
}

/// A sink as records show it: its origin and the first 8 hex digits of the UUIDv5 (URL
/// namespace) of its URL (the test sink's path is `/events`).
fn sink_shown(url: &str) -> String {
    let origin = url.strip_suffix("/events").expect("the test sink's path");
    let digest = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, url.as_bytes()).simple();
    format!("{origin} ({})", &digest.to_string()[..8])
}

/// Waits until the app's feed holds `count` records (the emitter is off the request path).
async fn feed_holds(app: &TestApp, count: usize) {
    for _ in 0..400 {
        if app.state.feed.follow().0.len() >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the feed never held {count} records");
}

/// The fixture as the feed shows it at version 1.
fn fixture_record(at: bool) -> Value {
    let mut record = json!({
        "id": FIXTURE_ID, "version": 1, "status": "Initial",
        "originator": ORIGINATOR, "receiver": RECEIVER, "direction": "incoming",
        "onNet": false, "callType": "REGULAR", "deleted": false,
        "hasOffer": true, "hasAnswer": false,
        "moves": ["InProgress", "Ringing", "Proceeding", "Waiting", "Connected", "Busy",
                  "Declined", "NoAnswer", "NotReachable", "Failed", "SessionCancelled"]
    });
    if at {
        record["at"] = json!("<time>");
    }
    record
}

/// A follower first gets the history this instance kept (the fixture's creation), then a look
/// at the store, then `ready`; then, as they happen, Bob's registration and subscription, Alice's
/// call, the network's Ringing and the delivery of its `session-status` to Bob's sink — every
/// record whole, numbered in order, fitting its schema, holding no SDP or credential.
#[tokio::test]
async fn the_stream_shows_what_was_kept_then_the_store_then_every_change() {
    let app = spawn_app().await;
    feed_holds(&app, 1).await;
    let mut follower = Follower::start(&app.address, &app.admin_token()).await;
    let first: Vec<Value> = follower.until("ready").await.iter().map(shown).collect();
    assert_eq!(
        first,
        [
            json!({ "id": 1, "event": "session", "data": fixture_record(true) }),
            json!({ "id": null, "event": "session", "data": fixture_record(false) }),
            json!({ "id": null, "event": "ready", "data": {
                "sessions": { "shown": 1, "total": 1 },
                "registrations": { "shown": 0, "total": 0 },
                "subscriptions": { "shown": 0, "total": 0 },
                "history": 1
            }}),
        ]
    );

    let (_, sink, registration, subscription) =
        crate::network::subscribes(&app, RECEIVER, "app", &["session-status"]).await;
    let (_, call) = crate::network::alice_calls(&app, "app").await;
    let id = call["mediaSessionId"].as_str().unwrap();
    let moved = app
        .client
        .post(app.url(&format!("/network/v1/sessions/{id}/events")))
        .bearer_auth(app.admin_token())
        .json(&json!({ "status": "Ringing" }))
        .send()
        .await
        .unwrap();
    json_ok(moved).await;
    let delivered = sink.wait_for(1).await;
    let event_id = delivered[0].body["id"].as_str().unwrap();

    let later: Vec<Value> = follower.take(5).await.iter().map(shown).collect();
    let session = |version: u64, status: &str, moves: Value| {
        json!({
            "id": id, "version": version, "status": status,
            "originator": ORIGINATOR, "receiver": RECEIVER, "direction": "outgoing",
            "onNet": false, "callType": "REGULAR", "deleted": false,
            "hasOffer": true, "hasAnswer": false, "at": "<time>", "moves": moves
        })
    };
    let before_connected = json!([
        "InProgress",
        "Ringing",
        "Proceeding",
        "Waiting",
        "Connected",
        "Busy",
        "Declined",
        "NoAnswer",
        "NotReachable",
        "Failed",
        "SessionCancelled"
    ]);
    let sink_url = sink_shown(&sink.url);
    assert_eq!(
        later,
        [
            json!({ "id": 2, "event": "registration", "data": {
                "id": registration, "deviceId": "7d444840-9dc0-11d1-b245-5ffdce74fad2",
                "phoneNumber": "+17085854000", "consumer": "app",
                "expiresAt": "<time>", "proven": true
            }}),
            json!({ "id": 3, "event": "subscription", "data": {
                "id": subscription, "consumer": "app", "sink": sink_url,
                "types": ["session-status"], "phoneNumbers": ["+17085854000"],
                "registrationId": registration
            }}),
            json!({ "id": 4, "event": "session",
                    "data": session(1, "Initial", before_connected.clone()) }),
            json!({ "id": 5, "event": "session",
                    "data": session(2, "Ringing", before_connected) }),
            json!({ "id": 6, "event": "delivery", "data": {
                "eventId": event_id, "type": "session-status", "subscriptionId": subscription,
                "sink": sink_url, "sessionId": id, "outcome": "delivered",
                "httpStatus": 204, "attempt": 1, "at": "<time>"
            }}),
        ]
    );
}

/// A sink that refuses: each attempt shows `retrying` with the sink's status and the attempt's
/// number, the last one `dropped`; one that answers 410 shows `gone`.
#[tokio::test]
async fn deliveries_show_each_attempt_and_how_the_event_ended() {
    let mut config = camara_webrtc::Config::embedded();
    config.events.retry_schedule_ms = vec![10, 10];
    let app = spawn_with(config).await;
    let mut follower = Follower::start(&app.address, &app.admin_token()).await;
    follower.until("ready").await;
    let (_, sink, _, subscription) =
        crate::network::subscribes(&app, RECEIVER, "app", &["session-invitation"]).await;
    sink.answer(&[(503, None), (500, None), (500, None)]);
    crate::network::alice_calls(&app, "app").await;
    let mut outcomes = Vec::new();
    while outcomes.len() < 3 {
        let event = follower.next().await.unwrap();
        if event.kind == "delivery" {
            let data = &event.data;
            assert_eq!(data["subscriptionId"], subscription);
            assert_eq!(data["type"], "session-invitation");
            outcomes.push(json!([
                data["outcome"],
                data["httpStatus"],
                data["attempt"]
            ]));
        }
    }
    assert_eq!(
        outcomes,
        [
            json!(["retrying", 503, 1]),
            json!(["retrying", 500, 2]),
            json!(["dropped", 500, 3])
        ]
    );
    sink.answer(&[(410, None)]);
    crate::network::alice_calls(&app, "app").await;
    loop {
        let event = follower.next().await.unwrap();
        if event.kind == "delivery" {
            assert_eq!(
                json!([
                    event.data["outcome"],
                    event.data["httpStatus"],
                    event.data["attempt"]
                ]),
                json!(["gone", 410, 1])
            );
            break;
        }
    }
}

/// An event waiting for its retry when its subscription ends is dropped: the record says so,
/// with the attempts made and no HTTP status of its own (the console keeps the last one).
#[tokio::test]
async fn an_event_waiting_to_retry_is_dropped_when_its_subscription_ends() {
    let mut config = camara_webrtc::Config::embedded();
    // Time enough to delete the subscription before the retry (jittered to 4 s at the least).
    config.events.retry_schedule_ms = vec![5_000];
    let app = spawn_with(config).await;
    let mut follower = Follower::start(&app.address, &app.admin_token()).await;
    follower.until("ready").await;
    let (bob, sink, _, subscription) =
        crate::network::subscribes(&app, RECEIVER, "app", &["session-invitation"]).await;
    sink.answer(&[(503, None)]);
    crate::network::alice_calls(&app, "app").await;
    let deliveries = |event: &Event| {
        (event.kind == "delivery" && event.data["type"] == "session-invitation").then(|| {
            json!([
                event.data["outcome"],
                event.data["httpStatus"],
                event.data["attempt"]
            ])
        })
    };
    let first = loop {
        if let Some(seen) = deliveries(&follower.next().await.unwrap()) {
            break seen;
        }
    };
    assert_eq!(first, json!(["retrying", 503, 1]));
    let path = format!(
        "/webrtc-events/vwip/subscriptions/{}",
        subscription.as_str().unwrap()
    );
    let deleted = send_scenario(&app, reqwest::Method::DELETE, &path, Some(&bob), None).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let last = loop {
        if let Some(seen) = deliveries(&follower.next().await.unwrap()) {
            break seen;
        }
    };
    assert_eq!(last, json!(["dropped", null, 1]));
}

/// A follower that reads nothing falls behind while records pour in: it is dropped (told so,
/// its stream ends), while a follower that keeps up gets every record, and the service goes on
/// answering throughout.
#[tokio::test]
async fn a_follower_that_falls_behind_is_dropped_and_one_that_keeps_up_is_not() {
    const RECORDS: usize = 6_000;
    const BATCH: usize = 500;
    let app = spawn_app().await;
    feed_holds(&app, 1).await;
    let token = app.admin_token();
    let mut slow = Follower::start(&app.address, &token).await;
    slow.until("ready").await;
    let mut fast = Follower::start(&app.address, &token).await;
    fast.until("ready").await;
    // Records of a kilobyte, so the slow follower's socket fills long before the last.
    let padding = "x".repeat(1000);
    let mut kept_up = 0;
    for batch in 0..RECORDS / BATCH {
        for n in 0..BATCH {
            let record = json!({ "n": batch * BATCH + n, "padding": padding });
            app.state.feed.publish("delivery", &record);
        }
        for event in fast.take(BATCH).await {
            assert_eq!(event.data["n"], kept_up);
            kept_up += 1;
        }
        let live = app
            .client
            .get(app.url("/health/live"))
            .send()
            .await
            .unwrap();
        assert_eq!(live.status(), StatusCode::OK);
    }
    assert_eq!(kept_up, RECORDS);
    let mut read = 0;
    let last = loop {
        let event = slow.next().await.expect("told why before the end");
        if event.kind != "delivery" {
            break event;
        }
        assert_eq!(event.data["n"], read);
        read += 1;
    };
    assert!(read < RECORDS, "the slow follower read every record");
    assert_eq!(
        shown(&last),
        json!({ "id": null, "event": "dropped", "data": {
            "reason": "This stream fell more than 1024 records behind: it ends. Read faster, or follow again."
        }})
    );
    assert_eq!(slow.next().await, None);
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    assert!(
        metrics.contains("camara_webrtc_streams_dropped_total"),
        "{metrics}"
    );
}

/// A stream never ends by itself, so shutdown ends it: with a grace period of ten minutes, the
/// service still stops at once.
#[tokio::test]
async fn shutdown_ends_every_stream() {
    let mut config = camara_webrtc::Config::embedded();
    config.server.shutdown_grace_seconds = 600;
    let token = network_token(&config.auth);
    let (address, trigger, server) = run_until_triggered(config).await;
    let mut follower = Follower::start(&address, &token).await;
    follower.until("ready").await;
    trigger.send(()).unwrap();
    assert_eq!(follower.next().await, None);
    tokio::time::timeout(HANG_GUARD, server)
        .await
        .expect("the service stops")
        .unwrap()
        .unwrap();
}

/// The stream needs the network's scope, as the admin API does.
#[tokio::test]
async fn the_stream_needs_the_network_scope() {
    let app = spawn_app().await;
    let client = reqwest::Client::new();
    let anonymous = client.get(app.url(STREAM)).send().await.unwrap();
    assert_error(
        anonymous,
        401,
        "UNAUTHENTICATED",
        "Request not authenticated: the Authorization header is missing. A new authentication is required.",
    )
    .await;
    let other = app.app_token(ORIGINATOR, "app");
    let refused = client
        .get(app.url(STREAM))
        .bearer_auth(other)
        .send()
        .await
        .unwrap();
    assert_error(
        refused,
        403,
        "PERMISSION_DENIED",
        "Client does not have sufficient permissions to perform this action: the access token lacks the scope camara-webrtc:network.",
    )
    .await;
}

/// The network reads any session with its SDP's keys and ICE password masked, every other line
/// as sent; a session its client DELETEd is gone.
#[tokio::test]
async fn the_network_reads_a_session_with_its_secrets_masked() {
    let app = spawn_app().await;
    let admin = app.admin_token();
    let read = |id: &str| {
        app.client
            .get(app.url(&format!("/network/v1/sessions/{id}")))
            .bearer_auth(&admin)
            .send()
    };
    let offer = app.config.fixtures.sessions[0].offer_sdp.clone();
    let masked = offer
        .replace("a=ice-pwd:D4sF5Pv9vx9ggaqxBlHbAFMx", "a=ice-pwd:[masked]")
        .replace(
            "inline:Xm3YciqVIWFNSwy19e9MvfZ2YOdAZil7oT/tHjdf",
            "inline:[masked]",
        );
    assert_ne!(masked, offer);
    let mut expected = json_ok(app.get_session(FIXTURE_ID, &app.receiver_token()).await).await;
    expected["offer"]["sdp"] = json!(masked);
    assert_eq!(json_ok(read(FIXTURE_ID).await.unwrap()).await, expected);

    let (alice, call) = crate::network::alice_calls(&app, "app").await;
    let id = call["mediaSessionId"].as_str().unwrap();
    let mut expected = call.clone();
    expected["offer"]["sdp"] =
        json!(CLEAN_SDP.replace("a=ice-pwd:ln3CttOSkObcQ7A0tYO1LXqy", "a=ice-pwd:[masked]"));
    assert_eq!(json_ok(read(id).await.unwrap()).await, expected);
    let deleted = app.delete("/webrtc", id, &alice).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_error(
        read(id).await.unwrap(),
        404,
        "NOT_FOUND",
        "The specified resource is not found.",
    )
    .await;
}

/// The page, its script and its style come from the binary with a strict policy: this service's
/// own script, style and connections only, nothing inline, no framing.
#[tokio::test]
async fn the_console_is_served_with_a_strict_policy() {
    let app = spawn_app().await;
    let client = reqwest::Client::new();
    let root = env!("CARGO_MANIFEST_DIR");
    for (path, file, content_type) in [
        ("/console", "index.html", "text/html; charset=utf-8"),
        (
            "/console/console.js",
            "console.js",
            "text/javascript; charset=utf-8",
        ),
        (
            "/console/console.css",
            "console.css",
            "text/css; charset=utf-8",
        ),
        ("/console/icon.svg", "icon.svg", "image/svg+xml"),
    ] {
        let response = client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let headers = response.headers().clone();
        assert_eq!(headers["content-type"], content_type, "{path}");
        assert_eq!(
            headers["content-security-policy"],
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
             img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        );
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["referrer-policy"], "no-referrer");
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(headers["cache-control"], "no-cache");
        let embedded =
            std::fs::read_to_string(format!("{root}/src/http/network/console/{file}")).unwrap();
        assert_eq!(response.text().await.unwrap(), embedded, "{path}");
    }
    // Nothing inline for the policy to refuse: one script, one style sheet, one icon, by address.
    let page =
        std::fs::read_to_string(format!("{root}/src/http/network/console/index.html")).unwrap();
    assert_eq!(page.matches("<script").count(), 1);
    assert!(page.contains("<script src=\"/console/console.js\" defer></script>"));
    assert!(!page.contains("<style") && !page.contains(" style="));
    for handler in [
        " onclick=",
        " onload=",
        " onsubmit=",
        " onerror=",
        "javascript:",
    ] {
        assert!(!page.contains(handler), "{handler}");
    }
    // The script writes the DOM with textContent and createElement only: what a record holds
    // is never parsed as HTML.
    let script =
        std::fs::read_to_string(format!("{root}/src/http/network/console/console.js")).unwrap();
    for sink in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
    ] {
        assert!(!script.contains(sink), "console.js uses {sink}");
    }
}

/// Without `network.admin_api` the console and the stream are unknown routes.
#[tokio::test]
async fn without_admin_api_there_is_no_console() {
    let mut config = camara_webrtc::Config::embedded();
    config.network.admin_api = false;
    let app = spawn_with(config).await;
    for path in ["/console", "/console/console.js", STREAM] {
        let response = reqwest::Client::new()
            .get(app.url(path))
            .bearer_auth(app.admin_token())
            .send()
            .await
            .unwrap();
        let unknown = "The specified resource is not found: no such route.";
        assert_error(response, 404, "NOT_FOUND", unknown).await;
    }
    assert!(!app.state.feed.is_on());
}

/// The embedded config on `redis`, its keys under `prefix`.
fn on_redis(redis: &crate::redis_server::RedisServer, prefix: &str) -> camara_webrtc::Config {
    let mut config = camara_webrtc::Config::embedded();
    config.store.backend = camara_webrtc::config::Backend::Redis;
    config.store.redis_url = Some(camara_webrtc::config::Secret::new(&redis.url));
    config.store.key_prefix = prefix.to_owned();
    config
}

/// Waits until `replicas` replicas follow the feed channel `{prefix}feed` on Redis.
async fn followed_by(redis: &crate::redis_server::RedisServer, prefix: &str, replicas: u64) {
    let client = redis::Client::open(redis.url.as_str()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    for _ in 0..400 {
        let (_, count): (String, u64) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(format!("{prefix}feed"))
            .query_async(&mut con)
            .await
            .unwrap();
        if count >= replicas {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the replicas never followed the feed");
}

/// Two replicas on one Redis: a registration made on one, a call placed on the other, a move
/// through the first and its delivery — each replica's stream shows all of it, the same
/// records in the same order.
#[tokio::test]
async fn every_replica_streams_every_replicas_changes() {
    const TEST: &str = "every_replica_streams_every_replicas_changes";
    let Some(redis) = crate::redis_server::RedisServer::start(TEST) else {
        return;
    };
    let prefix = crate::redis_server::unique_prefix("console");
    let on_redis = || on_redis(&redis, &prefix);
    let (a, b) = (spawn_with(on_redis()).await, spawn_with(on_redis()).await);
    followed_by(&redis, &prefix, 2).await;
    let mut followers = [
        Follower::start(&a.address, &a.admin_token()).await,
        Follower::start(&b.address, &b.admin_token()).await,
    ];
    for follower in &mut followers {
        follower.until("ready").await;
    }
    // Each step is seen on both streams before the next: the records of two replicas reach
    // Redis in the order they were published.
    let mut seen: [Vec<Value>; 2] = [Vec::new(), Vec::new()];
    async fn next(followers: &mut [Follower; 2], seen: &mut [Vec<Value>; 2], count: usize) {
        for (follower, seen) in followers.iter_mut().zip(seen.iter_mut()) {
            seen.extend(follower.take(count).await.iter().map(shown));
        }
    }
    let (_, sink, _, _) =
        crate::network::subscribes(&a, RECEIVER, "app", &["session-status"]).await;
    next(&mut followers, &mut seen, 2).await;
    let (_, call) = crate::network::alice_calls(&b, "app").await;
    next(&mut followers, &mut seen, 1).await;
    let id = call["mediaSessionId"].as_str().unwrap();
    let moved = a
        .client
        .post(a.url(&format!("/network/v1/sessions/{id}/events")))
        .bearer_auth(a.admin_token())
        .json(&json!({ "status": "Ringing" }))
        .send()
        .await
        .unwrap();
    json_ok(moved).await;
    sink.wait_for(1).await;
    next(&mut followers, &mut seen, 2).await;
    for records in &seen {
        let kinds: Vec<&str> = records
            .iter()
            .map(|r| r["event"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            [
                "registration",
                "subscription",
                "session",
                "session",
                "delivery"
            ]
        );
        assert_eq!(records[2]["data"]["id"], id);
        assert_eq!(records[3]["data"]["status"], "Ringing");
        assert_eq!(records[4]["data"]["outcome"], "delivered");
    }
    // The same records, each numbered by its replica in the order it received them.
    let data = |records: &[Value]| {
        records
            .iter()
            .map(|r| r["data"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(data(&seen[0]), data(&seen[1]));
}

/// When a replica's subscription to the feed channel breaks, its followers are told that
/// records may be missing and their streams end; once it has subscribed again, a new follower
/// sees the changes made after its first look.
#[tokio::test]
async fn a_broken_feed_subscription_drops_the_followers() {
    const TEST: &str = "a_broken_feed_subscription_drops_the_followers";
    // A server of its own: the test kills every Pub/Sub connection on it.
    let Some(redis) = crate::redis_server::RedisServer::spawn(TEST) else {
        return;
    };
    let prefix = crate::redis_server::unique_prefix("console-break");
    let app = spawn_with(on_redis(&redis, &prefix)).await;
    followed_by(&redis, &prefix, 1).await;
    let mut follower = Follower::start(&app.address, &app.admin_token()).await;
    follower.until("ready").await;

    let client = redis::Client::open(redis.url.as_str()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let killed: u64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(killed, 1, "the replica's one subscription");
    let dropped = follower.next().await.expect("told before the end");
    assert_eq!(
        shown(&dropped),
        json!({ "id": null, "event": "dropped", "data": {
            "reason": "This replica may have missed records (its Redis feed broke): the stream ends. Follow again for a fresh look."
        }})
    );
    assert_eq!(follower.next().await, None, "the stream ended");

    // Following again: a follower that started before the replica subscribed again is dropped
    // once more when it does (what was published in between is lost); one after it sees the
    // call placed after its first look.
    let mut drops = 1;
    let seen = loop {
        let mut again = Follower::start(&app.address, &app.admin_token()).await;
        again.until("ready").await;
        let (_, call) = crate::network::alice_calls(&app, "app").await;
        let id = call["mediaSessionId"].clone();
        let event = loop {
            let event = again.next().await.expect("the stream goes on");
            if event.kind == "dropped" || (event.kind == "session" && event.data["id"] == id) {
                break event;
            }
        };
        if event.kind == "session" {
            break event;
        }
        drops += 1;
    };
    assert_eq!(seen.data["status"], "Initial");
    assert!(
        drops <= 2,
        "dropped once by the break, at most once more by the resubscription"
    );
}
