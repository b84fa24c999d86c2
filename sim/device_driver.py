"""The command side of a simulated core: one small interface, the same under both runtimes.

The simulator talks to the core only through `DeviceDriver.execute(op, args)`, with
plain JSON-able commands and results, so the very same code runs in-process under
CPython (sim/runtime.py) and inside real MicroPython (sim/runtime_mpy.py, where the
commands arrive over the VM's host call). MicroPython-compatible on purpose: no
CPython-only features, f-strings allowed.

Commands (op, args):
    boot      build the core on the hardware (a power-up: it reads its state from flash)
    step      run the core at args["now"] (monotonic ms)
    serial    bytes arrived on the serial port (the core reads them from the HAL)
    key       a keypad key is ready;  sample  a breath sample is ready
    ignition  the ignition changed (args["on"])
    status    the core's status as a dict
    power_off drop the core (the power is gone; only flash survives)
Every result has the core's next deadline (monotonic ms or None), its compliance and
session states, the event-log records written since the last result (decoded, JSON-able)
and `down` when a flash write was cut by the power (the core stopped mid-operation).

The core itself is built by a factory, `factory(hw, config, identity)`, returning an
object with the adapter interface (sim/core_adapter.py adapts firmware/device.py):
step(now_ms), serial(data), key(k), sample(s), ignition(on), next_deadline(),
compliance(), session(), log_since(index) -> (records, next_index), status().
"""

try:
    from firmware.ramflash import PowerCut
except ImportError:  # pragma: no cover - the ramflash double ships with the firmware tests
    PowerCut = OSError


def jsonable(value):
    """The value with bytes as hex and tuples as lists, so both runtimes return the same."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        out = {}
        for key in value:
            out[str(key)] = jsonable(value[key])
        return out
    return value


class DeviceDriver:
    def __init__(self, hw, factory, config=None, identity=None):
        self.hw = hw
        self.factory = factory
        self.config = config or {}
        self.identity = identity or {}
        self.core = None
        self.log_next = 0
        self.record_log = True

    def execute(self, op, args):
        try:
            extra = self._run(op, args)
        except PowerCut:
            self.core = None
            return {"down": True, "deadline": None}
        except Exception as exc:  # a core bug: reported, the simulation goes on
            result = self._result()
            result["fault"] = f"{type(exc).__name__}: {exc}"
            return result
        result = self._result()
        if extra:
            result.update(extra)
        return result

    def _run(self, op, args):
        core = self.core
        if op == "boot":
            self.core = self.factory(self.hw, self.config, self.identity)
            self.log_next = self.core.log_start() if hasattr(self.core, "log_start") else 0
            self.core.step(args["now"])
            return None
        if op == "power_off":
            self.core = None
            return None
        if core is None:
            raise RuntimeError("the core is not running (boot first)")
        if op == "step":
            core.step(args["now"])
        elif op == "serial":
            core.serial(self.hw.serial.read())
            core.step(args["now"])
        elif op == "key":
            key = self.hw.keypad.read()
            if key is not None:
                core.key(key)
            core.step(args["now"])
        elif op == "sample":
            sample = self.hw.sensor.take()
            if sample is not None:
                core.sample(sample)
            core.step(args["now"])
        elif op == "ignition":
            core.ignition(bool(args["on"]))
            core.step(args["now"])
        elif op == "status":
            return {"status": jsonable(core.status())}
        elif op == "log_records":
            return {"records": jsonable(core.log_since(args["start"])[0])}
        else:
            raise ValueError(f"unknown driver command {op!r}")
        return None

    def _result(self):
        core = self.core
        if core is None:
            return {"deadline": None}
        records = []
        if self.record_log:
            records, self.log_next = core.log_since(self.log_next)
        return {
            "deadline": core.next_deadline(),
            "compliance": core.compliance(),
            "session": core.session(),
            "log": jsonable(records),
        }
