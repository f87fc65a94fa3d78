//! One test per real sample in `bankfiles/samples/`: the exact records, outcomes, amounts,
//! end-to-end ids and reason codes each file holds (read from the XML by hand).

mod common;

use chrono::NaiveDate;
use common::{money, read_all, sample_bytes};
use disburse_core::Currency::{self, Chf, Eur};
use disburse_core::Money;
use disburse_formats::results::{CamtVersion, Pain002Version};
use disburse_formats::{
    detect, BankOutcome, Detected, FormatErrorKind, GroupStatus, ReadError, ResultLine,
    ResultRecord,
};

/// The part of a record most tests compare.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    group: bool,
    line: u64,
    end_to_end_id: Option<String>,
    outcome: BankOutcome,
    amount: Option<Money>,
    reason_code: Option<String>,
}

fn seen(record: &ResultRecord) -> Seen {
    match record {
        ResultRecord::Transaction(l) => Seen {
            group: false,
            line: l.line,
            end_to_end_id: l.end_to_end_id.clone(),
            outcome: l.outcome.clone(),
            amount: l.amount,
            reason_code: l.reason_code.clone(),
        },
        ResultRecord::Group(g) => Seen {
            group: true,
            line: g.line,
            end_to_end_id: None,
            outcome: g.status.clone(),
            amount: None,
            reason_code: g.reason_code.clone(),
        },
    }
}

fn tx(
    line: u64,
    e2e: Option<&str>,
    outcome: BankOutcome,
    amount: Option<(&str, Currency)>,
    reason: Option<&str>,
) -> Seen {
    Seen {
        group: false,
        line,
        end_to_end_id: e2e.map(str::to_string),
        outcome,
        amount: amount.map(|(t, c)| money(t, c)),
        reason_code: reason.map(str::to_string),
    }
}

fn group(line: u64, outcome: BankOutcome, reason: Option<&str>) -> Seen {
    Seen {
        group: true,
        line,
        end_to_end_id: None,
        outcome,
        amount: None,
        reason_code: reason.map(str::to_string),
    }
}

fn info(what: &str) -> BankOutcome {
    BankOutcome::Informational(what.to_string())
}

/// Reads a sample, checks `detect` agrees, and compares every record with `want`.
fn check(name: &str, detected: Detected, want: Vec<Seen>) -> Vec<ResultRecord> {
    let bytes = sample_bytes(name);
    assert_eq!(
        detect(&bytes[..bytes.len().min(8192)]),
        Ok(detected),
        "{name}"
    );
    let records: Vec<ResultRecord> = read_all(&bytes)
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| panic!("{name}: {e}")))
        .collect();
    let got: Vec<Seen> = records.iter().map(seen).collect();
    assert_eq!(got.len(), want.len(), "{name}: number of records\n{got:#?}");
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "{name}: record {i}");
    }
    records
}

fn line(r: &ResultRecord) -> &ResultLine {
    match r {
        ResultRecord::Transaction(l) => l,
        ResultRecord::Group(g) => panic!("expected a transaction, got {g:?}"),
    }
}

fn grp(r: &ResultRecord) -> &GroupStatus {
    match r {
        ResultRecord::Group(g) => g,
        ResultRecord::Transaction(l) => panic!("expected a group status, got {l:?}"),
    }
}

fn date(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(y, m, d)
}

#[test]
fn pain002_ch02_transaction_rejected_ac01_under_narr_block() {
    let records = check(
        "pain002-v03ch02-postfinance-rejected-AC01-NARR.xml",
        Detected::Pain002 {
            version: Pain002Version::V03Ch02,
        },
        // The block is RJCT/NARR, but it has a transaction status, which is what matters.
        vec![tx(
            2,
            Some("EndToEndId-006-01-01"),
            BankOutcome::Rejected,
            None,
            Some("AC01"),
        )],
    );
    let l = line(&records[0]);
    assert_eq!(l.reason_text.as_deref(), Some("1301813;Konto ungültig"));
    assert_eq!(l.original_message_id.as_deref(), Some("MsgId-006"));
    assert_eq!(l.bank_status.as_deref(), Some("RJCT"));
    assert_eq!(l.value_date, date(2018, 3, 27));
}

#[test]
fn pain002_ch02_whole_message_rejected_am10() {
    let records = check(
        "pain002-v03ch02-postfinance-rejected-AM10.xml",
        Detected::Pain002 {
            version: Pain002Version::V03Ch02,
        },
        vec![group(15, BankOutcome::Rejected, Some("AM10"))],
    );
    let g = grp(&records[0]);
    assert_eq!(g.original_message_id.as_deref(), Some("MsgId-005"));
    assert_eq!(g.original_payment_information_id, None);
    assert_eq!(
        g.reason_text.as_deref(),
        Some("904114;ControlSum fehlerhaft")
    );
}

#[test]
fn pain002_v10_payee_verification_match_is_never_a_payment_result() {
    let records = check(
        "pain002-v10-de-vop-match-RCVC.xml",
        Detected::Pain002 {
            version: Pain002Version::V10,
        },
        vec![
            // The payment-information block has no transaction statuses: reported too.
            group(28, BankOutcome::PayeeVerification("RCVC".into()), None),
            // The group status comes last: it reaches only what no more specific status did.
            group(13, BankOutcome::PayeeVerification("RCVC".into()), None),
        ],
    );
    for r in &records {
        assert!(!grp(r).status.is_payment_result());
        assert_eq!(
            grp(r).original_message_id.as_deref(),
            Some("2025-11-02T18:33:03:0287")
        );
    }
    assert_eq!(
        grp(&records[0]).original_payment_information_id.as_deref(),
        Some("2025-11-02T18:33:03:0287")
    );
    assert!(grp(&records[1])
        .reason_text
        .as_deref()
        .unwrap()
        .starts_with("RCVC Der angegebene"));
}

#[test]
fn pain002_v10_payee_verification_name_mismatch_is_never_a_payment_result() {
    let records = check(
        "pain002-v10-de-vop-name-mismatch-RVNM.xml",
        Detected::Pain002 {
            version: Pain002Version::V10,
        },
        vec![
            // OrgnlEndToEndId is NOTPROVIDED: no payout number.
            tx(
                73,
                None,
                BankOutcome::PayeeVerification("RVNM".into()),
                None,
                None,
            ),
            // The group status comes after the transactions (the most specific status wins).
            group(15, BankOutcome::PayeeVerification("RVMC".into()), None),
        ],
    );
    assert!(grp(&records[1])
        .reason_text
        .as_deref()
        .unwrap()
        .contains("stimmt nicht ueberein"));
    assert_eq!(
        line(&records[0]).original_message_id.as_deref(),
        Some("2025-10-20T23:33:49:0045")
    );
    for r in &records {
        let outcome = match r {
            ResultRecord::Transaction(l) => &l.outcome,
            ResultRecord::Group(g) => &g.status,
        };
        assert!(!matches!(
            outcome,
            BankOutcome::Paid | BankOutcome::Rejected
        ));
    }
}

#[test]
fn camt054_v04_returned_credit_transfer_ac01() {
    let records = check(
        "camt054-v04-postfinance-credit-transfer-return-AC01.xml",
        Detected::Camt054 {
            version: CamtVersion::V04,
        },
        vec![tx(
            56,
            Some("EndToEndId-001-03-04"),
            BankOutcome::Returned,
            Some(("500.00", Chf)),
            Some("AC01"),
        )],
    );
    let l = line(&records[0]);
    assert_eq!(l.reason_text.as_deref(), Some("Kontonummer falsch"));
    assert_eq!(l.bank_reference.as_deref(), Some("190520CH02ZZTJR1"));
    assert_eq!(l.value_date, date(2020, 11, 24));
}

#[test]
fn camt054_v04_returned_2019_ac01() {
    let records = check(
        "camt054-v04-postfinance-return-AC01-2019.xml",
        Detected::Camt054 {
            version: CamtVersion::V04,
        },
        vec![tx(
            56,
            Some("EndToEndId-004-01-01"),
            BankOutcome::Returned,
            Some(("400.00", Chf)),
            Some("AC01"),
        )],
    );
    assert_eq!(
        line(&records[0]).bank_reference.as_deref(),
        Some("180327CH02P92DYD")
    );
    assert_eq!(line(&records[0]).value_date, date(2019, 5, 20));
}

#[test]
fn camt054_v02_finnish_notification_with_returns() {
    use BankOutcome::{Paid, Returned};
    let credit = || info("credit entry");
    // The whole file is on one line.
    let records = check(
        "camt054-v02-fi-fkl-credit-notification-with-returns-AC01.xml",
        Detected::Camt054 {
            version: CamtVersion::V02,
        },
        vec![
            tx(1, None, credit(), Some(("1900.00", Eur)), None),
            tx(1, None, credit(), Some(("100.00", Eur)), None),
            tx(1, None, credit(), Some(("400.00", Eur)), None),
            tx(1, None, credit(), Some(("100.00", Eur)), None),
            tx(
                1,
                Some("EndToEndIdAT-41-001"),
                credit(),
                Some(("2500.00", Eur)),
                None,
            ),
            tx(
                1,
                Some("EndToEndIdAT-41-002"),
                credit(),
                Some(("500.00", Eur)),
                None,
            ),
            // Entry 4: a booked debit batch of three payments.
            tx(1, None, Paid, Some(("2000.02", Eur)), None),
            tx(1, None, Paid, Some(("1000.01", Eur)), None),
            tx(1, None, Paid, Some(("1230.02", Eur)), None),
            // Entry 5: international payments; TxAmt in EUR (the JPY InstdAmt is not used).
            tx(
                1,
                Some("ISSRBKREF12345678"),
                Paid,
                Some(("500.00", Eur)),
                None,
            ),
            tx(
                1,
                Some("ISSRBKREF12345679"),
                Paid,
                Some(("500.00", Eur)),
                None,
            ),
            // Entry 6: INFO, a reversed credit with return information.
            tx(1, None, Returned, Some(("40.00", Eur)), Some("AC01")),
            tx(1, None, Returned, Some(("60.00", Eur)), Some("CUST")),
        ],
    );
    assert_eq!(
        line(&records[11]).reason_text.as_deref(),
        Some("1+TILIÄ EI LÖYDY")
    );
    assert_eq!(line(&records[11]).bank_status.as_deref(), Some("INFO"));
    assert_eq!(
        line(&records[6]).original_message_id.as_deref(),
        Some("MSGSCT0100")
    );
    assert_eq!(
        line(&records[6]).bank_reference.as_deref(),
        Some("091029ARCH03001")
    );
    assert_eq!(line(&records[9]).value_date, date(2009, 10, 30));
}

#[test]
fn camt054_v08_three_credit_transactions() {
    let credit = || info("credit entry");
    let records = check(
        "camt054-v08-genkgo-example.xml",
        Detected::Camt054 {
            version: CamtVersion::V08,
        },
        vec![
            // The entry is a DBIT in SEK (a currency we do not pay in), but each TxDtls says CRDT
            // in CHF: the transaction's own direction and amount win, the SEK amount is unused.
            tx(
                96,
                Some("UXC06170000006PI00001EE00001"),
                credit(),
                Some(("3.10", Chf)),
                None,
            ),
            tx(
                187,
                Some("UXC06170000006PI00001EE00002"),
                credit(),
                Some(("3.20", Chf)),
                None,
            ),
            tx(
                272,
                Some("UXC06170000006PI00001EE00002"),
                credit(),
                Some(("3.20", Chf)),
                None,
            ),
        ],
    );
    assert_eq!(
        line(&records[0]).bank_status.as_deref(),
        Some("BOOK"),
        "Sts/Cd in .08"
    );
    assert_eq!(
        line(&records[0]).original_message_id.as_deref(),
        Some("UXC06170000006")
    );
}

#[test]
fn camt053_v02_finnish_statement() {
    use BankOutcome::Paid;
    let credit = || info("credit entry");
    let charges = || info("charges, fees or interest");
    let records = check(
        "camt053-v02-fi-fkl-statement.xml",
        Detected::Camt053 {
            version: CamtVersion::V02,
        },
        vec![
            // A salary batch: its only TxDtls has no amount, so the entry amount is used.
            tx(246, None, Paid, Some(("1000.12", Eur)), None),
            // A batch booking without TxDtls: one line for the entry.
            tx(254, None, Paid, Some(("4000.00", Eur)), None),
            tx(328, None, Paid, Some(("2000.02", Eur)), None),
            tx(377, None, Paid, Some(("1000.01", Eur)), None),
            tx(417, None, Paid, Some(("1230.02", Eur)), None),
            tx(506, None, credit(), Some(("2000.00", Eur)), None),
            tx(546, None, credit(), Some(("500.00", Eur)), None),
            tx(582, None, credit(), Some(("3000.00", Eur)), None),
            tx(614, None, credit(), Some(("2120.00", Eur)), None),
            tx(711, None, credit(), Some(("5455.00", Eur)), None),
            tx(
                802,
                Some("EndToEndIdSCT01"),
                credit(),
                Some(("10000.00", Eur)),
                None,
            ),
            // Debits coded PMNT/RCDT/CHRG: charges, never a payout.
            tx(885, None, charges(), Some(("100.00", Eur)), None),
            tx(915, None, charges(), Some(("100.00", Eur)), None),
        ],
    );
    assert_eq!(
        line(&records[1]).bank_reference.as_deref(),
        Some("091029ACCTSTMTARCH02")
    );
    assert_eq!(
        line(&records[1]).original_message_id.as_deref(),
        Some("MSGSCT0099")
    );
    assert_eq!(
        line(&records[8]).bank_reference.as_deref(),
        Some("ISSRBKREF12345678"),
        "TxId"
    );
}

#[test]
fn camt053_v04_swiss_statement_with_returned_credit_transfers() {
    use BankOutcome::Returned;
    let credit = || info("credit entry");
    let charges = || info("charges, fees or interest");
    let refund = || info("reversal of a credit entry");
    let chf = |t| Some((t, Chf));
    let mut want = vec![
        tx(75, None, charges(), chf("24.00"), None),
        tx(107, None, charges(), chf("328.75"), None),
        tx(139, None, charges(), chf("200.80"), None),
        tx(171, None, charges(), chf("638.15"), None),
        tx(203, None, charges(), chf("24.00"), None),
        tx(235, None, charges(), chf("35.72"), None),
    ];
    // Two batches of incoming payments (1000.00 in 10, 620.00 in 8); charge records
    // (Chrgs/Rcrd/Amt) inside are not taken for amounts.
    for (l, a) in [
        (292, "100.00"),
        (368, "50.00"),
        (428, "200.00"),
        (478, "50.00"),
        (549, "100.00"),
        (620, "200.00"),
        (685, "50.00"),
        (756, "100.00"),
        (827, "50.00"),
        (892, "100.00"),
        (1008, "50.00"),
        (1066, "20.00"),
        (1124, "100.00"),
        (1183, "100.00"),
        (1256, "30.00"),
        (1329, "50.00"),
        (1404, "20.00"),
        (1463, "250.00"),
    ] {
        want.push(tx(l, None, credit(), chf(a), None));
    }
    want.extend([
        // The three returned credit transfers (PMNT/ICDT/RRTN, "beneficiary unknown").
        tx(1550, None, Returned, chf("20.00"), Some("NARR")),
        tx(1608, None, Returned, chf("40.00"), Some("NARR")),
        tx(1666, None, Returned, chf("50.00"), Some("NARR")),
        tx(
            1753,
            Some("EndToEnd-CRDBRActSame-1B9C-CHDDBB2"),
            credit(),
            chf("15.00"),
            None,
        ),
        tx(
            1795,
            Some("EndToEnd-CRDBRActSame-1B9C-CHDDBB3"),
            credit(),
            chf("9.00"),
            None,
        ),
        tx(
            1864,
            Some("PMT-651727380907030005"),
            credit(),
            chf("56.56"),
            None,
        ),
        // Direct-debit refunds (MD06): debits reversing a credit we collected. They carry
        // RtrInf but are not a returned payout, and never "paid".
        tx(
            1946,
            Some("EndToEnd-2B6C-CHDDBB5"),
            refund(),
            chf("6.00"),
            Some("MD06"),
        ),
        tx(
            2059,
            Some("E2E-1-1-16030913"),
            refund(),
            chf("15.53"),
            Some("MD06"),
        ),
    ]);
    let records = check(
        "camt053-v04-ch-statement-with-returned-credit-transfers.xml",
        Detected::Camt053 {
            version: CamtVersion::V04,
        },
        want,
    );
    let returned = line(&records[24]);
    assert_eq!(
        returned.reason_text.as_deref(),
        Some("RETOUR VAL 23.03.2016 BEGUENSTIGTER UNBEKANNT")
    );
    assert_eq!(
        returned.original_message_id.as_deref(),
        Some("MSG-RETURN-Test")
    );
    assert_eq!(returned.bank_reference.as_deref(), Some("160406CH00NKZCKG"));
    assert_eq!(returned.value_date, date(2016, 3, 23));
    assert_eq!(
        line(&records[30]).reason_text.as_deref(),
        Some("Lastschrift-Widerspruch durch den Zahlungspflichtigen")
    );
}

#[test]
fn camt053_v08_statement_with_one_paid_debit() {
    let credit = || info("credit entry");
    let records = check(
        "camt053-v08-viafintech-example.xml",
        Detected::Camt053 {
            version: CamtVersion::V08,
        },
        vec![
            // 474.4 (one decimal) and a UETR that is not a valid v4 UUID: read leniently.
            tx(
                115,
                Some("80000004540000100095"),
                credit(),
                Some(("474.40", Chf)),
                None,
            ),
            tx(
                203,
                Some("435A9287E088BDB1D97FAABD181C70C8"),
                credit(),
                Some(("88.85", Chf)),
                None,
            ),
            tx(
                297,
                Some("1208481"),
                BankOutcome::Paid,
                Some(("20.97", Eur)),
                None,
            ),
        ],
    );
    let paid = line(&records[2]);
    assert_eq!(paid.bank_reference.as_deref(), Some("0123171DN6095310"));
    assert_eq!(paid.original_message_id.as_deref(), Some("01222ABC"));
    assert_eq!(paid.value_date, date(2023, 6, 20));
}

fn check_refused_as_results(name: &str) {
    let bytes = sample_bytes(name);
    let err = detect(&bytes).unwrap_err();
    assert!(
        matches!(err.kind, FormatErrorKind::PaymentInstruction { .. }),
        "{name}"
    );
    assert!(
        err.to_string()
            .contains("this is a payment instruction (pain.001), not a result file"),
        "{err}"
    );
    assert_eq!(err.line, 2, "{name}: the line of the Document element");
    let items = read_all(&bytes);
    assert_eq!(items.len(), 1, "{name}");
    match &items[0] {
        Err(e @ ReadError::File(f)) => {
            assert!(e.is_fatal());
            assert!(matches!(f.kind, FormatErrorKind::PaymentInstruction { .. }));
        }
        other => panic!("{name}: {other:?}"),
    }
}

/// Its transfers are read in `tests/pain001.rs`. This file starts with a UTF-8 BOM.
#[test]
fn pain001_v03_sample_is_refused_as_results() {
    check_refused_as_results("pain001-v03-lt-sepa-payment.xml");
}

#[test]
fn pain001_v09_sample_is_refused_as_results() {
    check_refused_as_results("pain001-v09-pain001-template.xml");
}
