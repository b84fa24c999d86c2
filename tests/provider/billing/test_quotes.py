"""Quotes the portal shows before the client confirms: a reschedule's charges and when an
account change takes effect. A quote changes nothing, and the move then charges exactly it."""

from __future__ import annotations

import pytest

from provider.billing.errors import InputError, RuleError

from .harness import Harness, T


def test_a_reschedule_quote_is_what_the_move_then_charges():
    """Booked Fri 10 Jan 10:00 in Oregon (no sales tax). Quotes at 73 h (free), 26 h (6175),
    10 h (6175, the one short-notice move of the paid cycle), 4 h (6175 + another rental cycle
    5412 = 11587, the next billing date moves from 20 Jan to 3 Feb); each move charges the quote."""
    h = Harness()
    ref = h.open(appointment="2025-01-10T10:00")
    steps = [("2025-01-07T09:00", "2025-01-13T10:00", 0, 73),
             ("2025-01-12T08:00", "2025-01-14T10:00", 6175, 26),
             ("2025-01-14T00:00", "2025-01-15T10:00", 6175, 10),
             ("2025-01-15T06:00", "2025-01-16T10:00", 11587, 4)]
    for when, to, total, hours in steps:
        h.to(when)
        before = (h.book("cash"), h.account(ref).appointment_at, h.account(ref).short_reschedules)
        quote = h.engine.reschedule_quote(ref, T(to))
        assert (quote["total"], quote["notice_hours"]) == (total, hours)
        assert (h.book("cash"), h.account(ref).appointment_at,
                h.account(ref).short_reschedules) == before  # the quote changed nothing
        h.engine.reschedule(ref, T(to))
        assert h.book("cash") - before[0] == total
    assert quote["next_billing_at"] == T("2025-02-03T09:00") == h.account(ref).next_bill_at
    assert [c["charge"] for c in quote["charges"]] == ["reschedule_fee", "booking_cycle"]


def test_a_reschedule_quote_refuses_what_the_move_refuses():
    h = Harness()
    ref = h.open(appointment="2025-01-10T10:00")
    with pytest.raises(InputError):
        h.engine.reschedule_quote(ref, T("2025-01-06T08:00"))
    h.to("2025-01-10T10:00")
    h.engine.install(ref)
    with pytest.raises(RuleError):
        h.engine.reschedule_quote(ref, T("2025-01-20T10:00"))


def test_change_effective_follows_the_15_day_rule():
    """Next billing 20 Jan: on 6 Jan (14 days ahead) a change waits until just after it; a new
    card while a payment is failing applies now."""
    h = Harness()
    ref = h.open()
    assert h.engine.change_effective(ref, "theft_protection") == T("2025-01-20T09:00") + 1
    assert h.engine.change_effective(ref, "payment_method") == T("2025-01-20T09:00") + 1
    h.card("tok_ok", "2025-01-19", "declined")
    h.to("2025-01-21")
    assert h.engine.change_effective(ref, "payment_method") == "now"
    assert h.engine.change_effective(ref, "cycle_weeks") == T("2025-02-03T09:00") + 1
    with pytest.raises(InputError):
        h.engine.change_effective(ref, "email")


def test_the_next_bill_quote_is_the_invoice_the_daily_run_then_issues():
    """Minnesota, Hennepin (the policy's sample rate), theft plan, card on file: the 20 Jan cycle
    invoice (rental 5412 + plan 500 taxable, admin fee 263) is quoted on 6 Jan, then issued."""
    h = Harness()
    ref = h.open(state="MN", county="Hennepin", theft=True)
    quote = h.engine.next_bill_quote(ref)
    assert quote["at"] == T("2025-01-20T09:00") and quote["collection"] == "automated"
    assert [line["item"] for line in quote["lines"]] == ["rental", "theft_protection", "admin_fee"]
    h.to("2025-01-20T10:00")
    [issued] = h.invoices(ref, "cycle")
    assert issued["total"] == quote["total"] and issued["total"] > 5412 + 500 + 263
    h.engine.remove_device(ref)
    assert h.engine.next_bill_quote(ref) is None


@pytest.mark.parametrize("when,overrides", [
    ("2026-01-10T09:00", {}),                          # first cycle: rest of the month
    ("2026-01-10T09:00", {"fees.removal_fee": 2500}),  # ... and the removal service
    ("2026-02-10T09:00", {"fees.removal_fee": 2500}),  # later: the removal service only
    ("2026-02-10T09:00", {}),                          # later, no fee: nothing
])
def test_a_removal_quote_made_ahead_is_what_the_removal_then_bills(when, overrides):
    """Quoted on 6 Jan for a removal on the booked date; on that date the removal bills exactly
    the quote (the cycles billed in between counted as the daily run bills them)."""
    h = Harness(overrides=overrides, start="2026-01-05T09:00")
    ref = h.open(state="MN", county="Hennepin", theft=True)
    h.to("2026-01-06")
    quote = h.engine.removal_quote(ref, T(when))
    h.to(when)
    before = {i["number"] for i in h.invoices(ref)}
    h.engine.remove_device(ref)
    billed = [i for i in h.invoices(ref) if i["number"] not in before]
    assert sum(i["total"] for i in billed) == quote["total"]
    assert [i["kind"] for i in billed] == [c["charge"] for c in quote["charges"]]
    with pytest.raises(RuleError):
        h.engine.removal_quote(ref, T(when))


def test_a_cancellation_quote_is_what_cancelling_then_credits():
    """The worked example of the cancellation rule (Hennepin County, 6 weeks of rental paid, a
    rescheduling fee): quoted 11638 (two prepaid cycles with their tax; the fee is a service);
    a quote before any payment voids the initial invoice (5412); an installed device has none."""
    h = Harness()
    ref = h.open(state="MN", county="Hennepin", appointment="2025-01-10T15:00")
    h.to("2025-01-08")
    h.engine.prepay(ref, 2)
    h.to("2025-01-09T09:00")
    h.engine.reschedule(ref, T("2025-01-20T10:00"))
    h.to("2025-01-12")
    quote = h.engine.cancellation_quote(ref)
    assert quote["credited"] == 11638 and len(quote["credit_notes"]) == 2
    assert h.status(ref) == "active"  # the quote changed nothing
    assert h.engine.cancel_installation(ref) == {"credited": quote["credited"]}
    unpaid = h.open(serial="LCI7-0002", pay_initial=False, appointment="2025-01-20T10:00")
    assert h.engine.cancellation_quote(unpaid)["credited"] == 5412
    installed = h.open(serial="LCI7-0003")
    with pytest.raises(RuleError):
        h.engine.cancellation_quote(installed)
