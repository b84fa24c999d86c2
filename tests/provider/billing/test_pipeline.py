"""The daily run on two cores (provider/billing/pipeline.py): a writer process reads and writes
the batches while the engine runs the next one.

Whatever happens, the books are those of the one-process run: with any batch size; when another
connection commits in the middle (the run notices, drops what it computed since and goes on in
one process); when the writer is killed, or the engine fails, half-way (a rerun finishes the day).
The engine killed by SIGKILL half-way is test_crash_rerun.py's (the CLI run there uses the writer).
"""

from __future__ import annotations

import os
import signal
import sqlite3

import pytest

from provider.billing import database, opening, pipeline
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
            self.hook()
        return self.inner.charge(**kwargs)


def run(db: str, *, batch_size: int = 3, two_cores: bool = True, hook=None):
    """The day's run to UNTIL, in process; (the result, the engine's counters)."""
    engine = opening.open_engine(db)
    engine.batch_size, engine.pipeline = batch_size, two_cores
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


@pytest.mark.parametrize("batch_size", [1, 3, 8])
def test_two_cores_write_the_books_of_one(fleet, tmp_path, one_core, batch_size):
    db = copy_fleet(fleet, tmp_path)
    result, engine = run(db, batch_size=batch_size)
    # most batches went through the writer (a day's first batch runs in the engine's process)
    assert result["writer_batches"] >= result["batches"] // 2 > 0
    assert engine.writer_cpu_seconds > 0 and engine.writer_conflicts == 0
    assert dump(db) == one_core
    assert writers_of(db) == []


# the columns holding ids the run allocates (they shift when another connection allocates some):
# everything else of an account's rows must be what the one-process run wrote
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


def test_a_commit_from_elsewhere_sends_the_run_back_to_one_core(fleet, tmp_path, one_core,
                                                                 tmp_path_factory):
    """An account opened from another connection while the writer is writing: its ids are taken
    from under the run's. The run sees the commit, keeps what was committed, and finishes in one
    process from the database as it is: every account's books are those of the run without it."""
    db = copy_fleet(fleet, tmp_path)
    opened = []

    def open_elsewhere(_engine):
        other = opening.open_engine(db)
        opened.append(other.open_account(serial="LCI7-9999", email="new@example.com",
                                         state="MN", county="Hennepin", token="tok_ok",
                                         theft_protection=False, pay_initial=False))
        other.disconnect()

    result, engine = run(db, hook=open_elsewhere)
    assert opened and engine.writer_conflicts == 1
    assert writers_of(db) == []
    conn = database.connect(db)
    assert conn.execute("SELECT COUNT(*) FROM account").fetchone()[0] == ACCOUNTS + 1
    assert conn.execute("SELECT id FROM account WHERE ref = ?", opened).fetchone()[0] == ACCOUNTS + 1
    late = conn.execute("SELECT COUNT(*) FROM account WHERE next_due_at <= ?",
                        (T(UNTIL),)).fetchone()[0]
    conn.close()
    assert late == 0
    # the reference: the one-process books (their accounts are the fleet's)
    reference = copy_fleet(fleet, tmp_path_factory.mktemp("reference"))
    run(reference, two_cores=False)
    assert accounts_books(db, ACCOUNTS) == accounts_books(reference, ACCOUNTS)
    # the processor charged the fleet's keys once each, as in the one-process run
    assert [r for r in dump(db)["processor"] if not r[0].startswith(opened[0])] \
        == one_core["processor"]


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
