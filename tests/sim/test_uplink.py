"""The simulated handset's modem: coverage schedules, and `lci-sim serve` / `lci-sim fleet`
calling a real `lci-server link` process."""

from __future__ import annotations

import json
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from protocol.coretime import EPOCH_UNIX
from provider.link import store
from sim import fleet
from sim.simulator import DAY, HOUR, MINUTE
from sim.uplink import Coverage, CoverageError
from tests.provider.link.rig import World

BIN = Path(sys.executable).parent


def test_daily_windows_spans_and_overrides():
    c = Coverage("on 08:00-18:00")
    assert not c.covered(7 * HOUR + 59 * MINUTE) and c.covered(8 * HOUR) and not c.covered(18 * HOUR)
    assert c.covered(3 * DAY + 12 * HOUR)
    night = Coverage("on 20:00-06:00")
    assert night.covered(23 * HOUR) and night.covered(DAY + 5 * HOUR) and not night.covered(12 * HOUR)
    away = Coverage("off d21-d28")
    assert away.covered(20 * DAY) and not away.covered(21 * DAY) and away.covered(28 * DAY)
    both = Coverage("on 07:00-22:00; off d3@12:00-d5")
    assert both.covered(3 * DAY + 11 * HOUR) and not both.covered(3 * DAY + 13 * HOUR)
    assert not both.covered(4 * DAY + 8 * HOUR) and both.covered(5 * DAY + 8 * HOUR)
    assert Coverage("always").covered(123) and not Coverage("never").covered(123)
    two = Coverage("on 08:00-12:00,14:00-24:00")
    assert two.covered(23 * HOUR) and not two.covered(13 * HOUR)


def test_calls_at_the_start_of_coverage_and_then_every_interval():
    c = Coverage("on 08:00-18:00")
    assert c.dial_times(0, DAY, 4 * HOUR) == [8 * HOUR, 12 * HOUR, 16 * HOUR]
    # coverage already there when the span starts: a call at once, then every interval from it
    assert c.dial_times(9 * HOUR, DAY, 4 * HOUR) == [9 * HOUR, 13 * HOUR, 17 * HOUR]
    assert Coverage("never").dial_times(0, 3 * DAY, HOUR) == []
    gone = Coverage("on 08:00-18:00; off d1-d2")
    assert gone.dial_times(0, 3 * DAY, 10 * HOUR) == [8 * HOUR, 2 * DAY + 8 * HOUR]


@pytest.mark.parametrize("spec", ["sometimes", "on", "on 25:00-26:00", "on 08:00-08:00", "off d5-d3",
                                  "on 8-18", "on 08:60-09:00", "up 08:00-09:00"])
def test_a_schedule_that_cannot_be_read_is_one_clear_error(spec):
    if spec == "on":
        assert Coverage(spec).covered(0)  # "on" alone is "always"
        return
    with pytest.raises(CoverageError) as err:
        Coverage(spec)
    assert "\n" not in str(err.value)


def test_lci_sim_rejects_coverage_without_an_uplink():
    done = subprocess.run([BIN / "lci-sim", "serve", "--coverage", "on 08:00-18:00"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "--coverage needs --uplink HOST:PORT" in done.stderr
    done = subprocess.run([BIN / "lci-sim", "fleet", "--uplink", "127.0.0.1:1", "--coverage", "on 25:00-26:00"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "not a time of day" in done.stderr


class Lines:
    """A process's stdout read line by line, each wait bounded (no sleeping)."""

    def __init__(self, process: subprocess.Popen):
        self.process = process
        self.selector = selectors.DefaultSelector()
        self.selector.register(process.stdout, selectors.EVENT_READ)
        self.seen: list[str] = []

    def until(self, predicate, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.selector.select(deadline - time.monotonic()):
                line = self.process.stdout.readline()
                if not line:
                    break
                self.seen.append(line)
                if predicate(line):
                    return line
        raise AssertionError("not seen; output was:\n" + "".join(self.seen))


def _link_server(db_path: str) -> tuple[subprocess.Popen, str]:
    server = subprocess.Popen([BIN / "lci-server", "link", "--listen", "127.0.0.1:0", "--db", db_path],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = server.stdout.readline()
    assert line.startswith("listening on "), line + server.stderr.read()
    return server, line.split()[2]


def test_lci_sim_serve_calls_the_link_server_when_in_coverage(tmp_path):
    serial = "LCI-SERVE-01"
    now_core = int(time.time()) - EPOCH_UNIX
    world = World(tmp_path, [serial], start=now_core - 8 * 86400)
    world.until_directive(serial, "recall")
    keys = tmp_path / "keys"
    world.provider.save(keys)
    server, address = _link_server(world.db_path)
    handset = subprocess.Popen([BIN / "lci-sim", "serve", "--keys", str(keys), "--serial", serial,
                                "--installed", "--no-pty", "--tcp", "0", "--uplink", address],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = Lines(handset)
        lines.until(lambda line: line.startswith("uplink: "))
        call = lines.until(lambda line: "uplink_call" in line)
        served = Lines(server).until(lambda line: line.startswith(serial))
    finally:
        handset.send_signal(signal.SIGTERM)
        handset.communicate(timeout=30)
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=30)
    assert "ok=true" in call and f"server={address}" in call
    assert served.startswith(f"{serial}: ok; delivered recall #1 (token)")
    [delivery] = store.deliveries(world.link_db(), serial)
    assert delivery["status"] == "delivered"
    assert store.handset(world.link_db(), serial)["compliance"] == "early_service_recall"


def test_lci_sim_fleet_on_the_data_link(tmp_path):
    devices = 6
    serials = [fleet.serial_of(n) for n in range(devices)]
    # billing a week ahead of the fleet's first day: a recall for each unit when it starts
    world = World(tmp_path, serials, start=fleet.START_S - 7 * 86400)
    world.until_directive(serials[-1], "recall")
    keys = tmp_path / "keys"
    world.provider.save(keys)
    server, address = _link_server(world.db_path)
    try:
        done = subprocess.run([BIN / "lci-sim", "fleet", "--devices", str(devices), "--days", "2",
                               "--keys", str(keys), "--uplink", address, "--coverage", "on 08:00-18:00",
                               "--dial-every", "300", "--json"],
                              capture_output=True, text=True, timeout=300)
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=30)
    assert done.returncode == 0, done.stderr
    stats = json.loads(done.stdout)
    assert stats["calls"] >= devices * 4 and stats["calls_failed"] == 0
    assert stats["directives_applied"] == devices
    deliveries = store.deliveries(world.link_db())
    assert sorted(d["serial"] for d in deliveries) == serials
    assert all(d["status"] == "delivered" for d in deliveries)
    assert len(store.handsets(world.link_db())) == devices
