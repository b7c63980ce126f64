//! The whole session lifecycle: POST → PUT → GET → DELETE → 404, and every rule of POST and DELETE.

use camara_webrtc::config::Config;
use camara_webrtc::domain::SessionStatus;
use reqwest::StatusCode;
use reqwest::header::HeaderValue;
use serde_json::{Value, json};

use crate::helpers::*;

const APP: &str = "calling-app";

fn new_call() -> Value {
    json!({
        "originatorAddress": ORIGINATOR,
        "originatorName": "Alice",
        "receiverAddress": RECEIVER,
        "receiverName": "Bob",
        "offer": { "sdp": CLEAN_SDP }
    })
}

/// POSTs `body` as the originator of consumer `APP` and returns the 201 body.
async fn create_ok(app: &TestApp, base: &str, body: &Value) -> Value {
    let token = app.app_token(ORIGINATOR, APP);
    json_with(app.create(base, body, &token).await, StatusCode::CREATED).await
}

fn id_of(created: &Value) -> String {
    created["mediaSessionId"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn create_answers_201_with_the_session_a_location_and_an_etag() {
    let app = spawn_app().await;
    for base in BASES {
        let token = app.app_token(ORIGINATOR, APP);
        let response = app.create(base, &new_call(), &token).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        assert_eq!(response.headers()["etag"], "\"1\"");
        let body = json_with(response, StatusCode::CREATED).await;
        let id = id_of(&body);
        assert_eq!(location, format!("{base}/sessions/{id}"));
        assert_eq!(
            body,
            json!({
                "mediaSessionId": id,
                "originatorAddress": ORIGINATOR,
                "originatorName": "Alice",
                "receiverAddress": RECEIVER,
                "receiverName": "Bob",
                "status": "Initial",
                "offer": { "sdp": CLEAN_SDP },
                "callType": "REGULAR"
            })
        );
        // The Location is where the session now is.
        let read = app
            .client
            .get(app.url(&location))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(json_ok(read).await, body);
    }
}

#[tokio::test]
async fn session_ids_are_64_hex_digits_and_never_repeat() {
    let app = spawn_app().await;
    let mut ids = std::collections::HashSet::new();
    for _ in 0..50 {
        let id = id_of(&create_ok(&app, "/webrtc", &new_call()).await);
        assert_eq!(id.len(), 64, "{id}");
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_lowercase())
        );
        assert!(ids.insert(id), "ids are unique");
    }
}

#[tokio::test]
async fn create_stores_call_type_and_location() {
    let app = spawn_app().await;
    let mut body = new_call();
    body["receiverAddress"] = json!("urn:service:sos");
    body["callType"] = json!("EMERGENCY");
    body["locationDetails"] = json!({
        "shape": "Circle",
        "coordinates": { "latitude": 47.6062, "longitude": -122.3321, "radius": 35 },
        "method": "GPS",
        "confidence": { "pdf": "normal", "value": 92 },
        "timestamp": "2025-10-06T19:31:25Z"
    });
    let created = create_ok(&app, "/webrtc", &body).await;
    let mut expected = body.clone();
    expected["mediaSessionId"] = json!(id_of(&created));
    expected["status"] = json!("Initial");
    assert_eq!(created, expected);
}

#[tokio::test]
async fn create_refuses_bodies_that_name_the_wrong_things() {
    let app = spawn_app().await;
    let token = app.app_token(ORIGINATOR, APP);
    let mut cases: Vec<(Value, &str)> = Vec::new();
    for (field, message) in [
        ("originatorAddress", "originatorAddress is required."),
        ("receiverAddress", "receiverAddress is required."),
        ("offer", "offer is required: the originator's SDP offer."),
    ] {
        let mut body = new_call();
        body.as_object_mut().unwrap().remove(field);
        cases.push((body, message));
    }
    let with = |key: &str, value: Value| {
        let mut body = new_call();
        body[key] = value;
        body
    };
    cases.extend([
        (
            with("status", json!("Connected")),
            "status must not be sent when creating a session: the network sets a session's status.",
        ),
        (
            with("answer", json!({ "sdp": CLEAN_SDP })),
            "answer must not be sent when creating a session: only the receiver answers, with PUT /sessions/{mediaSessionId}/status.",
        ),
        (
            with("receiverAddress", json!("sip:anonymous@anonymous.invalid")),
            "receiverAddress must not be sip:anonymous@anonymous.invalid: an anonymous address can only originate a call.",
        ),
        (
            with("receiverAddress", json!("+17085854000")),
            "receiverAddress: must be a tel: or sip: URI matching CAMARA's Address pattern, at most 256 characters.",
        ),
        (
            with("callType", json!("URGENT")),
            "callType: must be one of REGULAR, EMERGENCY.",
        ),
        (
            with("originatorName", json!("A".repeat(257))),
            "originatorName must be at most 256 characters.",
        ),
        (
            with("offer", json!({ "sdp": "hello" })),
            "offer.sdp is not an SDP body: it must start with v=0.",
        ),
        (
            with("offer", json!("v=0")),
            "offer: invalid type: string, expected an object.",
        ),
    ]);
    for (body, message) in cases {
        assert_error(
            app.create("/webrtc", &body, &token).await,
            400,
            "INVALID_ARGUMENT",
            message,
        )
        .await;
    }
    assert!(
        app.state.store.list(usize::MAX).await.unwrap().0.len() == 1,
        "only the fixture"
    );
}

#[tokio::test]
async fn registration_id_is_required_and_checked_when_configured() {
    let app = spawn_app().await;
    let token = app.app_token(ORIGINATOR, APP);
    let post = |registration: Option<&[u8]>| {
        let mut request = app
            .client
            .post(app.url("/webrtc/sessions"))
            .bearer_auth(&token)
            .json(&new_call());
        if let Some(registration) = registration {
            let value = HeaderValue::from_bytes(registration).unwrap();
            request = request.header("registrationId", value);
        }
        request.send()
    };
    assert_error(
        post(None).await.unwrap(),
        400,
        "INVALID_ARGUMENT",
        "The registrationId header is required.",
    )
    .await;
    // Empty, too long, a space, a tab, and a non-ASCII byte (obs-text, which HTTP/1.1 carries).
    let too_long = "r".repeat(257);
    for bad in [
        &b""[..],
        too_long.as_bytes(),
        b"my phone",
        b"my\tphone",
        b"caf\xe9",
    ] {
        assert_error(
            post(Some(bad)).await.unwrap(),
            400,
            "INVALID_ARGUMENT",
            "The registrationId header must be 1 to 256 visible ASCII characters.",
        )
        .await;
    }
    // Off by default: any registrationId will do, from `!` to `~` and 256 characters long.
    for good in [&b"anything"[..], b"!~", "r".repeat(256).as_bytes()] {
        assert_eq!(
            post(Some(good)).await.unwrap().status(),
            StatusCode::CREATED
        );
    }

    let mut config = Config::embedded();
    config.sessions.check_registration = true;
    config.sessions.registrations = vec!["reg-1".into()];
    let app = spawn_with(config).await;
    let token = app.app_token(ORIGINATOR, APP);
    let post = |registration: &str| {
        app.client
            .post(app.url("/webrtc/sessions"))
            .bearer_auth(&token)
            .header("registrationId", registration)
            .json(&new_call())
            .send()
    };
    assert_error(
        post("reg-2").await.unwrap(),
        404,
        "IDENTIFIER_NOT_FOUND",
        "Device identifier not found: the registrationId is not an active registration of this API consumer at originatorAddress.",
    )
    .await;
    assert_eq!(post("reg-1").await.unwrap().status(), StatusCode::CREATED);
}

/// A control character (other than a tab) cannot even be sent with reqwest; sent raw, hyper's
/// parser refuses the request (400, empty body) before the service sees it, so no session is made.
#[tokio::test]
async fn a_control_character_in_registration_id_is_refused_by_the_http_stack() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app().await;
    let body = new_call().to_string();
    for control in [&b"my\x01phone"[..], b"my\x7fphone"] {
        let head = format!(
            "POST /webrtc/sessions HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
            app.app_token(ORIGINATOR, APP),
            body.len()
        );
        let request = [
            head.as_bytes(),
            b"registrationId: ",
            control,
            b"\r\n\r\n",
            body.as_bytes(),
        ]
        .concat();
        let address = app.address.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        stream.write_all(&request).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        let response = String::from_utf8_lossy(&response);
        assert!(
            response.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{response}"
        );
    }
    assert_eq!(
        app.state.store.list(usize::MAX).await.unwrap().0.len(),
        1,
        "only the fixture"
    );
}

#[tokio::test]
async fn a_3_legged_caller_calls_as_itself_or_anonymously() {
    let app = spawn_app().await;
    let token = app.app_token(RECEIVER, APP);
    assert_error(
        app.create("/webrtc", &new_call(), &token).await,
        403,
        "INVALID_TOKEN_CONTEXT",
        "originatorAddress is not consistent with access token.",
    )
    .await;
    // Withholding its identity is allowed; the subscriber still sees and ends its own call.
    let mut body = new_call();
    body["originatorAddress"] = json!("sip:anonymous@anonymous.invalid");
    let token = app.app_token(ORIGINATOR, APP);
    let created = json_with(
        app.create("/webrtc", &body, &token).await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(
        created["originatorAddress"],
        "sip:anonymous@anonymous.invalid"
    );
    let id = id_of(&created);
    assert_eq!(json_ok(app.get_session(&id, &token).await).await, created);
    let other = app.app_token("tel:+17085850000", APP);
    assert_not_found(app.get_session(&id, &other).await).await;
    assert_eq!(
        app.delete("/webrtc", &id, &token).await.status(),
        StatusCode::NO_CONTENT
    );
    // A 2-legged consumer may name any originator.
    let gateway = mint_2_legged(&app, APP);
    let mut body = new_call();
    body["originatorAddress"] = json!("tel:+4930123456");
    assert_eq!(
        app.create("/webrtc", &body, &gateway).await.status(),
        StatusCode::CREATED
    );
}

fn mint_2_legged(app: &TestApp, client_id: &str) -> String {
    camara_webrtc::auth::mint(
        &app.config.auth,
        "gateway",
        ALL_SCOPES,
        Some(client_id),
        600,
    )
    .unwrap()
}

#[tokio::test]
async fn emergency_calls_follow_the_config() {
    let mut config = Config::embedded();
    config.sessions.emergency_calls = false;
    let app = spawn_with(config).await;
    let mut body = new_call();
    body["callType"] = json!("EMERGENCY");
    let token = app.app_token(ORIGINATOR, APP);
    assert_error(
        app.create("/webrtc", &body, &token).await,
        501,
        "CALLTYPE_EMERGENCY_NOT_SUPPORTED",
        "Server does not support call type EMERGENCY.",
    )
    .await;
    body["callType"] = json!("REGULAR");
    assert_eq!(
        app.create("/webrtc", &body, &token).await.status(),
        StatusCode::CREATED
    );
}

/// With room for two of `APP`'s calls, the third is 429 `message`; another consumer's call is
/// created (`others_get_in`) or refused alike; ending `APP`'s first call makes room again.
async fn quota_is_429_until_a_session_ends(config: Config, message: &str, others_get_in: bool) {
    let app = spawn_with(config).await;
    let token = app.app_token(ORIGINATOR, APP);
    let first = id_of(&create_ok(&app, "/webrtc", &new_call()).await);
    create_ok(&app, "/webrtc", &new_call()).await;
    assert_error(
        app.create("/webrtc", &new_call(), &token).await,
        429,
        "QUOTA_EXCEEDED",
        message,
    )
    .await;
    let other = app.app_token(ORIGINATOR, "another-app");
    let expected = if others_get_in { 201 } else { 429 };
    assert_eq!(
        app.create("/webrtc", &new_call(), &other).await.status(),
        expected
    );
    assert_eq!(
        app.delete("/webrtc", &first, &token).await.status(),
        StatusCode::NO_CONTENT
    );
    create_ok(&app, "/webrtc", &new_call()).await;
}

/// The store's capacity (the fixture is its third session) is shared by every consumer; one
/// consumer at its own quota of live sessions does not stop the others.
#[tokio::test]
async fn quotas_are_429_until_a_session_ends() {
    let mut store_full = Config::embedded();
    store_full.sessions.max_sessions = 3;
    let mut consumer_full = Config::embedded();
    consumer_full.sessions.max_sessions_per_consumer = 2;
    for (config, message, others_get_in) in [
        (
            store_full,
            "Out of resource quota: the service holds its maximum of 3 sessions.",
            false,
        ),
        (
            consumer_full,
            "Out of resource quota: this API consumer holds its maximum of 2 live sessions; end one to create another.",
            true,
        ),
    ] {
        quota_is_429_until_a_session_ends(config, message, others_get_in).await;
    }
}

#[tokio::test]
async fn create_needs_the_create_scope() {
    let app = spawn_app().await;
    let token = app.token(ORIGINATOR, READ_WRITE);
    assert_error(
        app.create("/webrtc", &new_call(), &token).await,
        403,
        "PERMISSION_DENIED",
        "Client does not have sufficient permissions to perform this action: the access token lacks the scope webrtc-call-handling:sessions:create.",
    )
    .await;
}

/// DELETE as `who` from `status`; returns the status the store kept.
async fn ended_status(who: &str, status: SessionStatus) -> SessionStatus {
    let app = spawn_app().await;
    app.insert(session("call", status, Some(APP))).await;
    let token = app.app_token(who, APP);
    let response = app.delete("/webrtc", "call", &token).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(response.headers().get("content-type"), None);
    assert!(response.headers().contains_key("x-correlator"));
    assert_eq!(response.text().await.unwrap(), "");
    let kept = app
        .stored("call")
        .await
        .expect("kept for ended_ttl_seconds");
    assert!(kept.ended);
    kept.status
}

#[tokio::test]
async fn delete_cancels_declines_or_terminates() {
    use SessionStatus::*;
    for (who, from, to) in [
        (ORIGINATOR, Initial, SessionCancelled),
        (ORIGINATOR, Ringing, SessionCancelled),
        (RECEIVER, InProgress, Declined),
        (RECEIVER, Waiting, Declined),
        (ORIGINATOR, Connected, Terminated),
        (RECEIVER, Hold, Terminated),
        (RECEIVER, Resume, Terminated),
        (ORIGINATOR, Busy, Busy),
    ] {
        assert_eq!(ended_status(who, from).await, to, "{who} ends {from}");
    }
}

#[tokio::test]
async fn a_2_legged_delete_acts_for_the_side_its_consumer_owns() {
    let app = spawn_app().await;
    // The fixture is an incoming call: its consumer acts for the receiver, who declines.
    let gateway = mint_2_legged(&app, APP);
    assert_eq!(
        app.delete("/webrtc", FIXTURE_ID, &gateway).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.stored(FIXTURE_ID).await.unwrap().status,
        SessionStatus::Declined
    );
    // A call this consumer placed is cancelled.
    let created = json_with(
        app.create("/webrtc", &new_call(), &gateway).await,
        StatusCode::CREATED,
    )
    .await;
    let id = id_of(&created);
    assert_eq!(
        app.delete("/webrtc", &id, &gateway).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.stored(&id).await.unwrap().status,
        SessionStatus::SessionCancelled
    );
}

#[tokio::test]
async fn an_ended_session_is_gone_for_every_route() {
    let app = spawn_app().await;
    let token = app.app_token(RECEIVER, APP);
    assert_eq!(
        app.delete("/webrtc", FIXTURE_ID, &token).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_not_found(app.get_session(FIXTURE_ID, &token).await).await;
    assert_not_found(
        app.put_status(FIXTURE_ID, r#"{"status":"Ringing"}"#, &token)
            .await,
    )
    .await;
    for base in BASES {
        assert_not_found(app.delete(base, FIXTURE_ID, &token).await).await;
    }
    // The outcome is still known to the service.
    assert_eq!(
        app.stored(FIXTURE_ID).await.unwrap().status,
        SessionStatus::Declined
    );
}

#[tokio::test]
async fn ended_sessions_are_dropped_after_their_ttl() {
    let mut config = Config::embedded();
    config.sessions.ended_ttl_seconds = 0;
    let app = spawn_with(config).await;
    let token = app.app_token(RECEIVER, APP);
    assert_eq!(
        app.delete("/webrtc", FIXTURE_ID, &token).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.stored(FIXTURE_ID).await, None);
}

#[tokio::test]
async fn delete_obeys_scope_ownership_and_the_party_rule() {
    let app = spawn_app().await;
    app.insert(session(
        "theirs",
        SessionStatus::Connected,
        Some("another-app"),
    ))
    .await;
    let token = app.app_token(RECEIVER, APP);
    assert_not_found(app.delete("/webrtc", "theirs", &token).await).await;
    let stranger = app.app_token("tel:+17085850000", APP);
    assert_not_found(app.delete("/webrtc", FIXTURE_ID, &stranger).await).await;
    let read_only = app.token(RECEIVER, READ);
    assert_error(
        app.delete("/webrtc", FIXTURE_ID, &read_only).await,
        403,
        "PERMISSION_DENIED",
        "Client does not have sufficient permissions to perform this action: the access token lacks the scope webrtc-call-handling:sessions:delete.",
    )
    .await;
    assert_eq!(
        app.stored("theirs").await.unwrap().status,
        SessionStatus::Connected
    );
    assert_eq!(
        app.stored(FIXTURE_ID).await.unwrap().status,
        SessionStatus::Initial
    );
}

/// The README's walk-through, on both base paths: create, answer, read, end, gone.
#[tokio::test]
async fn a_call_from_creation_to_its_end() {
    let app = spawn_app().await;
    for base in BASES {
        let alice = app.app_token(ORIGINATOR, APP);
        let bob = app.app_token(RECEIVER, APP);
        let created = create_ok(&app, base, &new_call()).await;
        let id = id_of(&created);
        let url = app.url(&format!("{base}/sessions/{id}"));
        for (status, version) in [("Ringing", "\"2\""), ("Connected", "\"3\"")] {
            let response = app
                .client
                .put(format!("{url}/status"))
                .bearer_auth(&bob)
                .json(&json!({ "status": status, "answer": { "sdp": CLEAN_SDP } }))
                .send()
                .await
                .unwrap();
            assert_eq!(response.headers()["etag"], version);
            assert_eq!(json_ok(response).await["status"], status);
        }
        let read = app
            .client
            .get(&url)
            .bearer_auth(&alice)
            .send()
            .await
            .unwrap();
        let mut expected = created.clone();
        expected["status"] = json!("Connected");
        expected["answer"] = json!({ "sdp": CLEAN_SDP });
        assert_eq!(json_ok(read).await, expected);
        assert_eq!(
            app.delete(base, &id, &alice).await.status(),
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            app.stored(&id).await.unwrap().status,
            SessionStatus::Terminated
        );
        let gone = app
            .client
            .get(&url)
            .bearer_auth(&alice)
            .send()
            .await
            .unwrap();
        assert_not_found(gone).await;
    }
}

/// A call with no change for `sessions.idle_ttl_seconds` is ended by the network without a
/// request: `Failed` before it was answered, `Terminated` after, with a reason. It stays readable;
/// a PUT is 409, a DELETE removes it. The fixture session (no owner) never goes idle.
#[tokio::test]
async fn an_idle_session_is_ended_by_the_network_and_stays_readable() {
    let mut config = Config::embedded();
    config.sessions.idle_ttl_seconds = 1;
    let app = spawn_with(config).await;
    let token = app.app_token(ORIGINATOR, APP);
    let unanswered = id_of(&create_ok(&app, "/webrtc", &new_call()).await);
    let answered = id_of(&create_ok(&app, "/webrtc", &new_call()).await);
    let receiver = app.app_token(RECEIVER, APP);
    json_ok(
        app.put_status(&answered, r#"{"status":"Connected"}"#, &receiver)
            .await,
    )
    .await;
    for (id, status) in [(&unanswered, "Failed"), (&answered, "Terminated")] {
        let ended = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            loop {
                let read = json_ok(app.get_session(id, &token).await).await;
                if read["status"] != "Initial" && read["status"] != "Connected" {
                    return read;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        })
        .await
        .expect("the idle session ends by itself");
        assert_eq!(ended["status"], status, "{id}");
        assert_eq!(ended["reason"], "Ended by the network: no change for 1 s");
    }
    assert_error(
        app.put_status(&unanswered, r#"{"status":"Ringing"}"#, &receiver)
            .await,
        409,
        "INCOMPATIBLE_STATE",
        "session status Failed cannot change to Ringing",
    )
    .await;
    assert_eq!(
        app.delete("/webrtc", &unanswered, &token).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_not_found(app.get_session(&unanswered, &token).await).await;
    let fixture = json_ok(app.get_session(FIXTURE_ID, &app.receiver_token()).await).await;
    assert_eq!(fixture["status"], "Initial");
}
