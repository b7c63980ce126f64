//! What an operator relies on: `/metrics`, graceful shutdown, and the limits (timeout, body size,
//! concurrency, rate), all answered in CAMARA JSON.

use reqwest::StatusCode;

use crate::client::ContractClient;
use crate::helpers::*;

async fn metrics(app: &TestApp) -> String {
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4"
    );
    response.text().await.unwrap()
}

/// The value of the sample line that starts with `series` (0 when absent).
pub fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series).map(str::trim))
        .map_or(0.0, |value| value.parse().unwrap())
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_transitions_and_auth_failures() {
    let app = spawn_app().await;
    // The recorder is process-wide (other tests add to it), so deltas are compared.
    let put_200 = r#"camara_webrtc_http_requests_total{route="/webrtc/sessions/{mediaSessionId}/status",method="PUT",status="200"}"#;
    let to_ringing = r#"camara_webrtc_session_transitions_total{from="Initial",to="Ringing"}"#;
    let no_header = r#"camara_webrtc_auth_failures_total{reason="missing_header"}"#;
    let before = metrics(&app).await;
    let token = app.receiver_token();
    json_ok(
        app.put_status(FIXTURE_ID, r#"{"status":"Ringing"}"#, &token)
            .await,
    )
    .await;
    let refused = app.get(&format!("/webrtc/sessions/{FIXTURE_ID}")).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let after = metrics(&app).await;
    for series in [put_200, to_ringing, no_header] {
        assert!(
            sample(&after, series) >= sample(&before, series) + 1.0,
            "{series} did not grow"
        );
    }
    // Latency is a histogram by route template and method.
    let bucket = r#"camara_webrtc_http_request_duration_seconds_bucket{route="/webrtc/sessions/{mediaSessionId}/status",method="PUT",le="10"}"#;
    assert!(sample(&after, bucket) >= 1.0, "{after}");
    assert!(after.contains("# TYPE camara_webrtc_http_request_duration_seconds histogram"));
    // Labels carry route templates, never ids.
    assert!(!after.contains(FIXTURE_ID));
    // Sessions by status are this app's own: the fixture, now Ringing; every status is listed.
    assert!(after.contains("# TYPE camara_webrtc_sessions gauge"));
    assert_eq!(
        sample(&after, r#"camara_webrtc_sessions{status="Ringing"}"#),
        1.0
    );
    assert!(after.contains("camara_webrtc_sessions{status=\"Initial\"} 0\n"));
    assert_eq!(after.matches("camara_webrtc_sessions{status=").count(), 15);
}

#[tokio::test]
async fn methods_outside_the_standard_set_share_one_label_and_series_keep_counting() {
    let app = spawn_app().await;
    let other =
        r#"camara_webrtc_http_requests_total{route="/health/live",method="other",status="405"}"#;
    let get =
        r#"camara_webrtc_http_requests_total{route="/health/live",method="GET",status="200"}"#;
    let before = metrics(&app).await;
    for made_up in ["BREW", "WHEN", "BREW"] {
        let method = reqwest::Method::from_bytes(made_up.as_bytes()).unwrap();
        let response = app
            .client
            .request(method, app.url("/health/live"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    }
    for _ in 0..3 {
        let response = app.get("/health/live").await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    let after = metrics(&app).await;
    assert!(
        sample(&after, other) >= sample(&before, other) + 3.0,
        "{after}"
    );
    assert!(sample(&after, get) >= sample(&before, get) + 3.0, "{after}");
    assert!(
        !after.contains("BREW") && !after.contains("WHEN"),
        "{after}"
    );
}

#[tokio::test]
async fn ended_sessions_leave_the_sessions_gauge() {
    let app = spawn_app().await;
    let token = app.app_token(RECEIVER, "app");
    assert_eq!(
        app.delete("/webrtc", FIXTURE_ID, &token).await.status(),
        StatusCode::NO_CONTENT
    );
    let text = metrics(&app).await;
    for status in ["Initial", "Declined"] {
        let series = format!("camara_webrtc_sessions{{status=\"{status}\"}}");
        assert_eq!(sample(&text, &series), 0.0, "{series}");
    }
}

#[tokio::test]
async fn beyond_the_concurrency_limit_requests_are_shed_with_503_but_health_answers() {
    let mut config = camara_webrtc::Config::embedded();
    config.server.max_concurrent_requests = 1;
    let app = spawn_with(config).await;
    let token = app.receiver_token();
    let slow = SlowPut::start(&app.address, &token).await;
    assert_error(
        app.get_session(FIXTURE_ID, &token).await,
        503,
        "UNAVAILABLE",
        "Service Unavailable: the service is at its limit of concurrent requests; retry shortly.",
    )
    .await;
    for path in ["/health/live", "/health/ready", "/metrics", "/openapi.yaml"] {
        let response = app.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    // A path that is no route is answered for what it is, not shed.
    let unknown = app.get("/nowhere").await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(json_ok(slow.finish().await).await["status"], "Ringing");
    json_ok(app.get_session(FIXTURE_ID, &token).await).await;
}

#[tokio::test]
async fn the_per_consumer_rate_limit_is_429_with_retry_after() {
    let mut config = camara_webrtc::Config::embedded();
    config.server.rate_limit_per_second = 1;
    config.server.rate_limit_burst = 2;
    let app = spawn_with(config).await;
    let token = app.app_token(RECEIVER, "busy-app");
    for _ in 0..2 {
        json_ok(app.get_session(FIXTURE_ID, &token).await).await;
    }
    let limited = app.get_session(FIXTURE_ID, &token).await;
    assert_eq!(limited.headers()["retry-after"], "1");
    assert_error(
        limited,
        429,
        "TOO_MANY_REQUESTS",
        "Rate limit reached: 1 requests per second per API consumer.",
    )
    .await;
    // Another consumer has its own budget.
    let other = app.app_token(RECEIVER, "quiet-app");
    json_ok(app.get_session(FIXTURE_ID, &other).await).await;
}

#[tokio::test]
async fn shutdown_stops_accepting_and_finishes_the_request_in_flight() {
    let config = camara_webrtc::Config::embedded();
    let token = camara_webrtc::auth::mint(&config.auth, RECEIVER, WRITE, None, 600).unwrap();
    let (address, trigger, server) = run_until_triggered(config).await;
    let slow = SlowPut::start(&address, &token).await;
    trigger.send(()).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    // No new connection is served any more...
    let refused = ContractClient::embedded()
        .get(format!("{address}/health/live"))
        .timeout(std::time::Duration::from_secs(2))
        .send()
        .await;
    assert!(
        refused.is_err(),
        "a new request after shutdown: {refused:?}"
    );
    // ...but the one in flight completes, and the server then exits cleanly.
    assert_eq!(json_ok(slow.finish().await).await["status"], "Ringing");
    tokio::time::timeout(std::time::Duration::from_secs(10), server)
        .await
        .expect("the server exits after its last request")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_request_outliving_the_grace_period_does_not_hold_shutdown() {
    let mut config = camara_webrtc::Config::embedded();
    config.server.shutdown_grace_seconds = 1;
    let token = camara_webrtc::auth::mint(&config.auth, RECEIVER, WRITE, None, 600).unwrap();
    let (address, trigger, server) = run_until_triggered(config).await;
    // Never finished by the client.
    let _stalled = SlowPut::start(&address, &token).await;
    trigger.send(()).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), server)
        .await
        .expect("the grace period ends the wait")
        .unwrap()
        .unwrap();
}

/// With `server.metrics_listen`, `/metrics` is served there only: the public port answers 404,
/// and the metrics port serves nothing else.
#[tokio::test]
async fn metrics_listen_takes_metrics_off_the_public_port() {
    let mut config = camara_webrtc::Config::embedded();
    config.server.metrics_listen = "127.0.0.1:0".into();
    let app = spawn_with(config).await;
    let no_route = "The specified resource is not found: no such route.";
    assert_error(app.get("/metrics").await, 404, "NOT_FOUND", no_route).await;
    let metrics = app.metrics_address.clone().expect("a metrics listener");
    let scrape = app
        .client
        .get(format!("{metrics}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(scrape.status(), StatusCode::OK);
    let text = scrape.text().await.unwrap();
    assert_eq!(
        sample(&text, r#"camara_webrtc_sessions{status="Initial"}"#),
        1.0
    );
    let elsewhere = app
        .client
        .get(format!("{metrics}/webrtc/sessions/{FIXTURE_ID}"))
        .send();
    assert_error(elsewhere.await.unwrap(), 404, "NOT_FOUND", no_route).await;
    // The public port still serves everything else.
    assert_eq!(app.get("/health/live").await.status(), StatusCode::OK);
}
