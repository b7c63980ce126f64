//! Hostile and broken bodies: each gets a CAMARA 400/413 naming the field or the reason, nothing is
//! half-applied, and the server keeps serving.

use camara_webrtc::config::Config;
use camara_webrtc::domain::SdpPolicy;
use serde_json::json;

use crate::helpers::*;

async fn put_bytes(app: &TestApp, body: Vec<u8>) -> reqwest::Response {
    app.client
        .put(app.status_url("/webrtc", FIXTURE_ID))
        .bearer_auth(app.receiver_token())
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn assert_invalid(app: &TestApp, body: impl Into<Vec<u8>>, message: &str) {
    assert_error(
        put_bytes(app, body.into()).await,
        400,
        "INVALID_ARGUMENT",
        message,
    )
    .await;
}

async fn assert_untouched_and_serving(app: &TestApp) {
    let session = json_ok(app.get_session(FIXTURE_ID, &app.receiver_token()).await).await;
    assert_eq!(session["status"], "Initial");
    assert!(session.get("answer").is_none());
    assert!(session.get("locationDetails").is_none());
}

#[tokio::test]
async fn broken_json_is_named() {
    let app = spawn_app().await;
    assert_invalid(
        &app,
        r#"{"status":"#,
        "The request body is not valid JSON: EOF while parsing a value at line 1 column 10.",
    )
    .await;
    assert_invalid(&app, "", "A JSON request body is required.").await;
    assert_invalid(&app, "[1,2]", "The request body must be a JSON object.").await;
    let deep = format!("{}{}", "[".repeat(50_000), "]".repeat(50_000));
    assert_invalid(
        &app,
        deep,
        "The request body is not valid JSON: recursion limit exceeded at line 1 column 128.",
    )
    .await;
    let mut utf8 = br#"{"status":"Ringing","x":""#.to_vec();
    utf8.extend_from_slice(&[0xff, 0xfe]);
    utf8.extend_from_slice(br#""}"#);
    assert_invalid(
        &app,
        utf8,
        "The request body is not valid JSON: invalid unicode code point at line 1 column 26.",
    )
    .await;
    assert_invalid(
        &app,
        b"{\"status\":\"Ring\0ing\"}".to_vec(),
        "The request body is not valid JSON: control character (\\u0000-\\u001F) found while parsing a string at line 1 column 16.",
    )
    .await;
    assert_untouched_and_serving(&app).await;
}

#[tokio::test]
async fn wrong_types_name_the_field() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({ "status": 1 }),
            "status: invalid type: integer `1`, expected a string.",
        ),
        (
            json!({ "status": null }),
            "status: invalid type: null, expected a string.",
        ),
        (
            json!({ "status": "Connected", "answer": "v=0" }),
            "answer: invalid type: string, expected an object.",
        ),
        (
            json!({ "status": "Connected", "answer": { "sdp": 5 } }),
            "answer.sdp: invalid type: integer `5`, expected a string.",
        ),
        (
            json!({ "status": "Connected", "answer": null }),
            "answer: invalid type: null, expected an object.",
        ),
        (
            json!({ "status": "Ringing", "locationDetails": { "shape": "Circle", "coordinates": { "latitude": 1, "longitude": 0, "radius": 1 }, "method": null } }),
            "locationDetails.method: invalid type, expected a string.",
        ),
        (
            json!({ "status": "Connected", "answer": {} }),
            "answer: missing field `sdp`.",
        ),
        (
            json!({ "receiverSessionStatus": [] }),
            "receiverSessionStatus: invalid type: sequence, expected an object.",
        ),
        (
            json!({ "receiverSessionStatus": {} }),
            "receiverSessionStatus.status is required.",
        ),
        (
            json!({ "receiverSessionStatus": { "status": true } }),
            "receiverSessionStatus.status: invalid type: boolean `true`, expected a string.",
        ),
        (
            json!({ "ReceiverSessionStatus": { "status": "Ringing", "offer": { "sdp": ["v=0"] } } }),
            "ReceiverSessionStatus.offer.sdp: invalid type: sequence, expected a string.",
        ),
        (
            json!({ "status": "Ringing", "originatorAddress": "alice" }),
            "originatorAddress: must be a tel: or sip: URI matching CAMARA's Address pattern, at most 256 characters.",
        ),
        (
            json!({ "status": "Ringing", "receiverName": "b".repeat(257) }),
            "receiverName must be at most 256 characters.",
        ),
        (
            json!({ "status": "Ringing", "locationDetails": "here" }),
            "locationDetails: invalid type: string, expected an object.",
        ),
        (
            json!({ "status": "Ringing", "locationDetails": { "shape": "Square", "coordinates": { "latitude": 1, "longitude": 0 } } }),
            "locationDetails.shape: unknown variant, expected `Circle` or `Ellipsoid`.",
        ),
        (
            json!({ "status": "Ringing", "locationDetails": { "shape": "Circle" } }),
            "locationDetails: missing field `coordinates`.",
        ),
        (
            json!({ "status": "Ringing", "locationDetails": { "shape": "Circle", "coordinates": { "latitude": "1", "longitude": 0, "radius": 1 } } }),
            "locationDetails.coordinates.latitude: invalid type: string, expected a number.",
        ),
        (
            json!({ "status": "Ringing", "locationDetails": { "shape": "Ellipsoid", "coordinates": { "latitude": 1, "longitude": 0, "radius": 1 } } }),
            "locationDetails.coordinates.zAxis is required.",
        ),
        (
            json!({ "status": "Ringing", "locationDetails": { "shape": "Circle", "coordinates": { "latitude": 1, "longitude": 0, "radius": 1 }, "timestamp": "yesterday" } }),
            "locationDetails.timestamp must be an RFC 3339 date-time such as 2025-10-06T19:32:10Z.",
        ),
        (
            json!({ "status": "Ringing", "locationDetails": { "shape": "Circle", "coordinates": { "latitude": 1, "longitude": 0, "radius": 1 }, "method": 5 } }),
            "locationDetails.method: invalid type, expected a string.",
        ),
        (
            json!({ "status": "Ringing", "receiverSessionStatus": { "status": "Ringing" } }),
            "Send either a top-level status or a receiverSessionStatus envelope, not both.",
        ),
        (
            json!({ "receiverSessionStatus": { "status": "Ringing" }, "ReceiverSessionStatus": { "status": "Ringing" } }),
            "Send either receiverSessionStatus or ReceiverSessionStatus, not both.",
        ),
        (
            json!({ "answer": { "sdp": CLEAN_SDP } }),
            "status is required (or a receiverSessionStatus envelope carrying it).",
        ),
    ];
    for (body, message) in cases {
        assert_invalid(&app, body.to_string(), message).await;
    }
    // Bodies json! cannot write: a key twice, a number beyond f64.
    assert_invalid(
        &app,
        r#"{"status":"Ringing","status":"Connected"}"#,
        "The request body: duplicate field `status`.",
    )
    .await;
    assert_invalid(
        &app,
        r#"{"status":"Ringing","locationDetails":{"shape":"Circle","coordinates":{"latitude":1e400,"longitude":0,"radius":1}}}"#,
        "locationDetails.coordinates.latitude: number out of range.",
    )
    .await;
    assert_untouched_and_serving(&app).await;
}

#[tokio::test]
async fn location_out_of_range_is_out_of_range_and_nothing_is_applied() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({ "latitude": 90.5, "longitude": 0, "radius": 1 }),
            "Circle",
            "locationDetails.coordinates.latitude must be between -90 and 90.",
        ),
        (
            json!({ "latitude": 0, "longitude": -180.01, "radius": 1 }),
            "Circle",
            "locationDetails.coordinates.longitude must be between -180 and 180.",
        ),
        (
            json!({ "latitude": 0, "longitude": 0, "radius": -1 }),
            "Circle",
            "locationDetails.coordinates.radius must be zero or more.",
        ),
        (
            json!({ "latitude": 0, "longitude": 0, "zAxis": 0, "semiMajorAxis": -2, "semiMinorAxis": 1, "verticalAxis": 1, "orientation": 0 }),
            "Ellipsoid",
            "locationDetails.coordinates.semiMajorAxis must be zero or more.",
        ),
    ];
    for (coordinates, shape, message) in cases {
        // A valid answer rides along: it must not be stored when the location is refused.
        let body = json!({ "status": "Connected", "answer": { "sdp": CLEAN_SDP }, "locationDetails": { "shape": shape, "coordinates": coordinates } });
        assert_error(
            put_bytes(&app, body.to_string().into()).await,
            400,
            "OUT_OF_RANGE",
            message,
        )
        .await;
    }
    let body = json!({ "status": "Ringing", "locationDetails": { "shape": "Circle", "coordinates": { "latitude": 0, "longitude": 0, "radius": 1 }, "confidence": { "value": 101 } } });
    assert_error(
        put_bytes(&app, body.to_string().into()).await,
        400,
        "OUT_OF_RANGE",
        "locationDetails.confidence.value must be between 0 and 100.",
    )
    .await;
    assert_untouched_and_serving(&app).await;
}

#[tokio::test]
async fn hostile_sdp_is_refused_with_the_field_named() {
    let app = spawn_app().await;
    let answer =
        |sdp: String| json!({ "status": "Connected", "answer": { "sdp": sdp } }).to_string();
    let long = format!("v=0\r\n{}", "a".repeat(70_000));
    assert_invalid(
        &app,
        answer(long),
        "answer.sdp must be at most 65536 characters (got 70005).",
    )
    .await;
    assert_invalid(
        &app,
        answer("v=0\r\n\u{0}x".into()),
        "answer.sdp contains a control character (U+0000) at character 6.",
    )
    .await;
    assert_invalid(&app, answer(String::new()), "answer.sdp must not be empty.").await;
    assert_invalid(
        &app,
        answer("hello".into()),
        "answer.sdp is not an SDP body: it must start with v=0.",
    )
    .await;
    // Exactly at the limit is fine.
    let at_limit = format!("v=0\r\n{}", "a".repeat(65_536 - 5));
    assert_eq!(put_bytes(&app, answer(at_limit).into()).await.status(), 200);
}

#[tokio::test]
async fn strict_sdp_rejects_the_mangled_seed_examples_and_accepts_the_clean_ones() {
    let mut config = Config::embedded();
    config.sdp.validation = SdpPolicy::Strict;
    let app = spawn_with(config).await;
    let token = app.receiver_token();
    let response = app
        .put_status(FIXTURE_ID, &seed("request-1-in-progress"), &token)
        .await;
    assert_error(
        response,
        400,
        "INVALID_ARGUMENT",
        "receiverSessionStatus.answer.sdp line 1: expected <type>=<value>, got \"\\\"v=0\\\\r\\\\no=- 8066321617929821805 2 IN IP4\".",
    )
    .await;
    json_ok(
        app.put_status(FIXTURE_ID, r#"{"status":"Ringing"}"#, &token)
            .await,
    )
    .await;
    let connect = json!({ "status": "Connected", "answer": { "sdp": CLEAN_SDP } }).to_string();
    json_ok(app.put_status(FIXTURE_ID, &connect, &token).await).await;
    for step in ["4-hold", "5-resume"] {
        let expected: serde_json::Value =
            serde_json::from_str(&seed(&format!("response-{step}"))).unwrap();
        let got = json_ok(
            app.put_status(FIXTURE_ID, &seed(&format!("request-{step}")), &token)
                .await,
        )
        .await;
        assert_eq!(got, expected);
    }
    let bad = json!({ "status": "Hold", "answer": { "sdp": CLEAN_SDP.replace("a=rtpmap:113", "a=rtpmap:99") } }).to_string();
    assert_invalid(
        &app,
        bad,
        "answer.sdp line 10: a=rtpmap payload type 99 is not listed in the m= line.",
    )
    .await;
}

#[tokio::test]
async fn a_path_id_that_is_not_text_is_named() {
    let app = spawn_app().await;
    let token = app.receiver_token();
    assert_error(
        app.put_status("%FF%FE", r#"{"status":"Ringing"}"#, &token)
            .await,
        400,
        "INVALID_ARGUMENT",
        "mediaSessionId in the path is not valid UTF-8 text.",
    )
    .await;
    // Percent-encoded text is decoded before it is looked up.
    let encoded: String = FIXTURE_ID.bytes().map(|b| format!("%{b:02X}")).collect();
    json_ok(app.get_session(&encoded, &token).await).await;
}
