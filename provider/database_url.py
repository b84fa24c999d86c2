"""The provider's one database location, shared by the billing store and the web application.

`LCI_DATABASE_URL` names it: `sqlite:///relative.db`, `sqlite:////abs/path.db`, a plain file path,
or `postgresql://user:password@host:port/dbname`. Unset, it is `sqlite:///provider.db` in the
working directory, so a fresh clone runs with nothing installed. The billing engine's tables and
the portal's (users, sessions, invitations, appointments) live side by side in that database.
"""

from __future__ import annotations

import os
from urllib.parse import parse_qsl, unquote, urlsplit

ENV = "LCI_DATABASE_URL"
DEFAULT = "sqlite:///provider.db"
_PG = ("postgresql", "postgres", "pgsql")


def database_url(environ=None) -> str:
    """The configured location (the environment's LCI_DATABASE_URL, else the default)."""
    env = os.environ if environ is None else environ
    return (env.get(ENV) or "").strip() or DEFAULT


def is_postgresql(url: str) -> bool:
    return "://" in url and url.split(":", 1)[0].lower() in _PG


def sqlite_path(url: str) -> str:
    """The file of a SQLite location: sqlite:///rel.db -> rel.db, sqlite:////abs.db -> /abs.db."""
    if url.startswith("sqlite://"):
        rest = url[len("sqlite://"):]
        if rest in ("", "/", "/:memory:"):
            return ":memory:"
        return unquote(rest[1:] if rest.startswith("/") else rest)
    if "://" in url:
        raise ValueError(f"{ENV}: unsupported database URL scheme in {url.split('://')[0]!r} "
                         f"(expected sqlite:///FILE, a file path or postgresql://...)")
    return url


def django_database(url: str) -> dict:
    """Django's DATABASES entry for the location."""
    if is_postgresql(url):
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
