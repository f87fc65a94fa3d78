//! Files that must be refused as a whole, and lines that must fail alone.

mod common;

use std::io::BufReader;

use common::{read_all, sample_bytes};
use disburse_formats::{
    detect, read_camt054, read_pain002, Detected, FormatError, FormatErrorKind, ReadError,
    ResultRecord,
};

/// The single fatal error at the end of a read, after any records.
fn fatal(items: &[Result<ResultRecord, ReadError>]) -> &FormatError {
    let (last, before) = items.split_last().expect("at least one item");
    assert!(
        before.iter().all(|i| !matches!(i, Err(ReadError::File(_)))),
        "one fatal error, last"
    );
    match last {
        Err(ReadError::File(e)) => e,
        other => panic!("expected a fatal error last, got {other:?}"),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[test]
fn truncated_xml_is_fatal_and_names_the_open_element() {
    let bytes = sample_bytes("camt054-v04-postfinance-credit-transfer-return-AC01.xml");
    let cut = text(&bytes).find("<RtrInf>").unwrap();
    let items = read_all(&bytes[..cut]);
    let e = fatal(&items);
    assert_eq!(
        items.len(),
        1,
        "the transaction was never complete: nothing before the error"
    );
    match &e.kind {
        FormatErrorKind::Truncated {
            element,
            opened_line,
            open_elements,
        } => {
            assert_eq!(element, "TxDtls");
            assert_eq!(*opened_line, 56);
            assert_eq!(*open_elements, 6);
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("truncated"), "{e}");
    assert_eq!(e.line, 108, "the line where the file ends");

    // Cut in the middle of a tag, and after a complete record: the record comes, then the error.
    // (The group status would come at the end of the document, which a cut file never reaches.)
    let two = text(&sample_bytes("pain002-v10-de-vop-name-mismatch-RVNM.xml"));
    let cut = two.find("</CstmrPmtStsRpt>").unwrap() + 5;
    let items = read_all(&two.as_bytes()[..cut]);
    assert_eq!(items.iter().filter(|i| i.is_ok()).count(), 1);
    assert!(matches!(
        fatal(&items).kind,
        FormatErrorKind::Truncated { .. }
    ));
}

#[test]
fn not_xml_at_all_even_when_it_starts_with_a_bracket() {
    for input in [
        "<<<this is not xml>>>",
        "< not xml",
        "<html><body>hello</body></html>",
        "<D>a</E>",
    ] {
        let items = read_all(input.as_bytes());
        assert_eq!(items.len(), 1, "{input}");
        let e = fatal(&items);
        assert!(
            matches!(
                e.kind,
                FormatErrorKind::NotXml(_)
                    | FormatErrorKind::Malformed(_)
                    | FormatErrorKind::UnknownMessage(_)
            ),
            "{input}: {e}"
        );
        assert!(detect(input.as_bytes()).is_err(), "{input}");
    }
    let e = detect(b"<html><body/></html>").unwrap_err();
    assert!(e.to_string().contains("<html>"), "{e}");
    // A file that does not start with '<' is CSV for the caller to read with a profile.
    assert_eq!(
        detect(b"\xEF\xBB\xBFPayment Reference,Status\n"),
        Ok(Detected::Csv)
    );
    assert_eq!(detect("交易流水号,付款编号".as_bytes()), Ok(Detected::Csv));
}

#[test]
fn unknown_namespace_version_is_named() {
    let xml = text(&sample_bytes("pain002-v10-de-vop-match-RCVC.xml"))
        .replace("pain.002.001.10", "pain.002.001.99");
    let e = detect(xml.as_bytes()).unwrap_err();
    assert!(matches!(e.kind, FormatErrorKind::UnknownMessage(_)));
    assert!(e.to_string().contains("pain.002.001.99"), "{e}");
    let items = read_all(xml.as_bytes());
    assert_eq!(items.len(), 1);
    assert!(fatal(&items).to_string().contains("pain.002.001.99"));

    let camt = r#"<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.052.001.08"/>"#;
    assert!(detect(camt.as_bytes())
        .unwrap_err()
        .to_string()
        .contains("camt.052.001.08"));
    let none = "<Document><A/></Document>";
    assert!(detect(none.as_bytes())
        .unwrap_err()
        .to_string()
        .contains("no namespace"));
}

#[test]
fn empty_file_is_refused() {
    for input in [&b""[..], b"   \n\t\n", b"\xEF\xBB\xBF"] {
        let e = detect(input).unwrap_err();
        assert_eq!(e.kind, FormatErrorKind::Empty, "{input:?}");
        assert!(e.to_string().contains("file is empty"));
    }
    let items = read_all(b"");
    assert_eq!(fatal(&items).kind, FormatErrorKind::Empty);
}

#[test]
fn a_pain001_given_as_results_is_refused() {
    let ours = r#"<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"><CstmrCdtTrfInitn/></Document>"#;
    let e = detect(ours.as_bytes()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "line 1: this is a payment instruction (pain.001), not a result file \
         (namespace \"urn:iso:std:iso:20022:tech:xsd:pain.001.001.09\")"
    );
    let items = read_all(ours.as_bytes());
    assert!(matches!(
        fatal(&items).kind,
        FormatErrorKind::PaymentInstruction { .. }
    ));
}

#[test]
fn a_reader_for_one_kind_refuses_another() {
    let camt = sample_bytes("camt054-v04-postfinance-return-AC01-2019.xml");
    let items: Vec<_> = read_pain002(BufReader::new(&camt[..])).collect();
    assert!(fatal(&items)
        .to_string()
        .contains("expected pain.002, but this file is camt.054.001.04"));
    let pain = sample_bytes("pain002-v03ch02-postfinance-rejected-AM10.xml");
    let items: Vec<_> = read_camt054(BufReader::new(&pain[..])).collect();
    assert!(matches!(
        fatal(&items).kind,
        FormatErrorKind::UnknownMessage(_)
    ));
}

#[test]
fn an_amount_in_an_unknown_currency_fails_its_line_only() {
    // Two returns; the first in a currency we do not pay in.
    let xml = text(&sample_bytes(
        "camt054-v04-postfinance-credit-transfer-return-AC01.xml",
    ));
    let start = xml.find("<Ntry>").unwrap();
    let end = xml.find("</Ntry>").unwrap() + "</Ntry>".len();
    let entry = &xml[start..end];
    let doubled = format!(
        "{}{}\n{}{}",
        &xml[..start],
        entry.replace(
            "<Amt Ccy=\"CHF\">500.00</Amt>\n\t\t\t\t\t\t<CdtDbtInd>",
            "<Amt Ccy=\"XYZ\">500.00</Amt>\n\t\t\t\t\t\t<CdtDbtInd>"
        ),
        entry,
        &xml[end..]
    );
    let items = read_all(doubled.as_bytes());
    assert_eq!(items.len(), 2, "{items:#?}");
    match &items[0] {
        Err(ReadError::Line(e)) => {
            assert_eq!(e.line, 56);
            assert_eq!(e.field, "amount");
            assert!(e.message.contains("XYZ"), "{e}");
            assert!(e.to_string().starts_with("line 56, field amount: "), "{e}");
        }
        other => panic!("{other:?}"),
    }
    assert!(!items[0].as_ref().unwrap_err().is_fatal());
    assert!(items[1].is_ok(), "the next transaction is still read");
}

#[test]
fn bad_amount_text_and_bad_dates_fail_their_line_only() {
    let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.10">
 <CstmrPmtStsRpt>
  <OrgnlGrpInfAndSts><OrgnlMsgId>M1</OrgnlMsgId><OrgnlMsgNmId>pain.001.001.09</OrgnlMsgNmId></OrgnlGrpInfAndSts>
  <OrgnlPmtInfAndSts>
   <OrgnlPmtInfId>M1</OrgnlPmtInfId>
   <TxInfAndSts>
    <OrgnlEndToEndId>PO0000000001</OrgnlEndToEndId><TxSts>ACSC</TxSts>
    <OrgnlTxRef><Amt><InstdAmt Ccy="EUR">12,50</InstdAmt></Amt></OrgnlTxRef>
   </TxInfAndSts>
   <TxInfAndSts>
    <OrgnlEndToEndId>PO0000000002</OrgnlEndToEndId><TxSts>ACSC</TxSts>
    <OrgnlTxRef><IntrBkSttlmDt>2024-02-30</IntrBkSttlmDt></OrgnlTxRef>
   </TxInfAndSts>
   <TxInfAndSts>
    <TxSts>ACSC</TxSts>
    <OrgnlTxRef><Amt><InstdAmt Ccy="EUR">10.00</InstdAmt></Amt></OrgnlTxRef>
   </TxInfAndSts>
  </OrgnlPmtInfAndSts>
 </CstmrPmtStsRpt>
</Document>
"#;
    let items = read_all(xml.as_bytes());
    assert_eq!(items.len(), 3);
    let line_err = |i: usize| match &items[i] {
        Err(ReadError::Line(e)) => e.clone(),
        other => panic!("{other:?}"),
    };
    let e = line_err(0);
    assert_eq!((e.line, e.field.as_str()), (7, "amount"));
    assert!(e.message.contains("12,50"), "{e}");
    let e = line_err(1);
    assert_eq!((e.line, e.field.as_str()), (11, "value_date"));
    // A missing EndToEndId is not an error: the line simply has none.
    match &items[2] {
        Ok(ResultRecord::Transaction(l)) => assert_eq!(l.end_to_end_id, None),
        other => panic!("{other:?}"),
    }
}
