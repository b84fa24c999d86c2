"""Fleet mode: many simulated handsets, randomized drivers, days of driving, statistics.

`lci-sim fleet --devices N --days D --seed S` installs N units and lets each driver live
D days: one to four trips a day; some drivers drink (a share of their trips start over
the set point, and they try again after the temporary lockout), some skip or refuse
rolling retests, some lose power now and then (sometimes in the middle of a flash write),
some tamper, some do not pay (a billing recall directive, then a lockout if still unpaid,
then payment clears it). A unit goes to the service center when its display says service
is due, when it is in recall, or when it is locked out. Everything is seeded: the same
seed gives the same fleet, trip for trip.

It is a soak test of the core as much as a demo: core faults and simulator errors are
counted and reported, never swallowed.

On the data link (`--uplink HOST:PORT`, `run_linked`): every unit carries a modem and calls the
link server (provider/link) when its coverage schedule (sim/uplink.py) says it has coverage;
billing directives then come from the server's billing database, not from the simulated back
office, so the units' keys are one provider's (`--keys DIR`, the keys the server's billing
signs with; else the seeded provider). All units live day by day on one asyncio event loop:
each unit's day runs on its own virtual clock and pauses at its calls.
"""

from __future__ import annotations

import asyncio
import copy
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from host_tools.link import LinkError
from protocol import coretime
from sim import driving
from sim.provider import Provider
from sim.simulator import DAY, HOUR, MINUTE, SimError, Simulator
from sim.technician import Technician

START_S = 189_000_000  # 2025-12-28, a Sunday, in core seconds


@dataclass
class Profile:
    """One driver's habits (probabilities per trip or per day)."""

    drinks: float  # share of trips started over the set point
    skips: float  # share of retests ignored
    refuses: float  # share of retests refused
    power_loss: float  # chance per day of a power cut (battery work, jump start)
    tamper: float  # chance per day of unplugging the sensor
    unpaid: float  # chance per billing cycle (28 days) of not paying on time
    trips_per_day: tuple[int, int] = (1, 4)

    @classmethod
    def random(cls, rng: random.Random) -> Profile:
        kind = rng.random()
        return cls(
            drinks=rng.choice((0.0, 0.0, 0.02, 0.05, 0.15)) if kind < 0.8 else 0.3,
            skips=rng.choice((0.0, 0.01, 0.03, 0.1)),
            refuses=rng.choice((0.0, 0.0, 0.01, 0.05)),
            power_loss=rng.choice((0.0, 0.01, 0.03)),
            tamper=rng.choice((0.0, 0.0, 0.0, 0.005)),
            unpaid=rng.choice((0.0, 0.0, 0.1, 0.3)),
        )


@dataclass
class Stats:
    devices: int = 0
    days: int = 0
    trips: int = 0
    tests: int = 0
    passes: int = 0
    fails: int = 0
    aborts: int = 0
    retests: int = 0
    violations: int = 0
    recalls: int = 0
    lockouts: int = 0
    unlocks: int = 0
    service_visits: int = 0
    calibrations_failed: int = 0
    power_cuts: int = 0
    tampers: int = 0
    directives: int = 0
    directives_applied: int = 0
    calls: int = 0
    calls_failed: int = 0
    log_records: int = 0
    chain_breaks: int = 0
    core_faults: int = 0
    sim_errors: int = 0
    errors: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    simulated_s: int = 0

    def as_dict(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k != "errors"}
        out["errors"] = self.errors[:20]
        out["compression"] = round(self.simulated_s / self.wall_s) if self.wall_s else None
        return out

    def count(self, entry: dict) -> None:
        event = entry["event"]
        if event in ("test_pass", "retest_pass"):
            self.tests += 1
            self.passes += 1
        elif event in ("test_fail", "retest_fail"):
            self.tests += 1
            self.fails += 1
        elif event in ("test_abort", "retest_abort"):
            self.aborts += 1
        elif event == "retest_due":
            self.retests += 1
        elif event == "violation":
            self.violations += 1
        elif event == "compliance_change":
            to = entry["detail"].get("detail", "").split(" ")[0].split(">")[-1]
            if to == "early_service_recall":
                self.recalls += 1
            elif to == "lockout":
                self.lockouts += 1
        elif event == "unlock_start":
            self.unlocks += 1
        elif event == "cal_fail":
            self.calibrations_failed += 1
        elif event == "token_accepted" and entry["detail"].get("detail", "").split(" ")[0] in (
                "recall", "lockout", "clear"):
            self.directives_applied += 1
        elif event == "core_fault":
            self.core_faults += 1
            self.errors.append(f"t={entry['t']}: core fault {entry['detail'].get('error')}")
        elif event == "log_download" and not entry["detail"].get("chain_ok", True):
            self.chain_breaks += 1
        if entry["source"] == "device" and "index" in entry["detail"]:
            self.log_records += 1


class Unit:
    """One installed handset, its driver and the service center that looks after it."""

    def __init__(self, number: int, seed: int, stats: Stats, runtime: str, config: dict | None,
                 provider: Callable[[str], Provider] | None = None, start_s: int = START_S):
        """`provider(serial)`: the provider whose keys the unit trusts (a fleet on the data link
        shares the link server's); by default each unit has its own seeded provider, and its
        billing directives come from it in-process."""
        self.rng = random.Random(f"lci-fleet:{seed}:{number}")
        self.profile = Profile.random(self.rng)
        self.stats = stats
        self.serial = serial = serial_of(number)
        self.billed_in_process = provider is None
        self.provider = (Provider(f"{seed}:{number}", serial, start_s=start_s) if provider is None
                         else provider(serial))
        self.sim = Simulator(seed=f"{seed}:{number}", runtime=runtime, start_s=start_s,
                             config=config or {}, identity=self.provider.identity(),
                             keep_timeline=False)
        self.sim.listeners.append(stats.count)
        self.tech = Technician(self.sim, self.provider)
        self.unpaid = False
        self.tech.install(vehicle=f"VIN-{number:06d}")

    def close(self) -> None:
        self.tech.close()
        self.sim.close()

    # -- one day ------------------------------------------------------------------------------
    def live_day(self, day: int) -> None:
        for _ in self.day(day):
            pass

    def day(self, day: int):
        """The unit's day, pausing before each thing it does: yields the virtual time (ms) it
        is about to act at, so a caller can make the unit's calls due before then."""
        sim, rng, profile = self.sim, self.rng, self.profile
        day_start = day * DAY
        if day % 28 == 27 and self.billed_in_process:
            self._billing_cycle()
        if rng.random() < profile.power_loss:
            at = day_start + rng.randrange(0, DAY)
            yield at
            self._power_cut(at)
        if rng.random() < profile.tamper and sim.powered:
            yield day_start + 12 * HOUR
            sim.run_until(max(sim.t_ms, day_start + 12 * HOUR))
            sim.tamper("sensor")
            sim.run_until(sim.t_ms + 10 * MINUTE)
            sim.tamper("clear")
            self.stats.tampers += 1
        trips = rng.randint(*profile.trips_per_day)
        times = sorted(rng.randrange(6 * HOUR, 22 * HOUR) for _ in range(trips))
        for at in times:
            at = max(day_start + at, sim.t_ms)
            if at >= day_start + DAY:
                break
            yield at
            sim.run_until(at)
            self._trip()
        yield day_start + DAY
        self._maybe_service(day)
        sim.run_until(max(sim.t_ms, day_start + DAY))

    def _trip(self) -> None:
        sim, rng, profile = self.sim, self.rng, self.profile
        if not sim.powered:
            sim.power_on()
        self.stats.trips += 1
        drunk = rng.random() < profile.drinks
        brac = rng.randrange(250, 900) if drunk else rng.choice((0, 0, 0, 30, 80))
        roll = rng.random()
        retests = "skip" if roll < profile.skips else ("refuse" if roll < profile.skips + profile.refuses else "pass")
        minutes = rng.randrange(10, 90)
        trip = driving.drive(sim, minutes, brac=brac, retests=retests,
                             retest_brac=brac if drunk else None)
        if trip.start_result == "fail":
            # wait out the temporary lockout, sober up a little, try again once
            sim.run_until(sim.t_ms + 16 * MINUTE)
            driving.drive(sim, minutes, brac=max(0, brac - 300), retests=retests)

    def _power_cut(self, at: int) -> None:
        sim = self.sim
        sim.run_until(max(sim.t_ms, at))
        if not sim.powered:
            return
        self.stats.power_cuts += 1
        off = self.rng.randrange(1, 30) * MINUTE
        # sometimes the cut lands inside the core's next flash write, whenever it comes
        sim.power_cut(mid_write=self.rng.random() < 0.3, for_ms=off)
        if not sim.powered:
            sim.run_until(sim.t_ms + off)  # the power comes back by itself

    def _billing_cycle(self) -> None:
        if self.unpaid:
            self._directive("lockout")
            self.sim.run_until(self.sim.t_ms + self.rng.randrange(1, 3) * DAY)
            self._directive("clear")
            self.unpaid = False
        elif self.rng.random() < self.profile.unpaid:
            self._directive("recall", days=7)
            self.unpaid = True

    def _directive(self, action: str, **args) -> None:
        if not self.sim.powered:
            self.sim.power_on()
        try:
            self.tech.directive(action, **args)
            self.stats.directives += 1
        except LinkError as exc:
            self.stats.errors.append(f"directive {action}: {exc}")

    def _maybe_service(self, day: int) -> None:
        sim = self.sim
        if not sim.powered:
            sim.power_on()
        status = sim.status()
        due_soon = status.get("service_due") and status["service_due"] - sim.clock.now() < 3 * coretime.DAY
        if status["compliance"] in ("early_service_recall", "lockout") or due_soon:
            if self.unpaid and status["compliance"] == "lockout" and not due_soon:
                return  # the provider's lockout: paid at the next cycle, not a service matter
            if (not self.billed_in_process and not due_soon
                    and set(status.get("causes") or ()) <= {"unpaid_balance"}):
                return  # billing's recall or lockout over the data link: the client pays
            sim.run_until(sim.t_ms + 2 * HOUR)
            try:
                self.tech.service_visit()
                self.stats.service_visits += 1
            except LinkError as exc:
                self.stats.errors.append(f"service visit day {day}: {exc}")


def serial_of(number: int) -> str:
    return f"LCI-FLEET-{number:04d}"


def shared_provider(base: Provider) -> Callable[[str], Provider]:
    """One provider's keys for every unit (serial by serial): what a fleet on the data link
    trusts, since the link server's billing signs for all of them with one key."""

    def for_serial(serial: str) -> Provider:
        unit = copy.copy(base)
        unit.serial = serial
        return unit

    return for_serial


def run(devices: int, days: int, seed: int = 0, runtime: str = "cpython",
        config: dict | None = None, progress=None) -> Stats:
    stats = Stats(devices=devices, days=days)
    began = time.perf_counter()
    for number in range(devices):
        unit = None
        try:
            unit = Unit(number, seed, stats, runtime, config)
            for day in range(days):
                unit.live_day(day)
            stats.simulated_s += unit.sim.t_ms // 1000
        except (SimError, LinkError) as exc:
            stats.sim_errors += 1
            stats.errors.append(f"unit {number}: {type(exc).__name__}: {exc}")
        finally:
            if unit is not None:
                unit.close()
        if progress is not None:
            progress(number + 1, devices)
    stats.wall_s = time.perf_counter() - began
    return stats


def report(stats: Stats) -> str:
    d = stats.as_dict()
    per_trip = (lambda n: f"{n / stats.trips:.2f}/trip") if stats.trips else (lambda n: "")
    lines = [
        f"fleet: {stats.devices} devices x {stats.days} days, {stats.trips} trips",
        f"  breath tests   {stats.tests:>8}  pass {stats.passes}, fail {stats.fails}, aborts {stats.aborts}",
        f"  rolling retests{stats.retests:>8}  {per_trip(stats.retests)}",
        f"  violations     {stats.violations:>8}",
        f"  recalls        {stats.recalls:>8}",
        f"  lockouts       {stats.lockouts:>8}",
        f"  unlocks        {stats.unlocks:>8}",
        f"  service visits {stats.service_visits:>8}  calibrations failed {stats.calibrations_failed}",
        f"  power cuts     {stats.power_cuts:>8}  tampers {stats.tampers}  billing directives {stats.directives}",
        f"  log records    {stats.log_records:>8}  chain breaks {stats.chain_breaks}",
        *([f"  data link      {stats.calls:>8} calls, {stats.calls_failed} broken off; "
           f"{stats.directives_applied} directives applied"] if stats.calls else []),
        f"  core faults    {stats.core_faults:>8}  simulator errors {stats.sim_errors}",
        f"  wall time      {stats.wall_s:>8.2f} s  ({d['compression'] or 0:,}x real time)",
    ]
    lines.extend(f"  ! {error}" for error in stats.errors[:10])
    return "\n".join(lines)


# ---- the fleet on the data link --------------------------------------------------------------------
@dataclass
class Uplink:
    """Where and how the units call: the link server's address, TLS, coverage, call interval."""

    host: str
    port: int
    coverage: object  # sim.uplink.Coverage
    every_ms: int = 2 * HOUR
    ssl: object = None  # ssl.SSLContext
    server_hostname: str | None = None
    lossy: float = 0.0  # chance per byte that a call breaks there (a modem losing coverage)
    concurrency: int = 256  # calls in progress at once, at most
    timeout: float | None = 30.0  # seconds a call waits for a word from the server; None: no limit


async def _live_day_linked(unit: Unit, day: int, uplink: Uplink, gate: asyncio.Semaphore,
                           tap) -> None:
    from sim.uplink import dial_async

    dials = deque(uplink.coverage.dial_times(day * DAY, (day + 1) * DAY, uplink.every_ms))

    async def call(at: int) -> None:
        sim = unit.sim
        sim.run_until(max(at, sim.t_ms))
        if not sim.powered:
            return  # the modem is off with the handset
        async with gate:
            result = await dial_async(sim, uplink.host, uplink.port, ssl=uplink.ssl,
                                      server_hostname=uplink.server_hostname,
                                      timeout=uplink.timeout, tap=tap)
        unit.stats.calls += 1
        if not result["ok"]:
            unit.stats.calls_failed += 1

    for at in unit.day(day):
        while dials and dials[0] <= at:
            await call(dials.popleft())
    while dials:
        await call(dials.popleft())


async def run_linked(devices: int, days: int, uplink: Uplink, *, seed: int = 0,
                     runtime: str = "cpython", config: dict | None = None,
                     provider: Callable[[str], Provider] | None = None, start_s: int = START_S,
                     between_days=None, tap_for=None, progress=None) -> Stats:
    """The fleet on the data link, on the running event loop. `between_days(day, units)`
    (optional, may be a coroutine function) runs after every unit lived `day`: a test moves
    billing there and looks at the units. `tap_for(number)`: a tap for that unit's calls
    (sim/uplink.py), instead of uplink.lossy's LossyLink."""
    from sim.uplink import LossyLink

    stats = Stats(devices=devices, days=days)
    began = time.perf_counter()
    if provider is None:
        provider = shared_provider(Provider(seed, serial_of(0), start_s=start_s))
    gate = asyncio.Semaphore(uplink.concurrency)
    units: list[Unit] = []
    try:
        for number in range(devices):
            units.append(Unit(number, seed, stats, runtime, config, provider=provider, start_s=start_s))
        if tap_for is None:
            tap_for = lambda n: LossyLink(f"{seed}:{n}", uplink.lossy) if uplink.lossy else None  # noqa: E731
        taps = [tap_for(n) for n in range(devices)]
        for day in range(days):
            results = await asyncio.gather(
                *(_live_day_linked(unit, day, uplink, gate, tap) for unit, tap in zip(units, taps, strict=True)),
                return_exceptions=True)
            for number, result in enumerate(results):
                if isinstance(result, (SimError, LinkError)):
                    stats.sim_errors += 1
                    stats.errors.append(f"unit {number} day {day}: {type(result).__name__}: {result}")
                elif isinstance(result, BaseException):
                    raise result
            if between_days is not None:
                outcome = between_days(day, units)
                if asyncio.iscoroutine(outcome):
                    await outcome
            if progress is not None:
                progress(day + 1, days)
        stats.simulated_s = sum(unit.sim.t_ms // 1000 for unit in units)
    finally:
        for unit in units:
            unit.close()
    stats.wall_s = time.perf_counter() - began
    return stats
