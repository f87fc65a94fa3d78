"""The operator console in a real browser (Debian's chromium driven by playwright).

Started by console_browser.rs with: BASE_URL SCREENSHOT_DIR PASSWORD PAYOUT_NO UPLOAD_PAYOUT_NO
UPLOAD_MESSAGE_ID
A maker (olga, operator, English) and a checker (bert, approver, Chinese) play a correction in two
browser contexts (the maker claims the queue item, and the checker sees it claimed); a viewer is
refused; a form without its CSRF token is refused; no page logs a
console error; the overview draws its charts; a result file is uploaded, previewed (nothing
changes) and applied. Screenshots of each page go to SCREENSHOT_DIR. Exit 0 when every check holds.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
from decimal import Decimal

from playwright.sync_api import expect, sync_playwright

BASE, SHOTS, PASSWORD, PAYOUT, UPLOAD_PAYOUT, UPLOAD_MESSAGE = sys.argv[1:7]
EXPIRED_PAYOUT, STATEMENT_FEE, STATEMENT_UNEXPLAINED = sys.argv[7:10]
DISBURSE, DB_DIR = os.environ["DISBURSE_BIN"], os.environ["DISBURSE_DIR"]
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


def bank(*args):
    """The bank's side, with the CLI on the same database: batch files out, and the like."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISBURSE_KEY_FILE", "DISBURSE_ACCOUNT_KEY", "DISBURSE_OPERATOR",
                        "DISBURSE_CONFIG")}
    env["DISBURSE_DB"] = "console.db"
    out = subprocess.run([DISBURSE, "--json", *args], cwd=DB_DIR, env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0, f"disburse {args}: {out.stderr}"
    return json.loads(out.stdout)


def eur(amount):
    """How the console writes an amount of euros."""
    return f"{Decimal(amount):.2f} EUR"


def pain002_rejected(message, payout_no, code):
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.10">
  <CstmrPmtStsRpt>
    <GrpHdr><MsgId>STS-{payout_no}</MsgId><CreDtTm>2026-11-05T10:00:00</CreDtTm></GrpHdr>
    <OrgnlGrpInfAndSts><OrgnlMsgId>{message}</OrgnlMsgId><OrgnlMsgNmId>pain.001.001.09</OrgnlMsgNmId></OrgnlGrpInfAndSts>
    <OrgnlPmtInfAndSts><OrgnlPmtInfId>{message}</OrgnlPmtInfId>
      <TxInfAndSts><OrgnlEndToEndId>{payout_no}</OrgnlEndToEndId><TxSts>RJCT</TxSts>
        <StsRsnInf><Rsn><Cd>{code}</Cd></Rsn><AddtlInf>Account closed</AddtlInf></StsRsnInf>
      </TxInfAndSts>
    </OrgnlPmtInfAndSts>
  </CstmrPmtStsRpt>
</Document>
"""


def camt054_booked(payout_no, amount, reference):
    """A debit notification: what the bank booked (moved) for the payout."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.08">
  <BkToCstmrDbtCdtNtfctn>
    <GrpHdr><MsgId>NTF-{reference}</MsgId><CreDtTm>2026-11-06T18:00:00+00:00</CreDtTm></GrpHdr>
    <Ntfctn><Id>NTF-{reference}</Id><CreDtTm>2026-11-06T18:00:00+00:00</CreDtTm>
      <Acct><Id><IBAN>DE89370400440532013000</IBAN></Id></Acct>
      <Ntry><Amt Ccy="EUR">{amount}</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>
        <BookgDt><Dt>2026-11-06</Dt></BookgDt><AcctSvcrRef>{reference}</AcctSvcrRef>
        <BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>ICDT</Cd><SubFmlyCd>ESCT</SubFmlyCd></Fmly></Domn></BkTxCd>
        <NtryDtls><TxDtls><Refs><AcctSvcrRef>{reference}</AcctSvcrRef><EndToEndId>{payout_no}</EndToEndId></Refs>
          <Amt Ccy="EUR">{amount}</Amt><CdtDbtInd>DBIT</CdtDbtInd></TxDtls></NtryDtls>
      </Ntry>
    </Ntfctn>
  </BkToCstmrDbtCdtNtfctn>
</Document>
"""


def upload(page, name, content):
    """Uploads a result file on the batches page; returns at its preview."""
    path = os.path.join(tempfile.mkdtemp(), name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(content)
    page.goto(f"{BASE}/console/batches")
    page.set_input_files("input[name=file]", path)
    page.click("#upload ~ form.card button[type=submit]")
    expect(page.locator("h1")).to_have_text("Preview of a result file")


def apply_upload(page, name):
    page.click("#apply")
    expect(page.locator("p.done")).to_contain_text(name)


def balance(page, merchant, account):
    """The merchant page's balance row of one of its accounts (empty when it is zero)."""
    page.goto(f"{BASE}/console/merchants/{merchant}")
    return page.locator("#balances tr", has_text=f"merchant:{merchant}:{account}")


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

    # ----------------------------------------------------------------------------------------
    # Situation 1: failed because the account is wrong; the operator fixes it on the merchant
    # page; the order is paid again as a new payout of the same order.
    created = bank("withdraw", "gamma", "G1", "120.00", "EUR")
    first = bank("payout", "create", "G1")["payout_no"]
    batch = bank("batch", "create", "--channel", "sepa-file")["batch"]
    assert batch["payout_count"] == 1, batch
    upload(maker, "s1-pain002-AC04.xml", pain002_rejected(batch["message_id"], first, "AC04"))
    expect(maker.locator(f"#preview-changes tr[data-subject='payout:{first}']")).to_contain_text(
        "submitted → failed")
    shot(maker, "s1-upload-rejected")
    apply_upload(maker, "s1-pain002-AC04.xml")
    # The queue says the order waits for the merchant's account, and links to the fix.
    maker.goto(f"{BASE}/console/exceptions?merchant=gamma")
    waiting = maker.locator("#exceptions tbody tr[data-kind=waiting_for_account_fix]")
    expect(waiting).to_have_count(1)
    expect(waiting).to_contain_text("G1")
    expect(waiting).to_contain_text("AC04")
    waiting.locator("a.button").click()
    expect(maker).to_have_url(re.compile(r"/console/merchants/gamma#fix$"))
    expect(maker.locator("#account-status")).to_have_text("needs_update")
    maker.fill("#fix ~ form input[name=holder]", "gamma Ltd")
    maker.fill("#fix ~ form input[name=iban]", "DE02120300000000202051")
    maker.click("#fix ~ form button[type=submit]")
    retried = maker.locator("p.done")
    expect(retried).to_contain_text("PO")
    second = re.search(r"PO\d{10}", retried.inner_text()).group(0)
    assert second != first, (first, second)
    expect(maker.locator("#account")).to_contain_text("****2051")
    assert "DE02120300000000202051" not in maker.content(), "the typed account shown back"
    shot(maker, "s1-merchant-fixed")
    # The bank: the new payout goes out in the next file, and is booked in full.
    batch = bank("batch", "create", "--channel", "sepa-file")["batch"]
    assert batch["payout_count"] == 1 and batch["control_sum_minor"] == 12000, batch
    booked = "120.00"
    upload(maker, "s1-camt054-paid.xml", camt054_booked(second, booked, f"BOOK-{second}"))
    expect(maker.locator(f"#preview-changes tr[data-subject='payout:{second}']")).to_contain_text(
        "submitted → succeeded")
    expect(maker.locator("#preview-postings")).to_contain_text(eur(booked))
    apply_upload(maker, "s1-camt054-paid.xml")
    # The checker looks the order up: one order number, both payouts, one timeline.
    checker.goto(f"{BASE}/console/search?q=G1")
    expect(checker).to_have_url(re.compile(r"/console/orders/gamma/G1"))
    expect(checker.locator("p.summary b.state")).to_have_text("paid")
    expect(checker.locator("#payouts tbody tr")).to_have_count(2)
    expect(checker.locator(f"#payouts tr#{first} .state")).to_have_text("failed")
    expect(checker.locator(f"#payouts tr#{first}")).to_contain_text("AC04")
    expect(checker.locator(f"#payouts tr#{first}")).to_contain_text("****3000")
    expect(checker.locator(f"#payouts tr#{second} .state")).to_have_text("succeeded")
    expect(checker.locator(f"#payouts tr#{second} td.num").nth(1)).to_have_text(eur(booked))
    expect(checker.locator(f"#payouts tr#{second}")).to_contain_text("****2051")
    timeline = checker.locator("#timeline")
    expect(timeline).to_contain_text("s1-pain002-AC04.xml")
    expect(timeline).to_contain_text("s1-camt054-paid.xml")
    expect(timeline).to_contain_text("payout.failed")
    expect(timeline).to_contain_text("order.paid")
    shot(checker, "s1-order-both-payouts")

    # ----------------------------------------------------------------------------------------
    # Situation 3: no result past the channel's deadline (the sweep ran seven days after it was
    # sent): escalated, money still reserved, nothing paid again; the maker learns it was paid
    # and proposes it, the checker approves; a late bank answer that disagrees is a conflict.
    maker.goto(f"{BASE}/console/exceptions?kind=expired_payout")
    item = maker.locator("#exceptions tbody tr[data-kind=expired_payout]", has_text=EXPIRED_PAYOUT)
    expect(item).to_have_count(1)
    expect(item).to_contain_text(eur("300.00"))
    expect(item).to_contain_text("ask the bank")
    shot(maker, "s3-expired")
    reserved = balance(maker, "delta", "in_transit")
    expect(reserved).to_contain_text(eur("300.00"))
    maker.goto(f"{BASE}/console/search?q=D3")
    expect(maker.locator("#payouts tbody tr")).to_have_count(1)  # nothing paid again
    expect(maker.locator(f"#payouts tr#{EXPIRED_PAYOUT} .state")).to_have_text("expired")
    maker.goto(f"{BASE}/console/exceptions?kind=expired_payout")
    item.locator("a.button").click()
    expect(maker.locator("input[name=payout_no]")).to_have_value(EXPIRED_PAYOUT)
    maker.select_option("select[name=kind]", "confirm_succeeded")
    maker.fill("input[name=amount]", "300.00")
    maker.fill("input[name=bank_reference]", "BANK-CONF-D3")
    maker.fill("textarea[name=reason]", "the bank confirmed on the phone that it paid")
    maker.fill("textarea[name=evidence]", "call with the bank's desk, reference BANK-CONF-D3")
    maker.click("form.card button[type=submit]")
    expect(maker.locator("p.done")).to_have_text("Correction proposed.")
    mine = maker.locator("#mine-list tr", has_text=EXPIRED_PAYOUT)
    expect(mine).to_contain_text("proposed")
    expect(mine.locator("button[name=approve]")).to_have_count(0)
    correction = mine.get_attribute("data-correction")
    checker.goto(f"{BASE}/console/corrections")
    waiting = checker.locator(f"#waiting-list tr[data-correction='{correction}']")
    expect(waiting).to_contain_text("olga")
    expect(waiting).to_contain_text(EXPIRED_PAYOUT)
    shot(checker, "s3-checker-approves")
    waiting.locator("button[name=approve]").click()
    expect(checker.locator("p.done")).to_have_text("更正已批准并生效。")
    checker.goto(f"{BASE}/console/search?q={EXPIRED_PAYOUT}")
    expect(checker.locator(f"#payouts tr#{EXPIRED_PAYOUT} .state")).to_have_text("succeeded")
    expect(checker.locator(f"#payouts tr#{EXPIRED_PAYOUT}")).to_contain_text("BANK-CONF-D3")
    expect(checker.locator("#timeline")).to_contain_text("payout.corrected.confirm_succeeded")
    expect(balance(maker, "delta", "in_transit")).to_have_count(0)  # no longer in transit
    # The bank's late notification books another amount: raised, not applied.
    late = "290.00"
    upload(maker, "s3-camt054-late.xml", camt054_booked(EXPIRED_PAYOUT, late, "LATE-D3"))
    expect(maker.locator("#preview-exceptions")).to_contain_text("conflict")
    expect(maker.locator("b[data-count=applied]")).to_have_text("0")
    apply_upload(maker, "s3-camt054-late.xml")
    maker.goto(f"{BASE}/console/exceptions?kind=conflict")
    conflict = maker.locator("#exceptions tbody tr[data-kind=conflict]", has_text=EXPIRED_PAYOUT)
    expect(conflict).to_have_count(1)
    expect(conflict).to_contain_text(late)
    expect(conflict).to_contain_text("s3-camt054-late.xml")
    shot(maker, "s3-late-conflict")
    maker.goto(f"{BASE}/console/search?q={EXPIRED_PAYOUT}")
    expect(maker.locator(f"#payouts tr#{EXPIRED_PAYOUT} td.num").nth(1)).to_have_text(eur("300.00"))

    # ----------------------------------------------------------------------------------------
    # Situation 4: the bank paid a different amount. The discrepancy is tracked until settled,
    # with what the merchant was told; a write-off is proposed by one and approved by another.
    bank("withdraw", "epsilon", "E4", "100.00", "EUR")
    paid_more = bank("payout", "create", "E4")["payout_no"]
    batch = bank("batch", "create", "--channel", "sepa-file")["batch"]
    assert batch["control_sum_minor"] == 10000, batch
    moved = "104.00"
    over = Decimal(moved) - Decimal("100.00")
    upload(maker, "s4-camt054-booked.xml", camt054_booked(paid_more, moved, f"BOOK-{paid_more}"))
    expect(maker.locator("#preview-postings")).to_contain_text(eur(moved))
    apply_upload(maker, "s4-camt054-booked.xml")
    maker.goto(f"{BASE}/console/discrepancies")
    row = maker.locator("#discrepancies tbody tr", has_text=paid_more)
    expect(row).to_have_count(1)
    expect(row).to_have_attribute("data-status", "open")
    expect(row).to_contain_text(eur(over))
    expect(row).to_contain_text("the merchant owes us")
    expect(row.locator("td.told")).to_contain_text("discrepancy.opened")
    expect(row.locator("td.told")).to_contain_text(str(int(over * 100)))
    discrepancy = row.get_attribute("data-discrepancy")
    shot(maker, "s4-discrepancy-open")
    expect(balance(maker, "epsilon", "receivable")).to_contain_text(eur(over))
    maker.goto(f"{BASE}/console/discrepancies")
    propose = row.locator("form[data-resolution=propose_write_off]")
    propose.locator("input[name=reason]").fill("below the collection threshold")
    propose.locator("button").click()
    expect(maker.locator("p.done")).to_have_text("Discrepancy updated.")
    expect(row).to_have_attribute("data-status", "write_off_proposed")
    # The maker is offered no approval, and the server refuses one anyway.
    expect(row.locator("form[data-resolution=approve_write_off]")).to_have_count(0)
    shot(maker, "s4-write-off-proposed")
    csrf = maker.locator("input[name=csrf]").first.get_attribute("value")
    refused(maker, f"/console/discrepancies/{discrepancy}/resolve",
            {"csrf": csrf, "resolution": "approve_write_off", "reason": "mine"},
            "may not approve write-offs", "refused-maker-write-off")
    checker.goto(f"{BASE}/console/discrepancies")
    theirs = checker.locator(f"#discrepancies tr[data-discrepancy='{discrepancy}']")
    expect(theirs).to_contain_text("olga")
    approve = theirs.locator("form[data-resolution=approve_write_off]")
    approve.locator("input[name=reason]").fill("agreed: not worth collecting")
    approve.locator("button").click()
    expect(checker.locator("p.done")).to_have_text("差额已更新。")
    checker.goto(f"{BASE}/console/discrepancies?all=1")
    settled = checker.locator(f"#discrepancies tr[data-discrepancy='{discrepancy}']")
    expect(settled).to_have_attribute("data-status", "settled")
    expect(settled).to_contain_text(eur(over))
    shot(checker, "s4-settled")
    # The receivable is gone and the write-off is on the books.
    expect(balance(maker, "epsilon", "receivable")).to_have_count(0)
    maker.goto(f"{BASE}/console/ledger")
    expect(maker.locator("#balances tr", has_text="platform:EUR:write_offs")).to_contain_text(
        eur(over))
    expect(maker.locator("#trial tr[data-currency=EUR]")).to_contain_text("0.00 EUR")

    # ----------------------------------------------------------------------------------------
    # Reconciliation: the SEPA bank's statement against our payouts and books.
    maker.click("header nav a[href='/console/reconciliation']")
    maker.select_option("select[name=channel]", "sepa-file")
    maker.click("form.filters button")
    expect(maker).to_have_url(re.compile(r"channel=sepa-file"))
    expect(maker.locator("h1")).to_have_text("Reconciliation")
    expect(maker.locator("#statements tbody tr")).to_have_count(1)
    expect(maker.locator("#statements")).to_contain_text("statement-1.xml")
    expect(maker.locator("#statements td.continuity")).to_contain_text("first statement")
    expect(maker.locator("#matched")).to_have_attribute("data-count", "1")
    expect(maker.locator("#fees")).to_have_text(eur(STATEMENT_FEE))
    suggested = maker.locator("#suggested tbody tr")
    expect(suggested).to_have_count(1)
    expect(suggested).to_contain_text(eur("-100.00"))
    expect(maker.locator("#unmatched tbody tr")).to_have_count(1)
    expect(maker.locator("#unmatched")).to_contain_text(eur("-" + STATEMENT_UNEXPLAINED))
    expect(maker.locator("#books-vs-bank tr[data-row=unexplained] td.num")).to_have_text(eur("0"))
    expect(maker.locator("#statement-exceptions tr[data-kind=unexplained_debit]")).to_have_count(1)
    shot(maker, "reconciliation")
    # A viewer reads it, and may not decide a match.
    viewer.goto(f"{BASE}/console/reconciliation?channel=sepa-file")
    expect(viewer.locator("#suggested form")).to_have_count(0)
    entry = suggested.get_attribute("data-entry")
    vcsrf = viewer.locator("input[name=csrf]").first.get_attribute("value")
    refused(viewer, f"/console/reconciliation/entries/{entry}/confirm",
            {"csrf": vcsrf, "channel": "sepa-file", "why": "looked"},
            "may not confirm", "refused-viewer-reconciliation")
    # Without the form's token: refused too.
    maker.goto(f"{BASE}/console/reconciliation?channel=sepa-file")
    refused(maker, f"/console/reconciliation/entries/{entry}/confirm",
            {"channel": "sepa-file", "why": "forged"},
            "did not come from this console", "refused-csrf-reconciliation")
    maker.goto(f"{BASE}/console/reconciliation?channel=sepa-file")
    confirm = maker.locator(f"#suggested tr[data-entry='{entry}'] form[data-decision=confirm]")
    confirm.locator("input[name=why]").fill(f"the debit is {UPLOAD_PAYOUT}, paid since")
    confirm.locator("button").click()
    expect(maker.locator("p.done")).to_have_text("Match confirmed.")
    expect(maker.locator("#suggested tbody tr")).to_have_count(0)
    expect(maker.locator("#matched")).to_have_attribute("data-count", "2")
    expect(maker.locator("#matched")).to_contain_text(eur("-200.00"))
    expect(maker.locator("#books-vs-bank tr[data-row=unexplained] td.num")).to_have_text(eur("0"))
    shot(maker, "reconciliation-confirmed")
    maker.goto(f"{BASE}/console/audit?action=statement_entry.")
    expect(maker.locator("body")).to_contain_text(f"statement_entry:{entry}")

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
