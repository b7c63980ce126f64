//! Connections (DESIGN §13): the header-read and idle timeouts, `server.max_connections`, h2c
//! beside HTTP/1.1 on one port, and a shutdown that waits only for requests in flight.
//!
//! Raw sockets play the clients that misbehave; a hyper client connection, whose task ends when
//! the server closes it, plays the well-behaved keep-alive client. Every response read is checked
//! against the contract. Timeouts are configured short so each test ends by itself; outer
//! `tokio::time::timeout`s only guard against a hang.

use std::time::Duration;

use axum::body::Bytes;
use axum::http::{Method, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::client::{ContractClient, check};
use crate::helpers::*;

/// The guard against a hang: far longer than any timeout these tests configure.
const GUARD: Duration = Duration::from_secs(10);

/// The embedded config with these connection timeouts, in milliseconds.
fn with_timeouts(header_read_ms: u64, idle_ms: u64) -> camara_webrtc::Config {
    let mut config = camara_webrtc::Config::embedded();
    config.server.header_read_timeout_ms = header_read_ms;
    config.server.idle_timeout_ms = idle_ms;
    config
}

/// `host:port` of an `http://host:port` address.
fn authority(address: &str) -> &str {
    address.trim_start_matches("http://")
}

/// A raw socket to the app that has sent `bytes`.
async fn raw(address: &str, bytes: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(authority(address)).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    stream
}

/// Waits until the server closes `stream` without answering a byte.
async fn closed_without_an_answer(stream: &mut TcpStream) {
    let mut buf = [0u8; 512];
    let read = tokio::time::timeout(GUARD, stream.read(&mut buf))
        .await
        .expect("the server closes the connection");
    match read {
        Ok(0) => {}
        Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => {}
        Ok(n) => panic!(
            "the server answered: {:?}",
            String::from_utf8_lossy(&buf[..n])
        ),
        Err(err) => panic!("reading the socket: {err}"),
    }
}

/// A client connection the test drives: its sender, and the task that ends when the server
/// closes the connection.
struct ClientConnection {
    sender: Sender,
    closed: JoinHandle<hyper::Result<()>>,
}

enum Sender {
    Http1(http1::SendRequest<Empty<Bytes>>),
    Http2(http2::SendRequest<Empty<Bytes>>),
}

impl ClientConnection {
    /// A connection to `address` speaking `version` (HTTP/2: with prior knowledge).
    async fn open(address: &str, version: Version) -> Self {
        let io = TokioIo::new(TcpStream::connect(authority(address)).await.unwrap());
        let (sender, closed) = if version == Version::HTTP_2 {
            let (sender, connection) = http2::handshake(TokioExecutor::new(), io).await.unwrap();
            (Sender::Http2(sender), tokio::spawn(connection))
        } else {
            let (sender, connection) = http1::handshake(io).await.unwrap();
            (Sender::Http1(sender), tokio::spawn(connection))
        };
        Self { sender, closed }
    }

    /// `GET /health/live` on this connection, answered and checked.
    async fn live(&mut self, address: &str) {
        let (response, version) = match &mut self.sender {
            Sender::Http1(sender) => {
                sender.ready().await.unwrap();
                let request = live_request(address, Version::HTTP_11);
                (sender.send_request(request).await, Version::HTTP_11)
            }
            Sender::Http2(sender) => {
                sender.ready().await.unwrap();
                let request = live_request(address, Version::HTTP_2);
                (sender.send_request(request).await, Version::HTTP_2)
            }
        };
        assert_live(&read_whole(response.unwrap()).await, version);
    }

    /// Waits until the server has closed the connection, cleanly: over HTTP/1 between two
    /// exchanges, over HTTP/2 after a GOAWAY.
    async fn closed_by_server(self) {
        let closed = tokio::time::timeout(GUARD, self.closed)
            .await
            .expect("the server closes the connection")
            .unwrap();
        assert!(closed.is_ok(), "not closed cleanly: {closed:?}");
    }
}

/// `GET /health/live` as `version` requires it, with an `x-correlator`.
fn live_request(address: &str, version: Version) -> Request<Empty<Bytes>> {
    let request = match version {
        // HTTP/2 carries the scheme and authority as pseudo-headers, taken from the URI.
        Version::HTTP_2 => Request::get(format!("{address}/health/live")),
        _ => Request::get("/health/live").header("host", authority(address)),
    };
    request
        .version(version)
        .header("x-correlator", "connections-test")
        .body(Empty::new())
        .unwrap()
}

/// Checks a response read whole against the contract as the answer to `GET /health/live`, and
/// asserts it is the liveness answer.
fn assert_live(read: &Response<Bytes>, version: Version) {
    let mounts = crate::contract::Mounts::embedded();
    let sent = "connections-test".parse().unwrap();
    check(&mounts, &Method::GET, "/health/live", Some(&sent), read);
    assert_eq!(read.status(), StatusCode::OK);
    assert_eq!(read.version(), version);
    assert_eq!(read.headers()["content-type"], "application/json");
    assert_eq!(read.headers()["x-correlator"], "connections-test");
    let body: Value = serde_json::from_slice(read.body()).unwrap();
    assert_eq!(body, json!({ "status": "UP" }));
}

/// Reads a hyper client's response whole.
async fn read_whole(response: Response<hyper::body::Incoming>) -> Response<Bytes> {
    let (parts, body) = response.into_parts();
    Response::from_parts(parts, body.collect().await.unwrap().to_bytes())
}

/// Reads one HTTP/1.1 response from a raw socket: its head, and a body of `Content-Length`.
async fn read_raw_response(stream: &mut TcpStream) -> Response<Bytes> {
    let mut read = Vec::new();
    loop {
        if let Some(end) = read.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&read[..end]).unwrap();
            let mut lines = head.split("\r\n");
            let status = lines.next().unwrap().strip_prefix("HTTP/1.1 ").unwrap();
            let mut response = Response::builder()
                .version(Version::HTTP_11)
                .status(&status[..3]);
            let mut length = 0;
            for line in lines {
                let (name, value) = line.split_once(": ").unwrap();
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.parse().unwrap();
                }
                response = response.header(name, value);
            }
            if read.len() >= end + 4 + length {
                let body = Bytes::copy_from_slice(&read[end + 4..end + 4 + length]);
                return response.body(body).unwrap();
            }
        }
        let mut buf = [0u8; 1024];
        let n = tokio::time::timeout(GUARD, stream.read(&mut buf))
            .await
            .expect("the server answers")
            .unwrap();
        assert_ne!(n, 0, "closed before the answer ended");
        read.extend_from_slice(&buf[..n]);
    }
}

/// `GET /health/live` through the app's own client (a new or pooled HTTP/1.1 connection).
async fn assert_served(app: &TestApp) {
    assert_eq!(
        json_ok(app.get("/health/live").await).await,
        json!({ "status": "UP" })
    );
}

#[tokio::test]
async fn connections_that_stop_before_their_head_ends_are_closed_after_the_header_read_timeout() {
    let app = spawn_with(with_timeouts(300, 60_000)).await;
    let mut stalled = [
        // Connected, and silent.
        raw(&app.address, b"").await,
        // Half an HTTP/1 head.
        raw(
            &app.address,
            b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Part",
        )
        .await,
        // Half the HTTP/2 preface: not yet known to be HTTP/2 or HTTP/1.
        raw(&app.address, b"PRI * HTTP/2.0\r\n").await,
    ];
    // Others are served meanwhile...
    assert_served(&app).await;
    for stream in &mut stalled {
        closed_without_an_answer(stream).await;
    }
    // ...and afterwards.
    assert_served(&app).await;
}

#[tokio::test]
async fn a_keep_alive_connection_that_stalls_in_its_next_head_is_closed_after_the_header_read_timeout()
 {
    let app = spawn_with(with_timeouts(300, 60_000)).await;
    let mut stream = raw(
        &app.address,
        b"GET /health/live HTTP/1.1\r\nHost: x\r\nx-correlator: connections-test\r\n\r\n",
    )
    .await;
    assert_live(&read_raw_response(&mut stream).await, Version::HTTP_11);
    // The next request starts, and stalls: the header-read timeout applies, not the idle one.
    stream
        .write_all(b"GET /health/live HTTP/1.1\r\nHo")
        .await
        .unwrap();
    closed_without_an_answer(&mut stream).await;
}

#[tokio::test]
async fn an_idle_http1_keep_alive_connection_is_closed_after_the_idle_timeout() {
    // The idle timeout is far longer than the header-read one: waiting for the next request is
    // not reading a head.
    let app = spawn_with(with_timeouts(200, 3_000)).await;
    let mut connection = ClientConnection::open(&app.address, Version::HTTP_11).await;
    connection.live(&app.address).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        !connection.closed.is_finished(),
        "closed by the header-read timeout while idle"
    );
    connection.live(&app.address).await;
    connection.closed_by_server().await;
}

#[tokio::test]
async fn an_idle_http2_connection_is_closed_after_the_idle_timeout() {
    let app = spawn_with(with_timeouts(200, 1_000)).await;
    let mut connection = ClientConnection::open(&app.address, Version::HTTP_2).await;
    connection.live(&app.address).await;
    connection.live(&app.address).await;
    connection.closed_by_server().await;
}

/// A request head may be 32 KiB (a connection still sending its head holds no more): one of 24 KiB
/// is served, one of 40 KiB is refused by hyper with an empty 431 and the connection closed.
#[tokio::test]
async fn a_request_head_beyond_32_kib_is_refused_with_431() {
    let app = spawn_app().await;
    let head = |filler: usize| {
        format!(
            "GET /health/live HTTP/1.1\r\nHost: x\r\nX-Filler: {}\r\nConnection: close\r\n\r\n",
            "a".repeat(filler)
        )
    };
    let mut fits = raw(&app.address, head(24 * 1024).as_bytes()).await;
    let served = read_raw_response(&mut fits).await;
    assert_eq!(served.status(), StatusCode::OK);
    assert_eq!(served.body().as_ref(), br#"{"status":"UP"}"#);
    let mut too_large = raw(&app.address, head(40 * 1024).as_bytes()).await;
    let refused = read_raw_response(&mut too_large).await;
    assert_eq!(
        refused.status(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
    assert_eq!(refused.headers()["content-length"], "0");
    assert_eq!(refused.headers()["connection"], "close");
    assert!(refused.body().is_empty());
    closed_without_an_answer(&mut too_large).await;
}

/// A response hyper has taken is not cut short by a stop: an HTTP/2 client that grants a window of
/// 16 KiB asks for a session of half a megabyte (which hyper takes whole into its send buffer),
/// reads the head, and the server is stopped; what it reads afterwards, window by window, is the
/// whole body.
#[tokio::test]
async fn a_stop_does_not_cut_short_a_response_still_being_sent() {
    use camara_webrtc::domain::sdp::MAX_SDP_CHARS;
    let config = camara_webrtc::Config::embedded();
    let token = camara_webrtc::auth::mint(&config.auth, RECEIVER, READ_WRITE, None, 600).unwrap();
    let (address, trigger, server) = run_until_triggered(config).await;
    let sdp = format!("v=0{}", "\u{1F600}".repeat(MAX_SDP_CHARS - 3));
    let put = reqwest::Client::new()
        .put(format!("{address}/webrtc/sessions/{FIXTURE_ID}/status"))
        .bearer_auth(&token)
        .json(&json!({ "status": "Connected", "offer": { "sdp": sdp }, "answer": { "sdp": sdp } }))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let io = TokioIo::new(TcpStream::connect(authority(&address)).await.unwrap());
    let (mut sender, connection) = http2::Builder::new(TokioExecutor::new())
        .initial_stream_window_size(16 * 1024)
        .initial_connection_window_size(16 * 1024)
        .handshake(io)
        .await
        .unwrap();
    let closed = tokio::spawn(connection);
    let request = Request::get(format!("{address}/webrtc/sessions/{FIXTURE_ID}"))
        .header("authorization", format!("Bearer {token}"))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = tokio::time::timeout(GUARD, sender.send_request(request))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    trigger.send(()).unwrap();
    // Long enough for a server that drops its connections at the stop to have done so.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let body = tokio::time::timeout(GUARD, response.into_body().collect())
        .await
        .expect("the body arrives")
        .expect("the body arrives whole")
        .to_bytes();
    let session: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(session["answer"]["sdp"], sdp.as_str());
    assert_eq!(session["offer"]["sdp"], sdp.as_str());
    tokio::time::timeout(GUARD, server)
        .await
        .expect("run returns once the response is sent")
        .unwrap()
        .unwrap();
    tokio::time::timeout(GUARD, closed)
        .await
        .expect("the server closes the connection")
        .unwrap()
        .unwrap();
}

/// An HTTP/2 connection whose client grants no flow-control window (SETTINGS_INITIAL_WINDOW_SIZE
/// 0), with `GET /health/live` sent on it: the server can send the response's headers but never
/// its body. Returns the response (its head only) and the connection's task.
async fn stalled_http2(address: &str) -> (Response<hyper::body::Incoming>, ClientConnection) {
    let io = TokioIo::new(TcpStream::connect(authority(address)).await.unwrap());
    let (mut sender, connection) = http2::Builder::new(TokioExecutor::new())
        .initial_stream_window_size(0)
        .handshake(io)
        .await
        .unwrap();
    let closed = tokio::spawn(connection);
    sender.ready().await.unwrap();
    let response = tokio::time::timeout(
        GUARD,
        sender.send_request(live_request(address, Version::HTTP_2)),
    )
    .await
    .expect("the response's head needs no window")
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let connection = ClientConnection {
        sender: Sender::Http2(sender),
        closed,
    };
    (response, connection)
}

/// Waits until the server has closed a connection whose response was never taken whole: its body
/// fails, and the connection's task ends.
async fn closed_mid_response(
    response: Response<hyper::body::Incoming>,
    connection: ClientConnection,
) {
    let body = tokio::time::timeout(GUARD, response.into_body().collect())
        .await
        .expect("the server closes the connection");
    assert!(
        body.is_err(),
        "the body arrived although no window was granted"
    );
    tokio::time::timeout(GUARD, connection.closed)
        .await
        .expect("the connection's task ends")
        .unwrap()
        .ok();
}

/// Triggers the shutdown and waits for `run` to return, far sooner than its grace period.
async fn stopped_before_the_grace_period(
    trigger: tokio::sync::oneshot::Sender<()>,
    server: JoinHandle<Result<(), camara_webrtc::StartError>>,
) {
    trigger.send(()).unwrap();
    tokio::time::timeout(GUARD, server)
        .await
        .expect("run returns without waiting for the grace period")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_client_that_takes_no_response_is_closed_after_the_idle_timeout() {
    let app = spawn_with(with_timeouts(200, 1_000)).await;
    let (response, stalled) = stalled_http2(&app.address).await;
    closed_mid_response(response, stalled).await;
    assert_served(&app).await;
}

#[tokio::test]
async fn a_client_that_takes_no_response_does_not_hold_shutdown() {
    // The grace period (30 s) is far beyond the guard; the idle timeout is not.
    let config = with_timeouts(200, 1_000);
    let (address, trigger, server) = run_until_triggered(config).await;
    let (response, stalled) = stalled_http2(&address).await;
    stopped_before_the_grace_period(trigger, server).await;
    closed_mid_response(response, stalled).await;
}

#[tokio::test]
async fn beyond_max_connections_a_connection_waits_in_the_backlog_until_one_closes() {
    let mut config = camara_webrtc::Config::embedded();
    config.server.max_connections = 2;
    let app = spawn_with(config).await;
    let mut open = Vec::new();
    for _ in 0..2 {
        let mut connection = ClientConnection::open(&app.address, Version::HTTP_11).await;
        connection.live(&app.address).await;
        open.push(connection);
    }
    // The third connects (the kernel completes it) but is not served...
    let mut third = ClientConnection::open(&app.address, Version::HTTP_11).await;
    let address = app.address.clone();
    let mut waiting = tokio::spawn(async move {
        third.live(&address).await;
        third
    });
    assert!(
        tokio::time::timeout(Duration::from_millis(500), &mut waiting)
            .await
            .is_err(),
        "a connection beyond max_connections was served"
    );
    // ...until one of the two closes.
    drop(open.remove(0));
    tokio::time::timeout(GUARD, waiting)
        .await
        .expect("served once a connection closed")
        .unwrap();
}

#[tokio::test]
async fn http2_prior_knowledge_and_http1_are_served_on_one_port() {
    let app = spawn_app().await;
    let token = app.receiver_token();
    let h2c = ContractClient::h2c(crate::contract::Mounts::of(&app.config));
    let url = app.url(&format!("/webrtc/sessions/{FIXTURE_ID}"));
    let response = h2c.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(response.version(), Version::HTTP_2);
    let session = json_ok(response).await;
    assert_eq!(session["mediaSessionId"], FIXTURE_ID);
    assert_eq!(session["status"], "Initial");
    let response = h2c
        .put(app.status_url("/webrtc", FIXTURE_ID))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(r#"{"status":"Ringing"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), Version::HTTP_2);
    assert_eq!(json_ok(response).await["status"], "Ringing");
    // A CAMARA error over HTTP/2 is the same JSON, with the same challenge.
    let refused = h2c.get(&url).send().await.unwrap();
    assert_eq!(refused.version(), Version::HTTP_2);
    assert_eq!(
        refused.headers()["www-authenticate"],
        "Bearer realm=\"camara-webrtc\", error=\"invalid_token\", error_description=\"the Authorization header is missing\""
    );
    assert_error(
        refused,
        401,
        "UNAUTHENTICATED",
        "Request not authenticated: the Authorization header is missing. A new authentication is required.",
    )
    .await;
    // HTTP/1.1 on the same port.
    let response = app.get_session(FIXTURE_ID, &token).await;
    assert_eq!(response.version(), Version::HTTP_11);
    assert_eq!(json_ok(response).await["status"], "Ringing");
}

#[tokio::test]
async fn many_slow_header_connections_do_not_hold_shutdown() {
    // Neither timeout would close them within the guard, nor would the grace period end.
    let config = with_timeouts(60_000, 60_000);
    assert_eq!(config.server.shutdown_grace_seconds, 30);
    let (address, trigger, server) = run_until_triggered(config).await;
    let mut slow = Vec::new();
    for i in 0..50 {
        let head = format!("GET /health/live HTTP/1.1\r\nHost: x\r\nX-Slow-{i}: ");
        slow.push(raw(&address, head.as_bytes()).await);
    }
    let mut idle = ClientConnection::open(&address, Version::HTTP_11).await;
    idle.live(&address).await;
    stopped_before_the_grace_period(trigger, server).await;
    for stream in &mut slow {
        closed_without_an_answer(stream).await;
    }
    idle.closed_by_server().await;
}

#[tokio::test]
async fn on_shutdown_only_requests_in_flight_are_waited_for_over_http1_and_http2() {
    let config = with_timeouts(60_000, 60_000);
    let token = camara_webrtc::auth::mint(&config.auth, RECEIVER, WRITE, None, 600).unwrap();
    let mounts = crate::contract::Mounts::of(&config);
    let (address, trigger, server) = run_until_triggered(config).await;
    let over_http1 = SlowPut::start(&address, &token).await;
    let over_http2 = SlowPut::start_with(&ContractClient::h2c(mounts), &address, &token).await;
    let mut slow_head = raw(&address, b"PUT /webrtc/sessions/x/status HTTP/1.1\r\n").await;
    let mut idle = ClientConnection::open(&address, Version::HTTP_2).await;
    idle.live(&address).await;
    trigger.send(()).unwrap();
    // The connections with nothing in flight close at once, while the requests go on.
    closed_without_an_answer(&mut slow_head).await;
    idle.closed_by_server().await;
    assert!(
        !server.is_finished(),
        "run returned with requests in flight"
    );
    for slow in [over_http1, over_http2] {
        assert_eq!(json_ok(slow.finish().await).await["status"], "Ringing");
    }
    tokio::time::timeout(GUARD, server)
        .await
        .expect("run returns once its requests in flight have finished")
        .unwrap()
        .unwrap();
}
