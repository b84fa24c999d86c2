"""The host side of the framed protocol (protocol/SPEC.md) over an asyncio stream.

`AsyncHost` is host_tools.link.Link for a server with thousands of connections: the same
rules — one request outstanding, a new seq per request, retransmission of the identical
frame after a timeout (F_RETRY), stale replies discarded by seq, events kept aside, NACKs
raised as host_tools.link.Nack, replies judged by Link's own decoder — and the same windowed
LOG_READ with go-back-N resume, but awaiting the stream instead of blocking on a port.

A closed connection ends everything at once (LinkClosed): the handset hung up or its modem
lost coverage; whatever was not acknowledged stays to be done at its next call. A timeout of
None waits for the handset with no limit (a peer that never answers is then noticed by whoever
runs the loop, not by the host).

One process serves thousands of calls, so the byte work uses the `cobs` package's C codec
(FastDecoder, encode_frame): the same frames as protocol/framing.py's pure-Python codec, which
the device side keeps (tests/provider/link/test_host_codec.py checks they agree). Log pages
that arrive together are acknowledged together (LOG_ACK is cumulative, SPEC 7.3). Frames
are queued by send() and written together when the host next waits for the handset (flush):
one socket write per turn of the conversation, a stream's last LOG_ACK riding with the next
request; requests() sends independent requests in one write (SPEC 4.6: up to 4 outstanding).
"""

from __future__ import annotations

import asyncio
import os

from cobs import cobs as c_cobs

from host_tools.link import (
    HOST_PROTO_MAX,
    HOST_PROTO_MIN,
    SLOW_TYPES,
    Link,
    LinkError,
    LinkTimeout,
    ProtocolVersionError,
    log_ack,
    log_read,
    page_records,
)
from protocol import framing, messages

READ_CHUNK = 65536
MAX_OUTSTANDING = 4  # requests a host may have unanswered (SPEC 4.6)
WRITE_HIGH_WATER = 65536  # bytes the socket may hold unsent before a send waits


class FastDecoder(framing.Decoder):
    """protocol.framing.Decoder with the C COBS decoder: the same frames, drops and counts."""

    def _finish(self, out):
        if self._discarding:
            self._discarding = False
            return
        if not self._buf:
            return
        try:
            raw = c_cobs.decode(bytes(self._buf))
        except c_cobs.DecodeError:
            raw = None
        self._buf = bytearray()
        if raw is None:
            self.drops["cobs"] += 1
            return
        frame = framing.parse_body(raw)
        if isinstance(frame, str):
            self.drops[frame] += 1
            return
        self.frames += 1
        out.append(frame)


def encode_frame(frame: framing.Frame) -> bytes:
    """framing.encode with the C COBS encoder."""
    return c_cobs.encode(framing.body(frame)) + b"\x00"


class LinkClosed(LinkError):
    """The handset closed the connection (or it broke)."""


class AsyncHost:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                 timeout: float | None = 5.0, slow_timeout: float | None = 10.0, retries: int = 2,
                 description: str = "handset"):
        self.reader = reader
        self.writer = writer
        self.timeout = timeout
        self.slow_timeout = slow_timeout
        self.retries = retries
        self.description = description
        self.decoder = FastDecoder()
        self.frames: list[framing.Frame] = []
        self.events = 0
        self.retransmissions = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self._seq = int.from_bytes(os.urandom(2), "little")
        self._flushed = False
        self._out: list[bytes] = []  # frames queued for the next write

    # Link's rules for judging a reply (version, NACK, type, exact layout), shared as they are
    _decode_reply = Link._decode_reply

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFFFF
        return self._seq

    def send(self, frame: framing.Frame) -> None:
        """Queue a frame; it goes out with everything queued, in one write, when the host next
        waits for the handset (or hangs up)."""
        wire = encode_frame(frame)
        if not self._flushed:
            wire = b"\x00" + wire  # ends whatever the line held before we spoke
            self._flushed = True
        self.bytes_out += len(wire)
        self._out.append(wire)

    async def flush(self) -> None:
        """One write (one socket send) of every queued frame; waits only when the socket's
        buffer is full (a handset that reads slowly)."""
        if not self._out:
            return
        wire = self._out[0] if len(self._out) == 1 else b"".join(self._out)
        self._out.clear()
        if self.writer.is_closing():
            raise LinkClosed(f"{self.description}: connection lost while sending")
        self.writer.write(wire)
        if self.writer.transport.get_write_buffer_size() > WRITE_HIGH_WATER:
            try:
                await self.writer.drain()
            except (ConnectionError, OSError) as exc:
                raise LinkClosed(f"{self.description}: connection lost while sending ({exc})") from None

    async def _frame(self, timeout: float | None) -> framing.Frame | None:
        """The next frame that is not an event, or None after `timeout` seconds of silence
        (timeout None: waits until a frame comes or the connection ends)."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            while self.frames:
                frame = self.frames.pop(0)
                if frame.is_event:
                    self.events += 1
                    continue
                return frame
            await self.flush()
            if deadline is not None and deadline <= loop.time():
                return None
            try:
                async with asyncio.timeout_at(deadline):
                    data = await self.reader.read(READ_CHUNK)
            except TimeoutError:
                return None
            except (ConnectionError, OSError) as exc:
                raise LinkClosed(f"{self.description}: connection lost ({exc})") from None
            if not data:
                raise LinkClosed(f"{self.description} hung up")
            self.bytes_in += len(data)
            self.frames.extend(self.decoder.feed(data))

    async def request(self, type_: int, **fields) -> dict:
        return (await self.requests((type_, fields)))[0]

    async def requests(self, *asks: tuple[int, dict]) -> list[dict]:
        """Requests that do not depend on each other, sent in one write (at most 4 outstanding,
        SPEC 4.6), each with its own seq and answered by seq in any order; those unanswered
        after the timeout are resent identically (F_RETRY). The decoded replies in the order
        asked; the first NACK among them (in that order) is raised."""
        assert 1 <= len(asks) <= MAX_OUTSTANDING
        frames = [framing.Frame(type_, messages.encode(messages.request_layout(type_), fields),
                                seq=self._next_seq()) for type_, fields in asks]
        waits = [self.slow_timeout if f.type in SLOW_TYPES else self.timeout for f in frames]
        timeout = None if None in waits else max(wait or 0.0 for wait in waits)
        asked = {frame.seq for frame in frames}
        replies: dict[int, framing.Frame] = {}
        for attempt in range(self.retries + 1):
            for frame in frames:
                if frame.seq in replies:
                    continue
                if attempt:
                    frame.flags |= framing.F_RETRY
                    self.retransmissions += 1
                self.send(frame)
            while len(replies) < len(frames):
                reply = await self._frame(timeout)
                if reply is None:
                    break  # silence: retransmit the identical requests still unanswered
                if reply.is_response and reply.seq in asked:
                    replies.setdefault(reply.seq, reply)
            else:
                return [self._decode_reply(frame.type, replies[frame.seq]) for frame in frames]
        missing = [messages.name_of(f.type) for f in frames if f.seq not in replies]
        raise LinkTimeout(f"no reply to {' and '.join(missing)} from {self.description} "
                          f"after {self.retries + 1} tries of {timeout:g} s")

    async def hello(self) -> dict:
        info = await self.request(messages.HELLO, proto_min=HOST_PROTO_MIN,
                                  proto_max=HOST_PROTO_MAX, host_nonce=os.urandom(8))
        if not HOST_PROTO_MIN <= info["proto"] <= HOST_PROTO_MAX:
            raise ProtocolVersionError(f"{self.description} chose protocol v{info['proto']}")
        return info

    async def read_log(self, start: int, count: int, window: int) -> list[tuple[int, list[bytes]]]:
        """Pages (first index, records) from `start`, in order; a gap or a silence asks again
        from the first record missing (a new seq), `retries` times without progress at most."""
        end = start + count
        expected = start
        misses = 0
        pages: list[tuple[int, list[bytes]]] = []
        while expected < end:
            seq = self._next_seq()
            self.send(log_read(seq, expected, end - expected, window))
            while expected < end:
                frame = await self._frame(self.timeout)
                if frame is not None and (not frame.is_response or frame.seq != seq):
                    continue  # a stale page of a replaced stream
                if frame is not None:
                    page = self._decode_reply(messages.LOG_READ, frame)
                if frame is None or page["first"] != expected:
                    misses += 1
                    if misses > self.retries:
                        raise LinkTimeout(f"log upload from {self.description} makes no progress "
                                          f"at record {expected}")
                    self.retransmissions += 1
                    break
                misses = 0
                records = page_records(page, expected)
                expected += len(records)
                if records:
                    pages.append((page["first"], records))
                last = not frame.flags & framing.F_MORE
                if last or not self.frames:
                    # pages already here are acknowledged by the LOG_ACK of the last of them;
                    # the last one goes out with the next request
                    self.send(log_ack(seq, expected))
                if last:
                    return pages
        return pages

    async def close(self) -> None:
        if self._out and not self.writer.is_closing():
            self.writer.write(b"".join(self._out))
            self._out.clear()
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass
