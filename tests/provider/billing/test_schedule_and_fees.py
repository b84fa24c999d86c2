"""Worked examples: the payment schedule, the schedule of fees, the admin fee, sales tax."""

from __future__ import annotations

import pytest

from provider.billing.money import round_half_up, tax_on
from provider.billing.policy import load_policy

from .harness import Harness, T, iso


def test_default_policy_reproduces_the_seed_fee_schedule():
    """Seed 001, SCHEDULE OF FEES: rental $54.12 / $108.24 / $216.48 (2/4/8 weeks); theft
    protection $5.00 / $10.00 / $20.00; admin fee $2.63 / $5.26 / $10.52; late fee $30.00;
    last-minute rescheduling $61.75. In cents: 5412/10824/21648, 500/1000/2000, 263/526/1052,
    3000, 6175."""
    p = load_policy()
    assert p.cycle_weeks == (2, 4, 8) and p.standard_weeks == 2
    assert p.items["rental"].prices == {2: 5412, 4: 10824, 8: 21648}
    assert p.items["theft_protection"].prices == {2: 500, 4: 1000, 8: 2000}
    assert p.items["theft_protection"].optional
    assert p.items["admin_fee"].prices == {2: 263, 4: 526, 8: 1052}
    assert p.admin_fee_automated_only
    assert (p.late_fee, p.reschedule_fee) == (3000, 6175)
    assert p.second_charge_after == 14 * 86400
    assert p.readings == {"late_fee": "uncorrected", "collections": "recall_then_lockout",
                          "bill_rest_of_month": "first_cycle"}


def test_initial_payment_then_second_charge_two_weeks_after_it_is_received():
    """Accepted Mon 6 Jan 09:00 with the installation booked for Fri 10 Jan; the initial invoice
    (one 2-week cycle, $54.12, OR: no tax) is paid on Wed 8 Jan 15:00, before the installation.
    Second charge: 8 Jan 15:00 + 14 days = Wed 22 Jan 15:00; then every 2 weeks: 5 Feb 15:00,
    19 Feb 15:00. Each automated charge = 5412 + admin 263 = 5675. (A device installed with the
    initial invoice unpaid goes into collections instead: test_unpaid_initial.py.)"""
    h = Harness()
    ref = h.open(pay_initial=False, appointment="2025-01-10T10:00")
    assert h.status(ref) == "awaiting_payment"
    assert h.balance(ref) == 5412
    h.to("2025-01-08T15:00")
    h.engine.pay(ref)
    assert h.status(ref) == "active"
    h.to("2025-02-20")
    cycles = h.invoices(ref, "cycle")
    assert [c["issued_at"] for c in cycles] == [
        "2025-01-22T15:00:00Z", "2025-02-05T15:00:00Z", "2025-02-19T15:00:00Z"]
    assert [c["period"] for c in cycles][0] == ["2025-01-22T15:00:00Z", "2025-02-05T15:00:00Z"]
    assert all(c["total"] == 5675 and c["status"] == "paid" for c in cycles)
    automated = [p for p in h.payments(ref) if p["kind"] == "automated"]
    assert [(p["at"], p["amount"]) for p in automated] == [
        ("2025-01-22T15:00:00Z", 5675), ("2025-02-05T15:00:00Z", 5675),
        ("2025-02-19T15:00:00Z", 5675)]


def test_admin_fee_only_on_automated_tokened_payments():
    """Initial invoice (paid by the client at acceptance): 5412, no admin fee.
    Automated cycle charge to the token: 5412 + 263 = 5675.
    Same client with no token on file: the cycle invoice is 5412 (manual, no admin fee).
    Cycle paid from prepaid credit: 5412, no admin fee."""
    h = Harness()
    auto = h.open(serial="A")
    manual = h.open(serial="B", token=None, pay_initial=False)
    h.engine.pay(manual, token="tok_ok")  # the client pays at the counter with a one-off card
    h.to("2025-01-20T09:00")
    assert [ln["item"] for ln in h.invoices(auto, "initial")[0]["lines"]] == ["rental"]
    assert h.invoices(auto, "cycle")[0]["total"] == 5675
    assert [ln["item"] for ln in h.invoices(auto, "cycle")[0]["lines"]] == ["rental", "admin_fee"]
    assert h.invoices(manual, "cycle")[0]["total"] == 5412
    assert h.invoices(manual, "cycle")[0]["collection"] == "manual"
    # prepaid credit: the client pays $60 more than owed; the next cycle (5412) comes from credit
    h.engine.pay(auto, amount=6000, token="tok_ok")
    h.to("2025-02-03T09:00")
    third = h.invoices(auto, "cycle")[1]
    assert (third["collection"], third["total"], third["status"]) == ("credit", 5412, "paid")
    assert h.balance(auto) == -(6000 - 5412)


def test_theft_protection_is_optional_and_priced_per_cycle():
    """With the plan: initial 5412 + 500 = 5912; automated cycle 5412 + 500 + 263 = 6175 (OR, no
    tax). Without it: 5412 and 5675."""
    h = Harness()
    with_plan = h.open(serial="A", theft=True)
    without = h.open(serial="B", theft=False)
    h.to("2025-01-20T09:00")
    assert h.invoices(with_plan, "initial")[0]["total"] == 5912
    assert h.invoices(with_plan, "cycle")[0]["total"] == 6175
    assert h.invoices(without, "initial")[0]["total"] == 5412
    assert h.invoices(without, "cycle")[0]["total"] == 5675


def test_sales_tax_by_state_and_county_half_up_per_invoice():
    """Hennepin County, MN: 6.875 % + 0.65 % = 7.525 %. Taxable: rental and theft protection,
    not the admin fee. Initial: 5912 x 0.07525 = 444.878 -> 445; total 6357.
    Cycle: taxable 5912 -> 445; total 5412 + 500 + 263 + 445 = 6620.
    Polk County, IA (6 % + 1 % = 7 %), rental only: 5412 x 0.07 = 378.84 -> 379 (5791).
    A state-only county (MN, Dakota: 6.875 % + 0): 5412 x 0.06875 = 372.075 -> 372."""
    h = Harness()
    mn = h.open(serial="A", state="MN", county="Hennepin", theft=True)
    ia = h.open(serial="B", state="IA", county="Polk")
    dakota = h.open(serial="C", state="MN", county="Dakota")
    h.to("2025-01-20T09:00")
    initial = h.invoices(mn, "initial")[0]
    assert (initial["tax_rate"], initial["tax"], initial["total"]) == ("7.525%", 445, 6357)
    cycle = h.invoices(mn, "cycle")[0]
    assert (cycle["subtotal"], cycle["tax"], cycle["total"]) == (6175, 445, 6620)
    assert h.invoices(ia, "initial")[0]["total"] == 5791
    assert h.invoices(dakota, "initial")[0]["tax"] == 372
    assert h.book("sales_tax_payable") == -(445 + 445 + 379 + 379 + 372 + 372)


def test_tax_is_rounded_half_up_not_to_even_and_per_invoice_not_per_line():
    """Harris County, TX: 6.25 %. A 4-week invoice: rental 10824 -> 10824 x 0.0625 = 676.5 exactly:
    half-up gives 677 (banker's rounding would give 676).
    With theft protection: (10824 + 1000) x 0.0625 = 739.0 -> 739 per invoice, where rounding
    each line would give 677 + 62.5->63 = 740."""
    from fractions import Fraction
    rate = Fraction(625, 10000)
    assert tax_on(10824, rate) == 677
    assert round(10824 * 0.0625) == 676  # what round-half-even would have done
    assert tax_on(10824 + 1000, rate) == 739
    assert round_half_up(Fraction(-13530, 20)) == -677  # credit notes round symmetrically
    h = Harness(overrides={"cycles.standard_weeks": 4, "schedule.second_charge_after_days": 28})
    plain = h.open(serial="A", state="TX", county="Harris")
    plan = h.open(serial="B", state="TX", county="Harris", theft=True)
    assert h.invoices(plain, "initial")[0]["tax"] == 677
    assert h.invoices(plan, "initial")[0]["tax"] == 739


def test_which_items_are_taxable_is_policy():
    """Default: the admin fee is not taxable: cycle tax in Polk County, IA (7 %) = 5412 x 0.07 =
    378.84 -> 379. With tax.taxable_items = [rental, admin_fee]: (5412 + 263) x 0.07 = 397.25 ->
    397."""
    h = Harness(overrides={"tax.taxable_items": ["rental", "admin_fee"]})
    ref = h.open(state="IA", county="Polk")
    h.to("2025-01-20T09:00")
    assert h.invoices(ref, "cycle")[0]["tax"] == 397
    h2 = Harness()
    ref2 = h2.open(state="IA", county="Polk")
    h2.to("2025-01-20T09:00")
    assert h2.invoices(ref2, "cycle")[0]["tax"] == 379


def test_an_account_cannot_be_opened_where_the_policy_has_no_tax_rate():
    """A state missing from tax.rates is refused (never bill without tax)."""
    from provider.billing.errors import InputError
    h = Harness()
    with pytest.raises(InputError, match="no sales tax rate for state 'ZZ'"):
        h.open(state="ZZ")


def test_billing_continues_until_the_device_is_returned():
    """Billing every 2 weeks from 20 Jan: removal on 10 Mar 12:00 (after the 3 Mar charge) stops
    it: no invoice on 17 Mar or later. Invoices: initial + cycles on 20 Jan, 3 Feb, 17 Feb, 3 Mar."""
    h = Harness()
    ref = h.open()
    h.to("2025-03-10T12:00")
    h.engine.remove_device(ref)
    h.to("2025-06-01")
    assert [i["issued_at"][:10] for i in h.invoices(ref, "cycle")] == [
        "2025-01-20", "2025-02-03", "2025-02-17", "2025-03-03"]
    assert h.status(ref) == "returned"
    assert h.account(ref).next_due_at is None
    assert iso(T("2025-03-10T12:00")) == h.history(ref)[-1]["at"]
