//! Bearer-token checks: every 401 reason, algorithms and keys, scopes, and the 3-legged rules.

use camara_webrtc::config::{Config, Secret};
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

use crate::helpers::*;

fn unauthenticated(reason: &str) -> String {
    format!("Request not authenticated: {reason}. A new authentication is required.")
}

/// PUT Ringing to the fixture with this raw Authorization header; assert the 401 and its challenge.
async fn assert_401(app: &TestApp, authorization: Option<&str>, reason: &str) {
    let mut request = app
        .client
        .put(app.status_url("/webrtc", FIXTURE_ID))
        .body(r#"{"status":"Ringing"}"#);
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let response = request.send().await.unwrap();
    assert_eq!(
        response.headers()["www-authenticate"],
        format!("Bearer realm=\"camara-webrtc\", error=\"invalid_token\", error_description=\"{reason}\"").as_str()
    );
    assert_error(response, 401, "UNAUTHENTICATED", &unauthenticated(reason)).await;
}

fn with_public_keys() -> Config {
    let mut config = Config::embedded();
    config.auth.public_keys = [
        "rsa-public.pem",
        "ec256-public.pem",
        "ec384-public.pem",
        "ed25519-public.pem",
    ]
    .into_iter()
    .map(|name| fixture_path(&format!("keys/{name}")))
    .collect();
    config
}

#[tokio::test]
async fn missing_wrong_scheme_and_empty_headers_are_401() {
    let app = spawn_app().await;
    assert_401(&app, None, "the Authorization header is missing").await;
    assert_401(
        &app,
        Some("Basic dXNlcjpwYXNz"),
        "the Authorization header must use the Bearer scheme",
    )
    .await;
    assert_401(
        &app,
        Some(""),
        "the Authorization header must use the Bearer scheme",
    )
    .await;
    assert_401(
        &app,
        Some("Bearer"),
        "the Authorization header must use the Bearer scheme",
    )
    .await;
    assert_401(
        &app,
        Some("Bearer not-a-jwt"),
        "the access token is malformed",
    )
    .await;
}

#[tokio::test]
async fn seed_unauthenticated_code_for_an_expired_token() {
    let app = spawn_app().await;
    let expired =
        camara_webrtc::auth::mint(&app.config.auth, RECEIVER, WRITE, None, -3600).unwrap();
    assert_401(
        &app,
        Some(&format!("Bearer {expired}")),
        "the access token has expired",
    )
    .await;
}

#[tokio::test]
async fn leeway_accepts_a_token_just_expired() {
    let app = spawn_app().await; // leeway_seconds = 30
    let recent = camara_webrtc::auth::mint(&app.config.auth, RECEIVER, WRITE, None, -5).unwrap();
    let response = app
        .put_status(FIXTURE_ID, r#"{"status":"Ringing"}"#, &recent)
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn bad_signature_nbf_and_missing_exp_are_401() {
    let app = spawn_app().await;
    let secret = app.config.auth.hs256_secret.clone().unwrap();
    let wrong_key = sign_hmac(
        Algorithm::HS256,
        b"another-secret-that-is-long-enough-to-use",
        &receiver_claims(),
    );
    assert_401(
        &app,
        Some(&format!("Bearer {wrong_key}")),
        "the access token's signature is invalid",
    )
    .await;
    // Flip one character in the middle of the signature.
    let token = app.receiver_token();
    let at = token.rfind('.').unwrap() + 10;
    let flipped = if &token[at..=at] == "A" { "B" } else { "A" };
    let tampered = format!("{}{flipped}{}", &token[..at], &token[at + 1..]);
    assert_401(
        &app,
        Some(&format!("Bearer {tampered}")),
        "the access token's signature is invalid",
    )
    .await;
    let mut claims = receiver_claims();
    claims["nbf"] = json!(now() + 3600);
    let future = sign_hmac(Algorithm::HS256, secret.expose().as_bytes(), &claims);
    assert_401(
        &app,
        Some(&format!("Bearer {future}")),
        "the access token is not valid yet",
    )
    .await;
    let no_exp = sign_hmac(
        Algorithm::HS256,
        secret.expose().as_bytes(),
        &json!({ "sub": RECEIVER, "scope": WRITE }),
    );
    assert_401(
        &app,
        Some(&format!("Bearer {no_exp}")),
        "the access token has no exp claim",
    )
    .await;
}

#[tokio::test]
async fn alg_none_is_refused() {
    // jsonwebtoken has no "none" algorithm: such a header does not even parse.
    let app = spawn_app().await;
    use base64_url as b64;
    let header = b64::encode(br#"{"alg":"none","typ":"JWT"}"#);
    let claims = b64::encode(receiver_claims().to_string().as_bytes());
    assert_401(
        &app,
        Some(&format!("Bearer {header}.{claims}.")),
        "the access token is malformed",
    )
    .await;
}

/// Minimal unpadded base64url, so the test needs no extra crate.
mod base64_url {
    pub fn encode(bytes: &[u8]) -> String {
        const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
            for i in 0..=chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            }
        }
        out
    }
}

#[tokio::test]
async fn asymmetric_algorithms_verify_with_configured_public_keys() {
    let app = spawn_with(with_public_keys()).await;
    let cases = [
        (Algorithm::RS256, "rsa-private.pem"),
        (Algorithm::RS384, "rsa-private.pem"),
        (Algorithm::RS512, "rsa-private.pem"),
        (Algorithm::PS256, "rsa-private.pem"),
        (Algorithm::PS512, "rsa-private.pem"),
        (Algorithm::ES256, "ec256-private.pem"),
        (Algorithm::ES384, "ec384-private.pem"),
        (Algorithm::EdDSA, "ed25519-private.pem"),
    ];
    for (alg, key) in cases {
        let token = sign_with(alg, key, &receiver_claims());
        let response = app.get_session(FIXTURE_ID, &token).await;
        assert_eq!(response.status(), 200, "{alg:?}");
    }
}

#[tokio::test]
async fn hmac_family_verifies_with_the_shared_secret() {
    let app = spawn_app().await;
    let secret = app.config.auth.hs256_secret.clone().unwrap();
    for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        let token = sign_hmac(alg, secret.expose().as_bytes(), &receiver_claims());
        assert_eq!(
            app.get_session(FIXTURE_ID, &token).await.status(),
            200,
            "{alg:?}"
        );
    }
}

#[tokio::test]
async fn asymmetric_token_without_a_matching_key_is_refused() {
    let app = spawn_app().await; // HS256 secret only
    let token = sign_with(Algorithm::ES256, "ec256-private.pem", &receiver_claims());
    assert_401(
        &app,
        Some(&format!("Bearer {token}")),
        "the access token's algorithm is not accepted",
    )
    .await;
}

#[tokio::test]
async fn algorithm_confusion_is_refused() {
    // An attacker signs HS256 with the server's *public* RSA key as the HMAC secret, where the
    // operator keeps HS256 beside the public keys with a secret of their own.
    let mut config = with_public_keys();
    config.auth.hs256_secret = Some(Secret::new("an operator's own secret, 32 bytes or more"));
    let app = spawn_with(config).await;
    let public_pem = std::fs::read(fixture_path("keys/rsa-public.pem")).unwrap();
    let forged = sign_hmac(Algorithm::HS256, &public_pem, &receiver_claims());
    assert_401(
        &app,
        Some(&format!("Bearer {forged}")),
        "the access token's signature is invalid",
    )
    .await;
    // With no HMAC secret in force, HS256 is not accepted at all: none configured, "", or the
    // development key beside the public keys.
    for secret in [
        None,
        Some(""),
        Some(camara_webrtc::config::DEVELOPMENT_SECRET),
    ] {
        let mut config = with_public_keys();
        config.auth.hs256_secret = secret.map(Secret::new);
        let app = spawn_with(config).await;
        assert_401(
            &app,
            Some(&format!("Bearer {forged}")),
            "the access token's algorithm is not accepted",
        )
        .await;
    }
}

#[tokio::test]
async fn issuer_and_audience_are_checked_when_configured() {
    let mut config = Config::embedded();
    config.auth.issuer = Some("https://auth.example.com".into());
    config.auth.audience = Some("camara-webrtc".into());
    let app = spawn_with(config).await;
    let secret = app.config.auth.hs256_secret.clone().unwrap();
    let sign = |extra: Value| {
        let mut claims = receiver_claims();
        claims
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        sign_hmac(Algorithm::HS256, secret.expose().as_bytes(), &claims)
    };
    let wrong_iss = sign(json!({ "iss": "https://evil.example.com", "aud": "camara-webrtc" }));
    assert_401(
        &app,
        Some(&format!("Bearer {wrong_iss}")),
        "the access token's issuer is not accepted",
    )
    .await;
    let wrong_aud = sign(json!({ "iss": "https://auth.example.com", "aud": "someone-else" }));
    assert_401(
        &app,
        Some(&format!("Bearer {wrong_aud}")),
        "the access token's audience is not accepted",
    )
    .await;
    // The token command includes the configured iss and aud.
    assert_eq!(
        app.get_session(FIXTURE_ID, &app.receiver_token())
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn missing_scope_is_permission_denied() {
    let app = spawn_app().await;
    let response = app
        .put_status(
            FIXTURE_ID,
            r#"{"status":"Ringing"}"#,
            &app.token(RECEIVER, READ),
        )
        .await;
    assert_error(
        response,
        403,
        "PERMISSION_DENIED",
        "Client does not have sufficient permissions to perform this action: the access token lacks the scope webrtc-call-handling:sessions:write.",
    )
    .await;
    let response = app
        .get_session(FIXTURE_ID, &app.token(RECEIVER, WRITE))
        .await;
    assert_error(
        response,
        403,
        "PERMISSION_DENIED",
        "Client does not have sufficient permissions to perform this action: the access token lacks the scope webrtc-call-handling:sessions:read.",
    )
    .await;
}

#[tokio::test]
async fn scope_is_checked_before_the_body() {
    let app = spawn_app().await;
    let response = app
        .put_status(FIXTURE_ID, "not json", &app.token(RECEIVER, READ))
        .await;
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn three_legged_caller_outside_the_call_gets_404() {
    let app = spawn_app().await;
    let stranger = app.token("tel:+4915112345678", READ_WRITE);
    let response = app
        .put_status(FIXTURE_ID, r#"{"status":"Ringing"}"#, &stranger)
        .await;
    assert_not_found(response).await;
    let response = app.get_session(FIXTURE_ID, &stranger).await;
    assert_not_found(response).await;
    // Both parties see it, with or without the tel: prefix.
    assert_eq!(
        app.get_session(FIXTURE_ID, &app.token("+17085852753", READ))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn seed_invalid_token_context_when_a_3_legged_body_names_another_party() {
    let app = spawn_app().await;
    let body =
        json!({ "status": "Ringing", "originatorAddress": "tel:+4915112345678" }).to_string();
    let response = app
        .put_status(FIXTURE_ID, &body, &app.receiver_token())
        .await;
    assert_error(
        response,
        403,
        "INVALID_TOKEN_CONTEXT",
        "originatorAddress is not consistent with access token: the parties of a session cannot change.",
    )
    .await;
    // The session was not touched.
    let session = json_ok(app.get_session(FIXTURE_ID, &app.receiver_token()).await).await;
    assert_eq!(session["status"], "Initial");
}

#[tokio::test]
async fn two_legged_body_naming_another_party_is_invalid_argument() {
    let app = spawn_app().await;
    let body = json!({ "receiverSessionStatus": { "status": "Ringing", "receiverAddress": "tel:+4915112345678" } })
        .to_string();
    let response = app
        .put_status(FIXTURE_ID, &body, &app.token("gateway-client", WRITE))
        .await;
    assert_error(
        response,
        400,
        "INVALID_ARGUMENT",
        "receiverAddress does not match the session: the parties of a session cannot change.",
    )
    .await;
}

/// Every session created has an owner, on either store: a token whose consumer (`client_id`,
/// else `azp`, else `sub`) is empty or absent is refused, whatever its scopes.
#[tokio::test]
async fn a_token_that_names_no_consumer_is_401() {
    let app = spawn_app().await;
    let secret = app.config.auth.hs256_secret.clone().unwrap();
    let exp = now() + 600;
    for claims in [
        json!({ "scope": READ_WRITE, "exp": exp }),
        json!({ "sub": "", "scope": READ_WRITE, "exp": exp }),
        json!({ "sub": RECEIVER, "client_id": "", "scope": READ_WRITE, "exp": exp }),
        json!({ "sub": RECEIVER, "azp": "", "scope": READ_WRITE, "exp": exp }),
    ] {
        let token = sign_hmac(Algorithm::HS256, secret.expose().as_bytes(), &claims);
        assert_401(
            &app,
            Some(&format!("Bearer {token}")),
            "the access token names no API consumer (client_id, azp or sub)",
        )
        .await;
    }
    // The first claim present names the consumer: an empty azp after a client_id is no matter.
    let named = sign_hmac(
        Algorithm::HS256,
        secret.expose().as_bytes(),
        &json!({ "sub": RECEIVER, "client_id": "app", "azp": "", "scope": READ_WRITE, "exp": exp }),
    );
    assert_eq!(app.get_session(FIXTURE_ID, &named).await.status(), 200);
}

#[tokio::test]
async fn sessions_of_another_consumer_do_not_exist() {
    let app = spawn_app().await;
    app.insert(session(
        "owned-by-a",
        camara_webrtc::domain::SessionStatus::Initial,
        Some("consumer-a"),
    ))
    .await;
    let token_for = |client: &str| {
        camara_webrtc::auth::mint(&app.config.auth, RECEIVER, READ_WRITE, Some(client), 600)
            .unwrap()
    };
    let response = app
        .get_session("owned-by-a", &token_for("consumer-b"))
        .await;
    assert_not_found(response).await;
    let response = app
        .put_status(
            "owned-by-a",
            r#"{"status":"Ringing"}"#,
            &token_for("consumer-b"),
        )
        .await;
    assert_not_found(response).await;
    assert_eq!(
        app.get_session("owned-by-a", &token_for("consumer-a"))
            .await
            .status(),
        200
    );
}

/// The verified-token cache, seen from outside: a reused ES256 token is served from it, a
/// tampered copy of a cached token is still refused, and an entry dies at the token's `exp`.
#[tokio::test]
async fn cached_tokens_never_admit_a_tampered_or_expired_token() {
    let mut config = with_public_keys();
    config.auth.leeway_seconds = 0;
    let app = spawn_with(config).await;
    let mut claims = receiver_claims();
    claims["exp"] = json!(now() + 2);
    let token = sign_with(Algorithm::ES256, "ec256-private.pem", &claims);
    for _ in 0..3 {
        assert_eq!(app.get_session(FIXTURE_ID, &token).await.status(), 200);
    }
    assert_eq!(
        app.state.verifier.cached_tokens(),
        1,
        "verified once, then cached"
    );
    // The signature's last character, and a payload character, changed.
    let mut sig = token.clone();
    let last = sig.pop().unwrap();
    sig.push(if last == 'A' { 'B' } else { 'A' });
    let (head, rest) = token.split_once('.').unwrap();
    let (payload, signature) = rest.split_once('.').unwrap();
    let mut forged_payload = payload.to_owned();
    forged_payload.replace_range(0..1, if payload.starts_with('e') { "f" } else { "e" });
    let forged = format!("{head}.{forged_payload}.{signature}");
    for tampered in [sig, forged] {
        let response = app.get_session(FIXTURE_ID, &tampered).await;
        assert_eq!(response.status(), 401, "{tampered}");
    }
    // Past exp the cached entry is dead, and full verification (leeway 0) refuses the token.
    while now() <= claims["exp"].as_i64().unwrap() {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_error(
        app.get_session(FIXTURE_ID, &token).await,
        401,
        "UNAUTHENTICATED",
        "Request not authenticated: the access token has expired. A new authentication is required.",
    )
    .await;
}
