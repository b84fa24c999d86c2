"""Handsets served per second by one data-link process (provider/link, `lci-server link`).

    python bench/link.py [--json] [--handsets 600] [--records 100] [--concurrency 64]

Set up first (not timed): a billing database (SQLite file) with one account per handset, each
with a recall directive decided and signed by the engine; as many simulated handsets (the real
core on CPython, one provider's keys), each driven until its event log holds `--records` records
the link has not seen. Then `lci-server link` is started as its own process, and every handset
calls it over TCP on 127.0.0.1 (`--concurrency` calls at once, from this process, on one event
loop). A call is served when the server has delivered the directive (TOKEN, acknowledged),
read and verified the new records, read STATUS, written it all to the database and hung up.

Measured: wall seconds from the first call to the last hang-up, and the link process's CPU
seconds over that span (from /proc). Figures: handsets per second on the wall clock
(`link_handsets_per_second`: the handsets' side shares this machine's cores and counts against
it), and per CPU second of the link process alone (what one process can serve with a core to
itself). Checked after the run: every directive delivered once, every record stored.

JSON keys: link_handsets_per_second, link_handsets_per_cpu_second, handsets, records_per_handset,
wall_s, server_cpu_s, records_per_second. Goal: link_handsets_per_second >= 200.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from protocol.coretime import EPOCH_UNIX, WEEK  # noqa: E402
from provider.billing import schema  # noqa: E402
from provider.billing.engine import Engine  # noqa: E402
from provider.billing.policy import load_policy  # noqa: E402
from provider.billing.signing import TokenMinter  # noqa: E402
from provider.billing.simulated_processor import SimulatedProcessor  # noqa: E402
from provider.link import store  # noqa: E402
from sim import driving  # noqa: E402
from sim.fleet import shared_provider  # noqa: E402
from sim.provider import Provider  # noqa: E402
from sim.simulator import Simulator  # noqa: E402
from sim.technician import Technician  # noqa: E402
from sim.uplink import dial_async  # noqa: E402

START = 220_000_000  # core seconds


def build(folder: Path, handsets: int, records: int):
    """The billing database with a signed recall per account, and the handsets."""
    db_path = folder / "billing.db"
    conn = schema.connect(db_path)
    schema.create(conn)
    Engine.initialize(conn, load_policy(), START - WEEK + EPOCH_UNIX, 1)
    base = Provider(1, "LCI-BENCH-00000", start_s=START - WEEK)
    engine = Engine(conn, Engine.stored_policy(conn), SimulatedProcessor(seed=1, failure_rate=0.0),
                    signer=TokenMinter(base.billing, base.billing.key_id))
    serials = [f"LCI-BENCH-{n:05d}" for n in range(handsets)]
    engine.open_accounts([dict(serial=s, email=f"{s.lower()}@example.com", state="MN",
                               county="Hennepin", token=None, appointment=None, pay_initial=False)
                          for s in serials])
    engine.advance(START + EPOCH_UNIX)  # a week past due: one recall each
    conn.close()
    provider_for = shared_provider(base)
    sims = []
    for n, serial in enumerate(serials):
        sim = Simulator(seed=n, identity=provider_for(serial).identity(), start_s=START, keep_timeline=False)
        Technician(sim, provider_for(serial)).install(vehicle=f"VIN{n:06d}")
        while sim.status()["log_count"] < records:
            driving.drive(sim, 20, brac=0)
            sim.advance(30 * 60 * 1000)
        sims.append(sim)
    return str(db_path), sims


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def call_all(sims, host: str, port: int, concurrency: int) -> list[dict]:
    gate = asyncio.Semaphore(concurrency)

    async def one(sim):
        async with gate:
            return await dial_async(sim, host, port)

    return await asyncio.gather(*(one(sim) for sim in sims))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--handsets", type=int, default=600)
    parser.add_argument("--records", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db_path, sims = build(Path(tmp), args.handsets, args.records)
        before = sum(sim.status()["log_count"] for sim in sims)
        profile = ["-m", "cProfile", "-o", os.environ["LINK_PROFILE"]] if os.environ.get("LINK_PROFILE") else []
        server = subprocess.Popen([sys.executable, *profile, "-m", "provider.cli", "link", "--listen", "127.0.0.1:0",
                                   "--db", db_path, "--quiet"], cwd=REPO, stdout=subprocess.PIPE, text=True)
        try:
            line = server.stdout.readline()
            host, port = line.split()[2].rsplit(":", 1)
            cpu0, t0, own0 = cpu_seconds(server.pid), time.perf_counter(), time.process_time()
            if os.environ.get("HANDSET_PROFILE"):
                import cProfile

                profiler = cProfile.Profile(time.process_time)
                results = profiler.runcall(asyncio.run, call_all(sims, host, int(port), args.concurrency))
                profiler.dump_stats(os.environ["HANDSET_PROFILE"])
            else:
                results = asyncio.run(call_all(sims, host, int(port), args.concurrency))
            wall = time.perf_counter() - t0
            cpu = cpu_seconds(server.pid) - cpu0
            handsets_cpu = time.process_time() - own0
            # what each handset holds after its call: its records plus those of the recall
            new_records = sum(sim.status()["log_count"] for sim in sims)
        finally:
            server.terminate()
            server.wait(timeout=60)
        db = store.connect(db_path)
        delivered = sum(1 for d in store.deliveries(db) if d["status"] == "delivered")
        stored = db.execute("SELECT COUNT(*) FROM link_log").fetchone()[0]
        db.close()
    failed = sum(1 for r in results if not r["ok"])
    if failed or delivered != args.handsets or stored != new_records:
        print(f"bench/link.py: the run was not clean: {failed} calls failed, {delivered} of "
              f"{args.handsets} directives delivered, {stored} of {new_records} records stored",
              file=sys.stderr)
        return 1
    figures = {
        "link_handsets_per_second": round(args.handsets / wall, 1),
        "link_handsets_per_cpu_second": round(args.handsets / cpu, 1) if cpu else None,
        "handsets": args.handsets,
        "records_per_handset": round(new_records / args.handsets, 1),
        "records_before_the_call": round(before / args.handsets, 1),
        "records_per_second": round(new_records / wall),
        "wall_s": round(wall, 3),
        "server_cpu_s": round(cpu, 3),
        "handsets_cpu_s": round(handsets_cpu, 3),
        "concurrency": args.concurrency,
        "cpus": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    if args.json:
        print(json.dumps(figures))
    else:
        print(f"data link: {args.handsets} handsets, each a recall directive and "
              f"{figures['records_per_handset']:g} new log records, {args.concurrency} calls at once")
        print(f"  served in           {wall:8.2f} s wall   -> {figures['link_handsets_per_second']:8.1f} handsets/s"
              f"  ({figures['records_per_second']} records/s)   goal >= 200")
        print(f"  link process CPU    {cpu:8.2f} s        -> {figures['link_handsets_per_cpu_second']:8.1f} handsets per CPU second")
        print(f"  handsets' side CPU  {handsets_cpu:8.2f} s        (simulated cores and their modems, "
              f"this process)")
        print(f"  (both sides share this machine's {os.cpu_count()} cores; load average "
              f"{figures['load_average_1min']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
