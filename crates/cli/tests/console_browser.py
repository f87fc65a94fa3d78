"""The operator console in a real browser (Debian's chromium driven by playwright).

Started by console_browser.rs with: BASE_URL SCREENSHOT_DIR PASSWORD PAYOUT_NO UPLOAD_PAYOUT_NO
UPLOAD_MESSAGE_ID
A maker (olga, operator, English) and a checker (bert, approver, Chinese) play a correction in two
browser contexts (the maker claims the queue item, and the checker sees it claimed); a viewer is
refused; a form without its CSRF token is refused; no page logs a
console error; the overview draws its charts; a result file is uploaded, previewed (nothing
changes) and applied. Screenshots of each page go to SCREENSHOT_DIR. Exit 0 when every check holds.
"""

import os
import re
import sys
import tempfile

from playwright.sync_api import expect, sync_playwright

BASE, SHOTS, PASSWORD, PAYOUT, UPLOAD_PAYOUT, UPLOAD_MESSAGE = sys.argv[1:7]
errors = []
# While a step provokes a refusal on purpose, its one 403 is expected (and checked by the step).
expecting_refusal = [False]


def watch(page, who):
    def on_console(msg):
        if msg.type != "error":
            return
        if expecting_refusal[0] and "403" in msg.text:
            return
        errors.append(f"{who}: console error: {msg.text} (on {page.url})")

    def on_response(resp):
        if resp.status >= 400 and not (expecting_refusal[0] and resp.status == 403):
            errors.append(f"{who}: {resp.status} for {resp.url}")

    page.on("console", on_console)
    page.on("pageerror", lambda e: errors.append(f"{who}: page error: {e}"))
    page.on("response", on_response)


def shot(page, name):
    page.screenshot(path=f"{SHOTS}/{name}.png", full_page=True)


def sign_in(page, name):
    page.goto(f"{BASE}/console")
    expect(page).to_have_url(re.compile(r"/console/login$"))
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("form.card button[type=submit]")
    expect(page).to_have_url(re.compile(r"/console/exceptions$"))


def post_form(page, action, fields):
    """Submits a form the page did not offer (what a forged or crafted request would send)."""
    page.evaluate(
        """([action, fields]) => {
            const f = document.createElement('form');
            f.method = 'post';
            f.action = action;
            for (const [k, v] of Object.entries(fields)) {
                const i = document.createElement('input');
                i.type = 'hidden'; i.name = k; i.value = v;
                f.appendChild(i);
            }
            document.body.appendChild(f);
            f.submit();
        }""",
        [action, fields],
    )
    page.wait_for_load_state()


def refused(page, action, fields, expect_text, name):
    expecting_refusal[0] = True
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        post_form(page, action, fields)
    assert answer.value.status == 403, f"{action}: expected 403, got {answer.value.status}"
    expect(page.locator("p.error")).to_contain_text(expect_text)
    shot(page, name)
    expecting_refusal[0] = False


with sync_playwright() as p:
    browser = p.chromium.launch(executable_path="/usr/bin/chromium")

    # The maker, in English.
    maker_ctx = browser.new_context(locale="en-US", viewport={"width": 1400, "height": 900})
    maker = maker_ctx.new_page()
    watch(maker, "olga")
    maker.goto(f"{BASE}/console/login")
    expect(maker.locator("h1")).to_have_text("Sign in")
    shot(maker, "login")
    sign_in(maker, "olga")
    cookie = next(c for c in maker_ctx.cookies() if c["name"] == "disburse_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict", cookie

    # The overview: money in transit and exceptions, charts drawn by the server.
    maker.goto(f"{BASE}/console")
    expect(maker.locator("h1")).to_have_text("Overview")
    expect(maker.locator("#transit tr[data-channel=sepa-file]")).to_contain_text("100.00 EUR")
    expect(maker.locator("svg#chart-transit-EUR rect[data-age]")).not_to_have_count(0)
    expect(maker.locator("svg#chart-exceptions")).to_have_count(1)
    # The walkthrough imports its XML files without naming a channel: shown beside the channels.
    expect(maker.locator("#lag tr[data-channel='']")).to_contain_text("2-camt054-paid.xml")
    expect(maker.locator("#lag tr[data-channel=sepa-file]")).to_contain_text("1")
    shot(maker, "overview")

    # Batches and files: upload the bank's answer, see exactly what it would change, apply it.
    maker.goto(f"{BASE}/console/batches")
    expect(maker.locator("#batches tr[data-batch='3']")).to_contain_text(UPLOAD_MESSAGE)
    shot(maker, "batches")
    report = os.path.join(tempfile.mkdtemp(), "3-pain002-paid.xml")
    with open(report, "w", encoding="utf-8") as f:
        f.write(f"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.10">
  <CstmrPmtStsRpt>
    <GrpHdr><MsgId>BANK-STS-3</MsgId><CreDtTm>2026-11-05T10:00:00</CreDtTm></GrpHdr>
    <OrgnlGrpInfAndSts><OrgnlMsgId>{UPLOAD_MESSAGE}</OrgnlMsgId><OrgnlMsgNmId>pain.001.001.09</OrgnlMsgNmId></OrgnlGrpInfAndSts>
    <OrgnlPmtInfAndSts><OrgnlPmtInfId>{UPLOAD_MESSAGE}</OrgnlPmtInfId>
      <TxInfAndSts><OrgnlEndToEndId>{UPLOAD_PAYOUT}</OrgnlEndToEndId><TxSts>ACSC</TxSts></TxInfAndSts>
    </OrgnlPmtInfAndSts>
  </CstmrPmtStsRpt>
</Document>
""")
    maker.set_input_files("input[name=file]", report)
    maker.click("#upload ~ form.card button[type=submit]")
    expect(maker.locator("h1")).to_have_text("Preview of a result file")
    change = maker.locator(f"#preview-changes tr[data-subject='payout:{UPLOAD_PAYOUT}']")
    expect(change).to_contain_text("submitted → succeeded")
    shot(maker, "upload-preview")
    # Nothing changed yet (seen from another tab of the same person).
    other = maker_ctx.new_page()
    watch(other, "olga (second tab)")
    other.goto(f"{BASE}/console/search?q={UPLOAD_PAYOUT}")
    expect(other.locator(f"#payouts tr#{UPLOAD_PAYOUT} .state")).to_have_text("submitted")
    other.close()
    maker.click("#apply")
    expect(maker.locator("p.done")).to_contain_text("3-pain002-paid.xml")
    shot(maker, "batches-imported")
    maker.goto(f"{BASE}/console/search?q={UPLOAD_PAYOUT}")
    expect(maker.locator(f"#payouts tr#{UPLOAD_PAYOUT} .state")).to_have_text("succeeded")

    # The exceptions queue: what each item needs, and a link to act on it.
    maker.goto(f"{BASE}/console/exceptions")
    expect(maker.locator("h1")).to_have_text("Exceptions")
    rows = maker.locator("#exceptions tbody tr")
    assert rows.count() >= 2, f"expected the walkthrough's exceptions, found {rows.count()}"
    conflict = maker.locator("#exceptions tbody tr[data-kind=conflict]")
    expect(conflict).to_have_count(1)
    expect(conflict).to_contain_text(PAYOUT)
    expect(conflict).to_contain_text("check with the bank")
    shot(maker, "exceptions")
    maker.select_option("select[name=kind]", "conflict")
    maker.click("form.filters button")
    expect(maker).to_have_url(re.compile(r"kind=conflict"))
    expect(maker.locator("#exceptions tbody tr")).to_have_count(1)
    shot(maker, "exceptions-filtered")
    # The maker claims the item: the queue says who works on it (the checker sees it below).
    maker.locator("#exceptions tbody tr[data-kind=conflict] "
                  "form[action='/console/exceptions/claim'] button").click()
    expect(maker).to_have_url(re.compile(r"kind=conflict"))
    claimed = maker.locator("#exceptions tbody tr[data-kind=conflict]")
    expect(claimed.locator("td.claim")).to_contain_text("olga")
    expect(claimed.locator("form[action='/console/exceptions/release']")).to_have_count(1)
    shot(maker, "exceptions-claimed")

    # Search by payout number: the order page, one timeline with the evidence behind each change.
    maker.goto(f"{BASE}/console/search")
    maker.fill("input[name=q]", PAYOUT)
    maker.click("form.filters button")
    expect(maker).to_have_url(re.compile(r"/console/orders/acme/W2"))
    expect(maker.locator(f"#payouts tr#{PAYOUT} .state")).to_have_text("failed")
    timeline = maker.locator("#timeline")
    expect(timeline).to_contain_text("payout.failed")
    expect(timeline).to_contain_text("evidence: phone call")
    expect(timeline).to_contain_text("order.accepted")
    shot(maker, "order-before")

    # The maker proposes from the exceptions item's link.
    maker.goto(f"{BASE}/console/exceptions?kind=conflict")
    maker.click("#exceptions a.button")
    expect(maker).to_have_url(re.compile(r"/console/corrections\?payout=" + PAYOUT))
    expect(maker.locator("input[name=payout_no]")).to_have_value(PAYOUT)
    maker.select_option("select[name=kind]", "confirm_succeeded")
    maker.fill("input[name=amount]", "200.00")
    maker.fill("input[name=bank_reference]", f"BOOK-{PAYOUT}")
    maker.fill("textarea[name=reason]", "the bank statement shows it paid")
    maker.fill("textarea[name=evidence]", "2-camt054-paid.xml")
    maker.click("form.card button[type=submit]")
    expect(maker.locator("p.done")).to_have_text("Correction proposed.")
    expect(maker.locator("#mine-list")).to_contain_text("proposed")
    # An operator sees no approve button; the server refuses the approval anyway.
    expect(maker.locator("button[name=approve]")).to_have_count(0)
    shot(maker, "corrections-maker")
    csrf = maker.locator("input[name=csrf]").first.get_attribute("value")
    refused(maker, "/console/corrections/1/approve", {"csrf": csrf},
            "may not approve", "refused-maker-approve")

    # CSRF: the same form without the token (or with another) is refused.
    maker.goto(f"{BASE}/console/corrections")
    refused(maker, "/console/corrections/1/approve", {}, "did not come from this console",
            "refused-csrf")
    maker.goto(f"{BASE}/console/corrections")
    refused(maker, "/console/corrections",
            {"csrf": "0" * 64, "payout_no": PAYOUT, "kind": "cancel_order",
             "reason": "x", "evidence": "y"},
            "did not come from this console", "refused-csrf-propose")

    # A viewer reads, and may not propose: no form, and the server refuses.
    viewer_ctx = browser.new_context(locale="en-US", viewport={"width": 1400, "height": 900})
    viewer = viewer_ctx.new_page()
    watch(viewer, "vera")
    sign_in(viewer, "vera")
    viewer.goto(f"{BASE}/console/corrections")
    expect(viewer.locator("form.card")).to_have_count(0)
    expect(viewer.locator("#all-list")).to_contain_text(PAYOUT)
    vcsrf = viewer.locator("input[name=csrf]").first.get_attribute("value")
    refused(viewer, "/console/corrections",
            {"csrf": vcsrf, "payout_no": PAYOUT, "kind": "cancel_order",
             "reason": "x", "evidence": "y"},
            "may not propose", "refused-viewer-propose")

    # The checker, in Chinese (from the browser's Accept-Language), approves.
    checker_ctx = browser.new_context(locale="zh-CN", viewport={"width": 1400, "height": 900})
    checker = checker_ctx.new_page()
    watch(checker, "bert")
    sign_in(checker, "bert")
    expect(checker.locator("h1")).to_have_text("异常队列")
    expect(checker.locator("html")).to_have_attribute("lang", "zh-CN")
    shot(checker, "exceptions-zh")
    # Another person sees the item claimed by olga, and is offered no claim of it.
    theirs = checker.locator("#exceptions tbody tr[data-kind=conflict]")
    expect(theirs.locator("td.claim")).to_contain_text("olga")
    expect(theirs.locator("form[action='/console/exceptions/claim']")).to_have_count(0)
    expect(theirs.locator("form[action='/console/exceptions/handle']")).to_have_count(0)
    checker.goto(f"{BASE}/console/corrections")
    waiting = checker.locator("#waiting-list tr[data-correction='1']")
    expect(waiting).to_contain_text("olga")
    shot(checker, "corrections-checker-zh")
    waiting.locator("button[name=approve]").click()
    expect(checker.locator("p.done")).to_have_text("更正已批准并生效。")
    checker.goto(f"{BASE}/console/search?q=W2")
    expect(checker).to_have_url(re.compile(r"/console/orders/acme/W2"))
    expect(checker.locator(f"#payouts tr#{PAYOUT} .state")).to_have_text("succeeded")
    expect(checker.locator("#timeline")).to_contain_text("payout.corrected.confirm_succeeded")
    expect(checker.locator("#timeline")).to_contain_text("correction_reversal")
    shot(checker, "order-after-zh")

    # The switch: the maker reads Chinese, then English again, on the same page.
    maker.goto(f"{BASE}/console/exceptions")
    maker.click("header a.lang")
    expect(maker.locator("h1")).to_have_text("异常队列")
    maker.click("header a.lang")
    expect(maker.locator("h1")).to_have_text("Exceptions")

    # Merchants: the account masked; audit: verify from the page; the ledger nets to zero.
    maker.goto(f"{BASE}/console/merchants/acme")
    expect(maker.locator("#account")).to_contain_text("****2051")
    assert "DE02120300000000202051" not in maker.content(), "a full account number on a page"
    shot(maker, "merchant")
    maker.goto(f"{BASE}/console/audit")
    maker.click("#verify")
    expect(maker.locator("#verify-result")).to_have_attribute("data-ok", "true")
    shot(maker, "audit-verified")
    maker.goto(f"{BASE}/console/ledger")
    expect(maker.locator("#trial tr[data-currency=EUR]")).to_contain_text("0.00 EUR")
    shot(maker, "ledger")
    maker.goto(f"{BASE}/console/discrepancies")
    expect(maker.locator("h1")).to_have_text("Discrepancies")
    shot(maker, "discrepancies")

    # Sign-out ends the session: the next page asks to sign in again.
    maker.click("header form.inline button")
    expect(maker).to_have_url(re.compile(r"/console/login$"))
    maker.goto(f"{BASE}/console/exceptions")
    expect(maker).to_have_url(re.compile(r"/console/login$"))
    shot(maker, "signed-out")

    browser.close()

if errors:
    print("browser errors:\n" + "\n".join(errors))
    sys.exit(1)
print("console browser scenario OK")
