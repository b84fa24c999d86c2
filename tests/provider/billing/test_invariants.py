"""Hypothesis stateful tests: random accounts, cards, payments, changes, removals and clock moves;
after every step the invariants hold:

- the ledger balances (every entry sums to zero);
- money is conserved: cash in the ledger == what the processor captured net of refunds + payments
  reported from outside; receivable == invoiced - collected;
- nothing is charged twice: each processor charge key is recorded once, with the same amount and
  outcome; no invoice is ever collected beyond its total;
- the state agrees with the balance (past_due / recall / lockout owe money, active owes nothing
  overdue, closed owes nothing, awaiting_payment still owes the initial invoice and, if the device
  is installed, has the invoice's due date ahead: it never waits for ever);
- every automated attempt made after a failure was announced >= 48 h before;
- a refused operation changes nothing;
- nothing is left due in the past.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from provider.billing import reports
from provider.billing.errors import BillingError
from provider.billing.policy import DAY, HOUR

from .harness import Harness, store_name

TOKENS = ["tok_ok", "tok_declined", "tok_insufficient_funds", "tok_expired", "tok_r1", "tok_r2"]
PLACES = [("MN", "Hennepin"), ("IA", "Polk"), ("TX", "Harris"), ("OR", ""), ("AZ", "Maricopa")]
POLICIES = [{}, {"late_fee.reading": "second_failed_attempt"}, {"collections.reading": "lockout"},
            {"returns.bill_rest_of_month": "every_month"}]


class BillingMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.h = None
        self.refs = []
        self.external = 0
        self.keys = 0

    @initialize(policy=st.sampled_from(POLICIES), seed=st.integers(0, 9),
                tokens=st.lists(st.sampled_from(TOKENS), min_size=1, max_size=3))
    def start(self, policy, seed, tokens):
        self.h = self.harness(policy, seed)
        for n, token in enumerate(tokens):
            self.refs.append(self.h.open(serial=f"I{n}", token=token, theft=n % 2 == 0,
                                         state="MN", county="Hennepin"))

    def harness(self, policy, seed) -> Harness:
        return Harness(overrides=policy, seed=seed, failure_rate=0.3)

    def _do(self, action, *args, **kwargs):
        """Run an operation; if the rules refuse it, nothing may have changed."""
        before = self._snapshot()
        try:
            return action(*args, **kwargs)
        except BillingError:
            assert self._snapshot() == before
            return None

    def _snapshot(self):
        c = self.h.conn
        return (c.execute("SELECT COUNT(*), COALESCE(SUM(amount), 0) FROM posting").fetchone(),
                c.execute("SELECT COUNT(*) FROM payment").fetchone(),
                c.execute("SELECT COUNT(*) FROM invoice").fetchone(),
                c.execute("SELECT * FROM account ORDER BY id").fetchall())

    @precondition(lambda self: len(self.refs) < 6)
    @rule(place=st.sampled_from(PLACES), token=st.sampled_from(TOKENS + [None]),
          theft=st.booleans(), pay_initial=st.booleans(), appointment_days=st.sampled_from(
              [None, 1, 3, 10]))
    def open_account(self, place, token, theft, pay_initial, appointment_days):
        now = self.h.engine.now
        ref = self.h.engine.open_account(
            serial=f"S{len(self.refs)}", email="c@example.com", state=place[0], county=place[1],
            token=token, theft_protection=theft, pay_initial=pay_initial,
            appointment=now + appointment_days * DAY if appointment_days else None)
        self.refs.append(ref)

    @rule(hours=st.sampled_from([1, 13, 47, 48, 72, 24 * 7, 24 * 15, 24 * 40]))
    def advance(self, hours):
        self.h.engine.advance(self.h.engine.now + hours * HOUR)

    @rule(hours_before=st.sampled_from([1, 13, 47, 49]))
    def advance_to_just_before_a_billing_date(self, hours_before):
        """Boundaries: things that happen hours before a cycle charge (notices must still be 48 h
        ahead of it)."""
        row = self.h.conn.execute("SELECT MIN(next_bill_at) FROM account WHERE next_bill_at > ?",
                                  (self.h.engine.now + hours_before * HOUR,)).fetchone()
        if row[0] is not None:
            self.h.engine.advance(row[0] - hours_before * HOUR)

    @rule(days=st.integers(10, 60))
    def advance_long(self, days):
        self.h.engine.advance(self.h.engine.now + days * DAY)

    @rule(token=st.sampled_from(TOKENS), behaviour=st.sampled_from(
        ["ok", "declined", "insufficient_funds", "expired_card", "random"]))
    def card_changes(self, token, behaviour):
        self.h.processor.set_card(token, self.h.engine.now, behaviour)

    @precondition(lambda self: self.refs)
    @rule(data=st.data(), amount=st.sampled_from([None, 100, 5412, 20000]),
          how=st.sampled_from(["card", "external", "replay"]))
    def pay(self, data, amount, how):
        ref = data.draw(st.sampled_from(self.refs))
        if how == "card":
            self._do(self.h.engine.pay, ref, amount=amount, token="tok_ok")
            return
        if how == "replay" and self.keys:
            key = f"evt_{data.draw(st.integers(1, self.keys))}"
        else:
            self.keys += 1
            key = f"evt_{self.keys}"
        out = self._do(self.h.engine.pay, ref, amount=amount, key=key, external=True)
        if out and out["status"] == "succeeded":
            self.external += out["amount"]

    @precondition(lambda self: self.refs)
    @rule(data=st.data(), token=st.sampled_from(TOKENS))
    def payment_method(self, data, token):
        self._do(self.h.engine.set_payment_method, data.draw(st.sampled_from(self.refs)), token)

    @precondition(lambda self: self.refs)
    @rule(data=st.data(), op=st.sampled_from(
        ["remove", "cancel", "install", "close", "prepay", "cycle4", "cycle8", "theft_off",
         "reschedule"]))
    def operate(self, data, op):
        ref = data.draw(st.sampled_from(self.refs))
        e = self.h.engine
        actions = {
            "remove": lambda: e.remove_device(ref),
            "cancel": lambda: e.cancel_installation(ref),
            "install": lambda: e.install(ref),
            "close": lambda: e.close(ref),
            "prepay": lambda: e.prepay(ref, data.draw(st.sampled_from([1, 3, 26]))),
            "cycle4": lambda: e.set_cycle(ref, 4),
            "cycle8": lambda: e.set_cycle(ref, 8),
            "theft_off": lambda: e.set_theft_protection(ref, False),
            "reschedule": lambda: e.reschedule(ref, e.now + data.draw(
                st.sampled_from([2 * HOUR, 30 * HOUR, 5 * DAY]))),
        }
        self._do(actions[op])

    # ------------------------------------------------------------------ invariants
    @invariant()
    def ledger_balances(self):
        if self.h is None:
            return
        check = reports.check_ledger(self.h.conn)
        assert check["balanced"], check["unbalanced_entries"]

    @invariant()
    def money_is_conserved(self):
        if self.h is None:
            return
        h = self.h
        assert h.book("cash") == h.processor.captured_total() + self.external
        invoiced = h.conn.execute("SELECT COALESCE(SUM(total), 0) FROM invoice").fetchone()[0]
        received = h.conn.execute(
            "SELECT COALESCE(SUM(CASE WHEN kind = 'refund' THEN -amount ELSE amount END), 0)"
            " FROM payment WHERE status = 'succeeded'").fetchone()[0]
        assert h.book("receivable") == invoiced - received
        revenue = h.conn.execute("SELECT COALESCE(SUM(amount), 0) FROM posting WHERE book LIKE"
                                 " 'revenue:%' OR book = 'sales_tax_payable'").fetchone()[0]
        assert -revenue == invoiced

    @invariant()
    def nothing_is_charged_twice(self):
        if self.h is None:
            return
        h = self.h
        recorded = {k: (amount, status) for k, amount, status in h.conn.execute(
            "SELECT idem_key, amount, status FROM payment WHERE processor_ref IS NOT NULL"
            " AND processor_ref <> ''")}
        for key, _token, amount, _kind, status, *_ in h.processor.store.all_charges():
            assert recorded.get(key) == (amount, status), key
        overpaid = h.conn.execute(
            "SELECT i.number FROM invoice i JOIN posting p ON p.invoice_id = i.id AND p.book ="
            " 'receivable' WHERE i.kind <> 'credit_note' GROUP BY i.id, i.number"
            " HAVING SUM(p.amount) < 0").fetchall()
        assert not overpaid, overpaid

    @invariant()
    def state_agrees_with_balance(self):
        if self.h is None:
            return
        h = self.h
        now = h.engine.now
        for ref in self.refs:
            a = h.account(ref)
            balance = h.balance(ref)
            owed = [i for i in h.invoices(ref) if i["outstanding"] > 0]
            if a.status in ("past_due", "recall", "lockout"):
                assert balance > 0, (ref, a.status, balance)
            elif a.status == "active":
                failed = h.conn.execute(
                    "SELECT COUNT(*) FROM invoice WHERE account_id = ? AND first_failed_at IS NOT"
                    " NULL AND id IN (SELECT invoice_id FROM posting WHERE book = 'receivable'"
                    " GROUP BY invoice_id HAVING SUM(amount) > 0)", (a.id,)).fetchone()[0]
                assert balance <= 0 or (a.attempt_at is not None and a.attempt_at >= now
                                        and failed == 0), (ref, balance, owed)
            elif a.status == "closed":
                assert balance == 0
            elif a.status == "awaiting_payment":
                assert [i["kind"] for i in owed] == ["initial"]
                # never stuck: an installed device's unpaid initial invoice has a timer ahead
                # (its due date, or a retry of the initial charge)
                assert a.installed_at is None or (a.attempt_at is not None
                                                  and a.attempt_at > now), (ref, a)
            if a.status == "lockout":
                actions = [d["action"] for d in h.directives(ref)]
                assert actions and actions[-1] == "lockout"
            if a.status == "recall":
                assert [d["action"] for d in h.directives(ref)][-1] == "recall"

    @invariant()
    def attempts_after_failures_were_announced(self):
        if self.h is None:
            return
        c = self.h.conn
        for account_id, at in c.execute(
                "SELECT account_id, at FROM payment WHERE kind = 'automated' AND"
                " failure_open_before = 1 AND method_token IS NOT NULL").fetchall():
            assert c.execute("SELECT 1 FROM notice WHERE account_id = ? AND attempt_at = ? AND"
                             " at <= ?", (account_id, at, at - 48 * HOUR)).fetchone(), (account_id, at)

    @invariant()
    def nothing_left_due_in_the_past(self):
        if self.h is None:
            return
        late = self.h.conn.execute("SELECT ref FROM account WHERE next_due_at <= ?",
                                   (self.h.engine.now,)).fetchall()
        # operations run everything due at `now` before they return
        assert not late, late


def test_billing_invariants():
    """On each store (a plain function, so the store fixture applies; fewer examples on
    PostgreSQL, where every example is a new database: the soak runs many more)."""
    run_state_machine_as_test(BillingMachine, settings=settings(
        max_examples=30 if store_name() == "sqlite" else 12, stateful_step_count=40,
        deadline=None, suppress_health_check=[HealthCheck.too_slow]))


class TwoCoreBillingMachine(BillingMachine):
    """The same on a SQLite file, one account a batch: every run with two accounts due goes
    through the writer process (pipeline.py) after its first."""

    def harness(self, policy, seed) -> Harness:
        h = Harness(overrides=policy, seed=seed, failure_rate=0.3, file=True)
        h.engine.batch_size = 1
        return h

    writer_batches = 0  # over all examples: the writer process did write

    def teardown(self):
        if self.h is not None:
            TwoCoreBillingMachine.writer_batches += self.h.engine.writer_batches
            self.h.conn.close()


def test_billing_invariants_on_two_cores():
    if store_name() != "sqlite":
        pytest.skip("the writer process shares a SQLite file (PostgreSQL runs in one process)")
    run_state_machine_as_test(TwoCoreBillingMachine, settings=settings(
        max_examples=10, stateful_step_count=30, deadline=None,
        suppress_health_check=[HealthCheck.too_slow]))
    assert TwoCoreBillingMachine.writer_batches > 0


@pytest.mark.soak
def test_billing_invariants_soak():
    run_state_machine_as_test(BillingMachine, settings=settings(
        max_examples=400, stateful_step_count=80, deadline=None,
        suppress_health_check=[HealthCheck.too_slow]))
