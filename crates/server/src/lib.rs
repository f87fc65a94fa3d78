//! The HTTP service of Disburse: the merchant API (`/v1`), the operator API (`/ops/v1`), signed
//! webhooks from the outbox, the background workers, health and metrics, and the OpenAPI 3.1
//! document (`/openapi.json`) generated from the handlers.
//!
//! Only this crate knows JSON on the wire and HTTP. It decides nothing about payouts: every
//! change goes through an engine use case, with the wall clock read here, at the edge. Its own
//! state (API keys, webhooks, sessions, idempotent answers, delivery state) lives in the tables
//! of migration `0004_service.sql`.

mod auth;
pub mod bank_api;
mod console;
pub mod credentials;
mod error;
mod extract;
mod health;
mod http;
mod idempotency;
mod input;
mod merchant;
mod ops;
mod schema;
pub mod urlguard;
mod webhooks;
mod workers;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use anyhow::Context as _;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{from_fn, from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use disburse_engine::Engine;
use tokio::sync::watch;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use auth::{create_api_key, login_guarded, set_operator_password, LoggedIn, LoginLimits};
pub use error::{ApiError, Problem, PROBLEM_JSON};
pub use extract::JSON_BODY_MAX_BYTES;
pub use health::Metrics;
pub use http::{serve_http, HttpLimits};
pub use idempotency::{
    purge_expired as purge_expired_idempotency, REPLAYED_HEADER,
    RETENTION_HOURS as IDEMPOTENCY_RETENTION_HOURS,
};
pub use input::{FIELD_MAX_CHARS, TEXT_MAX_CHARS_DEFAULT};
pub use webhooks::{
    dead_letter_summary as webhooks_summary, deliveries as webhook_deliveries, signature_header,
    verify_signature, DeadLetterSummary, Delivery, Dispatcher, DispatcherConfig, Tick,
    EVENT_ID_HEADER, SIGNATURE_HEADER,
};
pub use workers::{import_inboxes, spawn_workers, submit_batches, InboxOutcome, WorkerSettings};

/// Result files uploaded by operators may be large (a day of a bank's answers).
pub const UPLOAD_MAX_BYTES: usize = 256 * 1024 * 1024;

/// What `serve` runs and how it logs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    /// Serve the HTTP APIs.
    pub api: bool,
    /// Run the workers: webhook dispatcher, deadline sweeper, inbox watcher, batch submitter.
    pub workers: bool,
    /// Log JSON lines instead of text (when no logger is installed yet).
    pub json_logs: bool,
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    engine: Arc<Engine>,
    metrics: Metrics,
    openapi: OnceLock<String>,
    login: auth::LoginGuard,
    settings: ServiceSettings,
}

/// What an operator configures about the service's defences (README "Security").
#[derive(Debug, Clone, Default)]
pub struct ServiceSettings {
    pub login: LoginLimits,
    /// Where webhooks may go (registration and delivery).
    pub webhooks: urlguard::UrlPolicy,
    /// Timeouts and the connection cap of the listener.
    pub http: HttpLimits,
}

impl ServiceSettings {
    /// The defaults, changed by the environment (README "Security"):
    /// - `DISBURSE_WEBHOOK_ALLOW_HTTP=true`: accept http webhook URLs (development);
    /// - `DISBURSE_WEBHOOK_ALLOW_NETS=127.0.0.1/32,::1/128`: networks accepted although private
    ///   or loopback (development allow-list);
    /// - `DISBURSE_ALLOW_LOOPBACK_WEBHOOKS=true`: both of the above for the loopback networks.
    pub fn from_env() -> anyhow::Result<ServiceSettings> {
        let mut s = ServiceSettings::default();
        let flag = |name: &str| -> anyhow::Result<bool> {
            match std::env::var(name) {
                Err(_) => Ok(false),
                Ok(v) => match v.trim().to_ascii_lowercase().as_str() {
                    "1" | "true" | "yes" => Ok(true),
                    "" | "0" | "false" | "no" => Ok(false),
                    other => anyhow::bail!("{name}={other:?}: write true or false"),
                },
            }
        };
        if flag("DISBURSE_ALLOW_LOOPBACK_WEBHOOKS")? {
            s.webhooks = urlguard::UrlPolicy::loopback_for_development();
        }
        if flag("DISBURSE_WEBHOOK_ALLOW_HTTP")? {
            s.webhooks.allow_http = true;
        }
        if let Ok(nets) = std::env::var("DISBURSE_WEBHOOK_ALLOW_NETS") {
            for n in nets.split(',').filter(|n| !n.trim().is_empty()) {
                s.webhooks.allowed_nets.push(
                    urlguard::Net::parse(n)
                        .map_err(|e| anyhow::anyhow!("DISBURSE_WEBHOOK_ALLOW_NETS: {e}"))?,
                );
            }
        }
        Ok(s)
    }
}

impl AppState {
    /// The state with the default [`ServiceSettings`].
    pub fn new(engine: Arc<Engine>) -> AppState {
        AppState::with_settings(engine, ServiceSettings::default())
    }

    pub fn with_settings(engine: Arc<Engine>, settings: ServiceSettings) -> AppState {
        AppState(Arc::new(Inner {
            engine,
            metrics: Metrics::default(),
            openapi: OnceLock::new(),
            login: auth::LoginGuard::new(settings.login.clone()),
            settings,
        }))
    }

    pub fn settings(&self) -> &ServiceSettings {
        &self.0.settings
    }

    pub(crate) fn login_guard(&self) -> &auth::LoginGuard {
        &self.0.login
    }

    pub fn engine(&self) -> &Engine {
        &self.0.engine
    }

    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Disburse",
        description = "Merchant payouts. The merchant API (`/v1`, bearer API key) creates and follows withdrawal orders; \
            the operator API (`/ops/v1`, bearer session token from `/ops/v1/login`) works the exceptions queue. \
            Amounts are integer minor units with an ISO 4217 currency. Errors are RFC 9457 problem+json. \
            POST and PUT take an optional `Idempotency-Key`: the same key with the same body gets the same answer. \
            Webhooks are POSTed with `Disburse-Signature: t=<unix>,v1=<hex HMAC-SHA256 of \"{t}.{body}\">`."
    ),
    modifiers(&SecuritySchemes),
    tags(
        (name = "withdrawals", description = "A merchant's withdrawal orders and their payouts"),
        (name = "merchant", description = "Balance, bank account and messages of the calling merchant"),
        (name = "webhook", description = "Where and how the merchant hears about changes"),
        (name = "operators", description = "Operator sessions"),
        (name = "exceptions", description = "What waits for a person"),
        (name = "corrections", description = "Maker-checker corrections of recorded payouts"),
        (name = "discrepancies", description = "Differences between instructed and moved amounts"),
        (name = "files", description = "Bank result files in, batch files out"),
        (name = "audit", description = "Tamper detection and the books"),
        (name = "webhooks", description = "Webhook delivery, as operators see it"),
        (name = "health", description = "Liveness, readiness, metrics, this document"),
    )
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi
            .components
            .get_or_insert_with(utoipa::openapi::Components::new);
        components.add_security_scheme(
            "merchant_api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A merchant API key (`dsk_…`)"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "operator_session",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A session token from POST /ops/v1/login (`dso_…`)"))
                    .build(),
            ),
        );
    }
}

/// This document.
#[utoipa::path(
    get, path = "/openapi.json", tag = "health",
    responses((status = 200, description = "The OpenAPI 3.1 document of this service", content_type = "application/json", body = Object))
)]
async fn openapi_json(State(state): State<AppState>) -> Response {
    let text = state.0.openapi.get().cloned().unwrap_or_default();
    let mut response = (StatusCode::OK, text).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Every route, each registered together with its OpenAPI description.
fn api(state: &AppState) -> OpenApiRouter<AppState> {
    let json_limit = || RequestBodyLimitLayer::new(JSON_BODY_MAX_BYTES);
    // Layers added later run first: body limit, then who calls, then the idempotency key.
    let merchant = OpenApiRouter::new()
        .routes(routes!(
            merchant::create_withdrawal,
            merchant::list_withdrawals
        ))
        .routes(routes!(merchant::get_withdrawal))
        .routes(routes!(merchant::cancel_withdrawal))
        .routes(routes!(merchant::get_balance))
        .routes(routes!(merchant::put_bank_account))
        .routes(routes!(merchant::list_events))
        .routes(routes!(merchant::put_webhook, merchant::get_webhook))
        .routes(routes!(merchant::rotate_webhook_secret))
        .route_layer(from_fn_with_state(state.clone(), idempotency::idempotency))
        .route_layer(from_fn_with_state(state.clone(), auth::merchant_auth))
        .route_layer(DefaultBodyLimit::max(JSON_BODY_MAX_BYTES))
        .route_layer(json_limit());
    let ops_login = OpenApiRouter::new()
        .routes(routes!(ops::login))
        .route_layer(DefaultBodyLimit::max(JSON_BODY_MAX_BYTES))
        .route_layer(json_limit());
    let ops = OpenApiRouter::new()
        .routes(routes!(ops::logout))
        .routes(routes!(ops::me))
        .routes(routes!(ops::list_exceptions))
        .routes(routes!(ops::claim_exception))
        .routes(routes!(ops::release_exception))
        .routes(routes!(ops::comment_exception))
        .routes(routes!(ops::handle_exception))
        .routes(routes!(ops::get_order))
        .routes(routes!(ops::list_corrections, ops::propose_correction))
        .routes(routes!(ops::approve_correction))
        .routes(routes!(ops::reject_correction))
        .routes(routes!(ops::list_discrepancies))
        .routes(routes!(ops::resolve_discrepancy))
        .routes(routes!(ops::list_batches))
        .routes(routes!(ops::download_batch))
        .routes(routes!(ops::audit_verify))
        .routes(routes!(ops::list_deliveries))
        .routes(routes!(ops::redeliver))
        .routes(routes!(ops::dead_letters))
        .routes(routes!(ops::list_sessions))
        .routes(routes!(ops::revoke_session))
        .routes(routes!(ops::unlock_operator))
        .route_layer(from_fn_with_state(state.clone(), idempotency::idempotency))
        .route_layer(from_fn_with_state(state.clone(), auth::operator_auth))
        .route_layer(DefaultBodyLimit::max(JSON_BODY_MAX_BYTES))
        .route_layer(json_limit());
    // Uploads are streamed to a temporary file; the import is idempotent by the file's hash.
    let ops_upload = OpenApiRouter::new()
        .routes(routes!(ops::upload_result_file))
        .route_layer(from_fn_with_state(state.clone(), auth::operator_auth))
        .route_layer(DefaultBodyLimit::max(UPLOAD_MAX_BYTES))
        .route_layer(RequestBodyLimitLayer::new(UPLOAD_MAX_BYTES));
    let meta = OpenApiRouter::new()
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::metrics))
        .routes(routes!(openapi_json));
    // A bank's signed notifications: authenticated by their signature, not by a key or session.
    let bank_callbacks = OpenApiRouter::new()
        .routes(routes!(bank_api::bank_callback))
        .route_layer(DefaultBodyLimit::max(JSON_BODY_MAX_BYTES))
        .route_layer(json_limit());
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(merchant)
        .merge(ops_login)
        .merge(ops)
        .merge(ops_upload)
        .merge(meta)
        .merge(bank_callbacks)
}

/// The OpenAPI document of every route of [`router`].
pub fn openapi(state: &AppState) -> utoipa::openapi::OpenApi {
    let mut doc = api(state).into_openapi();
    schema::complete_responses(&mut doc);
    doc
}

async fn no_route(req: Request) -> ApiError {
    ApiError::NoRoute(format!("{} {}", req.method(), req.uri().path()))
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// Errors made below our handlers (a body limit layer, the router) become problem+json too.
async fn problem_bodies(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with(PROBLEM_JSON));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return response;
    }
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(format!(
            "the body is larger than this endpoint takes ({JSON_BODY_MAX_BYTES} bytes for JSON)"
        ))
        .into_response(),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed.into_response(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ApiError::UnsupportedMediaType("unsupported content type".into()).into_response()
        }
        s if s.is_server_error() => {
            ApiError::internal(format!("a layer answered {s}")).into_response()
        }
        s => {
            let mut p = ApiError::bad_request(
                s.canonical_reason().unwrap_or("the request was refused"),
                None,
            )
            .problem();
            p.status = s.as_u16();
            let mut r = (s, serde_json::to_vec(&p).unwrap_or_default()).into_response();
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
            r
        }
    }
}

fn request_span(req: &Request) -> tracing::Span {
    tracing::info_span!(
        "request",
        method = %req.method(),
        path = %req.uri().path(),
        version = ?req.version(),
    )
}

/// The whole HTTP service as one router.
pub fn router(state: AppState) -> Router {
    let (routes, mut doc) = api(&state).split_for_parts();
    schema::complete_responses(&mut doc);
    let text = doc
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    let _ = state.0.openapi.set(text);
    let apis = routes
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(from_fn(problem_bodies))
        .layer(from_fn_with_state(state.clone(), http::body_deadline))
        .layer(from_fn_with_state(state.clone(), health::track))
        // The span names the method and the path only: a query string may carry a credential
        // someone put there by mistake, and logs are read by more people than the API.
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .with_state(state.clone());
    // The operator console (HTML at /console), outside the APIs' problem+json layer.
    console::router(state.clone())
        .layer(from_fn_with_state(state, http::body_deadline))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .merge(apis)
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("DISBURSE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A logger installed already (by the CLI) stays; this only fills in when there is none.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Serves the APIs and runs the workers (as `opts` says) until `shutdown` completes; then stops
/// taking requests, finishes those in flight and lets each worker finish its step.
pub async fn serve(
    engine: Arc<Engine>,
    opts: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    serve_with(engine, opts, WorkerSettings::default(), shutdown).await
}

/// [`serve`] with the workers' intervals chosen; the service's settings from the environment
/// ([`ServiceSettings::from_env`]).
pub async fn serve_with(
    engine: Arc<Engine>,
    opts: ServeOptions,
    settings: WorkerSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let service = ServiceSettings::from_env()?;
    serve_configured(engine, opts, settings, service, shutdown).await
}

/// [`serve`] with everything chosen. The dispatcher takes its URL policy from `service`.
pub async fn serve_configured(
    engine: Arc<Engine>,
    opts: ServeOptions,
    mut settings: WorkerSettings,
    service: ServiceSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    init_logging(opts.json_logs);
    if !opts.api && !opts.workers {
        anyhow::bail!("nothing to run: enable the API, the workers, or both");
    }
    // Owner-only before anything is served: the file holds the books and credential hashes.
    for path in disburse_store::service::restrict_sqlite_files(engine.db()).await? {
        tracing::info!(file = %path.display(), "database file made owner-only (0600)");
    }
    if opts.api {
        // Result files previewed in the console and never applied, left by an earlier run.
        console::remove_stale_uploads();
    }
    settings.dispatcher.url_policy = service.webhooks.clone();
    let (stop, stopped) = watch::channel(false);
    let stop = Arc::new(stop);
    let on_signal = stop.clone();
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutting down");
        let _ = on_signal.send(true);
    });
    let workers = if opts.workers {
        spawn_workers(engine.clone(), settings, stopped.clone())?
    } else {
        Vec::new()
    };
    let served = if opts.api {
        async {
            let listener = tokio::net::TcpListener::bind(opts.listen)
                .await
                .with_context(|| format!("listening on {}", opts.listen))?;
            tracing::info!(listen = %listener.local_addr()?, "serving HTTP");
            let mut until = stopped.clone();
            let limits = service.http.clone();
            let app = router(AppState::with_settings(engine.clone(), service));
            serve_http(listener, app, limits, async move {
                let _ = until.wait_for(|s| *s).await;
            })
            .await
            .context("HTTP server")
        }
        .await
    } else {
        let mut until = stopped.clone();
        let _ = until.wait_for(|s| *s).await;
        Ok(())
    };
    // However the server ended, the workers stop too.
    let _ = stop.send(true);
    for w in workers {
        let _ = w.await;
    }
    served
}
