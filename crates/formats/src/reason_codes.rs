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
