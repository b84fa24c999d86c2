"""The billing engine: the policy applied to accounts over (virtual) time.

Everything that happens to an account happens at a time, in order, inside a unit of work:
  - scheduled work, found through each account's earliest timer (`next_due_at`, indexed): the
    cycle invoice, the automated charge and its retries, the notice due 48 h before an attempt
    that follows a failure, the late fee, the early service recall, the lockout, a pending change,
    the due date of an installed device's unpaid initial invoice (kept in the attempt timer, kind
    `initial_due`: nothing is charged then, the account enters collections);
  - operations from outside (the CLI, a scenario): opening an account, a payment, a new payment
    method, a reschedule, an installation, a removal, a cancellation, a prepayment, a close.
`advance(to)` is the daily run: it takes due accounts in batches (one transaction each), runs each
account's timers in time order up to `to`, and moves the clock. Within one instant the order is:
pending change, invoice, notice, charge, late fee, recall, lockout.

Money moves only through the ledger (UnitOfWork.entry): an invoice debits the receivable and
credits revenue and sales tax; a payment debits cash and credits the receivable invoice by invoice,
oldest first; a credit note reverses revenue; a refund pays a credit back. Balances are sums of
receivable postings. Payment events are idempotent by key (processor charge keys are derived
from the account's attempt counter, committed with the result, so a rerun after a crash re-asks
the processor with the same key and gets the same answer).
"""

from __future__ import annotations

import contextlib
import gc
import json

from . import directives as outbox
from . import pipeline
from .clock import iso
from .errors import InputError, RuleError
from .faults import crash_point
from .lifecycle import COLLECTING, Lifecycle
from .money import fmt, prorate, rate_text, tax_on
from .policy import DAY, HOUR, WEEK, Policy, policy_from_text
from .processor import (
    FAILED,
    NO_PAYMENT_METHOD,
    SUCCEEDED,
    ChargeResult,
    ProcessorUnavailable,
)
from .store import COLUMNS, RECEIVABLE, Account, OpenInvoice, Store, Work, rows

CASH = "cash"
SALES_TAX = "sales_tax_payable"
FEE_KINDS = ("late_fee", "reschedule_fee", "credit_note", "removal_fee")
BILLING_STATES = ("active", "past_due", "recall", "lockout")
AUTOMATED = ("scheduled", "retry")
INITIAL_DUE = "initial_due"  # attempt kind: the due date of an installed device's initial invoice
MAX_STEPS = 100_000
MAX_KEY = 64  # characters of a client's or a feed's idempotency key
EARLIEST = 0  # 1970-01-01: the engine's clock and every date it accepts
LATEST = 4_102_444_800  # 2100-01-01T00:00:00Z: no date at or after it is accepted
MAX_ADVANCE_DAYS = 3660  # one `advance` runs at most ten years


def revenue(item: str) -> str:
    return f"revenue:{item}"


_REVENUE: dict[str, str] = {}  # item -> its revenue book (names built once)


def _times(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def _join(times) -> str:
    return ",".join(str(t) for t in times)


class Engine:
    """One billing database, its policy, a payment processor and (optionally) a token signer."""

    def __init__(self, conn, policy: Policy, processor, signer=None, batch_size: int = 2000,
                 two_cores: bool = True):
        self.conn = conn
        # the daily run's database work in a writer process, when a day has more than a batch
        # due on a SQLite file (pipeline.py)
        self.two_cores = two_cores
        self._writer = None
        self.writer_cpu_seconds = 0.0  # the writer processes' CPU time, over this engine's runs
        self.writer_batches = 0  # batches the writer process wrote, over this engine's runs
        self.segment_batches = pipeline.SEGMENT_BATCHES  # batches a writer's transaction at most
        self.store = Store(conn)
        self.policy = policy
        self.processor = processor
        self.signer = signer
        self.batch_size = batch_size
        self.lifecycle = Lifecycle()
        self._rates = {}
        self._priced = {}  # (state, county, lines) -> an invoice's figures (see _price)
        self._cycles = {}  # (weeks, theft protection, admin fee) -> a cycle's lines

    def disconnect(self) -> None:
        """Close the database connection (and the processor's, when it has one)."""
        store = getattr(self.processor, "store", None)
        if hasattr(getattr(store, "conn", None), "close"):
            store.conn.close()
        self.conn.close()

    # ------------------------------------------------------------------ setup and clock
    @classmethod
    def initialize(cls, conn, policy: Policy, now: int, seed: int = 0) -> None:
        """Write the policy and the clock into a freshly created database."""
        store = Store(conn)
        conn.execute("BEGIN IMMEDIATE")
        store.set_meta("now", str(now))
        store.set_meta("seed", str(seed))
        store.set_meta("policy_text", policy.text)
        store.set_meta("policy_source", policy.source)
        store.set_meta("policy_overrides", json.dumps(policy.overrides, sort_keys=True))
        conn.execute("COMMIT")

    @staticmethod
    def stored_policy(conn) -> Policy:
        store = Store(conn)
        return policy_from_text(store.meta("policy_text"), store.meta("policy_source"),
                                json.loads(store.meta("policy_overrides", "{}")))

    @property
    def now(self) -> int:
        return int(self.store.meta("now"))

    def _rate(self, a: Account):
        return self._rate_and_label(a)[0]

    def _rate_and_label(self, a: Account):
        key = (a.tax_state, a.tax_county)
        found = self._rates.get(key)
        if found is None:
            rate = self.policy.tax_rate(*key)
            found = self._rates[key] = (rate, rate_text(rate))
        return found

    # ------------------------------------------------------------------ the daily run
    def advance(self, to: int) -> dict:
        """Run everything due up to `to`, in order, then set the clock to `to`.

        The run goes a day at a time (days with nothing due are skipped), each day committed
        (batch by batch) before the next starts: whatever stops it (a crash, an error), every
        charge the processor answered is either in the books or re-asked with the same key by
        the next run. At most MAX_ADVANCE_DAYS per call, and never past LATEST."""
        if isinstance(to, bool) or not isinstance(to, int):
            raise InputError("advance", "to", "expected a time in whole seconds")
        now = self.now
        if to < now:
            raise RuleError(f"the clock is at {iso(now)}; it never goes back (asked for "
                            f"{iso(to) if EARLIEST <= to < LATEST else to})")
        if to >= LATEST:
            raise InputError("advance", "to", f"the clock stops before {iso(LATEST)}")
        if to - now > MAX_ADVANCE_DAYS * DAY:
            raise InputError("advance", "to", f"at most {MAX_ADVANCE_DAYS} days per run (asked "
                             f"for {(to - now) // DAY}); run it again to go further")
        processed = batches = 0
        by_writer = self.writer_batches
        try:
            with _gc_paused():
                step = now
                while True:
                    due = self.store.earliest_due()
                    step = to if due is None else min(to, max(step + DAY, due))
                    out = self._advance(step, processed, batches)
                    processed, batches = out["accounts_processed"], out["batches"]
                    if step == to:
                        return {**out, "writer_batches": self.writer_batches - by_writer}
        finally:
            if self._writer is not None:
                self._writer.close()
                self.writer_cpu_seconds += self._writer.cpu_seconds
                self._writer = None

    def _advance(self, to: int, processed: int, batches: int) -> dict:
        two_cores = self.two_cores and pipeline.usable(self.conn)
        while True:
            with self.store.transaction() as uow:
                works = self.store.load_due(to, self.batch_size, uow, outbox.ORDERED)
                if not works:
                    self.store.set_clock(to)
                    crash_point()
                    break
                more = two_cores and len(works) == self.batch_size
                if more and self._writer is None:
                    self._writer = pipeline.Writer(self.conn.location)  # starts while this runs
                for w in works:
                    self._run(w, to, uow)
                processed += len(works)
                batches += 1
                crash_point()
            crash_point()
            if more:
                # more may be due: the rest of the day on two cores
                more_accounts, more_batches = pipeline.run(
                    self._writer, self.conn, self._run, to, self.batch_size, outbox.ORDERED,
                    self.segment_batches)
                self.writer_batches += more_batches
                return {"accounts_processed": processed + more_accounts,
                        "batches": batches + more_batches}
        return {"accounts_processed": processed, "batches": batches}

    def _run(self, w: Work, until: int, uow) -> None:
        """Run one account's timers, in time order, up to and including `until`."""
        a = w.account
        last = None
        t = a.next_due()
        for _ in range(MAX_STEPS):
            if t is None or t > until:
                return
            if last is not None and t < last:
                raise AssertionError(f"{a.ref}: timer went back from {last} to {t}")
            last = t
            for _pass in range(4):
                if a.pending_apply_at is not None and a.pending_apply_at <= t:
                    self._apply_pending(w, uow, t)
                if a.next_bill_at == t:
                    self._bill(w, uow, t)
                if a.notice_at == t:
                    self._upcoming_notice(w, uow, t)
                if a.attempt_at == t:
                    self._attempt(w, uow, t)
                if a.late_fee_at == t:
                    self._late_fee_check(w, uow, t)
                if a.recall_at == t:
                    self._recall(w, uow, t)
                if a.lockout_at == t:
                    self._lockout(w, uow, t)
                following = a.next_due()
                if following != t:
                    break
            else:
                raise AssertionError(f"{a.ref}: no progress at {t}")
            t = following
        raise AssertionError(f"{a.ref}: more than {MAX_STEPS} steps in one run")

    # ------------------------------------------------------------------ ledger primitives
    def _issue(self, w: Work, uow, t: int, kind: str, lines, *, due_at: int, collection: str,
               period=None, cycle_weeks=None, prepaid_span=None, refers_to=None, memo="") -> int:
        """Issue an invoice (or a credit note: negative lines) and post it."""
        a = w.account
        invoice_id = uow.allocate("invoice")
        subtotal, tax, total, rate_label, line_rows, credits = self._price(a, lines)
        a.invoice_seq += 1
        number = f"{a.ref}-{a.invoice_seq:04d}"
        start, end = period if period else (None, None)
        uow.invoices += (invoice_id, a.id, number, kind, t, due_at, start, end, cycle_weeks,
                         collection, subtotal, tax, rate_label, total, prepaid_span, refers_to, memo)
        lines = uow.lines
        for row in line_rows:
            lines.append(invoice_id)
            lines += row
        uow.entry(a.id, t, kind, number, ((RECEIVABLE, invoice_id, total),) + credits)
        w.items[invoice_id] = OpenInvoice(invoice_id, total, kind, due_at)
        self._apply_credits(w, uow, t)
        return invoice_id

    def _price(self, a: Account, lines) -> tuple:
        """An invoice's figures for `lines` at the account's tax location: (subtotal, tax, total,
        rate label, line rows without the invoice id, the entry's credit lines: revenue by item
        then sales tax). A day's run issues the same few invoices over and over: each is priced
        once per location and kept (the policy of an engine does not change)."""
        key = (a.tax_state, a.tax_county, tuple(lines))
        try:
            found = self._priced.get(key)
        except TypeError:  # lines given as lists: priced, not kept
            found, key = None, None
        if found is not None:
            return found
        rate, rate_label = self._rate_and_label(a)
        taxable_items = self.policy.taxable_items
        subtotal = taxable = 0
        rows = []
        credits = []
        for n, (item, label, amount) in enumerate(lines, 1):
            subtotal += amount
            is_taxable = item in taxable_items
            if is_taxable:
                taxable += amount
            rows.append((n, item, label, amount, int(is_taxable)))
            book = _REVENUE.get(item)
            if book is None:
                book = _REVENUE[item] = revenue(item)
            credits.append((book, None, -amount))
        tax = tax_on(taxable, rate)
        credits.append((SALES_TAX, None, -tax))
        found = (subtotal, tax, subtotal + tax, rate_label, tuple(rows), tuple(credits))
        if key is not None:
            if len(self._priced) >= 4096:  # one-off amounts (prorations, credits): stay bounded
                self._priced.clear()
            self._priced[key] = found
        return found

    def _apply_credits(self, w: Work, uow, t: int) -> None:
        """Settle money owed to the client against money the client owes (oldest first)."""
        for item in w.items.values():
            if item.outstanding < 0:
                break
        else:
            return  # nothing owed to the client: the common case
        credits, owed = w.credits(), w.owed()
        if not credits or not owed:
            return
        postings = []
        for c in credits:
            for o in owed:
                if c.outstanding == 0:
                    break
                m = min(-c.outstanding, o.outstanding)
                if m <= 0:
                    continue
                postings += [(RECEIVABLE, c.id, m), (RECEIVABLE, o.id, -m)]
                c.outstanding += m
                o.outstanding -= m
        self._prune(w)
        if postings:
            uow.entry(w.account.id, t, "credit_applied", w.account.ref, postings)

    @staticmethod
    def _prune(w: Work) -> None:
        items = w.items
        for key in [k for k, i in items.items() if i.outstanding == 0]:
            del items[key]

    def _receive(self, w: Work, uow, t: int, amount: int, key: str) -> int:
        """Post money received: cash in, receivable settled oldest invoice first."""
        postings = [(CASH, None, amount)]
        left = amount
        for o in w.owed():
            m = min(left, o.outstanding)
            if m <= 0:
                break
            postings.append((RECEIVABLE, o.id, -m))
            o.outstanding -= m
            left -= m
        if left:
            postings.append((RECEIVABLE, None, -left))
            item = w.items.setdefault(None, OpenInvoice(None, 0))
            item.outstanding -= left
        self._prune(w)
        return uow.entry(w.account.id, t, "payment", key, postings)

    def _payment_row(self, uow, a: Account, t, key, kind, attempt, token, amount, result,
                     failure_open_before, entry_id=None, request_key=None):
        uow.payments += (uow.allocate("payment"), a.id, key, t, kind, attempt, token, amount,
                         result.status if result else "succeeded",
                         result.decline_code if result else None,
                         result.reference if result else None, failure_open_before, entry_id,
                         request_key)

    def _refund_credit(self, w: Work, uow, t: int) -> None:
        """Pay a credit balance back to the payment method on file."""
        a = w.account
        owed_to_client = -w.balance
        if owed_to_client <= 0 or a.method_token is None:
            return
        a.attempt_seq += 1
        key = f"{a.ref}:r{a.attempt_seq}"
        try:
            result = self.processor.refund(idempotency_key=key, token=a.method_token,
                                           amount=owed_to_client, currency="USD",
                                           description=f"LCI-777 refund {a.ref}", at=t)
        except ProcessorUnavailable:
            a.attempt_seq -= 1
            return  # stays a credit on the account; the operator retries with `refund`
        crash_point()
        entry_id = None
        if result.succeeded:
            postings = [(CASH, None, -owed_to_client)]
            for c in w.credits():
                postings.append((RECEIVABLE, c.id, -c.outstanding))
                c.outstanding = 0
            self._prune(w)
            entry_id = uow.entry(a.id, t, "refund", key, postings)
            self._notice(w, uow, t, "refund", f"Refund of {fmt(owed_to_client)}",
                         f"We refunded {fmt(owed_to_client)} to your payment method on file.",
                         amount=owed_to_client)
        self._payment_row(uow, a, t, key, "refund", "refund", a.method_token, owed_to_client,
                          result, a.failure_open, entry_id)

    # ------------------------------------------------------------------ records
    def _notice(self, w, uow, t, kind, subject, body, attempt_at=None, amount=None):
        uow.notices += (uow.allocate("notice"), w.account.id, t, kind, attempt_at, amount, subject,
                        body)

    def _history(self, w, uow, t, event, detail=""):
        uow.history += (uow.allocate("history"), w.account.id, t, event, w.account.status,
                        detail[:200])

    def _fire(self, w, uow, t, trigger, detail=""):
        a = w.account
        before = a.status
        a.status = self.lifecycle.fire(a.status, trigger, balance=w.balance,
                                       installed=a.installed_at is not None)
        self._history(w, uow, t, trigger, detail or f"{before} -> {a.status}")

    def _directive(self, w, uow, t, action, args, delivery=outbox.TOKEN):
        outbox.decide(uow, w.account, t, action, args, delivery, self.signer, self.policy.token_ttl)

    # ------------------------------------------------------------------ scheduled work
    def _cycle_lines(self, a: Account, weeks: int, automated: bool) -> list:
        return list(self._cycle(weeks, a.theft_protection, automated))

    def _cycle(self, weeks: int, theft_protection, admin_fee: bool) -> tuple:
        """A cycle's lines (rental, theft protection if taken, the admin fee if charged), built
        once per kind of cycle."""
        key = (weeks, bool(theft_protection), admin_fee)
        found = self._cycles.get(key)
        if found is None:
            p = self.policy
            lines = [("rental", p.items["rental"].label, p.price("rental", weeks))]
            if theft_protection:
                lines.append(("theft_protection", p.items["theft_protection"].label,
                              p.price("theft_protection", weeks)))
            if admin_fee:
                lines.append(("admin_fee", p.items["admin_fee"].label,
                              p.price("admin_fee", weeks)))
            found = self._cycles[key] = tuple(lines)
        return found

    def _bill(self, w: Work, uow, t: int) -> None:
        a = w.account
        a.next_bill_at = None
        if a.status not in BILLING_STATES:
            return
        weeks = a.cycle_weeks
        end = t + weeks * WEEK
        credit = -w.balance
        if credit > 0 and credit >= self._price(a, self._cycle(weeks, a.theft_protection,
                                                               False))[2]:
            collection = "credit"  # prepaid credit pays it: no automated charge
        elif a.method_token is not None:
            collection = "automated"
        else:
            collection = "manual"
        lines = self._cycle(weeks, a.theft_protection,
                            collection == "automated" or not self.policy.admin_fee_automated_only)
        due = t if collection != "manual" else t + self.policy.manual_due
        self._issue(w, uow, t, "cycle", lines, due_at=due, collection=collection,
                    period=(t, end), cycle_weeks=weeks, memo=f"{weeks}-week cycle")
        a.paid_through = end
        a.next_bill_at = end
        if w.balance > 0:
            a.attempt_at, a.attempt_kind = due, "scheduled"
        self._plan_bill_notice(a, t)

    def _plan_bill_notice(self, a: Account, t: int) -> None:
        """After a failure, the next cycle charge must be announced >= notice_hours before."""
        a.notice_at = None
        if a.failure_open and a.method_token and a.next_bill_at is not None:
            when = a.next_bill_at - self.policy.notice_before_attempt
            if when > t and str(a.next_bill_at) not in a.announced.split(","):
                a.notice_at = when

    def _announce(self, w, uow, t, attempt_at, kind, subject, body):
        a = w.account
        kept = [x for x in _times(a.announced) if x >= t]
        a.announced = _join(sorted(set(kept + [attempt_at])))
        self._notice(w, uow, t, kind, subject, body, attempt_at=attempt_at, amount=w.balance)

    def _upcoming_notice(self, w: Work, uow, t: int) -> None:
        a = w.account
        a.notice_at = None
        if a.failure_open and a.method_token and a.next_bill_at is not None \
                and a.next_bill_at - t >= self.policy.notice_before_attempt:
            self._announce(w, uow, t, a.next_bill_at, "attempt_scheduled",
                           "Upcoming automatic payment",
                           f"Your previous payment failed. On {_date(a.next_bill_at)} we will charge "
                           f"your payment method on file for your next billing cycle and any "
                           f"balance (now {fmt(max(w.balance, 0))}).")

    def _attempt(self, w: Work, uow, t: int) -> None:
        a = w.account
        kind = a.attempt_kind or "scheduled"
        a.attempt_at = a.attempt_kind = None
        amount = w.balance
        if amount <= 0:
            return
        if kind == INITIAL_DUE:
            if a.status == "awaiting_payment" and a.installed_at is not None:
                self._initial_overdue(w, uow, t)
            return
        p = self.policy
        automated = kind in AUTOMATED
        if automated and a.failure_open and a.method_token is not None \
                and str(t) not in a.announced.split(","):
            # seed: notify "at least 48 hours in advance of any automated payment attempts"
            later = t + p.notice_before_attempt
            self._announce(w, uow, t, later, "attempt_scheduled", "Upcoming automatic payment",
                           f"On {_date(later)} we will charge your payment method on file "
                           f"{fmt(amount)} (your outstanding balance).")
            a.attempt_at, a.attempt_kind = later, kind
            return
        a.attempt_seq += 1
        key = f"{a.ref}:a{a.attempt_seq}"
        token = a.method_token
        failure_before = a.failure_open
        if token is None:
            result = ChargeResult(FAILED, "", NO_PAYMENT_METHOD, "no payment method on file")
        else:
            try:
                result = self.processor.charge(idempotency_key=key, token=token, amount=amount,
                                               currency="USD",
                                               description=f"LCI-777 {a.ref} balance", at=t)
            except ProcessorUnavailable:
                a.attempt_seq -= 1
                a.attempt_at, a.attempt_kind = t + HOUR, kind
                if str(t) in a.announced.split(","):
                    a.announced = _join(_times(a.announced) + [t + HOUR])
                return
            crash_point()
        entry_id = None
        succeeded = result.succeeded
        if succeeded:
            entry_id = self._receive(w, uow, t, amount, key)
            a.failure_open = 0
            a.retry_base, a.retry_index = None, 0
            a.notice_at = None
        self._payment_row(uow, a, t, key, "automated" if automated else "immediate", kind, token,
                          amount, result, failure_before, entry_id)
        if succeeded:
            self._after_payment(w, uow, t)
        else:
            self._on_failed(w, uow, t, kind, result.decline_code, amount,
                            attempted=token is not None)
            self._plan_initial_due(w, t)  # a declined initial charge: the invoice is still due

    def _plan_initial_due(self, w: Work, t: int) -> None:
        """An installed device whose initial invoice is unpaid: its due date (or the installation,
        if later) is when the account enters collections."""
        a = w.account
        if a.status != "awaiting_payment" or a.installed_at is None or a.attempt_at is not None:
            return
        due = [o.due_at for o in w.owed() if o.kind == "initial"]
        if due:
            a.attempt_at, a.attempt_kind = max(t, a.installed_at, min(due)), INITIAL_DUE

    def _initial_overdue(self, w: Work, uow, t: int) -> None:
        """The initial invoice of an installed device is unpaid at its due date: a failed payment.
        The account falls past due, the collections clock starts (late fee, recall, lockout on the
        policy's schedule) and so does the billing schedule: the rental runs while the device is
        in the car, so the next cycle falls `second_charge_after` from now even if the initial
        invoice is paid later."""
        a = w.account
        p = self.policy
        # a declined initial charge was just notified
        notified = any(n[1] == a.id and n[2] == t and n[3] == "payment_failed"
                       for n in rows(uow.notices, COLUMNS["notices"]))
        a.failure_open = 1
        # no automated payment was attempted: the Automated Payment Late Fee does not start here
        self._fire(w, uow, t, "initial_payment_overdue", f"initial invoice unpaid: {fmt(w.balance)}")
        self._start_collections(a, t)
        a.anchor_at = t
        a.paid_through = a.next_bill_at = t + p.second_charge_after
        self._schedule_late_fee(a, w)
        self._plan_bill_notice(a, t)
        if not notified:
            then = a.recall_at if a.recall_at is not None else a.lockout_at
            mode = "enter early service recall" if a.recall_at is not None else "lock out"
            fee = (f"a late fee applies if it is not paid within {p.late_fee_after // HOUR} "
                   f"hours, and " if a.late_fee_at is not None else "")
            self._notice(w, uow, t, "payment_overdue", "Your initial payment is overdue",
                         f"Your interlock is installed and your initial payment of "
                         f"{fmt(w.balance)} is unpaid. Pay it now: {fee}your interlock "
                         f"will {mode} on {_date(then)}.", amount=w.balance)

    def _on_failed(self, w: Work, uow, t: int, kind: str, code: str, amount: int,
                   attempted: bool = True) -> None:
        """A charge failed. The late fee ("Automated Payment Late Fee: only charged when the
        failed automated payment isn't corrected") starts only from an automated charge the
        processor was asked for (`attempted`): a scheduled charge with no payment method on file
        is a failed payment for collections, not an automated payment attempt."""
        a = w.account
        p = self.policy
        a.failure_open = 1
        if kind in AUTOMATED and attempted:
            for o in w.owed():
                if o.first_failed_at is None:
                    o.first_failed_at = t
                    uow.invoice_updates[o.id] = (t, o.late_fee_invoice)
        if kind == "scheduled":
            recent = [x for x in _times(a.failed_payments) if x > t - p.switch_window] + [t]
            a.failed_payments = _join(recent[-p.switch_failed_payments:])
            if len(recent) >= p.switch_failed_payments and a.switch_eligible_at is None:
                a.switch_eligible_at = t
                self._history(w, uow, t, "cycle_switch_eligible",
                              f"{len(recent)} failed automated payments within "
                              f"{p.switch_window // WEEK} weeks: may be moved to a "
                              f"{' or '.join(str(x) for x in p.switch_to_weeks)}-week cycle")
        if p.late_fee_reading == "second_failed_attempt" and kind in AUTOMATED and attempted:
            for o in w.owed():
                if self._late_fee_eligible(o) and t - o.first_failed_at >= \
                        p.late_fee_second_attempt_after:
                    self._late_fee(w, uow, t, o)
        self._schedule_late_fee(a, w)
        if a.status == "active":
            self._fire(w, uow, t, "fall_past_due", f"payment failed: {code}")
            self._start_collections(a, t)
        # retries, each announced when this failure is notified
        next_try = None
        if a.status in BILLING_STATES or a.status == "returned":
            if kind == "retry":
                a.retry_index += 1
            else:
                a.retry_base, a.retry_index = t, 0
            if a.method_token is not None and a.retry_index < len(p.retry_after):
                candidate = a.retry_base + p.retry_after[a.retry_index]
                if a.next_bill_at is None or candidate < a.next_bill_at:
                    next_try = candidate
        if next_try is not None:
            a.attempt_at, a.attempt_kind = next_try, "retry"
            self._announce(w, uow, t, next_try, "payment_failed", "Your payment failed",
                           f"We could not charge {fmt(amount)} ({code}). We will try again on "
                           f"{_date(next_try)}. Update your payment method or pay your balance "
                           f"now to avoid a late fee and service interruption.")
        else:
            self._notice(w, uow, t, "payment_failed", "Your payment failed",
                         f"We could not charge {fmt(amount)} ({code}). Please pay your balance "
                         f"now and keep a valid payment method on file.", amount=amount)
        self._plan_bill_notice(a, t)

    def _start_collections(self, a: Account, t: int) -> None:
        p = self.policy
        a.past_due_since = t
        if p.collections_reading == "recall_then_lockout":
            a.recall_at = t + p.recall_after
        else:
            a.lockout_at = t + p.lockout_after

    @staticmethod
    def _late_fee_eligible(o: OpenInvoice) -> bool:
        return (o.kind not in FEE_KINDS and o.late_fee_invoice is None
                and o.first_failed_at is not None and o.outstanding > 0)

    def _schedule_late_fee(self, a: Account, w: Work) -> None:
        a.late_fee_at = None
        if self.policy.late_fee_reading != "uncorrected" or not w.items:
            return
        due = [o.first_failed_at + self.policy.late_fee_after for o in w.owed()
               if self._late_fee_eligible(o)]
        a.late_fee_at = min(due) if due else None

    def _late_fee_check(self, w: Work, uow, t: int) -> None:
        for o in w.owed():
            if self._late_fee_eligible(o) and o.first_failed_at + self.policy.late_fee_after <= t:
                self._late_fee(w, uow, t, o)
        self._schedule_late_fee(w.account, w)

    def _late_fee(self, w: Work, uow, t: int, o: OpenInvoice) -> None:
        a = w.account
        fee = self.policy.late_fee
        collection = "automated" if a.method_token else "manual"
        fee_id = self._issue(w, uow, t, "late_fee", [("late_fee", "Automated Payment Late Fee", fee)],
                             due_at=t, collection=collection, refers_to=o.id,
                             memo=f"failed payment not corrected (invoice id {o.id})")
        o.late_fee_invoice = fee_id
        uow.invoice_updates[o.id] = (o.first_failed_at, fee_id)
        self._notice(w, uow, t, "late_fee", "Late fee applied",
                     f"A late fee of {fmt(fee)} was added because a failed automatic payment was "
                     f"not corrected.", amount=fee)

    def _recall(self, w: Work, uow, t: int) -> None:
        a = w.account
        a.recall_at = None
        if a.status != "past_due" or w.balance <= 0:
            return
        p = self.policy
        self._fire(w, uow, t, "recall_for_balance", f"unpaid {fmt(w.balance)}")
        days = p.lockout_after_recall // DAY
        self._directive(w, uow, t, "recall", {"cause": p.directive_cause, "days": days})
        a.lockout_at = t + p.lockout_after_recall
        self._notice(w, uow, t, "recall", "Early service recall",
                     f"Your balance of {fmt(w.balance)} is unpaid. Your interlock has entered early "
                     f"service recall: pay the balance in full, or it will lock out on "
                     f"{_date(a.lockout_at)}.", amount=w.balance)

    def _lockout(self, w: Work, uow, t: int) -> None:
        a = w.account
        a.lockout_at = None
        if a.status not in ("past_due", "recall") or w.balance <= 0:
            return
        self._fire(w, uow, t, "lock_out_for_balance", f"unpaid {fmt(w.balance)}")
        self._directive(w, uow, t, "lockout", {"cause": self.policy.directive_cause})
        self._notice(w, uow, t, "lockout", "Lockout",
                     f"Your balance of {fmt(w.balance)} is unpaid and your interlock is in lockout. "
                     f"After paying in full, call us for the code that clears it.",
                     amount=w.balance)

    def _after_payment(self, w: Work, uow, t: int) -> None:
        """Whatever a payment (or a credit) settles: the initial payment, a paid-in-full balance."""
        a = w.account
        p = self.policy
        self._schedule_late_fee(a, w)
        if w.balance > 0:
            return
        a.attempt_at = a.attempt_kind = None
        if a.status == "awaiting_payment":
            self._fire(w, uow, t, "initial_payment_received")
            a.anchor_at = t
            a.paid_through = a.next_bill_at = t + p.second_charge_after
        elif a.status in COLLECTING:
            before = a.status
            self._fire(w, uow, t, "balance_paid")
            a.past_due_since = a.recall_at = a.lockout_at = None
            if before in ("recall", "lockout"):
                self._directive(w, uow, t, "clear", {"cause": p.directive_cause})
            if before == "lockout" and p.clear_code_on_full_payment:
                self._directive(w, uow, t, "clear", {"cause": p.directive_cause},
                                delivery=outbox.CODE)
            self._notice(w, uow, t, "paid_in_full", "Balance paid in full",
                         "Thank you: your balance is paid in full."
                         + (" Call us with the code shown on your handset to clear the lockout."
                            if before == "lockout" else ""))
        self._plan_bill_notice(a, t)

    def _apply_pending(self, w: Work, uow, t: int) -> None:
        a = w.account
        changes = []
        if a.pending_method_token is not None:
            a.method_token = a.pending_method_token
            a.failure_open = 0
            changes.append("payment method")
        if a.pending_theft_protection is not None:
            a.theft_protection = a.pending_theft_protection
            changes.append(f"theft protection {'on' if a.theft_protection else 'off'}")
        if a.pending_cycle_weeks is not None:
            a.cycle_weeks = a.pending_cycle_weeks
            changes.append(f"{a.cycle_weeks}-week cycle")
        a.pending_method_token = a.pending_theft_protection = a.pending_cycle_weeks = None
        a.pending_apply_at = None
        self._history(w, uow, t, "change_applied", ", ".join(changes))

    # ------------------------------------------------------------------ operations
    def _one(self, ref: str, uow) -> Work:
        a = self.store.account_by_ref(ref)
        [w] = self.store.load([a], uow)
        return w

    def open_account(self, *, serial: str, email: str, state: str, county: str,
                     token: str | None = None, theft_protection: bool = False,
                     appointment: int | None = None, pay_initial: bool = False,
                     source: str = "account open") -> str:
        """Open an account on acceptance of the terms: the initial invoice is issued now (and
        charged at once to `token` if `pay_initial`)."""
        return self.open_accounts([dict(serial=serial, email=email, state=state, county=county,
                                        token=token, theft_protection=theft_protection,
                                        appointment=appointment, pay_initial=pay_initial)],
                                  source=source)[0]

    def open_accounts(self, specs: list[dict], source: str = "account open") -> list[str]:
        """Open many accounts (imports, benchmarks), `batch_size` per transaction."""
        p = self.policy
        t = self.now
        for n, spec in enumerate(specs):
            where = source if len(specs) == 1 else f"{source}[{n}]"
            serial, email, state = spec["serial"], spec["email"], spec["state"]
            if not serial or len(serial) > 64:
                raise InputError(where, "serial", "expected the device serial (1 to 64 characters)")
            if "@" not in email or len(email) > 254:
                raise InputError(where, "email", f"not an email address: {email!r}")
            if state not in p.tax_rates:
                raise InputError(where, "state",
                                 f"no sales tax rate for state {state!r} in the policy "
                                 f"({', '.join(sorted(p.tax_rates))})")
            if spec.get("appointment") is not None and spec["appointment"] <= t:
                raise InputError(where, "appointment", "the installation appointment must be "
                                 "later than the acceptance")
        refs = []
        with _gc_paused():
            for start in range(0, len(specs), self.batch_size):
                with self.store.transaction() as uow:
                    t = self.now  # read holding the write lock: a run may have moved it
                    for spec in specs[start:start + self.batch_size]:
                        if spec.get("appointment") is not None and spec["appointment"] <= t:
                            raise InputError(source, "appointment", "the installation "
                                             "appointment must be later than the acceptance")
                        refs.append(self._open_one(uow, spec, t))
        return refs

    def _open_one(self, uow, spec: dict, t: int) -> str:
        p = self.policy
        account_id = uow.allocate("account")
        appointment = spec.get("appointment")
        token = spec.get("token")
        a = Account(id=account_id, ref=f"A{account_id:06d}", serial=spec["serial"],
                    email=spec["email"], status="awaiting_payment", tax_state=spec["state"],
                    tax_county=spec.get("county") or "", cycle_weeks=p.standard_weeks,
                    theft_protection=int(bool(spec.get("theft_protection"))), method_token=token,
                    opened_at=t, appointment_at=appointment,
                    installed_at=None if appointment is not None else t)
        w = Work(a, is_new=True)
        uow.works.append(w)
        self._history(w, uow, t, "opened", f"terms accepted; serial {a.serial}")
        lines = self._cycle_lines(a, p.standard_weeks, automated=False)
        immediate = bool(spec.get("pay_initial")) and token is not None
        self._issue(w, uow, t, "initial", lines, due_at=t if immediate else t + p.manual_due,
                    collection="immediate" if immediate else "manual",
                    cycle_weeks=p.standard_weeks, memo="initial payment at acceptance")
        if immediate:
            a.attempt_at, a.attempt_kind = t, "immediate"
        else:
            self._plan_initial_due(w, t)
        self._run(w, t, uow)
        return a.ref

    def _check_amount(self, where: str, amount) -> None:
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise InputError(where, "amount", "the amount must be a positive number of cents")
        if amount > self.policy.max_payment:
            raise InputError(where, "amount", f"{fmt(amount)} is over the largest payment the "
                             f"policy accepts ({fmt(self.policy.max_payment)})")

    @staticmethod
    def _check_key(where: str, key) -> None:
        if key is not None and (not isinstance(key, str) or not 0 < len(key) <= MAX_KEY
                                or not key.isprintable() or key != key.strip()):
            raise InputError(where, "key", f"expected 1 to {MAX_KEY} printable characters")

    def pay(self, ref: str, *, amount: int | None = None, key: str | None = None,
            token: str | None = None, external: bool = False) -> dict:
        """A payment the client makes (card in the portal), or one reported from outside
        (`external`: a processor callback, cash at the shop) which must carry its event key.

        A key is scoped to (account, kind): the same request again (same account, same amount, a
        succeeded payment) is a "duplicate" that changes nothing; the same key with another amount
        or on another account is refused (RuleError); a declined payment's key may be used again.
        Before charging, money the processor took for this account that the books do not show (a
        payment killed between the charge and its commit) is recorded first."""
        if amount is not None:
            self._check_amount("pay", amount)
        self._check_key("pay", key)
        if external and not key:
            raise InputError("pay", "key", "an external payment event needs its idempotency key")
        kind = "external" if external else "client"
        self.reconcile(ref)
        with self.store.transaction() as uow:
            t = self.now  # read holding the write lock: a run may have moved it meanwhile
            w = self._one(ref, uow)
            a = w.account
            if a.status == "closed":
                raise RuleError(f"account {ref} is closed")
            if key is not None:
                duplicate = self._seen(a, kind, key, amount)
                if duplicate:
                    return {"status": "duplicate", "key": key}
            amount = w.balance if amount is None else amount
            if amount <= 0:
                raise RuleError(f"nothing to pay: the balance is {fmt(w.balance)}")
            self._check_amount("pay", amount)
            if external:
                event = f"{a.ref}:x:{key}"
                entry_id = self._receive(w, uow, t, amount, event)
                self._payment_row(uow, a, t, event, "external", "client", None, amount, None,
                                  a.failure_open, entry_id, request_key=key)
                outcome = {"status": "succeeded", "key": key, "amount": amount}
                self._after_payment(w, uow, t)
            else:
                token = token or a.method_token
                if token is None:
                    raise RuleError("no payment method: give --token or set one on the account")
                a.attempt_seq += 1
                charge_key = f"{a.ref}:p{a.attempt_seq}"
                result = self.processor.charge(idempotency_key=charge_key, token=token,
                                               amount=amount, currency="USD",
                                               description=f"LCI-777 {a.ref}", at=t)
                crash_point()
                entry_id = self._receive(w, uow, t, amount, charge_key) if result.succeeded \
                    else None
                self._payment_row(uow, a, t, charge_key, "client", "client", token, amount,
                                  result, a.failure_open, entry_id, request_key=key)
                outcome = {"status": result.status, "key": key or charge_key, "amount": amount,
                           "decline_code": result.decline_code}
                if result.succeeded:
                    self._after_payment(w, uow, t)
                else:
                    self._history(w, uow, t, "client_payment_failed", result.decline_code or "")
            self._run(w, t, uow)
        return outcome

    def _seen(self, a: Account, kind: str, key: str, amount: int | None) -> bool:
        """True when this request was already recorded (a duplicate); raises on a conflict."""
        seen = self.store.payments_by_request(kind, key)
        if any(account_id != a.id for account_id, _, _ in seen):
            raise RuleError(f"key {key!r} was already used for {_a(kind)} payment of another "
                            f"account: give this payment its own key")
        done = [amt for _, amt, status in seen if status == "succeeded"]
        if not done:
            return False  # never used, or only declined: this request is charged
        if amount is not None and amount != done[0]:
            raise RuleError(f"key {key!r} was already used for {_a(kind)} payment of "
                            f"{fmt(done[0])}, not {fmt(amount)}: give this payment its own key")
        return True

    def reconcile(self, ref: str) -> int:
        """Record what the processor did for this account that the books do not show: a charge or
        refund it answered whose transaction never committed (the process was killed in between).
        Returns how many were recorded. Needs a processor that can list its records by key prefix
        (`records(prefix)`); without one, nothing is done."""
        listing = getattr(self.processor, "records", None)
        if listing is None:
            return 0
        recorded = 0
        with self.store.transaction() as uow:
            t = self.now  # read holding the write lock: a run may have moved it meanwhile
            w = self._one(ref, uow)
            a = w.account
            prefix = f"{a.ref}:"
            missing = [r for r in listing(prefix) if r[0] not in self.store.payment_keys(a.id)]
            for key, token, amount, kind, status, code, reference, _at in sorted(missing):
                seq = key[len(prefix) + 1:]
                if seq.isdigit():
                    a.attempt_seq = max(a.attempt_seq, int(seq))
                entry_id = None
                if status == SUCCEEDED and kind == "refund":
                    entry_id = uow.entry(a.id, t, "refund", key,
                                         [(CASH, None, -amount), (RECEIVABLE, None, amount)])
                    w.items.setdefault(None, OpenInvoice(None, 0)).outstanding += amount
                    self._prune(w)
                    self._apply_credits(w, uow, t)
                elif status == SUCCEEDED:
                    entry_id = self._receive(w, uow, t, amount, key)
                self._payment_row(uow, a, t, key, "recovered", kind, token, amount,
                                  ChargeResult(status, reference, code), a.failure_open, entry_id)
                self._history(w, uow, t, "processor_record_recovered",
                              f"{kind} {key} {fmt(amount)} {status}")
                recorded += 1
            if recorded:
                self._after_payment(w, uow, t)
                self._run(w, t, uow)
        return recorded

    def refund(self, ref: str, *, amount: int | None = None, key: str | None = None,
               token: str | None = None) -> dict:
        """Pay money the account is owed (a credit: an overpayment, a credit note) back to the
        payment method on file (or `token`). `amount` defaults to the whole credit and may not
        exceed it. With a key the request is idempotent like a payment's; without one, a refund
        that leaves no credit cannot be repeated (there is nothing left to refund)."""
        if amount is not None:
            self._check_amount("refund", amount)
        self._check_key("refund", key)
        self.reconcile(ref)
        with self.store.transaction() as uow:
            t = self.now  # read holding the write lock: a run may have moved it meanwhile
            w = self._one(ref, uow)
            a = w.account
            if key is not None and self._seen(a, "refund", key, amount):
                return {"status": "duplicate", "key": key}
            credit = -w.balance
            if credit <= 0:
                raise RuleError(f"account {ref} has no credit to refund (balance "
                                f"{fmt(w.balance)})")
            amount = credit if amount is None else amount
            if amount > credit:
                raise RuleError(f"account {ref} has a credit of {fmt(credit)}: cannot refund "
                                f"{fmt(amount)}")
            self._check_amount("refund", amount)
            token = token or a.method_token
            if token is None:
                raise RuleError("no payment method to refund to: give --token")
            a.attempt_seq += 1
            refund_key = f"{a.ref}:r{a.attempt_seq}"
            result = self.processor.refund(idempotency_key=refund_key, token=token, amount=amount,
                                           currency="USD", description=f"LCI-777 refund {a.ref}",
                                           at=t)
            crash_point()
            entry_id = None
            if result.succeeded:
                postings = [(CASH, None, -amount)]
                left = amount
                for c in w.credits():
                    m = min(left, -c.outstanding)
                    if m <= 0:
                        break
                    postings.append((RECEIVABLE, c.id, m))
                    c.outstanding += m
                    left -= m
                self._prune(w)
                entry_id = uow.entry(a.id, t, "refund", refund_key, postings)
                self._notice(w, uow, t, "refund", f"Refund of {fmt(amount)}",
                             f"We refunded {fmt(amount)} to your payment method on file.",
                             amount=amount)
                self._history(w, uow, t, "refunded", f"{fmt(amount)} ({refund_key})")
            self._payment_row(uow, a, t, refund_key, "refund", "refund", token, amount, result,
                              a.failure_open, entry_id, request_key=key)
            self._run(w, t, uow)
        return {"status": result.status, "key": key or refund_key, "amount": amount,
                "balance": w.balance, "decline_code": result.decline_code}

    def _change_now_or_later(self, a: Account, field: str, t: int) -> int | None:
        """None: apply now; else the time the change applies (just after the next billing date)."""
        p = self.policy
        if field not in p.change_fields or a.next_bill_at is None:
            return None
        if field == "payment_method" and a.failure_open and p.method_immediate_when_failing:
            return None
        if t <= a.next_bill_at - p.change_notice:
            return None
        return a.next_bill_at + 1

    def set_payment_method(self, ref: str, token: str) -> dict:
        if not token or len(token) > 128:
            raise InputError("payment-method set", "token", "expected a processor token")
        with self.store.transaction() as uow:
            t = self.now  # read holding the write lock: a run may have moved it meanwhile
            w = self._one(ref, uow)
            a = w.account
            if a.status == "closed":
                raise RuleError(f"account {ref} is closed")
            when = self._change_now_or_later(a, "payment_method", t)
            if when is None:
                a.method_token = token
                a.failure_open = 0
                a.notice_at = None
                self._history(w, uow, t, "payment_method_set", "effective now")
                if w.balance > 0 and a.status in COLLECTING + ("returned",):
                    a.attempt_at, a.attempt_kind = t, "immediate"
                outcome = {"effective": "now"}
            else:
                a.pending_method_token = token
                a.pending_apply_at = when
                self._change_notice(w, uow, t, "payment method", when)
                outcome = {"effective": when}
            self._run(w, t, uow)
        return outcome

    def _change_notice(self, w, uow, t, what, when):
        self._history(w, uow, t, "change_scheduled", f"{what} from {_date(when)}")
        self._notice(w, uow, t, "change_scheduled", "Account change scheduled",
                     f"Your change ({what}) reached us less than "
                     f"{self.policy.change_notice // DAY} days before your next billing date; "
                     f"it takes effect after that billing date.")

    def set_theft_protection(self, ref: str, on: bool) -> dict:
        with self.store.transaction() as uow:
            t = self.now  # read holding the write lock: a run may have moved it meanwhile
            w = self._one(ref, uow)
            a = w.account
            if a.status not in BILLING_STATES + ("awaiting_payment",):
                raise RuleError(f"account {ref} is {a.status}")
            when = self._change_now_or_later(a, "theft_protection", t)
            if when is None:
                a.theft_protection = int(on)
                self._history(w, uow, t, "theft_protection", "on" if on else "off")
                outcome = {"effective": "now"}
            else:
                a.pending_theft_protection = int(on)
                a.pending_apply_at = when
                self._change_notice(w, uow, t, f"theft protection {'on' if on else 'off'}", when)
                outcome = {"effective": when}
            self._run(w, t, uow)
        return outcome

    def set_cycle(self, ref: str, weeks: int) -> dict:
        """Operator action. After the failures that make the account eligible it applies from the
        next billing date; otherwise it is the client's request and follows the notice rule."""
        p = self.policy
        if weeks not in p.cycle_weeks:
            raise InputError("set-cycle", "weeks", f"{weeks} is not one of {list(p.cycle_weeks)}")
        with self.store.transaction() as uow:
            t = self.now  # read holding the write lock: a run may have moved it meanwhile
            w = self._one(ref, uow)
            a = w.account
            if a.status not in BILLING_STATES:
                raise RuleError(f"account {ref} is {a.status}: no billing cycle to change")
            if a.switch_eligible_at is not None and weeks in p.switch_to_weeks:
                a.cycle_weeks = weeks
                a.switch_eligible_at = None
                self._history(w, uow, t, "cycle_switched",
                              f"{weeks}-week cycle required after failed payments")
                outcome = {"effective": "next billing date"}
            else:
                when = self._change_now_or_later(a, "cycle_weeks", t)
                if when is None:
                    a.cycle_weeks = weeks
                    self._history(w, uow, t, "cycle_changed", f"{weeks}-week cycle")
                    outcome = {"effective": "next billing date"}
                else:
                    a.pending_cycle_weeks = weeks
                    a.pending_apply_at = when
                    self._change_notice(w, uow, t, f"{weeks}-week cycle", when)
                    outcome = {"effective": when}
            self._run(w, t, uow)
        return outcome

    def install(self, ref: str) -> None:
        with self.store.transaction() as uow:
            t = self.now  # read holding the write lock: a run may have moved it meanwhile
            w = self._one(ref, uow)
            a = w.account
            if a.installed_at is not None:
                raise RuleError(f"account {ref}: the device is already installed")
            if a.status not in BILLING_STATES + ("awaiting_payment",):
                raise RuleError(f"account {ref} is {a.status}")
            a.installed_at, a.appointment_at = t, None
            self._history(w, uow, t, "installed", a.serial)
            self._plan_initial_due(w, t)
            self._run(w, t, uow)

    def _reschedule_charges(self, a: Account, t: int) -> tuple[int, list]:
        """What moving the installation appointment now costs: (notice in seconds,
        [(name, invoice kind, lines)]). Under 48 h notice the rescheduling fee; under 24 h the
        first move on a paid rental cycle is allowed (fee only), a second one needs another
        rental cycle. One rule for the quote and the move."""
        p = self.policy
        notice = a.appointment_at - t
        charges = []
        if notice < p.reschedule_fee_notice:
            charges.append(("reschedule_fee", "reschedule_fee",
                            [("reschedule_fee", "Last-Minute Installation Rescheduling Fee",
                              p.reschedule_fee)]))
        if notice < p.short_notice and a.short_reschedules >= p.short_notice_per_cycle:
            charges.append(("booking_cycle", "booking",
                            self._cycle_lines(a, a.cycle_weeks, automated=False)))
        return notice, charges

    def _check_reschedulable(self, ref: str, a: Account, new_at: int, t: int) -> None:
        if a.installed_at is not None or a.appointment_at is None:
            raise RuleError(f"account {ref} has no installation appointment to reschedule")
        if a.status not in BILLING_STATES:
            raise RuleError(f"account {ref} is {a.status}: the appointment is booked by the "
                            f"initial payment")
        if new_at <= t:
            raise InputError("reschedule", "to", "the new appointment must be in the future")

    def _total(self, a: Account, lines) -> int:
        """An invoice's total for these lines (tax on the taxable ones, half-up, once)."""
        taxable = sum(x for item, _, x in lines if item in self.policy.taxable_items)
        return sum(x for _, _, x in lines) + tax_on(taxable, self._rate(a))

    def reschedule_quote(self, ref: str, new_at: int) -> dict:
        """What `reschedule(ref, new_at)` would charge now, changing nothing: the charges (each
        with its lines and total, tax included), their sum, and the next billing date after."""
        t = self.now
        a = self.store.account_by_ref(ref)
        self._check_reschedulable(ref, a, new_at, t)
        notice, charges = self._reschedule_charges(a, t)
        next_bill = a.next_bill_at
        quoted = []
        for name, _kind, lines in charges:
            quoted.append({"charge": name, "lines": [{"item": i, "label": label, "amount": x}
                                                     for i, label, x in lines],
                           "total": self._total(a, lines)})
            if name == "booking_cycle":
                next_bill = a.paid_through + a.cycle_weeks * WEEK
        return {"notice_hours": notice // HOUR, "charges": quoted,
                "total": sum(c["total"] for c in quoted), "next_billing_at": next_bill}

    def reschedule(self, ref: str, new_at: int) -> dict:
        """Move the installation appointment (fee under 48 h; one under-24 h move per paid cycle)."""
        p = self.policy
        with self.store.transaction() as uow:
            t = self.now  # read holding the write lock: a run may have moved it meanwhile
            w = self._one(ref, uow)
            a = w.account
            self._check_reschedulable(ref, a, new_at, t)
            notice, charges = self._reschedule_charges(a, t)
            charged = []
            for name, kind, lines in charges:
                if kind == "booking":
                    weeks = a.cycle_weeks
                    start = a.paid_through
                    self._issue(w, uow, t, kind, lines, due_at=t, collection="immediate",
                                period=(start, start + weeks * WEEK), cycle_weeks=weeks,
                                memo="another rental cycle to confirm a second short-notice reschedule")
                    a.paid_through = start + weeks * WEEK
                    a.next_bill_at = a.paid_through
                    a.short_reschedules = 0
                else:
                    self._issue(w, uow, t, kind, lines, due_at=t, collection="immediate",
                                memo=f"rescheduled with {notice // HOUR} h notice")
                charged.append(name)
            if notice < p.short_notice:
                a.short_reschedules += 1
            self._history(w, uow, t, "rescheduled",
                          f"from {_date(a.appointment_at)} to {_date(new_at)} "
                          f"({notice // HOUR} h notice)")
            a.appointment_at = new_at
            if charged:
                a.attempt_at, a.attempt_kind = t, "immediate"
            self._plan_bill_notice(a, t)
            self._run(w, t, uow)
        return {"charged": charged, "notice_hours": notice // HOUR}

    def next_bill_quote(self, ref: str) -> dict | None:
        """The next cycle invoice as the daily run will issue it (None: nothing more is billed):
        its date, lines, total (tax included) and how it will be collected. Prepaid credit that
        covers it is not charged; a change pending at that date is not applied to it yet."""
        a = self.store.account_by_ref(ref)
        if a.next_bill_at is None or a.status not in BILLING_STATES:
            return None
        weeks = a.cycle_weeks
        lines = self._cycle_lines(a, weeks, automated=False)
        credit = -self.store.balance(a.id)
        if credit > 0 and credit >= self._total(a, lines):
            collection = "credit"
        elif a.method_token is not None:
            collection = "automated"
        else:
            collection = "manual"
        if collection == "automated" or not self.policy.admin_fee_automated_only:
            p = self.policy
            lines.append(("admin_fee", p.items["admin_fee"].label, p.price("admin_fee", weeks)))
        return {"at": a.next_bill_at, "cycle_weeks": weeks, "collection": collection,
                "lines": [{"item": i, "label": label, "amount": x} for i, label, x in lines],
                "total": self._total(a, lines)}

    def change_effective(self, ref: str, change: str) -> int | str:
        """When a client's change (`payment_method`, `theft_protection`, `cycle_weeks`) made now
        would apply: "now", or the time (just after the next billing date) under the notice rule."""
        if change not in ("payment_method", "theft_protection", "cycle_weeks"):
            raise InputError("change", "field", f"no such account change: {change!r}")
        a = self.store.account_by_ref(ref)
        when = self._change_now_or_later(a, change, self.now)
        return "now" if when is None else when

    def prepay(self, ref: str, cycles: int, token: str | None = None) -> dict:
        """The client pays `cycles` cycles in advance, in one client-initiated charge."""
        if cycles < 1 or cycles > 200:
            raise InputError("prepay", "cycles", "expected 1 to 200 cycles")
        with self.store.transaction() as uow:
            t = self.now  # read holding the write lock: a run may have moved it meanwhile
            w = self._one(ref, uow)
            a = w.account
            if a.status != "active":
                raise RuleError(f"account {ref} is {a.status}: prepayment needs good standing")
            token = token or a.method_token
            if token is None:
                raise RuleError("no payment method: give --token or set one on the account")
            weeks = a.cycle_weeks
            rate = self._rate(a)
            lines = self._cycle_lines(a, weeks, automated=False)
            per = sum(x for _, _, x in lines) + tax_on(
                sum(x for i, _, x in lines if i in self.policy.taxable_items), rate)
            amount = per * cycles + min(w.balance, 0)
            a.attempt_seq += 1
            key = f"{a.ref}:p{a.attempt_seq}"
            result = self.processor.charge(idempotency_key=key, token=token, amount=amount,
                                           currency="USD", description=f"LCI-777 {a.ref} prepay",
                                           at=t) if amount > 0 else None
            crash_point()
            if result is not None and not result.succeeded:
                self._payment_row(uow, a, t, key, "client", "prepay", token, amount, result,
                                  a.failure_open)
                self._history(w, uow, t, "prepayment_declined", result.decline_code or "")
                return {"status": "failed", "decline_code": result.decline_code}
            span = cycles * weeks * WEEK
            start = a.paid_through
            for n in range(cycles):
                s = start + n * weeks * WEEK
                self._issue(w, uow, t, "cycle", lines, due_at=t, collection="prepaid",
                            period=(s, s + weeks * WEEK), cycle_weeks=weeks, prepaid_span=span,
                            memo=f"paid in advance ({cycles} cycles)")
            entry_id = self._receive(w, uow, t, amount, key) if amount > 0 else None
            if result is not None:
                self._payment_row(uow, a, t, key, "client", "prepay", token, amount, result,
                                  a.failure_open, entry_id)
            a.paid_through = a.next_bill_at = start + span
            self._history(w, uow, t, "prepaid", f"{cycles} cycles through {_date(a.paid_through)}")
            self._after_payment(w, uow, t)
            self._run(w, t, uow)
        return {"status": "succeeded", "amount": amount, "paid_through": a.paid_through}

    def _cancellation_credits(self, a: Account, status: str):
        """What cancelling the installation credits: ([(source invoice, credit lines)], memo) —
        one credit note per source invoice. Before any payment the initial invoice is void;
        after it, rental paid beyond the first kept days is refunded; services never."""
        p = self.policy
        invoices = self.store.invoices_of(a.id)
        groups = []
        if status == "awaiting_payment":
            # nothing was booked: the unpaid initial invoice is voided whole
            for inv in invoices:
                if inv["kind"] == "initial":
                    groups.append((inv, [(ln["item"], f"Void: {ln['label']}", -ln["amount"])
                                         for ln in inv["lines"]]))
            return groups, "installation cancelled before the initial payment: initial invoice void"
        kept = p.cancelled_kept
        rental = [inv for inv in invoices if inv["kind"] in ("initial", "cycle", "booking")]
        rental.sort(key=lambda inv: (inv["period_start"] or 0, inv["id"]))
        for inv in rental:
            cover = (inv["period_end"] - inv["period_start"]) if inv["period_start"] \
                is not None else p.second_charge_after
            keep = min(cover, kept)
            kept -= keep
            beyond = cover - keep
            if beyond <= 0:
                continue
            groups.append((inv, [
                ("rental", f"Refund: rental days beyond {p.cancelled_kept // DAY} days",
                 -prorate(ln["amount"], beyond, cover))
                for ln in inv["lines"] if ln["item"] == "rental"]))
        return groups, f"installation cancelled: rental beyond {p.cancelled_kept // DAY} days"

    def cancellation_quote(self, ref: str) -> dict:
        """What `cancel_installation(ref)` would credit now, changing nothing: the credit notes
        (source invoice, lines, total with tax) and their sum."""
        a = self.store.account_by_ref(ref)
        if a.installed_at is not None or a.status not in BILLING_STATES + ("awaiting_payment",):
            raise RuleError(f"account {ref} has no installation to cancel (it is {a.status}"
                            f"{', installed' if a.installed_at is not None else ''})")
        groups, _memo = self._cancellation_credits(a, a.status)
        notes = []
        for inv, lines in groups:
            lines = [ln for ln in lines if ln[2]]
            if lines:
                notes.append({"refers_to": inv["number"],
                              "lines": [{"item": i, "label": label, "amount": x}
                                        for i, label, x in lines],
                              "total": -self._total(a, lines)})
        return {"credit_notes": notes, "credited": sum(n["total"] for n in notes)}

    def cancel_installation(self, ref: str) -> dict:
        """Refund only rental days paid beyond the first two weeks; services never."""
        with self.store.transaction() as uow:
            t = self.now  # read holding the write lock: a run may have moved it meanwhile
            w = self._one(ref, uow)
            a = w.account
            status = a.status
            self._fire(w, uow, t, "cancel_installation")
            groups, memo = self._cancellation_credits(a, status)
            credited = self._credit_notes(w, uow, t, groups, memo)
            self._stop_billing(a)
            self._refund_credit(w, uow, t)
            if w.balance > 0 and a.method_token:
                a.attempt_at, a.attempt_kind = t, "immediate"
            self._run(w, t, uow)
        return {"credited": credited}

    def _credit_notes(self, w: Work, uow, t: int, groups, memo: str) -> int:
        """One credit note per source invoice, so its rounded tax never exceeds what was charged
        on that invoice. Returns the total credited (tax included)."""
        credited = 0
        for inv, lines in groups:
            lines = [ln for ln in lines if ln[2]]
            if not lines:
                continue
            note = self._issue(w, uow, t, "credit_note", lines, due_at=t, collection="credit",
                               refers_to=inv["id"], memo=f"{memo} ({inv['number']})")
            credited -= self._last_total(uow, note)
        return credited

    @staticmethod
    def _last_total(uow, invoice_id: int) -> int:
        for row in reversed(rows(uow.invoices, COLUMNS["invoices"])):
            if row[0] == invoice_id:
                return row[13]
        raise KeyError(invoice_id)

    def _stop_billing(self, a: Account) -> None:
        a.next_bill_at = a.notice_at = a.recall_at = a.lockout_at = a.past_due_since = None
        a.pending_apply_at = None
        a.pending_method_token = a.pending_theft_protection = a.pending_cycle_weeks = None
        a.appointment_at = None

    def _removal_charge(self, a: Account, t: int, anchor: int, paid_through: int):
        """What a removal at `t` bills: ("rest_of_month" | "removal_fee" | None, lines, the end
        of the 4-week month it falls in). The rest of the month is billed for a removal in the
        first cycle (or every month, by the policy's reading); the removal fee when set."""
        p = self.policy
        month_index = (t - anchor) // p.month
        month_end = anchor + (month_index + 1) * p.month
        first_cycle = t < anchor + p.second_charge_after
        fee = [("removal_fee", "Removal service (Service Agreement)", p.removal_fee)] \
            if p.removal_fee else []
        if (p.bill_rest_of_month == "every_month" or first_cycle) and paid_through < month_end:
            gap = month_end - paid_through
            std = p.standard_weeks * WEEK
            lines = [(item, f"{p.items[item].label}: rest of the 4-week month",
                      prorate(p.price(item, p.standard_weeks), gap, std))
                     for item in p.rest_of_month_items
                     if item != "theft_protection" or a.theft_protection]
            return "rest_of_month", lines + fee, month_end
        return ("removal_fee" if fee else None), fee, month_end

    def removal_quote(self, ref: str, at: int) -> dict:
        """What removing the device at `at` (now or a booked date) would bill, changing nothing:
        the cycles billed until then are counted as the daily run will bill them. (Refunds of
        rental paid a year or more in advance are credited on the day, not quoted here.)"""
        if at < self.now:
            raise InputError("removal", "at", "the removal must not be in the past")
        a = self.store.account_by_ref(ref)
        if a.installed_at is None or a.removed_at is not None:
            raise RuleError(f"account {ref}: no installed device to remove")
        p = self.policy
        anchor, paid_through = a.anchor_at, a.paid_through
        if anchor is None:
            anchor, paid_through = a.installed_at, a.installed_at + p.second_charge_after
        next_bill = a.next_bill_at
        while next_bill is not None and next_bill <= at:
            paid_through = next_bill + a.cycle_weeks * WEEK
            next_bill = paid_through
        kind, lines, _ = self._removal_charge(a, at, anchor, paid_through)
        charges = [{"charge": kind, "lines": [{"item": i, "label": label, "amount": x}
                                              for i, label, x in lines],
                    "total": self._total(a, lines)}] if kind else []
        return {"at": at, "charges": charges, "total": sum(c["total"] for c in charges)}

    def remove_device(self, ref: str) -> dict:
        """The device is removed: billing ends; the month rule and advance refunds apply."""
        p = self.policy
        with self.store.transaction() as uow:
            t = self.now  # read holding the write lock: a run may have moved it meanwhile
            w = self._one(ref, uow)
            a = w.account
            if a.installed_at is None:
                raise RuleError(f"account {ref}: the device is not installed (cancel the "
                                f"installation instead)")
            self._fire(w, uow, t, "remove_device")
            a.removed_at = t
            if a.anchor_at is None:
                # the initial invoice is not paid (nor overdue yet): the first cycle, which it
                # bills, counts from the installation
                a.anchor_at = a.installed_at
                a.paid_through = a.installed_at + p.second_charge_after
            kind, lines, month_end = self._removal_charge(a, t, a.anchor_at, a.paid_through)
            billed = []
            if kind == "rest_of_month":
                self._issue(w, uow, t, kind, lines, due_at=t, collection="immediate",
                            period=(a.paid_through, month_end),
                            memo="device removed within the month: rest of the month billed")
                a.paid_through = month_end
                billed.append(kind)
            elif kind == "removal_fee":
                self._issue(w, uow, t, kind, lines, due_at=t, collection="immediate",
                            memo="removal service")
                billed.append(kind)
            refunded = self._credit_notes(
                w, uow, t, self._advance_refund(a, month_end),
                "rental paid a year or more in advance: months after the month of removal")
            self._stop_billing(a)
            self._refund_credit(w, uow, t)
            if w.balance > 0:
                a.attempt_at, a.attempt_kind = t, "immediate"
            self._run(w, t, uow)
        return {"billed": billed, "refunded": refunded}

    def _advance_refund(self, a: Account, month_end: int) -> list:
        """(invoice, credit lines) for rental paid >= a year in advance, for the months after the
        month of removal; only invoices paid in full."""
        p = self.policy
        outstanding = self.store.outstanding_by_invoice(a.id)
        groups = []
        for inv in self.store.invoices_of(a.id):
            span = inv["prepaid_span"]
            if span is None or span < p.refund_advance_minimum or outstanding.get(inv["id"], 0):
                continue
            start, end = inv["period_start"], inv["period_end"]
            if end <= month_end:
                continue
            unused = end - max(start, month_end)
            groups.append((inv, [
                (ln["item"], f"Refund: {ln['label']} after the month of removal",
                 -prorate(ln["amount"], unused, end - start))
                for ln in inv["lines"] if ln["item"] in p.refundable_items]))
        return groups

    def close(self, ref: str) -> None:
        with self.store.transaction() as uow:
            t = self.now  # read holding the write lock: a run may have moved it meanwhile
            w = self._one(ref, uow)
            self._fire(w, uow, t, "close")
            a = w.account
            a.closed_at = t
            a.attempt_at = a.attempt_kind = a.late_fee_at = None
            self._stop_billing(a)


@contextlib.contextmanager
def _gc_paused():
    """Batch work allocates many short-lived objects over a large long-lived heap (caches, the
    processor's records): the cyclic GC's full scans would grow with the fleet, making the run
    superlinear. Pause it (reference counting still frees everything acyclic), resume after."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def _a(word: str) -> str:
    return f"{'an' if word[:1] in 'aeiou' else 'a'} {word}"


def _date(t: int) -> str:
    return iso(t)
