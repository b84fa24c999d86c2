"""A simulated payment processor with seeded, reproducible failures (the engine's test gateway).

Tokens behave like a gateway's test cards:
    tok_ok / tok_visa         always succeeds
    tok_declined              card_declined
    tok_expired               expired_card
    tok_insufficient_funds    insufficient_funds
    any other token           "random": fails with probability `failure_rate` (higher, `sticky`,
                              right after a failure of the same card; an expired card stays expired)
A card's behaviour can be changed from a given time (`set_card`), e.g. "runs out of funds on the
10th". Outcomes are a pure function of (seed, idempotency key, card history), so a rerun after a
crash gets the same answers, and a replayed key returns the stored first result without moving
money again. Charges live in the processor's own store (its own SQLite file for the CLI, memory for
benchmarks): it is another system, committed independently of the billing database.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from . import database
from .processor import (
    CARD_DECLINED,
    EXPIRED_CARD,
    FAILED,
    INSUFFICIENT_FUNDS,
    SUCCEEDED,
    ChargeResult,
)

BEHAVIOURS = ("ok", "declined", "expired_card", "insufficient_funds", "random")
FIXED_TOKENS = {
    "tok_ok": "ok",
    "tok_visa": "ok",
    "tok_declined": "declined",
    "tok_expired": "expired_card",
    "tok_insufficient_funds": "insufficient_funds",
}
_CODE = {"declined": CARD_DECLINED, "expired_card": EXPIRED_CARD,
         "insufficient_funds": INSUFFICIENT_FUNDS}


class MemorySimStore:
    """Processor-side records in memory (benchmarks, scenarios)."""

    def __init__(self):
        self.charges: dict[str, tuple] = {}  # key -> (token, amount, kind, status, code, ref, at)
        self.cards: dict[str, list] = {}  # token -> [(from_at, behaviour)]
        self.last: dict[str, str | None] = {}  # token -> last decline code or None

    def get(self, key):
        return self.charges.get(key)

    def put(self, key, record, token, last_code):
        self.charges[key] = record
        self.last[token] = last_code

    def card_schedule(self, token):
        return self.cards.get(token, ())

    def set_card(self, token, from_at, behaviour):
        self.cards.setdefault(token, []).append((from_at, behaviour))
        self.cards[token].sort()

    def last_code(self, token):
        return self.last.get(token)

    def all_charges(self):
        return [(k,) + v for k, v in self.charges.items()]

    def with_prefix(self, prefix):
        return sorted((k,) + v for k, v in self.charges.items() if k.startswith(prefix))


class SqlSimStore:
    """Processor-side records in SQL tables (sim_*) on a connection of their own, each charge
    committed before it returns: the processor is another system, committed independently of the
    billing database. On SQLite the records sit in their own file (DB.processor); on PostgreSQL
    in the billing database's server, through a separate connection."""

    DDL = (
        "CREATE TABLE IF NOT EXISTS sim_charge (idem_key VARCHAR(96) NOT NULL PRIMARY KEY,"
        " token VARCHAR(128) NOT NULL, amount BIGINT NOT NULL, kind VARCHAR(8) NOT NULL,"
        " status VARCHAR(12) NOT NULL, decline_code VARCHAR(40), ref VARCHAR(64) NOT NULL,"
        " at BIGINT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS sim_card (token VARCHAR(128) NOT NULL, from_at BIGINT NOT NULL,"
        " behaviour VARCHAR(24) NOT NULL, PRIMARY KEY (token, from_at))",
        "CREATE TABLE IF NOT EXISTS sim_last (token VARCHAR(128) NOT NULL PRIMARY KEY,"
        " decline_code VARCHAR(40))",
    )

    def __init__(self, location: str | Path):
        self.conn = database.connect(location)
        for statement in self.DDL:
            self.conn.execute(statement)

    @classmethod
    def beside(cls, location: str | Path) -> SqlSimStore:
        """The processor's records for a billing database: a file beside a SQLite one, the same
        PostgreSQL database otherwise."""
        if database.dialect_of(location) == database.SQLITE:
            return cls(database.sqlite_path(location) + ".processor")
        return cls(location)

    def get(self, key):
        row = self.conn.execute(
            "SELECT token, amount, kind, status, decline_code, ref, at FROM sim_charge"
            " WHERE idem_key = ?", (key,)).fetchone()
        return tuple(row) if row else None

    def put(self, key, record, token, last_code):
        # a plain BEGIN: the processor never takes the billing database's writer lock (on
        # PostgreSQL the engine holds it, on another connection, while it charges)
        self.conn.execute("BEGIN")
        self.conn.execute("INSERT INTO sim_charge VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (key,) + record)
        self.conn.execute(
            "INSERT INTO sim_last (token, decline_code) VALUES (?, ?) ON CONFLICT (token)"
            " DO UPDATE SET decline_code = excluded.decline_code", (token, last_code))
        self.conn.execute("COMMIT")

    def card_schedule(self, token):
        return self.conn.execute(
            "SELECT from_at, behaviour FROM sim_card WHERE token = ? ORDER BY from_at",
            (token,)).fetchall()

    def set_card(self, token, from_at, behaviour):
        self.conn.execute(
            "INSERT INTO sim_card VALUES (?, ?, ?) ON CONFLICT (token, from_at)"
            " DO UPDATE SET behaviour = excluded.behaviour", (token, from_at, behaviour))

    def last_code(self, token):
        row = self.conn.execute("SELECT decline_code FROM sim_last WHERE token = ?",
                                (token,)).fetchone()
        return row[0] if row else None

    def all_charges(self):
        return [tuple(r) for r in self.conn.execute(
            "SELECT idem_key, token, amount, kind, status, decline_code, ref, at FROM sim_charge"
            " ORDER BY at, idem_key")]

    def with_prefix(self, prefix):
        return [tuple(r) for r in self.conn.execute(
            "SELECT idem_key, token, amount, kind, status, decline_code, ref, at FROM sim_charge"
            " WHERE substr(idem_key, 1, ?) = ? ORDER BY idem_key", (len(prefix), prefix))]


SqliteSimStore = SqlSimStore  # the name it had when SQLite was the only store


class SimulatedProcessor:
    """Implements processor.PaymentProcessor over a sim store."""

    def __init__(self, store=None, seed: int = 0, failure_rate: float = 0.0, sticky: float = 0.5):
        self.store = store if store is not None else MemorySimStore()
        self._seed = seed
        # every key's digest is sha256(f"{seed}:{key}"): the seed's part is hashed once, each key
        # continues a copy of it (a new hash object costs OpenSSL more than hashing the key)
        self._seeded = hashlib.sha256(f"{seed}:".encode())
        self.failure_rate = failure_rate
        self.sticky = sticky

    @property
    def seed(self) -> int:
        return self._seed

    def set_card(self, token: str, from_at: int, behaviour: str) -> None:
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"unknown card behaviour {behaviour!r} (one of {', '.join(BEHAVIOURS)})")
        self.store.set_card(token, from_at, behaviour)

    def behaviour(self, token: str, at: int) -> str:
        current = FIXED_TOKENS.get(token, "random")
        for from_at, behaviour in self.store.card_schedule(token):
            if from_at <= at:
                current = behaviour
        return current

    def _decide(self, digest: bytes, token: str, at: int) -> str | None:
        behaviour = self.behaviour(token, at)
        if behaviour == "ok":
            return None
        if behaviour != "random":
            return _CODE[behaviour]
        last = self.store.last_code(token)
        if last == EXPIRED_CARD:
            return EXPIRED_CARD
        u, byte = int.from_bytes(digest[:8], "big") / 2**64, digest[8]
        if u >= (self.sticky if last else self.failure_rate):
            return None
        if byte < 154:  # 60 %
            return INSUFFICIENT_FUNDS
        if byte < 218:  # 25 %
            return CARD_DECLINED
        return EXPIRED_CARD  # 15 %

    def charge(self, *, idempotency_key, token, amount, currency="USD", description="", at=0):
        return self._transact("charge", idempotency_key, token, amount, at)

    def refund(self, *, idempotency_key, token, amount, currency="USD", description="", at=0):
        return self._transact("refund", idempotency_key, token, amount, at)

    def _transact(self, kind, key, token, amount, at):
        if amount <= 0:
            raise ValueError(f"{kind} of {amount} cents")
        store = self.store
        stored = store.get(key)
        if stored is not None:
            s_token, s_amount, s_kind, status, code, ref, _ = stored
            if (s_token, s_amount, s_kind) != (token, amount, kind):
                # what a gateway does when a key is reused for a different request
                raise ValueError(f"idempotency key {key} reused with different parameters")
            return ChargeResult(status, ref, code, "replayed")
        keyed = self._seeded.copy()
        keyed.update(key.encode())
        digest = keyed.digest()
        if kind == "charge":
            code = last = self._decide(digest, token, at)
            ref = "ch_" + digest[16:24].hex()
        else:
            code, last = None, store.last_code(token)
            ref = "re_" + digest[16:24].hex()
        status = FAILED if code else SUCCEEDED
        store.put(key, (token, amount, kind, status, code, ref, at), token, last)
        return ChargeResult(status, ref, code, "")

    def records(self, prefix: str) -> list[tuple]:
        """Every charge and refund whose key starts with `prefix` (a real gateway lists a
        customer's charges by metadata): (key, token, amount, kind, status, code, ref, at)."""
        return self.store.with_prefix(prefix)

    def captured_total(self) -> int:
        """Net money moved: successful charges minus refunds (for conservation checks)."""
        total = 0
        for _key, _token, amount, kind, status, *_ in self.store.all_charges():
            if status == SUCCEEDED:
                total += amount if kind == "charge" else -amount
        return total
