"""What a driver does with the handset: start the car, blow, drive, answer (or not) retests.

`drive(sim, minutes, ...)` is one trip: ignition on, blow for the start test, drive for
`minutes` answering each rolling retest the way `retests` says, ignition off. It moves
the virtual clock from one device deadline to the next (never sleeping) and returns what
happened. The scenario runner, fleet mode and bench/sim.py all drive with it.

Retest behaviours: "pass" (blow `brac` within `respond_s`), "fail" (blow `retest_brac`,
default 0.050 g/210L), "refuse" (press CANCEL), "skip" (ignore it: a missed retest).
"""

from __future__ import annotations

from sim.simulator import MINUTE, SECOND, Simulator

RETEST_BEHAVIOURS = ("pass", "fail", "refuse", "skip")
RETEST_STATES = ("retest_due", "retest_in_progress")
DEFAULT_FAIL_BRAC = 500  # 0.050 g/210L


class Trip:
    def __init__(self):
        self.started = False
        self.start_result = ""  # "pass", "fail", "blocked", "no_test"
        self.retests = 0
        self.retest_results: list[str] = []
        self.minutes = 0

    def as_dict(self) -> dict:
        return {
            "started": self.started,
            "start": self.start_result,
            "retests": self.retests,
            "retest_results": list(self.retest_results),
            "minutes": self.minutes,
        }


def _session(sim: Simulator) -> str:
    return sim.state["session"]


def _run_to(sim: Simulator, end_ms: int) -> None:
    """Advance to the core's next deadline or `end_ms`, whichever is first."""
    deadline = sim.next_deadline_ms()
    target = end_ms if deadline is None else min(max(deadline, sim.t_ms), end_ms)
    sim.run_until(target)


def start(sim: Simulator, brac: int = 0, *, blow_after_s: int = 5, volume_ml: int | None = None) -> str:
    """Ignition on and the start test: 'pass', 'fail', 'blocked' (no test offered) or 'no_test'."""
    sim.ignition(True)
    if _session(sim) == "engine_enabled":
        return "free_restart"
    if _session(sim) != "test_requested":
        return "blocked"
    sim.advance(blow_after_s * SECOND)
    if _session(sim) != "test_requested":
        return "no_test"
    sim.blow(brac, volume_ml=volume_ml)
    session = _session(sim)
    if session == "engine_enabled":
        return "pass"
    if session == "temporary_lockout":
        return "fail"
    return "abort" if session == "test_requested" else session


def drive(
    sim: Simulator,
    minutes: int,
    *,
    brac: int = 0,
    retests: str = "pass",
    retest_brac: int | None = None,
    respond_s: int = 30,
    blow_after_s: int = 5,
    on_start=None,
) -> Trip:
    """One trip; the ignition is off again at the end (also after a failed start test).
    `on_start(trip)`, if given, is called as soon as the start test is judged (before driving)."""
    if retests not in RETEST_BEHAVIOURS:
        raise ValueError(f"retests must be one of {', '.join(RETEST_BEHAVIOURS)}, got {retests!r}")
    trip = Trip()
    trip.start_result = start(sim, brac, blow_after_s=blow_after_s)
    if on_start is not None:
        on_start(trip)
    if trip.start_result not in ("pass", "free_restart"):
        sim.ignition(False)
        return trip
    trip.started = True
    began = sim.t_ms
    end = began + minutes * MINUTE
    answered_at = -1
    while sim.t_ms < end:
        _run_to(sim, end)
        if _session(sim) in RETEST_STATES and answered_at < 0:
            trip.retests += 1
            answered_at = sim.t_ms
            respond_at = min(end, sim.t_ms + respond_s * SECOND)
            if retests == "skip":
                trip.retest_results.append("skipped")
                continue
            sim.run_until(respond_at)
            if _session(sim) not in RETEST_STATES:
                trip.retest_results.append("too_late")
                continue
            if retests == "refuse":
                sim.refuse()
            else:
                value = brac if retests == "pass" else (retest_brac if retest_brac is not None else DEFAULT_FAIL_BRAC)
                sim.blow(value)
            trip.retest_results.append(retests)
            if _session(sim) not in RETEST_STATES:
                answered_at = -1  # answered: the next retest is a new one
        elif _session(sim) not in RETEST_STATES:
            answered_at = -1
    trip.minutes = (sim.t_ms - began) // MINUTE
    sim.ignition(False)
    return trip
