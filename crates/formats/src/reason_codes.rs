//! What a bank's reason code means, and whether it is about the beneficiary's account.
//!
//! Banks give a code when they reject or return a payout (ISO 20022 `AC01`, `AM04`; NACHA `R03`).
//! The engine needs to know whether the merchant must fix its bank account before a new attempt
//! (account invalid or closed) or whether something else went wrong. The table is
//! `bankfiles/reason-codes.csv`, embedded at build time and parsed once.

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

const TABLE: &str = include_str!("../../../bankfiles/reason-codes.csv");

/// Our grouping of reason codes (the `suggested_category` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReasonCategory {
    /// The account number, name or bank does not identify a usable account.
    BeneficiaryAccountInvalid,
    /// The account existed and is closed (or its holder has died).
    BeneficiaryAccountClosed,
    InsufficientFunds,
    Duplicate,
    Regulatory,
    Technical,
    Other,
}

impl ReasonCategory {
    pub const ALL: [ReasonCategory; 7] = [
        ReasonCategory::BeneficiaryAccountInvalid,
        ReasonCategory::BeneficiaryAccountClosed,
        ReasonCategory::InsufficientFunds,
        ReasonCategory::Duplicate,
        ReasonCategory::Regulatory,
        ReasonCategory::Technical,
        ReasonCategory::Other,
    ];

    /// The name used in the table: `beneficiary_account_invalid`...
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonCategory::BeneficiaryAccountInvalid => "beneficiary_account_invalid",
            ReasonCategory::BeneficiaryAccountClosed => "beneficiary_account_closed",
            ReasonCategory::InsufficientFunds => "insufficient_funds",
            ReasonCategory::Duplicate => "duplicate",
            ReasonCategory::Regulatory => "regulatory",
            ReasonCategory::Technical => "technical",
            ReasonCategory::Other => "other",
        }
    }

    pub fn parse(text: &str) -> Option<ReasonCategory> {
        ReasonCategory::ALL.into_iter().find(|c| c.as_str() == text)
    }

    /// True when the merchant's bank account must be fixed before paying again.
    pub fn is_account_related(self) -> bool {
        matches!(
            self,
            ReasonCategory::BeneficiaryAccountInvalid | ReasonCategory::BeneficiaryAccountClosed
        )
    }
}

impl fmt::Display for ReasonCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReasonCode {
    pub code: String,
    pub meaning: String,
    pub category: ReasonCategory,
}

struct Table {
    rows: Vec<ReasonCode>,
    by_code: HashMap<String, usize>,
}

fn table() -> &'static Table {
    static TABLE_CELL: OnceLock<Table> = OnceLock::new();
    TABLE_CELL.get_or_init(|| {
        #[derive(serde::Deserialize)]
        struct Row {
            code: String,
            meaning: String,
            suggested_category: String,
        }
        let mut rows = Vec::new();
        for (i, row) in csv::Reader::from_reader(TABLE.as_bytes())
            .deserialize::<Row>()
            .enumerate()
        {
            // The table is part of this crate; a broken row is a bug caught by the tests.
            let row = row.unwrap_or_else(|e| panic!("reason-codes.csv row {}: {e}", i + 2));
            let category = ReasonCategory::parse(&row.suggested_category).unwrap_or_else(|| {
                panic!(
                    "reason-codes.csv: unknown category {:?}",
                    row.suggested_category
                )
            });
            rows.push(ReasonCode {
                code: row.code,
                meaning: row.meaning,
                category,
            });
        }
        let by_code = rows
            .iter()
            .enumerate()
            .map(|(i, r)| (r.code.clone(), i))
            .collect();
        Table { rows, by_code }
    })
}

/// The meaning and category of a bank reason code (`AC01`, `R03`). `None` for a code not in the
/// table: the caller treats it as [`ReasonCategory::Other`].
pub fn lookup(code: &str) -> Option<&'static ReasonCode> {
    let t = table();
    let code = code.trim();
    t.by_code
        .get(code)
        .or_else(|| t.by_code.get(&code.to_ascii_uppercase()))
        .map(|&i| &t.rows[i])
}

/// Who must act on a rejection or return with a given code, so that the right person hears of it:
/// the merchant is told to fix its account only when its account is the cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WhoMustAct {
    /// The merchant: its bank account is wrong, closed or blocked, or its beneficiary refused the
    /// money. The account is flagged; the order waits for a new account.
    Merchant,
    /// Our treasury: our own (debtor) account lacked the funds (AM04, R01, R09 on a credit
    /// transfer). Not the merchant's fault: the merchant hears "delayed".
    Treasury,
    /// Our payment operations: our file, our debtor data, dates, limits. Fix and pay again.
    Operations,
    /// Compliance: a regulatory or fraud stop.
    Compliance,
    /// The bank must explain: no reason given, a timeout or error at a bank, a duplicate it saw.
    Bank,
}

impl WhoMustAct {
    pub fn as_str(self) -> &'static str {
        match self {
            WhoMustAct::Merchant => "merchant",
            WhoMustAct::Treasury => "treasury",
            WhoMustAct::Operations => "operations",
            WhoMustAct::Compliance => "compliance",
            WhoMustAct::Bank => "bank",
        }
    }
}

/// Codes whose table category alone does not say who must act. Reviewed one by one against
/// the table's meanings; the rest follow their category (see [`who_must_act`]).
const WHO_MUST_ACT_OVERRIDES: &[(&str, WhoMustAct)] = &[
    // "Other" codes about the beneficiary's account or the beneficiary refusing the money.
    ("AC06", WhoMustAct::Merchant), // account blocked: nothing can be posted to it
    ("MS02", WhoMustAct::Merchant), // end customer (beneficiary) gave no reason
    ("R23", WhoMustAct::Merchant),  // receiver refused the credit entry
    ("R08", WhoMustAct::Merchant),  // payment stopped by the receiver
    ("BE05", WhoMustAct::Merchant), // initiating party not recognised by the end customer
    // Timeouts and errors at banks in the chain: the bank must say what happened.
    ("AB05", WhoMustAct::Bank),
    ("AB06", WhoMustAct::Bank),
    ("AB07", WhoMustAct::Bank),
    ("AB08", WhoMustAct::Bank),
    ("AB09", WhoMustAct::Bank),
    ("AB10", WhoMustAct::Bank),
    ("ED05", WhoMustAct::Bank), // settlement failed
    ("MS03", WhoMustAct::Bank), // the bank gave no reason
    ("AM09", WhoMustAct::Bank), // amount received differs from the amount agreed
    ("FOCR", WhoMustAct::Bank), // returned after a recall we never sent
    ("RUTA", WhoMustAct::Bank), // returned after an investigation
    ("NOAS", WhoMustAct::Bank), // no response from the beneficiary's side
    ("SL01", WhoMustAct::Bank), // a service of the debtor's bank
    ("CUST", WhoMustAct::Bank), // cancelled or returned on request
    ("DS02", WhoMustAct::Bank), // an authorised user cancelled the order
    ("UPAY", WhoMustAct::Bank), // payment not justified
    ("R32", WhoMustAct::Bank),  // receiving bank cannot settle
    ("R83", WhoMustAct::Bank),  // foreign receiving bank cannot settle
];

/// Who must act on a rejection or return with `code`. Codes not in the table (and `NARR`,
/// whose meaning is only in the free text) go to operations, who read the bank's words.
pub fn who_must_act(code: &str) -> WhoMustAct {
    let Some(row) = lookup(code) else {
        return WhoMustAct::Operations;
    };
    if let Some((_, who)) = WHO_MUST_ACT_OVERRIDES.iter().find(|(c, _)| *c == row.code) {
        return *who;
    }
    match row.category {
        ReasonCategory::BeneficiaryAccountInvalid | ReasonCategory::BeneficiaryAccountClosed => {
            WhoMustAct::Merchant
        }
        ReasonCategory::InsufficientFunds => WhoMustAct::Treasury,
        ReasonCategory::Regulatory => WhoMustAct::Compliance,
        ReasonCategory::Duplicate => WhoMustAct::Bank,
        ReasonCategory::Technical | ReasonCategory::Other => WhoMustAct::Operations,
    }
}

/// Every code in the table, in its order.
pub fn all() -> &'static [ReasonCode] {
    &table().rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(code: &str, category: Option<ReasonCategory>, account_related: bool) {
        let found = lookup(code);
        assert_eq!(found.map(|r| r.category), category, "{code}");
        assert_eq!(
            found.is_some_and(|r| r.category.is_account_related()),
            account_related,
            "{code}"
        );
    }

    #[test]
    fn known_codes() {
        use ReasonCategory::*;
        check("AC01", Some(BeneficiaryAccountInvalid), true);
        check("AC04", Some(BeneficiaryAccountClosed), true);
        check("AM04", Some(InsufficientFunds), false);
        check("AM05", Some(Duplicate), false);
        check("AM10", Some(Technical), false);
        check("NARR", Some(Other), false);
        check("RR04", Some(Regulatory), false);
        check("R03", Some(BeneficiaryAccountInvalid), true);
        check("R02", Some(BeneficiaryAccountClosed), true);
        check("ac01", Some(BeneficiaryAccountInvalid), true);
        check("ZZ99", None, false);
        check("", None, false);
        assert!(lookup("AC01")
            .unwrap()
            .meaning
            .contains("Account identifier"));
    }

    #[test]
    fn who_must_act_for_every_code_in_the_table() {
        use WhoMustAct::*;
        for (code, who) in [
            ("AC01", Merchant),
            ("AC04", Merchant),
            ("AC06", Merchant),
            ("R03", Merchant),
            ("MD07", Merchant),
            ("AM04", Treasury),
            ("R01", Treasury),
            ("R09", Treasury),
            ("AC02", Operations),
            ("AM10", Operations),
            ("FF01", Operations),
            ("NARR", Operations),
            ("ZZ99", Operations),
            ("RR04", Compliance),
            ("R16", Compliance),
            ("FR01", Compliance),
            ("MS03", Bank),
            ("AM05", Bank),
            ("AB08", Bank),
        ] {
            assert_eq!(who_must_act(code), who, "{code}");
        }
        // Every override names a code of the table, and every code gets an answer; the merchant
        // is asked to act exactly for the account codes and the reviewed overrides.
        for (code, _) in WHO_MUST_ACT_OVERRIDES {
            assert!(
                lookup(code).is_some(),
                "override {code} is not in the table"
            );
        }
        for row in all() {
            let merchant = who_must_act(&row.code) == Merchant;
            let account = row.category.is_account_related()
                || ["AC06", "MS02", "R23", "R08", "BE05"].contains(&row.code.as_str());
            assert_eq!(merchant, account, "{} ({})", row.code, row.meaning);
            if row.category == ReasonCategory::InsufficientFunds {
                assert_eq!(who_must_act(&row.code), Treasury, "{}", row.code);
            }
        }
    }

    #[test]
    fn whole_table_parses_with_every_category_used() {
        let rows = all();
        assert_eq!(rows.len(), 143);
        for category in ReasonCategory::ALL {
            assert!(rows.iter().any(|r| r.category == category), "{category}");
        }
        let unique: std::collections::HashSet<&str> =
            rows.iter().map(|r| r.code.as_str()).collect();
        assert_eq!(unique.len(), rows.len(), "codes are unique");
    }
}
