"""Worked examples: failed payments, decline codes, retries, 48-hour notices, the late fee (both
readings) and eligibility for a 4- or 8-week cycle.

All accounts are in Oregon (no sales tax) without theft protection unless said otherwise, opened
and paid Mon 6 Jan 2025 09:00, so cycle charges fall on 20 Jan, 3 Feb, 17 Feb ... at 09:00 and each
automated cycle invoice is 5412 + 263 = 5675.
"""

from __future__ import annotations

import pytest

from provider.billing.processor import CARD_DECLINED, EXPIRED_CARD, INSUFFICIENT_FUNDS

from .harness import Harness


@pytest.mark.parametrize("token,code", [("tok_declined", CARD_DECLINED),
                                        ("tok_expired", EXPIRED_CARD),
                                        ("tok_insufficient_funds", INSUFFICIENT_FUNDS)])
def test_each_decline_code_is_a_failed_payment(token, code):
    """The client pays the initial invoice by hand, with a card on file that fails: on 20 Jan the
    automated charge of 5675 fails with the card's code and the account falls past due."""
    h = Harness()
    ref = h.open(token=token, pay_initial=False)
    h.engine.pay(ref, token="tok_ok")
    h.to("2025-01-20T09:00")
    failed = h.payments(ref)[-1]
    assert (failed["at"], failed["amount"], failed["status"], failed["decline_code"]) == (
        "2025-01-20T09:00:00Z", 5675, "failed", code)
    assert h.status(ref) == "past_due"
    assert h.balance(ref) == 5675


def test_retries_are_announced_48_hours_ahead_then_the_late_fee_after_72_hours():
    """Card out of funds from 19 Jan.
    20 Jan 09:00 charge 5675 fails -> past_due; notice announces a retry on 22 Jan 09:00 (+48 h).
    22 Jan 09:00 retry fails -> notice announces 25 Jan 09:00 (+120 h from the first failure).
    23 Jan 09:00 (first failure + 72 h, not corrected): late fee 3000 -> balance 8675.
    25 Jan 09:00 retry of 8675 fails; no retry left before the next cycle.
    1 Feb 09:00 notice: the 3 Feb charge is announced 48 h ahead."""
    h = Harness()
    ref = h.open()
    h.card("tok_ok", "2025-01-19", "insufficient_funds")
    h.to("2025-02-02")
    attempts = [(p["at"][:13], p["amount"], p["attempt"]) for p in h.payments(ref)
                if p["kind"] == "automated"]
    assert attempts == [("2025-01-20T09", 5675, "scheduled"), ("2025-01-22T09", 5675, "retry"),
                        ("2025-01-25T09", 8675, "retry")]
    notices = [(n["at"][:13], n["kind"], (n["attempt_at"] or "")[:13]) for n in h.notices(ref)]
    assert notices == [
        ("2025-01-20T09", "payment_failed", "2025-01-22T09"),
        ("2025-01-22T09", "payment_failed", "2025-01-25T09"),
        ("2025-01-23T09", "late_fee", ""),
        ("2025-01-25T09", "payment_failed", ""),
        ("2025-01-27T09", "recall", ""),
        ("2025-02-01T09", "attempt_scheduled", "2025-02-03T09"),
    ]
    fee = h.invoices(ref, "late_fee")
    assert len(fee) == 1 and fee[0]["total"] == 3000 and fee[0]["issued_at"][:13] == "2025-01-23T09"
    assert h.balance(ref) == 8675


def test_late_fee_not_charged_when_corrected_within_72_hours():
    """Reading "uncorrected": the 20 Jan 09:00 charge fails; on 21 Jan 18:00 the client puts a new
    card on file, which is charged 5675 at once. At 23 Jan 09:00 nothing is owed: no late fee."""
    h = Harness()
    ref = h.open(token="tok_insufficient_funds", pay_initial=False)
    h.engine.pay(ref, token="tok_ok")
    h.to("2025-01-21T18:00")
    h.engine.set_payment_method(ref, "tok_visa")
    h.to("2025-02-01")
    assert h.invoices(ref, "late_fee") == []
    assert h.status(ref) == "active" and h.balance(ref) == 0


def test_late_fee_second_failed_attempt_reading():
    """Reading "second_failed_attempt" (Late Payment Policy 1: "After 48 hours of a declined or
    failed payment, a $30.00 late fee [...] upon a second failed payment attempt"): the 20 Jan
    09:00 charge fails; the retry 48 h later (22 Jan 09:00) fails too -> the fee is added then,
    not at 72 h. Balance 5675 + 3000 = 8675 at 22 Jan 09:00."""
    h = Harness(overrides={"late_fee.reading": "second_failed_attempt"})
    ref = h.open()
    h.card("tok_ok", "2025-01-19", "insufficient_funds")
    h.to("2025-01-22T09:00")
    fee = h.invoices(ref, "late_fee")
    assert len(fee) == 1 and fee[0]["issued_at"] == "2025-01-22T09:00:00Z"
    assert h.balance(ref) == 8675
    # still one fee per failed invoice: the 25 Jan retry fails again without a second fee
    h.to("2025-01-26")
    assert len(h.invoices(ref, "late_fee")) == 1


def test_second_failed_attempt_reading_no_fee_if_the_retry_succeeds():
    """Same reading; funds are back on 21 Jan: the 22 Jan retry collects 5675 and no fee is due."""
    h = Harness(overrides={"late_fee.reading": "second_failed_attempt"})
    ref = h.open()
    h.card("tok_ok", "2025-01-19", "insufficient_funds")
    h.card("tok_ok", "2025-01-21", "ok")
    h.to("2025-02-01")
    assert h.invoices(ref, "late_fee") == []
    assert [p["status"] for p in h.payments(ref) if p["kind"] == "automated"] == [
        "failed", "succeeded"]
    assert h.status(ref) == "active"


def test_no_automated_attempt_after_a_failure_without_48_hours_notice():
    """Installation booked for Mon 3 Feb 12:00. The card is declined from 1 Feb. On Sun 2 Feb 20:00
    the client moves the appointment (16 h notice): the 6175 rescheduling fee is charged at once
    and fails. The next cycle is due Mon 3 Feb 09:00, only 13 h later, so it cannot have been
    announced 48 h ahead: its invoice is issued on 3 Feb 09:00 but the charge is deferred to Wed
    5 Feb 09:00 and announced at once (exactly 48 h ahead). It then asks 6175 + 5675 = 11850."""
    h = Harness()
    ref = h.open(appointment="2025-02-03T12:00")
    h.card("tok_ok", "2025-02-01", "declined")
    h.to("2025-02-02T20:00")
    h.engine.reschedule(ref, h.account(ref).appointment_at + 7 * 86400)
    h.to("2025-02-06")
    after = [(p["at"][:13], p["kind"], p["amount"]) for p in h.payments(ref)
             if p["at"] >= "2025-02-02T20:00:00Z"]
    assert after == [("2025-02-02T20", "immediate", 6175), ("2025-02-05T09", "automated", 11850)]
    cycle = h.invoices(ref, "cycle")[-1]
    assert cycle["issued_at"] == "2025-02-03T09:00:00Z"
    notice = [n for n in h.notices(ref) if n["attempt_at"] == "2025-02-05T09:00:00Z"]
    assert notice and notice[0]["at"] == "2025-02-03T09:00:00Z"


def test_every_automated_attempt_after_a_failure_was_announced_48_hours_ahead():
    """A long run of failures and recoveries (random card, 40 % failures): for every automated
    attempt made while a failure was open there is a notice naming that attempt's time, sent at
    least 48 h before it."""
    h = Harness(seed=3, failure_rate=0.4)
    refs = [h.open(serial=f"S{n}", token=f"tok_card_{n}") for n in range(12)]
    h.to("2025-09-01")
    rows = h.conn.execute(
        "SELECT p.account_id, p.at FROM payment p WHERE p.kind = 'automated'"
        " AND p.failure_open_before = 1 AND p.method_token IS NOT NULL").fetchall()
    assert len(rows) > 20
    for account_id, at in rows:
        ok = h.conn.execute("SELECT 1 FROM notice WHERE account_id = ? AND attempt_at = ?"
                            " AND at <= ?", (account_id, at, at - 48 * 3600)).fetchone()
        assert ok, (account_id, at)
    assert refs


def test_two_failed_payments_within_eight_weeks_make_the_account_eligible_for_4_weeks():
    """20 Jan charge fails (fixed next day by a new card); 3 Feb charge fails again: two failed
    automated payments within 8 weeks -> eligible (history event, shown on the account). The
    operator moves the account to 4 weeks on 4 Feb (after paying): the 17 Feb invoice is a 4-week
    one, 10824 + 526 = 11350, and the next falls 28 days later, on 17 Mar."""
    h = Harness()
    ref = h.open(token="tok_insufficient_funds", pay_initial=False)
    h.engine.pay(ref, token="tok_ok")
    h.to("2025-01-21")
    h.engine.set_payment_method(ref, "tok_ok")
    h.card("tok_ok", "2025-02-02", "insufficient_funds")
    h.to("2025-02-03T10:00")
    assert h.account(ref).switch_eligible_at is not None
    assert "cycle_switch_eligible" in [e["event"] for e in h.history(ref)]
    h.card("tok_ok", "2025-02-04", "ok")
    h.to("2025-02-04T10:00")
    h.engine.pay(ref)
    h.engine.set_cycle(ref, 4)
    h.to("2025-03-20")
    cycles = h.invoices(ref, "cycle")
    assert [(c["issued_at"][:10], c["cycle_weeks"], c["total"]) for c in cycles[-2:]] == [
        ("2025-02-17", 4, 11350), ("2025-03-17", 4, 11350)]


def test_failures_ten_weeks_apart_do_not_make_the_account_eligible():
    """Failures on 20 Jan and 31 Mar (70 days apart > 8 weeks): not eligible; an operator's
    set-cycle is then a client request under the 15-day notice rule (here: made 14 days before the
    14 Apr billing date, so it applies after that date)."""
    h = Harness()
    ref = h.open()
    h.card("tok_ok", "2025-01-19", "insufficient_funds")
    h.card("tok_ok", "2025-01-21", "ok")
    h.card("tok_ok", "2025-03-30", "insufficient_funds")
    h.card("tok_ok", "2025-04-01", "ok")
    h.to("2025-03-31T12:00")
    failed = [p["at"][:10] for p in h.payments(ref) if p["status"] == "failed"
              and p["attempt"] == "scheduled"]
    assert failed == ["2025-01-20", "2025-03-31"]
    assert h.account(ref).switch_eligible_at is None
    out = h.engine.set_cycle(ref, 4)
    assert out["effective"] == h.account(ref).next_bill_at + 1
    assert h.account(ref).cycle_weeks == 2
