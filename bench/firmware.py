"""Benchmark of the device core on the real VM: heap with its code, bundle size, CPython speed.

    python bench/firmware.py [--json] [--no-hil]

Every heap figure comes from MicroPython's unix port (64-bit; a 32-bit board needs about 60%)
running the bundle `make firmware` builds, laid out as `make flash` sends it to the unix
board, in one of two ways:
- files: the .mpy files on the path: their code is loaded into the heap (what a board
  flashed with files pays);
- romfs: the files packed by mpremote's romfs writer and mounted with vfs.VfsRom, as rp2 and
  esp32 mount their ROMFS partition: bytecode stays in the image. The unix port has no flash
  to map it from, so the image is read into the heap before anything is measured: it is
  counted as flash and subtracted from every romfs figure.

The scripted day (DAY_SCRIPT, the same source on both runtimes): boot a provisioned,
installed unit with 500 records already in its log; four drives with rolling retests
(07:00, 12:00 after one failed start test and its temporary lockout, 17:00, 21:00); a
service visit at 15:00 with a full calibration (as-found, adjust, two checks, finish) and
the session closed; at midnight a host downloads 500 log records over the protocol
(LOG_READ with the window HELLO offers, acknowledged page by page). The device is stepped at every deadline
it announces and at every scripted event. Tokens are checked by the test double
(tests/firmware/authority_double.py); the real Ed25519 check is in the HIL figure below.
The flash double (RamFlash) holds its files in the heap: they are flash on a board, and
are subtracted.

- boot_heap_bytes_unix_*: heap in use after importing the core and booting the unit, after
  a collection: code (files) or code objects (romfs) plus the device's data;
- peak_heap_bytes_unix_*: the smallest -X heapsize (bisected to 1 KB) in which the whole
  day completes with the VM's own GC, and does all it does with a 2 MB heap (the same
  operations, states, records and dump bytes: a device short of heap refuses a LOG_READ
  page and the download ends early), minus the flash double's files (and the image): the
  heap a board needs for the day, every transient included;
- min_heapsize_hil_unix_romfs: the smallest heap beyond the ROMFS image (bisected to 4 KB)
  at which the whole HIL story (tests/hil/test_story.py --device=unix: real Ed25519 tokens,
  keypad codes, log downloads, power cuts) passes --hil-repeats runs in a row (default 2),
  and so does every larger size the search tried: pass/fail is not monotonic in the heap
  size (where a large block lands in a fragmented heap moves with every allocation before
  it), so the bisection checks the two sizes above its answer and moves above any failure.
  hil_heaps_tried lists each size tried (runs passed, -1 a failure). Goal <= 131072 on the
  64-bit port.

Bundle: the .mpy bytes `make flash` sends to each board, the largest reported.
CPython: wall time of the same scripted day (boot excluded), median of 5 runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from host_tools.dev import flash, mpybuild, unix_board  # noqa: E402
from host_tools.dev.mpy_unix import run_source  # noqa: E402

# Runs unchanged under CPython (exec) and MicroPython (run_source). Module level only:
# the MicroPython run collects garbage here, between operations, never inside one.
DAY_SCRIPT = r'''
import gc
import sys

MICRO = sys.implementation.name == "micropython"


FLASH = []  # the flash double: its files sit in the heap here, in flash on a board


STORED_MAX = [0]


def stored():
    total = 0
    for flash in FLASH:
        for name in flash.files:
            total += len(flash.files[name]) + 16
    if total > STORED_MAX[0]:
        STORED_MAX[0] = total
    return total


def heap():
    if not MICRO:
        return 0
    return gc.mem_alloc() - stored()


def collect():
    if MICRO:
        gc.collect()


collect()
BASE = heap()

# Import leaf first, one module at a time, collecting in between: compiling the whole
# core in one import would make the VM collect inside the import machinery. These are the
# modules a board holds from boot; the token code, grants, calibration and provisioning come
# and go with their use.
for _name in (
    "protocol.cobs", "protocol.errors", "protocol.framing", "protocol.messages", "protocol.dedupe",
    "protocol.endpoint", "firmware.unload", "firmware.hal", "firmware.persist", "firmware.eventlog", "firmware.keypad",
    "firmware.config", "firmware.breath", "firmware.transitions_table",
    "firmware.machine", "firmware.timebase", "firmware.override", "firmware.display_texts",
    "firmware.compliance", "firmware.driving", "firmware.loop",
    "firmware.handler", "firmware.device", "firmware.ramflash", "firmware.authority",
):
    __import__(_name)
    collect()
CODE = heap() - BASE  # the core's code, compiled from .py, in the heap

from firmware import eventlog, hal
from firmware.config import Config
from firmware.device import Device
from firmware.ramflash import RamFlash
from firmware.handler import LOG_WINDOW, Handler
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
        Handler(self.device)  # the protocol side, wired as firmware/main.py does
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
    values += (BOOT, PEAK, CODE, PEAK_OP, LIVE, STORED_MAX[0])
    return "@@DAY " + " ".join([str(v) for v in values])


print(report())
'''


ROM_PRELUDE = """
import sys, vfs
_f = open(%(image)r, "rb")
vfs.mount(vfs.VfsRom(_f.read()), "/rom")
_f.close()
del _f
sys.path[:0] = ["/rom/lib"]
"""
HIL = REPO / "tests" / "hil" / "test_story.py"


# What a day did: a run that ends without error but did less (a LOG_READ page the device
# could not build for want of heap ends the download early) did not complete the day.
OUTCOME = ("ops", "steps", "compliance", "session", "log_count", "gain", "dump_bytes")


def same_day(report: dict | None, reference: dict) -> bool:
    return report is not None and all(report[key] == reference[key] for key in OUTCOME)


class Bundle:
    """The unix board's bundle, staged as files and packed as a ROMFS image."""

    def __init__(self, work: Path):
        report = mpybuild.build(work / "mpy")
        if report["failures"]:
            raise SystemExit("bench/firmware.py: mpy-cross failed: " + "; ".join(report["failures"]))
        self.mpy = work / "mpy"
        self.staged = unix_board.stage(self.mpy, work / "board")
        self.image = unix_board.romfs_image(self.staged, work / "bundle.romfs")
        self.image_bytes = self.image.stat().st_size

    def run_day(self, mode: str, heap: int) -> dict | None:
        """The day in a fresh VM with `heap` bytes (plus the image for romfs); None if it fails."""
        if mode == "romfs":
            source = ROM_PRELUDE % {"image": str(self.image)} + DAY_SCRIPT
            path = [REPO]
            heap += self.image_bytes
        else:
            source = DAY_SCRIPT
            path = [self.staged / "lib", REPO]
        result = run_source(source, heap_bytes=heap, path=path, timeout_s=600)
        for line in result.stdout.splitlines():
            if line.startswith("@@DAY"):
                fields = line.split()[1:]
                names = ("ops", "steps", "compliance", "session", "log_count", "gain", "dump_bytes",
                         "boot", "peak", "code", "peak_op", "live", "stored")
                out = dict(zip(names, fields, strict=True))
                for key in names:
                    if key not in ("compliance", "session", "peak_op"):
                        out[key] = int(out[key])
                return out
        return None

    def min_day_heap(self, mode: str, low: int, high: int, reference: dict) -> tuple[int, dict]:
        """Smallest heap (1 KB steps) in which the day completes with the outcome of
        `reference` (the run with ample heap), and that run's report."""
        best = self.run_day(mode, high)
        if not same_day(best, reference):
            raise SystemExit(f"bench/firmware.py: the day fails ({mode}) even with {high} bytes")
        while high - low > 1024:
            mid = (low + high) // 2 // 1024 * 1024
            report = self.run_day(mode, mid)
            if not same_day(report, reference):
                low = mid
            else:
                high, best = mid, report
        return high, best

    def hil_passes(self, heap: int) -> bool:
        """One run of the whole HIL story on the unix board with `heap` bytes beyond the image."""
        env = dict(os.environ, LCI_HIL_UNIX_HEAP=str(heap))
        env.pop("LCI_HIL_UNIX_FILES", None)
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", str(HIL), "--device=unix"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=1800,
        )
        return result.returncode == 0

    def hil_holds(self, heap: int, repeats: int, tried: dict) -> bool:
        """True when the story passes `repeats` times in a row at `heap` (stops at the first
        failure); the outcome is kept in `tried` (heap -> runs passed, or -1 for a failure)."""
        for _ in range(repeats):
            if not self.hil_passes(heap):
                tried[heap] = -1
                return False
        tried[heap] = repeats
        return True

    def min_hil_heap(self, low: int, high: int, repeats: int = 2, step: int = 4096) -> tuple[int, dict]:
        """The smallest heap (on a `step` grid) at which the story passes `repeats` runs in a
        row, as does every larger size tested; and every size tested with its outcome.

        Pass/fail is not monotonic in the heap size on a real VM (where a large block lands in
        a fragmented heap moves with every allocation before it), so a plain bisection can
        stop on a lucky size. This one bisects with `repeats` runs per size, then checks the
        two grid sizes above the answer; any failure at or above the answer moves it just
        above the largest failing size, and the check starts again there.
        """
        tried: dict = {}
        if not self.hil_holds(high, repeats, tried):
            raise SystemExit(f"bench/firmware.py: the HIL story fails even with {high} bytes beyond the image")
        while high - low > step:
            mid = (low + high) // 2 // step * step
            if self.hil_holds(mid, repeats, tried):
                high = mid
            else:
                low = mid
        answer = high
        while True:
            for size in (answer + step, answer + 2 * step):
                if size not in tried:
                    self.hil_holds(size, repeats, tried)
            failing = [size for size, passed in tried.items() if passed < 0 and size >= answer]
            if not failing:
                return answer, tried
            answer = max(failing) + step
            if answer not in tried:
                self.hil_holds(answer, repeats, tried)


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


def bundle_bytes(bundle: Bundle) -> dict:
    """The .mpy bytes `make flash` sends to each board, and the largest of them."""
    per_board = {board: sum(local.stat().st_size for local, _ in flash.plan(bundle.mpy, board))
                 for board in flash.BOARDS}
    largest = max(per_board, key=per_board.get)
    return {"bundle": per_board[largest], "board": largest, "per_board": per_board}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="one JSON object")
    parser.add_argument("--no-hil", action="store_true", help="skip the HIL bisection (minutes)")
    parser.add_argument("--hil-repeats", type=int, default=2, metavar="N",
                        help="story runs in a row that must pass at a heap size (default 2)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        bundle = Bundle(Path(tmp))
        big = 2 * 1024 * 1024
        files = bundle.run_day("files", big)
        romfs = bundle.run_day("romfs", big)
        if files is None or romfs is None:
            raise SystemExit("bench/firmware.py: the day failed on the unix port with a 2 MB heap")
        files_need, files_run = bundle.min_day_heap("files", 16 * 1024, 512 * 1024, files)
        romfs_need, romfs_run = bundle.min_day_heap("romfs", 16 * 1024, 512 * 1024, romfs)
        hil, hil_tried = (None, {}) if args.no_hil else bundle.min_hil_heap(64 * 1024, 320 * 1024, args.hil_repeats)
        sizes = bundle_bytes(bundle)
        image = bundle.image_bytes
    seconds, namespace = cpython_day_seconds()
    cpy = namespace["day"]
    figures = {
        "boot_heap_bytes_unix_files": files["code"] + files["boot"],
        "peak_heap_bytes_unix_files": files_need - files_run["stored"],
        "boot_heap_bytes_unix_romfs": romfs["code"] + romfs["boot"],
        "peak_heap_bytes_unix_romfs": romfs_need - romfs_run["stored"],
        "min_heapsize_hil_unix_romfs": hil,
        "hil_runs_in_a_row": None if hil is None else args.hil_repeats,
        "hil_heaps_tried": {str(k): v for k, v in sorted(hil_tried.items())},
        "romfs_image_bytes": image,
        "bundle_bytes": sizes["bundle"],
        "bundle_board": sizes["board"],
        "code_heap_bytes_unix_files": files["code"],
        "code_heap_bytes_unix_romfs": romfs["code"],
        "sim_day_seconds_cpython": round(seconds, 4),
        "day_operations": files["ops"],
        "day_device_steps": files["steps"],
        "day_log_records": files["log_count"],
        "dump_wire_bytes": files["dump_bytes"],
    }
    for run in (files, romfs):
        if (run["compliance"], run["session"]) != (cpy.device.compliance.state, cpy.device.session.state):
            raise SystemExit("bench/firmware.py: the two runtimes ended the day in different states")
    if args.json:
        print(json.dumps(figures))
        return 0
    f = figures
    print("LCI-777 firmware core on MicroPython's unix port (64-bit), the bundle make flash sends;")
    print("one scripted day (4 drives with retests, 1 failed start, 1 calibration, 500-record dump)")
    print(f"  files: heap after boot         {f['boot_heap_bytes_unix_files']:>9,} bytes   "
          f"(code {f['code_heap_bytes_unix_files']:,} of it)")
    print(f"  files: heap the day needs      {f['peak_heap_bytes_unix_files']:>9,} bytes   "
          "(smallest -X heapsize that completes it, flash double's files subtracted)")
    print(f"  romfs: heap after boot         {f['boot_heap_bytes_unix_romfs']:>9,} bytes   "
          f"(code objects {f['code_heap_bytes_unix_romfs']:,}; the {image:,}-byte image is flash, not counted)")
    print(f"  romfs: heap the day needs      {f['peak_heap_bytes_unix_romfs']:>9,} bytes   "
          "(same, image subtracted)")
    if hil is None:
        print("  HIL story, smallest heap       (skipped: --no-hil)")
    else:
        print(f"  HIL story, smallest heap       {hil:>9,} bytes   (romfs, beyond the image; "
              "real tokens, codes, log downloads, power cuts; goal <= 131,072)")
        print(f"    passed {args.hil_repeats} runs in a row there and at every larger size tested "
              "(pass/fail is not monotonic in the heap size); tried: "
              + ", ".join(f"{k:,} {'pass' if v > 0 else 'FAIL'}" for k, v in sorted(hil_tried.items())))
    print(f"  .mpy bundle ({f['bundle_board']})             {f['bundle_bytes']:>9,} bytes   (target <= 98,304;"
          f" per board: {sizes['per_board']})")
    print(f"  CPython wall time for the day   {seconds:>9.4f} s       ({files['steps']} device steps, "
          f"{files['ops']} operations)")
    print(f"  end of day: compliance {files['compliance']}, session {files['session']}, {files['log_count']} log records,"
          f" gain {files['gain']}, dump {files['dump_bytes']:,} wire bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
