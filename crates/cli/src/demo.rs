//! `disburse demo`: simulated days of a payout desk on a fresh SQLite database.
//!
//! Merchants in four countries withdraw; their payouts go out as a SEPA pain.001, a Chinese GBK
//! CSV file, a printed Myanmar instruction sheet and API calls; the sandbox bank answers over the
//! following days (paid, rejected, silent, paid the wrong amount, late, returned); result files are
//! imported; merchants fix rejected accounts and are paid again; deadlines are swept. The summary
//! is what the desk sees at the end.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use disburse_core::account::{
    AccountNumber, BankAccount, CountryCode, HolderName, Iban, LocalAccount,
};
use disburse_core::{BankResult, Currency, MerchantId, Money, OperatorName, OrderNo, PayoutNo};
use disburse_engine::{keys, Actor, Config, Engine, OrderRef, ResultSource, WithdrawRequest};
use disburse_sandbox::{plan, render_day, Answer, BankPlan, SandboxConfig};
use disburse_store::{Db, OrderRow, PayoutRow};

struct Merchant {
    id: &'static str,
    name: &'static str,
    currency: Currency,
    funding: &'static str,
    account: fn(u32) -> AccountNumber,
    /// Withdrawal amounts, cycled.
    amounts: &'static [&'static str],
}

fn local(country: &str, code: &str, number: &str) -> AccountNumber {
    LocalAccount::new(CountryCode::parse(country).expect("country"), code, number)
        .expect("demo account")
        .into()
}

fn iban(text: &str) -> AccountNumber {
    Iban::parse(text).expect("demo IBAN").into()
}

const MERCHANTS: [Merchant; 5] = [
    Merchant {
        id: "acme",
        name: "Acme GmbH",
        currency: Currency::Eur,
        funding: "60000.00",
        account: |v| {
            iban(if v == 1 {
                "DE89370400440532013000"
            } else {
                "DE02120300000000202051"
            })
        },
        amounts: &["1250.00", "830.40", "2400.00", "99.99", "5100.00", "640.00"],
    },
    Merchant {
        id: "lyon",
        name: "Lyon Textiles SARL",
        currency: Currency::Eur,
        funding: "40000.00",
        account: |v| {
            iban(if v == 1 {
                "FR1420041010050500013M02606"
            } else {
                "FR7630006000011234567890189"
            })
        },
        amounts: &["310.00", "1999.00", "725.50", "4200.00"],
    },
    Merchant {
        id: "shenzhen",
        name: "深圳贸易有限公司",
        currency: Currency::Cny,
        funding: "800000.00",
        account: |v| {
            local(
                "CN",
                "102100099996",
                if v == 1 {
                    "6222020200112233445"
                } else {
                    "6222020200998877665"
                },
            )
        },
        amounts: &["12345.60", "8000.00", "56000.00", "3210.00"],
    },
    Merchant {
        id: "yangon",
        name: "Yangon Traders Co",
        currency: Currency::Mmk,
        funding: "90000000.00",
        account: |v| {
            local(
                "MM",
                "KBZ0001",
                if v == 1 { "0123456789" } else { "0987654321" },
            )
        },
        amounts: &["2500000.00", "1200000.00", "4000000.00"],
    },
    Merchant {
        id: "austin",
        name: "Austin Outfitters LLC",
        currency: Currency::Usd,
        funding: "30000.00",
        account: |v| {
            local(
                "US",
                "021000021",
                if v == 1 { "123456789" } else { "555566667777" },
            )
        },
        amounts: &["450.00", "1200.00", "89.00"],
    },
];

/// What the sandbox bank will say, per channel batch or API payout group.
struct Pending {
    channel: String,
    plan: BankPlan,
}

#[derive(Default)]
struct Tally {
    batches: u64,
    files: u64,
    read: u64,
    applied: u64,
    unchanged: u64,
    exceptions: u64,
    manual_notices: u64,
    api_answers: u64,
    retries: Vec<(String, String, String)>,
}

pub async fn run(dir: Option<PathBuf>, days: u32, seed: u64) -> anyhow::Result<String> {
    let dir = match dir {
        Some(d) => d,
        None => {
            let stamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0);
            std::env::temp_dir().join(format!("disburse-demo-{}-{stamp}", std::process::id()))
        }
    };
    std::fs::create_dir_all(&dir)?;
    let db_path = dir.join("demo.db");
    anyhow::ensure!(
        !db_path.exists(),
        "{} exists: the demo needs a fresh database (choose another --dir)",
        db_path.display()
    );
    let db_url = db_path.display().to_string();
    let (key, _) = keys::load_key(&db_url, None, true)?;
    let mut config = Config::builtin();
    for c in &mut config.channels {
        c.outbox_dir = dir.join("bank").join(c.id.as_str()).join("outbox");
        c.inbox_dir = dir.join("bank").join(c.id.as_str()).join("inbox");
    }
    // The API bank: the sandbox bank's payment API, in-process on a loopback port.
    let api_bank = start_api_bank(&dir, seed).await?;
    config.channels.push(api_bank.channel.clone());
    let engine = Engine::new(Db::open(&db_url).await?, config, key);
    let desk = Actor::operator(&OperatorName::parse("demo.desk")?);
    let start: DateTime<Utc> = Utc
        .with_ymd_and_hms(2026, 11, 2, 9, 0, 0)
        .single()
        .expect("valid date");
    let mut versions: BTreeMap<&str, u32> = BTreeMap::new();
    for m in &MERCHANTS {
        let id = MerchantId::parse(m.id)?;
        engine.add_merchant(&id, m.name, start, &desk).await?;
        let account = BankAccount::new(HolderName::parse(m.name)?, (m.account)(1), None);
        engine.set_bank_account(&id, &account, start, &desk).await?;
        versions.insert(m.id, 1);
        engine
            .fund(
                &id,
                Money::parse(m.funding, m.currency)?,
                Some("collections, October"),
                start,
                &desk,
            )
            .await?;
    }

    let sandbox = SandboxConfig::demo(seed);
    let mut pending: Vec<Pending> = Vec::new();
    let mut tally = Tally::default();
    for d in 0..days {
        let morning = start + Duration::days(i64::from(d));
        // Merchants fix accounts the bank rejected; their waiting orders are paid again.
        for m in &MERCHANTS {
            let row = engine.db().merchant(m.id).await?.expect("demo merchant");
            if row.account_status == "needs_update" {
                let v = versions.get(m.id).copied().unwrap_or(1) + 1;
                versions.insert(m.id, v);
                let account = BankAccount::new(HolderName::parse(m.name)?, (m.account)(v), None);
                let set = engine
                    .set_bank_account(&MerchantId::parse(m.id)?, &account, morning, &desk)
                    .await?;
                // Channels that retry on an account fix paid the waiting orders again already.
                for new_no in set.retried {
                    let Some(new) = engine.db().payout_by_no(&new_no).await? else {
                        continue;
                    };
                    let payouts = engine.db().payouts_of_order(new.order_id).await?;
                    let failed = payouts.iter().rev().find(|p| p.id != new.id);
                    let order = engine.db().order(new.order_id).await?;
                    if let (Some(failed), Some(order)) = (failed, order) {
                        tally
                            .retries
                            .push((order.order_no, failed.payout_no.clone(), new_no));
                    }
                }
            }
        }
        let waiting: Vec<OrderRow> = engine.db().orders_in_state("action_required").await?;
        for o in waiting {
            let payouts = engine.db().payouts_of_order(o.id).await?;
            let Some(last) = payouts.last() else { continue };
            if last.state == "expired" {
                continue; // a person must find out first; never paid twice
            }
            let r = OrderRef {
                order_no: OrderNo::parse(&o.order_no)?,
                merchant: Some(MerchantId::parse(&o.merchant_id)?),
            };
            if let Ok(disburse_engine::PayoutStart::Sent(p)) =
                engine.create_payout(&r, None, morning, &desk).await
            {
                tally.retries.push((
                    o.order_no.clone(),
                    last.payout_no.clone(),
                    p.payout_no.clone(),
                ));
            }
        }
        // New withdrawals during the first days.
        if d < 4 {
            for m in &MERCHANTS {
                for i in 0..3usize {
                    let n = d as usize * 3 + i;
                    let amount = Money::parse(m.amounts[n % m.amounts.len()], m.currency)?;
                    let order_no =
                        OrderNo::parse(&format!("{}-{:03}", m.id.to_uppercase(), n + 1))?;
                    let req = WithdrawRequest {
                        merchant: MerchantId::parse(m.id)?,
                        order_no: order_no.clone(),
                        amount,
                    };
                    engine.withdraw(&req, morning, &desk).await?;
                    let p = engine
                        .create_payout(
                            &OrderRef {
                                order_no,
                                merchant: Some(req.merchant.clone()),
                            },
                            None,
                            morning,
                            &desk,
                        )
                        .await?;
                    // Settled by netting: nothing to send.
                    let Some(p) = p.into_payout() else { continue };
                    if p.channel_id == "sandbox-api" {
                        let amount = Money::from_minor(p.amount_minor, m.currency);
                        pending.push(Pending {
                            channel: p.channel_id.clone(),
                            plan: plan(
                                &sandbox,
                                [(p.payout_no.clone(), amount)],
                                &p.payout_no,
                                morning.date_naive(),
                            ),
                        });
                    }
                }
            }
        }
        // Afternoon: file and paper channels send their batches.
        let afternoon = morning + Duration::hours(8);
        for channel in ["sepa-file", "cn-csv", "mm-paper"] {
            // Written to the channel's outbox the way `batch create` writes it (atomically, and
            // recorded as written), so the desk sees no batch whose file is missing.
            if let Some((batch, _path)) = engine
                .create_batch_file(channel, None, afternoon, &desk)
                .await?
            {
                tally.batches += 1;
                let payouts: Vec<PayoutRow> = engine.db().payouts_of_batch(batch.batch_id).await?;
                let currency = Currency::parse(&batch.currency)?;
                let transfers = payouts.iter().map(|p| {
                    (
                        p.payout_no.clone(),
                        Money::from_minor(p.amount_minor, currency),
                    )
                });
                pending.push(Pending {
                    channel: channel.to_string(),
                    plan: plan(
                        &sandbox,
                        transfers,
                        &batch.message_id,
                        afternoon.date_naive(),
                    ),
                });
            }
        }
        // Evening: what the banks said today arrives and is applied.
        let evening = morning + Duration::hours(10);
        let today = evening.date_naive();
        for p in &pending {
            deliver(&engine, p, today, evening, &desk, &mut tally).await?;
        }
        engine
            .sweep(morning + Duration::hours(14), &Actor::system("sweeper"))
            .await?;
    }
    let end = start + Duration::days(i64::from(days)) + Duration::hours(15);
    let last_day = (start + Duration::days(i64::from(days.max(1)) - 1)).date_naive();
    let reconciled = statements(&engine, &pending, start, last_day, end, &desk).await?;
    let api = api_bank_day(&engine, &api_bank, end - Duration::hours(3), &desk).await?;
    let mut text = summary(&engine, &db_path, days, seed, start, end, &tally).await?;
    text.push_str(&reconciled);
    text.push_str(&api);
    Ok(text)
}

const API_CHANNEL: &str = "api-bank";

struct ApiBankDemo {
    channel: disburse_engine::Channel,
    url: String,
}

/// Starts the sandbox bank's HTTP API on 127.0.0.1:0 (timeouts after accepting, 5xx before and
/// after, rejections, other amounts) and describes the `http-api` channel that calls it; the
/// shared secret is a fresh random key file in the demo directory.
async fn start_api_bank(dir: &Path, seed: u64) -> anyhow::Result<ApiBankDemo> {
    use rand::RngCore;
    let mut secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let secret = hex::encode(secret);
    let secret_file = dir.join("api-bank.secret");
    std::fs::write(&secret_file, &secret)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let opts = disburse_server::bank_api::SandboxBankOptions {
        seed,
        faults: disburse_sandbox::api::FaultMix::parse(
            "timeout=20,5xx-after=15,5xx-before=15,reject=10,other-amount=5,slow=10",
        )
        .map_err(anyhow::Error::msg)?,
        secret: secret.into_bytes(),
        slow: std::time::Duration::from_millis(50),
        hang: std::time::Duration::from_millis(800),
        callback_url: None,
    };
    tokio::spawn(disburse_server::bank_api::serve_sandbox_bank(
        listener,
        opts,
        std::future::pending(),
    ));
    let toml = format!(
        r#"[[channel]]
id = "{API_CHANNEL}"
kind = "http-api"
name = "API bank (HTTP, over loopback)"
currencies = ["EUR"]
result_deadline = "2d"

[channel.api]
base_url = "{url}"
secret_file = "{}"
request_timeout = "300ms"
concurrency = 8
status_backoff_first = "1s"
status_backoff_max = "8s"
breaker_failures = 50
"#,
        secret_file.display()
    );
    let channel = Config::parse(&toml, "demo API bank")?.channels.remove(0);
    Ok(ApiBankDemo { channel, url })
}

/// One afternoon of the API bank: a dozen withdrawals sent as signed requests; lost answers
/// (timeouts, 5xx) stay unknown and are resolved by status queries under the same key; the bank's
/// own ledger is compared with our books.
async fn api_bank_day(
    engine: &Engine,
    bank: &ApiBankDemo,
    at: DateTime<Utc>,
    desk: &Actor,
) -> anyhow::Result<String> {
    let acme = MerchantId::parse("acme")?;
    engine
        .fund(
            &acme,
            Money::parse("5000.00", Currency::Eur)?,
            Some("collections for the API bank"),
            at,
            desk,
        )
        .await?;
    let mut nos = Vec::new();
    for i in 1..=12 {
        let order_no = OrderNo::parse(&format!("ACME-API-{i:03}"))?;
        engine
            .withdraw(
                &WithdrawRequest {
                    merchant: acme.clone(),
                    order_no: order_no.clone(),
                    amount: Money::from_minor(15_000 + 1_250 * i, Currency::Eur),
                },
                at,
                desk,
            )
            .await?;
        let started = engine
            .create_payout(
                &OrderRef {
                    order_no,
                    merchant: None,
                },
                Some(API_CHANNEL),
                at,
                desk,
            )
            .await?;
        if let Some(p) = started.into_payout() {
            nos.push(p.payout_no);
        }
    }
    let mut worker = disburse_server::bank_api::ApiChannelWorker::new(engine, Some(API_CHANNEL))?;
    let (mut sent, mut resent, mut queries, mut unknown_first) = (0, 0, 0, 0);
    let mut rounds = 0;
    for round in 0..30 {
        let as_of = at + Duration::seconds(10 * (round + 1));
        let r = worker
            .round(engine, as_of)
            .await
            .pop()
            .expect("one channel")?;
        rounds += 1;
        if round == 0 {
            unknown_first = r.unknown.len();
        }
        sent += r.sent;
        resent += r.resent;
        queries += r.status_queries;
        if r.settled() && engine.api_channel_pending(API_CHANNEL).await? == 0 {
            break;
        }
    }
    let ledger: serde_json::Value = reqwest::get(format!("{}/ledger", bank.url))
        .await?
        .json()
        .await?;
    let moved_at_bank: i64 = ledger["entries"]
        .as_array()
        .map(|e| e.iter().filter_map(|x| x["moved_minor"].as_i64()).sum())
        .unwrap_or(0);
    let executions_max = ledger["entries"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter_map(|x| x["executions"].as_u64())
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0);
    let mut paid_ours = 0i64;
    let mut states: BTreeMap<String, usize> = BTreeMap::new();
    for no in &nos {
        if let Some(p) = engine.db().payout_by_no(no).await? {
            paid_ours += p.paid_amount_minor.unwrap_or(0);
            *states.entry(p.state).or_default() += 1;
        }
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\nAPI bank ({API_CHANNEL}, the sandbox bank's payment API over loopback, with faults): {} payouts sent as signed requests keyed by payout number;",
        nos.len()
    );
    let _ = writeln!(
        s,
        "  {unknown_first} outcome(s) unknown after the first round (timeouts, 5xx), resolved by {queries} status queries over {rounds} rounds; {resent} sent again under the same key because the bank had never received them ({sent} requests in all)"
    );
    let _ = writeln!(
        s,
        "  payouts now: {}; the bank executed each at most {executions_max} time(s) and moved {} EUR, our books {} EUR",
        states
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(" · "),
        Money::from_minor(moved_at_bank, Currency::Eur).to_decimal_string(),
        Money::from_minor(paid_ours, Currency::Eur).to_decimal_string(),
    );
    Ok(s)
}

/// The file banks also send their account statement for the whole run: each batch they paid
/// booked as ONE debit of what they moved for it, returns as credits, one fee, and one debit
/// nobody ordered. Imported and reconciled; the summary ends with each channel's reconciliation.
async fn statements(
    engine: &Engine,
    pending: &[Pending],
    start: DateTime<Utc>,
    last_day: NaiveDate,
    end: DateTime<Utc>,
    desk: &Actor,
) -> anyhow::Result<String> {
    use disburse_sandbox::{write_camt053, Booking};
    let mut out = String::from("\nThe day closes with each file bank's statement reconciled:\n");
    for (channel, currency, fee, stray) in [
        ("sepa-file", Currency::Eur, "2.50", "123.45"),
        ("cn-csv", Currency::Cny, "15.00", "880.00"),
    ] {
        let mut bookings = Vec::new();
        for p in pending.iter().filter(|p| p.channel == channel) {
            let due: Vec<_> = p
                .plan
                .answers
                .iter()
                // What the bank moved while the demo ran (and told us about).
                .filter(|a| a.on_day <= last_day)
                .collect();
            let paid: Vec<Money> = due
                .iter()
                .filter_map(|a| match &a.answer {
                    Answer::Paid { amount, .. } => Some(*amount),
                    _ => None,
                })
                .collect();
            if !paid.is_empty() {
                let total = paid
                    .iter()
                    .try_fold(Money::from_minor(0, currency), |s, m| s.checked_add(*m))?;
                bookings.push(Booking::BatchDebit {
                    message_id: p.plan.batch_message_id.clone(),
                    transactions: paid.len() as u64,
                    amount: total,
                });
            }
            for a in &due {
                if let Answer::Returned { code, .. } = &a.answer {
                    bookings.push(Booking::Return {
                        end_to_end_id: a.end_to_end_id.clone(),
                        code: code.clone(),
                        amount: a.moved_amount().unwrap_or(a.instructed),
                    });
                }
            }
        }
        bookings.push(Booking::Fee {
            amount: Money::parse(fee, currency)?,
        });
        bookings.push(Booking::Debit {
            reference: format!("UNKNOWN-{channel}"),
            amount: Money::parse(stray, currency)?,
        });
        let config = engine.config().channel(channel)?;
        let mut bytes = Vec::new();
        write_camt053(
            &config.debtor.iban,
            1,
            start.date_naive(),
            last_day,
            Money::parse("1000000.00", currency)?,
            &bookings,
            &mut bytes,
        )?;
        let path = write(
            &config.inbox_dir,
            &format!("statement-{channel}-{}.xml", end.date_naive()),
            &bytes,
        )?;
        let imported = engine
            .import_statement(&path, Some(channel), end, desk)
            .await?;
        let r = engine.reconcile(channel, end).await?;
        let minor = |m: i64| Money::from_minor(m, currency).to_string();
        let _ = writeln!(
            out,
            "  {channel}: statement of {} entries: {} matched ({} batches booked as one debit each), fees {}, \
             {} suggested for a person, {} unmatched ({} exception(s): {});",
            imported.entries,
            r.matched,
            bookings.iter().filter(|b| matches!(b, Booking::BatchDebit { .. })).count(),
            minor(r.fees_minor),
            r.suggested.len(),
            r.unmatched.len(),
            imported.exceptions.len(),
            imported
                .exceptions
                .iter()
                .map(|(k, _)| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        if let Some(b) = &r.books_vs_bank {
            let _ = writeln!(
                out,
                "     books against the bank: statement moved {}, our books {}; explained {} on the statement only, \
                 {} in our books only; unexplained {}",
                minor(b.bank_movement_minor),
                minor(b.books_movement_minor),
                minor(b.explained_by_statement_only_minor),
                minor(b.explained_by_books_only_minor),
                minor(b.unexplained_minor)
            );
        }
    }
    out.push_str(&paper_statement(engine, pending, last_day, end, desk).await?);
    let _ = writeln!(
        out,
        "  (`disburse reconcile --channel C --html report.html` writes one channel's report)"
    );
    Ok(out)
}

/// The paper bank writes only about failures; its CSV statement (profile
/// `myanmarbank-statement`) debits each payout it paid, by the payout number on the instruction
/// sheet, and credits what came back. It is what proves the silent payouts presumed paid.
async fn paper_statement(
    engine: &Engine,
    pending: &[Pending],
    last_day: NaiveDate,
    end: DateTime<Utc>,
    desk: &Actor,
) -> anyhow::Result<String> {
    use disburse_sandbox::{write_paper_statement, PaperBooking};
    let channel = "mm-paper";
    let currency = Currency::Mmk;
    let mut bookings = Vec::new();
    for p in pending.iter().filter(|p| p.channel == channel) {
        for a in p.plan.answers.iter().filter(|a| a.on_day <= last_day) {
            match &a.answer {
                Answer::Paid { amount, .. } => bookings.push(PaperBooking {
                    day: a.on_day,
                    reference: Some(a.end_to_end_id.clone()),
                    amount: Money::from_minor(-amount.amount_minor(), currency),
                }),
                Answer::Returned { amount, .. } => bookings.push(PaperBooking {
                    day: a.on_day,
                    reference: Some(a.end_to_end_id.clone()),
                    amount: *amount,
                }),
                _ => {}
            }
        }
    }
    if bookings.is_empty() {
        return Ok(format!(
            "  {channel}: the paper bank paid nothing while the demo ran\n"
        ));
    }
    bookings.sort_by_key(|b| b.day);
    let mut bytes = Vec::new();
    write_paper_statement(
        1,
        Money::parse("500000000.00", currency)?,
        &bookings,
        &mut bytes,
    )?;
    let config = engine.config().channel(channel)?;
    let path = write(
        &config.inbox_dir,
        &format!("statement-{channel}-{}.csv", end.date_naive()),
        &bytes,
    )?;
    let imported = engine
        .import_statement(&path, Some(channel), end, desk)
        .await?;
    let r = engine.reconcile(channel, end).await?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "  {channel}: CSV statement of {} entries: {} matched, {} suggested for a person ({}); raised: {};",
        imported.entries,
        r.matched,
        r.suggested.len(),
        r.suggested
            .iter()
            .map(|e| e.note.as_str())
            .collect::<Vec<_>>()
            .join("; "),
        if imported.exceptions.is_empty() {
            "none".to_string()
        } else {
            imported
                .exceptions
                .iter()
                .map(|(k, _)| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    let _ = writeln!(
        out,
        "     silent payouts presumed paid: {} proven by the statement, {} on no statement after {} business days \
         (the bank may not have paid them: ask it)",
        r.presumed_paid_confirmed,
        r.presumed_paid_unconfirmed,
        disburse_engine::NOT_ON_STATEMENT_AFTER_DAYS
    );
    Ok(out)
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(name);
    std::fs::write(&path, bytes)?;
    Ok(path)
}

/// One day of one bank's answers, the way that bank gives them.
async fn deliver(
    engine: &Engine,
    p: &Pending,
    today: NaiveDate,
    at: DateTime<Utc>,
    desk: &Actor,
    tally: &mut Tally,
) -> anyhow::Result<()> {
    let answers = p.plan.answers_on(today);
    if answers.is_empty() {
        return Ok(());
    }
    let channel = engine.config().channel(&p.channel)?;
    match p.channel.as_str() {
        "sepa-file" => {
            for (name, bytes) in render_day(&p.plan, today, &channel.debtor.iban)? {
                let path = write(&channel.inbox_dir, &name, &bytes)?;
                import(engine, &path, None, at, tally).await?;
            }
        }
        "cn-csv" => {
            let mut text = String::from("交易流水号,付款编号,金额,状态,失败原因,日期\r\n");
            for a in &answers {
                let (status, reason, amount) = match &a.answer {
                    Answer::Accepted => ("处理中", String::new(), a.instructed),
                    Answer::Paid { amount, .. } => ("成功", String::new(), *amount),
                    Answer::Rejected { code } => {
                        ("失败", format!("收款账户有误 {code}"), a.instructed)
                    }
                    Answer::Returned { code, amount } => ("退票", format!("退票 {code}"), *amount),
                };
                let _ = write!(
                    text,
                    "{},{},{},{},{},{}\r\n",
                    a.bank_reference(),
                    a.end_to_end_id,
                    amount.to_decimal_string(),
                    status,
                    reason,
                    today.format("%Y-%m-%d")
                );
            }
            let (gbk, _, _) = encoding_rs::GBK.encode(&text);
            let name = format!(
                "回单-{}-{}.csv",
                p.plan.batch_message_id,
                today.format("%Y%m%d")
            );
            let path = write(&channel.inbox_dir, &name, &gbk)?;
            import(engine, &path, Some("cn-csv"), at, tally).await?;
        }
        "mm-paper" => {
            // A paper bank tells only about failures; an operator types in each notice.
            for a in answers {
                let result = match &a.answer {
                    Answer::Rejected { code } => BankResult::Rejected {
                        reason_code: code.clone(),
                        reason_text: Some("failure notice by post".into()),
                        instructed: None,
                    },
                    Answer::Returned { code, amount } => BankResult::Returned {
                        reason_code: code.clone(),
                        reason_text: Some("return notice by post".into()),
                        amount: Some(*amount),
                    },
                    _ => continue,
                };
                let evidence = format!("KBZ failure notice {} dated {today}", a.bank_reference());
                if engine
                    .record_manual_result(
                        &PayoutNo::parse(&a.end_to_end_id)?,
                        &result,
                        &evidence,
                        None,
                        at,
                        desk,
                    )
                    .await
                    .is_ok()
                {
                    tally.manual_notices += 1;
                }
            }
        }
        _ => {
            for a in answers {
                let result = match &a.answer {
                    Answer::Accepted => BankResult::Accepted {
                        reference: Some(a.bank_reference()),
                    },
                    Answer::Paid {
                        amount,
                        bank_reference,
                    } => BankResult::Paid {
                        amount: Some(*amount),
                        instructed: None,
                        reference: Some(bank_reference.clone()),
                        value_date: Some(today),
                    },
                    Answer::Rejected { code } => BankResult::rejected(code),
                    Answer::Returned { code, amount } => BankResult::Returned {
                        reason_code: code.clone(),
                        reason_text: None,
                        amount: Some(*amount),
                    },
                };
                // An API answer that conflicts is refused; the demo's summary shows what is left.
                if engine
                    .apply_bank_result(
                        &PayoutNo::parse(&a.end_to_end_id)?,
                        &result,
                        &ResultSource::Api,
                        at,
                        &Actor::system("sandbox-api"),
                    )
                    .await
                    .is_ok()
                {
                    tally.api_answers += 1;
                }
            }
        }
    }
    Ok(())
}

async fn import(
    engine: &Engine,
    path: &Path,
    channel: Option<&str>,
    at: DateTime<Utc>,
    tally: &mut Tally,
) -> anyhow::Result<()> {
    let s = engine
        .import_results(path, channel, at, &Actor::system("inbox"), &|_, _| {})
        .await?;
    tally.files += 1;
    tally.read += s.read;
    tally.applied += s.applied;
    tally.unchanged += s.unchanged;
    tally.exceptions += s.exceptions;
    Ok(())
}

async fn summary(
    engine: &Engine,
    db_path: &Path,
    days: u32,
    seed: u64,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    t: &Tally,
) -> anyhow::Result<String> {
    let db = engine.db();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Disburse demo — {days} simulated days from {}, sandbox seed {seed}",
        start.date_naive()
    );
    let _ = writeln!(
        s,
        "database: {} (inspect with: disburse --db {} order show ACME-001)\n",
        db_path.display(),
        db_path.display()
    );

    let count_by = |rows: Vec<String>| {
        let mut m: BTreeMap<String, usize> = BTreeMap::new();
        for r in rows {
            *m.entry(r).or_default() += 1;
        }
        m.into_iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(" · ")
    };
    let orders: Vec<OrderRow> = db.all_orders().await?;
    let payouts: Vec<PayoutRow> = db.all_payouts().await?;
    let _ = writeln!(
        s,
        "orders ({}):  {}",
        orders.len(),
        count_by(orders.iter().map(|o| o.state.clone()).collect())
    );
    let _ = writeln!(
        s,
        "payouts ({}): {}",
        payouts.len(),
        count_by(payouts.iter().map(|p| p.state.clone()).collect())
    );
    let _ = writeln!(
        s,
        "bank files: {} batches sent; {} result files imported (lines read {}, applied {}, unchanged {}, exceptions {}); {} paper failure notices typed in; {} API answers",
        t.batches, t.files, t.read, t.applied, t.unchanged, t.exceptions, t.manual_notices, t.api_answers
    );

    let _ = writeln!(s, "\nwhat the banks did, and what Disburse made of it:");
    let by_channel = |state: &str| {
        let mut m: BTreeMap<&str, usize> = BTreeMap::new();
        for p in payouts.iter().filter(|p| p.state == state) {
            *m.entry(p.channel_id.as_str()).or_default() += 1;
        }
        m.into_iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let account_related = |p: &PayoutRow| {
        p.reason_code
            .as_deref()
            .and_then(disburse_formats::reason_codes::lookup)
            .is_some_and(|r| r.category.is_account_related())
    };
    let fixed: Vec<&(String, String, String)> = t
        .retries
        .iter()
        .filter(|(_, failed, _)| {
            payouts
                .iter()
                .any(|p| &p.payout_no == failed && account_related(p))
        })
        .collect();
    if let Some((order, failed, new)) = fixed.first() {
        let failed_row = payouts.iter().find(|p| &p.payout_no == failed);
        let new_row = payouts.iter().find(|p| &p.payout_no == new);
        let _ = writeln!(
            s,
            "  1. rejected for a wrong or closed account, account fixed, paid again as a new payout of the same order: {} order(s);\n     e.g. order {order}: {failed} {} ({}) → {new} {}",
            fixed.len(),
            failed_row.map(|p| p.state.as_str()).unwrap_or("?"),
            failed_row.and_then(|p| p.reason_code.as_deref()).unwrap_or("-"),
            new_row.map(|p| p.state.as_str()).unwrap_or("?"),
        );
    }
    let _ = writeln!(
        s,
        "     other failures (insufficient funds at the bank, returns) paid again: {}",
        t.retries.len() - fixed.len()
    );
    let late = db.count_audit_events_ending("_late").await?;
    let _ = writeln!(
        s,
        "  3. no answer within the deadline → expired and escalated: {} still waiting for a person ({}); late answers applied: {late}",
        payouts.iter().filter(|p| p.state == "expired").count(),
        by_channel("expired")
    );
    let over = payouts
        .iter()
        .filter(|p| p.paid_amount_minor.is_some_and(|m| m > p.amount_minor))
        .count();
    let under = payouts
        .iter()
        .filter(|p| p.paid_amount_minor.is_some_and(|m| m < p.amount_minor))
        .count();
    // The SEPA bank's pain.002 only says "paid" (its InstdAmt echoes the instruction); the
    // difference is found when its camt.054 books the amount, and the payout is rebooked.
    let rebooked = db.count_audit_events("payout.rebooked").await?;
    let _ = writeln!(s, "  4. paid a different amount: {over} overpaid, {under} underpaid (each an open discrepancy, the merchant notified);\n     {rebooked} of them found when a camt.054 booked another amount than the pain.002 ACSC had assumed");
    let partial = db.count_audit_events("payout.partially_returned").await?;
    let presumed = db.count_audit_events("payout.presumed_succeeded").await?;
    let _ = writeln!(
        s,
        "  5. banks differ: succeeded by channel: {}; failed: {}; returned after payment: {} (and {partial} partial return(s): paid at what remains, the rest owed to the merchant); mm-paper silent payouts presumed paid: {presumed}",
        by_channel("succeeded"),
        by_channel("failed"),
        by_channel("returned")
    );

    let items = engine.exceptions(end).await?;
    let _ = writeln!(
        s,
        "\nwaiting for a person ({}), see `disburse exceptions list`:",
        items.len()
    );
    let mut kinds: BTreeMap<&str, (usize, &str)> = BTreeMap::new();
    for i in &items {
        let e = kinds
            .entry(i.kind.as_str())
            .or_insert((0, i.action.as_str()));
        e.0 += 1;
    }
    for (kind, (n, action)) in kinds {
        let _ = writeln!(s, "  {n:>3} {kind:<24} → {action}");
    }

    let _ = writeln!(s, "\nmoney in transit (sent to banks, outcome not final):");
    let balances = db.balances().await?;
    let mut transit: BTreeMap<String, i64> = BTreeMap::new();
    for (account, currency, v) in &balances {
        if account.ends_with(":in_transit") {
            *transit.entry(currency.clone()).or_default() -= v;
        }
    }
    if transit.is_empty() {
        let _ = writeln!(s, "  none");
    }
    for (currency, minor) in transit {
        let _ = writeln!(
            s,
            "  {}",
            Money::from_minor(minor, Currency::parse(&currency)?)
        );
    }
    let check = db.ledger_check().await?;
    let _ = writeln!(
        s,
        "\nledger: {} journals unbalanced; totals per currency: {} → {}",
        check.unbalanced.len(),
        check
            .totals
            .iter()
            .map(|(c, v)| format!("{c} {v}"))
            .collect::<Vec<_>>()
            .join(", "),
        if check.is_ok() {
            "zero, the books balance"
        } else {
            "NOT ZERO"
        }
    );
    let findings = db.verify_audit().await?;
    let events = db.count("audit_events").await?;
    let _ = write!(
        s,
        "audit: {events} events; {}",
        if findings.is_empty() {
            "chain intact, every row matches what the system wrote".to_string()
        } else {
            format!("FAILED: {}", findings[0].what)
        }
    );
    anyhow::ensure!(check.is_ok() && findings.is_empty(), "{s}");
    Ok(s)
}
