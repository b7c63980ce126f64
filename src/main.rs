//! The `camara-webrtc` binary: the command line (clap) and its dispatch to [`cli`], whose
//! result becomes the exit code.

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use camara_webrtc::auth::TokenSpec;
use clap::{Parser, Subcommand};

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
        /// Address to bind (host:port; a host name is resolved), overriding server.listen.
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
        /// Defaults to http://<host>:<port>/health/ready of server.listen (127.0.0.1 for
        /// 0.0.0.0, [::1] for [::]).
        #[arg(long)]
        url: Option<String>,
    },
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Serve { config, listen } => cli::serve(config.as_deref(), listen),
        Command::Token {
            config,
            sub,
            scope,
            client_id,
            ttl,
            private_key,
            alg,
        } => {
            let spec = TokenSpec {
                sub: &sub,
                scope: &scope,
                client_id: client_id.as_deref(),
                ttl_seconds: ttl,
            };
            let signing = private_key.as_deref().zip(alg.as_deref());
            cli::token(config.as_deref(), &spec, signing)
        }
        Command::CheckConfig { config } => cli::check_config(config.as_deref()),
        Command::Healthcheck { url } => cli::healthcheck(url),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("camara-webrtc: {message}");
            ExitCode::FAILURE
        }
    }
}

/// mimalloc: the service allocates many small short-lived buffers per request.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
