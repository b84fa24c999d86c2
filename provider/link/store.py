"""The link's tables, next to the billing tables on the same database (SQLite file or PostgreSQL).

The billing outbox (`directive`, provider/billing) stays the system of record of what was decided
and signed; the link only adds what it learned from the handsets:

    link_handset   one row per serial: the status read at the end of its last session (compliance
                   and driving state, causes, the recall or unlock deadline, service due, display,
                   log count), when it was first and last seen, sessions, the last outcome, and
                   the anchor of its uploaded log (next index expected, hash of the last record)
    link_delivery  one row per billing directive the link tried to deliver: `delivered` (the
                   handset's TOKEN reply, or its answer that the token was already applied),
                   `refused` (a NACK that retrying cannot change: expired, bad signature ...),
                   or `retry` (not acknowledged yet: a lost connection, a transient NACK);
                   while a call is sending it, the call's claim (claimed_by, claimed_until)
    link_log       every uploaded event-log record (raw bytes as hex), keyed by (serial, index),
                   stored only after its chain verified from the last record held

The portal reads these tables (and the billing tables) directly; docs/link.md lists the columns.
SQL is the portable subset the billing schema keeps (INTEGER / BIGINT / VARCHAR / TEXT,
`ON CONFLICT ...`, `?` placeholders rewritten for psycopg). Writes are idempotent: a second link
process racing on the same serial (several behind a load balancer) cannot record a delivery
twice or store a record twice. A directive is sent by one call at a time: `claim` is one
INSERT ... ON CONFLICT DO UPDATE ... WHERE statement, atomic on PostgreSQL (the conflicting row
is locked and the WHERE re-checked) and on SQLite (one writer), so of two calls racing for it
exactly one wins; the claim ends with the call's outcome, or lapses after its lease.

All functions here are synchronous and use one connection: the server calls them from its one
database thread.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from provider.billing import schema as billing_schema

DELIVERED = "delivered"
REFUSED = "refused"
RETRY = "retry"

_TABLES = """
CREATE TABLE IF NOT EXISTS link_handset (
    serial          VARCHAR(64) NOT NULL PRIMARY KEY,
    compliance      VARCHAR(32),
    session         VARCHAR(32),
    causes          VARCHAR(200),
    device_now      BIGINT,
    deadline        BIGINT,
    deadline_left   BIGINT,
    service_due     BIGINT,
    calibration_due BIGINT,
    display         VARCHAR(40),
    log_count       BIGINT,
    log_free_pct    INTEGER,
    firmware        VARCHAR(32),
    first_seen      BIGINT NOT NULL,
    last_seen       BIGINT NOT NULL,
    sessions        INTEGER NOT NULL,
    last_outcome    VARCHAR(200) NOT NULL,
    log_next        BIGINT,
    log_hash        VARCHAR(16),
    log_problem     VARCHAR(200)
);

CREATE TABLE IF NOT EXISTS link_delivery (
    directive_id    BIGINT NOT NULL PRIMARY KEY,
    serial          VARCHAR(64) NOT NULL,
    action          VARCHAR(16) NOT NULL,
    status          VARCHAR(12) NOT NULL,
    attempts        INTEGER NOT NULL,
    answer          VARCHAR(32),
    detail          VARCHAR(200),
    first_try_at    BIGINT NOT NULL,
    at              BIGINT NOT NULL,
    claimed_by      VARCHAR(40),
    claimed_until   BIGINT
);
CREATE INDEX IF NOT EXISTS link_delivery_by_serial ON link_delivery (serial, directive_id);

-- the link asks the billing outbox for one serial's directives on every call: the billing
-- schema's index on directive (serial, id) serves it (a billing database made before that index
-- gets it here and loses the link's own copy of it: one index, not two identical ones)
CREATE INDEX IF NOT EXISTS directive_by_serial ON directive (serial, id);
DROP INDEX IF EXISTS link_directive_by_serial;

CREATE TABLE IF NOT EXISTS link_log (
    serial          VARCHAR(64) NOT NULL,
    idx             BIGINT NOT NULL,
    time_core       BIGINT NOT NULL,
    kind            INTEGER NOT NULL,
    raw             TEXT NOT NULL,
    received_at     BIGINT NOT NULL,
    PRIMARY KEY (serial, idx)
)
"""

HANDSET_COLUMNS = ("serial", "compliance", "session", "causes", "device_now", "deadline",
                   "deadline_left", "service_due", "calibration_due", "display", "log_count",
                   "log_free_pct", "firmware", "first_seen", "last_seen", "sessions",
                   "last_outcome", "log_next", "log_hash", "log_problem")
_STATUS_COLUMNS = ("compliance", "session", "causes", "device_now", "deadline", "deadline_left",
                   "service_due", "calibration_due", "display", "log_count", "log_free_pct",
                   "firmware")


class StoreError(Exception):
    """The database cannot serve the link (not a billing database, unreachable): one line."""


def ddl() -> list[str]:
    return [chunk.strip() for chunk in _TABLES.split(";") if chunk.strip()]


class Database:
    """One DB-API connection and its dialect: `?` placeholders, one transaction at a time."""

    def __init__(self, conn, dialect: str):
        self.conn = conn
        self.dialect = dialect

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.dialect == "postgresql" else sql

    def execute(self, sql: str, params: tuple = ()):
        return self.conn.execute(self._sql(sql), params)

    def executemany(self, sql: str, rows) -> None:
        if self.dialect == "postgresql":
            with self.conn.cursor() as cursor:
                cursor.executemany(self._sql(sql), rows)
        else:
            self.conn.executemany(sql, rows)

    def begin(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE" if self.dialect == "sqlite" else "BEGIN")

    def commit(self) -> None:
        self.conn.execute("COMMIT")

    def rollback(self) -> None:
        self.conn.execute("ROLLBACK")

    def close(self) -> None:
        self.conn.close()


def connect(url: str) -> Database:
    """`postgresql://...` (psycopg 3) or a SQLite file (a path, or `sqlite:///path`)."""
    if url.startswith(("postgresql://", "postgres://")):
        try:
            import psycopg  # type: ignore[import-not-found]
        except ImportError:
            raise StoreError("a PostgreSQL URL needs psycopg 3 (pip install 'psycopg[binary]')") from None
        try:
            conn = psycopg.connect(url, autocommit=True)
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to {url.split('@')[-1]}: {str(exc).strip().splitlines()[0]}") from None
        return Database(conn, "postgresql")
    path = url[len("sqlite:///"):] if url.startswith("sqlite:///") else url
    if path != ":memory:" and not Path(path).exists():
        raise StoreError(f"{path}: no such billing database (create it with lci-billing init)")
    try:
        conn = billing_schema.connect(path)
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: {exc}") from None
    conn.execute("PRAGMA busy_timeout=30000")
    return Database(conn, "sqlite")


def create(db: Database) -> None:
    """Create the link's tables if they are not there; the billing tables must be."""
    try:
        db.execute("SELECT id FROM directive WHERE 1 = 0").fetchall()
    except Exception as exc:  # sqlite3.OperationalError, psycopg.errors.UndefinedTable
        raise StoreError("not a billing database: no directive table (lci-billing init first)") from exc
    for statement in ddl():
        db.execute(statement)
    try:  # a link_delivery table made before calls claimed their directives
        db.execute("SELECT claimed_by, claimed_until FROM link_delivery WHERE 1 = 0").fetchall()
    except Exception:  # (autocommit: the failed SELECT left no transaction behind)
        db.execute("ALTER TABLE link_delivery ADD COLUMN claimed_by VARCHAR(40)")
        db.execute("ALTER TABLE link_delivery ADD COLUMN claimed_until BIGINT")


# ---- directives ---------------------------------------------------------------------------------
def pending(db: Database, serial: str) -> list[dict]:
    """The signed directives for `serial` not acknowledged yet, oldest first (the order the
    engine decided them: a clear never overtakes the lockout it ends)."""
    rows = db.execute(
        "SELECT d.id, d.action, d.args, d.token, l.attempts FROM directive d"
        " LEFT JOIN link_delivery l ON l.directive_id = d.id"
        " WHERE d.serial = ? AND d.delivery = 'token' AND d.status = 'issued'"
        " AND d.token IS NOT NULL AND (l.directive_id IS NULL OR l.status = ?)"
        " ORDER BY d.id", (serial, RETRY)).fetchall()
    return [{"id": r[0], "action": r[1], "args": _json(r[2]), "token": _hex(r[3]),
             "attempts": r[4] or 0} for r in rows]


def _hex(text: str) -> bytes | None:
    """The token's bytes, or None when the outbox holds something that is not hex."""
    try:
        return bytes.fromhex(text)
    except (TypeError, ValueError):
        return None


def _json(text: str) -> dict:
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def claim(db: Database, directive: dict, serial: str, owner: str, now: int, lease: int) -> bool:
    """Take the directive for one call (`owner`) until `now + lease`: True when this call may
    send it — nobody delivered or refused it, and no other call holds a claim that has not
    lapsed. One statement: of two calls racing (two link processes), exactly one gets True."""
    cursor = db.execute(
        "INSERT INTO link_delivery (directive_id, serial, action, status, attempts, answer,"
        " detail, first_try_at, at, claimed_by, claimed_until)"
        " VALUES (?, ?, ?, ?, 0, NULL, '', ?, ?, ?, ?)"
        " ON CONFLICT (directive_id) DO UPDATE SET claimed_by = excluded.claimed_by,"
        " claimed_until = excluded.claimed_until WHERE link_delivery.status = ?"
        " AND (link_delivery.claimed_until IS NULL OR link_delivery.claimed_until <= ?"
        " OR link_delivery.claimed_by = excluded.claimed_by)",
        (directive["id"], serial, directive["action"], RETRY, now, now, owner[:40], now + lease,
         RETRY, now))
    return cursor.rowcount == 1


def record_attempt(db: Database, directive: dict, serial: str, status: str, answer: str | None,
                   detail: str, now: int) -> None:
    """The outcome of one TOKEN: a delivered or refused row is final and never downgraded;
    the call's claim ends with it."""
    db.execute(
        "INSERT INTO link_delivery (directive_id, serial, action, status, attempts, answer,"
        " detail, first_try_at, at) VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?)"
        " ON CONFLICT (directive_id) DO UPDATE SET status = excluded.status,"
        " attempts = link_delivery.attempts + 1, answer = excluded.answer,"
        " detail = excluded.detail, at = excluded.at, claimed_by = NULL, claimed_until = NULL"
        " WHERE link_delivery.status = ?",
        (directive["id"], serial, directive["action"], status, answer, detail[:200], now, now,
         RETRY))


def deliveries(db: Database, serial: str | None = None) -> list[dict]:
    sql = ("SELECT directive_id, serial, action, status, attempts, answer, detail, first_try_at, at"
           " FROM link_delivery" + (" WHERE serial = ?" if serial else "") + " ORDER BY directive_id")
    cols = ("directive_id", "serial", "action", "status", "attempts", "answer", "detail",
            "first_try_at", "at")
    return [dict(zip(cols, r, strict=True)) for r in db.execute(sql, (serial,) if serial else ()).fetchall()]


# ---- handsets and their logs ------------------------------------------------------------------------
def handset(db: Database, serial: str) -> dict | None:
    row = db.execute(f"SELECT {', '.join(HANDSET_COLUMNS)} FROM link_handset WHERE serial = ?",
                     (serial,)).fetchone()
    return None if row is None else dict(zip(HANDSET_COLUMNS, row, strict=True))


def handsets(db: Database) -> list[dict]:
    rows = db.execute(f"SELECT {', '.join(HANDSET_COLUMNS)} FROM link_handset ORDER BY serial").fetchall()
    return [dict(zip(HANDSET_COLUMNS, r, strict=True)) for r in rows]


def log_anchor(db: Database, serial: str) -> tuple[int | None, bytes | None]:
    """(index of the next record expected, hash of the last record held) — (None, None) when
    nothing was uploaded yet."""
    row = db.execute("SELECT log_next, log_hash FROM link_handset WHERE serial = ?", (serial,)).fetchone()
    if row is None or row[0] is None:
        return None, None
    return row[0], bytes.fromhex(row[1]) if row[1] else None


def records(db: Database, serial: str) -> list[bytes]:
    return [bytes.fromhex(r[0]) for r in db.execute(
        "SELECT raw FROM link_log WHERE serial = ? ORDER BY idx", (serial,)).fetchall()]


def finish_session(db: Database, serial: str, now: int, *, status: dict | None, firmware: str | None,
                   outcome: str, uploaded: list[tuple[int, int, int, bytes]],
                   log_next: int | None, log_hash: bytes | None, log_problem: str | None) -> None:
    """One transaction: the verified records (index, time, kind, raw), the log's new anchor,
    the status read last, and the session's outcome."""
    db.begin()
    try:
        if uploaded:
            db.executemany(
                "INSERT INTO link_log (serial, idx, time_core, kind, raw, received_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (serial, idx) DO NOTHING",
                [(serial, index, t, kind, raw.hex(), now) for index, t, kind, raw in uploaded])
        db.execute("INSERT INTO link_handset (serial, first_seen, last_seen, sessions, last_outcome)"
                   " VALUES (?, ?, ?, 0, '') ON CONFLICT (serial) DO NOTHING", (serial, now, now))
        sets = ["last_seen = ?", "sessions = sessions + 1", "last_outcome = ?"]
        values: list = [now, outcome[:200]]
        if status is not None:
            values_status = dict(status, firmware=firmware)
            for column in _STATUS_COLUMNS:
                sets.append(f"{column} = ?")
                values.append(values_status.get(column))
        if log_next is not None:
            # the anchor only moves forward: a slower racing session never rewinds it
            sets.append("log_hash = CASE WHEN log_next IS NULL OR log_next < ? THEN ? ELSE log_hash END")
            values += [log_next, log_hash.hex() if log_hash else None]
            sets.append("log_next = CASE WHEN log_next IS NULL OR log_next < ? THEN ? ELSE log_next END")
            values += [log_next, log_next]
        sets.append("log_problem = ?")
        values.append(log_problem)
        db.execute(f"UPDATE link_handset SET {', '.join(sets)} WHERE serial = ?", (*values, serial))
        db.commit()
    except BaseException:
        db.rollback()
        raise
