//! The operator console over HTTP, as a browser without JavaScript uses it: sign-in and its
//! cookie, CSRF on every form, roles and four eyes refused on the server, sign-out, the queue's
//! filters and pages. On SQLite and (when a server answers) PostgreSQL. The real browser plays the
//! same desk in crates/cli/tests/console_browser.rs.

#[path = "service/common.rs"]
mod common;

use chrono::Utc;
use common::{desk, TestApp};
use disburse_core::correction::Role;
use disburse_core::{BankResult, OrderNo, PayoutNo};
use disburse_engine::{OrderRef, ResultSource};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;

struct Browser {
    base: String,
    client: reqwest::Client,
    cookies: Vec<(String, String)>,
}

struct Page {
    status: u16,
    location: String,
    set_cookies: Vec<String>,
    body: String,
}

impl Page {
    /// The CSRF token the page's forms carry.
    fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let at = self.body.find(marker).expect("a form with a CSRF token") + marker.len();
        self.body[at..].split('"').next().unwrap().to_string()
    }
}

impl Browser {
    fn new(app: &TestApp) -> Browser {
        Browser {
            base: app.base.clone(),
            client: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .unwrap(),
            cookies: Vec::new(),
        }
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Page {
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let r = req.header(COOKIE, cookie).send().await.expect("request");
        let set_cookies: Vec<String> = r
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        for c in &set_cookies {
            let (pair, _) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = pair.split_once('=').unwrap();
            self.cookies.retain(|(name, _)| name != k);
            if !v.is_empty() && !c.contains("Max-Age=0") {
                self.cookies.push((k.to_string(), v.to_string()));
            }
        }
        Page {
            status: r.status().as_u16(),
            location: r
                .headers()
                .get(LOCATION)
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default(),
            set_cookies,
            body: r.text().await.unwrap(),
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let req = self.client.get(format!("{}{path}", self.base));
        self.send(req).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let req = self.client.post(format!("{}{path}", self.base)).form(form);
        self.send(req).await
    }

    async fn post_all(&mut self, path: &str, form: Vec<(String, String)>) -> Page {
        let req = self.client.post(format!("{}{path}", self.base)).form(&form);
        self.send(req).await
    }

    async fn sign_in(&mut self, name: &str) -> Page {
        let form = self.get("/console/login").await;
        let csrf = form.csrf();
        let password = format!("{name}-correct-horse-battery");
        self.post(
            "/console/login",
            &[("csrf", &csrf), ("name", name), ("password", &password)],
        )
        .await
    }

    /// The CSRF token of the signed-in session, from a page's forms.
    async fn csrf(&mut self) -> String {
        self.get("/console/corrections").await.csrf()
    }
}

/// People with console passwords (made through the operator API helper, which sets them).
async fn people(app: &TestApp, who: &[(&str, Role)]) {
    for (name, role) in who {
        app.operator(name, *role).await;
    }
}

/// A payout on the sandbox channel that the bank "rejected" (a person recorded it).
async fn failed_payout(app: &TestApp, order_no: &str, reason: &str) -> String {
    let order = OrderRef {
        order_no: OrderNo::parse(order_no).unwrap(),
        merchant: None,
    };
    let p = app
        .engine
        .create_payout(&order, Some("sandbox-api"), Utc::now(), &desk())
        .await
        .unwrap()
        .into_payout()
        .unwrap();
    app.engine
        .apply_bank_result(
            &PayoutNo::parse(&p.payout_no).unwrap(),
            &BankResult::Rejected {
                reason_code: reason.into(),
                reason_text: None,
                instructed: None,
            },
            &ResultSource::Manual {
                evidence: "bank notice".into(),
            },
            Utc::now(),
            &desk(),
        )
        .await
        .unwrap();
    p.payout_no
}

async fn corrections_with_status(app: &TestApp, status: &str) -> usize {
    app.engine.corrections(Some(status)).await.unwrap().len()
}

both_backends!(sign_in_cookie_and_its_csrf, |app: TestApp| async move {
    people(&app, &[("ada", Role::Admin)]).await;
    let mut b = Browser::new(&app);
    // Not signed in: every page leads to the sign-in form.
    let home = b.get("/console/exceptions").await;
    assert_eq!(
        (home.status, home.location.as_str()),
        (303, "/console/login")
    );
    let form = b.get("/console/login").await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("<link rel=\"icon\" href=\"data:,\">"));
    let csrf = form.csrf();
    let password = "ada-correct-horse-battery";
    // The sign-in form's own token is required (double submit: cookie and field).
    let without = b
        .post("/console/login", &[("name", "ada"), ("password", password)])
        .await;
    assert_eq!(without.status, 403, "{}", without.body);
    assert!(without
        .set_cookies
        .iter()
        .all(|c| !c.starts_with("disburse_console=")));
    let wrong = b
        .post(
            "/console/login",
            &[
                ("csrf", &csrf),
                ("name", "ada"),
                ("password", "not-the-password"),
            ],
        )
        .await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("Unknown name or wrong password."));
    assert!(wrong
        .set_cookies
        .iter()
        .all(|c| !c.starts_with("disburse_console=")));
    let csrf = wrong.csrf();
    let ok = b
        .post(
            "/console/login",
            &[("csrf", &csrf), ("name", "ada"), ("password", password)],
        )
        .await;
    assert_eq!(
        (ok.status, ok.location.as_str()),
        (303, "/console/exceptions")
    );
    let session = ok
        .set_cookies
        .iter()
        .find(|c| c.starts_with("disburse_console="))
        .expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(session.contains(attribute), "{session}");
    }
    assert!(!session.contains("Secure"), "plain HTTP: {session}");
    let page = b.get("/console/exceptions").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("ada"));
    // Behind a TLS proxy the cookie is Secure.
    let mut tls = Browser::new(&app);
    let form = tls.get("/console/login").await;
    let req = tls
        .client
        .post(format!("{}/console/login", app.base))
        .header("x-forwarded-proto", "https")
        .form(&[
            ("csrf", form.csrf().as_str()),
            ("name", "ada"),
            ("password", password),
        ]);
    let secure = tls.send(req).await;
    assert_eq!(secure.status, 303);
    assert!(secure
        .set_cookies
        .iter()
        .any(|c| c.starts_with("disburse_console=") && c.ends_with("; Secure")));
});

both_backends!(
    forms_without_the_session_token_are_refused,
    |app: TestApp| async move {
        people(&app, &[("olga", Role::Operator)]).await;
        let key = app.merchant("acme", 100_000).await;
        app.withdraw(&key, "W1", 20_000).await;
        let payout = failed_payout(&app, "W1", "MS03").await;
        let mut b = Browser::new(&app);
        b.sign_in("olga").await;
        let proposal = [
            ("payout_no", payout.as_str()),
            ("kind", "confirm_succeeded"),
            ("amount", "200.00"),
            ("bank_reference", "BOOK-1"),
            ("reason", "the bank says so"),
            ("evidence", "letter"),
        ];
        let without = b.post("/console/corrections", &proposal).await;
        assert_eq!(without.status, 403);
        assert!(without.body.contains("did not come from this console"));
        let mut forged = proposal.to_vec();
        let other = "f".repeat(64);
        forged.push(("csrf", &other));
        assert_eq!(b.post("/console/corrections", &forged).await.status, 403);
        assert_eq!(b.post("/console/logout", &[]).await.status, 403);
        assert_eq!(corrections_with_status(&app, "proposed").await, 0);
        // With the token the same form is taken.
        let csrf = b.csrf().await;
        let mut good = proposal.to_vec();
        good.push(("csrf", &csrf));
        let taken = b.post("/console/corrections", &good).await;
        assert_eq!(
            (taken.status, taken.location.as_str()),
            (303, "/console/corrections?done=proposed"),
            "{}",
            taken.body
        );
        assert_eq!(corrections_with_status(&app, "proposed").await, 1);
        // A checker rejects it, saying why; without a reason the engine refuses.
        people(&app, &[("bert", Role::Approver)]).await;
        let id = app.engine.corrections(Some("proposed")).await.unwrap()[0].id;
        let mut bert = Browser::new(&app);
        bert.sign_in("bert").await;
        let bcsrf = bert.csrf().await;
        let path = format!("/console/corrections/{id}/reject");
        let no_reason = bert.post(&path, &[("csrf", &bcsrf), ("reason", " ")]).await;
        assert_eq!(no_reason.status, 422, "{}", no_reason.body);
        assert!(no_reason
            .body
            .contains("say why the correction is rejected"));
        let rejected = bert
            .post(
                &path,
                &[
                    ("csrf", &bcsrf),
                    ("reason", "the statement is of another day"),
                ],
            )
            .await;
        assert_eq!(rejected.location, "/console/corrections?done=rejected");
        let c = &app.engine.corrections(Some("rejected")).await.unwrap()[0];
        assert_eq!(c.decided_by.as_deref(), Some("bert"));
        assert_eq!(
            c.decision_reason.as_deref(),
            Some("the statement is of another day")
        );
        let page = bert.get("/console/corrections?done=rejected").await;
        assert!(page.body.contains("Correction rejected."));
        assert!(page.body.contains("bert: the statement is of another day"));
    }
);

both_backends!(
    roles_and_four_eyes_are_refused_on_the_server,
    |app: TestApp| async move {
        people(
            &app,
            &[
                ("vera", Role::Viewer),
                ("olga", Role::Operator),
                ("bert", Role::Approver),
                ("cora", Role::Approver),
            ],
        )
        .await;
        let key = app.merchant("acme", 100_000).await;
        app.withdraw(&key, "W1", 20_000).await;
        let payout = failed_payout(&app, "W1", "MS03").await;
        let proposal = |csrf: &str| {
            vec![
                ("payout_no".to_string(), payout.clone()),
                ("kind".to_string(), "confirm_succeeded".to_string()),
                ("amount".to_string(), "200.00".to_string()),
                ("bank_reference".to_string(), "BOOK-1".to_string()),
                (
                    "reason".to_string(),
                    "the statement shows it paid".to_string(),
                ),
                ("evidence".to_string(), "camt.053 of the day".to_string()),
                ("csrf".to_string(), csrf.to_string()),
            ]
        };
        // A viewer reads but may not propose.
        let mut vera = Browser::new(&app);
        vera.sign_in("vera").await;
        let page = vera.get("/console/corrections").await;
        assert!(!page.body.contains("action=\"/console/corrections\""));
        let csrf = page.csrf();
        let refused = vera.post_all("/console/corrections", proposal(&csrf)).await;
        assert_eq!(refused.status, 403);
        assert!(refused.body.contains("may not propose"));
        assert_eq!(corrections_with_status(&app, "proposed").await, 0);
        // An approver proposes; approving their own is refused, another approver may.
        let mut bert = Browser::new(&app);
        bert.sign_in("bert").await;
        let csrf = bert.csrf().await;
        let proposed = bert.post_all("/console/corrections", proposal(&csrf)).await;
        assert_eq!(proposed.status, 303, "{}", proposed.body);
        let id = app.engine.corrections(Some("proposed")).await.unwrap()[0].id;
        let own = bert
            .post(
                &format!("/console/corrections/{id}/approve"),
                &[("csrf", &csrf)],
            )
            .await;
        assert_eq!(own.status, 403);
        assert!(own.body.contains("another person must decide it"));
        let own_reject = bert
            .post(
                &format!("/console/corrections/{id}/reject"),
                &[("csrf", &csrf), ("reason", "mine")],
            )
            .await;
        assert_eq!(own_reject.status, 403);
        // An operator may not decide at all.
        let mut olga = Browser::new(&app);
        olga.sign_in("olga").await;
        let ocsrf = olga.csrf().await;
        let op = olga
            .post(
                &format!("/console/corrections/{id}/approve"),
                &[("csrf", &ocsrf)],
            )
            .await;
        assert_eq!(op.status, 403);
        assert!(op.body.contains("may not approve"));
        assert_eq!(corrections_with_status(&app, "proposed").await, 1);
        // The waiting list shows it to the other approver, who approves.
        let mut cora = Browser::new(&app);
        cora.sign_in("cora").await;
        let waiting = cora.get("/console/corrections").await;
        assert!(waiting
            .body
            .contains(&format!("action=\"/console/corrections/{id}/approve\"")));
        let ccsrf = waiting.csrf();
        let ok = cora
            .post(
                &format!("/console/corrections/{id}/approve"),
                &[("csrf", &ccsrf)],
            )
            .await;
        assert_eq!(
            (ok.status, ok.location.as_str()),
            (303, "/console/corrections?done=approved"),
            "{}",
            ok.body
        );
        assert_eq!(corrections_with_status(&app, "applied").await, 1);
        let order = cora.get("/console/orders/acme/W1").await;
        assert_eq!(order.status, 200);
        assert!(order.body.contains("payout.corrected.confirm_succeeded"));
        assert!(order.body.contains("evidence: camt.053 of the day"));
    }
);

both_backends!(
    sign_out_ends_the_session_everywhere,
    |app: TestApp| async move {
        people(&app, &[("ada", Role::Admin)]).await;
        let mut b = Browser::new(&app);
        let signed = b.sign_in("ada").await;
        let token = signed
            .set_cookies
            .iter()
            .find_map(|c| c.strip_prefix("disburse_console="))
            .and_then(|c| c.split(';').next())
            .unwrap()
            .to_string();
        // The console's token is an operator session: the API knows it until sign-out.
        assert_eq!(app.get("/ops/v1/me", &token).await.status, 200);
        let csrf = b.csrf().await;
        let out = b.post("/console/logout", &[("csrf", &csrf)]).await;
        assert_eq!((out.status, out.location.as_str()), (303, "/console/login"));
        assert!(out
            .set_cookies
            .iter()
            .any(|c| c.starts_with("disburse_console=;") && c.contains("Max-Age=0")));
        assert_eq!(app.get("/ops/v1/me", &token).await.status, 401);
        // Even a browser that kept the cookie is signed out.
        b.cookies.push(("disburse_console".into(), token));
        let after = b.get("/console/exceptions").await;
        assert_eq!(
            (after.status, after.location.as_str()),
            (303, "/console/login")
        );
    }
);

both_backends!(exceptions_filter_and_page, |app: TestApp| async move {
    people(&app, &[("vera", Role::Viewer)]).await;
    let key = app.merchant("acme", 10_000_000).await;
    // 27 failed payouts: 25 on the first page, 2 on the second.
    for n in 1..=27 {
        let no = format!("W{n}");
        app.withdraw(&key, &no, 1_000).await;
        failed_payout(&app, &no, "MS03").await;
    }
    let mut b = Browser::new(&app);
    b.sign_in("vera").await;
    let rows = |p: &Page| p.body.matches("<tr data-kind=").count();
    let first = b.get("/console/exceptions").await;
    assert_eq!(first.status, 200);
    assert_eq!(rows(&first), 25);
    assert!(first.body.contains("1 / 2 · 27"));
    assert!(first.body.contains("rel=\"next\""));
    let second = b.get("/console/exceptions?page=2").await;
    assert_eq!(rows(&second), 2);
    assert!(second.body.contains("rel=\"prev\""));
    let kind = b.get("/console/exceptions?kind=payout_failed").await;
    assert_eq!(rows(&kind), 25);
    assert!(kind.body.contains("1 / 2 · 27"));
    let none = b.get("/console/exceptions?kind=conflict").await;
    assert_eq!(rows(&none), 0);
    let other = b.get("/console/exceptions?merchant=zeta").await;
    assert_eq!(rows(&other), 0);
    let acme = b.get("/console/exceptions?merchant=acme&page=2").await;
    assert_eq!(rows(&acme), 2);
    // The filtered list exports whole (not a page), as CSV.
    assert!(kind
        .body
        .contains("href=\"/console/exceptions.csv?kind=payout_failed&amp;merchant=\""));
    let csv = b
        .get("/console/exceptions.csv?kind=payout_failed&merchant=acme")
        .await;
    assert_eq!(csv.status, 200);
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(lines.len(), 28, "a header and 27 items: {}", csv.body);
    assert!(
        lines[0].starts_with("id,kind,age_hours,amount_minor,currency,merchant,order_no,payout_no")
    );
    assert!(
        lines[1..]
            .iter()
            .all(|l| l.contains(",payout_failed,") && l.contains(",1000,EUR,acme,")),
        "{}",
        csv.body
    );
    let none = b.get("/console/exceptions.csv?merchant=zeta").await;
    assert_eq!(none.body.lines().count(), 1);
    // Each item links to its order and says what it needs.
    assert!(first.body.contains("href=\"/console/orders/acme/W1\""));
    assert!(first.body.contains("pay again"));
    // Search by payout number opens the order at the payout; by order number too.
    let by_payout = b.get("/console/search?q=PO0000000002").await;
    assert_eq!(
        (by_payout.status, by_payout.location.as_str()),
        (303, "/console/orders/acme/W2#PO0000000002")
    );
    let by_order = b.get("/console/search?q=W3").await;
    assert_eq!(by_order.location, "/console/orders/acme/W3");
    let nothing = b.get("/console/search?q=NOPE").await;
    assert_eq!(nothing.status, 200);
    assert!(nothing.body.contains("Nothing found."));
    // Chinese from the browser's Accept-Language.
    let req = b
        .client
        .get(format!("{}/console/exceptions", app.base))
        .header("accept-language", "zh-CN,zh;q=0.9,en;q=0.5");
    let zh = b.send(req).await;
    assert!(zh.body.contains("<html lang=\"zh-CN\">"));
    assert!(zh.body.contains("异常队列"));
});

both_backends!(sign_in_is_guarded_like_the_api, |app: TestApp| async move {
    people(&app, &[("ada", Role::Admin)]).await;
    let mut b = Browser::new(&app);
    let mut form = b.get("/console/login").await;
    // Five wrong passwords for a name: each refused (401) and audited; then 429 with Retry-After.
    for _ in 0..5 {
        let csrf = form.csrf();
        form = b
            .post(
                "/console/login",
                &[
                    ("csrf", &csrf),
                    ("name", "ada"),
                    ("password", "wrong-password-x"),
                ],
            )
            .await;
        assert_eq!(form.status, 401, "{}", form.body);
    }
    let failed = app
        .engine
        .db()
        .count_where("audit_events", "action = 'operator.login_failed'")
        .await
        .unwrap();
    assert_eq!(failed, 5);
    let csrf = form.csrf();
    let req = b.client.post(format!("{}/console/login", app.base)).form(&[
        ("csrf", csrf.as_str()),
        ("name", "ada"),
        ("password", "ada-correct-horse-battery"),
    ]);
    let cookie = b
        .cookies
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ");
    let throttled = req.header(COOKIE, cookie).send().await.unwrap();
    assert_eq!(throttled.status().as_u16(), 429);
    assert!(throttled.headers().get("retry-after").is_some());
    let body = throttled.text().await.unwrap();
    assert!(body.contains("too many failed logins"), "{body}");
});

/// Starts a payout of an order on a channel, as of a time.
async fn payout_on(app: &TestApp, order_no: &str, channel: &str, at: chrono::DateTime<Utc>) {
    let order = OrderRef {
        order_no: OrderNo::parse(order_no).unwrap(),
        merchant: None,
    };
    app.engine
        .create_payout(&order, Some(channel), at, &desk())
        .await
        .unwrap()
        .into_payout()
        .unwrap();
}

both_backends!(
    overview_shows_transit_exceptions_lag_and_today,
    |app: TestApp| async move {
        people(&app, &[("vera", Role::Viewer)]).await;
        let key = app.merchant("acme", 1_000_000).await;
        for (no, minor) in [("W1", 10_000), ("W2", 25_050), ("W3", 7_000), ("W4", 3_000)] {
            app.withdraw(&key, no, minor).await;
        }
        let now = Utc::now();
        let yesterday = now - chrono::Duration::hours(30);
        // W2 was sent 30 hours ago in yesterday's batch; W1 sent now in today's; W4 only made.
        payout_on(&app, "W2", "sepa-file", yesterday).await;
        let old = app
            .engine
            .create_batch("sepa-file", yesterday, &desk())
            .await
            .unwrap()
            .unwrap()
            .0;
        payout_on(&app, "W1", "sepa-file", now).await;
        let today = app
            .engine
            .create_batch("sepa-file", now, &desk())
            .await
            .unwrap()
            .unwrap()
            .0;
        payout_on(&app, "W4", "sepa-file", now).await;
        failed_payout(&app, "W3", "MS03").await;

        let mut b = Browser::new(&app);
        b.sign_in("vera").await;
        let page = b.get("/console").await;
        assert_eq!(page.status, 200, "{}", page.body);
        let body = &page.body;
        // Money in transit on sepa-file: 130.00 under an hour (W1 sent, W4 pending), 250.50 at
        // 1–3 days; 380.50 in all. The failed sandbox payout is not in transit.
        let transit = section(body, "id=\"transit\"", "</table>");
        assert!(transit.contains("data-channel=\"sepa-file\""), "{transit}");
        assert!(!transit.contains("sandbox-api"), "{transit}");
        let cells: Vec<&str> = transit
            .split("<td class=\"num\">")
            .skip(1)
            .map(|c| c.split('<').next().unwrap())
            .collect();
        assert_eq!(
            cells,
            ["130.00 EUR", "0.00 EUR", "250.50 EUR", "0.00 EUR", ""],
            "{transit}"
        );
        assert!(transit.contains("<b>380.50 EUR</b>"), "{transit}");
        // Its chart: one bar, two pieces (young and 1–3 days), drawn on the server.
        let chart = section(body, "id=\"chart-transit-EUR\"", "</svg>");
        assert!(chart.contains("role=\"img\""));
        assert_eq!(chart.matches("data-age=\"0\"").count(), 1, "{chart}");
        assert_eq!(chart.matches("data-age=\"2\"").count(), 1, "{chart}");
        assert_eq!(chart.matches("data-age=\"1\"").count(), 0, "{chart}");
        // Exceptions by kind: the rejected payout, under an hour old, linked to the queue.
        let kinds = section(body, "id=\"exception-kinds\"", "</table>");
        assert!(
            kinds.contains("href=\"/console/exceptions?kind=payout_failed\""),
            "{kinds}"
        );
        let failed = section(kinds, "data-kind=\"payout_failed\"", "</tr>");
        assert!(failed.contains("<b>1</b>"), "{failed}");
        assert!(body.contains("id=\"chart-exceptions\""));
        // Import lag: sepa-file never had a result file, two payouts wait, the oldest 30 h.
        let lag = section(body, "id=\"lag\"", "</table>");
        let sepa = section(lag, "data-channel=\"sepa-file\"", "</tr>");
        assert!(sepa.contains("never"), "{sepa}");
        assert!(sepa.contains("<td class=\"num\">2</td>"), "{sepa}");
        assert!(sepa.contains("<td class=\"num\">30</td>"), "{sepa}");
        assert!(
            !lag.contains("sandbox-api"),
            "API channels answer at once: {lag}"
        );
        // Today's batches: today's, not yesterday's.
        let batches = section(body, "id=\"batches-today-list\"", "</table>");
        assert!(batches.contains(&format!("data-batch=\"{}\"", today.batch_id)));
        assert!(!batches.contains(&format!("data-batch=\"{}\"", old.batch_id)));
        assert!(batches.contains(&today.file_name));
        // In Chinese too.
        let req = b
            .client
            .get(format!("{}/console", app.base))
            .header("accept-language", "zh-CN");
        let zh = b.send(req).await;
        assert!(zh.body.contains("在途资金"));
    }
);

/// The text of `body` from `start` to the next `end`.
fn section<'a>(body: &'a str, start: &str, end: &str) -> &'a str {
    let at = body
        .find(start)
        .unwrap_or_else(|| panic!("{start} in {body}"));
    let rest = &body[at..];
    &rest[..rest.find(end).unwrap_or(rest.len())]
}

/// A payout on the sandbox channel that the bank paid with `paid_minor` EUR cents.
async fn paid_payout(app: &TestApp, order_no: &str, paid_minor: i64) -> String {
    let order = OrderRef {
        order_no: OrderNo::parse(order_no).unwrap(),
        merchant: None,
    };
    let p = app
        .engine
        .create_payout(&order, Some("sandbox-api"), Utc::now(), &desk())
        .await
        .unwrap()
        .into_payout()
        .unwrap();
    app.engine
        .apply_bank_result(
            &PayoutNo::parse(&p.payout_no).unwrap(),
            &BankResult::Paid {
                amount: Some(common::eur(paid_minor)),
                instructed: None,
                reference: Some(format!("BANK-{order_no}")),
                value_date: None,
            },
            &ResultSource::Manual {
                evidence: "bank statement".into(),
            },
            Utc::now(),
            &desk(),
        )
        .await
        .unwrap();
    p.payout_no
}

/// The id of the open discrepancy of an order's payout.
async fn discrepancy_of(app: &TestApp, payout_no: &str) -> i64 {
    app.engine
        .discrepancies(false)
        .await
        .unwrap()
        .iter()
        .find(|d| d.origin_payout_no == payout_no)
        .expect("a discrepancy")
        .id
}

both_backends!(
    discrepancies_are_settled_from_the_console,
    |app: TestApp| async move {
        people(
            &app,
            &[
                ("vera", Role::Viewer),
                ("olga", Role::Operator),
                ("bert", Role::Approver),
                ("cora", Role::Approver),
            ],
        )
        .await;
        let key = app.merchant("acme", 1_000_000).await;
        for no in ["W1", "W2", "W3"] {
            app.withdraw(&key, no, 10_000).await;
        }
        let under = paid_payout(&app, "W1", 9_000).await;
        let over = paid_payout(&app, "W2", 11_000).await;
        let over_too = paid_payout(&app, "W3", 10_500).await;
        let (d_under, d_over, d_over_too) = (
            discrepancy_of(&app, &under).await,
            discrepancy_of(&app, &over).await,
            discrepancy_of(&app, &over_too).await,
        );
        let resolve = |id: i64| format!("/console/discrepancies/{id}/resolve");

        // A viewer reads the list, with what the merchant was told, and may not act.
        let mut vera = Browser::new(&app);
        vera.sign_in("vera").await;
        let page = vera.get("/console/discrepancies").await;
        assert_eq!(page.status, 200, "{}", page.body);
        let row = section(
            &page.body,
            &format!("data-discrepancy=\"{d_under}\""),
            "</tr>",
        );
        assert!(row.contains("underpaid"), "{row}");
        assert!(row.contains("10.00 EUR"), "{row}");
        assert!(row.contains("href=\"/console/orders/acme/W1\""), "{row}");
        assert!(
            row.contains("discrepancy.opened"),
            "what the merchant was told: {row}"
        );
        assert!(!page.body.contains("/resolve\""), "no actions for a viewer");
        let vcsrf = page.csrf();
        let refused = vera
            .post(
                &resolve(d_under),
                &[
                    ("csrf", &vcsrf),
                    ("resolution", "top_up_now"),
                    ("reason", "x"),
                ],
            )
            .await;
        assert_eq!(refused.status, 403);
        assert!(refused.body.contains("may not settle discrepancies"));

        // An operator tops up what was underpaid: a new payout of the shortfall.
        let mut olga = Browser::new(&app);
        olga.sign_in("olga").await;
        let page = olga.get("/console/discrepancies").await;
        let row = section(
            &page.body,
            &format!("data-discrepancy=\"{d_under}\""),
            "</tr>",
        );
        assert!(row.contains("data-resolution=\"top_up_now\""), "{row}");
        assert!(
            !row.contains("data-resolution=\"refund_received\""),
            "{row}"
        );
        let csrf = page.csrf();
        let forged = olga
            .post(
                &resolve(d_under),
                &[("resolution", "top_up_now"), ("reason", "x")],
            )
            .await;
        assert_eq!(forged.status, 403, "no CSRF token");
        let topped = olga
            .post(
                &resolve(d_under),
                &[
                    ("csrf", &csrf),
                    ("resolution", "top_up_now"),
                    ("channel", ""),
                    ("reason", "pay the rest now"),
                ],
            )
            .await;
        assert_eq!(
            (topped.status, topped.location.as_str()),
            (303, "/console/discrepancies?done=1"),
            "{}",
            topped.body
        );
        let d = &app.engine.discrepancies(false).await.unwrap();
        let d1 = d.iter().find(|d| d.id == d_under).unwrap();
        assert_eq!(d1.status, "topping_up");
        let topup = d1.topup_payout_no.clone().expect("a top-up payout");
        // A refund needs the reference of the merchant's transfer.
        let wrong = olga
            .post(
                &resolve(d_over),
                &[
                    ("csrf", &csrf),
                    ("resolution", "refund_received"),
                    ("reason", "x"),
                ],
            )
            .await;
        assert_eq!(
            wrong.status, 422,
            "a refund needs its reference: {}",
            wrong.body
        );
        assert!(wrong.body.contains("reference"));
        // The operator proposes writing off what was overpaid, but may not approve it.
        let proposed = olga
            .post(
                &resolve(d_over),
                &[
                    ("csrf", &csrf),
                    ("resolution", "propose_write_off"),
                    ("reason", "not worth collecting"),
                ],
            )
            .await;
        assert_eq!(proposed.status, 303, "{}", proposed.body);
        let self_approve = olga
            .post(
                &resolve(d_over),
                &[
                    ("csrf", &csrf),
                    ("resolution", "approve_write_off"),
                    ("reason", "ok"),
                ],
            )
            .await;
        assert_eq!(self_approve.status, 403);
        assert!(self_approve.body.contains("may not approve write-offs"));

        // An approver who proposed a write-off may not approve their own.
        let mut cora = Browser::new(&app);
        cora.sign_in("cora").await;
        let ccsrf = cora.csrf().await;
        let cora_proposes = cora
            .post(
                &resolve(d_over_too),
                &[
                    ("csrf", &ccsrf),
                    ("resolution", "propose_write_off"),
                    ("reason", "small"),
                ],
            )
            .await;
        assert_eq!(cora_proposes.status, 303, "{}", cora_proposes.body);
        let own = cora
            .post(
                &resolve(d_over_too),
                &[
                    ("csrf", &ccsrf),
                    ("resolution", "approve_write_off"),
                    ("reason", "ok"),
                ],
            )
            .await;
        assert_eq!(own.status, 403);
        assert!(own.body.contains("another person must approve it"));
        let page = cora.get("/console/discrepancies").await;
        let row = section(
            &page.body,
            &format!("data-discrepancy=\"{d_over_too}\""),
            "</tr>",
        );
        assert!(
            !row.contains("data-resolution=\"approve_write_off\""),
            "{row}"
        );
        let row = section(
            &page.body,
            &format!("data-discrepancy=\"{d_over}\""),
            "</tr>",
        );
        assert!(
            row.contains("data-resolution=\"approve_write_off\""),
            "{row}"
        );

        // Another approver approves olga's: settled, and the merchant is told.
        let approved = cora
            .post(
                &resolve(d_over),
                &[
                    ("csrf", &ccsrf),
                    ("resolution", "approve_write_off"),
                    ("reason", "agreed"),
                ],
            )
            .await;
        assert_eq!(approved.status, 303, "{}", approved.body);
        let d2 = app
            .engine
            .discrepancies(false)
            .await
            .unwrap()
            .into_iter()
            .find(|d| d.id == d_over)
            .unwrap();
        assert_eq!(d2.status, "settled");
        let open = cora.get("/console/discrepancies").await;
        assert!(!open
            .body
            .contains(&format!("data-discrepancy=\"{d_over}\"")));
        let all = cora.get("/console/discrepancies?all=1").await;
        let row = section(
            &all.body,
            &format!("data-discrepancy=\"{d_over}\""),
            "</tr>",
        );
        assert!(row.contains("discrepancy.resolved"), "{row}");
        assert!(row.contains("approved by cora"), "{row}");
        assert!(row.contains("write-off approved by cora: agreed"), "{row}");
        // The underpaid one links its top-up payout.
        let row = section(
            &all.body,
            &format!("data-discrepancy=\"{d_under}\""),
            "</tr>",
        );
        assert!(
            row.contains(&format!("href=\"/console/search?q={topup}\"")),
            "{row}"
        );
    }
);

/// A pain.002.001.10 status report for our message `msg_id`: (EndToEndId, status, reason).
fn pain002(msg_id: &str, lines: &[(&str, &str, Option<&str>)]) -> String {
    let mut tx = String::new();
    for (e2e, status, reason) in lines {
        tx.push_str(&format!(
            "<TxInfAndSts><OrgnlEndToEndId>{e2e}</OrgnlEndToEndId><TxSts>{status}</TxSts>"
        ));
        if let Some(r) = reason {
            tx.push_str(&format!("<StsRsnInf><Rsn><Cd>{r}</Cd></Rsn></StsRsnInf>"));
        }
        tx.push_str("</TxInfAndSts>\n");
    }
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.10">
  <CstmrPmtStsRpt>
    <GrpHdr><MsgId>STATUS-1</MsgId><CreDtTm>2026-11-03T10:00:00</CreDtTm></GrpHdr>
    <OrgnlGrpInfAndSts><OrgnlMsgId>{msg_id}</OrgnlMsgId><OrgnlMsgNmId>pain.001.001.09</OrgnlMsgNmId></OrgnlGrpInfAndSts>
    <OrgnlPmtInfAndSts>
      <OrgnlPmtInfId>PMT-1</OrgnlPmtInfId>
{tx}    </OrgnlPmtInfAndSts>
  </CstmrPmtStsRpt>
</Document>
"#
    )
}

/// A multipart/form-data body of text fields and one file.
fn multipart_form(fields: &[(&str, &str)], file_name: &str, content: &[u8]) -> (String, Vec<u8>) {
    let boundary = "console-test-boundary-q7Xk2";
    let mut body = Vec::new();
    for (k, v) in fields {
        body.extend(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    body.extend(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: application/xml\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend(content);
    body.extend(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

impl Browser {
    async fn upload(&mut self, fields: &[(&str, &str)], name: &str, content: &[u8]) -> Page {
        let (content_type, body) = multipart_form(fields, name, content);
        let req = self
            .client
            .post(format!("{}/console/files/preview", self.base))
            .header("content-type", content_type)
            .body(body);
        self.send(req).await
    }
}

/// The value of the hidden field `name` on a page.
fn hidden(page: &Page, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let at = page.body.find(&marker).expect("the field") + marker.len();
    page.body[at..].split('"').next().unwrap().to_string()
}

async fn payout_state(app: &TestApp, payout_no: &str) -> String {
    app.engine
        .payout_order(payout_no)
        .await
        .unwrap()
        .unwrap()
        .state
}

both_backends!(
    batches_download_and_a_result_file_previewed_before_applied,
    |app: TestApp| async move {
        people(&app, &[("vera", Role::Viewer), ("olga", Role::Operator)]).await;
        let key = app.merchant("acme", 1_000_000).await;
        app.withdraw(&key, "W1", 10_000).await;
        app.withdraw(&key, "W2", 20_000).await;
        let now = Utc::now();
        payout_on(&app, "W1", "sepa-file", now).await;
        payout_on(&app, "W2", "sepa-file", now).await;
        let (batch, bytes) = app
            .engine
            .create_batch("sepa-file", now, &desk())
            .await
            .unwrap()
            .unwrap();
        let (po1, po2) = ("PO0000000001", "PO0000000002");
        assert_eq!(payout_state(&app, po1).await, "submitted");

        // The list, and the file byte for byte; a viewer may not fetch it (full accounts).
        let mut olga = Browser::new(&app);
        olga.sign_in("olga").await;
        let list = olga.get("/console/batches").await;
        assert_eq!(list.status, 200, "{}", list.body);
        assert!(list
            .body
            .contains(&format!("data-batch=\"{}\"", batch.batch_id)));
        let file_path = format!("/console/batches/{}/file", batch.batch_id);
        assert!(list.body.contains(&format!("href=\"{file_path}\"")));
        let req = olga.client.get(format!("{}{file_path}", app.base));
        let cookie = olga
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let file = req.header(COOKIE, cookie).send().await.unwrap();
        assert_eq!(file.status().as_u16(), 200);
        assert_eq!(file.headers()["content-type"], "application/xml");
        assert!(file.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment;"));
        assert_eq!(file.bytes().await.unwrap().as_ref(), bytes.as_slice());
        let sheet = olga
            .get(&format!("/console/batches/{}/sheet", batch.batch_id))
            .await;
        assert_eq!(sheet.status, 404, "a SEPA batch has no paper sheet");
        let mut vera = Browser::new(&app);
        vera.sign_in("vera").await;
        assert_eq!(vera.get(&file_path).await.status, 403);
        assert!(!vera
            .get("/console/batches")
            .await
            .body
            .contains("/console/files/preview"));

        // The bank's report: W1 paid, W2 rejected, and a line about a payout we never made.
        let report = pain002(
            &batch.message_id,
            &[
                (po1, "ACSC", None),
                (po2, "RJCT", Some("AC04")),
                ("PO0000009999", "RJCT", Some("AC01")),
            ],
        );
        let csrf = olga.csrf().await;
        let audit_before = app.engine.db().count("audit_events").await.unwrap();
        // Without the session's token, or as a viewer: refused, nothing staged or changed.
        let forged = olga
            .upload(&[("channel", "")], "status.xml", report.as_bytes())
            .await;
        assert_eq!(forged.status, 403);
        let vcsrf = vera.csrf().await;
        let viewer = vera
            .upload(
                &[("csrf", &vcsrf), ("channel", "")],
                "status.xml",
                report.as_bytes(),
            )
            .await;
        assert_eq!(viewer.status, 403);
        let preview = olga
            .upload(
                &[("csrf", &csrf), ("channel", "")],
                "status.xml",
                report.as_bytes(),
            )
            .await;
        assert_eq!(preview.status, 200, "{}", preview.body);
        let body = &preview.body;
        assert!(body.contains("data-count=\"applied\">2<"), "{body}");
        assert!(body.contains("data-count=\"exceptions\">1<"), "{body}");
        let changes = section(body, "id=\"preview-changes\"", "</table>");
        let one = section(changes, &format!("data-subject=\"payout:{po1}\""), "</tr>");
        assert!(one.contains("submitted → succeeded"), "{one}");
        let two = section(changes, &format!("data-subject=\"payout:{po2}\""), "</tr>");
        assert!(two.contains("submitted → failed"), "{two}");
        let postings = section(body, "id=\"preview-postings\"", "</table>");
        assert!(
            postings.contains("200.00 EUR"),
            "the rejected payout's money goes back: {postings}"
        );
        let exceptions = section(body, "id=\"preview-exceptions\"", "</table>");
        assert!(exceptions.contains("PO0000009999"), "{exceptions}");
        // The preview changed nothing.
        assert_eq!(payout_state(&app, po1).await, "submitted");
        assert_eq!(payout_state(&app, po2).await, "submitted");
        assert_eq!(app.engine.db().count("bank_files").await.unwrap(), 0);
        assert_eq!(app.engine.db().count("exceptions").await.unwrap(), 0);
        assert_eq!(
            app.engine.db().count("audit_events").await.unwrap(),
            audit_before
        );

        // Applied: exactly what the preview said.
        let token = hidden(&preview, "upload");
        let without = olga
            .post(
                "/console/files/apply",
                &[("upload", &token), ("channel", "")],
            )
            .await;
        assert_eq!(without.status, 403);
        let applied = olga
            .post(
                "/console/files/apply",
                &[("csrf", &csrf), ("upload", &token), ("channel", "")],
            )
            .await;
        assert_eq!(
            (applied.status, applied.location.as_str()),
            (303, "/console/batches?imported=status.xml"),
            "{}",
            applied.body
        );
        assert_eq!(payout_state(&app, po1).await, "succeeded");
        assert_eq!(payout_state(&app, po2).await, "failed");
        assert_eq!(app.engine.db().count("exceptions").await.unwrap(), 1);
        // The overview shows the file among today's, and (no channel named) beside the lag.
        let overview = olga.get("/console").await;
        let today = section(&overview.body, "id=\"files-today-list\"", "</table>");
        assert!(today.contains("status.xml"), "{today}");
        let lag = section(&overview.body, "id=\"lag\"", "</table>");
        let unnamed = section(lag, "data-channel=\"\"", "</tr>");
        assert!(unnamed.contains("status.xml"), "{unnamed}");
        let sepa = section(lag, "data-channel=\"sepa-file\"", "</tr>");
        assert!(
            sepa.contains("<td class=\"num\">0</td>"),
            "nothing waits now: {sepa}"
        );
        let again = olga
            .post(
                "/console/files/apply",
                &[("csrf", &csrf), ("upload", &token), ("channel", "")],
            )
            .await;
        assert_eq!(again.status, 404, "the staged upload is gone once applied");
        let twice = olga
            .upload(
                &[("csrf", &csrf), ("channel", "")],
                "status.xml",
                report.as_bytes(),
            )
            .await;
        assert!(
            twice.body.contains("id=\"already-imported\""),
            "{}",
            twice.body
        );
        assert!(!twice.body.contains("/console/files/apply"));
        let traversal = olga
            .post(
                "/console/files/apply",
                &[("csrf", &csrf), ("upload", "../../etc"), ("channel", "")],
            )
            .await;
        assert_eq!(traversal.status, 404);
    }
);

both_backends!(
    merchant_page_masks_accounts_and_its_fix_pays_the_waiting_orders,
    |app: TestApp| async move {
        people(&app, &[("vera", Role::Viewer), ("olga", Role::Operator)]).await;
        let key = app.merchant("acme", 1_000_000).await;
        app.withdraw(&key, "W1", 10_000).await;
        payout_on(&app, "W1", "sepa-file", Utc::now()).await;
        let (batch, _) = app
            .engine
            .create_batch("sepa-file", Utc::now(), &desk())
            .await
            .unwrap()
            .unwrap();
        // The bank says the account is closed: the merchant must give another.
        let report = pain002(&batch.message_id, &[("PO0000000001", "RJCT", Some("AC04"))]);
        let path = app.dir.join("closed.xml");
        std::fs::write(&path, report).unwrap();
        app.engine
            .import_results(&path, None, Utc::now(), &desk(), &|_, _| {})
            .await
            .unwrap();
        let full_iban = "DE02120300000000202051";

        let mut vera = Browser::new(&app);
        vera.sign_in("vera").await;
        let list = vera.get("/console/merchants").await;
        assert_eq!(list.status, 200, "{}", list.body);
        let row = section(&list.body, "data-merchant=\"acme\"", "</tr>");
        assert!(row.contains("needs_update"), "{row}");
        assert!(row.contains("****3000"), "{row}");
        let page = vera.get("/console/merchants/acme").await;
        assert_eq!(page.status, 200);
        assert!(page.body.contains("****3000"));
        assert!(
            !page.body.contains("DE89370400440532013000"),
            "never the full number"
        );
        assert!(page.body.contains("href=\"/console/orders/acme/W1\""));
        assert!(section(&page.body, "id=\"balances\"", "</table>").contains("EUR"));
        assert!(
            !page.body.contains("/console/merchants/acme/account"),
            "no form for a viewer"
        );
        let vcsrf = page.csrf();
        let refused = vera
            .post(
                "/console/merchants/acme/account",
                &[
                    ("csrf", &vcsrf),
                    ("holder", "Acme GmbH"),
                    ("iban", full_iban),
                ],
            )
            .await;
        assert_eq!(refused.status, 403);
        assert!(refused.body.contains("may not change bank accounts"));

        let mut olga = Browser::new(&app);
        olga.sign_in("olga").await;
        let csrf = olga.csrf().await;
        let forged = olga
            .post(
                "/console/merchants/acme/account",
                &[("holder", "Acme GmbH"), ("iban", full_iban)],
            )
            .await;
        assert_eq!(forged.status, 403);
        // A wrong IBAN is refused naming what is wrong, and the number is not shown back.
        let bad = olga
            .post(
                "/console/merchants/acme/account",
                &[
                    ("csrf", &csrf),
                    ("holder", "Acme GmbH"),
                    ("iban", "DE02120300000000202052"),
                ],
            )
            .await;
        assert_eq!(bad.status, 422, "{}", bad.body);
        assert!(bad.body.contains("IBAN check digits"), "{}", bad.body);
        assert!(!bad.body.contains("DE02120300000000202052"), "{}", bad.body);
        let before = app.engine.db().count("payouts").await.unwrap();
        let fixed = olga
            .post(
                "/console/merchants/acme/account",
                &[
                    ("csrf", &csrf),
                    ("holder", "Acme GmbH"),
                    ("iban", full_iban),
                ],
            )
            .await;
        assert_eq!(fixed.status, 303, "{}", fixed.body);
        assert!(
            fixed
                .location
                .starts_with("/console/merchants/acme?retried=PO"),
            "{}",
            fixed.location
        );
        // The waiting order was paid again at once: a new payout.
        assert_eq!(app.engine.db().count("payouts").await.unwrap(), before + 1);
        let after = olga.get(&fixed.location).await;
        assert!(after.body.contains("Account saved."), "{}", after.body);
        assert!(after.body.contains("PO0000000002"), "{}", after.body);
        assert!(after.body.contains("****2051"));
        assert!(!after.body.contains(full_iban));
        assert!(section(&after.body, "id=\"account-status\"", "</b>").contains("ok"));
    }
);

both_backends!(
    audit_log_filters_exports_safely_and_verify_runs_from_the_page,
    |app: TestApp| async move {
        people(&app, &[("vera", Role::Viewer), ("olga", Role::Operator)]).await;
        let key = app.merchant("acme", 100_000).await;
        app.withdraw(&key, "W1", 20_000).await;
        let payout = failed_payout(&app, "W1", "MS03").await;
        // A reason a spreadsheet would run as a formula.
        let evil = "=HYPERLINK(\"http://evil.example\",\"x\")";
        let mut olga = Browser::new(&app);
        olga.sign_in("olga").await;
        let csrf = olga.csrf().await;
        let proposed = olga
            .post(
                "/console/corrections",
                &[
                    ("csrf", &csrf),
                    ("payout_no", &payout),
                    ("kind", "cancel_order"),
                    ("reason", evil),
                    ("evidence", "@SUM(1)"),
                ],
            )
            .await;
        assert_eq!(proposed.status, 303, "{}", proposed.body);

        let mut vera = Browser::new(&app);
        vera.sign_in("vera").await;
        let rows = |p: &Page| p.body.matches("<tr data-seq=").count();
        let all = vera.get("/console/audit").await;
        assert_eq!(all.status, 200, "{}", all.body);
        assert!(rows(&all) > 3);
        let by_action = vera.get("/console/audit?action=correction.").await;
        assert_eq!(rows(&by_action), 1, "{}", by_action.body);
        assert!(by_action.body.contains("correction.proposed"));
        let by_actor = vera.get("/console/audit?actor=operator%3Aolga").await;
        assert!(rows(&by_actor) >= 1);
        assert!(
            section(&by_actor.body, "id=\"audit\"", "</table>")
                .matches("<td>operator:olga</td>")
                .count()
                == rows(&by_actor)
        );
        let by_subject = vera
            .get(&format!("/console/audit?subject=payout%3A{payout}"))
            .await;
        assert!(
            rows(&by_subject) >= 2,
            "created and failed: {}",
            by_subject.body
        );
        let today = Utc::now().date_naive();
        let (yesterday, tomorrow) = (today.pred_opt().unwrap(), today.succ_opt().unwrap());
        let in_range = vera
            .get(&format!(
                "/console/audit?action=correction.&from={today}&to={today}"
            ))
            .await;
        assert_eq!(rows(&in_range), 1);
        let later = vera.get(&format!("/console/audit?from={tomorrow}")).await;
        assert_eq!(rows(&later), 0);
        let earlier = vera.get(&format!("/console/audit?to={yesterday}")).await;
        assert_eq!(rows(&earlier), 0);
        let bad = vera.get("/console/audit?from=yesterday").await;
        assert_eq!(bad.status, 422);
        assert!(
            bad.body
                .contains("from: &quot;yesterday&quot; is not a date"),
            "{}",
            bad.body
        );

        // The export: the same filter, the formula neutralised.
        let csv = vera.get("/console/audit.csv?action=correction.").await;
        assert_eq!(csv.status, 200);
        assert!(csv
            .body
            .starts_with("seq,at,actor,action,subject,reason,detail\r\n"));
        assert_eq!(csv.body.lines().count(), 2, "{}", csv.body);
        assert!(
            csv.body
                .contains("\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"x\"\")\""),
            "{}",
            csv.body
        );
        assert!(!csv.body.contains(",=HYPERLINK") && !csv.body.contains(",\"=HYPERLINK"));

        // verify from the page: a form with the session's token; then a row changed behind the
        // chain's back is found.
        let without = vera.post("/console/audit/verify", &[]).await;
        assert_eq!(without.status, 403);
        let vcsrf = vera.csrf().await;
        let ok = vera
            .post("/console/audit/verify", &[("csrf", &vcsrf)])
            .await;
        assert_eq!(ok.status, 200, "{}", ok.body);
        assert!(
            ok.body.contains("id=\"verify-result\" data-ok=\"true\""),
            "{}",
            ok.body
        );
        app.engine
            .db()
            .execute_raw("UPDATE payouts SET amount_minor = 1 WHERE id = 1")
            .await
            .unwrap();
        let tampered = vera
            .post("/console/audit/verify", &[("csrf", &vcsrf)])
            .await;
        assert!(
            tampered
                .body
                .contains("id=\"verify-result\" data-ok=\"false\""),
            "{}",
            tampered.body
        );
        assert!(tampered.body.contains("payouts"), "{}", tampered.body);

        // The ledger: balances and the trial balance per currency, which nets to zero.
        let ledger = vera.get("/console/ledger").await;
        assert_eq!(ledger.status, 200);
        let eur = section(&ledger.body, "data-currency=\"EUR\"", "</tr>");
        assert!(eur.contains("<b>0.00 EUR</b>"), "{eur}");
        assert!(
            !eur.contains("<td class=\"num\">0.00 EUR</td><td class=\"num\">0.00 EUR</td>"),
            "{eur}"
        );
        assert!(ledger.body.contains("merchant:acme:"));
        let balances = vera.get("/console/ledger.csv").await;
        assert!(balances
            .body
            .starts_with("account,amount_minor,currency,amount\r\n"));
        assert!(balances.body.contains("merchant:acme:"));
    }
);

/// The count of audit events of one action.
async fn audited(app: &TestApp, action: &str) -> i64 {
    app.engine
        .db()
        .count_where("audit_events", &format!("action = '{action}'"))
        .await
        .unwrap()
}

both_backends!(
    exceptions_are_claimed_commented_and_handled,
    |app: TestApp| async move {
        people(
            &app,
            &[
                ("olga", Role::Operator),
                ("otto", Role::Operator),
                ("vera", Role::Viewer),
            ],
        )
        .await;
        let key = app.merchant("acme", 100_000).await;
        app.withdraw(&key, "W1", 20_000).await;
        app.withdraw(&key, "W2", 10_000).await;
        failed_payout(&app, "W1", "MS03").await;
        failed_payout(&app, "W2", "MS03").await;
        let item = "order:acme/W1";
        let mut olga = Browser::new(&app);
        olga.sign_in("olga").await;
        let mut otto = Browser::new(&app);
        otto.sign_in("otto").await;
        let mut vera = Browser::new(&app);
        vera.sign_in("vera").await;
        let back = "/console/exceptions?kind=payout_failed";
        // Every work form carries the session's token; without it nothing is claimed.
        let queue = olga.get("/console/exceptions").await;
        assert!(queue.body.contains("action=\"/console/exceptions/claim\""));
        let refused = olga
            .post(
                "/console/exceptions/claim",
                &[("item", item), ("back", back)],
            )
            .await;
        assert_eq!(refused.status, 403);
        assert_eq!(audited(&app, "exception.claimed").await, 0);
        // Olga claims it; back on the page she came from.
        let csrf = olga.csrf().await;
        let claimed = olga
            .post(
                "/console/exceptions/claim",
                &[("csrf", &csrf), ("item", item), ("back", back)],
            )
            .await;
        assert_eq!(
            (claimed.status, claimed.location.as_str()),
            (303, back),
            "{}",
            claimed.body
        );
        assert_eq!(audited(&app, "exception.claimed").await, 1);
        // Otto sees it claimed by olga and may neither claim it nor handle it.
        let seen = otto.get("/console/exceptions").await;
        let row = section(&seen.body, "data-kind=\"payout_failed\"", "</tr>");
        assert!(row.contains("<strong>olga</strong>"), "{row}");
        assert!(!row.contains("/console/exceptions/claim"), "{row}");
        assert!(!row.contains("/console/exceptions/handle"), "{row}");
        let ocsrf = otto.csrf().await;
        let taken = otto
            .post(
                "/console/exceptions/claim",
                &[("csrf", &ocsrf), ("item", item)],
            )
            .await;
        assert_eq!(taken.status, 409, "{}", taken.body);
        assert!(taken.body.contains("claimed by olga"), "{}", taken.body);
        let handled_by_otto = otto
            .post(
                "/console/exceptions/handle",
                &[("csrf", &ocsrf), ("item", item), ("note", "done")],
            )
            .await;
        assert_eq!(handled_by_otto.status, 409);
        let released_by_otto = otto
            .post(
                "/console/exceptions/release",
                &[("csrf", &ocsrf), ("item", item)],
            )
            .await;
        assert_eq!(released_by_otto.status, 409);
        // The other item is free for otto.
        assert_eq!(
            otto.post(
                "/console/exceptions/claim",
                &[("csrf", &ocsrf), ("item", "order:acme/W2")],
            )
            .await
            .status,
            303
        );
        // A viewer reads the queue but has no work forms, and is refused on the server.
        let vpage = vera.get("/console/exceptions").await;
        assert!(vpage.body.contains("<strong>olga</strong>"));
        assert!(!vpage.body.contains("/console/exceptions/comment"));
        let vcsrf = vera.csrf().await;
        let vrefused = vera
            .post(
                "/console/exceptions/comment",
                &[("csrf", &vcsrf), ("item", item), ("note", "hello")],
            )
            .await;
        assert_eq!(vrefused.status, 403);
        assert_eq!(audited(&app, "exception.commented").await, 0);
        // Olga releases; otto claims, then comments (an empty comment is refused, naming it).
        assert_eq!(
            olga.post(
                "/console/exceptions/release",
                &[("csrf", &csrf), ("item", item)],
            )
            .await
            .status,
            303
        );
        assert_eq!(audited(&app, "exception.released").await, 1);
        assert_eq!(
            otto.post(
                "/console/exceptions/claim",
                &[("csrf", &ocsrf), ("item", item)],
            )
            .await
            .status,
            303
        );
        let empty = otto
            .post(
                "/console/exceptions/comment",
                &[("csrf", &ocsrf), ("item", item), ("note", "  ")],
            )
            .await;
        assert_eq!(empty.status, 422, "{}", empty.body);
        assert!(empty.body.contains("note"), "{}", empty.body);
        let commented = otto
            .post(
                "/console/exceptions/comment",
                &[
                    ("csrf", &ocsrf),
                    ("item", item),
                    ("note", "called the bank <b>Tuesday</b>"),
                ],
            )
            .await;
        assert_eq!(commented.status, 303, "{}", commented.body);
        // A comment on no queue item is refused.
        let nowhere = otto
            .post(
                "/console/exceptions/comment",
                &[("csrf", &ocsrf), ("item", "order:acme/NOPE"), ("note", "x")],
            )
            .await;
        assert_eq!(nowhere.status, 404);
        // Otto marks it handled with a note: his claim ends with it; the page says so.
        let handled = otto
            .post(
                "/console/exceptions/handle",
                &[
                    ("csrf", &ocsrf),
                    ("item", item),
                    ("note", "merchant asked to resend details"),
                ],
            )
            .await;
        assert_eq!(handled.status, 303, "{}", handled.body);
        assert_eq!(audited(&app, "exception.handled").await, 1);
        let work = app.engine.exception_work().await.unwrap();
        let w = &work[item];
        assert!(w.claimed.is_none());
        assert_eq!(w.notes.len(), 2);
        assert_eq!(w.handled().unwrap().written_by, "otto");
        let page = olga.get("/console/exceptions").await;
        let row = section(&page.body, "data-kind=\"payout_failed\"", "</tr>");
        assert!(row.contains("Handled by <strong>otto</strong>"), "{row}");
        assert!(row.contains("merchant asked to resend details"), "{row}");
        // What people write is shown as text, never as markup.
        assert!(
            row.contains("called the bank &lt;b&gt;Tuesday&lt;/b&gt;"),
            "{row}"
        );
        // The claim rows (one deleted) and notes are covered by the audit chain.
        assert!(app.engine.db().verify_audit().await.unwrap().is_empty());
    }
);

impl Browser {
    /// Posts a bank notice for a payout, as the notice form does (multipart, with a file).
    async fn notice(&mut self, payout_no: &str, fields: &[(&str, &str)], file: &[u8]) -> Page {
        let (content_type, body) = multipart_form(fields, "notice.pdf", file);
        let req = self
            .client
            .post(format!("{}/console/payouts/{payout_no}/result", self.base))
            .header("content-type", content_type)
            .body(body);
        self.send(req).await
    }
}

/// A payout of the paper channel (`mm-paper`, MMK), in a printed batch.
async fn paper_payout(app: &TestApp) -> String {
    use disburse_core::account::{BankAccount, CountryCode, HolderName, LocalAccount};
    use disburse_core::{Currency, MerchantId, Money};
    let e = &app.engine;
    let now = Utc::now();
    let yangon = MerchantId::parse("yangon").unwrap();
    e.add_merchant(&yangon, "Yangon Traders", now, &desk())
        .await
        .unwrap();
    let account =
        LocalAccount::new(CountryCode::parse("MM").unwrap(), "KBZ0001", "0123456789").unwrap();
    e.set_bank_account(
        &yangon,
        &BankAccount::new(
            HolderName::parse("Yangon Traders").unwrap(),
            account.into(),
            None,
        ),
        now,
        &desk(),
    )
    .await
    .unwrap();
    let mmk = |t: &str| Money::parse(t, Currency::Mmk).unwrap();
    e.fund(&yangon, mmk("9000000.00"), None, now, &desk())
        .await
        .unwrap();
    e.withdraw(
        &disburse_engine::WithdrawRequest {
            merchant: yangon.clone(),
            order_no: OrderNo::parse("P1").unwrap(),
            amount: mmk("2500000.00"),
        },
        now,
        &desk(),
    )
    .await
    .unwrap();
    let order = OrderRef {
        order_no: OrderNo::parse("P1").unwrap(),
        merchant: Some(yangon),
    };
    let no = e
        .create_payout(&order, Some("mm-paper"), now, &desk())
        .await
        .unwrap()
        .into_payout()
        .unwrap()
        .payout_no;
    e.create_batch("mm-paper", now, &desk())
        .await
        .unwrap()
        .unwrap();
    no
}

both_backends!(
    a_paper_notice_is_entered_with_its_evidence,
    |app: TestApp| async move {
        people(&app, &[("olga", Role::Operator), ("vera", Role::Viewer)]).await;
        let payout = paper_payout(&app).await;
        let before = payout_state(&app, &payout).await;
        let mut olga = Browser::new(&app);
        olga.sign_in("olga").await;
        // The order page links a paper payout to its notice form.
        let order = olga.get("/console/orders/yangon/P1").await;
        let form_path = format!("/console/payouts/{payout}/result");
        assert!(
            order.body.contains(&format!("href=\"{form_path}\"")),
            "{}",
            order.body
        );
        let form = olga.get(&form_path).await;
        assert_eq!(form.status, 200, "{}", form.body);
        assert!(form.body.contains("enctype=\"multipart/form-data\""));
        let csrf = form.csrf();
        let notice = b"%PDF-1.4 the bank's notice of 3 December: account closed";
        let good = [
            ("csrf", csrf.as_str()),
            ("outcome", "rejected"),
            ("reason", "AC04"),
            ("text", "account closed"),
            ("evidence", "KBZ notice 2026-12-03 no. 17"),
        ];
        // Without the session's token, or as a viewer: refused, nothing recorded.
        let mut no_token = good.to_vec();
        no_token.remove(0);
        assert_eq!(olga.notice(&payout, &no_token, notice).await.status, 403);
        let mut vera = Browser::new(&app);
        vera.sign_in("vera").await;
        let vcsrf = vera.csrf().await;
        let mut as_vera = good.to_vec();
        as_vera[0] = ("csrf", vcsrf.as_str());
        assert_eq!(vera.notice(&payout, &as_vera, notice).await.status, 403);
        assert_eq!(vera.get(&form_path).await.status, 403);
        // A reason that is no ISO code, or no notice file: refused, naming the field.
        let mut bad = good.to_vec();
        bad[2] = ("reason", "closed");
        let refused = olga.notice(&payout, &bad, notice).await;
        assert_eq!(refused.status, 422, "{}", refused.body);
        assert!(
            refused
                .body
                .contains("reason: &quot;closed&quot; is not a 4-character ISO reason code"),
            "{}",
            refused.body
        );
        let no_file = olga.notice(&payout, &good, b"").await;
        assert_eq!(no_file.status, 422, "{}", no_file.body);
        assert!(no_file.body.contains("upload the bank"), "{}", no_file.body);
        assert_eq!(payout_state(&app, &payout).await, before);
        assert_eq!(app.engine.db().count("evidence").await.unwrap(), 0);
        // The notice entered: the payout fails with the bank's code; the file is kept by hash.
        let entered = olga.notice(&payout, &good, notice).await;
        assert_eq!(
            (entered.status, entered.location.as_str()),
            (303, format!("/console/orders/yangon/P1#{payout}").as_str()),
            "{}",
            entered.body
        );
        let row = app
            .engine
            .db()
            .payout_by_no(&payout)
            .await
            .unwrap()
            .unwrap();
        assert_ne!(row.state, before);
        assert_eq!(row.reason_code.as_deref(), Some("AC04"));
        use sha2::Digest;
        let sha = hex::encode(sha2::Sha256::digest(notice));
        assert_eq!(
            app.engine
                .db()
                .count_where("evidence", &format!("sha256 = '{sha}'"))
                .await
                .unwrap(),
            1
        );
        let page = olga.get("/console/orders/yangon/P1").await;
        assert!(
            page.body.contains(&format!("sha256:{sha}")),
            "{}",
            page.body
        );
        assert!(page.body.contains("olga"));
        // The same notice again changes nothing, and says so.
        let again = olga.notice(&payout, &good, notice).await;
        assert_eq!(again.status, 409, "{}", again.body);
        // A payout of an API channel has no paper notice.
        let key = app.merchant("acme", 100_000).await;
        app.withdraw(&key, "W1", 20_000).await;
        let api = failed_payout(&app, "W1", "MS03").await;
        let elsewhere = olga.get(&format!("/console/payouts/{api}/result")).await;
        assert_eq!(elsewhere.status, 409, "{}", elsewhere.body);
        assert!(!olga
            .get("/console/orders/acme/W1")
            .await
            .body
            .contains("/result\""));
    }
);

/// A camt.053 of our SEPA account: one debit naming `payout_no` and a bank fee.
fn statement_naming(payout_no: &str) -> String {
    let entry = |amount: &str, fmly: &str, sub: &str, details: &str| {
        format!(
            "<Ntry><Amt Ccy=\"EUR\">{amount}</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>\
             <BookgDt><Dt>2026-11-04</Dt></BookgDt><AcctSvcrRef>R-{amount}</AcctSvcrRef>\
             <BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>{fmly}</Cd><SubFmlyCd>{sub}</SubFmlyCd></Fmly></Domn></BkTxCd>{details}</Ntry>"
        )
    };
    let bal = |code: &str, amount: &str| {
        format!("<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp><Amt Ccy=\"EUR\">{amount}</Amt><CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2026-11-04</Dt></Dt></Bal>")
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:camt.053.001.08\"><BkToCstmrStmt>\
         <GrpHdr><MsgId>STMT-1</MsgId><CreDtTm>2026-11-04T20:00:00</CreDtTm></GrpHdr><Stmt><Id>S1</Id><ElctrncSeqNb>1</ElctrncSeqNb>\
         <FrToDt><FrDtTm>2026-11-04T00:00:00</FrDtTm><ToDtTm>2026-11-04T23:59:59</ToDtTm></FrToDt><Acct><Id><IBAN>DE89370400440532013000</IBAN></Id></Acct>{}{}{}{}</Stmt></BkToCstmrStmt></Document>",
        bal("OPBD", "500.00"),
        bal("CLBD", "399.00"),
        entry(
            "100.00",
            "ICDT",
            "ESCT",
            &format!("<NtryDtls><TxDtls><Refs><EndToEndId>{payout_no}</EndToEndId></Refs><Amt Ccy=\"EUR\">100.00</Amt><CdtDbtInd>DBIT</CdtDbtInd></TxDtls></NtryDtls>"),
        ),
        entry("1.00", "CCRD", "CHRG", ""),
    )
}

both_backends!(
    the_reconciliation_page_and_its_match_decisions,
    |app: TestApp| async move {
        let key = app.merchant("acme", 100_000).await;
        assert_eq!(app.withdraw(&key, "W1", 10_000).await.status, 201);
        payout_on(&app, "W1", "sepa-file", Utc::now()).await;
        let out = tempfile::tempdir().unwrap();
        app.engine
            .create_batch_file("sepa-file", Some(out.path()), Utc::now(), &desk())
            .await
            .unwrap()
            .expect("a batch");
        // The statement shows the debit while the payout still waits for its result: suggested.
        let file = out.path().join("statement-1.xml");
        std::fs::write(&file, statement_naming("PO0000000001")).unwrap();
        app.engine
            .import_statement(&file, Some("sepa-file"), Utc::now(), &desk())
            .await
            .unwrap();
        let entry = app
            .engine
            .reconcile("sepa-file", Utc::now())
            .await
            .unwrap()
            .suggested[0]
            .entry;
        people(&app, &[("olga", Role::Operator), ("vic", Role::Viewer)]).await;

        // A viewer reads the report, without the forms; the server refuses a decision anyway.
        let mut vic = Browser::new(&app);
        vic.sign_in("vic").await;
        let page = vic.get("/console/reconciliation?channel=sepa-file").await;
        assert_eq!(page.status, 200, "{}", page.body);
        for section in [
            "id=\"statements\"",
            "id=\"matched\"",
            "id=\"suggested\"",
            "id=\"books-vs-bank\"",
            "statement-1.xml",
            "1.00 EUR",
            "-100.00 EUR",
        ] {
            assert!(page.body.contains(section), "{section} in {}", page.body);
        }
        assert!(!page.body.contains("data-decision=\"confirm\""));
        assert!(
            !page.body.contains("DE89370400440532013000"),
            "account unmasked"
        );
        let csrf = vic.csrf().await;
        let path = format!("/console/reconciliation/entries/{entry}/confirm");
        let refused = vic
            .post(
                &path,
                &[("csrf", &csrf), ("channel", "sepa-file"), ("why", "x")],
            )
            .await;
        assert_eq!(refused.status, 403, "{}", refused.body);
        let unknown = vic.get("/console/reconciliation?channel=nope").await;
        assert_eq!(unknown.status, 404);

        // An operator: without the token, refused; with it, the match is confirmed.
        let mut olga = Browser::new(&app);
        olga.sign_in("olga").await;
        let page = olga.get("/console/reconciliation?channel=sepa-file").await;
        assert!(
            page.body.contains("data-decision=\"confirm\""),
            "{}",
            page.body
        );
        let forged = olga
            .post(&path, &[("channel", "sepa-file"), ("why", "forged")])
            .await;
        assert_eq!(forged.status, 403);
        assert_eq!(
            app.engine
                .reconcile("sepa-file", Utc::now())
                .await
                .unwrap()
                .suggested
                .len(),
            1,
            "nothing decided by a refused form"
        );
        let csrf = olga.csrf().await;
        let empty = olga
            .post(
                &path,
                &[("csrf", &csrf), ("channel", "sepa-file"), ("why", " ")],
            )
            .await;
        assert_eq!(empty.status, 422, "a reason is needed");
        let done = olga
            .post(
                &path,
                &[
                    ("csrf", &csrf),
                    ("channel", "sepa-file"),
                    ("why", "the bank's advice"),
                ],
            )
            .await;
        assert_eq!(done.status, 303, "{}", done.body);
        assert_eq!(
            done.location,
            "/console/reconciliation?channel=sepa-file&done=confirmed"
        );
        let r = app.engine.reconcile("sepa-file", Utc::now()).await.unwrap();
        assert!(r.suggested.is_empty());
        assert_eq!(r.matched, 1);
        let page = olga.get(&done.location).await;
        assert!(page.body.contains("Match confirmed."), "{}", page.body);
        // Decided once: again is refused by the engine, said on the page.
        let again = olga
            .post(
                &path,
                &[("csrf", &csrf), ("channel", "sepa-file"), ("why", "again")],
            )
            .await;
        assert_eq!(again.status, 409, "{}", again.body);
    }
);
