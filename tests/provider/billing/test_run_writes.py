"""A daily run writes as it goes (every `write_every` accounts; on PostgreSQL behind the engine, on
a writer thread): the books are the same however often it writes, and a write that fails undoes
the whole batch — nothing of it is left in the books, and a rerun completes it."""

from __future__ import annotations

import pytest

from .harness import Harness

TABLES = {"account": "id", "invoice": "id", "invoice_line": "invoice_id, line", "posting": "id",
          "payment": "id", "notice": "id", "directive": "id", "history": "id"}


def fleet(accounts: int = 30) -> Harness:
    h = Harness(seed=3, failure_rate=0.3)
    for n in range(accounts):
        h.open(serial=f"LCI7-{n:04d}", email=f"c{n}@example.com", theft=n % 3 == 0,
               token="tok_ok" if n % 4 == 0 else f"tok_card_{n}",
               state=("MN", "IA", "TX")[n % 3], county=("Hennepin", "Polk", "Harris")[n % 3])
    h.engine.batch_size = 11  # several transactions a day, several writes in each
    return h


def books(h: Harness) -> dict:
    found = {table: [tuple(r) for r in h.conn.execute(f"SELECT * FROM {table} ORDER BY {order}")]
             for table, order in TABLES.items()}
    found["now"] = h.engine.now
    found["processor"] = sorted(h.processor.store.all_charges())
    return found


def test_the_books_do_not_depend_on_how_often_a_run_writes():
    once, often = fleet(), fleet()
    once.engine.write_every = 10**9  # everything at the end of each batch
    often.engine.write_every = 2
    for h in (once, often):
        h.to("2025-05-01")
    assert books(often) == books(once)
    assert len(books(once)["posting"]) > 400  # months of cycles, charges, failures and fees


def test_a_failed_write_undoes_the_batch_and_a_rerun_completes_it():
    h, clean = fleet(), fleet()
    h.engine.write_every = clean.engine.write_every = 2
    h.to("2025-01-19T00:00")
    clean.to("2025-01-19T00:00")
    before = books(h)
    # the second cycle's charge of the third account (key A000003:a2) is taken by another row:
    # the run's write of the payments of the accounts 3 and 4 fails
    h.conn.execute("BEGIN IMMEDIATE")
    h.conn.execute(
        "INSERT INTO payment (id, account_id, idem_key, at, kind, attempt, amount, status,"
        " failure_open_before) VALUES (999999, 3, 'A000003:a2', 0, 'client', 'client', 1,"
        " 'failed', 0)")
    h.conn.execute("COMMIT")
    with pytest.raises(Exception, match="idem_key|A000003:a2|unique|UNIQUE"):
        h.to("2025-01-21T00:00")
    after = books(h)
    assert [r for r in after["payment"] if r[0] != 999999] == before["payment"]
    assert {t: after[t] for t in TABLES if t != "payment"} == \
        {t: before[t] for t in TABLES if t != "payment"}
    assert after["now"] == before["now"]
    # the row taken away, the rerun asks the processor with the same keys: the same answers
    h.conn.execute("BEGIN IMMEDIATE")
    h.conn.execute("DELETE FROM payment WHERE id = 999999")
    h.conn.execute("COMMIT")
    h.to("2025-01-21T00:00")
    clean.to("2025-01-21T00:00")
    assert books(h) == books(clean)
