//! The seed document's five request examples, sent byte for byte, answer its "Returns Examples".

use serde_json::{Value, json};

use crate::helpers::*;

const STEPS: [&str; 5] = [
    "1-in-progress",
    "2-ringing",
    "3-connected",
    "4-hold",
    "5-resume",
];

async fn seed_walk(base: &str) {
    let app = spawn_app().await;
    let token = app.receiver_token();
    for (i, step) in STEPS.iter().enumerate() {
        let response = app
            .client
            .put(app.status_url(base, FIXTURE_ID))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .header("x-correlator", format!("seed-{step}"))
            .body(seed(&format!("request-{step}")))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.headers()["x-correlator"],
            format!("seed-{step}").as_str()
        );
        assert_eq!(
            response.headers()["etag"],
            format!("\"{}\"", i + 2).as_str()
        );
        let body = json_ok(response).await;
        let expected: Value = serde_json::from_str(&seed(&format!("response-{step}"))).unwrap();
        assert_eq!(body, expected, "{base} step {step}");
    }
}

#[tokio::test]
async fn seed_examples_reproduce_the_seed_responses_under_webrtc() {
    seed_walk("/webrtc").await;
}

#[tokio::test]
async fn seed_examples_reproduce_the_seed_responses_under_camara_base_path() {
    seed_walk("/webrtc-call-handling/v0.3").await;
}

#[tokio::test]
async fn seed_sdp_comes_back_byte_for_byte() {
    let app = spawn_app().await;
    let request: Value = serde_json::from_str(&seed("request-1-in-progress")).unwrap();
    let body = json_ok(
        app.put_status(
            FIXTURE_ID,
            &seed("request-1-in-progress"),
            &app.receiver_token(),
        )
        .await,
    )
    .await;
    let sent = request["receiverSessionStatus"]["answer"]["sdp"]
        .as_str()
        .unwrap();
    assert_eq!(
        body["receiverSessionStatus"]["answer"]["sdp"]
            .as_str()
            .unwrap()
            .as_bytes(),
        sent.as_bytes()
    );
}

#[tokio::test]
async fn seed_curl_without_content_type_is_accepted() {
    let app = spawn_app().await;
    let response = app
        .client
        .put(app.status_url("/webrtc", FIXTURE_ID))
        .bearer_auth(app.receiver_token())
        .body(seed("request-2-ringing"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        json_ok(response).await,
        json!({ "receiverSessionStatus": { "status": "Ringing" } })
    );
}

#[tokio::test]
async fn flat_body_answers_the_full_session() {
    let app = spawn_app().await;
    let body = json!({ "status": "Connected", "answer": { "sdp": CLEAN_SDP } }).to_string();
    let got = json_ok(
        app.put_status(FIXTURE_ID, &body, &app.receiver_token())
            .await,
    )
    .await;
    let offer = app.config.fixtures.sessions[0].offer_sdp.clone();
    let expected = json!({
        "mediaSessionId": FIXTURE_ID,
        "originatorAddress": ORIGINATOR,
        "originatorName": "Alice",
        "receiverAddress": RECEIVER,
        "receiverName": "Bob",
        "status": "Connected",
        "offer": { "sdp": offer },
        "answer": { "sdp": CLEAN_SDP },
        "callType": "REGULAR",
    });
    assert_eq!(got, expected);
    // GET shows the same session.
    assert_eq!(
        json_ok(app.get_session(FIXTURE_ID, &app.receiver_token()).await).await,
        expected
    );
}

#[tokio::test]
async fn flat_body_with_location_stores_and_returns_it() {
    let app = spawn_app().await;
    let location = json!({
        "shape": "Circle",
        "coordinates": { "latitude": 40.7128, "longitude": -74.006, "radius": 50 },
        "method": "GPS",
        "confidence": { "pdf": "normal", "value": 88 },
        "timestamp": "2025-10-06T19:32:10Z"
    });
    let body = json!({ "status": "Ringing", "locationDetails": location }).to_string();
    let got = json_ok(
        app.put_status(FIXTURE_ID, &body, &app.receiver_token())
            .await,
    )
    .await;
    assert_eq!(got["locationDetails"], location);
    assert_eq!(got["status"], "Ringing");
}

#[tokio::test]
async fn envelope_mirrors_every_field_it_carried() {
    let app = spawn_app().await;
    let body = json!({ "receiverSessionStatus": {
        "status": "InProgress",
        "offer": { "sdp": CLEAN_SDP },
        "receiverAddress": RECEIVER,
        "receiverName": "Bob",
        "unknownField": true
    }})
    .to_string();
    let got = json_ok(
        app.put_status(FIXTURE_ID, &body, &app.receiver_token())
            .await,
    )
    .await;
    assert_eq!(
        got,
        json!({ "receiverSessionStatus": {
            "status": "InProgress",
            "offer": { "sdp": CLEAN_SDP },
            "receiverAddress": RECEIVER,
            "receiverName": "Bob"
        }})
    );
}

/// The envelope answers each SDP as the JSON literal the client sent, escapes and all; the stored
/// session holds its text, which GET answers in serde_json's own escaping.
#[tokio::test]
async fn envelope_answers_the_sdp_literal_byte_for_byte() {
    let app = spawn_app().await;
    let literal = r#""v=0\r\n\u0061=x\/y\r\n""#;
    let body = format!(
        r#"{{"receiverSessionStatus":{{"status":"Ringing","answer":{{"sdp":{literal}}}}}}}"#
    );
    let response = app
        .put_status(FIXTURE_ID, &body, &app.receiver_token())
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.text().await.unwrap(),
        format!(
            r#"{{"receiverSessionStatus":{{"status":"Ringing","answer":{{"sdp":{literal}}}}}}}"#
        )
    );
    let session = json_ok(app.get_session(FIXTURE_ID, &app.receiver_token()).await).await;
    assert_eq!(session["answer"]["sdp"], "v=0\r\na=x/y\r\n");
}
