//! A real browser calls the API from another origin: headless Chromium loads a page from a small
//! server of the test's own (`tests/fixtures/browser/cors.html`), whose script drives a call
//! through the app with `fetch` and posts what it could read back to its own origin. Chromium
//! enforces CORS itself, so this proves the preflights, the allowed origin and the exposed
//! headers are what a browser needs. Chromium must be installed (`.ci/run` installs it); without
//! it the test fails.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Html;
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::helpers::*;

/// A hang guard only: the page posts its results as soon as its calls are answered.
const HANG_GUARD: Duration = Duration::from_secs(120);

/// The `chromium` on PATH (Debian's package installs `/usr/bin/chromium`); `None` (the test
/// `test` skips, or fails under `REQUIRE_TOOLS=1`) without one.
pub fn chromium(test: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("chromium"))
            .find(|path| path.is_file())
    });
    if found.is_none() {
        skip_unless_required(
            "REQUIRE_TOOLS",
            test,
            "chromium is not installed, and this test needs a real browser",
            "Install it with `apt-get install chromium` (Debian), or run .ci/run, which does.",
        );
    }
    found
}

/// Headless Chromium showing one URL, with a fresh profile; stopped and its profile removed
/// when dropped, also when the test fails.
struct Browser {
    child: Child,
    profile: PathBuf,
}

impl Browser {
    /// Opens `http://{page}/`; the profile's name is unique to this process and page.
    fn open(chromium: &Path, page: SocketAddr) -> Self {
        let profile = std::env::temp_dir().join(format!(
            "camara-webrtc-chromium-{}-{}",
            std::process::id(),
            page.port()
        ));
        std::fs::create_dir_all(&profile).unwrap();
        let log = std::fs::File::create(profile.join("chromium.log")).unwrap();
        let child = Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(format!("http://{page}/"))
            // Chromium's temporary files (its singleton socket) go with the profile.
            .env("TMPDIR", &profile)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("chromium starts");
        Self { child, profile }
    }

    /// What Chromium wrote to stderr, for a failure's message.
    fn log(&self) -> String {
        std::fs::read_to_string(self.profile.join("chromium.log")).unwrap_or_default()
    }
}

impl Drop for Browser {
    /// SIGTERM, which lets Chromium end its helper processes too; SIGKILL if it is still running
    /// after ten seconds.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        for _ in 0..100 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// The page's own origin: `GET /` answers `page`, `POST /results` hands the JSON posted to
/// the returned receiver.
async fn serve_page(listener: TcpListener, page: String) -> mpsc::Receiver<Value> {
    let (results, received) = mpsc::channel::<Value>(1);
    let app = Router::new()
        .route("/", get(move || async move { Html(page) }))
        .route(
            "/results",
            post(
                |State(results): State<mpsc::Sender<Value>>,
                 axum::Json(posted): axum::Json<Value>| async move {
                    let _ = results.send(posted).await;
                    StatusCode::NO_CONTENT
                },
            ),
        )
        .with_state(results);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    received
}

/// What the page `fixture` (its `{{CONFIG}}` replaced by `config`), opened in Chromium from
/// `listener`'s origin, posts to its `/results`.
async fn results_of(
    chromium: &Path,
    listener: TcpListener,
    fixture: &str,
    config: &Value,
) -> Value {
    let address = listener.local_addr().unwrap();
    let page = std::fs::read_to_string(fixture_path(fixture))
        .unwrap()
        .replace("{{CONFIG}}", &config.to_string());
    let mut results = serve_page(listener, page).await;
    let browser = Browser::open(chromium, address);
    match tokio::time::timeout(HANG_GUARD, results.recv()).await {
        Ok(Some(results)) => results,
        _ => panic!(
            "the page posted no results; Chromium's log:\n{}",
            browser.log()
        ),
    }
}

/// The session the page reads, in `status`, with the SDPs it sent.
fn session(id: &str, status: &str, answer: Option<&str>) -> Value {
    let mut session = json!({
        "mediaSessionId": id,
        "originatorAddress": ORIGINATOR,
        "receiverAddress": RECEIVER,
        "status": status,
        "offer": { "sdp": CLEAN_SDP },
        "callType": "REGULAR"
    });
    if let Some(answer) = answer {
        session["answer"] = json!({ "sdp": answer });
    }
    session
}

/// What the page read of one answer.
fn read(
    status: u16,
    correlator: &str,
    etag: Option<u64>,
    location: Option<&str>,
    body: Value,
) -> Value {
    json!({
        "status": status,
        "correlator": correlator,
        "etag": etag.map(|version| format!("\"{version}\"")),
        "location": location,
        "body": body,
    })
}

#[tokio::test]
async fn a_page_on_another_origin_drives_a_call_with_fetch() {
    let Some(chromium) = chromium("a_page_on_another_origin_drives_a_call_with_fetch") else {
        return;
    };
    let page_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let page_address = page_listener.local_addr().unwrap();
    let page_origin = format!("http://{page_address}");
    let mut config = camara_webrtc::config::Config::embedded();
    config.server.cors_allowed_origins = vec![page_origin];
    let app = spawn_with(config).await;
    let config = json!({
        "api": app.address,
        "caller": app.app_token(ORIGINATOR, "browser-app"),
        "receiver": app.app_token(RECEIVER, "browser-app"),
        "create": {
            "originatorAddress": ORIGINATOR,
            "receiverAddress": RECEIVER,
            "offer": { "sdp": CLEAN_SDP }
        },
        "answerSdp": CLEAN_SDP,
    });
    let results = results_of(&chromium, page_listener, "browser/cors.html", &config).await;

    let id = results["created"]["body"]["mediaSessionId"]
        .as_str()
        .unwrap_or_else(|| panic!("no session was created: {results:#}"));
    let location = format!("/webrtc/sessions/{id}");
    assert_eq!(
        results,
        json!({
            "created": read(201, "create", Some(1), Some(&location), session(id, "Initial", None)),
            "ringing": read(200, "ringing", Some(2), None, session(id, "Ringing", None)),
            "connected": read(200, "connected", Some(3), None, session(id, "Connected", Some(CLEAN_SDP))),
            "read": read(200, "read", Some(3), None, session(id, "Connected", Some(CLEAN_SDP))),
            "unauthenticated": read(401, "unauthenticated", None, None, json!({
                "status": 401,
                "code": "UNAUTHENTICATED",
                "message": "Request not authenticated: the Authorization header is missing. A new authentication is required."
            })),
            "hangUp": read(204, "hang-up", None, None, Value::Null),
            "notAllowedHeader": "TypeError",
        })
    );
}

/// Chromium's own WebRTC stack accepts the answer the network generates for its offer: the page
/// makes an offer (audio, receive-only video, a data channel), places a call with it (the strict
/// SDP check on), the admin API answers it (Connected, no answer given), and
/// `setRemoteDescription` of that answer succeeds with the directions mirrored.
#[tokio::test]
async fn a_browser_accepts_the_answer_the_network_generates() {
    let Some(chromium) = chromium("a_browser_accepts_the_answer_the_network_generates") else {
        return;
    };
    let page_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let page_address = page_listener.local_addr().unwrap();
    let mut config = camara_webrtc::config::Config::embedded();
    config.server.cors_allowed_origins = vec![format!("http://{page_address}")];
    config.sdp.validation = camara_webrtc::domain::SdpPolicy::Strict;
    let app = spawn_with(config).await;
    let admin = app.admin_token();
    let config = json!({
        "api": app.address,
        "caller": app.app_token(ORIGINATOR, "browser-app"),
        "admin": admin,
        "originator": ORIGINATOR,
        "receiver": RECEIVER,
    });
    let results = results_of(&chromium, page_listener, "browser/answer.html", &config).await;
    assert_eq!(
        results,
        json!({
            "setRemoteDescription": "ok",
            "signalingState": "stable",
            "transceivers": ["sendrecv", "recvonly"],
        })
    );
}

/// Whether aiortc (PyPI) imports, skipping (or failing under `REQUIRE_TOOLS`) when it does not.
fn aiortc() -> bool {
    let found = std::process::Command::new("python3")
        .args(["-c", "import aiortc"])
        .output()
        .is_ok_and(|out| out.status.success());
    if !found {
        skip_unless_required(
            "REQUIRE_TOOLS",
            "aiortc_accepts_the_answer_the_network_generates",
            "aiortc (a Python WebRTC stack) is not installed",
            "Install it with `python3 -m pip install aiortc`, or run .ci/run, which does.",
        );
    }
    found
}

/// A second real WebRTC stack, aiortc (PyPI), accepts the answer the network generates for its
/// offer: its offer (audio, receive-only video, a data channel; several fingerprints, host
/// candidates) places a call under the strict SDP check, the admin API connects it without an
/// answer, and aiortc's `setRemoteDescription` of the generated answer succeeds.
#[tokio::test]
async fn aiortc_accepts_the_answer_the_network_generates() {
    use std::io::{BufRead, Write};
    if !aiortc() {
        return;
    }
    let mut config = camara_webrtc::config::Config::embedded();
    config.sdp.validation = camara_webrtc::domain::SdpPolicy::Strict;
    let app = spawn_with(config).await;
    let mut peer = Command::new("python3")
        .arg(fixture_path("aiortc/peer.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Its lines, read on a thread of their own: the test waits for each at most 30 s.
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = std::io::BufReader::new(peer.stdout.take().unwrap());
    std::thread::spawn(move || {
        stdout
            .lines()
            .map_while(Result::ok)
            .try_for_each(|l| tx.send(l))
    });
    let next = || -> Value {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("aiortc answers within 30 s");
        serde_json::from_str(&line).unwrap()
    };
    let offer = next()["offer"].as_str().unwrap().to_owned();
    let call = json!({
        "originatorAddress": ORIGINATOR, "receiverAddress": RECEIVER, "offer": { "sdp": offer }
    });
    let alice = app.app_token(ORIGINATOR, "aiortc-app");
    let created = json_with(
        app.create("/webrtc", &call, &alice).await,
        StatusCode::CREATED,
    )
    .await;
    let id = created["mediaSessionId"].as_str().unwrap();
    let admin = app.admin_token();
    let moved = (app
        .client
        .post(app.url(&format!("/network/v1/sessions/{id}/events"))))
    .bearer_auth(admin)
    .json(&json!({ "status": "Connected" }))
    .send()
    .await
    .unwrap();
    let answer = json_ok(moved).await["answer"]["sdp"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut stdin = peer.stdin.take().unwrap();
    writeln!(stdin, "{}", json!({ "answer": answer })).unwrap();
    let result = next();
    let _ = peer.kill();
    let _ = peer.wait();
    assert_eq!(result, json!({ "ok": true }), "{answer}");
}
