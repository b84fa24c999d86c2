"""Scenarios: a TOML file of timed steps with expectations, run against a simulated LCI-777.

`load(path)` parses and checks a scenario — a malformed one raises ScenarioError naming
the file, the line and the problem (TOML syntax errors carry tomllib's line; for a step
that makes no sense the line of that step, or of its offending key, is found in the
text). `run(scenario, runtime=...)` plays it on a Simulator with a Provider and a
Technician and returns a Result: the timeline and the expectations that failed.
docs/scenarios.md is the reference of the format; examples/*.toml are worked examples.

Time: each step happens `after` the previous one finished (default 0 s), or `at` a
time since the start ("d1 08:00", "90m"); the world runs from one device deadline to
the next in between, never sleeping.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from host_tools.link import LinkError, Nack
from protocol import coretime, errors
from sim import driving
from sim.provider import DEFAULT_SERIAL, Provider
from sim.simulator import DAY, HOUR, MINUTE, SECOND, Simulator, format_t
from sim.technician import Technician, nack_name

BRAC_UNITS = 10_000  # 0.0001 g/210L units per g/210L
DEFAULT_START = "2026-01-05T07:00:00Z"

# action: {key: (type, default)}; type "duration" is a text like "5m"; "brac" g/210L
ACTIONS: dict[str, dict[str, tuple]] = {
    "install": {"vehicle": (str, ""), "order_id": (str, "")},
    "work_order": {"order": (str, None), "vehicle": (str, ""), "order_id": (str, "")},
    "ignition": {"on": (bool, None)},
    "blow": {"brac": ("brac", 0.0), "volume_ml": (int, None), "temperature_c": (float, None),
             "complete": (bool, True)},
    "keys": {"keys": (str, None)},
    "refuse": {},
    "wait": {"for": ("duration", None)},
    "drive": {"minutes": (int, 30), "brac": ("brac", 0.0), "retests": (str, "pass"),
              "retest_brac": ("brac", None), "respond": ("duration", "30s")},
    "power_cut": {"mid_write": (bool, False), "for": ("duration", "5s")},
    "brownout": {"millivolts": (int, 6000), "for": ("duration", "2s")},
    "tamper": {"kind": (str, None)},
    "directive": {"action": (str, None), "days": (int, None)},
    "unlock_token": {"seconds": (int, 0)},
    "unlock_code": {"action": (str, "unlock")},
    "service": {"next_service_days": (int, 60), "calibrate": (bool, True),
                "reference": ("brac", 0.040), "download": (bool, True)},
    "service_open": {},
    "service_close": {"next_service_days": (int, 60)},
    "calibrate": {"reference": ("brac", 0.040)},
    "log_download": {},
    "set_time": {"shift": ("signed_duration", None)},
    "check": {},
}
STEP_KEYS = {"do", "after", "at", "expect", "note"}
EXPECT_KEYS = {
    "compliance": str, "session": str, "relay": bool, "alarm": bool, "display": str,
    "causes": list, "violations": int, "events": list, "no_events": list, "refused": str,
    "chain_ok": bool, "powered": bool,
}
SCENARIO_KEYS = {"name", "description", "seed", "start", "serial", "runtime", "state"}
COMPLIANCE = ("normal", "early_service_recall", "lockout", "code_unlock", "service", "removed")
SESSIONS = ("ignition_off", "test_requested", "temporary_lockout", "engine_enabled",
            "retest_due", "retest_in_progress", "violation")
NACK_NAMES = {name for name in dir(errors) if name.isupper() and name != "MEANINGS"}

_DURATION = re.compile(r"^\s*(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m)?\s*(?:(\d+)\s*s)?\s*$")
_AT = re.compile(r"^\s*d(\d+)\s+(\d{1,2}):(\d{2})(?::(\d{2}))?\s*$")


class ScenarioError(Exception):
    """A malformed scenario: str() is 'FILE:LINE: problem'."""

    def __init__(self, path: str, line: int | None, problem: str):
        self.path = path
        self.line = line
        self.problem = problem
        super().__init__(f"{path}:{line}: {problem}" if line else f"{path}: {problem}")


@dataclass
class Step:
    number: int  # 1-based
    line: int
    do: str
    args: dict
    after_ms: int | None
    at_ms: int | None
    expect: dict
    note: str = ""


@dataclass
class Scenario:
    path: str
    name: str
    description: str
    seed: int
    start_s: int
    serial: str
    config: dict
    steps: list[Step]
    state: str | None = None  # a folder that keeps the handset's flash (sim/diskflash.py)


@dataclass
class Result:
    scenario: Scenario
    timeline: list[dict] = field(default_factory=list)
    failures: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


# ---- parsing --------------------------------------------------------------------------------
def parse_duration(text) -> int:
    """'90s', '5m', '1h30m', '2d' or a number of seconds -> milliseconds."""
    if isinstance(text, int) and not isinstance(text, bool) and text >= 0:
        return text * SECOND
    if not isinstance(text, str):
        raise ValueError(f"a duration is text like '5m' or '1h30m', got {text!r}")
    match = _DURATION.match(text)
    if not match or not any(match.groups()):
        raise ValueError(f"cannot read duration {text!r} (write e.g. '90s', '5m', '1h30m', '2d')")
    d, h, m, s = (int(g) if g else 0 for g in match.groups())
    return d * DAY + h * HOUR + m * MINUTE + s * SECOND


def parse_at(text) -> int:
    """'d1 08:00' (day 1 of the run, 08:00 after its start) or a duration since the start."""
    if isinstance(text, str):
        match = _AT.match(text)
        if match:
            day, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
            if hours > 23 or minutes > 59 or seconds > 59:
                raise ValueError(f"no such time of day in {text!r}")
            return day * DAY + hours * HOUR + minutes * MINUTE + seconds * SECOND
    return parse_duration(text)


def _core_seconds(value, what: str) -> int:
    if isinstance(value, datetime):
        stamp = value if value.tzinfo else value.replace(tzinfo=UTC)
    elif isinstance(value, str):
        try:
            stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{what} must be an ISO date-time like {DEFAULT_START!r}") from None
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=UTC)
    else:
        raise ValueError(f"{what} must be an ISO date-time like {DEFAULT_START!r}")
    seconds = coretime.from_unix(stamp.timestamp())
    if seconds < 0:
        raise ValueError(f"{what} is before the core's epoch (2020-01-01)")
    return seconds


class _Lines:
    """Where things are in the scenario text (tomllib gives no positions)."""

    def __init__(self, text: str):
        self.lines = text.splitlines()
        self.steps = [i + 1 for i, line in enumerate(self.lines)
                      if re.match(r"^\s*\[\[\s*step\s*\]\]", line)]
        self.tables = [i + 1 for i, line in enumerate(self.lines) if re.match(r"^\s*\[", line)]

    def step(self, index: int) -> int | None:
        return self.steps[index] if index < len(self.steps) else None

    def key(self, start: int | None, key: str) -> int | None:
        """The line of `key = ...` (or `key.x = ...`) in the table starting at line `start`."""
        if start is None:
            return None
        pattern = re.compile(rf"^\s*{re.escape(key)}\s*(=|\.)")
        for number in range(start + 1, len(self.lines) + 1):
            if number in self.tables:
                break
            if pattern.match(self.lines[number - 1]):
                return number
        return start

    def table(self, name: str) -> int | None:
        for i, line in enumerate(self.lines):
            if re.match(rf"^\s*\[\s*{re.escape(name)}\s*\]", line):
                return i + 1
        return None


def _check_type(value, kind, what: str):
    if kind == "duration":
        return parse_duration(value)
    if kind == "signed_duration":
        if isinstance(value, str) and value.strip().startswith("-"):
            return -parse_duration(value.strip()[1:])
        return parse_duration(value.lstrip("+") if isinstance(value, str) else value)
    if kind == "brac":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
            raise ValueError(f"{what} is a BrAC in g/210L, like 0.020 (got {value!r})")
        return int(round(value * BRAC_UNITS))
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{what} must be a number, got {value!r}")
        return float(value)
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ValueError(f"{what} must be an integer, got {value!r}")
    if not isinstance(value, kind):
        raise ValueError(f"{what} must be {kind.__name__}, got {value!r}")
    return value


def _parse_step(raw, index: int, where: _Lines, path: str) -> Step:
    line = where.step(index) or 0
    number = index + 1

    def fail(problem: str, key: str | None = None):
        raise ScenarioError(path, where.key(line, key) if key else line, f"step {number}: {problem}")

    if not isinstance(raw, dict):
        fail("a step is a [[step]] table")
    do = raw.get("do")
    if do is None:
        fail("no `do` (what happens in this step)")
    if do not in ACTIONS:
        fail(f"unknown action {do!r}; actions: {', '.join(ACTIONS)}", "do")
    spec = ACTIONS[do]
    args = {}
    for key, value in raw.items():
        if key in STEP_KEYS:
            continue
        if key not in spec:
            allowed = ", ".join(sorted(spec)) or "none"
            fail(f"{do!r} has no setting {key!r} (settings: {allowed})", key)
        try:
            args[key] = _check_type(value, spec[key][0], key)
        except ValueError as exc:
            fail(str(exc), key)
    for key, (kind, default) in spec.items():
        if key not in args:
            if default is None and kind not in ("brac",) and key not in ("volume_ml", "temperature_c", "days"):
                fail(f"{do!r} needs {key!r}")
            args[key] = _check_type(default, kind, key) if default is not None else None
    _check_action_values(do, args, fail)
    after_ms = at_ms = None
    if "after" in raw and "at" in raw:
        fail("give `after` or `at`, not both", "at")
    try:
        if "after" in raw:
            after_ms = parse_duration(raw["after"])
        if "at" in raw:
            at_ms = parse_at(raw["at"])
    except ValueError as exc:
        fail(str(exc), "after" if "after" in raw else "at")
    expect = raw.get("expect", {})
    if not isinstance(expect, dict):
        fail("`expect` is a table, e.g. expect = { compliance = \"lockout\" }", "expect")
    for key, value in expect.items():
        if key not in EXPECT_KEYS:
            fail(f"cannot expect {key!r} (expectations: {', '.join(sorted(EXPECT_KEYS))})", "expect")
        if not isinstance(value, EXPECT_KEYS[key]) or (EXPECT_KEYS[key] is int and isinstance(value, bool)):
            fail(f"expect.{key} must be {EXPECT_KEYS[key].__name__}, got {value!r}", "expect")
    if "compliance" in expect and expect["compliance"] not in COMPLIANCE:
        fail(f"no compliance state {expect['compliance']!r} ({', '.join(COMPLIANCE)})", "expect")
    if "session" in expect and expect["session"] not in SESSIONS:
        fail(f"no session state {expect['session']!r} ({', '.join(SESSIONS)})", "expect")
    if "refused" in expect and expect["refused"] not in NACK_NAMES:
        fail(f"no NACK named {expect['refused']!r} (see protocol/errors.py)", "expect")
    note = raw.get("note", "")
    if not isinstance(note, str):
        fail("`note` is text", "note")
    return Step(number, line, do, args, after_ms, at_ms, expect, note)


def _check_action_values(do: str, args: dict, fail) -> None:
    if do == "drive" and args["retests"] not in driving.RETEST_BEHAVIOURS:
        fail(f"retests must be one of {', '.join(driving.RETEST_BEHAVIOURS)}", "retests")
    if do == "tamper" and args["kind"] not in ("sensor", "relay", "clear"):
        fail("tamper kind is 'sensor', 'relay' or 'clear'", "kind")
    if do == "directive" and args["action"] not in ("recall", "lockout", "clear"):
        fail("a directive's action is 'recall', 'lockout' or 'clear'", "action")
    if do == "work_order" and args["order"] not in ("installation", "removal", "exchange",
                                                    "vehicle_switch", "handset_exchange"):
        fail("order is installation, removal, exchange, vehicle_switch or handset_exchange", "order")
    if do == "unlock_code" and args["action"] not in ("unlock", "clear"):
        fail("unlock_code's action is 'unlock' or 'clear'", "action")
    if do == "keys":
        bad = [k for k in args["keys"] if k not in "0123456789*#ABCD"]
        if bad or not args["keys"]:
            fail("keys are 0-9, *, #, A-D", "keys")


def loads(text: str, path: str = "<scenario>") -> Scenario:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = re.search(r"\(at line (\d+), column (\d+)\)", message)
        line = int(match.group(1)) if match else None
        problem = re.sub(r"\s*\(at line \d+, column \d+\)", "", message)
        raise ScenarioError(path, line, f"TOML: {problem}") from None
    where = _Lines(text)
    head = data.get("scenario", {})
    head_line = where.table("scenario")
    if not isinstance(head, dict):
        raise ScenarioError(path, head_line, "[scenario] is a table")
    for key in head:
        if key not in SCENARIO_KEYS:
            raise ScenarioError(path, where.key(head_line, key),
                                f"[scenario] has no setting {key!r} ({', '.join(sorted(SCENARIO_KEYS))})")
    for key in data:
        if key not in ("scenario", "config", "step"):
            raise ScenarioError(path, where.table(key) or where.key(1, key),
                                f"unknown table {key!r} (tables: [scenario], [config], [[step]])")
    seed = head.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ScenarioError(path, where.key(head_line, "seed"), "seed must be an integer")
    try:
        start_s = _core_seconds(head.get("start", DEFAULT_START), "start")
    except ValueError as exc:
        raise ScenarioError(path, where.key(head_line, "start"), str(exc)) from None
    config = data.get("config", {})
    if not isinstance(config, dict):
        raise ScenarioError(path, where.table("config"), "[config] is a table")
    _check_config(config, path, where)
    raw_steps = data.get("step", [])
    if not isinstance(raw_steps, list) or not raw_steps:
        raise ScenarioError(path, None, "no steps: add [[step]] tables")
    steps = [_parse_step(raw, i, where, path) for i, raw in enumerate(raw_steps)]
    _check_times(steps, path)
    state = head.get("state")
    if state is not None:
        if not isinstance(state, str) or not state.strip():
            raise ScenarioError(path, where.key(head_line, "state"), "state is a folder path (text)")
        state = str(Path(path).parent / state)  # relative to the scenario file
    return Scenario(
        path=path,
        name=str(head.get("name", Path(path).stem)),
        description=str(head.get("description", "")),
        seed=seed,
        start_s=start_s,
        serial=str(head.get("serial", DEFAULT_SERIAL)),
        config=config,
        steps=steps,
        state=state,
    )


def _check_config(config: dict, path: str, where: _Lines) -> None:
    from firmware.config import Config, ConfigError

    try:
        Config(**config)
    except ConfigError as exc:
        key = next((k for k in config if k in str(exc)), None)
        line = where.key(where.table("config"), key) if key else where.table("config")
        raise ScenarioError(path, line, f"[config]: {exc}") from None
    except TypeError as exc:
        raise ScenarioError(path, where.table("config"), f"[config]: {exc}") from None


def _check_times(steps: list[Step], path: str) -> None:
    last_at = -1
    for step in steps:
        if step.at_ms is not None:
            if step.at_ms < last_at:
                raise ScenarioError(path, step.line, f"step {step.number}: at {format_t(step.at_ms)} "
                                    f"is before an earlier step's at {format_t(last_at)}")
            last_at = step.at_ms


def load(path: str | Path) -> Scenario:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(str(path), None, f"cannot read: {exc}") from None
    return loads(text, str(path))


# ---- running --------------------------------------------------------------------------------
class Runner:
    def __init__(self, scenario: Scenario, runtime: str = "cpython", *, seed: int | None = None,
                 listener=None, state: str | None = None):
        self.scenario = scenario
        self.seed = scenario.seed if seed is None else seed
        self.provider = Provider(self.seed, scenario.serial, start_s=scenario.start_s)
        hardware = None
        state = state or scenario.state
        if state:  # the flash on disk: a later run (or `lci-sim serve --state`) continues it
            from sim.clock import VirtualClock
            from sim.diskflash import DiskFlash
            from sim.hardware import SimHardware

            hardware = SimHardware(VirtualClock(scenario.start_s), self.seed, storage=DiskFlash(state))
        self.sim = Simulator(seed=self.seed, runtime=runtime, start_s=scenario.start_s,
                             config=scenario.config, identity=self.provider.identity(),
                             hardware=hardware)
        if listener is not None:
            self.sim.listeners.append(listener)
        self.tech = Technician(self.sim, self.provider)
        self.failures: list[dict] = []
        self._mark = 0

    def close(self) -> None:
        self.tech.close()
        self.sim.close()

    def run(self) -> Result:
        sim = self.sim
        # the runtime is not on the timeline: both runtimes must give the same one
        sim.emit("scenario", "start", {"name": self.scenario.name, "seed": self.seed})
        for step in self.scenario.steps:
            self._mark = len(sim.timeline)  # expect.events: anything since the last step
            if step.at_ms is not None:
                if step.at_ms < sim.t_ms:
                    self._fail(step, "at", format_t(step.at_ms), f"already {format_t(sim.t_ms)}")
                else:
                    sim.run_until(step.at_ms)
            elif step.after_ms:
                sim.run_until(sim.t_ms + step.after_ms)
            sim.emit("scenario", "step", {"n": step.number, "do": step.do, "line": step.line,
                                          **({"note": step.note} if step.note else {})})
            refused = None
            try:
                self.context = {}
                getattr(self, "do_" + step.do)(step, **step.args)
            except Nack as nack:
                refused = nack_name(nack.code)
            except LinkError as exc:
                self._fail(step, "link", "a reply", str(exc))
            self._check(step, refused)
        sim.emit("scenario", "end", {"failures": len(self.failures)})
        return Result(self.scenario, sim.timeline, self.failures)

    # -- expectations ------------------------------------------------------------------------------
    def _fail(self, step: Step, key: str, expected, actual) -> None:
        failure = {"step": step.number, "line": step.line, "key": key,
                   "expected": expected, "actual": actual}
        self.failures.append(failure)
        self.sim.emit("scenario", "expect_failed", failure)

    def _check(self, step: Step, refused: str | None) -> None:
        expect = step.expect
        sim = self.sim
        if refused != expect.get("refused"):
            self._fail(step, "refused", expect.get("refused"), refused)
        state = sim.state
        hw = sim.hw
        actual = {
            "compliance": state["compliance"],
            "session": state["session"],
            "relay": hw.relay.closed,
            "alarm": hw.alarm.on,
            "powered": sim.powered,
        }
        for key in ("compliance", "session", "relay", "alarm", "powered"):
            if key in expect and expect[key] != actual[key]:
                self._fail(step, key, expect[key], actual[key])
        if "display" in expect:
            shown = f"{hw.display.line1}|{hw.display.line2}"
            if expect["display"].upper() not in shown.upper():
                self._fail(step, "display", expect["display"], shown)
        if "causes" in expect or "violations" in expect:
            status = sim.status()
            if "causes" in expect and sorted(expect["causes"]) != sorted(status.get("causes", [])):
                self._fail(step, "causes", sorted(expect["causes"]), sorted(status.get("causes", [])))
            if "violations" in expect and expect["violations"] != status.get("violations"):
                self._fail(step, "violations", expect["violations"], status.get("violations"))
        seen = {entry["event"] for entry in sim.timeline[self._mark:]}
        for name in expect.get("events", []):
            if name not in seen:
                self._fail(step, "events", name, "not seen")
        for name in expect.get("no_events", []):
            if name in seen:
                self._fail(step, "no_events", name, "seen")
        if "chain_ok" in expect and self.context.get("chain_ok") != expect["chain_ok"]:
            self._fail(step, "chain_ok", expect["chain_ok"], self.context.get("chain_ok"))
        if not any(f["step"] == step.number for f in self.failures) and expect:
            sim.emit("scenario", "expect_ok", {"step": step.number, "checked": sorted(expect)})

    # -- actions -----------------------------------------------------------------------------------
    def do_install(self, step, vehicle, order_id):
        self.tech.install(vehicle, order_id)

    def do_work_order(self, step, order, vehicle, order_id):
        self.tech.work_order(order, vehicle, order_id)

    def do_ignition(self, step, on):
        self.sim.ignition(on)

    def do_blow(self, step, brac, volume_ml, temperature_c, complete):
        temperature = None if temperature_c is None else int(round(temperature_c * 10))
        self.sim.blow(brac, volume_ml=volume_ml, temperature_dc=temperature, complete=complete)

    def do_keys(self, step, keys):
        self.sim.press(keys)

    def do_refuse(self, step):
        self.sim.refuse()

    def do_wait(self, step, **args):
        self.sim.advance(args["for"])

    def do_drive(self, step, minutes, brac, retests, retest_brac, respond):
        trip = driving.drive(self.sim, minutes, brac=brac, retests=retests,
                             retest_brac=retest_brac, respond_s=respond // SECOND)
        self.sim.emit("driver", "trip", trip.as_dict())

    def do_power_cut(self, step, mid_write, **args):
        """A cut now, back after `for`; with mid_write the cut waits for the core's next
        flash write (the steps go on meanwhile), and the power is back `for` after it."""
        self.sim.power_cut(mid_write=mid_write, for_ms=args["for"])
        if not mid_write:
            self.sim.run_until(self.sim.t_ms + args["for"])

    def do_brownout(self, step, millivolts, **args):
        self.sim.brownout(millivolts, args["for"])

    def do_tamper(self, step, kind):
        self.sim.tamper(kind)

    def do_directive(self, step, action, days):
        self.tech.directive(action, days)

    def do_unlock_token(self, step, seconds):
        self.tech.unlock(seconds)

    def do_unlock_code(self, step, action):
        sim = self.sim
        mark = len(sim.timeline)
        sim.press("A" if action == "unlock" else "B")
        requests = [e for e in sim.timeline[mark:] if e["event"] == "code_request"]
        if not requests:
            code = _refusal_code(sim.timeline[mark:], errors.NOT_PERMITTED)
            raise Nack(code, 0x11, "no request code shown")
        request = requests[-1]["detail"]["detail"].split(" ", 1)[1]
        code = self.tech.answer(request, action)
        mark = len(sim.timeline)
        sim.press(code + "#")
        if not [e for e in sim.timeline[mark:] if e["event"] == "code_accepted"]:
            raise Nack(_refusal_code(sim.timeline[mark:], errors.BAD_CODE), 0x12, "code refused")

    def do_service(self, step, next_service_days, calibrate, reference, download):
        visit = self.tech.service_visit(next_service_days=next_service_days, calibrate=calibrate,
                                        reference=reference, download=download)
        self.context["chain_ok"] = visit["chain_ok"]
        return visit

    def do_service_open(self, step):
        self.tech.open_service()

    def do_service_close(self, step, next_service_days):
        self.tech.close_service(next_service_days)

    def do_calibrate(self, step, reference):
        self.tech.calibrate(reference)

    def do_log_download(self, step):
        self.context["chain_ok"] = self.tech.download_log()["chain_ok"]

    def do_set_time(self, step, shift):
        self.tech.set_time(self.sim.clock.now() + shift // SECOND)

    def do_check(self, step):
        pass


def run(scenario: Scenario, runtime: str = "cpython", *, seed: int | None = None, listener=None,
        state: str | None = None) -> Result:
    runner = Runner(scenario, runtime, seed=seed, listener=listener, state=state)
    try:
        return runner.run()
    finally:
        runner.close()


def _refusal_code(timeline, default):
    """The NACK code of the last keypad refusal the handset logged in `timeline` (a
    `refusals` record "code 0x.. reason"; the handset sums refusals up at most once a
    minute, so a refusal may be only counted): else `default`."""
    for entry in reversed(timeline):
        if entry["event"] == "refusals":
            detail = str(entry["detail"].get("detail", "")).split(" ")
            if detail[0] == "code" and len(detail) > 1:
                try:
                    return int(detail[1], 16)
                except ValueError:
                    return default
    return default
