//! The bank side of the payment API (docs/bank-api.md): the wire types, the request signature,
//! and a pure, seeded bank that decides every answer. The HTTP shell around it lives in
//! `disburse-server` (`sandbox_bank`); here there is no clock, no network and no randomness
//! beyond the seed, so the same seed and the same requests give the same answers.
//!
//! Each payment key (our payout number) draws one [`ApiFault`] from the [`FaultMix`] by a hash
//! of the seed and the key. A fault strikes the first request of its key only, so a client that
//! retries with the same key always converges; what the bank moved is in [`ApiBank::ledger`].

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The header that carries the request's signature: `t=<unix seconds>,v1=<hex HMAC-SHA256>`.
pub const SIGNATURE_HEADER: &str = "Bank-Signature";
/// The header that carries the payment key on `POST /payments`.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";
/// A signature older or newer than this many seconds is refused (replay window).
pub const REPLAY_WINDOW_SECONDS: i64 = 300;

/// The body of `POST /payments`. Amounts are integer minor units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentRequest {
    /// Our payout number; equal to the `Idempotency-Key` header.
    pub payout_no: String,
    pub amount_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// IBAN, or `bank_code:number` for a local account.
    pub creditor_account: String,
    pub creditor_name: String,
    pub reference: String,
}

/// What the bank says about one payment, in answers and in `GET /payments/{key}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum PaymentStatus {
    /// The bank has no payment under this key: the request never arrived (send it again).
    Unknown,
    Accepted {
        bank_reference: String,
    },
    Paid {
        bank_reference: String,
        amount_minor: i64,
        currency: String,
    },
    Rejected {
        /// ISO 20022 external status reason code (AC04, AM04, …).
        reason_code: String,
        reason_text: String,
    },
}

/// A signed notification the bank POSTs to `/bank-callbacks/{channel}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Callback {
    /// Unique per notification; a repeated id is the same news.
    pub event_id: String,
    pub payout_no: String,
    #[serde(flatten)]
    pub status: PaymentStatus,
}

/// The HMAC-SHA256, hex, of `METHOD\nPATH\nTIMESTAMP\nBODY`.
pub fn signature(secret: &[u8], method: &str, path: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(method.as_bytes());
    mac.update(b"\n");
    mac.update(path.as_bytes());
    mac.update(b"\n");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b"\n");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// The value of [`SIGNATURE_HEADER`] for a request.
pub fn signature_header(
    secret: &[u8],
    method: &str,
    path: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    format!(
        "t={timestamp},v1={}",
        signature(secret, method, path, timestamp, body)
    )
}

/// Why a signature is not accepted. Never contains the secret or the expected signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no {SIGNATURE_HEADER} header")]
    Missing,
    #[error("{SIGNATURE_HEADER} is not t=<unix seconds>,v1=<hex>")]
    Malformed,
    #[error("{SIGNATURE_HEADER} timestamp {0} is outside the {REPLAY_WINDOW_SECONDS}s window")]
    Stale(i64),
    #[error("{SIGNATURE_HEADER} does not match the request")]
    Mismatch,
}

/// Checks a signature header against the request, as of `now_unix` (the replay window).
pub fn verify_signature(
    secret: &[u8],
    header: Option<&str>,
    method: &str,
    path: &str,
    body: &[u8],
    now_unix: i64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => v1 = hex::decode(v).ok(),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return Err(SignatureError::Malformed);
    };
    if (now_unix - t).abs() > REPLAY_WINDOW_SECONDS {
        return Err(SignatureError::Stale(t));
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(method.as_bytes());
    mac.update(b"\n");
    mac.update(path.as_bytes());
    mac.update(b"\n");
    mac.update(t.to_string().as_bytes());
    mac.update(b"\n");
    mac.update(body);
    // Constant-time comparison.
    mac.verify_slice(&v1).map_err(|_| SignatureError::Mismatch)
}

/// One way the bank misbehaves, on the first request of a payment key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ApiFault {
    /// Answers correctly, slowly (within the client's timeout).
    Slow,
    /// Takes the payment, then does not answer before the client gives up.
    TimeoutAfterAccept,
    /// 503 without taking the payment.
    ErrorBeforeAccept,
    /// Takes the payment, then answers 500.
    ErrorAfterAccept,
    /// 429 with `Retry-After`, without taking the payment.
    Throttle,
    /// Pays another amount than instructed (a little less).
    OtherAmount,
    /// Rejects the payment with an ISO reason code (422).
    Reject,
}

impl ApiFault {
    pub const ALL: [ApiFault; 7] = [
        ApiFault::Slow,
        ApiFault::TimeoutAfterAccept,
        ApiFault::ErrorBeforeAccept,
        ApiFault::ErrorAfterAccept,
        ApiFault::Throttle,
        ApiFault::OtherAmount,
        ApiFault::Reject,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ApiFault::Slow => "slow",
            ApiFault::TimeoutAfterAccept => "timeout",
            ApiFault::ErrorBeforeAccept => "5xx-before",
            ApiFault::ErrorAfterAccept => "5xx-after",
            ApiFault::Throttle => "429",
            ApiFault::OtherAmount => "other-amount",
            ApiFault::Reject => "reject",
        }
    }
}

/// Percent of payment keys that get each fault; the rest are answered cleanly.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FaultMix {
    weights: Vec<(ApiFault, u32)>,
}

impl FaultMix {
    /// No faults: every payment answered cleanly.
    pub fn none() -> FaultMix {
        FaultMix::default()
    }

    /// Every payment key gets `fault`.
    pub fn only(fault: ApiFault) -> FaultMix {
        FaultMix {
            weights: vec![(fault, 100)],
        }
    }

    /// `slow=10,timeout=10,5xx-before=10,5xx-after=10,429=5,other-amount=5,reject=10` (percent),
    /// `none`, or `all` (each fault equally, about one key in eight clean).
    pub fn parse(text: &str) -> Result<FaultMix, String> {
        let text = text.trim();
        match text {
            "" | "none" => return Ok(FaultMix::none()),
            "all" => {
                return Ok(FaultMix {
                    weights: ApiFault::ALL.iter().map(|f| (*f, 12)).collect(),
                })
            }
            _ => {}
        }
        let mut weights: Vec<(ApiFault, u32)> = Vec::new();
        for part in text.split(',') {
            let (name, pct) = part
                .trim()
                .split_once('=')
                .ok_or_else(|| format!("faults: {part:?} is not name=percent (e.g. timeout=10)"))?;
            let fault = ApiFault::ALL
                .into_iter()
                .find(|f| f.name() == name.trim())
                .ok_or_else(|| {
                    let names: Vec<&str> = ApiFault::ALL.iter().map(|f| f.name()).collect();
                    format!(
                        "faults: unknown fault {name:?} (known: {})",
                        names.join(", ")
                    )
                })?;
            let pct: u32 = pct
                .trim()
                .parse()
                .map_err(|e| format!("faults: {name}={pct:?}: {e}"))?;
            if weights.iter().any(|(f, _)| *f == fault) {
                return Err(format!("faults: {name} given twice"));
            }
            weights.push((fault, pct));
        }
        let total: u32 = weights.iter().map(|(_, w)| w).sum();
        if total > 100 {
            return Err(format!(
                "faults: the percentages add up to {total}, more than 100"
            ));
        }
        Ok(FaultMix { weights })
    }

    /// The fault of one payment key: a pure function of the seed and the key.
    pub fn fault_of(&self, seed: u64, key: &str) -> Option<ApiFault> {
        let roll = draw(seed, key, "fault") % 100;
        let mut upto = 0u64;
        for (fault, w) in &self.weights {
            upto += u64::from(*w);
            if roll < upto {
                return Some(*fault);
            }
        }
        None
    }
}

/// A uniform 64-bit draw from the seed, the key and a purpose.
fn draw(seed: u64, key: &str, purpose: &str) -> u64 {
    let mut h = Sha256::new();
    h.update(seed.to_le_bytes());
    h.update(purpose.as_bytes());
    h.update([0]);
    h.update(key.as_bytes());
    let d = h.finalize();
    u64::from_le_bytes(d[..8].try_into().expect("a SHA-256 digest has 32 bytes"))
}

/// How long the shell waits before it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delay {
    None,
    /// The `slow` delay: still within a client's timeout.
    Slow,
    /// The `hang` delay: past any client's timeout.
    Hang,
}

/// One HTTP answer, decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: serde_json::Value,
    pub delay: Delay,
    /// Seconds for a `Retry-After` header (429).
    pub retry_after_seconds: Option<u64>,
}

impl Reply {
    fn new(status: u16, body: serde_json::Value) -> Reply {
        Reply {
            status,
            body,
            delay: Delay::None,
            retry_after_seconds: None,
        }
    }

    fn error(status: u16, detail: impl Into<String>) -> Reply {
        Reply::new(status, serde_json::json!({ "error": detail.into() }))
    }
}

/// What the bank holds about one payment key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedgerEntry {
    pub key: String,
    /// SHA-256 of the body first accepted under the key.
    #[serde(skip)]
    pub body_sha256: [u8; 32],
    pub currency: String,
    pub instructed_minor: i64,
    /// What the bank moved out of our account: zero unless paid.
    pub moved_minor: i64,
    pub status: PaymentStatus,
    /// Instructions executed under the key: a replayed request is never executed again.
    pub executions: u32,
    /// Every POST that reached the bank under the key, faults and replays included.
    pub requests: u32,
}

/// The bank's books, as `GET /ledger` shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ledger {
    pub entries: Vec<LedgerEntry>,
    /// POSTs per key, including those refused before any payment was taken.
    pub requests_by_key: BTreeMap<String, u32>,
}

/// The seeded bank: takes payment requests and status queries and decides every answer.
#[derive(Debug, Clone)]
pub struct ApiBank {
    seed: u64,
    mix: FaultMix,
    payments: BTreeMap<String, LedgerEntry>,
    requests: BTreeMap<String, u32>,
    next_reference: u64,
    /// Whether the bank notifies (callbacks); what it has to send, in order.
    notify: bool,
    outbox: Vec<Notification>,
    next_event: u64,
}

/// One callback the bank is to POST, in order. A few keys (by the seed) get their news twice, an
/// "accepted" after the final word (out of order), or a first attempt signed with a wrong key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub callback: Callback,
    /// `false`: signed with a wrong secret (the receiver must refuse it).
    pub signed_correctly: bool,
}

/// ISO 20022 reason codes the sandbox rejects with.
const REJECT_CODES: [(&str, &str); 4] = [
    ("AC04", "closed account number"),
    ("AC01", "incorrect account number"),
    ("AM04", "insufficient funds"),
    ("BE01", "inconsistent with end customer"),
];

impl ApiBank {
    pub fn new(seed: u64, mix: FaultMix) -> ApiBank {
        ApiBank {
            seed,
            mix,
            payments: BTreeMap::new(),
            requests: BTreeMap::new(),
            next_reference: 1,
            notify: false,
            outbox: Vec::new(),
            next_event: 1,
        }
    }

    /// A bank that also sends callbacks when a payment is paid or rejected.
    pub fn with_callbacks(mut self) -> ApiBank {
        self.notify = true;
        self
    }

    /// The callbacks due, oldest first; each is returned once.
    pub fn take_notifications(&mut self) -> Vec<Notification> {
        std::mem::take(&mut self.outbox)
    }

    /// Queues the news of a payment that just became final.
    fn notify_final(&mut self, key: &str, status: &PaymentStatus) {
        if !self.notify {
            return;
        }
        let event = |bank: &mut ApiBank| {
            let id = format!("EV{:08}", bank.next_event);
            bank.next_event += 1;
            id
        };
        let final_word = Callback {
            event_id: event(self),
            payout_no: key.to_string(),
            status: status.clone(),
        };
        let good = |callback: Callback| Notification {
            callback,
            signed_correctly: true,
        };
        match draw(self.seed, key, "callback") % 4 {
            // The same news twice.
            1 => {
                self.outbox.push(good(final_word.clone()));
                self.outbox.push(good(final_word));
            }
            // An older "accepted" arriving after the final word.
            2 => {
                let reference = match status {
                    PaymentStatus::Paid { bank_reference, .. } => bank_reference.clone(),
                    _ => format!("SBX-{key}"),
                };
                self.outbox.push(good(final_word));
                let late = Callback {
                    event_id: event(self),
                    payout_no: key.to_string(),
                    status: PaymentStatus::Accepted {
                        bank_reference: reference,
                    },
                };
                self.outbox.push(good(late));
            }
            // A first attempt with a bad signature, then the right one.
            3 => {
                self.outbox.push(Notification {
                    callback: final_word.clone(),
                    signed_correctly: false,
                });
                self.outbox.push(good(final_word));
            }
            _ => self.outbox.push(good(final_word)),
        }
    }

    pub fn fault_of(&self, key: &str) -> Option<ApiFault> {
        self.mix.fault_of(self.seed, key)
    }

    /// `POST /payments`, its signature already checked by the shell.
    pub fn submit(&mut self, idempotency_key: Option<&str>, body: &[u8]) -> Reply {
        let Some(key) = idempotency_key.filter(|k| !k.trim().is_empty()) else {
            return Reply::error(400, format!("{IDEMPOTENCY_HEADER} header missing"));
        };
        let key = key.to_string();
        let req: PaymentRequest = match serde_json::from_slice(body) {
            Ok(r) => r,
            Err(e) => return Reply::error(400, format!("body: {e}")),
        };
        if req.payout_no != key {
            return Reply::error(
                400,
                format!(
                    "payout_no {:?} is not the {IDEMPOTENCY_HEADER}",
                    req.payout_no
                ),
            );
        }
        if req.amount_minor <= 0 {
            return Reply::error(400, "amount_minor: must be positive");
        }
        let digest: [u8; 32] = Sha256::digest(body).into();
        let first = !self.requests.contains_key(&key);
        let seen = self.requests.entry(key.clone()).or_insert(0);
        *seen += 1;
        if let Some(entry) = self.payments.get_mut(&key) {
            entry.requests += 1;
            if entry.body_sha256 != digest {
                return Reply::error(409, "this key was used with another body");
            }
            // A replay: the same answer, nothing executed again.
            return status_reply(&entry.status);
        }
        let fault = if first { self.fault_of(&key) } else { None };
        match fault {
            Some(ApiFault::ErrorBeforeAccept) => {
                return Reply::error(503, "temporarily unavailable")
            }
            Some(ApiFault::Throttle) => {
                let mut r = Reply::error(429, "too many requests");
                r.retry_after_seconds = Some(1);
                return r;
            }
            _ => {}
        }
        let reference = format!("SBX{:08}", self.next_reference);
        self.next_reference += 1;
        // Half of the clean payments are paid at once (200), half accepted (201) and paid when
        // next asked about.
        let status = match fault {
            Some(ApiFault::Reject) => {
                let (code, text) = REJECT_CODES[(draw(self.seed, &key, "reason") % 4) as usize];
                PaymentStatus::Rejected {
                    reason_code: code.into(),
                    reason_text: text.into(),
                }
            }
            Some(ApiFault::OtherAmount) => PaymentStatus::Paid {
                bank_reference: reference,
                amount_minor: other_amount(req.amount_minor),
                currency: req.currency.clone(),
            },
            _ if draw(self.seed, &key, "pace").is_multiple_of(2) => PaymentStatus::Paid {
                bank_reference: reference,
                amount_minor: req.amount_minor,
                currency: req.currency.clone(),
            },
            _ => PaymentStatus::Accepted {
                bank_reference: reference,
            },
        };
        let entry = LedgerEntry {
            key: key.clone(),
            body_sha256: digest,
            currency: req.currency.clone(),
            instructed_minor: req.amount_minor,
            moved_minor: moved(&status),
            status,
            executions: 1,
            requests: 1,
        };
        let mut reply = status_reply(&entry.status);
        if !matches!(entry.status, PaymentStatus::Accepted { .. }) {
            let status = entry.status.clone();
            self.notify_final(&key, &status);
        }
        self.payments.insert(key, entry);
        match fault {
            Some(ApiFault::ErrorAfterAccept) => Reply::error(500, "internal error"),
            Some(ApiFault::TimeoutAfterAccept) => {
                reply.delay = Delay::Hang;
                reply
            }
            Some(ApiFault::Slow) => {
                reply.delay = Delay::Slow;
                reply
            }
            _ => reply,
        }
    }

    /// `GET /payments/{key}`. An accepted payment is paid when asked about (the bank's day
    /// moves on between two questions).
    pub fn status(&mut self, key: &str) -> Reply {
        let Some(entry) = self.payments.get_mut(key) else {
            return Reply::new(200, serde_json::json!({ "status": "unknown" }));
        };
        let mut paid_now = None;
        if let PaymentStatus::Accepted { bank_reference } = &entry.status {
            entry.status = PaymentStatus::Paid {
                bank_reference: bank_reference.clone(),
                amount_minor: entry.instructed_minor,
                currency: entry.currency.clone(),
            };
            entry.moved_minor = entry.instructed_minor;
            paid_now = Some(entry.status.clone());
        }
        let reply = Reply::new(200, serde_json::to_value(&entry.status).unwrap_or_default());
        if let Some(status) = paid_now {
            self.notify_final(key, &status);
        }
        reply
    }

    /// The status of a key without moving the bank's day on.
    pub fn peek(&self, key: &str) -> PaymentStatus {
        self.payments
            .get(key)
            .map_or(PaymentStatus::Unknown, |e| e.status.clone())
    }

    pub fn ledger(&self) -> Ledger {
        Ledger {
            entries: self.payments.values().cloned().collect(),
            requests_by_key: self.requests.clone(),
        }
    }
}

/// A little less than instructed: 1% short, at least one minor unit.
fn other_amount(instructed: i64) -> i64 {
    (instructed - (instructed / 100).max(1)).max(1)
}

fn moved(status: &PaymentStatus) -> i64 {
    match status {
        PaymentStatus::Paid { amount_minor, .. } => *amount_minor,
        _ => 0,
    }
}

fn status_reply(status: &PaymentStatus) -> Reply {
    let code = match status {
        PaymentStatus::Unknown => 200,
        PaymentStatus::Accepted { .. } => 201,
        PaymentStatus::Paid { .. } => 200,
        PaymentStatus::Rejected { .. } => 422,
    };
    Reply::new(code, serde_json::to_value(status).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(key: &str, amount: i64) -> Vec<u8> {
        serde_json::to_vec(&PaymentRequest {
            payout_no: key.into(),
            amount_minor: amount,
            currency: "EUR".into(),
            creditor_account: "DE89370400440532013000".into(),
            creditor_name: "Acme".into(),
            reference: "Payout".into(),
        })
        .unwrap()
    }

    #[test]
    fn signatures_verify_and_refuse_tampering_and_stale_times() {
        let h = signature_header(b"s3cret", "POST", "/payments", 1_000, b"{}");
        assert_eq!(
            verify_signature(b"s3cret", Some(&h), "POST", "/payments", b"{}", 1_100),
            Ok(())
        );
        assert_eq!(
            verify_signature(b"s3cret", Some(&h), "POST", "/payments", b"{ }", 1_100),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(b"other", Some(&h), "POST", "/payments", b"{}", 1_100),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(b"s3cret", Some(&h), "POST", "/payments", b"{}", 1_400),
            Err(SignatureError::Stale(1_000))
        );
        assert_eq!(
            verify_signature(b"s3cret", Some("v1=zz"), "POST", "/p", b"", 0),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify_signature(b"s3cret", None, "POST", "/p", b"", 0),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn fault_mix_parses_and_refuses_with_names() {
        let m = FaultMix::parse("timeout=50,reject=50").unwrap();
        let faults: Vec<_> = (0..200)
            .map(|i| m.fault_of(7, &format!("PO-{i}")))
            .collect();
        assert!(faults
            .iter()
            .all(|f| matches!(f, Some(ApiFault::TimeoutAfterAccept | ApiFault::Reject))));
        assert!(faults.contains(&Some(ApiFault::Reject)));
        assert!(faults.contains(&Some(ApiFault::TimeoutAfterAccept)));
        assert!(FaultMix::parse("none").unwrap().fault_of(1, "x").is_none());
        let e = FaultMix::parse("pigeon=3").unwrap_err();
        assert!(e.contains("pigeon") && e.contains("5xx-before"), "{e}");
        assert!(FaultMix::parse("slow=60,reject=60")
            .unwrap_err()
            .contains("120"));
        assert!(FaultMix::parse("slow")
            .unwrap_err()
            .contains("name=percent"));
    }

    #[test]
    fn a_replay_is_never_executed_twice_and_another_body_conflicts() {
        let mut bank = ApiBank::new(3, FaultMix::none());
        let first = bank.submit(Some("PO-1"), &body("PO-1", 1_000));
        assert!(matches!(first.status, 200 | 201), "{first:?}");
        let again = bank.submit(Some("PO-1"), &body("PO-1", 1_000));
        assert_eq!(again.status, first.status);
        assert_eq!(bank.submit(Some("PO-1"), &body("PO-1", 999)).status, 409);
        let ledger = bank.ledger();
        assert_eq!(ledger.entries.len(), 1);
        assert_eq!(ledger.entries[0].executions, 1);
        assert_eq!(ledger.entries[0].requests, 3);
        // Asking about it settles an accepted payment; an unknown key is unknown.
        let s = bank.status("PO-1");
        assert_eq!(s.body["status"], "paid");
        assert_eq!(s.body["amount_minor"], 1_000);
        assert_eq!(bank.status("PO-2").body["status"], "unknown");
    }

    #[test]
    fn each_fault_strikes_the_first_request_only() {
        for fault in ApiFault::ALL {
            let mut bank = ApiBank::new(11, FaultMix::only(fault));
            let r = bank.submit(Some("PO-9"), &body("PO-9", 10_000));
            let taken = bank.peek("PO-9") != PaymentStatus::Unknown;
            match fault {
                ApiFault::ErrorBeforeAccept => assert!(r.status == 503 && !taken),
                ApiFault::Throttle => {
                    assert!(r.status == 429 && !taken && r.retry_after_seconds == Some(1))
                }
                ApiFault::ErrorAfterAccept => assert!(r.status == 500 && taken),
                ApiFault::TimeoutAfterAccept => assert!(r.delay == Delay::Hang && taken),
                ApiFault::Slow => assert!(r.delay == Delay::Slow && taken),
                ApiFault::OtherAmount => {
                    assert_eq!(r.status, 200);
                    assert_eq!(r.body["amount_minor"], 9_900);
                }
                ApiFault::Reject => {
                    assert_eq!(r.status, 422);
                    assert!(r.body["reason_code"].as_str().unwrap().len() == 4);
                }
            }
            // The same request again: answered, executed at most once.
            let again = bank.submit(Some("PO-9"), &body("PO-9", 10_000));
            assert!(
                matches!(again.status, 200 | 201 | 422),
                "{fault:?}: {again:?}"
            );
            assert_eq!(again.delay, Delay::None);
            assert_eq!(bank.ledger().entries[0].executions, 1);
        }
    }

    #[test]
    fn callbacks_tell_each_final_word_with_seeded_faults() {
        let mut bank = ApiBank::new(4, FaultMix::none()).with_callbacks();
        let mut kinds = std::collections::BTreeSet::new();
        for i in 0..40 {
            let key = format!("PO-{i}");
            bank.submit(Some(&key), &body(&key, 500));
            bank.status(&key);
            let sent = bank.take_notifications();
            assert!(!sent.is_empty(), "{key}: no news");
            // The final word is always among them, correctly signed.
            assert!(sent.iter().any(|n| n.signed_correctly
                && n.callback.status == bank.peek(&key)
                && n.callback.payout_no == key));
            kinds.insert((sent.len(), sent.iter().all(|n| n.signed_correctly)));
            assert!(bank.take_notifications().is_empty(), "each is sent once");
        }
        assert!(
            kinds.contains(&(2, false)),
            "a bad signature first: {kinds:?}"
        );
        assert!(
            kinds.contains(&(2, true)),
            "a duplicate or a late accepted: {kinds:?}"
        );
        assert!(kinds.contains(&(1, true)), "a clean one: {kinds:?}");
        // A bank without callbacks queues nothing.
        let mut quiet = ApiBank::new(4, FaultMix::none());
        quiet.submit(Some("PO-1"), &body("PO-1", 500));
        quiet.status("PO-1");
        assert!(quiet.take_notifications().is_empty());
    }

    #[test]
    fn bad_requests_are_named() {
        let mut bank = ApiBank::new(1, FaultMix::none());
        assert!(bank.submit(None, b"{}").body["error"]
            .as_str()
            .unwrap()
            .contains("Idempotency-Key"));
        assert!(bank.submit(Some("PO-1"), &body("PO-2", 5)).body["error"]
            .as_str()
            .unwrap()
            .contains("payout_no"));
        assert_eq!(bank.submit(Some("PO-1"), b"not json").status, 400);
        assert_eq!(bank.submit(Some("PO-1"), &body("PO-1", 0)).status, 400);
        assert!(bank.ledger().entries.is_empty());
    }
}
