"""Opening the billing database from a URL, and the one connection type the engine speaks to.

A location is a URL or a plain file path:
    billing.db, ./x/billing.db, sqlite:///relative.db, sqlite:////abs/billing.db, :memory:
    postgresql://user:password@host:port/dbname?options   (psycopg 3; postgres:// too)
`LCI_DATABASE_URL` names it for the CLI and the web application alike.

Every statement the engine writes is SQL that both servers accept, with `?` placeholders; on
PostgreSQL `?` becomes `%s` (statements never contain a literal `?` or `%`). Transactions are
explicit: the connection is in autocommit mode and `BEGIN IMMEDIATE` opens a write transaction —
on SQLite it takes the database's write lock, on PostgreSQL it is BEGIN plus a transaction-level
advisory lock, so on both there is one writer at a time. Sums of BIGINT come back from PostgreSQL
as NUMERIC: they are read as Python integers (money is integer cents everywhere).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.parse import unquote, urlsplit

SQLITE = "sqlite"
POSTGRESQL = "postgresql"
WRITER_LOCK = 777_001  # the advisory lock every PostgreSQL write transaction takes
_SQLITE_PARAMETERS = 999  # the most parameters one SQLite statement may have, in every version

_PG_SCHEMES = ("postgresql", "postgres")


def dialect_of(location: str | Path) -> str:
    text = str(location)
    scheme = text.split(":", 1)[0].lower() if "://" in text else ""
    if scheme in _PG_SCHEMES:
        return POSTGRESQL
    if scheme in ("", "sqlite") or text == ":memory:":
        return SQLITE
    raise ValueError(f"unsupported database URL {text!r} (expected a file path, sqlite:///FILE "
                     f"or postgresql://...)")


def sqlite_path(location: str | Path) -> str:
    """The file of a SQLite location (':memory:' stays as is)."""
    text = str(location)
    if text.startswith("sqlite://"):
        rest = text[len("sqlite://"):]
        if rest in ("", "/", "/:memory:"):
            return ":memory:"
        # sqlite:///rel.db -> rel.db ; sqlite:////abs.db -> /abs.db
        return unquote(rest[1:] if rest.startswith("/") else rest)
    return text


def describe(location: str | Path) -> str:
    """The location for messages, without a password."""
    text = str(location)
    if dialect_of(text) != POSTGRESQL:
        return sqlite_path(text)
    parts = urlsplit(text)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return text


class Database:
    """A connection with the engine's small SQL surface: execute, executemany, copy_rows."""

    def __init__(self, raw, dialect: str, location: str):
        self.raw = raw
        self.dialect = dialect
        self.location = location
        if dialect == SQLITE:
            self.execute = raw.execute  # the hot path: no wrapper call on SQLite
            self.executemany = raw.executemany
            self._kept: list[tuple] = []
            raw.create_function("kept_row", -1, self._keep)
        else:
            self._sql: dict[str, str] = {}

    def one_of(self, column: str, values: list):
        """(condition, parameters) saying that `column` is one of `values`, for as many
        statements as that takes: on SQLite `column IN (?, ...)`, up to 900 values a statement
        (its parameter limit); on PostgreSQL `column = ANY(?)` with the values as one array, one
        statement and one plan whatever their number (an IN list of hundreds of parameters costs
        the planner more than the query)."""
        if self.dialect == SQLITE:
            for i in range(0, len(values), 900):
                chunk = values[i:i + 900]
                yield f"{column} IN ({', '.join('?' * len(chunk))})", chunk
        elif values:
            yield f"{column} = ANY(?)", [values]

    def select_rows(self, columns: tuple, rest: str, params=()) -> list[tuple]:
        """`SELECT columns rest`: the rows, as tuples.

        On SQLite wide rows are read through a function of the query. The sqlite3 module releases
        and takes back the GIL around every column it reads from a result (some 700 instructions
        a column: 27,000 for an account's 39 columns), while the arguments of a function are read
        with the GIL taken once a row. `kept_row` keeps its arguments, the row, and returns its
        place among the rows kept: the query's one result column, read back in the query's order.
        A query that sorts calls it for every row it sorts (a LIMIT then drops some): right for
        rows read in an index's order, as the daily run's due accounts are."""
        if self.dialect != SQLITE:
            return self.execute(f"SELECT {', '.join(columns)} {rest}", params).fetchall()
        kept = self._kept = []
        places = self.raw.execute(f"SELECT kept_row({', '.join(columns)}) {rest}",
                                  params).fetchall()
        self._kept = []
        return [kept[i] for (i,) in places]

    def _keep(self, *row) -> int:
        kept = self._kept
        kept.append(row)
        return len(kept) - 1

    # ---- PostgreSQL translation (SQLite binds the raw methods above)
    def _pg(self, sql: str) -> str:
        found = self._sql.get(sql)
        if found is None:
            found = self._sql[sql] = sql.replace("?", "%s")
        return found

    def execute(self, sql: str, params=()):  # PostgreSQL only (see __init__)
        if sql == "BEGIN IMMEDIATE":
            self.raw.execute("BEGIN")
            return self.raw.execute(f"SELECT pg_advisory_xact_lock({WRITER_LOCK})")
        return self.raw.execute(self._pg(sql), params or None)

    def executemany(self, sql: str, rows):  # PostgreSQL only
        cursor = self.raw.cursor()
        cursor.executemany(self._pg(sql), rows)
        return cursor

    def copy_rows(self, table: str, columns: int, values: list, names: tuple | None = None) -> None:
        """Append rows to a table in one go (COPY on PostgreSQL, executemany on SQLite): `values`
        holds the rows' values one row after another, `columns` a row, filling the columns
        `names` (the table's other columns take their default) or every column in order."""
        if names is not None:
            table = f"{table} ({', '.join(names)})"
        if self.dialect == SQLITE:
            # many rows a statement: a row costs SQLite its bindings and B-tree work, a statement
            # its execution (a step, a reset, the GIL released and taken back); at most 999
            # parameters a statement, the limit of every SQLite version
            per = max(1, _SQLITE_PARAMETERS // columns)
            size = per * columns
            full = len(values) - len(values) % size
            if full:
                one = f"({', '.join('?' * columns)})"
                self.raw.executemany(f"INSERT INTO {table} VALUES {', '.join([one] * per)}",
                                     [values[i:i + size] for i in range(0, full, size)])
            if full < len(values):
                self.raw.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * columns)})",
                                     [values[i:i + columns]
                                      for i in range(full, len(values), columns)])
            return
        with self.raw.cursor() as cursor, cursor.copy(f"COPY {table} FROM STDIN") as copy:
            for i in range(0, len(values), columns):
                copy.write_row(values[i:i + columns])

    def update_rows(self, table: str, columns: tuple, rows: list) -> None:
        """UPDATE table SET columns WHERE id = ..., for rows (values..., id): executemany on
        SQLite; on PostgreSQL one statement over arrays (unnest), whatever the number of rows."""
        if self.dialect == SQLITE:
            self.raw.executemany(f"UPDATE {table} SET {', '.join(c + ' = ?' for c in columns)}"
                                 " WHERE id = ?", rows)
            return
        types = self._column_types(table)
        names = list(columns) + ["id"]
        arrays = [list(col) for col in zip(*rows, strict=True)]
        # arrays in binary: psycopg writes a text array in Python, quoting element by element
        source = ", ".join(f"%b::{types[c]}[]" for c in names)
        # each row by its primary key: the planner would rather hash the whole table for a few
        # thousand ids, a scan of every row per statement (many statements a run, over a table
        # that grows with the fleet)
        self.raw.execute("SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off")
        self.raw.execute(
            f"UPDATE {table} SET {', '.join(f'{c} = u.{c}' for c in columns)}"
            f" FROM unnest({source}) AS u({', '.join(names)}) WHERE {table}.id = u.id", arrays)
        self.raw.execute("RESET enable_hashjoin; RESET enable_mergejoin")

    def _column_types(self, table: str) -> dict:
        cache = self.__dict__.setdefault("_types", {})
        if table not in cache:
            cache[table] = {name: ("text" if kind == "character varying" else kind)
                            for name, kind in self.raw.execute(
                                "SELECT column_name, data_type FROM information_schema.columns"
                                " WHERE table_name = %s AND table_schema = current_schema()",
                                (table,))}
        return cache[table]

    def has_table(self, name: str) -> bool:
        if self.dialect == SQLITE:
            sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
        else:
            sql = "SELECT 1 WHERE to_regclass(?) IS NOT NULL"
        return self.execute(sql, (name,)).fetchone() is not None

    def close(self) -> None:
        self.raw.close()


def connect(location: str | Path) -> Database:
    """Open (creating the file if needed, on SQLite) the database at `location`, autocommit."""
    text = str(location)
    dialect = dialect_of(text)
    if dialect == SQLITE:
        return Database(_sqlite(sqlite_path(text)), SQLITE, text)
    return Database(_postgres(text), POSTGRESQL, text)


# The sqlite3 module binds int, float, str and bytes at once, but looks every other value up as
# an object to adapt (a registry miss, then an AttributeError raised and cleared): for None, a
# NULL, that costs about as much as SQLite storing the value. With an adapter registered for it
# (None -> None, a lookup done in C), None is bound at once. Process-wide, the same NULL for every
# caller.
sqlite3.register_adapter(type(None), {None: None}.__getitem__)


def _sqlite(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=30.0)
    conn.execute("PRAGMA journal_mode=WAL")
    # WAL + NORMAL: a committed transaction survives a killed process (not an OS crash without
    # fsync, which FULL would add at a price per commit).
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    # The daily run reads and rewrites the account-ordered indexes: keep them in memory.
    conn.execute("PRAGMA cache_size=-1048576")  # up to 1 GiB of page cache
    conn.execute("PRAGMA mmap_size=4294967296")  # and read the rest through the OS page cache
    return conn


def _postgres(url: str):
    try:
        import psycopg
        from psycopg.adapt import Loader
    except ImportError as exc:  # pragma: no cover - psycopg is a dependency
        raise ValueError(f"PostgreSQL needs psycopg 3 ({exc})") from None

    class IntegerNumeric(Loader):
        """NUMERIC results are sums of BIGINT cents here: read them as exact integers."""

        def load(self, data):
            return int(bytes(data).decode())

    try:
        conn = psycopg.connect(url, autocommit=True)
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"cannot connect: {first}") from None
    conn.adapters.register_loader("numeric", IntegerNumeric)
    return conn
