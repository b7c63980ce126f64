//! One connection: hyper-util's HTTP/1.1-or-h2c connection, and the watchdog that closes it when
//! it overstays.
//!
//! The watchdog knows what the connection is doing from its [`Activity`]:
//! - *reading a head*: from the connection's start until its first request begins, and on HTTP/1
//!   from the first byte after a response until the next request begins. Past
//!   `Timeouts::header_read` the connection is closed without an answer (as hyper's own timeout
//!   would: no 408 is written).
//! - *idle*: no request in flight and, on HTTP/1, no byte of a next request. Past
//!   `Timeouts::idle` the connection is closed.
//! - *busy*: a request is in flight, from the service's call until hyper has taken the last frame
//!   of its response body. The handler is not timed here (`server.request_timeout_ms` bounds
//!   it), but once a response is ready the client must take it: while answered responses wait,
//!   one must be taken every `Timeouts::idle`, or the connection is closed. A client that stops
//!   reading (HTTP/1 with its socket full, HTTP/2 with a window of 0) so holds a connection, or a
//!   shutdown, no longer than an idle one.
//!
//! When the server stops, a connection that is not busy is closed at once; a busy one is told to
//! finish (HTTP/1: no keep-alive after this response; HTTP/2: GOAWAY) and is closed as soon as it
//! is no longer busy. The connection is always polled before the watchdog looks, so a response
//! hyper has taken is handed to the socket before the connection is dropped, and it is closed
//! through hyper's graceful shutdown, so an HTTP/2 client is sent GOAWAY first.

use std::io;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::http::{Request, Version};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tower::ServiceExt;

/// `server.header_read_timeout_ms` and `server.idle_timeout_ms`.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub header_read: Duration,
    pub idle: Duration,
}

/// Serves one connection until the client closes it, a timeout closes it, or the server stops
/// (`stopping` changes) and it is no longer busy.
pub(super) async fn serve(
    stream: TcpStream,
    builder: &auto::Builder<TokioExecutor>,
    router: Router,
    timeouts: Timeouts,
    mut stopping: watch::Receiver<()>,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched {
        stream,
        activity: Arc::clone(&activity),
    });
    let requests = Arc::clone(&activity);
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let mut in_flight = InFlight::start(&requests, request.version());
        let response = router.clone().oneshot(request);
        async move {
            let response = response.await?;
            in_flight.answered();
            // The body owns the guard: the request stays in flight until hyper drops it.
            Ok::<_, std::convert::Infallible>(response.map(|body| {
                body.map_frame(move |frame| {
                    let _in_flight = &in_flight;
                    frame
                })
            }))
        }
    });
    let mut connection = pin!(builder.serve_connection(io, service));
    let mut expiry = pin!(tokio::time::sleep_until(Instant::now()));
    let mut stop_requested = false;
    loop {
        let (busy, deadline) = activity.watch(timeouts);
        if stop_requested && !busy {
            break;
        }
        if let Some(deadline) = deadline
            && expiry.deadline() != deadline
        {
            expiry.as_mut().reset(deadline);
        }
        tokio::select! {
            biased;
            served = connection.as_mut() => {
                if let Err(err) = served {
                    tracing::debug!(error = %err, "connection ended with an error");
                }
                return;
            }
            () = activity.changed.notified() => {}
            () = expiry.as_mut(), if deadline.is_some() => {
                tracing::debug!(
                    busy,
                    "closing a connection: no request head, request or taken response in time"
                );
                connection.as_mut().graceful_shutdown();
                break;
            }
            _ = stopping.changed(), if !stop_requested => {
                stop_requested = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
    // No request is in flight. One more poll hands the socket what `graceful_shutdown` queued
    // (HTTP/2's GOAWAY; HTTP/1 closes an idle connection itself), then the connection is dropped.
    std::future::poll_fn(|cx| {
        let _ = connection.as_mut().poll(cx);
        Poll::Ready(())
    })
    .await;
}

/// What a connection is doing, shared by its reader ([`Watched`]), its requests ([`InFlight`])
/// and its watchdog, which every change wakes.
struct Activity {
    state: Mutex<State>,
    /// Set while an HTTP/1 connection is idle: the next read that returns bytes starts a head.
    awaiting_head: AtomicBool,
    changed: Notify,
}

struct State {
    phase: Phase,
    /// A request arrived over HTTP/2: a read is then no sign of a request head (it may be a
    /// PING, a WINDOW_UPDATE, ...), so idle is left only by a request.
    http2: bool,
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Reading a request head since then.
    Head(Instant),
    /// No request in flight since then.
    Idle(Instant),
    /// Requests in flight (HTTP/2 streams, or one HTTP/1 request), `answered` of them waiting
    /// for the client to take their responses; `since` the first of those was answered or the
    /// last answered one was taken.
    Busy {
        in_flight: usize,
        answered: usize,
        since: Instant,
    },
}

impl Activity {
    fn new() -> Self {
        Self {
            state: Mutex::new(State {
                phase: Phase::Head(Instant::now()),
                http2: false,
            }),
            awaiting_head: AtomicBool::new(false),
            changed: Notify::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state is a plain value, whole after every assignment: a poisoned lock holds it too.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether a request is in flight, and when the connection is to be closed unless something
    /// happens first (`None` while every request in flight is in its handler).
    fn watch(&self, timeouts: Timeouts) -> (bool, Option<Instant>) {
        match self.state().phase {
            Phase::Head(since) => (false, Some(since + timeouts.header_read)),
            Phase::Idle(since) => (false, Some(since + timeouts.idle)),
            Phase::Busy { answered: 0, .. } => (true, None),
            Phase::Busy { since, .. } => (true, Some(since + timeouts.idle)),
        }
    }

    /// Bytes arrived: on an idle HTTP/1 connection, the next request's head has begun.
    fn bytes_read(&self) {
        if self.awaiting_head.load(Ordering::Relaxed)
            && self.awaiting_head.swap(false, Ordering::AcqRel)
        {
            let mut state = self.state();
            if let Phase::Idle(_) = state.phase {
                state.phase = Phase::Head(Instant::now());
                drop(state);
                self.changed.notify_one();
            }
        }
    }
}

/// One request in flight; dropping it (with its response's body) ends the request.
struct InFlight {
    activity: Arc<Activity>,
    answered: bool,
}

impl InFlight {
    fn start(activity: &Arc<Activity>, version: Version) -> Self {
        let mut state = activity.state();
        state.http2 |= version == Version::HTTP_2;
        state.phase = match state.phase {
            Phase::Busy {
                in_flight,
                answered,
                since,
            } => Phase::Busy {
                in_flight: in_flight + 1,
                answered,
                since,
            },
            Phase::Head(_) | Phase::Idle(_) => Phase::Busy {
                in_flight: 1,
                answered: 0,
                since: Instant::now(),
            },
        };
        activity.awaiting_head.store(false, Ordering::Release);
        drop(state);
        activity.changed.notify_one();
        Self {
            activity: Arc::clone(activity),
            answered: false,
        }
    }

    /// The handler has returned: the response now waits for the client to take it.
    fn answered(&mut self) {
        self.answered = true;
        let mut state = self.activity.state();
        if let Phase::Busy {
            answered, since, ..
        } = &mut state.phase
        {
            if *answered == 0 {
                *since = Instant::now();
            }
            *answered += 1;
        }
        drop(state);
        self.activity.changed.notify_one();
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let activity = &self.activity;
        let mut state = activity.state();
        state.phase = match state.phase {
            Phase::Busy {
                in_flight,
                answered,
                since,
            } if in_flight > 1 => Phase::Busy {
                in_flight: in_flight - 1,
                answered: answered - usize::from(self.answered),
                // A response taken is the client's progress.
                since: if self.answered { Instant::now() } else { since },
            },
            _ => {
                activity
                    .awaiting_head
                    .store(!state.http2, Ordering::Release);
                Phase::Idle(Instant::now())
            }
        };
        drop(state);
        activity.changed.notify_one();
    }
}

/// The accepted socket, reporting to the connection's [`Activity`] when bytes arrive.
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let read = Pin::new(&mut this.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.bytes_read();
        }
        read
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
