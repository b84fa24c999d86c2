"""Worked examples: a device installed while its initial invoice is unpaid.

The initial invoice is a manual invoice (no --pay-initial), due `schedule.manual_due_days` after
acceptance (0 by default: at acceptance). A device that is installed and whose initial invoice is
unpaid at that due date is a failed payment: the account falls past due and the policy's collections
clock runs (recall after 7 days, lockout 7 days later; no Automated Payment Late Fee: no automated
payment was attempted), and the billing schedule
starts then (the rental runs while the device is in the car). A device not yet installed waits in
awaiting_payment (nothing to recall). Removal and the path to closing work from every live state.

Oregon (no sales tax), no theft protection: the initial invoice is 5412. Accepted Mon 6 Jan 2025
09:00 and, without an appointment, installed then.
"""

from __future__ import annotations

import pytest

from provider.billing import reports
from provider.billing.errors import RuleError

from .harness import Harness, T


def _kinds(h, ref):
    return [(n["at"][:13], n["kind"]) for n in h.notices(ref)]


def test_an_installed_device_with_an_unpaid_initial_invoice_goes_through_collections():
    """No card, no initial payment, installed at acceptance (6 Jan 09:00):
    6 Jan 09:00  initial 5412 unpaid at its due date -> past_due, notice payment_overdue;
                 the schedule starts: next billing 20 Jan 09:00
    13 Jan 09:00 7 days past due -> recall {"cause": "unpaid_balance", "days": 7}
    20 Jan 09:00 cycle invoice 5412 (manual: no card, no admin fee; 10824), its charge fails
                 (no_payment_method: nothing was sent to a processor, so no late fee follows);
                 lockout {"cause": "unpaid_balance"}
    24 Jan 12:00 paid in full (a cash payment reported with its key) -> active, clear token and
                 keypad clear code; the next billing date stays 3 Feb 09:00."""
    h = Harness()
    ref = h.open(token=None, pay_initial=False)
    assert h.status(ref) == "past_due"
    a = h.account(ref)
    assert (a.past_due_since, a.recall_at, a.next_bill_at) == (
        T("2025-01-06T09:00"), T("2025-01-13T09:00"), T("2025-01-20T09:00"))
    h.to("2025-01-24T09:00")
    assert h.status(ref) == "lockout"
    assert h.balance(ref) == 5412 + 5412
    assert _kinds(h, ref) == [
        ("2025-01-06T09", "payment_overdue"), ("2025-01-13T09", "recall"),
        ("2025-01-20T09", "payment_failed"), ("2025-01-20T09", "lockout")]
    assert [(d["decided_at"][:13], d["action"], d["args"]) for d in h.directives(ref)] == [
        ("2025-01-13T09", "recall", {"cause": "unpaid_balance", "days": 7, "seq": 1}),
        ("2025-01-20T09", "lockout", {"cause": "unpaid_balance", "seq": 2})]
    assert h.invoices(ref, "late_fee") == []
    h.to("2025-01-24T12:00")
    out = h.engine.pay(ref, key="evt_cash_1", external=True)
    assert out["amount"] == 10824
    assert h.status(ref) == "active" and h.balance(ref) == 0
    assert [(d["action"], d["delivery"]) for d in h.directives(ref)][2:] == [
        ("clear", "token"), ("clear", "code")]
    assert h.account(ref).next_bill_at == T("2025-02-03T09:00")


def test_initial_paid_late_keeps_the_schedule_from_its_due_date():
    """Card on file but no --pay-initial: past due at 6 Jan 09:00 (nothing is charged for the
    initial invoice without the client). The client pays it on 7 Jan 12:00 -> active (notice
    paid_in_full), no late fee, no directive. The next billing date is 20 Jan 09:00 (14 days from the due date, not from the
    late payment); the charge after a failure is announced 48 h ahead (18 Jan 09:00) and succeeds:
    5412 + admin fee 263 = 5675."""
    h = Harness()
    ref = h.open(token="tok_ok", pay_initial=False)
    assert h.status(ref) == "past_due"
    h.to("2025-01-07T12:00")
    h.engine.pay(ref)
    assert h.status(ref) == "active"
    h.to("2025-01-21")
    assert h.invoices(ref, "late_fee") == [] and h.directives(ref) == []
    assert [(n["at"][:13], n["kind"], (n["attempt_at"] or "")[:13]) for n in h.notices(ref)] == [
        ("2025-01-06T09", "payment_overdue", ""), ("2025-01-07T12", "paid_in_full", ""),
        ("2025-01-18T09", "attempt_scheduled", "2025-01-20T09")]
    assert [(p["at"][:13], p["kind"], p["amount"], p["status"]) for p in h.payments(ref)] == [
        ("2025-01-07T12", "client", 5412, "succeeded"),
        ("2025-01-20T09", "automated", 5675, "succeeded")]
    assert h.status(ref) == "active" and h.balance(ref) == 0
    view = reports.account_view(h.conn, ref)
    assert (view["initial_payment_at"], view["billing_anchor_at"]) == (
        "2025-01-07T12:00:00Z", "2025-01-06T09:00:00Z")


def test_a_declined_initial_charge_at_acceptance_is_a_failed_payment():
    """--pay-initial with a card that declines: the charge fails at acceptance (one notice,
    payment_failed) and the installed account falls past due then; recall 13 Jan 09:00. The charge
    was the client's initial payment, not an automated one: no late fee."""
    h = Harness()
    ref = h.open(token="tok_declined", pay_initial=True)
    assert h.status(ref) == "past_due"
    assert _kinds(h, ref) == [("2025-01-06T09", "payment_failed")]
    h.to("2025-01-13T09:00")
    assert h.status(ref) == "recall"
    assert _kinds(h, ref)[1:] == [("2025-01-13T09", "recall")]


def test_collections_start_at_the_installation_when_it_comes_later():
    """Appointment Fri 10 Jan 10:00, initial unpaid: awaiting_payment until then (no device to
    recall, no notice). Installed 10 Jan 10:00 with the invoice unpaid -> past due at once; recall
    17 Jan 10:00; the schedule runs from the installation (next billing 24 Jan 10:00)."""
    h = Harness()
    ref = h.open(token=None, pay_initial=False, appointment="2025-01-10T10:00")
    h.to("2025-01-10T10:00")
    assert h.status(ref) == "awaiting_payment" and h.notices(ref) == []
    h.engine.install(ref)
    assert h.status(ref) == "past_due"
    assert (h.account(ref).recall_at, h.account(ref).next_bill_at) == (
        T("2025-01-17T10:00"), T("2025-01-24T10:00"))
    h.to("2025-01-17T10:00")
    assert h.status(ref) == "recall"


def test_removal_while_the_initial_invoice_is_unpaid_bills_the_rest_of_the_month():
    """Past due since 6 Jan 09:00; removed Wed 8 Jan 09:00, within the first two-week cycle: the
    rest of the 4-week month (20 Jan .. 3 Feb, 5412) is billed and the initial 5412 is still owed
    (10824). No recall follows (no device), and no late fee (no automated payment was attempted).
    Paid in full, the account closes."""
    h = Harness()
    ref = h.open(token=None, pay_initial=False)
    h.to("2025-01-08T09:00")
    out = h.engine.remove_device(ref)
    assert out["billed"] == ["rest_of_month"] and h.status(ref) == "returned"
    [rest] = h.invoices(ref, "rest_of_month")
    assert (rest["total"], rest["period"]) == (5412, ["2025-01-20T09:00:00Z",
                                                      "2025-02-03T09:00:00Z"])
    assert h.balance(ref) == 10824
    h.to("2025-01-20")
    assert h.directives(ref) == [] and h.balance(ref) == 10824
    with pytest.raises(RuleError, match=r"the balance is not settled \(\$108\.24\)"):
        h.engine.close(ref)
    h.engine.pay(ref, key="evt_2", external=True)
    h.engine.close(ref)
    assert h.status(ref) == "closed"


def test_removal_from_awaiting_payment_before_the_due_date():
    """With `schedule.manual_due_days = 3` the initial invoice is due 9 Jan 09:00, so an account
    installed at acceptance waits in awaiting_payment until then. Removed 7 Jan 09:00: billing ends;
    the first cycle counts from the installation, so the rest of the month (20 Jan .. 3 Feb, 5412)
    is billed; 10824 owed, nothing past due later (no collections after removal). Paid, closed."""
    h = Harness(overrides={"schedule.manual_due_days": 3})
    ref = h.open(token=None, pay_initial=False)
    assert h.status(ref) == "awaiting_payment"
    h.to("2025-01-07T09:00")
    h.engine.remove_device(ref)
    assert h.status(ref) == "returned" and h.balance(ref) == 10824
    [rest] = h.invoices(ref, "rest_of_month")
    assert rest["period"] == ["2025-01-20T09:00:00Z", "2025-02-03T09:00:00Z"]
    h.to("2025-02-10")
    assert h.status(ref) == "returned" and h.directives(ref) == []
    h.engine.pay(ref, key="evt_3", external=True)
    h.engine.close(ref)
    assert h.status(ref) == "closed"


def test_an_unpaid_initial_invoice_before_its_due_date_waits():
    """manual_due_days = 3: unpaid and installed, the account stays awaiting_payment until 9 Jan
    09:00, then falls past due (recall 16 Jan 09:00)."""
    h = Harness(overrides={"schedule.manual_due_days": 3})
    ref = h.open(token=None, pay_initial=False)
    h.to("2025-01-09T08:59")
    assert h.status(ref) == "awaiting_payment" and h.notices(ref) == []
    h.to("2025-01-09T09:00")
    assert h.status(ref) == "past_due" and h.account(ref).recall_at == T("2025-01-16T09:00")
    assert _kinds(h, ref) == [("2025-01-09T09", "payment_overdue")]


def test_close_from_a_live_state_says_how_to_get_there():
    h = Harness()
    ref = h.open(token=None, pay_initial=False, appointment="2025-01-10T10:00")
    with pytest.raises(RuleError, match="cancel the installation"):
        h.engine.close(ref)
    h.engine.cancel_installation(ref)
    h.engine.close(ref)
    assert h.status(ref) == "closed"


def test_the_overdue_notice_tells_what_follows_under_each_reading():
    """Default: recall on 13 Jan, and no late fee announced (none falls without an automated
    attempt). Reading "second_failed_attempt" with "lockout": the lockout comes on 13 Jan."""
    h = Harness()
    ref = h.open(token=None, pay_initial=False)
    [notice] = h.notices(ref)
    assert "late fee" not in notice["body"]
    assert "enter early service recall on 2025-01-13" in notice["body"]
    other = Harness(overrides={"late_fee.reading": "second_failed_attempt",
                               "collections.reading": "lockout"})
    ref = other.open(token=None, pay_initial=False)
    [notice] = other.notices(ref)
    assert "late fee" not in notice["body"] and "lock out on 2025-01-13" in notice["body"]
    other.to("2025-01-14")
    assert other.invoices(ref, "late_fee") == [] and other.status(ref) == "lockout"
