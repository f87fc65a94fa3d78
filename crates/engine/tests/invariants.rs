//! DESIGN §5.1 and §5.2 as properties: random sequences of what merchants, banks, operators and
//! time do to two merchants and a few orders (fund, withdraw, payouts on an API and a file
//! channel, batches, bank results right or wrong or repeated, cancels, account fixes, deadline
//! sweeps, settling discrepancies against the next payout); after every step the books, the audit
//! chain and the rule "no order is ever paid twice" are checked against everything stored.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use common::*;
use disburse_core::correction::Role;
use disburse_core::{
    BankResult, Currency, Money, OperatorName, OrderNo, OrderState, PayoutNo, PayoutState,
};
use disburse_engine::{EngineError, OrderRef, ResultSource, WithdrawRequest};
use disburse_store::testing::{TestBackend, TestDb};
use disburse_store::{DiscrepancyRow, JournalLineRow, JournalRow, OrderRow, PayoutRow};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};

const MERCHANTS: [&str; 2] = ["acme", "bolt"];
/// The same numbers for both merchants: an order is named by merchant and number.
const ORDERS: [&str; 3] = ["W1", "W2", "W3"];
const REASON_CODES: [&str; 4] = ["AC01", "AC04", "AM04", "MS03"];
const STEPS_MAX: usize = 40;
const OPERATOR: &str = "dora";

#[derive(Debug, Clone)]
enum Said {
    Accepted,
    /// Paid the instructed amount plus this (zero, or a random difference either way).
    Paid {
        difference_minor: i64,
    },
    Rejected(&'static str),
    Returned(&'static str),
}

#[derive(Debug, Clone)]
enum Op {
    Fund {
        merchant: usize,
        amount_minor: i64,
    },
    Withdraw {
        merchant: usize,
        order: usize,
        amount_minor: i64,
    },
    /// For one of the orders accepted so far, on sandbox-api (sent at once) or sepa-file
    /// (pending until its batch is sent).
    CreatePayout {
        order: Index,
        api: bool,
    },
    /// Sends every pending sepa-file payout as one pain.001 file.
    SendSepaBatch,
    /// A bank result for the latest payout, or for any payout created so far.
    Bank {
        latest: bool,
        payout: Index,
        said: Said,
    },
    /// Cancels one of the orders accepted so far.
    Cancel {
        order: Index,
    },
    SetBankAccount {
        merchant: usize,
        second_iban: bool,
    },
    Sweep,
    /// An operator settles a discrepancy against the merchant's next payouts: netted when the
    /// bank overpaid, added when it underpaid.
    SettleNext {
        discrepancy: Index,
    },
}

/// One step: time moves forward by `advance_minutes`, then the operation runs at the new time.
#[derive(Debug, Clone)]
struct Step {
    advance_minutes: i64,
    op: Op,
}

#[derive(Debug, Clone)]
struct Scenario {
    /// What each merchant has been collected before the first step.
    opening_minor: [i64; 2],
    steps: Vec<Step>,
}

fn said() -> impl Strategy<Value = Said> {
    let code = prop::sample::select(REASON_CODES.to_vec());
    prop_oneof![
        1 => Just(Said::Accepted),
        3 => Just(Said::Paid { difference_minor: 0 }),
        2 => (-30_000i64..=3_000).prop_map(|d| Said::Paid { difference_minor: d }),
        2 => code.clone().prop_map(Said::Rejected),
        1 => code.prop_map(Said::Returned),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let merchant = 0..MERCHANTS.len();
    prop_oneof![
        1 => (merchant.clone(), 1i64..=50_000)
            .prop_map(|(merchant, amount_minor)| Op::Fund { merchant, amount_minor }),
        3 => (merchant.clone(), 0..ORDERS.len(), 1i64..=60_000).prop_map(
            |(merchant, order, amount_minor)| Op::Withdraw { merchant, order, amount_minor }
        ),
        5 => (any::<Index>(), any::<bool>())
            .prop_map(|(order, api)| Op::CreatePayout { order, api }),
        2 => Just(Op::SendSepaBatch),
        7 => (any::<bool>(), any::<Index>(), said())
            .prop_map(|(latest, payout, said)| Op::Bank { latest, payout, said }),
        1 => any::<Index>().prop_map(|order| Op::Cancel { order }),
        1 => (merchant, any::<bool>())
            .prop_map(|(merchant, second_iban)| Op::SetBankAccount { merchant, second_iban }),
        3 => Just(Op::Sweep),
        1 => any::<Index>().prop_map(|discrepancy| Op::SettleNext { discrepancy }),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    let advance = prop_oneof![
        2 => Just(0i64),
        3 => 1i64..=24 * 60,
        2 => 24 * 60i64..=6 * 24 * 60,
    ];
    (advance, op()).prop_map(|(advance_minutes, op)| Step {
        advance_minutes,
        op,
    })
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        [0i64..=150_000, 0i64..=150_000],
        prop::collection::vec(step(), 5..=STEPS_MAX),
    )
        .prop_map(|(opening_minor, steps)| Scenario {
            opening_minor,
            steps,
        })
}

fn eur_minor(minor: i64) -> Money {
    Money::from_minor(minor, Currency::Eur)
}

fn operator() -> OperatorName {
    OperatorName::parse(OPERATOR).unwrap()
}

/// One of the orders accepted so far, named by merchant and number; `None` before the first.
async fn pick_order(app: &App, pick: &Index) -> Option<OrderRef> {
    let orders: Vec<OrderRow> = app.engine.db().fetch_all("ORDER BY id", &[]).await.unwrap();
    if orders.is_empty() {
        return None;
    }
    let o = &orders[pick.index(orders.len())];
    Some(OrderRef {
        order_no: OrderNo::parse(&o.order_no).unwrap(),
        merchant: Some(m(&o.merchant_id)),
    })
}

fn bank_result(said: &Said, payout: &PayoutRow, now: DateTime<Utc>) -> BankResult {
    match said {
        Said::Accepted => BankResult::Accepted {
            reference: Some(format!("ACK-{}", payout.payout_no)),
        },
        Said::Paid { difference_minor } => BankResult::Paid {
            amount: Some(eur_minor(payout.amount_minor + difference_minor)),
            instructed: None,
            reference: Some(format!("REF-{}", payout.payout_no)),
            value_date: Some(now.date_naive()),
        },
        Said::Rejected(code) => BankResult::rejected(code),
        Said::Returned(code) => BankResult::returned(code),
    }
}

/// Runs one operation. `Ok(true)` when it was carried out, `Ok(false)` when it was refused (or
/// had nothing to act on); a failure when the error is not a refusal.
async fn run_op(
    app: &App,
    op: &Op,
    now: DateTime<Utc>,
    payouts: &mut Vec<String>,
) -> Result<bool, TestCaseError> {
    let e = &app.engine;
    let result: disburse_engine::Result<()> = match op {
        Op::Fund {
            merchant,
            amount_minor,
        } => e
            .fund(
                &m(MERCHANTS[*merchant]),
                eur_minor(*amount_minor),
                Some("collections"),
                now,
                &ops(),
            )
            .await
            .map(drop),
        Op::Withdraw {
            merchant,
            order,
            amount_minor,
        } => e
            .withdraw(
                &WithdrawRequest {
                    merchant: m(MERCHANTS[*merchant]),
                    order_no: OrderNo::parse(ORDERS[*order]).unwrap(),
                    amount: eur_minor(*amount_minor),
                },
                now,
                &ops(),
            )
            .await
            .map(drop),
        Op::CreatePayout { order, api } => {
            let Some(order) = pick_order(app, order).await else {
                return Ok(false);
            };
            let channel = if *api { "sandbox-api" } else { "sepa-file" };
            e.create_payout(&order, Some(channel), now, &ops())
                .await
                .map(|start| payouts.extend(start.into_payout().map(|p| p.payout_no)))
        }
        Op::SendSepaBatch => e.create_batch("sepa-file", now, &ops()).await.map(drop),
        Op::Bank {
            latest,
            payout,
            said,
        } => {
            let no = match (payouts.last(), latest) {
                (None, _) => return Ok(false),
                (Some(last), true) => last.clone(),
                (Some(_), false) => payouts[payout.index(payouts.len())].clone(),
            };
            let row = e.db().payout_by_no(&no).await.unwrap().unwrap();
            e.apply_bank_result(
                &PayoutNo::parse(&no).unwrap(),
                &bank_result(said, &row, now),
                &ResultSource::Api,
                now,
                &ops(),
            )
            .await
            .map(drop)
        }
        Op::Cancel { order } => {
            let Some(order) = pick_order(app, order).await else {
                return Ok(false);
            };
            e.cancel_order(&order, "merchant asked", now, &ops())
                .await
                .map(drop)
        }
        Op::SetBankAccount {
            merchant,
            second_iban,
        } => {
            let iban = if *second_iban { IBAN_2 } else { IBAN_1 };
            e.set_bank_account(&m(MERCHANTS[*merchant]), &iban_account(iban), now, &ops())
                .await
                .map(|set| payouts.extend(set.retried))
        }
        Op::Sweep => e.sweep(now, &ops()).await.map(drop),
        Op::SettleNext { discrepancy } => {
            let all = e.discrepancies(false).await.unwrap();
            if all.is_empty() {
                return Ok(false);
            }
            let d = &all[discrepancy.index(all.len())];
            let how = if d.direction == "overpaid" {
                disburse_engine::Resolution::NetAgainstNext
            } else {
                disburse_engine::Resolution::AddToNext
            };
            e.resolve_discrepancy(d.id, &how, "merchant agreed", now, &operator())
                .await
                .map(drop)
        }
    };
    match result {
        Ok(()) => Ok(true),
        Err(
            EngineError::Refused(_) | EngineError::NotFound { .. } | EngineError::Invalid { .. },
        ) => Ok(false),
        Err(other) => Err(TestCaseError::fail(format!(
            "{op:?} at {now}: not a refusal but {other:?} ({other})"
        ))),
    }
}

/// Row counts that any write changes: a refused operation must leave them as they were.
async fn footprint(app: &App) -> Vec<i64> {
    let mut out = Vec::new();
    for table in [
        "audit_events",
        "journal_lines",
        "orders",
        "payouts",
        "bank_accounts",
        "discrepancies",
    ] {
        out.push(app.engine.db().count(table).await.unwrap());
    }
    out
}

/// Every invariant of §5.1 and §5.2, read back from what is stored.
async fn check_invariants(app: &App) -> Result<(), TestCaseError> {
    let db = app.engine.db();

    // §5.1: every journal balances; all balances sum to zero per currency.
    let ledger = db.ledger_check().await.unwrap();
    prop_assert!(ledger.is_ok(), "ledger check: {:?}", ledger);
    // §5.3, as a by-product: every change is covered by the chain.
    let findings = db.verify_audit().await.unwrap();
    prop_assert!(findings.is_empty(), "audit verify: {:?}", findings);

    let orders: Vec<OrderRow> = db.fetch_all("ORDER BY id", &[]).await.unwrap();
    let payouts: Vec<PayoutRow> = db.fetch_all("ORDER BY id", &[]).await.unwrap();
    let journals: Vec<JournalRow> = db.fetch_all("ORDER BY id", &[]).await.unwrap();
    let lines: Vec<JournalLineRow> = db.fetch_all("ORDER BY id", &[]).await.unwrap();
    let discrepancies: Vec<DiscrepancyRow> = db.fetch_all("ORDER BY id", &[]).await.unwrap();
    let journal_payout: BTreeMap<i64, Option<i64>> =
        journals.iter().map(|j| (j.id, j.payout_id)).collect();

    for o in &orders {
        // Top-ups (paid from the shortfall) are not attempts of the order; none are made here.
        let mine: Vec<&PayoutRow> = payouts.iter().filter(|p| p.order_id == o.id).collect();
        prop_assert!(
            mine.iter().all(|p| p.funded_from == "order"),
            "a top-up payout was made: {:?}",
            mine
        );
        let states: Vec<PayoutState> = mine
            .iter()
            .map(|p| PayoutState::parse(&p.state).unwrap())
            .collect();
        let owed = o.amount_minor + o.adjustment_minor;
        let name = format!(
            "order {}/{} ({}, {} {:+})",
            o.merchant_id, o.order_no, o.state, o.amount_minor, o.adjustment_minor
        );

        // §5.2: at most one live attempt.
        let live = states.iter().filter(|s| s.is_live()).count();
        prop_assert!(live <= 1, "{name}: {live} live payouts: {:?}", states);
        // §5.2: a new attempt needs every earlier one final.
        if let Some((_, earlier)) = states.split_last() {
            prop_assert!(
                earlier.iter().all(|s| s.is_final_failure()),
                "{name}: an earlier attempt is not final: {:?}",
                states
            );
        }
        // §3: the order's state follows its latest attempt (or netting paid all of it).
        let state = OrderState::parse(&o.state).unwrap();
        let paid_by_netting = state == OrderState::Paid && owed == 0;
        if state == OrderState::Cancelled {
            prop_assert!(
                states.iter().all(|s| s.is_final_failure()),
                "{name}: cancelled with payouts {:?}",
                states
            );
        } else if !paid_by_netting {
            let expected = states
                .last()
                .map_or(OrderState::Open, |s| OrderState::after_payout(*s));
            prop_assert_eq!(state, expected, "{}: payouts {:?}", name, states);
        }
        prop_assert!(owed >= 0, "{name}: netted below zero");

        // §5.2: the amount paid never exceeds what the order owes unless a discrepancy records
        // it (the bank overpaid: the excess is receivable from the merchant).
        let ids: BTreeSet<i64> = mine.iter().map(|p| p.id).collect();
        let paid: i64 = mine
            .iter()
            .filter(|p| p.state == "succeeded")
            .map(|p| p.paid_amount_minor.unwrap_or(0))
            .sum();
        let receivable_account = format!("merchant:{}:receivable", o.merchant_id);
        let overpaid: i64 = lines
            .iter()
            .filter(|l| {
                l.account == receivable_account
                    && journal_payout
                        .get(&l.journal_id)
                        .is_some_and(|p| p.is_some_and(|p| ids.contains(&p)))
            })
            .map(|l| l.amount_minor)
            .sum();
        prop_assert!(
            paid <= owed + overpaid,
            "{name}: paid {paid} with {overpaid} recorded as overpaid; payouts {:?}",
            mine
        );
        let succeeded = states
            .iter()
            .filter(|s| **s == PayoutState::Succeeded)
            .count();
        prop_assert!(succeeded <= 1, "{name}: {succeeded} succeeded payouts");
    }

    for merchant in MERCHANTS {
        let balance = |which: &'static str| {
            let account = format!("merchant:{merchant}:{which}");
            async move { db.balance(&account, "EUR").await.unwrap() }
        };
        let available = balance("available").await;
        let withdrawing = balance("withdrawing").await;
        let in_transit = balance("in_transit").await;
        let receivable = balance("receivable").await;
        let shortfall = balance("shortfall").await;

        // §4: what is reserved (withdrawing) or with a bank (in transit) is exactly what the
        // merchant's unfinished orders still owe it.
        let unfinished: i64 = orders
            .iter()
            .filter(|o| {
                o.merchant_id == merchant
                    && matches!(o.state.as_str(), "open" | "paying" | "action_required")
            })
            .map(|o| o.amount_minor + o.adjustment_minor)
            .sum();
        prop_assert_eq!(
            -(withdrawing + in_transit),
            unfinished,
            "{}: withdrawing {} + in transit {} against unfinished orders {:?}",
            merchant,
            withdrawing,
            in_transit,
            orders
                .iter()
                .filter(|o| o.merchant_id == merchant)
                .map(|o| (&o.order_no, &o.state, o.amount_minor, o.adjustment_minor))
                .collect::<Vec<_>>()
        );
        // Liabilities never turn into assets, nor assets into liabilities.
        prop_assert!(
            available <= 0 && withdrawing <= 0 && in_transit <= 0 && shortfall <= 0,
            "{merchant}: a liability has a debit balance: available {available}, withdrawing \
             {withdrawing}, in transit {in_transit}, shortfall {shortfall}"
        );
        prop_assert!(
            receivable >= 0,
            "{merchant}: receivable {receivable}: the merchant would owe us less than nothing"
        );

        // §1.4: a difference is tracked until it is settled: what the books hold as receivable
        // and shortfall is exactly what the unsettled discrepancies say is still open.
        let open = |direction: &'static str| -> i64 {
            discrepancies
                .iter()
                .filter(|d| {
                    d.merchant_id == merchant && d.direction == direction && d.status != "settled"
                })
                .map(|d| d.amount_minor - d.settled_minor)
                .sum()
        };
        let mine: Vec<_> = discrepancies
            .iter()
            .filter(|d| d.merchant_id == merchant)
            .map(|d| {
                (
                    &d.origin_payout_no,
                    &d.direction,
                    &d.status,
                    d.amount_minor,
                    d.settled_minor,
                )
            })
            .collect();
        prop_assert_eq!(
            receivable,
            open("overpaid"),
            "{}: receivable against open overpaid discrepancies {:?}",
            merchant,
            mine
        );
        prop_assert_eq!(
            -shortfall,
            open("underpaid"),
            "{}: shortfall against open underpaid discrepancies {:?}",
            merchant,
            mine
        );
    }
    Ok(())
}

async fn run_scenario(backend: TestBackend, s: &Scenario) -> Result<(), TestCaseError> {
    let Some((app, _guard)) = common::app(backend, "invariants").await else {
        return Ok(());
    };
    let result = run_scenario_on(&app, s).await;
    app.engine.db().close().await;
    result
}

async fn run_scenario_on(app: &App, s: &Scenario) -> Result<(), TestCaseError> {
    let e = &app.engine;
    e.add_operator(&operator(), Role::Admin, t0(), &operator())
        .await
        .unwrap();
    for (i, merchant) in MERCHANTS.iter().enumerate() {
        e.add_merchant(&m(merchant), "Acme GmbH", t0(), &ops())
            .await
            .unwrap();
        e.set_bank_account(&m(merchant), &iban_account(IBAN_1), t0(), &ops())
            .await
            .unwrap();
        if s.opening_minor[i] > 0 {
            e.fund(
                &m(merchant),
                eur_minor(s.opening_minor[i]),
                None,
                t0(),
                &ops(),
            )
            .await
            .unwrap();
        }
    }
    let mut now = t0();
    let mut payouts = Vec::new();
    for (i, step) in s.steps.iter().enumerate() {
        now += Duration::minutes(step.advance_minutes);
        let before = footprint(app).await;
        let done = run_op(app, &step.op, now, &mut payouts)
            .await
            .map_err(|e| TestCaseError::fail(format!("step {i}: {e}")))?;
        if !done {
            let after = footprint(app).await;
            prop_assert_eq!(
                &before,
                &after,
                "step {}: refused {:?} still wrote rows",
                i,
                step.op
            );
        }
        check_invariants(app)
            .await
            .map_err(|e| TestCaseError::fail(format!("after step {i} ({:?}): {e}", step.op)))?;
    }
    Ok(())
}

fn property(backend: TestBackend, cases: u32) {
    let mut runner = TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        max_shrink_iters: 400,
        ..ProptestConfig::default()
    });
    let outcome = runner.run(&scenario(), |s| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(run_scenario(backend, &s))
    });
    if let Err(e) = outcome {
        panic!("{e}");
    }
}

/// Found by the property above, then minimized: a bank paid a different amount on order A's
/// payout (a discrepancy opens; the difference goes to receivable or shortfall), and later
/// returned that payment, whose journal reverses the difference. The discrepancy is settled
/// against the merchant's next payout (order B) before or after the return. Either way, once the
/// bank has taken back all it paid, nothing is owed on A's difference: the books must not keep a
/// receivable or shortfall that no open discrepancy explains, and A must be paid its whole amount.
struct ReturnAfterDifference {
    merchant: &'static str,
    paid: &'static str,
    settle: disburse_engine::Resolution,
    settle_before_return: bool,
}

const RETURNS_AFTER_A_DIFFERENCE: &[ReturnAfterDifference] = &[
    ReturnAfterDifference {
        merchant: "acme",
        paid: "260.00",
        settle: disburse_engine::Resolution::NetAgainstNext,
        settle_before_return: false,
    },
    ReturnAfterDifference {
        merchant: "bolt",
        paid: "240.00",
        settle: disburse_engine::Resolution::AddToNext,
        settle_before_return: false,
    },
    ReturnAfterDifference {
        merchant: "cato",
        paid: "260.00",
        settle: disburse_engine::Resolution::NetAgainstNext,
        settle_before_return: true,
    },
    ReturnAfterDifference {
        merchant: "dune",
        paid: "240.00",
        settle: disburse_engine::Resolution::AddToNext,
        settle_before_return: true,
    },
];

/// Runs one case; returns what is wrong. After the return the bank has taken back all it paid on
/// A, so A owes the merchant its whole 250.00 again, and what the books hold as receivable and
/// shortfall must be exactly what open discrepancies say (§1.4: tracked until settled).
async fn check_return_after_difference(app: &App, c: &ReturnAfterDifference) -> Vec<String> {
    let e = &app.engine;
    let db = e.db();
    let (a, b) = (format!("{}-A", c.merchant), format!("{}-B", c.merchant));
    funded_merchant(e, c.merchant, "1000.00").await;
    withdraw(e, c.merchant, &a, "250.00").await;
    withdraw(e, c.merchant, &b, "100.00").await;
    let pay = |no: String, at| async move {
        e.create_payout(&order(&no), Some("sandbox-api"), at, &ops())
            .await
            .unwrap()
            .into_payout()
            .map(|p| p.amount_minor)
    };
    let first = e
        .create_payout(&order(&a), Some("sandbox-api"), t0(), &ops())
        .await
        .unwrap()
        .into_payout()
        .unwrap();
    apply(e, &first.payout_no, paid(c.paid), day(1))
        .await
        .unwrap();
    let mine = |all: Vec<DiscrepancyRow>| -> Vec<DiscrepancyRow> {
        all.into_iter()
            .filter(|d| d.merchant_id == c.merchant)
            .collect()
    };
    let opened = mine(e.discrepancies(true).await.unwrap());
    assert_eq!(opened.len(), 1, "the difference is recorded: {opened:?}");
    let settle = || async {
        // Refused once the discrepancy is closed; that is fine.
        let _ = e
            .resolve_discrepancy(
                opened[0].id,
                &c.settle,
                "merchant agreed",
                day(2),
                &operator(),
            )
            .await;
    };
    let mut wrong = Vec::new();
    let b_paid = if c.settle_before_return {
        settle().await;
        pay(b.clone(), day(2)).await
    } else {
        None
    };
    let returned = BankResult::returned("MS03");
    apply(e, &first.payout_no, returned, day(3)).await.unwrap();
    let b_paid = if c.settle_before_return {
        b_paid
    } else {
        settle().await;
        let b_paid = pay(b.clone(), day(4)).await;
        if b_paid != Some(10000) {
            wrong.push(format!(
                "{b} owes 100.00 and nothing else is owed, but its payout pays {b_paid:?}"
            ));
        }
        b_paid
    };
    let a_again = pay(a.clone(), day(4)).await;
    if a_again != Some(25000) {
        wrong.push(format!(
            "{a} owes 250.00 again, but its new payout pays {a_again:?}"
        ));
    }
    let balance = |which: &'static str| {
        let account = format!("merchant:{}:{which}", c.merchant);
        async move { db.balance(&account, "EUR").await.unwrap() }
    };
    let (receivable, shortfall) = (balance("receivable").await, balance("shortfall").await);
    let open = mine(e.discrepancies(true).await.unwrap());
    let open_sum = |direction: &str| -> i64 {
        open.iter()
            .filter(|d| d.direction == direction)
            .map(|d| d.amount_minor - d.settled_minor)
            .sum()
    };
    if receivable < 0 || shortfall > 0 {
        wrong.push(format!(
            "receivable {receivable} / shortfall {shortfall}: an asset or liability has the wrong sign"
        ));
    }
    if receivable != open_sum("overpaid") || -shortfall != open_sum("underpaid") {
        wrong.push(format!(
            "the books hold receivable {receivable} and shortfall {shortfall}, open discrepancies say {:?}",
            open.iter()
                .map(|d| (&d.direction, d.amount_minor - d.settled_minor, &d.status))
                .collect::<Vec<_>>()
        ));
    }
    let check = db.ledger_check().await.unwrap();
    assert!(check.is_ok(), "{check:?}");
    assert!(db.verify_audit().await.unwrap().is_empty());
    wrong
        .into_iter()
        .map(|w| {
            format!(
                "{} (paid {} for 250.00, {:?} {} the return; {b} paid {b_paid:?}): {w}",
                c.merchant,
                c.paid,
                c.settle,
                if c.settle_before_return {
                    "before"
                } else {
                    "after"
                }
            )
        })
        .collect()
}

both_backends!(
    a_returned_payout_leaves_no_difference_behind,
    |app: App| async move {
        app.engine
            .add_operator(&operator(), Role::Admin, t0(), &operator())
            .await
            .unwrap();
        let mut wrong = Vec::new();
        for c in RETURNS_AFTER_A_DIFFERENCE {
            wrong.extend(check_return_after_difference(&app, c).await);
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }
);

#[test]
fn random_histories_keep_the_books_and_never_pay_twice_sqlite() {
    property(TestBackend::Sqlite, 24);
}

#[test]
fn random_histories_keep_the_books_and_never_pay_twice_postgres() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Prints "NOT RUN on PostgreSQL" and returns None when no server answers.
    let available = rt.block_on(async {
        TestDb::fresh(
            TestBackend::Postgres,
            "random_histories_keep_the_books_and_never_pay_twice_postgres",
        )
        .await
        .is_some()
    });
    if available {
        property(TestBackend::Postgres, 6);
    }
}
