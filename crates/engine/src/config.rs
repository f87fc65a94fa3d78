//! Channels and their policies, read from `disburse.toml`, with built-in defaults so a fresh
//! machine needs no file. See `disburse.example.toml` at the repository root for every key.

use std::path::{Path, PathBuf};

use chrono::Duration;
use disburse_core::{ChannelId, ChannelPolicy, Currency, ResultMode};
use serde::Deserialize;

use crate::EngineError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// ISO 20022: pain.001 out; pain.002, camt.054, camt.053 in.
    Iso20022,
    /// A bank's own CSV layout, described by a profile.
    Csv,
    /// Printed instructions; the bank tells us only about failures.
    Manual,
    /// A simulated bank with an API: a payout is sent as soon as it is created.
    Sandbox,
    /// A bank with a payment API over HTTP (docs/bank-api.md): the API-channel worker sends each
    /// payout as one signed request and asks the bank's status endpoint when the answer is lost.
    #[serde(rename = "http-api", alias = "http_api")]
    HttpApi,
}

impl ChannelKind {
    /// File and paper channels collect payouts into batches; API channels send each at once.
    pub fn sends_immediately(self) -> bool {
        self == ChannelKind::Sandbox
    }

    /// File and paper channels make batch files; API channels send payout by payout.
    pub fn makes_files(self) -> bool {
        !matches!(self, ChannelKind::Sandbox | ChannelKind::HttpApi)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::HttpApi => "http-api",
            ChannelKind::Iso20022 => "iso20022",
            ChannelKind::Csv => "csv",
            ChannelKind::Manual => "manual",
            ChannelKind::Sandbox => "sandbox",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Debtor {
    pub name: String,
    pub iban: String,
    pub bic: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChannel {
    id: String,
    kind: ChannelKind,
    name: Option<String>,
    currencies: Vec<String>,
    #[serde(default)]
    countries: Vec<String>,
    result_deadline: Option<String>,
    result_mode: Option<ResultMode>,
    presume_success_after: Option<String>,
    return_window: Option<String>,
    answer_bound_multiple: Option<u32>,
    batch_size_max: Option<usize>,
    outbox_dir: Option<PathBuf>,
    inbox_dir: Option<PathBuf>,
    csv_profile: Option<String>,
    statement_profile: Option<String>,
    statement_tolerance_bps: Option<u32>,
    #[serde(default)]
    auto_retry_on_account_fix: bool,
    debtor: Option<Debtor>,
    api: Option<RawApi>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApi {
    base_url: String,
    secret_env: Option<String>,
    secret_file: Option<PathBuf>,
    request_timeout: Option<String>,
    requests_per_second: Option<u32>,
    concurrency: Option<usize>,
    status_backoff_first: Option<String>,
    status_backoff_max: Option<String>,
    breaker_failures: Option<u32>,
    breaker_cooldown: Option<String>,
    payouts_per_round: Option<usize>,
}

/// Where an `http-api` channel's HMAC secret is read from. The secret itself is never kept in
/// the configuration, so it cannot end up in a log line that prints a `Channel`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Env(String),
    File(PathBuf),
}

/// An `http-api` channel's HMAC secret. Its `Debug` shows no byte of it.
#[derive(Clone)]
pub struct ApiSecret(Vec<u8>);

impl ApiSecret {
    pub fn new(bytes: Vec<u8>) -> ApiSecret {
        ApiSecret(bytes)
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for ApiSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiSecret(…)")
    }
}

/// The `[channel.api]` table of an `http-api` channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiSettings {
    /// `http://host:port` or `https://…`, without a trailing slash.
    pub base_url: String,
    pub secret: SecretSource,
    /// One request's whole time; past it the outcome is unknown.
    pub request_timeout: std::time::Duration,
    pub requests_per_second: u32,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// The first wait before asking the status of an unknown outcome; doubled each time.
    pub status_backoff_first: Duration,
    pub status_backoff_max: Duration,
    /// This many failed requests in a row open the circuit breaker…
    pub breaker_failures: u32,
    /// …for this long; then one request tries again.
    pub breaker_cooldown: Duration,
    /// Pending payouts sent per round.
    pub payouts_per_round: usize,
}

impl ApiSettings {
    /// Reads the secret from its source; the error names the source, never the content.
    pub fn load_secret(&self) -> Result<ApiSecret, EngineError> {
        let bytes = match &self.secret {
            SecretSource::Env(name) => std::env::var(name)
                .map_err(|_| {
                    EngineError::Config(format!(
                        "API secret: environment variable {name} is not set"
                    ))
                })?
                .into_bytes(),
            SecretSource::File(path) => std::fs::read(path).map_err(|e| {
                EngineError::Config(format!(
                    "API secret: cannot read key file {}: {e}",
                    path.display()
                ))
            })?,
        };
        let trimmed = String::from_utf8_lossy(&bytes).trim().as_bytes().to_vec();
        if trimmed.len() < 16 {
            return Err(EngineError::Config(format!(
                "API secret from {}: shorter than 16 bytes",
                match &self.secret {
                    SecretSource::Env(n) => format!("${n}"),
                    SecretSource::File(p) => p.display().to_string(),
                }
            )));
        }
        Ok(ApiSecret(trimmed))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default, rename = "channel")]
    channels: Vec<RawChannel>,
}

#[derive(Debug, Clone)]
pub struct Channel {
    pub id: ChannelId,
    pub kind: ChannelKind,
    pub name: String,
    pub currencies: Vec<Currency>,
    /// Beneficiary countries served; empty means any.
    pub countries: Vec<String>,
    pub policy: ChannelPolicy,
    pub batch_size_max: usize,
    pub outbox_dir: PathBuf,
    pub inbox_dir: PathBuf,
    pub csv_profile: Option<String>,
    /// The layout of the bank's CSV account statements (a built-in name or a profile file);
    /// without it, the channel's statements are camt.053.
    pub statement_profile: Option<String>,
    /// Statement matching: a debit whose amount differs from what our books hold by at most this
    /// many basis points is suggested for a person; beyond, raised (default 500: 5%).
    pub statement_tolerance_bps: u32,
    pub auto_retry_on_account_fix: bool,
    pub debtor: Debtor,
    /// Set exactly for `http-api` channels.
    pub api: Option<ApiSettings>,
}

impl Channel {
    pub fn serves(&self, currency: Currency, country: &str) -> bool {
        self.currencies.contains(&currency)
            && (self.countries.is_empty() || self.countries.iter().any(|c| c == country))
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// In routing order: the first channel that serves a payout's currency and country takes it.
    pub channels: Vec<Channel>,
    pub source: String,
}

/// The built-in channels: a SEPA file bank, a Chinese CSV bank, a Myanmar paper bank that reports
/// only failures, and a sandbox API bank for everything else.
/// Statement matching tolerance when a channel sets none: 5%.
pub const STATEMENT_TOLERANCE_BPS: u32 = 500;

pub const DEFAULT_CONFIG: &str = include_str!("../../../disburse.example.toml");

impl Config {
    pub fn builtin() -> Config {
        Config::parse(DEFAULT_CONFIG, "built-in defaults").expect("built-in config is valid")
    }

    /// `disburse.toml` in the working directory if present, else the built-in defaults.
    pub fn load(path: Option<&Path>) -> Result<Config, EngineError> {
        let path = match path {
            Some(p) => p.to_path_buf(),
            None => {
                let p = PathBuf::from("disburse.toml");
                if !p.exists() {
                    return Ok(Config::builtin());
                }
                p
            }
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| EngineError::Config(format!("cannot read {}: {e}", path.display())))?;
        Config::parse(&text, &path.display().to_string())
    }

    pub fn parse(text: &str, source: &str) -> Result<Config, EngineError> {
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| EngineError::Config(format!("{source}: {e}")))?;
        if raw.channels.is_empty() {
            return Err(EngineError::Config(format!(
                "{source}: no [[channel]] defined"
            )));
        }
        let mut channels = Vec::new();
        for c in raw.channels {
            let err = |field: &str, msg: String| {
                EngineError::Config(format!("{source}: channel {}: {field}: {msg}", c.id))
            };
            let id = ChannelId::parse(&c.id).map_err(|e| err("id", e.to_string()))?;
            if channels.iter().any(|x: &Channel| x.id == id) {
                return Err(err("id", "defined twice".into()));
            }
            let currencies = c
                .currencies
                .iter()
                .map(|s| Currency::parse(s).map_err(|e| err("currencies", e.to_string())))
                .collect::<Result<Vec<_>, _>>()?;
            let duration = |field: &str,
                            v: &Option<String>|
             -> Result<Option<Duration>, EngineError> {
                v.as_ref()
                    .map(|s| {
                        humantime::parse_duration(s)
                            .map_err(|e| {
                                err(field, format!("{s:?}: {e} (write e.g. \"10d\" or \"36h\")"))
                            })
                            .and_then(|d| {
                                Duration::from_std(d).map_err(|e| err(field, e.to_string()))
                            })
                    })
                    .transpose()
            };
            let standard = ChannelPolicy::standard();
            let result_mode = c.result_mode.unwrap_or(ResultMode::Explicit);
            let presume_success_after =
                duration("presume_success_after", &c.presume_success_after)?;
            if result_mode == ResultMode::FailuresOnly && presume_success_after.is_none() {
                return Err(err(
                    "presume_success_after",
                    "a failures_only channel needs it: how long silence means paid".into(),
                ));
            }
            let policy = ChannelPolicy {
                result_deadline: duration("result_deadline", &c.result_deadline)?
                    .unwrap_or(standard.result_deadline),
                result_mode,
                presume_success_after,
                return_window: duration("return_window", &c.return_window)?
                    .unwrap_or(standard.return_window),
                answer_bound_multiple: match c.answer_bound_multiple {
                    None => standard.answer_bound_multiple,
                    Some(m @ 1..=100) => m,
                    Some(m) => {
                        return Err(err(
                            "answer_bound_multiple",
                            format!("{m}: must be between 1 and 100"),
                        ))
                    }
                },
            };
            if c.kind == ChannelKind::Csv && c.csv_profile.is_none() {
                return Err(err("csv_profile", "a csv channel needs a profile".into()));
            }
            let statement_tolerance_bps =
                c.statement_tolerance_bps.unwrap_or(STATEMENT_TOLERANCE_BPS);
            if statement_tolerance_bps > 10_000 {
                return Err(err(
                    "statement_tolerance_bps",
                    format!("{statement_tolerance_bps}: at most 10000 (100%)"),
                ));
            }
            if let Some(name) = &c.statement_profile {
                crate::statements::statement_profile(name)
                    .map_err(|e| err("statement_profile", e.to_string()))?;
            }
            let api = match (c.kind, &c.api) {
                (ChannelKind::HttpApi, None) => {
                    return Err(err("api", "an http-api channel needs an [channel.api] table with base_url and secret_env or secret_file".into()))
                }
                (ChannelKind::HttpApi, Some(a)) => {
                    let std_duration = |field: &str, v: &Option<String>, default: &str| -> Result<std::time::Duration, EngineError> {
                        let s = v.as_deref().unwrap_or(default);
                        humantime::parse_duration(s).map_err(|e| err(&format!("api.{field}"), format!("{s:?}: {e} (write e.g. \"5s\" or \"500ms\")")))
                    };
                    let chrono_duration = |field: &str, v: &Option<String>, default: &str| -> Result<Duration, EngineError> {
                        Duration::from_std(std_duration(field, v, default)?).map_err(|e| err(&format!("api.{field}"), e.to_string()))
                    };
                    let base = a.base_url.trim_end_matches('/').to_string();
                    if !(base.starts_with("http://") || base.starts_with("https://")) || base.len() < 10 {
                        return Err(err("api.base_url", format!("{:?}: write http://host:port or https://host", a.base_url)));
                    }
                    let secret = match (&a.secret_env, &a.secret_file) {
                        (Some(n), None) if !n.is_empty() => SecretSource::Env(n.clone()),
                        (None, Some(p)) => SecretSource::File(p.clone()),
                        _ => return Err(err("api", "give exactly one of secret_env or secret_file".into())),
                    };
                    let concurrency = a.concurrency.unwrap_or(4);
                    if !(1..=256).contains(&concurrency) {
                        return Err(err("api.concurrency", format!("{concurrency}: must be between 1 and 256")));
                    }
                    let requests_per_second = a.requests_per_second.unwrap_or(50);
                    if !(1..=10_000).contains(&requests_per_second) {
                        return Err(err("api.requests_per_second", format!("{requests_per_second}: must be between 1 and 10000")));
                    }
                    Some(ApiSettings {
                        base_url: base,
                        secret,
                        request_timeout: std_duration("request_timeout", &a.request_timeout, "10s")?,
                        requests_per_second,
                        concurrency,
                        status_backoff_first: chrono_duration("status_backoff_first", &a.status_backoff_first, "2s")?,
                        status_backoff_max: chrono_duration("status_backoff_max", &a.status_backoff_max, "10m")?,
                        breaker_failures: a.breaker_failures.unwrap_or(5).max(1),
                        breaker_cooldown: chrono_duration("breaker_cooldown", &a.breaker_cooldown, "30s")?,
                        payouts_per_round: a.payouts_per_round.unwrap_or(500).max(1),
                    })
                }
                (_, Some(_)) => return Err(err("api", "only an http-api channel takes an [channel.api] table".into())),
                (_, None) => None,
            };
            let batch_size_max = c.batch_size_max.unwrap_or(10_000);
            if batch_size_max == 0 || batch_size_max > 1_000_000 {
                return Err(err(
                    "batch_size_max",
                    "must be between 1 and 1000000".into(),
                ));
            }
            channels.push(Channel {
                name: c.name.clone().unwrap_or_else(|| c.id.clone()),
                outbox_dir: c
                    .outbox_dir
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(format!("bank/{}/outbox", c.id))),
                inbox_dir: c
                    .inbox_dir
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(format!("bank/{}/inbox", c.id))),
                debtor: c.debtor.clone().unwrap_or(Debtor {
                    name: "Disburse Payments Ltd".into(),
                    iban: "DE89370400440532013000".into(),
                    bic: Some("COBADEFFXXX".into()),
                }),
                id,
                kind: c.kind,
                currencies,
                countries: c.countries.clone(),
                policy,
                batch_size_max,
                csv_profile: c.csv_profile.clone(),
                statement_profile: c.statement_profile.clone(),
                statement_tolerance_bps,
                auto_retry_on_account_fix: c.auto_retry_on_account_fix,
                api,
            });
        }
        Ok(Config {
            channels,
            source: source.to_string(),
        })
    }

    pub fn channel(&self, id: &str) -> Result<&Channel, EngineError> {
        self.channels
            .iter()
            .find(|c| c.id.as_str() == id)
            .ok_or_else(|| EngineError::NotFound {
                what: "channel",
                id: id.to_string(),
            })
    }

    /// The first channel, in configured order, that serves this currency and country.
    pub fn route(&self, currency: Currency, country: &str) -> Result<&Channel, EngineError> {
        self.channels
            .iter()
            .find(|c| c.serves(currency, country))
            .ok_or_else(|| {
                EngineError::Refused(format!(
                    "no channel serves {currency} payouts to {country}; add one to disburse.toml"
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_config_parses_and_routes() {
        let c = Config::builtin();
        assert_eq!(
            c.route(Currency::Eur, "DE").unwrap().id.as_str(),
            "sepa-file"
        );
        assert_eq!(c.route(Currency::Cny, "CN").unwrap().id.as_str(), "cn-csv");
        assert_eq!(
            c.route(Currency::Mmk, "MM").unwrap().id.as_str(),
            "mm-paper"
        );
        assert_eq!(
            c.route(Currency::Usd, "US").unwrap().id.as_str(),
            "sandbox-api"
        );
    }

    #[test]
    fn bad_config_names_channel_and_field() {
        let err = Config::parse(
            "[[channel]]\nid = \"x\"\nkind = \"iso20022\"\ncurrencies = [\"EUR\"]\nresult_deadline = \"ten days\"\n",
            "t.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("t.toml: channel x: result_deadline"), "{err}");
        let err = Config::parse(
            "[[channel]]\nid = \"x\"\nkind = \"manual\"\ncurrencies = [\"MMK\"]\nresult_mode = \"failures_only\"\n",
            "t.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("presume_success_after"), "{err}");
        assert!(Config::parse(
            "[[channel]]\nid = \"x\"\nkind = \"pigeon\"\ncurrencies = []\n",
            "t"
        )
        .is_err());
    }
}
