//! The events API's subscriptions (DESIGN §11) over real HTTP: CAMARA's 24 events scenarios
//! (`tests/fixtures/camara/events/*.feature`), one named test each, run on both default base
//! paths, then validation, scopes per type, ownership, quotas and the SSRF guard. (The events
//! themselves and their delivery are not in this file.)

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use camara_webrtc::config::Config;

use crate::helpers::*;

const BASES: [&str; 2] = ["/webrtc-events/v0.2", "/webrtc-events/vwip"];
const PREFIX: &str = "org.camaraproject.webrtc-events.v0";
const DEVICE: &str = "7d444840-9dc0-11d1-b245-5ffdce74fad2";
/// A sink nothing listens on (the discard port of this machine): no test sends it anything.
const SINK: &str = "https://127.0.0.1:9/webrtc-sink";
const CONSUMER: &str = "camara-scenarios";
const NOT_FOUND: &str =
    "The specified resource is not found: no active subscription with this subscriptionId.";

/// Every scope of the events and registration APIs.
fn every_scope() -> String {
    let mut scopes: Vec<String> = ["session-invitation", "session-status", "registration-ends"]
        .iter()
        .map(|t| format!("webrtc-events:{PREFIX}.{t}:create"))
        .collect();
    for action in ["read", "update", "delete"] {
        scopes.push(format!("webrtc-events:{action}"));
    }
    scopes.push("webrtc-registration:sessions:create".into());
    scopes.join(" ")
}

fn token(app: &TestApp, sub: &str, client_id: &str) -> String {
    token_with(app, sub, client_id, &every_scope())
}

fn token_with(app: &TestApp, sub: &str, client_id: &str, scope: &str) -> String {
    camara_webrtc::auth::mint(&app.config.auth, sub, scope, Some(client_id), 3600).unwrap()
}

/// Registers `DEVICE` for `token`'s number; the registrationId.
async fn register(app: &TestApp, token: &str) -> String {
    let response = send_scenario(
        app,
        Method::POST,
        "/webrtc-registration/vwip/sessions",
        Some(token),
        Some(json!({ "deviceId": DEVICE })),
    )
    .await;
    let body = json_with(response, StatusCode::CREATED).await;
    body["registrationId"].as_str().unwrap().to_owned()
}

/// A valid request: `types` (short names) for the registration `registration`.
fn request(types: &[&str], registration: &str) -> Value {
    json!({
        "protocol": "HTTP",
        "sink": SINK,
        "types": types.iter().map(|t| format!("{PREFIX}.{t}")).collect::<Vec<_>>(),
        "config": { "subscriptionDetail": { "registrationId": registration } }
    })
}

async fn subscribe(app: &TestApp, base: &str, token: &str, body: Value) -> Response {
    let path = format!("{base}/subscriptions");
    send_scenario(app, Method::POST, &path, Some(token), Some(body)).await
}

/// A new subscription (201); its body.
async fn subscribed(app: &TestApp, base: &str, token: &str, body: Value) -> Value {
    json_with(subscribe(app, base, token, body).await, StatusCode::CREATED).await
}

// --- CAMARA's scenarios -----------------------------------------------------------------------

const NO_ID: (u16, &str, &str) = (
    400,
    "INVALID_ARGUMENT",
    "subscriptionId is missing from the path: use /subscriptions/{subscriptionId}.",
);

/// An error scenario on both base paths: `path` (with `{existing}` for a subscription of the
/// caller's, and `body` with `{registration}` for its registration), `token`, the whole error.
async fn scenario_error(
    method: Method,
    path: &str,
    kind: TokenKind,
    body: Option<Value>,
    (status, code, message): (u16, &str, &str),
) {
    let app = spawn_app().await;
    let valid = token(&app, RECEIVER, CONSUMER);
    let registration = register(&app, &valid).await;
    for base in BASES {
        let existing = subscribed(
            &app,
            base,
            &valid,
            request(&["session-status"], &registration),
        )
        .await;
        let path = path.replace("{existing}", existing["id"].as_str().unwrap());
        let body = body.as_ref().map(|b| {
            serde_json::from_str(&b.to_string().replace("{registration}", &registration)).unwrap()
        });
        let token = scenario_token(&app, kind, RECEIVER, CONSUMER, &every_scope());
        let response = send_scenario(
            &app,
            method.clone(),
            &format!("{base}{path}"),
            token.as_deref(),
            body,
        )
        .await;
        assert_correlator_echoed(&response);
        assert_error(response, status, code, message).await;
    }
}

fn valid_body() -> Option<Value> {
    Some(request(&["session-invitation"], "{registration}"))
}

#[tokio::test]
async fn create_notification_channel_subscription_01_generic_success_scenario() {
    let app = spawn_app().await;
    let valid = token(&app, RECEIVER, CONSUMER);
    let registration = register(&app, &valid).await;
    for base in BASES {
        // CAMARA's payload, with a future subscriptionExpireTime (its 2024 one is in the past:
        // see `a_subscription_expire_time_in_the_past_is_out_of_range`) and our sink.
        let expires = camara_webrtc::domain::registration::rfc3339_ms(
            camara_webrtc::store::now_ms() + 86_400_000,
        );
        let body = json!({
            "protocol": "HTTP",
            "sink": SINK,
            "types": [format!("{PREFIX}.session-invitation")],
            "config": {
                "subscriptionDetail": { "deviceId": DEVICE, "registrationId": registration },
                "initialEvent": true,
                "subscriptionMaxEvents": 50,
                "subscriptionExpireTime": expires
            }
        });
        let response = subscribe(&app, base, &valid, body).await;
        assert_correlator_echoed(&response);
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        let created = json_with(response, StatusCode::CREATED).await;
        let id = created["id"].as_str().unwrap();
        assert_eq!(location, format!("{base}/subscriptions/{id}"));
        assert_eq!(
            created,
            json!({
                "protocol": "HTTP",
                "sink": SINK,
                "types": [format!("{PREFIX}.session-invitation")],
                "config": {
                    "subscriptionDetail": { "deviceId": DEVICE, "registrationId": registration },
                    "subscriptionExpireTime": expires,
                    "subscriptionMaxEvents": 50,
                    "initialEvent": true
                },
                "id": id,
                "startsAt": created["startsAt"],
                "expiresAt": expires,
                "status": "ACTIVE"
            })
        );
    }
}

#[tokio::test]
async fn create_notification_channel_subscription_400_1_no_request_body() {
    let expected = (400, "INVALID_ARGUMENT", "A JSON request body is required.");
    scenario_error(
        Method::POST,
        "/subscriptions",
        TokenKind::Valid,
        None,
        expected,
    )
    .await;
}

#[tokio::test]
async fn create_notification_channel_subscription_400_2_empty_request_body() {
    let expected = (400, "INVALID_ARGUMENT", "protocol is required: HTTP.");
    let body = Some(json!({}));
    scenario_error(
        Method::POST,
        "/subscriptions",
        TokenKind::Valid,
        body,
        expected,
    )
    .await;
}

#[tokio::test]
async fn create_notification_channel_subscription_401_1_no_authorization_header() {
    scenario_error(
        Method::POST,
        "/subscriptions",
        TokenKind::Absent,
        valid_body(),
        NO_HEADER,
    )
    .await;
}

#[tokio::test]
async fn create_notification_channel_subscription_401_2_expired_access_token() {
    scenario_error(
        Method::POST,
        "/subscriptions",
        TokenKind::Expired,
        valid_body(),
        EXPIRED,
    )
    .await;
}

#[tokio::test]
async fn create_notification_channel_subscription_401_3_invalid_access_token() {
    scenario_error(
        Method::POST,
        "/subscriptions",
        TokenKind::Invalid,
        valid_body(),
        INVALID,
    )
    .await;
}

/// Reads an existing subscription on both base paths (200, the schema) — the retrieve scenario.
#[tokio::test]
async fn retrieve_notification_channel_subscription_01_generic_success_scenario() {
    let app = spawn_app().await;
    let valid = token(&app, RECEIVER, CONSUMER);
    let registration = register(&app, &valid).await;
    for base in BASES {
        let created = subscribed(
            &app,
            base,
            &valid,
            request(&["session-status"], &registration),
        )
        .await;
        let path = format!("{base}/subscriptions/{}", created["id"].as_str().unwrap());
        let response = send_scenario(&app, Method::GET, &path, Some(&valid), None).await;
        assert_correlator_echoed(&response);
        assert_eq!(json_ok(response).await, created);
    }
}

#[tokio::test]
async fn retrieve_notification_channel_subscription_404_subscription_not_found() {
    let expected = (404, "NOT_FOUND", NOT_FOUND);
    let path = "/subscriptions/qs15-h556-rt89-1298";
    scenario_error(Method::GET, path, TokenKind::Valid, None, expected).await;
}

/// `GET /subscriptions` is the list operation, so "the path parameter is not included" can only
/// be the template with its parameter left out: `/subscriptions/`.
#[tokio::test]
async fn retrieve_notification_channel_subscription_400_1_no_request() {
    scenario_error(
        Method::GET,
        "/subscriptions/",
        TokenKind::Valid,
        None,
        NO_ID,
    )
    .await;
}

#[tokio::test]
async fn retrieve_notification_channel_subscription_400_2_empty_request() {
    scenario_error(
        Method::GET,
        "/subscriptions/",
        TokenKind::Valid,
        None,
        NO_ID,
    )
    .await;
}

#[tokio::test]
async fn retrieve_notification_channel_subscription_401_1_no_authorization_header() {
    let path = "/subscriptions/{existing}";
    scenario_error(Method::GET, path, TokenKind::Absent, None, NO_HEADER).await;
}

#[tokio::test]
async fn retrieve_notification_channel_subscription_401_2_expired_access_token() {
    let path = "/subscriptions/{existing}";
    scenario_error(Method::GET, path, TokenKind::Expired, None, EXPIRED).await;
}

#[tokio::test]
async fn retrieve_notification_channel_subscription_401_3_invalid_access_token() {
    let path = "/subscriptions/{existing}";
    scenario_error(Method::GET, path, TokenKind::Invalid, None, INVALID).await;
}

#[tokio::test]
async fn retrieve_notification_channel_subscription_list_01_generic_success_scenario() {
    let app = spawn_app().await;
    let valid = token(&app, RECEIVER, CONSUMER);
    let registration = register(&app, &valid).await;
    let first = subscribed(
        &app,
        BASES[0],
        &valid,
        request(&["session-status"], &registration),
    )
    .await;
    let second = subscribed(
        &app,
        BASES[1],
        &valid,
        request(&["registration-ends"], &registration),
    )
    .await;
    // Another consumer's subscription is not listed.
    let other = token(&app, RECEIVER, "other-app");
    let theirs = register(&app, &other).await;
    subscribed(
        &app,
        BASES[0],
        &other,
        request(&["session-status"], &theirs),
    )
    .await;
    for base in BASES {
        let path = format!("{base}/subscriptions");
        let response = send_scenario(&app, Method::GET, &path, Some(&valid), None).await;
        assert_correlator_echoed(&response);
        assert_eq!(json_ok(response).await, json!([first, second]));
    }
}

#[tokio::test]
async fn retrieve_notification_channel_subscription_list_401_1_no_authorization_header() {
    scenario_error(
        Method::GET,
        "/subscriptions",
        TokenKind::Absent,
        None,
        NO_HEADER,
    )
    .await;
}

#[tokio::test]
async fn retrieve_notification_channel_subscription_list_401_2_expired_access_token() {
    scenario_error(
        Method::GET,
        "/subscriptions",
        TokenKind::Expired,
        None,
        EXPIRED,
    )
    .await;
}

#[tokio::test]
async fn retrieve_notification_channel_subscription_list_401_3_invalid_access_token() {
    scenario_error(
        Method::GET,
        "/subscriptions",
        TokenKind::Invalid,
        None,
        INVALID,
    )
    .await;
}

#[tokio::test]
async fn delete_notification_channel_subscription_01_generic_success_scenario() {
    let app = spawn_app().await;
    let valid = token(&app, RECEIVER, CONSUMER);
    let registration = register(&app, &valid).await;
    for base in BASES {
        let created = subscribed(
            &app,
            base,
            &valid,
            request(&["session-status"], &registration),
        )
        .await;
        let path = format!("{base}/subscriptions/{}", created["id"].as_str().unwrap());
        let response = send_scenario(&app, Method::DELETE, &path, Some(&valid), None).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert_correlator_echoed(&response);
        assert_eq!(response.bytes().await.unwrap(), "");
        let gone = send_scenario(&app, Method::GET, &path, Some(&valid), None).await;
        assert_error(gone, 404, "NOT_FOUND", NOT_FOUND).await;
    }
}

#[tokio::test]
async fn delete_notification_channel_subscription_404_subscription_not_found() {
    let expected = (404, "NOT_FOUND", NOT_FOUND);
    let path = "/subscriptions/qs15-h556-rt89-1298";
    scenario_error(Method::DELETE, path, TokenKind::Valid, None, expected).await;
}

#[tokio::test]
async fn delete_notification_channel_subscription_400_1_no_request() {
    scenario_error(
        Method::DELETE,
        "/subscriptions",
        TokenKind::Valid,
        None,
        NO_ID,
    )
    .await;
}

#[tokio::test]
async fn delete_notification_channel_subscription_400_2_empty_request() {
    scenario_error(
        Method::DELETE,
        "/subscriptions/",
        TokenKind::Valid,
        None,
        NO_ID,
    )
    .await;
}

#[tokio::test]
async fn delete_notification_channel_subscription_401_1_no_authorization_header() {
    let path = "/subscriptions/{existing}";
    scenario_error(Method::DELETE, path, TokenKind::Absent, None, NO_HEADER).await;
}

#[tokio::test]
async fn delete_notification_channel_subscription_401_2_expired_access_token() {
    let path = "/subscriptions/{existing}";
    scenario_error(Method::DELETE, path, TokenKind::Expired, None, EXPIRED).await;
}

#[tokio::test]
async fn delete_notification_channel_subscription_401_3_invalid_access_token() {
    let path = "/subscriptions/{existing}";
    scenario_error(Method::DELETE, path, TokenKind::Invalid, None, INVALID).await;
}

#[test]
fn every_camara_events_scenario_is_a_test_here() {
    let source = include_str!("events.rs");
    assert_every_scenario_has_a_test("camara/events", "@webrtc_events_", 24, source);
}

// --- Beyond the scenarios ---------------------------------------------------------------------

/// CAMARA's create scenario sends a subscriptionExpireTime of 2024: in the past, 400.
#[tokio::test]
async fn a_subscription_expire_time_in_the_past_is_out_of_range() {
    let app = spawn_app().await;
    let valid = token(&app, RECEIVER, CONSUMER);
    let registration = register(&app, &valid).await;
    let mut body = request(&["session-invitation"], &registration);
    body["config"]["subscriptionExpireTime"] = json!("2024-11-17T13:18:23.682Z");
    assert_error(
        subscribe(&app, BASES[1], &valid, body).await,
        400,
        "OUT_OF_RANGE",
        "config.subscriptionExpireTime must be in the future.",
    )
    .await;
    // Beyond the maximum (30 days) it is capped.
    let now = camara_webrtc::store::now_ms();
    let mut body = request(&["session-invitation"], &registration);
    body["config"]["subscriptionExpireTime"] = json!(
        camara_webrtc::domain::registration::rfc3339_ms(now + 365 * 86_400_000)
    );
    let created = subscribed(&app, BASES[1], &valid, body).await;
    let expires = created["expiresAt"].as_str().unwrap();
    let at = camara_webrtc::domain::registration::rfc3339_to_ms(expires).unwrap();
    let max = i128::from(2_592_000_000u64);
    assert!(
        at >= i128::from(now) + max && at <= i128::from(camara_webrtc::store::now_ms()) + max,
        "{expires}"
    );
    assert_eq!(
        created["config"]["subscriptionExpireTime"],
        created["expiresAt"]
    );
}

/// Every field of a request is checked, with the code DESIGN §11 gives and a message naming it.
#[tokio::test]
async fn bad_requests_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let valid = token(&app, RECEIVER, CONSUMER);
    let registration = register(&app, &valid).await;
    let good = request(&["session-status"], &registration);
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut body = good.clone();
        edit(&mut body);
        body
    };
    let cases: Vec<(Value, u16, &str, &str)> = vec![
        (
            with(&|b| b["protocol"] = json!("MQTT3")),
            400,
            "INVALID_PROTOCOL",
            "Only HTTP is supported: protocol must be HTTP.",
        ),
        (
            with(&|b| b["sink"] = json!("not a url")),
            400,
            "INVALID_SINK",
            "sink must be an absolute https URL of at most 1024 characters.",
        ),
        (
            with(&|b| b["sink"] = json!("https://user:secret@127.0.0.1/x")),
            400,
            "INVALID_SINK",
            "sink must not carry credentials in the URL (use sinkCredential).",
        ),
        (
            with(&|b| b["types"] = json!([])),
            400,
            "INVALID_ARGUMENT",
            "types must list 1 to 3 event types.",
        ),
        (
            with(&|b| b["types"] = json!([format!("{PREFIX}.subscription-ended")])),
            400,
            "INVALID_ARGUMENT",
            "types[0] is not an event type of this API: org.camaraproject.webrtc-events.v0.session-invitation, .session-status or .registration-ends.",
        ),
        (
            with(&|b| {
                b["types"] = json!([
                    format!("{PREFIX}.session-status"),
                    format!("{PREFIX}.session-status")
                ])
            }),
            400,
            "INVALID_ARGUMENT",
            "types[1] repeats a type.",
        ),
        (
            with(&|b| b["types"] = json!("session-status")),
            400,
            "INVALID_ARGUMENT",
            "types: invalid type: string, expected a sequence.",
        ),
        (
            with(&|b| {
                b.as_object_mut().unwrap().remove("config");
            }),
            400,
            "INVALID_ARGUMENT",
            "config is required, with config.subscriptionDetail.",
        ),
        (
            with(&|b| b["config"] = json!({})),
            400,
            "INVALID_ARGUMENT",
            "config.subscriptionDetail is required.",
        ),
        (
            with(&|b| b["config"]["subscriptionDetail"] = json!({})),
            400,
            "INVALID_ARGUMENT",
            "config.subscriptionDetail needs registrationId or deviceId: whose events to send.",
        ),
        (
            with(&|b| b["config"]["subscriptionDetail"] = json!({ "deviceId": "42" })),
            400,
            "INVALID_ARGUMENT",
            "config.subscriptionDetail.deviceId must be a UUID in its hyphenated form.",
        ),
        (
            with(&|b| b["config"]["subscriptionMaxEvents"] = json!(0)),
            400,
            "OUT_OF_RANGE",
            "config.subscriptionMaxEvents must be between 1 and 1000000.",
        ),
        (
            with(&|b| b["config"]["subscriptionExpireTime"] = json!("2030-01-01T12:00:00")),
            400,
            "INVALID_ARGUMENT",
            "config.subscriptionExpireTime must be an RFC 3339 date-time with a time offset, e.g. 2030-01-01T12:00:00Z.",
        ),
        (
            with(&|b| {
                b["sinkCredential"] =
                    json!({ "credentialType": "PLAIN", "identifier": "me", "secret": "pw" })
            }),
            400,
            "INVALID_CREDENTIAL",
            "Only Access token is supported: sinkCredential.credentialType must be ACCESSTOKEN.",
        ),
        (
            with(
                &|b| b["sinkCredential"] = json!({ "credentialType": "ACCESSTOKEN", "accessToken": "t", "accessTokenExpiresUtc": "2030-01-01T12:00:00Z", "accessTokenType": "mac" }),
            ),
            400,
            "INVALID_TOKEN",
            "Only bearer token is supported: sinkCredential.accessTokenType must be bearer.",
        ),
        (
            with(
                &|b| b["sinkCredential"] = json!({ "credentialType": "ACCESSTOKEN", "accessToken": "t", "accessTokenExpiresUtc": "2020-01-01T12:00:00Z", "accessTokenType": "bearer" }),
            ),
            400,
            "OUT_OF_RANGE",
            "sinkCredential.accessTokenExpiresUtc must be in the future.",
        ),
    ];
    for (body, status, code, message) in cases {
        let response = subscribe(&app, BASES[1], &valid, body.clone()).await;
        assert_error(response, status, code, message).await;
    }
    // Nothing was created by the refusals.
    let listed = json_ok(
        send_scenario(
            &app,
            Method::GET,
            &format!("{}/subscriptions", BASES[1]),
            Some(&valid),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(listed, json!([]));
}

/// Creating needs the create scope of every requested type; an unknown type is a syntax error
/// found before any scope is looked at. Reading, updating and deleting have their own scopes.
#[tokio::test]
async fn each_type_needs_its_create_scope_and_each_operation_its_scope() {
    let app = spawn_app().await;
    let valid = token(&app, RECEIVER, CONSUMER);
    let registration = register(&app, &valid).await;
    let only_status = token_with(
        &app,
        RECEIVER,
        CONSUMER,
        &format!("webrtc-events:{PREFIX}.session-status:create"),
    );
    let body = request(&["session-status", "session-invitation"], &registration);
    assert_error(
        subscribe(&app, BASES[0], &only_status, body).await,
        403,
        "PERMISSION_DENIED",
        &format!("Client does not have sufficient permissions to perform this action: the access token lacks the scope webrtc-events:{PREFIX}.session-invitation:create."),
    )
    .await;
    let mut unknown = request(&["session-status"], &registration);
    unknown["types"] = json!(["org.example.other"]);
    let none = token_with(&app, RECEIVER, CONSUMER, "openid");
    let response = subscribe(&app, BASES[0], &none, unknown).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let created = subscribed(
        &app,
        BASES[0],
        &only_status,
        request(&["session-status"], &registration),
    )
    .await;
    let item = format!(
        "{}/subscriptions/{}",
        BASES[0],
        created["id"].as_str().unwrap()
    );
    for (method, path, action) in [
        (Method::GET, format!("{}/subscriptions", BASES[0]), "read"),
        (Method::GET, item.clone(), "read"),
        (Method::PUT, item.clone(), "update"),
        (Method::DELETE, item.clone(), "delete"),
    ] {
        assert_error(
            send_scenario(&app, method, &path, Some(&only_status), None).await,
            403,
            "PERMISSION_DENIED",
            &format!("Client does not have sufficient permissions to perform this action: the access token lacks the scope webrtc-events:{action}."),
        )
        .await;
    }
}

/// A subscription names registrations of the caller's consumer (and number, when 3-legged), and
/// is the consumer's own.
#[tokio::test]
async fn subscriptions_belong_to_their_consumer_and_name_its_registrations() {
    let app = spawn_app().await;
    let bob = token(&app, RECEIVER, "app");
    let mallory = token(&app, RECEIVER, "mallory");
    let bobs = register(&app, &bob).await;
    let refused = "Device identifier not found: config.subscriptionDetail.registrationId is not an active registration of this API consumer.";
    assert_error(
        subscribe(
            &app,
            BASES[1],
            &mallory,
            request(&["session-status"], &bobs),
        )
        .await,
        404,
        "IDENTIFIER_NOT_FOUND",
        refused,
    )
    .await;
    // Alice, of Bob's consumer but another number, cannot subscribe to Bob's registration.
    let alice = token(&app, ORIGINATOR, "app");
    assert_error(
        subscribe(&app, BASES[1], &alice, request(&["session-status"], &bobs)).await,
        404,
        "IDENTIFIER_NOT_FOUND",
        refused,
    )
    .await;
    let mut by_device = request(&["session-status"], &bobs);
    by_device["config"]["subscriptionDetail"] =
        json!({ "deviceId": "0b8a7c1e-4f5d-4e9a-8c3b-2d1e0f9a8b7c" });
    assert_error(
        subscribe(&app, BASES[1], &bob, by_device.clone()).await,
        404,
        "IDENTIFIER_NOT_FOUND",
        "Device identifier not found: config.subscriptionDetail.deviceId has no active registration of this API consumer.",
    )
    .await;
    by_device["config"]["subscriptionDetail"] = json!({ "deviceId": DEVICE.to_uppercase() });
    let created = subscribed(&app, BASES[1], &bob, by_device).await;
    assert_eq!(
        created["config"]["subscriptionDetail"],
        json!({ "deviceId": DEVICE })
    );
    let item = format!(
        "{}/subscriptions/{}",
        BASES[1],
        created["id"].as_str().unwrap()
    );
    for method in [Method::GET, Method::PUT, Method::DELETE] {
        let response = send_scenario(&app, method, &item, Some(&mallory), None).await;
        assert_error(response, 404, "NOT_FOUND", NOT_FOUND).await;
    }
    json_ok(send_scenario(&app, Method::GET, &item, Some(&bob), None).await).await;
}

/// PUT sets a new credential and expiry; the credential is never answered.
#[tokio::test]
async fn a_subscription_is_updated_and_its_credential_never_answered() {
    let app = spawn_app().await;
    let bob = token(&app, RECEIVER, "app");
    let registration = register(&app, &bob).await;
    let mut body = request(&["session-status"], &registration);
    body["sinkCredential"] = json!({
        "credentialType": "ACCESSTOKEN", "accessToken": "sink-secret-token-1",
        "accessTokenExpiresUtc": "2030-01-01T12:00:00Z", "accessTokenType": "bearer"
    });
    let response = subscribe(&app, BASES[1], &bob, body).await;
    let text = response.text().await.unwrap();
    assert!(
        !text.contains("sink-secret-token") && !text.contains("sinkCredential"),
        "{text}"
    );
    let created: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(created.get("expiresAt"), None);
    let item = format!(
        "{}/subscriptions/{}",
        BASES[1],
        created["id"].as_str().unwrap()
    );
    let in_ten_days = camara_webrtc::domain::registration::rfc3339_ms(
        (camara_webrtc::store::now_ms() / 1000 + 10 * 86_400) * 1000,
    );
    let change = json!({
        "sinkCredential": {
            "credentialType": "ACCESSTOKEN", "accessToken": "sink-secret-token-2",
            "accessTokenExpiresUtc": "2030-01-01T12:00:00Z", "accessTokenType": "bearer"
        },
        "config": { "subscriptionExpireTime": in_ten_days }
    });
    let response = send_scenario(&app, Method::PUT, &item, Some(&bob), Some(change)).await;
    let text = response.text().await.unwrap();
    assert!(!text.contains("sink-secret-token"), "{text}");
    let changed: Value = serde_json::from_str(&text).unwrap();
    let mut expected = created.clone();
    expected["expiresAt"] = json!(in_ten_days);
    expected["config"]["subscriptionExpireTime"] = json!(in_ten_days);
    assert_eq!(changed, expected);
    // The credential is kept for delivery.
    let id = created["id"].as_str().unwrap();
    let stored = camara_webrtc::store::SubscriptionStore::subscription(
        app.state.subscriptions.as_ref(),
        id,
        camara_webrtc::store::now_ms(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(stored.credential.unwrap().token, "sink-secret-token-2");
    // An empty PUT changes nothing.
    let same = json_ok(send_scenario(&app, Method::PUT, &item, Some(&bob), None).await).await;
    assert_eq!(same, expected);
}

#[tokio::test]
async fn a_consumer_holds_at_most_its_quota_of_subscriptions() {
    let mut config = Config::embedded();
    config.events.max_subscriptions_per_consumer = 2;
    let app = spawn_with(config).await;
    let bob = token(&app, RECEIVER, "app");
    let registration = register(&app, &bob).await;
    let first = subscribed(
        &app,
        BASES[0],
        &bob,
        request(&["session-status"], &registration),
    )
    .await;
    subscribed(
        &app,
        BASES[1],
        &bob,
        request(&["session-status"], &registration),
    )
    .await;
    assert_error(
        subscribe(&app, BASES[0], &bob, request(&["session-status"], &registration)).await,
        429,
        "QUOTA_EXCEEDED",
        "Out of resource quota: this API consumer holds its maximum of 2 subscriptions; delete one to create another.",
    )
    .await;
    let item = format!(
        "{}/subscriptions/{}",
        BASES[0],
        first["id"].as_str().unwrap()
    );
    let deleted = send_scenario(&app, Method::DELETE, &item, Some(&bob), None).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    subscribed(
        &app,
        BASES[0],
        &bob,
        request(&["session-status"], &registration),
    )
    .await;
}

/// With the production settings (no http sinks, no internal networks), a sink on or resolving to
/// an internal address is refused — `localhost` included — and so is `http`.
#[tokio::test]
async fn the_ssrf_guard_refuses_internal_sinks() {
    let mut config = Config::embedded();
    config.events.allow_http_sinks = false;
    config.events.allowed_sink_networks = vec![];
    let app = spawn_with(config).await;
    let bob = token(&app, RECEIVER, "app");
    let registration = register(&app, &bob).await;
    let internal = "sink points to an internal network address, which is not accepted.";
    for (sink, code, message) in [
        ("https://127.0.0.1:9/sink", "INVALID_SINK", internal),
        ("https://localhost:9/sink", "INVALID_SINK", internal),
        ("https://[::1]:9/sink", "INVALID_SINK", internal),
        (
            "https://169.254.169.254/latest/meta-data",
            "INVALID_SINK",
            internal,
        ),
        ("https://10.1.2.3/sink", "INVALID_SINK", internal),
        ("https://[::ffff:127.0.0.1]/sink", "INVALID_SINK", internal),
        (
            "http://8.8.8.8/sink",
            "INVALID_SINK",
            "sink must be an https URL (http sinks are not accepted here).",
        ),
    ] {
        let mut body = request(&["session-status"], &registration);
        body["sink"] = json!(sink);
        assert_error(
            subscribe(&app, BASES[1], &bob, body).await,
            400,
            code,
            message,
        )
        .await;
    }
    // A public address passes the guard (nothing is sent to it here).
    let mut body = request(&["session-status"], &registration);
    body["sink"] = json!("https://8.8.8.8/sink");
    subscribed(&app, BASES[1], &bob, body).await;
}
