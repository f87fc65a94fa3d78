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
use disburse_store::{fmt_time, FailedAttempt, NewAuditEvent};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::Sha256;
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
    let found = engine.db().merchant_webhook_url(merchant).await?;
    Ok(found.map(|(url, updated_at)| WebhookConfig { url, updated_at }))
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
    let existing = tx.merchant_webhook(merchant.as_str()).await?;
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
        tx.route_unrouted_deliveries_of(merchant.as_str(), &at)
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
    if let Some(current) = tx.merchant_webhook(merchant.as_str()).await? {
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

pub async fn deliveries(engine: &Engine, status: &str, limit: i64) -> ApiResult<Vec<Delivery>> {
    // Pending means "will be tried": the held ones are listed as held, not with them.
    let rows = engine
        .db()
        .webhook_deliveries_in_status(status, limit)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| Delivery {
            outbox_id: r.outbox_id,
            merchant: r.merchant_id,
            topic: r.topic,
            order_no: r.order_key,
            status: if r.blocked_by.is_some() {
                "held".into()
            } else {
                r.status
            },
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at,
            last_error: r.last_error,
            last_status: r.last_status,
            delivered_at: r.delivered_at,
            updated_at: r.updated_at,
            held_behind: r.held_behind,
            blocked_by: r.blocked_by,
        })
        .collect())
}

/// How many messages wait behind dead letters, in all.
pub async fn held_count(engine: &Engine) -> ApiResult<i64> {
    Ok(engine.db().held_webhook_count().await?)
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
    Ok(DeadLetterSummary {
        dead: engine.db().dead_webhook_count().await?,
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
    let Some((status, attempts)) = tx.webhook_delivery_state(outbox_id).await? else {
        tx.rollback().await?;
        return Err(ApiError::NotFound(format!(
            "no webhook delivery for message {outbox_id}"
        )));
    };
    tx.requeue_webhook_delivery(outbox_id, &at).await?;
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

    /// Addresses the guard has let the HTTP client connect to, in all: a refusal adds none.
    pub fn connection_attempts(&self) -> u64 {
        self.resolver.addresses_handed_out()
    }

    /// Copies new outbox messages into the delivery queue, in outbox order.
    pub async fn enqueue(&self) -> ApiResult<u64> {
        let db = self.engine.db();
        db.route_unrouted_webhook_deliveries().await?;
        let mut total = 0;
        // Bounded: at most this many rounds per tick; the next tick goes on.
        for _ in 0..20 {
            let messages = db.outbox_not_queued().await?;
            if messages.is_empty() {
                break;
            }
            let now = fmt_time(Utc::now());
            let round = messages.len() as i64;
            let queued: Vec<(i64, String, Option<String>)> = messages
                .into_iter()
                .map(|m| {
                    let key = order_key(&m.payload);
                    (m.id, m.merchant_id, key)
                })
                .collect();
            total += db.queue_webhook_deliveries(&queued, &now).await?;
            if round < disburse_store::ENQUEUE_ROUND {
                break;
            }
        }
        Ok(total)
    }

    async fn claim(&self, now: DateTime<Utc>) -> ApiResult<Vec<Claimed>> {
        let now_text = fmt_time(now);
        let lease_until = fmt_time(now + self.config.lease);
        let rows = self
            .engine
            .db()
            .claim_webhook_deliveries(
                &self.owner,
                &now_text,
                &lease_until,
                self.config.claim_batch_max,
            )
            .await?;
        rows.into_iter()
            .map(|r| {
                Ok(Claimed {
                    outbox_id: r.outbox_id,
                    attempts: r.attempts,
                    merchant: r.merchant_id,
                    topic: r.topic,
                    payload: r.payload,
                    created_at: r.created_at,
                    url: r.url,
                    secret: self
                        .engine
                        .open_secret(&r.sealed_secret)
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
        let db = self.engine.db();
        match outcome {
            Outcome::Delivered(status) => {
                db.record_webhook_delivered(c.outbox_id, attempts, i64::from(*status), &at)
                    .await?;
            }
            Outcome::Failed { status, error } => {
                let dead = attempts >= self.config.attempts_max;
                let next = now + self.backoff(attempts);
                let failed = FailedAttempt {
                    dead,
                    attempts,
                    next_attempt_at: &fmt_time(next),
                    last_status: status.map(i64::from),
                    error,
                };
                db.record_webhook_failed(c.outbox_id, &self.owner, failed, &at)
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
