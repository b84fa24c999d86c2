"""Wire efficiency and codec speed of the LCI-777 framing.

    python bench/wire.py [--json]

Prints, for a maximum-size log page and for small commands: wire bytes per payload byte,
the goodput a 115200-baud 8N1 link gives (payload bytes/s and as a fraction of the line's
11,520 B/s), and encode+decode throughput on CPython and under real MicroPython (the
unix port). JSON keys: line_rate_fraction (max frame), and per-case figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from host_tools.dev.mpy_unix import run_source  # noqa: E402
from protocol import framing, messages  # noqa: E402

LINE_BYTES_PER_S = 115200 // 10  # 8N1: 10 bit times per byte

CASES = {
    # a maximum-size log page with no zero byte in it: COBS's worst case (most overhead)
    "log_page_max": framing.Frame(
        messages.LOG_READ | messages.REPLY,
        bytes(1 + (i * 37 + 11) % 255 for i in range(framing.MAX_PAYLOAD)),
        seq=1,
        flags=framing.F_RESPONSE | framing.F_MORE,
    ),
    "status_request": framing.Frame(messages.STATUS, b"", seq=2),
    "ping_16": framing.Frame(messages.PING, bytes(range(1, 17)), seq=3),
    "token_220": framing.Frame(messages.TOKEN, bytes((i * 13) & 0xFF for i in range(222)), seq=4),
}


def efficiency(frame: framing.Frame) -> dict:
    wire = len(framing.encode(frame))
    payload = len(frame.payload)
    goodput = LINE_BYTES_PER_S * payload / wire
    return {
        "payload_bytes": payload,
        "wire_bytes": wire,
        "wire_per_payload_byte": round(wire / payload, 4) if payload else None,
        "goodput_bytes_per_s": round(goodput, 1),
        "line_fraction": round(payload / wire, 4),
    }


def cpython_throughput(frame: framing.Frame, seconds: float = 0.4) -> float:
    """Encode+decode round trips per second on CPython (median of 5 runs)."""
    rates = []
    for _ in range(5):
        n = 0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds / 5:
            framing.Decoder().feed(framing.encode(frame))
            n += 1
        rates.append(n / (time.perf_counter() - start))
    return statistics.median(rates)


GUEST = """
import sys, time
from protocol import framing
frame = framing.Frame(%d, bytes(%r), %d, %d)
wire = framing.encode(frame)
assert framing.Decoder().feed(wire) == [frame]
rates = []
for run in range(5):
    n = %d
    t0 = time.ticks_us()
    for i in range(n):
        framing.Decoder().feed(framing.encode(frame))
    dt = time.ticks_diff(time.ticks_us(), t0)
    rates.append(n * 1000000 / dt)
rates.sort()
print("RATE", rates[2])
"""


def micropython_throughput(frame: framing.Frame) -> float:
    n = 40 if len(frame.payload) > 100 else 300
    src = GUEST % (frame.type, frame.payload, frame.seq, frame.flags, n)
    result = run_source(src)
    for line in result.stdout.splitlines():
        if line.startswith("RATE "):
            return float(line.split()[1])
    raise SystemExit(f"bench/wire.py: MicroPython run failed:\n{result.stderr}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="wire efficiency and codec speed")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    figures: dict = {"cases": {}}
    for name, frame in CASES.items():
        row = efficiency(frame)
        row["cpython_frames_per_s"] = round(cpython_throughput(frame), 1)
        row["micropython_frames_per_s"] = round(micropython_throughput(frame), 1)
        row["cpython_payload_mb_per_s"] = round(row["cpython_frames_per_s"] * row["payload_bytes"] / 1e6, 3)
        row["micropython_payload_kb_per_s"] = round(row["micropython_frames_per_s"] * row["payload_bytes"] / 1e3, 2)
        figures["cases"][name] = row
    page = figures["cases"]["log_page_max"]
    figures["line_rate_fraction"] = page["line_fraction"]
    figures["max_frame_goodput_bytes_per_s"] = page["goodput_bytes_per_s"]
    figures["line_bytes_per_s"] = LINE_BYTES_PER_S
    if args.json:
        print(json.dumps(figures))
        return 0
    print(f"LCI-777 wire: 115200 baud 8N1 = {LINE_BYTES_PER_S} B/s on the line")
    print(f"{'case':16} {'payload':>7} {'wire':>5} {'wire/B':>7} {'goodput B/s':>11} {'fraction':>8}"
          f" {'CPython fr/s':>12} {'MicroPy fr/s':>12}")
    for name, r in figures["cases"].items():
        per = f"{r['wire_per_payload_byte']:.3f}" if r["wire_per_payload_byte"] else "-"
        print(f"{name:16} {r['payload_bytes']:7d} {r['wire_bytes']:5d} {per:>7} "
              f"{r['goodput_bytes_per_s']:11.1f} {r['line_fraction']:8.4f} "
              f"{r['cpython_frames_per_s']:12.1f} {r['micropython_frames_per_s']:12.1f}")
    print(f"line_rate_fraction (max frame): {figures['line_rate_fraction']:.4f}  (target >= 0.95)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
