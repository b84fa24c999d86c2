"""Wall time of a whole service visit, and log-download goodput, at 115200 baud.

    python bench/service_visit.py [--json] [--days 60]

A simulated LCI-777 (real core, real keys) is driven for 60 days by a realistic driver —
4 drives a day of 15-60 minutes, the start test and every rolling retest answered within
20 s, sober — then served on a pty with 115200-baud 8N1 line emulation, as a handset on a
USB-serial cable. Measured, on the wall clock:

- `lci-tool log download` alone: records, bytes, seconds, and goodput = record bytes
  delivered per second as a fraction of the line's 11,520 B/s;
- `lci-tool service` (open session, download + verify the log, calibrate, close): seconds.

JSON keys: service_visit_seconds, log_goodput_fraction, log_records (and the rest).
Targets: visit <= 20 s; goodput >= 0.90.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from host_tools import keys, lci_tool, tokens  # noqa: E402
from sim.serial_server import SerialServer  # noqa: E402
from sim.simulator import Simulator  # noqa: E402
from sim.transport import open_client  # noqa: E402

BAUD = 115200
LINE_BYTES_PER_S = BAUD // 10
SERIAL = "LCI7-BENCH01"
MINUTE = 60_000


def realistic_days(sim: Simulator, days: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    for _ in range(days):
        day_start = sim.t_ms
        sim.advance(7 * 60 * MINUTE)  # first drive after 07:00
        for _ in range(4):
            sim.ignition(True)
            sim.advance(3_000)
            sim.blow(0)
            for _ in range(rng.randint(15, 60)):
                sim.advance(MINUTE)
                if sim.state["session"] in ("retest_due", "retest_in_progress"):
                    sim.advance(rng.randint(5, 20) * 1000)
                    sim.blow(0)
            sim.ignition(False)
            sim.advance(rng.randint(60, 180) * MINUTE)
        sim.run_until(day_start + 24 * 60 * MINUTE)


def build(tmp: Path, days: int):
    made = keys.keygen(tmp / "keys")
    root = keys.load_root_key(made["root_key"])
    master = keys.load_master_secret(made["master_secret"])
    tech = tmp / "tech.key"
    keys.delegate_to_file(made["root_key"], tech, "tech-bench", ["calibrate", "unlock"], days=365)
    identity = {
        "serial": SERIAL,
        "root_key": root.public_key.hex(),
        "device_secret": keys.derive_device_secret(master, SERIAL).hex(),
    }
    sim = Simulator(seed=11, identity=identity, start_s=keys.core_now() - days * 86400)
    client = open_client(sim)
    client.submit_token(tokens.mint(root, SERIAL, "work_order",
                                    {"order": "installation", "id": "WO-B", "vehicle": "VIN-B"},
                                    now=client.status()["now"], ttl=3600))
    realistic_days(sim, days)
    return sim, made, tech


def run_tool(argv: list[str]) -> tuple[int, dict, float]:
    out = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = lci_tool.main([*argv, "--json"])
    elapsed = time.perf_counter() - start
    return code, json.loads(out.getvalue().strip().splitlines()[-1]), elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="service visit wall time at 115200 baud")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--days", type=int, default=60)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        built = time.perf_counter()
        sim, made, tech = build(tmp, args.days)
        build_s = time.perf_counter() - built
        server = SerialServer(sim, pty=True, baud=BAUD)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        common = ["--port", server.pty_path, "--keys", str(tmp / "keys")]
        try:
            code, log, download_s = run_tool([*common, "log", "download", "--out", str(tmp / "log.jsonl")])
            if code != 0:
                raise SystemExit(f"bench/service_visit.py: log download failed: {log}")
            record_bytes = sum(len(bytes.fromhex(json.loads(line)["raw"]))
                               for line in (tmp / "log.jsonl").read_text().splitlines())
            code, receipt, visit_s = run_tool([*common, "service", "--yes", "--key", str(tech),
                                               "--log-out", str(tmp / "visit.jsonl")])
            if code != 0:
                raise SystemExit(f"bench/service_visit.py: service visit failed: {receipt}")
        finally:
            server.stop()
            thread.join(timeout=5)
            server.close()
    figures = {
        "service_visit_seconds": round(visit_s, 2),
        "log_goodput_fraction": round(record_bytes / download_s / LINE_BYTES_PER_S, 4),
        "log_records": log["records"],
        "log_record_bytes": record_bytes,
        "log_download_seconds": round(download_s, 2),
        "days_of_log": args.days,
        "baud": BAUD,
        "visit_passed": receipt["passed"],
        "simulate_days_seconds": round(build_s, 2),
    }
    if args.json:
        print(json.dumps(figures))
        return 0
    print(f"LCI-777 service visit at {BAUD} baud 8N1 ({LINE_BYTES_PER_S} B/s), "
          f"{args.days} days of log from a realistic driver")
    print(f"  log: {figures['log_records']} records, {record_bytes} bytes of records, "
          f"downloaded in {figures['log_download_seconds']} s")
    print(f"  log_goodput_fraction   {figures['log_goodput_fraction']:.4f}   (target >= 0.90)")
    print(f"  service_visit_seconds  {figures['service_visit_seconds']:.2f}   (target <= 20; "
          f"calibration {'passed' if receipt['passed'] else 'FAILED'})")
    print(f"  (simulating the {args.days} days took {figures['simulate_days_seconds']} s, not counted)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
