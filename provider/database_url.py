"""The provider's one database location, shared by the billing store and the web application.

`LCI_DATABASE_URL` names it: `sqlite:///relative.db`, `sqlite:////abs/path.db`, a plain file path,
or `postgresql://user:password@host:port/dbname`. Unset, it is `sqlite:///provider.db` in the
working directory, so a fresh clone runs with nothing installed. The billing engine's tables and
the portal's (users, sessions, invitations, appointments) live side by side in that database;
both read the URL the same way (provider.billing.database: dialect_of, sqlite_path).
"""

from __future__ import annotations

import os
from urllib.parse import parse_qsl, unquote, urlsplit

from provider.billing.database import POSTGRESQL, dialect_of, sqlite_path

ENV = "LCI_DATABASE_URL"
DEFAULT = "sqlite:///provider.db"


def database_url(environ=None) -> str:
    """The configured location (the environment's LCI_DATABASE_URL, else the default)."""
    env = os.environ if environ is None else environ
    return (env.get(ENV) or "").strip() or DEFAULT


def django_database(url: str) -> dict:
    """Django's DATABASES entry for the location (read as the billing store reads it)."""
    if dialect_of(url) == POSTGRESQL:
        parts = urlsplit(url)
        options = dict(parse_qsl(parts.query))
        return {"ENGINE": "django.db.backends.postgresql", "NAME": unquote(parts.path.lstrip("/")),
                "USER": unquote(parts.username or ""), "PASSWORD": unquote(parts.password or ""),
                "HOST": parts.hostname or "", "PORT": str(parts.port or ""),
                "OPTIONS": options, "CONN_MAX_AGE": 60}
    # SQLite: wait for the billing engine's write transactions instead of failing at once;
    # IMMEDIATE transactions take the write lock up front (no upgrade deadlocks)
    return {"ENGINE": "django.db.backends.sqlite3", "NAME": sqlite_path(url),
            "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE",
                        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"}}
