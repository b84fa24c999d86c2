"""The link gives each call's STATUS to the client portal (`lci-server link --portal`): a
simulated handset (`lci-sim serve --uplink`) calls, and the portal's handset record — what the
client's account page shows — says what the handset reported, with source "link"."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from protocol.coretime import EPOCH_UNIX
from provider.link import store
from tests.sim.test_uplink import Lines

from .rig import World

BIN = Path(sys.executable).parent
SERIAL = "LCI-PORTAL-01"


def _env(db: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LCI_", "DJANGO_"))}
    env.update(LCI_DATABASE_URL=f"sqlite:///{db}", LCI_SECRET_KEY=secrets.token_urlsafe(50))
    return env


def _portal_reports(env: dict) -> list[str]:
    code = ("from provider.web.portal.models import HandsetReport\n"
            "for r in HandsetReport.objects.order_by('id'):\n"
            "    print(r.serial, r.compliance, r.source, r.recall_deadline is not None, r.display,"
            " int(r.reported_at.timestamp()), sep='|')\n")
    done = subprocess.run([BIN / "lci-server", "web", "manage", "shell", "-c", code], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return [line for line in done.stdout.splitlines() if line.count("|") == 5]


def test_a_handset_calling_over_the_link_is_reported_to_the_portal(tmp_path):
    now_core = int(time.time()) - EPOCH_UNIX
    world = World(tmp_path, [SERIAL], start=now_core - 8 * 86400)
    world.until_directive(SERIAL, "recall")
    keys = tmp_path / "keys"
    world.provider.save(keys)
    env = _env(world.db_path)
    migrate = subprocess.run([BIN / "lci-server", "web", "manage", "migrate", "--verbosity", "0"],
                             env=env, capture_output=True, text=True, timeout=180)
    assert migrate.returncode == 0, migrate.stderr
    assert _portal_reports(env) == []
    server = subprocess.Popen([BIN / "lci-server", "link", "--listen", "127.0.0.1:0", "--db",
                               world.db_path, "--portal"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = server.stdout.readline()
    assert line.startswith("listening on "), line + server.stderr.read()
    address = line.split()[2]
    handset = subprocess.Popen([BIN / "lci-sim", "serve", "--keys", str(keys), "--serial", SERIAL,
                                "--installed", "--no-pty", "--tcp", "0", "--uplink", address],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        call = Lines(handset).until(lambda text: "uplink_call" in text)
        served = Lines(server).until(lambda text: text.startswith(SERIAL))
    finally:
        handset.send_signal(signal.SIGTERM)
        handset.communicate(timeout=30)
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=30)
    assert "ok=true" in call and served.startswith(f"{SERIAL}: ok; delivered recall #1 (token)")
    assert err == ""
    link_row = store.handset(world.link_db(), SERIAL)
    reports = _portal_reports(env)
    assert len(reports) == link_row["sessions"]  # one report per call that read STATUS
    serial, compliance, source, has_deadline, display, reported_at = reports[-1].split("|")
    assert (serial, compliance, source, has_deadline) == (
        SERIAL, "early_service_recall", "link", "True")
    assert compliance == link_row["compliance"] and reported_at == str(link_row["last_seen"])
    assert display == " / ".join(x.strip() for x in link_row["display"].split("|") if x.strip())


def test_the_portal_not_ready_is_one_line_and_exit_2(tmp_path):
    world = World(tmp_path, [SERIAL])
    env = _env(world.db_path)  # not migrated: the portal's tables are missing
    done = subprocess.run([BIN / "lci-server", "link", "--listen", "127.0.0.1:0", "--db",
                           world.db_path, "--portal"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("lci-server link: the portal cannot take handset reports")
    assert "lci-server web manage migrate" in done.stderr and done.stderr.count("\n") == 1
