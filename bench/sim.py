"""bench/sim.py: how fast the simulator runs a device, on CPython and under real MicroPython.

One simulated device-year: a unit installed on day 0, four drives a day (07:30, 12:15,
17:40, 21:05, 20-60 minutes each) whose rolling retests are all answered, and the service
visits it needs (a full visit — log download and verification, dry-gas calibration — when
its service date comes near or a recall starts). The wall time of that year on CPython,
the same under MicroPython (the core on the unix port, sim/runtime_mpy.py; --mpy-days N for a shorter stretch
scaled up to a year), and the time-compression factor (simulated seconds per wall second).

    python bench/sim.py            readable figures
    python bench/sim.py --json     {"device_year_seconds_cpython", "device_year_seconds_micropython",
                                    "compression_cpython", ...}
Target: a device-year in <= 3 s on CPython.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sim import driving  # noqa: E402
from sim.provider import Provider  # noqa: E402
from sim.simulator import DAY, HOUR, MINUTE, Simulator  # noqa: E402
from sim.technician import Technician  # noqa: E402

YEAR_DAYS = 365
DRIVES = ((7, 30), (12, 15), (17, 40), (21, 5))
START_S = 189_000_000  # 2025-12-28 in core seconds
LOG_SEGMENTS = 1024  # x 32 records


def device_days(days: int, runtime: str = "cpython", seed: int = 1) -> dict:
    rng = random.Random(seed)
    provider = Provider(seed, start_s=START_S)
    began = time.perf_counter()
    # a year of records fits (see sim/core_adapter.py: the log cannot be marked downloaded yet)
    identity = dict(provider.identity(), log_segments=LOG_SEGMENTS)
    sim = Simulator(seed=seed, runtime=runtime, start_s=START_S, identity=identity,
                    keep_timeline=False)
    counts = {"records": 0, "retests": 0, "visits": 0, "faults": 0}

    def count(entry):
        if entry["source"] == "device" and "index" in entry["detail"]:
            counts["records"] += 1
        if entry["event"] == "retest_due":
            counts["retests"] += 1
        if entry["event"] == "core_fault":
            counts["faults"] += 1

    sim.listeners.append(count)
    tech = Technician(sim, provider)
    tech.install(vehicle="BENCH")
    booted = time.perf_counter()
    cpu = time.process_time()
    for day in range(days):
        for hour, minute in DRIVES:
            at = day * DAY + hour * HOUR + minute * MINUTE
            sim.run_until(max(at, sim.t_ms))
            driving.drive(sim, rng.randrange(20, 61), retests="pass")
        status = sim.status()
        due = status.get("service_due") or 0
        if status["compliance"] != "normal" or (due and due - sim.clock.now() < 3 * 86400):
            sim.run_until(sim.t_ms + HOUR)
            tech.service_visit()
            counts["visits"] += 1
    sim.run_until(days * DAY)
    wall = time.perf_counter() - booted
    cpu = time.process_time() - cpu
    tech.close()
    sim.close()
    return {"days": days, "wall_s": wall, "cpu_s": cpu, "boot_s": booted - began,
            "simulated_s": days * 86400, **counts}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--mpy-days", type=int, default=YEAR_DAYS,
                        help="days to run under MicroPython (scaled to a year when fewer than 365)")
    parser.add_argument("--days", type=int, default=YEAR_DAYS, help="days on CPython")
    args = parser.parse_args(argv)
    cpython = device_days(args.days, "cpython")
    year_cpython = cpython["wall_s"] * YEAR_DAYS / args.days
    mpy = device_days(args.mpy_days, "micropython")
    year_mpy = mpy["wall_s"] * YEAR_DAYS / args.mpy_days
    figures = {
        "device_year_seconds_cpython": round(year_cpython, 3),
        "device_year_cpu_seconds_cpython": round(cpython["cpu_s"] * YEAR_DAYS / args.days, 3),
        "device_year_seconds_micropython": round(year_mpy, 1),
        "compression_cpython": round(cpython["simulated_s"] / cpython["wall_s"]),
        "compression_micropython": round(mpy["simulated_s"] / mpy["wall_s"]),
        "micropython_days_measured": args.mpy_days,
        "log_records_per_year": round(cpython["records"] * YEAR_DAYS / args.days),
        "retests_per_year": round(cpython["retests"] * YEAR_DAYS / args.days),
        "service_visits_per_year": round(cpython["visits"] * YEAR_DAYS / args.days),
        "core_faults": cpython["faults"] + mpy["faults"],
    }
    if args.json:
        print(json.dumps(figures))
        return 0
    print("lci-sim: one simulated device-year (4 drives a day, rolling retests, service visits)")
    print(f"  CPython      {year_cpython:8.2f} s per device-year   "
          f"({figures['compression_cpython']:,}x real time; target <= 3 s; "
          f"{figures['device_year_cpu_seconds_cpython']:.2f} s of CPU)")
    scaled = "" if args.mpy_days == YEAR_DAYS else f", scaled from {args.mpy_days} days"
    print(f"  MicroPython  {year_mpy:8.1f} s per device-year   "
          f"({figures['compression_micropython']:,}x real time{scaled})")
    print(f"  per year: {figures['log_records_per_year']} log records, {figures['retests_per_year']} "
          f"rolling retests, {figures['service_visits_per_year']} service visits, "
          f"{figures['core_faults']} core faults")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
