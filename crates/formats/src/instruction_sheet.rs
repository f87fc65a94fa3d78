//! A printable instruction sheet for manual channels: some banks (a bank in Myanmar, say) take
//! payment instructions only on paper, signed. The sheet carries the full account numbers the
//! clerk needs, so it is marked CONFIDENTIAL; it has a line per payout, the totals to check
//! against, and lines for the two signatures (prepared by, approved by).

use std::io::{BufWriter, Write};

use chrono::{DateTime, Utc};
use disburse_core::Currency;

use crate::bank_csv::{format_amount, AmountFormat};
use crate::error::WriteError;
use crate::transfer::{summarize, BatchSummary, CreditTransfer, CreditorAccount};

/// The batch-level data printed at the top of the sheet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SheetHeader {
    pub batch_id: String,
    pub channel_name: String,
    pub bank_name: String,
    pub created_at: DateTime<Utc>,
    pub currency: Currency,
}

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em}\
h1{font-size:1.4em}\
.confidential{color:#a00;font-weight:bold;letter-spacing:.2em;border:2px solid #a00;padding:.2em .6em;display:inline-block}\
table{border-collapse:collapse;width:100%;margin-top:1em}\
th,td{border:1px solid #444;padding:.3em .5em;text-align:left;vertical-align:top}\
td.amount,th.amount{text-align:right;white-space:nowrap}\
td.account{font-family:monospace;white-space:nowrap}\
tfoot td{font-weight:bold}\
.signatures{margin-top:3em;display:flex;gap:4em}\
.signature{flex:1;border-top:1px solid #000;padding-top:.3em}\
@media print{.confidential{-webkit-print-color-adjust:exact;print-color-adjust:exact}}";

const AMOUNT_FORMAT: AmountFormat = AmountFormat {
    decimal_separator: '.',
    thousands_separator: Some(','),
};

/// IBANs in groups of four, as they are printed on paper; other accounts as they are.
fn account_text(account: &CreditorAccount) -> String {
    match account {
        CreditorAccount::Iban(iban) => iban
            .as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(" "),
        CreditorAccount::Other { id, bank_code } => format!("{id} (bank code {bank_code})"),
    }
}

/// Writes the sheet as one self-contained HTML page. Returns the count and total it printed.
pub fn write_html<W: Write>(
    sheet: &SheetHeader,
    transfers: &[CreditTransfer],
    out: W,
) -> Result<BatchSummary, WriteError> {
    let summary = summarize(transfers, sheet.currency)?;
    let mut w = BufWriter::new(out);
    let e = escape_html;
    let title = format!("Payment instructions — batch {}", sheet.batch_id);
    writeln!(w, "<!DOCTYPE html>")?;
    writeln!(w, "<html lang=\"en\"><head><meta charset=\"utf-8\">")?;
    writeln!(w, "<title>CONFIDENTIAL — {}</title>", e(&title))?;
    writeln!(w, "<style>{STYLE}</style></head><body>")?;
    writeln!(w, "<p class=\"confidential\">CONFIDENTIAL</p>")?;
    writeln!(w, "<h1>{}</h1>", e(&title))?;
    writeln!(w, "<table class=\"header\">")?;
    for (label, value) in [
        ("Bank", sheet.bank_name.clone()),
        ("Channel", sheet.channel_name.clone()),
        ("Batch", sheet.batch_id.clone()),
        (
            "Created",
            sheet.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        ),
        ("Currency", sheet.currency.to_string()),
    ] {
        writeln!(w, "<tr><th>{label}</th><td>{}</td></tr>", e(&value))?;
    }
    writeln!(w, "</table>")?;
    writeln!(w, "<table class=\"payouts\"><thead><tr><th>#</th><th>Payout no.</th><th>Beneficiary</th><th>Account</th><th>BIC</th><th>Country</th><th>Details</th><th class=\"amount\">Amount ({})</th></tr></thead><tbody>", sheet.currency)?;
    for (i, t) in transfers.iter().enumerate() {
        writeln!(
            w,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"account\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"amount\">{}</td></tr>",
            i + 1,
            e(&t.end_to_end_id),
            e(&t.creditor_name),
            e(&account_text(&t.creditor_account)),
            e(t.creditor_bic.as_deref().unwrap_or("")),
            e(&t.creditor_country),
            e(&t.remittance_info),
            e(&format_amount(t.amount, &AMOUNT_FORMAT)),
        )?;
    }
    writeln!(w, "</tbody><tfoot><tr><td colspan=\"7\">Total: {} payout{}</td><td class=\"amount\">{}</td></tr></tfoot></table>",
        summary.count,
        if summary.count == 1 { "" } else { "s" },
        e(&format_amount(summary.control_sum, &AMOUNT_FORMAT)),
    )?;
    writeln!(w, "<div class=\"signatures\">")?;
    writeln!(
        w,
        "<div class=\"signature\">Prepared by (name, date, signature)</div>"
    )?;
    writeln!(
        w,
        "<div class=\"signature\">Approved by (name, date, signature)</div>"
    )?;
    writeln!(w, "</div>")?;
    writeln!(
        w,
        "<p class=\"confidential\">CONFIDENTIAL — contains full bank account numbers</p>"
    )?;
    writeln!(w, "</body></html>")?;
    w.flush()?;
    Ok(summary)
}
