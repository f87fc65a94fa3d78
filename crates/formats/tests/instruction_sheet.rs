//! The printed instruction sheet for manual channels.

mod common;

use chrono::{TimeZone, Utc};
use common::money;
use disburse_core::Currency::{Mmk, Usd};
use disburse_formats::instruction_sheet::{escape_html, write_html, SheetHeader};
use disburse_formats::{CreditTransfer, CreditorAccount};

fn sheet() -> SheetHeader {
    SheetHeader {
        batch_id: "B-2024-05-02-01".into(),
        channel_name: "yangon-manual".into(),
        bank_name: "Yangon <Trade> & Development Bank".into(),
        created_at: Utc.with_ymd_and_hms(2024, 5, 2, 8, 15, 0).unwrap(),
        currency: Mmk,
    }
}

fn transfer(id: &str, amount: &str, name: &str) -> CreditTransfer {
    CreditTransfer {
        end_to_end_id: id.into(),
        amount: money(amount, Mmk),
        creditor_name: name.into(),
        creditor_account: CreditorAccount::Other {
            id: "0012300456007".into(),
            bank_code: "YTDB-001".into(),
        },
        creditor_bic: None,
        creditor_country: "MM".into(),
        remittance_info: "Withdrawal W-1".into(),
    }
}

fn render(transfers: &[CreditTransfer]) -> String {
    let mut out = Vec::new();
    write_html(&sheet(), transfers, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn everything_is_escaped() {
    let html = render(&[transfer(
        "PO0000000001",
        "1000.00",
        "<script>alert('x')</script> & \"Sons\"",
    )]);
    assert!(!html.contains("<script>"));
    assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;Sons&quot;"));
    assert!(html.contains("Yangon &lt;Trade&gt; &amp; Development Bank"));
    assert_eq!(escape_html("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&#39;");
}

#[test]
fn totals_full_accounts_confidential_and_signatures() {
    let mut iban = transfer("PO0000000003", "0.34", "Ko Ko");
    iban.creditor_account = CreditorAccount::Iban("GB29NWBK60161331926819".into());
    let html = render(&[
        transfer("PO0000000001", "1000.00", "Daw Aye"),
        transfer("PO0000000002", "500", "U Ba"),
        iban,
    ]);
    assert!(html.contains("Total: 3 payouts"), "{html}");
    assert!(
        html.contains("<td class=\"amount\">1,500.34</td></tr></tfoot>"),
        "{html}"
    );
    assert!(html.contains("<td class=\"amount\">1,000.00</td>"));
    // The clerk needs the full account: never masked on paper.
    assert!(html.contains("0012300456007 (bank code YTDB-001)"));
    assert!(html.contains("GB29 NWBK 6016 1331 9268 19"));
    assert!(
        html.matches("CONFIDENTIAL").count() >= 2,
        "marked at the top and bottom"
    );
    assert!(html.contains("Prepared by"));
    assert!(html.contains("Approved by"));
    assert!(html.contains("2024-05-02 08:15 UTC"));
}

#[test]
fn a_payout_in_another_currency_is_refused() {
    let mut t = transfer("PO0000000001", "1.00", "A");
    t.amount = money("1.00", Usd);
    let mut out = Vec::new();
    let err = write_html(&sheet(), &[t], &mut out)
        .unwrap_err()
        .to_string();
    assert!(err.contains("USD") && err.contains("MMK"), "{err}");
    assert!(out.is_empty());
}
