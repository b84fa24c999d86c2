"""The command side of a simulated core: one small interface, the same under both runtimes.

The simulator talks to the core only through `DeviceDriver.execute(op, args)`, with
plain JSON-able commands and results, so the very same code runs in-process under
CPython (sim/runtime.py) and inside real MicroPython (sim/runtime_mpy.py, where the
commands arrive over the VM's host call). MicroPython-compatible on purpose: no
CPython-only features, f-strings allowed.

Commands (op, args):
    boot      build the core on the hardware (a power-up: it reads its state from flash)
    step      run the core at args["now"] (monotonic ms); it polls the HAL inputs
    serial, key, sample, ignition
              an input changed on the hardware (bytes, a key, a breath sample, the
              ignition): the core is stepped at once, so it reacts at this instant
    line_reset a host opened the serial line anew: the core's frame decoder starts fresh
    status    the core's status as a dict
    power_off drop the core (the power is gone; only flash survives)
Every result has the core's next deadline (monotonic ms or None), its compliance and
session states, the event-log records written since the last result (decoded, JSON-able)
`down` when a flash write was cut by the power (the core stopped mid-operation), and
`reboot` when the core asks the bench to cut its power (BENCH POWER_CUT).

The core itself is built by a factory, `factory(hw, config, identity)`, returning an
object with the adapter interface (sim/core_adapter.py adapts firmware/device.py):
step(now_ms) (polling the HAL inputs), next_deadline(), reboot_requested(), line_reset(),
compliance(), session(), log_since(index) -> (records, next_index), status().
The log position survives power cycles here (record indices are never reused).
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


INPUTS = ("step", "serial", "key", "sample", "ignition")


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
        if op == "boot":
            self.core = self.factory(self.hw, self.config, self.identity)
            self.core.step(args["now"])
            return None
        if op == "power_off":
            self.core = None
            return None
        core = self.core
        if core is None:
            raise RuntimeError("the core is not running (boot first)")
        if op in INPUTS:
            core.step(args["now"])  # the core polls the HAL: ignition, keypad, sensor, serial
        elif op == "line_reset":
            reset = getattr(core, "line_reset", None)
            if reset is not None:
                reset()
            core.step(args["now"])
        elif op == "status":
            return {"status": jsonable(core.status())}
        else:
            raise ValueError("unknown driver command " + repr(op))
        return None

    def _result(self):
        core = self.core
        if core is None:
            return {"deadline": None}
        records = []
        if self.record_log:
            records, self.log_next = core.log_since(self.log_next)
        result = {
            "deadline": core.next_deadline(),
            "compliance": core.compliance(),
            "session": core.session(),
            "log": records,  # decoded records are JSON types already (see core_adapter)
        }
        if core.reboot_requested():
            result["reboot"] = True
        return result
