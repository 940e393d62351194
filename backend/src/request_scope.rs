//! What every API request passes through, in one hand-written tower layer ([`RequestLayer`])
//! instead of a stack of generic ones: the request id (`x-request-id`: the client's, or a new
//! UUID-shaped one; sent back on the response), credentials marked sensitive, the request's
//! identity for logs, panics caught (→ 500), every error response in the API's JSON shape,
//! server errors logged, and the request counted in the metrics. A stack of `tower-http` layers
//! and `from_fn` middlewares did the same with a boxed future, a boxed body or a cloned service
//! per layer and a tracing span per request — together about a third of the CPU of a cheap
//! request.
//!
//! Logs identify the request without a span: the layer keeps the request's method, path and
//! id in a task-local ([`current_request`]) while the request is handled, and
//! [`RequestLogFormat`] appends them to every log line written meanwhile (`request_id=…
//! method=… path=…`). So a warning or error logged by a handler, a store or the layer itself
//! names its request, and nothing is formatted for requests that log nothing.

use crate::error::{error_response, json_error_shape};
use crate::metrics::{Metrics, UNMATCHED};
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use futures::FutureExt;
use futures::future::{CatchUnwind, OptionFuture};
use http_body::{Body as _, Frame, SizeHint};
use pin_project_lite::pin_project;
use std::convert::Infallible;
use std::fmt::{self, Write as _};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::task::futures::TaskLocalFuture;
use tower::{Layer, Service};
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::registry::LookupSpan;

/// The request id header, read from the request and set on the response.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The request being handled, as log lines name it.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    pub method: Method,
    /// The request's URI; logs show its path only (queries may carry tokens).
    pub uri: Uri,
    pub id: HeaderValue,
}

impl fmt::Display for RequestInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "request_id={} method={} path={}",
            self.id.to_str().unwrap_or("-"),
            self.method,
            self.uri.path()
        )
    }
}

tokio::task_local! {
    static CURRENT: RequestInfo;
}

/// The request the current task is handling, if any.
pub fn current_request<R>(f: impl FnOnce(&RequestInfo) -> R) -> Option<R> {
    CURRENT.try_with(f).ok()
}

/// Request ids in UUID form: 64 random bits drawn once per process, then a counter. Unique
/// across instances like random UUIDs, without asking the OS for randomness on every request
/// (`Uuid::new_v4` does: a system call per request).
#[derive(Clone)]
struct RequestIds {
    process: u64,
    next: Arc<AtomicU64>,
}

impl RequestIds {
    fn new() -> Self {
        RequestIds {
            process: uuid::Uuid::new_v4().as_u64_pair().0,
            next: Arc::default(),
        }
    }

    fn next(&self) -> HeaderValue {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let id = uuid::Uuid::from_u64_pair(self.process, n);
        let mut buf = uuid::Uuid::encode_buffer();
        let text = id.hyphenated().encode_lower(&mut buf);
        HeaderValue::from_bytes(text.as_bytes()).unwrap_or_else(|_| HeaderValue::from_static("-"))
    }
}

/// See the module documentation. `metrics: None` records nothing (for routers without
/// metrics, such as tests of the layer).
#[derive(Clone)]
pub struct RequestLayer {
    ids: RequestIds,
    limits: Limits,
    metrics: Option<Arc<Metrics>>,
}

/// What a request may take.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Until the response must have started; later, the request is answered 503 (`timeout`).
    pub timeout: Duration,
    /// The most a body read by the `Json`/`Bytes` extractors may hold (413 beyond); upload
    /// routes stream their bodies with their own limits (`routes::snapshots::UPLOAD_ROUTES`).
    pub max_body: usize,
}

impl RequestLayer {
    pub fn new(limits: Limits, metrics: Option<Arc<Metrics>>) -> Self {
        RequestLayer {
            ids: RequestIds::new(),
            limits,
            metrics,
        }
    }
}

impl<S> Layer<S> for RequestLayer {
    type Service = RequestService<S>;

    fn layer(&self, inner: S) -> RequestService<S> {
        RequestService {
            inner,
            ids: self.ids.clone(),
            limits: self.limits,
            metrics: self.metrics.clone(),
        }
    }
}

/// The service of [`RequestLayer`].
#[derive(Clone)]
pub struct RequestService<S> {
    inner: S,
    ids: RequestIds,
    limits: Limits,
    metrics: Option<Arc<Metrics>>,
}

impl<S> Service<Request> for RequestService<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = RequestFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> RequestFuture<S::Future> {
        let start = Instant::now();
        let id = match req.headers().get(REQUEST_ID) {
            Some(id) => id.clone(),
            None => {
                let id = self.ids.next();
                req.headers_mut().insert(REQUEST_ID, id.clone());
                id
            }
        };
        // Marked so that nothing printing headers (a debug log) shows credentials.
        for name in [header::AUTHORIZATION, header::COOKIE] {
            if let header::Entry::Occupied(mut entry) = req.headers_mut().entry(name) {
                entry.iter_mut().for_each(|v| v.set_sensitive(true));
            }
        }
        // A request without a body has nothing to limit (and skips an extension insert).
        if !req.body().is_end_stream() {
            DefaultBodyLimit::max(self.limits.max_body).apply(&mut req);
        }
        // Cheap clones: a known method is a constant, a URI and a matched path share their text.
        let route = self
            .metrics
            .is_some()
            .then(|| req.extensions().get::<MatchedPath>().cloned())
            .flatten();
        let info = RequestInfo {
            method: req.method().clone(),
            uri: req.uri().clone(),
            id: id.clone(),
        };
        if tracing::enabled!(tracing::Level::DEBUG) {
            CURRENT.sync_scope(info.clone(), || {
                tracing::debug!("started processing request");
            });
        }
        let done = Done {
            start,
            method: info.method.clone(),
            id,
            route,
            metrics: self.metrics.clone(),
            timeout: self.limits.timeout,
        };
        // `call` only prepares the future (handlers run when it is polled), but a panic there
        // is answered like one in the handler.
        let inner = std::panic::catch_unwind(AssertUnwindSafe(|| self.inner.call(req)))
            .ok()
            .map(|future| AssertUnwindSafe(future).catch_unwind());
        RequestFuture {
            inner: CURRENT.scope(info, OptionFuture::from(inner)),
            timer: None,
            done: Some(done),
        }
    }
}

pin_project! {
    /// The future of [`RequestService`]: the inner service's, with the request's identity set
    /// while it runs, its panics caught and its time limited.
    pub struct RequestFuture<F> {
        #[pin]
        inner: TaskLocalFuture<RequestInfo, OptionFuture<CatchUnwind<AssertUnwindSafe<F>>>>,
        // Started on the first poll that has to wait: most requests answer on their first
        // poll, and a timer costs a registration with the runtime (and, kept inline, would make
        // every request's future larger).
        timer: Option<Pin<Box<tokio::time::Sleep>>>,
        done: Option<Done>,
    }
}

/// How the inner service ended.
enum Outcome {
    Answered(Response),
    Panicked,
    TimedOut,
}

impl<F> Future for RequestFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let Some(timeout) = this.done.as_ref().map(|d| d.timeout) else {
            // Polled after it answered (a caller's bug): nothing more will come.
            return Poll::Pending;
        };
        let outcome = match this.inner.as_mut().poll(cx) {
            Poll::Ready(Some(Ok(Ok(response)))) => Outcome::Answered(response),
            Poll::Ready(Some(Ok(Err(never)))) => match never {},
            // The panic's message may carry request data: the panic hook logs it, it is not sent.
            Poll::Ready(Some(Err(_))) | Poll::Ready(None) => Outcome::Panicked,
            Poll::Pending => {
                let start = this.done.as_ref().map_or_else(Instant::now, |d| d.start);
                let timer = this.timer.get_or_insert_with(|| {
                    Box::pin(tokio::time::sleep(timeout.saturating_sub(start.elapsed())))
                });
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Outcome::TimedOut,
                    Poll::Pending => return Poll::Pending,
                }
            }
        };
        let info = this.inner.take_value();
        let Some(done) = this.done.take() else {
            return Poll::Pending;
        };
        let finish = move || done.finish(outcome);
        Poll::Ready(Ok(match info {
            Some(info) => CURRENT.sync_scope(info, finish),
            None => finish(),
        }))
    }
}

/// What [`Done::finish`] needs of the request.
struct Done {
    start: Instant,
    method: Method,
    id: HeaderValue,
    route: Option<MatchedPath>,
    metrics: Option<Arc<Metrics>>,
    timeout: Duration,
}

impl Done {
    /// The response as it leaves: in the JSON error shape, with the request id, logged (server
    /// errors at `error`, every response at `debug`) and counted. Runs inside the request's
    /// scope.
    fn finish(self, outcome: Outcome) -> Response {
        let response = match outcome {
            Outcome::Answered(response) => response,
            Outcome::Panicked => {
                tracing::error!("a request handler panicked");
                error_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error",
                )
            }
            // Made JSON (`timeout`) below, like any bare error status.
            Outcome::TimedOut => Response::builder()
                .status(StatusCode::SERVICE_UNAVAILABLE)
                .body(Body::empty())
                .unwrap_or_default(),
        };
        let mut response = json_error_shape(response);
        let status = response.status();
        if !response.headers().contains_key(REQUEST_ID) {
            response.headers_mut().insert(REQUEST_ID, self.id);
        }
        let latency = self.start.elapsed();
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), ?latency, "response failed");
        }
        tracing::debug!(
            status = status.as_u16(),
            ?latency,
            "finished processing request"
        );
        if let Some(metrics) = &self.metrics {
            metrics.observe(
                self.method.as_str(),
                self.route.as_ref().map_or(UNMATCHED, MatchedPath::as_str),
                status.as_u16(),
                latency.as_secs_f64(),
            );
        }
        // A body already in memory cannot fail; one that streams is watched so that a failure
        // while sending it is logged with its request.
        if response.body().size_hint().exact().is_some() {
            return response;
        }
        match current_request(RequestInfo::clone) {
            Some(info) => response.map(|inner| {
                Body::new(WatchedBody {
                    inner,
                    info,
                    start: Instant::now(),
                })
            }),
            None => response,
        }
    }
}

/// A streamed response body whose failure (or end, at `debug`) is logged with its request.
struct WatchedBody {
    inner: Body,
    info: RequestInfo,
    start: Instant,
}

impl http_body::Body for WatchedBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<bytes::Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Err(error))) => CURRENT.sync_scope(self.info.clone(), || {
                tracing::error!(%error, stream_duration = ?self.start.elapsed(), "response failed");
            }),
            Poll::Ready(None) => CURRENT.sync_scope(self.info.clone(), || {
                tracing::debug!(stream_duration = ?self.start.elapsed(), "end of stream");
            }),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// An event format that appends the current request ([`current_request`]) to each line logged
/// while handling one: `… request_id=… method=… path=…`. Other lines are `F`'s unchanged.
/// Lines with a request are written without colours.
pub struct RequestLogFormat<F>(pub F);

impl<S, N, F> FormatEvent<S, N> for RequestLogFormat<F>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'w> FormatFields<'w> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> fmt::Result {
        let mut line = String::new();
        let formatted = current_request(|info| {
            self.0.format_event(ctx, Writer::new(&mut line), event)?;
            let end = line.trim_end_matches('\n').len();
            line.truncate(end);
            writeln!(line, " {info}")
        });
        match formatted {
            Some(result) => {
                result?;
                writer.write_str(&line)
            }
            None => self.0.format_event(ctx, writer, event),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use tracing_subscriber::fmt::MakeWriter;

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Lines {
        type Writer = Lines;
        fn make_writer(&'a self) -> Lines {
            self.clone()
        }
    }

    impl Lines {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().expect("lines").clone()).expect("utf-8")
        }
    }

    fn subscriber(lines: &Lines) -> impl tracing::Subscriber + Send + Sync {
        tracing_subscriber::fmt()
            .with_writer(lines.clone())
            .with_ansi(false)
            .with_target(false)
            .map_event_format(RequestLogFormat)
            .finish()
    }

    #[test]
    fn lines_logged_while_handling_a_request_name_it() {
        let lines = Lines::default();
        tracing::subscriber::with_default(subscriber(&lines), || {
            tracing::warn!("outside");
            let info = RequestInfo {
                method: Method::POST,
                uri: Uri::from_static("/api/v1/projects?token=secret"),
                id: HeaderValue::from_static("abc-123"),
            };
            CURRENT.sync_scope(info, || tracing::error!(detail = "boom", "inside"));
        });
        let text = lines.text();
        let got: Vec<&str> = text.lines().collect();
        assert_eq!(got.len(), 2, "{text}");
        assert!(got[0].ends_with("WARN outside"), "{text}");
        assert!(
            got[1].ends_with(
                "ERROR inside detail=\"boom\" request_id=abc-123 method=POST path=/api/v1/projects"
            ),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_failing_request_is_logged_with_its_id_and_answers_in_the_error_shape() {
        use axum::routing::get;
        use tower::ServiceExt;
        let lines = Lines::default();
        let _guard = tracing::subscriber::set_default(subscriber(&lines));
        let limits = Limits {
            timeout: Duration::from_secs(10),
            max_body: 1024,
        };
        let router = axum::Router::new()
            .route(
                "/fails",
                get(|| async {
                    tracing::warn!("the handler gives up");
                    StatusCode::BAD_GATEWAY
                }),
            )
            .layer(RequestLayer::new(limits, None));
        let request = Request::builder()
            .uri("/fails")
            .header(REQUEST_ID, "abc-123")
            .body(Body::empty())
            .expect("request");
        let response = router.oneshot(request).await.expect("infallible");
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(response.headers()[REQUEST_ID], "abc-123");
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        let body: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(body["error"]["code"], "internal");
        let text = lines.text();
        let got: Vec<&str> = text.lines().collect();
        assert_eq!(got.len(), 2, "{text}");
        assert!(
            got[0].ends_with("WARN the handler gives up request_id=abc-123 method=GET path=/fails"),
            "{text}"
        );
        assert!(
            got[1].contains("ERROR response failed status=502"),
            "{text}"
        );
        assert!(
            got[1].ends_with("request_id=abc-123 method=GET path=/fails"),
            "{text}"
        );
    }
}
