//! camt.053 read as statements, against the real samples: each statement's opening balance plus
//! its signed entries is its closing balance, as the bank printed them.

mod common;

use disburse_core::{Currency, Money};
use disburse_formats::statements::{read_statements, EntryKind, StatementRecord};
use disburse_formats::ReadError;

fn records(name: &str) -> Vec<StatementRecord> {
    read_statements(&common::sample_bytes(name)[..])
        .map(|r| r.unwrap_or_else(|e| panic!("{name}: {e}")))
        .collect()
}

/// (header, entries) of the only statement of a sample.
fn statement(
    name: &str,
) -> (
    disburse_formats::statements::StatementHeader,
    Vec<disburse_formats::statements::StatementEntry>,
) {
    let mut header = None;
    let mut entries = Vec::new();
    for r in records(name) {
        match r {
            StatementRecord::Header(h) => {
                assert!(header.is_none(), "{name}: one statement");
                assert!(entries.is_empty(), "{name}: the header comes first");
                header = Some(h)
            }
            StatementRecord::Entry(e) => entries.push(e),
        }
    }
    (header.expect("a header"), entries)
}

fn sum(entries: &[disburse_formats::statements::StatementEntry]) -> i64 {
    entries.iter().map(|e| e.amount.amount_minor()).sum()
}

#[test]
fn finnish_v02_statement_balances_and_batches() {
    let (h, entries) = statement("camt053-v02-fi-fkl-statement.xml");
    assert_eq!(h.statement_id.as_deref(), Some("BANKSTMTID0972009"));
    assert_eq!(
        (h.electronic_sequence, h.legal_sequence),
        (Some(120), Some(97))
    );
    assert_eq!(h.account.as_deref(), Some("FI7433010001222090"));
    assert_eq!(h.opening, Some(Money::from_minor(1_000_000, Currency::Eur)));
    assert_eq!(h.closing, Some(Money::from_minor(2_364_483, Currency::Eur)));
    assert_eq!(entries.len(), 10);
    // The statement's own summary: 6 credits of 23,075.00 and 4 debits of 9,430.17.
    let credits: i64 = entries
        .iter()
        .map(|e| e.amount.amount_minor())
        .filter(|a| *a > 0)
        .sum();
    let debits: i64 = entries
        .iter()
        .map(|e| e.amount.amount_minor())
        .filter(|a| *a < 0)
        .sum();
    assert_eq!((credits, debits), (2_307_500, -943_017));
    assert_eq!(1_000_000 + sum(&entries), 2_364_483);
    // The payment batches booked as one debit each, with their PmtInfId and count.
    let batch = entries
        .iter()
        .find(|e| {
            e.batch
                .as_ref()
                .and_then(|b| b.payment_information_id.as_deref())
                == Some("CustRefForPmtBatch")
        })
        .expect("the batch entry");
    assert_eq!(batch.amount, Money::from_minor(-400_000, Currency::Eur));
    assert_eq!(batch.batch.as_ref().unwrap().transactions, Some(3));
    assert_eq!(batch.kind, EntryKind::Payment);
    assert!(
        batch.end_to_end_id.is_none(),
        "a batch has no single end-to-end id"
    );
}

#[test]
fn swiss_v04_statement_with_returns_adds_up() {
    let (h, entries) = statement("camt053-v04-ch-statement-with-returned-credit-transfers.xml");
    assert_eq!(h.electronic_sequence, Some(85));
    assert_eq!(h.account.as_deref(), Some("CH0309000000250090342"));
    let (open, close) = (h.opening.unwrap(), h.closing.unwrap());
    assert_eq!(open.currency(), Currency::Chf);
    assert_eq!(open.amount_minor() + sum(&entries), close.amount_minor());
    assert_eq!(entries.len(), 13);
    assert!(entries.iter().all(|e| e.booked));
}

#[test]
fn v08_statement_adds_up() {
    let (h, entries) = statement("camt053-v08-viafintech-example.xml");
    assert_eq!(h.statement_id.as_deref(), Some("R30B4SA880HMZ9XA"));
    assert_eq!(h.electronic_sequence, Some(122));
    assert_eq!(h.opening, Some(Money::from_minor(8_272_195, Currency::Chf)));
    assert_eq!(h.closing, Some(Money::from_minor(8_451_525, Currency::Chf)));
    assert_eq!(entries.len(), 3);
    // This real example does not add up: 82,721.95 + 474.40 + 88.85 CHF, and a 20.97 *EUR* debit
    // on a CHF account, is not the 84,515.25 it closes at. The reader reports what the bank
    // wrote; the importer's continuity check is what refuses to believe it.
    let chf: i64 = entries
        .iter()
        .filter(|e| e.amount.currency() == Currency::Chf)
        .map(|e| e.amount.amount_minor())
        .sum();
    assert_eq!(chf, 47_440 + 8_885);
    assert_eq!(entries[2].amount, Money::from_minor(-2_097, Currency::Eur));
    assert_ne!(8_272_195 + chf, 8_451_525);
}

#[test]
fn other_messages_and_broken_files_are_refused_with_a_line() {
    let pain002 = common::sample_bytes("pain002-v10-de-vop-match-RCVC.xml");
    let first = read_statements(&pain002[..]).next().unwrap();
    assert!(matches!(first, Err(ReadError::File(_))), "{first:?}");
    let text =
        String::from_utf8(common::sample_bytes("camt053-v08-viafintech-example.xml")).unwrap();
    let cut = &text[..text.rfind("<Ntry>").unwrap() + 30];
    let last = read_statements(cut.as_bytes()).last().unwrap();
    match last {
        Err(ReadError::File(e)) => assert!(e.line > 1, "{e}"),
        other => panic!("{other:?}"),
    }
}
