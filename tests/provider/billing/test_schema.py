"""The schema is portable: it runs on SQLite and on a real PostgreSQL server (the suite runs on both:
conftest.py), together with the engine's characteristic statements: the due-accounts scan, the
balances by invoice from the ledger, the idempotent payment insert and the meta upsert."""

from __future__ import annotations

import re

from provider.billing import schema

from .harness import new_location, store_name

SQLITE_ONLY = re.compile(r"AUTOINCREMENT|WITHOUT ROWID|STRICT|PRAGMA|INSERT OR |REPLACE INTO|"
                         r"\bDATETIME\b|\bBLOB\b|\bREAL\b", re.I)

STATEMENTS = """
INSERT INTO meta (key, value) VALUES ('now', '1736154000')
  ON CONFLICT (key) DO UPDATE SET value = excluded.value;
INSERT INTO meta (key, value) VALUES ('now', '1736154001')
  ON CONFLICT (key) DO UPDATE SET value = excluded.value;
INSERT INTO account VALUES (1, 'A000001', 'LCI7-1', 'c@example.com', 'active', 'MN', 'Hennepin',
  2, 0, 'tok_ok', 1736154000, 1736154000, 1737363600, 1737363600, NULL, NULL, NULL, 0, '', NULL,
  0, '', NULL, NULL, NULL, NULL, NULL, NULL, 1736154000, 0, NULL, NULL, NULL, NULL, NULL, NULL,
  1, 2, 1737363600);
INSERT INTO invoice VALUES (1, 1, 'A000001-0001', 'initial', 1736154000, 1736154000, NULL, NULL, 2,
  'immediate', 5412, 407, '7.525%', 5819, NULL, NULL, NULL, NULL, 'initial payment');
INSERT INTO invoice_line VALUES (1, 1, 'rental', 'LCI-777 rental', 5412, 1);
INSERT INTO posting VALUES
  (1, 1, 1, 1, 1736154000, 'receivable', 1, 5819, 'initial', 'A000001-0001'),
  (2, 1, 2, 1, 1736154000, 'revenue:rental', NULL, -5412, 'initial', 'A000001-0001'),
  (3, 1, 3, 1, 1736154000, 'sales_tax_payable', NULL, -407, 'initial', 'A000001-0001'),
  (4, 2, 1, 1, 1736154000, 'cash', NULL, 5819, 'payment', 'A000001:a1'),
  (5, 2, 2, 1, 1736154000, 'receivable', 1, -5819, 'payment', 'A000001:a1');
INSERT INTO payment VALUES (1, 1, 'A000001:a1', 1736154000, 'immediate', 'immediate', 'tok_ok',
  5819, 'succeeded', NULL, 'ch_1', 0, 2, NULL) ON CONFLICT (idem_key) DO NOTHING;
INSERT INTO payment VALUES (2, 1, 'A000001:a1', 1736154000, 'immediate', 'immediate', 'tok_ok',
  5819, 'succeeded', NULL, 'ch_1', 0, 2, NULL) ON CONFLICT (idem_key) DO NOTHING;
SELECT id, ref FROM account WHERE next_due_at <= 1737363600 ORDER BY next_due_at, id LIMIT 2000;
SELECT account_id, invoice_id, SUM(amount) FROM posting WHERE account_id IN (1) AND
  book = 'receivable' GROUP BY account_id, invoice_id HAVING SUM(amount) <> 0;
SELECT entry_id FROM posting GROUP BY entry_id HAVING SUM(amount) <> 0;
SELECT COALESCE(MAX(id), 0) + 1 FROM invoice;
UPDATE invoice SET first_failed_at = 1736154000, late_fee_invoice = NULL WHERE id = 1;
"""


def test_ddl_uses_only_portable_sql():
    """The tables and indexes are the same SQL on both stores; PostgreSQL adds only the checks
    that enforce the references there (schema.references_ddl)."""
    extra = schema.references_ddl()
    for dialect in ("sqlite", "postgresql"):
        statements = schema.ddl(dialect)
        if dialect == "postgresql":
            assert statements[-len(extra):] == extra
            statements = statements[:-len(extra)]
        for statement in statements:
            assert not SQLITE_ONLY.search(statement), statement
            assert statement.split()[:2] in (["CREATE", "TABLE"], ["CREATE", "INDEX"])
        assert len(statements) == len(schema.ddl("sqlite"))
    tables = "\n".join(schema.ddl("postgresql")[:-len(extra)])
    types = set(re.findall(r"^\s+\w+\s+([A-Z]+)", tables, re.M))
    assert types <= {"BIGINT", "INTEGER", "VARCHAR", "TEXT", "KEY"}, types  # KEY: PRIMARY KEY (...)


def test_the_schema_and_statements_run_on_the_store():
    conn = schema.connect(new_location())
    schema.create(conn)
    for statement in _split(STATEMENTS):
        conn.execute(statement)
    assert conn.execute("SELECT COUNT(*) FROM payment").fetchone()[0] == 1
    assert conn.execute("SELECT value FROM meta WHERE key = 'now'").fetchone()[0] == "1736154001"
    balances = conn.execute("SELECT invoice_id, SUM(amount) FROM posting WHERE book = 'receivable'"
                            " GROUP BY invoice_id").fetchall()
    assert [tuple(r) for r in balances] == [(1, 0)]  # sums come back as integers on both
    if store_name() == "postgresql":  # the PostgreSQL id type is BIGINT
        assert conn.execute("SELECT data_type FROM information_schema.columns WHERE table_name ="
                            " 'posting' AND column_name = 'amount'").fetchone()[0] == "bigint"
        assert conn.execute("SELECT data_type FROM information_schema.columns WHERE table_name ="
                            " 'account' AND column_name = 'id'").fetchone()[0] == "bigint"


def _split(text):
    return [s.strip() for s in text.split(";") if s.strip()]


def test_select_rows_reads_the_rows_a_select_reads():
    """Database.select_rows (through a SQL function on SQLite) gives the rows, values and order
    of the same SELECT read by a cursor, including rows a sort and a LIMIT leave out."""
    conn = schema.connect(new_location())
    schema.create(conn)
    for statement in _split(STATEMENTS)[:3]:
        conn.execute(statement)
    conn.execute("INSERT INTO account VALUES (2, 'A000002', 'LCI7-2', 'd@example.com', 'past_due',"
                 " 'OR', '', 4, 1, NULL, 1736154000, NULL, NULL, 1737363600, NULL, NULL, NULL, 0,"
                 " '1737363600,1737536400', NULL, 1, '', NULL, NULL, 1736154000, NULL, NULL, NULL,"
                 " NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL, 3, 1, 1737363600)")
    columns = ("id", "ref", "status", "tax_county", "method_token", "announced", "anchor_at",
               "next_due_at")
    for rest, params in (("FROM account WHERE next_due_at <= ? ORDER BY next_due_at, id LIMIT ?",
                          (1737363600, 2000)),
                         ("FROM account ORDER BY email DESC LIMIT ?", (1,)),
                         ("FROM account WHERE id > ?", (5,))):
        read = conn.execute(f"SELECT {', '.join(columns)} {rest}", params).fetchall()
        assert conn.select_rows(columns, rest, params) == [tuple(r) for r in read]
    assert conn.select_rows(("id", "anchor_at"), "FROM account ORDER BY id", ()) == [
        (1, 1736154000), (2, None)]
    if store_name() == "sqlite":  # the daily run's due accounts come in index order, unsorted
        plan = " ".join(row[-1] for row in conn.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM account WHERE next_due_at <= ?"
            " ORDER BY next_due_at, id LIMIT ?", (0, 1)))
        assert "account_next_due" in plan and "TEMP B-TREE" not in plan, plan
