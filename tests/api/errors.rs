//! Every error the seed lists, plus 405/404/409/413/415, missing ids and x-correlator — whole bodies.

use camara_webrtc::config::Config;
use serde_json::json;

use crate::client::pieces;
use crate::helpers::*;

const NOT_FOUND: &str = "The specified resource is not found.";
const TOO_LARGE: &str = "The request body is larger than the server accepts.";

#[tokio::test]
async fn seed_not_found_body_for_an_unknown_session() {
    let app = spawn_app().await;
    let body = json!({ "status": "Ringing" }).to_string();
    let response = app
        .put_status("no-such-session", &body, &app.receiver_token())
        .await;
    let seed_body: serde_json::Value = serde_json::from_str(&seed("error-not-found")).unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(
        response.json::<serde_json::Value>().await.unwrap(),
        seed_body
    );
}

#[tokio::test]
async fn seed_identifier_not_found_body_for_an_unknown_subscriber() {
    let mut config = camara_webrtc::Config::embedded();
    config.auth.subscribers = vec!["+17085854000".into()];
    let app = spawn_with(config).await;
    let body = json!({ "status": "Ringing" }).to_string();
    let response = app
        .put_status(FIXTURE_ID, &body, &app.token("tel:+4915112345678", WRITE))
        .await;
    let seed_body: serde_json::Value =
        serde_json::from_str(&seed("error-identifier-not-found")).unwrap();
    assert_eq!(response.status(), 404);
    assert!(response.headers().contains_key("x-correlator"));
    assert_eq!(
        response.json::<serde_json::Value>().await.unwrap(),
        seed_body
    );
    // The list is checked after the request's own syntax (DESIGN §5: 400 before 404).
    let unlisted = app.token("tel:+4915112345678", WRITE);
    assert_error(
        app.put_status(FIXTURE_ID, r#"{"status":5}"#, &unlisted)
            .await,
        400,
        "INVALID_ARGUMENT",
        "status: invalid type: integer `5`, expected a string.",
    )
    .await;
    // The listed subscriber is served.
    json_ok(
        app.put_status(FIXTURE_ID, &body, &app.token(RECEIVER, WRITE))
            .await,
    )
    .await;
}

#[tokio::test]
async fn refused_transition_is_409_naming_both_statuses() {
    let app = spawn_app().await;
    let response = app
        .put_status(FIXTURE_ID, r#"{"status":"Hold"}"#, &app.receiver_token())
        .await;
    assert_error(
        response,
        409,
        "INCOMPATIBLE_STATE",
        "session status Initial cannot change to Hold",
    )
    .await;
}

#[tokio::test]
async fn network_only_status_is_out_of_range() {
    let app = spawn_app().await;
    let response = app
        .put_status(
            FIXTURE_ID,
            r#"{"status":"Terminated"}"#,
            &app.receiver_token(),
        )
        .await;
    assert_error(
        response,
        400,
        "OUT_OF_RANGE",
        "status Terminated is set by the network; use DELETE to end a session.",
    )
    .await;
    let response = app
        .put_status(
            FIXTURE_ID,
            r#"{"receiverSessionStatus":{"status":"Busy"}}"#,
            &app.receiver_token(),
        )
        .await;
    assert_error(
        response,
        400,
        "OUT_OF_RANGE",
        "receiverSessionStatus.status Busy is set by the network; use DELETE to end a session.",
    )
    .await;
}

#[tokio::test]
async fn unknown_status_is_invalid_argument() {
    let app = spawn_app().await;
    let response = app
        .put_status(
            FIXTURE_ID,
            r#"{"status":"connected"}"#,
            &app.receiver_token(),
        )
        .await;
    assert_error(
        response,
        400,
        "INVALID_ARGUMENT",
        "status: must be one of Initial, InProgress, Ringing, Proceeding, Connected, Terminated, Hold, Resume, SessionCancelled, Declined, Failed, Waiting, NoAnswer, NotReachable, Busy.",
    )
    .await;
}

#[tokio::test]
async fn unknown_route_is_camara_404() {
    let app = spawn_app().await;
    let response = app.get("/nope").await;
    assert_error(
        response,
        404,
        "NOT_FOUND",
        "The specified resource is not found: no such route.",
    )
    .await;
}

#[tokio::test]
async fn wrong_method_is_camara_405_with_allow() {
    let app = spawn_app().await;
    // `Allow` lists exactly the documented operations of the path (HEAD comes with GET).
    for (method, path, allow) in [
        ("POST", format!("/sessions/{FIXTURE_ID}/status"), "PUT"),
        (
            "PATCH",
            format!("/sessions/{FIXTURE_ID}"),
            "GET,HEAD,DELETE",
        ),
        ("PUT", "/sessions".to_owned(), "POST"),
        ("OPTIONS", "/sessions".to_owned(), "POST"),
        ("POST", "/sessions/status".to_owned(), "GET,HEAD,DELETE"),
    ] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let response = app
            .client
            .request(method.clone(), app.url(&format!("/webrtc{path}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["allow"], allow, "{method} {path}");
        assert_method_not_allowed(response).await;
    }
}

#[tokio::test]
async fn unsupported_content_type_is_415() {
    let app = spawn_app().await;
    let response = app
        .client
        .put(app.status_url("/webrtc", FIXTURE_ID))
        .bearer_auth(app.receiver_token())
        .header("content-type", "text/plain")
        .body(r#"{"status":"Ringing"}"#)
        .send()
        .await
        .unwrap();
    assert_error(
        response,
        415,
        "UNSUPPORTED_MEDIA_TYPE",
        "The server refuses to accept the request because the payload format is in an unsupported format: Content-Type must be application/json.",
    )
    .await;
}

#[tokio::test]
async fn json_content_types_with_parameters_and_suffixes_are_accepted() {
    let app = spawn_app().await;
    for content_type in [
        "application/json; charset=utf-8",
        "application/merge-patch+json",
        "application/x-www-form-urlencoded",
        "APPLICATION/JSON",
    ] {
        let response = app
            .client
            .put(app.status_url("/webrtc", FIXTURE_ID))
            .bearer_auth(app.receiver_token())
            .header("content-type", content_type)
            .body(r#"{"status":"Ringing"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{content_type}");
    }
}

/// `server.max_body_bytes` (2 MiB by default) is the limit, for PUT and POST alike: a body of
/// exactly that size is read, one byte more is 413.
#[tokio::test]
async fn body_over_the_limit_is_413() {
    let app = spawn_app().await;
    let limit = Config::embedded().server.max_body_bytes;
    let padded = |size: usize| {
        let body = r#"{"status":"Ringing"}"#;
        body.to_owned() + &" ".repeat(size - body.len())
    };
    let response = app
        .put_status(FIXTURE_ID, &padded(limit), &app.receiver_token())
        .await;
    assert_eq!(response.status(), 200);
    let token = app.receiver_token();
    let post = app
        .client
        .post(app.url("/webrtc/sessions"))
        .bearer_auth(app.token(ORIGINATOR, ALL_SCOPES))
        .header("registrationId", "r-1")
        .header("content-type", "application/json")
        .body(padded(limit + 1))
        .send()
        .await
        .unwrap();
    for response in [
        app.put_status(FIXTURE_ID, &padded(limit + 1), &token).await,
        app.put_status(FIXTURE_ID, &padded(3 * 1024 * 1024), &token)
            .await,
        post,
    ] {
        assert_error(response, 413, "CONTENT_TOO_LARGE", TOO_LARGE).await;
    }
}

/// A chunked body declares no length to refuse up front: it is counted as it arrives, 413 once
/// it passes the limit. One within the limit, sent in pieces, is joined and read.
/// The largest valid request fits the default limit: an offer and an answer of 65,536 characters
/// each, every character in its longest JSON escaping (a surrogate pair, 12 bytes; `v=0` as
/// `\u0076\u003d\u0030`), and both are stored as sent.
#[tokio::test]
async fn the_largest_valid_sdp_in_its_longest_escaping_fits_the_body_limit() {
    use camara_webrtc::domain::sdp::{MAX_SDP_CHARS, MAX_SDP_JSON_BYTES};
    let app = spawn_app().await;
    let text = format!("v=0{}", "\u{1F600}".repeat(MAX_SDP_CHARS - 3));
    let literal = format!(
        "\"\\u0076\\u003d\\u0030{}\"",
        "\\uD83D\\uDE00".repeat(MAX_SDP_CHARS - 3)
    );
    assert!(literal.len() <= MAX_SDP_JSON_BYTES);
    let body = format!(
        r#"{{"status":"Connected","offer":{{"sdp":{literal}}},"answer":{{"sdp":{literal}}}}}"#
    );
    assert!(body.len() > 2 * (MAX_SDP_JSON_BYTES - 100));
    let session = json_ok(
        app.put_status(FIXTURE_ID, &body, &app.receiver_token())
            .await,
    )
    .await;
    assert_eq!(session["status"], "Connected");
    assert_eq!(session["offer"]["sdp"], text.as_str());
    assert_eq!(session["answer"]["sdp"], text.as_str());
    // One character more is refused as too long, not as too large.
    let longer = body.replacen("\\u0076", "\\u0076\\uD83D\\uDE00", 1);
    assert_error(
        app.put_status(FIXTURE_ID, &longer, &app.receiver_token())
            .await,
        400,
        "INVALID_ARGUMENT",
        "offer.sdp must be at most 65536 characters (got 65537).",
    )
    .await;
}

#[tokio::test]
async fn chunked_bodies_are_joined_and_held_to_the_limit() {
    let app = spawn_app().await;
    let token = app.receiver_token();
    let send = async |chunks: Vec<Vec<u8>>| {
        let (mut sender, body) = pieces(chunks.len());
        for piece in chunks {
            sender.send_data(piece.into()).await.unwrap();
        }
        drop(sender);
        app.client
            .put(app.status_url("/webrtc", FIXTURE_ID))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
    };
    let parts = [&br#"{"sta"#[..], br#"tus":"Ring"#, br#"ing"}"#];
    let joined = send(parts.iter().map(|p| p.to_vec()).collect()).await;
    assert_eq!(json_ok(joined).await["status"], "Ringing");

    let limit = Config::embedded().server.max_body_bytes;
    let mut over = vec![b' '; limit + 1];
    over[0] = b'{';
    let refused = send(over.chunks(4096).map(<[u8]>::to_vec).collect()).await;
    assert_error(refused, 413, "CONTENT_TOO_LARGE", TOO_LARGE).await;
}

#[tokio::test]
async fn missing_or_empty_media_session_id_is_400() {
    let app = spawn_app().await;
    let token = app.receiver_token();
    let message = "mediaSessionId is missing from the path: use /sessions/{mediaSessionId}.";
    for base in ["/webrtc", "/webrtc-call-handling/v0.3"] {
        let cases = [
            (
                reqwest::Method::PUT,
                format!("{base}/sessions//status"),
                "mediaSessionId must not be empty.",
            ),
            (
                reqwest::Method::PUT,
                format!("{base}/sessions/status"),
                message,
            ),
            (reqwest::Method::GET, format!("{base}/sessions/"), message),
            (reqwest::Method::GET, format!("{base}/sessions"), message),
            (reqwest::Method::DELETE, format!("{base}/sessions"), message),
        ];
        for (method, path, expected) in cases {
            let response = app
                .client
                .request(method.clone(), app.url(&path))
                .bearer_auth(&token)
                .body(r#"{"status":"Ringing"}"#)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 400, "{method} {path}");
            assert_error(response, 400, "INVALID_ARGUMENT", expected).await;
        }
    }
}

#[tokio::test]
async fn media_session_id_over_256_characters_is_400() {
    let app = spawn_app().await;
    let response = app
        .put_status(
            &"a".repeat(257),
            r#"{"status":"Ringing"}"#,
            &app.receiver_token(),
        )
        .await;
    assert_error(
        response,
        400,
        "INVALID_ARGUMENT",
        "mediaSessionId must be at most 256 characters.",
    )
    .await;
    let response = app
        .put_status(
            &"a".repeat(256),
            r#"{"status":"Ringing"}"#,
            &app.receiver_token(),
        )
        .await;
    assert_error(response, 404, "NOT_FOUND", NOT_FOUND).await;
}

#[tokio::test]
async fn body_media_session_id_must_match_the_path() {
    let app = spawn_app().await;
    let body = json!({ "status": "Ringing", "mediaSessionId": "other" }).to_string();
    let response = app
        .put_status(FIXTURE_ID, &body, &app.receiver_token())
        .await;
    assert_error(
        response,
        400,
        "INVALID_ARGUMENT",
        "mediaSessionId in the body does not match the one in the path.",
    )
    .await;
}

#[tokio::test]
async fn valid_correlator_is_echoed_on_success_and_error() {
    let app = spawn_app().await;
    let correlator = "b4333c46-49c0-4f62-80d7-f0ef930f1c46:{x}<y>;./_";
    let ok = app
        .client
        .get(app.url(&format!("/webrtc/sessions/{FIXTURE_ID}")))
        .bearer_auth(app.receiver_token())
        .header("x-correlator", correlator)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["x-correlator"], correlator);
    let unauthenticated = app
        .client
        .put(app.status_url("/webrtc", FIXTURE_ID))
        .header("x-correlator", correlator)
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
    assert_eq!(unauthenticated.headers()["x-correlator"], correlator);
}

#[tokio::test]
async fn absent_correlator_gets_a_generated_uuid() {
    let app = spawn_app().await;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..50 {
        let response = app.get("/health/live").await;
        let value = response.headers()["x-correlator"]
            .to_str()
            .unwrap()
            .to_owned();
        let uuid = uuid::Uuid::parse_str(&value).unwrap();
        assert_eq!(uuid.get_version_num(), 4, "{value}");
        assert_eq!(uuid.get_variant(), uuid::Variant::RFC4122, "{value}");
        assert_eq!(
            value,
            uuid.hyphenated().to_string(),
            "lower-case, hyphenated"
        );
        assert!(seen.insert(value), "a generated correlator repeated");
    }
}

#[tokio::test]
async fn invalid_correlator_is_400_and_not_echoed() {
    let app = spawn_app().await;
    for bad in ["has space", "a,b", "100%", &"a".repeat(257)] {
        let response = app
            .client
            .put(app.status_url("/webrtc", FIXTURE_ID))
            .bearer_auth(app.receiver_token())
            .header("x-correlator", bad)
            .body(r#"{"status":"Ringing"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
        assert!(!response.headers().contains_key("x-correlator"));
        assert_eq!(
            response.json::<serde_json::Value>().await.unwrap(),
            json!({ "status": 400, "code": "INVALID_ARGUMENT", "message": "x-correlator must match ^[a-zA-Z0-9-_:;./<>{}]{0,256}$." })
        );
    }
}

#[tokio::test]
async fn health_routes_need_no_token() {
    let app = spawn_app().await;
    for path in ["/health/live", "/health/ready"] {
        let response = app.get(path).await;
        assert_eq!(json_ok(response).await, json!({ "status": "UP" }));
    }
}
