//! Discrepancies as payouts change: opened when a bank pays a different amount, closed when a
//! later journal reverses the difference, moved when a payout comes back after its difference
//! was settled, settled or reopened when a top-up finishes. Shared by bank results
//! (`payouts.rs`), corrections and the desk, in the caller's transaction; it calls none of them.

use disburse_core::{
    Currency, Journal, JournalKind, LedgerAccount, MerchantId, Money, PayoutState,
};
use disburse_store::{DiscrepancyRow, PayoutRow, WriteTx};
use serde_json::json;

use crate::error::{corrupt, refused};
use crate::{write_journal, Result};

/// Opens a discrepancy for a payout, in the caller's transaction.
pub(crate) async fn open_discrepancy(
    tx: &mut WriteTx<'_>,
    payout: &PayoutRow,
    direction: &str,
    amount_minor: i64,
    note: &str,
    at: &str,
) -> Result<DiscrepancyRow> {
    let row = DiscrepancyRow {
        id: tx.next_id("discrepancy").await?,
        merchant_id: payout.merchant_id.clone(),
        direction: direction.to_string(),
        amount_minor,
        currency: payout.currency.clone(),
        origin_payout_no: payout.payout_no.clone(),
        order_id: payout.order_id,
        status: "open".into(),
        opened_at: at.to_string(),
        settled_at: None,
        resolution: None,
        topup_payout_no: None,
        write_off_proposed_by: None,
        history: json!([{"at": at, "what": format!("opened: {note}")}]).to_string(),
        settled_minor: 0,
    };
    tx.insert(&row).await?;
    Ok(row)
}

/// Whether the merchant owes us the difference (it was paid too much, or twice) rather than we
/// the merchant (underpaid).
pub(crate) fn owed_to_us(direction: &str) -> bool {
    direction == "overpaid" || direction == "duplicate"
}

/// Appends to a discrepancy's history.
pub(crate) fn note(row: &mut DiscrepancyRow, at: &str, what: String) {
    let mut h: Vec<serde_json::Value> = serde_json::from_str(&row.history).unwrap_or_default();
    h.push(json!({"at": at, "what": what}));
    row.history = serde_json::Value::Array(h).to_string();
}

/// Closes the open discrepancies of a payout whose difference a later journal reversed.
pub(crate) async fn close_discrepancies_of(
    tx: &mut WriteTx<'_>,
    payout_no: &str,
    why: &str,
    at: &str,
) -> Result<()> {
    let open: Vec<DiscrepancyRow> = tx.unsettled_discrepancies_of_payout(payout_no).await?;
    for mut d in open {
        d.status = "settled".into();
        d.settled_at = Some(at.to_string());
        d.resolution = Some(format!("closed: {why}"));
        note(&mut d, at, format!("closed: {why}"));
        tx.update(&d).await?;
        tx.insert_outbox(
            &d.merchant_id,
            "discrepancy.resolved",
            &json!({"discrepancy": d.id, "resolution": d.resolution}),
            at,
        )
        .await?;
    }
    Ok(())
}

/// A payout whose amount difference was already (partly) settled — refunded, netted, added,
/// topped up or written off — was returned: the return's journal reverses the whole difference,
/// so what was settled is now owed the other way. It is moved to where it belongs (receivable or
/// shortfall, or back against the write-off) and tracked as a new discrepancy.
pub(crate) async fn returned_after_settlement(
    tx: &mut WriteTx<'_>,
    payout: &PayoutRow,
    at: &str,
) -> Result<()> {
    let all: Vec<DiscrepancyRow> = tx.amount_discrepancies_of_payout(&payout.payout_no).await?;
    let merchant = MerchantId::parse(&payout.merchant_id).map_err(corrupt)?;
    let currency = Currency::parse(&payout.currency).map_err(corrupt)?;
    for d in all {
        let closed_by_correction = d
            .resolution
            .as_deref()
            .is_some_and(|r| r.starts_with("closed:"));
        let settled = if d.status == "settled" && !closed_by_correction {
            d.amount_minor
        } else {
            d.settled_minor
        };
        if settled <= 0 {
            continue;
        }
        let amount = Money::from_minor(settled, currency);
        let written_off = d
            .resolution
            .as_deref()
            .is_some_and(|r| r.starts_with("written off"));
        let journal = if written_off {
            // The bank gave back what was written off: the loss is undone.
            Journal::transfer(
                JournalKind::DiscrepancySettled,
                LedgerAccount::MerchantReceivable(merchant.clone()),
                LedgerAccount::PlatformWriteOffs(currency),
                amount,
            )
        } else {
            // Overpaid then settled: we now owe it (shortfall). Underpaid then settled: the
            // merchant now owes it (receivable). The same journal serves both.
            Journal::transfer(
                JournalKind::DiscrepancySettled,
                LedgerAccount::MerchantReceivable(merchant.clone()),
                LedgerAccount::MerchantShortfall(merchant.clone()),
                amount,
            )
        }
        .map_err(refused)?;
        write_journal(
            tx,
            &journal,
            Some(&merchant),
            Some(payout.order_id),
            Some(payout.id),
            at,
        )
        .await?;
        if written_off {
            continue;
        }
        let direction = if d.direction == "overpaid" {
            "underpaid"
        } else {
            "overpaid"
        };
        let opened = open_discrepancy(
            tx,
            payout,
            direction,
            settled,
            &format!(
                "payout returned after {settled} minor units of discrepancy {} were settled",
                d.id
            ),
            at,
        )
        .await?;
        tx.insert_outbox(&payout.merchant_id, "discrepancy.opened", &json!({"discrepancy": opened.id, "direction": direction, "amount_minor": settled, "payout_no": payout.payout_no}), at).await?;
    }
    Ok(())
}

/// A top-up payout reached a final state: settle its discrepancy, or reopen it.
pub(crate) async fn top_up_finished(
    tx: &mut WriteTx<'_>,
    payout: &PayoutRow,
    to: PayoutState,
    at: &str,
) -> Result<()> {
    let Some(mut d) = tx.discrepancy_of_top_up(&payout.payout_no).await? else {
        return Ok(());
    };
    match to {
        PayoutState::Succeeded => {
            d.status = "settled".into();
            d.settled_at = Some(at.to_string());
            d.resolution = Some("topped_up".into());
            note(
                &mut d,
                at,
                format!("top-up payout {} paid", payout.payout_no),
            );
        }
        PayoutState::Failed | PayoutState::Returned => {
            d.status = "open".into();
            d.topup_payout_no = None;
            note(
                &mut d,
                at,
                format!("top-up payout {} {to}; open again", payout.payout_no),
            );
        }
        _ => return Ok(()),
    }
    Ok(tx.update(&d).await?)
}
