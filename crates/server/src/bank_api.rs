//! `http-api` channels over HTTP (docs/bank-api.md): the client the engine's API-channel worker
//! calls through [`disburse_engine::BankApi`], its metrics, the bank callbacks endpoint, and the
//! sandbox bank's HTTP server (`disburse sandbox-bank serve`).
//!
//! The client classifies every answer and nothing more: what an answer means for a payout is the
//! engine's (and the core's) decision. A timeout, a reset or a 5xx is `Unknown`, never a failure.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use disburse_core::{Currency, Money, PayoutNo};
use disburse_engine::{
    Actor, ApiSecret, BankAnswer, BankApi, BankStatus, Channel, Engine, PaymentInstruction,
};
use disburse_sandbox::api::{
    signature_header, verify_signature, ApiBank, Callback, Delay, FaultMix, PaymentRequest,
    PaymentStatus, IDEMPOTENCY_HEADER, SIGNATURE_HEADER,
};
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::AppState;

/// The bank-side protocol as an OpenAPI 3.1 document, stored in the repository.
pub const BANK_API_OPENAPI: &str = include_str!("../../../docs/bank-api.openapi.yaml");

/// Counters of one API channel, for `/metrics`.
#[derive(Debug, Clone, Default)]
struct ChannelCounters {
    sent: u64,
    status_queries: u64,
    unknown: u64,
    throttled: u64,
    latency_count: u64,
    latency_sum_micros: u64,
    latency_buckets: [u64; LATENCY_BUCKETS.len()],
}

const LATENCY_BUCKETS: [(u64, &str); 8] = [
    (5_000, "0.005"),
    (25_000, "0.025"),
    (100_000, "0.1"),
    (250_000, "0.25"),
    (1_000_000, "1"),
    (2_500_000, "2.5"),
    (10_000_000, "10"),
    (30_000_000, "30"),
];

/// Per-channel counters of the API client, shared by every client of the process.
#[derive(Debug, Default)]
pub struct ApiMetrics {
    channels: Mutex<BTreeMap<String, ChannelCounters>>,
}

/// The process's API-channel metrics.
pub fn api_metrics() -> &'static ApiMetrics {
    static METRICS: OnceLock<ApiMetrics> = OnceLock::new();
    METRICS.get_or_init(ApiMetrics::default)
}

impl ApiMetrics {
    fn record(&self, channel: &str, sent: bool, answer: &BankAnswer, elapsed: Duration) {
        let mut map = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        let c = map.entry(channel.to_string()).or_default();
        if sent {
            c.sent += 1;
        } else {
            c.status_queries += 1;
        }
        match answer {
            BankAnswer::Unknown(_) => c.unknown += 1,
            BankAnswer::Throttled(_) => c.throttled += 1,
            _ => {}
        }
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        c.latency_count += 1;
        c.latency_sum_micros = c.latency_sum_micros.saturating_add(micros);
        for (i, (le, _)) in LATENCY_BUCKETS.iter().enumerate() {
            if micros <= *le {
                c.latency_buckets[i] += 1;
            }
        }
    }

    /// Prometheus text for every channel that made a request.
    pub fn render(&self, out: &mut String) {
        let map = self
            .channels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        out.push_str("# HELP disburse_api_channel_requests_total Requests to a bank's payment API, by kind.\n");
        out.push_str("# TYPE disburse_api_channel_requests_total counter\n");
        for (ch, c) in &map {
            let _ = writeln!(
                out,
                "disburse_api_channel_requests_total{{channel=\"{ch}\",kind=\"send\"}} {}",
                c.sent
            );
            let _ = writeln!(
                out,
                "disburse_api_channel_requests_total{{channel=\"{ch}\",kind=\"status\"}} {}",
                c.status_queries
            );
        }
        out.push_str("# HELP disburse_api_channel_unknown_total Answers that left the outcome unknown (timeout, reset, 5xx).\n");
        out.push_str("# TYPE disburse_api_channel_unknown_total counter\n");
        for (ch, c) in &map {
            let _ = writeln!(
                out,
                "disburse_api_channel_unknown_total{{channel=\"{ch}\"}} {}",
                c.unknown
            );
        }
        out.push_str("# HELP disburse_api_channel_throttled_total 429 answers.\n");
        out.push_str("# TYPE disburse_api_channel_throttled_total counter\n");
        for (ch, c) in &map {
            let _ = writeln!(
                out,
                "disburse_api_channel_throttled_total{{channel=\"{ch}\"}} {}",
                c.throttled
            );
        }
        out.push_str("# HELP disburse_api_channel_latency_seconds Time to a bank API answer (or to giving up).\n");
        out.push_str("# TYPE disburse_api_channel_latency_seconds histogram\n");
        for (ch, c) in &map {
            for (i, (_, le)) in LATENCY_BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "disburse_api_channel_latency_seconds_bucket{{channel=\"{ch}\",le=\"{le}\"}} {}",
                    c.latency_buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "disburse_api_channel_latency_seconds_bucket{{channel=\"{ch}\",le=\"+Inf\"}} {}",
                c.latency_count
            );
            let _ = writeln!(
                out,
                "disburse_api_channel_latency_seconds_sum{{channel=\"{ch}\"}} {}.{:06}",
                c.latency_sum_micros / 1_000_000,
                c.latency_sum_micros % 1_000_000
            );
            let _ = writeln!(
                out,
                "disburse_api_channel_latency_seconds_count{{channel=\"{ch}\"}} {}",
                c.latency_count
            );
        }
    }
}

/// The HTTP client of one `http-api` channel: signed requests, a timeout, a rate limit.
pub struct HttpBankApi {
    channel: String,
    base_url: String,
    secret: ApiSecret,
    client: reqwest::Client,
    /// The earliest time the next request may leave (the rate limit).
    next_slot: tokio::sync::Mutex<tokio::time::Instant>,
    interval: Duration,
}

impl HttpBankApi {
    /// The channel's client; its secret read now from the environment or its key file.
    pub fn for_channel(channel: &Channel) -> anyhow::Result<HttpBankApi> {
        let settings = channel
            .api
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("channel {} is not an http-api channel", channel.id))?;
        let secret = settings
            .load_secret()
            .map_err(|e| anyhow::anyhow!("channel {}: {e}", channel.id))?;
        let client = reqwest::Client::builder()
            .timeout(settings.request_timeout)
            .connect_timeout(settings.request_timeout)
            // The bank is one host: a redirect is not part of the protocol.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(HttpBankApi {
            channel: channel.id.to_string(),
            base_url: settings.base_url.clone(),
            secret,
            client,
            next_slot: tokio::sync::Mutex::new(tokio::time::Instant::now()),
            interval: Duration::from_secs(1) / settings.requests_per_second.max(1),
        })
    }

    async fn pace(&self) {
        let at = {
            let mut slot = self.next_slot.lock().await;
            let at = (*slot).max(tokio::time::Instant::now());
            *slot = at + self.interval;
            at
        };
        tokio::time::sleep_until(at).await;
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
        body: Vec<u8>,
    ) -> BankAnswer {
        self.pace().await;
        let started = Instant::now();
        let ts = Utc::now().timestamp();
        let signature = signature_header(self.secret.expose(), method.as_str(), path, ts, &body);
        let mut req = self
            .client
            .request(method.clone(), format!("{}{path}", self.base_url))
            .header(SIGNATURE_HEADER, signature);
        if let Some(k) = key {
            req = req
                .header(IDEMPOTENCY_HEADER, k)
                .header(header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let answer = match req.send().await {
            Err(e) if e.is_timeout() => BankAnswer::Unknown("no answer within the timeout".into()),
            Err(e) if e.is_connect() => {
                BankAnswer::Unknown(format!("cannot connect: {}", short(&e)))
            }
            Err(e) => BankAnswer::Unknown(format!("request failed: {}", short(&e))),
            Ok(resp) => classify(resp).await,
        };
        api_metrics().record(&self.channel, key.is_some(), &answer, started.elapsed());
        answer
    }
}

/// A reqwest error without its URL (which holds nothing secret, but is noise in a log line).
fn short(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(url) = e.url() {
        s = s.replace(url.as_str(), "");
    }
    s
}

async fn classify(resp: reqwest::Response) -> BankAnswer {
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let body = match tokio::time::timeout(Duration::from_secs(30), resp.bytes()).await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => {
            return BankAnswer::Unknown(format!("answer {status} cut off: {}", short(&e)))
        }
        Err(_) => return BankAnswer::Unknown(format!("answer {status} body did not arrive")),
    };
    match status {
        200 | 201 | 422 => match serde_json::from_slice::<PaymentStatus>(&body) {
            Ok(s) => match bank_status(s) {
                Ok(s) => BankAnswer::Known(s),
                Err(e) => BankAnswer::Unknown(format!("answer {status}: {e}")),
            },
            Err(e) => BankAnswer::Unknown(format!("answer {status} is not a payment status: {e}")),
        },
        404 => BankAnswer::Known(BankStatus::Unknown),
        409 => BankAnswer::KeyConflict(String::from_utf8_lossy(&body).chars().take(200).collect()),
        429 => BankAnswer::Throttled(Duration::from_secs(retry_after.unwrap_or(1).clamp(1, 3600))),
        s if s >= 500 => BankAnswer::Unknown(format!("the bank answered {s}")),
        s => BankAnswer::Refused {
            status: s,
            detail: String::from_utf8_lossy(&body).chars().take(200).collect(),
        },
    }
}

/// The wire status as the engine's, with money typed.
pub fn bank_status(s: PaymentStatus) -> Result<BankStatus, String> {
    Ok(match s {
        PaymentStatus::Unknown => BankStatus::Unknown,
        PaymentStatus::Accepted { bank_reference } => BankStatus::Accepted {
            reference: Some(bank_reference),
        },
        PaymentStatus::Paid {
            bank_reference,
            amount_minor,
            currency,
        } => {
            let currency = Currency::parse(&currency).map_err(|e| format!("currency: {e}"))?;
            BankStatus::Paid {
                amount: Money::from_minor(amount_minor, currency),
                reference: Some(bank_reference),
            }
        }
        PaymentStatus::Rejected {
            reason_code,
            reason_text,
        } => BankStatus::Rejected {
            reason_code,
            reason_text: Some(reason_text),
        },
    })
}

impl BankApi for HttpBankApi {
    async fn send(&self, p: &PaymentInstruction) -> BankAnswer {
        let body = serde_json::to_vec(&PaymentRequest {
            payout_no: p.payout_no.clone(),
            amount_minor: p.amount.amount_minor(),
            currency: p.amount.currency().code().to_string(),
            creditor_account: p.creditor_account.clone(),
            creditor_name: p.creditor_name.clone(),
            reference: p.reference.clone(),
        })
        .unwrap_or_default();
        self.call(reqwest::Method::POST, "/payments", Some(&p.payout_no), body)
            .await
    }

    async fn status(&self, payout_no: &str) -> BankAnswer {
        self.call(
            reqwest::Method::GET,
            &format!("/payments/{payout_no}"),
            None,
            Vec::new(),
        )
        .await
    }
}

/// A bank's signed notification about a payout of an `http-api` channel. The signature is
/// checked with the channel's secret over `POST\n/bank-callbacks/{channel}\n{t}\n{body}`, and
/// its time must be within five minutes of ours (replay window). A repeated or late
/// notification goes through the same rules as a late file result.
#[utoipa::path(
    post, path = "/bank-callbacks/{channel}", tag = "files",
    params(("channel" = String, Path, description = "The http-api channel whose bank calls")),
    request_body(content = Object, description = "`{event_id, payout_no, status, …}` (docs/bank-api.md)", content_type = "application/json"),
    responses(
        (status = 200, description = "Taken: what it changed (or why nothing)", body = Object),
        (status = 401, description = "Missing, stale or wrong signature", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such http-api channel or payout", body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn bank_callback(
    State(state): State<AppState>,
    Path(channel_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let engine = state.engine();
    let channel = engine
        .config()
        .channel(&channel_id)
        .ok()
        .filter(|c| c.api.is_some())
        .ok_or_else(|| ApiError::NotFound(format!("no http-api channel {channel_id:?}")))?;
    let secret = channel
        .api
        .as_ref()
        .map(|a| a.load_secret())
        .transpose()
        .map_err(|e| {
            tracing::error!(channel = %channel_id, error = %e, "bank callback: no secret");
            ApiError::Unavailable("this channel's secret is not configured".into())
        })?
        .ok_or_else(|| ApiError::NotFound(format!("no http-api channel {channel_id:?}")))?;
    let path = format!("/bank-callbacks/{channel_id}");
    verify_signature(
        secret.expose(),
        headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()),
        "POST",
        &path,
        &body,
        Utc::now().timestamp(),
    )
    .map_err(|e| ApiError::Unauthorized(e.to_string()))?;
    let callback: Callback = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("callback body: {e}"), None))?;
    let payout_no = PayoutNo::parse(&callback.payout_no)
        .map_err(|e| ApiError::invalid("payout_no", e.to_string()))?;
    let status = bank_status(callback.status).map_err(|e| ApiError::invalid("currency", e))?;
    let outcome = engine
        .apply_api_callback(
            &channel_id,
            &payout_no,
            &status,
            Utc::now(),
            &Actor::system("bank-callback"),
        )
        .await?;
    Ok(Json(json!({
        "event_id": callback.event_id,
        "payout_no": payout_no.as_str(),
        "outcome": outcome,
    })))
}

/// How the sandbox bank's HTTP server behaves.
#[derive(Debug, Clone)]
pub struct SandboxBankOptions {
    pub seed: u64,
    pub faults: FaultMix,
    /// The HMAC secret both sides share.
    pub secret: Vec<u8>,
    /// A slow answer's delay (within a client's timeout).
    pub slow: Duration,
    /// How long a "timeout after accepting" hangs before it answers (past a client's timeout).
    pub hang: Duration,
    /// Where to POST callbacks (`http://…/bank-callbacks/{channel}`); none: the bank sends none.
    pub callback_url: Option<String>,
}

#[derive(Clone)]
struct BankState {
    bank: Arc<Mutex<ApiBank>>,
    opts: Arc<SandboxBankOptions>,
    client: reqwest::Client,
    /// Every callback POSTed and the answer it got, for `GET /ledger`.
    deliveries: Arc<Mutex<Vec<Value>>>,
    /// One delivery at a time, in the order the bank decided them.
    in_order: Arc<tokio::sync::Mutex<()>>,
}

impl BankState {
    /// POSTs the bank's due callbacks, in order, in the background.
    fn deliver(&self, notes: Vec<disburse_sandbox::api::Notification>) {
        let Some(url) = self.opts.callback_url.clone() else {
            return;
        };
        if notes.is_empty() {
            return;
        }
        let state = self.clone();
        tokio::spawn(async move {
            let _turn = state.in_order.lock().await;
            let path = reqwest::Url::parse(&url)
                .map(|u| u.path().to_string())
                .unwrap_or_default();
            for note in notes {
                let body = serde_json::to_vec(&note.callback).unwrap_or_default();
                let secret: &[u8] = if note.signed_correctly {
                    &state.opts.secret
                } else {
                    b"not-the-shared-secret"
                };
                let sig = signature_header(secret, "POST", &path, Utc::now().timestamp(), &body);
                let answer = state
                    .client
                    .post(&url)
                    .header(SIGNATURE_HEADER, sig)
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(body)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0);
                state
                    .deliveries
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(json!({
                        "event_id": note.callback.event_id,
                        "payout_no": note.callback.payout_no,
                        "status": note.callback.status,
                        "signed_correctly": note.signed_correctly,
                        "answer": answer,
                    }));
            }
        });
    }
}

/// The sandbox bank's routes: `POST /payments`, `GET /payments/{key}`, `GET /ledger` (what it
/// moved and the callbacks it sent, for tests and the demo), `GET /openapi.yaml`. With a
/// `callback_url` it also POSTs a signed callback when a payment is paid or rejected, some of
/// them twice, out of order, or first with a bad signature.
pub fn sandbox_bank_router(opts: SandboxBankOptions) -> Router {
    let mut bank = ApiBank::new(opts.seed, opts.faults.clone());
    if opts.callback_url.is_some() {
        bank = bank.with_callbacks();
    }
    let state = BankState {
        bank: Arc::new(Mutex::new(bank)),
        opts: Arc::new(opts),
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default(),
        deliveries: Arc::new(Mutex::new(Vec::new())),
        in_order: Arc::new(tokio::sync::Mutex::new(())),
    };
    Router::new()
        .route("/payments", post(bank_submit))
        .route("/payments/{key}", get(bank_status_of))
        .route("/ledger", get(bank_ledger))
        .route(
            "/openapi.yaml",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "application/yaml")],
                    BANK_API_OPENAPI,
                )
            }),
        )
        .with_state(state)
}

/// Serves the sandbox bank on `listener` until `shutdown` completes.
pub async fn serve_sandbox_bank(
    listener: tokio::net::TcpListener,
    opts: SandboxBankOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    axum::serve(listener, sandbox_bank_router(opts))
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

fn bank_reply(r: disburse_sandbox::api::Reply) -> Response {
    let mut resp = (
        StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        Json(r.body),
    )
        .into_response();
    if let Some(s) = r.retry_after_seconds {
        if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    resp
}

fn unsigned(
    state: &BankState,
    headers: &HeaderMap,
    method: &str,
    path: &str,
    body: &[u8],
) -> Option<Response> {
    verify_signature(
        &state.opts.secret,
        headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()),
        method,
        path,
        body,
        Utc::now().timestamp(),
    )
    .err()
    .map(|e| {
        (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": e.to_string()})),
        )
            .into_response()
    })
}

async fn bank_submit(State(state): State<BankState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refused) = unsigned(&state, &headers, "POST", "/payments", &body) {
        return refused;
    }
    let key = headers
        .get(IDEMPOTENCY_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (reply, notes) = {
        let mut bank = state.bank.lock().unwrap_or_else(|e| e.into_inner());
        let reply = bank.submit(key.as_deref(), &body);
        (reply, bank.take_notifications())
    };
    state.deliver(notes);
    match reply.delay {
        Delay::None => {}
        Delay::Slow => tokio::time::sleep(state.opts.slow).await,
        Delay::Hang => tokio::time::sleep(state.opts.hang).await,
    }
    bank_reply(reply)
}

async fn bank_status_of(
    State(state): State<BankState>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = unsigned(&state, &headers, "GET", &format!("/payments/{key}"), b"") {
        return refused;
    }
    let (reply, notes) = {
        let mut bank = state.bank.lock().unwrap_or_else(|e| e.into_inner());
        let reply = bank.status(&key);
        (reply, bank.take_notifications())
    };
    state.deliver(notes);
    bank_reply(reply)
}

async fn bank_ledger(State(state): State<BankState>) -> Response {
    let ledger = state
        .bank
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .ledger();
    let mut v = serde_json::to_value(ledger).unwrap_or_default();
    v["callbacks"] = Value::Array(
        state
            .deliveries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone(),
    );
    Json(v).into_response()
}

/// One round of the API-channel worker for every `http-api` channel (their clients made once).
pub struct ApiChannelWorker {
    channels: Vec<(HttpBankApi, disburse_engine::ApiChannelState)>,
}

impl ApiChannelWorker {
    /// Clients for every `http-api` channel of the engine's config (or only `only`); an error if a
    /// channel's secret cannot be read.
    pub fn new(engine: &Engine, only: Option<&str>) -> anyhow::Result<ApiChannelWorker> {
        let mut channels = Vec::new();
        for c in &engine.config().channels {
            if c.api.is_none() || only.is_some_and(|o| o != c.id.as_str()) {
                continue;
            }
            channels.push((
                HttpBankApi::for_channel(c)?,
                engine.api_channel_state(c.id.as_str())?,
            ));
        }
        if let Some(o) = only {
            if channels.is_empty() {
                anyhow::bail!("no http-api channel {o:?} in {}", engine.config().source);
            }
        }
        Ok(ApiChannelWorker { channels })
    }

    pub fn is_empty(&self) -> bool {
        self.channels.is_empty()
    }

    /// One round of each channel, as of `as_of`.
    pub async fn round(
        &mut self,
        engine: &Engine,
        as_of: chrono::DateTime<Utc>,
    ) -> Vec<anyhow::Result<disburse_engine::ApiRoundReport>> {
        let mut out = Vec::new();
        for (api, state) in &mut self.channels {
            let channel = api.channel.clone();
            let r = engine
                .api_channel_round(&channel, api, state, as_of, &Actor::system("api-channel"))
                .await
                .map_err(anyhow::Error::from);
            out.push(r);
        }
        out
    }
}
