//! The commands' glue between the command line and the library: configuration loading with
//! flags ([`load`]), [`serve`], [`token`], [`check_config`], [`healthcheck`], and the shutdown
//! signal. Each command returns the message to print when it fails; `main` turns that into the
//! exit code.

use std::path::Path;
use std::time::Duration;

use camara_webrtc::auth::{self, TokenSpec};
use camara_webrtc::config::{Config, ConfigError};
use camara_webrtc::telemetry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The configuration of [`Config::figment`] (embedded defaults < `file` < environment), with
/// `--listen` on top when given, validated.
pub fn load(file: Option<&Path>, listen: Option<String>) -> Result<Config, ConfigError> {
    let mut figment = Config::figment(file);
    if let Some(listen) = listen {
        figment = figment.merge(("server.listen", listen));
    }
    Config::from_figment(&figment)
}

/// `serve`: logs as configured, binds `server.listen` and serves until SIGINT or SIGTERM.
pub fn serve(file: Option<&Path>, listen: Option<String>) -> Result<(), String> {
    let config = load(file, listen).map_err(|e| e.to_string())?;
    telemetry::init(&config.log)?;
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }
    tracing::info!(sources = ?config.auth.key_sources(), "token keys");
    runtime()?.block_on(async {
        // tokio resolves a host name and binds the first of its addresses that binds.
        let listen = config.server.listen.as_str();
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|e| format!("server.listen: cannot listen on {listen}: {e}"))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        // The handlers are in place before `listening` is said: a signal sent from then on is a
        // graceful stop, never the default action (death by SIGTERM).
        let shutdown = shutdown_signal().map_err(|e| format!("cannot handle signals: {e}"))?;
        tracing::info!(address = %local, base_paths = ?config.server.base_paths, registration_base_paths = ?config.registration.base_paths, store = ?config.store.backend, "listening");
        camara_webrtc::run(config, listener, shutdown)
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!("stopped");
        Ok(())
    })
}

/// `token`: prints one compact JWT for `spec`, signed with the configured HS256 secret, or with
/// `private_key` = (PEM file, algorithm name) when given.
pub fn token(
    file: Option<&Path>,
    spec: &TokenSpec<'_>,
    private_key: Option<(&Path, &str)>,
) -> Result<(), String> {
    let config = load(file, None).map_err(|e| e.to_string())?;
    let token = match private_key {
        Some((pem, alg)) => {
            let alg = alg
                .parse()
                .map_err(|_| format!("--alg {alg} is not a JWT algorithm"))?;
            auth::mint_with_private_key(pem, alg, &config.auth, spec)
        }
        None => auth::mint(
            &config.auth,
            spec.sub,
            spec.scope,
            spec.client_id,
            spec.ttl_seconds,
        ),
    }
    .map_err(|e| e.to_string())?;
    println!("{token}");
    Ok(())
}

/// `check-config`: prints the effective configuration, secrets redacted, once it is valid (the
/// log filter `serve` would use included) and every key it names loads (PEM files read, the JWKS
/// read once); the key sources in force and the [`Config::warnings`] go to standard error.
pub fn check_config(file: Option<&Path>) -> Result<(), String> {
    let config = load(file, None).map_err(|e| e.to_string())?;
    // The filter `serve` would use: RUST_LOG, when set, wins over log.level.
    telemetry::filter(&config.log)?;
    let verifier = auth::Verifier::from_config(&config.auth).map_err(|e| e.to_string())?;
    runtime()?
        .block_on(verifier.load_keys())
        .map_err(|e| format!("auth: the JWKS cannot be read: {e}"))?;
    eprintln!(
        "token keys in force: {}",
        config.auth.key_sources().join(", ")
    );
    for warning in config.warnings() {
        eprintln!("camara-webrtc: warning: {warning}");
    }
    print!("{}", config.to_redacted_toml());
    Ok(())
}

/// `healthcheck`: GET `url` over plain HTTP/1.1 (no HTTP client crate for one request) and
/// succeed on a 200 within 5 s. Without `url`, asks `/health/ready` at the configured
/// `server.listen`: its host (loopback for `0.0.0.0` and `[::]`) and port.
pub fn healthcheck(url: Option<String>) -> Result<(), String> {
    let url = match url {
        Some(url) => url,
        None => {
            let config = load(None, None).map_err(|e| e.to_string())?;
            let (host, port) = config.listen_host_port().map_err(|e| e.to_string())?;
            let host = match host {
                "0.0.0.0" => "127.0.0.1",
                "[::]" => "[::1]",
                host => host,
            };
            format!("http://{host}:{port}/health/ready")
        }
    };
    let rest = url
        .strip_prefix("http://")
        .ok_or("healthcheck --url must start with http://")?;
    let (authority, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(a, p)| (a, format!("/{p}")));
    runtime()?.block_on(async {
        let exchange = async {
            let mut stream = TcpStream::connect(authority)
                .await
                .map_err(|e| format!("{authority}: {e}"))?;
            let request =
                format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
            stream
                .write_all(request.as_bytes())
                .await
                .map_err(|e| e.to_string())?;
            let mut response = Vec::new();
            stream
                .read_to_end(&mut response)
                .await
                .map_err(|e| e.to_string())?;
            let status_line = String::from_utf8_lossy(&response)
                .lines()
                .next()
                .unwrap_or("")
                .to_owned();
            match status_line.split(' ').nth(1) {
                Some("200") => Ok(()),
                _ => Err(format!("{url} answered {status_line:?}")),
            }
        };
        tokio::time::timeout(Duration::from_secs(5), exchange)
            .await
            .map_err(|_| format!("{url} did not answer in 5 s"))?
    })
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
}

/// Installs the SIGINT and SIGTERM handlers now, and returns what resolves on either.
#[cfg(unix)]
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {},
            _ = terminate.recv() => {},
        }
        tracing::info!("shutdown signal received; finishing in-flight requests");
    })
}

/// Returns what resolves on Ctrl-C.
#[cfg(not(unix))]
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutdown signal received; finishing in-flight requests");
    })
}
