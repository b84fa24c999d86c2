"""Deadlines on the simulated handset run at the pace of time, however often it is read.

Reading STATUS between a clock advance and the core's next step must not count the time
that passed twice (the wall clock read fresh against a run clock not yet stepped)."""

from __future__ import annotations

import pytest

from sim.provider import Provider
from sim.simulator import DAY, Simulator
from sim.technician import Technician


@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
def test_status_read_every_day_does_not_bring_the_service_recall_forward(runtime):
    provider = Provider(5)
    sim = Simulator(seed=5, runtime=runtime, identity=provider.identity())
    tech = Technician(sim, provider)
    tech.install(vehicle="T")
    try:
        for day in range(1, 59):
            sim.advance(DAY)
            status = sim.status()
            # the service interval is 60 days: no recall, no lockout before it
            assert status["compliance"] == "normal", (day, status["compliance"], status["display"])
        sim.advance(3 * DAY)
        assert sim.status()["compliance"] == "early_service_recall"
    finally:
        tech.close()
        sim.close()
