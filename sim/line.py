"""The serial line between the host and the simulated handset: faults and line-rate pacing.

`Faults` damages bytes with seeded probabilities (drop, duplicate, corrupt one bit), the
same way every run of a seed. `Line` is one direction of a UART: bytes queued at a time
arrive `10 / baud` seconds each later, back to back (start bit, 8 data bits, stop bit),
so a megabyte takes as long as it would on the real cable. Times are integer
microseconds on whatever clock the caller uses (the virtual clock in-process, the wall
clock behind a pty or TCP socket); baud 0 means no pacing (bytes arrive at once).
"""

from __future__ import annotations

import random
from collections import deque

US_PER_S = 1_000_000
BITS_PER_BYTE = 10  # 8N1


class Faults:
    """Seeded byte damage: each byte is dropped, duplicated or has one bit flipped."""

    def __init__(self, seed: int | str = 0, drop: float = 0.0, duplicate: float = 0.0, corrupt: float = 0.0):
        for name, rate in (("drop", drop), ("duplicate", duplicate), ("corrupt", corrupt)):
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} rate must be within 0..1, got {rate}")
        if drop + duplicate + corrupt > 1.0:
            raise ValueError("drop + duplicate + corrupt rates exceed 1")
        self.rng = random.Random(f"lci-sim-line:{seed}")
        self.drop = drop
        self.duplicate = duplicate
        self.corrupt = corrupt
        self.dropped = self.duplicated = self.corrupted = 0

    @property
    def active(self) -> bool:
        return bool(self.drop or self.duplicate or self.corrupt)

    def __call__(self, data: bytes) -> bytes:
        if not self.active:
            return data
        out = bytearray()
        for byte in data:
            roll = self.rng.random()
            if roll < self.drop:
                self.dropped += 1
                continue
            if roll < self.drop + self.duplicate:
                self.duplicated += 1
                out.append(byte)
            elif roll < self.drop + self.duplicate + self.corrupt:
                self.corrupted += 1
                byte ^= 1 << self.rng.randrange(8)
            out.append(byte)
        return bytes(out)

    def stats(self) -> dict:
        return {"dropped": self.dropped, "duplicated": self.duplicated, "corrupted": self.corrupted}


class Line:
    """One direction of the cable: send(data, now_us) queues, due(now_us) delivers."""

    def __init__(self, baud: int = 0, faults: Faults | None = None):
        if baud < 0:
            raise ValueError("baud must be >= 0")
        self.baud = baud
        self.faults = faults
        self.busy_until_us = 0
        self._queue: deque[tuple[int, bytes]] = deque()  # (arrival time, bytes)
        self.bytes_sent = 0

    def byte_time_us(self) -> float:
        return BITS_PER_BYTE * US_PER_S / self.baud if self.baud else 0.0

    def send(self, data: bytes, now_us: int) -> None:
        if self.faults is not None:
            data = self.faults(data)
        if not data:
            return
        self.bytes_sent += len(data)
        if not self.baud:
            self._queue.append((now_us, data))
            return
        start = max(now_us, self.busy_until_us)
        # deliver in small bursts (as a UART FIFO would), each when its last byte is in
        burst = max(1, self.baud // 10_000)
        step = self.byte_time_us()
        for i in range(0, len(data), burst):
            chunk = data[i : i + burst]
            arrival = start + int(round((i + len(chunk)) * step))
            self._queue.append((arrival, chunk))
        self.busy_until_us = start + int(round(len(data) * step))

    def next_due_us(self) -> int | None:
        return self._queue[0][0] if self._queue else None

    def due(self, now_us: int) -> bytes:
        out = bytearray()
        while self._queue and self._queue[0][0] <= now_us:
            out.extend(self._queue.popleft()[1])
        return bytes(out)

    def pending(self) -> int:
        return sum(len(chunk) for _, chunk in self._queue)

    def clear(self) -> None:
        self._queue.clear()
