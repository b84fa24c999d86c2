"""A billing engine on an in-memory database with a simulated processor, for tests."""

from __future__ import annotations

from pathlib import Path

from provider.billing import reports, schema
from provider.billing.clock import iso, parse_when
from provider.billing.engine import Engine
from provider.billing.policy import DAY, HOUR, load_policy
from provider.billing.simulated_processor import SimulatedProcessor

START = "2025-01-06T09:00"  # a Monday

__all__ = ["DAY", "HOUR", "START", "Harness", "T", "iso", "new_location", "store_name",
           "writers_of"]

# The store the current test runs on (set by conftest.billing_store): "sqlite" or "postgresql",
# a factory of fresh PostgreSQL database URLs, and the test's temporary folder.
_store = {"name": "sqlite", "postgres": None, "folder": None, "count": 0}


def use_store(name: str, postgres_factory, folder) -> None:
    _store.update(name=name, postgres=postgres_factory, folder=folder, count=0)


def store_name() -> str:
    return _store["name"]


def new_location(file: bool = False) -> str:
    """A fresh, empty billing database location on the current store: a new PostgreSQL database
    URL, or on SQLite a new file in the test's folder (`file`) or memory."""
    if _store["name"] == "postgresql":
        return _store["postgres"]()
    if file:
        _store["count"] += 1
        return str(_store["folder"] / f"billing{_store['count']}.db")
    return ":memory:"


def T(text: str) -> int:
    return parse_when(text)


def writers_of(db: str) -> list[int]:
    """Pids of running writer processes on this database (any parent)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(b"provider.billing.pipeline import main" in a for a in argv) and db.encode() in argv:
            found.append(int(entry.name))
    return found


class Harness:
    def __init__(self, overrides: dict | None = None, start: str = START, seed: int = 0,
                 failure_rate: float = 0.0, signer=None, file: bool = False):
        self.conn = schema.connect(new_location(file))
        schema.create(self.conn)
        self.policy = load_policy(None, overrides or {})
        Engine.initialize(self.conn, self.policy, T(start), seed)
        self.processor = SimulatedProcessor(seed=seed, failure_rate=failure_rate)
        self.engine = Engine(self.conn, self.policy, self.processor, signer=signer)

    # --- actions
    def open(self, *, state="OR", county="", token="tok_ok", theft=False, pay_initial=True,
             appointment=None, serial="LCI7-0001", email="client@example.com") -> str:
        return self.engine.open_account(
            serial=serial, email=email, state=state, county=county, token=token,
            theft_protection=theft, pay_initial=pay_initial,
            appointment=T(appointment) if appointment else None)

    def to(self, when: str) -> None:
        self.engine.advance(T(when))

    def card(self, token: str, when: str, behaviour: str) -> None:
        self.processor.set_card(token, T(when), behaviour)

    # --- views
    def account(self, ref):
        return self.engine.store.account_by_ref(ref)

    def status(self, ref) -> str:
        return self.account(ref).status

    def balance(self, ref) -> int:
        return self.engine.store.balance(self.account(ref).id)

    def invoices(self, ref, kind: str | None = None) -> list[dict]:
        items = reports.invoices(self.conn, self.account(ref).id)
        return [i for i in items if kind is None or i["kind"] == kind]

    def payments(self, ref) -> list[dict]:
        return reports.payments(self.conn, self.account(ref).id)

    def notices(self, ref, kind: str | None = None) -> list[dict]:
        items = reports.notices(self.conn, self.account(ref).id)
        return [n for n in items if kind is None or n["kind"] == kind]

    def directives(self, ref) -> list[dict]:
        return reports.directives(self.conn, self.account(ref).id)

    def history(self, ref) -> list[dict]:
        return reports.history(self.conn, self.account(ref).id)

    def book(self, name: str) -> int:
        return self.conn.execute("SELECT COALESCE(SUM(amount), 0) FROM posting WHERE book = ?",
                                 (name,)).fetchone()[0]
