//! Keys from an identity provider: a JWKS file, a real OpenID Connect provider
//! (oauth2-mock-server, run with Node from `tests/node`) found by discovery, `kid` selection,
//! rotation and retirement without a restart, failing closed past the max age, and the rule that
//! the development key is off as soon as a key source of the operator's own is configured.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use camara_webrtc::config::Config;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, Header};
use serde_json::{Value, json};

use crate::helpers::*;

/// The fixture session, read with `token`: the whole answer when it is 200.
async fn read_fixture(app: &TestApp, token: &str) -> reqwest::Response {
    app.get_session(FIXTURE_ID, token).await
}

fn unauthenticated(reason: &str) -> String {
    format!("Request not authenticated: {reason}. A new authentication is required.")
}

/// Reading the fixture with `token` is refused with 401 for `reason`.
async fn assert_refused(app: &TestApp, token: &str, reason: &str) {
    let response = read_fixture(app, token).await;
    assert_error(response, 401, "UNAUTHENTICATED", &unauthenticated(reason)).await;
}

/// Reads the fixture with `token` until it is refused with `reason` (the service acts on a
/// key change by itself, on its refresh schedule); fails after 20 s.
async fn until_refused(app: &TestApp, token: &str, reason: &str) {
    let wait = async {
        loop {
            let response = read_fixture(app, token).await;
            if response.status() == 401 {
                return response;
            }
            assert_eq!(response.status(), 200);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let refused = tokio::time::timeout(Duration::from_secs(20), wait)
        .await
        .expect("the token is refused once the keys change");
    assert_error(refused, 401, "UNAUTHENTICATED", &unauthenticated(reason)).await;
}

/// Reads the fixture with `token` until it is accepted (a key the service has not seen is taken
/// when the unknown kid reads the JWKS again, once the cooldown since the last read is over, or
/// at the next refresh); fails after 20 s. Until then it is refused as an unknown key.
async fn until_accepted(app: &TestApp, token: &str) {
    let wait = async {
        loop {
            let response = read_fixture(app, token).await;
            if response.status() == 200 {
                return response;
            }
            assert_error(
                response,
                401,
                "UNAUTHENTICATED",
                &unauthenticated("the access token's key is not known"),
            )
            .await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let accepted = tokio::time::timeout(Duration::from_secs(20), wait)
        .await
        .expect("the token is accepted once its key is read");
    assert_eq!(json_ok(accepted).await["mediaSessionId"], FIXTURE_ID);
}

/// A real identity provider: `tests/node/idp.mjs` (oauth2-mock-server 8) on 127.0.0.1.
struct Idp {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
    issuer: String,
}

impl Idp {
    /// The provider, or `None` (the test skips, or fails under `REQUIRE_TOOLS=1`) when its npm
    /// package is not installed.
    fn start(test: &str) -> Option<Self> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node");
        if !dir.join("node_modules/oauth2-mock-server").is_dir() {
            skip_unless_required(
                "REQUIRE_TOOLS",
                test,
                "the identity provider (oauth2-mock-server) is not installed",
                "Run `npm ci --prefix tests/node` (.ci/run does).",
            );
            return None;
        }
        let mut child = Command::new("node")
            .arg("idp.mjs")
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("node (Node.js 20) runs tests/node/idp.mjs");
        let input = child.stdin.take().unwrap();
        let mut output = BufReader::new(child.stdout.take().unwrap());
        let issuer = read_line(&mut output)["issuer"]
            .as_str()
            .unwrap()
            .to_owned();
        Some(Self {
            child,
            input,
            output,
            issuer,
        })
    }

    /// One command of `idp.mjs`, and its answer.
    fn command(&mut self, line: &str) -> Value {
        writeln!(self.input, "{line}").unwrap();
        self.input.flush().unwrap();
        let answer = read_line(&mut self.output);
        assert!(answer.get("error").is_none(), "{line}: {answer}");
        answer
    }

    /// A token signed with key `kid` ("-": the signing key) carrying `claims`.
    fn sign(&mut self, kid: &str, claims: &Value) -> String {
        self.command(&format!("sign {kid} {claims}"))["token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// A token from the provider's token endpoint (client credentials).
    async fn client_credentials(&self, client_id: &str, scope: &str) -> String {
        let body = format!(
            "grant_type=client_credentials&client_id={client_id}&scope={}",
            scope.replace(':', "%3A").replace(' ', "+")
        );
        let response = reqwest::Client::new()
            .post(format!("{}/token", self.issuer))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let answer: Value = response.json().await.unwrap();
        answer["access_token"].as_str().unwrap().to_owned()
    }
}

impl Idp {
    /// Stops the provider: its port refuses connections from now on.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        self.kill();
    }
}

fn read_line(output: &mut BufReader<ChildStdout>) -> Value {
    let mut line = String::new();
    output.read_line(&mut line).unwrap();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("idp.mjs said {line:?}: {e}"))
}

/// The embedded config with the identity provider found by OpenID discovery, read again every
/// `refresh` seconds, failing closed after `max_age`, with the shortest cooldown for unknown kids.
fn discovering(idp: &Idp, refresh: u64, max_age: u64) -> Config {
    let mut config = Config::embedded();
    config.auth.issuer = Some(idp.issuer.clone());
    config.auth.oidc_discovery = true;
    config.auth.jwks_refresh_seconds = refresh;
    config.auth.jwks_max_age_seconds = max_age;
    config.auth.jwks_cooldown_seconds = 1;
    config
}

fn claims(sub: &str, client_id: &str) -> Value {
    json!({ "sub": sub, "client_id": client_id, "scope": READ_WRITE })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_the_identity_provider_issues_is_accepted_and_the_development_key_is_off() {
    let Some(idp) = Idp::start(
        "a_token_the_identity_provider_issues_is_accepted_and_the_development_key_is_off",
    ) else {
        return;
    };
    let app = spawn_with(discovering(&idp, 600, 3600)).await;
    let token = idp
        .client_credentials("idp-app", "webrtc-call-handling:sessions:read")
        .await;
    let session = json_ok(read_fixture(&app, &token).await).await;
    assert_eq!(session["mediaSessionId"], FIXTURE_ID);
    assert_eq!(app.get("/health/ready").await.status(), 200);
    // The development key signs a token the embedded default would accept; with a key source of
    // the operator's own it is off.
    let development = sign_hmac(
        Algorithm::HS256,
        camara_webrtc::config::DEVELOPMENT_SECRET.as_bytes(),
        &receiver_claims(),
    );
    assert_refused(
        &app,
        &development,
        "the access token's algorithm is not accepted",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_key_is_accepted_and_a_retired_one_refused_without_a_restart() {
    let Some(mut idp) =
        Idp::start("a_rotated_key_is_accepted_and_a_retired_one_refused_without_a_restart")
    else {
        return;
    };
    let app = spawn_with(discovering(&idp, 1, 600)).await;
    let first = idp.command("rotate")["kid"].as_str().unwrap().to_owned();
    let old = idp.sign(&first, &claims(RECEIVER, "app"));
    until_accepted(&app, &old).await;
    // A key the service has not seen signs the next token: it is taken without a restart.
    let second = idp.command("rotate")["kid"].as_str().unwrap().to_owned();
    let new = idp.sign(&second, &claims(RECEIVER, "app"));
    until_accepted(&app, &new).await;
    // The first key leaves the JWKS: at the next refresh its token (cached until now) is refused.
    idp.command(&format!("retire {first}"));
    until_refused(&app, &old, "the access token's key is not known").await;
    json_ok(read_fixture(&app, &new).await).await;
}

/// Long before the next refresh, a token under a kid the service has not seen makes it read the
/// keys again (once the cooldown since the last read is over): a rotation at the provider is
/// followed at once, not after `jwks_refresh_seconds`.
#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_kid_reads_the_keys_again_before_the_refresh() {
    let Some(mut idp) = Idp::start("an_unknown_kid_reads_the_keys_again_before_the_refresh") else {
        return;
    };
    let app = spawn_with(discovering(&idp, 3600, 3600)).await;
    let kid = idp.command("rotate")["kid"].as_str().unwrap().to_owned();
    until_accepted(&app, &idp.sign(&kid, &claims(RECEIVER, "app"))).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_its_identity_provider_the_service_fails_closed_after_the_max_age() {
    let Some(mut idp) =
        Idp::start("without_its_identity_provider_the_service_fails_closed_after_the_max_age")
    else {
        return;
    };
    let app = spawn_with(discovering(&idp, 1, 2)).await;
    let token = idp.sign("-", &claims(RECEIVER, "app"));
    json_ok(read_fixture(&app, &token).await).await;
    // The provider goes away (killed, so nothing waits on the service's kept-alive JWKS
    // connection): the next reads of its JWKS fail.
    idp.kill();
    until_refused(
        &app,
        &token,
        "the access token cannot be verified: the signing keys are not available",
    )
    .await;
    assert_error(
        app.get("/health/ready").await,
        503,
        "UNAVAILABLE",
        "Service Unavailable: the JWKS has not been read (or is past its max age), so tokens cannot be verified.",
    )
    .await;
}

/// A JWKS file holding the public halves of the fixture keys `(kid, alg, private PEM)`.
fn write_jwks(path: &Path, keys: &[(&str, Algorithm, &str)]) {
    let keys = keys
        .iter()
        .map(|(kid, alg, pem)| {
            let mut jwk = Jwk::from_encoding_key(&private_key(*alg, pem), *alg).unwrap();
            jwk.common.key_id = Some((*kid).to_owned());
            jwk
        })
        .collect();
    let text = serde_json::to_string(&JwkSet { keys }).unwrap();
    // Written whole, then renamed: a read never sees half a file.
    let partial = path.with_extension("partial");
    std::fs::write(&partial, text).unwrap();
    std::fs::rename(partial, path).unwrap();
}

fn signed(kid: Option<&str>, alg: Algorithm, pem: &str) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    let claims = json!({ "sub": RECEIVER, "scope": READ_WRITE, "exp": now() + 600 });
    sign_with_header(&header, pem, &claims)
}

fn temp_jwks(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("camara-webrtc-jwks-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("jwks.json")
}

#[tokio::test]
async fn a_jwks_file_chooses_keys_by_kid_and_is_read_again() {
    let path = temp_jwks("file");
    write_jwks(
        &path,
        &[
            ("ec-1", Algorithm::ES256, "ec256-private.pem"),
            ("rsa-1", Algorithm::RS256, "rsa-private.pem"),
        ],
    );
    let mut config = Config::embedded();
    config.auth.jwks_file = Some(path.clone());
    config.auth.jwks_refresh_seconds = 1;
    config.auth.jwks_cooldown_seconds = 1;
    let app = spawn_with(config).await;
    let ec = signed(Some("ec-1"), Algorithm::ES256, "ec256-private.pem");
    json_ok(read_fixture(&app, &ec).await).await;
    // Without a kid, every key of the token's family is tried.
    json_ok(read_fixture(&app, &signed(None, Algorithm::RS256, "rsa-private.pem")).await).await;
    // A kid names one key: the EC token under the RSA key's kid fits no key.
    assert_refused(
        &app,
        &signed(Some("rsa-1"), Algorithm::ES256, "ec256-private.pem"),
        "the access token's algorithm is not accepted",
    )
    .await;
    assert_refused(
        &app,
        &signed(Some("nobody"), Algorithm::ES256, "ec256-private.pem"),
        "the access token's key is not known",
    )
    .await;
    // A key added to the file is taken without a restart.
    write_jwks(
        &path,
        &[
            ("ec-1", Algorithm::ES256, "ec256-private.pem"),
            ("rsa-1", Algorithm::RS256, "rsa-private.pem"),
            ("ed-1", Algorithm::EdDSA, "ed25519-private.pem"),
        ],
    );
    until_accepted(
        &app,
        &signed(Some("ed-1"), Algorithm::EdDSA, "ed25519-private.pem"),
    )
    .await;
    // The EC key removed: its token, verified and cached before, is refused after the refresh.
    write_jwks(&path, &[("rsa-1", Algorithm::RS256, "rsa-private.pem")]);
    until_refused(&app, &ec, "the access token's key is not known").await;
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

#[tokio::test]
async fn a_crit_header_is_refused() {
    let mut config = Config::embedded();
    config.auth.public_keys = vec![fixture_path("keys/ec256-public.pem")];
    let app = spawn_with(config).await;
    let claims = receiver_claims();
    for crit in [json!(["b64"]), json!(["exp"])] {
        let mut header = Header::new(Algorithm::ES256);
        header.crit = Some(serde_json::from_value(crit).unwrap());
        header.extras.insert("b64", false);
        let token = sign_with_header(&header, "ec256-private.pem", &claims);
        assert_refused(
            &app,
            &token,
            "the access token has a crit header, and no extension is understood",
        )
        .await;
    }
    // The same claims and key without crit are accepted.
    json_ok(
        read_fixture(
            &app,
            &sign_with(Algorithm::ES256, "ec256-private.pem", &claims),
        )
        .await,
    )
    .await;
}

#[tokio::test]
async fn scopes_are_split_on_the_space_character_only() {
    let app = spawn_app().await;
    let secret = app.config.auth.hs256_secret.clone().unwrap();
    let sign = |scope: &str| {
        sign_hmac(
            Algorithm::HS256,
            secret.expose().as_bytes(),
            &json!({ "sub": RECEIVER, "scope": scope, "exp": now() + 600 }),
        )
    };
    // A tab is part of a scope token, not a delimiter (RFC 6749 §3.3).
    assert_error(
        read_fixture(&app, &sign(&format!("{WRITE}\t{READ}"))).await,
        403,
        "PERMISSION_DENIED",
        "Client does not have sufficient permissions to perform this action: the access token lacks the scope webrtc-call-handling:sessions:read.",
    )
    .await;
    json_ok(read_fixture(&app, &sign(&format!("{WRITE}  {READ}"))).await).await;
}
