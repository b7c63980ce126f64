//! CORS (`server.cors_allowed_origins`): a preflight is answered on every API route before
//! authentication and every limit; every other response, CAMARA errors included, carries the CORS
//! headers; an origin not listed gets no `Access-Control-Allow-Origin`; `[]` turns CORS off.
//! Each test asserts every header of the responses it reads.

use axum::body::Bytes;
use camara_webrtc::config::Config;
use reqwest::{Method, Response, StatusCode};
use serde_json::json;

use crate::client::pieces;
use crate::helpers::*;

/// A listed origin, and one that is not.
const APP: &str = "https://app.example.com";
const ELSEWHERE: &str = "https://elsewhere.example";

const ALLOW_METHODS: (&str, &str) = ("access-control-allow-methods", "GET,POST,PUT,DELETE");
const ALLOW_HEADERS: (&str, &str) = (
    "access-control-allow-headers",
    "authorization,content-type,x-correlator,registrationid",
);
const MAX_AGE: (&str, &str) = ("access-control-max-age", "7200");
const EXPOSE: (&str, &str) = (
    "access-control-expose-headers",
    "x-correlator,etag,location,retry-after",
);
const VARY: (&str, &str) = (
    "vary",
    "origin, access-control-request-method, access-control-request-headers",
);
const JSON: (&str, &str) = ("content-type", "application/json");

/// The embedded config with `origins` as `server.cors_allowed_origins`.
fn allowing(origins: &[&str]) -> Config {
    let mut config = Config::embedded();
    config.server.cors_allowed_origins = origins.iter().map(|o| (*o).to_owned()).collect();
    config
}

/// The config of most tests here: two origins listed.
fn listed() -> Config {
    allowing(&[APP, "http://127.0.0.1:5173"])
}

/// Asserts every header of `response` but `date` (it changes by the second) and `content-length`
/// (the body's, which the client read whole): exactly `expected`, in any order.
fn assert_headers(response: &Response, expected: &[(&str, &str)]) {
    let mut sent: Vec<(String, String)> = response
        .headers()
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "date" | "content-length"))
        .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_owned()))
        .collect();
    let mut expected: Vec<(String, String)> = expected
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect();
    sent.sort();
    expected.sort();
    assert_eq!(sent, expected, "the headers of a {}", response.status());
}

/// A browser's preflight from `origin` for `method path` with the request headers it would send.
async fn preflight(app: &TestApp, method: &str, path: &str, origin: &str) -> Response {
    app.client
        .request(Method::OPTIONS, app.url(path))
        .header("origin", origin)
        .header("access-control-request-method", method)
        .header(
            "access-control-request-headers",
            "authorization,content-type,registrationid,x-correlator",
        )
        .send()
        .await
        .unwrap()
}

/// `GET path` from `origin` with `x-correlator: correlator` and, when given, a bearer token.
async fn get_from(
    app: &TestApp,
    origin: &str,
    path: &str,
    correlator: &str,
    token: Option<&str>,
) -> Response {
    let request = app
        .client
        .get(app.url(path))
        .header("origin", origin)
        .header("x-correlator", correlator);
    let request = match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    };
    request.send().await.unwrap()
}

/// The CORS headers of an actual request from `APP`.
const CORS: [(&str, &str); 3] = [("access-control-allow-origin", APP), EXPOSE, VARY];

/// Every API route of both base paths, an operational route and a path that is no route, with
/// a method and the `Allow` axum puts on any answer a route's own methods did not make.
fn paths() -> Vec<(&'static str, String, Option<&'static str>)> {
    let api = BASES.iter().flat_map(|base| {
        let session = format!("{base}/sessions/{FIXTURE_ID}");
        [
            ("POST", format!("{base}/sessions"), Some("POST")),
            ("PUT", format!("{session}/status"), Some("PUT")),
            ("GET", session.clone(), Some("GET,HEAD,DELETE")),
            ("DELETE", session, Some("GET,HEAD,DELETE")),
        ]
    });
    api.chain([
        ("GET", "/health/live".to_owned(), Some("GET,HEAD")),
        ("GET", "/nowhere".to_owned(), None),
    ])
    .collect()
}

#[tokio::test]
async fn a_preflight_is_answered_on_every_path_without_a_token() {
    // `["*"]` answers any origin with `*`; a list answers a listed origin with itself.
    for (config, origin, allowed) in [(allowing(&["*"]), ELSEWHERE, "*"), (listed(), APP, APP)] {
        let app = spawn_with(config).await;
        for (method, path, allow) in paths() {
            let response = preflight(&app, method, &path, origin).await;
            assert_eq!(response.status(), StatusCode::OK, "{method} {path}");
            let cors = [
                ("access-control-allow-origin", allowed),
                ALLOW_METHODS,
                ALLOW_HEADERS,
                MAX_AGE,
                VARY,
            ];
            let allow: Vec<_> = allow.map(|allow| ("allow", allow)).into_iter().collect();
            assert_headers(&response, &[&cors[..], &allow].concat());
            assert_eq!(response.bytes().await.unwrap(), "");
        }
    }
}

#[tokio::test]
async fn an_origin_not_listed_gets_no_allow_origin() {
    let app = spawn_with(listed()).await;
    let response = preflight(&app, "POST", "/webrtc/sessions", ELSEWHERE).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_headers(
        &response,
        &[
            ALLOW_METHODS,
            ALLOW_HEADERS,
            MAX_AGE,
            VARY,
            ("allow", "POST"),
        ],
    );
    // The request itself is served (CORS binds browsers, not the server), but a browser keeps
    // the answer from the page: it names no origin.
    let session = format!("/webrtc/sessions/{FIXTURE_ID}");
    let token = app.receiver_token();
    let response = get_from(&app, ELSEWHERE, &session, "elsewhere", Some(&token)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_headers(
        &response,
        &[
            JSON,
            ("etag", "\"1\""),
            ("x-correlator", "elsewhere"),
            EXPOSE,
            VARY,
        ],
    );
}

#[tokio::test]
async fn actual_requests_from_a_listed_origin_name_it_and_expose_their_headers() {
    let app = spawn_with(listed()).await;
    let token = app.app_token(ORIGINATOR, "browser-app");
    let body = json!({
        "originatorAddress": ORIGINATOR,
        "receiverAddress": RECEIVER,
        "offer": { "sdp": CLEAN_SDP }
    });
    let created = app
        .client
        .post(app.url("/webrtc/sessions"))
        .bearer_auth(&token)
        .header("registrationId", "browser-1")
        .header("origin", APP)
        .header("x-correlator", "create-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    let own = [
        JSON,
        ("location", &location),
        ("etag", "\"1\""),
        ("x-correlator", "create-1"),
    ];
    assert_headers(&created, &[&own[..], &CORS[..]].concat());
    let id = created.json::<serde_json::Value>().await.unwrap()["mediaSessionId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(location, format!("/webrtc/sessions/{id}"));
    let read = get_from(&app, APP, &location, "read-1", Some(&token)).await;
    assert_eq!(read.status(), StatusCode::OK);
    let own = [JSON, ("etag", "\"1\""), ("x-correlator", "read-1")];
    assert_headers(&read, &[&own[..], &CORS[..]].concat());
    assert_eq!(
        read.json::<serde_json::Value>().await.unwrap(),
        json!({
            "mediaSessionId": id,
            "originatorAddress": ORIGINATOR,
            "receiverAddress": RECEIVER,
            "status": "Initial",
            "offer": { "sdp": CLEAN_SDP },
            "callType": "REGULAR"
        })
    );
}

#[tokio::test]
async fn camara_errors_carry_the_cors_headers() {
    let mut config = listed();
    config.server.rate_limit_per_second = 1;
    config.server.rate_limit_burst = 1;
    let app = spawn_with(config).await;
    let session = format!("/webrtc/sessions/{FIXTURE_ID}");

    let response = get_from(&app, APP, &session, "no-token", None).await;
    let challenge = "Bearer realm=\"camara-webrtc\", error=\"invalid_token\", error_description=\"the Authorization header is missing\"";
    assert_headers(
        &response,
        &[
            &[
                JSON,
                ("www-authenticate", challenge),
                ("x-correlator", "no-token"),
            ],
            &CORS[..],
        ]
        .concat(),
    );
    assert_error(
        response,
        401,
        "UNAUTHENTICATED",
        "Request not authenticated: the Authorization header is missing. A new authentication is required.",
    )
    .await;

    // The edge middleware's own refusal, made before any layer below it runs.
    let response = get_from(&app, APP, &session, "not valid!", None).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_headers(&response, &[&[JSON][..], &CORS[..]].concat());
    assert_eq!(
        response.json::<serde_json::Value>().await.unwrap(),
        json!({"status": 400, "code": "INVALID_ARGUMENT",
               "message": "x-correlator must match ^[a-zA-Z0-9-_:;./<>{}]{0,256}$."})
    );

    let response = app
        .client
        .post(app.url(&format!("{session}/status")))
        .header("origin", APP)
        .header("x-correlator", "wrong-method")
        .send()
        .await
        .unwrap();
    let own = [JSON, ("allow", "PUT"), ("x-correlator", "wrong-method")];
    assert_headers(&response, &[&own[..], &CORS[..]].concat());
    assert_method_not_allowed(response).await;

    // A session the caller cannot see, then, as that was the consumer's one request a second,
    // 429 with its exposed Retry-After.
    let token = app.receiver_token();
    let unknown = "/webrtc/sessions/unknown";
    let response = get_from(&app, APP, unknown, "unknown", Some(&token)).await;
    assert_headers(
        &response,
        &[&[JSON, ("x-correlator", "unknown")][..], &CORS[..]].concat(),
    );
    assert_not_found(response).await;
    let response = get_from(&app, APP, &session, "limited", Some(&token)).await;
    let own = [JSON, ("retry-after", "1"), ("x-correlator", "limited")];
    assert_headers(&response, &[&own[..], &CORS[..]].concat());
    assert_error(
        response,
        429,
        "TOO_MANY_REQUESTS",
        "Rate limit reached: 1 requests per second per API consumer.",
    )
    .await;
}

#[tokio::test]
async fn while_requests_are_shed_a_preflight_is_answered_and_the_503_carries_cors() {
    let mut config = listed();
    config.server.max_concurrent_requests = 1;
    let app = spawn_with(config).await;
    let token = app.receiver_token();
    let slow = SlowPut::start(&app.address, &token).await;
    let status = format!("/webrtc/sessions/{FIXTURE_ID}/status");
    let response = preflight(&app, "PUT", &status, APP).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_headers(
        &response,
        &[
            ("access-control-allow-origin", APP),
            ALLOW_METHODS,
            ALLOW_HEADERS,
            MAX_AGE,
            VARY,
            ("allow", "PUT"),
        ],
    );
    let session = format!("/webrtc/sessions/{FIXTURE_ID}");
    let response = get_from(&app, APP, &session, "shed", Some(&token)).await;
    assert_headers(
        &response,
        &[&[JSON, ("x-correlator", "shed")][..], &CORS[..]].concat(),
    );
    assert_error(
        response,
        503,
        "UNAVAILABLE",
        "Service Unavailable: the service is at its limit of concurrent requests; retry shortly.",
    )
    .await;
    assert_eq!(json_ok(slow.finish().await).await["status"], "Ringing");
}

#[tokio::test]
async fn a_timeout_carries_the_cors_headers() {
    let mut config = listed();
    config.server.request_timeout_ms = 200;
    let app = spawn_with(config).await;
    // A body that never ends: the request is answered by the timeout.
    let (mut rest, body) = pieces(1);
    rest.send_data(Bytes::from_static(b"{\"status\":"))
        .await
        .unwrap();
    let response = app
        .client
        .put(app.status_url("/webrtc", FIXTURE_ID))
        .bearer_auth(app.receiver_token())
        .header("content-type", "application/json")
        .header("origin", APP)
        .header("x-correlator", "late")
        .body(body)
        .send()
        .await
        .unwrap();
    drop(rest);
    assert_headers(
        &response,
        &[&[JSON, ("x-correlator", "late")][..], &CORS[..]].concat(),
    );
    assert_error(response, 504, "TIMEOUT", "Request timeout exceeded.").await;
}

/// Sends `OPTIONS /webrtc/sessions` from `APP`, with `Access-Control-Request-Method: POST` when
/// `preflight`, and asserts the router's CAMARA 405 without any CORS header.
async fn assert_options_is_405(app: &TestApp, preflight: bool) {
    let request = app
        .client
        .request(Method::OPTIONS, app.url("/webrtc/sessions"))
        .header("origin", APP)
        .header("x-correlator", "options");
    let request = match preflight {
        true => request.header("access-control-request-method", "POST"),
        false => request,
    };
    let response = request.send().await.unwrap();
    assert_headers(
        &response,
        &[JSON, ("allow", "POST"), ("x-correlator", "options")],
    );
    assert_method_not_allowed(response).await;
}

#[tokio::test]
async fn an_options_without_a_request_method_is_no_preflight() {
    let app = spawn_with(listed()).await;
    assert_options_is_405(&app, false).await;
}

#[tokio::test]
async fn an_empty_list_turns_cors_off() {
    let app = spawn_with(allowing(&[])).await;
    assert_options_is_405(&app, true).await;
    let response = get_from(
        &app,
        APP,
        &format!("/webrtc/sessions/{FIXTURE_ID}"),
        "off",
        Some(&app.receiver_token()),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_headers(
        &response,
        &[JSON, ("etag", "\"1\""), ("x-correlator", "off")],
    );
}

/// A request without `Origin` is not a CORS request (curl, a server, a same-origin page): it
/// gets no CORS header, whatever the configured origins.
#[tokio::test]
async fn a_request_without_origin_is_not_cors() {
    for config in [allowing(&["*"]), listed()] {
        let app = spawn_with(config).await;
        let response = app
            .client
            .get(app.url(&format!("/webrtc/sessions/{FIXTURE_ID}")))
            .header("x-correlator", "no-origin")
            .bearer_auth(app.receiver_token())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_headers(
            &response,
            &[JSON, ("etag", "\"1\""), ("x-correlator", "no-origin")],
        );
    }
}
