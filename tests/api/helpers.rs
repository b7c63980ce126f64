//! The test harness: the real app on 127.0.0.1:0, a client, tokens, and whole-body assertions.

use std::io::Write;
use std::path::PathBuf;

use axum::body::Bytes;
use camara_webrtc::auth::mint;
use camara_webrtc::config::Config;
use camara_webrtc::domain::{Session, SessionId, SessionStatus};
use camara_webrtc::{AppState, Application};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::client::{ContractClient, Sender, pieces};
use crate::contract::Mounts;

/// CAMARA's fixture session (embedded default config).
pub const FIXTURE_ID: &str = "0AEE1B58BAEEDA3EABA42B32EBB3DFE07E9CFF402EAF9EED8EF";
pub const ORIGINATOR: &str = "tel:+17085852753";
pub const RECEIVER: &str = "tel:+17085854000";
pub const WRITE: &str = "webrtc-call-handling:sessions:write";
pub const READ: &str = "webrtc-call-handling:sessions:read";
pub const READ_WRITE: &str =
    "webrtc-call-handling:sessions:read webrtc-call-handling:sessions:write";
/// Every scope of the call-handling API.
pub const ALL_SCOPES: &str = "webrtc-call-handling:sessions:create webrtc-call-handling:sessions:read webrtc-call-handling:sessions:write webrtc-call-handling:sessions:delete";
/// The two default base paths: the seed's and CAMARA's released one.
pub const BASES: [&str; 2] = ["/webrtc", "/webrtc-call-handling/v0.3"];
/// A clean SDP answer (the seed's Hold example), valid under both SDP policies.
pub const CLEAN_SDP: &str = "v=0\r\no=- 4576312012535546667 4 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 47510 RTP/SAVPF 102 113\r\nc=IN IP6 2001:e0:410:243a:a344:cee7:7b39:bb1e\r\na=ice-ufrag:47Nx\r\na=ice-pwd:ln3CttOSkObcQ7A0tYO1LXqy\r\na=rtpmap:102 AMR-WB/16000\r\na=rtpmap:113 telephone-event/16000\r\n";

pub struct TestApp {
    /// `http://127.0.0.1:<port>`
    pub address: String,
    /// `http://<server.metrics_listen>` with its real port, when `/metrics` has its own listener.
    pub metrics_address: Option<String>,
    /// Checks every response against the OpenAPI document (see `contract`).
    pub client: ContractClient,
    pub config: Config,
    /// The running app's own state, so tests can prepare and inspect sessions in its store.
    pub state: AppState,
    /// Dropped with the `TestApp`, which stops the app.
    _shutdown: oneshot::Sender<()>,
}

/// The app with the embedded default configuration.
pub async fn spawn_app() -> TestApp {
    spawn_with(Config::embedded()).await
}

/// The app with `config`, started as the binary starts it ([`Application`]) on an ephemeral
/// loopback port, serving until the `TestApp` is dropped.
pub async fn spawn_with(config: Config) -> TestApp {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind an ephemeral port");
    let app = Application::build(config, listener)
        .await
        .expect("the test config starts");
    let address = format!("http://{}", app.local_addr().unwrap());
    let metrics_address = app.metrics_addr().map(|a| format!("http://{a}"));
    let state = app.state().clone();
    let (shutdown, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        app.run_until_stopped(async {
            let _ = stopped.await;
        })
        .await
        .expect("the server runs");
    });
    TestApp {
        address,
        metrics_address,
        client: ContractClient::new(Mounts::of(&state.config)),
        config: Config::clone(&state.config),
        state,
        _shutdown: shutdown,
    }
}

impl TestApp {
    /// A valid HS256 token from the configured secret, as `camara-webrtc token` mints it.
    pub fn token(&self, sub: &str, scope: &str) -> String {
        mint(&self.config.auth, sub, scope, None, 3600).unwrap()
    }

    /// A token for the network's admin API (scope `camara-webrtc:network`).
    pub fn admin_token(&self) -> String {
        network_token(&self.config.auth)
    }

    /// A token of API consumer `client_id` (all scopes) acting for `sub`.
    pub fn app_token(&self, sub: &str, client_id: &str) -> String {
        mint(&self.config.auth, sub, ALL_SCOPES, Some(client_id), 3600).unwrap()
    }

    /// `POST {base}/sessions` with a JSON body and a registrationId.
    pub async fn create(&self, base: &str, body: &Value, token: &str) -> Response {
        self.client
            .post(self.url(&format!("{base}/sessions")))
            .bearer_auth(token)
            .header("registrationId", "a4b1c2d3-0000-4000-8000-000000000001")
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// `DELETE {base}/sessions/{id}`.
    pub async fn delete(&self, base: &str, id: &str, token: &str) -> Response {
        self.client
            .delete(self.url(&format!("{base}/sessions/{id}")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// What the store holds under `id`, ended sessions included.
    pub async fn stored(&self, id: &str) -> Option<Session> {
        let id = SessionId::parse(id).unwrap();
        self.state
            .store
            .get(&id)
            .await
            .unwrap()
            .map(|v| Session::clone(&v.session))
    }

    /// A 3-legged read/write token for the fixture's receiver.
    pub fn receiver_token(&self) -> String {
        self.token(RECEIVER, READ_WRITE)
    }

    /// `GET path` without credentials.
    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub fn status_url(&self, base: &str, id: &str) -> String {
        self.url(&format!("{base}/sessions/{id}/status"))
    }

    /// PUT a raw JSON body to a session's status, `Content-Type: application/json`.
    pub async fn put_status(&self, id: &str, body: &str, token: &str) -> Response {
        self.client
            .put(self.status_url("/webrtc", id))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
    }

    pub async fn get_session(&self, id: &str, token: &str) -> Response {
        self.client
            .get(self.url(&format!("/webrtc/sessions/{id}")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// Puts a session straight into the store (e.g. one owned by a given consumer).
    pub async fn insert(&self, session: Session) {
        self.state.store.insert(session).await.unwrap();
    }
}

/// A PUT whose body arrives in two parts: between them the request is in flight (the handler is
/// waiting for the rest of its body).
pub struct SlowPut {
    rest: Sender<Bytes>,
    response: tokio::task::JoinHandle<reqwest::Result<reqwest::Response>>,
}

const SLOW_BODY: &[u8] = br#"{"status":"Ringing"}"#;

impl SlowPut {
    pub async fn start(address: &str, token: &str) -> Self {
        Self::start_with(&ContractClient::embedded(), address, token).await
    }

    /// The same, sent by `client` (e.g. one speaking HTTP/2).
    pub async fn start_with(client: &ContractClient, address: &str, token: &str) -> Self {
        let (mut rest, body) = pieces(1);
        rest.send_data(Bytes::from_static(&SLOW_BODY[..5]))
            .await
            .unwrap();
        let request = client
            .put(format!("{address}/webrtc/sessions/{FIXTURE_ID}/status"))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body);
        let response = tokio::spawn(request.send());
        // Let the server read the head and start the request.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        Self { rest, response }
    }

    /// Sends the rest of the body; the response, checked against the contract.
    pub async fn finish(mut self) -> reqwest::Response {
        self.rest
            .send_data(Bytes::from_static(&SLOW_BODY[5..]))
            .await
            .unwrap();
        drop(self.rest);
        self.response.await.unwrap().unwrap()
    }
}

/// `run` with a shutdown trigger, on an ephemeral port: (address, trigger, the server's task).
pub async fn run_until_triggered(
    config: camara_webrtc::Config,
) -> (
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), camara_webrtc::StartError>>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let (trigger, triggered) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(camara_webrtc::run(config, listener, async {
        let _ = triggered.await;
    }));
    (address, trigger, server)
}

/// A session like the fixture, under `id`, in `status`, owned by `owner`.
pub fn session(id: &str, status: SessionStatus, owner: Option<&str>) -> Session {
    let mut session = Config::embedded().fixture_sessions().unwrap().remove(0);
    session.id = SessionId::parse(id).unwrap();
    session.status = status;
    session.owner = owner.map(Into::into);
    session
}

pub fn fixture_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(relative)
}

/// A file of the seed document, byte for byte.
pub fn seed(name: &str) -> String {
    std::fs::read_to_string(fixture_path(&format!("seed/{name}.json"))).unwrap()
}

/// Signs arbitrary claims with a private key from `tests/fixtures/keys`.
pub fn sign_with(alg: Algorithm, private_pem: &str, claims: &Value) -> String {
    sign_with_header(&Header::new(alg), private_pem, claims)
}

/// The private key `private_pem` of `tests/fixtures/keys`, for `alg`.
pub fn private_key(alg: Algorithm, private_pem: &str) -> EncodingKey {
    let pem = std::fs::read(fixture_path(&format!("keys/{private_pem}"))).unwrap();
    match alg {
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => EncodingKey::from_rsa_pem(&pem),
        Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(&pem),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(&pem),
        _ => Ok(EncodingKey::from_secret(&pem)),
    }
    .unwrap()
}

/// Signs arbitrary claims under `header` (its `alg`, `kid`, `crit`...) with a private key from
/// `tests/fixtures/keys`.
pub fn sign_with_header(header: &Header, private_pem: &str, claims: &Value) -> String {
    let key = private_key(header.alg, private_pem);
    jsonwebtoken::encode(header, claims, &key).unwrap()
}

/// Signs arbitrary claims with an HMAC secret.
pub fn sign_hmac(alg: Algorithm, secret: &[u8], claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, &EncodingKey::from_secret(secret)).unwrap()
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Claims of a valid 3-legged write token for the fixture's receiver.
pub fn receiver_claims() -> Value {
    json!({ "sub": RECEIVER, "scope": READ_WRITE, "exp": now() + 600 })
}

/// Asserts a CAMARA error: status, JSON content type, an x-correlator, and the whole body.
pub async fn assert_error(response: Response, status: u16, code: &str, message: &str) {
    assert_eq!(
        response.status(),
        StatusCode::from_u16(status).unwrap(),
        "status of {code}"
    );
    assert_eq!(response.headers()["content-type"], "application/json");
    assert!(
        response.headers().contains_key("x-correlator"),
        "x-correlator missing on {status}"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({ "status": status, "code": code, "message": message })
    );
}

/// Asserts CAMARA's 404 for a session that does not exist for the caller.
pub async fn assert_not_found(response: Response) {
    assert_error(
        response,
        404,
        "NOT_FOUND",
        "The specified resource is not found.",
    )
    .await;
}

/// Asserts CAMARA's 405 for a method the route does not serve.
pub async fn assert_method_not_allowed(response: Response) {
    assert_error(
        response,
        405,
        "METHOD_NOT_ALLOWED",
        "The requested method is not allowed/supported on the target resource.",
    )
    .await;
}

/// The version an answer's `ETag: "<n>"` carries.
pub fn etag_version(response: &Response) -> Option<u64> {
    let etag = response.headers().get("etag")?.to_str().ok()?;
    etag.trim_matches('"').parse().ok()
}

/// Asserts a 200 JSON response and returns its body.
pub async fn json_ok(response: Response) -> Value {
    json_with(response, StatusCode::OK).await
}

/// Asserts a JSON response with `expected` status and returns its body.
pub async fn json_with(response: Response, expected: StatusCode) -> Value {
    let status = response.status();
    let ct = response.headers().get("content-type").cloned();
    let text = response.text().await.unwrap();
    assert_eq!(status, expected, "{text}");
    assert_eq!(ct.unwrap(), "application/json");
    serde_json::from_str(&text).unwrap()
}

/// A test that cannot run here: without `{variable}=1` it says so loudly on stderr and the caller
/// returns (the test passes, skipped); with it, the test fails with the same words. CI
/// (`.ci/run`, the GitHub workflow) sets `REQUIRE_REDIS=1` and `REQUIRE_TOOLS=1`, so nothing it
/// runs can pass by skipping.
pub fn skip_unless_required(variable: &str, test: &str, why: &str, remedy: &str) {
    if std::env::var(variable).is_ok_and(|v| v == "1") {
        panic!("{test} cannot run: {why}, and {variable}=1 requires it. {remedy}");
    }
    // Straight to the process's stderr: libtest captures `eprintln!` of a passing test, which
    // would hide the skip.
    let _ = writeln!(
        std::io::stderr(),
        "\n!!! SKIPPED {test}: {why}. {remedy} (with {variable}=1 this fails) !!!\n"
    );
}

/// The test name for a CAMARA scenario tag of the API whose tags start with `prefix`:
/// `@webrtc_call_handling_createSession_400.1_no_request_body` is
/// `create_session_400_1_no_request_body`.
pub fn scenario_test_name(prefix: &str, tag: &str) -> String {
    let rest = tag
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("unexpected tag {tag}"));
    let mut name = String::new();
    for c in rest.chars() {
        match c {
            'A'..='Z' => {
                name.push('_');
                name.push(c.to_ascii_lowercase());
            }
            '.' => name.push('_'),
            _ => name.push(c),
        }
    }
    name
}

/// Asserts that each of the `count` scenario tags of the `.feature` files in the fixture folder
/// `dir` has its test (`async fn <name>()`) in `source`.
pub fn assert_every_scenario_has_a_test(dir: &str, prefix: &str, count: usize, source: &str) {
    let mut tags = Vec::new();
    for entry in std::fs::read_dir(fixture_path(dir)).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "feature") {
            let text = std::fs::read_to_string(&path).unwrap();
            tags.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|line| line.starts_with('@'))
                    .map(str::to_owned),
            );
        }
    }
    assert_eq!(tags.len(), count, "CAMARA's scenarios in {dir}");
    let missing: Vec<String> = tags
        .iter()
        .map(|tag| scenario_test_name(prefix, tag))
        .filter(|name| !source.contains(&format!("async fn {name}()")))
        .collect();
    assert!(missing.is_empty(), "scenarios without a test: {missing:?}");
}

/// The `x-correlator` CAMARA's scenarios send ("complies with the schema").
pub const SCENARIO_CORRELATOR: &str = "b4333c46-49c0-4f62-80d7-f0ef930f1c46";

/// How a CAMARA scenario sets the Authorization header.
#[derive(Clone, Copy)]
pub enum TokenKind {
    Valid,
    Absent,
    Expired,
    Invalid,
}

/// The 401s of CAMARA's scenarios: no header, an expired token, a badly signed one.
pub const NO_HEADER: (u16, &str, &str) = (
    401,
    "UNAUTHENTICATED",
    "Request not authenticated: the Authorization header is missing. A new authentication is required.",
);
pub const EXPIRED: (u16, &str, &str) = (
    401,
    "UNAUTHENTICATED",
    "Request not authenticated: the access token has expired. A new authentication is required.",
);
pub const INVALID: (u16, &str, &str) = (
    401,
    "UNAUTHENTICATED",
    "Request not authenticated: the access token's signature is invalid. A new authentication is required.",
);

/// The token `kind` asks for, of `sub` and API consumer `client_id` with `scope` (a valid or an
/// expired one from the configured key; an invalid one signed with another key; none).
pub fn scenario_token(
    app: &TestApp,
    kind: TokenKind,
    sub: &str,
    client_id: &str,
    scope: &str,
) -> Option<String> {
    let mint = |ttl| mint(&app.config.auth, sub, scope, Some(client_id), ttl).unwrap();
    match kind {
        TokenKind::Valid => Some(mint(3600)),
        TokenKind::Absent => None,
        TokenKind::Expired => Some(mint(-3600)),
        TokenKind::Invalid => Some(sign_hmac(
            Algorithm::HS256,
            b"not the configured secret",
            &json!({ "sub": sub, "scope": scope, "exp": now() + 600 }),
        )),
    }
}

/// A request as CAMARA's Backgrounds set it up: JSON content type, the scenario correlator,
/// `token` when there is one, `body` when there is one.
pub async fn send_scenario(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Response {
    let mut request = app
        .client
        .request(method, app.url(path))
        .header("content-type", "application/json")
        .header("x-correlator", SCENARIO_CORRELATOR);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

/// "the response header x-correlator has same value as the request header x-correlator"
pub fn assert_correlator_echoed(response: &Response) {
    assert_eq!(response.headers()["x-correlator"], SCENARIO_CORRELATOR);
}

/// A token for the network's admin API (scope `camara-webrtc:network`) of a service with `auth`.
pub fn network_token(auth: &camara_webrtc::config::AuthConfig) -> String {
    camara_webrtc::auth::mint(auth, "operator", "camara-webrtc:network", None, 3600).unwrap()
}
