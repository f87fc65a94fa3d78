//! Small helpers: a stable hash, file-name-safe text, and the checks ISO 20022 schemas make.

use disburse_core::Money;

use crate::error::SandboxError;

/// FNV-1a, 64 bits: a hash that is the same on every machine and in every Rust version (unlike
/// `std`'s `DefaultHasher`), for seeds and references.
pub(crate) fn fnv64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// `text` with every character but ASCII letters, digits, `.`, `-` and `_` replaced by `_`, so
/// it can be part of a file name on any system.
pub(crate) fn file_name_part(text: &str) -> String {
    let safe: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if safe.is_empty() {
        "_".to_string()
    } else {
        safe
    }
}

/// ISO 20022 `Max35Text` (or `MaxNText`): 1 to `max` characters, none that XML cannot carry.
pub(crate) fn check_text(field: &str, text: &str, max: usize) -> Result<(), SandboxError> {
    let invalid = |message: String| SandboxError::Invalid {
        field: field.to_string(),
        value: text.chars().take(40).collect(),
        message,
    };
    let chars = text.chars().count();
    if text.trim().is_empty() {
        return Err(invalid("is empty".into()));
    }
    if chars > max {
        return Err(invalid(format!(
            "has {chars} characters; the schema allows at most {max}"
        )));
    }
    if let Some(c) = text.chars().find(|&c| {
        (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{FFFE}' | '\u{FFFF}')
    }) {
        return Err(invalid(format!(
            "contains the control character {c:?}, which XML cannot carry"
        )));
    }
    Ok(())
}

/// `ActiveOrHistoricCurrencyAndAmount`: not negative, at most 18 digits in all.
pub(crate) fn check_amount(field: &str, money: Money) -> Result<(), SandboxError> {
    let text = money.to_decimal_string();
    let digits = text.bytes().filter(u8::is_ascii_digit).count();
    let message = if money.amount_minor() < 0 {
        "is negative; ISO 20022 amounts carry their direction apart"
    } else if digits > 18 {
        "has more than the 18 digits ISO 20022 allows"
    } else {
        return Ok(());
    };
    Err(SandboxError::Invalid {
        field: field.to_string(),
        value: money.to_string(),
        message: message.to_string(),
    })
}

/// The schema pattern of an IBAN: `[A-Z]{2}[0-9]{2}[a-zA-Z0-9]{1,30}`.
pub(crate) fn check_iban(field: &str, iban: &str) -> Result<(), SandboxError> {
    let b = iban.as_bytes();
    let ok = (5..=34).contains(&b.len())
        && b[..2].iter().all(u8::is_ascii_uppercase)
        && b[2..4].iter().all(u8::is_ascii_digit)
        && b[4..].iter().all(u8::is_ascii_alphanumeric);
    if ok {
        Ok(())
    } else {
        Err(SandboxError::Invalid {
            field: field.to_string(),
            value: mask(iban),
            message: "is not an IBAN (two upper-case letters, two digits, then 1 to 30 letters \
                      or digits, no spaces)"
                .into(),
        })
    }
}

/// `DE89…3000`: account numbers never appear whole in an error.
fn mask(account: &str) -> String {
    let chars: Vec<char> = account.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use disburse_core::Currency;

    #[test]
    fn fnv_is_stable() {
        assert_eq!(fnv64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn file_names_are_safe() {
        assert_eq!(file_name_part("B-2025/01:x y"), "B-2025_01_x_y");
        assert_eq!(file_name_part(""), "_");
    }

    #[test]
    fn checks() {
        assert!(check_text("f", "abc", 35).is_ok());
        assert!(check_text("f", &"x".repeat(36), 35).is_err());
        assert!(check_text("f", " ", 35).is_err());
        assert!(check_text("f", "a\u{1}", 35).is_err());
        assert!(check_amount("f", Money::from_minor(1, Currency::Eur)).is_ok());
        assert!(check_amount("f", Money::from_minor(-1, Currency::Eur)).is_err());
        assert!(check_amount("f", Money::from_minor(i64::MAX, Currency::Eur)).is_err());
        assert!(check_iban("f", "DE89370400440532013000").is_ok());
        let err = check_iban("f", "de89 3704 0044 0532 0130 00").unwrap_err();
        assert!(!err.to_string().contains("0532"), "{err}");
    }
}
