"""The link on PostgreSQL (a real server started by pgserver): the billing tables from
provider/billing/schema.py's PostgreSQL DDL, a signed recall in the outbox, a simulated handset
calling over TCP; and the store's final states never downgraded, on both databases."""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile

import pytest

from provider.billing import schema
from provider.link import store
from provider.link.server import LinkServer
from sim.provider import Provider
from sim.simulator import Simulator
from sim.technician import Technician
from sim.uplink import dial_async

from .rig import T0, World

pgserver = pytest.importorskip("pgserver")
psycopg = pytest.importorskip("psycopg")

SERIAL = "LCI-PG-0001"


@pytest.fixture(scope="module")
def pg_url():
    # not under pytest's private tmp folders: pgserver runs postgres as its own user when root
    folder = tempfile.mkdtemp(prefix="lci-link-pg-")
    server = pgserver.get_server(folder, cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


def _billing_tables(url: str, provider: Provider) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        for table in ("link_log", "link_delivery", "link_handset", "history", "directive", "notice",
                      "payment", "posting", "invoice_line", "invoice", "account", "meta"):
            conn.execute(f"DROP TABLE IF EXISTS {table}")
        for statement in schema.ddl("postgresql"):
            conn.execute(statement)
        conn.execute(
            "INSERT INTO account (id, ref, serial, email, status, tax_state, tax_county, cycle_weeks,"
            " theft_protection, opened_at, retry_index, announced, failure_open, failed_payments,"
            " short_reschedules, attempt_seq, invoice_seq) VALUES (1, 'A000001', %s, 'c@example.com',"
            " 'recall', 'MN', 'Hennepin', 2, 0, 0, 0, '', 0, '', 0, 0, 0)", (SERIAL,))
        args = {"cause": "unpaid_balance", "days": 7, "seq": 1}
        token = provider.token("recall", args, now=T0)
        conn.execute(
            "INSERT INTO directive (id, account_id, serial, decided_at, action, args, delivery, status,"
            " issued_at, key_id, not_before_core, expires_core, token) VALUES (1, 1, %s, 0, 'recall',"
            " %s, 'token', 'issued', 0, %s, %s, %s, %s)",
            (SERIAL, json.dumps(args), provider.billing.key_id, T0, T0 + 3600, token.hex()))
    return 1


def test_the_link_on_postgresql(pg_url):
    provider = Provider(0, SERIAL, start_s=T0)
    directive_id = _billing_tables(pg_url, provider)
    sim = Simulator(seed=1, identity=provider.identity(), start_s=T0, keep_timeline=False)
    Technician(sim, provider).install(vehicle="VIN-PG")

    async def calls():
        server = LinkServer(pg_url, clock=lambda: 1_800_000_000)
        host, port = await server.start("127.0.0.1", 0)
        first = await dial_async(sim, host, port)
        second = await dial_async(sim, host, port)
        await server.quiet()
        await server.close()
        return first, second, server.stats

    first, second, stats = asyncio.run(calls())
    assert first["ok"] and second["ok"] and stats.delivered == 1 and stats.sessions_ok == 2
    db = store.connect(pg_url)
    try:
        [delivery] = store.deliveries(db, SERIAL)
        assert (delivery["directive_id"], delivery["status"], delivery["answer"]) == (directive_id, "delivered", "token")
        assert store.records(db, SERIAL) == World.device_records(sim)
        handset = store.handset(db, SERIAL)
        assert handset["compliance"] == "early_service_recall" and handset["sessions"] == 2
        assert handset["last_seen"] == 1_800_000_000 and handset["log_problem"] is None
    finally:
        db.close()


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_final_delivery_state_is_never_downgraded(database, tmp_path, pg_url):
    if database == "postgresql":
        _billing_tables(pg_url, Provider(0, SERIAL, start_s=T0))
        url = pg_url
    else:
        url = str(tmp_path / "billing.db")
        conn = schema.connect(url)
        schema.create(conn)
        conn.close()
    db = store.connect(url)
    try:
        store.create(db)
        directive = {"id": 7, "action": "recall", "attempts": 0}
        store.record_attempt(db, directive, SERIAL, store.RETRY, None, "connection lost", 10)
        store.record_attempt(db, dict(directive, attempts=1), SERIAL, store.DELIVERED, "already_applied", "", 20)
        # a slower racing process that lost its connection writes after the delivery
        store.record_attempt(db, dict(directive, attempts=1), SERIAL, store.RETRY, None, "connection lost", 30)
        [row] = store.deliveries(db, SERIAL)
        assert (row["status"], row["answer"], row["attempts"], row["first_try_at"], row["at"]) == (
            "delivered", "already_applied", 2, 10, 20)
    finally:
        db.close()
