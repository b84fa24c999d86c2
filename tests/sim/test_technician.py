"""The simulated technician runs the real technician's tool: host_tools.visit.Visit for the
session and the calibration, host_tools.log_download and host_tools.logverify for the log."""

from __future__ import annotations

from pathlib import Path

import pytest

from host_tools.link import Nack
from host_tools.visit import MAX_CHECKS
from protocol import errors
from sim import driving
from sim.provider import Provider
from sim.simulator import HOUR, Simulator
from sim.technician import Technician


@pytest.fixture
def unit():
    provider = Provider(31)
    sim = Simulator(seed=31, identity=provider.identity(), config={"jurisdiction": "washington"})
    tech = Technician(sim, provider)
    tech.install(vehicle="T")
    yield sim, tech
    tech.close()
    sim.close()


def _events(sim, source="tech"):
    return [e for e in sim.timeline if e["source"] == source]


def test_the_next_service_date_is_counted_on_the_handsets_clock(unit):
    sim, tech = unit
    sim.advance(HOUR)
    tech.set_time(sim.clock.now() + 10 * 86400)  # the handset's clock now runs 10 days ahead
    assert sim.clock.now() - sim.clock.world_s() >= 10 * 86400 - 5
    tech.service_visit(next_service_days=45)
    close = [e for e in _events(sim) if e["event"] == "service_close"][-1]["detail"]
    device_now = sim.clock.now()
    assert abs(close["next_service"] - (device_now + 45 * 86400)) <= 5
    assert abs(sim.status()["service_due"] - close["next_service"]) <= 5
    assert sim.state["compliance"] == "normal"


def test_a_check_out_of_tolerance_is_retried_as_the_tool_does(unit, monkeypatch):
    sim, tech = unit
    sensor = sim.hw.sensor
    readings = iter([0, 0, 120, 0, 0, 0])  # as found, adjust, a check 0.012 high, then steady
    real = sensor.counts_for
    monkeypatch.setattr(sensor, "counts_for", lambda brac: real(brac) + next(readings))
    tech.open_service()
    cal = tech.calibrate(400)
    checks = [e["detail"] for e in _events(sim) if e["event"] == "cal_check"]
    assert [c["passed"] for c in checks] == [False, True, True]
    assert len(checks) <= MAX_CHECKS
    assert cal["passed"] and len(cal["readings"]) == 5
    tech.close_service()
    assert sim.state["compliance"] == "normal"
    assert "calibration_failed" not in sim.status()["causes"]


def test_each_download_fetches_only_what_is_new_anchored_to_what_is_held(unit):
    sim, tech = unit
    first = tech.download_log()
    assert first["chain_ok"] and first["first"] == 0 and first["records"] == first["next"] > 0
    assert Path(first["path"]).exists()
    driving.drive(sim, 30)
    second = tech.download_log()
    assert second["chain_ok"] and second["first"] == first["next"]  # only what is new
    assert second["records"] > 0 and second["path"] != first["path"]
    rows = Path(second["path"]).read_text().splitlines()
    assert len(rows) == 1 + second["records"]  # the anchor: the last record held
    assert rows[0] == Path(first["path"]).read_text().splitlines()[-1]
    tech.open_service()
    tech.close_service()
    close = [e for e in _events(sim) if e["event"] == "service_close"][-1]["detail"]
    assert close["downloaded"] == second["next"] == tech.downloaded
    assert [e for e in _events(sim, "device") if e["event"] == "log_downloaded"]


def test_a_copy_altered_on_the_laptop_breaks_the_next_downloads_chain(unit):
    sim, tech = unit
    log = tech.download_log()
    path = Path(log["path"])
    lines = path.read_text().splitlines()
    raw = lines[-1].split('"raw": "')[1][:20]
    flipped = raw[:-1] + ("0" if raw[-1] != "0" else "1")
    lines[-1] = lines[-1].replace(raw, flipped, 1)  # the record the next download anchors to
    path.write_text("\n".join(lines) + "\n")
    driving.drive(sim, 20)  # something new to fetch, chained to the altered record
    again = tech.download_log()
    assert not again["chain_ok"] and again["problem"]
    assert tech.downloaded == log["next"]  # nothing unverified is ever marked downloaded


def test_a_broken_chain_stops_the_visit_with_the_session_open(unit, monkeypatch):
    sim, tech = unit
    from host_tools import logverify

    monkeypatch.setattr(logverify, "verify_file", lambda path: {
        "chain_ok": False, "chain_problem": "record 3: hash mismatch", "records": 3})  # as written
    visit = tech.service_visit()
    assert not visit["complete"] and visit["chain_ok"] is False
    assert sim.state["compliance"] == "service"  # as the tool leaves it: resume later
    assert [e["event"] for e in _events(sim)][-2:] == ["log_download", "service_incomplete"]


def test_a_refused_step_is_recorded_then_raised(unit):
    sim, tech = unit
    with pytest.raises(Nack) as refused:
        tech.calibrate(400)  # no service session open
    assert refused.value.code == errors.NOT_IN_SERVICE
    last = _events(sim)[-1]
    assert last["event"] == "cal_as_found_refused" and last["detail"]["nack"] == "NOT_IN_SERVICE"


def test_the_laptops_copy_goes_with_the_technician():
    provider = Provider(32)
    sim = Simulator(seed=32, identity=provider.identity())
    tech = Technician(sim, provider)
    tech.install()
    path = Path(tech.download_log()["path"])
    assert path.exists()
    tech.close()
    sim.close()
    assert not path.exists() and not path.parent.exists()
