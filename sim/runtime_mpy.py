"""`--runtime micropython`: the core under real MicroPython, its hardware on this host.

A thread runs sim/guest_main.py in the WASI MicroPython VM (host_tools/mpy_wasi.run_source,
repository mounted read-only at /repo). Two host functions connect it to the simulator:

- "next": the guest hands over the result of its last command and blocks here until the
  simulator sends the next one (a queue), so the VM runs only while the simulator waits
  for it — one thread of control at a time, no races;
- "hw": a hardware call (part, method, args) executed on the simulator's own hardware
  objects (sim/hardware.py): the same relay, display, flash, serial port and seeded RNG
  the CPython runtime uses, so a scenario's timeline is the same under both runtimes.

Serial bytes therefore reach whatever endpoint the simulator serves (pty, TCP, in-process).
"""

from __future__ import annotations

import json
import queue
import threading
from pathlib import Path

from firmware import hal
from host_tools.mpy_wasi import run_source
from sim.runtime import RuntimeFailure

REPO = Path(__file__).resolve().parents[1]
GUEST = (Path(__file__).parent / "guest_main.py").read_text()
_DONE = object()

# what the guest may call on the host's hardware, and how values cross the boundary
_HEX_IN = {("storage", "write"): 1, ("storage", "append"): 1, ("serial", "write"): 0}
_HEX_OUT = {("storage", "read"), ("serial", "read"), ("random", "bytes")}
_ALLOWED = {
    ("clock", "set_now"),
    ("relay", "set"),
    ("alarm", "set"),
    ("display", "show"),
    ("display", "leds"),
    ("keypad", "read"),
    ("sensor", "take"),
    ("sensor", "connected"),
    ("sensor", "purge"),
    ("ignition", "on"),
    ("supply", "millivolts"),
    ("storage", "read"),
    ("storage", "write"),
    ("storage", "append"),
    ("storage", "rename"),
    ("storage", "remove"),
    ("storage", "size"),
    ("storage", "names"),
    ("serial", "read"),
    ("serial", "write"),
    ("random", "bits"),
    ("random", "bytes"),
}


class MicroPythonRuntime:
    name = "micropython"

    def __init__(self, hw: hal.Hardware, config: dict, identity: dict, core: str,
                 timeout_s: float | None = None):
        self.hw = hw
        self.hw_calls = 0
        self._commands: queue.Queue = queue.Queue()
        self._results: queue.Queue = queue.Queue()
        self._first = True
        self.result = None
        prelude = (
            f"CORE = {core!r}\nCONFIG = {json.dumps(config)!r}\nIDENTITY = {json.dumps(identity)!r}\n"
            f"BOARD = {hw.board!r}\n"
            "import json as _j\nCONFIG = _j.loads(CONFIG)\nIDENTITY = _j.loads(IDENTITY)\n"
        )
        self._source = prelude + GUEST
        self._thread = threading.Thread(target=self._run, args=(timeout_s,), daemon=True,
                                        name="lci-sim-micropython")
        self._thread.start()

    # -- the VM thread ---------------------------------------------------------------------------
    def _run(self, timeout_s) -> None:
        try:
            self.result = run_source(
                self._source,
                mounts={"/repo": REPO},
                host_functions={"next": self._next, "hw": self._hw},
                timeout_s=timeout_s,
            )
        except Exception as exc:  # the VM could not even start
            self.result = exc
        finally:
            self._results.put(_DONE)

    def _next(self, result):
        if self._first:
            self._first = False
        else:
            self._results.put(result)
        return self._commands.get()

    def _hw(self, part: str, method: str, args: list):
        if (part, method) not in _ALLOWED:
            raise ValueError(f"the guest may not call {part}.{method}")
        self.hw_calls += 1
        key = (part, method)
        if key in _HEX_IN:
            i = _HEX_IN[key]
            args = list(args)
            args[i] = bytes.fromhex(args[i])
        value = getattr(getattr(self.hw, part), method)(*args)
        if key in _HEX_OUT:
            return None if value is None else bytes(value).hex()
        if key == ("sensor", "take"):
            if value is None:
                return None
            return [value.volume_ml, value.temperature_dc, value.fuel_cell, bool(value.complete)]
        return value

    # -- the simulator's side -----------------------------------------------------------------------
    def call(self, op: str, args: dict) -> dict:
        if not self._thread.is_alive() and self._results.empty():
            raise RuntimeFailure(self._why_dead())
        self._commands.put({"op": op, "args": args})
        result = self._results.get()
        if result is _DONE:
            raise RuntimeFailure(self._why_dead())
        return result

    def _why_dead(self) -> str:
        result = self.result
        if isinstance(result, Exception):
            return f"MicroPython VM failed to start: {result}"
        if result is None:
            return "MicroPython VM is not running"
        tail = (result.stderr or result.stdout).strip().splitlines()[-6:]
        return f"MicroPython VM exited with {result.exit_code}: " + " / ".join(tail)

    def heap(self) -> dict:
        """Free and used heap inside the VM (after a collection)."""
        return self.call("gc", {})

    def power_off(self) -> None:
        self.call("power_off", {})

    def close(self) -> None:
        if self._thread.is_alive():
            self._commands.put({"op": "exit"})
            self._thread.join(timeout=10)
