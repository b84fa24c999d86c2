"""The daily run on two cores (provider/billing/pipeline.py): a writer process reads and writes
the batches, a segment of them a transaction, while the engine runs the next batch.

Whatever happens, the books are those of the one-process run: with any batch or segment size;
when the writer is killed, the engine fails, or Ctrl-C is pressed half-way (a rerun finishes the
day). While a segment is open no other connection can commit: an operation from elsewhere (the
portal, an operator) waits for it and never races the run on an account. The engine killed by
SIGKILL half-way is test_crash_rerun.py's (the CLI run there uses the writer).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import threading

import pytest

from provider.billing import database, opening, pipeline
from provider.billing.errors import RuleError
from provider.billing.pipeline import WriterLost

from .harness import T, writers_of
from .test_crash_rerun import UNTIL, copy_fleet, dump, make_fleet

SQLITE_ONLY = ("the writer process shares a SQLite file; PostgreSQL's server is already another "
               "process")


@pytest.fixture(autouse=True)
def _sqlite_only(billing_store):
    if billing_store != "sqlite":
        pytest.skip(SQLITE_ONLY)

ACCOUNTS = 40  # make_fleet's


@pytest.fixture(scope="module")
def fleet(billing_store, tmp_path_factory) -> str:
    if billing_store != "sqlite":
        pytest.skip(SQLITE_ONLY)
    db = make_fleet(tmp_path_factory.mktemp("fleet"))
    for path in (db, db + ".processor"):
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
    return db


class Hooked:
    """The engine's processor, calling `hook` once, at the first charge made while the engine
    holds no transaction of its own (the writer process is writing: the run is on two cores)."""

    def __init__(self, engine, hook):
        self.engine, self.inner, self.hook = engine, engine.processor, hook
        self.fired = False

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def charge(self, **kwargs):
        if not self.fired and not self.engine.conn.raw.in_transaction:
            self.fired = True
            self.charging = kwargs  # the charge under way, for the hook
            self.hook()
        return self.inner.charge(**kwargs)


def run(db: str, *, batch_size: int = 3, two_cores: bool = True, hook=None, segment: int = 0):
    """The day's run to UNTIL, in process; (the result, the engine)."""
    engine = opening.open_engine(db)
    engine.batch_size, engine.two_cores = batch_size, two_cores
    if segment:
        engine.segment_batches = segment
    if hook is not None:
        engine.processor = Hooked(engine, lambda: hook(engine))
    try:
        result = engine.advance(T(UNTIL))
    finally:
        engine.disconnect()
    return result, engine


@pytest.fixture(scope="module")
def one_core(fleet, tmp_path_factory) -> dict:
    """The books of the day's run in one process."""
    db = copy_fleet(fleet, tmp_path_factory.mktemp("one_core"))
    result, engine = run(db, two_cores=False)
    assert result["writer_batches"] == 0 and engine.writer_cpu_seconds == 0
    books = dump(db)
    assert len(books["posting"]) > 500 and books["directive"]
    return books


@pytest.mark.parametrize(("batch_size", "segment"), [(1, 2), (3, 3), (3, 12), (8, 1)])
def test_two_cores_write_the_books_of_one(fleet, tmp_path, one_core, batch_size, segment):
    db = copy_fleet(fleet, tmp_path)
    result, engine = run(db, batch_size=batch_size, segment=segment)
    # most batches went through the writer (a day's first batch runs in the engine's process)
    assert result["writer_batches"] >= result["batches"] // 2 > 0
    assert engine.writer_cpu_seconds > 0
    assert dump(db) == one_core
    assert writers_of(db) == []


# the columns holding ids the run allocates (they shift when another connection allocates some)
# (an invoice's memo may name one, a directive's args and token carry its number)
ALLOCATED = {"posting": ("id", "entry_id", "invoice_id"),
             "invoice": ("id", "refers_to", "late_fee_invoice", "memo"),
             "invoice_line": ("invoice_id",), "payment": ("id", "entry_id"), "notice": ("id",),
             "directive": ("id", "args", "token"), "history": ("id",)}


def accounts_books(db: str, accounts: int) -> dict:
    """Each table's rows of the first `accounts` accounts, in id order, without allocated ids."""
    conn = database.connect(db)
    books = {"account": [tuple(r) for r in conn.execute(
        "SELECT * FROM account WHERE id <= ? ORDER BY id", (accounts,))]}
    for table, drop in ALLOCATED.items():
        cursor = conn.execute(f"SELECT * FROM {table} LIMIT 0")
        names = [d[0] for d in cursor.description]
        keep = [n for n in names if n not in drop]
        owner = ("(SELECT account_id FROM invoice WHERE invoice.id = invoice_line.invoice_id)"
                 if table == "invoice_line" else "account_id")
        order = "invoice_id, line" if table == "invoice_line" else "id"
        books[table] = [tuple(r) for r in conn.execute(
            f"SELECT {', '.join(keep)} FROM {table} WHERE {owner} <= ? ORDER BY {order}",
            (accounts,))]
    conn.close()
    return books


def _books_hold(db: str) -> None:
    """Every processor record is in the books once, every entry balances, nothing is left due."""
    books = dump(db)
    keys = [r[2] for r in books["payment"]]
    assert sorted(keys) == sorted(set(keys))
    assert {r[0] for r in books["processor"]} <= set(keys)
    conn = database.connect(db)
    assert conn.execute("SELECT COUNT(*) FROM (SELECT entry_id FROM posting GROUP BY entry_id"
                        " HAVING SUM(amount) <> 0) AS unbalanced").fetchone()[0] == 0
    assert conn.execute("SELECT COUNT(*) FROM account WHERE next_due_at <= ?",
                        (T(UNTIL),)).fetchone()[0] == 0
    conn.close()


class Elsewhere:
    """An operation from another connection (the portal, an operator), started in a thread of
    its own the moment the run charges on two cores: it waits for the writer's segment."""

    def __init__(self, db: str, operation):
        self.db, self.operation = db, operation
        self.thread = self.error = self.result = None
        self.ref = None

    def __call__(self, engine) -> None:
        self.ref = engine.processor.charging["idempotency_key"].split(":")[0]
        self.thread = threading.Thread(target=self._go)
        self.thread.start()

    def _go(self) -> None:
        other = opening.open_engine(self.db)
        try:
            self.result = self.operation(other, self.ref)
        except Exception as exc:  # noqa: BLE001 - reported by the test
            self.error = exc
        finally:
            other.disconnect()

    def join(self) -> None:
        self.thread.join(timeout=120)
        assert not self.thread.is_alive() and self.error is None, self.error


def _pay_the_balance(engine, ref):
    try:
        return engine.pay(ref, token="tok_ok")
    except RuleError as exc:  # the run's charge, committed first, paid it
        return str(exc)


OPERATIONS = {
    "pay the balance": _pay_the_balance,
    "replace the card": lambda engine, ref: engine.set_payment_method(ref, "tok_replaced"),
    "remove the device": lambda engine, ref: engine.remove_device(ref),
}


@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_an_operation_on_an_account_being_charged_waits_for_the_run(fleet, tmp_path, operation):
    """On the very account the run is charging: the operation goes in after the writer's
    segment, seeing the run's charge (never the same key for other figures, never a second
    charge for the same money), and the day's books hold."""
    db = copy_fleet(fleet, tmp_path)
    elsewhere = Elsewhere(db, OPERATIONS[operation])
    result, engine = run(db, hook=elsewhere)
    elsewhere.join()
    assert result["writer_batches"] > 0
    conn = database.connect(db)
    charged = engine.processor.charging["idempotency_key"]
    assert conn.execute("SELECT kind FROM payment WHERE idem_key = ?", (charged,)).fetchall() \
        == [("automated",)]
    conn.close()
    _books_hold(db)
    assert writers_of(db) == []


def test_an_account_opened_elsewhere_leaves_the_fleets_books_alone(fleet, tmp_path, one_core,
                                                                   tmp_path_factory):
    """An account opened from another connection during the run (taking ids the run would
    otherwise have given out next): every account of the fleet has the books of one process."""
    db = copy_fleet(fleet, tmp_path)
    elsewhere = Elsewhere(db, lambda engine, _ref: engine.open_account(
        serial="LCI7-9999", email="new@example.com", state="MN", county="Hennepin",
        token="tok_ok", theft_protection=False, pay_initial=False))
    run(db, hook=elsewhere)
    elsewhere.join()
    conn = database.connect(db)
    assert conn.execute("SELECT id FROM account WHERE ref = ?",
                        (elsewhere.result,)).fetchone()[0] == ACCOUNTS + 1
    conn.close()
    reference = copy_fleet(fleet, tmp_path_factory.mktemp("reference"))
    run(reference, two_cores=False)
    assert accounts_books(db, ACCOUNTS) == accounts_books(reference, ACCOUNTS)
    # the processor charged the fleet's keys once each, as in the one-process run
    assert [r for r in dump(db)["processor"] if not r[0].startswith(elsewhere.result)] \
        == one_core["processor"]
    _books_hold(db)


def test_no_other_connection_commits_inside_a_segment(fleet, tmp_path):
    """While the run charges on two cores, the database's write lock is the writer's."""
    db = copy_fleet(fleet, tmp_path)
    refused = []

    def try_to_write(_engine):
        other = sqlite3.connect(db, timeout=0)
        try:
            other.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            refused.append(str(exc))
        else:
            other.execute("ROLLBACK")
        other.close()

    result, _ = run(db, hook=try_to_write)
    assert result["writer_batches"] > 0
    assert refused == ["database is locked"]


def test_the_writer_killed_half_way_then_rerun(fleet, tmp_path, one_core):
    db = copy_fleet(fleet, tmp_path)

    def kill_writer(_engine):
        [pid] = writers_of(db)
        os.kill(pid, signal.SIGKILL)

    with pytest.raises(WriterLost, match=r"the billing writer process stopped \(exit code -9\)"):
        run(db, hook=kill_writer)
    assert writers_of(db) == []
    run(db)
    assert dump(db) == one_core


def test_the_engine_failing_half_way_stops_the_writer_then_rerun(fleet, tmp_path, one_core):
    db = copy_fleet(fleet, tmp_path)

    def fail(_engine):
        assert writers_of(db), "the writer is running"
        raise RuntimeError("the processor's link is down")

    with pytest.raises(RuntimeError, match="link is down"):
        run(db, hook=fail)
    assert writers_of(db) == []  # stopped when the run failed, not left behind
    run(db)
    assert dump(db) == one_core


def test_the_writer_is_used_only_on_a_sqlite_file(tmp_path):
    memory = database.connect(":memory:")
    assert not pipeline.usable(memory)
    path = tmp_path / "b.db"
    on_file = database.connect(str(path))
    assert pipeline.usable(on_file)
    assert pipeline.usable(database.connect(f"sqlite:///{path}"))
    for conn in (memory, on_file):
        conn.close()


def test_ctrl_c_at_the_terminal_is_the_engines_to_act_on(fleet, tmp_path, one_core):
    """Ctrl-C reaches the whole process group. The writer ignores it and goes on answering; the
    engine, interrupted, stops the writer (nothing left running) and a rerun finishes the day."""
    db = copy_fleet(fleet, tmp_path)

    def ctrl_c(_engine):
        [pid] = writers_of(db)
        os.kill(pid, signal.SIGINT)

    result, engine = run(db, hook=ctrl_c)  # the writer's SIGINT alone: the day goes on
    assert engine.processor.fired and result["writer_batches"] > 0
    assert dump(db) == one_core

    db = copy_fleet(fleet, tmp_path / "again")

    def ctrl_c_everywhere(engine):
        ctrl_c(engine)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(db, hook=ctrl_c_everywhere)
    assert writers_of(db) == []
    run(db)
    assert dump(db) == one_core



def test_a_fee_of_zero_numbers_the_entries_as_one_process_does(tmp_path):
    """A late fee of 0.00 is an invoice whose journal entry posts nothing: it takes no entry id,
    so a run in one process (the next id read back each batch) and a segment (the ids carried
    from batch to batch) number every entry alike."""
    import random

    from provider.billing.cli import main as cli

    template = tmp_path / "fleet" / "billing.db"
    template.parent.mkdir()
    args = ["--db", str(template)]
    assert cli(args + ["init", "--now", "2025-01-06T09:00", "--seed", "11", "--failure-rate",
                       "0.3", "--set", "fees.late_fee=0"]) == 0
    rng = random.Random(5)
    for n in range(40):
        token = rng.choice(["tok_ok", f"tok_card_{n}", f"tok_card_{n}", f"tok_card_{n}"])
        assert cli(args + ["account", "open", "--serial", f"LCI7-{n:04d}", "--email",
                           f"c{n}@example.com", "--state", "MN", "--county", "Hennepin",
                           "--token", token]) == 0
        assert cli(args + ["pay", f"A{n + 1:06d}", "--token", "tok_ok"]) == 0
        if n % 3 == 2:  # opened over two weeks: a day's batches mix accounts at every stage
            assert cli(args + ["advance", "--days", "1"]) == 0
    books = []
    for name, two_cores, batch_size, segment in (("one", False, 3, 0), ("two", True, 3, 12),
                                                  ("single", True, 1, 12), ("short", True, 2, 4)):
        db = copy_fleet(str(template), tmp_path / name)
        result, _ = run(db, batch_size=batch_size, two_cores=two_cores, segment=segment)
        assert (result["writer_batches"] > 0) == two_cores
        books.append(dump(db))
    conn = database.connect(db)
    assert conn.execute("SELECT COUNT(*) FROM invoice WHERE kind = 'late_fee' AND total = 0"
                        ).fetchone()[0] > 0
    conn.close()
    assert books[1] == books[0] and books[2] == books[0] and books[3] == books[0]


def test_a_run_that_another_run_overtook_never_moves_the_clock_back(fleet, tmp_path):
    """Two runs at once (a scheduled one and an operator's): the later target wins; the run
    that finds the clock past its own target stops with the rule, the clock where it was."""
    db = copy_fleet(fleet, tmp_path)
    ahead, behind = opening.open_engine(db), opening.open_engine(db)
    earliest_due, overtaken = behind.store.earliest_due, []

    def overtake():  # the other run lands after this one read the clock
        if not overtaken:
            overtaken.append(ahead.advance(T("2025-03-01")))
        return earliest_due()

    behind.store.earliest_due = overtake
    with pytest.raises(RuleError, match="never goes back"):
        behind.advance(T("2025-02-01"))
    assert overtaken and behind.now == ahead.now == T("2025-03-01")
    ahead.disconnect()
    behind.disconnect()
