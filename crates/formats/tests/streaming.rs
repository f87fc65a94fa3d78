//! Memory must not grow with the size of a file: a ~50 MB pain.002 is generated on the fly (never
//! stored) and read to the end. Alone in its test binary so the peak memory of the process
//! measures this read only.

use std::io::{BufReader, Read};

use disburse_core::{Currency, Money};
use disburse_formats::{read_pain002, BankOutcome, ResultRecord};

/// Produces a pain.002 with `total` transaction statuses, a few hundred bytes at a time.
struct Pain002Generator {
    total: u64,
    next_tx: u64,
    chunk: Vec<u8>,
    pos: usize,
    stage: u8,
    produced: u64,
}

const HEADER: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.10">
  <CstmrPmtStsRpt>
    <GrpHdr><MsgId>BIG</MsgId><CreDtTm>2024-05-02T10:00:00</CreDtTm></GrpHdr>
    <OrgnlGrpInfAndSts><OrgnlMsgId>BATCH-BIG</OrgnlMsgId><OrgnlMsgNmId>pain.001.001.09</OrgnlMsgNmId></OrgnlGrpInfAndSts>
    <OrgnlPmtInfAndSts>
      <OrgnlPmtInfId>BATCH-BIG</OrgnlPmtInfId>
"#;
const HEADER_LINES: u64 = 7;
const TX_LINES: u64 = 10;
const FOOTER: &str = "    </OrgnlPmtInfAndSts>\n  </CstmrPmtStsRpt>\n</Document>\n";

fn amount_minor(n: u64) -> i64 {
    (n % 1_000_000) as i64 + 1
}

impl Pain002Generator {
    fn new(total: u64) -> Self {
        Pain002Generator {
            total,
            next_tx: 0,
            chunk: Vec::new(),
            pos: 0,
            stage: 0,
            produced: 0,
        }
    }

    fn refill(&mut self) -> bool {
        self.chunk.clear();
        self.pos = 0;
        match self.stage {
            0 => {
                self.chunk.extend_from_slice(HEADER.as_bytes());
                self.stage = 1;
            }
            1 if self.next_tx < self.total => {
                let n = self.next_tx;
                let amount = Money::from_minor(amount_minor(n), Currency::Eur).to_decimal_string();
                let status = if n % 10 == 9 { "RJCT" } else { "ACSC" };
                self.chunk.extend_from_slice(
                    format!(
                        "      <TxInfAndSts>\n        <OrgnlInstrId>PO{n:010}</OrgnlInstrId>\n        <OrgnlEndToEndId>PO{n:010}</OrgnlEndToEndId>\n        <TxSts>{status}</TxSts>\n        <AcctSvcrRef>BANK-{n:012}</AcctSvcrRef>\n        <OrgnlTxRef>\n          <Amt><InstdAmt Ccy=\"EUR\">{amount}</InstdAmt></Amt>\n          <IntrBkSttlmDt>2024-05-03</IntrBkSttlmDt>\n        </OrgnlTxRef>\n      </TxInfAndSts>\n"
                    )
                    .as_bytes(),
                );
                self.next_tx += 1;
            }
            1 => {
                self.chunk.extend_from_slice(FOOTER.as_bytes());
                self.stage = 2;
            }
            _ => return false,
        }
        true
    }
}

impl Read for Pain002Generator {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos == self.chunk.len() && !self.refill() {
            return Ok(0);
        }
        let n = out.len().min(self.chunk.len() - self.pos);
        out[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        self.produced += n as u64;
        Ok(n)
    }
}

/// Peak resident memory of this process in KiB (Linux), if known.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn a_fifty_megabyte_status_report_is_read_in_bounded_memory() {
    const TOTAL: u64 = 150_000;
    let before = peak_rss_kib();
    let mut generator = Pain002Generator::new(TOTAL);
    let mut count = 0u64;
    let mut rejected = 0u64;
    let mut sum_minor = 0i64;
    let mut last_line = 0;
    {
        let reader = read_pain002(BufReader::with_capacity(64 * 1024, &mut generator));
        for item in reader {
            let ResultRecord::Transaction(l) = item.expect("every line reads") else {
                panic!("no group status in this file");
            };
            let n = count;
            assert_eq!(
                l.line,
                HEADER_LINES + 1 + n * TX_LINES,
                "line of transaction {n}"
            );
            if l.outcome == BankOutcome::Rejected {
                rejected += 1;
            }
            // A status report echoes what was instructed; it never says what was booked.
            assert_eq!(l.amount, None);
            sum_minor += l
                .instructed_amount
                .expect("instructed amount")
                .amount_minor();
            last_line = l.line;
            count += 1;
        }
    }
    assert_eq!(count, TOTAL);
    assert_eq!(rejected, TOTAL / 10);
    assert_eq!(sum_minor, (0..TOTAL).map(amount_minor).sum::<i64>());
    assert!(
        generator.produced > 50_000_000,
        "{} bytes",
        generator.produced
    );
    assert_eq!(last_line, HEADER_LINES + 1 + (TOTAL - 1) * TX_LINES);
    if let (Some(before), Some(after)) = (before, peak_rss_kib()) {
        let grown_kib = after.saturating_sub(before);
        eprintln!(
            "peak memory grew by {grown_kib} KiB while reading {} bytes",
            generator.produced
        );
        assert!(
            grown_kib < 16 * 1024,
            "peak memory grew by {grown_kib} KiB reading {} bytes",
            generator.produced
        );
    } else {
        eprintln!("no /proc/self/status: peak memory NOT checked");
    }
}
