"""The runtimes a simulated core can run in, behind one `call(op, args) -> result` interface.

- "cpython" (default): the core runs in this process on the simulator's hardware objects;
- "micropython": the core runs in real MicroPython (sim/runtime_mpy.py), its hardware
  calls coming back to the same objects.

Both execute the same sim/device_driver.py commands, so the simulator above cannot tell
them apart except by speed. `core` names the factory that builds the core, as
"module:function" (importable under both runtimes); the default adapts firmware/device.py.
"""

from __future__ import annotations

import importlib

from sim.device_driver import DeviceDriver
from sim.runtime_failure import RuntimeFailure

DEFAULT_CORE = "sim.core_adapter:build"
RUNTIMES = ("cpython", "micropython")


def load_factory(path: str):
    module_name, _, attr = path.partition(":")
    if not attr:
        raise RuntimeFailure(f"core factory must be 'module:function', got {path!r}")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, attr)
    except (ImportError, AttributeError) as exc:
        raise RuntimeFailure(f"cannot load the core factory {path}: {exc}") from None


class CPythonRuntime:
    name = "cpython"

    def __init__(self, hw, config: dict, identity: dict, core: str = DEFAULT_CORE):
        self.driver = DeviceDriver(hw, load_factory(core), config, identity)

    def call(self, op: str, args: dict) -> dict:
        return self.driver.execute(op, args)

    def power_off(self) -> None:
        self.driver.execute("power_off", {})

    def close(self) -> None:
        self.driver.core = None


def make_runtime(name: str, hw, config: dict, identity: dict, core: str = DEFAULT_CORE):
    if name == "cpython":
        return CPythonRuntime(hw, config, identity, core)
    if name == "micropython":
        from sim.runtime_mpy import MicroPythonRuntime

        return MicroPythonRuntime(hw, config, identity, core)
    raise RuntimeFailure(f"unknown runtime {name!r} (choose from {', '.join(RUNTIMES)})")
