//! `/metrics` in Prometheus text: requests by route template, method and status, their latency as
//! a histogram, transitions by from/to, authentication failures by reason, and the sessions of this
//! instance's store by status. Labels are route templates and fixed names, never raw ids.

use std::fmt::Write;
use std::sync::{LazyLock, OnceLock, PoisonError, RwLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::Method;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::AppState;
use super::error::ApiError;
use crate::OwnKeysMap;
use crate::domain::SessionStatus;

const REQUESTS: &str = "camara_webrtc_http_requests_total";
const DURATION: &str = "camara_webrtc_http_request_duration_seconds";
const TRANSITIONS: &str = "camara_webrtc_session_transitions_total";
const AUTH_FAILURES: &str = "camara_webrtc_auth_failures_total";
const SESSIONS: &str = "camara_webrtc_sessions";

/// Latency buckets, in seconds: from 100 µs to 10 s (the default request timeout).
const BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5, 10.0,
];

/// The process-wide recorder, installed on first use. Every app in the process records into it
/// (one in production; many in the test binary).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(DURATION.into()), &BUCKETS)
            .expect("the buckets are not empty");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics will be empty");
        }
        handle
    })
}

/// The handles of one (route, method, status) series.
struct Series {
    requests: Counter,
    duration: Histogram,
}

/// Handles by route template, then by (method, status). The label sets are few and bounded (route
/// templates, [`method_label`], three-digit statuses), so each series is registered once and then
/// reused: a request does not build, hash and look up its label strings in the registry.
type SeriesCache = RwLock<OwnKeysMap<String, OwnKeysMap<(&'static str, u16), Series>>>;

/// The method as a label: the standard ones by name, any other as `other`, so a client cannot
/// create series at will.
pub fn method_label(method: &Method) -> &'static str {
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

/// Drains the recorded latencies into their histograms every few seconds, for as long as it runs.
/// The recorder keeps every recorded value until its histograms are drained; `/metrics` drains
/// them, but an instance nobody scrapes would otherwise grow by about 20 bytes a request.
pub async fn upkeep() {
    let mut every = tokio::time::interval(Duration::from_secs(5));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        every.tick().await;
        handle().run_upkeep();
    }
}

/// One finished request.
pub fn request(route: &str, method: &Method, status: u16, elapsed: Duration) {
    static CACHE: LazyLock<SeriesCache> = LazyLock::new(|| {
        handle(); // the recorder exists before the first handle is registered
        RwLock::default()
    });
    let method = method_label(method);
    let seconds = elapsed.as_secs_f64();
    let record = |series: &Series| {
        series.requests.increment(1);
        series.duration.record(seconds);
    };
    {
        let cache = CACHE.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(series) = cache.get(route).and_then(|m| m.get(&(method, status))) {
            return record(series);
        }
    }
    let mut cache = CACHE.write().unwrap_or_else(PoisonError::into_inner);
    let series = cache
        .entry(route.to_owned())
        .or_default()
        .entry((method, status))
        .or_insert_with(|| Series {
            requests: metrics::counter!(REQUESTS, "route" => route.to_owned(), "method" => method, "status" => status.to_string()),
            duration: metrics::histogram!(DURATION, "route" => route.to_owned(), "method" => method),
        });
    record(series);
}

/// One status change a client made (`from` is `None` for a new session).
pub fn transition(from: Option<SessionStatus>, to: SessionStatus) {
    // The (from, to) pairs are few and fixed: each counter is looked up once, then reused, so an
    // update does not build and hash its label set every time.
    static COUNTERS: [[OnceLock<Counter>; 15]; 16] =
        [const { [const { OnceLock::new() }; 15] }; 16];
    let index = |s: SessionStatus| SessionStatus::ALL.iter().position(|x| *x == s);
    let row = from.and_then(index).map_or(15, |i| i);
    let Some(column) = index(to) else {
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

/// The recorded metrics, then this instance's sessions by status (read from its store at scrape
/// time, every status listed).
pub async fn serve(State(state): State<AppState>) -> Result<Response, ApiError> {
    let counts = state.store.status_counts().await?;
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
    Ok(([(CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}
