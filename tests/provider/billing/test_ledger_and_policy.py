"""The ledger (double entry, append-only, causes, idempotent payments, balances from postings),
the life cycle machine and its diagram, and the one-line errors for malformed policies."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from provider.billing import reports
from provider.billing.diagram import TARGET
from provider.billing.errors import InputError, RuleError
from provider.billing.lifecycle import STATES, Lifecycle, diagram_markdown
from provider.billing.policy import DEFAULT_POLICY_PATH, load_policy, policy_from_text
from provider.billing.simulated_processor import SimulatedProcessor

from .harness import Harness

BILLING = Path(__file__).resolve().parents[3] / "provider" / "billing"


# ----------------------------------------------------------------------------------- ledger
def test_every_entry_balances_and_names_its_cause():
    """One automated cycle in Hennepin County: the invoice entry debits receivable 6620 and credits
    rental 5412, theft protection 500, admin fee 263 and sales tax 445 (sum 0); the payment entry
    debits cash 6620 and credits the receivable of that invoice."""
    h = Harness()
    ref = h.open(state="MN", county="Hennepin", theft=True)
    h.to("2025-01-20T09:00")
    entries = reports.ledger(h.conn)
    assert all(sum(p["amount"] for p in e["postings"]) == 0 for e in entries)
    assert all(e["cause"] and e["ref"] for e in entries)
    cycle = [e for e in entries if e["cause"] == "cycle"][0]
    assert {(p["book"], p["amount"]) for p in cycle["postings"]} == {
        ("receivable", 6620), ("revenue:rental", -5412), ("revenue:theft_protection", -500),
        ("revenue:admin_fee", -263), ("sales_tax_payable", -445)}
    payment = entries[entries.index(cycle) + 1]
    assert payment["cause"] == "payment" and payment["ref"] == f"{ref}:a2"
    assert [(p["book"], p["invoice"], p["amount"]) for p in payment["postings"]] == [
        ("cash", None, 6620), ("receivable", f"{ref}-0002", -6620)]
    check = reports.check_ledger(h.conn)
    assert check["balanced"] and check["books"]["cash"] == 6357 + 6620


def test_a_duplicated_processor_callback_changes_nothing():
    """An external payment event (processor webhook) of $50.00 with key evt_1 is recorded once; the
    same event delivered again returns "duplicate" and the ledger is unchanged."""
    h = Harness()
    ref = h.open(pay_initial=False)
    first = h.engine.pay(ref, amount=5000, key="evt_1", external=True)
    snapshot = reports.ledger(h.conn)
    again = h.engine.pay(ref, amount=5000, key="evt_1", external=True)
    assert first["status"] == "succeeded" and again == {"status": "duplicate", "key": "evt_1"}
    assert reports.ledger(h.conn) == snapshot
    assert h.balance(ref) == 5412 - 5000


def test_the_processor_returns_the_first_result_for_a_replayed_key():
    """Charging key k twice moves money once; reusing k for another amount is refused."""
    sim = SimulatedProcessor()
    a = sim.charge(idempotency_key="k", token="tok_ok", amount=100, at=0)
    b = sim.charge(idempotency_key="k", token="tok_ok", amount=100, at=0)
    assert a.reference == b.reference and sim.captured_total() == 100
    with pytest.raises(ValueError):
        sim.charge(idempotency_key="k", token="tok_ok", amount=999, at=0)


def test_balances_come_from_the_ledger_alone():
    """Every account's balance equals the sum of its receivable postings, and the account table has
    no balance column to disagree with it."""
    h = Harness(failure_rate=0.3, seed=5)
    refs = [h.open(serial=f"S{n}", token=f"tok_{n}") for n in range(5)]
    h.to("2025-05-01")
    columns = [d[0] for d in h.conn.execute("SELECT * FROM account WHERE 1 = 0").description]
    assert not [c for c in columns if "balance" in c]
    for ref in refs:
        total = sum(i["outstanding"] for i in h.invoices(ref)) + (
            h.conn.execute("SELECT COALESCE(SUM(amount), 0) FROM posting WHERE account_id = ?"
                           " AND book = 'receivable' AND invoice_id IS NULL",
                           (h.account(ref).id,)).fetchone()[0])
        assert total == h.balance(ref)


def test_the_ledger_is_append_only_in_code():
    """No statement anywhere in the engine updates or deletes a posting or a payment."""
    for path in BILLING.glob("*.py"):
        text = path.read_text()
        assert not re.search(r"(UPDATE|DELETE\s+FROM)\s+(posting|payment)\b", text, re.I), path


# ------------------------------------------------------------------------------- life cycle
def test_lifecycle_refuses_illegal_transitions_with_a_reason():
    life = Lifecycle()
    assert life.fire("active", "fall_past_due") == "past_due"
    assert life.fire("lockout", "balance_paid", balance=0) == "active"
    with pytest.raises(RuleError, match="not paid in full"):
        life.fire("lockout", "balance_paid", balance=1)
    with pytest.raises(RuleError, match="cannot fall past due an account that is closed"):
        life.fire("closed", "fall_past_due")
    with pytest.raises(RuleError, match="not settled"):
        life.fire("returned", "close", balance=-5)


def test_the_checked_in_diagram_is_generated_from_the_machine():
    """docs/diagrams/account.md must equal what the machine draws now (regenerate with
    `python -m provider.billing.diagram`)."""
    assert TARGET.read_text(encoding="utf-8") == diagram_markdown()
    for state in STATES:
        assert f'state "{state}" as {state}' in TARGET.read_text()


# ------------------------------------------------------------------------------- policy errors
DEFAULT = DEFAULT_POLICY_PATH.read_text()


@pytest.mark.parametrize("old,new,message", [
    ('"2" = 5412', '"2" = 54.12', r"items\.rental\.prices\.2: expected an integer, got a float "
                                  r"54\.12 \(money is integer cents"),
    ('late_fee = 3000', 'late_fee = -1', r"fees\.late_fee: -1 is out of range"),
    ('\nreading = "uncorrected"', '\nreading = "whenever"', r"late_fee\.reading: 'whenever' is not one "
                                                       r"of: uncorrected, second_failed_attempt"),
    ('\nreading = "recall_then_lockout"', '\nreading = "lock"', r"collections\.reading: 'lock'"),
    ('state = "6.875"', 'state = 6.875', r"tax\.rates\.MN\.state: give the rate as a string"),
    ('after_hours = [48, 120]', 'after_hours = [24, 120]', r"retries\.after_hours: a retry 24 h"),
    ('[fees]', '[fees]\nlate_fees = 1', r"fees\.late_fees: unknown field"),
    ('"4" = 10824, ', '', r"items\.rental\.prices: no price for the 4-week cycle"),
    ('standard_weeks = 2', 'standard_weeks = 3', r"cycles\.standard_weeks: 3 is not one of"),
])
def test_a_malformed_policy_is_one_line_naming_file_field_and_problem(old, new, message):
    assert old in DEFAULT
    with pytest.raises(InputError) as caught:
        policy_from_text(DEFAULT.replace(old, new, 1), "my_policy.toml")
    text = str(caught.value)
    assert "\n" not in text and text.startswith("my_policy.toml: ")
    assert re.search(message, text), text


def test_policy_file_errors_name_the_file():
    with pytest.raises(InputError, match=r"nowhere\.toml: cannot read policy"):
        load_policy("nowhere.toml")
    with pytest.raises(InputError, match=r"bad\.toml: not valid TOML"):
        policy_from_text("a = = 1", "bad.toml")
    with pytest.raises(InputError, match=r"scenario\.toml: policy\.late_fee\.colour: no such"):
        load_policy(None, {"late_fee.colour": 1}, overrides_source="scenario.toml")


def test_both_readings_of_each_contradiction_load():
    for overrides in ({"late_fee.reading": "second_failed_attempt"},
                      {"collections.reading": "lockout"},
                      {"returns.bill_rest_of_month": "every_month"}):
        assert load_policy(None, overrides).readings[next(iter(overrides)).split(".")[0]
                                                     .replace("returns", "bill_rest_of_month")] \
            == next(iter(overrides.values()))


def test_an_accounts_ledger_is_its_entries_of_the_whole_ledger():
    """`ledger --account`: an account's entries, read without an index on entry_id (each entry is
    a range of posting ids), are exactly that account's entries of the whole ledger, in order —
    with other accounts' entries written in between, and one payment entry of more postings
    than the first read (it settles a year of manual invoices and late fees at once)."""
    h = Harness()
    busy = h.open(serial="LCI7-0001", email="a@example.com", theft=True)
    manual = h.open(serial="LCI7-0002", email="b@example.com", token=None, pay_initial=False)
    h.engine.pay(manual, amount=h.balance(manual), key="evt_initial", external=True)
    other = h.open(serial="LCI7-0003", email="c@example.com", token="tok_declined",
                   pay_initial=False)
    h.to("2025-12-30T09:00")
    h.engine.pay(manual, amount=h.balance(manual), key="evt_all", external=True)
    h.to("2026-01-15T09:00")
    whole = reports.ledger(h.conn)
    widest = 0
    for ref in (busy, manual, other):
        mine = reports.ledger(h.conn, h.account(ref).id)
        assert mine and mine == [e for e in whole if e["account"] == ref]
        widest = max(widest, max(len(e["postings"]) for e in mine))
    assert widest > 16
