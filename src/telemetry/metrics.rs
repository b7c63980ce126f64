//! Metrics in Prometheus text: requests by route template, method and status, their latency as a
//! histogram, session transitions by from/to, authentication failures by reason, registrations
//! ended by reason, event deliveries by type and outcome (with their latency and the retries
//! waiting), and the sessions
//! of this instance's store by status. Labels are route templates and fixed names, never raw ids.

use std::fmt::Write;
use std::sync::OnceLock;
use std::time::Duration;

use axum::http::Method;
use metrics::Counter;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::domain::SessionStatus;

const REQUESTS: &str = "camara_webrtc_http_requests_total";
const DURATION: &str = "camara_webrtc_http_request_duration_seconds";
const TRANSITIONS: &str = "camara_webrtc_session_transitions_total";
const AUTH_FAILURES: &str = "camara_webrtc_auth_failures_total";
const SESSIONS: &str = "camara_webrtc_sessions";
const REGISTRATIONS_ENDED: &str = "camara_webrtc_registrations_ended_total";
const DELIVERIES: &str = "camara_webrtc_event_deliveries_total";
const DELIVERY_DURATION: &str = "camara_webrtc_event_delivery_duration_seconds";
const RETRIES_WAITING: &str = "camara_webrtc_event_retries_waiting";
const SUBSCRIPTIONS: &str = "camara_webrtc_subscriptions";
const SUBSCRIPTIONS_ENDED: &str = "camara_webrtc_subscriptions_ended_total";
const TIMERS_FIRED: &str = "camara_webrtc_timers_fired_total";
const TIMER_LATENESS: &str = "camara_webrtc_timer_lateness_seconds";
const STREAMS_DROPPED: &str = "camara_webrtc_streams_dropped_total";
const FEED_RECORDS_LOST: &str = "camara_webrtc_feed_records_lost_total";

/// Latency buckets, in seconds: from 100 µs to 10 s (the default request timeout).
const BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5, 10.0,
];

/// Timer lateness buckets, in seconds: from 1 ms to a minute (a claim taken over after its
/// lease is late by `events.claim_idle_ms`).
const LATENESS_BUCKETS: [f64; 16] = [
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0,
];

/// The process-wide recorder, installed on first use. Every app in the process records into it
/// (one in production; many in the test binary).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(DURATION.into()), &BUCKETS)
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Full(DELIVERY_DURATION.into()), &BUCKETS)
            })
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Full(TIMER_LATENESS.into()), &LATENESS_BUCKETS)
            })
            .expect("the buckets are not empty");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics will be empty");
        }
        handle
    })
}

/// The method as a label: the standard ones by name, any other as `other`, so a client cannot
/// create series at will.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

/// Drains the recorded latencies into their histograms every few seconds, for as long as it runs,
/// so an instance nobody scrapes does not keep every recorded value.
pub async fn upkeep() {
    let mut every = tokio::time::interval(Duration::from_secs(5));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        every.tick().await;
        handle().run_upkeep();
    }
}

/// One finished request; `route` is its route template (or `<unmatched>`).
pub fn request(route: &str, method: &Method, status: u16, elapsed: Duration) {
    let method = method_label(method);
    metrics::counter!(REQUESTS, "route" => route.to_owned(), "method" => method, "status" => status.to_string())
        .increment(1);
    metrics::histogram!(DURATION, "route" => route.to_owned(), "method" => method)
        .record(elapsed.as_secs_f64());
}

/// One status change (`from` is `None` for a new session). Each (from, to) counter is registered
/// once and its handle kept, as the metrics crate recommends for hot paths.
pub fn transition(from: Option<SessionStatus>, to: SessionStatus) {
    const STATUSES: usize = SessionStatus::ALL.len();
    static COUNTERS: [[OnceLock<Counter>; STATUSES]; STATUSES + 1] =
        [const { [const { OnceLock::new() }; STATUSES] }; STATUSES + 1];
    let index = |status: SessionStatus| SessionStatus::ALL.iter().position(|s| *s == status);
    let (Some(row), Some(column)) = (from.map_or(Some(STATUSES), index), index(to)) else {
        return;
    };
    COUNTERS[row][column]
        .get_or_init(|| {
            let from = from.map_or("none", SessionStatus::as_str);
            metrics::counter!(TRANSITIONS, "from" => from, "to" => to.as_str())
        })
        .increment(1);
}

/// One refused token, by [`crate::auth::AuthError::reason`].
pub fn auth_failure(reason: &'static str) {
    metrics::counter!(AUTH_FAILURES, "reason" => reason).increment(1);
}

/// One of the network's timers fired (`step`, `no_answer`), `late_ms` after it was due: every
/// firing is counted, so a timer fired twice (its claim's lease ran out) counts twice.
pub fn timer_fired(kind: &'static str, late_ms: u64) {
    metrics::counter!(TIMERS_FIRED, "kind" => kind).increment(1);
    #[allow(clippy::cast_precision_loss)]
    metrics::histogram!(TIMER_LATENESS, "kind" => kind).record(late_ms as f64 / 1000.0);
}

/// One follower of `GET /network/v1/stream` dropped: it read too slowly.
pub fn stream_dropped() {
    metrics::counter!(STREAMS_DROPPED).increment(1);
}

/// Console feed records that never reached Redis (the relay's queue was full, or PUBLISH
/// failed): other replicas' consoles did not see them.
pub fn feed_records_lost(count: u64) {
    metrics::counter!(FEED_RECORDS_LOST).increment(count);
}

/// One registration ended, by reason (`REGISTRATION_EXPIRED`, `DELETED`).
pub fn registration_ended(reason: &'static str) {
    metrics::counter!(REGISTRATIONS_ENDED, "reason" => reason).increment(1);
}

/// One subscription ended, by its status's reason (`SUBSCRIPTION_DELETED`, `SINK_GONE`…),
/// counted by the replica that makes its `subscription-ended`.
pub fn subscription_ended(reason: crate::domain::SubscriptionEnd) {
    let reason = match reason {
        crate::domain::SubscriptionEnd::SubscriptionExpired => "SUBSCRIPTION_EXPIRED",
        crate::domain::SubscriptionEnd::SubscriptionDeleted => "SUBSCRIPTION_DELETED",
        crate::domain::SubscriptionEnd::MaxEventsReached => "MAX_EVENTS_REACHED",
        crate::domain::SubscriptionEnd::AccessTokenExpired => "ACCESS_TOKEN_EXPIRED",
        crate::domain::SubscriptionEnd::NetworkTerminated => "NETWORK_TERMINATED",
        crate::domain::SubscriptionEnd::SinkGone => "SINK_GONE",
    };
    metrics::counter!(SUBSCRIPTIONS_ENDED, "reason" => reason).increment(1);
}

/// One delivery attempt of an event of type `kind` (`session-status`) and how it ended:
/// `delivered`, `retrying` (refused, timed out or unreachable: tried again), `dropped` (after
/// its last retry) or `gone` (410: the subscription ended), with how long the attempt took.
pub fn delivery(kind: &'static str, outcome: &'static str, took: Option<Duration>) {
    metrics::counter!(DELIVERIES, "type" => kind, "outcome" => outcome).increment(1);
    if let Some(took) = took {
        metrics::histogram!(DELIVERY_DURATION, "type" => kind).record(took.as_secs_f64());
    }
}

/// Events waiting for a retry, in this process: one more (`+1`) or one fewer (`-1`).
pub fn retries_waiting(change: f64) {
    metrics::gauge!(RETRIES_WAITING).increment(change);
}

/// The recorded metrics, then `counts` (this instance's sessions that have not ended, by status)
/// with every status listed, then the store's subscriptions that have not ended.
pub fn render(counts: &[(SessionStatus, u64)], subscriptions: u64) -> String {
    let handle = handle();
    handle.run_upkeep();
    let mut text = handle.render();
    let _ = writeln!(
        text,
        "# HELP {SESSIONS} Sessions that have not ended, by status.\n# TYPE {SESSIONS} gauge"
    );
    for status in SessionStatus::ALL {
        let n = counts
            .iter()
            .find(|(s, _)| *s == status)
            .map_or(0, |(_, n)| *n);
        let _ = writeln!(text, "{SESSIONS}{{status=\"{status}\"}} {n}");
    }
    let _ = writeln!(
        text,
        "# HELP {SUBSCRIPTIONS} Event subscriptions that have not ended, by status.\n# TYPE {SUBSCRIPTIONS} gauge\n{SUBSCRIPTIONS}{{status=\"ACTIVE\"}} {subscriptions}"
    );
    text
}
