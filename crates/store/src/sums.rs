//! Sums of money that cannot overflow.
//!
//! SQLite's `SUM` of integers fails with "integer overflow" past `i64`, and a total computed in
//! `i64` anywhere else would too. Every balance is therefore summed in two halves, the quotient
//! and the remainder of each amount by 2^32: each row adds less than 2^32 to either half, so
//! neither half can overflow before four billion rows. The halves are combined exactly in `i128`;
//! a total that does not fit in `i64` minor units is reported as what it is, never wrapped.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{Result, StoreError};

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

/// A total as `i64` minor units, or a clear error naming what it is the total of.
pub(crate) fn to_minor(total: i128, what: &str) -> Result<i64> {
    i64::try_from(total).map_err(|_| {
        StoreError::Corrupt(format!(
            "the total of {what} is {total} minor units, beyond what an amount can hold"
        ))
    })
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
