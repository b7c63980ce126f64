//! The simulated network (DESIGN §12): its admin API's gate and scope, and the scripted numbers
//! in force.

use std::collections::BTreeMap;

use camara_webrtc::config::{Config, NumberScript, Step};
use camara_webrtc::domain::SessionStatus;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

const NUMBERS: &str = "/network/v1/numbers";

/// Alice (of the API consumer `app`) calls Bob; the session's id.
async fn alice_calls_bob(app: &TestApp) -> String {
    let (_, session) = alice_calls(app, "app").await;
    session["mediaSessionId"].as_str().unwrap().to_owned()
}

/// Alice, with an app of the API consumer `consumer` (a 3-legged token), calls Bob: her token
/// and the new session's body.
pub async fn alice_calls(app: &TestApp, consumer: &str) -> (String, Value) {
    let alice = app.app_token(ORIGINATOR, consumer);
    let call = json!({
        "originatorAddress": ORIGINATOR, "receiverAddress": RECEIVER, "offer": { "sdp": CLEAN_SDP }
    });
    let created = app.create("/webrtc", &call, &alice).await;
    (alice, json_with(created, StatusCode::CREATED).await)
}

/// Bob, of the API consumer `consumer`, registers his phone and subscribes a new sink to the
/// event types `types` (their names) of that registration: his token (every scope), the sink,
/// the registration's id and the subscription's.
async fn bob_subscribes(
    app: &TestApp,
    consumer: &str,
    types: &[&str],
) -> (String, crate::sink::Sink, String, Value) {
    subscribes(app, RECEIVER, consumer, types).await
}

/// The subscriber at `number`, with an app of the API consumer `consumer`, registers the
/// phone (3-legged: a proven registration) and subscribes a new sink to the event types
/// `types` of that registration: the token (every scope), the sink, the registration's id and
/// the subscription's.
pub async fn subscribes(
    app: &TestApp,
    number: &str,
    consumer: &str,
    types: &[&str],
) -> (String, crate::sink::Sink, String, Value) {
    const PREFIX: &str = "org.camaraproject.webrtc-events.v0";
    let sink = crate::sink::Sink::start().await;
    let scopes = crate::delivery::every_scope();
    let bob =
        camara_webrtc::auth::mint(&app.config.auth, number, &scopes, Some(consumer), 3600).unwrap();
    let device = json!({ "deviceId": "7d444840-9dc0-11d1-b245-5ffdce74fad2" });
    let path = "/webrtc-registration/vwip/sessions";
    let registered =
        send_scenario(app, reqwest::Method::POST, path, Some(&bob), Some(device)).await;
    let registration = json_with(registered, StatusCode::CREATED).await["registrationId"]
        .as_str()
        .unwrap()
        .to_owned();
    let types: Vec<String> = types.iter().map(|t| format!("{PREFIX}.{t}")).collect();
    let body = json!({
        "protocol": "HTTP", "sink": sink.url, "types": types,
        "config": { "subscriptionDetail": { "registrationId": registration } }
    });
    let path = "/webrtc-events/vwip/subscriptions";
    let subscribed = send_scenario(app, reqwest::Method::POST, path, Some(&bob), Some(body)).await;
    let subscription = json_with(subscribed, StatusCode::CREATED).await["id"].clone();
    (bob, sink, registration, subscription)
}

/// `DELETE /network/v1/registrations/{registration}` with the admin API's scope.
async fn network_ends(app: &TestApp, registration: &str) -> reqwest::Response {
    let path = format!("/network/v1/registrations/{registration}");
    let request = app.client.delete(app.url(&path));
    request.bearer_auth(app.admin_token()).send().await.unwrap()
}

async fn get_with(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// DESIGN §12's table of test numbers, as `GET /numbers` must show it at `time_scale` 1.
fn design_table() -> Value {
    let step = |ms: u64, status: &str| json!({ "afterMs": ms, "status": status });
    let number = |n: u8, steps: Vec<Value>| json!({ "address": format!("tel:+120255501{n:02}"), "steps": steps });
    json!([
        number(0, vec![step(500, "Ringing"), step(1500, "Connected")]),
        number(1, vec![step(500, "Busy")]),
        number(2, vec![step(500, "Ringing"), step(1500, "Declined")]),
        number(3, vec![step(500, "Ringing")]),
        number(4, vec![step(500, "NotReachable")]),
        number(5, vec![step(500, "Failed")]),
        number(
            6,
            vec![
                step(1000, "Connected"),
                json!({ "afterMs": 5000, "status": "Terminated", "reason": "Call terminated by receiver" }),
            ]
        ),
        number(
            7,
            vec![
                step(1000, "Connected"),
                step(3000, "Hold"),
                step(5000, "Resume")
            ]
        ),
        number(
            8,
            vec![
                step(500, "Waiting"),
                step(2000, "Ringing"),
                step(3000, "Connected")
            ]
        ),
        number(9, vec![step(500, "InProgress"), step(2000, "Connected")]),
    ])
}

#[tokio::test]
async fn the_builtin_test_numbers_are_listed() {
    let app = spawn_app().await;
    let listed = json_ok(get_with(&app, NUMBERS, &app.admin_token()).await).await;
    assert_eq!(listed, design_table());
}

/// A configured number replaces the built-in one with its address and the others stay; times
/// are shown as they are in force (`time_scale`).
#[tokio::test]
async fn configured_numbers_replace_builtin_ones_and_times_scale() {
    let mut config = Config::embedded();
    config.network.time_scale = 0.5;
    config.network.numbers = vec![
        NumberScript {
            address: "tel:+12025550101".into(),
            steps: vec![Step {
                after_ms: 300,
                status: SessionStatus::Declined,
                reason: Some("Not now".into()),
            }],
        },
        NumberScript {
            address: "sip:robot@example.com".into(),
            steps: vec![Step {
                after_ms: 0,
                status: SessionStatus::Connected,
                reason: None,
            }],
        },
    ];
    let app = spawn_with(config).await;
    let listed = json_ok(get_with(&app, NUMBERS, &app.admin_token()).await).await;
    let mut expected = design_table();
    for number in expected.as_array_mut().unwrap() {
        for step in number["steps"].as_array_mut().unwrap() {
            step["afterMs"] = json!(step["afterMs"].as_u64().unwrap() / 2);
        }
    }
    expected[1] = json!({ "address": "tel:+12025550101", "steps": [{ "afterMs": 150, "status": "Declined", "reason": "Not now" }] });
    expected
        .as_array_mut()
        .unwrap()
        .push(json!({ "address": "sip:robot@example.com", "steps": [{ "afterMs": 0, "status": "Connected" }] }));
    assert_eq!(listed, expected);
}

#[tokio::test]
async fn the_admin_api_needs_its_scope() {
    let app = spawn_app().await;
    let response = app.client.get(app.url(NUMBERS)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let other =
        camara_webrtc::auth::mint(&app.config.auth, "operator", ALL_SCOPES, None, 3600).unwrap();
    let response = get_with(&app, NUMBERS, &other).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // The scope is checked before the path and the body (401 → 403 → 400).
    let bad_body = json!({ "unknown": true });
    for path in [
        "/network/v1/calls",
        "/network/v1/sessions/no%20such%20id/events",
    ] {
        let response = app
            .client
            .post(app.url(path))
            .bearer_auth(&other)
            .json(&bad_body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({
            "status": 403, "code": "PERMISSION_DENIED",
            "message": "Client does not have sufficient permissions to perform this action: the access token lacks the scope camara-webrtc:network."
        })
    );
}

/// With `network.admin_api` off the admin API is an unknown route, and no number is scripted:
/// a call to a test number stays as its client leaves it.
#[tokio::test]
async fn without_admin_api_the_routes_are_unknown() {
    let mut config = fast_network();
    config.network.admin_api = false;
    let app = spawn_with(config).await;
    let alice = app.app_token(ORIGINATOR, "app");
    let call = json!({
        "originatorAddress": ORIGINATOR, "receiverAddress": "tel:+12025550101", "offer": { "sdp": CLEAN_SDP }
    });
    let created = json_with(
        app.create("/webrtc", &call, &alice).await,
        StatusCode::CREATED,
    )
    .await;
    let id = created["mediaSessionId"].as_str().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(json_ok(app.get_session(id, &alice).await).await, created);
    let response = get_with(&app, NUMBERS, &app.admin_token()).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({ "status": 404, "code": "NOT_FOUND", "message": "The specified resource is not found: no such route." })
    );
}

/// The network ends Bob's registration: his call placed with it ends (Failed, "registration
/// ended"), his sink hears `session-status`, `registration-ends` (NETWORK_TERMINATED) and
/// `subscription-ended` (NETWORK_TERMINATED), and the registration is gone.
#[tokio::test]
async fn the_network_ends_a_registration() {
    use crate::delivery::{envelope_of, of_type};
    let app = spawn_app().await;
    let (bob, sink, registration, subscription) =
        bob_subscribes(&app, "app", &["registration-ends", "session-status"]).await;
    let call = json!({
        "originatorAddress": RECEIVER, "receiverAddress": ORIGINATOR, "offer": { "sdp": CLEAN_SDP }
    });
    let placed = app
        .client
        .post(app.url("/webrtc/sessions"))
        .bearer_auth(&bob)
        .header("registrationId", &registration)
        .json(&call)
        .send()
        .await
        .unwrap();
    let session = json_with(placed, StatusCode::CREATED).await;
    let ended = network_ends(&app, &registration).await;
    assert_eq!(ended.status(), StatusCode::NO_CONTENT);
    let received = sink.wait_for(3).await;
    let status = envelope_of(of_type(&received, "session-status"), "session-status");
    assert_eq!(status["mediaSessionId"], session["mediaSessionId"]);
    assert_eq!(status["status"], "Failed");
    assert_eq!(status["reason"], "registration ended");
    assert_eq!(
        envelope_of(of_type(&received, "registration-ends"), "registration-ends"),
        json!({
            "registrationId": registration,
            "terminationReason": "NETWORK_TERMINATED",
            "terminationDescription": "The network ended the registration."
        })
    );
    assert_eq!(
        envelope_of(
            of_type(&received, "subscription-ended"),
            "subscription-ended"
        ),
        json!({ "subscriptionId": subscription, "terminationReason": "NETWORK_TERMINATED" })
    );
    let read = format!("/webrtc-registration/vwip/sessions/{registration}");
    let read = send_scenario(&app, reqwest::Method::GET, &read, Some(&bob), None).await;
    assert_eq!(read.status(), StatusCode::NOT_FOUND);
    let again = network_ends(&app, &registration).await;
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        again.json::<Value>().await.unwrap(),
        json!({
            "status": 404, "code": "NOT_FOUND",
            "message": "The specified resource is not found: no active registration with this registrationId."
        })
    );
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("camara_webrtc_registrations_ended_total{reason=\"NETWORK_TERMINATED\"} "),
        "{metrics}"
    );
}

/// The network plays Bob's side of Alice's call through the admin API: it rings, answers with an
/// SDP, and hangs up with a reason; Alice reads each move, Bob's sink hears each one; a terminal
/// call moves no more.
#[tokio::test]
async fn the_network_moves_a_call() {
    use crate::delivery::envelope_of;
    let app = spawn_app().await;
    let (_, sink, _, _) = bob_subscribes(&app, "app", &["session-status"]).await;
    let alice = app.app_token(ORIGINATOR, "app");
    let id = &alice_calls_bob(&app).await;
    let moves = format!("/network/v1/sessions/{id}/events");
    let admin = app.admin_token();
    let send = |body: Value| {
        app.client
            .post(app.url(&moves))
            .bearer_auth(&admin)
            .json(&body)
            .send()
    };
    let steps = [
        json!({ "status": "Ringing" }),
        json!({ "status": "Connected", "answer": { "sdp": CLEAN_SDP } }),
        json!({ "status": "Terminated", "reason": "Call terminated by receiver" }),
    ];
    for (i, step) in steps.iter().enumerate() {
        let moved = json_ok(send(step.clone()).await.unwrap()).await;
        let read = json_ok(app.get_session(id, &alice).await).await;
        assert_eq!(moved, read);
        assert_eq!(read["status"], step["status"]);
        let received = sink.wait_for(i + 1).await;
        let data = envelope_of(&received[i], "session-status");
        assert_eq!(data["status"], step["status"]);
        assert_eq!(data["sequenceNumber"], i as u64 + 2);
    }
    let read = json_ok(app.get_session(id, &alice).await).await;
    assert_eq!(read["answer"]["sdp"], CLEAN_SDP);
    assert_eq!(read["reason"], "Call terminated by receiver");
    let refused = send(json!({ "status": "Hold" })).await.unwrap();
    assert_error(
        refused,
        409,
        "INCOMPATIBLE_STATE",
        "session status Terminated cannot change to Hold",
    )
    .await;
}

/// Bad moves get CAMARA errors naming what is wrong, and change nothing.
#[tokio::test]
async fn bad_network_moves_name_the_field() {
    let app = spawn_app().await;
    let admin = app.admin_token();
    let send = |id: &str, body: Value| {
        app.client
            .post(app.url(&format!("/network/v1/sessions/{id}/events")))
            .bearer_auth(&admin)
            .json(&body)
            .send()
    };
    let cases = [
        (json!({}), "status is required."),
        (
            json!({ "status": "Busy", "answer": { "sdp": "hello" } }),
            "answer.sdp is not an SDP body: it must start with v=0.",
        ),
        (
            json!({ "status": "Busy", "reason": "" }),
            "reason must have 1 to 256 characters.",
        ),
    ];
    for (body, message) in cases {
        let response = send(FIXTURE_ID, body.clone()).await.unwrap();
        assert_error(response, 400, "INVALID_ARGUMENT", message).await;
    }
    let unknown = send(FIXTURE_ID, json!({ "status": "Sleeping" }))
        .await
        .unwrap();
    let message = "status: must be one of Initial, InProgress, Ringing, Proceeding, Connected, \
                   Terminated, Hold, Resume, SessionCancelled, Declined, Failed, Waiting, NoAnswer, \
                   NotReachable, Busy.";
    assert_error(unknown, 400, "INVALID_ARGUMENT", message).await;
    let hold = send(FIXTURE_ID, json!({ "status": "Hold" })).await.unwrap();
    assert_error(
        hold,
        409,
        "INCOMPATIBLE_STATE",
        "session status Initial cannot change to Hold",
    )
    .await;
    let token = app.receiver_token();
    let read = json_ok(app.get_session(FIXTURE_ID, &token).await).await;
    assert_eq!(read["status"], "Initial");
    let gone = send("no-such-session", json!({ "status": "Busy" }))
        .await
        .unwrap();
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
}

/// A move to InProgress or Connected without an answer carries one generated for the offer,
/// which passes the strict SDP check; a move that answers nothing generates none.
#[tokio::test]
async fn the_network_answers_with_a_generated_sdp() {
    use camara_webrtc::domain::{Sdp, SdpPolicy};
    let app = spawn_app().await;
    let admin = app.admin_token();
    let moves = format!(
        "/network/v1/sessions/{}/events",
        alice_calls_bob(&app).await
    );
    let send = |status: &str| {
        app.client
            .post(app.url(&moves))
            .bearer_auth(&admin)
            .json(&json!({ "status": status }))
            .send()
    };
    let ringing = json_ok(send("Ringing").await.unwrap()).await;
    assert_eq!(ringing.get("answer"), None);
    let connected = json_ok(send("Connected").await.unwrap()).await;
    let answer = connected["answer"]["sdp"].as_str().unwrap().to_owned();
    assert!(
        answer.contains("m=audio 9 RTP/SAVPF 102 113\r\n"),
        "{answer}"
    );
    assert!(
        !answer.contains("ln3CttOSkObcQ7A0tYO1LXqy"),
        "fresh ICE credentials"
    );
    assert!(
        Sdp::parse(answer.clone(), SdpPolicy::Strict).is_ok(),
        "{answer}"
    );
    // Held and resumed, the call keeps that answer.
    let held = json_ok(send("Hold").await.unwrap()).await;
    assert_eq!(held["answer"]["sdp"], answer);
}

/// A generated answer answers the offer in force after the move, one sent with it included, and
/// never replaces an answer the session has.
#[tokio::test]
async fn a_generated_answer_answers_the_offer_in_force_and_replaces_none() {
    let app = spawn_app().await;
    let admin = app.admin_token();
    let moves = format!(
        "/network/v1/sessions/{}/events",
        alice_calls_bob(&app).await
    );
    let send = |body: Value| {
        app.client
            .post(app.url(&moves))
            .bearer_auth(&admin)
            .json(&body)
            .send()
    };
    let video = "v=0\r\no=- 7 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 RTP/AVP 96\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:96 VP8/90000\r\n";
    let early = json_ok(
        send(json!({ "status": "InProgress", "offer": { "sdp": video } }))
            .await
            .unwrap(),
    )
    .await;
    let answer = early["answer"]["sdp"].as_str().unwrap().to_owned();
    assert!(answer.contains("\r\nm=video 9 RTP/AVP 96\r\n"), "{answer}");
    assert!(!answer.contains("m=audio"), "{answer}");
    let connected = json_ok(send(json!({ "status": "Connected" })).await.unwrap()).await;
    assert_eq!(connected["answer"]["sdp"], answer);
}

/// The seed's termination flow end to end: the network places a call to Bob's registered
/// number; his sink gets the invitation; his app reads the session and drives it (InProgress,
/// Ringing, Connected with an answer); each change reaches his sink. A receiver with no
/// registration gets no call, and nothing is left behind.
#[tokio::test]
async fn an_incoming_call_reaches_the_registered_receiver() {
    use crate::delivery::envelope_of;
    let app = spawn_app().await;
    let (bob, sink, _, subscription) =
        bob_subscribes(&app, "bob-app", &["session-invitation", "session-status"]).await;
    let admin = app.admin_token();
    let place = |body: Value| {
        app.client
            .post(app.url("/network/v1/calls"))
            .bearer_auth(&admin)
            .json(&body)
            .send()
    };
    let caller = "tel:+12025550123";
    let call = json!({ "originatorAddress": caller, "receiverAddress": RECEIVER, "offer": { "sdp": CLEAN_SDP } });
    let created = json_with(place(call).await.unwrap(), StatusCode::CREATED).await;
    let id = created["mediaSessionId"].as_str().unwrap();
    assert_eq!(
        created,
        json!({
            "mediaSessionId": id, "originatorAddress": caller, "receiverAddress": RECEIVER,
            "status": "Initial", "offer": { "sdp": CLEAN_SDP }, "callType": "REGULAR"
        })
    );
    let invitation = sink.wait_for(1).await;
    let mut expected = created.clone();
    expected["sequenceNumber"] = json!(1);
    expected["subscriptionId"] = subscription;
    assert_eq!(envelope_of(&invitation[0], "session-invitation"), expected);
    // Bob's app reads the call it was invited to and answers it.
    assert_eq!(json_ok(app.get_session(id, &bob).await).await, created);
    for (i, status) in ["InProgress", "Ringing"].into_iter().enumerate() {
        let body = json!({ "status": status }).to_string();
        json_ok(app.put_status(id, &body, &bob).await).await;
        let received = sink.wait_for(i + 2).await;
        assert_eq!(
            envelope_of(&received[i + 1], "session-status")["status"],
            status
        );
    }
    let body = json!({ "status": "Connected", "answer": { "sdp": CLEAN_SDP } }).to_string();
    let connected = json_ok(app.put_status(id, &body, &bob).await).await;
    assert_eq!(connected["status"], "Connected");
    assert_eq!(sink.wait_for(4).await.len(), 4);
    // Another consumer's app does not see it.
    let other = app.app_token(RECEIVER, "other-app");
    assert_not_found(app.get_session(id, &other).await).await;
    // Nobody registered at the number: no call.
    let nobody = json!({ "originatorAddress": caller, "receiverAddress": "tel:+12025550999", "offer": { "sdp": CLEAN_SDP } });
    let refused = place(nobody).await.unwrap();
    assert_error(
        refused,
        404,
        "IDENTIFIER_NOT_FOUND",
        "Device identifier not found: receiverAddress has no active registration that receives calls (one made with a 3-legged token of its number).",
    )
    .await;
    let bad = json!({ "originatorAddress": caller, "receiverAddress": RECEIVER, "offer": { "sdp": "hello" } });
    assert_error(
        place(bad).await.unwrap(),
        400,
        "INVALID_ARGUMENT",
        "offer.sdp is not an SDP body: it must start with v=0.",
    )
    .await;
    let missing = json!({ "receiverAddress": RECEIVER });
    assert_error(
        place(missing).await.unwrap(),
        400,
        "INVALID_ARGUMENT",
        "originatorAddress is required.",
    )
    .await;
    let no_offer = json!({ "originatorAddress": caller, "receiverAddress": RECEIVER });
    assert_error(
        place(no_offer).await.unwrap(),
        400,
        "INVALID_ARGUMENT",
        "offer is required: the caller's SDP offer.",
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(sink.received().len(), 4, "no invitation for a refused call");
}

/// What a call to each built-in test number (`tel:+12025550100` to `…109`) makes its caller's
/// sink hear, with a no-answer time shorter than 5 s.
pub const HEARD_FROM_TEST_NUMBERS: [&[&str]; 10] = [
    &["Ringing", "Connected"],
    &["Busy"],
    &["Ringing", "Declined"],
    &["Ringing", "NoAnswer (Not answered in time)"],
    &["NotReachable"],
    &["Failed"],
    &["Connected", "Terminated (Call terminated by receiver)"],
    &["Connected", "Hold", "Resume"],
    &["Waiting", "Ringing", "Connected"],
    &["InProgress", "Connected"],
];

/// The statuses (and reasons) the sink heard for each session, in sequence order.
pub fn statuses_by_session(received: &[crate::sink::Received]) -> BTreeMap<String, Vec<String>> {
    let mut heard: BTreeMap<String, Vec<(u64, String)>> = BTreeMap::new();
    for event in received {
        let data = crate::delivery::envelope_of(event, "session-status");
        let status = match data["reason"].as_str() {
            Some(reason) => format!("{} ({reason})", data["status"].as_str().unwrap()),
            None => data["status"].as_str().unwrap().to_owned(),
        };
        let id = data["mediaSessionId"].as_str().unwrap().to_owned();
        let sequence = data["sequenceNumber"].as_u64().unwrap();
        heard.entry(id).or_default().push((sequence, status));
    }
    (heard.into_iter())
        .map(|(id, mut statuses)| {
            statuses.sort();
            (id, statuses.into_iter().map(|(_, s)| s).collect())
        })
        .collect()
}

/// Bob calls `receiver` from his registered phone; the new session's body.
async fn bob_calls(app: &TestApp, bob: &str, registration: &str, receiver: &str) -> Value {
    let call = json!({
        "originatorAddress": RECEIVER, "receiverAddress": receiver, "offer": { "sdp": CLEAN_SDP }
    });
    let placed = app
        .client
        .post(app.url("/webrtc/sessions"))
        .bearer_auth(bob)
        .header("registrationId", registration)
        .json(&call)
        .send()
        .await
        .unwrap();
    json_with(placed, StatusCode::CREATED).await
}

/// A configuration whose simulated times run a hundred times fast: a no-answer time of 60 s
/// comes after 600 ms, a step at 5 s after 50 ms.
fn fast_network() -> Config {
    let mut config = Config::embedded();
    config.network.time_scale = 0.01;
    config
}

/// Bob calls each of the ten built-in test numbers: each call moves as DESIGN §12's table says,
/// with the events a network would send (in order, each once), an answer with each Connected
/// or InProgress step, the reasons of network endings, and nothing after its script but the
/// no-answer timer's NoAnswer for the number that never answers.
#[tokio::test]
async fn every_test_number_plays_its_script() {
    let app = spawn_with(fast_network()).await;
    let (bob, sink, registration, _) = bob_subscribes(&app, "app", &["session-status"]).await;
    let expected = HEARD_FROM_TEST_NUMBERS;
    let mut ids = Vec::new();
    for n in 0..10 {
        let number = format!("tel:+120255501{n:02}");
        let placed = bob_calls(&app, &bob, &registration, &number).await;
        assert_eq!(placed["status"], "Initial");
        ids.push(placed["mediaSessionId"].as_str().unwrap().to_owned());
    }
    let total = expected.iter().map(|steps| steps.len()).sum();
    let received = sink.wait_for(total).await;
    // The slowest script (the no-answer timer at 600 ms) is over; nothing more comes.
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert_eq!(sink.received().len(), total);
    let heard = statuses_by_session(&received);
    for (id, steps) in ids.iter().zip(expected) {
        assert_eq!(heard[id], steps, "{id}");
        let read = json_ok(app.get_session(id, &bob).await).await;
        let last = steps.last().unwrap();
        assert_eq!(
            read["status"].as_str().unwrap(),
            last.split(' ').next().unwrap(),
            "{id}"
        );
        // An answer exactly when a step connected the call (or gave it early media), and one
        // that passes the strict check.
        let answered = steps
            .iter()
            .any(|s| *s == "Connected" || *s == "InProgress");
        assert_eq!(read.get("answer").is_some(), answered, "{read}");
        if let Some(answer) = read["answer"]["sdp"].as_str() {
            let strict = camara_webrtc::domain::SdpPolicy::Strict;
            assert!(camara_webrtc::domain::Sdp::parse(answer.to_owned(), strict).is_ok());
        }
    }
    // Counted per kind, with how late each fired (the recorder is the test binary's, shared
    // with other tests: the counts are not this test's alone).
    let metrics = app.get("/metrics").await.text().await.unwrap();
    for line in [
        "camara_webrtc_timers_fired_total{kind=\"step\"} ",
        "camara_webrtc_timers_fired_total{kind=\"no_answer\"} ",
        "camara_webrtc_timer_lateness_seconds_count{kind=\"step\"} ",
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
}

/// The caller of an incoming call plays the `steps` sent with it (a step the table refuses when
/// it comes is skipped, the rest play); a call nobody answers ends NoAnswer after
/// `no_answer_seconds`; one Bob's app answers in time goes on.
#[tokio::test]
async fn an_incoming_call_plays_its_caller_steps_and_ends_unanswered() {
    let mut config = Config::embedded();
    // Twenty times fast: the no-answer time (60 s) is 3 s, a step at 4 s comes after 200 ms.
    config.network.time_scale = 0.05;
    let app = spawn_with(config).await;
    let (bob, sink, _, _) = bob_subscribes(&app, "bob-app", &["session-status"]).await;
    let admin = app.admin_token();
    let place = |steps: Option<Value>| {
        let mut call = json!({
            "originatorAddress": "tel:+12025550123", "receiverAddress": RECEIVER,
            "offer": { "sdp": CLEAN_SDP }
        });
        if let Some(steps) = steps {
            call["steps"] = steps;
        }
        let request = app.client.post(app.url("/network/v1/calls"));
        let admin = admin.clone();
        async move {
            let created = request
                .bearer_auth(&admin)
                .json(&call)
                .send()
                .await
                .unwrap();
            let created = json_with(created, StatusCode::CREATED).await;
            created["mediaSessionId"].as_str().unwrap().to_owned()
        }
    };
    let hangs_up = place(Some(json!([
        { "afterMs": 0, "status": "Terminated" },
        { "afterMs": 2000, "status": "Ringing" },
        { "afterMs": 4000, "status": "SessionCancelled", "reason": "Caller hung up" }
    ])))
    .await;
    let unanswered = place(Some(json!([]))).await;
    let answered = place(None).await;
    let body = json!({ "status": "Connected", "answer": { "sdp": CLEAN_SDP } }).to_string();
    json_ok(app.put_status(&answered, &body, &bob).await).await;
    let received = sink.wait_for(4).await;
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    let heard = statuses_by_session(&sink.received());
    assert_eq!(received.len(), 4);
    assert_eq!(
        heard[&hangs_up],
        ["Ringing", "SessionCancelled (Caller hung up)"]
    );
    assert_eq!(heard[&unanswered], ["NoAnswer (Not answered in time)"]);
    assert_eq!(heard[&answered], ["Connected"]);
    let read = json_ok(app.get_session(&unanswered, &bob).await).await;
    assert_eq!(
        (&read["status"], &read["reason"]),
        (&json!("NoAnswer"), &json!("Not answered in time"))
    );
    // Over: the receiver's app can no longer change it.
    let late = app.put_status(&unanswered, &body, &bob).await;
    assert_eq!(late.status(), StatusCode::CONFLICT);
}

/// A script sent with a call that cannot be played is refused with the field named, and no call
/// is placed.
#[tokio::test]
async fn bad_caller_steps_name_the_field() {
    let app = spawn_app().await;
    let (_, sink, _, _) = bob_subscribes(&app, "bob-app", &["session-invitation"]).await;
    let admin = app.admin_token();
    let cases = [
        (
            json!([{ "afterMs": 0, "status": "Initial" }]),
            "steps[0].status must be a status the network sets: not Initial.",
        ),
        (
            json!([{ "afterMs": 500, "status": "Ringing" }, { "afterMs": 400, "status": "Busy" }]),
            "steps[1].afterMs must be at least the step before's and at most 86400000 (a day).",
        ),
        (
            json!([{ "afterMs": 86_400_001u64, "status": "Busy" }]),
            "steps[0].afterMs must be at least the step before's and at most 86400000 (a day).",
        ),
        (
            json!([{ "afterMs": 0, "status": "Busy", "reason": "" }]),
            "steps[0].reason must have 1 to 256 characters.",
        ),
        (
            json!([{ "afterMs": 0, "status": "Busy", "delay": 3 }]),
            "steps[0].delay: unknown field `delay`, expected one of `afterMs`, `status`, `reason`.",
        ),
        (
            json!([{ "status": "Busy" }]),
            "steps[0]: missing field `afterMs`.",
        ),
        (
            json!([{ "afterMs": 0, "status": "Busy", "reason": null }]),
            "steps[0].reason: invalid type: null, expected a string.",
        ),
        (
            json!(vec![json!({ "afterMs": 0, "status": "Busy" }); 33]),
            "steps must have at most 32 items.",
        ),
    ];
    for (steps, message) in cases {
        let call = json!({
            "originatorAddress": "tel:+12025550123", "receiverAddress": RECEIVER,
            "offer": { "sdp": CLEAN_SDP }, "steps": steps
        });
        let response = app
            .client
            .post(app.url("/network/v1/calls"))
            .bearer_auth(&admin)
            .json(&call)
            .send()
            .await
            .unwrap();
        assert_error(response, 400, "INVALID_ARGUMENT", message).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(sink.received().len(), 0, "no call placed");
}

/// With `default_behaviour = "answer"` every receiver the simulator does not otherwise play
/// rings and answers as `tel:+12025550100` does; with "none" (the default) nothing happens.
#[tokio::test]
async fn the_default_behaviour_answers_everyone_else() {
    let mut config = fast_network();
    config.network.default_behaviour = camara_webrtc::config::DefaultBehaviour::Answer;
    let app = spawn_with(config).await;
    let (bob, sink, registration, _) = bob_subscribes(&app, "app", &["session-status"]).await;
    let id = bob_calls(&app, &bob, &registration, ORIGINATOR).await["mediaSessionId"].clone();
    let id = id.as_str().unwrap();
    let received = sink.wait_for(2).await;
    assert_eq!(statuses_by_session(&received)[id], ["Ringing", "Connected"]);
    let read = json_ok(app.get_session(id, &bob).await).await;
    assert!(
        read["answer"]["sdp"]
            .as_str()
            .unwrap()
            .starts_with("v=0\r\n")
    );
    // A receiver registered here is not "everyone else": its app answers.
    let (_, created) = alice_calls(&app, "app").await;
    let to_bob = created["mediaSessionId"].as_str().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let read = json_ok(app.get_session(to_bob, &bob).await).await;
    assert_eq!(read["status"], "Initial");
    let app = spawn_with(fast_network()).await;
    let (bob, sink, registration, _) = bob_subscribes(&app, "app", &["session-status"]).await;
    let id = bob_calls(&app, &bob, &registration, ORIGINATOR).await["mediaSessionId"].clone();
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert_eq!(sink.received().len(), 0);
    let read = json_ok(app.get_session(id.as_str().unwrap(), &bob).await).await;
    assert_eq!(read["status"], "Initial");
}

/// Alice (app of `alice-app`) calls Bob, whose phone an app of another consumer (`bob-app`)
/// registered: the call is delivered on-net. Bob's app is invited, reads and drives the call;
/// both sinks hear every change; each side may change only what is its own; Bob hangs up and
/// Alice still reads how the call ended, until she DELETEs it too. Alice's app talks to the
/// instance `a`, Bob's to `b`.
async fn on_net_call(a: &TestApp, b: &TestApp) {
    use crate::delivery::envelope_of;
    let (bob, bob_sink, _, bob_subscription) = subscribes(
        b,
        RECEIVER,
        "bob-app",
        &["session-invitation", "session-status"],
    )
    .await;
    let (alice, alice_sink, alice_registration, _) =
        subscribes(a, ORIGINATOR, "alice-app", &["session-status"]).await;
    let call = json!({
        "originatorAddress": ORIGINATOR, "receiverAddress": RECEIVER, "offer": { "sdp": CLEAN_SDP }
    });
    let placed = (a.client.post(a.url("/webrtc/sessions")))
        .bearer_auth(&alice)
        .header("registrationId", &alice_registration)
        .json(&call)
        .send()
        .await
        .unwrap();
    let created = json_with(placed, StatusCode::CREATED).await;
    let id = created["mediaSessionId"].as_str().unwrap().to_owned();
    let invitation = bob_sink.wait_for(1).await;
    let mut expected = created.clone();
    expected["sequenceNumber"] = json!(1);
    expected["subscriptionId"] = bob_subscription;
    assert_eq!(envelope_of(&invitation[0], "session-invitation"), expected);
    assert_eq!(json_ok(b.get_session(&id, &bob).await).await, created);
    let stranger = b.app_token(RECEIVER, "other-app");
    assert_not_found(b.get_session(&id, &stranger).await).await;

    let put = |body: Value, token: &str| {
        let body = body.to_string();
        let token = token.to_owned();
        let app = if token == bob { b } else { a };
        let id = id.clone();
        async move { app.put_status(&id, &body, &token).await }
    };
    // Each side changes only what is its own, and nothing changes when it tries otherwise.
    let refusals = [
        (
            json!({ "status": "Ringing" }),
            &alice,
            "status: the caller's app of an on-net call sets only Hold or Resume; the receiver's app sets the others.",
        ),
        (
            json!({ "status": "Connected", "answer": { "sdp": CLEAN_SDP } }),
            &alice,
            "answer: only the receiver's app answers an on-net call.",
        ),
        (
            json!({ "status": "Ringing", "offer": { "sdp": CLEAN_SDP } }),
            &bob,
            "offer: the offer of an on-net call is the caller's; the receiver's app answers it.",
        ),
    ];
    for (body, token, message) in refusals {
        assert_error(put(body, token).await, 400, "INVALID_ARGUMENT", message).await;
    }
    json_ok(put(json!({ "status": "Ringing" }), &bob).await).await;
    let connect = json!({ "status": "Connected", "answer": { "sdp": CLEAN_SDP } });
    json_ok(put(connect, &bob).await).await;
    let seen = json_ok(a.get_session(&id, &alice).await).await;
    assert_eq!(
        (&seen["status"], &seen["answer"]["sdp"]),
        (&json!("Connected"), &json!(CLEAN_SDP))
    );
    json_ok(put(json!({ "status": "Hold" }), &alice).await).await;
    json_ok(put(json!({ "status": "Resume" }), &alice).await).await;

    // Bob hangs up: gone for his app; Alice reads the outcome and can no longer change it.
    let hung_up = b.delete("/webrtc", &id, &bob).await;
    assert_eq!(hung_up.status(), StatusCode::NO_CONTENT);
    assert_not_found(b.get_session(&id, &bob).await).await;
    let ended = json_ok(a.get_session(&id, &alice).await).await;
    let mut expected = seen.clone();
    expected["status"] = json!("Terminated");
    expected["reason"] = json!("Call terminated by receiver");
    assert_eq!(ended, expected);
    let late = put(json!({ "status": "Hold" }), &alice).await;
    assert_eq!(late.status(), StatusCode::CONFLICT);
    assert_eq!(
        a.delete("/webrtc", &id, &alice).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_not_found(a.get_session(&id, &alice).await).await;

    // Alice's DELETE of the ended call is a change too: both hear its (unchanged) status.
    let heard = [
        "Ringing",
        "Connected",
        "Hold",
        "Resume",
        "Terminated (Call terminated by receiver)",
        "Terminated (Call terminated by receiver)",
    ];
    for (sink, invited) in [(&alice_sink, 0), (&bob_sink, 1)] {
        sink.wait_for(heard.len() + invited).await;
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let statuses: Vec<_> = (sink.received().into_iter())
            .filter(|r| r.body["type"].as_str().unwrap().ends_with("session-status"))
            .collect();
        assert_eq!(statuses.len() + invited, sink.received().len());
        assert_eq!(statuses_by_session(&statuses)[&id], heard);
    }
}

#[tokio::test]
async fn two_apps_of_different_consumers_call_each_other() {
    let app = spawn_app().await;
    on_net_call(&app, &app).await;
}

/// An on-net call ends with the registration it was delivered to, as with the caller's: the
/// network ends Bob's registration while he is connected, and both sides read the call
/// Terminated ("registration ended"). Alice's app talks to `a`, Bob's to `b`.
async fn ends_with_the_receivers_registration(a: &TestApp, b: &TestApp) {
    let (bob, _, bob_registration, _) =
        subscribes(b, RECEIVER, "bob-app", &["session-status"]).await;
    let (alice, created) = alice_calls(a, "alice-app").await;
    let id = created["mediaSessionId"].as_str().unwrap();
    let connect = json!({ "status": "Connected", "answer": { "sdp": CLEAN_SDP } }).to_string();
    json_ok(b.put_status(id, &connect, &bob).await).await;
    let ended = network_ends(b, &bob_registration).await;
    assert_eq!(ended.status(), StatusCode::NO_CONTENT);
    for (app, token) in [(a, &alice), (b, &bob)] {
        let read = json_ok(app.get_session(id, token).await).await;
        assert_eq!(
            (&read["status"], &read["reason"]),
            (&json!("Terminated"), &json!("registration ended"))
        );
    }
}

#[tokio::test]
async fn an_on_net_call_ends_with_the_receivers_registration() {
    let app = spawn_app().await;
    ends_with_the_receivers_registration(&app, &app).await;
}

/// The same on Redis, Alice's app on one replica and Bob's on another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_apps_call_each_other_through_two_replicas() {
    let name = "two_apps_call_each_other_through_two_replicas";
    let Some(redis) = crate::redis_server::RedisServer::start(name) else {
        return;
    };
    let on_redis = |prefix: &str| {
        let mut config = Config::embedded();
        config.store.backend = camara_webrtc::config::Backend::Redis;
        config.store.redis_url = Some(camara_webrtc::config::Secret::new(&redis.url));
        config.store.key_prefix = prefix.to_owned();
        config
    };
    let replicas = async |name| {
        let prefix = crate::redis_server::unique_prefix(name);
        (
            spawn_with(on_redis(&prefix)).await,
            spawn_with(on_redis(&prefix)).await,
        )
    };
    let (a, b) = replicas("on-net").await;
    on_net_call(&a, &b).await;
    let (a, b) = replicas("on-net-ends").await;
    ends_with_the_receivers_registration(&a, &b).await;
}

/// Only a proven registration receives calls, from a caller the network knows: a registration
/// made with a 2-legged token (even with `auth.subscribers`, which says which numbers are
/// served, not which app holds one) gets neither on-net calls nor the admin API's; a 3-legged
/// one gets both, but not a call whose 2-legged caller merely names its number.
#[tokio::test]
async fn only_a_proven_registration_receives_calls_from_a_known_caller() {
    for subscribers in [
        vec![],
        vec!["+17085854000".to_owned(), "+17085852753".to_owned()],
    ] {
        let mut config = Config::embedded();
        config.auth.subscribers = subscribers;
        let app = spawn_with(config).await;
        let scopes = crate::delivery::every_scope();
        let mint = |sub: &str, consumer: Option<&str>| {
            camara_webrtc::auth::mint(&app.config.auth, sub, &scopes, consumer, 3600).unwrap()
        };
        let two_legged = mint("bob-app", None);
        let device = json!({ "deviceId": "7d444840-9dc0-11d1-b245-5ffdce74fad2", "phoneNumber": "+17085854000" });
        let path = "/webrtc-registration/vwip/sessions";
        let post = reqwest::Method::POST;
        let registered = send_scenario(&app, post.clone(), path, Some(&two_legged), Some(device));
        json_with(registered.await, StatusCode::CREATED).await;
        let call = json!({
            "originatorAddress": ORIGINATOR, "receiverAddress": RECEIVER, "offer": { "sdp": CLEAN_SDP }
        });
        let incoming = || {
            (app.client.post(app.url("/network/v1/calls")))
                .bearer_auth(app.admin_token())
                .json(&json!({ "originatorAddress": "tel:+12025550123", "receiverAddress": RECEIVER, "offer": { "sdp": CLEAN_SDP } }))
                .send()
        };
        // Bob's phone registered 2-legged: no call reaches bob-app.
        let alice = app.app_token(ORIGINATOR, "alice-app");
        let created = app.create("/webrtc", &call, &alice).await;
        let id = json_with(created, StatusCode::CREATED).await["mediaSessionId"].clone();
        assert_not_found(app.get_session(id.as_str().unwrap(), &two_legged).await).await;
        assert_eq!(incoming().await.unwrap().status(), StatusCode::NOT_FOUND);

        // Registered 3-legged: calls reach it, unless the caller is only named.
        let bob = mint(RECEIVER, Some("bob-app"));
        let device = json!({ "deviceId": "8d444840-9dc0-11d1-b245-5ffdce74fad2" });
        let registered = send_scenario(&app, post.clone(), path, Some(&bob), Some(device));
        json_with(registered.await, StatusCode::CREATED).await;
        assert_eq!(incoming().await.unwrap().status(), StatusCode::CREATED);
        for (token, delivered) in [(alice, true), (mint("alice-app", None), false)] {
            let created = app.create("/webrtc", &call, &token).await;
            let created = json_with(created, StatusCode::CREATED).await;
            let read = app
                .get_session(created["mediaSessionId"].as_str().unwrap(), &bob)
                .await;
            if delivered {
                assert_eq!(json_ok(read).await, created);
            } else {
                assert_not_found(read).await;
            }
        }
    }
}

/// On an on-net call the API consumer decides the side: no token of the other side's party
/// lets a consumer act for it, see a call it hung up, or learn a withheld caller; the
/// receiver's consumer hears of the call only at the receiver's number; each side's PUT rules
/// name the field by its path.
#[tokio::test]
async fn the_consumer_decides_the_side_of_an_on_net_call() {
    let app = spawn_app().await;
    let (bob, bob_sink, _, _) = subscribes(&app, RECEIVER, "bob-app", &["session-status"]).await;
    // Each consumer also follows the other side's number (a 2-legged registration, which
    // anyone may make): neither hears of the call there.
    let snoops = [
        follows(&app, "bob-app", "+17085852753").await,
        follows(&app, "alice-app", "+17085854000").await,
    ];
    let alice = app.app_token(ORIGINATOR, "alice-app");
    let anonymous = json!({
        "originatorAddress": "sip:anonymous@anonymous.invalid", "receiverAddress": RECEIVER,
        "offer": { "sdp": CLEAN_SDP }
    });
    let created = json_with(
        app.create("/webrtc", &anonymous, &alice).await,
        StatusCode::CREATED,
    )
    .await;
    let id = created["mediaSessionId"].as_str().unwrap().to_owned();
    assert_eq!(json_ok(app.get_session(&id, &bob).await).await, created);
    // Tokens of the other side's party, or of a suspect, in the wrong consumer's hands: 404.
    for (sub, consumer) in [
        (ORIGINATOR, "bob-app"),
        ("tel:+17085850000", "bob-app"),
        (RECEIVER, "alice-app"),
    ] {
        let token = app.app_token(sub, consumer);
        assert_not_found(app.get_session(&id, &token).await).await;
        let connect = json!({ "status": "Connected", "answer": { "sdp": CLEAN_SDP } }).to_string();
        assert_not_found(app.put_status(&id, &connect, &token).await).await;
        assert_not_found(app.delete("/webrtc", &id, &token).await).await;
    }
    // The receiver's side keeps to its own, named by the body's path.
    let refusals = [
        (
            json!({ "receiverSessionStatus": { "status": "Connected" } }),
            "receiverSessionStatus.answer: an on-net call is connected with the receiver's answer, which the caller's app needs.",
        ),
        (
            json!({ "status": "Ringing", "locationDetails": { "shape": "Circle", "coordinates": { "latitude": 40.7, "longitude": -74.0, "radius": 50 } } }),
            "locationDetails: the location of an on-net call is the caller's.",
        ),
    ];
    for (body, message) in refusals {
        let refused = app.put_status(&id, &body.to_string(), &bob).await;
        assert_error(refused, 400, "INVALID_ARGUMENT", message).await;
    }
    json_ok(app.put_status(&id, r#"{"status":"Ringing"}"#, &bob).await).await;
    // The caller hangs up first: gone for alice-app whatever token it uses; Bob reads why.
    assert_eq!(
        app.delete("/webrtc", &id, &alice).await.status(),
        StatusCode::NO_CONTENT
    );
    for sub in [ORIGINATOR, RECEIVER] {
        assert_not_found(app.get_session(&id, &app.app_token(sub, "alice-app")).await).await;
    }
    let ended = json_ok(app.get_session(&id, &bob).await).await;
    assert_eq!(
        (&ended["status"], &ended["reason"]),
        (
            &json!("SessionCancelled"),
            &json!("Call cancelled by caller")
        )
    );
    bob_sink.wait_for(2).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    for snoop in snoops {
        assert_eq!(
            snoop.received().len(),
            0,
            "nothing at the other side's number"
        );
    }
}

/// The API consumer `consumer` registers `number` with a 2-legged token (unproven) and
/// subscribes a new sink to its invitations and statuses: the sink.
async fn follows(app: &TestApp, consumer: &str, number: &str) -> crate::sink::Sink {
    const PREFIX: &str = "org.camaraproject.webrtc-events.v0";
    let scopes = crate::delivery::every_scope();
    let two_legged =
        camara_webrtc::auth::mint(&app.config.auth, consumer, &scopes, None, 3600).unwrap();
    let device = json!({ "deviceId": uuid::Uuid::new_v4().to_string(), "phoneNumber": number });
    let path = "/webrtc-registration/vwip/sessions";
    let post = reqwest::Method::POST;
    let registered = send_scenario(app, post.clone(), path, Some(&two_legged), Some(device)).await;
    let registration = json_with(registered, StatusCode::CREATED).await["registrationId"].clone();
    let sink = crate::sink::Sink::start().await;
    let body = json!({
        "protocol": "HTTP", "sink": sink.url,
        "types": [format!("{PREFIX}.session-invitation"), format!("{PREFIX}.session-status")],
        "config": { "subscriptionDetail": { "registrationId": registration } }
    });
    let path = "/webrtc-events/vwip/subscriptions";
    let subscribed = send_scenario(app, post, path, Some(&two_legged), Some(body)).await;
    json_with(subscribed, StatusCode::CREATED).await;
    sink
}

/// An on-net call nobody answers ends NoAnswer after `no_answer_seconds`, for both sides.
#[tokio::test]
async fn an_unanswered_on_net_call_ends_no_answer() {
    let app = spawn_with(fast_network()).await;
    let (bob, _, _, _) = subscribes(&app, RECEIVER, "bob-app", &["session-invitation"]).await;
    let (alice, created) = alice_calls(&app, "alice-app").await;
    let id = created["mediaSessionId"].as_str().unwrap();
    json_ok(app.put_status(id, r#"{"status":"Ringing"}"#, &bob).await).await;
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    for token in [&alice, &bob] {
        let read = json_ok(app.get_session(id, token).await).await;
        assert_eq!(
            (&read["status"], &read["reason"]),
            (&json!("NoAnswer"), &json!("Not answered in time"))
        );
    }
}
