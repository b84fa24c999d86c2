"""Fleet mode: many devices, randomized drivers, statistics; seeded and fault-free."""

from __future__ import annotations

import pytest

from sim import fleet


def test_a_small_fleet_runs_clean_and_counts_what_happened():
    stats = fleet.run(devices=3, days=20, seed=5)
    assert stats.core_faults == 0 and stats.sim_errors == 0, stats.errors
    assert stats.trips >= 3 * 20
    assert stats.tests >= stats.trips  # a start test per trip, plus retests
    assert stats.passes + stats.fails == stats.tests
    assert stats.retests > 0
    assert stats.chain_breaks == 0
    assert stats.log_records > stats.tests
    text = fleet.report(stats)
    for word in ("breath tests", "violations", "recalls", "lockouts", "service visits"):
        assert word in text


def test_the_same_seed_gives_the_same_fleet():
    one = fleet.run(devices=2, days=10, seed=9).as_dict()
    two = fleet.run(devices=2, days=10, seed=9).as_dict()
    other = fleet.run(devices=2, days=10, seed=10).as_dict()
    for stats in (one, two, other):
        stats.pop("wall_s")
        stats.pop("compression")
    assert one == two
    assert one != other


@pytest.mark.soak
def test_a_bigger_fleet_for_a_quarter():
    stats = fleet.run(devices=10, days=90, seed=1)
    assert stats.core_faults == 0 and stats.sim_errors == 0, stats.errors
    assert stats.service_visits > 0
