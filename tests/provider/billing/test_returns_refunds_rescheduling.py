"""Worked examples: returns, refunds, installation rescheduling and account changes.

Accounts opened and paid Mon 6 Jan 2025 09:00 (the anchor), Oregon (no tax) unless said, no
theft protection; 4-week months run from the anchor: 6 Jan, 3 Feb, 3 Mar, 31 Mar, 28 Apr ...
"""

from __future__ import annotations

import pytest

from provider.billing.errors import RuleError

from .harness import Harness, T


# ----------------------------------------------------------------------------------- returns
def test_removal_in_the_first_two_week_cycle_bills_the_rest_of_the_month():
    """Removed Wed 15 Jan (day 9, inside the first cycle 6-20 Jan). The month (4 weeks) ends 3 Feb;
    paid through 20 Jan, so 14 more days of rental are billed: 5412 x 14/14 = 5412, in Hennepin
    County, MN (7.525 %): tax 5412 x 0.07525 = 407.253 -> 407, total 5819, charged at once.
    Theft protection is not part of the rest-of-month bill. Nothing is billed after that."""
    h = Harness()
    ref = h.open(state="MN", county="Hennepin", theft=True)
    h.to("2025-01-15T10:00")
    out = h.engine.remove_device(ref)
    assert out == {"billed": ["rest_of_month"], "refunded": 0}
    [inv] = h.invoices(ref, "rest_of_month")
    assert [(ln["item"], ln["amount"]) for ln in inv["lines"]] == [("rental", 5412)]
    assert (inv["tax"], inv["total"], inv["status"]) == (407, 5819, "paid")
    assert inv["period"] == ["2025-01-20T09:00:00Z", "2025-02-03T09:00:00Z"]
    h.to("2025-04-01")
    assert h.invoices(ref, "cycle") == []
    assert h.status(ref) == "returned" and h.balance(ref) == 0
    h.engine.close(ref)
    assert h.status(ref) == "closed"


def test_removal_after_the_first_cycle_bills_nothing_more_by_default():
    """Reading "first_cycle": removed 5 Feb (in month 2, paid through 17 Feb): nothing more is
    billed. Reading "every_month": removed 10 Feb 12:00, month 2 ends 3 Mar, paid through 17 Feb ->
    14 days more: 5412."""
    h = Harness()
    ref = h.open()
    h.to("2025-02-05")
    assert h.engine.remove_device(ref)["billed"] == []
    h2 = Harness(overrides={"returns.bill_rest_of_month": "every_month"})
    ref2 = h2.open()
    h2.to("2025-02-10T12:00")
    assert h2.engine.remove_device(ref2)["billed"] == ["rest_of_month"]
    assert h2.invoices(ref2, "rest_of_month")[0]["total"] == 5412
    assert h2.invoices(ref2, "rest_of_month")[0]["period"] == [
        "2025-02-17T09:00:00Z", "2025-03-03T09:00:00Z"]


def test_a_returned_account_with_a_balance_cannot_be_closed():
    """Removed in the first cycle with a declining card: the 5412 rest-of-month charge fails; close
    is refused until it is paid (then it closes)."""
    h = Harness()
    ref = h.open(token="tok_declined", pay_initial=False)
    h.engine.pay(ref, token="tok_ok")
    h.to("2025-01-10")
    h.engine.remove_device(ref)
    assert h.balance(ref) == 5412
    with pytest.raises(RuleError, match="not settled"):
        h.engine.close(ref)
    h.engine.pay(ref, token="tok_ok")
    h.engine.close(ref)
    assert h.status(ref) == "closed"


# ----------------------------------------------------------------------------------- refunds
def test_rental_paid_a_year_in_advance_is_refunded_for_the_months_after_removal():
    """10 Jan: the client prepays 26 two-week cycles (52 weeks, >= one year) = 26 x 5412 = 140712,
    covering 20 Jan 2025 .. 19 Jan 2026. Removed 1 Apr 2025: that is month 4 (31 Mar 09:00 ..
    28 Apr 09:00). Cycles starting on or after 28 Apr are refunded: they start 20 Jan + 14k days,
    k = 7 .. 25, i.e. 19 cycles x 5412 = 102828, paid back to the card. The cycle 14-28 Apr
    (in the month of removal) is kept, "even by just a few days"."""
    h = Harness()
    ref = h.open()
    h.to("2025-01-10")
    out = h.engine.prepay(ref, 26)
    assert out["amount"] == 140712 and out["paid_through"] == T("2026-01-19T09:00")
    h.to("2025-04-01")
    assert h.engine.remove_device(ref) == {"billed": [], "refunded": 102828}
    notes = h.invoices(ref, "credit_note")
    assert len(notes) == 19 and notes[0]["refers_to"] == h.invoices(ref, "cycle")[7]["number"]
    refund = [p for p in h.payments(ref) if p["kind"] == "refund"]
    assert [(r["amount"], r["status"]) for r in refund] == [(102828, "succeeded")]
    assert h.balance(ref) == 0
    assert h.book("cash") == 5412 + 140712 - 102828


def test_rental_paid_less_than_a_year_in_advance_is_not_refunded():
    """Prepaid 13 cycles (26 weeks < 52): "not refundable" -> removal on 1 Apr refunds nothing."""
    h = Harness()
    ref = h.open()
    h.to("2025-01-10")
    h.engine.prepay(ref, 13)
    h.to("2025-04-01")
    assert h.engine.remove_device(ref)["refunded"] == 0
    assert h.invoices(ref, "credit_note") == []


def test_cancelled_installation_refunds_only_rental_days_beyond_two_weeks():
    """Installation booked for 20 Jan; initial 2 weeks paid 6 Jan; on 8 Jan the client prepays two
    more cycles (20 Jan .. 17 Feb): 6 weeks of rental paid, in Hennepin County, MN: each cycle
    invoice is 5412 + tax 407 = 5819. On 9 Jan a reschedule with 30 h notice costs the 6175 fee
    (a service: never refunded). Cancelled 12 Jan: the first 14 days are kept, the two prepaid
    cycles are credited in full, with their tax: 2 x 5819 = 11638, refunded to the card."""
    h = Harness()
    ref = h.open(state="MN", county="Hennepin", appointment="2025-01-10T15:00")
    h.to("2025-01-08")
    h.engine.prepay(ref, 2)
    h.to("2025-01-09T09:00")
    h.engine.reschedule(ref, T("2025-01-20T10:00"))
    assert h.invoices(ref, "reschedule_fee")[0]["total"] == 6175
    h.to("2025-01-12")
    assert h.engine.cancel_installation(ref) == {"credited": 11638}
    refund = [p for p in h.payments(ref) if p["kind"] == "refund"]
    assert [r["amount"] for r in refund] == [11638]
    assert h.status(ref) == "cancelled" and h.balance(ref) == 0
    assert h.book("revenue:reschedule_fee") == -6175
    assert h.book("revenue:rental") == -5412


def test_cancelled_installation_with_only_two_weeks_paid_refunds_nothing():
    """Only the initial two weeks paid: "we will only refund rental days if you have paid more than
    2 weeks" -> nothing credited; the account is cancelled and can be closed."""
    h = Harness()
    ref = h.open(appointment="2025-01-15T10:00")
    h.to("2025-01-09")
    assert h.engine.cancel_installation(ref) == {"credited": 0}
    h.engine.close(ref)
    assert h.status(ref) == "closed" and h.book("revenue:rental") == -5412


def test_cancelled_before_the_initial_payment_voids_the_initial_invoice():
    """Nothing was paid, nothing booked: the 5412 initial invoice is voided by a credit note."""
    h = Harness()
    ref = h.open(pay_initial=False, appointment="2025-01-15T10:00")
    h.engine.cancel_installation(ref)
    assert h.balance(ref) == 0 and h.status(ref) == "cancelled"
    assert h.invoices(ref, "credit_note")[0]["total"] == -5412


def test_an_installed_device_cannot_be_cancelled_only_removed():
    h = Harness()
    ref = h.open()
    with pytest.raises(RuleError, match="already installed"):
        h.engine.cancel_installation(ref)


# ------------------------------------------------------------------------------ rescheduling
def test_rescheduling_fees_and_the_short_notice_rule():
    """Installation booked for Fri 10 Jan 10:00 (initial cycle paid 6 Jan: paid through 20 Jan).
    a) 7 Jan 09:00 -> 13 Jan 10:00: 73 h notice: free.
    b) 12 Jan 08:00 -> 14 Jan 10:00: 26 h notice (< 48 h): fee 6175.
    c) 14 Jan 00:00 -> 15 Jan 10:00: 10 h (< 24 h), the one short-notice move of this cycle: 6175.
    d) 15 Jan 06:00 -> 16 Jan 10:00: 4 h, a second short-notice move: 6175 and another rental cycle
       (5412, period 20 Jan .. 3 Feb), so the next billing date moves from 20 Jan to 3 Feb.
    Charged: 5412 + 3 x 6175 + 5412 = 29349."""
    h = Harness()
    ref = h.open(appointment="2025-01-10T10:00")
    steps = [("2025-01-07T09:00", "2025-01-13T10:00", [], 73),
             ("2025-01-12T08:00", "2025-01-14T10:00", ["reschedule_fee"], 26),
             ("2025-01-14T00:00", "2025-01-15T10:00", ["reschedule_fee"], 10),
             ("2025-01-15T06:00", "2025-01-16T10:00", ["reschedule_fee", "booking_cycle"], 4)]
    for when, to, charged, hours in steps:
        h.to(when)
        assert h.engine.reschedule(ref, T(to)) == {"charged": charged, "notice_hours": hours}
    assert h.invoices(ref, "booking")[0]["period"] == ["2025-01-20T09:00:00Z",
                                                       "2025-02-03T09:00:00Z"]
    assert h.account(ref).next_bill_at == T("2025-02-03T09:00")
    assert h.book("cash") == 29349 and h.balance(ref) == 0
    h.to("2025-01-16T10:00")
    h.engine.install(ref)
    with pytest.raises(RuleError):
        h.engine.reschedule(ref, T("2025-01-20T10:00"))
    h.to("2025-02-04")
    assert h.invoices(ref, "cycle")[0]["issued_at"] == "2025-02-03T09:00:00Z"


# --------------------------------------------------------------------------- account changes
def test_a_change_less_than_15_days_before_the_next_billing_date_applies_after_it():
    """Next billing dates 20 Jan, 3 Feb, 17 Feb. On 21 Jan (13 days before 3 Feb) the client gives
    a new card and drops theft protection: the 3 Feb charge still uses the old card and includes
    the plan (5412 + 500 + 263 = 6175); from 17 Feb: new card, 5412 + 263 = 5675.
    (With 2-week cycles every change is less than 15 days ahead of the next billing date.)"""
    h = Harness()
    ref = h.open(theft=True)
    h.to("2025-01-21")
    assert h.engine.set_payment_method(ref, "tok_visa")["effective"] == T("2025-02-03T09:00") + 1
    h.engine.set_theft_protection(ref, False)
    h.to("2025-02-18")
    charges = [(p["at"][:10], p["method"], p["amount"]) for p in h.payments(ref)
               if p["kind"] == "automated"]
    assert charges == [("2025-01-20", "tok_ok", 6175), ("2025-02-03", "tok_ok", 6175),
                       ("2025-02-17", "tok_visa", 5675)]
    assert [n["kind"] for n in h.notices(ref)] == ["change_scheduled", "change_scheduled"]


def test_a_change_15_days_ahead_applies_at_once():
    """On a 4-week cycle (billing 3 Feb, 3 Mar), a card given on 4 Feb (27 days ahead) applies now."""
    h = Harness(overrides={"cycles.standard_weeks": 4, "schedule.second_charge_after_days": 28})
    ref = h.open()
    h.to("2025-02-04")
    assert h.engine.set_payment_method(ref, "tok_visa") == {"effective": "now"}
    assert h.account(ref).method_token == "tok_visa"


def test_a_new_card_for_a_failed_payment_applies_at_once_and_is_charged():
    """The 20 Jan charge failed; on 21 Jan (13 days before 3 Feb) a new card is given: because the
    method failed it applies at once and the 5675 balance is charged to it immediately."""
    h = Harness()
    ref = h.open()
    h.card("tok_ok", "2025-01-19", "insufficient_funds")
    h.to("2025-01-21")
    assert h.engine.set_payment_method(ref, "tok_visa") == {"effective": "now"}
    last = h.payments(ref)[-1]
    assert (last["kind"], last["amount"], last["status"]) == ("immediate", 5675, "succeeded")
    assert h.status(ref) == "active"
