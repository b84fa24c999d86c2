"""Fixtures of the simulator tests: simulators on the fake core and, once it exists, the real one."""

from __future__ import annotations

import pytest

from sim.simulator import Simulator

FAKE_CORE = "tests.sim.fake_core:build"


@pytest.fixture
def fake_sim():
    sim = Simulator(seed=1, core=FAKE_CORE)
    yield sim
    sim.close()
