"""The link on one PostgreSQL database shared by several processes (pgserver): `lci-server link
--keys` signs what billing left pending there, and a directive is claimed by one call at a time
across processes, so two link servers never send the same token at once."""

from __future__ import annotations

import asyncio
import threading

import pytest

from provider.link import store
from provider.link.server import LinkServer
from sim.uplink import dial_async
from tests.provider.conftest import fresh_postgres_url

from .rig import World
from .test_tls_and_cli import signs_what_billing_left_pending

pytest.importorskip("pgserver")

SERIAL = "LCI-SO-0001"


@pytest.fixture
def pg_url(postgres_server):
    return fresh_postgres_url(postgres_server)


def test_lci_server_link_keys_signs_pending_directives_on_postgresql(tmp_path, pg_url):
    signs_what_billing_left_pending(tmp_path, pg_url)


def _connections(url: str, n: int) -> list[store.Database]:
    return [store.connect(url) for _ in range(n)]


def test_of_many_processes_claiming_one_directive_at_once_exactly_one_wins(tmp_path, pg_url):
    World(tmp_path, [SERIAL], url=pg_url).engine.disconnect()  # the billing tables
    dbs = _connections(pg_url, 6)
    try:
        store.create(dbs[0])
        for round_ in range(30):
            directive = {"id": 1000 + round_, "action": "recall", "attempts": 0}
            start = threading.Barrier(len(dbs))
            won: list[str] = []

            def race(db, owner, directive, start, won):
                start.wait()
                if store.claim(db, directive, SERIAL, owner, now=100, lease=60):
                    won.append(owner)

            threads = [threading.Thread(target=race, args=(db, f"link-{n}", directive, start, won))
                       for n, db in enumerate(dbs)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert len(won) == 1, (round_, won)
    finally:
        for db in dbs:
            db.close()


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_claim_lapses_after_its_lease_and_ends_with_the_outcome(database, tmp_path, postgres_server):
    url = fresh_postgres_url(postgres_server) if database == "postgresql" else None
    World(tmp_path, [SERIAL], url=url).engine.disconnect()  # the billing tables
    db = store.connect(url or str(tmp_path / "billing.db"))
    try:
        store.create(db)
        directive = {"id": 1000, "action": "recall", "attempts": 0}
        assert store.claim(db, directive, SERIAL, "first", now=100, lease=60)
        assert not store.claim(db, directive, SERIAL, "late", now=159, lease=60)
        assert store.claim(db, directive, SERIAL, "late", now=160, lease=60)  # lapsed
        store.record_attempt(db, directive, SERIAL, store.RETRY, None, "connection lost", 161)
        assert store.claim(db, directive, SERIAL, "next", now=162, lease=60)  # ended at once
        store.record_attempt(db, directive, SERIAL, store.DELIVERED, "token", "", 163)
        assert not store.claim(db, directive, SERIAL, "after", now=10_000, lease=60)  # final
        [row] = store.deliveries(db, SERIAL)
        assert (row["status"], row["attempts"], row["first_try_at"], row["at"]) == (
            "delivered", 2, 100, 163)
    finally:
        db.close()


def test_two_link_servers_never_send_one_directive_at_once(tmp_path, pg_url):
    """The handset's old connection to server A is still waiting for its TOKEN answer when the
    handset calls again through server B: B must not send the directive A is sending."""
    world = World(tmp_path, [SERIAL], url=pg_url)
    directive = world.until_directive(SERIAL, "recall")
    # the stale connection: a unit with the same serial and keys, whose TOKEN answer never arrives
    from sim.provider import Provider
    from sim.simulator import Simulator
    from sim.technician import Technician

    ghost = Simulator(seed="ghost", identity=world.identity(SERIAL), start_s=world.start,
                      keep_timeline=False)
    tech = Technician(ghost, Provider(world.seed, SERIAL, start_s=world.start))
    tech.install(vehicle="VIN-GHOST")
    tech.close()
    ghost.run_until(world.t * 1000)

    async def calls():
        a = LinkServer(pg_url, clock=world.unix, timeout=60, slow_timeout=60)
        b = LinkServer(pg_url, clock=world.unix)
        a_host, a_port = await a.start("127.0.0.1", 0)
        b_host, b_port = await b.start("127.0.0.1", 0)
        held = asyncio.Event()
        ups = []

        def swallow_token_answer(direction, data):
            if direction == "up":
                ups.append(data)
                if len(ups) == 2:  # HELLO's answer passes, the TOKEN's never arrives
                    held.set()
                    return b""
            return data

        stale = asyncio.create_task(dial_async(ghost, a_host, a_port, tap=swallow_token_answer))
        await asyncio.wait_for(held.wait(), 60)
        first = await dial_async(world.sims[SERIAL], b_host, b_port)
        b_first = dict(b.stats.as_dict())
        stale.cancel()  # the stale connection drops: A records the TOKEN as unanswered
        await asyncio.gather(stale, return_exceptions=True)
        await a.quiet()
        second = await dial_async(world.sims[SERIAL], b_host, b_port)
        await b.quiet()
        stats = a.stats.as_dict(), b.stats.as_dict()
        await a.close()
        await b.close()
        return first, b_first, second, stats

    first, b_first, second, (a_stats, b_stats) = asyncio.run(calls())
    assert first["ok"] and second["ok"]
    assert b_first["delivered"] == 0  # B held back: A was sending it
    assert a_stats["delivered"] == 0 and b_stats["delivered"] == 1
    [row] = [d for d in store.deliveries(world.link_db(), SERIAL) if d["directive_id"] == directive["id"]]
    assert (row["status"], row["answer"], row["attempts"]) == ("delivered", "token", 2)
    assert sum(t.startswith("recall ") for t in world.accepted_tokens(world.sims[SERIAL])) == 1
