"""Calibration over the wire on the simulator: BENCH BLOW samples through the simulated cell.

The technician's tool (host_tools/visit.py, as `lci-tool calibrate` runs it) supplies the
dry gas of a bench handset with BENCH BLOW. For that to calibrate anything, the core must
take the sample from the simulated fuel cell (sim/hardware.py: bench_sample) instead of
computing it from its own gain — which firmware/device.py's bench_blow does when the
hardware has a sensor model. The tests run it under both runtimes.
"""

from __future__ import annotations

import pytest

from firmware.breath import GAIN_ONE
from host_tools.visit import Visit
from protocol import messages
from sim.provider import Provider
from sim.simulator import DAY, Simulator
from sim.technician import Technician
from sim.transport import open_client

REFERENCE = 400  # 0.040 g/210L dry gas
NOISE = 6  # 4 sigma of the sensor's noise (1.5 units)


def _aged_unit(runtime="cpython", core=None, cell_days=200):
    """An installed unit whose fuel cell has aged `cell_days` since its last calibration
    (the factory's: gain GAIN_ONE)."""
    provider = Provider(5)
    kwargs = {"core": core} if core else {}
    sim = Simulator(seed=5, runtime=runtime, identity=provider.identity(), **kwargs)
    tech = Technician(sim, provider)
    tech.install(vehicle="BENCH")
    tech.close()
    sim.hw.sensor.cell_born_ms -= cell_days * DAY
    return sim, provider


def _lci_tool_calibration(sim, provider) -> dict:
    """What `lci-tool calibrate` does: Visit over the wire, dry gas by BENCH BLOW."""
    client = open_client(sim)
    try:
        client.hello()
        visit = Visit(client, signer_loader=lambda: provider.technician, say=lambda text: None)
        assert visit.bench
        return visit.calibrate(REFERENCE, next_service_days=60)
    finally:
        client.close()


def _expected(sim) -> float:
    return REFERENCE * sim.hw.sensor.sensitivity_ppm() / 1_000_000


def _bench_read(sim) -> int:
    """One more BENCH BLOW of the reference in a service session: what the unit reads now."""
    client = open_client(sim)
    try:
        client.hello()
        visit = Visit(client, signer_loader=lambda: Provider(5).technician, say=lambda text: None)
        visit.open_session()
        client.bench(messages.BENCH_BLOW, REFERENCE, 1500, 345)
        return client.calibrate(messages.CAL_AS_FOUND, REFERENCE)["measured"]
    finally:
        client.close()


@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
def test_an_aged_cell_reads_off_before_adjustment_and_true_right_after(runtime):
    sim, provider = _aged_unit(runtime)
    try:
        expected = _expected(sim)
        assert expected <= REFERENCE - 10  # 200 days at 150 ppm/day: 3 % low
        receipt = _lci_tool_calibration(sim, provider)
        as_found, adjust, *checks = receipt["steps"]
        assert as_found["step"] == "as found" and abs(as_found["measured"] - expected) <= NOISE
        assert adjust["step"] == "adjust" and adjust["measured"] == REFERENCE
        assert checks and all(abs(c["measured"] - REFERENCE) <= NOISE for c in checks)
        assert receipt["passed"] and receipt["after"]["compliance"] == "normal"
        assert sim.status()["gain"] > GAIN_ONE  # the new gain makes up for the lost sensitivity
        assert abs(_bench_read(sim) - REFERENCE) <= NOISE  # right after: the reference reads true
    finally:
        sim.close()


def test_both_runtimes_read_the_same_bench_samples():
    readings = []
    for runtime in ("cpython", "micropython"):
        sim, provider = _aged_unit(runtime)
        try:
            readings.append([s["measured"] for s in _lci_tool_calibration(sim, provider)["steps"]])
        finally:
            sim.close()
    assert readings[0] == readings[1]


def test_a_far_gone_cell_is_found_outside_tolerance():
    sim, provider = _aged_unit("cpython", cell_days=1000)  # 15 % low
    try:
        receipt = _lci_tool_calibration(sim, provider)
        assert not receipt["steps"][0]["within"]
        assert receipt["passed"]  # adjustable: a new gain brings it back
    finally:
        sim.close()


def test_the_firmware_core_itself_reads_bench_blows_through_the_simulated_cell():
    sim, provider = _aged_unit()
    try:
        receipt = _lci_tool_calibration(sim, provider)
        assert abs(receipt["steps"][0]["measured"] - _expected(sim)) <= NOISE
    finally:
        sim.close()
