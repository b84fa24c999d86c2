"""The billing database schema: every table and index, in one place, in SQL that SQLite and
PostgreSQL both accept.

Portability rules kept here: only INTEGER / BIGINT / VARCHAR(n) / TEXT column types; no
AUTOINCREMENT, WITHOUT ROWID, STRICT or type affinity tricks; ids are assigned by the engine
(never by the database), so no SERIAL / IDENTITY either; upserts use the `ON CONFLICT ... DO
NOTHING` form both accept. Two dialect differences: the id column type, `INTEGER` on SQLite (so it
is the rowid, the fast path) and `BIGINT` on PostgreSQL; and how a reference (`REFERENCES parent
(id)`) is enforced. SQLite keeps it a foreign key. PostgreSQL checks a foreign key row by row (a
query and a row lock for each inserted row: two thirds of the server's time inserting postings),
so there every reference is a check of the whole statement instead (`references_ddl`): after each
INSERT or UPDATE of the child, one anti-join of the statement's new rows against the parent fails
it with `foreign_key_violation` (SQLSTATE 23503, the code of a foreign key's error) if one names a missing
parent; and a parent's rows are never deleted, truncated or given another id (billing records are
kept), so no parent can go missing under a child written before. The whole billing suite runs on
both (tests/provider/billing/conftest.py starts a real PostgreSQL).

Money is BIGINT cents; times are BIGINT Unix seconds (UTC).
"""

from __future__ import annotations

import re
from pathlib import Path

from . import database
from .database import Database

SCHEMA_VERSION = "1"

ID_TYPE = {"sqlite": "INTEGER", "postgresql": "BIGINT"}

_TABLES = """
CREATE TABLE meta (
    key             VARCHAR(64) NOT NULL PRIMARY KEY,
    value           TEXT NOT NULL
);

CREATE TABLE account (
    id              {id} NOT NULL PRIMARY KEY,
    ref             VARCHAR(16) NOT NULL UNIQUE,
    serial          VARCHAR(64) NOT NULL,
    email           VARCHAR(254) NOT NULL,
    status          VARCHAR(20) NOT NULL,
    tax_state       VARCHAR(2) NOT NULL,
    tax_county      VARCHAR(64) NOT NULL,
    cycle_weeks     INTEGER NOT NULL,
    theft_protection INTEGER NOT NULL,
    method_token    VARCHAR(128),
    opened_at       BIGINT NOT NULL,
    anchor_at       BIGINT,
    paid_through    BIGINT,
    next_bill_at    BIGINT,
    attempt_at      BIGINT,
    attempt_kind    VARCHAR(12),
    retry_base      BIGINT,
    retry_index     INTEGER NOT NULL,
    announced       VARCHAR(200) NOT NULL,
    notice_at       BIGINT,
    failure_open    INTEGER NOT NULL,
    failed_payments VARCHAR(200) NOT NULL,
    switch_eligible_at BIGINT,
    late_fee_at     BIGINT,
    past_due_since  BIGINT,
    recall_at       BIGINT,
    lockout_at      BIGINT,
    appointment_at  BIGINT,
    installed_at    BIGINT,
    short_reschedules INTEGER NOT NULL,
    removed_at      BIGINT,
    closed_at       BIGINT,
    pending_method_token VARCHAR(128),
    pending_theft_protection INTEGER,
    pending_cycle_weeks INTEGER,
    pending_apply_at BIGINT,
    attempt_seq     INTEGER NOT NULL,
    invoice_seq     INTEGER NOT NULL,
    next_due_at     BIGINT
);
CREATE INDEX account_next_due ON account (next_due_at, id);

CREATE TABLE invoice (
    id              {id} NOT NULL PRIMARY KEY,
    account_id      BIGINT NOT NULL REFERENCES account (id),
    number          VARCHAR(32) NOT NULL UNIQUE,
    kind            VARCHAR(16) NOT NULL,
    issued_at       BIGINT NOT NULL,
    due_at          BIGINT NOT NULL,
    period_start    BIGINT,
    period_end      BIGINT,
    cycle_weeks     INTEGER,
    collection      VARCHAR(12) NOT NULL,
    subtotal        BIGINT NOT NULL,
    tax             BIGINT NOT NULL,
    tax_rate        VARCHAR(16) NOT NULL,
    total           BIGINT NOT NULL,
    prepaid_span    BIGINT,
    refers_to       BIGINT,
    first_failed_at BIGINT,
    late_fee_invoice BIGINT,
    memo            VARCHAR(200) NOT NULL
);
CREATE INDEX invoice_by_account ON invoice (account_id, id);

CREATE TABLE invoice_line (
    invoice_id      BIGINT NOT NULL REFERENCES invoice (id),
    line            INTEGER NOT NULL,
    item            VARCHAR(24) NOT NULL,
    label           VARCHAR(80) NOT NULL,
    amount          BIGINT NOT NULL,
    taxable         INTEGER NOT NULL,
    PRIMARY KEY (invoice_id, line)
);

-- The ledger: append-only, double-entry. One journal entry = the rows sharing entry_id; their
-- amounts (debit > 0, credit < 0) sum to zero. Every row names its cause and a reference.
-- Postings are numbered in the order they were written (id), entries too (entry_id).
CREATE TABLE posting (
    id              {id} NOT NULL PRIMARY KEY,
    entry_id        BIGINT NOT NULL,
    line            INTEGER NOT NULL,
    account_id      BIGINT NOT NULL REFERENCES account (id),
    at              BIGINT NOT NULL,
    book            VARCHAR(40) NOT NULL,
    invoice_id      BIGINT,
    amount          BIGINT NOT NULL,
    cause           VARCHAR(24) NOT NULL,
    ref             VARCHAR(96) NOT NULL
);
-- Balances and open items come from the receivable postings alone: a partial, covering index.
CREATE INDEX posting_receivable ON posting (account_id, invoice_id, amount) WHERE book = 'receivable';
-- No index on entry_id: an entry's postings are consecutive ids numbered from line 1 (the last
-- posting carries the highest entry id; an entry is read as a range of ids), and the daily run
-- writes some 200,000 postings: an index entry each would cost about 7 % of its time.

-- Payment events, idempotent by key: a replayed processor callback hits the UNIQUE key.
-- request_key: the key a client or a feed gave the request (a portal form's, an external event's),
-- scoped to (account, kind); idem_key is the event's own key (the processor's, for charges).
CREATE TABLE payment (
    id              {id} NOT NULL PRIMARY KEY,
    account_id      BIGINT NOT NULL REFERENCES account (id),
    idem_key        VARCHAR(96) NOT NULL UNIQUE,
    at              BIGINT NOT NULL,
    kind            VARCHAR(12) NOT NULL,
    attempt         VARCHAR(12) NOT NULL,
    method_token    VARCHAR(128),
    amount          BIGINT NOT NULL,
    status          VARCHAR(12) NOT NULL,
    decline_code    VARCHAR(40),
    processor_ref   VARCHAR(64),
    failure_open_before INTEGER NOT NULL,
    entry_id        BIGINT,
    request_key     VARCHAR(64)
);
CREATE INDEX payment_by_account ON payment (account_id, at);
CREATE INDEX payment_by_request ON payment (request_key, kind) WHERE request_key IS NOT NULL;

-- Email notices sent to the client (the engine records them; a mailer sends them).
CREATE TABLE notice (
    id              {id} NOT NULL PRIMARY KEY,
    account_id      BIGINT NOT NULL REFERENCES account (id),
    at              BIGINT NOT NULL,
    kind            VARCHAR(32) NOT NULL,
    attempt_at      BIGINT,
    amount          BIGINT,
    subject         VARCHAR(200) NOT NULL,
    body            TEXT NOT NULL
);
CREATE INDEX notice_by_account ON notice (account_id, at);

-- The directive outbox: every device directive decided, and when and how it was issued.
CREATE TABLE directive (
    id              {id} NOT NULL PRIMARY KEY,
    account_id      BIGINT NOT NULL REFERENCES account (id),
    serial          VARCHAR(64) NOT NULL,
    decided_at      BIGINT NOT NULL,
    action          VARCHAR(16) NOT NULL,
    args            TEXT NOT NULL,
    delivery        VARCHAR(8) NOT NULL,
    status          VARCHAR(20) NOT NULL,
    issued_at       BIGINT,
    key_id          VARCHAR(64),
    not_before_core BIGINT,
    expires_core    BIGINT,
    token           TEXT,
    request         VARCHAR(40),
    code            VARCHAR(40),
    note            VARCHAR(200)
);
CREATE INDEX directive_by_status ON directive (status, id);
CREATE INDEX directive_by_account ON directive (account_id, id);
-- One serial's directives: the run reads a serial's last recall or lockout for every clear it
-- decides (without the index, a scan of the whole outbox each time), the link every call.
CREATE INDEX directive_by_serial ON directive (serial, id);

-- What happened to an account and the state it left the account in (statements, timelines).
CREATE TABLE history (
    id              {id} NOT NULL PRIMARY KEY,
    account_id      BIGINT NOT NULL REFERENCES account (id),
    at              BIGINT NOT NULL,
    event           VARCHAR(32) NOT NULL,
    status          VARCHAR(20) NOT NULL,
    detail          VARCHAR(200) NOT NULL
);
CREATE INDEX history_by_account ON history (account_id, id);
"""

# Tables whose ids the engine assigns (max + 1, under the single writer's lock).
ID_TABLES = ("account", "invoice", "posting", "payment", "notice", "directive", "history")


# (child table, its column, the parent table whose id it names), from the tables above
REFERENCES = tuple(
    (table, column, parent)
    for table, body in re.findall(r"CREATE TABLE (\w+) \((.*?)\n\);", _TABLES, re.S)
    for column, parent in re.findall(r"(\w+) +BIGINT(?: NOT NULL)? REFERENCES (\w+) \(id\)", body))


def ddl(dialect: str = "sqlite") -> list[str]:
    """The schema as a list of statements for `dialect` ("sqlite" or "postgresql")."""
    text = _TABLES.replace("{id}", ID_TYPE[dialect])
    if dialect == database.POSTGRESQL:
        text = re.sub(r" REFERENCES \w+ \(id\)", "", text)
    code = "\n".join(ln for ln in text.splitlines() if not ln.strip().startswith("--"))
    statements = [chunk.strip() for chunk in code.split(";") if chunk.strip()]
    if dialect == database.POSTGRESQL:
        statements += references_ddl()
    return statements


def references_ddl() -> list[str]:
    """PostgreSQL: each reference checked once a statement over the statement's new rows, and
    the parents' rows kept (see the module's docstring).

    The functions run as their owner (SECURITY DEFINER, as a foreign key's own check does: a role
    may write a child without reading the parent) with the search path fixed to the schema they
    were created in, the session's temporary tables last: a temporary table named `account`
    cannot stand in for the parent."""
    functions = ["billing_rows_kept"] + [f"{t}_{c}_exists" for t, c, _ in REFERENCES]
    out = ["""CREATE OR REPLACE FUNCTION billing_rows_kept() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER AS $$
BEGIN
  RAISE foreign_key_violation USING MESSAGE = format(
    '%s on table "%s": billing records refer to its rows, which are kept', TG_OP, TG_TABLE_NAME);
END $$"""]
    for parent in sorted({parent for _, _, parent in REFERENCES}):
        out += [f"CREATE TRIGGER {parent}_rows_kept BEFORE DELETE OR TRUNCATE ON {parent}"
                f" FOR EACH STATEMENT EXECUTE FUNCTION billing_rows_kept()",
                f"CREATE TRIGGER {parent}_id_kept BEFORE UPDATE OF id ON {parent} FOR EACH ROW"
                f" WHEN (NEW.id IS DISTINCT FROM OLD.id) EXECUTE FUNCTION billing_rows_kept()"]
    for table, column, parent in REFERENCES:
        check = f"{table}_{column}_exists"
        # a NULL names no row: allowed, as by a foreign key
        out.append(f"""CREATE OR REPLACE FUNCTION {check}() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER AS $$
DECLARE missing BIGINT;
BEGIN
  SELECT n.{column} INTO missing FROM new_rows n
   WHERE n.{column} IS NOT NULL
     AND NOT EXISTS (SELECT 1 FROM {parent} p WHERE p.id = n.{column}) LIMIT 1;
  IF FOUND THEN
    RAISE foreign_key_violation USING MESSAGE = format(
      'insert or update on table "{table}": {column} %s is not a row of {parent}', missing);
  END IF;
  RETURN NULL;
END $$""")
        out += [f"CREATE TRIGGER {check}_{op.lower()} AFTER {op} ON {table} REFERENCING NEW TABLE"
                f" AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {check}()"
                for op in ("INSERT", "UPDATE")]
    out.append(f"""DO $$
DECLARE f TEXT;
BEGIN
  FOREACH f IN ARRAY ARRAY{functions!r} LOOP
    EXECUTE format('ALTER FUNCTION %I() SET search_path = %I, pg_temp', f, current_schema());
  END LOOP;
END $$""")
    return out


def connect(location: str | Path) -> Database:
    """Open (creating a SQLite file if needed) a billing database by path or URL, in autocommit
    mode; the engine opens its own transactions (BEGIN IMMEDIATE: one writer at a time)."""
    return database.connect(location)


def is_initialized(conn: Database) -> bool:
    return conn.has_table("meta")


def create(conn: Database) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        for statement in ddl(conn.dialect):
            conn.execute(statement)
        conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
