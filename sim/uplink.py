"""The simulated handset's data link: a coverage schedule, and calls out to the link server.

A real LCI-777 with a cellular modem calls the provider's link server when it has coverage and
speaks the framed protocol over TCP, exactly as over its USB port (protocol/SPEC.md); the
server is the host. Here the "modem" is a TCP (optionally TLS) connection from the simulator:
the server's bytes go into the handset's serial input, the handset's answers go back, until
the server hangs up. The virtual clock stands still during a call (a call takes milliseconds
of the handset's life).

Coverage schedule (`--coverage`), on the virtual clock:

    always | never
    on 08:00-18:00                   every day from 08:00 to 18:00, off otherwise
    on 08:00-12:00,14:00-18:00       two windows a day
    on 20:00-06:00                   across midnight
    off d21-d28                      on, except from day 21 00:00 to day 28 00:00
    on 07:00-22:00; off d3@12:00-d5  clauses in order, a later one overrides an earlier one

A RANGE is `HH:MM-HH:MM` (every day; `24:00` may end it) or `dN[@HH:MM]-dM[@HH:MM]` (from a
virtual day and time to another; day 0 is the first day). The state outside every clause is
the opposite of the first clause's word (`on ...` alone means off otherwise). The handset calls
when coverage begins and then every `dial_every` while it lasts.

`dial_async` is the call on an asyncio event loop (a fleet of thousands on one loop);
`dial` is the same call on a blocking socket (the demo, lci-sim serve). A `tap(direction,
data)` may look at or change the bytes in flight ("down": server to handset, "up": handset to
server) and returns the bytes to pass on, None to cut the connection before them, or
Cut(prefix) to pass a prefix and cut after it: a lossy link in tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import socket
import ssl as ssl_module
from collections.abc import Callable

from sim.simulator import DAY, HOUR, MINUTE, Simulator


class Cut(bytes):
    """What a tap returns to let these bytes through and then cut the connection."""


Tap = Callable[[str, bytes], "bytes | None"]


class CoverageError(ValueError):
    """A coverage schedule that cannot be read (the message says where)."""


_CLOCK = r"(\d{1,2}):(\d{2})"
_DAILY = re.compile(rf"^{_CLOCK}-{_CLOCK}$")
_POINT = r"d(\d+)(?:@(\d{1,2}):(\d{2}))?"
_SPAN = re.compile(rf"^{_POINT}-{_POINT}$")


def _ms_of_day(hours: str, minutes: str, text: str, end: bool = False) -> int:
    h, m = int(hours), int(minutes)
    if m > 59 or h > 24 or (h == 24 and (m or not end)):
        raise CoverageError(f"{text!r}: {hours}:{minutes} is not a time of day")
    return h * HOUR + m * MINUTE


class Coverage:
    """When the handset has a data link. `covered(t_ms)` on the virtual clock."""

    def __init__(self, spec: str = "always", origin_ms: int = 0):
        self.spec = spec.strip()
        self.origin_ms = origin_ms  # virtual time of day 0, 00:00
        self.clauses: list[tuple[bool, list[tuple[str, int, int]]]] = []
        self.base = True
        text = self.spec.lower()
        if text in ("always", "on", ""):
            return
        if text in ("never", "off"):
            self.base = False
            return
        for clause in text.split(";"):
            clause = clause.strip()
            word, _, ranges = clause.partition(" ")
            if word not in ("on", "off") or not ranges.strip():
                raise CoverageError(f"{clause!r}: a clause is 'on RANGES' or 'off RANGES'")
            parsed = [self._range(r.strip()) for r in ranges.split(",")]
            self.clauses.append((word == "on", parsed))
        self.base = not self.clauses[0][0]

    @staticmethod
    def _range(text: str) -> tuple[str, int, int]:
        daily = _DAILY.match(text)
        if daily:
            a = _ms_of_day(daily[1], daily[2], text)
            b = _ms_of_day(daily[3], daily[4], text, end=True)
            if a == b:
                raise CoverageError(f"{text!r}: an empty window")
            return ("daily", a, b)
        span = _SPAN.match(text)
        if span:
            a = int(span[1]) * DAY + (_ms_of_day(span[2], span[3], text) if span[2] else 0)
            b = int(span[4]) * DAY + (_ms_of_day(span[5], span[6], text, end=True) if span[5] else 0)
            if b <= a:
                raise CoverageError(f"{text!r}: the end is not after the start")
            return ("span", a, b)
        raise CoverageError(f"{text!r}: a range is HH:MM-HH:MM or dN[@HH:MM]-dM[@HH:MM]")

    def covered(self, t_ms: int) -> bool:
        t = t_ms - self.origin_ms
        state = self.base
        for on, ranges in self.clauses:
            for kind, a, b in ranges:
                if kind == "daily":
                    tod = t % DAY
                    inside = a <= tod < b if a < b else (tod >= a or tod < b)
                else:
                    inside = a <= t < b
                if inside:
                    state = on
        return state

    def _boundaries(self, t0: int, t1: int) -> list[int]:
        points = {t0}
        day0 = (t0 - self.origin_ms) // DAY
        day1 = (t1 - self.origin_ms) // DAY
        for _, ranges in self.clauses:
            for kind, a, b in ranges:
                if kind == "daily":
                    for day in range(day0, day1 + 1):
                        for x in (a, b % DAY):
                            points.add(self.origin_ms + day * DAY + x)
                else:
                    points.update((self.origin_ms + a, self.origin_ms + b))
        return sorted(p for p in points if t0 <= p < t1)

    def dial_times(self, t0: int, t1: int, every_ms: int) -> list[int]:
        """When the handset calls in [t0, t1): each time coverage begins (or at t0 if it is
        on already), then every `every_ms` while it lasts."""
        out: list[int] = []
        points = self._boundaries(t0, t1) + [t1]
        segment_start = None
        for a, b in zip(points, points[1:], strict=False):
            on = self.covered(a)
            if on and segment_start is None:
                segment_start = a
            if not on:
                segment_start = None
                continue
            # dials of this segment that fall in [a, b)
            assert segment_start is not None
            k = max(0, -(-(a - segment_start) // every_ms))
            t = segment_start + k * every_ms
            while t < b:
                out.append(t)
                t += every_ms
        return out


# ---- the call --------------------------------------------------------------------------------------
class DialResult(dict):
    """{'ok': the server hung up normally, 'error': why not, 'bytes_up', 'bytes_down'}."""


def _result(ok: bool, error: str | None, up: int, down: int) -> DialResult:
    return DialResult(ok=ok, error=error, bytes_up=up, bytes_down=down)


def _turn(sim: Simulator, data: bytes, outgoing: list[bytes],
          tap: Tap | None) -> tuple[bytes, str | None]:
    """One turn of the modem, the same on both sockets: the server's bytes into the handset (through
    the tap, which may cut the line), then what the handset answered, to send. Returns (bytes to
    send, None), or (what still goes out before the line breaks, why the call ended)."""
    if tap is not None:
        data = tap("down", data)
        if data is None or isinstance(data, Cut):
            if data and sim.powered:
                sim.serial_in(bytes(data))
            return b"", "connection lost (server to handset)"
    if sim.powered:
        sim.serial_in(data)
    if not sim.powered:  # the power went (a cut in a flash write): the modem with it
        return b"", "the handset lost power"
    if not outgoing:
        return b"", None
    chunk = b"".join(outgoing)
    outgoing.clear()
    if tap is not None:
        passed = tap("up", chunk)
        if passed is None or isinstance(passed, Cut):
            return (bytes(passed) if passed else b""), "connection lost (handset to server)"
        chunk = passed
    return bytes(chunk), None


async def dial_async(sim: Simulator, host: str, port: int, *, ssl: ssl_module.SSLContext | None = None,
                     server_hostname: str | None = None, timeout: float | None = 30.0,
                     tap: Tap | None = None) -> DialResult:
    """One call to the link server on the running event loop; returns when the server hangs up,
    the connection breaks, or `timeout` seconds pass without a byte from the server (None: no
    limit)."""
    if not sim.powered:
        return _result(False, "the handset is off", 0, 0)
    try:
        reader, writer = await asyncio.open_connection(
            host, port, ssl=ssl, server_hostname=server_hostname if ssl else None)
    except (OSError, ssl_module.SSLError) as exc:
        return _result(False, f"cannot reach {host}:{port}: {exc}", 0, 0)
    sim.line_reset()  # a new call: nothing half-received on the last one spoils its first frame
    outgoing: list[bytes] = []
    sim.serial_sinks.append(outgoing.append)
    up = down = 0
    error = None
    try:
        while True:
            try:
                async with asyncio.timeout(timeout):
                    data = await reader.read(65536)
            except TimeoutError:
                error = f"no word from the server for {timeout:g} s"
                break
            if not data:
                break  # the server hung up: the call is over
            down += len(data)
            chunk, error = _turn(sim, data, outgoing, tap)
            if chunk:
                writer.write(chunk)
                await writer.drain()
            if error is not None:
                break
            up += len(chunk)
    except (ConnectionError, OSError, ssl_module.SSLError) as exc:
        error = f"connection lost: {exc}"
    finally:
        with contextlib.suppress(ValueError):
            sim.serial_sinks.remove(outgoing.append)
        if error is not None:
            writer.transport.abort()  # the modem drops the line: no goodbye
        else:
            writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    return _result(error is None, error, up, down)


def dial(sim: Simulator, host: str, port: int, *, ssl: ssl_module.SSLContext | None = None,
         server_hostname: str | None = None, timeout: float | None = 30.0,
         tap: Tap | None = None) -> DialResult:
    """The same call on a blocking socket (for a caller without an event loop)."""
    if not sim.powered:
        return _result(False, "the handset is off", 0, 0)
    try:
        raw = socket.create_connection((host, port), timeout=timeout)
        sock = ssl.wrap_socket(raw, server_hostname=server_hostname or host) if ssl else raw
    except (OSError, ssl_module.SSLError) as exc:
        return _result(False, f"cannot reach {host}:{port}: {exc}", 0, 0)
    sim.line_reset()  # a new call: nothing half-received on the last one spoils its first frame
    outgoing: list[bytes] = []
    sim.serial_sinks.append(outgoing.append)
    up = down = 0
    error = None
    try:
        while True:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                error = f"no word from the server for {timeout:g} s"
                break
            if not data:
                break
            down += len(data)
            chunk, error = _turn(sim, data, outgoing, tap)
            if chunk:
                sock.sendall(chunk)
            if error is not None:
                break
            up += len(chunk)
    except (OSError, ssl_module.SSLError) as exc:
        error = f"connection lost: {exc}"
    finally:
        with contextlib.suppress(ValueError):
            sim.serial_sinks.remove(outgoing.append)
        with contextlib.suppress(OSError):
            sock.close()
    return _result(error is None, error, up, down)


class LossyLink:
    """A tap that cuts the connection at a seeded random byte: each byte in either direction
    ends the call with probability `rate` (a modem losing coverage mid-call)."""

    def __init__(self, seed: int | str, rate: float):
        self.rng = random.Random(f"lci-uplink:{seed}")
        self.rate = rate
        self.cuts = 0

    def __call__(self, direction: str, data: bytes) -> bytes | None:
        if self.rate <= 0:
            return data
        for position in range(len(data)):
            if self.rng.random() < self.rate:
                self.cuts += 1
                return Cut(data[:position])
        return data


def parse_address(text: str, *, any_port: bool = False) -> tuple[str, int]:
    """'HOST:PORT' (IPv6 as [::1]:PORT) -> (host, port); ValueError with the reason.
    any_port: port 0 (a listener's "any free port") is allowed."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not (0 if any_port else 1) <= int(port) < 65536:
        raise ValueError(f"{text!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


class Dialer:
    """A handset that calls when its coverage says so, for a loop that ticks in real time
    (lci-sim serve): tick() makes the call that is due, if any, on a blocking socket, and puts
    it on the simulator's timeline ("modem", "uplink_call")."""

    LOOKAHEAD_MS = 8 * DAY

    def __init__(self, sim: Simulator, address: tuple[str, int], coverage: Coverage, every_ms: int,
                 *, ssl: ssl_module.SSLContext | None = None, server_hostname: str | None = None,
                 timeout: float | None = 30.0):
        self.sim = sim
        self.host, self.port = address
        self.coverage = coverage
        self.every_ms = every_ms
        self.ssl = ssl
        self.server_hostname = server_hostname
        self.timeout = timeout
        self.calls: list[DialResult] = []
        self._next: int | None = None
        self._horizon = -1
        self._plan(sim.t_ms)

    def _plan(self, after: int) -> None:
        times = self.coverage.dial_times(after, after + self.LOOKAHEAD_MS, self.every_ms)
        self._next = times[0] if times else None
        self._horizon = after + self.LOOKAHEAD_MS

    def tick(self) -> DialResult | None:
        now = self.sim.t_ms
        if self._next is None:
            if now >= self._horizon:
                self._plan(now)
            return None
        if now < self._next:
            return None
        result = dial(self.sim, self.host, self.port, ssl=self.ssl,
                      server_hostname=self.server_hostname, timeout=self.timeout)
        self.calls.append(result)
        self.sim.emit("modem", "uplink_call", dict(result, server=f"{self.host}:{self.port}"))
        self._plan(now + 1)
        return result
