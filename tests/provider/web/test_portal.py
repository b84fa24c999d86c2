"""The portal's pages over Django's test client, against the real billing engine: figures come
from the engine, payments are idempotent, the card rule, changes, the lockout code, appointments."""

from __future__ import annotations

import re

import pytest

from firmware.authority import Authority
from host_tools.keys import derive_device_secret
from provider.billing.money import fmt

from .conftest import VEHICLE, T

pytestmark = pytest.mark.django_db


def _key(page) -> str:
    return re.search(rb'name="key" value="([0-9a-f]{32})"', page.content).group(1).decode()


def test_the_account_page_shows_the_engines_figures(books, make_client):
    ref = books.open(theft_protection=True)
    books.to("2026-01-10")
    web = make_client(ref)
    page = web.get("/account/")
    assert page.status_code == 200
    with books.engine() as e:
        quote = e.next_bill_quote(ref)
    text = page.content.decode()
    assert f'id="balance">{fmt(0)}<' in text
    assert f'id="next-amount">{fmt(quote["total"])}<' in text  # the engine's figure, formatted
    assert "Jan 19, 2026" in text and "2 weeks" in text


def test_terms_come_first_and_are_recorded_with_time_and_ip(books, make_client):
    ref = books.open()
    web = make_client(ref, accept=False)
    assert web.get("/account/").url == "/terms/"
    terms = web.get("/terms/").content.decode()  # the policy's figures, not the template's
    assert "within 72 hours adds a late fee of $30.00" in terms
    assert "Unpaid for 7 days after a failure: early service recall; 7 days later" in terms
    assert web.post("/terms/", {"terms": "on"}).status_code == 200  # both are needed
    assert web.post("/terms/", {"terms": "on", "service_agreement": "on"},
                    REMOTE_ADDR="203.0.113.9").url == "/account/"
    from provider.web.portal.models import TermsAcceptance
    rows = TermsAcceptance.objects.filter(client__ref=ref)
    assert sorted(r.document for r in rows) == ["service_agreement", "terms"]
    assert {r.ip for r in rows} == {"203.0.113.9"} and all(r.accepted_at for r in rows)
    assert web.get("/account/").status_code == 200


def test_pay_now_partial_then_full_and_a_double_submit_pays_once(books, make_client):
    ref = books.open()
    books.card("tok_card_1", "2026-01-18", "declined")
    books.to("2026-01-19T10:00")
    balance = books.view(ref)["balance"]
    assert balance > 0
    web = make_client(ref)
    books.card("tok_card_1", "2026-01-19T10:00", "ok")
    form = web.get("/pay/")
    key = _key(form)
    first = web.post("/pay/", {"key": key, "how": "part", "amount": "10.00"})
    assert first.status_code == 302
    again = web.post("/pay/", {"key": key, "how": "part", "amount": "10.00"})  # double submit
    assert again.status_code == 302 and again.url == "/payments/"
    assert books.view(ref)["balance"] == balance - 1000
    web.post("/pay/", {"key": _key(web.get("/pay/")), "how": "full"})
    assert books.view(ref)["balance"] == 0
    assert books.view(ref)["status"] == "active"


def test_a_new_card_while_a_payment_fails_is_charged_at_once(books, make_client):
    ref = books.open()
    books.card("tok_card_1", "2026-01-18", "insufficient_funds")
    books.to("2026-01-20")
    owed = books.view(ref)["balance"]
    web = make_client(ref)
    assert "applies at once" in web.get("/card/").content.decode()
    page = web.post("/card/", {"token": "tok_visa"}, follow=True)
    assert f"charged {fmt(owed)}" in page.content.decode()
    assert books.view(ref)["balance"] == 0 and books.view(ref)["payment_method"] == "tok_visa"


def test_a_card_change_without_a_failure_waits_for_the_15_day_rule(books, make_client):
    ref = books.open()
    web = make_client(ref)
    page = web.get("/card/").content.decode()
    assert "Jan 19, 2026 09:00" in page  # just after the next billing date
    web.post("/card/", {"token": "tok_visa"})
    assert books.view(ref)["pending_change"]["payment_method"] == "tok_visa"


def test_cycle_and_plan_changes_show_the_effective_date_before_confirming(books, make_client):
    ref = books.open()
    web = make_client(ref)
    preview = web.post("/changes/", {"cycle_weeks": "4", "theft_protection": "on"})
    assert "Jan 19, 2026 09:00 UTC" in preview.content.decode()
    assert books.view(ref)["pending_change"] is None  # nothing changed yet
    web.post("/changes/", {"cycle_weeks": "4", "theft_protection": "on", "confirm": "yes"})
    pending = books.view(ref)["pending_change"]
    assert pending["cycle_weeks"] == 4 and pending["theft_protection"] is True


def _request(keys, serial="LCI7-0001", counter=1):
    device = Authority(serial, keys.root.public_key, derive_device_secret(keys.master, serial))
    return device, device.request_code("clear", counter, b"\x02" * 8)


def test_the_lockout_code_only_after_full_payment_and_once_per_request(books, keys, make_client):
    ref = books.open()
    books.into_lockout(ref)
    web = make_client(ref)
    device, request = _request(keys)
    refused = web.post("/lockout-code/", {"request": request})
    assert "Pay your balance in full first" in refused.content.decode()
    books.card("tok_card_1", "2026-02-02", "ok")
    web.post("/pay/", {"key": _key(web.get("/pay/")), "how": "full"})
    assert books.view(ref)["balance"] == 0
    page = web.post("/lockout-code/", {"request": " ".join([request[:4], request[4:]])})
    code = re.search(rb'id="code">(\d+)<', page.content).group(1).decode()
    from provider.billing import reports
    with books.engine() as e:
        lockout = next(d["id"] for d in reports.directives(e.conn, e.store.account_by_ref(ref).id)
                       if d["action"] == "lockout")
    assert device.check_code(request, code, "clear", lockout)  # bound to the lockout it clears
    second = web.post("/lockout-code/", {"request": request})
    assert b'id="code"' not in second.content  # answered once
    from provider.web.portal.models import CodeRequest
    digits = request.replace(" ", "")
    assert [(r.answered, r.request) for r in CodeRequest.objects.order_by("id")] == [
        (False, digits), (True, digits), (False, digits)]


def test_rescheduling_the_installation_shows_the_fee_then_charges_it(books, make_client):
    ref = books.open(appointment=T("2026-01-09T10:00"))
    books.to("2026-01-08T14:00")  # 20 h notice: fee, the one short-notice move of the cycle
    web = make_client(ref)
    web.get("/appointments/")
    from provider.web.portal.models import Appointment
    appt = Appointment.objects.get(client__ref=ref, kind="installation")
    before = books.charged(ref)
    quote = web.post(f"/appointments/{appt.pk}/reschedule/", {"at": "2026-01-12T10:00"})
    with books.engine() as e:
        expected = e.reschedule_quote(ref, T("2026-01-12T10:00"))["total"]
    assert expected == 6175 + 0  # the rescheduling fee (not taxable in the default policy)
    assert f'id="fee">{fmt(expected)}<' in quote.content.decode()
    assert books.charged(ref) == before  # shown, not charged
    web.post(f"/appointments/{appt.pk}/reschedule/", {"at": "2026-01-12T10:00", "confirm": "yes"})
    assert books.charged(ref) - before == expected
    appt.refresh_from_db()
    assert appt.at.isoformat().startswith("2026-01-12T10:00") and appt.charged == expected


def test_removal_and_vehicle_switch_are_booked_moved_and_cancelled(books, make_client,
                                                                  make_center):
    center = make_center()
    ref = books.open()
    web = make_client(ref)
    web.post("/appointments/book/", {"kind": "vehicle_switch", "center": center.pk,
                                     "slot": "2026-01-20T10:00", **VEHICLE, "confirm": "1"})
    from provider.web.portal.models import Appointment
    appt = Appointment.objects.get(client__ref=ref)
    web.post(f"/appointments/{appt.pk}/reschedule/", {"at": "2026-01-21T10:00", "confirm": "yes"})
    appt.refresh_from_db()
    assert appt.at.day == 21 and appt.charged == 0
    web.post(f"/appointments/{appt.pk}/cancel/", {"confirm": "yes"})
    appt.refresh_from_db()
    assert appt.status == "cancelled"
    assert [c.action for c in appt.changes.order_by("id")] == ["booked", "rescheduled",
                                                                "cancelled"]


def test_invoices_payments_and_notices_are_listed_and_printable(books, make_client):
    ref = books.open()
    books.card("tok_card_1", "2026-01-18", "declined")
    books.to("2026-01-20")
    web = make_client(ref)
    invoices = web.get("/invoices/").content.decode()
    number = f"{ref}-0002"
    assert number in invoices and "window.print()" in invoices
    one = web.get(f"/invoices/{number}/").content.decode()
    assert "Sales tax" in one and "@media print" in one
    assert "card_declined".replace("_", " ") in web.get("/payments/").content.decode()
    assert "Your payment failed" in web.get("/notices/").content.decode()


def test_a_removal_booking_shows_what_the_removal_will_bill(books, make_client, make_center):
    """Installed at opening on 5 Jan; a removal booked for 9 Jan falls in the first two-week
    cycle: the engine's removal quote (the rest of the 4-week month) is shown before confirming;
    moved to 10 Feb, after the first cycle, it bills nothing more."""
    center = make_center()
    ref = books.open()
    web = make_client(ref)
    booking = {"kind": "removal", "center": center.pk, "slot": "2026-01-09T10:00", **VEHICLE}
    page = web.post("/appointments/book/", booking)
    with books.engine() as e:
        quote = e.removal_quote(ref, T("2026-01-09T10:00"))
    assert quote["total"] > 0
    assert f'id="fee">{fmt(quote["total"])}<' in page.content.decode()
    web.post("/appointments/book/", {**booking, "confirm": "1"})
    from provider.web.portal.models import Appointment
    appt = Appointment.objects.get(client__ref=ref)
    moved = web.post(f"/appointments/{appt.pk}/reschedule/", {"at": "2026-02-10T10:00"})
    assert 'id="fee">$0.00<' in moved.content.decode()


def test_cancelling_the_installation_shows_the_credit_first(books, make_client):
    """Booked for 20 Jan, the initial two weeks paid: cancelling refunds nothing (the first two
    weeks are kept) — shown as $0.00 before confirming, then the account is cancelled."""
    ref = books.open(appointment=T("2026-01-20T10:00"))
    web = make_client(ref)
    web.get("/appointments/")
    from provider.web.portal.models import Appointment
    appt = Appointment.objects.get(client__ref=ref)
    page = web.get(f"/appointments/{appt.pk}/cancel/").content.decode()
    with books.engine() as e:
        assert f'id="credit">{fmt(e.cancellation_quote(ref)["credited"])}<' in page
    assert books.view(ref)["status"] == "active"
    web.post(f"/appointments/{appt.pk}/cancel/", {"confirm": "yes"})
    assert books.view(ref)["status"] == "cancelled"
    appt.refresh_from_db()
    assert appt.status == "cancelled"


@pytest.mark.parametrize("status", ["cancelled", "closed"])
def test_an_ended_account_still_shows_its_page(books, make_client, status):
    ref = books.open(appointment=T("2026-01-20T10:00"))
    with books.engine() as e:
        e.cancel_installation(ref)
        if status == "closed":
            e.close(ref)
    page = make_client(ref).get("/account/").content.decode()
    assert f'id="status">{status}<' in page and "next payment is automatic" not in page


def test_a_declined_pay_now_says_so_and_leaves_a_fresh_form(books, make_client):
    ref = books.open()
    books.card("tok_card_1", "2026-01-18", "declined")
    books.to("2026-01-19T10:00")
    owed = books.view(ref)["balance"]
    web = make_client(ref)
    form = web.get("/pay/")
    page = web.post("/pay/", {"key": _key(form), "how": "full"})
    assert "Your card was declined (card_declined)" in page.content.decode()
    assert _key(page) != _key(form)  # a new one-time key for the next try
    assert books.view(ref)["balance"] == owed


def test_an_invitation_for_an_address_already_signed_up_says_sign_in(books, db):
    from django.contrib.auth import get_user_model
    from django.test import Client

    from provider.web.portal import invitations
    first = books.open(email="twice@example.com")
    second = books.open(email="twice@example.com", serial="LCI7-0002", token="tok_card_2")
    get_user_model().objects.create_user("twice@example.com", "twice@example.com", "pw")
    invitation = invitations.invite(second, "http://testserver/", send_mail=False)
    page = Client().post(f"/invite/{invitation.token}/",
                         {"new_password1": "a-long-pass-99", "new_password2": "a-long-pass-99"})
    assert page.status_code == 200 and "sign in instead" in page.content.decode()
    invitation.refresh_from_db()
    assert invitation.accepted_at is None and first != second
