"""The schema is portable: it runs on SQLite and on a real PostgreSQL server (started here from the
machine's PostgreSQL binaries, on a Unix socket in a temporary folder; skipped where PostgreSQL is
not installed), together with the engine's characteristic statements: the due-accounts scan, the
balances by invoice from the ledger, the idempotent payment insert and the meta upsert."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from provider.billing import schema

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
  5819, 'succeeded', NULL, 'ch_1', 0, 2) ON CONFLICT (idem_key) DO NOTHING;
INSERT INTO payment VALUES (2, 1, 'A000001:a1', 1736154000, 'immediate', 'immediate', 'tok_ok',
  5819, 'succeeded', NULL, 'ch_1', 0, 2) ON CONFLICT (idem_key) DO NOTHING;
SELECT id, ref FROM account WHERE next_due_at <= 1737363600 ORDER BY next_due_at, id LIMIT 2000;
SELECT account_id, invoice_id, SUM(amount) FROM posting WHERE account_id IN (1) AND
  book = 'receivable' GROUP BY account_id, invoice_id HAVING SUM(amount) <> 0;
SELECT entry_id FROM posting GROUP BY entry_id HAVING SUM(amount) <> 0;
SELECT COALESCE(MAX(id), 0) + 1 FROM invoice;
UPDATE invoice SET first_failed_at = 1736154000, late_fee_invoice = NULL WHERE id = 1;
"""


def test_ddl_uses_only_portable_sql():
    for dialect in ("sqlite", "postgresql"):
        for statement in schema.ddl(dialect):
            assert not SQLITE_ONLY.search(statement), statement
            assert statement.split()[0] == "CREATE"
    types = set(re.findall(r"^\s+\w+\s+([A-Z]+)", "\n".join(schema.ddl("postgresql")), re.M))
    assert types <= {"BIGINT", "INTEGER", "VARCHAR", "TEXT", "KEY"}, types  # KEY: PRIMARY KEY (...)


def test_the_statements_run_on_sqlite():
    conn = schema.connect(":memory:")
    schema.create(conn)
    for statement in _split(STATEMENTS):
        conn.execute(statement)
    assert conn.execute("SELECT COUNT(*) FROM payment").fetchone()[0] == 1


def _split(text):
    return [s.strip() for s in text.split(";") if s.strip()]


def _postgres_bin():
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (folder / "initdb").exists():
            return folder
    found = shutil.which("initdb")
    return Path(found).parent if found else None


@pytest.fixture
def postgres():
    # a short folder directly under /tmp: the server user must reach it (pytest's tmp_path sits
    # in a root-only folder) and a Unix socket path is limited to ~100 characters
    tmp_path = Path(tempfile.mkdtemp(prefix="lci-pg-"))
    try:
        yield from _server(tmp_path)
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)


def _server(tmp_path: Path):
    bindir = _postgres_bin()
    if bindir is None or shutil.which("psql") is None:
        pytest.skip("PostgreSQL is not installed here")
    as_user = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no postgres user")
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser")
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(tmp_path, "postgres")
        tmp_path.chmod(0o700)
    data = tmp_path / "data"

    def run(*cmd, check=True):
        return subprocess.run(as_user + list(cmd), capture_output=True, text=True, check=check,
                              timeout=120)

    run(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
    run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(tmp_path / "log"), "-w", "-o",
        f"-k {tmp_path} -c listen_addresses='' -F", "start")
    try:
        yield lambda sql: run("psql", "-h", str(tmp_path), "-U", "postgres", "-d", "postgres",
                              "-v", "ON_ERROR_STOP=1", "-X", "-q", "-A", "-t", "-c", sql,
                              check=False)
    finally:
        run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop", check=False)


def test_the_schema_and_statements_run_on_postgresql(postgres):
    for statement in schema.ddl("postgresql"):
        result = postgres(statement)
        assert result.returncode == 0, (statement, result.stderr)
    for statement in _split(STATEMENTS):
        result = postgres(statement)
        assert result.returncode == 0, (statement, result.stderr)
    assert postgres("SELECT COUNT(*) FROM payment").stdout.strip() == "1"
    assert postgres("SELECT value FROM meta WHERE key = 'now'").stdout.strip() == "1736154001"
    balances = postgres("SELECT invoice_id, SUM(amount) FROM posting WHERE book = 'receivable'"
                        " GROUP BY invoice_id").stdout.split()
    assert balances == ["1|0"]
    # and the PostgreSQL id type is BIGINT
    assert postgres("SELECT data_type FROM information_schema.columns WHERE table_name ="
                    " 'posting' AND column_name = 'amount'").stdout.strip() == "bigint"
    assert postgres("SELECT data_type FROM information_schema.columns WHERE table_name ="
                    " 'account' AND column_name = 'id'").stdout.strip() == "bigint"
