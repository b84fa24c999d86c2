"""The simulator core: deadline stepping on the virtual clock, power, the real core behind it."""

from __future__ import annotations

import pytest

from sim import driving
from sim.provider import Provider
from sim.simulator import DAY, HOUR, MINUTE, CoreBootError, SimError, Simulator, format_t
from sim.technician import Technician
from tests.sim.conftest import FAKE_CORE
from tests.sim.fake_core import FakeCore


def _installed(seed=2, **kw):
    provider = Provider(seed)
    sim = Simulator(seed=seed, identity=provider.identity(), **kw)
    tech = Technician(sim, provider)
    tech.install(vehicle="T")
    return sim, tech


def test_format_t():
    assert format_t(0) == "d0 00:00:00"
    assert format_t(DAY + 2 * HOUR + 3 * MINUTE + 4250) == "d1 02:03:04.250"


def test_a_month_idle_takes_a_handful_of_steps_not_millions():
    sim, tech = _installed()
    before = sim._steps
    sim.advance(30 * DAY)
    # the core wakes only at its own deadlines (service reminders, countdown ticks)
    assert sim._steps - before < 200
    assert sim.t_ms == 30 * DAY
    tech.close()
    sim.close()


def test_the_core_runs_at_its_deadline_exactly():
    sim, tech = _installed(3)
    trip = driving.start(sim, 0)
    assert trip == "pass"
    due = sim.next_deadline_ms()
    assert due is not None and due > sim.t_ms
    sim.run_until(due - 1)
    assert sim.state["session"] == "engine_enabled"
    sim.run_until(due)
    assert sim.state["session"] == "retest_due"  # the first retest deadline, to the ms
    assert 5 * MINUTE <= due - trip_start(sim) <= 15 * MINUTE + 10_000
    tech.close()
    sim.close()


def trip_start(sim):
    return [e for e in sim.timeline if e["event"] == "engine_start"][-1]["t"] * 1000


def test_a_stuck_core_is_reported_not_looped_on(monkeypatch):
    sim = Simulator(seed=1, core=FAKE_CORE)
    monkeypatch.setattr(FakeCore, "next_deadline", lambda self: self.now_ms)  # always "now"
    sim.step_now()
    with pytest.raises(SimError, match="stuck deadline"):
        sim.advance(1000)
    sim.close()


def test_nothing_reaches_a_core_without_power():
    sim = Simulator(seed=1, core=FAKE_CORE)
    sim.power_cut()
    assert not sim.powered
    sim.ignition(True)  # the key turns; the handset is dark
    with pytest.raises(SimError):
        sim.step_now()
    sim.power_on()
    assert sim.state["session"] == "test_requested"  # it sees the ignition at boot
    sim.close()


def test_timed_power_cut_comes_back_by_itself():
    sim, tech = _installed(4)
    sim.power_cut(for_ms=30_000)
    sim.advance(29_999)
    assert not sim.powered
    sim.advance(1)
    assert sim.powered
    assert [e["event"] for e in sim.timeline[-4:]].count("boot") == 1
    tech.close()
    sim.close()


def test_mid_write_cut_lands_in_the_next_flash_write_and_keeps_the_log_intact():
    sim, tech = _installed(5)
    tech.directive("lockout")
    sim.power_cut(mid_write=True, for_ms=5000)
    assert sim.powered  # armed, not cut yet
    sim.ignition(True)  # the start attempt is written: the cut lands there
    assert not sim.powered
    sim.advance(5000)
    assert sim.powered and sim.state["compliance"] == "lockout"
    sim.ignition(False)
    log = tech.download_log()
    assert log["chain_ok"], log.get("problem")
    tech.close()
    sim.close()


def test_bench_power_cut_over_the_wire_reboots_the_handset():
    sim, tech = _installed(6)
    from protocol import messages

    with tech.cable() as client:
        client.bench(messages.BENCH_POWER_CUT, 1)
    events = [e["event"] for e in sim.timeline]
    assert "power_off" in events and events.count("boot") == 2
    assert sim.powered
    tech.close()
    sim.close()


def test_brownout_below_threshold_reboots():
    sim, tech = _installed(7)
    sim.brownout(5000, 2000)
    assert sim.powered
    assert [e["event"] for e in sim.timeline].count("boot") == 2
    sim.brownout(11000, 2000)  # a sag the handset rides out
    assert [e["event"] for e in sim.timeline].count("boot") == 2
    tech.close()
    sim.close()


def test_drive_with_each_retest_behaviour():
    sim, tech = _installed(8)
    for behaviour, expected in (("pass", "pass"), ("skip", "skipped"), ("refuse", "refuse"), ("fail", "fail")):
        trip = driving.drive(sim, 40, retests=behaviour)
        assert trip.started and trip.retests >= 1
        assert trip.retest_results[0] == expected
        assert sim.state["session"] == "ignition_off"
        sim.advance(HOUR)
    status = sim.status()
    assert status["violations"] >= 3
    tech.close()
    sim.close()


def test_failed_start_ends_the_trip():
    sim, tech = _installed(9)
    trip = driving.drive(sim, 30, brac=400)
    assert trip.start_result == "fail" and not trip.started
    assert not sim.hw.ignition.is_on
    assert sim.state["session"] == "temporary_lockout"  # the hold outlasts the ignition
    tech.close()
    sim.close()


@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
def test_a_core_that_cannot_boot_stops_the_simulation_with_its_reason(runtime):
    with pytest.raises(CoreBootError) as caught:
        Simulator(seed=1, runtime=runtime, config={"jurisdiction": "mars"})
    assert str(caught.value) == ("the simulated handset did not boot: "
                                 "ConfigError: unknown jurisdiction 'mars'")
