"""Every billing test runs twice: on SQLite and on a real PostgreSQL (see tests/provider/conftest.py).

The autouse fixture below chooses the store for the test; `harness.new_location()` (used by the
Harness and by the CLI tests) then gives a fresh, empty database location on that store: a SQLite
file (or memory) or a new PostgreSQL database URL.
"""

from __future__ import annotations

import pytest

from tests.provider.conftest import fresh_postgres_url

from . import harness


@pytest.fixture(params=["sqlite", "postgresql"], autouse=True, scope="module")
def billing_store(request, tmp_path_factory):
    """Module-scoped, so module fixtures (a fleet built once) follow the same store."""
    folder = tmp_path_factory.mktemp("billing")
    if request.param == "postgresql":
        server = request.getfixturevalue("postgres_server")
        harness.use_store("postgresql", lambda: fresh_postgres_url(server), folder)
    else:
        harness.use_store("sqlite", None, folder)
    yield request.param
    harness.use_store("sqlite", None, None)
