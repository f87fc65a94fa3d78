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
