//! The listener: HTTP/1.1 connections served by hyper with the limits a public service needs.
//!
//! - **Header read timeout**: a request head must arrive whole within `header_read_timeout`,
//!   else the connection is closed. hyper starts this timer whenever it waits for a head, so it
//!   is also the idle timeout of a kept-alive connection and of a socket that never sends.
//! - **Body timeout**: a request body must arrive whole within `body_timeout` of its head
//!   (`upload_body_timeout` for result-file uploads); else 408 and the connection is closed.
//! - **Connection cap**: at most `max_connections` at once; beyond, new connections wait in the
//!   kernel's backlog and are not accepted until one ends. Accept errors (a file-descriptor
//!   limit) pause accepting briefly instead of ending the server.
//!
//! Each request carries the peer's address (`ConnectInfo`) for the login throttle.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tower::ServiceExt as _;

/// The text a body timeout carries, so extractors can answer 408 rather than 400.
pub const BODY_TIMEOUT_TEXT: &str = "the request body did not arrive in time";

/// Limits of the listener (README "Security").
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// A request head must arrive within this; also how long an idle connection stays open.
    pub header_read_timeout: Duration,
    /// A JSON request body must arrive whole within this of its head.
    pub body_timeout: Duration,
    /// A result-file upload must arrive whole within this of its head.
    pub upload_body_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_read_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            upload_body_timeout: Duration::from_secs(600),
            max_connections: 1024,
        }
    }
}

/// A body that fails once its deadline passes, and says whether it was read to its end.
struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<tokio::time::Sleep>>,
    finished: Arc<std::sync::atomic::AtomicBool>,
}

#[derive(Debug)]
struct BodyTimedOut;

impl std::fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(BODY_TIMEOUT_TEXT)
    }
}

impl std::error::Error for BodyTimedOut {}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut)))),
                Poll::Pending => Poll::Pending,
            },
            Poll::Ready(None) => {
                this.finished
                    .store(true, std::sync::atomic::Ordering::SeqCst);
                Poll::Ready(None)
            }
            ready => ready,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Gives every request body its deadline (the middleware of [`crate::router`]).
pub async fn body_deadline(
    axum::extract::State(state): axum::extract::State<crate::AppState>,
    req: Request,
    next: Next,
) -> Response {
    let limits = &state.settings().http;
    let timeout = if req.uri().path() == "/ops/v1/result-files" {
        limits.upload_body_timeout
    } else {
        limits.body_timeout
    };
    let (parts, body) = req.into_parts();
    let finished = Arc::new(std::sync::atomic::AtomicBool::new(
        http_body::Body::is_end_stream(&body),
    ));
    let body = Body::new(DeadlineBody {
        inner: body,
        deadline: Box::pin(tokio::time::sleep(timeout)),
        finished: finished.clone(),
    });
    let mut response = next.run(Request::from_parts(parts, body)).await;
    // Answered without reading the body (a 401, 404, 405, 415 refused before it): the rest of it
    // is still on the connection, so it cannot carry another request. Say so, so that the client
    // does not send one on it and find it closed.
    if response.status() == axum::http::StatusCode::REQUEST_TIMEOUT
        || !finished.load(std::sync::atomic::Ordering::SeqCst)
    {
        // The rest of a late body may still come: close instead of reading it.
        response.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    response
}

/// Whether an error text says the body timed out.
pub fn is_body_timeout(text: &str) -> bool {
    text.contains(BODY_TIMEOUT_TEXT)
}

/// Serves `router` on `listener` with `limits` until `shutdown` completes; then stops
/// accepting and lets each connection finish the request it is in.
pub async fn serve_http(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stop, stopped) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(s) => s,
                Err(_) => break,
            },
            _ = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait, keep the listener.
                    tracing::warn!(error = %e, "accepting a connection failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(req.map(Body::new))
        });
        let mut stopped = stopped.clone();
        let header_timeout = limits.header_read_timeout;
        // Finished connections are reaped so the set does not grow.
        while connections.try_join_next().is_some() {}
        connections.spawn(async move {
            let _slot = slot;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .keep_alive(true);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                done = connection.as_mut() => {
                    if let Err(e) = done {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                }
                _ = async { let _ = stopped.wait_for(|s| *s).await; } => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
    let _ = stop.send(true);
    drop(listener);
    while connections.join_next().await.is_some() {}
    Ok(())
}
