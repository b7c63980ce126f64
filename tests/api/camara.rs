//! CAMARA's own acceptance scenarios for call handling (`tests/fixtures/camara/*.feature`, copied
//! from CAMARA), one named test each, every one run on both default base paths against a fresh
//! app. Test names follow the scenario tags: `@webrtc_call_handling_createSession_400.1_no_request_body`
//! is `create_session_400_1_no_request_body`; a test below proves none is missing.

use std::sync::LazyLock;

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::contract::Document;
use crate::helpers::*;

/// CAMARA's current call-handling draft, which its feature files check bodies against.
static CAMARA: LazyLock<Document> = LazyLock::new(|| {
    let path = fixture_path("camara/webrtc-call-handling.wip.yaml");
    Document::parse(&std::fs::read_to_string(path).unwrap())
});

/// The Background's "valid access token": a 3-legged token of an API consumer.
const CONSUMER: &str = "camara-scenarios";

/// How a scenario sets the Authorization header.
#[derive(Clone, Copy)]
enum Token {
    Valid,
    Absent,
    Expired,
    Invalid,
}

/// One request as the Background sets it up: `Content-Type: application/json`, an access token,
/// a schema-compliant `x-correlator`, and (POST) a UUID `registrationId`.
async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Token,
    body: Option<String>,
) -> Response {
    let sub = if method == Method::POST {
        ORIGINATOR
    } else {
        RECEIVER
    };
    let valid = app.app_token(sub, CONSUMER);
    let mut request = app
        .client
        .request(method.clone(), app.url(path))
        .header("content-type", "application/json")
        .header("x-correlator", "b4333c46-49c0-4f62-80d7-f0ef930f1c46");
    if method == Method::POST {
        request = request.header("registrationId", "6a4b2f3e-9d1c-4e8a-b7f6-0c5d4e3a2b1f");
    }
    request = match token {
        Token::Valid => request.bearer_auth(valid),
        Token::Absent => request,
        Token::Expired => request.bearer_auth(
            camara_webrtc::auth::mint(&app.config.auth, sub, ALL_SCOPES, Some(CONSUMER), -3600)
                .unwrap(),
        ),
        Token::Invalid => {
            // The right claims, signed with another key.
            let mut claims = receiver_claims();
            claims["scope"] = json!(ALL_SCOPES);
            request.bearer_auth(sign_hmac(
                jsonwebtoken::Algorithm::HS256,
                b"not the configured secret",
                &claims,
            ))
        }
    };
    if let Some(body) = body {
        request = request.body(body);
    }
    request.send().await.unwrap()
}

/// "the response header x-correlator has same value as the request header x-correlator"
fn assert_correlator_echoed(response: &Response) {
    assert_eq!(
        response.headers()["x-correlator"],
        "b4333c46-49c0-4f62-80d7-f0ef930f1c46"
    );
}

/// "the response body complies with the OAS schema at /components/schemas/MediaSessionInformation"
/// of CAMARA's own document.
fn assert_complies_with_camara(body: &Value) {
    CAMARA
        .validate("#/components/schemas/MediaSessionInformation", body)
        .unwrap();
}

/// Runs `scenario` on a fresh app under each default base path.
async fn on_both_bases(scenario: impl AsyncFn(&TestApp, &str)) {
    for base in BASES {
        scenario(&spawn_app().await, base).await;
    }
}

/// A body CAMARA's createSession scenario sends.
fn create_body() -> Value {
    json!({
        "originatorAddress": ORIGINATOR,
        "receiverAddress": RECEIVER,
        "offer": { "sdp": "v=0\r\no=- 8066321617929821805 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 42988 RTP/SAVPF 102 113\r\nc=IN IP6 2001:e0:410:2448:7a05:9b11:66f2:c9e\r\nb=AS:64\r\na=rtcp:9 IN IP4 0.0.0.0\r\na=candidate:1645903805 1 udp 2122262783 2001:e0:410:2448:7a05:9b11:66f2:c9e 42988 typ host generation 0 network-id 3 network-cost 900\r\na=ice-ufrag:4eKp\r\na=ice-pwd:D4sF5Pv9vx9ggaqxBlHbAFMx\r\na=ice-options:trickle renomination\r\na=mid:audio\r\na=extmap:2 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\na=sendrecv\r\na=rtcp-mux\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:Xm3YciqVIWFNSwy19e9MvfZ2YOdAZil7oT/tHjdf\r\na=rtpmap:102 AMR-WB/16000\r\na=fmtp:102 octet-align=0; mode-set=0,1,2; mode-change-capability=2\r\na=rtpmap:113 telephone-event/16000\r\n" },
        "clientCorrelator": "fda6e26d-e7c8-4596-870c-c083c0d39b2c"
    })
}

const STATUS_BODY: &str = r#"{"status": "Ringing"}"#;
const UNKNOWN_ID: &str = "0AEE1B58BAEEDA3EABA42B32EBB3DFE0DEAD3F90AE0CEB9EEB0C0F703E199FC0";
const NOT_FOUND: &str = "The specified resource is not found.";
const MISSING_ID: &str = "mediaSessionId is missing from the path: use /sessions/{mediaSessionId}.";

fn unauthenticated(cause: &str) -> String {
    format!("Request not authenticated: {cause}. A new authentication is required.")
}

/// An error scenario: the request, on both base paths, answers this CAMARA error and echoes the
/// correlator.
struct Refusal<'a> {
    status: u16,
    code: &'a str,
    message: &'a str,
}

async fn assert_refused(
    method: Method,
    path: &str,
    token: Token,
    body: Option<String>,
    refusal: Refusal<'_>,
) {
    on_both_bases(async |app, base| {
        let url = format!("{base}{path}");
        let response = send(app, method.clone(), &url, token, body.clone()).await;
        assert_correlator_echoed(&response);
        assert_error(response, refusal.status, refusal.code, refusal.message).await;
    })
    .await;
}

/// The three 401 scenarios of every operation.
async fn assert_401(method: Method, path: &str, body: Option<String>, token: Token) {
    let cause = match token {
        Token::Absent => "the Authorization header is missing",
        Token::Expired => "the access token has expired",
        Token::Invalid => "the access token's signature is invalid",
        Token::Valid => unreachable!("a valid token is not a 401 scenario"),
    };
    let message = unauthenticated(cause);
    let refusal = Refusal {
        status: 401,
        code: "UNAUTHENTICATED",
        message: &message,
    };
    assert_refused(method, path, token, body, refusal).await;
}

async fn assert_400(method: Method, path: &str, body: Option<String>, message: &str) {
    let refusal = Refusal {
        status: 400,
        code: "INVALID_ARGUMENT",
        message,
    };
    assert_refused(method, path, Token::Valid, body, refusal).await;
}

async fn assert_404(method: Method, path: &str, body: Option<String>) {
    let refusal = Refusal {
        status: 404,
        code: "NOT_FOUND",
        message: NOT_FOUND,
    };
    assert_refused(method, path, Token::Valid, body, refusal).await;
}

fn created_body() -> Option<String> {
    Some(create_body().to_string())
}

fn status_body() -> Option<String> {
    Some(STATUS_BODY.to_owned())
}

// --- createSession ---------------------------------------------------------------------------

#[tokio::test]
async fn create_session_01_generic_success_scenario() {
    on_both_bases(async |app, base| {
        let response = send(
            app,
            Method::POST,
            &format!("{base}/sessions"),
            Token::Valid,
            created_body(),
        )
        .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_correlator_echoed(&response);
        let body: Value = response.json().await.unwrap();
        assert_complies_with_camara(&body);
        let id = body["mediaSessionId"].as_str().expect("a mediaSessionId");
        let mut expected = create_body();
        expected.as_object_mut().unwrap().remove("clientCorrelator");
        expected["mediaSessionId"] = json!(id);
        expected["status"] = json!("Initial");
        expected["callType"] = json!("REGULAR");
        assert_eq!(body, expected);
    })
    .await;
}

#[tokio::test]
async fn create_session_400_1_no_request_body() {
    assert_400(
        Method::POST,
        "/sessions",
        None,
        "A JSON request body is required.",
    )
    .await;
}

#[tokio::test]
async fn create_session_400_2_empty_request_body() {
    assert_400(
        Method::POST,
        "/sessions",
        Some("{}".into()),
        "originatorAddress is required.",
    )
    .await;
}

#[tokio::test]
async fn create_session_401_1_no_authorization_header() {
    assert_401(Method::POST, "/sessions", created_body(), Token::Absent).await;
}

#[tokio::test]
async fn create_session_401_2_expired_access_token() {
    assert_401(Method::POST, "/sessions", created_body(), Token::Expired).await;
}

#[tokio::test]
async fn create_session_401_3_invalid_access_token() {
    assert_401(Method::POST, "/sessions", created_body(), Token::Invalid).await;
}

// --- deleteSessionById -----------------------------------------------------------------------

#[tokio::test]
async fn delete_session_by_id_01_generic_success_scenario() {
    on_both_bases(async |app, base| {
        let path = format!("{base}/sessions/{FIXTURE_ID}");
        let response = send(app, Method::DELETE, &path, Token::Valid, None).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert_correlator_echoed(&response);
        assert_eq!(response.text().await.unwrap(), "");
        // Cancelled or terminated: the session is gone.
        let again = send(app, Method::GET, &path, Token::Valid, None).await;
        assert_error(again, 404, "NOT_FOUND", NOT_FOUND).await;
    })
    .await;
}

#[tokio::test]
async fn delete_session_by_id_404_session_not_found() {
    assert_404(Method::DELETE, &format!("/sessions/{UNKNOWN_ID}"), None).await;
}

#[tokio::test]
async fn delete_session_by_id_400_1_no_request() {
    assert_400(Method::DELETE, "/sessions", None, MISSING_ID).await;
}

#[tokio::test]
async fn delete_session_by_id_400_2_empty_request() {
    assert_400(Method::DELETE, "/sessions/", None, MISSING_ID).await;
}

#[tokio::test]
async fn delete_session_by_id_401_1_no_authorization_header() {
    assert_401(
        Method::DELETE,
        &format!("/sessions/{FIXTURE_ID}"),
        None,
        Token::Absent,
    )
    .await;
}

#[tokio::test]
async fn delete_session_by_id_401_2_expired_access_token() {
    assert_401(
        Method::DELETE,
        &format!("/sessions/{FIXTURE_ID}"),
        None,
        Token::Expired,
    )
    .await;
}

#[tokio::test]
async fn delete_session_by_id_401_3_invalid_access_token() {
    assert_401(
        Method::DELETE,
        &format!("/sessions/{FIXTURE_ID}"),
        None,
        Token::Invalid,
    )
    .await;
}

// --- getSessionDetailsById -------------------------------------------------------------------

#[tokio::test]
async fn get_session_details_by_id_01_generic_success_scenario() {
    on_both_bases(async |app, base| {
        let path = format!("{base}/sessions/{FIXTURE_ID}");
        let response = send(app, Method::GET, &path, Token::Valid, None).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_correlator_echoed(&response);
        let body: Value = response.json().await.unwrap();
        assert_complies_with_camara(&body);
        assert_eq!(body["mediaSessionId"], FIXTURE_ID);
        assert_eq!(body["status"], "Initial");
        assert_eq!(body["originatorAddress"], ORIGINATOR);
        assert_eq!(body["receiverAddress"], RECEIVER);
    })
    .await;
}

#[tokio::test]
async fn get_session_details_by_id_404_session_not_found() {
    assert_404(Method::GET, &format!("/sessions/{UNKNOWN_ID}"), None).await;
}

#[tokio::test]
async fn get_session_details_by_id_400_1_no_request() {
    assert_400(Method::GET, "/sessions", None, MISSING_ID).await;
}

#[tokio::test]
async fn get_session_details_by_id_400_2_empty_request() {
    assert_400(Method::GET, "/sessions/", Some("{}".into()), MISSING_ID).await;
}

#[tokio::test]
async fn get_session_details_by_id_401_1_no_authorization_header() {
    assert_401(
        Method::GET,
        &format!("/sessions/{FIXTURE_ID}"),
        None,
        Token::Absent,
    )
    .await;
}

#[tokio::test]
async fn get_session_details_by_id_401_2_expired_access_token() {
    assert_401(
        Method::GET,
        &format!("/sessions/{FIXTURE_ID}"),
        None,
        Token::Expired,
    )
    .await;
}

#[tokio::test]
async fn get_session_details_by_id_401_3_invalid_access_token() {
    assert_401(
        Method::GET,
        &format!("/sessions/{FIXTURE_ID}"),
        None,
        Token::Invalid,
    )
    .await;
}

// --- updateSessionStatus ---------------------------------------------------------------------

#[tokio::test]
async fn update_session_status_01_generic_success_scenario() {
    on_both_bases(async |app, base| {
        let path = format!("{base}/sessions/{FIXTURE_ID}/status");
        let response = send(app, Method::PUT, &path, Token::Valid, status_body()).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_correlator_echoed(&response);
        let body: Value = response.json().await.unwrap();
        assert_complies_with_camara(&body);
        assert_eq!(body["mediaSessionId"], FIXTURE_ID);
        assert_eq!(body["status"], "Ringing");
    })
    .await;
}

#[tokio::test]
async fn update_session_status_404_session_not_found() {
    assert_404(
        Method::PUT,
        &format!("/sessions/{UNKNOWN_ID}/status"),
        status_body(),
    )
    .await;
}

#[tokio::test]
async fn update_session_status_400_1_no_request_body() {
    assert_400(Method::PUT, "/sessions/status", status_body(), MISSING_ID).await;
}

#[tokio::test]
async fn update_session_status_400_2_empty_request_body() {
    let message = "mediaSessionId must not be empty.";
    assert_400(Method::PUT, "/sessions//status", status_body(), message).await;
}

#[tokio::test]
async fn update_session_status_401_1_no_authorization_header() {
    let path = format!("/sessions/{FIXTURE_ID}/status");
    assert_401(Method::PUT, &path, status_body(), Token::Absent).await;
}

#[tokio::test]
async fn update_session_status_401_2_expired_access_token() {
    let path = format!("/sessions/{FIXTURE_ID}/status");
    assert_401(Method::PUT, &path, status_body(), Token::Expired).await;
}

#[tokio::test]
async fn update_session_status_401_3_invalid_access_token() {
    let path = format!("/sessions/{FIXTURE_ID}/status");
    assert_401(Method::PUT, &path, status_body(), Token::Invalid).await;
}

// --- coverage --------------------------------------------------------------------------------

#[test]
fn every_camara_scenario_is_a_test_here() {
    let source = include_str!("camara.rs");
    assert_every_scenario_has_a_test("camara", "@webrtc_call_handling_", 27, source);
}
