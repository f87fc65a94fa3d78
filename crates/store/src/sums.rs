//! Sums of money that cannot overflow: what `ledger check` and `audit verify` add up over the
//! journal lines (balances themselves are rows, kept with checked arithmetic by `WriteTx`).
//!
//! SQLite's `SUM` of integers fails with "integer overflow" past `i64`, and a total computed in
//! `i64` anywhere else would too. Every such sum is therefore taken in two halves, the quotient
//! and the remainder of each amount by 2^32: each row adds less than 2^32 to either half, so
//! neither half can overflow before four billion rows. The halves are combined exactly in `i128`;
//! a total that does not fit in `i64` minor units is reported as what it is, never wrapped.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::Result;

const HALF: i128 = 1 << 32;

/// The select-list items `hi` and `lo` that sum `column` in halves (see the module doc).
pub(crate) fn split_sum(column: &str) -> String {
    format!(
        "CAST(COALESCE(SUM({column} / 4294967296), 0) AS BIGINT) AS hi, \
         CAST(COALESCE(SUM({column} % 4294967296), 0) AS BIGINT) AS lo"
    )
}

/// The exact total of a row selected with [`split_sum`].
pub(crate) fn read_split_sum(row: &AnyRow) -> Result<i128> {
    let hi: i64 = row.try_get("hi")?;
    let lo: i64 = row.try_get("lo")?;
    Ok(i128::from(hi) * HALF + i128::from(lo))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_recombine_exactly() {
        for x in [
            0i64,
            1,
            -1,
            4294967295,
            4294967296,
            -4294967297,
            i64::MAX,
            i64::MIN,
        ] {
            let (hi, lo) = (x / 4294967296, x % 4294967296);
            assert_eq!(i128::from(hi) * HALF + i128::from(lo), i128::from(x), "{x}");
        }
    }
}
