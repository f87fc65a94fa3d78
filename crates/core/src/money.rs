//! Money: integer minor units with their currency. There is no float anywhere in this module, and no
//! way to build a `Money` from one.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The ISO 4217 currencies Disburse pays out in, each with its minor-unit exponent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Currency {
    Eur,
    Usd,
    Gbp,
    Chf,
    Cny,
    Hkd,
    Sgd,
    Mmk,
    Jpy,
    Kwd,
    Bhd,
}

impl Currency {
    pub const ALL: [Currency; 11] = [
        Currency::Eur,
        Currency::Usd,
        Currency::Gbp,
        Currency::Chf,
        Currency::Cny,
        Currency::Hkd,
        Currency::Sgd,
        Currency::Mmk,
        Currency::Jpy,
        Currency::Kwd,
        Currency::Bhd,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Currency::Eur => "EUR",
            Currency::Usd => "USD",
            Currency::Gbp => "GBP",
            Currency::Chf => "CHF",
            Currency::Cny => "CNY",
            Currency::Hkd => "HKD",
            Currency::Sgd => "SGD",
            Currency::Mmk => "MMK",
            Currency::Jpy => "JPY",
            Currency::Kwd => "KWD",
            Currency::Bhd => "BHD",
        }
    }

    /// Number of decimal places of the minor unit (ISO 4217 "exponent").
    pub fn exponent(self) -> u32 {
        match self {
            Currency::Jpy => 0,
            Currency::Kwd | Currency::Bhd => 3,
            _ => 2,
        }
    }

    pub fn parse(code: &str) -> Result<Currency, MoneyError> {
        Currency::ALL
            .into_iter()
            .find(|c| c.code() == code)
            .ok_or_else(|| MoneyError::UnknownCurrency(code.to_string()))
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::parse(s)
    }
}

impl TryFrom<String> for Currency {
    type Error = MoneyError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Currency::parse(&s)
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.code().to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("unknown currency {0:?} (known: EUR USD GBP CHF CNY HKD SGD MMK JPY KWD BHD)")]
    UnknownCurrency(String),
    #[error("amount is empty")]
    Empty,
    #[error("amount {text:?} is not a plain decimal number: {why}")]
    Malformed { text: String, why: &'static str },
    #[error("amount {text:?} has {given} decimal places but {currency} has {allowed}")]
    TooManyDecimals {
        text: String,
        currency: Currency,
        given: usize,
        allowed: u32,
    },
    #[error("amount {0:?} is too large")]
    Overflow(String),
    #[error("amount must be greater than zero, got {0}")]
    NotPositive(Money),
    #[error("currency mismatch: {left} and {right}")]
    CurrencyMismatch { left: Currency, right: Currency },
    #[error("arithmetic overflow on {0}")]
    ArithmeticOverflow(Currency),
}

/// An amount in integer minor units (cents for EUR, yen for JPY, fils for KWD) of one currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    amount_minor: i64,
    currency: Currency,
}

impl Money {
    pub const fn from_minor(amount_minor: i64, currency: Currency) -> Money {
        Money {
            amount_minor,
            currency,
        }
    }

    pub const fn zero(currency: Currency) -> Money {
        Money::from_minor(0, currency)
    }

    pub fn amount_minor(&self) -> i64 {
        self.amount_minor
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }

    pub fn is_zero(&self) -> bool {
        self.amount_minor == 0
    }

    pub fn is_positive(&self) -> bool {
        self.amount_minor > 0
    }

    /// Strict parse of decimal text as written by a person or a bank: ASCII digits, an optional
    /// leading `-`, an optional `.` followed by at most the currency's exponent in digits. Refused:
    /// empty text, spaces, `+`, exponents (`1e3`), thousands separators (`1,000.00`), a trailing or
    /// leading dot, `-0`, non-ASCII digits (full-width, Arabic-Indic), and more decimals than the
    /// currency has (`100.255` in EUR) — rounding money silently is never right.
    pub fn parse(text: &str, currency: Currency) -> Result<Money, MoneyError> {
        let malformed = |why| MoneyError::Malformed {
            text: text.to_string(),
            why,
        };
        if text.is_empty() {
            return Err(MoneyError::Empty);
        }
        if text.trim() != text {
            return Err(malformed("it has spaces around it"));
        }
        let (negative, unsigned) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        if let Some(c) = unsigned.chars().find(|c| !c.is_ascii_digit() && *c != '.') {
            return Err(malformed(match c {
                ',' | '\'' | '_' | ' ' => "thousands separators are not accepted",
                'e' | 'E' => "exponent notation is not accepted",
                '+' | '-' => "only one leading minus sign is accepted",
                c if c.is_numeric() => "only ASCII digits 0-9 are accepted",
                _ => "it contains a character that is not a digit or a dot",
            }));
        }
        let (whole, fraction) = match unsigned.split_once('.') {
            Some((w, f)) => {
                if f.contains('.') {
                    return Err(malformed("it has more than one dot"));
                }
                if f.is_empty() {
                    return Err(malformed("nothing follows the dot"));
                }
                (w, f)
            }
            None => (unsigned, ""),
        };
        if whole.is_empty() {
            return Err(malformed("no digits before the dot"));
        }
        let exponent = currency.exponent();
        if fraction.len() > exponent as usize {
            return Err(MoneyError::TooManyDecimals {
                text: text.to_string(),
                currency,
                given: fraction.len(),
                allowed: exponent,
            });
        }
        let overflow = || MoneyError::Overflow(text.to_string());
        let mut minor: i64 = 0;
        let padded = fraction
            .chars()
            .chain(std::iter::repeat('0'))
            .take(exponent as usize);
        for c in whole.chars().chain(padded) {
            let digit = i64::from(c.to_digit(10).expect("checked ASCII digit above"));
            minor = minor
                .checked_mul(10)
                .and_then(|m| m.checked_add(digit))
                .ok_or_else(overflow)?;
        }
        if negative {
            if minor == 0 {
                return Err(malformed("negative zero"));
            }
            minor = -minor;
        }
        Ok(Money::from_minor(minor, currency))
    }

    /// Like [`Money::parse`], and the amount must be greater than zero (what a withdrawal needs).
    pub fn parse_positive(text: &str, currency: Currency) -> Result<Money, MoneyError> {
        let money = Money::parse(text, currency)?;
        if money.amount_minor <= 0 {
            return Err(MoneyError::NotPositive(money));
        }
        Ok(money)
    }

    fn same_currency(&self, other: &Money) -> Result<(), MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::CurrencyMismatch {
                left: self.currency,
                right: other.currency,
            });
        }
        Ok(())
    }

    pub fn checked_add(&self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(&other)?;
        self.amount_minor
            .checked_add(other.amount_minor)
            .map(|m| Money::from_minor(m, self.currency))
            .ok_or(MoneyError::ArithmeticOverflow(self.currency))
    }

    pub fn checked_sub(&self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(&other)?;
        self.amount_minor
            .checked_sub(other.amount_minor)
            .map(|m| Money::from_minor(m, self.currency))
            .ok_or(MoneyError::ArithmeticOverflow(self.currency))
    }

    pub fn checked_neg(&self) -> Result<Money, MoneyError> {
        self.amount_minor
            .checked_neg()
            .map(|m| Money::from_minor(m, self.currency))
            .ok_or(MoneyError::ArithmeticOverflow(self.currency))
    }

    /// The smaller of two amounts of one currency.
    pub fn min(&self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(&other)?;
        Ok(if other.amount_minor < self.amount_minor {
            other
        } else {
            *self
        })
    }

    /// Decimal text without the currency: `1234.50`, `-0.05`, `100` (JPY), `1.250` (KWD).
    pub fn to_decimal_string(&self) -> String {
        let exponent = self.currency.exponent();
        let sign = if self.amount_minor < 0 { "-" } else { "" };
        let abs = self.amount_minor.unsigned_abs();
        if exponent == 0 {
            return format!("{sign}{abs}");
        }
        let scale = 10u64.pow(exponent);
        format!(
            "{sign}{}.{:0width$}",
            abs / scale,
            abs % scale,
            width = exponent as usize
        )
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.to_decimal_string(), self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check_ok(text: &str, currency: Currency, minor: i64) {
        assert_eq!(
            Money::parse(text, currency),
            Ok(Money::from_minor(minor, currency)),
            "{text}"
        );
    }

    fn check_err(text: &str, currency: Currency, needle: &str) {
        let err = Money::parse(text, currency).expect_err(text).to_string();
        assert!(
            err.contains(needle),
            "{text:?}: {err:?} should say {needle:?}"
        );
    }

    #[test]
    fn parses_plain_decimals_per_exponent() {
        check_ok("250.00", Currency::Eur, 25000);
        check_ok("250", Currency::Eur, 25000);
        check_ok("0.5", Currency::Eur, 50);
        check_ok("-12.34", Currency::Usd, -1234);
        check_ok("1000", Currency::Jpy, 1000);
        check_ok("1.250", Currency::Kwd, 1250);
        check_ok("0.001", Currency::Bhd, 1);
        check_ok("9223372036854775.807", Currency::Kwd, i64::MAX);
    }

    #[test]
    fn refuses_what_a_person_might_mean_differently() {
        check_err("100.255", Currency::Eur, "3 decimal places but EUR has 2");
        check_err("1.5", Currency::Jpy, "JPY has 0");
        check_err("1e3", Currency::Eur, "exponent");
        check_err("-0", Currency::Eur, "negative zero");
        check_err("-0.00", Currency::Eur, "negative zero");
        check_err(" 1", Currency::Eur, "spaces");
        check_err("1 ", Currency::Eur, "spaces");
        check_err("1,000.00", Currency::Eur, "thousands");
        check_err("１００", Currency::Eur, "ASCII digits");
        check_err("١٠٠", Currency::Eur, "ASCII digits");
        check_err("", Currency::Eur, "empty");
        check_err("+1", Currency::Eur, "minus");
        check_err("1.", Currency::Eur, "nothing follows the dot");
        check_err(".5", Currency::Eur, "no digits before the dot");
        check_err("1.2.3", Currency::Eur, "more than one dot");
        check_err("--1", Currency::Eur, "minus");
        check_err("abc", Currency::Eur, "not a digit");
        check_err("92233720368547758.08", Currency::Eur, "too large");
    }

    #[test]
    fn unknown_currency_is_named() {
        let err = Currency::parse("XYZ").unwrap_err().to_string();
        assert!(err.contains("XYZ"), "{err}");
        assert!(Currency::parse("eur").is_err(), "codes are upper case");
    }

    #[test]
    fn positive_parse_refuses_zero_and_negative() {
        assert!(Money::parse_positive("0", Currency::Eur).is_err());
        assert!(Money::parse_positive("-1", Currency::Eur).is_err());
        assert!(Money::parse_positive("0.01", Currency::Eur).is_ok());
    }

    #[test]
    fn arithmetic_is_checked() {
        let eur = Money::from_minor(100, Currency::Eur);
        let usd = Money::from_minor(100, Currency::Usd);
        assert!(matches!(
            eur.checked_add(usd),
            Err(MoneyError::CurrencyMismatch { .. })
        ));
        assert_eq!(
            Money::from_minor(i64::MAX, Currency::Eur).checked_add(eur),
            Err(MoneyError::ArithmeticOverflow(Currency::Eur))
        );
        assert_eq!(
            eur.checked_sub(Money::from_minor(30, Currency::Eur)),
            Ok(Money::from_minor(70, Currency::Eur))
        );
        assert_eq!(
            Money::from_minor(i64::MIN, Currency::Eur).checked_neg(),
            Err(MoneyError::ArithmeticOverflow(Currency::Eur))
        );
    }

    #[test]
    fn displays_with_the_currency_exponent() {
        assert_eq!(
            Money::from_minor(123450, Currency::Eur).to_string(),
            "1234.50 EUR"
        );
        assert_eq!(
            Money::from_minor(-5, Currency::Eur).to_decimal_string(),
            "-0.05"
        );
        assert_eq!(
            Money::from_minor(100, Currency::Jpy).to_decimal_string(),
            "100"
        );
        assert_eq!(
            Money::from_minor(1250, Currency::Kwd).to_decimal_string(),
            "1.250"
        );
    }

    proptest! {
        #[test]
        fn display_then_parse_round_trips(minor in (i64::MIN + 1)..i64::MAX, idx in 0usize..11) {
            let currency = Currency::ALL[idx];
            let money = Money::from_minor(minor, currency);
            prop_assume!(minor != 0 || !money.to_decimal_string().starts_with('-'));
            prop_assert_eq!(Money::parse(&money.to_decimal_string(), currency), Ok(money));
        }
    }
}
