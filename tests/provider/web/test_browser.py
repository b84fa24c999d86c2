"""The client's whole journey in a real browser (the system's Chromium, driven by Playwright)
against the live portal, the real billing engine, a real SMTP server and a simulated handset
running the device core: invitation, sign-up, terms, the installation rescheduled with its fee,
a failed charge and its e-mail, the card replaced (charged at once: the balance paid), the
lockout code obtained and keyed into the handset, which leaves lockout.

Screenshots of the main pages go to $LCI_PORTAL_SCREENSHOTS when set (docs/portal/ is made so),
else to the test's temporary directory."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from protocol.coretime import EPOCH_UNIX
from provider.billing import reports
from provider.billing.money import fmt
from sim.simulator import Simulator
from sim.transport import open_client
from tests.browser import CHROMIUM_ARGS, chromium_path

from .conftest import START, T

SERIAL = "LCI7-0001"
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def page(monkeypatch):
    executable = chromium_path()  # a missing browser fails with the command that installs it
    # Playwright's sync API keeps an event loop in this thread; the ORM calls the test makes
    # between page actions are ordinary synchronous calls
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 430, "height": 860})
        yield context.new_page()
        context.close()
        browser.close()


class Handset:
    """The client's LCI-777: the device core in the simulator, on billing's clock; billing's
    signed directives reach it over its data link (the technician's link here)."""

    def __init__(self, provider):
        self.provider = provider
        self.t0 = T(START) - EPOCH_UNIX
        self.sim = Simulator(seed=3, identity=provider.identity(), start_s=self.t0)
        self.delivered = set()

    def at(self, unix: int) -> None:
        self.sim.run_until((unix - EPOCH_UNIX - self.t0) * 1000)

    def install(self) -> None:
        with open_client(self.sim) as c:
            c.hello()
            c.submit_token(self.provider.token(
                "work_order", {"order": "installation", "id": "WO-1", "vehicle": "VIN1"},
                now=c.status()["now"], session_nonce=c.session_nonce))

    def sync(self, books, ref, actions=("recall", "lockout")) -> None:
        with books.engine() as e:
            self.at(e.now)
            items = reports.directives(e.conn, e.store.account_by_ref(ref).id)
        for d in items:
            if d["status"] == "issued" and d["delivery"] == "token" \
                    and d["action"] in actions and d["id"] not in self.delivered:
                self.delivered.add(d["id"])
                with open_client(self.sim) as c:
                    c.hello()
                    c.submit_token(bytes.fromhex(d["token"]))

    @property
    def compliance(self) -> str:
        return self.sim.state["compliance"]


def test_the_clients_journey(live_server, page, books, keys, smtp, settings, tmp_path):
    from provider.web.portal import handsets, invitations, mailer
    from provider.web.portal.billing import moment

    settings.BILLING_SIGNING_KEY = str(Path(settings.MASTER_SECRET_FILE).parent / "billing.key")
    shots = Path(os.environ.get("LCI_PORTAL_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)

    def shot(name):
        page.screenshot(path=str(shots / f"{name}.png"))

    url = live_server.url
    ref = books.open(email="jordan@example.com", serial=SERIAL,
                     appointment=T("2026-01-09T10:00"), theft_protection=True)
    handset = Handset(keys)

    # the invitation e-mail, sign-up, the terms
    invitations.invite(ref, url)
    link = re.search(r"(http://\S+/invite/\S+/)", smtp.messages[-1].get_content()).group(1)
    page.goto(link)
    page.fill("#id_new_password1", "jordan-portal-2026")
    page.fill("#id_new_password2", "jordan-portal-2026")
    shot("signup")
    page.click("button[type=submit]")
    page.wait_for_url("**/terms/")
    page.check("#id_terms")
    page.check("#id_service_agreement")
    shot("terms")
    page.click("button[type=submit]")
    page.wait_for_url("**/account/")

    # the installation moved with 20 h notice: the fee shown, then charged
    books.to("2026-01-08T14:00")
    page.goto(url + "/appointments/")
    page.click("text=Reschedule")
    page.fill("#id_at", "2026-01-12T10:00")
    page.click("text=Show the fee")
    with books.engine() as e:
        quote = e.reschedule_quote(ref, T("2026-01-12T10:00"))
    assert page.inner_text("#fee") == fmt(quote["total"]) == "$61.75"
    shot("reschedule")
    page.click("text=Confirm and move")
    page.wait_for_url("**/appointments/")
    assert "charged $61.75" in page.inner_text("main")

    # installed; the 19 Jan charge fails: the e-mail, the account page
    books.to("2026-01-12T10:00")
    with books.engine() as e:
        e.install(ref)
    handset.at(T("2026-01-12T10:00"))
    handset.install()
    books.card("tok_card_1", "2026-01-18", "insufficient_funds")
    books.to("2026-01-19T10:00")
    mailer.send_pending()
    failed = [m for m in smtp.messages if m["Subject"] == "Your payment failed"]
    assert len(failed) == 1 and "insufficient_funds" in failed[0].get_content()
    page.goto(url + "/account/")
    assert page.inner_text("#status") == "past due"
    page.goto(url + "/notices/")
    assert "Your payment failed" in page.inner_text("main")
    assert "e-mail sent" in page.inner_text("main")
    shot("notices")

    # unpaid: recall on 26 Jan (the handset counts down), lockout on 2 Feb
    books.to("2026-01-26T10:00")
    handset.sync(books, ref)
    assert handset.compliance == "early_service_recall"
    handsets.record(SERIAL, handset.sim.status(), reported_at=moment(T("2026-01-26T10:00")))
    page.goto(url + "/account/")
    assert page.inner_text("#status") == "recall"
    # the handset counts its 7 days from when the directive reached it (10:00), not billing's 09:00
    assert "early service recall — service due by Feb 2, 2026 10:00" in page.inner_text("#handset")
    books.to("2026-02-02T10:00")
    handset.sync(books, ref)
    assert handset.compliance == "lockout"
    handsets.record(SERIAL, handset.sim.status(), reported_at=moment(T("2026-02-02T10:00")))
    page.goto(url + "/account/")
    assert page.inner_text("#status") == "lockout"
    assert "lockout" in page.inner_text("#handset")
    owed = books.view(ref)["balance"]
    assert page.inner_text("#balance") == fmt(owed)
    shot("account-lockout")

    # the card replaced: charged the balance at once
    page.goto(url + "/card/")
    page.select_option("#id_token", "tok_visa")
    page.click("text=Save card")
    page.wait_for_url("**/account/")
    assert f"charged {fmt(owed)}" in page.inner_text("main")
    assert page.inner_text("#balance") == "$0.00"
    shot("account-paid")

    # the lockout code: B on the handset, the request typed in the portal, the answer keyed in
    handset.sim.press("B")
    handset.sim.run_until(handset.sim.t_ms + 1000)
    assert handset.sim.hw.display.line1 == "CODE REQUEST"
    request = handset.sim.hw.display.line2
    page.goto(url + "/lockout-code/")
    page.fill("#id_request", request)
    page.click("text=Get the code")
    code = page.inner_text("#code")
    shot("lockout-code")
    for key in code + "#":
        handset.sim.press(key)
    handset.sim.run_until(handset.sim.t_ms + 1000)
    assert handset.compliance == "normal"
    handsets.record(SERIAL, handset.sim.status(), reported_at=moment(T("2026-02-02T10:05")))
    page.goto(url + "/account/")
    assert "normal" in page.inner_text("#handset")
    page.goto(url + f"/invoices/{ref}-0001/")
    shot("invoice")
