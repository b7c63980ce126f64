//! Events delivered to a real sink (`sink::Sink` on 127.0.0.1): what each CloudEvent carries, that
//! a failing sink is retried with the same event, that 410 ends the subscription, and that a
//! deleted subscription is told so. (In-process delivery, the memory store.)

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use camara_webrtc::config::Config;

use crate::helpers::*;
use crate::operations::sample;
use crate::sink::{Received, Sink};

const PREFIX: &str = "org.camaraproject.webrtc-events.v0";
const DEVICE: &str = "7d444840-9dc0-11d1-b245-5ffdce74fad2";
const EVENTS: &str = "/webrtc-events/vwip";

pub fn every_scope() -> String {
    let mut scopes: Vec<String> = ["session-invitation", "session-status", "registration-ends"]
        .iter()
        .map(|t| format!("webrtc-events:{PREFIX}.{t}:create"))
        .collect();
    scopes.extend(["read", "update", "delete"].map(|a| format!("webrtc-events:{a}")));
    scopes.push("webrtc-registration:sessions:create webrtc-registration:sessions:read webrtc-registration:sessions:delete".into());
    scopes.push(ALL_SCOPES.into());
    scopes.join(" ")
}

/// An app whose retries come quickly: 100 ms, then 200 ms.
async fn app() -> TestApp {
    let mut config = Config::embedded();
    config.events.retry_schedule_ms = vec![100, 200];
    spawn_with(config).await
}

fn token(app: &TestApp, sub: &str) -> String {
    camara_webrtc::auth::mint(&app.config.auth, sub, &every_scope(), Some("app"), 3600).unwrap()
}

/// Bob registers and subscribes `sink` to his invitations and call updates, with a sink
/// credential; the subscription's id.
async fn bob_subscribes(app: &TestApp, sink: &Sink) -> String {
    let credential = json!({
        "credentialType": "ACCESSTOKEN", "accessToken": "sink-token",
        "accessTokenExpiresUtc": "2030-01-01T12:00:00Z", "accessTokenType": "bearer"
    });
    bob_subscribes_with(app, sink, json!({}), Some(credential)).await
}

/// Alice calls Bob; the new session's body.
async fn alice_calls_bob(app: &TestApp) -> Value {
    let alice = token(app, ORIGINATOR);
    let call = json!({
        "originatorAddress": ORIGINATOR, "receiverAddress": RECEIVER,
        "offer": { "sdp": CLEAN_SDP }
    });
    json_with(
        app.create("/webrtc", &call, &alice).await,
        StatusCode::CREATED,
    )
    .await
}

/// Asserts the CloudEvents envelope and headers of `received`; returns its `data`.
fn envelope(received: &Received, name: &str) -> Value {
    let body = &received.body;
    assert_eq!(
        received.headers["content-type"],
        "application/cloudevents+json"
    );
    assert_eq!(received.headers["authorization"], "Bearer sink-token");
    let id = body["id"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{body}");
    assert_eq!(received.headers["x-correlator"], id);
    let time = body["time"].as_str().unwrap();
    assert!(
        camara_webrtc::domain::registration::rfc3339_to_ms(time).is_ok(),
        "{time}"
    );
    assert_eq!(
        body,
        &json!({
            "id": id, "source": "urn:camara-webrtc", "type": format!("{PREFIX}.{name}"),
            "specversion": "1.0", "time": time, "datacontenttype": "application/json",
            "data": body["data"]
        })
    );
    body["data"].clone()
}

#[tokio::test]
async fn the_receiver_is_invited_and_told_every_change() {
    let app = app().await;
    let sink = Sink::start().await;
    let subscription = bob_subscribes(&app, &sink).await;
    let session = alice_calls_bob(&app).await;
    let id = session["mediaSessionId"].as_str().unwrap();
    let invitation = sink.wait_for(1).await;
    let data = envelope(&invitation[0], "session-invitation");
    let mut expected = session.clone();
    expected["sequenceNumber"] = json!(1);
    expected["subscriptionId"] = json!(subscription);
    assert_eq!(data, expected);
    // Bob's phone rings: session-status with the session as GET shows it, sequence 2.
    let bob = token(&app, RECEIVER);
    json_ok(app.put_status(id, r#"{"status":"Ringing"}"#, &bob).await).await;
    let received = sink.wait_for(2).await;
    let data = envelope(&received[1], "session-status");
    let mut expected = json_ok(app.get_session(id, &bob).await).await;
    expected["sequenceNumber"] = json!(2);
    expected["subscriptionId"] = json!(subscription);
    assert_eq!(data, expected);
    // Alice hangs up before an answer: SessionCancelled, sequence 3.
    let alice = token(&app, ORIGINATOR);
    assert_eq!(
        app.delete("/webrtc", id, &alice).await.status(),
        StatusCode::NO_CONTENT
    );
    let received = sink.wait_for(3).await;
    let data = envelope(&received[2], "session-status");
    assert_eq!(data["status"], "SessionCancelled");
    assert_eq!(data["sequenceNumber"], 3);
}

/// The invitation carries the call as placed (DESIGN §11's fields): a location the caller sent
/// is in the session, not in the invitation.
#[tokio::test]
async fn an_invitation_carries_the_call_as_placed_only() {
    let app = app().await;
    let sink = Sink::start().await;
    let subscription = bob_subscribes(&app, &sink).await;
    let alice = token(&app, ORIGINATOR);
    let call = json!({
        "originatorAddress": ORIGINATOR, "receiverAddress": RECEIVER,
        "offer": { "sdp": CLEAN_SDP },
        "locationDetails": {
            "shape": "Circle",
            "coordinates": { "latitude": 47.6062, "longitude": -122.3321, "radius": 35 }
        }
    });
    let created = app.create("/webrtc", &call, &alice).await;
    let session = json_with(created, StatusCode::CREATED).await;
    assert!(session.get("locationDetails").is_some(), "{session}");
    let received = sink.wait_for(1).await;
    let mut expected = session.clone();
    expected.as_object_mut().unwrap().remove("locationDetails");
    expected["sequenceNumber"] = json!(1);
    expected["subscriptionId"] = json!(subscription);
    assert_eq!(envelope(&received[0], "session-invitation"), expected);
}

#[tokio::test]
async fn a_failing_sink_gets_the_same_event_again_until_it_takes_it() {
    let app = app().await;
    let metrics = async || app.get("/metrics").await.text().await.unwrap();
    let series = |outcome: &str| {
        format!(
            "camara_webrtc_event_deliveries_total{{type=\"session-invitation\",outcome=\"{outcome}\"}}"
        )
    };
    let before = metrics().await;
    let sink = Sink::start().await;
    bob_subscribes(&app, &sink).await;
    sink.answer(&[(500, None), (503, Some(1))]);
    alice_calls_bob(&app).await;
    let received = sink.wait_for(3).await;
    let ids: Vec<&Value> = received.iter().map(|r| &r.body["id"]).collect();
    assert_eq!(ids[0], ids[1]);
    assert_eq!(ids[1], ids[2]);
    assert_eq!(received[2].body, received[0].body);
    // Counted by outcome (the recorder is process-wide: deltas), once the sink's last answer is
    // back at the dispatcher.
    let grew = |after: &str, outcome: &str| {
        sample(after, &series(outcome)) - sample(&before, &series(outcome))
    };
    let mut after = metrics().await;
    for _ in 0..100 {
        if grew(&after, "delivered") >= 1.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        after = metrics().await;
    }
    assert!(grew(&after, "retrying") >= 2.0, "{after}");
    assert!(grew(&after, "delivered") >= 1.0, "{after}");
    assert!(after.contains("# TYPE camara_webrtc_event_delivery_duration_seconds histogram"));
}

#[tokio::test]
async fn a_sink_that_answers_410_ends_its_subscription() {
    let app = app().await;
    let sink = Sink::start().await;
    let subscription = bob_subscribes(&app, &sink).await;
    sink.answer(&[(410, None)]);
    let session = alice_calls_bob(&app).await;
    sink.wait_for(1).await;
    let bob = token(&app, RECEIVER);
    let path = format!("{EVENTS}/subscriptions/{subscription}");
    let mut gone = false;
    for _ in 0..200 {
        let response = send_scenario(&app, Method::GET, &path, Some(&bob), None).await;
        if response.status() == StatusCode::NOT_FOUND {
            gone = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(gone, "the subscription outlived the sink's 410");
    // Nothing more is sent to it.
    let id = session["mediaSessionId"].as_str().unwrap();
    json_ok(app.put_status(id, r#"{"status":"Ringing"}"#, &bob).await).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(sink.received().len(), 1);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("camara_webrtc_subscriptions_ended_total{reason=\"SINK_GONE\"} "),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_deleted_subscription_is_told_it_ended() {
    let app = app().await;
    let sink = Sink::start().await;
    let subscription = bob_subscribes(&app, &sink).await;
    let bob = token(&app, RECEIVER);
    let path = format!("{EVENTS}/subscriptions/{subscription}");
    let deleted = send_scenario(&app, Method::DELETE, &path, Some(&bob), None).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let received = sink.wait_for(1).await;
    let data = envelope(&received[0], "subscription-ended");
    assert_eq!(
        data,
        json!({ "subscriptionId": subscription, "terminationReason": "SUBSCRIPTION_DELETED" })
    );
    // A call to Bob now reaches nobody.
    alice_calls_bob(&app).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(sink.received().len(), 1);
}

/// A registration that expires ends Bob's call and tells his sink both: the call's last
/// session-status (Failed, "registration ended"), then registration-ends; the subscription made
/// for it ends too (NETWORK_TERMINATED).
#[tokio::test]
async fn an_expiring_registration_sends_its_calls_end_and_registration_ends() {
    let mut config = Config::embedded();
    config.registration.min_ttl_seconds = 1;
    let app = spawn_with(config).await;
    let sink = Sink::start().await;
    let bob = token(&app, ORIGINATOR);
    let expires =
        camara_webrtc::domain::registration::rfc3339_ms(camara_webrtc::store::now_ms() + 1500);
    let registered = send_scenario(
        &app,
        Method::POST,
        "/webrtc-registration/vwip/sessions",
        Some(&bob),
        Some(json!({ "deviceId": DEVICE, "registrationExpireTime": expires })),
    )
    .await;
    let registered = json_with(registered, StatusCode::CREATED).await;
    let registration = registered["registrationId"].as_str().unwrap();
    let body = json!({
        "protocol": "HTTP", "sink": sink.url,
        "types": [format!("{PREFIX}.registration-ends"), format!("{PREFIX}.session-status")],
        "config": { "subscriptionDetail": { "registrationId": registration } }
    });
    let path = format!("{EVENTS}/subscriptions");
    let response = send_scenario(&app, Method::POST, &path, Some(&bob), Some(body)).await;
    let subscription = json_with(response, StatusCode::CREATED).await["id"].clone();
    let call = json!({
        "originatorAddress": ORIGINATOR, "receiverAddress": RECEIVER, "offer": { "sdp": CLEAN_SDP }
    });
    let placed = app
        .client
        .post(app.url("/webrtc/sessions"))
        .bearer_auth(&bob)
        .header("registrationId", registration)
        .json(&call)
        .send()
        .await
        .unwrap();
    let session = json_with(placed, StatusCode::CREATED).await;
    let received = sink.wait_for(3).await;
    let ended = envelope_of(of_type(&received, "session-status"), "session-status");
    assert_eq!(ended["mediaSessionId"], session["mediaSessionId"]);
    assert_eq!(ended["status"], "Failed");
    assert_eq!(ended["reason"], "registration ended");
    assert_eq!(ended["sequenceNumber"], 2);
    assert_eq!(ended["subscriptionId"], subscription);
    let ends = envelope_of(of_type(&received, "registration-ends"), "registration-ends");
    assert_eq!(
        ends,
        json!({
            "registrationId": registration,
            "terminationReason": "REGISTRATION_EXPIRED",
            "terminationDescription": format!("The registration expired at {} without a refresh.", registered["expiresAt"].as_str().unwrap())
        })
    );
    let ended = envelope_of(
        of_type(&received, "subscription-ended"),
        "subscription-ended",
    );
    assert_eq!(
        ended,
        json!({ "subscriptionId": subscription, "terminationReason": "NETWORK_TERMINATED" })
    );
}

/// A subscription ends with the registration it was made for (NETWORK_TERMINATED), deleted or
/// expired: Bob's next registration of the same number, by the same app, does not receive
/// events through it.
#[tokio::test]
async fn a_subscription_ends_with_its_registration() {
    let app = app().await;
    let sink = Sink::start().await;
    let bob = token(&app, RECEIVER);
    let registrations = "/webrtc-registration/vwip/sessions";
    let device = json!({ "deviceId": DEVICE });
    let registered = send_scenario(&app, Method::POST, registrations, Some(&bob), Some(device));
    let registration = json_with(registered.await, StatusCode::CREATED).await["registrationId"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = json!({
        "protocol": "HTTP", "sink": sink.url,
        "types": [format!("{PREFIX}.session-invitation")],
        "config": { "subscriptionDetail": { "registrationId": registration } }
    });
    let path = format!("{EVENTS}/subscriptions");
    let response = send_scenario(&app, Method::POST, &path, Some(&bob), Some(body)).await;
    let subscription = json_with(response, StatusCode::CREATED).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("{registrations}/{registration}");
    let deleted = send_scenario(&app, Method::DELETE, &path, Some(&bob), None).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let received = sink.wait_for(1).await;
    assert_eq!(
        envelope_of(&received[0], "subscription-ended"),
        json!({ "subscriptionId": subscription, "terminationReason": "NETWORK_TERMINATED" })
    );
    let path = format!("{EVENTS}/subscriptions/{subscription}");
    let gone = send_scenario(&app, Method::GET, &path, Some(&bob), None).await;
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    let device = json!({ "deviceId": DEVICE });
    let again = send_scenario(&app, Method::POST, registrations, Some(&bob), Some(device));
    json_with(again.await, StatusCode::CREATED).await;
    alice_calls_bob(&app).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(sink.received().len(), 1);
}

/// The one received event of type `name` (events started in order may arrive in any order).
pub fn of_type<'a>(received: &'a [Received], name: &str) -> &'a Received {
    let kind = format!("{PREFIX}.{name}");
    let found: Vec<&Received> = received.iter().filter(|r| r.body["type"] == kind).collect();
    assert_eq!(found.len(), 1, "{name} in {received:?}");
    found[0]
}

/// The envelope checks of [`envelope`] for an event sent without a sink credential.
pub fn envelope_of(received: &Received, name: &str) -> Value {
    assert!(!received.headers.contains_key("authorization"));
    let body = &received.body;
    assert_eq!(body["type"], format!("{PREFIX}.{name}"), "{body}");
    assert_eq!(body["specversion"], "1.0");
    assert_eq!(
        received.headers["x-correlator"],
        body["id"].as_str().unwrap()
    );
    body["data"].clone()
}

/// Bob registers a new device and subscribes `sink` to his invitations and call updates with
/// `config` (beside the registration's detail) and `credential`; the subscription's id.
async fn bob_subscribes_with(
    app: &TestApp,
    sink: &Sink,
    config: Value,
    credential: Option<Value>,
) -> String {
    let bob = token(app, RECEIVER);
    let registered = send_scenario(
        app,
        Method::POST,
        "/webrtc-registration/vwip/sessions",
        Some(&bob),
        Some(json!({ "deviceId": uuid::Uuid::new_v4().to_string() })),
    )
    .await;
    let registration = json_with(registered, StatusCode::CREATED).await["registrationId"].clone();
    let mut config = config;
    config["subscriptionDetail"] = json!({ "registrationId": registration });
    let mut body = json!({
        "protocol": "HTTP", "sink": sink.url,
        "types": [format!("{PREFIX}.session-invitation"), format!("{PREFIX}.session-status")],
        "config": config
    });
    if let Some(credential) = credential {
        body["sinkCredential"] = credential;
    }
    let path = format!("{EVENTS}/subscriptions");
    let response = send_scenario(app, Method::POST, &path, Some(&bob), Some(body)).await;
    json_with(response, StatusCode::CREATED).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The event that reaches `subscriptionMaxEvents` is the last: subscription-ended
/// (MAX_EVENTS_REACHED) follows, nothing after, and the subscription is gone.
#[tokio::test]
async fn a_subscription_ends_at_its_max_events() {
    let app = app().await;
    let sink = Sink::start().await;
    let subscription =
        bob_subscribes_with(&app, &sink, json!({ "subscriptionMaxEvents": 2 }), None).await;
    let session = alice_calls_bob(&app).await;
    let id = session["mediaSessionId"].as_str().unwrap();
    let bob = token(&app, RECEIVER);
    json_ok(app.put_status(id, r#"{"status":"Ringing"}"#, &bob).await).await;
    let received = sink.wait_for(3).await;
    of_type(&received, "session-invitation");
    of_type(&received, "session-status");
    assert_eq!(
        of_type(&received, "subscription-ended").body["data"],
        json!({ "subscriptionId": subscription, "terminationReason": "MAX_EVENTS_REACHED" })
    );
    json_ok(
        app.put_status(
            id,
            r#"{"status":"Connected","answer":{"sdp":"v=0\r\n"}}"#,
            &bob,
        )
        .await,
    )
    .await;
    let path = format!("{EVENTS}/subscriptions/{subscription}");
    let gone = send_scenario(&app, Method::GET, &path, Some(&bob), None).await;
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(sink.received().len(), 3);
}

/// The events counted up to the max are sent, retries included, even when the store keeps no
/// ended record (`sessions.ended_ttl_seconds` 0): a subscription the service ended after its
/// events is kept for them.
#[tokio::test]
async fn the_last_counted_event_is_sent_when_ended_records_are_not_kept() {
    let mut config = Config::embedded();
    config.sessions.ended_ttl_seconds = 0;
    config.events.retry_schedule_ms = vec![100, 200];
    let app = spawn_with(config).await;
    let sink = Sink::start().await;
    let subscription =
        bob_subscribes_with(&app, &sink, json!({ "subscriptionMaxEvents": 2 }), None).await;
    // The first two attempts are refused: whichever events they were, they are retried.
    sink.answer(&[(503, None), (503, None)]);
    let session = alice_calls_bob(&app).await;
    let id = session["mediaSessionId"].as_str().unwrap();
    let bob = token(&app, RECEIVER);
    json_ok(app.put_status(id, r#"{"status":"Ringing"}"#, &bob).await).await;
    sink.wait_for(5).await;
    for _ in 0..100 {
        if sink.delivered().len() >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let delivered: Vec<Received> = (sink.delivered().into_iter())
        .map(|body| Received {
            headers: Default::default(),
            body,
        })
        .collect();
    assert_eq!(delivered.len(), 3, "{delivered:?}");
    let received = delivered;
    of_type(&received, "session-invitation");
    assert_eq!(
        of_type(&received, "session-status").body["data"]["status"],
        "Ringing"
    );
    assert_eq!(
        of_type(&received, "subscription-ended").body["data"],
        json!({ "subscriptionId": subscription, "terminationReason": "MAX_EVENTS_REACHED" })
    );
}

/// At its subscriptionExpireTime a subscription ends by itself with subscription-ended
/// (SUBSCRIPTION_EXPIRED).
#[tokio::test]
async fn a_subscription_ends_at_its_expiry() {
    let app = app().await;
    let sink = Sink::start().await;
    let expires =
        camara_webrtc::domain::registration::rfc3339_ms(camara_webrtc::store::now_ms() + 1500);
    let subscription = bob_subscribes_with(
        &app,
        &sink,
        json!({ "subscriptionExpireTime": expires }),
        None,
    )
    .await;
    let received = sink.wait_for(1).await;
    assert_eq!(
        envelope_of(&received[0], "subscription-ended"),
        json!({ "subscriptionId": subscription, "terminationReason": "SUBSCRIPTION_EXPIRED" })
    );
}

/// After its last retry an event is dropped (and counted): the first attempt and one per delay
/// of the schedule, nothing more.
#[tokio::test]
async fn an_event_is_dropped_after_its_last_retry() {
    let app = app().await;
    let dropped =
        r#"camara_webrtc_event_deliveries_total{type="session-invitation",outcome="dropped"}"#;
    let before = sample(&app.get("/metrics").await.text().await.unwrap(), dropped);
    let sink = Sink::start().await;
    bob_subscribes(&app, &sink).await;
    sink.answer(&[(500, None), (500, None), (500, None)]);
    alice_calls_bob(&app).await;
    sink.wait_for(3).await;
    let mut after = before;
    for _ in 0..100 {
        after = sample(&app.get("/metrics").await.text().await.unwrap(), dropped);
        if after > before {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(after >= before + 1.0, "{dropped}: {before} -> {after}");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(sink.received().len(), 3);
}

/// `[[fixtures.registrations]]` and `[[fixtures.subscriptions]]` are there from the start (with
/// CAMARA's example ids) and deliver like any other.
#[tokio::test]
async fn fixture_registrations_and_subscriptions_are_loaded_and_deliver() {
    use camara_webrtc::config::{FixtureRegistration, FixtureSubscription};
    let sink = Sink::start().await;
    let mut config = Config::embedded();
    config.fixtures.registrations = vec![FixtureRegistration {
        registration_id: "xsmcaum3z4zw4l0cu4w115m0".into(),
        device_id: DEVICE.into(),
        phone_number: "+17085854000".into(),
        consumer: "app".into(),
    }];
    config.fixtures.subscriptions = vec![FixtureSubscription {
        subscription_id: "qs15-h556-rt89-1298".into(),
        sink: sink.url.clone(),
        types: vec![format!("{PREFIX}.session-invitation")],
        registration_id: "xsmcaum3z4zw4l0cu4w115m0".into(),
        consumer: "app".into(),
    }];
    let app = spawn_with(config).await;
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("camara_webrtc_subscriptions{status=\"ACTIVE\"} 1\n"),
        "{metrics}"
    );
    let bob = token(&app, RECEIVER);
    let path = format!("{EVENTS}/subscriptions/qs15-h556-rt89-1298");
    let read = json_ok(send_scenario(&app, Method::GET, &path, Some(&bob), None).await).await;
    assert_eq!(
        read["config"]["subscriptionDetail"]["registrationId"],
        "xsmcaum3z4zw4l0cu4w115m0"
    );
    assert_eq!(read.get("expiresAt"), None);
    let registration = "/webrtc-registration/vwip/sessions/xsmcaum3z4zw4l0cu4w115m0";
    let read =
        json_ok(send_scenario(&app, Method::GET, registration, Some(&bob), None).await).await;
    assert_eq!(read["expiresAt"], "9999-12-31T23:59:59.999Z");
    let session = alice_calls_bob(&app).await;
    let received = sink.wait_for(1).await;
    let data = envelope_of(&received[0], "session-invitation");
    assert_eq!(data["mediaSessionId"], session["mediaSessionId"]);
    assert_eq!(data["subscriptionId"], "qs15-h556-rt89-1298");
}

/// An HTTPS sink whose certificate a private CA signed: delivered once `events.ca_file` trusts
/// that CA, never without it (the event is retried, then dropped).
#[tokio::test]
async fn an_https_sink_of_a_private_ca_needs_events_ca_file() {
    for trusted in [true, false] {
        let mut config = Config::embedded();
        config.events.retry_schedule_ms = vec![100];
        if trusted {
            config.events.ca_file = fixture_path("tls/ca.pem").to_str().unwrap().to_owned();
        }
        let app = spawn_with(config).await;
        let sink = Sink::start_https().await;
        bob_subscribes(&app, &sink).await;
        alice_calls_bob(&app).await;
        if trusted {
            let received = sink.wait_for(1).await;
            envelope(&received[0], "session-invitation");
        } else {
            tokio::time::sleep(std::time::Duration::from_millis(800)).await;
            assert_eq!(sink.received().len(), 0);
        }
    }
}

/// A sink that stops answering holds up nothing else: the events behind it are still attempted,
/// and another subscription's sink gets its events.
#[tokio::test]
async fn a_sink_that_does_not_answer_delays_no_other_event() {
    let app = app().await;
    let stuck = Sink::start().await;
    let well = Sink::start().await;
    let _held = stuck.hold().await;
    bob_subscribes(&app, &stuck).await;
    bob_subscribes(&app, &well).await;
    let first = alice_calls_bob(&app).await;
    let second = alice_calls_bob(&app).await;
    // Both invitations reach the stuck sink (the second not waiting for the first's answer), and
    // both reach the other one.
    let ids = |received: Vec<Received>| -> Vec<Value> {
        received
            .iter()
            .map(|r| r.body["data"]["mediaSessionId"].clone())
            .collect()
    };
    let expected = vec![
        first["mediaSessionId"].clone(),
        second["mediaSessionId"].clone(),
    ];
    assert_eq!(ids(stuck.wait_for(2).await), expected);
    assert_eq!(ids(well.wait_for(2).await), expected);
}

/// A 429 is retried with the same event, no sooner than its `Retry-After` allows (capped at twice
/// the scheduled delay).
#[tokio::test]
async fn a_429_is_retried_after_its_retry_after() {
    let app = app().await;
    let sink = Sink::start().await;
    bob_subscribes(&app, &sink).await;
    sink.answer(&[(429, Some(1))]);
    alice_calls_bob(&app).await;
    let received = sink.wait_for(2).await;
    assert_eq!(received[0].body, received[1].body);
}

/// A redirect is never followed (it could point anywhere, the guard's networks included): the
/// event is retried at the sink the subscription named, and the redirect's target gets nothing.
#[tokio::test]
async fn a_redirect_is_not_followed() {
    let app = app().await;
    let (sink, elsewhere) = (Sink::start().await, Sink::start().await);
    bob_subscribes(&app, &sink).await;
    sink.redirect_to(&elsewhere.url);
    sink.answer(&[(307, None)]);
    alice_calls_bob(&app).await;
    let received = sink.wait_for(2).await;
    assert_eq!(received[0].body, received[1].body);
    assert_eq!(sink.delivered(), vec![received[1].body.clone()]);
    assert_eq!(elsewhere.received().len(), 0);
}

/// The originator's subscriptions follow the call too: every change after its creation (the
/// invitation is the receiver's alone).
#[tokio::test]
async fn the_originator_is_told_every_change_of_its_call() {
    let app = app().await;
    let sink = Sink::start().await;
    let alice = token(&app, ORIGINATOR);
    let device = json!({ "deviceId": DEVICE });
    let path = "/webrtc-registration/vwip/sessions";
    let registered = send_scenario(&app, Method::POST, path, Some(&alice), Some(device)).await;
    let registration = json_with(registered, StatusCode::CREATED).await["registrationId"].clone();
    let body = json!({
        "protocol": "HTTP", "sink": sink.url,
        "types": [format!("{PREFIX}.session-invitation"), format!("{PREFIX}.session-status")],
        "config": { "subscriptionDetail": { "registrationId": registration } }
    });
    let path = format!("{EVENTS}/subscriptions");
    let response = send_scenario(&app, Method::POST, &path, Some(&alice), Some(body)).await;
    let subscription = json_with(response, StatusCode::CREATED).await["id"].clone();
    let session = alice_calls_bob(&app).await;
    let id = session["mediaSessionId"].as_str().unwrap();
    let bob = token(&app, RECEIVER);
    json_ok(app.put_status(id, r#"{"status":"Ringing"}"#, &bob).await).await;
    let received = sink.wait_for(1).await;
    let data = envelope_of(&received[0], "session-status");
    let mut expected = json_ok(app.get_session(id, &alice).await).await;
    expected["sequenceNumber"] = json!(2);
    expected["subscriptionId"] = subscription;
    assert_eq!(data, expected);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(sink.received().len(), 1, "no invitation for the caller");
}

/// The guard runs again when delivering: a sink (here a fixture's, which is not checked when it
/// is loaded) whose host resolves to a loopback address the configuration does not allow gets
/// nothing, though it listens.
#[tokio::test]
async fn a_sink_that_resolves_to_a_refused_address_gets_nothing() {
    use camara_webrtc::config::{FixtureRegistration, FixtureSubscription};
    let sink = Sink::start().await;
    let by_name = sink.url.replace("127.0.0.1", "localhost");
    let mut config = Config::embedded();
    config.events.allowed_sink_networks = vec![];
    config.events.retry_schedule_ms = vec![100];
    config.fixtures.registrations = vec![FixtureRegistration {
        registration_id: "bob-phone".into(),
        device_id: DEVICE.into(),
        phone_number: "+17085854000".into(),
        consumer: "app".into(),
    }];
    config.fixtures.subscriptions = vec![FixtureSubscription {
        subscription_id: "bob-events".into(),
        sink: by_name,
        types: vec![format!("{PREFIX}.session-invitation")],
        registration_id: "bob-phone".into(),
        consumer: "app".into(),
    }];
    let app = spawn_with(config).await;
    alice_calls_bob(&app).await;
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert_eq!(sink.received().len(), 0);
}

/// A `sessionId` in the detail narrows session-status to that call; invitations still come.
#[tokio::test]
async fn a_session_id_narrows_session_status_only() {
    let app = app().await;
    let sink = Sink::start().await;
    let detail = json!({ "subscriptionDetail": {} });
    let subscription = bob_subscribes_with(&app, &sink, detail, None).await;
    let bob = token(&app, RECEIVER);
    // Narrow it by hand: a new subscription on the same registration, naming one call.
    let path = format!("{EVENTS}/subscriptions/{subscription}");
    let read = json_ok(send_scenario(&app, Method::GET, &path, Some(&bob), None).await).await;
    let registration = read["config"]["subscriptionDetail"]["registrationId"].clone();
    let narrowed = json!({
        "protocol": "HTTP", "sink": sink.url,
        "types": [format!("{PREFIX}.session-invitation"), format!("{PREFIX}.session-status")],
        "config": { "subscriptionDetail": { "registrationId": registration, "sessionId": "another-call" } }
    });
    let deleted = send_scenario(&app, Method::DELETE, &path, Some(&bob), None).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let created = send_scenario(
        &app,
        Method::POST,
        &format!("{EVENTS}/subscriptions"),
        Some(&bob),
        Some(narrowed),
    )
    .await;
    json_with(created, StatusCode::CREATED).await;
    sink.wait_for(1).await; // the first subscription's subscription-ended
    let session = alice_calls_bob(&app).await;
    let id = session["mediaSessionId"].as_str().unwrap();
    let received = sink.wait_for(2).await;
    of_type(&received, "session-invitation");
    json_ok(app.put_status(id, r#"{"status":"Ringing"}"#, &bob).await).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let received = sink.received();
    assert_eq!(received.len(), 2, "{received:?}");
}
