"""The back office refuses what would break it, and its keys mean one request:
- dates and durations are bounded (one line, exit 2, nothing changed); a long advance commits day by
  day, so the processor and the books agree whatever happens;
- payment amounts: digits with at most two decimals, positive, at most the policy's maximum;
- idempotency keys are scoped to (account, kind): a conflict is refused, a declined payment's key
  does not swallow a later good payment, a portal payment killed between the charge and its commit
  is recorded before the next one;
- a credit is refunded with `refund` (idempotent);
- the Automated Payment Late Fee only follows an automated charge that was attempted and failed.
Each runs on SQLite and PostgreSQL (conftest.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from provider.billing import reports
from provider.billing.cli import main as cli
from provider.billing.errors import InputError, RuleError
from provider.billing.opening import open_engine

from .harness import DAY, Harness, T, new_location

REPO = Path(__file__).resolve().parents[3]
OPEN = ["account", "open", "--serial", "LCI7-9", "--email", "c@example.com", "--state", "MN",
        "--county", "Hennepin"]


@pytest.fixture
def db(capsys):
    args = ["--db", new_location(file=True)]
    assert cli(args + ["init", "--now", "2025-01-06T09:00"]) == 0
    capsys.readouterr()
    return args


def _books(location):
    """(cash book, money the processor moved net, clock, entries)."""
    engine = open_engine(location)
    check = reports.check_ledger(engine.conn)
    assert check["balanced"]
    return (check["books"].get("cash", 0), engine.processor.captured_total(), engine.now,
            check["entries"])


# ------------------------------------------------------------------ dates and durations
@pytest.mark.parametrize("args", [["--to", "9999-01-01"], ["--to", "2100-01-01"],
                                  ["--days", "10000000"], ["--days", "-1"], ["--days", "3661"]])
def test_an_advance_out_of_bounds_is_one_line_and_changes_nothing(db, capsys, args):
    assert cli(db + OPEN + ["--token", "tok_declined"]) == 0
    before = _books(db[1])
    with pytest.raises(SystemExit) as caught:
        cli(db + ["advance"] + args)
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("lci-billing")
    assert _books(db[1]) == before


def test_the_engine_refuses_a_clock_past_its_bounds():
    h = Harness()
    ref = h.open(token="tok_declined", pay_initial=False)
    now = h.engine.now
    for to in (T("2099-12-31") + DAY, 10**13, now + 3661 * DAY):
        with pytest.raises(InputError):
            h.engine.advance(to)
    assert h.engine.now == now and h.payments(ref) == []


def test_a_long_advance_keeps_processor_and_books_in_agreement(db, capsys):
    """Ten years (the most one run allows) over a declining card and a good one: the clock is
    printable and every cent the processor moved is in the cash book."""
    assert cli(db + OPEN + ["--token", "tok_declined"]) == 0
    assert cli(db + OPEN + ["--token", "tok_ok", "--pay-initial"]) == 0
    assert cli(db + ["advance", "--days", "3660"]) == 0
    assert "clock 2035-01-" in capsys.readouterr().out
    cash, captured, now, _ = _books(db[1])
    assert cash == captured > 0 and now == T("2025-01-06T09:00") + 3660 * DAY


# ------------------------------------------------------------------ amounts
@pytest.mark.parametrize("amount", ["Infinity", "sNaN", "NaN", "1e20", "-5", "1.005", "0",
                                    "0.00", "1,000", "$-1"])
def test_a_malformed_amount_is_one_line_and_exit_2(db, capsys, amount):
    assert cli(db + OPEN + ["--token", "tok_ok"]) == 0
    before = _books(db[1])
    with pytest.raises(SystemExit) as caught:
        cli(db + ["pay", "A000001", f"--amount={amount}", "--key", "k1", "--external"])
    assert caught.value.code == 2
    assert "Traceback" not in capsys.readouterr().err
    assert _books(db[1]) == before


def test_an_amount_over_the_policy_maximum_is_refused(db, capsys):
    assert cli(db + OPEN + ["--token", "tok_ok"]) == 0
    before = _books(db[1])
    assert cli(db + ["pay", "A000001", "--amount", "900000000000.00", "--key", "k1",
                     "--external"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "largest payment" in err
    assert _books(db[1]) == before


def test_no_sum_can_overflow_payments_are_bounded():
    """Two payments of $9 x 10^14 (the report's overflow) are refused; the largest allowed ones add
    up exactly on either store (PostgreSQL's BIGINT sums are read back as integers)."""
    h = Harness()
    ref = h.open(token="tok_ok", pay_initial=False)
    for n in (1, 2):
        with pytest.raises(InputError):
            h.engine.pay(ref, amount=9 * 10**16, key=f"big{n}", external=True)
    biggest = h.policy.max_payment
    for n in (1, 2):
        h.engine.pay(ref, amount=biggest, key=f"max{n}", external=True)
    assert h.balance(ref) == 5412 - 2 * biggest
    assert reports.check_ledger(h.conn)["books"]["cash"] == 2 * biggest


# ------------------------------------------------------------------ idempotency keys
def test_a_declined_payments_key_does_not_swallow_a_later_good_payment():
    h = Harness()
    ref = h.open(token="tok_declined", pay_initial=False)
    first = h.engine.pay(ref, key="form-1", token="tok_declined")
    assert first["status"] == "failed"
    again = h.engine.pay(ref, key="form-1", token="tok_ok")
    assert again["status"] == "succeeded" and h.balance(ref) == 0
    assert h.engine.pay(ref, key="form-1", amount=again["amount"]) == {
        "status": "duplicate", "key": "form-1"}


def test_a_key_used_on_another_account_or_for_another_amount_is_refused():
    h = Harness()
    a = h.open(token="tok_ok", pay_initial=False, serial="S-A")
    b = h.open(token="tok_ok", pay_initial=False, serial="S-B")
    h.engine.pay(a, amount=1000, key="evt_1", external=True)
    with pytest.raises(RuleError, match="another account"):
        h.engine.pay(b, amount=1000, key="evt_1", external=True)
    with pytest.raises(RuleError, match="not \\$20.00"):
        h.engine.pay(a, amount=2000, key="evt_1", external=True)
    assert h.engine.pay(a, amount=1000, key="evt_1", external=True)["status"] == "duplicate"
    assert h.balance(a) == 5412 - 1000 and h.balance(b) == 5412
    assert [p["amount"] for p in h.payments(b)] == []


def test_the_cli_refuses_a_conflicting_key_with_exit_1(db, capsys):
    assert cli(db + OPEN + ["--token", "tok_ok"]) == 0
    assert cli(db + ["pay", "A000001", "--external", "--key", "evt_9", "--amount", "5.00"]) == 0
    assert cli(db + ["pay", "A000001", "--external", "--key", "evt_9", "--amount", "1.00"]) == 1
    assert "already used" in capsys.readouterr().err


def _pay_subprocess(location, amount, crash_at=None):
    env = dict(os.environ)
    env.pop("LCI_BILLING_CRASH_AT", None)
    if crash_at is not None:
        env["LCI_BILLING_CRASH_AT"] = str(crash_at)
    proc = subprocess.run([sys.executable, "-m", "provider.billing.cli", "--db", location, "pay",
                           "A000001", "--amount", amount], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stderr


def test_a_portal_payment_killed_after_the_charge_then_retried_with_another_amount(db, capsys):
    """SIGKILL right after the processor took $10.00 (nothing committed); the client retries with
    $20.00: the $10.00 is recorded first, then the $20.00 is charged under a new key; the books
    and the processor agree, and the account is not blocked."""
    assert cli(db + OPEN + ["--token", "tok_ok"]) == 0
    code, err = _pay_subprocess(db[1], "10.00", crash_at=1)
    assert code == -signal.SIGKILL, err
    cash, captured, _, _ = _books(db[1])
    assert (cash, captured) == (0, 1000)  # the processor holds money the books do not show
    code, err = _pay_subprocess(db[1], "20.00")
    assert code == 0, err
    cash, captured, _, _ = _books(db[1])
    assert cash == captured == 3000
    capsys.readouterr()
    assert cli(db + ["account", "show", "A000001", "--json"]) == 0
    assert '"balance": 2819' in capsys.readouterr().out
    assert cli(db + ["pay", "A000001"]) == 0  # not blocked: the rest is paid
    cash, captured, _, _ = _books(db[1])
    assert cash == captured == 5819


# ------------------------------------------------------------------ refunds of credit
def test_an_overpayment_on_a_returned_account_is_refunded_once(db, capsys):
    assert cli(db + OPEN + ["--token", "tok_ok", "--pay-initial"]) == 0
    assert cli(db + ["advance", "--days", "20"]) == 0
    assert cli(db + ["account", "remove", "A000001"]) == 0
    capsys.readouterr()
    assert cli(db + ["pay", "A000001", "--external", "--key", "cash-1", "--amount", "100.00",
                     "--json"]) == 0
    capsys.readouterr()
    assert cli(db + ["account", "show", "A000001", "--json"]) == 0
    view = __import__("json").loads(capsys.readouterr().out)
    assert view["status"] == "returned" and view["balance"] < 0
    credit = -view["balance"]
    assert cli(db + ["account", "close", "A000001"]) == 1  # a credit is still owed
    assert cli(db + ["refund", "A000001", "--key", "rf-1", "--json"]) == 0
    out = __import__("json").loads(capsys.readouterr().out)
    assert (out["status"], out["amount"], out["balance"]) == ("succeeded", credit, 0)
    assert cli(db + ["refund", "A000001", "--key", "rf-1"]) == 0
    assert "already recorded" in capsys.readouterr().out
    assert cli(db + ["refund", "A000001"]) == 1  # nothing left to refund
    assert "no credit" in capsys.readouterr().err
    cash, captured, _, _ = _books(db[1])
    assert cash - 10000 == captured  # the $100.00 was received outside the processor
    assert cli(db + ["account", "close", "A000001"]) == 0


def test_a_refund_larger_than_the_credit_is_refused():
    h = Harness()
    ref = h.open(token="tok_ok", pay_initial=True)
    h.engine.pay(ref, amount=1000, key="over", external=True)
    with pytest.raises(RuleError, match="credit of \\$10.00"):
        h.engine.refund(ref, amount=1001)
    out = h.engine.refund(ref, amount=400)
    assert out["status"] == "succeeded" and h.balance(ref) == -600
    # cash = what the processor moved + the $10.00 received outside it
    assert h.processor.captured_total() == reports.check_ledger(h.conn)["books"]["cash"] - 1000


# ------------------------------------------------------------------ the late fee's trigger
def test_no_late_fee_without_an_automated_attempt():
    """No card, initial invoice unpaid, installed: collections run (recall, lockout) but no
    automated payment was ever attempted, so no Automated Payment Late Fee."""
    h = Harness()
    ref = h.open(token=None, pay_initial=False)
    h.to("2025-02-20")
    assert h.status(ref) == "lockout"
    assert h.invoices(ref, "late_fee") == []


def test_a_late_fee_follows_a_failed_automated_charge():
    h = Harness()
    ref = h.open(token="tok_ok", pay_initial=True)
    h.card("tok_ok", "2025-01-15", "declined")
    h.to("2025-01-24")
    assert [f["issued_at"][:13] for f in h.invoices(ref, "late_fee")] == ["2025-01-23T09"]
