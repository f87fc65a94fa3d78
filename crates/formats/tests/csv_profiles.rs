//! The two example CSV profiles with their example result files, encodings, errors that name the
//! line and field, and the outgoing instruction files.

mod common;

use std::io::BufReader;

use chrono::NaiveDate;
use common::money;
use disburse_core::Currency::{Cny, Eur};
use disburse_formats::bank_csv::CsvEncoding;
use disburse_formats::{
    read_csv_results, write_csv_instructions, BankOutcome, CreditTransfer, CreditorAccount,
    CsvProfile, FormatErrorKind, ReadError, ResultLine, ResultRecord,
};
use encoding_rs::GBK;

const ENGLISHBANK: &str = include_str!("../profiles/englishbank.toml");
const ENGLISHBANK_RESULTS: &[u8] = include_bytes!("../profiles/englishbank-results.csv");
const CHINABANK: &str = include_str!("../profiles/chinabank.toml");
const CHINABANK_RESULTS: &[u8] = include_bytes!("../profiles/chinabank-results.csv");

/// The text of `profiles/chinabank-results.csv`, which is stored GBK-encoded. Run this test file
/// with `DISBURSE_WRITE_FIXTURES=1` to regenerate the file from this text.
const CHINABANK_RESULTS_TEXT: &str = "交易流水号,付款编号,金额,状态,失败原因,日期\r\n\
CB20240502000001,PO0000000101,\"12,345.67\",成功,,2024-05-02\r\n\
CB20240502000002,PO0000000102,500.00,失败,收款人账号不存在,2024-05-02\r\n\
CB20240502000003,PO0000000103,8000,处理中,,\r\n\
CB20240502000004,PO0000000104,\"1,000.00\",退票,户名与账号不符,2024-05-06\r\n";

fn profile(text: &str) -> CsvProfile {
    CsvProfile::from_toml(text).unwrap_or_else(|e| panic!("{e}"))
}

fn read(profile: &CsvProfile, bytes: &[u8]) -> Vec<Result<ResultRecord, ReadError>> {
    read_csv_results(profile, BufReader::new(bytes)).collect()
}

fn lines(profile: &CsvProfile, bytes: &[u8]) -> Vec<ResultLine> {
    read(profile, bytes)
        .into_iter()
        .map(|r| match r {
            Ok(ResultRecord::Transaction(l)) => l,
            other => panic!("{other:?}"),
        })
        .collect()
}

#[test]
fn chinabank_results_file_is_the_gbk_encoding_of_its_text() {
    let (encoded, _, unmappable) = GBK.encode(CHINABANK_RESULTS_TEXT);
    assert!(!unmappable);
    if std::env::var_os("DISBURSE_WRITE_FIXTURES").is_some() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/profiles/chinabank-results.csv"
        );
        std::fs::write(path, &encoded).unwrap();
        eprintln!("wrote {path}; rebuild to use it");
        return;
    }
    assert_eq!(
        CHINABANK_RESULTS,
        &encoded[..],
        "run with DISBURSE_WRITE_FIXTURES=1 to regenerate"
    );
    let (decoded, had_errors) = GBK.decode_without_bom_handling(CHINABANK_RESULTS);
    assert!(!had_errors);
    assert_eq!(decoded, CHINABANK_RESULTS_TEXT);
    let bytes: Vec<u8> = CHINABANK_RESULTS.to_vec();
    assert!(
        String::from_utf8(bytes).is_err(),
        "really GBK bytes, not UTF-8"
    );
}

#[test]
fn englishbank_results() {
    let p = profile(ENGLISHBANK);
    assert_eq!(p.name(), "englishbank");
    let got = lines(&p, ENGLISHBANK_RESULTS);
    let summary: Vec<(u64, &str, BankOutcome, Option<_>)> = got
        .iter()
        .map(|l| {
            (
                l.line,
                l.end_to_end_id.as_deref().unwrap(),
                l.outcome.clone(),
                l.amount,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                2,
                "PO0000000001",
                BankOutcome::Paid,
                Some(money("1234.50", Eur))
            ),
            (
                3,
                "PO0000000002",
                BankOutcome::Rejected,
                Some(money("250.00", Eur))
            ),
            (
                4,
                "PO0000000003",
                BankOutcome::Returned,
                Some(money("12000.00", Eur))
            ),
            (
                5,
                "PO0000000004",
                BankOutcome::Pending,
                Some(money("99.99", Eur))
            ),
            (
                6,
                "PO0000000005",
                BankOutcome::Accepted,
                Some(money("1000000.00", Eur))
            ),
        ]
    );
    assert_eq!(got[0].value_date, NaiveDate::from_ymd_opt(2024, 5, 2));
    assert_eq!(got[0].bank_reference.as_deref(), Some("EB-240501-0001"));
    assert_eq!(got[0].bank_status.as_deref(), Some("PAID"));
    assert_eq!(got[0].reason_code, None);
    assert_eq!(got[1].reason_code.as_deref(), Some("AC04"));
    assert_eq!(got[1].reason_text.as_deref(), Some("Account closed"));
    assert_eq!(got[1].value_date, None);
    assert_eq!(
        got[2].reason_text.as_deref(),
        Some("Wrong account number, returned by the beneficiary's bank")
    );
    assert_eq!(got[2].value_date, NaiveDate::from_ymd_opt(2024, 5, 6));
}

#[test]
fn chinabank_results_in_gbk() {
    let p = profile(CHINABANK);
    assert_eq!(p.encoding(), CsvEncoding::Gbk);
    let got = lines(&p, CHINABANK_RESULTS);
    let summary: Vec<(u64, &str, &str, BankOutcome, Option<_>)> = got
        .iter()
        .map(|l| {
            (
                l.line,
                l.bank_reference.as_deref().unwrap(),
                l.end_to_end_id.as_deref().unwrap(),
                l.outcome.clone(),
                l.amount,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                2,
                "CB20240502000001",
                "PO0000000101",
                BankOutcome::Paid,
                Some(money("12345.67", Cny))
            ),
            (
                3,
                "CB20240502000002",
                "PO0000000102",
                BankOutcome::Rejected,
                Some(money("500.00", Cny))
            ),
            (
                4,
                "CB20240502000003",
                "PO0000000103",
                BankOutcome::Pending,
                Some(money("8000", Cny))
            ),
            (
                5,
                "CB20240502000004",
                "PO0000000104",
                BankOutcome::Returned,
                Some(money("1000.00", Cny))
            ),
        ]
    );
    assert_eq!(got[1].reason_text.as_deref(), Some("收款人账号不存在"));
    assert_eq!(got[1].bank_status.as_deref(), Some("失败"));
    assert_eq!(got[3].reason_text.as_deref(), Some("户名与账号不符"));
    assert_eq!(got[3].value_date, NaiveDate::from_ymd_opt(2024, 5, 6));
}

#[test]
fn a_gbk_file_read_as_utf8_is_refused_naming_the_line() {
    let p = profile(&CHINABANK.replace("encoding = \"gbk\"", "encoding = \"utf-8\""));
    let items = read(&p, CHINABANK_RESULTS);
    assert_eq!(items.len(), 1);
    match &items[0] {
        Err(ReadError::File(e)) => {
            assert_eq!(e.line, 1);
            assert!(matches!(e.kind, FormatErrorKind::Encoding(_)));
            let text = e.to_string();
            assert!(
                text.contains("not valid UTF-8") && text.contains("GBK"),
                "{text}"
            );
        }
        other => panic!("{other:?}"),
    }
    // With an ASCII header, the first Chinese data field fails its line, not the file.
    let p = profile(
        r#"
        name = "ascii-header"
        header_lines = 1
        currency = "CNY"
        [columns]
        end_to_end_id = "ref"
        status = "status"
        reason_text = "why"
        [status_words]
        "失败" = "rejected"
        OK = "paid"
    "#,
    );
    let mut file = b"ref,status,why\nPO1,OK,\nPO2,".to_vec();
    file.extend_from_slice(&GBK.encode("失败").0);
    file.extend_from_slice(b",x\n");
    let items = read(&p, &file);
    assert!(items[0].is_ok());
    match &items[1] {
        Err(ReadError::Line(e)) => {
            assert_eq!((e.line, e.field.as_str()), (3, "status"));
            assert!(e.message.contains("GBK"), "{e}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_lines_name_their_line_and_field() {
    let p = profile(ENGLISHBANK);
    let file =
        "Payment Reference,Bank Reference,Status,Amount,Currency,Value Date,Reason Code,Reason\n\
PO1,R1,PAID,\"1,234.50\",EUR,02/05/2024,,\n\
PO2,R2,DONE,1.00,EUR,,,\n\
\n\
PO3,R3,PAID,\"12,34.50\",EUR,,,\n\
PO4,R4,PAID,1.00,XYZ,,,\n\
PO5,R5,paid,1.00,EUR,2024-05-02,,\n\
,R6,REJECTED,,,,AC01,\n";
    let items = read(&p, file.as_bytes());
    assert_eq!(items.len(), 6, "{items:#?}");
    assert!(items[0].is_ok());
    let err = |i: usize| match &items[i] {
        Err(ReadError::Line(e)) => e.to_string(),
        other => panic!("{other:?}"),
    };
    let e = err(1);
    assert!(
        e.starts_with("line 3, field status: unknown status word \"DONE\""),
        "{e}"
    );
    assert!(e.contains("PAID") && e.contains("REJECTED"), "{e}");
    assert!(err(2).starts_with("line 5, field amount: "), "{}", err(2));
    assert!(err(3).starts_with("line 6, field currency: ") && err(3).contains("XYZ"));
    // "paid" matches PAID regardless of case; its date is in the wrong format.
    assert!(
        err(4).starts_with("line 7, field value_date: ") && err(4).contains("%d/%m/%Y"),
        "{}",
        err(4)
    );
    // No payout number and no amount are not errors.
    match &items[5] {
        Ok(ResultRecord::Transaction(l)) => {
            assert_eq!(l.line, 8);
            assert_eq!(l.end_to_end_id, None);
            assert_eq!(l.amount, None);
            assert_eq!(l.outcome, BankOutcome::Rejected);
        }
        other => panic!("{other:?}"),
    }
    assert!(items.iter().all(|i| !matches!(i, Err(e) if e.is_fatal())));
}

#[test]
fn layout_problems_are_fatal() {
    let p = profile(ENGLISHBANK);
    let items = read(&p, b"Ref,State\nPO1,PAID\n");
    match &items[..] {
        [Err(ReadError::File(e))] => {
            assert!(matches!(e.kind, FormatErrorKind::Layout(_)));
            assert!(e.to_string().contains("\"Payment Reference\""), "{e}");
        }
        other => panic!("{other:?}"),
    }
    match &read(&p, b"")[..] {
        [Err(ReadError::File(e))] => assert_eq!(e.kind, FormatErrorKind::Empty),
        other => panic!("{other:?}"),
    }
}

#[test]
fn columns_by_position_without_header_and_other_separators() {
    let p = profile(
        r#"
        name = "positional"
        delimiter = ";"
        currency = "EUR"
        date_format = "%Y%m%d"
        [amount]
        decimal_separator = ","
        thousands_separator = "."
        [columns]
        end_to_end_id = 1
        status = 3
        amount = 2
        value_date = 4
        [status_words]
        OK = "paid"
        KO = "rejected"
    "#,
    );
    let got = lines(&p, b"PO1;1.234,50;OK;20240502\nPO2;0,01;KO\n");
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].amount, Some(money("1234.50", Eur)));
    assert_eq!(got[0].value_date, NaiveDate::from_ymd_opt(2024, 5, 2));
    assert_eq!(got[1].line, 2);
    assert_eq!(got[1].outcome, BankOutcome::Rejected);
    assert_eq!(got[1].value_date, None, "a short line has no value date");
}

fn transfers(currency: disburse_core::Currency) -> Vec<CreditTransfer> {
    vec![
        CreditTransfer {
            end_to_end_id: "PO0000000101".into(),
            amount: money("12345.67", currency),
            creditor_name: "上海某某科技有限公司".into(),
            creditor_account: CreditorAccount::Other {
                id: "6222020200112233445".into(),
                bank_code: "102290000018".into(),
            },
            creditor_bic: None,
            creditor_country: "CN".into(),
            remittance_info: "提现 W-1".into(),
        },
        CreditTransfer {
            end_to_end_id: "PO0000000102".into(),
            amount: money("0.50", currency),
            creditor_name: "Smith, \"Jr\"".into(),
            creditor_account: CreditorAccount::Iban("GB29NWBK60161331926819".into()),
            creditor_bic: Some("NWBKGB2L".into()),
            creditor_country: "GB".into(),
            remittance_info: String::new(),
        },
    ]
}

#[test]
fn englishbank_instruction_file() {
    let p = profile(ENGLISHBANK);
    let mut out = Vec::new();
    let summary = write_csv_instructions(&p, &transfers(Eur), &mut out).unwrap();
    assert_eq!(summary.count, 2);
    assert_eq!(summary.control_sum, money("12346.17", Eur));
    let text = String::from_utf8(out).unwrap();
    assert_eq!(
        text,
        "Payment Reference,Beneficiary Name,Account,Bank Code,BIC,Country,Amount,Currency,Details,Charges\r\n\
PO0000000101,上海某某科技有限公司,6222020200112233445,102290000018,,CN,\"12,345.67\",EUR,提现 W-1,SHA\r\n\
PO0000000102,\"Smith, \"\"Jr\"\"\",GB29NWBK60161331926819,,NWBKGB2L,GB,0.50,EUR,,SHA\r\n"
    );
}

#[test]
fn chinabank_instruction_file_is_gbk() {
    let p = profile(CHINABANK);
    let mut t = transfers(Cny);
    t.truncate(1);
    let mut out = Vec::new();
    write_csv_instructions(&p, &t, &mut out).unwrap();
    assert!(std::str::from_utf8(&out).is_err(), "GBK bytes");
    let (text, had_errors) = GBK.decode_without_bom_handling(&out);
    assert!(!had_errors);
    assert_eq!(
        text,
        "付款编号,收款人户名,收款人账号,收款行行号,金额,用途\r\n\
PO0000000101,上海某某科技有限公司,6222020200112233445,102290000018,\"12,345.67\",提现 W-1\r\n"
    );

    // What GBK cannot carry, and a currency the bank does not pay, are refused before writing.
    let mut emoji = t.clone();
    emoji[0].creditor_name = "Shop 😀".into();
    let mut out = Vec::new();
    let err = write_csv_instructions(&p, &emoji, &mut out)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("PO0000000101") && err.contains("GBK") && err.contains("😀"),
        "{err}"
    );
    assert!(
        !err.contains("Shop"),
        "only the characters, not the value: {err}"
    );
    assert!(out.is_empty());
    let err = write_csv_instructions(&p, &transfers(Eur), &mut out)
        .unwrap_err()
        .to_string();
    assert!(err.contains("pays only CNY"), "{err}");
    assert!(out.is_empty());
}

#[test]
fn line_numbers_are_physical_lines() {
    let p = profile(
        r#"
        name = "lines"
        header_lines = 1
        currency = "EUR"
        [columns]
        end_to_end_id = "ref"
        status = "status"
        reason_text = "why"
        [status_words]
        OK = "paid"
    "#,
    );
    for newline in ["\n", "\r\n"] {
        let file = [
            "",
            "ref,status,why",
            "PO1,OK,\"two",
            "lines\"",
            "",
            "",
            "PO2,OK,",
            "PO3,OK,x",
        ]
        .join(newline);
        let got: Vec<(u64, String)> = lines(&p, file.as_bytes())
            .into_iter()
            .map(|l| (l.line, l.end_to_end_id.unwrap()))
            .collect();
        let want = [(3, "PO1"), (7, "PO2"), (8, "PO3")].map(|(l, s)| (l, s.to_string()));
        assert_eq!(got, want, "{newline:?}");
    }
}

#[test]
fn a_payment_result_without_its_declared_amount_is_a_line_error_not_paid_in_full() {
    let p = profile(CHINABANK);
    let text = "交易流水号,付款编号,金额,状态,失败原因,日期\r\n\
CB1,PO0000000101,,成功,,2024-05-02\r\n\
CB2,PO0000000102,,失败,收款人账号不存在,2024-05-02\r\n";
    let (gbk, _, _) = GBK.encode(text);
    let items = read(&p, &gbk);
    match &items[0] {
        Err(ReadError::Line(e)) => {
            assert_eq!((e.line, e.field.as_str()), (2, "amount"), "{e}");
        }
        other => panic!("a paid line without its amount: {other:?}"),
    }
    // A rejection moves no money: its amount may be left out.
    assert!(
        matches!(&items[1], Ok(ResultRecord::Transaction(l)) if l.outcome == BankOutcome::Rejected),
        "{:?}",
        items[1]
    );
}
