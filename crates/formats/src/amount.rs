//! Decimal text from bank files to [`Money`], never through a float.

use disburse_core::{Currency, Money};

/// Parses decimal text such as `"474.4"` or `"79255.00"` in `currency`.
///
/// Banks often pad amounts with zeros beyond the currency's minor unit (`79255.00` JPY); zeros are
/// dropped because that is exact. Any other excess digit is refused by [`Money::parse`]: rounding
/// money is never right. Negative amounts are refused: bank amounts carry their direction apart.
pub(crate) fn money_from_decimal(text: &str, currency: Currency) -> Result<Money, String> {
    let text = text.trim();
    if text.starts_with('-') {
        return Err(format!(
            "amount {text:?} is negative; amounts in bank files are unsigned"
        ));
    }
    let normalized = drop_padding_zeros(text, currency.exponent());
    Money::parse(&normalized, currency).map_err(|e| e.to_string())
}

/// Parses an ISO 4217 code and then the amount; the error names the unknown currency.
pub(crate) fn money_from_code(text: &str, code: Option<&str>) -> Result<Money, String> {
    let code = code.ok_or_else(|| format!("amount {text:?} has no currency (Ccy attribute)"))?;
    let currency = Currency::parse(code.trim()).map_err(|e| e.to_string())?;
    money_from_decimal(text, currency)
}

fn drop_padding_zeros(text: &str, exponent: u32) -> String {
    let Some((whole, fraction)) = text.split_once('.') else {
        return text.to_string();
    };
    let keep = exponent as usize;
    if fraction.len() <= keep || !fraction[keep..].bytes().all(|b| b == b'0') {
        return text.to_string();
    }
    if keep == 0 {
        whole.to_string()
    } else {
        format!("{whole}.{}", &fraction[..keep])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_zeros_are_dropped_other_digits_refused() {
        let m = |t: &str, c| money_from_decimal(t, c);
        assert_eq!(
            m("79255.00", Currency::Jpy),
            Ok(Money::from_minor(79255, Currency::Jpy))
        );
        assert_eq!(
            m("474.4", Currency::Chf),
            Ok(Money::from_minor(47440, Currency::Chf))
        );
        assert_eq!(
            m("1.2500", Currency::Eur),
            Ok(Money::from_minor(125, Currency::Eur))
        );
        assert_eq!(
            m("200000", Currency::Eur),
            Ok(Money::from_minor(20_000_000, Currency::Eur))
        );
        assert!(m("1.255", Currency::Eur)
            .unwrap_err()
            .contains("decimal places"));
        assert!(m("1.50", Currency::Jpy).is_err());
        assert!(m("-1.00", Currency::Eur).unwrap_err().contains("negative"));
        assert!(m("1e3", Currency::Eur).is_err());
    }

    #[test]
    fn unknown_or_missing_currency_is_named() {
        let err = money_from_code("1.00", Some("SEK")).unwrap_err();
        assert!(err.contains("SEK"), "{err}");
        let err = money_from_code("1.00", None).unwrap_err();
        assert!(err.contains("no currency"), "{err}");
    }
}
