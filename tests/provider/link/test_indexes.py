"""One database, one copy of each index: the billing schema and the link's tables together carry
no two identical indexes (same table, same columns, same predicate), on SQLite and PostgreSQL;
a billing database made when the link created its own index on the outbox's serials is left
with one index on them."""

from __future__ import annotations

import pytest

from provider.billing import schema
from provider.link import store
from tests.provider.conftest import fresh_postgres_url


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request, tmp_path):
    if request.param == "sqlite":
        return str(tmp_path / "billing.db")
    return fresh_postgres_url(request.getfixturevalue("postgres_server"))


def _indexes(db: store.Database) -> dict[str, tuple]:
    """index name -> (table, columns, predicate) for every index of the database's own tables."""
    if db.dialect == "sqlite":
        found = {}
        for name, table, sql in db.execute(
                "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index'").fetchall():
            columns = tuple(r[2] for r in db.execute(f"PRAGMA index_info('{name}')").fetchall())
            predicate = sql.split(" WHERE ", 1)[1] if sql and " WHERE " in sql else None
            found[name] = (table, columns, predicate)
        return found
    return {name: (table, tuple(columns), predicate) for name, table, columns, predicate in
            db.execute(
                "SELECT i.relname, t.relname,"
                " ARRAY(SELECT pg_get_indexdef(x.indexrelid, k, true)"
                "       FROM generate_series(1, x.indnatts) AS k),"
                " pg_get_expr(x.indpred, x.indrelid)"
                " FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid"
                " JOIN pg_class t ON t.oid = x.indrelid"
                " JOIN pg_namespace n ON n.oid = t.relnamespace"
                " WHERE n.nspname = current_schema()").fetchall()}


def _billing_database(location: str) -> None:
    conn = schema.connect(location)
    schema.create(conn)
    conn.close()


def _no_two_alike(indexes: dict) -> None:
    seen: dict[tuple, str] = {}
    for name, definition in sorted(indexes.items()):
        assert definition not in seen, f"{name} and {seen[definition]} are the same index"
        seen[definition] = name


def test_billing_and_link_tables_carry_no_two_identical_indexes(location):
    _billing_database(location)
    db = store.connect(location)
    store.create(db)
    store.create(db)  # a second start of the link adds nothing
    indexes = _indexes(db)
    db.close()
    _no_two_alike(indexes)
    assert indexes["directive_by_serial"][:2] == ("directive", ("serial", "id"))


def test_an_older_database_keeps_one_index_on_the_outbox_serials(location):
    _billing_database(location)
    db = store.connect(location)
    # as it was: the billing schema without the index, the link's own copy of it
    db.execute("DROP INDEX directive_by_serial")
    db.execute("CREATE INDEX link_directive_by_serial ON directive (serial, id)")
    store.create(db)
    indexes = _indexes(db)
    db.close()
    _no_two_alike(indexes)
    assert "link_directive_by_serial" not in indexes
    assert indexes["directive_by_serial"][:2] == ("directive", ("serial", "id"))
