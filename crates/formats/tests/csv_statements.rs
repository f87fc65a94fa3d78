//! CSV account statements read by profile: the two example profiles with their example files,
//! balances derived from the balance column, and broken files refused naming line and field.

use chrono::NaiveDate;
use disburse_core::Currency::{Eur, Mmk};
use disburse_core::Money;
use disburse_formats::statements::{EntryKind, StatementEntry, StatementHeader, StatementRecord};
use disburse_formats::{
    read_csv_statement, CsvStatementProfile, FormatErrorKind, LineError, ReadError,
};

const ENGLISHBANK: &str = include_str!("../profiles/englishbank-statement.toml");
const ENGLISHBANK_FILE: &[u8] = include_bytes!("../profiles/englishbank-statement.csv");
const MYANMARBANK: &str = include_str!("../profiles/myanmarbank-statement.toml");
const MYANMARBANK_FILE: &[u8] = include_bytes!("../profiles/myanmarbank-statement.csv");

fn profile(text: &str) -> CsvStatementProfile {
    CsvStatementProfile::from_toml(text).expect("profile")
}

fn read(profile: &CsvStatementProfile, bytes: &[u8]) -> Vec<Result<StatementRecord, ReadError>> {
    read_csv_statement(profile, bytes).collect()
}

fn split(
    records: Vec<Result<StatementRecord, ReadError>>,
) -> (Vec<StatementEntry>, StatementHeader) {
    let mut entries = Vec::new();
    let mut header = None;
    for r in records {
        match r.expect("a good file") {
            StatementRecord::Entry(e) => entries.push(e),
            StatementRecord::Header(h) => {
                assert!(header.is_none(), "one header");
                header = Some(h);
            }
        }
    }
    (entries, header.expect("a header"))
}

fn line_error(records: Vec<Result<StatementRecord, ReadError>>) -> LineError {
    records
        .into_iter()
        .find_map(|r| match r {
            Err(ReadError::Line(e)) => Some(e),
            _ => None,
        })
        .expect("a line error")
}

fn eur(minor: i64) -> Money {
    Money::from_minor(minor, Eur)
}

#[test]
fn the_english_banks_statement_reads_as_movements_with_balances_from_the_balance_column() {
    let p = profile(ENGLISHBANK);
    let (entries, header) = split(read(&p, ENGLISHBANK_FILE));
    // The first line's balance 48,750.00 less its 1,250.00 debit: the opening balance.
    assert_eq!(header.opening, Some(eur(5_000_000)));
    assert_eq!(header.closing, Some(eur(5_604_750)));
    assert_eq!(header.electronic_sequence, Some(41));
    assert_eq!(header.account.as_deref(), Some("GB33BUKB20201555555555"));
    let d = |day| NaiveDate::from_ymd_opt(2026, 11, day);
    assert_eq!((header.from, header.to), (d(3), d(4)));
    assert_eq!(header.line, 1, "the header line holds the column names");
    let opening_plus_entries =
        entries.iter().map(|e| e.amount.amount_minor()).sum::<i64>() + 5_000_000;
    assert_eq!(
        opening_plus_entries, 5_604_750,
        "opening + entries = closing"
    );

    let kinds: Vec<EntryKind> = entries.iter().map(|e| e.kind).collect();
    use EntryKind::*;
    assert_eq!(kinds, vec![Payment, Payment, Charges, Return, Other]);
    assert_eq!(entries[0].amount, eur(-125_000), "paid out is a debit");
    assert_eq!(entries[0].end_to_end_id.as_deref(), Some("PO0000000201"));
    assert_eq!(entries[0].bank_reference.as_deref(), Some("EB-77001"));
    assert_eq!(entries[0].line, 2);
    assert_eq!(entries[0].transactions, 1);
    let batch = entries[1]
        .batch
        .as_ref()
        .expect("a batch booked as one debit");
    assert_eq!(batch.message_id.as_deref(), Some("MSG-EB-0007"));
    assert_eq!(
        entries[1].transactions, 0,
        "a batch line does not say how many"
    );
    assert_eq!(entries[2].amount, eur(-250));
    assert_eq!(entries[3].amount, eur(30_000), "paid in is a credit");
    assert!(
        entries.iter().all(|e| e.booked),
        "a statement line has moved money"
    );
}

#[test]
fn without_a_kind_column_debits_are_payments_and_credits_naming_a_payout_returns() {
    let p = profile(MYANMARBANK);
    let (entries, header) = split(read(&p, MYANMARBANK_FILE));
    let mmk = |minor| Money::from_minor(minor, Mmk);
    assert_eq!(header.opening, Some(mmk(1_000_000_000)));
    assert_eq!(header.closing, Some(mmk(1_085_000_000)));
    assert_eq!(header.electronic_sequence, Some(7));
    assert_eq!(header.account, None, "the profile names no account column");
    let kinds: Vec<EntryKind> = entries.iter().map(|e| e.kind).collect();
    use EntryKind::*;
    assert_eq!(kinds, vec![Payment, Payment, Return, Other]);
    assert_eq!(entries[2].end_to_end_id.as_deref(), Some("PO0000000302"));
}

#[test]
fn a_balance_that_does_not_follow_from_the_line_before_is_refused_with_its_line() {
    let p = profile(MYANMARBANK);
    // Line 3's debit of 75,000.00 is gone: line 4's balance no longer follows.
    let text = String::from_utf8(MYANMARBANK_FILE.to_vec()).unwrap();
    let broken: String = text
        .lines()
        .enumerate()
        .filter(|(i, _)| *i != 2)
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    let e = line_error(read(&p, broken.as_bytes()));
    assert_eq!((e.line, e.field.as_str()), (3, "balance"));
    assert!(
        e.message.contains("9,850,000.00") || e.message.contains("9850000.00"),
        "{e}"
    );
    assert!(e.message.contains("movement is missing"), "{e}");
}

#[test]
fn a_second_account_in_one_statement_is_refused_and_masked() {
    let p = profile(ENGLISHBANK);
    let text = String::from_utf8(ENGLISHBANK_FILE.to_vec()).unwrap();
    let broken = text.replacen(
        "04/11/2026,04/11/2026,GB33BUKB20201555555555",
        "04/11/2026,04/11/2026,GB94BARC10201530093459",
        1,
    );
    let e = line_error(read(&p, broken.as_bytes()));
    assert_eq!((e.line, e.field.as_str()), (5, "account"));
    assert!(
        e.message.contains("****3459") && e.message.contains("****5555"),
        "{e}"
    );
    assert!(
        !e.message.contains("GB94BARC10201530093459"),
        "unmasked: {e}"
    );
}

#[test]
fn bad_fields_name_their_line_and_field() {
    let p = profile(ENGLISHBANK);
    let header = "Date,Value Date,Account,Statement No,Type,Payment Reference,Bank Reference,Batch Reference,Paid Out,Paid In,Balance\n";
    let cases = [
        ("03/11/2026,,A1,1,PAYMENT,PO1,R,,12.x0,,100.00", "debit"),
        (
            "2026-11-03,,A1,1,PAYMENT,PO1,R,,12.00,,100.00",
            "booking_date",
        ),
        ("03/11/2026,,A1,1,WIRE,PO1,R,,12.00,,100.00", "kind"),
        ("03/11/2026,,A1,1,PAYMENT,PO1,R,,12.00,5.00,100.00", "debit"),
        ("03/11/2026,,A1,1,PAYMENT,PO1,R,,,,100.00", "debit"),
        (
            "03/11/2026,,A1,x,PAYMENT,PO1,R,,12.00,,100.00",
            "statement_number",
        ),
        ("03/11/2026,,A1,1,PAYMENT,PO1,R,,12.00,,", "balance"),
    ];
    for (line, field) in cases {
        let e = line_error(read(&p, format!("{header}{line}\n").as_bytes()));
        assert_eq!((e.line, e.field.as_str()), (2, field), "{line}: {e}");
    }
}

#[test]
fn files_that_do_not_fit_are_refused_whole() {
    let p = profile(ENGLISHBANK);
    let fatal = |bytes: &[u8]| -> FormatErrorKind {
        match read(&p, bytes).into_iter().find_map(Result::err) {
            Some(ReadError::File(f)) => f.kind,
            other => panic!("expected a file error, got {other:?}"),
        }
    };
    assert!(matches!(fatal(b""), FormatErrorKind::Empty));
    match fatal(b"Date,Paid Out,Balance\n03/11/2026,1.00,2.00\n") {
        FormatErrorKind::Layout(m) => assert!(m.contains("\"Value Date\""), "{m}"),
        other => panic!("{other:?}"),
    }
    // Only the header: no balance to read the opening and closing from.
    let header_only = ENGLISHBANK_FILE
        .split(|b| *b == b'\n')
        .next()
        .map(|h| [h, b"\n"].concat())
        .unwrap();
    match fatal(&header_only) {
        FormatErrorKind::Layout(m) => assert!(m.contains("no lines"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn profiles_that_cannot_be_used_are_refused_with_a_reason() {
    let base = "name = \"x\"\nheader_lines = 1\ncurrency = \"EUR\"\n";
    let cases = [
        ("[columns]\nbooking_date = \"D\"\nbalance = \"B\"\n", "either an amount column"),
        (
            "[columns]\nbooking_date = \"D\"\nbalance = \"B\"\namount = \"A\"\ndebit = \"O\"\ncredit = \"I\"\n",
            "either an amount column",
        ),
        (
            "[columns]\nbooking_date = \"D\"\nbalance = \"B\"\namount = \"A\"\nkind = \"K\"\n",
            "needs kind_words",
        ),
        (
            "[columns]\nbooking_date = 0\nbalance = \"B\"\namount = \"A\"\n",
            "start at 1",
        ),
    ];
    for (rest, expect) in cases {
        let e = CsvStatementProfile::from_toml(&format!("{base}{rest}")).unwrap_err();
        assert!(e.to_string().contains(expect), "{rest}: {e}");
    }
    let no_currency = "name = \"x\"\nheader_lines = 1\n[columns]\nbooking_date = \"D\"\nbalance = \"B\"\namount = \"A\"\n";
    assert!(CsvStatementProfile::from_toml(no_currency)
        .unwrap_err()
        .to_string()
        .contains("currency"));
}
