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
//! - *busy*: a request is in flight, from the service's call until hyper drops its response
//!   body. The handler is not timed here (`server.request_timeout_ms` bounds it), nor is a body
//!   waiting for its own next frame (a stream with nothing to say). But a response body that has a
//!   frame ready waits on the client, from the handler's answer until hyper takes the frame: while
//!   any does, one must be taken every `Timeouts::idle`, or the connection is closed. An HTTP/2
//!   client that grants no flow-control window so holds a connection, or a shutdown, no longer
//!   than an idle one.
//!
//! When the server stops, a connection still reading a head is closed at once. Every other one is
//! told to finish (HTTP/1: no keep-alive after this response; HTTP/2: GOAWAY): a busy one goes on
//! until its requests are answered, and then, like an idle one, until hyper has flushed what it
//! queued and closes it — bounded by the idle timeout, so a response taken whole is not cut short
//! by the stop.

use std::io;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Version};
use hyper::body::{Bytes, Frame, Incoming, SizeHint};
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
/// (`stopping` changes) and it has finished as the module says.
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
            in_flight.waiting_on_client(true);
            // The body owns the guard: the request stays in flight until hyper drops it.
            Ok::<_, std::convert::Infallible>(response.map(|body| ResponseBody { body, in_flight }))
        }
    });
    let mut connection = pin!(builder.serve_connection(io, service));
    let mut expiry = pin!(tokio::time::sleep_until(Instant::now()));
    let mut stop_requested = false;
    loop {
        let (phase, deadline) = activity.watch(timeouts);
        if stop_requested && phase == Watch::ReadingHead {
            break;
        }
        if let Some(deadline) = deadline {
            // Progress moves a deadline later without waking the watchdog: it looks again when
            // the old one passes.
            if deadline <= Instant::now() {
                tracing::debug!(
                    ?phase,
                    "closing a connection: no request head, request or taken response in time"
                );
                connection.as_mut().graceful_shutdown();
                break;
            }
            if expiry.deadline() != deadline {
                expiry.as_mut().reset(deadline);
            }
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
            () = expiry.as_mut(), if deadline.is_some() => {}
            _ = stopping.changed(), if !stop_requested => {
                stop_requested = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
    // One more poll hands the socket what `graceful_shutdown` queued (HTTP/2's GOAWAY), then the
    // connection is dropped.
    std::future::poll_fn(|cx| {
        let _ = connection.as_mut().poll(cx);
        Poll::Ready(())
    })
    .await;
}

/// What the watchdog sees of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Watch {
    ReadingHead,
    Idle,
    Busy,
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
    /// Requests in flight (HTTP/2 streams, or one HTTP/1 request), `waiting` of them with a
    /// response waiting on the client; `since` the last of those began to wait or had a frame
    /// taken.
    Busy {
        in_flight: usize,
        waiting: usize,
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

    /// What the connection is doing, and when it is to be closed unless something happens first
    /// (`None` while no response waits on the client).
    fn watch(&self, timeouts: Timeouts) -> (Watch, Option<Instant>) {
        match self.state().phase {
            Phase::Head(since) => (Watch::ReadingHead, Some(since + timeouts.header_read)),
            Phase::Idle(since) => (Watch::Idle, Some(since + timeouts.idle)),
            Phase::Busy { waiting: 0, .. } => (Watch::Busy, None),
            Phase::Busy { since, .. } => (Watch::Busy, Some(since + timeouts.idle)),
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
    /// Its response waits on the client (counted in `Phase::Busy::waiting`).
    waiting: bool,
}

impl InFlight {
    fn start(activity: &Arc<Activity>, version: Version) -> Self {
        let mut state = activity.state();
        state.http2 |= version == Version::HTTP_2;
        state.phase = match state.phase {
            Phase::Busy {
                in_flight,
                waiting,
                since,
            } => Phase::Busy {
                in_flight: in_flight + 1,
                waiting,
                since,
            },
            Phase::Head(_) | Phase::Idle(_) => Phase::Busy {
                in_flight: 1,
                waiting: 0,
                since: Instant::now(),
            },
        };
        activity.awaiting_head.store(false, Ordering::Release);
        drop(state);
        activity.changed.notify_one();
        Self {
            activity: Arc::clone(activity),
            waiting: false,
        }
    }

    /// Whether the response waits on the client: `true` once the handler has answered and each
    /// time hyper takes a frame of the body (the client's progress); `false` while the body
    /// waits for its own next frame, and once it has ended. The watchdog is woken only when the
    /// first response begins to wait, which gives it a deadline; progress only moves it later.
    fn waiting_on_client(&mut self, waiting: bool) {
        if !waiting && !self.waiting {
            return;
        }
        let mut state = self.activity.state();
        let mut first = false;
        if let Phase::Busy {
            waiting: count,
            since,
            ..
        } = &mut state.phase
        {
            match (waiting, self.waiting) {
                (true, true) => *since = Instant::now(),
                (true, false) => {
                    *since = Instant::now();
                    *count += 1;
                    first = *count == 1;
                }
                (false, _) => *count -= 1,
            }
        }
        drop(state);
        self.waiting = waiting;
        if first {
            self.activity.changed.notify_one();
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let activity = &self.activity;
        let mut state = activity.state();
        state.phase = match state.phase {
            Phase::Busy {
                in_flight,
                waiting,
                since,
            } if in_flight > 1 => Phase::Busy {
                in_flight: in_flight - 1,
                waiting: waiting - usize::from(self.waiting),
                since,
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

/// A response body and its request's [`InFlight`]: what hyper does with the body tells the
/// watchdog whether the response waits on the client.
struct ResponseBody {
    body: Body,
    in_flight: InFlight,
}

impl hyper::body::Body for ResponseBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        // A frame handed over waits until hyper polls again; a pending body waits on itself.
        this.in_flight
            .waiting_on_client(matches!(polled, Poll::Ready(Some(Ok(_)))));
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
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

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUTS: Timeouts = Timeouts {
        header_read: Duration::from_secs(10),
        idle: Duration::from_secs(60),
    };

    /// A response is timed only while it waits on the client: a body with nothing to say yet (a
    /// stream between two events) leaves the connection untimed, however long it lasts.
    #[tokio::test(start_paused = true)]
    async fn only_a_response_waiting_on_the_client_is_timed() {
        let activity = Arc::new(Activity::new());
        assert_eq!(activity.watch(TIMEOUTS).0, Watch::ReadingHead);
        let mut request = InFlight::start(&activity, Version::HTTP_2);
        assert_eq!(activity.watch(TIMEOUTS), (Watch::Busy, None));
        request.waiting_on_client(true);
        let answered = Instant::now();
        assert_eq!(
            activity.watch(TIMEOUTS),
            (Watch::Busy, Some(answered + TIMEOUTS.idle))
        );
        // A frame taken later is progress: the deadline moves.
        tokio::time::advance(Duration::from_secs(5)).await;
        request.waiting_on_client(true);
        assert_eq!(
            activity.watch(TIMEOUTS),
            (
                Watch::Busy,
                Some(answered + Duration::from_secs(5) + TIMEOUTS.idle)
            )
        );
        // The body waits for its own next frame: untimed.
        request.waiting_on_client(false);
        assert_eq!(activity.watch(TIMEOUTS), (Watch::Busy, None));
        // A second stream's response waits while the first is quiet.
        let mut second = InFlight::start(&activity, Version::HTTP_2);
        second.waiting_on_client(true);
        assert_eq!(
            activity.watch(TIMEOUTS).1,
            Some(Instant::now() + TIMEOUTS.idle)
        );
        drop(second);
        assert_eq!(activity.watch(TIMEOUTS), (Watch::Busy, None));
        drop(request);
        assert_eq!(
            activity.watch(TIMEOUTS),
            (Watch::Idle, Some(Instant::now() + TIMEOUTS.idle))
        );
    }
}
