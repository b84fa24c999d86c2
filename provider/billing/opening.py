"""Opening a billing engine on a database location (a SQLite file path or a PostgreSQL URL): the
connection, the policy stored with the database, the simulated processor's records beside it and,
optionally, a directive token signer. The CLI and the web application open the engine here."""

from __future__ import annotations

import os
from pathlib import Path

from . import database, schema
from .engine import Engine
from .errors import InputError
from .simulated_processor import SimulatedProcessor, SqlSimStore
from .store import Store

DEFAULT_LOCATION = "billing.db"


def default_location() -> str:
    """$LCI_DATABASE_URL, else $LCI_BILLING_DB (a file), else ./billing.db."""
    return (os.environ.get("LCI_DATABASE_URL") or os.environ.get("LCI_BILLING_DB")
            or DEFAULT_LOCATION)


def connect(location: str | Path, *, must_exist: bool = True) -> database.Database:
    """A connection to the billing database at `location`; InputError (one line) when it cannot
    be opened or, with must_exist, when there is no billing database there."""
    text = str(location)
    try:
        dialect = database.dialect_of(text)
    except ValueError as exc:
        raise InputError(text, "", str(exc)) from None
    shown = database.describe(text)
    if must_exist and dialect == database.SQLITE and text != ":memory:" \
            and not Path(database.sqlite_path(text)).exists():
        raise InputError(shown, "", "no billing database here: run `lci-billing init` first")
    try:
        conn = database.connect(text)
    except ValueError as exc:
        raise InputError(shown, "", str(exc)) from None
    if must_exist and not schema.is_initialized(conn):
        conn.close()
        raise InputError(shown, "", "not a billing database: run `lci-billing init`")
    return conn


def processor_for(location: str | Path, store: Store) -> SimulatedProcessor:
    return SimulatedProcessor(SqlSimStore.beside(location), seed=int(store.meta("seed", "0")),
                              failure_rate=float(store.meta("failure_rate", "0")))


def open_engine(location: str | Path | None = None, *, signer=None) -> Engine:
    """The engine on an initialized billing database (default: default_location())."""
    location = default_location() if location is None else location
    conn = connect(location)
    store = Store(conn)
    return Engine(conn, Engine.stored_policy(conn), processor_for(location, store),
                  signer=signer)
