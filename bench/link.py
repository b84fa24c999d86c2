"""Handsets served per second by one data-link process (provider/link, `lci-server link`).

    python bench/link.py [--json] [--handsets 600] [--records 100] [--concurrency 64]

Set up first (not timed): a billing database (SQLite file) with one account per handset, each
with a recall directive decided and signed by the engine; as many simulated handsets (the real
core on CPython, one provider's keys), each driven until its event log holds `--records` records
the link has not seen. The database is copied, so that each of the two runs below starts from
the same state: every handset has its recall waiting and none of its records uploaded.

Two runs, each against its own `lci-server link` process (its own OS process, its CPU seconds
read from /proc), every handset calling it over TCP on 127.0.0.1, `--concurrency` calls at once:

1. **end to end**: the simulated handsets themselves call (sim.uplink.dial_async, the real core
   answering every frame: verifying and applying the token, streaming its log). Their cores run
   in this process on the same two cores as the link, so the wall figure counts the handsets'
   work against the link. Each handset's answers (the frames its core sent up) are recorded.
2. **replayed handsets** (the load generator of wrk/locust-style benches): a light asyncio
   client per handset answers the link's frames with the bytes that handset's real core sent in
   run 1 — its HELLO, its TOKEN reply, LOG_INFO, the LOG_READ pages with their real chained
   records, STATUS — re-framed with the seq of the link's request, pages sent under the window
   and LOG_ACK flow control of SPEC 7. The link does everything it does for a real handset
   (HELLO, claim and deliver the directive, LOG_INFO, stream, verify the hash chain against the
   head hash, store the records, STATUS, commit), on a fresh copy of the database; only the
   handsets' side is cheap, so the wall figure is what one link process serves.

A call is served when the server has delivered the directive (TOKEN, acknowledged), read and
verified the new records, read STATUS, written it all to the database and hung up. Checked
after each run: every call ended normally, every directive delivered once, every record stored.

Figures per run: handsets per wall second, the link process's CPU seconds and handsets per
CPU second of the link alone. JSON keys: link_handsets_per_second (run 2: one link process,
replayed handsets), link_handsets_per_cpu_second (run 2), e2e_handsets_per_second,
e2e_link_handsets_per_cpu_second, handsets, records_per_handset, wall_s, server_cpu_s,
records_per_second, e2e_wall_s, e2e_server_cpu_s, e2e_handsets_cpu_s, replay_client_cpu_s,
load_average_1min. Goal: link_handsets_per_second >= 200.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from protocol import framing, messages  # noqa: E402
from protocol.coretime import EPOCH_UNIX, WEEK  # noqa: E402
from provider.billing import schema  # noqa: E402
from provider.billing.engine import Engine  # noqa: E402
from provider.billing.policy import load_policy  # noqa: E402
from provider.billing.signing import TokenMinter  # noqa: E402
from provider.billing.simulated_processor import SimulatedProcessor  # noqa: E402
from provider.link import store  # noqa: E402
from provider.link.host import FastDecoder, encode_frame  # noqa: E402
from sim import driving  # noqa: E402
from sim.fleet import shared_provider  # noqa: E402
from sim.provider import Provider  # noqa: E402
from sim.simulator import Simulator  # noqa: E402
from sim.technician import Technician  # noqa: E402
from sim.uplink import dial_async  # noqa: E402

START = 220_000_000  # core seconds
_PAGE_HEAD = struct.Struct("<IB")  # a LOG_READ page: first u32, n u8 (SPEC 6.4)
_READ_ARGS = struct.Struct("<IIB")  # LOG_READ request: start u32, count u32, window u8
_ACK_ARG = struct.Struct("<I")  # LOG_ACK request: next u32


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
    return db_path, sims


def copy_database(src: Path, dst: Path) -> Path:
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{src}{suffix}").exists():
            shutil.copyfile(f"{src}{suffix}", f"{dst}{suffix}")
    return dst


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class LinkProcess:
    """`lci-server link` in its own process on a database; its address and CPU seconds."""

    def __init__(self, db_path: Path, profile: str | None = None):
        argv = ["-m", "cProfile", "-o", profile] if profile else []
        self.proc = subprocess.Popen([sys.executable, *argv, "-m", "provider.cli", "link", "--listen",
                                      "127.0.0.1:0", "--db", str(db_path), "--quiet"],
                                     cwd=REPO, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        host, port = line.split()[2].rsplit(":", 1)
        self.address = (host, int(port))

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)


class Script:
    """One handset's answers as its real core sent them in a call: the reply to each request
    type in order, its LOG_READ pages by first index, and the events it sent on its own."""

    def __init__(self) -> None:
        self.replies: dict[int, list[framing.Frame]] = {}
        self.pages: dict[int, framing.Frame] = {}
        self.events: list[framing.Frame] = []
        self._down = FastDecoder()
        self._up = FastDecoder()
        self._asked: dict[int, int] = {}  # seq -> the request type the link sent with it

    def tap(self, direction: str, data: bytes) -> bytes:
        """sim.uplink's tap: every byte passes unchanged; the frames are noted."""
        if direction == "down":
            for frame in self._down.feed(data):
                self._asked.setdefault(frame.seq, frame.type)
        else:
            for frame in self._up.feed(data):
                if frame.is_event:
                    self.events.append(frame)
                elif frame.type == messages.LOG_READ | 0x80 and frame.is_response and len(frame.payload) >= 5:
                    self.pages[_PAGE_HEAD.unpack_from(frame.payload)[0]] = frame
                elif frame.is_response and frame.seq in self._asked:
                    self.replies.setdefault(self._asked[frame.seq], []).append(frame)
        return data


async def call_all(calls, concurrency: int) -> list:
    gate = asyncio.Semaphore(concurrency)

    async def one(call):
        async with gate:
            return await call()

    return await asyncio.gather(*(one(call) for call in calls))


def answer(frame: framing.Frame, seq: int) -> bytes:
    return encode_frame(framing.Frame(frame.type, frame.payload, seq=seq, flags=frame.flags,
                                      version=frame.version))


async def replay(script: Script, host: str, port: int, timeout: float = 30.0) -> dict:
    """One call answered from `script` (SPEC 7's window and cumulative LOG_ACK for the pages)."""
    reader, writer = await asyncio.open_connection(host, port)
    decoder = FastDecoder()
    replies = {t: list(frames) for t, frames in script.replies.items()}
    last: dict[int, framing.Frame] = {}
    stream_seq = None
    next_first = end = window = 0
    unacked: list[int] = []  # end index of each page sent and not acknowledged
    ok, error = True, None

    def pages_out(out: list[bytes]) -> None:
        nonlocal next_first
        while next_first < end and len(unacked) < window:
            page = script.pages.get(next_first)
            if page is None:
                break
            first, n = _PAGE_HEAD.unpack_from(page.payload)
            out.append(answer(page, stream_seq))
            next_first = first + n
            unacked.append(next_first)

    try:
        while True:
            async with asyncio.timeout(timeout):
                data = await reader.read(65536)
            if not data:
                break  # the link hung up: the call is over
            out: list[bytes] = []
            for frame in decoder.feed(data):
                kind = frame.type
                if kind == messages.LOG_READ:
                    start, count, asked_window = _READ_ARGS.unpack_from(frame.payload)
                    stream_seq, next_first, window = frame.seq, start, max(1, min(asked_window, 16))
                    end = start + count
                    unacked.clear()
                    pages_out(out)
                elif kind == messages.LOG_ACK:
                    if frame.seq == stream_seq:
                        acked = _ACK_ARG.unpack_from(frame.payload)[0]
                        unacked[:] = [e for e in unacked if e > acked]
                        pages_out(out)
                else:
                    queue = replies.get(kind)
                    reply = queue.pop(0) if queue else last.get(kind)
                    if reply is None:
                        raise RuntimeError(f"no recorded answer to {messages.name_of(kind)}")
                    last[kind] = reply
                    out.append(answer(reply, frame.seq))
                    if kind == messages.HELLO:
                        out.extend(encode_frame(event) for event in script.events)
            if out:
                writer.write(b"".join(out))
                await writer.drain()
    except (TimeoutError, ConnectionError, OSError) as exc:
        ok, error = False, f"{type(exc).__name__}: {exc}"
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (ConnectionError, OSError):
            pass
    return {"ok": ok, "error": error}


def timed(link: LinkProcess, calls, concurrency: int) -> dict:
    cpu0, t0, own0 = link.cpu(), time.perf_counter(), time.process_time()
    results = asyncio.run(call_all(calls, concurrency))
    wall = time.perf_counter() - t0
    return {"results": results, "wall": wall, "cpu": link.cpu() - cpu0,
            "client_cpu": time.process_time() - own0, "load": os.getloadavg()[0]}


def check(db_path: Path, run: dict, handsets: int, records: int, label: str) -> str | None:
    db = store.connect(str(db_path))
    delivered = sum(1 for d in store.deliveries(db) if d["status"] == "delivered")
    stored = db.execute("SELECT COUNT(*) FROM link_log").fetchone()[0]
    db.close()
    failed = [r for r in run["results"] if not r["ok"]]
    if failed or delivered != handsets or stored != records:
        return (f"{label}: the run was not clean: {len(failed)} calls failed"
                f"{' (' + str(failed[0]['error']) + ')' if failed else ''}, {delivered} of {handsets} "
                f"directives delivered, {stored} of {records} records stored")
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--handsets", type=int, default=600)
    parser.add_argument("--records", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    profile = os.environ.get("LINK_PROFILE")
    with tempfile.TemporaryDirectory() as tmp:
        db_path, sims = build(Path(tmp), args.handsets, args.records)
        replay_db = copy_database(db_path, Path(tmp) / "replay.db")
        before = sum(sim.status()["log_count"] for sim in sims)
        scripts = [Script() for _ in sims]

        # 1. end to end: the simulated handsets' real cores answer (and are recorded)
        link = LinkProcess(db_path)
        try:
            e2e = timed(link, [lambda sim=sim, s=s: dial_async(sim, *link.address, tap=s.tap)
                               for sim, s in zip(sims, scripts, strict=True)], args.concurrency)
        finally:
            link.stop()
        new_records = sum(sim.status()["log_count"] for sim in sims)
        problem = check(db_path, e2e, args.handsets, new_records, "end to end")

        # 2. replayed handsets: the same answers, from a light client, to a fresh link process
        if problem is None:
            link = LinkProcess(replay_db, profile)
            try:
                rep = timed(link, [lambda s=s: replay(s, *link.address) for s in scripts],
                            args.concurrency)
            finally:
                link.stop()
            problem = check(replay_db, rep, args.handsets, new_records, "replayed handsets")
    if problem is not None:
        print(f"bench/link.py: {problem}", file=sys.stderr)
        return 1
    n = args.handsets
    figures = {
        "link_handsets_per_second": round(n / rep["wall"], 1),
        "link_handsets_per_cpu_second": round(n / rep["cpu"], 1) if rep["cpu"] else None,
        "e2e_handsets_per_second": round(n / e2e["wall"], 1),
        "e2e_link_handsets_per_cpu_second": round(n / e2e["cpu"], 1) if e2e["cpu"] else None,
        "handsets": n,
        "records_per_handset": round(new_records / n, 1),
        "records_before_the_call": round(before / n, 1),
        "records_per_second": round(new_records / rep["wall"]),
        "wall_s": round(rep["wall"], 3),
        "server_cpu_s": round(rep["cpu"], 3),
        "server_cpu_ms_per_handset": round(1000 * rep["cpu"] / n, 2),
        "replay_client_cpu_s": round(rep["client_cpu"], 3),
        "e2e_wall_s": round(e2e["wall"], 3),
        "e2e_server_cpu_s": round(e2e["cpu"], 3),
        "e2e_handsets_cpu_s": round(e2e["client_cpu"], 3),
        "concurrency": args.concurrency,
        "cpus": os.cpu_count(),
        "load_average_1min": round(rep["load"], 2),
        "e2e_load_average_1min": round(e2e["load"], 2),
    }
    if args.json:
        print(json.dumps(figures))
        return 0
    print(f"data link: {n} handsets, each a recall directive and {figures['records_per_handset']:g} "
          f"new log records, {args.concurrency} calls at once, one link process each run")
    print("replayed handsets (the link's throughput: a light client answers with each handset's "
          "recorded frames)")
    print(f"  served in           {rep['wall']:8.2f} s wall   -> {figures['link_handsets_per_second']:8.1f} "
          f"handsets/s  ({figures['records_per_second']} records/s)   goal >= 200")
    print(f"  link process CPU    {rep['cpu']:8.2f} s        -> {figures['link_handsets_per_cpu_second']:8.1f} "
          f"handsets per CPU second ({figures['server_cpu_ms_per_handset']} ms each)")
    print(f"  replay client CPU   {rep['client_cpu']:8.2f} s        (this process)   load average "
          f"{figures['load_average_1min']}")
    print("end to end (simulated handsets, their real cores on the same cores as the link)")
    print(f"  served in           {e2e['wall']:8.2f} s wall   -> {figures['e2e_handsets_per_second']:8.1f} "
          f"handsets/s")
    print(f"  link process CPU    {e2e['cpu']:8.2f} s        -> "
          f"{figures['e2e_link_handsets_per_cpu_second']:8.1f} handsets per CPU second")
    print(f"  handsets' side CPU  {e2e['client_cpu']:8.2f} s        (simulated cores and their modems, "
          f"this process)   load average {figures['e2e_load_average_1min']}")
    print(f"(this machine has {os.cpu_count()} cores)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
