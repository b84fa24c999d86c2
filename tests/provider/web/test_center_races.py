"""Concurrent bookings of one slot: many threads, each with its own database connection, race
for a center's bays at the same instant (a barrier); exactly `bays` of them win and the rest are
told the slot is full. Run on a SQLite file and on a real PostgreSQL (pgserver), through the
`lci-server web manage shell` of a real deployment's settings. And on one PostgreSQL database
shared with billing: an installation booked at a center (billing's 48 h fee) and completed
(billing installed)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys

import pytest

from tests.provider.conftest import fresh_postgres_url

RACE = """
import json, threading
from datetime import UTC, date, datetime, time
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from provider.web.centers import slots
from provider.web.centers.models import Center, OpeningHours
from provider.web.portal.models import Appointment, ClientAccount

center = Center.objects.create(name="Race", code="race", street="1 A St", city="B", state="MN",
                               postal_code="1", email="r@example.com", bays={bays})
OpeningHours.objects.create(center=center, weekday=0, opens=time(8), closes=time(16))
at = datetime(2026, 1, 12, 10, 0, tzinfo=UTC)
clients = [ClientAccount.objects.create(ref=f"A{{n:06d}}", user=get_user_model().objects
           .create_user(f"c{{n}}")) for n in range({racers})]
gate = threading.Barrier({racers})
won, full = [], []

def race(client):
    try:
        appointment = Appointment(client=client, kind="removal")
        gate.wait()
        with transaction.atomic():
            slots.take_bay(appointment, center, at)
        won.append(appointment.bay)
    except slots.SlotError:
        full.append(client.ref)
    finally:
        connection.close()

threads = [threading.Thread(target=race, args=(c,)) for c in clients]
for t in threads: t.start()
for t in threads: t.join()
rows = Appointment.objects.filter(center=center, at=at, status="booked").count()
print(json.dumps({{"won": sorted(won), "full": len(full), "rows": rows}}))
"""


def _race(url: str, bays: int, racers: int) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LCI_", "DJANGO_"))}
    env.update(LCI_DATABASE_URL=url, LCI_SECRET_KEY=secrets.token_urlsafe(50))
    for args in (["manage", "migrate", "--verbosity", "0"],
                 ["manage", "shell", "-c", RACE.format(bays=bays, racers=racers)]):
        done = subprocess.run([sys.executable, "-m", "provider.cli", "web", *args], env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("bays", [1, 3])
def test_concurrent_bookings_never_exceed_the_bays_on_sqlite(tmp_path, bays):
    out = _race(f"sqlite:///{tmp_path / 'race.db'}", bays, racers=8)
    assert out == {"won": list(range(bays)), "full": 8 - bays, "rows": bays}


def test_concurrent_bookings_never_exceed_the_bays_on_postgresql(postgres_server):
    out = _race(fresh_postgres_url(postgres_server), 3, racers=12)
    assert out == {"won": [0, 1, 2], "full": 9, "rows": 3}


FLOW = """
import json
from datetime import UTC, date, datetime, time
from django.contrib.auth import get_user_model
from provider.web.centers import booking, completion
from provider.web.centers.models import Center, CenterDocument, CenterPrice, OpeningHours
from provider.web.portal import billing
from provider.web.portal.models import ClientAccount

center = Center.objects.create(name="PG", code="pg", street="1 A St", city="B", state="MN",
                               postal_code="1", email="r@example.com", bays=1)
OpeningHours.objects.create(center=center, weekday=2, opens=time(8), closes=time(16))
for kind in ("agreement", "insurance"):
    CenterDocument.objects.create(center=center, kind=kind, received_on=date(2025, 1, 1),
                                  expires_on=date(2027, 1, 1))
CenterPrice.objects.create(center=center, kind="installation", cents=7500)
user = get_user_model().objects.create_user("pg@example.com")
client = ClientAccount.objects.create(user=user, ref="{ref}")
vehicle = dict(vehicle_year=2003, vehicle_make="Honda", vehicle_model="Accord",
               vin="1HGCM82633A004352")
at = datetime(2026, 1, 7, 10, 0, tzinfo=UTC)
appt = booking.book(client, center, "installation", at, vehicle, user)
moved = billing.account("{ref}")["appointment_at"]
completion.complete(appt, serial="LCI7-0077", outcome="ok", receipt="applied", by=user)
view = billing.account("{ref}")
print(json.dumps({{"moved": moved.isoformat(), "charged": appt.charged,
                  "installed": view["installed_at"] is not None, "rating": center.rating}}))
"""


def test_a_booking_and_its_completion_on_one_postgresql_database_with_billing(postgres_server):
    from provider.billing import opening, schema
    from provider.billing.engine import Engine
    from provider.billing.policy import load_policy

    from .conftest import START, T

    url = fresh_postgres_url(postgres_server)
    conn = schema.connect(url)
    schema.create(conn)
    Engine.initialize(conn, load_policy(), T(START), 3)
    conn.close()
    engine = opening.open_engine(url)
    ref = engine.open_account(serial="LCI7-0077", email="pg@example.com", state="MN",
                              county="Hennepin", token="tok_pg", pay_initial=True,
                              appointment=T("2026-01-06T10:00"))
    fee = engine.reschedule_quote(ref, T("2026-01-07T10:00"))["total"]
    engine.disconnect()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LCI_", "DJANGO_"))}
    env.update(LCI_DATABASE_URL=url, LCI_SECRET_KEY=secrets.token_urlsafe(50))
    for args in (["manage", "migrate", "--verbosity", "0"],
                 ["manage", "shell", "-c", FLOW.format(ref=ref)]):
        done = subprocess.run([sys.executable, "-m", "provider.cli", "web", *args], env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert fee > 0  # 25 h notice: the 48 h rescheduling fee
    assert out == {"moved": "2026-01-07T10:00:00+00:00", "charged": fee, "installed": True,
                   "rating": 100}
