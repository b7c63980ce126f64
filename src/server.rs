//! The HTTP server: an accept loop on hyper-util that serves the axum router over HTTP/1.1 and
//! h2c (HTTP/2 with prior knowledge) on one listener.
//!
//! What it guarantees:
//! - At most `server.max_connections` connections are open at once: a permit is taken before
//!   `accept()` and held for the connection's life, so further clients wait in the kernel's
//!   backlog until one closes.
//! - Every connection is watched ([`connection`]): a request head must arrive within
//!   `server.header_read_timeout_ms`, and a connection with no request in flight is closed after
//!   `server.idle_timeout_ms`.
//! - An accept error (EMFILE, ENFILE, ENOBUFS, ...) never ends the server: it is logged (the first
//!   of a run, then one in ten) and accepting resumes after a short pause.
//! - Accepted sockets have `TCP_NODELAY` set.
//! - On shutdown the listener is closed at once and so is every connection with no request in
//!   flight (idle, or still sending a head); requests in flight get `server.shutdown_grace_seconds`
//!   to finish, their connections closing as each finishes. When the grace is up the connections
//!   left are dropped, and [`serve`] returns.

mod connection;

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;

use crate::config::ServerConfig;

/// How long accepting pauses after an accept error other than a connection the peer gave up.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// The most an HTTP/1 connection buffers (hyper's `max_buf_size`): a request head must fit, so
/// a connection still sending its head holds at most this much (hyper's default is about
/// 400 KiB, 4 GB over 10,000 connections). Larger heads get 431. HTTP/2 header lists are bounded
/// by hyper's own default, 16 KiB.
const MAX_HEAD_BYTES: usize = 32 * 1024;

/// File descriptors the process needs besides its connections: listeners, Redis, the JWKS
/// client, the runtime's own, standard streams.
const FILE_RESERVE: u64 = 64;

/// The `[server]` keys the server itself applies.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub timeouts: connection::Timeouts,
    pub shutdown_grace: Duration,
}

impl Limits {
    pub fn new(server: &ServerConfig) -> Self {
        Self {
            max_connections: server.max_connections,
            timeouts: connection::Timeouts {
                header_read: Duration::from_millis(server.header_read_timeout_ms),
                idle: Duration::from_millis(server.idle_timeout_ms),
            },
            shutdown_grace: Duration::from_secs(server.shutdown_grace_seconds),
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then shuts down as the module says.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let builder = Arc::new(builder());
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let (stop, stopping) = watch::channel(());
    let mut connections = JoinSet::new();
    let mut shutdown = pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            // Reaps finished connections, so the set holds only open ones.
            Some(_) = connections.join_next() => {}
            (stream, permit) = accept(&listener, &permits) => {
                let (builder, router, stopping) =
                    (Arc::clone(&builder), router.clone(), stopping.clone());
                connections.spawn(async move {
                    connection::serve(stream, &builder, router, limits.timeouts, stopping).await;
                    drop(permit);
                });
            }
        }
    }
    drop(listener);
    let _ = stop.send(());
    let grace = limits.shutdown_grace;
    let finished = tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if finished.is_err() {
        tracing::warn!(
            grace_seconds = grace.as_secs(),
            connections = connections.len(),
            "in-flight requests outlived the grace period; closing their connections"
        );
        connections.shutdown().await;
    }
}

/// Warns when `max_connections` connections on each of `listeners`, and [`FILE_RESERVE`], would
/// not fit the process's open-file limit (Linux's `/proc/self/limits`; elsewhere nothing is
/// said): beyond it, accepts fail with `EMFILE` before the limit the operator configured is
/// reached.
pub fn warn_if_beyond_file_limit(max_connections: usize, listeners: usize) {
    let Ok(limits) = std::fs::read_to_string("/proc/self/limits") else {
        return;
    };
    let Some(soft) = open_file_limit(&limits) else {
        return;
    };
    let needed = u64::try_from(max_connections.saturating_mul(listeners))
        .unwrap_or(u64::MAX)
        .saturating_add(FILE_RESERVE);
    if needed > soft {
        tracing::warn!(
            max_connections,
            listeners,
            open_file_limit = soft,
            reserve = FILE_RESERVE,
            "server.max_connections does not fit the open-file limit: raise `ulimit -n` \
             (Docker: --ulimit nofile=N) or lower server.max_connections"
        );
    }
}

/// The soft limit of the "Max open files" line of `/proc/self/limits` (`None` when unlimited
/// or not found).
fn open_file_limit(limits: &str) -> Option<u64> {
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// hyper-util's connection builder: HTTP/1.1, or HTTP/2 when the client opens with its preface.
fn builder() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // hyper's own header-read timeout is off: hyper 1.x starts it as soon as a response is
    // written, so it would also bound the wait for the next request. The connection's watchdog
    // times heads and idle connections apart.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .max_buf_size(MAX_HEAD_BYTES);
    builder.http2().timer(TokioTimer::new());
    builder
}

/// The next connection, once a permit for it is free. A failed accept is retried after
/// [`ACCEPT_PAUSE`] (at once when the peer had already given up), logged the first time and then
/// once in ten. Cancel-safe: dropping it mid-way loses no connection.
async fn accept(
    listener: &TcpListener,
    permits: &Arc<Semaphore>,
) -> (TcpStream, OwnedSemaphorePermit) {
    let Ok(permit) = Arc::clone(permits).acquire_owned().await else {
        unreachable!("the connection semaphore is never closed")
    };
    let mut failures: u64 = 0;
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                if let Err(err) = stream.set_nodelay(true) {
                    tracing::debug!(%err, "TCP_NODELAY could not be set");
                }
                return (stream, permit);
            }
            Err(err) if is_connection_error(&err) => {}
            Err(err) => {
                failures += 1;
                if failures % 10 == 1 {
                    tracing::warn!(%err, failures, "cannot accept connections; retrying");
                }
                tokio::time::sleep(ACCEPT_PAUSE).await;
            }
        }
    }
}

/// An error about one connection the peer gave up before it was accepted, not about the
/// listener.
fn is_connection_error(err: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(
        err.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_open_file_limit_is_the_soft_one() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max processes             63451                63451                processes \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(open_file_limit(limits), Some(1024));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(open_file_limit(unlimited), None);
        assert_eq!(open_file_limit("Max processes 1 1 processes\n"), None);
    }
}
