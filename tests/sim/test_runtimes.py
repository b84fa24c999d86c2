"""The same scenarios give identical timelines under CPython and under real MicroPython.

The MicroPython runtime runs the unchanged core on MicroPython's unix port, its hardware calls and
serial bytes bridged back to the simulator; every random number comes from the host's
seeded streams, so the JSON Lines of a run must match byte for byte.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sim import scenario
from sim.runtime import RuntimeFailure
from sim.simulator import Simulator
from sim.timeline import to_json
from sim.transport import open_client

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
QUICK = ["failed_start_test", "power_cut_lockout", "unpaid_balance"]
ALL = sorted(p.stem for p in EXAMPLES.glob("*.toml"))


def _lines(name: str, runtime: str) -> list[str]:
    result = scenario.run(scenario.load(EXAMPLES / f"{name}.toml"), runtime)
    assert result.ok, (runtime, result.failures)
    return [to_json(entry) for entry in result.timeline]


def _compare(name: str) -> None:
    cpython = _lines(name, "cpython")
    micropython = _lines(name, "micropython")
    assert len(cpython) == len(micropython)
    for a, b in zip(cpython, micropython, strict=True):
        assert a == b
    assert any('"source":"device"' in line for line in cpython)


@pytest.mark.parametrize("name", QUICK)
def test_identical_timelines_under_both_runtimes(name):
    _compare(name)


@pytest.mark.soak
@pytest.mark.parametrize("name", [n for n in ALL if n not in QUICK])
def test_identical_timelines_under_both_runtimes_all_examples(name):
    _compare(name)


def test_micropython_serves_the_wire_and_reports_its_heap():
    sim = Simulator(seed=1, runtime="micropython")
    try:
        client = open_client(sim)
        assert client.ping(b"from the host") == b"from the host"
        info = client.hello()
        assert info["board"] == "sim" and "factory" in info["capabilities"]
        heap = sim.runtime.heap()
        assert heap["heap_used"] > 0 and heap["heap_free"] > 0
    finally:
        sim.close()


def test_a_dead_vm_is_a_clear_error():
    with pytest.raises(RuntimeFailure, match="MicroPython VM exited"):
        Simulator(seed=1, runtime="micropython", core="no_such_module:build")


def test_unknown_runtime():
    with pytest.raises(RuntimeFailure, match="unknown runtime"):
        Simulator(runtime="jython")
