//! The `disburse` binary: a thin shell that parses arguments, calls one use case, prints.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};
use disburse_core::account::{
    AccountNumber, BankAccount, Bic, CountryCode, HolderName, Iban, LocalAccount,
};
use disburse_core::{BankResult, Currency, MerchantId, Money, OperatorName, OrderNo, PayoutNo};
use disburse_engine::{
    keys, Actor, ApplyOutcome, Config, Engine, EngineError, OrderRef, WithdrawOutcome,
    WithdrawRequest,
};
use disburse_store::Db;
use serde::Serialize;

mod bench;
mod bench_floor;
mod bench_http;
mod bench_statements;
mod commands;
mod demo;
mod print;

#[derive(Parser)]
#[command(
    name = "disburse",
    version,
    about = "Merchant payouts that are never lost, never paid twice, always explained.",
    long_about = "Merchant payouts that are never lost, never paid twice, always explained.\n\n\
        Amounts are decimal text in the currency's units (250.00 EUR, 1000 JPY); JSON output \
        carries integer minor units plus the currency. Every command that depends on time takes \
        --as-of (RFC 3339); without it, the current time is used."
)]
struct Cli {
    /// Database: a SQLite file path (default disburse.db) or postgres://user@host/db.
    #[arg(
        long,
        global = true,
        env = "DISBURSE_DB",
        default_value = "disburse.db"
    )]
    db: String,
    /// Channels file (default: disburse.toml if present, else the built-in channels).
    #[arg(long, global = true, env = "DISBURSE_CONFIG")]
    config: Option<PathBuf>,
    /// Account-number key file (default: <database file>.key; or set DISBURSE_ACCOUNT_KEY).
    #[arg(long, global = true, env = "DISBURSE_KEY_FILE")]
    key_file: Option<PathBuf>,
    /// Audit chain key file (default: <database file>.chain-key if present; or set
    /// DISBURSE_CHAIN_KEY; with neither, derived from the account key).
    #[arg(long, global = true, env = "DISBURSE_CHAIN_KEY_FILE")]
    chain_key_file: Option<PathBuf>,
    /// The time the command acts at, RFC 3339 (e.g. 2026-11-25T09:00:00Z). Default: now.
    #[arg(long, global = true, value_parser = parse_as_of)]
    as_of: Option<DateTime<Utc>>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// The person acting; recorded in every audit event the command writes.
    #[arg(long, global = true, env = "DISBURSE_OPERATOR", default_value = "cli")]
    operator: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the database (and, for SQLite, its account-number key file beside it).
    Init,
    /// Merchants and their bank accounts.
    #[command(subcommand)]
    Merchant(MerchantCmd),
    /// Credit a merchant's available balance from money collected for it.
    Fund {
        merchant: String,
        /// Decimal amount, e.g. 1000.00
        #[arg(allow_hyphen_values = true)]
        amount: String,
        /// ISO 4217 code, e.g. EUR
        currency: String,
        /// The collection batch or settlement this money comes from.
        #[arg(long)]
        reference: Option<String>,
    },
    /// Create a withdrawal order (idempotent: the same merchant, order number, amount and account
    /// again returns the same order).
    Withdraw {
        merchant: String,
        order_no: String,
        #[arg(allow_hyphen_values = true)]
        amount: String,
        currency: String,
    },
    /// Payouts: attempts to pay an order.
    #[command(subcommand)]
    Payout(PayoutCmd),
    /// Withdrawal orders.
    #[command(subcommand)]
    Order(OrderCmd),
    /// The books.
    #[command(subcommand)]
    Ledger(LedgerCmd),
    /// The audit trail.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Escalate payouts past their channel's deadline; presume silent failures-only payouts paid.
    Sweep,
    /// Outgoing batch files (pain.001, bank CSV, printed instruction sheets).
    #[command(subcommand)]
    Batch(BatchCmd),
    /// Bank result files (pain.002, camt.054, camt.053, bank CSV).
    #[command(subcommand)]
    Results(ResultsCmd),
    /// Bank account statements (camt.053): continuity, matching, fees.
    #[command(subcommand)]
    Statements(StatementsCmd),
    /// The day's three-way reconciliation of a channel: payouts × bank results × statements.
    Reconcile {
        #[arg(long)]
        channel: String,
        /// Also write the report as an HTML page an auditor can read.
        #[arg(long)]
        html: Option<PathBuf>,
    },
    /// Named people and their roles (viewer, operator, approver, admin).
    #[command(subcommand)]
    Operator(OperatorCmd),
    /// Corrections of what is recorded: proposed by one person, approved by another.
    #[command(subcommand)]
    Correction(CorrectionCmd),
    /// Differences between what was instructed and what a bank paid, until settled.
    #[command(subcommand)]
    Discrepancy(DiscrepancyCmd),
    /// What a person must look at: unapplied bank lines, expired payouts, failed orders,
    /// amounts paid differently.
    #[command(subcommand)]
    Exceptions(ExceptionsCmd),
    /// List the configured channels and their policies.
    Channels,
    /// Webhook deliveries as operators see them: dead letters and the messages they hold.
    #[command(subcommand)]
    Webhook(WebhookCmd),
    /// Run the HTTP service: merchant API /v1, operator API /ops/v1, OpenAPI, health, metrics, and
    /// the workers (batch submitter, inbox watcher, deadline sweeper, webhook dispatcher).
    Serve {
        #[arg(long, default_value = "127.0.0.1:8080", env = "DISBURSE_LISTEN")]
        listen: std::net::SocketAddr,
        /// Only the HTTP APIs (scale out: workers run elsewhere).
        #[arg(long, conflicts_with = "workers_only")]
        api_only: bool,
        /// Only the workers.
        #[arg(long)]
        workers_only: bool,
        /// Log JSON lines.
        #[arg(long)]
        json_logs: bool,
    },
    /// Measure withdrawal creation over HTTP against a trivial endpoint (use --release).
    BenchHttp {
        #[arg(long, default_value_t = 64)]
        connections: usize,
        /// Seconds of load per endpoint and database.
        #[arg(long, default_value_t = 15)]
        seconds: u64,
    },
    /// `http-api` channels: send pending payouts, ask the bank about open outcomes.
    #[command(subcommand)]
    ApiChannel(ApiChannelCmd),
    /// Simulated days of a payout desk on a fresh SQLite database, then what the desk sees.
    Demo {
        /// Directory for the demo database and bank files (default: a new temporary directory).
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(long, default_value_t = 21)]
        days: u32,
        /// Seed of the sandbox bank's choices: the same seed plays the same story.
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
    /// The sandbox bank: read a pain.001 batch file and write the answer files due on a day; or
    /// `sandbox-bank serve`: its payment API over HTTP (docs/bank-api.md).
    #[command(args_conflicts_with_subcommands = true)]
    SandboxBank {
        #[command(subcommand)]
        serve: Option<SandboxBankCmd>,
        #[arg(long)]
        pain001: Option<PathBuf>,
        /// The day the batch was sent, YYYY-MM-DD.
        #[arg(long)]
        submitted_on: Option<String>,
        /// The day whose answers to write, YYYY-MM-DD.
        #[arg(long)]
        day: Option<String>,
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Our account at the bank, for the camt.054.
        #[arg(long, default_value = "DE89370400440532013000")]
        account_iban: String,
    },
    /// Measure result-file import against an independent floor (use --release). On a fresh
    /// SQLite database in --dir; with --db postgres://… in scratch databases on that server.
    Bench {
        /// Lines per result file (and payouts per set).
        #[arg(long, default_value_t = 1_000_000)]
        lines: usize,
        /// Directory for the database and files (default: a new temporary directory).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// A peer program run beside in the same run (SQLite only): `python3 PEER --n LINES
        /// --dir DIR` printing `N lines in S s`.
        #[arg(long)]
        peer: Option<PathBuf>,
    },
    /// Measure statement import and matching (use --release): camt.053 and CSV statements of
    /// --entries debits each, on a fresh SQLite database in --dir or, with --db postgres://…, a
    /// scratch database on that server.
    BenchStatements {
        #[arg(long, default_value_t = 1_000_000)]
        entries: usize,
        /// Directory for the database and files (default: a new temporary directory).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum SandboxBankCmd {
    /// Serve the sandbox bank's payment API until interrupted; prints the address it listens on.
    Serve {
        /// Address to listen on; port 0 takes a free one (printed).
        #[arg(long, default_value = "127.0.0.1:8089")]
        listen: std::net::SocketAddr,
        /// Seed of the bank's choices: the same seed answers the same keys the same way.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Faults, in percent of payment keys: slow, timeout, 5xx-before, 5xx-after, 429,
        /// other-amount, reject (e.g. `timeout=10,reject=5`), or `none`, or `all`.
        #[arg(long, default_value = "none")]
        faults: String,
        /// Environment variable holding the HMAC secret shared with the channel.
        #[arg(long, default_value = "DISBURSE_BANK_API_SECRET")]
        secret_env: String,
        /// Delay of a slow answer.
        #[arg(long, default_value = "300ms")]
        slow: String,
        /// How long a "timeout after accepting" hangs before answering.
        #[arg(long, default_value = "30s")]
        hang: String,
        /// POST signed callbacks here (`http://host:port/bank-callbacks/{channel}` of `disburse
        /// serve`), some twice, out of order, or first with a bad signature.
        #[arg(long)]
        callback_url: Option<String>,
    },
}

#[derive(Subcommand)]
enum ApiChannelCmd {
    /// Rounds of the API-channel worker for one channel: ask about open outcomes (sending again
    /// under the same key what the bank never received), then send pending payouts.
    Run {
        #[arg(long)]
        channel: String,
        /// Rounds to run.
        #[arg(long, default_value_t = 1)]
        rounds: u32,
        /// Stop early once nothing is pending, unknown or accepted-and-unpaid.
        #[arg(long)]
        until_settled: bool,
        /// Wait between rounds.
        #[arg(long, default_value = "1s")]
        pause: String,
    },
}

#[derive(Subcommand)]
enum MerchantCmd {
    /// Add a merchant.
    Add {
        id: String,
        #[arg(long)]
        name: String,
    },
    /// Bank accounts.
    #[command(subcommand)]
    Account(AccountCmd),
    /// A merchant: account (masked), balances, orders.
    Show { id: String },
    /// Create an API key for the merchant API; it is shown once and stored hashed. With a
    /// subcommand: list, revoke or rotate the merchant's keys.
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    ApiKey {
        #[arg(required = true)]
        id: Option<String>,
        /// The key stops working at this time (RFC 3339); default: never.
        #[arg(long, value_parser = parse_as_of)]
        expires: Option<DateTime<Utc>>,
        #[command(subcommand)]
        action: Option<ApiKeyCmd>,
    },
}

// Service hardening (issue #9): credentials' life, lockouts, held webhooks.

#[derive(Subcommand)]
enum ApiKeyCmd {
    /// The merchant's keys (by prefix; a key is never shown again).
    List { merchant: String },
    /// Revoke one key at once, by its prefix (`dsk_` and 8 hex digits).
    Revoke {
        merchant: String,
        prefix: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Issue a new key; the merchant's other keys stop working after the overlap.
    Rotate {
        merchant: String,
        /// Hours the old keys keep working, so the merchant can deploy the new one.
        #[arg(long, default_value_t = 24)]
        overlap_hours: i64,
        /// The new key stops working at this time (RFC 3339); default: never.
        #[arg(long, value_parser = parse_as_of)]
        expires: Option<DateTime<Utc>>,
    },
}

#[derive(Subcommand)]
enum SessionCmd {
    /// Open operator-API sessions (an id each; tokens are never shown).
    List {
        #[arg(long)]
        name: Option<String>,
    },
    /// End a session by its id, or every session of an operator with --name.
    Revoke {
        #[arg(required_unless_present = "name", conflicts_with = "name")]
        id: Option<String>,
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Subcommand)]
enum WebhookCmd {
    /// Messages waiting behind a dead letter of their order (not tried until it is redelivered).
    Held {
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Dead letters, with how many messages each holds.
    Dead {
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
}

#[derive(Subcommand)]
enum AccountCmd {
    /// Set the merchant's bank account (a new version; earlier payouts keep theirs).
    Set(AccountArgs),
}

#[derive(Args)]
struct AccountArgs {
    merchant: String,
    /// Account holder's name as the bank knows it.
    #[arg(long)]
    holder: String,
    /// IBAN, for countries that have one.
    #[arg(long, conflicts_with_all = ["country", "bank_code", "number"])]
    iban: Option<String>,
    #[arg(long)]
    bic: Option<String>,
    /// For countries without IBAN (CN, MM, US...): country, bank code and account number.
    #[arg(long, requires_all = ["bank_code", "number"])]
    country: Option<String>,
    #[arg(long)]
    bank_code: Option<String>,
    #[arg(long)]
    number: Option<String>,
}

#[derive(Subcommand)]
enum PayoutCmd {
    /// Create a new payout (attempt) for an order; refused while the order has a live payout.
    Create {
        order_no: String,
        #[arg(long)]
        merchant: Option<String>,
        /// Channel id; default: routed by currency and country.
        #[arg(long)]
        channel: Option<String>,
    },
    /// Record what the bank said about a payout, with evidence.
    Result {
        payout_no: String,
        #[command(subcommand)]
        outcome: OutcomeCmd,
        /// The bank notice, message or file this comes from.
        #[arg(long, global = true)]
        evidence: Option<String>,
        /// A file to keep as evidence (stored by its SHA-256 with the result).
        #[arg(long, global = true)]
        evidence_file: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum OutcomeCmd {
    /// The bank took the instruction; not yet paid.
    Accepted {
        #[arg(long)]
        reference: Option<String>,
    },
    /// The bank paid.
    Paid {
        /// What the bank moved, decimal, in the payout's currency.
        #[arg(long, allow_hyphen_values = true)]
        amount: String,
        #[arg(long)]
        reference: Option<String>,
        /// YYYY-MM-DD
        #[arg(long)]
        value_date: Option<String>,
    },
    /// The bank rejected it (ISO reason code, e.g. AC01).
    Rejected {
        #[arg(long)]
        reason: String,
        #[arg(long)]
        text: Option<String>,
    },
    /// Paid, then returned by the beneficiary's bank.
    Returned {
        #[arg(long)]
        reason: String,
        #[arg(long)]
        text: Option<String>,
    },
}

#[derive(Subcommand)]
enum OrderCmd {
    /// An order with every payout, journal, audit event and message.
    Show {
        order_no: String,
        #[arg(long)]
        merchant: Option<String>,
    },
    /// Pay an order again after its last payout failed (after the account was fixed).
    Retry {
        order_no: String,
        #[arg(long)]
        merchant: Option<String>,
        #[arg(long)]
        channel: Option<String>,
    },
    /// Cancel an order; its reserved money goes back to the merchant's available balance.
    Cancel {
        order_no: String,
        #[arg(long)]
        merchant: Option<String>,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand)]
enum BatchCmd {
    /// Put the channel's pending payouts (up to its batch_size_max, one currency) in one file,
    /// written to the channel's outbox directory; the payouts become submitted.
    Create {
        #[arg(long)]
        channel: String,
        /// Write the file here instead of the channel's outbox directory.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Every batch: file, hash, count, control sum.
    List,
    /// Write a batch's file again, byte for byte as first written: to --out (a copy), or to its
    /// channel's outbox (recorded as written); --unwritten: every batch whose file never reached
    /// the disk, to its outbox.
    Export {
        batch_id: Option<i64>,
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long, conflicts_with_all = ["batch_id", "out"])]
        unwritten: bool,
    },
}

#[derive(Subcommand)]
enum ResultsCmd {
    /// Import a result file: format detected, whole file checked, applied in chunks; the same file
    /// again is "already imported". Lines that cannot be applied become exceptions.
    Import {
        file: PathBuf,
        /// The channel the file comes from; required for CSV files (its profile).
        #[arg(long)]
        channel: Option<String>,
    },
}

#[derive(Subcommand)]
enum StatementsCmd {
    /// Import a camt.053 statement of a channel's account: checked against the previous one,
    /// every entry matched; the same statement again is "already imported".
    Import {
        file: PathBuf,
        /// The channel whose account it is (found from the account when only one channel has it).
        #[arg(long)]
        channel: Option<String>,
    },
    /// Confirm a suggested match (an operator).
    Confirm {
        entry: i64,
        #[arg(long)]
        why: String,
    },
    /// Reject a suggested match: a debit then needs explaining.
    Reject {
        entry: i64,
        #[arg(long)]
        why: String,
    },
}

#[derive(Subcommand)]
enum OperatorCmd {
    /// Add a person (the first must be an admin; then only admins add people).
    Add {
        name: String,
        #[arg(long)]
        role: String,
    },
    /// Set a person's password for the operator API, read from standard input (12+ characters).
    Password { name: String },
    /// Operator-API sessions: list, revoke.
    #[command(subcommand)]
    Session(SessionCmd),
    /// Lift the lockout of a person after repeated failed logins.
    Unlock { name: String },
}

#[derive(Subcommand)]
enum CorrectionCmd {
    /// Propose a correction of a payout (operator role); a different approver applies it.
    Propose {
        payout_no: String,
        #[command(subcommand)]
        kind: CorrectionKindCmd,
        /// Why the record is wrong.
        #[arg(long, global = true)]
        why: Option<String>,
        /// The bank's reference, notice or file name that shows it.
        #[arg(long, global = true)]
        evidence: Option<String>,
    },
    /// Approve and apply (approver role, not the proposer).
    Approve { id: i64 },
    /// Reject (approver role, not the proposer).
    Reject {
        id: i64,
        #[arg(long)]
        why: String,
    },
    /// Corrections, optionally only those with a status (proposed, applied, rejected).
    List {
        #[arg(long)]
        status: Option<String>,
    },
}

#[derive(Subcommand)]
enum CorrectionKindCmd {
    /// The bank did pay.
    ConfirmSucceeded {
        #[arg(long, allow_hyphen_values = true)]
        amount: String,
        #[arg(long)]
        reference: String,
        #[arg(long)]
        value_date: Option<String>,
    },
    /// The bank did not pay.
    ConfirmFailed {
        #[arg(long)]
        reason: String,
    },
    /// The bank paid another amount than recorded.
    AmendPaid {
        #[arg(long, allow_hyphen_values = true)]
        amount: String,
    },
    /// The money came back after it was paid.
    RecordReturn {
        #[arg(long)]
        reason: String,
    },
    /// Cancel the payout's order: its reserved money goes back to the merchant's balance.
    CancelOrder,
}

#[derive(Subcommand)]
enum DiscrepancyCmd {
    /// Open (and settling) discrepancies; --all for settled ones too.
    List {
        #[arg(long)]
        all: bool,
    },
    /// Overpaid: the merchant sent the difference back.
    Refund {
        id: i64,
        #[arg(long)]
        reference: String,
        #[arg(long)]
        why: String,
    },
    /// Overpaid: propose not to collect it (an approver must approve).
    WriteOff {
        id: i64,
        #[arg(long)]
        why: String,
    },
    /// Approve a proposed write-off (approver role, not the proposer).
    ApproveWriteOff {
        id: i64,
        #[arg(long)]
        why: String,
    },
    /// Overpaid: deduct it from the merchant's next payouts, automatically, until settled.
    Net {
        id: i64,
        #[arg(long)]
        why: String,
    },
    /// Underpaid: add it to the merchant's next payout.
    AddToNext {
        id: i64,
        #[arg(long)]
        why: String,
    },
    /// Underpaid: pay the shortfall now as a new payout of the same order.
    TopUp {
        id: i64,
        #[arg(long)]
        channel: Option<String>,
        #[arg(long)]
        why: String,
    },
}

#[derive(Subcommand)]
enum ExceptionsCmd {
    /// Everything waiting for a person, with age, amount and the action it needs.
    List,
    /// One item of the list, with who has claimed it and its comments and notes.
    Show { id: String },
    /// Take an item (as --operator): the queue shows who works on it, and nobody else claims
    /// or handles it until it is released or handled.
    Claim { id: String },
    /// Give a claimed item back (its claimant, or an admin).
    Release { id: String },
    /// Comment on an item, for whoever looks at it next.
    Comment {
        id: String,
        #[arg(long)]
        note: String,
    },
    /// Mark an item handled, saying what was done (the claim ends with it). The item leaves
    /// the queue when its condition ends.
    Handle {
        id: String,
        #[arg(long)]
        note: String,
    },
}

#[derive(Subcommand)]
enum LedgerCmd {
    /// Every non-zero balance.
    Balances,
    /// Exit 1 unless every journal balances and the total per currency is zero.
    Check,
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Exit 1, naming the first bad record, if any audit event or tracked row (money, state,
    /// messages, credentials) was changed, deleted or inserted behind the system's back, or an
    /// event was forged without the chain key.
    Verify {
        /// Also prove the chain still holds this anchor's event with its hash and was not cut
        /// short (a file written by `audit anchor`).
        #[arg(long)]
        anchor: Option<PathBuf>,
    },
    /// Write a signed checkpoint of the chain's head (sequence, hash, time; HMAC-SHA256 under the
    /// chain key) to a file kept outside the database. Refused if the chain does not verify.
    Anchor {
        #[arg(long)]
        out: PathBuf,
    },
}

fn parse_as_of(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{s:?} is not an RFC 3339 time like 2026-11-25T09:00:00Z: {e}"))
}

/// A failure to report: one line, the exit code.
struct Failure {
    message: String,
    code: u8,
}

impl From<EngineError> for Failure {
    fn from(e: EngineError) -> Self {
        Failure {
            message: e.to_string(),
            code: 1,
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure {
            message: format!("{e:#}"),
            code: 1,
        }
    }
}

impl From<disburse_store::StoreError> for Failure {
    fn from(e: disburse_store::StoreError) -> Self {
        EngineError::from(e).into()
    }
}

fn invalid(field: &'static str, e: impl ToString) -> Failure {
    EngineError::invalid(field, e).into()
}

/// SIGTERM or Ctrl-C: the service finishes what it is doing and stops.
async fn shutdown_signal() {
    let ctrl_c = async {
        tokio::signal::ctrl_c().await.ok();
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// Prints a command's answer. A reader that went away (`disburse exceptions list | head -1`)
/// ends the command quietly, as Unix tools do, instead of a panic about the closed pipe:
/// everything the command wrote to the database was committed before it printed.
fn emit(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{text}").and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: could not write the answer: {e}");
        std::process::exit(1);
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_env("DISBURSE_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
    };
    match &cli.command {
        // The service logs what it does; one JSON object a line with --json-logs.
        Command::Serve {
            json_logs: true, ..
        } => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter())
            .with_writer(std::io::stderr)
            .init(),
        Command::Serve { .. } => tracing_subscriber::fmt()
            .with_env_filter(filter())
            .with_writer(std::io::stderr)
            .init(),
        _ => tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_env("DISBURSE_LOG"))
            .with_writer(std::io::stderr)
            .init(),
    }
    if matches!(
        cli.command,
        Command::Serve { .. } | Command::BenchHttp { .. }
    ) {
        // The service handles requests and workers at once: use both cores.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        return match runtime.block_on(run(cli)) {
            Ok(code) => code,
            Err(f) => {
                eprintln!("error: {}", f.message);
                ExitCode::from(f.code)
            }
        };
    }
    // One thread: a command is one sequence of database calls, and SQLite's driver already runs
    // its own worker thread; a second runtime thread only adds cross-core wake-ups.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(f) => {
            eprintln!("error: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

struct Ctx {
    json: bool,
    as_of: DateTime<Utc>,
    actor: Actor,
}

impl Ctx {
    fn out<T: Serialize>(&self, value: &T, text: impl FnOnce() -> String) {
        if self.json {
            emit(&serde_json::to_string_pretty(value).expect("serializable"));
        } else {
            emit(&text());
        }
    }
}

async fn open_engine(cli: &Cli, create_key: bool) -> Result<Engine, Failure> {
    let config = Config::load(cli.config.as_deref())?;
    let (key, _) = keys::load_key(&cli.db, cli.key_file.as_deref(), create_key)?;
    let (chain_key, _) = keys::load_chain_key(&cli.db, cli.chain_key_file.as_deref(), &key)?;
    let db = Db::open(&cli.db)
        .await
        .with_context(|| format!("opening database {}", redact_url(&cli.db)))?
        .with_chain_key(chain_key);
    Ok(Engine::new(db, config, key))
}

/// A queue item's comment or handled note, as `--json` shows it.
fn note_json(row: &disburse_store::ExceptionNoteRow) -> serde_json::Value {
    serde_json::json!({
        "id": row.id,
        "item_id": row.item_id,
        "kind": row.kind,
        "note": row.note,
        "written_by": row.written_by,
        "written_at": row.written_at,
    })
}

/// A database URL without its password, for messages.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..s + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

fn merchant_id(s: &str) -> Result<MerchantId, Failure> {
    MerchantId::parse(s).map_err(|e| invalid("merchant", e))
}

fn order_ref(order_no: &str, merchant: Option<&str>) -> Result<OrderRef, Failure> {
    Ok(OrderRef {
        order_no: OrderNo::parse(order_no).map_err(|e| invalid("order_no", e))?,
        merchant: merchant.map(merchant_id).transpose()?,
    })
}

fn money(amount: &str, currency: &str) -> Result<Money, Failure> {
    let currency = Currency::parse(currency).map_err(|e| invalid("currency", e))?;
    Money::parse_positive(amount, currency).map_err(|e| invalid("amount", e))
}

async fn run(cli: Cli) -> Result<ExitCode, Failure> {
    let operator = OperatorName::parse(&cli.operator).map_err(|e| invalid("operator", e))?;
    // A running service acts at the moment each request or worker round happens; taking
    // --as-of and silently running on the wall clock would mislead whoever passed it.
    if matches!(cli.command, Command::Serve { .. }) && cli.as_of.is_some() {
        return Err(invalid(
            "as-of",
            "serve runs on the wall clock (each request and worker round at its own time); \
             --as-of is for one-shot commands",
        ));
    }
    let ctx = Ctx {
        json: cli.json,
        as_of: cli.as_of.unwrap_or_else(Utc::now),
        actor: Actor::operator(&operator),
    };
    match &cli.command {
        Command::Demo { .. }
        | Command::Bench { .. }
        | Command::BenchHttp { .. }
        | Command::BenchStatements { .. } => commands::tools::run(&cli, &ctx).await,
        Command::Serve { .. } | Command::SandboxBank { .. } | Command::ApiChannel { .. } => {
            commands::serve::run(&cli, &ctx).await
        }
        Command::Init | Command::Channels => commands::setup::run(&cli, &ctx).await,
        Command::Merchant { .. } | Command::Fund { .. } | Command::Withdraw { .. } => {
            commands::merchant::run(&cli, &ctx).await
        }
        Command::Payout { .. } => commands::payout::run(&cli, &ctx).await,
        Command::Order { .. } => commands::order::run(&cli, &ctx).await,
        Command::Ledger { .. } => commands::ledger::run(&cli, &ctx).await,
        Command::Audit { .. } => commands::audit::run(&cli, &ctx).await,
        Command::Batch { .. } => commands::batch::run(&cli, &ctx).await,
        Command::Results { .. } => commands::results::run(&cli, &ctx).await,
        Command::Statements { .. } | Command::Reconcile { .. } => {
            commands::statements::run(&cli, &ctx, &operator).await
        }
        Command::Operator { .. } => commands::operator::run(&cli, &ctx, &operator).await,
        Command::Webhook { .. } => commands::webhook::run(&cli, &ctx).await,
        Command::Correction { .. } => commands::corrections::run(&cli, &ctx, &operator).await,
        Command::Discrepancy { .. } => commands::discrepancies::run(&cli, &ctx, &operator).await,
        Command::Exceptions { .. } => commands::exceptions::run(&cli, &ctx, &operator).await,
        Command::Sweep => commands::sweep::run(&cli, &ctx).await,
    }
}

/// This process's peak resident memory (Linux), for the import summary and the benchmark.
fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn write_file(dir: &std::path::Path, name: &str, bytes: &[u8]) -> Result<PathBuf, Failure> {
    std::fs::create_dir_all(dir).map_err(|e| invalid("out", format!("{}: {e}", dir.display())))?;
    let path = dir.join(name);
    std::fs::write(&path, bytes).map_err(|e| invalid("out", format!("{}: {e}", path.display())))?;
    Ok(path)
}

/// The currency of a payout, to read the amounts typed about it.
async fn payout_currency(engine: &Engine, no: &PayoutNo) -> Result<Currency, Failure> {
    let payout = engine
        .db()
        .payout_by_no(no.as_str())
        .await?
        .ok_or_else(|| {
            Failure::from(EngineError::NotFound {
                what: "payout",
                id: no.to_string(),
            })
        })?;
    Currency::parse(&payout.currency).map_err(|e| invalid("currency", e))
}

fn reason_code(s: &str) -> Result<String, Failure> {
    if s.len() == 4
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    {
        Ok(s.to_string())
    } else {
        Err(invalid(
            "reason",
            format!("{s:?} is not a 4-character ISO reason code like AC01"),
        ))
    }
}

fn bank_account(a: &AccountArgs) -> Result<BankAccount, Failure> {
    let holder = HolderName::parse(&a.holder).map_err(|e| invalid("holder", e))?;
    let bic = a
        .bic
        .as_deref()
        .map(Bic::parse)
        .transpose()
        .map_err(|e| invalid("bic", e))?;
    let number: AccountNumber = match (&a.iban, &a.country, &a.bank_code, &a.number) {
        (Some(iban), None, None, None) => Iban::parse(iban).map_err(|e| invalid("iban", e))?.into(),
        (None, Some(country), Some(code), Some(number)) => {
            let country = CountryCode::parse(country).map_err(|e| invalid("country", e))?;
            LocalAccount::new(country, code, number)
                .map_err(|e| invalid("number", e))?
                .into()
        }
        _ => {
            return Err(invalid(
                "account",
                "give --iban, or --country with --bank-code and --number",
            ))
        }
    };
    Ok(BankAccount::new(holder, number, bic))
}
