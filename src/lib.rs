//! camara-webrtc: the CAMARA WebRTC call-handling API as a stateful, strict HTTP service.
//!
//! [`run`] builds the service for a [`Config`] and serves it on a listener until a shutdown signal,
//! finishing in-flight requests; [`Application`] is the same in two steps, for tests that need the
//! running service's state.

pub mod auth;
pub mod config;
pub mod domain;
pub mod events;
pub mod http;
pub mod network;
mod server;
pub mod store;
pub mod telemetry;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

pub use config::{Config, ConfigError};
pub use http::AppState;

use crate::auth::Verifier;
use crate::config::Backend;
use crate::domain::Session;
use crate::store::{Limits, MemoryStore, RedisStore, StoreError, Stores};

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("the session store: {0}")]
    Store(StoreError),
    #[error("serving HTTP: {0}")]
    Io(#[from] std::io::Error),
}

/// The application state for `config`: verification keys, the store, and the fixture sessions
/// (inserted only where absent, so a restart never overwrites live state).
pub async fn build_state(config: Config) -> Result<AppState, StartError> {
    config.validate()?;
    let verifier = Arc::new(Verifier::from_config(&config.auth)?);
    // A JWKS that cannot be read yet does not stop the start: tokens only it could verify are
    // refused (and /health/ready says so) until a read succeeds.
    if let Err(e) = verifier.load_keys().await {
        tracing::error!(error = %e, "JWKS not read: tokens only it could verify are refused until a read succeeds");
    }
    tokio::spawn(Verifier::keep_keys_fresh(Arc::downgrade(&verifier)));
    let feed = Arc::new(events::Feed::new(config.network.admin_api));
    let stores = open_store(&config, &feed).await?;
    let dispatcher = events::Dispatcher::new(
        &config.events,
        events::SinkGuard::from_config(&config.events),
        Arc::clone(&stores.subscriptions),
        Arc::clone(&feed),
    )
    .map_err(|reason| ConfigError::Invalid {
        key: "events.ca_file".into(),
        reason,
    })?;
    let events = Arc::new(events::Events::start(
        &config.events,
        &stores,
        Arc::new(dispatcher),
        Arc::clone(&feed),
    ));
    let network = Arc::new(network::Network::from_config(&config.network));
    tokio::spawn(
        network::timers::Scheduler {
            sessions: Arc::downgrade(&stores.sessions),
            registrations: Arc::downgrade(&stores.registrations),
            subscriptions: Arc::downgrade(&stores.subscriptions),
            timers: Arc::downgrade(&stores.timers),
            lease: Duration::from_millis(config.events.claim_idle_ms),
            end_calls_on_expiry: config.registration.end_calls_on_expiry,
            idle_ttl: Duration::from_secs(config.sessions.idle_ttl_seconds),
            wake: network.waker(),
        }
        .run(),
    );
    let fixtures = Fixtures {
        sessions: config.fixture_sessions()?,
        registrations: config.fixture_registrations()?,
        subscriptions: config.fixture_subscriptions()?,
    };
    seed_fixtures(&stores, Arc::new(fixtures)).await?;
    Ok(AppState::new(
        Arc::new(config),
        stores,
        verifier,
        events,
        network,
        feed,
    ))
}

/// The configured store family. A Redis store connects lazily, so an unreachable Redis does not
/// stop the service from starting (it answers 503 until Redis is back); with it, `feed` (when
/// on) goes through Redis to every replica.
async fn open_store(config: &Config, feed: &Arc<events::Feed>) -> Result<Stores, StartError> {
    let sessions = &config.sessions;
    let limits = Limits {
        capacity: sessions.max_sessions,
        per_owner: sessions.max_sessions_per_consumer,
        ended_ttl: Duration::from_secs(sessions.ended_ttl_seconds),
    };
    Ok(match config.store.backend {
        Backend::Memory => Stores::on(MemoryStore::new(limits)),
        Backend::Redis => {
            let url = config
                .store
                .redis_url
                .as_ref()
                .map(|u| u.expose())
                .unwrap_or_default();
            let store = RedisStore::new(
                url,
                &config.store.key_prefix,
                limits,
                Duration::from_millis(config.store.timeout_ms),
            )
            .map_err(StartError::Store)?
            .with_claim_idle(Duration::from_millis(config.events.claim_idle_ms));
            // Counts of a store written before they were kept; with Redis unreachable now, the
            // first metrics scrape builds them.
            if let Err(e) = store.reconcile().await {
                tracing::warn!(error = %e, "session counts not reconciled yet");
            }
            if feed.is_on() {
                feed.relay_through(store.relay_feed(Arc::downgrade(feed)));
            }
            Stores::on(store)
        }
    })
}

/// What the configuration loads at start.
struct Fixtures {
    sessions: Vec<Session>,
    registrations: Vec<domain::Registration>,
    subscriptions: Vec<domain::Subscription>,
}

/// Inserts the fixtures where absent, so a replica that starts or restarts never overwrites live
/// state. While the store is unreachable this goes on in the background, once a second, until it
/// succeeds.
async fn seed_fixtures(stores: &Stores, fixtures: Arc<Fixtures>) -> Result<(), StartError> {
    match insert_absent(stores, &fixtures).await {
        Ok(()) => Ok(()),
        Err(StoreError::Unavailable(cause)) => {
            tracing::warn!(
                cause = cause.as_str(),
                "session store unavailable; fixtures will be loaded when it answers"
            );
            let stores = stores.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    match insert_absent(&stores, &fixtures).await {
                        Ok(()) => {
                            tracing::info!("fixtures loaded");
                            break;
                        }
                        Err(StoreError::Unavailable(_)) => continue,
                        Err(err) => {
                            tracing::error!(%err, "fixtures cannot be loaded");
                            break;
                        }
                    }
                }
            });
            Ok(())
        }
        Err(err) => Err(StartError::Store(err)),
    }
}

/// Inserts each fixture unless it is there already.
async fn insert_absent(stores: &Stores, fixtures: &Fixtures) -> Result<(), StoreError> {
    fn absent<T>(done: Result<T, StoreError>) -> Result<(), StoreError> {
        match done {
            Ok(_) | Err(StoreError::AlreadyExists) => Ok(()),
            Err(err) => Err(err),
        }
    }
    for session in &fixtures.sessions {
        absent(stores.sessions.insert(session.clone()).await)?;
    }
    let now = store::now_ms();
    for registration in &fixtures.registrations {
        let done = stores
            .registrations
            .register(registration.clone(), usize::MAX, now);
        absent(done.await)?;
    }
    for subscription in &fixtures.subscriptions {
        let done = stores
            .subscriptions
            .subscribe(subscription.clone(), usize::MAX, now);
        absent(done.await)?;
    }
    Ok(())
}

/// The service, built and bound, not yet serving: [`Application::build`] then
/// [`Application::run_until_stopped`]. The binary and the test harness both start it this way
/// (through [`run`] or directly), so tests exercise exactly what production runs.
pub struct Application {
    state: AppState,
    listener: TcpListener,
    /// The listener of `server.metrics_listen`, when `/metrics` has one of its own.
    metrics: Option<TcpListener>,
}

impl Application {
    /// Validates `config`, opens the store, loads the fixtures, takes `listener` and binds
    /// `server.metrics_listen` when it is set.
    pub async fn build(config: Config, listener: TcpListener) -> Result<Self, StartError> {
        let metrics = match config.server.metrics_listen.as_str() {
            "" => None,
            address => {
                Some(
                    TcpListener::bind(address)
                        .await
                        .map_err(|e| ConfigError::Invalid {
                            key: "server.metrics_listen".into(),
                            reason: format!("cannot listen on {address}: {e}"),
                        })?,
                )
            }
        };
        let state = build_state(config).await?;
        Ok(Self {
            state,
            listener,
            metrics,
        })
    }

    /// The address `/metrics` is served on when `server.metrics_listen` is set.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.metrics.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The address the service answers on (the real port when bound to port 0).
    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    /// The state the running service will share: its store, verifier and configuration.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then stops accepting connections, closes those with no
    /// request in flight, and lets in-flight requests finish for at most
    /// `server.shutdown_grace_seconds` (see `server` for every guarantee of the accept loop).
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let limits = server::Limits::new(&self.state.config.server);
        server::warn_if_beyond_file_limit(
            limits.max_connections,
            1 + usize::from(self.metrics.is_some()),
        );
        // One shutdown signal for both listeners.
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let feed = Arc::clone(&self.state.feed);
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop.send(true);
            // The console's streams never end by themselves: they end here, so that they do
            // not hold the shutdown for its whole grace period.
            feed.close();
        });
        let until_stopped = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        let metrics = self.metrics.map(|listener| {
            let app = http::metrics_router(self.state.clone());
            server::serve(listener, app, limits, until_stopped(stopped.clone()))
        });
        let app = http::router(self.state);
        let main = server::serve(self.listener, app, limits, until_stopped(stopped));
        let served = async {
            match metrics {
                Some(metrics) => {
                    tokio::join!(main, metrics);
                }
                None => main.await,
            }
        };
        tokio::select! {
            () = telemetry::metrics::upkeep() => {}
            () = served => {}
        }
        Ok(())
    }
}

/// Builds the service for `config` and serves it on `listener` until `shutdown` resolves.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    Application::build(config, listener)
        .await?
        .run_until_stopped(shutdown)
        .await
}
