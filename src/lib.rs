//! camara-webrtc: the CAMARA WebRTC call-handling API as a stateful, strict HTTP service.
//!
//! [`build_app`] turns a [`Config`] into the real router (tests drive it on an ephemeral port);
//! [`run`] serves it on a listener until a shutdown signal, finishing in-flight requests.

pub mod auth;
pub mod config;
pub mod domain;
pub mod http;
pub mod store;
pub mod telemetry;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;

pub use config::{Config, ConfigError};
pub use http::AppState;

use crate::auth::Verifier;
use crate::store::{MemoryStore, SessionStore, StoreError};

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("loading fixture sessions: {0}")]
    Fixtures(StoreError),
    #[error("serving HTTP: {0}")]
    Io(#[from] std::io::Error),
}

/// The application state for `config`: verification keys, the store, and the fixture sessions
/// (inserted only where absent, so a restart never overwrites live state).
pub async fn build_state(config: Config) -> Result<AppState, StartError> {
    config.validate()?;
    let verifier = Verifier::from_config(&config.auth)?;
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new(
        config.sessions.max_sessions,
        Duration::from_secs(config.sessions.ended_ttl_seconds),
    ));
    for session in config.fixture_sessions()? {
        match store.insert(session).await {
            Ok(_) | Err(StoreError::AlreadyExists) => {}
            Err(err) => return Err(StartError::Fixtures(err)),
        }
    }
    Ok(AppState::new(Arc::new(config), store, Arc::new(verifier)))
}

/// The real router for `config`.
pub async fn build_app(config: Config) -> Result<Router, StartError> {
    Ok(http::router(build_state(config).await?))
}

/// Serves the app on `listener` until `shutdown` resolves, then lets in-flight requests finish.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let app = build_app(config).await?;
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}
