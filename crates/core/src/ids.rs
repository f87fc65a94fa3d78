//! Identifiers people type and read: merchant ids, order numbers, payout numbers, channel ids,
//! operator names. Each is a newtype whose `parse` refuses what would be ambiguous on paper or in a
//! bank file, so an invalid one cannot exist.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {value:?} is invalid: {why}")]
pub struct IdError {
    pub field: &'static str,
    pub value: String,
    pub why: &'static str,
}

fn check(
    field: &'static str,
    value: &str,
    max_len: usize,
    allowed: impl Fn(char) -> bool,
    allowed_text: &'static str,
) -> Result<(), IdError> {
    let err = |why| IdError {
        field,
        value: value.chars().take(80).collect(),
        why,
    };
    if value.is_empty() {
        return Err(err("it is empty"));
    }
    if value.chars().count() > max_len {
        return Err(err("it is too long"));
    }
    if !value.chars().all(allowed) {
        return Err(err(allowed_text));
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $field:literal, $max:literal, $allowed:expr, $allowed_text:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(value: &str) -> Result<Self, IdError> {
                check($field, value, $max, $allowed, $allowed_text)?;
                Ok($name(value.to_string()))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                $name::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
    };
}

fn slug_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'
}

/// ISO 20022 EndToEndId and most bank CSV layouts take at most 35 characters of the Latin set; a
/// number we send to a bank must survive that.
fn reference_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/')
}

id_type!(
    /// A merchant, as the payment company names it: `acme`, `shop-42`.
    MerchantId, "merchant id", 64, slug_char, "use lower-case letters, digits, '-' and '_'"
);
id_type!(
    /// The merchant's own number for a withdrawal order; never changes, unique per merchant.
    OrderNo, "order number", 35, reference_char, "use letters, digits and - _ . /"
);
id_type!(
    /// One attempt to pay an order; sent to the bank as the EndToEndId.
    PayoutNo, "payout number", 35, reference_char, "use letters, digits and - _ . /"
);
id_type!(
    /// A bank connection configured in `disburse.toml`.
    ChannelId, "channel id", 64, slug_char, "use lower-case letters, digits, '-' and '_'"
);
id_type!(
    /// A named person acting on the system; recorded in every audit event they cause.
    OperatorName, "operator", 64, |c: char| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'),
    "use letters, digits and - _ . @"
);

impl PayoutNo {
    /// Payout numbers come from a database sequence; the prefix tells a person at a glance that
    /// this is an attempt, not an order, when both appear on a bank statement.
    pub fn from_sequence(n: i64) -> PayoutNo {
        PayoutNo(format!("PO{n:010}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_refuse_ambiguous_text() {
        assert!(MerchantId::parse("acme-1").is_ok());
        for bad in ["", "Acme", "a b", "ä", &"x".repeat(65)] {
            assert!(MerchantId::parse(bad).is_err(), "{bad:?}");
        }
        assert!(OrderNo::parse("W-2026/11.25_1").is_ok());
        let err = OrderNo::parse("W 1").unwrap_err().to_string();
        assert!(err.starts_with("order number \"W 1\" is invalid"), "{err}");
        assert!(
            OrderNo::parse(&"1".repeat(36)).is_err(),
            "EndToEndId max 35"
        );
    }

    #[test]
    fn payout_numbers_are_fixed_width() {
        assert_eq!(PayoutNo::from_sequence(42).as_str(), "PO0000000042");
        assert!(PayoutNo::parse(PayoutNo::from_sequence(i64::MAX).as_str()).is_ok());
    }
}
