"""A billing database with accounts whose directives are real (decided by the engine, signed by
the simulated provider's billing key), simulated handsets installed for them, and the link
server on a real TCP socket — everything on one virtual clock (billing time = handset time)."""

from __future__ import annotations

import contextlib
from pathlib import Path

from firmware import eventlog
from protocol.coretime import DAY, EPOCH_UNIX
from provider.billing import schema
from provider.billing.engine import Engine
from provider.billing.policy import load_policy
from provider.billing.signing import TokenMinter
from provider.billing.simulated_processor import SimulatedProcessor
from provider.link import store
from provider.link.server import LinkServer
from sim.provider import Provider
from sim.simulator import Simulator
from sim.technician import Technician

from . import stall

T0 = 220_000_000  # core seconds: 2026-12-21T07:06:40Z


class World:
    def __init__(self, tmp_path: Path, serials: list[str], seed: int = 0, *, start: int = T0,
                 signed: bool = True, url: str | None = None):
        """`start`: core seconds at t=0 on both clocks; `signed`: the engine signs its
        directives (else they wait in the outbox as `pending`); `url`: a PostgreSQL database
        instead of a SQLite file in tmp_path."""
        self.seed = seed
        self.start = start
        self.db_path = url or str(tmp_path / "billing.db")
        self.conn = schema.connect(self.db_path)
        schema.create(self.conn)
        Engine.initialize(self.conn, load_policy(), start + EPOCH_UNIX, seed)
        self.provider = Provider(seed, serials[0], start_s=start)
        self.engine = Engine(self.conn, Engine.stored_policy(self.conn),
                             SimulatedProcessor(seed=seed, failure_rate=0.0),
                             signer=TokenMinter(self.provider.billing, self.provider.billing.key_id)
                             if signed else None)
        self.refs = {}
        specs = [dict(serial=s, email=f"{s.lower()}@example.com", state="MN", county="Hennepin",
                      token=None, appointment=None, pay_initial=False) for s in serials]
        for serial, ref in zip(serials, self.engine.open_accounts(specs), strict=True):
            self.refs[serial] = ref
        self.sims: dict[str, Simulator] = {}
        for n, serial in enumerate(serials):
            sim = Simulator(seed=f"{seed}:{n}", identity=self.identity(serial), start_s=start,
                            keep_timeline=False)
            tech = Technician(sim, Provider(seed, serial, start_s=start))
            tech.install(vehicle=f"VIN{n:06d}")
            tech.close()
            self.sims[serial] = sim
        self.t = 0  # seconds since T0 on both clocks

    def identity(self, serial: str) -> dict:
        return Provider(self.seed, serial, start_s=self.start).identity()

    # -- time ------------------------------------------------------------------------------------------
    def unix(self) -> int:
        return self.start + EPOCH_UNIX + self.t

    def advance(self, seconds: int) -> None:
        """Billing and every handset to `seconds` later."""
        self.t += seconds
        self.engine.advance(self.unix())
        for sim in self.sims.values():
            sim.run_until(self.t * 1000)

    def until_directive(self, serial: str, action: str, step: int = DAY, limit: int = 60) -> dict:
        for _ in range(limit):
            found = [d for d in self.directives(serial) if d["action"] == action]
            if found:
                return found[-1]
            self.advance(step)
        raise AssertionError(f"no {action} directive for {serial} within {limit} steps")

    def directives(self, serial: str) -> list[dict]:
        rows = self.conn.execute("SELECT id, action, status, delivery FROM directive WHERE serial = ?"
                                 " ORDER BY id", (serial,)).fetchall()
        return [dict(zip(("id", "action", "status", "delivery"), r, strict=True)) for r in rows]

    # -- what the handset did --------------------------------------------------------------------------
    @staticmethod
    def device_records(sim: Simulator) -> list[bytes]:
        from sim.transport import open_client

        with contextlib.closing(open_client(sim)) as client:
            info = client.log_info()
            return [r for _, page in client.read_log(info["first"], info["count"]) for r in page]

    @classmethod
    def accepted_tokens(cls, sim: Simulator) -> list[str]:
        """The detail of every token_accepted record in the handset's log."""
        out = []
        for record in cls.device_records(sim):
            d = eventlog.decode_record(record)
            if d["kind"] == eventlog.TOKEN_ACCEPTED:
                out.append(d["detail"])
        return out

    def link_db(self) -> store.Database:
        return store.connect(self.db_path)


async def start_server(world: World, **kwargs) -> tuple[LinkServer, str, int]:
    server = LinkServer(world.db_path, clock=world.unix, **kwargs)
    host, port = await server.start("127.0.0.1", 0)
    return server, host, port


def run(coro):
    """The test's coroutine on a loop where a stall fails the test instead of hanging it."""
    return stall.run(coro)
