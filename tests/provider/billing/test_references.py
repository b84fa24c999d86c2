"""Every reference between billing tables holds on both stores (conftest.py runs this module on
SQLite and on a real PostgreSQL): a row naming a missing account or invoice is refused, alone or
among good rows of one statement, by an INSERT or an UPDATE; a referenced row is neither deleted
nor given another id. SQLite enforces them as foreign keys; PostgreSQL as checks of a whole
statement (schema.references_ddl), refused with a foreign key's SQLSTATE, 23503."""

from __future__ import annotations

import itertools
import re
import sqlite3

import psycopg
import pytest

from provider.billing import schema

from .harness import new_location, store_name

# table -> [(column, type, length)] in order, from the SQLite DDL (ids INTEGER there, BIGINT on
# PostgreSQL; length: a VARCHAR's, '' for the others)
COLUMNS = {
    m.group(1): re.findall(r"^\s+(\w+)\s+(BIGINT|INTEGER|VARCHAR|TEXT)(?:\((\d+)\))?", m.group(2),
                           re.M)
    for m in (re.match(r"CREATE TABLE (\w+) \((.*)\)$", s, re.S) for s in schema.ddl("sqlite"))
    if m}
MISSING = 987_654  # no row of any table has this id
_numbers = itertools.count(10_000)
RELATIONS = [pytest.param(r, id=f"{r[0]}.{r[1]}") for r in schema.REFERENCES]


def row(table: str, **given) -> list:
    """A row of `table` with `given` values, every other column a fresh number, or its digits as
    text (as many as the column holds: unique where a column is, primary keys never collide)."""
    return [given[name] if name in given else
            next(_numbers) if kind in ("BIGINT", "INTEGER") else
            str(next(_numbers))[-int(length or 16):]
            for name, kind, length in COLUMNS[table]]


def insert(conn, table: str, values: list) -> None:
    conn.execute(f"INSERT INTO {table} VALUES ({', '.join('?' * len(values))})", values)


def count(conn, table: str) -> int:
    return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


@pytest.fixture
def conn():
    """A fresh billing database holding account 1 and its invoice 1."""
    db = schema.connect(new_location())
    schema.create(db)
    insert(db, "account", row("account", id=1))
    insert(db, "invoice", row("invoice", id=1, account_id=1))
    yield db
    db.close()


def refused(conn, action) -> str:
    """Run `action`; it must fail as a broken reference does on this store; the error's text."""
    with pytest.raises((sqlite3.IntegrityError, psycopg.errors.ForeignKeyViolation)) as caught:
        action()
    if store_name() == "postgresql":
        assert caught.value.sqlstate == "23503"
    else:
        assert "FOREIGN KEY constraint failed" in str(caught.value)
    return str(caught.value)


@pytest.mark.parametrize("relation", RELATIONS)
def test_a_row_naming_a_missing_parent_is_refused(conn, relation):
    table, column, _parent = relation
    before = count(conn, table)
    insert(conn, table, row(table, **{column: 1}))  # the parent exists: stored
    assert count(conn, table) == before + 1
    refused(conn, lambda: insert(conn, table, row(table, **{column: MISSING})))
    assert count(conn, table) == before + 1


@pytest.mark.parametrize("relation", RELATIONS)
def test_one_bad_row_among_many_refuses_the_write(conn, relation):
    """The engine appends a batch's rows in one go (COPY on PostgreSQL, many-row INSERTs on
    SQLite) inside its transaction: one row naming a missing parent fails the write."""
    table, column, _parent = relation
    before = count(conn, table)
    rows = [row(table, **{column: MISSING if i == 250 else 1}) for i in range(500)]
    conn.execute("BEGIN IMMEDIATE")
    try:
        refused(conn, lambda: conn.copy_rows(table, len(rows[0]), [v for r in rows for v in r]))
    finally:
        conn.execute("ROLLBACK")
    assert count(conn, table) == before
    conn.copy_rows(table, len(rows[0]), [v for r in rows[:250] for v in r])  # the good ones alone
    assert count(conn, table) == before + 250


@pytest.mark.parametrize("relation", RELATIONS)
def test_an_update_to_a_missing_parent_is_refused(conn, relation):
    table, column, _parent = relation
    insert(conn, table, row(table, **{column: 1}))
    text = refused(conn, lambda: conn.execute(
        f"UPDATE {table} SET {column} = ? WHERE {column} = 1", (MISSING,)))
    if store_name() == "postgresql":
        assert f"{column} {MISSING} is not a row of" in text
    assert conn.execute(f"SELECT COUNT(*) FROM {table} WHERE {column} = ?",
                        (MISSING,)).fetchone()[0] == 0


@pytest.mark.parametrize("relation", RELATIONS)
def test_a_referenced_parent_is_neither_deleted_nor_renumbered(conn, relation):
    table, column, parent = relation
    insert(conn, table, row(table, **{column: 1}))
    refused(conn, lambda: conn.execute(f"DELETE FROM {parent} WHERE id = 1"))
    refused(conn, lambda: conn.execute(f"UPDATE {parent} SET id = ? WHERE id = 1", (MISSING,)))
    assert conn.execute(f"SELECT COUNT(*) FROM {parent} WHERE id = 1").fetchone()[0] == 1
    assert conn.execute(f"SELECT COUNT(*) FROM {table} WHERE {column} = 1").fetchone()[0] >= 1


@pytest.mark.parametrize("relation", RELATIONS)
def test_an_id_only_the_other_parent_table_has_is_refused(conn, relation):
    """Each check looks in its own parent: account 3 and invoice 2 do not exist, invoice 3 and
    account 2 do."""
    table, column, parent = relation
    insert(conn, "account", row("account", id=2))
    insert(conn, "invoice", row("invoice", id=3, account_id=1))
    before = count(conn, table)
    refused(conn, lambda: insert(conn, table, row(table, **{column: {"account": 3,
                                                                     "invoice": 2}[parent]})))
    assert count(conn, table) == before


@pytest.mark.parametrize("relation", RELATIONS)
def test_every_way_of_writing_a_row_is_checked(conn, relation):
    """A many-row INSERT, an upsert that rewrites the reference, an UPDATE ... FROM."""
    table, column, _parent = relation
    insert(conn, table, row(table, **{column: 1}))
    values = row(table, **{column: 1})
    marks = ", ".join("?" * len(values))
    key = "(invoice_id, line)" if table == "invoice_line" else "(id)"
    existing = list(conn.execute(f"SELECT * FROM {table} LIMIT 1").fetchone())
    for sql, params in [
            (f"INSERT INTO {table} VALUES ({marks}), ({marks})",
             values + row(table, **{column: MISSING})),
            (f"INSERT INTO {table} VALUES ({marks}) ON CONFLICT {key} DO UPDATE SET {column} = ?",
             existing + [MISSING]),
            (f"UPDATE {table} SET {column} = v.x FROM (SELECT ? AS x) AS v WHERE {column} = 1",
             [MISSING])]:
        refused(conn, lambda sql=sql, params=params: conn.execute(sql, params))
    assert conn.execute(f"SELECT COUNT(*) FROM {table} WHERE {column} = ?",
                        (MISSING,)).fetchone()[0] == 0


@pytest.mark.parametrize("relation", RELATIONS)
def test_a_temporary_table_does_not_stand_in_for_the_parent(conn, relation):
    """A session's temporary tables come first in its search path: the checks search the
    schema they were created in, the temporary tables last."""
    if store_name() != "postgresql":
        pytest.skip("the foreign keys of SQLite name their parent table in the schema itself")
    table, column, parent = relation
    conn.execute(f"CREATE TEMP TABLE {parent} (id BIGINT)")
    conn.execute(f"INSERT INTO pg_temp.{parent} VALUES (?)", (MISSING,))
    refused(conn, lambda: insert(conn, table, row(table, **{column: MISSING})))
    assert conn.execute(f"SELECT COUNT(*) FROM {table} WHERE {column} = ?",
                        (MISSING,)).fetchone()[0] == 0


def test_postgresql_keeps_every_parent_row(conn):
    """PostgreSQL keeps an account or invoice row even when nothing refers to it yet (no row
    lock guards a reference there: a parent that can never go missing needs none)."""
    if store_name() != "postgresql":
        pytest.skip("SQLite deletes a row nothing refers to, as a foreign key allows")
    insert(conn, "account", row("account", id=2))
    for statement in ("DELETE FROM account WHERE id = 2", "TRUNCATE account CASCADE",
                      "DELETE FROM invoice", "TRUNCATE invoice CASCADE",
                      "UPDATE account SET id = 3 WHERE id = 2"):
        text = refused(conn, lambda statement=statement: conn.execute(statement))
        assert "billing records refer to its rows" in text
    assert count(conn, "account") == 2 and count(conn, "invoice") == 1
    conn.execute("UPDATE account SET id = 2 WHERE id = 2")  # the same id: allowed
    conn.execute("UPDATE account SET status = 'closed' WHERE id = 2")


def test_every_reference_of_the_tables_is_enforced():
    """The relations come from the tables' REFERENCES clauses: all seven of them, and on
    PostgreSQL each one has its check on INSERT and on UPDATE."""
    assert {(t, c) for t, c, _ in schema.REFERENCES} == {
        ("invoice", "account_id"), ("invoice_line", "invoice_id"), ("posting", "account_id"),
        ("payment", "account_id"), ("notice", "account_id"), ("directive", "account_id"),
        ("history", "account_id")}
    assert len(schema.REFERENCES) == schema._TABLES.count("REFERENCES")  # none left unchecked
    pg = "\n".join(schema.ddl("postgresql"))
    assert "REFERENCES" not in pg
    for table, column, _ in schema.REFERENCES:
        for op in ("INSERT", "UPDATE"):
            assert f"AFTER {op} ON {table} REFERENCING NEW TABLE" in pg
            assert f"{table}_{column}_exists_{op.lower()}" in pg
