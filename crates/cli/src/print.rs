//! Text renderings for people at a terminal. JSON renderings are the views themselves.

use std::fmt::Write;

use disburse_engine::views_support::natural_sign;
use disburse_engine::{Config, MerchantView, OrderView};
use disburse_store::LedgerCheck;

use crate::Ctx;

pub fn order(v: &OrderView) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "order {} of merchant {}: {}  amount {}  (created {})",
        v.order_no, v.merchant, v.state, v.amount.text, v.created_at
    );
    let _ = writeln!(s, "\npayouts ({}):", v.payouts.len());
    for p in &v.payouts {
        let _ = writeln!(
            s,
            "  {}  {:<10} {:<12} {}{}  to ****{}{}{}",
            p.payout_no,
            p.state,
            p.channel,
            p.amount.text,
            p.paid_amount
                .as_ref()
                .filter(|pa| pa.amount_minor != p.amount.amount_minor)
                .map(|pa| format!(" (bank paid {})", pa.text))
                .unwrap_or_default(),
            p.bank_account_last4,
            p.bank_reference
                .as_ref()
                .map(|r| format!("  ref {r}"))
                .unwrap_or_default(),
            p.reason_code
                .as_ref()
                .map(|r| format!(
                    "  reason {r}{}",
                    p.reason_text
                        .as_ref()
                        .map(|t| format!(" ({t})"))
                        .unwrap_or_default()
                ))
                .unwrap_or_default(),
        );
    }
    let _ = writeln!(s, "\njournals ({}):", v.journals.len());
    for j in &v.journals {
        let _ = writeln!(
            s,
            "  #{} {}{}{}",
            j.id,
            j.kind,
            j.payout_no
                .as_ref()
                .map(|p| format!(" ({p})"))
                .unwrap_or_default(),
            if j.balanced { "" } else { "  UNBALANCED" }
        );
        for l in &j.lines {
            let _ = writeln!(s, "      {:<36} {:>16}", l.account, l.amount.text);
        }
    }
    let _ = writeln!(s, "\naudit trail ({}):", v.audit_events.len());
    for e in &v.audit_events {
        let _ = writeln!(
            s,
            "  {:>5} {} {:<28} by {}{}",
            e.seq,
            e.at,
            e.action,
            e.actor,
            e.reason
                .as_ref()
                .map(|r| format!("  — {r}"))
                .unwrap_or_default()
        );
    }
    let _ = writeln!(s, "\nmessages to the merchant ({}):", v.messages.len());
    for m in &v.messages {
        let _ = writeln!(s, "  {} {}", m.created_at, m.topic);
    }
    s.trim_end().to_string()
}

pub fn merchant(v: &MerchantView) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "merchant {} ({})  account status: {}",
        v.id, v.name, v.account_status
    );
    match &v.bank_account {
        Some(a) => {
            let _ = writeln!(
                s,
                "bank account v{}: {} {} {} {}",
                a["version"],
                a["holder"].as_str().unwrap_or(""),
                a["country"].as_str().unwrap_or(""),
                a["masked"].as_str().unwrap_or(""),
                a["bic"].as_str().unwrap_or("")
            );
        }
        None => {
            let _ = writeln!(s, "no bank account");
        }
    }
    let _ = writeln!(s, "balances:");
    for b in &v.balances {
        let _ = writeln!(s, "  {:<36} {:>16}", b.account, b.amount.text);
    }
    let _ = writeln!(s, "orders ({}):", v.orders.len());
    for (no, state, amount) in &v.orders {
        let _ = writeln!(s, "  {no:<20} {state:<16} {}", amount.text);
    }
    s.trim_end().to_string()
}

pub fn balances(ctx: &Ctx, rows: &[(String, String, i64)]) {
    let views: Vec<_> = rows
        .iter()
        .map(|(a, c, v)| {
            serde_json::json!({"account": a, "currency": c, "debit_minor": v,
                "balance": disburse_engine::views_support::MoneyView::new(natural_sign(a, *v), c)})
        })
        .collect();
    ctx.out(&views, || {
        let mut s =
            String::from("balances (liabilities shown as what we owe, assets as what we hold):\n");
        for v in &views {
            let _ = writeln!(
                s,
                "  {:<40} {:>18}",
                v["account"].as_str().unwrap_or(""),
                v["balance"]["text"].as_str().unwrap_or("")
            );
        }
        s.trim_end().to_string()
    });
}

pub fn ledger_check(c: &LedgerCheck) -> String {
    let mut s = String::new();
    if c.unbalanced.is_empty() {
        s.push_str("every journal balances\n");
    }
    for (j, ccy, off) in &c.unbalanced {
        let _ = writeln!(
            s,
            "journal {j} does not balance in {ccy}: off by {off} minor units"
        );
    }
    for off in &c.balance_rows_off {
        let _ = writeln!(
            s,
            "balance row {} {} reads {} but its lines sum to {}",
            off.account, off.currency, off.row_minor, off.lines_minor
        );
    }
    for (ccy, total) in &c.totals {
        let _ = writeln!(
            s,
            "total {ccy}: {total}{}",
            if *total == 0 { " (zero)" } else { "  NOT ZERO" }
        );
    }
    let _ = write!(
        s,
        "{}",
        if c.is_ok() {
            "ledger OK"
        } else {
            "LEDGER CHECK FAILED"
        }
    );
    s
}

pub fn channels(ctx: &Ctx, config: &Config) {
    let views: Vec<_> = config
        .channels
        .iter()
        .map(|c| {
            serde_json::json!({
                "id": c.id, "kind": c.kind.as_str(), "name": c.name,
                "currencies": c.currencies, "countries": c.countries,
                "result_deadline_hours": c.policy.result_deadline.num_hours(),
                "result_mode": c.policy.result_mode,
                "presume_success_after_hours": c.policy.presume_success_after.map(|d| d.num_hours()),
                "return_window_hours": c.policy.return_window.num_hours(),
                "batch_size_max": c.batch_size_max,
            })
        })
        .collect();
    ctx.out(&views, || {
        let mut s = format!("channels from {} (routing order):\n", config.source);
        for c in &config.channels {
            let _ = writeln!(
                s,
                "  {:<12} {:<9} {:<24} deadline {}d, {:?}{}",
                c.id.as_str(),
                c.kind.as_str(),
                c.currencies
                    .iter()
                    .map(|c| c.code())
                    .collect::<Vec<_>>()
                    .join(","),
                c.policy.result_deadline.num_days(),
                c.policy.result_mode,
                c.policy
                    .presume_success_after
                    .map(|d| format!(", silence = paid after {}d", d.num_days()))
                    .unwrap_or_default()
            );
        }
        s.trim_end().to_string()
    });
}

pub fn minor(amount_minor: i64, currency: &str) -> String {
    disburse_core::Currency::parse(currency)
        .map(|c| disburse_core::Money::from_minor(amount_minor, c).to_decimal_string())
        .unwrap_or_else(|_| amount_minor.to_string())
}

pub fn batches(rows: &[disburse_engine::BatchSummary]) -> String {
    let mut s = format!("batches ({}):\n", rows.len());
    for b in rows {
        let _ = writeln!(
            s,
            "  {:>4} {:<12} {:<18} {:>6} payouts {:>16} {}  {}",
            b.batch_id,
            b.channel,
            b.format,
            b.payout_count,
            minor(b.control_sum_minor, &b.currency),
            b.currency,
            b.file_name
        );
        if b.file_written.is_none() {
            let _ = writeln!(
                s,
                "       FILE NOT WRITTEN: committed, but the file never reached the disk; \
                 `disburse batch export {}` writes it from the stored bytes",
                b.batch_id
            );
        }
    }
    let unwritten = rows.iter().filter(|b| b.file_written.is_none()).count();
    if unwritten > 0 {
        let _ = writeln!(
            s,
            "{unwritten} batch file(s) not written: `disburse batch export --unwritten`"
        );
    }
    s.trim_end().to_string()
}

/// What `batch export --unwritten` did, one line per batch.
pub fn exported(
    outcomes: &[(
        disburse_engine::BatchSummary,
        disburse_engine::Result<std::path::PathBuf>,
    )],
) -> String {
    if outcomes.is_empty() {
        return "every batch file is written".into();
    }
    let mut s = String::new();
    for (b, r) in outcomes {
        let _ = match r {
            Ok(path) => writeln!(s, "batch {} written to {}", b.batch_id, path.display()),
            Err(e) => writeln!(s, "batch {} NOT written: {e}", b.batch_id),
        };
    }
    s.trim_end().to_string()
}

pub fn import_summary(s: &disburse_engine::ImportSummary) -> String {
    if s.already_imported {
        return format!(
            "{} already imported (file {}, sha256 {}): nothing changed",
            s.file_name,
            s.file_id,
            &s.sha256[..16]
        );
    }
    let mut out = format!(
        "{} ({}): read {}, applied {}, unchanged {}, exceptions {}",
        s.file_name, s.format, s.read, s.applied, s.unchanged, s.exceptions
    );
    if s.resumed_after_line > 0 {
        let _ = write!(out, " (resumed after line {})", s.resumed_after_line);
    }
    for (outcome, n) in &s.outcomes {
        let _ = write!(out, "\n  {outcome}: {n}");
    }
    if s.exceptions > 0 {
        out.push_str("\n  see `disburse exceptions list`");
    }
    out
}

pub fn exceptions(items: &[disburse_engine::ExceptionItem]) -> String {
    if items.is_empty() {
        return "nothing waits for a person".into();
    }
    let mut s = format!("{} item(s) waiting for a person:\n", items.len());
    for i in items {
        let _ = writeln!(
            s,
            "  {:<28} {:<24} {:>5}h {:>16}  {}\n      {}\n      → {}",
            i.id,
            i.kind,
            i.age_hours,
            i.amount
                .as_ref()
                .map(|a| a.text.clone())
                .unwrap_or_default(),
            i.source.clone().unwrap_or_default(),
            i.reason,
            i.action
        );
    }
    s.trim_end().to_string()
}

/// A progress bar on a terminal, nothing otherwise (or with --json).
pub struct Progress(Option<indicatif::ProgressBar>);

pub fn progress_bar(json: bool) -> Progress {
    use std::io::IsTerminal;
    if json || !std::io::stderr().is_terminal() {
        return Progress(None);
    }
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} records {per_sec} {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    Progress(Some(bar))
}

impl Progress {
    pub fn update(&self, done: u64, total: u64) {
        if let Some(b) = &self.0 {
            b.set_length(total);
            b.set_position(done);
        }
    }
    pub fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}

pub fn bench(r: &crate::bench::BenchReport) -> String {
    let mut s = format!(
        "Disburse import benchmark\n  database: {}\n  how: {}\n\n",
        r.database, r.how
    );
    for m in &r.measures {
        let _ = writeln!(
            s,
            "  {:<46} {:>9} lines {:>9.1} s {:>10.0} lines/s{}",
            m.what,
            m.lines,
            m.seconds,
            m.lines_per_second,
            m.peak_rss_mb
                .map(|mb| format!("  peak RSS {mb:.0} MB"))
                .unwrap_or_default()
        );
    }
    let _ = writeln!(
        s,
        "\n  ratio import/floor (same run): pain.002 {:.2}, CSV {:.2}",
        r.ratio_pain002_to_floor, r.ratio_csv_to_floor
    );
    if let (Some(p), Some(c)) = (r.ratio_pain002_to_peer, r.ratio_csv_to_peer) {
        let _ = writeln!(
            s,
            "  ratio import/peer (same run):  pain.002 {p:.2}, CSV {c:.2}"
        );
    }
    let _ = write!(s, "  pain.001 writer: {:.2} s", r.pain001_write_seconds);
    s
}

pub fn corrections(rows: &[disburse_engine::CorrectionView]) -> String {
    let mut s = format!("corrections ({}):\n", rows.len());
    for c in rows {
        let _ = writeln!(
            s,
            "  {:>4} {:<10} {:<18} {}  proposed by {}{}  — {}",
            c.id,
            c.status,
            c.kind,
            c.payout_no,
            c.proposed_by,
            c.decided_by
                .as_ref()
                .map(|d| format!(", decided by {d}"))
                .unwrap_or_default(),
            c.reason
        );
    }
    s.trim_end().to_string()
}

pub fn discrepancy_json(d: &disburse_store::DiscrepancyRow) -> serde_json::Value {
    serde_json::json!({
        "id": d.id, "merchant": d.merchant_id, "direction": d.direction,
        "amount": disburse_engine::views_support::MoneyView::new(d.amount_minor, &d.currency),
        "origin_payout_no": d.origin_payout_no, "status": d.status, "opened_at": d.opened_at,
        "settled_at": d.settled_at, "resolution": d.resolution, "topup_payout_no": d.topup_payout_no,
        "history": serde_json::from_str::<serde_json::Value>(&d.history).unwrap_or_default(),
    })
}

pub fn discrepancies(rows: &[disburse_store::DiscrepancyRow]) -> String {
    let mut s = format!("discrepancies ({}):\n", rows.len());
    for d in rows {
        let _ = writeln!(
            s,
            "  {:>4} {:<10} {:<10} {:>14} {}  payout {}  merchant {}  {}",
            d.id,
            d.direction,
            d.status,
            minor(d.amount_minor, &d.currency),
            d.currency,
            d.origin_payout_no,
            d.merchant_id,
            d.resolution.clone().unwrap_or_default()
        );
    }
    s.trim_end().to_string()
}

pub fn payout_start(
    ctx: &Ctx,
    order_no: &disburse_core::OrderNo,
    started: &disburse_engine::PayoutStart,
    verb: &str,
) {
    match started {
        disburse_engine::PayoutStart::Sent(p) => ctx.out(
            &serde_json::json!({"payout_no": p.payout_no, "order_no": order_no, "state": p.state,
                "channel": p.channel_id, "amount_minor": p.amount_minor, "currency": p.currency}),
            || {
                format!(
                    "payout {} {verb} for order {order_no} on channel {}: {} ({} {})",
                    p.payout_no,
                    p.channel_id,
                    p.state,
                    minor(p.amount_minor, &p.currency),
                    p.currency
                )
            },
        ),
        disburse_engine::PayoutStart::SettledByNetting { order_no, netted_minor } => ctx.out(
            &serde_json::json!({"payout_no": null, "order_no": order_no, "state": "paid", "settled_by_netting_minor": netted_minor}),
            || format!("order {order_no} settled in full by netting ({netted_minor} minor units the merchant owed): no payout needed"),
        ),
    }
}

pub fn bench_statements(r: &crate::bench_statements::StatementBenchReport) -> String {
    let mut s = format!(
        "Disburse statement benchmark\n  database: {}\n  how: {}\n\n",
        r.database, r.how
    );
    for m in &r.measures {
        let _ = writeln!(
            s,
            "  {:<46} {:>9} entries {:>8.1} s {:>10.0} entries/s{}",
            m.what,
            m.lines,
            m.seconds,
            m.lines_per_second,
            m.peak_rss_mb
                .map(|mb| format!("  peak RSS {mb:.0} MB"))
                .unwrap_or_default()
        );
    }
    s
}

pub fn bench_http(r: &crate::bench_http::HttpReport) -> String {
    let mut s = format!("Disburse HTTP benchmark\n  how: {}\n\n", r.how);
    for m in &r.measures {
        let _ = writeln!(
            s,
            "  {:<11} {:<24} {:>8} requests {:>6} errors {:>9.0} /s  p50 {:>7.2} ms  p99 {:>7.2} ms",
            m.database, m.endpoint, m.requests, m.errors, m.per_second, m.p50_ms, m.p99_ms
        );
    }
    for (db, ratio) in &r.ratios {
        let _ = writeln!(s, "  {db}: withdrawals/trivial ratio {ratio:.3}");
    }
    s.trim_end().to_string()
}

pub fn statement_summary(s: &disburse_engine::StatementSummary) -> String {
    if s.already_imported {
        return format!(
            "{}: statement {} already imported ({} entries); nothing changed",
            s.file_name, s.statement, s.entries
        );
    }
    let mut out = format!(
        "{}: statement {} of channel {}: {} entries",
        s.file_name, s.statement, s.channel, s.entries
    );
    for (status, n) in &s.by_status {
        out.push_str(&format!("\n  {status}: {n}"));
    }
    for (kind, reason) in &s.exceptions {
        out.push_str(&format!("\n  ! {kind}: {reason}"));
    }
    out
}

pub fn reconciliation(r: &disburse_engine::Reconciliation) -> String {
    let ccy = r.currency.clone().unwrap_or_default();
    let mut out = format!(
        "reconciliation of channel {} as of {}\n",
        r.channel, r.as_of
    );
    out.push_str(&format!("statements: {}\n", r.statements.len()));
    for s in &r.statements {
        out.push_str(&format!(
            "  #{:<6} {} .. {}  opening {} closing {} {ccy}, {} entries ({})\n",
            s.electronic_sequence
                .map(|n| n.to_string())
                .unwrap_or_else(|| "-".into()),
            s.from.as_deref().unwrap_or("?"),
            s.to.as_deref().unwrap_or("?"),
            minor(s.opening_minor, &ccy),
            minor(s.closing_minor, &ccy),
            s.entries,
            s.file_name
        ));
        if s.entries_imported < s.entries {
            out.push_str(&format!(
                "    ! only {} of its {} entries are imported: the import stopped half-way; run it again\n",
                s.entries_imported, s.entries
            ));
        }
    }
    out.push_str(&format!(
        "matched: {} entries, {} {ccy}; bank fees: {} {ccy}\n",
        r.matched,
        minor(r.matched_minor, &ccy),
        minor(r.fees_minor, &ccy)
    ));
    out.push_str(&format!(
        "suggested (a person confirms): {}\n",
        r.suggested.len()
    ));
    for e in &r.suggested {
        out.push_str(&format!(
            "  entry {} (line {}): {} {ccy}: {}\n",
            e.entry,
            e.line,
            minor(e.amount_minor, &ccy),
            e.note
        ));
    }
    out.push_str(&format!(
        "unmatched on the statement: {}\n",
        r.unmatched.len()
    ));
    for e in &r.unmatched {
        out.push_str(&format!(
            "  entry {} (line {}): {} {ccy}: {}\n",
            e.entry,
            e.line,
            minor(e.amount_minor, &ccy),
            e.note
        ));
    }
    out.push_str(&format!(
        "paid in our books, on no statement after {} business days: {}\n",
        disburse_engine::NOT_ON_STATEMENT_AFTER_DAYS,
        r.not_on_any_statement.len()
    ));
    for p in &r.not_on_any_statement {
        out.push_str(&format!(
            "  {} {} {ccy} (succeeded {})\n",
            p.payout_no,
            minor(p.paid_minor, &ccy),
            p.succeeded_at
        ));
    }
    if r.presumed_paid_confirmed + r.presumed_paid_unconfirmed > 0 {
        out.push_str(&format!(
            "presumed paid (the bank reports only failures): {} proven by a statement; {} on no statement after {} business days (the bank may not have paid them: ask it)\n",
            r.presumed_paid_confirmed,
            r.presumed_paid_unconfirmed,
            disburse_engine::NOT_ON_STATEMENT_AFTER_DAYS
        ));
    }
    if let Some(b) = &r.books_vs_bank {
        out.push_str(&format!(
            "books against the bank: statements moved {}, our books {}, difference {} {ccy}\n  explained: {} on the statement only, {} in our books only; unexplained: {}\n",
            minor(b.bank_movement_minor, &ccy),
            minor(b.books_movement_minor, &ccy),
            minor(b.difference_minor, &ccy),
            minor(b.explained_by_statement_only_minor, &ccy),
            minor(b.explained_by_books_only_minor, &ccy),
            minor(b.unexplained_minor, &ccy)
        ));
    }
    out.push_str(&format!(
        "open statement exceptions: {}",
        r.open_exceptions.len()
    ));
    for (kind, reason) in &r.open_exceptions {
        out.push_str(&format!("\n  ! {kind}: {reason}"));
    }
    out
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The report as one self-contained HTML page an auditor can read (no scripts, no outside
/// resources): each section of the text report as a table, every value escaped.
pub fn reconciliation_html(r: &disburse_engine::Reconciliation) -> String {
    use std::fmt::Write as _;
    let ccy = r.currency.clone().unwrap_or_default();
    let e = |s: &str| html_escape(s);
    let money = |m: i64| format!("{} {}", minor(m, &ccy), e(&ccy));
    let mut h = String::new();
    let table = |h: &mut String, id: &str, head: &[&str], rows: Vec<Vec<String>>| {
        if rows.is_empty() {
            let _ = write!(h, "<p id=\"{id}\" class=\"none\">None.</p>");
            return;
        }
        let _ = write!(h, "<table id=\"{id}\"><thead><tr>");
        for c in head {
            let _ = write!(h, "<th>{c}</th>");
        }
        h.push_str("</tr></thead><tbody>");
        for row in rows {
            h.push_str("<tr>");
            for c in row {
                let _ = write!(h, "<td>{c}</td>");
            }
            h.push_str("</tr>");
        }
        h.push_str("</tbody></table>");
    };
    let _ = write!(
        h,
        "<h1>Reconciliation of channel {}</h1><p>As of {}; amounts in {}.</p>",
        e(&r.channel),
        e(&r.as_of),
        e(&ccy)
    );
    h.push_str("<h2>Statements and their continuity</h2>");
    table(
        &mut h,
        "statements",
        &[
            "Sequence", "From", "To", "Opening", "Closing", "Entries", "File",
        ],
        r.statements
            .iter()
            .map(|s| {
                vec![
                    s.electronic_sequence.map_or("-".into(), |n| n.to_string()),
                    e(s.from.as_deref().unwrap_or("?")),
                    e(s.to.as_deref().unwrap_or("?")),
                    money(s.opening_minor),
                    money(s.closing_minor),
                    if s.entries_imported < s.entries {
                        format!(
                            "{} (only {} imported: run the import again)",
                            s.entries, s.entries_imported
                        )
                    } else {
                        s.entries.to_string()
                    },
                    e(&s.file_name),
                ]
            })
            .collect(),
    );
    let _ = write!(
        h,
        "<h2>Matched</h2><p id=\"matched\">{} entries, {}; the bank's fees {} (booked to the channel's fees account, never to a payout).</p>",
        r.matched,
        money(r.matched_minor),
        money(r.fees_minor)
    );
    let entries = |list: &[disburse_engine::EntryLine]| -> Vec<Vec<String>> {
        list.iter()
            .map(|x| {
                vec![
                    x.entry.to_string(),
                    x.statement.to_string(),
                    x.line.to_string(),
                    money(x.amount_minor),
                    e(&x.note),
                ]
            })
            .collect()
    };
    h.push_str("<h2>Suggested: a person confirms or rejects</h2>");
    table(
        &mut h,
        "suggested",
        &["Entry", "Statement", "Line", "Amount", "Why"],
        entries(&r.suggested),
    );
    h.push_str("<h2>On the statement only</h2>");
    table(
        &mut h,
        "unmatched",
        &["Entry", "Statement", "Line", "Amount", "Why"],
        entries(&r.unmatched),
    );
    let _ = write!(
        h,
        "<h2>In our books only: paid, on no statement after {} business days</h2>",
        disburse_engine::NOT_ON_STATEMENT_AFTER_DAYS
    );
    table(
        &mut h,
        "books-only",
        &["Payout", "Paid", "Succeeded at"],
        r.not_on_any_statement
            .iter()
            .map(|p| vec![e(&p.payout_no), money(p.paid_minor), e(&p.succeeded_at)])
            .collect(),
    );
    if r.presumed_paid_confirmed + r.presumed_paid_unconfirmed > 0 {
        let _ = write!(
            h,
            "<p id=\"presumed\">Presumed paid (the bank reports only failures): {} proven by a statement; {} on no statement past the grace period — the bank may not have paid them: ask it.</p>",
            r.presumed_paid_confirmed, r.presumed_paid_unconfirmed
        );
    }
    h.push_str("<h2>The books against the bank</h2>");
    match &r.books_vs_bank {
        Some(b) => table(
            &mut h,
            "books-vs-bank",
            &["", "Amount"],
            vec![
                vec![
                    "The statements moved (last closing − first opening)".into(),
                    money(b.bank_movement_minor),
                ],
                vec![
                    "Our books moved (the channel's bank account)".into(),
                    money(b.books_movement_minor),
                ],
                vec!["Difference".into(), money(b.difference_minor)],
                vec![
                    "explained: entries on the statement only".into(),
                    money(b.explained_by_statement_only_minor),
                ],
                vec![
                    "explained: payouts in our books only".into(),
                    money(b.explained_by_books_only_minor),
                ],
                vec![
                    "<strong>Unexplained</strong>".into(),
                    format!("<strong>{}</strong>", money(b.unexplained_minor)),
                ],
            ],
        ),
        None => h.push_str("<p>No statement yet.</p>"),
    }
    h.push_str("<h2>Open statement exceptions</h2>");
    table(
        &mut h,
        "exceptions",
        &["Kind", "What it asks"],
        r.open_exceptions
            .iter()
            .map(|(k, why)| vec![e(k), e(why)])
            .collect(),
    );
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Reconciliation {}</title>\
         <style>body{{font-family:sans-serif;margin:2em;max-width:72em}}table{{border-collapse:collapse;margin:.5em 0}}\
         td,th{{border:1px solid #bbb;padding:.25em .6em;text-align:left}}td:nth-child(n){{vertical-align:top}}\
         .none{{color:#666}}</style></head><body>{h}</body></html>\n",
        e(&r.channel)
    )
}
