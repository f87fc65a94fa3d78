//! Liveness, readiness and Prometheus metrics (text exposition format 0.0.4, written by hand:
//! a few gauges read from the database at scrape time and one request-latency histogram kept in
//! memory). Durations are integer microseconds inside; no float is involved.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult, Problem};
use crate::AppState;

/// Upper bounds of the latency buckets, in microseconds, and as Prometheus writes them (seconds).
const BUCKETS: [(u64, &str); 11] = [
    (5_000, "0.005"),
    (10_000, "0.01"),
    (25_000, "0.025"),
    (50_000, "0.05"),
    (100_000, "0.1"),
    (250_000, "0.25"),
    (500_000, "0.5"),
    (1_000_000, "1"),
    (2_500_000, "2.5"),
    (5_000_000, "5"),
    (10_000_000, "10"),
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum_micros: u64,
}

/// Request latencies by method, route template and status.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), Histogram>>,
}

impl Metrics {
    pub fn observe(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let mut map = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        // Bounded: routes are templates, methods and statuses few.
        let h = map
            .entry((method.to_string(), route.to_string(), status))
            .or_default();
        h.count += 1;
        h.sum_micros = h.sum_micros.saturating_add(micros);
        for (i, (le, _)) in BUCKETS.iter().enumerate() {
            if micros <= *le {
                h.buckets[i] += 1;
            }
        }
    }

    fn render(&self, out: &mut String) {
        let map = self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        out.push_str(
            "# HELP disburse_http_request_duration_seconds Time to answer an HTTP request.\n",
        );
        out.push_str("# TYPE disburse_http_request_duration_seconds histogram\n");
        for ((method, route, status), h) in map {
            let labels = format!(
                "method=\"{}\",route=\"{}\",status=\"{status}\"",
                escape(&method),
                escape(&route)
            );
            for (i, (_, le)) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "disburse_http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {}",
                    h.buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "disburse_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "disburse_http_request_duration_seconds_sum{{{labels}}} {}.{:06}",
                h.sum_micros / 1_000_000,
                h.sum_micros % 1_000_000
            );
            let _ = writeln!(
                out,
                "disburse_http_request_duration_seconds_count{{{labels}}} {}",
                h.count
            );
        }
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Times every request, labelled by its route template (not its path, which holds ids).
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = req.method().to_string();
    let started = Instant::now();
    let response = next.run(req).await;
    state.metrics().observe(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`
    pub status: String,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// The database answers.
#[utoipa::path(
    get, path = "/readyz", tag = "health",
    responses(
        (status = 200, body = Health),
        (status = 503, description = "The database does not answer", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> ApiResult<Json<Health>> {
    let probe = state.engine().db().ping();
    match tokio::time::timeout(Duration::from_secs(2), probe).await {
        Ok(Ok(_)) => Ok(Json(Health {
            status: "ok".into(),
        })),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness probe: the database does not answer");
            Err(ApiError::Unavailable("the database does not answer".into()))
        }
        Err(_) => Err(ApiError::Unavailable(
            "the database did not answer within 2 s".into(),
        )),
    }
}

/// Prometheus metrics: payouts by state, exceptions by kind, webhook backlog, request latency.
#[utoipa::path(
    get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String))
)]
pub async fn metrics(State(state): State<AppState>) -> ApiResult<Response> {
    let db = state.engine().db();
    let mut out = String::new();

    out.push_str("# HELP disburse_payouts Payouts by state.\n# TYPE disburse_payouts gauge\n");
    for (state_name, n) in db.payout_counts_by_state().await? {
        let _ = writeln!(
            out,
            "disburse_payouts{{state=\"{}\"}} {n}",
            escape(&state_name)
        );
    }

    out.push_str(
        "# HELP disburse_orders Withdrawal orders by state.\n# TYPE disburse_orders gauge\n",
    );
    for (state_name, n) in db.order_counts_by_state().await? {
        let _ = writeln!(
            out,
            "disburse_orders{{state=\"{}\"}} {n}",
            escape(&state_name)
        );
    }

    out.push_str(
        "# HELP disburse_exceptions What waits for a person, by kind.\n# TYPE disburse_exceptions gauge\n",
    );
    let mut kinds = BTreeMap::<String, u64>::new();
    for e in state.engine().exceptions(Utc::now()).await? {
        *kinds.entry(e.kind).or_default() += 1;
    }
    for (kind, n) in kinds {
        let _ = writeln!(out, "disburse_exceptions{{kind=\"{}\"}} {n}", escape(&kind));
    }

    out.push_str(
        "# HELP disburse_webhook_backlog Messages not yet delivered by webhook: queued (pending), given up (dead), waiting for the merchant to set a webhook (unrouted), not yet queued.\n\
         # TYPE disburse_webhook_backlog gauge\n",
    );
    let mut backlog = BTreeMap::from([
        ("dead".to_string(), 0i64),
        ("pending".to_string(), 0i64),
        ("unrouted".to_string(), 0i64),
    ]);
    backlog.extend(db.undelivered_webhook_counts_by_status().await?);
    let not_queued = db.outbox_not_queued_count().await?;
    backlog.insert("not_queued".into(), not_queued);
    for (status, n) in backlog {
        let _ = writeln!(out, "disburse_webhook_backlog{{status=\"{status}\"}} {n}");
    }

    // Import lag: result files waiting in each channel's inbox, and how long the oldest waited.
    out.push_str(
        "# HELP disburse_inbox_files Result files waiting in a channel's inbox.\n# TYPE disburse_inbox_files gauge\n\
         # HELP disburse_import_lag_seconds Age of the oldest result file waiting in a channel's inbox (0 when none).\n\
         # TYPE disburse_import_lag_seconds gauge\n",
    );
    for channel in &state.engine().config().channels {
        let (mut waiting, mut oldest) = (0u64, 0u64);
        if let Ok(entries) = std::fs::read_dir(&channel.inbox_dir) {
            for entry in entries.flatten() {
                let Ok(meta) = entry.metadata() else { continue };
                if !meta.is_file() {
                    continue;
                }
                waiting += 1;
                let age = meta
                    .modified()
                    .ok()
                    .and_then(|m| m.elapsed().ok())
                    .map_or(0, |d| d.as_secs());
                oldest = oldest.max(age);
            }
        }
        let id = escape(channel.id.as_str());
        let _ = writeln!(out, "disburse_inbox_files{{channel=\"{id}\"}} {waiting}");
        let _ = writeln!(
            out,
            "disburse_import_lag_seconds{{channel=\"{id}\"}} {oldest}"
        );
    }

    state.metrics().render(&mut out);
    crate::bank_api::api_metrics().render(&mut out);
    let mut response = (StatusCode::OK, out).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::default();
        m.observe("GET", "/v1/balance", 200, Duration::from_millis(7));
        m.observe("GET", "/v1/balance", 200, Duration::from_millis(700));
        let mut out = String::new();
        m.render(&mut out);
        assert!(
            out.contains(r#"route="/v1/balance",status="200",le="0.005"} 0"#),
            "{out}"
        );
        assert!(
            out.contains(r#"route="/v1/balance",status="200",le="0.01"} 1"#),
            "{out}"
        );
        assert!(
            out.contains(r#"route="/v1/balance",status="200",le="1"} 2"#),
            "{out}"
        );
        assert!(out.contains(r#"status="200"} 0.707000"#), "{out}");
    }
}
