//! The pain.001.001.09 writer: schema-valid output, escaping, control sums, refusals; and the
//! reader a sandbox bank uses, on our files and on the two real samples.

mod common;

use std::io::BufReader;
use std::path::Path;
use std::process::Command;

use chrono::{NaiveDate, TimeZone, Utc};
use common::{bankfiles, money, sample_bytes};
use disburse_core::Currency::{self, Eur};
use disburse_formats::pain001::{self, Pain001Header};
use disburse_formats::{
    read_transfers, CreditTransfer, CreditorAccount, FormatErrorKind, WriteError,
};

fn header(currency: Currency) -> Pain001Header {
    Pain001Header {
        message_id: "DSB-20240502-0001".into(),
        created_at: Utc.with_ymd_and_hms(2024, 5, 2, 9, 30, 0).unwrap(),
        requested_execution_date: NaiveDate::from_ymd_opt(2024, 5, 3).unwrap(),
        debtor_name: "Disburse Payments Ltd & Co.".into(),
        debtor_iban: "DE89370400440532013000".into(),
        debtor_bic: Some("COBADEFFXXX".into()),
        currency,
    }
}

fn transfer(id: &str, amount: &str, name: &str, account: CreditorAccount) -> CreditTransfer {
    CreditTransfer {
        end_to_end_id: id.into(),
        amount: money(amount, Eur),
        creditor_name: name.into(),
        creditor_account: account,
        creditor_bic: None,
        creditor_country: "DE".into(),
        remittance_info: format!("Withdrawal {id}"),
    }
}

fn batch() -> Vec<CreditTransfer> {
    let mut with_bic = transfer(
        "PO0000000001",
        "1234.50",
        "Müller & Söhne <GmbH>",
        CreditorAccount::Iban("GB29NWBK60161331926819".into()),
    );
    with_bic.creditor_bic = Some("NWBKGB2L".into());
    with_bic.creditor_country = "GB".into();
    with_bic.remittance_info = "Invoice \"42\" & 'more' <b>".into();
    let mut chinese = transfer(
        "PO0000000002",
        "0.05",
        "北京某某贸易有限公司",
        CreditorAccount::Other {
            id: "6222020200112233445".into(),
            bank_code: "102100099996".into(),
        },
    );
    chinese.creditor_country = "CN".into();
    chinese.remittance_info = String::new();
    vec![
        with_bic,
        chinese,
        transfer(
            "PO0000000003",
            "100",
            "Ålesund Fisk AS",
            CreditorAccount::Iban("FR1420041010050500013M02606".into()),
        ),
    ]
}

fn write(
    header: &Pain001Header,
    transfers: &[CreditTransfer],
) -> Result<(Vec<u8>, disburse_formats::BatchSummary), WriteError> {
    let mut out = Vec::new();
    let summary = pain001::write(header, transfers, &mut out)?;
    Ok((out, summary))
}

/// Runs xmllint against the official schema. `None` when xmllint is not installed.
fn xmllint(file: &Path) -> Option<Result<(), String>> {
    let xsd = bankfiles("xsd/pain.001.001.09.xsd");
    match Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(&xsd)
        .arg(file)
        .output()
    {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("xmllint not found: schema validation NOT run");
            None
        }
        Err(e) => panic!("running xmllint: {e}"),
        Ok(out) if out.status.success() => Some(Ok(())),
        Ok(out) => Some(Err(String::from_utf8_lossy(&out.stderr).into_owned())),
    }
}

#[test]
fn written_file_validates_against_the_official_schema() {
    let dir = tempfile::tempdir().unwrap();
    let mut no_bic = header(Eur);
    no_bic.debtor_bic = None;
    for (name, h) in [("with-bic.xml", header(Eur)), ("without-bic.xml", no_bic)] {
        let (xml, _) = write(&h, &batch()).unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, &xml).unwrap();
        match xmllint(&path) {
            None => return,
            Some(result) => result.unwrap_or_else(|e| {
                panic!(
                    "{name} does not validate:\n{e}\n{}",
                    String::from_utf8_lossy(&xml)
                )
            }),
        }
    }
    // The check is real: a file the schema forbids is refused.
    let (xml, _) = write(&header(Eur), &batch()).unwrap();
    let broken = String::from_utf8(xml)
        .unwrap()
        .replace("<PmtMtd>TRF</PmtMtd>", "<PmtMtd>XXX</PmtMtd>");
    let path = dir.path().join("broken.xml");
    std::fs::write(&path, broken).unwrap();
    assert!(xmllint(&path).expect("xmllint ran above").is_err());
}

#[test]
fn control_sums_are_decimal_text_in_both_places() {
    let (xml, summary) = write(&header(Eur), &batch()).unwrap();
    let xml = String::from_utf8(xml).unwrap();
    assert_eq!(summary.count, 3);
    assert_eq!(summary.control_sum, money("1334.55", Eur));
    assert_eq!(
        xml.matches("<NbOfTxs>3</NbOfTxs>").count(),
        2,
        "GrpHdr and PmtInf"
    );
    assert_eq!(
        xml.matches("<CtrlSum>1334.55</CtrlSum>").count(),
        2,
        "GrpHdr and PmtInf"
    );
    assert!(xml.contains(r#"<InstdAmt Ccy="EUR">0.05</InstdAmt>"#));
    assert!(xml.contains(r#"<InstdAmt Ccy="EUR">100.00</InstdAmt>"#));
    assert!(xml.contains("<InstrId>PO0000000001</InstrId><EndToEndId>PO0000000001</EndToEndId>"));
    assert!(xml.contains("<CreDtTm>2024-05-02T09:30:00+00:00</CreDtTm>"));
    assert!(xml.contains("<ReqdExctnDt><Dt>2024-05-03</Dt></ReqdExctnDt>"));
}

#[test]
fn text_is_escaped_and_non_ascii_kept() {
    let (xml, _) = write(&header(Eur), &batch()).unwrap();
    let xml = String::from_utf8(xml).unwrap();
    assert!(
        xml.contains("<Nm>Müller &amp; Söhne &lt;GmbH&gt;</Nm>"),
        "{xml}"
    );
    assert!(xml.contains("<Ustrd>Invoice &quot;42&quot; &amp; &apos;more&apos; &lt;b&gt;</Ustrd>"));
    assert!(xml.contains("<Nm>北京某某贸易有限公司</Nm>"));
    assert!(xml.contains("<Nm>Disburse Payments Ltd &amp; Co.</Nm>"));
    assert!(!xml.contains("<GmbH>"));
    // An Other account carries its bank code as the clearing-system member id.
    assert!(xml.contains("<ClrSysMmbId><MmbId>102100099996</MmbId></ClrSysMmbId>"));
    assert!(xml.contains("<Othr><Id>6222020200112233445</Id></Othr>"));
}

#[test]
fn round_trip_through_the_sandbox_reader() {
    let transfers = batch();
    let (xml, _) = write(&header(Eur), &transfers).unwrap();
    let reader = read_transfers(BufReader::new(&xml[..])).unwrap();
    assert_eq!(reader.message_id(), "DSB-20240502-0001");
    let read: Vec<_> = reader.map(|r| r.unwrap()).collect();
    assert_eq!(read.len(), transfers.len());
    for (r, t) in read.iter().zip(&transfers) {
        assert_eq!(r.end_to_end_id, t.end_to_end_id);
        assert_eq!(r.amount, t.amount);
        assert_eq!(r.creditor_name, t.creditor_name);
        let account = match &t.creditor_account {
            CreditorAccount::Iban(iban) => iban.clone(),
            CreditorAccount::Other { id, .. } => id.clone(),
        };
        assert_eq!(r.creditor_account, account);
    }
}

#[test]
fn the_two_real_pain001_samples_are_read() {
    let v03 = sample_bytes("pain001-v03-lt-sepa-payment.xml");
    let reader = read_transfers(BufReader::new(&v03[..])).unwrap();
    assert_eq!(reader.message_id(), "MSGID0001");
    let v03: Vec<_> = reader.map(|r| r.unwrap()).collect();
    assert_eq!(v03.len(), 1);
    assert_eq!(v03[0].end_to_end_id, "EndToEndId0001");
    assert_eq!(v03[0].amount, money("99.99", Eur));
    assert_eq!(v03[0].creditor_account, "LT007400000000000000");
    assert_eq!(v03[0].creditor_name, "IMONE Z");
    assert_eq!(v03[0].line, 59);

    // The template's GrpHdr says NbOfTxs 2, but it holds five transfers: we read what is there.
    let v09 = sample_bytes("pain001-v09-pain001-template.xml");
    let reader = read_transfers(BufReader::new(&v09[..])).unwrap();
    assert_eq!(reader.message_id(), "1");
    let got: Vec<(String, String)> = reader
        .map(|r| r.unwrap())
        .map(|t| (t.end_to_end_id, t.amount.to_string()))
        .collect();
    let want = [
        ("PaymentID6789", "150.00 EUR"),
        ("PaymentID4321", "300.00 EUR"),
        ("PaymentID1357", "250.00 EUR"),
        ("PaymentID2468", "175.00 EUR"),
        ("PaymentID4815", "225.00 EUR"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn the_reader_refuses_what_is_not_a_pain001() {
    let pain002 = sample_bytes("pain002-v03ch02-postfinance-rejected-AM10.xml");
    let err = read_transfers(BufReader::new(&pain002[..])).err().unwrap();
    assert!(
        matches!(err.kind, FormatErrorKind::UnknownMessage(_)),
        "{err}"
    );
    let truncated = &sample_bytes("pain001-v03-lt-sepa-payment.xml")[..1500];
    let items: Vec<_> = read_transfers(BufReader::new(truncated)).unwrap().collect();
    assert!(matches!(items.last(), Some(Err(e)) if e.is_fatal()));
}

fn refused(transfers: Vec<CreditTransfer>, header: Pain001Header, needle: &str) {
    let mut out = Vec::new();
    let err = pain001::write(&header, &transfers, &mut out)
        .expect_err(needle)
        .to_string();
    assert!(err.contains(needle), "{err} should mention {needle}");
    assert!(out.is_empty(), "nothing is written for a refused batch");
}

#[test]
fn what_a_bank_would_refuse_is_refused_before_writing() {
    let ok = batch;
    refused(vec![], header(Eur), "at least one transfer");
    let mut t = ok();
    t[1].amount = money("1.00", Currency::Usd);
    refused(
        t,
        header(Eur),
        "payout PO0000000002, field amount: is in USD but the batch is in EUR",
    );
    let mut t = ok();
    t[0].end_to_end_id = "X".repeat(36);
    refused(t, header(Eur), "at most 35");
    let mut t = ok();
    t[2].creditor_account = CreditorAccount::Iban("FR1420041010050500013M02607".into());
    refused(t, header(Eur), "check digits");
    let mut t = ok();
    t[0].creditor_country = "gb".into();
    refused(t, header(Eur), "creditor_country");
    let mut t = ok();
    t[0].creditor_name = "bad\u{1}name".into();
    refused(t, header(Eur), "control character");
    let mut t = ok();
    t[0].creditor_bic = Some("NWBK".into());
    refused(t, header(Eur), "not a BIC");
    let mut t = ok();
    t[1].end_to_end_id = t[0].end_to_end_id.clone();
    refused(t, header(Eur), "appears twice");
    let mut t = ok();
    t[0].amount = money("0", Eur);
    refused(t, header(Eur), "greater than zero");
    let mut t = ok();
    t[0].remittance_info = "x".repeat(141);
    refused(t, header(Eur), "remittance_info");
    let mut h = header(Eur);
    h.message_id = String::new();
    refused(ok(), h, "message_id");
}
