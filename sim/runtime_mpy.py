"""`--runtime micropython`: the core under real MicroPython, its hardware on this host.

The core runs in a child process of MicroPython's unix port (`micropython -X heapsize=HEAP
-m sim.guest_main`, the package's sources on MICROPYPATH), the same VM the firmware bundle
runs on as the unix board. The two sides speak JSON lines over the child's stdin/stdout,
one thread of control at a time: the simulator sends a command and serves the guest's
hardware calls until the command's result comes back, so there is no thread, no queue and
no race. A hardware call (part, method, args) is executed on the simulator's own hardware
objects (sim/hardware.py): the same flash, keypad, sensor, serial port and seeded RNG the
CPython runtime uses, so a scenario's timeline is the same under both runtimes. Each
command carries the input snapshot and each result the queued outputs (relay, display,
serial bytes ...), applied here in order (see sim/guest_hal.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
from pathlib import Path

from firmware import hal
from host_tools.dev.unix_board import BoardError, micropython
from sim.runtime_failure import RuntimeFailure

ROOT = Path(__file__).resolve().parents[1]  # where firmware/, protocol/ and sim/ are importable
# The guest compiles the core and the driver from source (a board gets .mpy), then runs
# with the VM's own GC; this leaves room for the compiler and the largest command.
HEAP = 1024 * 1024

# what the guest may call on the host's hardware, and how values cross the boundary
_HEX_IN = {("storage", "write"): 1, ("storage", "append"): 1}
_HEX_OUT = {("storage", "read"), ("serial", "read"), ("random", "bytes")}
_ALLOWED = {
    ("clock", "set_now"),
    ("keypad", "read"),
    ("sensor", "take"),
    ("sensor", "bench_sample"),
    ("storage", "read"),
    ("storage", "write"),
    ("storage", "append"),
    ("storage", "rename"),
    ("storage", "remove"),
    ("storage", "size"),
    ("storage", "names"),
    ("serial", "read"),
    ("random", "bits"),
    ("random", "bytes"),
}
# outputs the guest queues during a command and the host applies after it, in order
_OUTPUTS = {
    ("relay", "set"),
    ("alarm", "set"),
    ("display", "show"),
    ("display", "leds"),
    ("sensor", "purge"),
    ("serial", "write"),
}


class MicroPythonRuntime:
    name = "micropython"

    def __init__(self, hw: hal.Hardware, config: dict, identity: dict, core: str):
        self.hw = hw
        self.hw_calls = 0
        self._stderr = tempfile.TemporaryFile()
        try:
            command = [micropython(), "-X", f"heapsize={HEAP}", "-m", "sim.guest_main"]
        except BoardError as exc:
            raise RuntimeFailure(f"MicroPython VM failed to start: {exc}") from None
        env = dict(os.environ, MICROPYPATH=str(ROOT))
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self._stderr, env=env, cwd=tempfile.gettempdir())
        start = {"core": core, "config": config, "identity": identity, "board": hw.board,
                 "caps": getattr(hw, "caps", 0)}
        self._send(start)
        if not self._serve().get("ready"):
            raise RuntimeFailure("MicroPython VM did not start the core")

    # -- the pipe ----------------------------------------------------------------------------------
    def _send(self, message: dict) -> None:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")
            self.process.stdin.flush()
        except (BrokenPipeError, ValueError):
            raise RuntimeFailure(self._why_dead()) from None

    def _serve(self) -> dict:
        """Answer the guest's hardware calls until it sends a result (or dies)."""
        assert self.process.stdout is not None
        while True:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeFailure(self._why_dead())
            message = json.loads(line)
            if "hw" in message:
                try:
                    reply = {"ok": True, "value": self._hw(*message["hw"])}
                except Exception as exc:  # reported to the guest, which raises it
                    reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
                self._send(reply)
                continue
            if "result" in message:
                return message["result"]
            return message

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
        if key in (("sensor", "take"), ("sensor", "bench_sample")):
            if value is None:
                return None
            return [value.volume_ml, value.temperature_dc, value.fuel_cell, bool(value.complete)]
        return value

    # -- the simulator's side -----------------------------------------------------------------------
    def _inputs(self) -> dict:
        hw = self.hw
        return {
            "ign": bool(hw.ignition.on()),
            "mv": hw.supply.millivolts(),
            "conn": bool(hw.sensor.connected()),
            "keys": hw.keypad.pending(),
            "samples": hw.sensor.pending(),
            "rx": hw.serial.pending(),
        }

    def _apply_outputs(self, outputs: list) -> None:
        for part, method, args in outputs:
            if (part, method) not in _OUTPUTS:
                raise RuntimeFailure(f"the guest may not output {part}.{method}")
            if (part, method) == ("serial", "write"):
                args = [bytes.fromhex(args[0])]
            getattr(getattr(self.hw, part), method)(*args)

    def call(self, op: str, args: dict) -> dict:
        if op != "gc":
            args = dict(args, **{"in": self._inputs()})
        self._send({"op": op, "args": args})
        result = self._serve()
        self._apply_outputs(result.pop("out", ()))
        return result

    def _why_dead(self) -> str:
        try:
            code = self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self._stderr.seek(0)
        text = self._stderr.read().decode("utf-8", "replace")
        tail = text.strip().splitlines()[-6:]
        return f"MicroPython VM exited with {code}: " + " / ".join(tail)

    def heap(self) -> dict:
        """Free and used heap inside the VM (after a collection)."""
        return self.call("gc", {})

    def power_off(self) -> None:
        self.call("power_off", {})

    def close(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(RuntimeFailure):
                self._send({"op": "exit"})
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            with contextlib.suppress(OSError):
                pipe.close()
        self._stderr.close()
