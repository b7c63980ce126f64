//! The real binary: `token`, `check-config`, `healthcheck`, and `serve` with its logs, which must
//! never carry a token, an SRTP key or an ICE password.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use camara_webrtc::auth::{AuthError, Verifier};
use camara_webrtc::config::{Config, DEVELOPMENT_SECRET};

use serde_json::json;

use crate::client::ContractClient;
use crate::helpers::*;

const BIN: &str = env!("CARGO_BIN_EXE_camara-webrtc");

fn run(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let output = Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn token_mints_a_jwt_the_default_config_accepts() {
    let (ok, stdout, _) = run(
        &[
            "token",
            "--sub",
            RECEIVER,
            "--scope",
            READ_WRITE,
            "--client-id",
            "my-app",
        ],
        &[],
    );
    assert!(ok);
    let verifier = Verifier::from_config(&Config::embedded().auth).unwrap();
    let claims = verifier.verify(stdout.trim()).unwrap();
    assert_eq!(claims.sub.as_deref(), Some(RECEIVER));
    assert_eq!(claims.client_id.as_deref(), Some("my-app"));
    assert_eq!(
        claims.scope,
        [
            "webrtc-call-handling:sessions:read",
            "webrtc-call-handling:sessions:write"
        ]
    );
    assert_eq!(stdout.matches('.').count(), 2, "one compact JWT");
}

#[test]
fn token_signs_with_a_private_key_for_public_key_deployments() {
    let pem = fixture_path("keys/ec256-private.pem");
    let args = [
        "token", "--sub", RECEIVER, "--scope", WRITE, "--alg", "ES256",
    ];
    let (ok, stdout, _) = run(
        &[&args[..], &["--private-key", pem.to_str().unwrap()]].concat(),
        &[],
    );
    assert!(ok);
    let mut config = Config::embedded();
    config.auth.hs256_secret = None;
    config.auth.public_keys = vec![fixture_path("keys/ec256-public.pem")];
    let claims = Verifier::from_config(&config.auth)
        .unwrap()
        .verify(stdout.trim())
        .unwrap();
    assert_eq!(claims.sub.as_deref(), Some(RECEIVER));
    // The wrong family for the key, and an unknown algorithm, are refused with a message.
    for (alg, message) in [
        ("RS256", "not a RS256 private key"),
        ("HS999", "--alg HS999 is not a JWT algorithm"),
    ] {
        let key = ["--private-key", pem.to_str().unwrap(), "--alg", alg];
        let (ok, _, stderr) = run(&[&args[..5], &key[..]].concat(), &[]);
        assert!(!ok && stderr.contains(message), "{stderr}");
    }
}

#[test]
fn token_with_negative_ttl_is_expired() {
    let (ok, stdout, _) = run(
        &[
            "token", "--sub", RECEIVER, "--scope", WRITE, "--ttl", "-120",
        ],
        &[],
    );
    assert!(ok);
    let verifier = Verifier::from_config(&Config::embedded().auth).unwrap();
    assert_eq!(verifier.verify(stdout.trim()), Err(AuthError::Expired));
}

#[test]
fn check_config_prints_the_effective_config_redacted() {
    let (ok, stdout, _) = run(
        &["check-config"],
        &[("CAMARA_WEBRTC__SERVER__LISTEN", "127.0.0.1:9999")],
    );
    assert!(ok);
    assert!(stdout.contains("listen = \"127.0.0.1:9999\""), "{stdout}");
    assert!(stdout.contains("hs256_secret = \"[redacted]\""), "{stdout}");
    assert!(!stdout.contains(DEVELOPMENT_SECRET));
    let parsed: toml::Value = toml::from_str(&stdout).unwrap();
    assert_eq!(
        parsed["fixtures"]["sessions"][0]["media_session_id"].as_str(),
        Some(FIXTURE_ID)
    );
    // The fixture's SDP is shown as its length: its SRTP key and ICE password stay unprinted.
    let offer = &Config::embedded().fixtures.sessions[0].offer_sdp;
    assert_eq!(
        parsed["fixtures"]["sessions"][0]["offer_sdp"].as_str(),
        Some(format!("[SDP: {} bytes, redacted]", offer.len()).as_str())
    );
    for secret in [
        "inline:",
        "Xm3YciqVIWFNSwy19e9MvfZ2YOdAZil7oT",
        "ice-pwd",
        "D4sF5Pv9vx9ggaqxBlHbAFMx",
    ] {
        assert!(offer.contains(secret), "the fixture carries {secret:?}");
        assert!(!stdout.contains(secret), "check-config printed {secret:?}");
    }
}

/// Without the development values nothing is warned about; a list in an environment variable is
/// written as a TOML value.
#[test]
fn check_config_warns_only_about_development_values() {
    let (ok, stdout, stderr) = run(
        &["check-config"],
        &[
            (
                "CAMARA_WEBRTC__AUTH__HS256_SECRET",
                "an-operator-secret-of-at-least-32-bytes",
            ),
            (
                "CAMARA_WEBRTC__SERVER__CORS_ALLOWED_ORIGINS",
                r#"["https://app.example.com", "http://127.0.0.1:5173"]"#,
            ),
            ("CAMARA_WEBRTC__EVENTS__ALLOW_HTTP_SINKS", "false"),
            ("CAMARA_WEBRTC__EVENTS__ALLOWED_SINK_NETWORKS", "[]"),
            ("CAMARA_WEBRTC__NETWORK__ADMIN_API", "false"),
        ],
    );
    assert!(ok);
    assert_eq!(stderr, "token keys in force: hs256_secret\n");
    let parsed: toml::Value = toml::from_str(&stdout).unwrap();
    assert_eq!(
        parsed["server"]["cors_allowed_origins"],
        toml::Value::Array(vec![
            "https://app.example.com".into(),
            "http://127.0.0.1:5173".into()
        ])
    );
}

#[test]
fn check_config_names_the_bad_key() {
    let dir = std::env::temp_dir().join(format!("camara-webrtc-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.toml");
    std::fs::write(&file, "[sessions]\nmax_sessions = 0\n").unwrap();
    let (ok, _, stderr) = run(&["check-config", "--config", file.to_str().unwrap()], &[]);
    assert!(!ok);
    assert_eq!(
        stderr.trim(),
        "camara-webrtc: sessions.max_sessions: must be greater than 0"
    );
    let (ok, _, stderr) = run(
        &["check-config"],
        &[("CAMARA_WEBRTC__SDP__VALIDATION", "paranoid")],
    );
    assert!(!ok);
    assert!(stderr.to_lowercase().contains("sdp.validation"), "{stderr}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// A config that cannot be loaded is reported by key (or line) and kind of error, never by its
/// value: figment's own message would quote the secret's line or the value found.
#[test]
fn a_config_load_error_never_repeats_a_value() {
    let dir = std::env::temp_dir().join(format!("camara-webrtc-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let secret = "s3cr3t-0123456789-abcdefghijklmnopqrstuvwxyz";
    for (name, toml, refusal) in [
        (
            "unterminated.toml",
            format!("[auth]\nhs256_secret = \"{secret}\n"),
            "{file}: not valid TOML: line 2, column 61",
        ),
        (
            "bare.toml",
            format!("[auth]\nhs256_secret = {secret}\n"),
            "{file}: not valid TOML: line 2, column 16",
        ),
        (
            "wrong-type.toml",
            format!(
                "[store]\nbackend = \"redis\"\nredis_url = [\"redis://:{secret}@redis:6379/0\"]\n"
            ),
            "store.redis_url: wrong type: found an array, expected a string (in {file})",
        ),
    ] {
        let file = dir.join(name);
        std::fs::write(&file, toml).unwrap();
        let (ok, stdout, stderr) = run(&["check-config", "--config", file.to_str().unwrap()], &[]);
        assert!(!ok && stdout.is_empty(), "{name}");
        let refusal = refusal.replace("{file}", file.to_str().unwrap());
        assert_eq!(stderr, format!("camara-webrtc: {refusal}\n"));
        assert!(!stderr.contains("s3cr3t"), "{stderr}");
    }
    std::fs::remove_dir_all(dir).unwrap();
    let (ok, _, stderr) = run(
        &["check-config"],
        &[("CAMARA_WEBRTC__STORE__TIMEOUT_MS", secret)],
    );
    assert!(!ok);
    assert_eq!(
        stderr,
        "camara-webrtc: store.timeout_ms: wrong type: found a string, expected u64 \
         (in environment variable CAMARA_WEBRTC__STORE__TIMEOUT_MS)\n"
    );
}

/// A log filter with a typo (`inf`) would silence every line: `check-config` refuses it in
/// `log.level` and in `RUST_LOG`, and `serve` does not start with it.
#[test]
fn a_log_filter_that_names_no_level_is_refused() {
    let needs =
        "names no level: write a level (off, error, warn, info, debug, trace) or target=level";
    let file = std::env::temp_dir().join(format!("camara-webrtc-log-{}.toml", std::process::id()));
    std::fs::write(&file, "[log]\nlevel = \"inf\"\n").unwrap();
    let (ok, stdout, stderr) = run(&["check-config", "--config", file.to_str().unwrap()], &[]);
    std::fs::remove_file(&file).unwrap();
    assert!(!ok && stdout.is_empty());
    assert_eq!(
        stderr,
        format!("camara-webrtc: log.level: directive \"inf\" {needs}\n")
    );
    let (ok, _, stderr) = run(
        &["check-config"],
        &[("CAMARA_WEBRTC__LOG__LEVEL", "info,hyper=wrn")],
    );
    assert!(!ok);
    assert!(
        stderr.starts_with(
            "camara-webrtc: log.level: \"info,hyper=wrn\" is not a log filter: error parsing level filter"
        ),
        "{stderr}"
    );
    for command in [&["check-config"][..], &["serve", "--listen", "127.0.0.1:0"]] {
        let (ok, stdout, stderr) = run(command, &[("RUST_LOG", "warning")]);
        assert!(!ok && stdout.is_empty(), "{command:?}");
        assert_eq!(
            stderr,
            format!("camara-webrtc: RUST_LOG: directive \"warning\" {needs}\n")
        );
    }
    // A target with its level is a valid RUST_LOG.
    let (ok, _, _) = run(&["check-config"], &[("RUST_LOG", "camara_webrtc=debug")]);
    assert!(ok);
}

/// `check-config`'s warning while `server.cors_allowed_origins` is `["*"]`.
const CORS_WARNING: &str = "camara-webrtc: warning: CORS ALLOWS EVERY ORIGIN: any web page may \
    call this API from a browser. List your apps' origins in server.cors_allowed_origins (or [] \
    for none) before exposing this service.\n";

/// `check-config`'s warning while event sinks may be http or on internal networks.
const SINKS_WARNING: &str = "camara-webrtc: warning: EVENT SINKS MAY BE PLAIN HTTP OR ON \
    INTERNAL NETWORKS: a subscription can make this service send requests into its own network. \
    Set events.allow_http_sinks = false and events.allowed_sink_networks = [] (or only your own \
    sinks' networks) before exposing this service.\n";

/// `check-config`'s warning while the network's admin API is on.
const NETWORK_WARNING: &str = "camara-webrtc: warning: THE NETWORK ADMIN API AND CONSOLE ARE ON: \
    a token with scope camara-webrtc:network can place calls and move any session. Set \
    network.admin_api = false before exposing this service.\n";

/// With the embedded defaults, the development key, sinks anywhere, the network's admin API and
/// CORS for any origin are warned about.
#[test]
fn check_config_loads_every_key_and_says_which_are_in_force() {
    let (ok, _, stderr) = run(&["check-config"], &[]);
    assert!(ok);
    assert_eq!(
        stderr,
        "token keys in force: hs256_secret (the public development key)\n\
         camara-webrtc: warning: USING THE PUBLIC DEVELOPMENT KEY: anyone can mint valid tokens. \
         Configure a key source of your own (auth.jwks_url, auth.oidc_discovery, \
         auth.public_keys, or auth.hs256_secret) before exposing this service.\n"
            .to_owned()
            + SINKS_WARNING
            + NETWORK_WARNING
            + CORS_WARNING
    );
    for (key, value, refusal) in [
        (
            "CAMARA_WEBRTC__AUTH__PUBLIC_KEYS",
            r#"["/nowhere/key.pem"]"#,
            "auth.public_keys[0]: cannot read /nowhere/key.pem",
        ),
        (
            "CAMARA_WEBRTC__AUTH__JWKS_FILE",
            "/nowhere/jwks.json",
            "auth: the JWKS cannot be read: reading /nowhere/jwks.json",
        ),
    ] {
        let (ok, _, stderr) = run(&["check-config"], &[(key, value)]);
        assert!(!ok);
        assert_eq!(
            stderr.trim(),
            format!("camara-webrtc: {refusal}: No such file or directory (os error 2)")
        );
    }
    let public = fixture_path("keys/ec256-public.pem");
    let keys = format!("[{:?}]", public.to_str().unwrap());
    let (ok, _, stderr) = run(
        &["check-config"],
        &[("CAMARA_WEBRTC__AUTH__PUBLIC_KEYS", keys.as_str())],
    );
    assert!(ok, "{stderr}");
    assert_eq!(
        stderr,
        "token keys in force: public_keys (1 PEM)\n".to_owned()
            + SINKS_WARNING
            + NETWORK_WARNING
            + CORS_WARNING
    );
}

#[test]
fn healthcheck_fails_when_nothing_listens() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (ok, _, stderr) = run(
        &[
            "healthcheck",
            "--url",
            &format!("http://127.0.0.1:{port}/health/ready"),
        ],
        &[],
    );
    assert!(!ok);
    assert!(stderr.starts_with("camara-webrtc: 127.0.0.1:"), "{stderr}");
}

/// `camara-webrtc serve` as a child process, its stdout and stderr lines collected.
pub struct Served {
    child: std::process::Child,
    pub address: String,
    lines: Vec<String>,
    rx: mpsc::Receiver<String>,
}

impl Served {
    /// Starts `serve --listen 127.0.0.1:0` with `env` (JSON logs unless `env` says otherwise) and
    /// waits for its address.
    pub fn start(env: &[(&str, &str)]) -> Self {
        Self::start_on("127.0.0.1:0", env)
    }

    /// Starts `serve --listen <listen>` as [`Served::start`] does.
    fn start_on(listen: &str, env: &[(&str, &str)]) -> Self {
        let mut serve = Command::new(BIN);
        serve.args(["serve", "--listen", listen]);
        Self::spawn(serve, env)
    }

    /// Starts `serve --listen 127.0.0.1:0` as [`Served::start`] does, under an open-file limit
    /// of `limit` (the shell's `ulimit -n`).
    fn start_with_open_files(limit: u32, env: &[(&str, &str)]) -> Self {
        let mut serve = Command::new("sh");
        serve.args([
            "-c",
            &format!("ulimit -n {limit} && exec \"$0\" serve --listen 127.0.0.1:0"),
            BIN,
        ]);
        Self::spawn(serve, env)
    }

    fn spawn(mut serve: Command, env: &[(&str, &str)]) -> Self {
        let mut child = serve
            .env("CAMARA_WEBRTC__LOG__FORMAT", "json")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let _ = tx.send(line.unwrap());
                }
            });
        }
        let mut lines = Vec::new();
        let address = loop {
            let line = rx
                .recv_timeout(Duration::from_secs(20))
                .expect("serve prints its address");
            let event: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            let text = line
                .split_once(": listening address=")
                .map(|(_, rest)| rest);
            let address = match (&event["fields"]["address"], text) {
                (serde_json::Value::String(address), _) => Some(address.clone()),
                (_, Some(rest)) => rest.split(' ').next().map(str::to_owned),
                _ => None,
            };
            lines.push(line);
            if let Some(address) = address {
                break address;
            }
        };
        Self {
            child,
            address,
            lines,
            rx,
        }
    }

    /// Waits, while the process runs, for a line containing `needle`.
    fn wait_for_line(&mut self, needle: &str) {
        loop {
            let line = self
                .rx
                .recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("no line with {needle:?} in {:#?}", self.lines));
            let found = line.contains(needle);
            self.lines.push(line);
            if found {
                return;
            }
        }
    }

    /// Kills the process as a crash would (SIGKILL): nothing of it runs after this returns.
    pub fn kill(self) {
        drop(self);
    }

    /// A signal (`TERM`, `INT`), then the exit status and every line the process wrote.
    fn terminate(mut self, signal: &str) -> (std::process::ExitStatus, Vec<String>) {
        assert!(
            Command::new("kill")
                .args([&format!("-{signal}"), &self.child.id().to_string()])
                .status()
                .unwrap()
                .success()
        );
        let status = self.child.wait().unwrap();
        let mut lines = std::mem::take(&mut self.lines);
        lines.extend(self.rx.iter());
        (status, lines)
    }
}

/// A test that fails leaves no process behind.
impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `--listen` takes a host name: `localhost:0` binds an address `localhost` resolves to (the
/// port the kernel picked is in the `listening` line), and `healthcheck` without `--url` reaches
/// the service through the same host name.
#[test]
fn serve_listens_on_a_host_name() {
    let served = Served::start_on("localhost:0", &[]);
    let port = served.address.rsplit(':').next().unwrap();
    let listen = format!("localhost:{port}");
    let (ok, _, stderr) = run(
        &["healthcheck"],
        &[("CAMARA_WEBRTC__SERVER__LISTEN", listen.as_str())],
    );
    assert!(ok, "healthcheck of {listen}: {stderr}");
    let live = format!("http://{}/health/live", served.address);
    assert!(run(&["healthcheck", "--url", &live], &[]).0, "{live}");
    assert!(served.terminate("TERM").0.success());
}

/// `serve` says so when `server.max_connections` does not fit its open-file limit, and is silent
/// when it does.
#[test]
fn serve_warns_when_max_connections_exceed_the_open_file_limit() {
    let warning = "server.max_connections does not fit the open-file limit";
    // The warnings of `serve` under an open-file limit of 512, configured by `env`.
    let warned = |env: &[(&str, &str)]| -> Vec<serde_json::Value> {
        let (status, lines) = Served::start_with_open_files(512, env).terminate("TERM");
        assert!(status.success());
        lines
            .iter()
            .filter(|line| line.contains(warning))
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    };
    let fields = |max_connections: u64, listeners: u64| {
        json!({
            "message": format!(
                "{warning}: raise `ulimit -n` (Docker: --ulimit nofile=N) or lower \
                 server.max_connections"
            ),
            "max_connections": max_connections,
            "listeners": listeners,
            "open_file_limit": 512,
            "reserve": 64,
        })
    };
    let default = warned(&[]);
    assert_eq!(default.len(), 1, "{default:#?}");
    assert_eq!(default[0]["level"], "WARN");
    assert_eq!(default[0]["fields"], fields(10000, 1));
    let fits = [("CAMARA_WEBRTC__SERVER__MAX_CONNECTIONS", "448")];
    assert_eq!(warned(&fits), Vec::<serde_json::Value>::new());
    // A metrics listener of its own takes as many connections again.
    let two = warned(&[
        fits[0],
        ("CAMARA_WEBRTC__SERVER__METRICS_LISTEN", "127.0.0.1:0"),
    ]);
    assert_eq!(two.len(), 1, "{two:#?}");
    assert_eq!(two[0]["fields"], fields(448, 2));
}

/// A JWKS URL's credentials (user info, a query) are never logged or printed: `serve` names the
/// source and the failed read without them, and so does `check-config`'s refusal.
#[test]
fn jwks_url_credentials_are_never_shown() {
    let url = "https://user:s3cr3t@127.0.0.1:9/jwks?access_token=s3cr3t";
    let env = [("CAMARA_WEBRTC__AUTH__JWKS_URL", url)];
    let served = Served::start(&env);
    let (status, lines) = served.terminate("TERM");
    assert!(status.success());
    let all = lines.join("\n");
    assert!(all.contains("jwks_url https://127.0.0.1:9/jwks"), "{all}");
    assert!(!all.contains("s3cr3t"), "{all}");
    let (ok, stdout, stderr) = run(&["check-config"], &env);
    assert!(!ok);
    assert_eq!(
        stderr,
        "camara-webrtc: auth: the JWKS cannot be read: fetching https://127.0.0.1:9/jwks: error sending request\n"
    );
    assert_eq!(stdout, "");
}

fn mint_with_binary(sub: &str, scope: &str) -> String {
    let (ok, token, _) = run(&["token", "--sub", sub, "--scope", scope], &[]);
    assert!(ok);
    token.trim().to_owned()
}

/// What `docker-compose.yml` runs, outside Docker: two `serve` processes configured by
/// environment for one Redis, each healthy by `healthcheck`, sharing their sessions.
#[tokio::test(flavor = "multi_thread")]
async fn two_serve_processes_share_one_redis_configured_by_env() {
    let Some(redis) = crate::redis_server::RedisServer::start(
        "two_serve_processes_share_one_redis_configured_by_env",
    ) else {
        return;
    };
    let prefix = crate::redis_server::unique_prefix("compose");
    let env = [
        ("CAMARA_WEBRTC__STORE__BACKEND", "redis"),
        ("CAMARA_WEBRTC__STORE__REDIS_URL", redis.url.as_str()),
        ("CAMARA_WEBRTC__STORE__KEY_PREFIX", prefix.as_str()),
    ];
    let (a, b) = (Served::start(&env), Served::start(&env));
    // As Docker's HEALTHCHECK runs it: no URL, the port taken from the listen address in the
    // environment (the image sets CAMARA_WEBRTC__SERVER__LISTEN=0.0.0.0:8080).
    for replica in [&a, &b] {
        let port = replica.address.rsplit(':').next().unwrap();
        let listen = format!("0.0.0.0:{port}");
        let env = [("CAMARA_WEBRTC__SERVER__LISTEN", listen.as_str())];
        assert!(run(&["healthcheck"], &env).0, "{listen}");
    }
    let token = mint_with_binary(RECEIVER, READ_WRITE);
    let client = ContractClient::embedded();
    let put = client
        .put(format!(
            "http://{}/webrtc/sessions/{FIXTURE_ID}/status",
            a.address
        ))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "status": "Ringing" }))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let read = client
        .get(format!("http://{}/webrtc/sessions/{FIXTURE_ID}", b.address))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(json_ok(read).await["status"], "Ringing");
    // Both stop cleanly, on SIGTERM (Docker's stop) and on SIGINT (Ctrl-C).
    for (replica, signal) in [(a, "TERM"), (b, "INT")] {
        assert!(replica.terminate(signal).0.success(), "SIG{signal}");
    }
}

/// `rediss://`: `serve` reaches a TLS-only Redis, verifying its certificate against the roots
/// it is given (`SSL_CERT_FILE`, read by rustls-native-certs in place of the system's), and is
/// ready; with roots that do not know the server's CA it is not.
#[tokio::test(flavor = "multi_thread")]
async fn serve_reaches_redis_over_tls_with_a_rediss_url() {
    let test = "serve_reaches_redis_over_tls_with_a_rediss_url";
    let Some(redis) = crate::redis_server::RedisServer::spawn_tls(test) else {
        return;
    };
    let prefix = crate::redis_server::unique_prefix("tls");
    let no_roots =
        std::env::temp_dir().join(format!("camara-webrtc-no-roots-{}.pem", std::process::id()));
    std::fs::write(&no_roots, "").unwrap();
    let trusted = fixture_path("tls/ca.pem");
    for (roots, ready) in [(trusted.as_path(), true), (no_roots.as_path(), false)] {
        let env = [
            ("CAMARA_WEBRTC__STORE__BACKEND", "redis"),
            ("CAMARA_WEBRTC__STORE__REDIS_URL", redis.url.as_str()),
            ("CAMARA_WEBRTC__STORE__KEY_PREFIX", prefix.as_str()),
            ("SSL_CERT_FILE", roots.to_str().unwrap()),
            ("SSL_CERT_DIR", ""),
        ];
        let served = Served::start(&env);
        let ready_url = format!("http://{}/health/ready", served.address);
        let (ok, _, stderr) = run(&["healthcheck", "--url", &ready_url], &[]);
        assert_eq!(ok, ready, "roots {}: {stderr}", roots.display());
        if ready {
            // The fixture was written through TLS and reads back.
            let token = mint_with_binary(RECEIVER, READ);
            let read = ContractClient::embedded()
                .get(format!(
                    "http://{}/webrtc/sessions/{FIXTURE_ID}",
                    served.address
                ))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert_eq!(json_ok(read).await["status"], "Initial");
        }
        assert!(served.terminate("TERM").0.success());
    }
    std::fs::remove_file(no_roots).unwrap();
}

/// `serve` at trace level in JSON while the seed's five examples run: the logs are JSON lines
/// with the request span, and no secret appears anywhere in them.
#[tokio::test(flavor = "multi_thread")]
async fn serve_logs_requests_and_never_secrets() {
    let served = Served::start(&[("RUST_LOG", "trace")]);
    let address = served.address.clone();
    let token = mint_with_binary(RECEIVER, WRITE);
    let client = ContractClient::embedded();
    for step in [
        "1-in-progress",
        "2-ringing",
        "3-connected",
        "4-hold",
        "5-resume",
    ] {
        let response = client
            .put(format!(
                "http://{address}/webrtc/sessions/{FIXTURE_ID}/status"
            ))
            .bearer_auth(&token)
            .header("x-correlator", format!("log-{step}"))
            .body(seed(&format!("request-{step}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{step}");
    }
    // A call placed and hung up: its SDP offer carries the fixture's SRTP key and ICE password.
    let caller = mint_with_binary(
        ORIGINATOR,
        "webrtc-call-handling:sessions:create webrtc-call-handling:sessions:delete",
    );
    let offer = Config::embedded().fixtures.sessions[0].offer_sdp.clone();
    let created = client
        .post(format!("http://{address}/webrtc/sessions"))
        .bearer_auth(&caller)
        .header("registrationId", "log-device")
        .json(&serde_json::json!({
            "originatorAddress": ORIGINATOR,
            "receiverAddress": RECEIVER,
            "offer": { "sdp": offer }
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    let deleted = client
        .delete(format!("http://{address}{location}"))
        .bearer_auth(&caller)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let health = Command::new(BIN)
        .args([
            "healthcheck",
            "--url",
            &format!("http://{address}/health/ready"),
        ])
        .status()
        .unwrap();
    assert!(health.success());
    // SIGTERM: graceful shutdown, exit 0.
    let (status, lines) = served.terminate("TERM");
    assert!(status.success(), "serve exits 0 on SIGTERM, got {status}");
    let all = lines.join("\n");

    for secret in [
        token.as_str(),
        caller.as_str(),
        DEVELOPMENT_SECRET,
        "inline:",
        "ruAnBNYnTJqDVZAIJV59VpQ5DxGI6tMX9h9kkHSz", // SRTP key, Connected/Hold/Resume
        "3YciqVIWFNSwy19e9MvfZ2YOdAZil7oT",         // SRTP key, InProgress
        "ln3CttOSkObcQ7A0tYO1LXqy",                 // ICE password
        "D4sF5Pv9vx9",                              // ICE password, InProgress and the offer
        "Xm3YciqVIWFNSwy19e9MvfZ2YOdAZil7oT",       // SRTP key of the offer
        "Bearer ",
    ] {
        assert!(!all.contains(secret), "the logs contain {secret:?}");
    }
    for warning in Config::embedded().warnings() {
        assert!(all.contains(warning), "the warning {warning:?} is logged");
    }
    let events: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect();
    let finished: Vec<_> = events
        .iter()
        .filter(|e| e["fields"]["message"] == "request finished")
        .collect();
    assert_eq!(
        finished.len(),
        8,
        "five PUTs, a POST, a DELETE, one health check"
    );
    let put = finished[0];
    assert_eq!(
        put["fields"]["route"],
        "/webrtc/sessions/{mediaSessionId}/status"
    );
    assert_eq!(put["fields"]["method"], "PUT");
    assert_eq!(put["fields"]["correlator"], "log-1-in-progress");
    assert_eq!(put["fields"]["consumer"], RECEIVER);
    assert_eq!(put["fields"]["status"], 200);
    // The request's one line says what it changed.
    assert_eq!(put["fields"]["session"], FIXTURE_ID);
    assert_eq!(
        (
            &put["fields"]["from"],
            &put["fields"]["to"],
            &put["fields"]["version"]
        ),
        (&json!("Initial"), &json!("InProgress"), &json!(2))
    );
    assert!(put["fields"]["latency_ms"].as_f64().is_some());
    let updated = events
        .iter()
        .find(|e| e["fields"]["message"] == "session status updated")
        .unwrap();
    assert!(
        updated["fields"]["answer"]
            .as_str()
            .unwrap()
            .starts_with("len=785 hash=")
    );
    let created = events
        .iter()
        .find(|e| e["fields"]["message"] == "session created")
        .unwrap();
    assert_eq!(created["fields"]["offer_len"], offer.len());
    // With debug on, events inside a request carry its span (and correlator).
    let ended = events
        .iter()
        .find(|e| e["fields"]["message"] == "session ended")
        .unwrap();
    assert_eq!(ended["span"]["name"], "request");
    assert_eq!(ended["span"]["method"], "DELETE");
    let hung_up = finished
        .iter()
        .find(|e| e["fields"]["method"] == "DELETE")
        .unwrap();
    assert_eq!(
        (&hung_up["fields"]["from"], &hung_up["fields"]["to"]),
        (&json!("Initial"), &json!("SessionCancelled"))
    );
}

/// The default text format, as an operator reads it: one line per event in tracing's usual layout,
/// the request's line with its facts, and a value that carries a line break (a client id from a
/// token signed with the public development key) escaped, so it cannot forge a line.
#[tokio::test(flavor = "multi_thread")]
async fn text_logs_keep_one_event_per_line() {
    let mut served = Served::start(&[
        ("CAMARA_WEBRTC__LOG__FORMAT", "text"),
        ("RUST_LOG", "debug"),
    ]);
    let forger = "app\n2026-01-01T00:00:00.000000Z  INFO forged: line";
    let (ok, token, _) = run(
        &[
            "token",
            "--sub",
            RECEIVER,
            "--scope",
            WRITE,
            "--client-id",
            forger,
        ],
        &[],
    );
    assert!(ok);
    let response = ContractClient::embedded()
        .put(format!(
            "http://{}/webrtc/sessions/{FIXTURE_ID}/status",
            served.address
        ))
        .bearer_auth(token.trim())
        .header("x-correlator", "text-1")
        .json(&json!({ "status": "Ringing" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // The line is written when the request is answered, not only at shutdown.
    served.wait_for_line(" request finished ");
    let (status, lines) = served.terminate("TERM");
    assert!(status.success());
    let layout = regex::Regex::new(
        r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z +(TRACE|DEBUG|INFO|WARN|ERROR) [^ ].*$",
    )
    .unwrap();
    for line in &lines {
        assert!(layout.is_match(line), "{line:?}");
    }
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("forged: line") && l.starts_with("2026-01-01"))
    );
    let finished: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains(" request finished "))
        .collect();
    assert_eq!(finished.len(), 1, "{lines:#?}");
    let (_, facts) = finished[0].split_once("  INFO ").unwrap();
    let latency = facts.rsplit_once(" latency_ms=").unwrap().1;
    assert!(latency.parse::<f64>().is_ok(), "{latency}");
    // Values from the client are quoted and escaped: the client id's line break stays inside
    // this line.
    assert_eq!(
        facts.rsplit_once(" latency_ms=").unwrap().0,
        format!(
            "camara_webrtc::http::middleware: request finished method=PUT \
             route=/webrtc/sessions/{{mediaSessionId}}/status correlator=text-1 \
             consumer=\"app\\n2026-01-01T00:00:00.000000Z  INFO forged: line\" \
             session=\"{FIXTURE_ID}\" from=Initial to=Ringing version=2 status=200"
        )
    );
    // Debug events inside the request carry its span.
    assert!(
        lines.iter().any(|l| l.contains(
            " DEBUG request{method=PUT route=\"/webrtc/sessions/{mediaSessionId}/status\" \
             correlator=\"text-1\"}: camara_webrtc::http::sessions::status: session status updated"
        )),
        "{lines:#?}"
    );
}
