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
    let ctx = Ctx {
        json: cli.json,
        as_of: cli.as_of.unwrap_or_else(Utc::now),
        actor: Actor::operator(&operator),
    };
    match &cli.command {
        Command::Init => {
            let engine = open_engine(&cli, true).await?;
            let channels = engine.config().channels.len();
            ctx.out(
                &serde_json::json!({"database": redact_url(&cli.db), "channels": channels}),
                || {
                    format!(
                        "initialized {} ({channels} channels configured)",
                        redact_url(&cli.db)
                    )
                },
            );
        }
        Command::Demo { dir, days, seed } => {
            let text = demo::run(dir.clone(), *days, *seed).await?;
            emit(&text);
        }
        Command::SandboxBank {
            serve:
                Some(SandboxBankCmd::Serve {
                    listen,
                    seed,
                    faults,
                    secret_env,
                    slow,
                    hang,
                    callback_url,
                }),
            ..
        } => {
            let faults =
                disburse_sandbox::api::FaultMix::parse(faults).map_err(|e| invalid("faults", e))?;
            let secret = std::env::var(secret_env).map_err(|_| {
                invalid(
                    "secret-env",
                    format!("environment variable {secret_env} is not set"),
                )
            })?;
            let duration = |field: &'static str, s: &str| {
                humantime::parse_duration(s)
                    .map_err(|e| invalid(field, format!("{s:?}: {e} (write e.g. 300ms or 30s)")))
            };
            let opts = disburse_server::bank_api::SandboxBankOptions {
                seed: *seed,
                faults,
                secret: secret.trim().as_bytes().to_vec(),
                slow: duration("slow", slow)?,
                hang: duration("hang", hang)?,
                callback_url: callback_url.clone(),
            };
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("listening on {listen}"))?;
            let addr = listener.local_addr().context("listener address")?;
            emit(&format!("sandbox bank listening on http://{addr}"));
            disburse_server::bank_api::serve_sandbox_bank(listener, opts, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
        }
        Command::ApiChannel(ApiChannelCmd::Run {
            channel,
            rounds,
            until_settled,
            pause,
        }) => {
            let engine = open_engine(&cli, false).await?;
            let pause = humantime::parse_duration(pause)
                .map_err(|e| invalid("pause", format!("{pause:?}: {e}")))?;
            let mut worker =
                disburse_server::bank_api::ApiChannelWorker::new(&engine, Some(channel))
                    .map_err(|e| invalid("channel", format!("{e:#}")))?;
            let mut reports = Vec::new();
            for round in 0..*rounds {
                if round > 0 {
                    tokio::time::sleep(pause).await;
                }
                let as_of = cli.as_of.unwrap_or_else(Utc::now);
                let report = worker
                    .round(&engine, as_of)
                    .await
                    .pop()
                    .expect("one channel, one report")?;
                let pending = engine.api_channel_pending(channel).await?;
                let settled = report.settled() && pending == 0;
                reports.push(report);
                if *until_settled && settled {
                    break;
                }
            }
            ctx.out(&reports, || {
                reports
                    .iter()
                    .enumerate()
                    .map(|(i, r)| {
                        format!(
                            "round {}: {} sent ({} again under the same key), {} status queries; {} paid, {} rejected, {} accepted, {} unknown, {} exceptions{}",
                            i + 1, r.sent, r.resent, r.status_queries, r.paid.len(), r.rejected.len(),
                            r.accepted.len(), r.unknown.len(), r.exceptions.len(),
                            r.held.as_deref().map(|h| format!(" — held: {h}")).unwrap_or_default()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        Command::SandboxBank {
            pain001,
            submitted_on,
            day,
            out,
            seed,
            account_iban,
            ..
        } => {
            let required = |field: &'static str| {
                invalid(field, "required (or run `disburse sandbox-bank serve`)")
            };
            let pain001 = pain001.as_ref().ok_or_else(|| required("pain001"))?;
            let submitted_on = submitted_on
                .as_deref()
                .ok_or_else(|| required("submitted-on"))?;
            let day = day.as_deref().ok_or_else(|| required("day"))?;
            let out = out.as_ref().ok_or_else(|| required("out"))?;
            let date = |field: &'static str, s: &str| {
                chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                    .map_err(|e| invalid(field, format!("{s:?}: {e} (write YYYY-MM-DD)")))
            };
            let file = std::fs::File::open(pain001)
                .map_err(|e| invalid("pain001", format!("{}: {e}", pain001.display())))?;
            let files = disburse_sandbox::answer_file(
                &disburse_sandbox::SandboxConfig::demo(*seed),
                std::io::BufReader::new(file),
                date("submitted-on", submitted_on)?,
                date("day", day)?,
                account_iban,
            )
            .map_err(|e| invalid("pain001", format!("{}: {e}", pain001.display())))?;
            let mut written = Vec::new();
            for (name, bytes) in files {
                written.push(write_file(out, &name, &bytes)?);
            }
            ctx.out(&written, || {
                if written.is_empty() {
                    format!("the bank says nothing on {day}")
                } else {
                    written
                        .iter()
                        .map(|p| format!("wrote {}", p.display()))
                        .collect::<Vec<_>>()
                        .join("\n")
                }
            });
        }
        Command::BenchHttp {
            connections,
            seconds,
        } => {
            let report = bench_http::run(*connections, *seconds).await?;
            ctx.out(&report, || print::bench_http(&report));
        }
        Command::Bench { lines, dir, peer } => {
            let report =
                bench::run(*lines, dir.clone(), &cli.db, peer.as_deref(), ctx.as_of).await?;
            ctx.out(&report, || print::bench(&report));
        }
        Command::BenchStatements { entries, dir } => {
            let report = bench_statements::run(*entries, dir.clone(), &cli.db, ctx.as_of).await?;
            ctx.out(&report, || print::bench_statements(&report));
        }
        Command::Channels => {
            let config = Config::load(cli.config.as_deref())?;
            print::channels(&ctx, &config);
        }
        Command::Merchant(MerchantCmd::Add { id, name }) => {
            let id = merchant_id(id)?;
            let engine = open_engine(&cli, false).await?;
            let row = engine
                .add_merchant(&id, name, ctx.as_of, &ctx.actor)
                .await?;
            ctx.out(
                &serde_json::json!({"merchant": row.id, "name": row.name}),
                || format!("merchant {} added", row.id),
            );
        }
        Command::Merchant(MerchantCmd::Account(AccountCmd::Set(a))) => {
            let id = merchant_id(&a.merchant)?;
            let account = bank_account(a)?;
            let engine = open_engine(&cli, false).await?;
            let set = engine
                .set_bank_account(&id, &account, ctx.as_of, &ctx.actor)
                .await?;
            let (row, retried) = (&set.account, &set.retried);
            ctx.out(
                &serde_json::json!({"account": account.masked_view(), "version": row.version, "retried_payouts": retried}),
                || {
                    let mut text = format!(
                        "merchant {id} bank account set: {} (version {})",
                        account.masked(),
                        row.version
                    );
                    if !retried.is_empty() {
                        text.push_str(&format!("\norders waiting for this fix paid again: {}", retried.join(", ")));
                    }
                    text
                },
            );
        }
        Command::Merchant(MerchantCmd::Show { id }) => {
            let id = merchant_id(id)?;
            let engine = open_engine(&cli, false).await?;
            let view = engine.merchant_view(&id).await?;
            ctx.out(&view, || print::merchant(&view));
        }
        Command::Fund {
            merchant,
            amount,
            currency,
            reference,
        } => {
            let m = merchant_id(merchant)?;
            let amount = money(amount, currency)?;
            let engine = open_engine(&cli, false).await?;
            let journal = engine
                .fund(&m, amount, reference.as_deref(), ctx.as_of, &ctx.actor)
                .await?;
            ctx.out(
                &serde_json::json!({"merchant": m, "amount_minor": amount.amount_minor(), "currency": amount.currency(), "journal_id": journal}),
                || format!("merchant {m} funded with {amount} (journal {journal})"),
            );
        }
        Command::Withdraw {
            merchant,
            order_no,
            amount,
            currency,
        } => {
            let req = WithdrawRequest {
                merchant: merchant_id(merchant)?,
                order_no: OrderNo::parse(order_no).map_err(|e| invalid("order_no", e))?,
                amount: money(amount, currency)?,
            };
            let engine = open_engine(&cli, false).await?;
            let outcome = engine.withdraw(&req, ctx.as_of, &ctx.actor).await?;
            let o = outcome.order();
            let created = matches!(outcome, WithdrawOutcome::Created(_));
            ctx.out(
                &serde_json::json!({"order_no": o.order_no, "merchant": o.merchant_id, "state": o.state,
                    "amount_minor": o.amount_minor, "currency": o.currency, "created": created}),
                || {
                    if created {
                        format!("order {} accepted for {}: {}", o.order_no, o.merchant_id, o.state)
                    } else {
                        format!("order {} already exists (same request): {}", o.order_no, o.state)
                    }
                },
            );
        }
        Command::Payout(PayoutCmd::Create {
            order_no,
            merchant,
            channel,
        }) => {
            let r = order_ref(order_no, merchant.as_deref())?;
            let engine = open_engine(&cli, false).await?;
            let started = engine
                .create_payout(&r, channel.as_deref(), ctx.as_of, &ctx.actor)
                .await?;
            print::payout_start(&ctx, &r.order_no, &started, "created");
        }
        Command::Payout(PayoutCmd::Result {
            payout_no,
            outcome,
            evidence,
            evidence_file,
        }) => {
            let no = PayoutNo::parse(payout_no).map_err(|e| invalid("payout_no", e))?;
            let engine = open_engine(&cli, false).await?;
            let currency = payout_currency(&engine, &no).await?;
            let result = match outcome {
                OutcomeCmd::Accepted { reference } => BankResult::Accepted {
                    reference: reference.clone(),
                },
                OutcomeCmd::Paid {
                    amount,
                    reference,
                    value_date,
                } => BankResult::Paid {
                    amount: Some(
                        Money::parse_positive(amount, currency)
                            .map_err(|e| invalid("amount", e))?,
                    ),
                    instructed: None,
                    reference: reference.clone(),
                    value_date: value_date
                        .as_deref()
                        .map(disburse_engine::parse_value_date)
                        .transpose()?,
                },
                OutcomeCmd::Rejected { reason, text } => BankResult::Rejected {
                    reason_code: reason_code(reason)?,
                    reason_text: text.clone(),
                    instructed: None,
                },
                OutcomeCmd::Returned { reason, text } => BankResult::Returned {
                    reason_code: reason_code(reason)?,
                    reason_text: text.clone(),
                    amount: None,
                },
            };
            let evidence = evidence
                .clone()
                .filter(|e| !e.trim().is_empty())
                .ok_or_else(|| {
                    invalid(
                        "evidence",
                        "say where this result comes from (--evidence: bank notice, message, file)",
                    )
                })?;
            let file = match evidence_file {
                Some(path) => Some((
                    path.file_name()
                        .map(|n| n.to_string_lossy().to_string())
                        .unwrap_or_default(),
                    std::fs::read(path).map_err(|e| {
                        invalid("evidence-file", format!("{}: {e}", path.display()))
                    })?,
                )),
                None => None,
            };
            match engine
                .record_manual_result(
                    &no,
                    &result,
                    &evidence,
                    file.as_ref().map(|(n, b)| (n.as_str(), b.as_slice())),
                    ctx.as_of,
                    &ctx.actor,
                )
                .await?
            {
                ApplyOutcome::Applied(p) => ctx.out(
                    &serde_json::json!({"payout_no": p.payout_no, "state": p.state, "applied": true}),
                    || format!("payout {}: {}", p.payout_no, p.state),
                ),
                ApplyOutcome::Unchanged(why) => ctx.out(
                    &serde_json::json!({"payout_no": no, "applied": false, "why": why}),
                    || format!("payout {no}: unchanged ({why})"),
                ),
            }
        }
        Command::Order(OrderCmd::Show { order_no, merchant }) => {
            let r = order_ref(order_no, merchant.as_deref())?;
            let engine = open_engine(&cli, false).await?;
            let view = engine.order_view(&r).await?;
            ctx.out(&view, || print::order(&view));
        }
        Command::Order(OrderCmd::Retry {
            order_no,
            merchant,
            channel,
        }) => {
            let r = order_ref(order_no, merchant.as_deref())?;
            let engine = open_engine(&cli, false).await?;
            let started = engine
                .retry_order(&r, channel.as_deref(), ctx.as_of, &ctx.actor)
                .await?;
            print::payout_start(&ctx, &r.order_no, &started, "paid again");
        }
        Command::Order(OrderCmd::Cancel {
            order_no,
            merchant,
            reason,
        }) => {
            let r = order_ref(order_no, merchant.as_deref())?;
            let engine = open_engine(&cli, false).await?;
            let o = engine
                .cancel_order(&r, reason, ctx.as_of, &ctx.actor)
                .await?;
            ctx.out(
                &serde_json::json!({"order_no": o.order_no, "state": o.state}),
                || {
                    format!(
                        "order {} cancelled; {} {} back to available",
                        o.order_no, o.amount_minor, o.currency
                    )
                },
            );
        }
        Command::Ledger(LedgerCmd::Balances) => {
            let engine = open_engine(&cli, false).await?;
            let balances = engine.db().balances().await?;
            print::balances(&ctx, &balances);
        }
        Command::Ledger(LedgerCmd::Check) => {
            let engine = open_engine(&cli, false).await?;
            let check = engine.db().ledger_check().await?;
            ctx.out(&check, || print::ledger_check(&check));
            if !check.is_ok() {
                return Ok(ExitCode::from(1));
            }
        }
        Command::Audit(AuditCmd::Verify { anchor }) => {
            let engine = open_engine(&cli, false).await?;
            let findings = match anchor {
                None => engine.db().verify_audit().await?,
                Some(path) => {
                    let text = std::fs::read_to_string(path)
                        .map_err(|e| invalid("anchor", format!("{}: {e}", path.display())))?;
                    let anchor = engine
                        .db()
                        .read_anchor(&text)?
                        .map_err(|e| invalid("anchor", format!("{}: {e}", path.display())))?;
                    engine.db().verify_audit_against(&anchor).await?
                }
            };
            let events = engine.db().audit_event_count().await?;
            ctx.out(
                &serde_json::json!({"ok": findings.is_empty(), "events": events, "findings": findings}),
                || match findings.first() {
                    None => format!("audit verified: {events} events, chain intact, every row matches"),
                    Some(first) => format!(
                        "AUDIT FAILED: {}{}",
                        first.what,
                        if findings.len() > 1 { format!(" (and {} more findings)", findings.len() - 1) } else { String::new() }
                    ),
                },
            );
            if !findings.is_empty() {
                return Ok(ExitCode::from(1));
            }
        }
        Command::Audit(AuditCmd::Anchor { out }) => {
            let engine = open_engine(&cli, false).await?;
            match engine.db().cut_anchor(ctx.as_of).await? {
                Ok(anchor) => {
                    let dir = out.parent().filter(|d| !d.as_os_str().is_empty());
                    let name = out
                        .file_name()
                        .and_then(|n| n.to_str())
                        .ok_or_else(|| invalid("out", "must name a file"))?;
                    disburse_engine::write_atomically(
                        dir.unwrap_or(std::path::Path::new(".")),
                        name,
                        anchor.to_text().as_bytes(),
                    )
                    .map_err(|e| invalid("out", format!("{}: {e}", out.display())))?;
                    ctx.out(&anchor, || {
                        format!(
                            "anchor written to {}: event {} hash {} at {} (keep it outside the database)",
                            out.display(),
                            anchor.seq,
                            &anchor.hash[..16],
                            anchor.cut_at
                        )
                    });
                }
                Err(findings) => {
                    return Err(Failure {
                        message: format!(
                            "no anchor cut: the chain does not verify: {}",
                            findings[0].what
                        ),
                        code: 1,
                    })
                }
            }
        }
        Command::Batch(BatchCmd::Create { channel, out }) => {
            let engine = open_engine(&cli, false).await?;
            match engine
                .create_batch_file(channel, out.as_deref(), ctx.as_of, &ctx.actor)
                .await?
            {
                None => ctx.out(&serde_json::json!({"batch": null}), || {
                    format!("channel {channel}: no pending payouts")
                }),
                Some((batch, path)) => {
                    ctx.out(&serde_json::json!({"batch": batch, "path": path}), || {
                        format!(
                            "batch {} for channel {}: {} payouts, control sum {} {}, {} ({})\n  written to {}",
                            batch.batch_id, batch.channel, batch.payout_count,
                            print::minor(batch.control_sum_minor, &batch.currency), batch.currency,
                            batch.format, &batch.sha256[..16], path.display()
                        )
                    });
                }
            }
        }
        Command::Batch(BatchCmd::List) => {
            let engine = open_engine(&cli, false).await?;
            let batches = engine.batches().await?;
            ctx.out(&batches, || print::batches(&batches));
        }
        Command::Batch(BatchCmd::Export {
            batch_id: None,
            out: None,
            unwritten: true,
        }) => {
            let engine = open_engine(&cli, false).await?;
            let outcomes = engine
                .export_unwritten_batches(ctx.as_of, &ctx.actor)
                .await?;
            let failed = outcomes.iter().filter(|(_, r)| r.is_err()).count();
            let shown: Vec<_> = outcomes
                .iter()
                .map(|(b, r)| match r {
                    Ok(path) => serde_json::json!({"batch_id": b.batch_id, "path": path}),
                    Err(e) => serde_json::json!({"batch_id": b.batch_id, "error": e.to_string()}),
                })
                .collect();
            ctx.out(&shown, || print::exported(&outcomes));
            if failed > 0 {
                return Ok(ExitCode::from(1));
            }
        }
        Command::Batch(BatchCmd::Export {
            batch_id: Some(batch_id),
            out,
            unwritten: false,
        }) => {
            let engine = open_engine(&cli, false).await?;
            let (batch, path) = match out {
                // A copy somewhere else: written whole (atomically), not recorded as sent.
                Some(out) => {
                    let (batch, bytes) = engine.batch_file(*batch_id).await?;
                    let dir = out.parent().filter(|d| !d.as_os_str().is_empty());
                    let name = out
                        .file_name()
                        .and_then(|n| n.to_str())
                        .ok_or_else(|| invalid("out", "must name a file"))?;
                    let path = disburse_engine::write_atomically(
                        dir.unwrap_or(std::path::Path::new(".")),
                        name,
                        &bytes,
                    )
                    .map_err(|e| invalid("out", format!("{}: {e}", out.display())))?;
                    (batch, path)
                }
                // Into the channel's outbox, recorded as written.
                None => {
                    engine
                        .write_batch_file(*batch_id, None, ctx.as_of, &ctx.actor)
                        .await?
                }
            };
            ctx.out(&batch, || {
                format!(
                    "batch {} written to {} (sha256 {})",
                    batch.batch_id,
                    path.display(),
                    batch.sha256
                )
            });
        }
        Command::Batch(BatchCmd::Export { .. }) => {
            return Err(invalid(
                "batch_id",
                "give a batch id (with or without --out), or --unwritten alone",
            ));
        }
        Command::Results(ResultsCmd::Import { file, channel }) => {
            let engine = open_engine(&cli, false).await?;
            let bar = print::progress_bar(ctx.json);
            let summary = engine
                .import_results(
                    file,
                    channel.as_deref(),
                    ctx.as_of,
                    &ctx.actor,
                    &|done, total| bar.update(done, total),
                )
                .await?;
            bar.finish();
            let mut json = serde_json::to_value(&summary).expect("serializable");
            json["peak_rss_kb"] = serde_json::json!(peak_rss_kb());
            ctx.out(&json, || print::import_summary(&summary));
        }
        Command::Statements(StatementsCmd::Import { file, channel }) => {
            let engine = open_engine(&cli, false).await?;
            let s = engine
                .import_statement(file, channel.as_deref(), ctx.as_of, &ctx.actor)
                .await?;
            let mut json = serde_json::to_value(&s).expect("serializable");
            json["peak_rss_kb"] = serde_json::json!(peak_rss_kb());
            ctx.out(&json, || print::statement_summary(&s));
        }
        Command::Statements(StatementsCmd::Confirm { entry, why })
        | Command::Statements(StatementsCmd::Reject { entry, why }) => {
            let confirm = matches!(
                cli.command,
                Command::Statements(StatementsCmd::Confirm { .. })
            );
            let engine = open_engine(&cli, false).await?;
            let row = engine
                .decide_statement_entry(*entry, confirm, why, ctx.as_of, &operator)
                .await?;
            ctx.out(&serde_json::json!({"entry": row.id, "match_status": row.match_status, "decided_by": row.decided_by}), || {
                format!("statement entry {} is {} ({})", row.id, row.match_status, row.note)
            });
        }
        Command::Reconcile { channel, html } => {
            let engine = open_engine(&cli, false).await?;
            let r = engine.reconcile(channel, ctx.as_of).await?;
            if let Some(path) = html {
                std::fs::write(path, print::reconciliation_html(&r))
                    .map_err(|e| invalid("html", format!("{}: {e}", path.display())))?;
            }
            ctx.out(&r, || print::reconciliation(&r));
        }
        Command::Operator(OperatorCmd::Password { name }) => {
            let name = OperatorName::parse(name).map_err(|e| invalid("operator", e))?;
            let mut password = String::new();
            std::io::stdin()
                .read_line(&mut password)
                .map_err(|e| invalid("password", e))?;
            let engine = open_engine(&cli, false).await?;
            disburse_server::set_operator_password(
                &engine,
                &name,
                password.trim_end_matches(['\r', '\n']),
                ctx.as_of,
            )
            .await?;
            ctx.out(
                &serde_json::json!({"operator": name, "password_set": true}),
                || format!("password of {name} set"),
            );
        }
        Command::Merchant(MerchantCmd::ApiKey {
            id: Some(id),
            expires,
            action: None,
        }) => {
            let id = merchant_id(id)?;
            let engine = open_engine(&cli, false).await?;
            let key = disburse_server::credentials::issue_api_key(
                &engine, &id, *expires, ctx.as_of, &ctx.actor,
            )
            .await?;
            ctx.out(&serde_json::json!({"merchant": id, "api_key": key}), || {
                format!("API key for {id} (shown once; keep it secret):\n{key}")
            });
        }
        Command::Merchant(MerchantCmd::ApiKey {
            action: Some(action),
            ..
        }) => {
            let engine = open_engine(&cli, false).await?;
            hardening_cli::api_key(&engine, &ctx, action).await?;
        }
        Command::Merchant(MerchantCmd::ApiKey {
            id: None,
            action: None,
            ..
        }) => return Err(invalid("merchant", "name the merchant")),
        Command::Operator(OperatorCmd::Session(cmd)) => {
            let engine = open_engine(&cli, false).await?;
            hardening_cli::session(&engine, &ctx, cmd).await?;
        }
        Command::Operator(OperatorCmd::Unlock { name }) => {
            let name = OperatorName::parse(name).map_err(|e| invalid("operator", e))?;
            let engine = open_engine(&cli, false).await?;
            let was_locked = disburse_server::credentials::unlock_operator(
                &engine, &name, ctx.as_of, &ctx.actor,
            )
            .await?;
            ctx.out(
                &serde_json::json!({"operator": name, "was_locked": was_locked}),
                || {
                    if was_locked {
                        format!("{name} unlocked")
                    } else {
                        format!("{name} was not locked out; failed logins forgotten")
                    }
                },
            );
        }
        Command::Webhook(cmd) => {
            let engine = open_engine(&cli, false).await?;
            hardening_cli::webhook(&engine, &ctx, cmd).await?;
        }
        Command::Serve {
            listen,
            api_only,
            workers_only,
            json_logs,
        } => {
            let engine = std::sync::Arc::new(open_engine(&cli, false).await?);
            let opts = disburse_server::ServeOptions {
                listen: *listen,
                api: !workers_only,
                workers: !api_only,
                json_logs: *json_logs,
            };
            eprintln!(
                "disburse serving on http://{listen} (api: {}, workers: {})",
                opts.api, opts.workers
            );
            disburse_server::serve(engine, opts, shutdown_signal()).await?;
        }
        Command::Operator(OperatorCmd::Add { name, role }) => {
            let name = OperatorName::parse(name).map_err(|e| invalid("operator", e))?;
            let role =
                disburse_core::correction::Role::parse(role).map_err(|e| invalid("role", e))?;
            let engine = open_engine(&cli, false).await?;
            let row = engine
                .add_operator(&name, role, ctx.as_of, &operator)
                .await?;
            ctx.out(
                &serde_json::json!({"operator": row.name, "role": row.role}),
                || format!("operator {} added as {}", row.name, row.role),
            );
        }
        Command::Correction(CorrectionCmd::Propose {
            payout_no,
            kind,
            why,
            evidence,
        }) => {
            let no = PayoutNo::parse(payout_no).map_err(|e| invalid("payout_no", e))?;
            let engine = open_engine(&cli, false).await?;
            let currency = payout_currency(&engine, &no).await?;
            let amount =
                |a: &str| Money::parse_positive(a, currency).map_err(|e| invalid("amount", e));
            let kind = match kind {
                CorrectionKindCmd::ConfirmSucceeded {
                    amount: a,
                    reference,
                    value_date,
                } => disburse_core::correction::CorrectionKind::ConfirmSucceeded {
                    paid: amount(a)?,
                    bank_reference: reference.clone(),
                    value_date: value_date
                        .as_deref()
                        .map(disburse_engine::parse_value_date)
                        .transpose()?,
                },
                CorrectionKindCmd::ConfirmFailed { reason } => {
                    disburse_core::correction::CorrectionKind::ConfirmFailed {
                        reason_code: reason_code(reason)?,
                    }
                }
                CorrectionKindCmd::AmendPaid { amount: a } => {
                    disburse_core::correction::CorrectionKind::AmendPaidAmount { paid: amount(a)? }
                }
                CorrectionKindCmd::RecordReturn { reason } => {
                    disburse_core::correction::CorrectionKind::RecordReturn {
                        reason_code: reason_code(reason)?,
                    }
                }
                CorrectionKindCmd::CancelOrder => {
                    disburse_core::correction::CorrectionKind::CancelOrder
                }
            };
            let why = why.clone().unwrap_or_default();
            let evidence = evidence.clone().unwrap_or_default();
            let row = engine
                .propose_correction(&no, &kind, &why, &evidence, ctx.as_of, &operator)
                .await?;
            ctx.out(&disburse_engine::CorrectionView::from(row.clone()), || {
                format!(
                    "correction {} proposed by {} for payout {}: {} — waiting for an approver",
                    row.id, row.proposed_by, row.payout_no, row.kind
                )
            });
        }
        Command::Correction(CorrectionCmd::Approve { id }) => {
            let engine = open_engine(&cli, false).await?;
            let row = engine.approve_correction(*id, ctx.as_of, &operator).await?;
            let payout = engine.db().payout_by_no(&row.payout_no).await?;
            ctx.out(&disburse_engine::CorrectionView::from(row.clone()), || {
                format!(
                    "correction {} ({}) proposed by {} approved by {} and applied: payout {} is {}",
                    row.id,
                    row.kind,
                    row.proposed_by,
                    operator,
                    row.payout_no,
                    payout.map(|p| p.state).unwrap_or_default()
                )
            });
        }
        Command::Correction(CorrectionCmd::Reject { id, why }) => {
            let engine = open_engine(&cli, false).await?;
            let row = engine
                .reject_correction(*id, why, ctx.as_of, &operator)
                .await?;
            ctx.out(&disburse_engine::CorrectionView::from(row.clone()), || {
                format!("correction {} rejected by {operator}: {why}", row.id)
            });
        }
        Command::Correction(CorrectionCmd::List { status }) => {
            let engine = open_engine(&cli, false).await?;
            let rows = engine.corrections(status.as_deref()).await?;
            ctx.out(&rows, || print::corrections(&rows));
        }
        Command::Discrepancy(cmd) => {
            let engine = open_engine(&cli, false).await?;
            let (id, resolution, why) = match cmd {
                DiscrepancyCmd::List { all } => {
                    let rows = engine.discrepancies(!all).await?;
                    let views: Vec<_> = rows.iter().map(print::discrepancy_json).collect();
                    ctx.out(&views, || print::discrepancies(&rows));
                    return Ok(ExitCode::SUCCESS);
                }
                DiscrepancyCmd::Refund { id, reference, why } => (
                    *id,
                    disburse_engine::Resolution::RefundReceived {
                        reference: reference.clone(),
                    },
                    why,
                ),
                DiscrepancyCmd::WriteOff { id, why } => {
                    (*id, disburse_engine::Resolution::ProposeWriteOff, why)
                }
                DiscrepancyCmd::ApproveWriteOff { id, why } => {
                    (*id, disburse_engine::Resolution::ApproveWriteOff, why)
                }
                DiscrepancyCmd::Net { id, why } => {
                    (*id, disburse_engine::Resolution::NetAgainstNext, why)
                }
                DiscrepancyCmd::AddToNext { id, why } => {
                    (*id, disburse_engine::Resolution::AddToNext, why)
                }
                DiscrepancyCmd::TopUp { id, channel, why } => (
                    *id,
                    disburse_engine::Resolution::TopUpNow {
                        channel: channel.clone(),
                    },
                    why,
                ),
            };
            let row = engine
                .resolve_discrepancy(id, &resolution, why, ctx.as_of, &operator)
                .await?;
            ctx.out(&print::discrepancy_json(&row), || {
                format!(
                    "discrepancy {} is {}{}",
                    row.id,
                    row.status,
                    row.resolution
                        .as_ref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                        + &row
                            .topup_payout_no
                            .as_ref()
                            .map(|p| format!(" (top-up payout {p})"))
                            .unwrap_or_default()
                )
            });
        }
        Command::Exceptions(ExceptionsCmd::List) => {
            let engine = open_engine(&cli, false).await?;
            let items = engine.exceptions(ctx.as_of).await?;
            ctx.out(&items, || print::exceptions(&items));
        }
        Command::Exceptions(ExceptionsCmd::Show { id }) => {
            let engine = open_engine(&cli, false).await?;
            let items = engine.exceptions(ctx.as_of).await?;
            let item = items.into_iter().find(|i| i.id == *id).ok_or_else(|| {
                Failure::from(EngineError::NotFound {
                    what: "exception",
                    id: id.clone(),
                })
            })?;
            let work = engine
                .exception_work()
                .await?
                .remove(&item.id)
                .unwrap_or_default();
            // The item as before, with what people have done about it beside it.
            let mut shown = serde_json::to_value(&item).unwrap_or_default();
            if let Some(o) = shown.as_object_mut() {
                o.insert(
                    "work".into(),
                    serde_json::to_value(&work).unwrap_or_default(),
                );
            }
            ctx.out(&shown, || {
                serde_json::to_string_pretty(&shown).unwrap_or_default()
            });
        }
        Command::Exceptions(ExceptionsCmd::Claim { id }) => {
            let engine = open_engine(&cli, false).await?;
            let row = engine.claim_exception(id, ctx.as_of, &operator).await?;
            let shown = serde_json::json!({"item_id": row.item_id, "claimed_by": row.claimed_by, "claimed_at": row.claimed_at});
            ctx.out(&shown, || {
                format!(
                    "{} claimed by {} since {}",
                    row.item_id, row.claimed_by, row.claimed_at
                )
            });
        }
        Command::Exceptions(ExceptionsCmd::Release { id }) => {
            let engine = open_engine(&cli, false).await?;
            engine.release_exception(id, ctx.as_of, &operator).await?;
            let done = serde_json::json!({"item_id": id.trim(), "released_by": operator.as_str()});
            ctx.out(&done, || format!("{} released by {operator}", id.trim()));
        }
        Command::Exceptions(ExceptionsCmd::Comment { id, note }) => {
            let engine = open_engine(&cli, false).await?;
            let row = engine
                .comment_exception(id, note, ctx.as_of, &operator)
                .await?;
            let shown = note_json(&row);
            ctx.out(&shown, || {
                format!(
                    "comment {} on {} by {}",
                    row.id, row.item_id, row.written_by
                )
            });
        }
        Command::Exceptions(ExceptionsCmd::Handle { id, note }) => {
            let engine = open_engine(&cli, false).await?;
            let row = engine
                .handle_exception(id, note, ctx.as_of, &operator)
                .await?;
            let shown = note_json(&row);
            ctx.out(&shown, || {
                format!(
                    "{} marked handled by {}: {} (it leaves the queue when its condition ends)",
                    row.item_id, row.written_by, row.note
                )
            });
        }
        Command::Sweep => {
            let engine = open_engine(&cli, false).await?;
            let report = engine.sweep(ctx.as_of, &Actor::system("sweeper")).await?;
            ctx.out(&report, || {
                format!(
                    "sweep as of {}: {} expired (escalated to a person, money still in transit), {} presumed paid, {} still waiting{}",
                    ctx.as_of.to_rfc3339(),
                    report.expired.len(),
                    report.presumed_succeeded.len(),
                    report.still_waiting,
                    if report.expired.is_empty() { String::new() } else { format!("\n  expired: {}", report.expired.join(", ")) }
                )
            });
        }
    }
    Ok(ExitCode::SUCCESS)
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

/// Service hardening (issue #9): the commands on credentials, sessions and held webhooks.
mod hardening_cli {
    use super::{invalid, merchant_id, ApiKeyCmd, Ctx, Failure, SessionCmd, WebhookCmd};
    use disburse_core::OperatorName;
    use disburse_engine::Engine;
    use disburse_server::credentials::{self, SessionTarget};

    fn api(e: disburse_server::ApiError) -> Failure {
        invalid("webhooks", e)
    }

    pub async fn api_key(engine: &Engine, ctx: &Ctx, cmd: &ApiKeyCmd) -> Result<(), Failure> {
        match cmd {
            ApiKeyCmd::List { merchant } => {
                let id = merchant_id(merchant)?;
                let keys = credentials::list_api_keys(engine, &id).await?;
                ctx.out(&keys, || {
                    let mut out = format!("{} key(s) of {id}", keys.len());
                    for k in &keys {
                        let state = match (&k.revoked_at, &k.expires_at) {
                            (Some(r), _) => format!("revoked {r}"),
                            (None, Some(x)) => format!("expires {x}"),
                            (None, None) => "no expiry".into(),
                        };
                        out.push_str(&format!(
                            "\n  {}…  created {}  {state}",
                            k.key_prefix, k.created_at
                        ));
                    }
                    out
                });
            }
            ApiKeyCmd::Revoke {
                merchant,
                prefix,
                reason,
            } => {
                let id = merchant_id(merchant)?;
                credentials::revoke_api_key(
                    engine,
                    &id,
                    prefix,
                    reason.as_deref(),
                    ctx.as_of,
                    &ctx.actor,
                )
                .await?;
                ctx.out(
                    &serde_json::json!({"merchant": id, "revoked": prefix}),
                    || format!("key {prefix}… of {id} revoked"),
                );
            }
            ApiKeyCmd::Rotate {
                merchant,
                overlap_hours,
                expires,
            } => {
                let id = merchant_id(merchant)?;
                let r = credentials::rotate_api_key(
                    engine,
                    &id,
                    chrono::Duration::hours(*overlap_hours),
                    *expires,
                    ctx.as_of,
                    &ctx.actor,
                )
                .await?;
                ctx.out(&r, || {
                    format!(
                        "new API key for {id} (shown once; keep it secret):\n{}\n\
                         the old keys ({}) stop working at {}",
                        r.api_key,
                        r.old_key_prefixes.join(", "),
                        r.old_valid_until
                    )
                });
            }
        }
        Ok(())
    }

    pub async fn session(engine: &Engine, ctx: &Ctx, cmd: &SessionCmd) -> Result<(), Failure> {
        let operator = |n: &str| OperatorName::parse(n).map_err(|e| invalid("operator", e));
        match cmd {
            SessionCmd::List { name } => {
                let name = name.as_deref().map(operator).transpose()?;
                let sessions = credentials::list_sessions(engine, name.as_ref(), ctx.as_of).await?;
                ctx.out(&sessions, || {
                    let mut out = format!("{} open session(s)", sessions.len());
                    for s in &sessions {
                        out.push_str(&format!(
                            "\n  {}  {}  since {}  until {}",
                            s.id, s.operator, s.created_at, s.expires_at
                        ));
                    }
                    out
                });
            }
            SessionCmd::Revoke { id, name } => {
                let target = match (id, name) {
                    (Some(id), _) => SessionTarget::Id(id.clone()),
                    (None, Some(n)) => SessionTarget::Operator(operator(n)?),
                    (None, None) => return Err(invalid("session", "give an id or --name")),
                };
                let n =
                    credentials::revoke_sessions(engine, &target, ctx.as_of, &ctx.actor).await?;
                ctx.out(&serde_json::json!({"revoked": n}), || {
                    format!("{n} session(s) ended")
                });
            }
        }
        Ok(())
    }

    pub async fn webhook(engine: &Engine, ctx: &Ctx, cmd: &WebhookCmd) -> Result<(), Failure> {
        let (status, limit) = match cmd {
            WebhookCmd::Held { limit } => ("held", *limit),
            WebhookCmd::Dead { limit } => ("dead", *limit),
        };
        if !(1..=10_000).contains(&limit) {
            return Err(invalid("limit", "1 to 10000"));
        }
        let summary = disburse_server::webhooks_summary(engine)
            .await
            .map_err(api)?;
        let list = disburse_server::webhook_deliveries(engine, status, limit)
            .await
            .map_err(api)?;
        ctx.out(
            &serde_json::json!({"dead": summary.dead, "held": summary.held, "deliveries": list}),
            || {
                let mut out = format!(
                    "{} dead letter(s); {} message(s) held behind them",
                    summary.dead, summary.held
                );
                for d in &list {
                    let what = if status == "held" {
                        format!("held behind message {}", d.blocked_by.unwrap_or_default())
                    } else {
                        format!(
                            "dead after {} attempt(s), holds {}",
                            d.attempts, d.held_behind
                        )
                    };
                    out.push_str(&format!(
                        "\n  message {}  {}  {}  order {}  {what}",
                        d.outbox_id,
                        d.merchant,
                        d.topic,
                        d.order_no.as_deref().unwrap_or("-")
                    ));
                }
                out
            },
        );
        Ok(())
    }
}
