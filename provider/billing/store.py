"""Reading and writing the billing database in batches: the only module that speaks SQL to it
for the engine (reports have their own read-only queries in reports.py).

A unit of work is one write transaction (BEGIN IMMEDIATE: one writer at a time). The engine loads
the accounts it will work on together with their open receivable items (per invoice, straight from
the ledger), changes them in memory, and `UnitOfWork.flush` writes everything with executemany:
postings, invoices, payments, notices, directives, history rows and the changed accounts.
"""

from __future__ import annotations

import contextlib
import operator
from dataclasses import dataclass, field, fields
from itertools import chain, compress
from operator import ne
from typing import NamedTuple

from .clock import iso
from .errors import NotFound, RuleError

RECEIVABLE = "receivable"


@dataclass(slots=True)
class Account:
    id: int
    ref: str
    serial: str
    email: str
    status: str
    tax_state: str
    tax_county: str
    cycle_weeks: int
    theft_protection: int
    method_token: str | None
    opened_at: int
    anchor_at: int | None = None
    paid_through: int | None = None
    next_bill_at: int | None = None
    attempt_at: int | None = None
    attempt_kind: str | None = None
    retry_base: int | None = None
    retry_index: int = 0
    announced: str = ""  # attempt times announced by notice, comma-separated
    notice_at: int | None = None
    failure_open: int = 0
    failed_payments: str = ""
    switch_eligible_at: int | None = None
    late_fee_at: int | None = None
    past_due_since: int | None = None
    recall_at: int | None = None
    lockout_at: int | None = None
    appointment_at: int | None = None
    installed_at: int | None = None
    short_reschedules: int = 0
    removed_at: int | None = None
    closed_at: int | None = None
    pending_method_token: str | None = None
    pending_theft_protection: int | None = None
    pending_cycle_weeks: int | None = None
    pending_apply_at: int | None = None
    attempt_seq: int = 0
    invoice_seq: int = 0
    next_due_at: int | None = None

    def next_due(self) -> int | None:
        """The earliest of the account's timers (None: nothing scheduled)."""
        best = None
        for t in (self.next_bill_at, self.notice_at, self.attempt_at, self.late_fee_at,
                  self.recall_at, self.lockout_at, self.pending_apply_at):
            if t is not None and (best is None or t < best):
                best = t
        return best


ACCOUNT_COLUMNS = tuple(f.name for f in fields(Account))
_SELECT_ACCOUNT = f"SELECT {', '.join(ACCOUNT_COLUMNS)} FROM account"
_INSERT_ACCOUNT = (f"INSERT INTO account ({', '.join(ACCOUNT_COLUMNS)}) VALUES "
                   f"({', '.join('?' for _ in ACCOUNT_COLUMNS)})")
# columns fixed at opening are never rewritten
_FIXED = ("id", "ref", "serial", "email", "tax_state", "tax_county", "opened_at")
_CHANGING = tuple(c for c in ACCOUNT_COLUMNS if c not in _FIXED)
_CHANGING_INDEXES = tuple(range(len(_CHANGING)))
_row = operator.attrgetter(*ACCOUNT_COLUMNS)
# an account's changing columns as a tuple: one expression of attribute reads, which the
# interpreter specializes to slot reads (attrgetter looks each name up on the type: ~10x the cost)
_changing_values = eval(f"lambda a: ({', '.join(f'a.{c}' for c in _CHANGING)},)")
_changing_of_row = operator.itemgetter(*(ACCOUNT_COLUMNS.index(c) for c in _CHANGING))
_SERIAL, _STATUS, _NEXT_DUE = (ACCOUNT_COLUMNS.index(c) for c in ("serial", "status", "next_due_at"))


_UPDATE_ROWS: dict[tuple, operator.attrgetter] = {}


def _update_row(changed: tuple) -> operator.attrgetter:
    """(the changed columns' values..., id) of an account, for these changed column indexes."""
    found = _UPDATE_ROWS.get(changed)
    if found is None:
        found = _UPDATE_ROWS[changed] = operator.attrgetter(*(_CHANGING[i] for i in changed),
                                                            "id")
    return found


@dataclass(slots=True)
class OpenInvoice:
    """An invoice with a non-zero receivable balance (positive: owed; negative: owed to the client)."""

    id: int | None  # None: unapplied cash (an overpayment) on the account
    outstanding: int
    kind: str = "credit"
    due_at: int = 0
    first_failed_at: int | None = None
    late_fee_invoice: int | None = None


@dataclass(slots=True)
class Work:
    """An account loaded for a unit of work: the row, and its open receivable items by invoice."""

    account: Account
    loaded: tuple = ()  # the changing columns as loaded (to write back only what changed)
    items: dict = field(default_factory=dict)  # invoice id (or None) -> OpenInvoice
    is_new: bool = False

    @property
    def balance(self) -> int:
        total = 0
        for i in self.items.values():  # a plain loop: a few items, read several times an account
            total += i.outstanding
        return total

    def owed(self) -> list[OpenInvoice]:
        """Invoices with money owed, oldest first (the order payments settle them)."""
        found = [i for i in self.items.values() if i.outstanding > 0 and i.id is not None]
        if len(found) > 1:  # most accounts owe one invoice at a time: nothing to order
            found.sort(key=_by_due)
        return found

    def credits(self) -> list[OpenInvoice]:
        """Money owed to the client (credit notes, unapplied cash), oldest first."""
        return sorted((i for i in self.items.values() if i.outstanding < 0),
                      key=lambda i: (i.id is None, i.due_at, i.id or 0))


def _by_due(i: OpenInvoice) -> tuple:
    return (i.due_at, i.id)


class DueBatch(NamedTuple):
    """Accounts due, read for a run, as plain rows (what a writer process sends the engine)."""

    rows: list  # the accounts' rows, ACCOUNT_COLUMNS, in the order they run
    items: list  # (account_id, invoice_id, outstanding) of their open receivable items
    invoices: list  # (id, kind, due_at, first_failed_at, late_fee_invoice) of those invoices
    ordered: dict  # serial -> its last recall or lockout, 0: none (for accounts in those states)

    def after(self) -> tuple:
        """The key, (next_due_at, id), the next batch starts after."""
        last = self.rows[-1]
        return last[_NEXT_DUE], last[0]


def works_of(batch: DueBatch, uow: UnitOfWork) -> list[Work]:
    """The batch's accounts as works registered with the unit of work."""
    # the changing columns as read come from the row (indexing a tuple, not 32 attributes)
    loaded = [Work(Account(*r), _changing_of_row(r)) for r in batch.rows]
    _attach(loaded, batch.items, batch.invoices)
    known = uow.last_ordered
    for serial, last in batch.ordered.items():
        known.setdefault(serial, last)  # one decided in this run is newer than the stored one
    uow.works.extend(loaded)
    return loaded


def _attach(loaded: list[Work], items: list, invoices: list) -> None:
    works = {w.account.id: w for w in loaded}
    by_invoice = {}
    for account_id, invoice_id, outstanding in items:
        item = works[account_id].items[invoice_id] = OpenInvoice(invoice_id, outstanding)
        if invoice_id is not None:
            by_invoice[invoice_id] = item
    for inv_id, kind, due_at, failed, late in invoices:
        item = by_invoice[inv_id]
        item.kind, item.due_at, item.first_failed_at, item.late_fee_invoice = (
            kind, due_at, failed, late)


def next_id(conn, table: str) -> int:
    """The next id of a table (or of journal entries: "entry"), from its current maximum."""
    if table == "entry":
        # entries are numbered in the order their postings are written: the last posting
        # (by id, the primary key) carries the highest entry id
        sql = ("SELECT COALESCE(MAX(entry_id), 0) + 1 FROM"
               " (SELECT entry_id FROM posting ORDER BY id DESC LIMIT 1) AS last")
    else:
        sql = f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table}"
    return conn.execute(sql).fetchone()[0]


def next_ids(conn, tables: tuple) -> dict:
    return {table: next_id(conn, table) for table in tables}


# the ids the daily run allocates (a run in batches carries them from batch to batch)
DAILY_IDS = ("invoice", "entry", "posting", "payment", "notice", "directive", "history")


class _LazyIds(dict):
    """The next id of each table (and of journal entries), from the table's maximum on first use:
    a transaction that allocates nothing reads nothing."""

    def __init__(self, conn):
        super().__init__()
        self.conn = conn

    def __missing__(self, table: str) -> int:
        value = self[table] = next_id(self.conn, table)
        return value


# An invoice is written without its collection marks (first_failed_at, late_fee_invoice): they
# are NULL when it is issued and set later (UnitOfWork.invoice_updates). Leaving them out of the
# INSERT spares two NULLs an invoice, which the sqlite3 module binds through its adapter registry
# (a key tuple built, hashed and looked up: ~1,100 instructions a value).
INVOICE_WRITTEN = ("id", "account_id", "number", "kind", "issued_at", "due_at", "period_start",
                   "period_end", "cycle_weeks", "collection", "subtotal", "tax", "tax_rate", "total",
                   "prepaid_span", "refers_to", "memo")
# the tables a unit of work appends to, parents before children: (table, attribute, values a row,
# the columns they fill: None for every column in order)
APPENDED = (("invoice", "invoices", len(INVOICE_WRITTEN), INVOICE_WRITTEN),
            ("invoice_line", "lines", 6, None), ("posting", "postings", 10, None),
            ("payment", "payments", 14, None), ("notice", "notices", 8, None),
            ("directive", "directives", 16, None), ("history", "history", 6, None))
COLUMNS = {attribute: columns for _, attribute, columns, _ in APPENDED}


def rows(values: list, columns: int) -> list[tuple]:
    """The rows of a flat list of values (`columns` values a row)."""
    return [tuple(values[i:i + columns]) for i in range(0, len(values), columns)]


class UnitOfWork:
    """Rows to write in one transaction, with ids allocated from the tables' current maxima.

    Appended rows are kept flat, each table's values one row after another (`uow.postings +=
    (id, ...)`), the layout of a many-row INSERT: the flush hands them to the database in slices,
    with no per-row tuple to unpack (`rows` reads them back as tuples)."""

    def __init__(self, conn, next_id: dict | None = None, last_ordered: dict | None = None):
        self.conn = conn
        # table -> next id: read on first use, or carried from the run's previous batch
        self.next_id = _LazyIds(conn) if next_id is None else next_id
        self.postings: list = []
        self.invoices: list = []
        self.lines: list = []
        self.payments: list = []
        self.notices: list = []
        self.directives: list = []
        self.history: list = []
        self.invoice_updates: dict[int, tuple] = {}  # id -> (first_failed_at, late_fee_invoice)
        self.works: list[Work] = []
        # serial -> last recall or lockout (directives): read with the batch, or carried
        self.last_ordered: dict[str, int] = {} if last_ordered is None else last_ordered

    def allocate(self, table: str) -> int:
        value = self.next_id[table]
        self.next_id[table] = value + 1
        return value

    def entry(self, account_id: int, at: int, cause: str, ref: str, lines) -> int | None:
        """Append one balanced journal entry; `lines` = [(book, invoice_id, amount)]. Returns its
        id, None when every amount is zero (nothing is posted)."""
        entry_id = self.next_id["entry"]
        posting_id = self.next_id["posting"]
        total = n = 0
        extend = self.postings.extend
        for book, invoice_id, amount in lines:
            if amount:
                total += amount
                n += 1
                extend((posting_id, entry_id, n, account_id, at, book, invoice_id, amount, cause,
                        ref))
                posting_id += 1
        if total:
            raise AssertionError(f"unbalanced entry {cause} {ref}: {lines}")
        if not n:
            # nothing posted (every amount zero, e.g. a fee of 0.00): no entry, and its id stays
            # free (the next id is read back from the last posting, so a batch run anywhere
            # numbers entries alike)
            return None
        self.next_id["entry"] = entry_id + 1
        self.next_id["posting"] = posting_id
        return entry_id

    def flush(self) -> None:
        write(self.conn, self.writes())

    def writes(self) -> Writes:
        """Everything this unit of work writes, as plain rows (what the engine sends a writer
        process). Sets each account's next_due_at first."""
        new = [w.account for w in self.works if w.is_new]
        for w in self.works:
            w.account.next_due_at = w.account.next_due()
        # write back only the columns that changed, grouped by which columns changed (a day's
        # run changes the same few columns of most accounts: a handful of narrow UPDATEs)
        groups: dict[tuple, list] = {}
        for w in self.works:
            if w.is_new:
                continue
            now = _changing_values(w.account)
            loaded = w.loaded
            if now != loaded:
                changed = tuple(compress(_CHANGING_INDEXES, map(ne, now, loaded)))
                groups.setdefault(changed, []).append(w.account)
        return Writes(
            list(chain.from_iterable(map(_row, new))),
            [getattr(self, attribute) for _, attribute, _, _ in APPENDED],
            [v + (k,) for k, v in self.invoice_updates.items()],
            [(changed, list(map(_update_row(changed), accounts)))
             for changed, accounts in groups.items()])


class Writes(NamedTuple):
    """A unit of work's rows: new accounts (flat), each APPENDED table's values (flat), the
    invoices' collection marks (first_failed_at, late_fee_invoice, id), and the accounts' changed
    columns (the changed column indexes, [(values..., id)])."""

    accounts: list
    appended: list
    invoice_updates: list
    account_updates: list


def write(c, writes: Writes) -> None:
    """Write a unit of work's rows on the connection `c` (in its open transaction)."""
    if writes.accounts:
        c.copy_rows("account", len(ACCOUNT_COLUMNS), writes.accounts)
    # appended rows: COPY on PostgreSQL, many rows a statement on SQLite
    for (table, _, columns, names), values in zip(APPENDED, writes.appended, strict=True):
        if values:
            c.copy_rows(table, columns, values, names)
    if writes.invoice_updates:
        c.update_rows("invoice", ("first_failed_at", "late_fee_invoice"), writes.invoice_updates)
    for changed, rows in writes.account_updates:
        c.update_rows("account", tuple(_CHANGING[i] for i in changed), rows)


class Store:
    """Queries on receivable postings spell `book = 'receivable'` literally: that is what lets
    SQLite (and PostgreSQL) use the partial index posting_receivable."""

    def __init__(self, conn):
        self.conn = conn

    @contextlib.contextmanager
    def transaction(self):
        """One write transaction; yields a UnitOfWork flushed before COMMIT."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            uow = UnitOfWork(self.conn)
            yield uow
            uow.flush()
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    # ---- meta
    def meta(self, key: str, default: str | None = None) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set_clock(self, to: int) -> None:
        """Move the stored clock to `to` (in the caller's write transaction); RuleError when it
        is already later (another run went further meanwhile): the clock never goes back."""
        now = int(self.meta("now", "0"))
        if now > to:
            raise RuleError(f"the clock is at {iso(now)}; it never goes back (asked for {iso(to)})")
        self.set_meta("now", str(to))

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key)"
                          " DO UPDATE SET value = excluded.value", (key, value))

    # ---- accounts
    def account_by_ref(self, ref: str) -> Account:
        row = self.conn.execute(_SELECT_ACCOUNT + " WHERE ref = ?", (ref,)).fetchone()
        if row is None:
            raise NotFound(f"no account {ref!r}")
        return Account(*row)

    def earliest_due(self) -> int | None:
        return self.conn.execute("SELECT MIN(next_due_at) FROM account").fetchone()[0]

    def load_due(self, until: int, limit: int, uow: UnitOfWork, ordered: tuple = ()) -> list[Work]:
        """The first `limit` accounts with a timer due by `until` (earliest first), loaded."""
        return works_of(self.read_due(until, limit, ordered), uow)

    def read_due(self, until: int, limit: int, ordered: tuple = (),
                 after: tuple | None = None) -> DueBatch:
        """The first `limit` accounts with a timer due by `until`, earliest first (after the key
        `after`, (next_due_at, id), when given), with what their run reads, as plain rows: their
        open receivable items and, for accounts whose status is one of the directive actions
        `ordered`, their serial's last directive of those actions (a clear answers it)."""
        if after is None:
            where, params = "next_due_at <= ?", (until, limit)
        else:
            where, params = "next_due_at <= ? AND (next_due_at, id) > (?, ?)", (until, *after, limit)
        rows = self.conn.select_rows(
            ACCOUNT_COLUMNS, f"FROM account WHERE {where} ORDER BY next_due_at, id LIMIT ?", params)
        items, invoices = self._read_items([r[0] for r in rows])
        serials = [r[_SERIAL] for r in rows if r[_STATUS] in ordered]
        found = self.last_directives(serials, ordered)
        return DueBatch(rows, items, invoices, {s: found.get(s, 0) for s in serials})

    def load(self, accounts: list[Account], uow: UnitOfWork) -> list[Work]:
        """These accounts, with their open receivable items, loaded."""
        items, invoices = self._read_items([a.id for a in accounts])
        loaded = [Work(a, _changing_values(a)) for a in accounts]
        _attach(loaded, items, invoices)
        uow.works.extend(loaded)
        return loaded

    def _read_items(self, ids: list) -> tuple[list, list]:
        """The accounts' open receivable items from the ledger, (account_id, invoice_id,
        outstanding), and the invoices among them, (id, kind, due_at, first_failed_at,
        late_fee_invoice)."""
        items = []
        for among, params in self.conn.one_of("account_id", ids):
            items += self.conn.execute(
                f"SELECT account_id, invoice_id, SUM(amount) FROM posting"
                f" WHERE {among} AND book = '{RECEIVABLE}'"
                f" GROUP BY account_id, invoice_id HAVING SUM(amount) <> 0", params).fetchall()
        invoices = []
        for among, params in self.conn.one_of("id", [i for _, i, _ in items if i is not None]):
            invoices += self.conn.execute(
                f"SELECT id, kind, due_at, first_failed_at, late_fee_invoice FROM invoice"
                f" WHERE {among}", params).fetchall()
        return items, invoices

    def last_directives(self, serials: list, actions: tuple) -> dict:
        """serial -> the id of its last directive with one of `actions` (none: not in it)."""
        found = {}
        marks = ", ".join("?" * len(actions))
        for among, params in self.conn.one_of("serial", serials):
            found.update(self.conn.execute(
                f"SELECT serial, MAX(id) FROM directive WHERE {among} AND action IN ({marks})"
                f" GROUP BY serial", (*params, *actions)))
        return found

    def invoices_of(self, account_id: int) -> list[dict]:
        """Every invoice of one account with its lines (for refunds and statements)."""
        cursor = self.conn.execute("SELECT * FROM invoice WHERE account_id = ? ORDER BY id",
                                   (account_id,))
        cols = [d[0] for d in cursor.description]
        invoices = [dict(zip(cols, row, strict=True)) for row in cursor]
        lines: dict[int, list] = {}
        for inv_id, line, item, label, amount, taxable in self.conn.execute(
                "SELECT l.invoice_id, l.line, l.item, l.label, l.amount, l.taxable"
                " FROM invoice_line l JOIN invoice i ON i.id = l.invoice_id"
                " WHERE i.account_id = ? ORDER BY l.invoice_id, l.line", (account_id,)):
            lines.setdefault(inv_id, []).append(
                {"line": line, "item": item, "label": label, "amount": amount,
                 "taxable": bool(taxable)})
        for inv in invoices:
            inv["lines"] = lines.get(inv["id"], [])
        return invoices

    def outstanding_by_invoice(self, account_id: int) -> dict:
        return {inv: total for inv, total in self.conn.execute(
            "SELECT invoice_id, SUM(amount) FROM posting WHERE account_id = ?"
            f" AND book = '{RECEIVABLE}' GROUP BY invoice_id", (account_id,))}

    def balance(self, account_id: int) -> int:
        return self.conn.execute(
            "SELECT COALESCE(SUM(amount), 0) FROM posting WHERE account_id = ?"
            f" AND book = '{RECEIVABLE}'", (account_id,)).fetchone()[0]

    def payment_keys(self, account_id: int) -> set:
        return {k for (k,) in self.conn.execute(
            "SELECT idem_key FROM payment WHERE account_id = ?", (account_id,))}

    def payments_by_request(self, kind: str, request_key: str) -> list[tuple]:
        """(account_id, amount, status) of every payment event of `kind` made with this key."""
        return [tuple(r) for r in self.conn.execute(
            "SELECT account_id, amount, status FROM payment WHERE request_key = ? AND kind = ?"
            " ORDER BY id", (request_key, kind))]

    def payment_exists(self, key: str) -> bool:
        return self.conn.execute("SELECT 1 FROM payment WHERE idem_key = ?", (key,)).fetchone() \
            is not None
