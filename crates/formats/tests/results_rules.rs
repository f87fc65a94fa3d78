//! Small hand-written messages for the rules the samples do not cover.

mod common;

use common::{money, read_all};
use disburse_core::Currency::Eur;
use disburse_formats::{BankOutcome, ReadError, ResultLine, ResultRecord};

fn lines(xml: &str) -> Vec<ResultLine> {
    read_all(xml.as_bytes())
        .into_iter()
        .map(|r| match r {
            Ok(ResultRecord::Transaction(l)) => l,
            other => panic!("{other:?}"),
        })
        .collect()
}

fn camt054_v08(entries: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.08"><BkToCstmrDbtCdtNtfctn>
<GrpHdr><MsgId>N1</MsgId><CreDtTm>2024-05-02T10:00:00</CreDtTm></GrpHdr>
<Ntfctn><Id>N1</Id><Acct><Id><IBAN>DE89370400440532013000</IBAN></Id></Acct>
{entries}
</Ntfctn></BkToCstmrDbtCdtNtfctn></Document>
"#
    )
}

#[test]
fn transactions_without_amounts_get_the_entry_amount_only_when_alone() {
    let xml = camt054_v08(
        r#"<Ntry><Amt Ccy="EUR">30.00</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>
<BookgDt><Dt>2024-05-02</Dt></BookgDt>
<NtryDtls>
<TxDtls><Refs><EndToEndId>PO1</EndToEndId></Refs></TxDtls>
<TxDtls><Refs><EndToEndId>PO2</EndToEndId></Refs></TxDtls>
<TxDtls><Refs><EndToEndId>PO3</EndToEndId></Refs><Amt Ccy="EUR">10.00</Amt></TxDtls>
</NtryDtls></Ntry>
<Ntry><Amt Ccy="EUR">7.00</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>
<NtryDtls><TxDtls><Refs><EndToEndId>PO4</EndToEndId></Refs></TxDtls></NtryDtls></Ntry>"#,
    );
    let got: Vec<(Option<String>, Option<_>, BankOutcome)> = lines(&xml)
        .into_iter()
        .map(|l| (l.end_to_end_id, l.amount, l.outcome))
        .collect();
    assert_eq!(
        got,
        vec![
            (Some("PO1".into()), None, BankOutcome::Paid),
            (Some("PO2".into()), None, BankOutcome::Paid),
            (
                Some("PO3".into()),
                Some(money("10.00", Eur)),
                BankOutcome::Paid
            ),
            (
                Some("PO4".into()),
                Some(money("7.00", Eur)),
                BankOutcome::Paid
            ),
        ]
    );
}

#[test]
fn pending_and_returns_and_debits_that_are_not_payouts() {
    let xml = camt054_v08(
        r#"<Ntry><Amt Ccy="EUR">1.00</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts><Cd>PDNG</Cd></Sts>
<NtryDtls><TxDtls><Refs><EndToEndId>P-PENDING</EndToEndId></Refs></TxDtls></NtryDtls></Ntry>
<Ntry><Amt Ccy="EUR">2.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><RvslInd>true</RvslInd><Sts><Cd>BOOK</Cd></Sts>
<NtryDtls><TxDtls><Refs><EndToEndId>P-REVERSED</EndToEndId></Refs></TxDtls></NtryDtls></Ntry>
<Ntry><Amt Ccy="EUR">3.00</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>
<BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>RCDT</Cd><SubFmlyCd>RRTN</SubFmlyCd></Fmly></Domn></BkTxCd>
<NtryDtls><TxDtls><Refs><EndToEndId>P-WE-RETURNED-A-CREDIT</EndToEndId></Refs></TxDtls></NtryDtls></Ntry>
<Ntry><Amt Ccy="EUR">4.00</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>
<BkTxCd><Domn><Cd>ACMT</Cd><Fmly><Cd>MDOP</Cd><SubFmlyCd>OTHR</SubFmlyCd></Fmly></Domn></BkTxCd></Ntry>
<Ntry><Amt Ccy="EUR">5.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>
<NtryDtls><TxDtls><Refs><EndToEndId>P-RTR</EndToEndId></Refs>
<RtrInf><Rsn><Prtry>X1</Prtry></Rsn><AddtlInf>first</AddtlInf><AddtlInf>second</AddtlInf></RtrInf>
</TxDtls></NtryDtls></Ntry>"#,
    );
    let got: Vec<(Option<String>, BankOutcome)> = lines(&xml)
        .into_iter()
        .map(|l| (l.end_to_end_id, l.outcome))
        .collect();
    let info = |s: &str| BankOutcome::Informational(s.into());
    assert_eq!(
        got,
        vec![
            (Some("P-PENDING".into()), BankOutcome::Pending),
            (Some("P-REVERSED".into()), BankOutcome::Returned),
            (
                Some("P-WE-RETURNED-A-CREDIT".into()),
                info("debit returning a received payment")
            ),
            (None, info("ACMT entry, not a payment")),
            (Some("P-RTR".into()), BankOutcome::Returned),
        ]
    );
    let l = &lines(&xml)[4];
    assert_eq!(l.reason_code.as_deref(), Some("X1"));
    assert_eq!(l.reason_text.as_deref(), Some("first second"));
}

fn pain002(body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.03"><CstmrPmtStsRpt>
<GrpHdr><MsgId>S1</MsgId><CreDtTm>2024-05-02T10:00:00</CreDtTm></GrpHdr>
<OrgnlGrpInfAndSts><OrgnlMsgId>BATCH-7</OrgnlMsgId><OrgnlMsgNmId>pain.001.001.09</OrgnlMsgNmId><GrpSts>PART</GrpSts></OrgnlGrpInfAndSts>
{body}
</CstmrPmtStsRpt></Document>
"#
    )
}

#[test]
fn pain002_transactions_and_inherited_status() {
    let xml = pain002(
        r#"<OrgnlPmtInfAndSts><OrgnlPmtInfId>BATCH-7</OrgnlPmtInfId><PmtInfSts>RJCT</PmtInfSts>
<StsRsnInf><Rsn><Cd>AC04</Cd></Rsn><AddtlInf>closed</AddtlInf></StsRsnInf>
<TxInfAndSts><OrgnlInstrId>PO0000000001</OrgnlInstrId><OrgnlEndToEndId>PO0000000001</OrgnlEndToEndId></TxInfAndSts>
<TxInfAndSts><OrgnlEndToEndId>PO0000000002</OrgnlEndToEndId><TxSts>ACSC</TxSts>
<AcctSvcrRef>BANK-REF-2</AcctSvcrRef>
<OrgnlTxRef><Amt><InstdAmt Ccy="EUR">1234.5</InstdAmt></Amt><IntrBkSttlmDt>2024-05-03</IntrBkSttlmDt></OrgnlTxRef>
</TxInfAndSts></OrgnlPmtInfAndSts>"#,
    );
    let items = read_all(xml.as_bytes());
    assert_eq!(items.len(), 3);
    // The group status comes last: the transactions' own statuses are more specific.
    match &items[2] {
        Ok(ResultRecord::Group(g)) => {
            assert_eq!(g.status, BankOutcome::Informational("status PART".into()));
            assert_eq!(g.original_message_id.as_deref(), Some("BATCH-7"));
        }
        other => panic!("{other:?}"),
    }
    let tx = |i: usize| match &items[i] {
        Ok(ResultRecord::Transaction(l)) => l.clone(),
        other => panic!("{other:?}"),
    };
    let first = tx(0);
    assert_eq!(
        first.outcome,
        BankOutcome::Rejected,
        "no TxSts: the block's RJCT applies"
    );
    assert_eq!(first.reason_code.as_deref(), Some("AC04"));
    assert_eq!(first.reason_text.as_deref(), Some("closed"));
    let second = tx(1);
    assert_eq!(second.outcome, BankOutcome::Paid);
    // InstdAmt echoes the instruction; a status report books nothing.
    assert_eq!(second.amount, None);
    assert_eq!(second.instructed_amount, Some(money("1234.50", Eur)));
    assert_eq!(second.bank_reference.as_deref(), Some("BANK-REF-2"));
    assert_eq!(
        second.value_date,
        chrono::NaiveDate::from_ymd_opt(2024, 5, 3)
    );
    assert_eq!(second.original_message_id.as_deref(), Some("BATCH-7"));
    assert!(items.iter().all(|i| !matches!(i, Err(ReadError::File(_)))));
}

#[test]
fn namespace_prefixes_and_entities_are_handled() {
    let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<p:Document xmlns:p="urn:iso:std:iso:20022:tech:xsd:pain.002.001.10"><p:CstmrPmtStsRpt>
<p:OrgnlGrpInfAndSts><p:OrgnlMsgId>M&amp;1</p:OrgnlMsgId></p:OrgnlGrpInfAndSts>
<p:OrgnlPmtInfAndSts><p:OrgnlPmtInfId>X</p:OrgnlPmtInfId>
<p:TxInfAndSts><p:OrgnlEndToEndId>PO&lt;1&gt;</p:OrgnlEndToEndId><p:TxSts>ACCP</p:TxSts></p:TxInfAndSts>
</p:OrgnlPmtInfAndSts></p:CstmrPmtStsRpt></p:Document>"#;
    let l = &lines(xml)[0];
    assert_eq!(l.end_to_end_id.as_deref(), Some("PO<1>"));
    assert_eq!(l.original_message_id.as_deref(), Some("M&1"));
    assert_eq!(l.outcome, BankOutcome::Accepted);
    assert_eq!(l.line, 5);
}
