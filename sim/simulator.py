"""One simulated LCI-777 in its world: the clock, the hardware, the core, and the timeline.

`Simulator` owns the order of things. The world (a scenario, the handset, a fleet
driver, a serial client) acts through its methods — turn the key, blow, press keys, send
serial bytes, cut the power, let time pass — and each action reaches the core at the
current virtual time. `run_until(t)` moves the virtual clock straight from one device
deadline to the next (the core says when it next needs to run), never sleeping.

The core runs in a runtime (sim/runtime.py: CPython in-process; sim/runtime_mpy.py: real
MicroPython) behind the same command interface, so everything here is runtime-blind.
Everything the world and the device do is appended to `timeline` as plain dicts
{t, source, event, compliance, session, display, detail}; listeners get each as it comes.
"""

from __future__ import annotations

from collections.abc import Callable

from protocol import coretime
from sim.clock import VirtualClock
from sim.hardware import SimHardware

MS = 1
SECOND = 1000
MINUTE = coretime.MINUTE * SECOND
HOUR = coretime.HOUR * SECOND
DAY = coretime.DAY * SECOND

# a core that keeps asking to run at the same instant this often is stuck, not busy
MAX_STEPS_AT_ONE_INSTANT = 64


class SimError(Exception):
    """The simulation cannot go on (a stuck core, an action while the power is off ...)."""


class CoreBootError(SimError):
    """The core did not come up at a power-on (a configuration it refuses, a core bug):
    the handset stays dark instead of being simulated as a dead device."""


def format_t(t_ms: int) -> str:
    """Simulation time for people: 'd3 14:05:09.250' (day 0 is the first day)."""
    day, rest = divmod(t_ms, DAY)
    hours, rest = divmod(rest, HOUR)
    minutes, rest = divmod(rest, MINUTE)
    seconds, ms = divmod(rest, SECOND)
    text = f"d{day} {hours:02d}:{minutes:02d}:{seconds:02d}"
    return text + (f".{ms:03d}" if ms else "")


class Simulator:
    def __init__(
        self,
        *,
        seed: int | str = 0,
        runtime: str = "cpython",
        start_s: int = 0,
        config: dict | None = None,
        identity: dict | None = None,
        hardware: SimHardware | None = None,
        record_log: bool = True,
        core: str | None = None,
        keep_timeline: bool = True,
    ):
        from sim.runtime import DEFAULT_CORE, make_runtime

        self.seed = seed
        self.clock = VirtualClock(start_s)
        self.hw = hardware or SimHardware(self.clock, seed)
        if self.hw.clock is not self.clock:
            self.clock = self.hw.clock
        self.config = dict(config or {})
        self.identity = dict(identity or {})
        self.record_log = record_log
        self.timeline: list[dict] = []
        self.keep_timeline = keep_timeline  # False: entries only go to the listeners
        self.listeners: list[Callable[[dict], None]] = []
        self.serial_sinks: list[Callable[[bytes], None]] = []
        self.hw.serial.sink = self._serial_out
        self.powered = False
        self.state = {"compliance": "", "session": ""}
        self._deadline_ms: int | None = None  # world time of the core's next deadline
        self._power_back_at: int | None = None  # world time a timed power cut ends
        self._cut_for_ms: int | None = None  # length of the cut armed for a flash write
        self._steps = 0
        self.runtime = make_runtime(
            runtime, self.hw, self.config, self.identity, core or DEFAULT_CORE
        )
        self.runtime_name = runtime
        try:
            self.power_on(reason="first boot")
        except SimError:
            self.runtime.close()
            raise

    # -- timeline ---------------------------------------------------------------------------
    @property
    def t_ms(self) -> int:
        return self.clock.t_ms

    def display_text(self) -> str:
        return self.hw.display.text()

    def emit(self, source: str, event: str, detail=None) -> dict:
        entry = {
            "t": self.clock.t_ms / 1000,
            "source": source,
            "event": event,
            "compliance": self.state["compliance"],
            "session": self.state["session"],
            "display": [self.hw.display.line1, self.hw.display.line2],
            "detail": detail if detail is not None else {},
        }
        if self.keep_timeline:
            self.timeline.append(entry)
        for listener in self.listeners:
            listener(entry)
        return entry

    # -- talking to the core ------------------------------------------------------------------
    def _apply(self, result: dict, relay: bool, alarm: bool) -> dict:
        """Take in a runtime result: new state, new log records, next deadline, a power cut.
        `relay` and `alarm` are the outputs as they were before the command."""
        old = dict(self.state)
        self.state["compliance"] = result.get("compliance", old["compliance"])
        self.state["session"] = result.get("session", old["session"])
        for record in result.get("log", ()):
            self.emit("device", record.get("kind_name", "record"), record)
        if self.state != old and not result.get("log"):
            self.emit("device", "state", {"from": old, "to": dict(self.state)})
        deadline = result.get("deadline")
        self._deadline_ms = None if deadline is None else self.clock.from_monotonic(deadline)
        if result.get("fault"):
            self.emit("sim", "core_fault", {"error": result["fault"]})
        if result.get("down"):
            self._went_down("power cut during a flash write")
        elif result.get("reboot"):
            self._went_down("bench power cut")
            self.power_on("bench power cut over")
        self._relay_alarm(relay, alarm)
        return result

    def _relay_alarm(self, relay: bool, alarm: bool) -> None:
        if self.hw.relay.closed != relay:
            self.emit("device", "relay_closed" if self.hw.relay.closed else "relay_open")
        if self.hw.alarm.on != alarm:
            self.emit("device", "alarm_on" if self.hw.alarm.on else "alarm_off")

    def _call(self, op: str, **args) -> dict:
        if not self.powered:
            raise SimError(f"the handset is off (power cut): cannot {op}")
        args["now"] = self.clock.monotonic_ms()
        args["wall"] = self.clock.now()
        relay, alarm = self.hw.relay.closed, self.hw.alarm.on
        return self._apply(self.runtime.call(op, args), relay, alarm)

    # -- time --------------------------------------------------------------------------------------
    def next_deadline_ms(self) -> int | None:
        """World time (ms) at which the world next changes by itself (see next_event_ms)."""
        return self.next_event_ms()

    def run_until(self, t_ms: int) -> None:
        """Let the world run to `t_ms`, stepping the core at each of its deadlines."""
        if t_ms < self.clock.t_ms:
            raise SimError(f"cannot run back to {format_t(t_ms)} from {format_t(self.clock.t_ms)}")
        same_instant = 0
        last_at = -1
        while True:
            upcoming = self.next_event_ms()
            if upcoming is None or upcoming > t_ms:
                break
            at = max(upcoming, self.clock.t_ms)
            same_instant = same_instant + 1 if at == last_at else 0
            if same_instant > MAX_STEPS_AT_ONE_INSTANT:
                raise SimError(f"the core keeps asking to run at {format_t(at)}: stuck deadline")
            last_at = at
            self.clock.advance_to(at)
            if not self.powered:
                self.power_on("power restored")
                continue
            self._steps += 1
            self._call("step")
        self.clock.advance_to(t_ms)

    def next_event_ms(self) -> int | None:
        """World time of the next thing that happens by itself: a core deadline, or the
        power coming back after a timed cut."""
        if self.powered:
            return self._deadline_ms
        return self._power_back_at

    def advance(self, ms: int) -> None:
        self.run_until(self.clock.t_ms + ms)

    def step_now(self) -> dict:
        return self._call("step")

    # -- the driver ------------------------------------------------------------------------------
    def ignition(self, on: bool) -> None:
        self.hw.ignition.is_on = bool(on)
        self.emit("driver", "ignition_on" if on else "ignition_off")
        if self.powered:
            self._call("ignition", on=bool(on))

    def blow(self, brac: int, *, volume_ml: int | None = None, temperature_dc: int | None = None,
             complete: bool = True) -> None:
        kwargs = {"complete": complete}
        if volume_ml is not None:
            kwargs["volume_ml"] = volume_ml
        if temperature_dc is not None:
            kwargs["temperature_dc"] = temperature_dc
        sample = self.hw.sensor.blow(brac, **kwargs)
        self.emit("driver", "blow", {"brac": brac, "volume_ml": sample.volume_ml,
                                     "temperature_dc": sample.temperature_dc,
                                     "fuel_cell": sample.fuel_cell, "complete": complete})
        if self.powered:
            self._call("sample")

    def apply_gas(self, brac: int) -> None:
        sample = self.hw.sensor.apply_gas(brac)
        self.emit("tech", "dry_gas", {"brac": brac, "fuel_cell": sample.fuel_cell})
        if self.powered:
            self._call("sample")

    def press(self, keys: str) -> None:
        self.hw.keypad.press(keys)
        self.emit("driver", "keys", {"keys": keys})
        if self.powered:
            for _ in keys:
                self._call("key")

    def refuse(self) -> None:
        """The driver presses CANCEL on a pending test ('*' on the LCI-777 keypad)."""
        self.press("*")

    def tamper(self, kind: str) -> None:
        """'sensor' unplugs the breath sensor; 'relay' wires around the relay; 'clear' undoes both."""
        if kind == "sensor":
            self.hw.sensor.is_connected = False
        elif kind == "relay":
            self.hw.relay.bypassed = True
        elif kind == "clear":
            self.hw.sensor.is_connected = True
            self.hw.relay.bypassed = False
        else:
            raise SimError(f"unknown tamper {kind!r} (sensor, relay, clear)")
        self.emit("sim", "tamper", {"kind": kind})
        if self.powered:
            self._call("step")

    # -- serial ------------------------------------------------------------------------------------
    def serial_in(self, data: bytes) -> None:
        """Bytes from the host reach the handset now (lost while it is off)."""
        if not self.powered or not data:
            return
        self.hw.serial.feed(data)
        self._call("serial")

    def line_reset(self) -> None:
        """A host opened the line anew: unread input is gone, the core's decoder starts fresh."""
        if not self.powered:
            return
        self.hw.serial.drop_input()
        self._call("line_reset")

    def _serial_out(self, data: bytes) -> None:
        for sink in list(self.serial_sinks):
            sink(data)

    # -- power -----------------------------------------------------------------------------------------
    def power_cut(self, *, mid_write: bool = False, for_ms: int | None = None) -> None:
        """Cut the supply now — or, with mid_write, at a seeded byte within the next 64 bytes
        the core writes to flash (whenever that is). With for_ms the power comes back by
        itself that long after the cut; without, at power_on()."""
        if not self.powered:
            return
        self._cut_for_ms = for_ms
        if mid_write:
            from sim.hardware import seeded

            rng = seeded(self.seed, f"cut:{self.clock.t_ms}")
            self.hw.storage.cut_after(rng.randrange(0, 64))
            self.emit("sim", "power_cut_armed", {"within_bytes": 64})
            return
        self._went_down("power cut")

    def _went_down(self, why: str) -> None:
        if self._cut_for_ms is not None:
            self._power_back_at = self.clock.t_ms + self._cut_for_ms
            self._cut_for_ms = None
        self.powered = False
        self._deadline_ms = None
        self.runtime.power_off()
        self.hw.power_lost()
        self.state = {"compliance": "", "session": ""}
        self.emit("sim", "power_off", {"why": why})

    def power_on(self, reason: str = "power restored") -> None:
        if self.powered:
            return
        self.hw.storage.power_on()
        self.clock.reboot()
        self.powered = True
        self._power_back_at = None
        self.emit("sim", "power_on", {"why": reason})
        result = self._call("boot")
        if result.get("fault") and "compliance" not in result:  # the core object was never built
            self.powered = False
            self._deadline_ms = None
            self.emit("sim", "power_off", {"why": "the core did not boot"})
            raise CoreBootError(f"the simulated handset did not boot: {result['fault']}")

    def brownout(self, millivolts: int, ms: int) -> None:
        """The supply sags to `millivolts` for `ms`: below the reset threshold the handset reboots."""
        self.hw.supply.mv = millivolts
        self.emit("sim", "brownout", {"millivolts": millivolts, "ms": ms})
        if not self.hw.supply.powered:
            self._went_down("brown-out")
            self.run_until(self.clock.t_ms + ms)
            self.hw.supply.mv = 12600
            self.power_on("supply recovered")
        else:
            if self.powered:
                self._call("step")
            self.run_until(self.clock.t_ms + ms)
            self.hw.supply.mv = 12600

    # -- observation ------------------------------------------------------------------------------------
    def status(self) -> dict:
        """The core's own account of itself (a STATUS-like dict), plus the hardware's."""
        extra = self._call("status").get("status", {}) if self.powered else {}
        return {
            "t_ms": self.clock.t_ms,
            "powered": self.powered,
            "compliance": self.state["compliance"],
            "session": self.state["session"],
            "display": [self.hw.display.line1, self.hw.display.line2],
            "green": self.hw.display.green,
            "red": self.hw.display.red,
            "relay_closed": self.hw.relay.closed,
            "alarm": self.hw.alarm.on,
            "engine_can_start": self.hw.relay.engine_can_start() and self.hw.ignition.is_on,
            **extra,
        }

    def log_tail(self, n: int = 8) -> list[dict]:
        out = [e for e in self.timeline if e["source"] == "device" and "index" in e["detail"]]
        return out[-n:]

    def close(self) -> None:
        self.runtime.close()

    def __enter__(self) -> Simulator:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

