//! Webhooks: each merchant's URL and signing secret, and the dispatcher that delivers the outbox.
//!
//! - **Signed**: `Disburse-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "{t}.{body}">`
//!   with the merchant's secret; [`verify_signature`] is what a receiver does.
//! - **At least once**: a message is marked delivered only after a 2xx answer; a process that
//!   dies mid-delivery leaves a lease that runs out, and the message is sent again.
//! - **In order per order**: a message is claimed only when every earlier message of the same
//!   order is delivered.
//! - **Bounded retries**: exponential backoff, then `dead` after `attempts_max`, listed for
//!   operators, who may ask for redelivery.
//! - **Safe with several processes**: a claim sets a lease in one statement; on PostgreSQL the
//!   candidate rows are taken with `FOR UPDATE SKIP LOCKED`, on SQLite the statement holds the
//!   write lock (`UPDATE … RETURNING`).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use disburse_core::{MerchantId, OperatorName};
use disburse_engine::{Actor, Engine};
use disburse_store::{fmt_time, Backend, NewAuditEvent};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::Sha256;
use sqlx::Row;
use tokio::sync::watch;
use utoipa::ToSchema;

use crate::auth::random_token;
use crate::error::{ApiError, ApiResult};
use crate::urlguard::{GuardedResolver, HostResolver, SystemResolver, UrlPolicy};

pub const SIGNATURE_HEADER: &str = "Disburse-Signature";
pub const EVENT_ID_HEADER: &str = "Disburse-Event-Id";
pub const SECRET_PREFIX: &str = "whsec_";
const ERROR_TEXT_MAX: usize = 500;

// ---------------------------------------------------------------------------------------------
// Signatures

fn mac(secret: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `Disburse-Signature` header value for a body sent at `timestamp` (unix seconds).
pub fn signature_header(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let digest = mac(secret, timestamp, body).finalize().into_bytes();
    format!("t={timestamp},v1={}", hex::encode(digest))
}

/// What a receiver checks: the signature matches the body (in constant time) and its timestamp
/// is within `tolerance_secs` of `now_unix` (so an old message cannot be replayed).
pub fn verify_signature(
    secret: &str,
    header: &str,
    body: &[u8],
    now_unix: i64,
    tolerance_secs: i64,
) -> bool {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", s)) => signatures.extend(hex::decode(s).ok()),
            _ => {}
        }
    }
    let Some(t) = timestamp else { return false };
    if (now_unix - t).abs() > tolerance_secs {
        return false;
    }
    signatures
        .iter()
        .any(|s| mac(secret, t, body).verify_slice(s).is_ok())
}

// ---------------------------------------------------------------------------------------------
// A merchant's webhook

#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub url: String,
    pub updated_at: String,
}

#[derive(Debug, Clone)]
pub struct WebhookSet {
    pub url: String,
    /// The secret, when this call made it (the first time a webhook is set).
    pub new_secret: Option<String>,
    pub updated_at: String,
}

/// The URL a merchant registers, checked by the guard (see [`crate::urlguard`]); normalized.
pub fn validate_url(text: &str, policy: &UrlPolicy) -> ApiResult<String> {
    policy.check_url(text).map(|u| u.to_string())
}

pub async fn webhook_of(engine: &Engine, merchant: &str) -> ApiResult<Option<WebhookConfig>> {
    let row = sqlx::query("SELECT url, updated_at FROM merchant_webhooks WHERE merchant_id = $1")
        .bind(merchant.to_string())
        .fetch_optional(engine.db().pool())
        .await?;
    row.map(|r| {
        Ok(WebhookConfig {
            url: r.try_get("url")?,
            updated_at: r.try_get("updated_at")?,
        })
    })
    .transpose()
}

/// Sets the URL; makes the signing secret the first time. One audit event.
pub async fn set_webhook(
    engine: &Engine,
    merchant: &MerchantId,
    url: &str,
    policy: &UrlPolicy,
    now: DateTime<Utc>,
) -> ApiResult<WebhookSet> {
    let url = validate_url(url, policy)?;
    let at = fmt_time(now);
    let mut tx = engine.db().write().await?;
    // Through the tracked row, so an endpoint or secret changed with SQL alone is found by
    // `audit verify`.
    let existing: Option<disburse_store::MerchantWebhookRow> = tx
        .fetch_optional(
            "WHERE merchant_id = $1",
            &[disburse_store::Bind::Text(merchant.to_string())],
        )
        .await?;
    let new_secret = if let Some(current) = &existing {
        tx.update(&disburse_store::MerchantWebhookRow {
            url: url.clone(),
            updated_at: at.clone(),
            ..current.clone()
        })
        .await?;
        None
    } else {
        let secret = random_token(SECRET_PREFIX);
        tx.insert(&disburse_store::MerchantWebhookRow {
            merchant_id: merchant.to_string(),
            url: url.clone(),
            // Kept sealed: the service must sign with it, so it is encrypted, not hashed.
            secret: engine.seal_secret(&secret),
            updated_at: at.clone(),
        })
        .await?;
        // Messages that waited for a webhook go out now, oldest first.
        sqlx::query(
            "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = $1, updated_at = $1 \
             WHERE merchant_id = $2 AND status = 'unrouted'",
        )
        .bind(at.clone())
        .bind(merchant.to_string())
        .execute(tx.conn())
        .await?;
        Some(secret)
    };
    let before: Option<String> = existing.map(|r| r.url);
    tx.audit(NewAuditEvent {
        at: at.clone(),
        actor: Actor::system(&format!("api:{merchant}")).as_str().into(),
        action: "merchant.webhook_set".into(),
        subject: format!("merchant:{merchant}"),
        reason: None,
        detail: json!({"before": {"url": before}, "after": {"url": url}, "secret_created": new_secret.is_some()}),
    })
    .await?;
    tx.commit().await?;
    Ok(WebhookSet {
        url,
        new_secret,
        updated_at: at,
    })
}

/// A new signing secret, returned once. One audit event (without the secret).
pub async fn rotate_secret(
    engine: &Engine,
    merchant: &MerchantId,
    now: DateTime<Utc>,
) -> ApiResult<String> {
    let secret = random_token(SECRET_PREFIX);
    let at = fmt_time(now);
    let mut tx = engine.db().write().await?;
    let current: Option<disburse_store::MerchantWebhookRow> = tx
        .fetch_optional(
            "WHERE merchant_id = $1",
            &[disburse_store::Bind::Text(merchant.to_string())],
        )
        .await?;
    if let Some(current) = current {
        // Through the tracked row, so a secret swapped with SQL alone is found by `audit verify`.
        tx.update(&disburse_store::MerchantWebhookRow {
            secret: engine.seal_secret(&secret),
            updated_at: at.clone(),
            ..current
        })
        .await?;
    } else {
        tx.rollback().await?;
        return Err(ApiError::NotFound(
            "no webhook is set; PUT /v1/webhook first".into(),
        ));
    }
    tx.audit(NewAuditEvent {
        at,
        actor: Actor::system(&format!("api:{merchant}")).as_str().into(),
        action: "merchant.webhook_secret_rotated".into(),
        subject: format!("merchant:{merchant}"),
        reason: None,
        detail: json!({}),
    })
    .await?;
    tx.commit().await?;
    Ok(secret)
}

// ---------------------------------------------------------------------------------------------
// Operators: dead letters and redelivery

/// A message whose delivery gave up, or any delivery as operators see it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Delivery {
    pub outbox_id: i64,
    pub merchant: String,
    pub topic: String,
    pub order_no: Option<String>,
    /// `pending`, `delivered`, `dead`, `unrouted` (the merchant has no webhook yet), or `held`
    /// (pending, but an earlier message of its order is dead, so it waits behind it).
    #[schema(value_type = crate::schema::DeliveryStatus)]
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: String,
    pub last_error: Option<String>,
    /// The HTTP status of the last answer, if there was one.
    pub last_status: Option<i64>,
    pub delivered_at: Option<String>,
    pub updated_at: String,
    /// For a dead letter: how many later messages of its order wait behind it.
    pub held_behind: i64,
    /// For a held message: the dead letter it waits behind.
    pub blocked_by: Option<i64>,
}

/// The statuses [`deliveries`] lists.
pub const DELIVERY_STATUSES: &[&str] = &["dead", "held", "pending", "delivered", "unrouted"];

/// Messages held behind a dead letter: pending, with an earlier message of the same order dead.
const HELD: &str = "d.status = 'pending' AND EXISTS (SELECT 1 FROM webhook_deliveries e \
    WHERE e.merchant_id = d.merchant_id AND e.order_key = d.order_key \
    AND e.outbox_id < d.outbox_id AND e.status = 'dead')";

pub async fn deliveries(engine: &Engine, status: &str, limit: i64) -> ApiResult<Vec<Delivery>> {
    let filter = match status {
        "held" => HELD.to_string(),
        // Pending means "will be tried": the held ones are listed as held, not here.
        "pending" => format!("NOT ({HELD}) AND d.status = 'pending'"),
        _ => "d.status = $1".to_string(),
    };
    let sql = format!(
        "SELECT d.outbox_id, d.merchant_id, o.topic, d.order_key, d.status, d.attempts, \
         d.next_attempt_at, d.last_error, d.last_status, d.delivered_at, d.updated_at, \
         (SELECT COUNT(*) FROM webhook_deliveries h WHERE d.status = 'dead' \
            AND h.merchant_id = d.merchant_id AND h.order_key = d.order_key \
            AND h.outbox_id > d.outbox_id AND h.status = 'pending') AS held_behind, \
         (SELECT MAX(b.outbox_id) FROM webhook_deliveries b WHERE d.status = 'pending' \
            AND b.merchant_id = d.merchant_id AND b.order_key = d.order_key \
            AND b.outbox_id < d.outbox_id AND b.status = 'dead') AS blocked_by \
         FROM webhook_deliveries d JOIN outbox o ON o.id = d.outbox_id \
         WHERE {filter} ORDER BY d.outbox_id LIMIT {limit}"
    );
    let mut query = sqlx::query(&sql);
    if filter.contains("$1") {
        query = query.bind(status.to_string());
    }
    let rows = query.fetch_all(engine.db().pool()).await?;
    rows.iter()
        .map(|r| {
            let blocked_by: Option<i64> = r.try_get("blocked_by")?;
            let stored: String = r.try_get("status")?;
            Ok(Delivery {
                outbox_id: r.try_get("outbox_id")?,
                merchant: r.try_get("merchant_id")?,
                topic: r.try_get("topic")?,
                order_no: r.try_get("order_key")?,
                status: if blocked_by.is_some() {
                    "held".into()
                } else {
                    stored
                },
                attempts: r.try_get("attempts")?,
                next_attempt_at: r.try_get("next_attempt_at")?,
                last_error: r.try_get("last_error")?,
                last_status: r.try_get("last_status")?,
                delivered_at: r.try_get("delivered_at")?,
                updated_at: r.try_get("updated_at")?,
                held_behind: r.try_get("held_behind")?,
                blocked_by,
            })
        })
        .collect()
}

/// How many messages wait behind dead letters, in all.
pub async fn held_count(engine: &Engine) -> ApiResult<i64> {
    let row = sqlx::query(&format!(
        "SELECT COUNT(*) AS n FROM webhook_deliveries d WHERE {HELD}"
    ))
    .fetch_one(engine.db().pool())
    .await?;
    Ok(row.try_get("n")?)
}

/// Dead letters and what they hold, as the ops API and the CLI show them.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeadLetterSummary {
    /// Messages that gave up after their last attempt.
    pub dead: i64,
    /// Later messages of the same orders, waiting behind them (not tried until redelivery).
    pub held: i64,
}

pub async fn dead_letter_summary(engine: &Engine) -> ApiResult<DeadLetterSummary> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM webhook_deliveries WHERE status = 'dead'")
        .fetch_one(engine.db().pool())
        .await?;
    Ok(DeadLetterSummary {
        dead: row.try_get("n")?,
        held: held_count(engine).await?,
    })
}

/// Puts a message back in the queue with a fresh series of attempts (dead or delivered alike).
pub async fn redeliver(
    engine: &Engine,
    outbox_id: i64,
    who: &OperatorName,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    let at = fmt_time(now);
    let mut tx = engine.db().write().await?;
    let before =
        sqlx::query("SELECT status, attempts FROM webhook_deliveries WHERE outbox_id = $1")
            .bind(outbox_id)
            .fetch_optional(tx.conn())
            .await?;
    let Some(before) = before else {
        tx.rollback().await?;
        return Err(ApiError::NotFound(format!(
            "no webhook delivery for message {outbox_id}"
        )));
    };
    let status: String = before.try_get("status")?;
    let attempts: i64 = before.try_get("attempts")?;
    sqlx::query(
        "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = $1, \
         lease_owner = NULL, lease_until = NULL, updated_at = $1 WHERE outbox_id = $2",
    )
    .bind(at.clone())
    .bind(outbox_id)
    .execute(tx.conn())
    .await?;
    tx.audit(NewAuditEvent {
        at,
        actor: Actor::operator(who).as_str().into(),
        action: "webhook.redelivery_requested".into(),
        subject: format!("outbox:{outbox_id}"),
        reason: None,
        detail: json!({"before": {"status": status, "attempts": attempts}, "after": {"status": "pending"}}),
    })
    .await?;
    tx.commit().await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The dispatcher

#[derive(Debug, Clone)]
pub struct DispatcherConfig {
    /// Pause between looks at the queue when it had nothing due.
    pub poll_interval: Duration,
    /// Messages claimed per look (each to a different order), delivered concurrently.
    pub claim_batch_max: i64,
    /// After this many failed attempts a message is dead-lettered.
    pub attempts_max: i64,
    /// Delay after the first failure; doubled after each further one, up to `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// How long a claim is held; a dispatcher that dies lets it run out and another resends.
    pub lease: Duration,
    pub request_timeout: Duration,
    /// Where messages may go; checked again at every delivery, after resolution.
    pub url_policy: UrlPolicy,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        DispatcherConfig {
            poll_interval: Duration::from_secs(1),
            claim_batch_max: 32,
            attempts_max: 8,
            backoff_base: Duration::from_secs(30),
            backoff_max: Duration::from_secs(3600),
            lease: Duration::from_secs(60),
            request_timeout: Duration::from_secs(10),
            url_policy: UrlPolicy::default(),
        }
    }
}

/// What one look at the queue did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tick {
    pub enqueued: u64,
    pub claimed: u64,
    pub delivered: u64,
    pub failed: u64,
    pub dead: u64,
}

pub struct Dispatcher {
    engine: Arc<Engine>,
    client: reqwest::Client,
    resolver: GuardedResolver,
    config: DispatcherConfig,
    owner: String,
}

struct Claimed {
    outbox_id: i64,
    attempts: i64,
    merchant: String,
    topic: String,
    payload: String,
    created_at: String,
    url: String,
    secret: String,
}

enum Outcome {
    Delivered(u16),
    Failed { status: Option<u16>, error: String },
}

/// The order a message belongs to, from its payload; messages without one are not ordered.
fn order_key(payload: &str) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(payload)
        .ok()?
        .get("order_no")?
        .as_str()
        .map(str::to_string)
}

fn truncate(text: &str) -> String {
    text.chars().take(ERROR_TEXT_MAX).collect()
}

impl Dispatcher {
    pub fn new(engine: Arc<Engine>, config: DispatcherConfig) -> anyhow::Result<Dispatcher> {
        Dispatcher::with_resolver(engine, config, Arc::new(SystemResolver))
    }

    /// A dispatcher that resolves names with `resolver` (tests give a fixed table).
    pub fn with_resolver(
        engine: Arc<Engine>,
        config: DispatcherConfig,
        resolver: Arc<dyn HostResolver>,
    ) -> anyhow::Result<Dispatcher> {
        let resolver = GuardedResolver::new(resolver, config.url_policy.clone());
        let client = reqwest::Client::builder()
            .timeout(config.request_timeout)
            // The client connects only to addresses the guard checked: no redirect to elsewhere,
            // no proxy from the environment, names resolved by the guarded resolver.
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(resolver.clone()))
            .user_agent(concat!("disburse-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Dispatcher {
            engine,
            client,
            resolver,
            config,
            owner: random_token("dispatcher_").chars().take(27).collect(),
        })
    }

    fn pool(&self) -> &sqlx::AnyPool {
        self.engine.db().pool()
    }

    /// Addresses the guard has let the HTTP client connect to, in all: a refusal adds none.
    pub fn connection_attempts(&self) -> u64 {
        self.resolver.addresses_handed_out()
    }

    /// Copies new outbox messages into the delivery queue, in outbox order.
    pub async fn enqueue(&self) -> ApiResult<u64> {
        // Messages queued while their merchant's webhook was being set (a race the setter's own
        // update cannot see on PostgreSQL) are routed here; cheap by (merchant_id, status).
        sqlx::query(
            "UPDATE webhook_deliveries SET status = 'pending' WHERE status = 'unrouted' \
             AND merchant_id IN (SELECT merchant_id FROM merchant_webhooks)",
        )
        .execute(self.pool())
        .await?;
        let mut total = 0;
        // Bounded: at most this many rounds per tick; the next tick goes on.
        for _ in 0..20 {
            let rows = sqlx::query(
                "SELECT o.id, o.merchant_id, o.payload, o.created_at FROM outbox o \
                 WHERE o.delivered_at IS NULL \
                 AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.outbox_id = o.id) \
                 ORDER BY o.id LIMIT 200",
            )
            .fetch_all(self.pool())
            .await?;
            if rows.is_empty() {
                break;
            }
            let now = fmt_time(Utc::now());
            let mut sql = String::from(
                "INSERT INTO webhook_deliveries (outbox_id, merchant_id, order_key, status, attempts, next_attempt_at, updated_at) VALUES ",
            );
            let mut q_binds: Vec<(i64, String, Option<String>)> = Vec::new();
            for (i, r) in rows.iter().enumerate() {
                if i > 0 {
                    sql.push_str(", ");
                }
                let b = i * 4;
                // Messages of a merchant without a webhook wait as 'unrouted' (not scanned by
                // claims) until it sets one.
                sql.push_str(&format!(
                    "(${b1}, ${b2}, ${b3}, CASE WHEN EXISTS (SELECT 1 FROM merchant_webhooks w \
                     WHERE w.merchant_id = ${b2}) THEN 'pending' ELSE 'unrouted' END, 0, ${b4}, ${b4})",
                    b1 = b + 1,
                    b2 = b + 2,
                    b3 = b + 3,
                    b4 = b + 4,
                ));
                let payload: String = r.try_get("payload")?;
                q_binds.push((
                    r.try_get("id")?,
                    r.try_get("merchant_id")?,
                    order_key(&payload),
                ));
            }
            sql.push_str(" ON CONFLICT (outbox_id) DO NOTHING");
            let mut q = sqlx::query(&sql);
            for (id, merchant, key) in q_binds {
                q = q.bind(id).bind(merchant).bind(key).bind(now.clone());
            }
            total += q.execute(self.pool()).await?.rows_affected();
            if rows.len() < 200 {
                break;
            }
        }
        Ok(total)
    }

    async fn claim(&self, now: DateTime<Utc>) -> ApiResult<Vec<Claimed>> {
        let now_text = fmt_time(now);
        let lease_until = fmt_time(now + self.config.lease);
        let lock = match self.engine.db().backend() {
            Backend::Postgres => "FOR UPDATE OF d SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE webhook_deliveries SET lease_owner = $1, lease_until = $2, updated_at = $3 \
             WHERE outbox_id IN ( \
               SELECT d.outbox_id FROM webhook_deliveries d \
               WHERE d.status = 'pending' AND d.next_attempt_at <= $3 \
                 AND (d.lease_until IS NULL OR d.lease_until < $3) \
                 AND EXISTS (SELECT 1 FROM merchant_webhooks w WHERE w.merchant_id = d.merchant_id) \
                 AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e \
                   WHERE e.merchant_id = d.merchant_id AND e.order_key = d.order_key \
                   AND e.outbox_id < d.outbox_id AND e.status <> 'delivered') \
               ORDER BY d.outbox_id LIMIT {} {lock}) \
             RETURNING outbox_id",
            self.config.claim_batch_max
        );
        let claimed = sqlx::query(&sql)
            .bind(self.owner.clone())
            .bind(lease_until.clone())
            .bind(now_text)
            .fetch_all(self.pool())
            .await?;
        if claimed.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "SELECT d.outbox_id, d.attempts, o.merchant_id, o.topic, o.payload, o.created_at, w.url, w.secret \
             FROM webhook_deliveries d JOIN outbox o ON o.id = d.outbox_id \
             JOIN merchant_webhooks w ON w.merchant_id = d.merchant_id \
             WHERE d.lease_owner = $1 AND d.lease_until = $2 AND d.status = 'pending' ORDER BY d.outbox_id",
        )
        .bind(self.owner.clone())
        .bind(lease_until)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Claimed {
                    outbox_id: r.try_get("outbox_id")?,
                    attempts: r.try_get("attempts")?,
                    merchant: r.try_get("merchant_id")?,
                    topic: r.try_get("topic")?,
                    payload: r.try_get("payload")?,
                    created_at: r.try_get("created_at")?,
                    url: r.try_get("url")?,
                    secret: self
                        .engine
                        .open_secret(&r.try_get::<String, _>("secret")?)
                        .map_err(crate::ApiError::from)?,
                })
            })
            .collect()
    }

    async fn send(client: reqwest::Client, guard: GuardedResolver, c: &Claimed) -> Outcome {
        if let Err(refused) = guard.check_delivery(&c.url) {
            return Outcome::Failed {
                status: None,
                error: truncate(&refused),
            };
        }
        let data: serde_json::Value =
            serde_json::from_str(&c.payload).unwrap_or(serde_json::Value::Null);
        let body = serde_json::to_vec(&json!({
            "id": c.outbox_id, "type": c.topic, "merchant": c.merchant,
            "created_at": c.created_at, "data": data,
        }))
        .expect("json serializes");
        let timestamp = Utc::now().timestamp();
        let signature = signature_header(&c.secret, timestamp, &body);
        let sent = client
            .post(&c.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature)
            .header(EVENT_ID_HEADER, c.outbox_id.to_string())
            .body(body)
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => Outcome::Delivered(r.status().as_u16()),
            Ok(r) => Outcome::Failed {
                status: Some(r.status().as_u16()),
                error: format!("the receiver answered HTTP {}", r.status()),
            },
            Err(e) => {
                // reqwest's message alone says little ("error sending request"): add its causes.
                let e = e.without_url();
                let mut text = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(cause) = source {
                    text.push_str(&format!(": {cause}"));
                    source = cause.source();
                }
                Outcome::Failed {
                    status: None,
                    error: truncate(&text),
                }
            }
        }
    }

    fn backoff(&self, attempts: i64) -> Duration {
        let exponent = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
        self.config
            .backoff_base
            .saturating_mul(2u32.saturating_pow(exponent))
            .min(self.config.backoff_max)
    }

    async fn record(&self, c: &Claimed, outcome: &Outcome) -> ApiResult<()> {
        let now = Utc::now();
        let at = fmt_time(now);
        let attempts = c.attempts + 1;
        let mut tx = self.pool().begin().await?;
        match outcome {
            Outcome::Delivered(status) => {
                sqlx::query(
                    "UPDATE webhook_deliveries SET status = 'delivered', attempts = $1, delivered_at = $2, \
                     lease_owner = NULL, lease_until = NULL, last_status = $3, last_error = NULL, updated_at = $2 \
                     WHERE outbox_id = $4",
                )
                .bind(attempts)
                .bind(at.clone())
                .bind(i64::from(*status))
                .bind(c.outbox_id)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "UPDATE outbox SET delivered_at = COALESCE(delivered_at, $1), attempts = attempts + 1 WHERE id = $2",
                )
                .bind(at)
                .bind(c.outbox_id)
                .execute(&mut *tx)
                .await?;
            }
            Outcome::Failed { status, error } => {
                let dead = attempts >= self.config.attempts_max;
                let next = now + self.backoff(attempts);
                sqlx::query(
                    "UPDATE webhook_deliveries SET status = $1, attempts = $2, next_attempt_at = $3, \
                     lease_owner = NULL, lease_until = NULL, last_status = $4, last_error = $5, updated_at = $6 \
                     WHERE outbox_id = $7 AND lease_owner = $8",
                )
                .bind(if dead { "dead" } else { "pending" })
                .bind(attempts)
                .bind(fmt_time(next))
                .bind(status.map(i64::from))
                .bind(error.clone())
                .bind(at)
                .bind(c.outbox_id)
                .bind(self.owner.clone())
                .execute(&mut *tx)
                .await?;
                sqlx::query("UPDATE outbox SET attempts = attempts + 1 WHERE id = $1")
                    .bind(c.outbox_id)
                    .execute(&mut *tx)
                    .await?;
                if dead {
                    tracing::warn!(outbox.id = c.outbox_id, merchant.id = %c.merchant, attempts, error = %error,
                        "webhook message dead-lettered after its last attempt");
                } else {
                    tracing::info!(outbox.id = c.outbox_id, merchant.id = %c.merchant, attempts, error = %error,
                        next_attempt_at = %fmt_time(next), "webhook delivery failed; will retry");
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Enqueues new messages, claims what is due and delivers it.
    pub async fn run_once(&self) -> ApiResult<Tick> {
        let mut tick = Tick {
            enqueued: self.enqueue().await?,
            ..Tick::default()
        };
        let claimed = self.claim(Utc::now()).await?;
        tick.claimed = claimed.len() as u64;
        let mut sends = tokio::task::JoinSet::new();
        for c in claimed {
            let client = self.client.clone();
            let guard = self.resolver.clone();
            sends.spawn(async move {
                let outcome = Dispatcher::send(client, guard, &c).await;
                (c, outcome)
            });
        }
        while let Some(joined) = sends.join_next().await {
            let (c, outcome) = joined.map_err(ApiError::internal)?;
            self.record(&c, &outcome).await?;
            match outcome {
                Outcome::Delivered(_) => tick.delivered += 1,
                Outcome::Failed { .. } if c.attempts + 1 >= self.config.attempts_max => {
                    tick.dead += 1
                }
                Outcome::Failed { .. } => tick.failed += 1,
            }
        }
        Ok(tick)
    }

    /// Runs until `shutdown` turns true; a message in flight is finished first.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        tracing::info!(worker = "webhooks", "webhook dispatcher started");
        loop {
            if *shutdown.borrow() {
                break;
            }
            let busy = match self.run_once().await {
                Ok(t) => t.claimed > 0,
                Err(e) => {
                    tracing::warn!(worker = "webhooks", error = %e, "webhook dispatch failed; trying again");
                    false
                }
            };
            if busy {
                continue;
            }
            tokio::select! {
                changed = shutdown.changed() => {
                    if changed.is_err() {
                        break; // the sender is gone: nobody can ask for more
                    }
                }
                _ = tokio::time::sleep(self.config.poll_interval) => {}
            }
        }
        tracing::info!(worker = "webhooks", "webhook dispatcher stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_refuse_tampering() {
        let body = br#"{"id":1}"#;
        let header = signature_header("whsec_x", 1_700_000_000, body);
        assert!(header.starts_with("t=1700000000,v1="));
        assert!(verify_signature(
            "whsec_x",
            &header,
            body,
            1_700_000_100,
            300
        ));
        assert!(!verify_signature(
            "whsec_y",
            &header,
            body,
            1_700_000_100,
            300
        ));
        assert!(!verify_signature(
            "whsec_x",
            &header,
            b"{\"id\":2}",
            1_700_000_100,
            300
        ));
        assert!(!verify_signature(
            "whsec_x",
            &header,
            body,
            1_700_001_000,
            300
        ));
        assert!(!verify_signature(
            "whsec_x",
            "v1=00",
            body,
            1_700_000_000,
            300
        ));
    }

    #[test]
    fn urls_are_checked() {
        let strict = UrlPolicy::default();
        assert!(validate_url("https://shop.example/hooks", &strict).is_ok());
        assert!(validate_url("http://127.0.0.1:8080/x", &strict).is_err());
        let dev = UrlPolicy::loopback_for_development();
        assert!(validate_url("http://127.0.0.1:8080/x", &dev).is_ok());
        for bad in [
            "ftp://x",
            "not a url",
            "https://user:pw@x.example/",
            "mailto:a@b",
        ] {
            assert!(validate_url(bad, &dev).is_err(), "{bad}");
        }
    }

    #[test]
    fn order_keys_come_from_the_payload() {
        assert_eq!(order_key(r#"{"order_no":"W1"}"#).as_deref(), Some("W1"));
        assert_eq!(order_key(r#"{"discrepancy":3}"#), None);
    }
}
