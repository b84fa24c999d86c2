"""A real PostgreSQL server for the provider's tests, started by the tests themselves.

The server comes from the PyPI package `pgserver` (PostgreSQL 16 binaries inside the wheel: no
system install), in a temporary data folder, reached over a Unix socket in that folder; it is
started once per test session and stopped at its end. Durability is turned off (fsync,
synchronous_commit): a test never survives a power cut, and it makes each commit cheap.
`fresh_postgres_url()` creates an empty database on it and returns its URL.
"""

from __future__ import annotations

import itertools
import os
import tempfile
import warnings

import pytest

_server = None
_names = itertools.count(1)


@pytest.fixture(scope="session")
def postgres_server():
    """The session's PostgreSQL server (pgserver); its admin URL is `.get_uri()`."""
    global _server
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about a missing XDG_RUNTIME_DIR
        import pgserver
        # a short folder directly under /tmp: as root, pgserver runs the server as its own user,
        # who must reach the folder (pytest's tmp folders are root-only), and a Unix socket path
        # is limited to ~100 characters
        data = tempfile.mkdtemp(prefix="lci-pg-")
        os.chmod(data, 0o755)
        server = pgserver.get_server(data, cleanup_mode="delete")
    server.psql("ALTER SYSTEM SET fsync = off; ALTER SYSTEM SET synchronous_commit = off;"
                " ALTER SYSTEM SET full_page_writes = off; SELECT pg_reload_conf();")
    _server = server
    yield server
    _server = None
    # connections tests left open would make the server's shutdown wait for them: end them first
    server.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE pid <> pg_backend_pid() AND backend_type = 'client backend';")
    server.cleanup()


def fresh_postgres_url(server=None) -> str:
    """A new, empty database on the session's server; its psycopg URL."""
    import psycopg

    server = server or _server
    assert server is not None, "request the postgres_server fixture first"
    name = f"t{os.getpid()}_{next(_names)}"
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} STRATEGY FILE_COPY")
    return database_url(server, name)


def database_url(server, name: str) -> str:
    """The URL of database `name` on `server` (the admin URL with its database name replaced)."""
    admin = server.get_uri()  # postgresql://postgres:@/postgres?host=/path
    head, query = admin.split("?", 1)
    return f"{head.rsplit('/', 1)[0]}/{name}?{query}"


def clone_postgres_url(url: str, server=None) -> str:
    """A new database that is a copy of the one at `url` (which must have no open connection)."""
    import psycopg

    server = server or _server
    source = url.split("?", 1)[0].rsplit("/", 1)[1]
    name = f"t{os.getpid()}_{next(_names)}"
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {source} STRATEGY FILE_COPY")
    return database_url(server, name)
