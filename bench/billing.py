"""Benchmark: the billing engine's daily run over 10,000, 100,000 and 300,000 accounts.

For each size and store a fleet is built on a fresh database — a SQLite file (WAL), and a
PostgreSQL 16 database on a server this script starts itself with the PyPI package `pgserver`
(default settings, durable commits) — through the engine's one code path (`Engine.advance`, the
same call as `lci-billing advance`):
  day 0    every account accepts the terms and pays the initial invoice (same day: the worst case,
           every billing date coincides);
  day 1-27 daily runs (retries, late fees, recalls; day 14 bills every account);
  day 28   THE MEASURED DAILY RUN: every account is billed its third cycle and charged, and the
           collections of the day-14 failures fall due (recalls turning into lockouts, late fees);
  day 30   an ordinary day (the retries of day 28's failures), for contrast.
Cards fail as recurring card payments do: 6 % of charges on a healthy card fail (60 % insufficient
funds, 25 % declined, 15 % expired), a card that just failed fails again half the time, an expired
card stays expired. The processor is the simulated one with its records in memory: the benchmark
measures the back office, not a gateway's network latency.

Prints wall seconds and accounts per second for each size and store; `--json` prints one object
with the keys daily_run_seconds_10k, daily_run_seconds_100k, daily_run_seconds_300k (SQLite) and
daily_run_seconds_10k_postgres, ..., daily_run_seconds_300k_postgres, each with its
daily_run_cpu_seconds_... beside it (CPU seconds of the run: this process, where the engine runs,
plus on SQLite the writer process that reads and writes its batches (provider/billing/pipeline.py);
not PostgreSQL's server; on a shared machine the wall figure also counts the other jobs), plus
details (daily_run_writer_cpu_seconds: the writer's share).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from provider.billing import schema  # noqa: E402
from provider.billing.clock import parse_when  # noqa: E402
from provider.billing.engine import Engine  # noqa: E402
from provider.billing.policy import DAY, load_policy  # noqa: E402
from provider.billing.simulated_processor import SimulatedProcessor  # noqa: E402

SIZES = {"1k": 1_000, "10k": 10_000, "30k": 30_000, "100k": 100_000, "300k": 300_000}  # 1k: a smoke run
START = parse_when("2025-01-06T06:00")
PLACES = [("MN", "Hennepin"), ("IA", "Polk"), ("TX", "Harris"), ("AZ", "Maricopa"), ("OR", "")]


def location(store: str, folder: Path, n: int) -> str:
    if store == "sqlite":
        return str(folder / f"bench-{n}.db")
    server = postgres(folder)
    name = f"bench_{n}_{os.getpid()}"
    with server_connection(server) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    head, query = server.get_uri().split("?", 1)
    return f"{head.rsplit('/', 1)[0]}/{name}?{query}"


_server = {}


def postgres(folder: Path):
    """One PostgreSQL server for the whole run (pgserver: PostgreSQL 16 from PyPI)."""
    if "pg" not in _server:
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pgserver
            data = tempfile.mkdtemp(prefix="lci-bench-pg-")  # short: a Unix socket lives there
            os.chmod(data, 0o755)  # as root, the server runs as pgserver's own user
            _server["pg"] = pgserver.get_server(data, cleanup_mode="delete")
    return _server["pg"]


def server_connection(server):
    import psycopg
    return psycopg.connect(server.get_uri(), autocommit=True)


def build(folder: Path, n: int, seed: int = 1, store: str = "sqlite"):
    db = location(store, folder, n)
    conn = schema.connect(db)
    schema.create(conn)
    policy = load_policy()
    Engine.initialize(conn, policy, START, seed)
    processor = SimulatedProcessor(seed=seed, failure_rate=0.0, sticky=0.5)
    engine = Engine(conn, policy, processor, batch_size=5000)
    specs = [dict(serial=f"LCI7-{i:07d}", email=f"client{i}@example.com",
                  state=PLACES[i % 5][0], county=PLACES[i % 5][1], token=f"tok_fleet_{i}",
                  theft_protection=i % 3 == 0, pay_initial=True) for i in range(n)]
    started = time.perf_counter()
    engine.open_accounts(specs)  # the initial payments all succeed: a fleet of active clients
    processor.failure_rate = 0.06
    return engine, db, time.perf_counter() - started


def run_size(label: str, n: int, folder: Path, verbose: bool, store: str = "sqlite") -> dict:
    engine, db, open_s = build(folder, n, store=store)
    say = (lambda *a: print(*a, file=sys.stderr, flush=True)) if verbose else (lambda *a: None)
    label = f"{label} {store}"
    say(f"[{label}] opened {n} accounts in {open_s:.1f} s")
    days = {}
    cpu = {}
    writer_cpu = {}
    for day in range(1, 31):
        started, cpu_started = time.perf_counter(), time.process_time()
        writer_started = engine.writer_cpu_seconds
        result = engine.advance(START + day * DAY)
        days[day] = (time.perf_counter() - started, result["accounts_processed"])
        writer_cpu[day] = engine.writer_cpu_seconds - writer_started
        cpu[day] = time.process_time() - cpu_started + writer_cpu[day]
        if day in (14, 28, 30):
            say(f"[{label}] day {day}: {days[day][0]:.2f} s, {days[day][1]} account runs")
    conn = engine.conn
    statuses = dict(conn.execute("SELECT status, COUNT(*) FROM account GROUP BY status"))
    day28 = START + 28 * DAY
    charges = conn.execute("SELECT COUNT(*), SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END)"
                           " FROM payment WHERE at >= ? AND at < ?",
                           (day28, day28 + DAY)).fetchone()
    postings = conn.execute("SELECT COUNT(*) FROM posting").fetchone()[0]
    if store == "sqlite":
        size_mb = Path(db).stat().st_size / 1e6
    else:
        size_mb = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0] / 1e6
    conn.close()
    if store == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            path = Path(db + suffix)
            if path.exists():
                path.unlink()
    else:
        with server_connection(postgres(folder)) as admin:
            admin.execute(f"DROP DATABASE {db.split('?')[0].rsplit('/', 1)[1]}")
    seconds = days[28][0]
    return {
        "store": store,
        "accounts": n,
        "daily_run_seconds": round(seconds, 3),
        "daily_run_cpu_seconds": round(cpu[28], 3),
        "daily_run_writer_cpu_seconds": round(writer_cpu[28], 3),
        "accounts_per_second": round(n / seconds),
        "day28_account_runs": days[28][1],
        "day28_charges": charges[0],
        "day28_failed_charges": int(charges[1] or 0),
        "retry_day30_seconds": round(days[30][0], 3),
        "retry_day30_account_runs": days[30][1],
        "peak_day14_seconds": round(days[14][0], 3),
        "open_seconds": round(open_s, 3),
        "statuses_after_day30": statuses,
        "postings": postings,
        "db_mb": round(size_mb, 1),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--sizes", default="10k,100k,300k", help="subset, e.g. 10k,100k")
    parser.add_argument("--dir", default=None, help="where to put the database files")
    parser.add_argument("--stores", default="sqlite,postgresql",
                        help="sqlite, postgresql or both (default)")
    args = parser.parse_args(argv)
    labels = [s.strip() for s in args.sizes.split(",") if s.strip()]
    folder = Path(args.dir or tempfile.mkdtemp(prefix="lci-billing-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    results = {}
    try:
        for store in stores:
            for label in labels:
                key = label if store == "sqlite" else f"{label}_postgres"
                results[key] = run_size(label, SIZES[label], folder, verbose=not args.json,
                                        store=store)
    finally:
        if "pg" in _server:
            _server.pop("pg").cleanup()
    if args.json:
        out = {f"daily_run_seconds_{k}": v["daily_run_seconds"] for k, v in results.items()}
        # CPU seconds of the run beside each wall figure: on a shared machine the wall time
        # measures the other jobs too
        out.update({f"daily_run_cpu_seconds_{k}": v["daily_run_cpu_seconds"]
                    for k, v in results.items()})
        out["details"] = results
        out["cpu_count"] = os.cpu_count()
        out["load_average"] = [round(x, 2) for x in os.getloadavg()]  # 1, 5, 15 min, at the end
        print(json.dumps(out, indent=2))
        return 0
    print("daily run (day 28: every account billed and charged; collections due); cpu s: the "
          "engine's process and, on SQLite, its writer process (the writer's share in brackets)")
    print(f"{'store':>10} {'accounts':>10} {'wall s':>9} {'cpu s':>16} {'accounts/s':>11} {'µs/account':>11} "
          f"{'charges':>9} {'failed':>7} {'retry day s':>12}")
    for r in results.values():
        cpu = f"{r['daily_run_cpu_seconds']:.2f} ({r['daily_run_writer_cpu_seconds']:.2f})"
        print(f"{r['store']:>10} {r['accounts']:>10,} {r['daily_run_seconds']:>9.2f} {cpu:>16}"
              f" {r['accounts_per_second']:>11,}"
              f" {1e6 * r['daily_run_seconds'] / r['accounts']:>11.1f} {r['day28_charges']:>9,}"
              f" {r['day28_failed_charges']:>7,} {r['retry_day30_seconds']:>12.2f}")
    if len(labels) > 1 and "sqlite" in stores:
        first, last = results[labels[0]], results[labels[-1]]
        ratio = (last["daily_run_seconds"] / first["daily_run_seconds"]) / (
            last["accounts"] / first["accounts"])
        print(f"growth: {last['accounts'] // first['accounts']}x the accounts took "
              f"{last['daily_run_seconds'] / first['daily_run_seconds']:.1f}x the time "
              f"({ratio:.2f} of linear)")
    for r in results.values():
        s = r["statuses_after_day30"]
        print(f"books after day 30 ({r['store']}, {r['accounts']:,}): {s.get('active', 0):,} active, "
              f"{s.get('past_due', 0):,} past due, {s.get('lockout', 0):,} locked out, "
              f"{r['day28_failed_charges']:,} failed charges on day 28, {r['postings']:,} postings")
    print("(wall s is the figure; cpu s shows the run's own work, which a shared machine delays;"
          f" load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
