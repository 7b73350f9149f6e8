//! `tcanet-infer serve`: the model behind the KServe v2 HTTP/REST protocol,
//! as Triton Inference Server speaks it, so Triton's clients
//! (`tritonclient.http`, `perf_analyzer`, curl) work unchanged.
//!
//! Endpoints: `GET /v2/health/live`, `/v2/health/ready`, `/v2` (server
//! metadata), `/v2/models/<name>[/versions/1]` (model metadata),
//! `.../ready`, `.../config`, `POST .../infer` (JSON tensors or the binary
//! tensor data extension), `POST /v2/repository/index`, and `GET /metrics`
//! (Prometheus text). Two models ([`models`]): `tcanet`, the network's raw
//! outputs, and `tcanet_refine`, the refined proposals after the
//! post-processing exactly as `tcanet-infer run`.
//!
//! Concurrent requests are batched ([`batcher`]); the queue is bounded (503
//! when full); requests have a size limit (413) and a time limit (504); a
//! bad request is a 400 naming the input, and the server keeps serving.
//! SIGTERM or SIGINT stop it gracefully: no new connections, in-flight
//! requests finish, then it exits.
pub mod batcher;
mod json_data;
pub mod metrics;
pub mod models;
pub mod protocol;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{ConnectInfo, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use tcanet_cli::{range, Log};
use tokio::sync::oneshot;

use self::batcher::{Answer, BatchSettings, Job, Queue, Refused};
use self::metrics::Metrics;
use self::models::{ModelKind, Work, VERSION};
use self::protocol::{encode_response, parse_request, ApiError, HEADER_LENGTH};
use crate::refiner::Refiner;
use tcanet_models::onnx::TimeSteps;

/// The server's own flags (the model, device and post-processing flags are
/// `run`'s).
#[derive(clap::Args, Debug, Clone)]
pub struct ServeFlags {
    /// Address and port to listen on. Port 0 picks a free port; the address
    /// in use is printed on stderr ("listening on http://ADDR").
    #[arg(long, default_value = "127.0.0.1:8000", value_name = "ADDR:PORT")]
    pub listen: SocketAddr,
    /// Dynamic batching: videos per model call at most (1 to 1024). Requests
    /// arriving together are run in one call; a request may hold at most
    /// this many videos.
    #[arg(long, default_value_t = 8, value_name = "B",
          value_parser = range::int_in::<usize>(1, 1024))]
    pub max_batch_size: usize,
    /// Dynamic batching: microseconds the oldest waiting request may wait for
    /// others to fill a batch (0 to 10000000; 0 runs at once).
    #[arg(long, default_value_t = 1000, value_name = "US",
          value_parser = range::int_in::<u64>(0, 10_000_000))]
    pub max_queue_delay_us: u64,
    /// Requests that may wait for the model (1 to 1000000); more are
    /// answered 503 Service Unavailable at once.
    #[arg(long, default_value_t = 256, value_name = "N",
          value_parser = range::int_in::<usize>(1, 1_000_000))]
    pub max_queue_size: usize,
    /// Model instances: sessions running batches side by side (1 to 64),
    /// each with --threads CPU threads.
    #[arg(long, default_value_t = 1, value_name = "K",
          value_parser = range::int_in::<usize>(1, 64))]
    pub instances: usize,
    /// Largest request body in MiB (1 to 4096); larger requests are answered
    /// 413. One hacs video (2304 x 1000 features) is 9 MiB binary, about
    /// 25 MiB as JSON.
    #[arg(long, default_value_t = 256, value_name = "MIB",
          value_parser = range::int_in::<u64>(1, 4096))]
    pub max_request_mib: u64,
    /// Seconds a request may take from arrival to answer (0.001 to 3600);
    /// past it the answer is 504 and the request is dropped from the queue.
    #[arg(long, default_value_t = 60.0, value_name = "S",
          value_parser = range::float_in(0.001, true, 3600.0, true))]
    pub request_timeout_s: f64,
    /// Proposals per video a request may hold (1 to 1048576); more are
    /// answered 400. The network's memory grows with them: about 0.6 MB per
    /// proposal for hacs on a CPU.
    #[arg(long, default_value_t = 1000, value_name = "N",
          value_parser = range::int_in::<usize>(1, 1 << 20))]
    pub max_request_proposals: usize,
    /// Feature steps per video a request may hold, for a model exported
    /// with --dynamic-time (1 to 1048576); more are answered 400. Its
    /// attention's memory grows with the square of the steps. Models of a
    /// fixed T fit every video to T and ignore this.
    #[arg(long, default_value_t = 4096, value_name = "T",
          value_parser = range::int_in::<usize>(1, 1 << 20))]
    pub max_request_steps: usize,
    /// tcanet_refine: use only the best N input proposals of each video (1 to
    /// 1048576; default: all), as `run --max-proposals`.
    #[arg(long, value_name = "N", value_parser = range::int_in::<usize>(1, 1 << 20))]
    pub max_proposals: Option<usize>,
    /// tcanet_refine: interpolate features longer than the model's T to T
    /// (seconds configs such as hacs), as `run --resample`.
    #[arg(long)]
    pub resample: bool,
}

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The system's error.
        #[source]
        source: std::io::Error,
    },
    /// The runtime, a worker thread or the connection loop failed.
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

/// Shared by all handlers.
struct AppState {
    refiner: Arc<Refiner>,
    queue: Arc<Queue>,
    metrics: Arc<Metrics>,
    flags: ServeFlags,
    ready: AtomicBool,
    /// Requests being parsed at once, at most one per processor: a JSON body
    /// takes several times its size while parsed.
    parsing: Arc<tokio::sync::Semaphore>,
    log: Log,
}

/// Serves `refiner` until SIGTERM or SIGINT, then finishes the requests in
/// flight and returns. `refiner` should hold `flags.instances` sessions.
pub fn serve(refiner: Arc<Refiner>, flags: &ServeFlags, log: Log) -> Result<(), ServeError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("tcanet-http")
        .build()?;
    runtime.block_on(serve_async(refiner, flags.clone(), log))
}

async fn serve_async(refiner: Arc<Refiner>, flags: ServeFlags, log: Log) -> Result<(), ServeError> {
    let metrics = Arc::new(Metrics::new(flags.max_queue_size, flags.max_batch_size));
    let batch = BatchSettings {
        max_batch: flags.max_batch_size,
        max_delay: Duration::from_micros(flags.max_queue_delay_us),
        max_queue: flags.max_queue_size,
    };
    let queue = Queue::new(batch, metrics.clone());
    let workers = batcher::start_workers(&queue, &refiner, flags.instances)?;
    let listener = tokio::net::TcpListener::bind(flags.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: flags.listen,
            source,
        })?;
    let addr = listener.local_addr()?;
    let state = Arc::new(AppState {
        refiner,
        queue: queue.clone(),
        metrics,
        flags,
        ready: AtomicBool::new(true),
        parsing: Arc::new(tokio::sync::Semaphore::new(
            std::thread::available_parallelism().map_or(1, |n| n.get()),
        )),
        log,
    });
    // Printed even with --quiet: with port 0 it is the only way to learn the port.
    let _ = writeln!(
        std::io::stderr().lock(),
        "listening on http://{addr} (models {} and {}; batches of up to {} videos)",
        models::RAW_MODEL,
        models::REFINE_MODEL,
        state.flags.max_batch_size
    );
    let app = router(state.clone());
    let (began, shutting_down) = oneshot::channel();
    let shutdown = {
        let state = state.clone();
        async move {
            let name = shutdown_signal().await;
            state.ready.store(false, Ordering::SeqCst);
            state.queue.drain();
            state.log.info(format!(
                "{name}: shutting down; no new connections, finishing the requests in flight \
                 (a second signal, or --request-timeout-s, ends the rest)"
            ));
            let _ = began.send(());
        }
    };
    let graceful = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown);
    let grace = Duration::from_secs_f64(state.flags.request_timeout_s);
    let served = tokio::select! {
        served = async { graceful.await } => served,
        why = shutdown_deadline(shutting_down, grace) => {
            state.log.warn(format!("{why}; closing the connections still open"));
            Ok(())
        }
    };
    queue.close();
    for w in workers {
        let _ = tokio::task::spawn_blocking(move || w.join()).await;
    }
    served?;
    state.log.info("stopped");
    Ok(())
}

/// Once shutting down has begun: waits for a second signal or for the
/// request time limit (a request received before the signal has had its
/// time by then; a connection that is still open holds a request that was
/// never completed, or stays idle), and says which came first. Never
/// returns while the server has not begun to shut down.
async fn shutdown_deadline(began: oneshot::Receiver<()>, grace: Duration) -> String {
    if began.await.is_err() {
        return std::future::pending().await;
    }
    tokio::select! {
        name = shutdown_signal() => format!("{name} again"),
        _ = tokio::time::sleep(grace) => format!(
            "connections still open {:.3} s (--request-timeout-s) after the signal",
            grace.as_secs_f64()
        ),
    }
}

/// Waits for SIGTERM or SIGINT and names it.
async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = tokio::signal::ctrl_c() => "SIGINT",
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}

fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v2/health/live", get(|| async { StatusCode::OK }))
        .route("/v2/health/ready", get(server_ready))
        .route("/v2", get(server_metadata))
        .route("/v2/repository/index", post(repository_index))
        .route(
            "/v2/repository/models/{name}/{action}",
            post(repository_control),
        )
        .route("/v2/models/{name}", get(model_metadata))
        .route(
            "/v2/models/{name}/versions/{version}",
            get(model_metadata_v),
        )
        .route("/v2/models/{name}/ready", get(model_ready))
        .route(
            "/v2/models/{name}/versions/{version}/ready",
            get(model_ready_v),
        )
        .route("/v2/models/{name}/config", get(model_config))
        .route(
            "/v2/models/{name}/versions/{version}/config",
            get(model_config_v),
        )
        .route("/v2/models/{name}/infer", post(infer))
        .route("/v2/models/{name}/versions/{version}/infer", post(infer_v))
        .route("/metrics", get(metrics_text))
        .method_not_allowed_fallback(|req: Request| async move {
            error_response(&ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{} is not allowed on {}", req.method(), req.uri().path()),
            ))
        })
        .fallback(|req: Request| async move {
            error_response(&ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no such endpoint: {} {}", req.method(), req.uri().path()),
            ))
        })
        .layer(middleware::from_fn_with_state(state.clone(), log_request))
        .with_state(state)
}

/// One stderr line per request, and the HTTP status counts.
async fn log_request(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.to_string())
        .unwrap_or_else(|| "-".into());
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let response = next.run(req).await;
    let status = response.status().as_u16();
    state.metrics.observe_http(status);
    let size = response
        .body()
        .size_hint()
        .exact()
        .map_or_else(|| "-".to_string(), |n| n.to_string());
    state.log.info(format!(
        "{peer} {method} {path} {status} {size} {:.1}ms",
        started.elapsed().as_secs_f64() * 1e3
    ));
    response
}

fn error_response(e: &ApiError) -> Response {
    (
        e.status,
        [(header::CONTENT_TYPE, "application/json")],
        e.body(),
    )
        .into_response()
}

fn json_response(v: &Value) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], v.to_string()).into_response()
}

/// axum's `Path`, its rejections (a segment that does not decode as UTF-8,
/// ...) answered with the JSON error body as every other error.
struct JsonPath<T>(T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for JsonPath<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(v)) => Ok(JsonPath(v)),
            Err(r) => Err(error_response(&ApiError::new(r.status(), r.body_text()))),
        }
    }
}

/// The served model called `name` (version 1 when given, an empty version
/// being unknown too), or a 404.
fn find_model(name: &str, version: Option<&str>) -> Result<ModelKind, ApiError> {
    let kind = ModelKind::from_name(name).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "unknown model '{name}'; this server has '{}' and '{}'",
                models::RAW_MODEL,
                models::REFINE_MODEL
            ),
        )
    })?;
    match version {
        Some(v) if v != VERSION => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("model '{name}' has no version '{v}'; its version is {VERSION}"),
        )),
        _ => Ok(kind),
    }
}

/// 200 when ready; 400 while shutting down (as Triton answers "not ready").
async fn server_ready(State(s): State<Arc<AppState>>) -> StatusCode {
    if s.ready.load(Ordering::SeqCst) {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    }
}

async fn server_metadata() -> Response {
    json_response(&json!({
        "name": "tcanet-infer",
        "version": env!("CARGO_PKG_VERSION"),
        "extensions": ["binary_tensor_data", "model_configuration", "model_repository"],
    }))
}

async fn repository_index() -> Response {
    let list: Vec<Value> = ModelKind::ALL
        .iter()
        .map(|k| json!({"name": k.name(), "version": VERSION, "state": "READY"}))
        .collect();
    json_response(&Value::Array(list))
}

/// `POST /v2/repository/models/<name>/load|unload`: the models are fixed
/// for the server's life, so a 400 that says so (Triton's answer when
/// model control is off); an unknown model or action is a 404.
async fn repository_control(JsonPath((name, action)): JsonPath<(String, String)>) -> Response {
    if action != "load" && action != "unload" {
        return error_response(&ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no such endpoint: POST /v2/repository/models/{name}/{action}"),
        ));
    }
    match find_model(&name, None) {
        Ok(_) => error_response(&ApiError::bad_request(format!(
            "cannot {action} '{name}': this server serves a fixed set of models, loaded when it \
             starts (restart it with another --model to change them)"
        ))),
        Err(e) => error_response(&e),
    }
}

fn metadata_of(s: &AppState, name: &str, version: Option<&str>) -> Response {
    match find_model(name, version) {
        Ok(kind) => json_response(&models::metadata(kind, s.refiner.interface())),
        Err(e) => error_response(&e),
    }
}

async fn model_metadata(
    State(s): State<Arc<AppState>>,
    JsonPath(name): JsonPath<String>,
) -> Response {
    metadata_of(&s, &name, None)
}

async fn model_metadata_v(
    State(s): State<Arc<AppState>>,
    JsonPath((name, version)): JsonPath<(String, String)>,
) -> Response {
    metadata_of(&s, &name, Some(&version))
}

/// 200 when ready; 400 for an unknown model or version, or while shutting
/// down, as Triton answers.
fn ready_of(s: &AppState, name: &str, version: Option<&str>) -> Response {
    match find_model(name, version) {
        Ok(_) if s.ready.load(Ordering::SeqCst) => StatusCode::OK.into_response(),
        Ok(_) => error_response(&ApiError::bad_request("the server is shutting down")),
        Err(e) => error_response(&ApiError::bad_request(e.message)),
    }
}

async fn model_ready(State(s): State<Arc<AppState>>, JsonPath(name): JsonPath<String>) -> Response {
    ready_of(&s, &name, None)
}

async fn model_ready_v(
    State(s): State<Arc<AppState>>,
    JsonPath((name, version)): JsonPath<(String, String)>,
) -> Response {
    ready_of(&s, &name, Some(&version))
}

fn config_of(s: &AppState, name: &str, version: Option<&str>) -> Response {
    match find_model(name, version) {
        Ok(kind) => json_response(&models::config(
            kind,
            s.refiner.interface(),
            s.flags.max_batch_size,
            s.flags.max_queue_delay_us,
        )),
        Err(e) => error_response(&e),
    }
}

async fn model_config(
    State(s): State<Arc<AppState>>,
    JsonPath(name): JsonPath<String>,
) -> Response {
    config_of(&s, &name, None)
}

async fn model_config_v(
    State(s): State<Arc<AppState>>,
    JsonPath((name, version)): JsonPath<(String, String)>,
) -> Response {
    config_of(&s, &name, Some(&version))
}

async fn metrics_text(State(s): State<Arc<AppState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
        .into_response()
}

async fn infer(
    State(s): State<Arc<AppState>>,
    JsonPath(name): JsonPath<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    infer_any(s, name, None, headers, body).await
}

async fn infer_v(
    State(s): State<Arc<AppState>>,
    JsonPath((name, version)): JsonPath<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    infer_any(s, name, Some(version), headers, body).await
}

async fn infer_any(
    s: Arc<AppState>,
    name: String,
    version: Option<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let kind = match find_model(&name, version.as_deref()) {
        Ok(k) => k,
        Err(e) => return error_response(&e),
    };
    let limit = Duration::from_secs_f64(s.flags.request_timeout_s);
    let timed = tokio::time::timeout(limit, infer_request(&s, kind, &headers, body)).await;
    // The request's future (and its reply channel) is dropped by now.
    let outcome = timed.unwrap_or_else(|_| {
        s.queue.drop_abandoned();
        Err(ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "model '{name}': the request took longer than --request-timeout-s {}",
                s.flags.request_timeout_s
            ),
        ))
    });
    let status = outcome.as_ref().map_or_else(|e| e.status.as_u16(), |_| 200);
    s.metrics.observe_infer(kind, status, started.elapsed());
    match outcome {
        Ok(r) => r,
        Err(e) => error_response(&e),
    }
}

/// Reads, checks and runs one inference request.
async fn infer_request(
    s: &Arc<AppState>,
    kind: ModelKind,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let body = read_body(s, headers, body).await?;
    let header_length = header_length(headers)?;
    let state = s.clone();
    // Held by the parsing itself, which goes on if the request times out.
    let parsing = s
        .parsing
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| ApiError::internal("internal error: the parser permits are closed"))?;
    let (request, work) = run_blocking(move || {
        let _parsing = parsing;
        let request = parse_request(&body, header_length)?;
        let work = models::prepare_request(
            kind,
            &state.refiner,
            &request,
            &body,
            models::RequestLimits {
                max_batch: state.flags.max_batch_size,
                max_proposals: state.flags.max_request_proposals,
                max_steps: (state.refiner.interface().time_steps == TimeSteps::Dynamic)
                    .then_some(state.flags.max_request_steps),
            },
        )?;
        Ok((request, work))
    })
    .await?;
    // The videos are moved into the queue and come back with the outputs.
    let (work, outputs) = run_queued(s, work).await?;
    let state = s.clone();
    let encoded = run_blocking(move || {
        let tensors = match work {
            Work::Raw { .. } => {
                models::check_finite(&outputs)?;
                models::raw_outputs(&outputs)
            }
            Work::Refine { videos } => {
                let refined = videos
                    .into_iter()
                    .zip(outputs)
                    .map(|(v, out)| state.refiner.finish(v, out))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| ApiError::internal(e.to_string()))?;
                models::refine_outputs(&refined)
            }
        };
        Ok(encode_response(kind.name(), &request, tensors))
    })
    .await?;
    Ok(binary_or_json(encoded))
}

/// Queues a request's videos and waits for the model's outputs; 503 when
/// the queue is full or closed. The work comes back with the outputs.
async fn run_queued(
    s: &AppState,
    work: Work,
) -> Result<(Work, Vec<tcanet_ort::StageOutputs>), ApiError> {
    let (reply, answer) = oneshot::channel();
    let job = Job {
        work,
        reply,
        queued: Instant::now(),
    };
    s.queue.push(job).map_err(|r| match r {
        Refused::Full => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the queue is full ({} requests waiting); retry later",
                s.flags.max_queue_size
            ),
        ),
        Refused::Closed => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is shutting down",
        ),
    })?;
    let Answer { work, outputs } = answer
        .await
        .map_err(|_| ApiError::internal("the model worker stopped"))?;
    Ok((work, outputs.map_err(ApiError::internal)?))
}

/// The HTTP response of an encoded body: binary (with the header length)
/// or JSON.
fn binary_or_json(encoded: protocol::ResponseBody) -> Response {
    let mut response = Response::new(Body::from(encoded.bytes));
    let h = response.headers_mut();
    let content_type = match encoded.header_length {
        Some(n) => {
            h.insert(HEADER_LENGTH, HeaderValue::from(n));
            "application/octet-stream"
        }
        None => "application/json",
    };
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// Runs CPU work (parsing, preparation, post-processing) off the async threads.
async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("internal error: {e}")))?
}

/// The body, refused with 413 beyond the size limit (by its declared
/// length at once, or while reading).
async fn read_body(s: &AppState, headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    let limit = (s.flags.max_request_mib as usize).saturating_mul(1 << 20);
    let too_large = |n: String| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the request body ({n}) exceeds --max-request-mib {} MiB",
                s.flags.max_request_mib
            ),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(n) = declared.filter(|&n| n > limit as u64) {
        return Err(too_large(format!("{n} bytes")));
    }
    if let Some(enc) = headers.get(header::CONTENT_ENCODING) {
        if enc.as_bytes() != b"identity" {
            return Err(ApiError::bad_request(format!(
                "Content-Encoding {enc:?} is not supported; send the request uncompressed"
            )));
        }
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        if e.to_string().contains("length limit") {
            too_large("more bytes".into())
        } else {
            ApiError::bad_request(format!("cannot read the request body: {e}"))
        }
    })
}

/// `Inference-Header-Content-Length`, when present.
fn header_length(headers: &HeaderMap) -> Result<Option<usize>, ApiError> {
    headers
        .get(HEADER_LENGTH)
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|t| t.trim().parse::<usize>().ok())
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "{HEADER_LENGTH} must be a byte count, got {v:?}"
                    ))
                })
        })
        .transpose()
}
