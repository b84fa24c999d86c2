"""Concurrent bookings of one slot: many threads, each with its own database connection, race
for a center's bays at the same instant (a barrier); exactly `bays` of them win and the rest are
told the slot is full. Run on a SQLite file and on a real PostgreSQL (pgserver), through the
`lci-server web manage shell` of a real deployment's settings."""

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
