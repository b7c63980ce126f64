//! The `camara-webrtc` binary: parse the command line, load the configuration, and hand over to
//! the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use camara_webrtc::config::{Config, ConfigError};
use camara_webrtc::{auth, telemetry};
use clap::{Parser, Subcommand};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Parser)]
#[command(
    name = "camara-webrtc",
    version,
    about = "CAMARA WebRTC call-handling API server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (embedded defaults when no file is given).
    Serve {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Address to bind, overriding server.listen.
        #[arg(long)]
        listen: Option<String>,
    },
    /// Print one compact JWT signed with the configured HS256 key, or with --private-key.
    Token {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Subject: a phone number (tel:+..., 3-legged) or a client name (2-legged).
        #[arg(long)]
        sub: String,
        /// Space-separated scopes.
        #[arg(long)]
        scope: String,
        #[arg(long)]
        client_id: Option<String>,
        /// Lifetime in seconds; negative gives an already expired token.
        #[arg(long, default_value_t = 3600, allow_negative_numbers = true)]
        ttl: i64,
        /// Sign with this private key (PEM) instead of auth.hs256_secret, for servers that
        /// verify with auth.public_keys.
        #[arg(long, requires = "alg")]
        private_key: Option<PathBuf>,
        /// The algorithm for --private-key: ES256, ES384, RS256, RS384, RS512, PS256, PS384,
        /// PS512 or EdDSA.
        #[arg(long, requires = "private_key")]
        alg: Option<String>,
    },
    /// Validate and print the effective configuration, secrets redacted.
    CheckConfig {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Exit 0 when /health/ready answers 200 (for Docker's HEALTHCHECK).
    Healthcheck {
        /// Defaults to http://127.0.0.1:<port of server.listen>/health/ready.
        #[arg(long)]
        url: Option<String>,
    },
}

fn load(file: Option<&std::path::Path>, listen: Option<String>) -> Result<Config, ConfigError> {
    let mut figment = Config::figment(file);
    if let Some(listen) = listen {
        figment = figment.merge(("server.listen", listen));
    }
    Config::from_figment(&figment)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve { config, listen } => serve(config, listen),
        Command::Token {
            config,
            sub,
            scope,
            client_id,
            ttl,
            private_key,
            alg,
        } => load(config.as_deref(), None)
            .map_err(|e| e.to_string())
            .and_then(|c| {
                let spec = auth::TokenSpec {
                    sub: &sub,
                    scope: &scope,
                    client_id: client_id.as_deref(),
                    ttl_seconds: ttl,
                };
                match (private_key, alg) {
                    (Some(pem), Some(alg)) => {
                        let alg = alg
                            .parse()
                            .map_err(|_| format!("--alg {alg} is not a JWT algorithm"))?;
                        auth::mint_with_private_key(&pem, alg, &c.auth, &spec)
                    }
                    _ => auth::mint(&c.auth, spec.sub, spec.scope, spec.client_id, ttl),
                }
                .map_err(|e| e.to_string())
            })
            .map(|token| println!("{token}")),
        Command::CheckConfig { config } => load(config.as_deref(), None)
            .map(|c| print!("{}", c.to_redacted_toml()))
            .map_err(|e| e.to_string()),
        Command::Healthcheck { url } => healthcheck(url),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("camara-webrtc: {message}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
}

fn serve(file: Option<PathBuf>, listen: Option<String>) -> Result<(), String> {
    let config = load(file.as_deref(), listen).map_err(|e| e.to_string())?;
    telemetry::init(&config.log);
    if config.uses_development_key() {
        tracing::warn!(
            "USING THE PUBLIC DEVELOPMENT KEY: anyone can mint valid tokens. Set auth.hs256_secret \
             (CAMARA_WEBRTC__AUTH__HS256_SECRET) or auth.public_keys before exposing this service."
        );
    }
    runtime()?.block_on(async {
        let addr = config.listen_addr().map_err(|e| e.to_string())?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("binding {addr}: {e}"))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        tracing::info!(address = %local, base_paths = ?config.server.base_paths, store = ?config.store.backend, "listening");
        camara_webrtc::run(config, listener, shutdown_signal())
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!("stopped");
        Ok(())
    })
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}

/// GET `url` over plain HTTP/1.1 and succeed on a 200. No HTTP client crate for one request.
fn healthcheck(url: Option<String>) -> Result<(), String> {
    let url = match url {
        Some(url) => url,
        None => {
            let config = load(None, None).map_err(|e| e.to_string())?;
            let port = config.listen_addr().map_err(|e| e.to_string())?.port();
            format!("http://127.0.0.1:{port}/health/ready")
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

/// mimalloc instead of glibc's allocator: a PUT allocates and frees a few dozen small buffers, and
/// this alone raised PUT /status throughput by 15% in `scripts/loadtest.sh` (docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
