"""Fixtures of the HIL suite: one target per --device entry, a client brought to a known state."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.hil.target import SIMULATED, Target, env_keys, from_option


def pytest_generate_tests(metafunc):
    if "target" in metafunc.fixturenames:
        devices = from_option(metafunc.config.getoption("--device"))
        metafunc.parametrize("target", devices, indirect=True, scope="session")


_TARGETS: dict[str, Target] = {}


@pytest.fixture(scope="session")
def target(request, tmp_path_factory):
    name = request.param
    if name not in _TARGETS:
        keys_option = request.config.getoption("--hil-keys")
        board_keys = Path(keys_option) if keys_option else env_keys()
        simulated = name in SIMULATED
        # a device path or URL (/dev/ttyACM0, socket://host:port) is no folder name
        folder = "keys-" + re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_")
        _TARGETS[name] = Target(
            name, tmp_path_factory.mktemp(folder),
            board_keys=None if simulated else board_keys,
        )
        request.addfinalizer(_TARGETS[name].stop)
    return _TARGETS[name]


@pytest.fixture
def handset(target):
    """A fresh USB session with the handset, in a known state (installed, normal, parked)."""
    client = target.client()
    client.hello()
    target.known_state(client)
    yield client
    client.close()


@pytest.fixture
def bench_inputs(target):
    if "bench" not in target.caps:
        pytest.skip(f"{target.name} has no bench inputs (ignition, breath) to drive it")


@pytest.fixture
def fast_clock(target):
    if not target.fast_clock:
        pytest.skip(f"{target.name} runs in real time: waiting out its timers takes too long")
