//! The registration API (DESIGN §10) over real HTTP: CAMARA's registration scenarios
//! (`tests/fixtures/camara/registration/*.feature`), one named test each on the `v0.3` base path,
//! then what the scenarios leave out — the draft's answers under `vwip`, the phone number rule,
//! uniqueness and limits, lifetimes, ownership, expiry that ends calls on time, and
//! `sessions.check_registration` — on memory and on Redis.

use std::sync::LazyLock;
use std::time::Duration;

use camara_webrtc::config::Config;
use camara_webrtc::domain::SessionStatus;
use camara_webrtc::store::now_ms;
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::contract::Document;
use crate::helpers::*;
use crate::operations::sample;
use crate::redis_server::{RedisServer, unique_prefix};

/// CAMARA's released registration document (v0.3.0), which the success scenario's body must fit.
static CAMARA: LazyLock<Document> = LazyLock::new(|| {
    let path = fixture_path("camara/registration/webrtc-registration.r2.2.yaml");
    Document::parse(&std::fs::read_to_string(path).unwrap())
});

const RELEASED: &str = "/webrtc-registration/v0.3";
const DRAFT: &str = "/webrtc-registration/vwip";
const DEVICE: &str = "7d444840-9dc0-11d1-b245-5ffdce74fad2";
const REG_SCOPES: &str = "webrtc-registration:sessions:create webrtc-registration:sessions:read webrtc-registration:sessions:write webrtc-registration:sessions:delete";
/// Registration and call-handling scopes together.
const EVERY_SCOPE: &str = "webrtc-registration:sessions:create webrtc-registration:sessions:read webrtc-registration:sessions:write webrtc-registration:sessions:delete webrtc-call-handling:sessions:create webrtc-call-handling:sessions:read webrtc-call-handling:sessions:write webrtc-call-handling:sessions:delete";
/// The Background's "valid access token": a 3-legged token of an API consumer.
const CONSUMER: &str = "camara-scenarios";
const NOT_FOUND: &str =
    "The specified resource is not found: no active registration with this registrationId.";

/// A token of API consumer `client_id` acting for `sub` (3-legged for a phone number, else
/// 2-legged), with every registration and call-handling scope.
fn token(app: &TestApp, sub: &str, client_id: &str) -> String {
    camara_webrtc::auth::mint(&app.config.auth, sub, EVERY_SCOPE, Some(client_id), 3600).unwrap()
}

/// `POST {base}/sessions` with `body`.
async fn register(app: &TestApp, base: &str, token: &str, body: Value) -> Response {
    let path = format!("{base}/sessions");
    send_scenario(app, Method::POST, &path, Some(token), Some(body)).await
}

/// A new registration under the draft (201); its body.
async fn created(app: &TestApp, token: &str, body: Value) -> Value {
    json_with(register(app, DRAFT, token, body).await, StatusCode::CREATED).await
}

/// A new registration of `DEVICE` for `token`'s number under the draft; its body.
async fn registered(app: &TestApp, token: &str) -> Value {
    created(app, token, json!({ "deviceId": DEVICE })).await
}

/// `expiresAt` as milliseconds since the epoch.
fn expires_ms(body: &Value) -> u64 {
    let text = body["expiresAt"].as_str().unwrap();
    assert!(text.ends_with('Z') && text.len() == 24, "{text}");
    let at = OffsetDateTime::parse(text, &Rfc3339).unwrap();
    u64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap()
}

/// RFC 3339 for `ms` since the epoch, in UTC.
fn rfc3339(ms: u64) -> String {
    camara_webrtc::domain::registration::rfc3339_ms(ms)
}

/// The whole body of a registration of `number` with `id` and `expires`.
fn registration_body(id: &str, number: &str, expires: &Value) -> Value {
    json!({
        "registrationId": id,
        "regInfo": { "phoneNumber": number, "regStatus": "Registered" },
        "expiresAt": expires,
    })
}

// --- CAMARA's scenarios (createRegistration) --------------------------------------------------

#[tokio::test]
async fn create_registration_01_generic_success_scenario() {
    let app = spawn_app().await;
    let valid = token(&app, RECEIVER, CONSUMER);
    let response = register(&app, RELEASED, &valid, json!({ "deviceId": DEVICE })).await;
    assert_correlator_echoed(&response);
    let before = now_ms();
    let body = json_ok(response).await;
    let id = body["registrationId"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    assert_eq!(
        body,
        registration_body(id, "+17085854000", &body["expiresAt"])
    );
    // The default lifetime, an hour, from the request.
    let lifetime = expires_ms(&body) - before;
    assert!((3_599_000..=3_600_000).contains(&lifetime), "{lifetime}");
    CAMARA
        .validate("#/components/schemas/regSessionResponse", &body)
        .unwrap();
}

/// The 400s, 401s of every operation: `path` under the release, `token`, `body`.
async fn scenario_error(
    method: Method,
    path: &str,
    token_kind: TokenKind,
    body: Option<Value>,
    (status, code, message): (u16, &str, &str),
) {
    let app = spawn_app().await;
    let valid = token(&app, RECEIVER, CONSUMER);
    let existing = registered(&app, &valid).await;
    let path = path.replace("{existing}", existing["registrationId"].as_str().unwrap());
    let token = scenario_token(&app, token_kind, RECEIVER, CONSUMER, REG_SCOPES);
    let response = send_scenario(
        &app,
        method,
        &format!("{RELEASED}{path}"),
        token.as_deref(),
        body,
    )
    .await;
    assert_correlator_echoed(&response);
    assert_error(response, status, code, message).await;
}

fn valid_body() -> Option<Value> {
    Some(json!({ "deviceId": "0b8a7c1e-4f5d-4e9a-8c3b-2d1e0f9a8b7c" }))
}

#[tokio::test]
async fn create_registration_400_1_no_request_body() {
    let expected = (400, "INVALID_ARGUMENT", "A JSON request body is required.");
    scenario_error(Method::POST, "/sessions", TokenKind::Valid, None, expected).await;
}

#[tokio::test]
async fn create_registration_400_2_empty_request_body() {
    let expected = (400, "INVALID_ARGUMENT", "deviceId is required.");
    let body = Some(json!({}));
    scenario_error(Method::POST, "/sessions", TokenKind::Valid, body, expected).await;
}

#[tokio::test]
async fn create_registration_401_1_no_authorization_header() {
    scenario_error(
        Method::POST,
        "/sessions",
        TokenKind::Absent,
        valid_body(),
        NO_HEADER,
    )
    .await;
}

#[tokio::test]
async fn create_registration_401_2_expired_access_token() {
    let body = valid_body();
    scenario_error(Method::POST, "/sessions", TokenKind::Expired, body, EXPIRED).await;
}

#[tokio::test]
async fn create_registration_401_3_invalid_access_token() {
    let body = valid_body();
    scenario_error(Method::POST, "/sessions", TokenKind::Invalid, body, INVALID).await;
}

// --- CAMARA's scenarios (deleteRegistrationById) ----------------------------------------------

#[tokio::test]
async fn delete_registration_by_id_01_generic_success_scenario() {
    let app = spawn_app().await;
    let valid = token(&app, RECEIVER, CONSUMER);
    let existing = registered(&app, &valid).await;
    let path = format!(
        "{RELEASED}/sessions/{}",
        existing["registrationId"].as_str().unwrap()
    );
    let response = send_scenario(&app, Method::DELETE, &path, Some(&valid), None).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_correlator_echoed(&response);
    assert_eq!(response.bytes().await.unwrap(), "");
    // "the registration session should no longer exist"
    let read = send_scenario(&app, Method::GET, &path, Some(&valid), None).await;
    assert_error(read, 404, "NOT_FOUND", NOT_FOUND).await;
}

#[tokio::test]
async fn delete_registration_by_id_404_session_not_found() {
    let expected = (404, "NOT_FOUND", NOT_FOUND);
    let path = "/sessions/3fa85f64-5717-4562-b3fc-2c963f66afa6";
    scenario_error(Method::DELETE, path, TokenKind::Valid, None, expected).await;
}

const NO_ID: (u16, &str, &str) = (
    400,
    "INVALID_ARGUMENT",
    "registrationId is missing from the path: use /sessions/{registrationId}.",
);

#[tokio::test]
async fn delete_registration_by_id_400_1_no_request() {
    scenario_error(Method::DELETE, "/sessions", TokenKind::Valid, None, NO_ID).await;
}

#[tokio::test]
async fn delete_registration_400_2_empty_request() {
    scenario_error(Method::DELETE, "/sessions/", TokenKind::Valid, None, NO_ID).await;
}

#[tokio::test]
async fn delete_registration_by_id_401_1_no_authorization_header() {
    let path = "/sessions/{existing}";
    scenario_error(Method::DELETE, path, TokenKind::Absent, None, NO_HEADER).await;
}

#[tokio::test]
async fn delete_registration_by_id_401_2_expired_access_token() {
    let path = "/sessions/{existing}";
    scenario_error(Method::DELETE, path, TokenKind::Expired, None, EXPIRED).await;
}

#[tokio::test]
async fn delete_registration_by_id_401_3_invalid_access_token() {
    let path = "/sessions/{existing}";
    scenario_error(Method::DELETE, path, TokenKind::Invalid, None, INVALID).await;
}

// --- CAMARA's scenarios (updateRegistrationById) ----------------------------------------------

#[tokio::test]
async fn update_registration_by_id_01_generic_success_scenario() {
    let app = spawn_app().await;
    let valid = token(&app, RECEIVER, CONSUMER);
    let existing = registered(&app, &valid).await;
    let id = existing["registrationId"].as_str().unwrap();
    let path = format!("{RELEASED}/sessions/{id}");
    // The scenario sends no body: the default lifetime, from now.
    let before = now_ms();
    let response = send_scenario(&app, Method::PUT, &path, Some(&valid), None).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_correlator_echoed(&response);
    assert_eq!(response.bytes().await.unwrap(), "");
    let read = json_ok(send_scenario(&app, Method::GET, &path, Some(&valid), None).await).await;
    assert!(expires_ms(&read) >= before + 3_600_000, "{read}");
    assert_eq!(
        read,
        registration_body(id, "+17085854000", &read["expiresAt"])
    );
}

#[tokio::test]
async fn update_registration_by_id_404_session_not_found() {
    let expected = (404, "NOT_FOUND", NOT_FOUND);
    let path = "/sessions/3fa85f64-5717-4562-b3fc-2c963f66afa6";
    scenario_error(Method::PUT, path, TokenKind::Valid, None, expected).await;
}

#[tokio::test]
async fn update_registration_by_id_400_1_no_request_body() {
    scenario_error(Method::PUT, "/sessions", TokenKind::Valid, None, NO_ID).await;
}

#[tokio::test]
async fn update_registration_by_id_400_2_empty_request_body() {
    scenario_error(Method::PUT, "/sessions/", TokenKind::Valid, None, NO_ID).await;
}

#[tokio::test]
async fn update_registration_by_id_401_1_no_authorization_header() {
    let path = "/sessions/{existing}";
    scenario_error(Method::PUT, path, TokenKind::Absent, None, NO_HEADER).await;
}

#[tokio::test]
async fn update_registration_by_id_401_2_expired_access_token() {
    let path = "/sessions/{existing}";
    scenario_error(Method::PUT, path, TokenKind::Expired, None, EXPIRED).await;
}

#[tokio::test]
async fn update_registration_by_id_401_3_invalid_access_token() {
    let path = "/sessions/{existing}";
    scenario_error(Method::PUT, path, TokenKind::Invalid, None, INVALID).await;
}

#[test]
fn every_camara_registration_scenario_is_a_test_here() {
    let source = include_str!("registration.rs");
    let dir = "camara/registration";
    assert_every_scenario_has_a_test(dir, "@webrtc_registration_", 20, source);
}

// --- Beyond the scenarios ---------------------------------------------------------------------

/// The whole life of a registration under the draft: 201 with `Location`, read by id and by
/// device, refreshed (200 with the registration), deleted, then gone — and the release's base
/// path sees the same registrations.
#[tokio::test]
async fn a_registration_is_created_read_listed_refreshed_and_deleted() {
    let app = spawn_app().await;
    let bob = token(&app, RECEIVER, "app");
    let response = register(&app, DRAFT, &bob, json!({ "deviceId": DEVICE })).await;
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let created = json_with(response, StatusCode::CREATED).await;
    let id = created["registrationId"].as_str().unwrap();
    assert_eq!(location, format!("{DRAFT}/sessions/{id}"));
    for base in [DRAFT, RELEASED] {
        let path = format!("{base}/sessions/{id}");
        let read = json_ok(send_scenario(&app, Method::GET, &path, Some(&bob), None).await).await;
        assert_eq!(read, created);
        // A UUID in any case names the same registration.
        let upper = format!("{base}/sessions/{}", id.to_uppercase());
        let read = json_ok(send_scenario(&app, Method::GET, &upper, Some(&bob), None).await).await;
        assert_eq!(read, created);
        let path = format!("{base}/sessions?deviceId={}", DEVICE.to_uppercase());
        let listed = json_ok(send_scenario(&app, Method::GET, &path, Some(&bob), None).await).await;
        assert_eq!(listed, json!([created]));
    }
    let wanted = now_ms() + 7_200_000;
    let body = json!({ "registrationExpireTime": rfc3339(wanted) });
    let path = format!("{DRAFT}/sessions/{id}");
    let refreshed =
        json_ok(send_scenario(&app, Method::PUT, &path, Some(&bob), Some(body)).await).await;
    assert_eq!(expires_ms(&refreshed), wanted);
    assert_eq!(
        refreshed,
        registration_body(id, "+17085854000", &refreshed["expiresAt"])
    );
    let deleted = send_scenario(&app, Method::DELETE, &path, Some(&bob), None).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    for method in [Method::GET, Method::PUT, Method::DELETE] {
        let gone = send_scenario(&app, method, &path, Some(&bob), None).await;
        assert_error(gone, 404, "NOT_FOUND", NOT_FOUND).await;
    }
    let path = format!("{DRAFT}/sessions?deviceId={DEVICE}");
    let listed = json_ok(send_scenario(&app, Method::GET, &path, Some(&bob), None).await).await;
    assert_eq!(listed, json!([]));
}

#[tokio::test]
async fn the_phone_number_comes_from_a_3_legged_token_or_a_2_legged_body() {
    let app = spawn_app().await;
    let bob = token(&app, RECEIVER, "app");
    let gateway = token(&app, "gateway", "gateway");
    let sent = json!({ "deviceId": DEVICE, "phoneNumber": "+17085854000" });
    assert_error(
        register(&app, DRAFT, &bob, sent.clone()).await,
        422,
        "UNNECESSARY_IDENTIFIER",
        "The phone number is already identified by the access token: phoneNumber must not be sent with a 3-legged token.",
    )
    .await;
    assert_error(
        register(&app, DRAFT, &gateway, json!({ "deviceId": DEVICE })).await,
        422,
        "MISSING_IDENTIFIER",
        "The phone number cannot be identified: a 2-legged access token must send phoneNumber (+E.164).",
    )
    .await;
    for bad in ["17085854000", "tel:+17085854000", "+0708585", "+1708"] {
        assert_error(
            register(
                &app,
                DRAFT,
                &gateway,
                json!({ "deviceId": DEVICE, "phoneNumber": bad }),
            )
            .await,
            400,
            "INVALID_ARGUMENT",
            "phoneNumber must be +E.164: a '+' and 5 to 15 digits, not starting with 0.",
        )
        .await;
    }
    let created = created(&app, &gateway, sent).await;
    assert_eq!(created["regInfo"]["phoneNumber"], "+17085854000");
    // The gateway's registration is its own: Bob's app (another consumer) does not see it.
    let path = format!(
        "{DRAFT}/sessions/{}",
        created["registrationId"].as_str().unwrap()
    );
    let other = send_scenario(&app, Method::GET, &path, Some(&bob), None).await;
    assert_error(other, 404, "NOT_FOUND", NOT_FOUND).await;
}

#[tokio::test]
async fn one_registration_per_device_and_number_and_a_limit_per_number() {
    let mut config = Config::embedded();
    config.registration.max_per_phone_number = 2;
    let app = spawn_with(config).await;
    let bob = token(&app, RECEIVER, "app");
    registered(&app, &bob).await;
    for base in [RELEASED, DRAFT] {
        assert_error(
            register(&app, base, &bob, json!({ "deviceId": DEVICE })).await,
            409,
            "ALREADY_EXISTS",
            "An active registration already exists for the supplied deviceId and the phoneNumber resolved from the access token.",
        )
        .await;
    }
    // The same device at another number is another registration.
    let alice = token(&app, ORIGINATOR, "app");
    registered(&app, &alice).await;
    let path = format!("{DRAFT}/sessions?deviceId={DEVICE}");
    let gateway = token(&app, "app", "app");
    let listed = json_ok(send_scenario(&app, Method::GET, &path, Some(&gateway), None).await).await;
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    // A 3-legged caller lists only its own number's.
    let listed = json_ok(send_scenario(&app, Method::GET, &path, Some(&bob), None).await).await;
    assert_eq!(listed[0]["regInfo"]["phoneNumber"], "+17085854000");
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    // Bob's number has room for one more device, then none.
    let second = json!({ "deviceId": "0b8a7c1e-4f5d-4e9a-8c3b-2d1e0f9a8b7c" });
    created(&app, &bob, second).await;
    let third = json!({ "deviceId": "1c9b8d2f-5a6e-4fab-9d4c-3e2f1a0b9c8d" });
    assert_error(
        register(&app, DRAFT, &bob, third).await,
        403,
        "MAX_REGISTRATION_PER_MSISDN",
        "The maximum number of service registrations per MSISDN has been reached: this phone number has 2 active registrations.",
    )
    .await;
}

#[tokio::test]
async fn expiry_is_clamped_and_expires_at_tells_the_truth() {
    let app = spawn_app().await;
    let bob = token(&app, RECEIVER, "app");
    let soon = now_ms() + 30_000;
    let body = json!({ "deviceId": DEVICE, "registrationExpireTime": rfc3339(soon) });
    assert_error(
        register(&app, DRAFT, &bob, body).await,
        400,
        "OUT_OF_RANGE",
        "registrationExpireTime must be at least 60 s from now.",
    )
    .await;
    // A year ahead is capped to the maximum lifetime, a day.
    let before = now_ms();
    let body =
        json!({ "deviceId": DEVICE, "registrationExpireTime": rfc3339(before + 365 * 86_400_000) });
    let created = created(&app, &bob, body).await;
    let capped = expires_ms(&created);
    assert!(
        (before + 86_400_000..=now_ms() + 86_400_000).contains(&capped),
        "{created}"
    );
    // Within range, with an offset: exactly as asked.
    let id = created["registrationId"].as_str().unwrap();
    let wanted = (now_ms() + 2 * 3_600_000) / 1000 * 1000;
    // The same instant two hours east: the wall time is 2 h later, with its offset.
    let at = rfc3339(wanted + 2 * 3_600_000).replace('Z', "+02:00");
    let path = format!("{RELEASED}/sessions/{id}");
    let body = Some(json!({ "registrationExpireTime": at }));
    let refreshed = send_scenario(&app, Method::PUT, &path, Some(&bob), body).await;
    assert_eq!(refreshed.status(), StatusCode::NO_CONTENT);
    let read = json_ok(send_scenario(&app, Method::GET, &path, Some(&bob), None).await).await;
    assert_eq!(expires_ms(&read), wanted);
}

/// Bad input gets a 400 naming the field, and nothing is created.
#[tokio::test]
async fn bad_input_gets_a_400_naming_the_field() {
    let app = spawn_app().await;
    let bob = token(&app, RECEIVER, "app");
    let post = format!("{DRAFT}/sessions");
    for (body, message) in [
        (
            json!({ "deviceId": "not-a-uuid" }),
            "deviceId must be a UUID in its hyphenated form, e.g. 7d444840-9dc0-11d1-b245-5ffdce74fad2.",
        ),
        (
            json!({ "deviceId": "7d4448409dc011d1b2455ffdce74fad2" }),
            "deviceId must be a UUID in its hyphenated form, e.g. 7d444840-9dc0-11d1-b245-5ffdce74fad2.",
        ),
        (
            json!({ "deviceId": 42 }),
            "deviceId: invalid type: integer `42`, expected a string.",
        ),
        (
            json!({ "deviceId": DEVICE, "registrationExpireTime": "2030-01-01T12:00:00" }),
            "registrationExpireTime must be an RFC 3339 date-time with a time offset, e.g. 2030-01-01T12:00:00Z.",
        ),
        (
            json!({ "deviceId": DEVICE, "registrationExpireTime": format!("2030-01-01T12:00:00.{}Z", "0".repeat(60)) }),
            "registrationExpireTime must be at most 64 characters.",
        ),
        (
            json!({ "deviceId": DEVICE, "registrationExpireTime": "2030-01-01 12:00:00Z" }),
            "registrationExpireTime must be an RFC 3339 date-time with a time offset, e.g. 2030-01-01T12:00:00Z.",
        ),
        (
            json!({ "deviceId": DEVICE, "registrationExpireTime": null }),
            "registrationExpireTime: invalid type: null, expected a string.",
        ),
        (
            json!({ "deviceId": DEVICE, "phoneNumber": ["+17085854000"] }),
            "phoneNumber: invalid type: sequence, expected a string.",
        ),
    ] {
        let response = send_scenario(&app, Method::POST, &post, Some(&bob), Some(body)).await;
        assert_error(response, 400, "INVALID_ARGUMENT", message).await;
    }
    let not_json = app
        .client
        .post(app.url(&post))
        .bearer_auth(&bob)
        .header("content-type", "application/json")
        .body("{\"deviceId\": ")
        .send()
        .await
        .unwrap();
    assert_error(
        not_json,
        400,
        "INVALID_ARGUMENT",
        "The request body is not valid JSON: EOF while parsing a value at line 1 column 13.",
    )
    .await;
    let listing = |query: &str| format!("{DRAFT}/sessions{query}");
    for (query, message) in [
        ("", "deviceId is required as a query parameter."),
        (
            "?deviceId=42",
            "deviceId must be a UUID in its hyphenated form, e.g. 7d444840-9dc0-11d1-b245-5ffdce74fad2.",
        ),
    ] {
        let response = send_scenario(&app, Method::GET, &listing(query), Some(&bob), None).await;
        assert_error(response, 400, "INVALID_ARGUMENT", message).await;
    }
    let id = registered(&app, &bob).await["registrationId"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("{DRAFT}/sessions/{id}");
    let body = Some(json!({ "registrationExpireTime": "soon" }));
    let refused = send_scenario(&app, Method::PUT, &path, Some(&bob), body).await;
    assert_error(
        refused,
        400,
        "INVALID_ARGUMENT",
        "registrationExpireTime must be an RFC 3339 date-time with a time offset, e.g. 2030-01-01T12:00:00Z.",
    )
    .await;
    // Nothing was created by the refusals: only the one registration is listed.
    let listed = json_ok(
        send_scenario(
            &app,
            Method::GET,
            &listing(&format!("?deviceId={DEVICE}")),
            Some(&bob),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn each_operation_needs_its_scope_and_the_owner() {
    let app = spawn_app().await;
    let bob = token(&app, RECEIVER, "app");
    let id = registered(&app, &bob).await["registrationId"]
        .as_str()
        .unwrap()
        .to_owned();
    let item = format!("{DRAFT}/sessions/{id}");
    let collection = format!("{DRAFT}/sessions");
    let listing = format!("{collection}?deviceId={DEVICE}");
    for (method, path, scope) in [
        (Method::POST, &collection, "create"),
        (Method::GET, &listing, "read"),
        (Method::GET, &item, "read"),
        (Method::PUT, &item, "write"),
        (Method::DELETE, &item, "delete"),
    ] {
        // Every scope but the operation's own (call handling's of the same name included).
        let others: Vec<&str> = EVERY_SCOPE
            .split(' ')
            .filter(|s| *s != format!("webrtc-registration:sessions:{scope}"))
            .collect();
        let without = camara_webrtc::auth::mint(
            &app.config.auth,
            RECEIVER,
            &others.join(" "),
            Some("app"),
            600,
        )
        .unwrap();
        let body = (method == Method::POST).then(|| json!({ "deviceId": DEVICE }));
        assert_error(
            send_scenario(&app, method, path, Some(&without), body).await,
            403,
            "PERMISSION_DENIED",
            &format!("Client does not have sufficient permissions to perform this action: the access token lacks the scope webrtc-registration:sessions:{scope}."),
        )
        .await;
    }
    // Another consumer, and the same consumer for another number, find nothing.
    for stranger in [
        token(&app, RECEIVER, "other"),
        token(&app, ORIGINATOR, "app"),
    ] {
        for method in [Method::GET, Method::PUT, Method::DELETE] {
            let response = send_scenario(&app, method, &item, Some(&stranger), None).await;
            assert_error(response, 404, "NOT_FOUND", NOT_FOUND).await;
        }
        let listed =
            json_ok(send_scenario(&app, Method::GET, &listing, Some(&stranger), None).await).await;
        assert_eq!(listed, json!([]));
    }
    // Still there for its owner.
    json_ok(send_scenario(&app, Method::GET, &item, Some(&bob), None).await).await;
}

#[tokio::test]
async fn a_2_legged_number_is_held_to_the_subscriber_list() {
    let mut config = Config::embedded();
    config.auth.subscribers = vec![RECEIVER.into()];
    let app = spawn_with(config).await;
    let gateway = token(&app, "gateway", "gateway");
    let unlisted = json!({ "deviceId": DEVICE, "phoneNumber": "+17085854001" });
    assert_error(
        register(&app, DRAFT, &gateway, unlisted).await,
        404,
        "IDENTIFIER_NOT_FOUND",
        "Device identifier not found.",
    )
    .await;
    let listed = json!({ "deviceId": DEVICE, "phoneNumber": "+17085854000" });
    created(&app, &gateway, listed.clone()).await;
    assert_error(
        register(&app, DRAFT, &gateway, listed).await,
        409,
        "ALREADY_EXISTS",
        "An active registration already exists for the supplied deviceId and phoneNumber.",
    )
    .await;
}

/// One API consumer cannot take every registration the service holds.
#[tokio::test]
async fn an_api_consumer_holds_at_most_its_quota_of_registrations() {
    let mut config = Config::embedded();
    config.sessions.max_sessions_per_consumer = 2;
    let app = spawn_with(config).await;
    let gateway = token(&app, "gateway", "gateway");
    let device = |n: u8| format!("00000000-0000-4000-8000-0000000000{n:02}");
    let body = |n: u8| json!({ "deviceId": device(n), "phoneNumber": "+17085854000" });
    let first = created(&app, &gateway, body(1)).await;
    created(&app, &gateway, body(2)).await;
    assert_error(
        register(&app, DRAFT, &gateway, body(3)).await,
        429,
        "QUOTA_EXCEEDED",
        "Out of resource quota: this API consumer holds its maximum of 2 registrations; delete one to create another.",
    )
    .await;
    // Another consumer is not affected; a deleted registration frees its place.
    let bob = token(&app, RECEIVER, "app");
    registered(&app, &bob).await;
    let path = format!(
        "{DRAFT}/sessions/{}",
        first["registrationId"].as_str().unwrap()
    );
    let deleted = send_scenario(&app, Method::DELETE, &path, Some(&gateway), None).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    created(&app, &gateway, body(3)).await;
}

/// A refresh without a body needs no content type.
#[tokio::test]
async fn an_empty_refresh_needs_no_json_content_type() {
    let app = spawn_app().await;
    let bob = token(&app, RECEIVER, "app");
    let id = registered(&app, &bob).await["registrationId"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = app.url(&format!("{RELEASED}/sessions/{id}"));
    let plain = app
        .client
        .put(&path)
        .bearer_auth(&bob)
        .header("content-type", "text/plain")
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), StatusCode::NO_CONTENT);
    let with_body = app
        .client
        .put(&path)
        .bearer_auth(&bob)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_error(
        with_body,
        415,
        "UNSUPPORTED_MEDIA_TYPE",
        "The server refuses to accept the request because the payload format is in an unsupported format: Content-Type must be application/json.",
    )
    .await;
}

// --- Expiry -----------------------------------------------------------------------------------

/// Short lifetimes, so expiry can be watched: a registration may live 1 s.
fn short_lived(mut config: Config) -> Config {
    config.registration.min_ttl_seconds = 1;
    config
}

/// Registers Bob for about `seconds`, then places a REGULAR and an EMERGENCY call from Bob
/// with the registration, and answers the REGULAR one (Connected). Returns the registration's
/// path and the two calls' ids.
async fn bob_calls_with_a_short_registration(
    app: &TestApp,
    seconds: u64,
) -> (String, String, String) {
    let bob = token(app, ORIGINATOR, "app");
    let body = json!({ "deviceId": DEVICE, "registrationExpireTime": rfc3339(now_ms() + seconds * 1000 + 500) });
    let created = created(app, &bob, body).await;
    let id = created["registrationId"].as_str().unwrap().to_owned();
    let mut calls = Vec::new();
    for call_type in ["REGULAR", "EMERGENCY"] {
        let call = json!({
            "originatorAddress": ORIGINATOR, "receiverAddress": RECEIVER,
            "offer": { "sdp": CLEAN_SDP }, "callType": call_type
        });
        let response = app
            .client
            .post(app.url("/webrtc/sessions"))
            .bearer_auth(&bob)
            .header("registrationId", &id)
            .json(&call)
            .send()
            .await
            .unwrap();
        let session = json_with(response, StatusCode::CREATED).await;
        calls.push(session["mediaSessionId"].as_str().unwrap().to_owned());
    }
    let receiver = token(app, RECEIVER, "app");
    let connected = json!({ "status": "Connected", "answer": { "sdp": CLEAN_SDP } }).to_string();
    json_ok(app.put_status(&calls[0], &connected, &receiver).await).await;
    (
        format!("{DRAFT}/sessions/{id}"),
        calls.remove(0),
        calls.remove(0),
    )
}

/// Polls (no timing asserted) until `done` holds, for at most 20 s.
async fn eventually<F: std::future::Future<Output = bool>>(mut done: impl FnMut() -> F) {
    for _ in 0..200 {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the condition never held");
}

/// What the expiry of a registration does, on `app`: gone for the API, its REGULAR call ended
/// with it (Terminated, as it was answered), its EMERGENCY call going on.
async fn expiry_ends_the_registration_and_its_regular_calls(app: &TestApp) {
    let (path, regular, emergency) = bob_calls_with_a_short_registration(app, 1).await;
    let bob = token(app, ORIGINATOR, "app");
    eventually(|| async {
        send_scenario(app, Method::GET, &path, Some(&bob), None)
            .await
            .status()
            == StatusCode::NOT_FOUND
    })
    .await;
    eventually(|| async {
        app.stored(&regular)
            .await
            .is_some_and(|s| s.status == SessionStatus::Terminated)
    })
    .await;
    let ended = json_ok(app.get_session(&regular, &bob).await).await;
    assert_eq!(ended["status"], "Terminated");
    assert_eq!(ended["reason"], "registration ended");
    let going_on = json_ok(app.get_session(&emergency, &bob).await).await;
    assert_eq!(going_on["status"], "Initial");
    assert_eq!(going_on.get("reason"), None);
    for method in [Method::PUT, Method::DELETE] {
        let gone = send_scenario(app, method, &path, Some(&bob), None).await;
        assert_error(gone, 404, "NOT_FOUND", NOT_FOUND).await;
    }
}

#[tokio::test]
async fn a_registration_expires_on_time_and_ends_its_regular_calls() {
    let app = spawn_with(short_lived(Config::embedded())).await;
    let expired = r#"camara_webrtc_registrations_ended_total{reason="REGISTRATION_EXPIRED"}"#;
    let before = sample(&app.get("/metrics").await.text().await.unwrap(), expired);
    expiry_ends_the_registration_and_its_regular_calls(&app).await;
    let after = sample(&app.get("/metrics").await.text().await.unwrap(), expired);
    assert!(after >= before + 1.0, "{expired}: {before} → {after}");
}

#[tokio::test]
async fn with_end_calls_on_expiry_off_calls_outlive_their_registration() {
    let mut config = short_lived(Config::embedded());
    config.registration.end_calls_on_expiry = false;
    let app = spawn_with(config).await;
    let (path, regular, _) = bob_calls_with_a_short_registration(&app, 1).await;
    let bob = token(&app, ORIGINATOR, "app");
    eventually(|| async {
        send_scenario(&app, Method::GET, &path, Some(&bob), None)
            .await
            .status()
            == StatusCode::NOT_FOUND
    })
    .await;
    let call = json_ok(app.get_session(&regular, &bob).await).await;
    assert_eq!(call["status"], "Connected");
}

// --- check_registration -----------------------------------------------------------------------

#[tokio::test]
async fn check_registration_needs_a_live_registration_of_the_caller_at_the_originator() {
    let mut config = Config::embedded();
    config.sessions.check_registration = true;
    config.sessions.registrations = vec!["listed-in-config".into()];
    let app = spawn_with(config).await;
    let alice = token(&app, ORIGINATOR, "app");
    let created = created(&app, &alice, json!({ "deviceId": DEVICE })).await;
    let id = created["registrationId"].as_str().unwrap();
    let call = json!({
        "originatorAddress": ORIGINATOR, "receiverAddress": RECEIVER,
        "offer": { "sdp": CLEAN_SDP }
    });
    let place = |token: String, registration: String| {
        let call = call.clone();
        let app = &app;
        async move {
            app.client
                .post(app.url("/webrtc/sessions"))
                .bearer_auth(token)
                .header("registrationId", registration)
                .json(&call)
                .send()
                .await
                .unwrap()
        }
    };
    for registration in [id, "listed-in-config"] {
        let placed = place(alice.clone(), registration.to_owned()).await;
        assert_eq!(placed.status(), StatusCode::CREATED, "{registration}");
    }
    let refused = "Device identifier not found: the registrationId is not an active registration of this API consumer at originatorAddress.";
    // Another consumer's registration, an unknown id, and Alice's once deleted are refused.
    let stranger = token(&app, ORIGINATOR, "other");
    for (token, registration) in [
        (stranger, id.to_owned()),
        (
            alice.clone(),
            "3fa85f64-5717-4562-b3fc-2c963f66afa6".to_owned(),
        ),
    ] {
        let response = place(token, registration).await;
        assert_error(response, 404, "IDENTIFIER_NOT_FOUND", refused).await;
    }
    let path = format!("{DRAFT}/sessions/{id}");
    let deleted = send_scenario(&app, Method::DELETE, &path, Some(&alice), None).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let response = place(alice.clone(), id.to_owned()).await;
    assert_error(response, 404, "IDENTIFIER_NOT_FOUND", refused).await;
}

// --- Redis ------------------------------------------------------------------------------------

fn on_redis(url: &str, prefix: &str) -> Config {
    let mut config = short_lived(Config::embedded());
    config.store.backend = camara_webrtc::config::Backend::Redis;
    config.store.redis_url = Some(camara_webrtc::config::Secret::new(url));
    config.store.key_prefix = prefix.to_owned();
    config
}

#[tokio::test]
async fn on_redis_a_registration_expires_on_time_and_ends_its_regular_calls() {
    let Some(redis) =
        RedisServer::start("on_redis_a_registration_expires_on_time_and_ends_its_regular_calls")
    else {
        return;
    };
    let app = spawn_with(on_redis(&redis.url, &unique_prefix("reg-expiry"))).await;
    expiry_ends_the_registration_and_its_regular_calls(&app).await;
}

/// Two replicas on one Redis: what one registers the other reads, refreshes and deletes, and each
/// expiry is acted on by exactly one of them — the call it ends is written once (version 3:
/// created, answered, ended).
#[tokio::test]
async fn two_replicas_share_registrations_and_end_each_expiry_once() {
    let Some(redis) =
        RedisServer::start("two_replicas_share_registrations_and_end_each_expiry_once")
    else {
        return;
    };
    let prefix = unique_prefix("reg-replicas");
    let (a, b) = (
        spawn_with(on_redis(&redis.url, &prefix)).await,
        spawn_with(on_redis(&redis.url, &prefix)).await,
    );
    let bob = token(&a, RECEIVER, "app");
    let created = registered(&a, &bob).await;
    let path = format!(
        "{DRAFT}/sessions/{}",
        created["registrationId"].as_str().unwrap()
    );
    assert_eq!(
        json_ok(send_scenario(&b, Method::GET, &path, Some(&bob), None).await).await,
        created
    );
    assert_error(
        register(&b, DRAFT, &bob, json!({ "deviceId": DEVICE })).await,
        409,
        "ALREADY_EXISTS",
        "An active registration already exists for the supplied deviceId and the phoneNumber resolved from the access token.",
    )
    .await;
    assert_eq!(
        send_scenario(&b, Method::DELETE, &path, Some(&bob), None)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    let gone = send_scenario(&a, Method::GET, &path, Some(&bob), None).await;
    assert_error(gone, 404, "NOT_FOUND", NOT_FOUND).await;

    let (path, regular, _) = bob_calls_with_a_short_registration(&a, 1).await;
    let alice = token(&a, ORIGINATOR, "app");
    eventually(|| async {
        a.stored(&regular)
            .await
            .is_some_and(|s| s.status == SessionStatus::Terminated)
    })
    .await;
    let response = b.get_session(&regular, &alice).await;
    assert_eq!(etag_version(&response), Some(3));
    assert_eq!(json_ok(response).await["reason"], "registration ended");
    for replica in [&a, &b] {
        let gone = send_scenario(replica, Method::GET, &path, Some(&alice), None).await;
        assert_error(gone, 404, "NOT_FOUND", NOT_FOUND).await;
    }
}

/// A replica that claims an expired registration and dies before ending it loses nothing: once
/// its lease is over, a live replica ends the registration and its call.
#[tokio::test]
async fn an_expiry_claimed_by_a_replica_that_died_is_taken_over() {
    let Some(redis) = RedisServer::start("an_expiry_claimed_by_a_replica_that_died_is_taken_over")
    else {
        return;
    };
    let prefix = unique_prefix("reg-takeover");
    let app = spawn_with(on_redis(&redis.url, &prefix)).await;
    // The "dead replica": the same store, claiming the expiry first and never finishing it.
    let dead = camara_webrtc::store::RedisStore::new(
        &redis.url,
        &prefix,
        camara_webrtc::store::Limits {
            capacity: 100,
            per_owner: 100,
            ended_ttl: Duration::from_secs(60),
        },
        Duration::from_secs(1),
    )
    .unwrap();
    let (path, regular, _) = bob_calls_with_a_short_registration(&app, 2).await;
    // It expires in 2.5 s; the dead replica claims it now, as if its clock read 3 s later, with
    // a lease to 6 s from now, so the live replica cannot have claimed it first.
    use camara_webrtc::store::RegistrationStore;
    let claimed = dead
        .claim_expired(now_ms() + 3000, Duration::from_secs(3), 8)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert!(path.ends_with(&claimed[0].id));
    // Past its expiry it is gone for the API, while the lease keeps the live replica off it.
    let alice = token(&app, ORIGINATOR, "app");
    eventually(|| async {
        send_scenario(&app, Method::GET, &path, Some(&alice), None)
            .await
            .status()
            == StatusCode::NOT_FOUND
    })
    .await;
    let during = json_ok(app.get_session(&regular, &alice).await).await;
    assert_eq!(during["status"], "Connected");
    // Once the lease is over, the live replica ends it.
    eventually(|| async {
        app.stored(&regular)
            .await
            .is_some_and(|s| s.status == SessionStatus::Terminated)
    })
    .await;
}
