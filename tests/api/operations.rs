//! What an operator relies on: `/metrics`, graceful shutdown, and the limits (timeout, body size,
//! concurrency, rate), all answered in CAMARA JSON.

use reqwest::StatusCode;

use crate::helpers::*;

async fn metrics(app: &TestApp) -> String {
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4"
    );
    response.text().await.unwrap()
}

/// The value of the sample line that starts with `series` (0 when absent).
fn sample(text: &str, series: &str) -> f64 {
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
    let refused = app
        .client
        .get(app.url(&format!("/webrtc/sessions/{FIXTURE_ID}")))
        .send()
        .await
        .unwrap();
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
