"""The host side of the LCI-777 serial link: transports, requests, retransmission, log streams.

Shape (after mpremote): a small `Transport` interface — write bytes, read bytes with a
timeout, close — with `SerialTransport` on pyserial behind it (any pyserial URL: a device
path, ``socket://host:port``, ``rfc2217://…``, ``loop://``). The simulator offers a
second implementation in-process. `Link` speaks the protocol over any transport:
request/reply with sequence numbers, retransmission after a timeout, NACKs as
exceptions, unsolicited events kept aside, and windowed log streaming that resumes
from the first missing record.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from typing import Protocol

import serial

from protocol import error_texts, errors, framing, messages
from protocol.messages import MessageError

HOST_PROTO_MIN = 1
HOST_PROTO_MAX = framing.VERSION


# ---- errors ------------------------------------------------------------------------------
class LinkError(Exception):
    """Base of every link failure; str() is one line a person can act on."""


class NoSuchPort(LinkError):
    pass


class LinkTimeout(LinkError):
    """No reply came. `maybe_applied` is True when a request that changes the device went
    out (at least once) before the silence: the device may have done it."""

    maybe_applied = False


class LinkLost(LinkError):
    """The cable or connection is gone (port closed, peer hung up): never a protocol problem.
    `maybe_applied` as for LinkTimeout."""

    maybe_applied = False


class ProtocolVersionError(LinkError):
    pass


class Nack(LinkError):
    def __init__(self, code: int, request_type: int, detail: str = ""):
        self.code = code
        self.request_type = request_type
        self.detail = detail
        text = f"device refused {messages.name_of(request_type)}: {error_texts.meaning(code)}"
        text += f" (NACK 0x{code:02x}{', ' + detail if detail else ''})"
        super().__init__(text)


class BadReply(LinkError):
    pass


class BadRequest(LinkError):
    """The host tried to send something the protocol cannot carry (a bug or bad input)."""


# requests whose handling involves signature checks or sensor sampling on the device
SLOW_TYPES = (messages.TOKEN, messages.CODE_ENTER, messages.PROVISION, messages.CALIBRATE)
# requests that change the device: once one went out, silence means "it may have been done"
CHANGING_TYPES = (messages.TOKEN, messages.CODE_REQUEST, messages.CODE_ENTER, messages.PROVISION,
                  messages.CALIBRATE, messages.BENCH)
SLOW_TIMEOUT = 3.0


# ---- transports ----------------------------------------------------------------------------
class Transport(Protocol):
    description: str

    def write(self, data: bytes) -> None: ...

    def read(self, timeout: float) -> bytes:
        """Bytes received within `timeout` seconds (b"" if none)."""
        ...

    def close(self) -> None: ...


class SerialTransport:
    """Any pyserial URL or device path, opened with serial.serial_for_url."""

    def __init__(self, url: str, baudrate: int = 115200):
        self.description = url
        try:
            self._port = serial.serial_for_url(url, baudrate=baudrate, timeout=0, exclusive=None)
            self._port.reset_input_buffer()  # nothing said before we opened is ours
        except (serial.SerialException, ValueError, OSError) as exc:
            raise NoSuchPort(f"cannot open {url}: {_first_line(exc)}") from None

    def write(self, data: bytes) -> None:
        try:
            self._port.write(data)
            self._port.flush()
        except (serial.SerialException, OSError) as exc:
            raise LinkLost(f"write to {self.description} failed: {_first_line(exc)}") from None

    def read(self, timeout: float) -> bytes:
        try:
            self._port.timeout = timeout
            first = self._port.read(1)
            if not first:
                return b""
            waiting = self._port.in_waiting
            return first + (self._port.read(waiting) if waiting else b"")
        except (serial.SerialException, OSError) as exc:
            raise LinkLost(f"connection to {self.description} lost: {_first_line(exc)}") from None

    def close(self) -> None:
        self._port.close()


def _first_line(exc: BaseException) -> str:
    """The reason alone: pyserial wraps an OSError's text in its own ("[Errno 2] could not open
    port X: [Errno 2] No such file or directory: 'X'"); people read "No such file or directory"."""
    text = (str(exc).strip() or type(exc).__name__).splitlines()[0]
    inner = re.findall(r"\[Errno \d+\] ([^:\[]+)", text)
    if inner:
        return inner[-1].strip()
    return getattr(exc, "strerror", None) or text


def open_transport(url: str, baudrate: int = 115200) -> Transport:
    return SerialTransport(url, baudrate)


# ---- log streams (SPEC 7): the frames and the page check both hosts use -------------------------
def log_read(seq: int, start: int, count: int, window: int) -> framing.Frame:
    """LOG_READ from `start`, `count` records, `window` pages unacknowledged at most."""
    payload = messages.encode(messages.request_layout(messages.LOG_READ),
                              {"start": start, "count": count, "window": window})
    return framing.Frame(messages.LOG_READ, payload, seq=seq)


def log_ack(seq: int, next_index: int) -> framing.Frame:
    """LOG_ACK of every record before `next_index` (cumulative), on the stream's seq."""
    payload = messages.encode(messages.request_layout(messages.LOG_ACK), {"next": next_index})
    return framing.Frame(messages.LOG_ACK, payload, seq=seq)


def page_records(page: dict, expected: int) -> list[bytes]:
    """The records of a decoded LOG_READ page that starts at `expected`; BadReply when they do
    not split or are not as many as the page announces."""
    try:
        records = messages.split_records(page["records"])
    except MessageError as exc:
        raise BadReply(f"log page at {expected}: {exc}") from None
    if len(records) != page["n"]:
        raise BadReply(f"log page at {expected} announces {page['n']} records")
    return records


# ---- the link --------------------------------------------------------------------------------
class Link:
    """Request/reply over a Transport, with retransmission and event capture."""

    # called with (">" or "<", frame) for every frame sent and received (lci-tool -v)
    trace: Callable[[str, framing.Frame], None] | None = None

    def __init__(
        self,
        transport: Transport,
        *,
        timeout: float = 0.5,
        retries: int = 4,
        slow_timeout: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.transport = transport
        self.timeout = timeout
        self.slow_timeout = max(timeout, SLOW_TIMEOUT) if slow_timeout is None else slow_timeout
        self.retries = retries
        self.clock = clock
        self.decoder = framing.Decoder()
        self.events: list[dict] = []
        self.retransmissions = 0
        self._seq = int.from_bytes(os.urandom(2), "little")
        self._pending: list[framing.Frame] = []
        self._flushed = False
        self.device: dict | None = None

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> Link:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- frames
    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFFFF
        return self._seq

    def send_frame(self, frame: framing.Frame) -> None:
        if Link.trace is not None:
            Link.trace(">", frame)
        wire = framing.encode(frame)
        if not self._flushed:
            # a leading delimiter ends whatever noise the line held before we spoke
            wire = b"\x00" + wire
            self._flushed = True
        self.transport.write(wire)

    def _receive(self, deadline: float) -> framing.Frame | None:
        """The next frame that is not an event, before `deadline`; events are stored."""
        while True:
            while self._pending:
                frame = self._pending.pop(0)
                if frame.is_event and frame.type == messages.EVENT:
                    self._store_event(frame)
                    continue
                return frame
            left = deadline - self.clock()
            if left <= 0:
                return None
            data = self.transport.read(min(left, 0.25))
            if data:
                frames = self.decoder.feed(data)
                if Link.trace is not None:
                    for frame in frames:
                        Link.trace("<", frame)
                self._pending.extend(frames)

    def wait_event(self, timeout: float) -> dict | None:
        """The next unsolicited device event, waiting up to `timeout` seconds for one."""
        deadline = self.clock() + timeout
        while not self.events:
            frame = self._receive(deadline)
            if frame is None:
                break  # timeout (a stray reply, if any, is dropped: nothing awaits it)
        return self.events.pop(0) if self.events else None

    def _store_event(self, frame: framing.Frame) -> None:
        try:
            event = messages.decode(messages.EVENT_LAYOUT, frame.payload)
        except MessageError:
            return
        event["seq"] = frame.seq
        self.events.append(event)

    # -- requests
    def request(self, type_: int, *, retries: int | None = None, **fields) -> dict:
        """Send one request and return its decoded reply; raises Nack, LinkTimeout, BadReply.

        retries=0 for a request that must never be sent twice (a bench power cut: the
        device's reply cache does not survive the reboot it causes).
        """
        layout = messages.request_layout(type_)
        if layout is None or messages.reply_layout(type_) is None:
            raise BadRequest(f"0x{type_:02x} is not a request with a reply")
        if type_ == messages.LOG_READ:
            raise BadRequest("log pages are streamed: use read_log()")
        try:
            payload = messages.encode(layout, fields)
            frame = framing.Frame(type_, payload, seq=self._next_seq())
            framing.body(frame)
        except (MessageError, framing.FrameError) as exc:
            raise BadRequest(f"cannot send {messages.name_of(type_)}: {exc}") from None
        timeout = self.slow_timeout if type_ in SLOW_TYPES else self.timeout
        tries = (self.retries if retries is None else retries) + 1
        sent = False  # once a write began, the device may have the request
        try:
            for attempt in range(tries):
                if attempt:
                    frame.flags |= framing.F_RETRY
                    self.retransmissions += 1
                sent = True
                self.send_frame(frame)
                reply = self._await_reply(type_, frame.seq, timeout)
                if reply is not None:
                    return reply
            raise LinkTimeout(
                f"no reply to {messages.name_of(type_)} from {self.transport.description} "
                f"after {tries} tries of {timeout:g} s"
            )
        except (LinkTimeout, LinkLost) as exc:
            exc.maybe_applied = sent and type_ in CHANGING_TYPES
            raise

    def _await_reply(self, type_: int, seq: int, timeout: float) -> dict | None:
        deadline = self.clock() + timeout
        while True:
            frame = self._receive(deadline)
            if frame is None:
                return None
            if not frame.is_response or frame.seq != seq:
                continue  # a stale reply to an earlier request
            return self._decode_reply(type_, frame)

    def _decode_reply(self, type_: int, frame: framing.Frame) -> dict:
        if frame.version != framing.VERSION:
            raise ProtocolVersionError(
                f"device speaks protocol v{frame.version}; this host speaks "
                f"v{HOST_PROTO_MIN}..v{HOST_PROTO_MAX}"
            )
        if frame.type == messages.NACK:
            try:
                nack = messages.decode(messages.NACK_LAYOUT, frame.payload)
            except MessageError as exc:
                raise BadReply(f"malformed NACK: {exc}") from None
            if nack["code"] == errors.BAD_VERSION:
                raise ProtocolVersionError(
                    f"device does not accept protocol v{framing.VERSION}: {nack['detail']}"
                )
            raise Nack(nack["code"], type_, nack["detail"])
        if frame.type != type_ | messages.REPLY:
            raise BadReply(
                f"expected {messages.name_of(type_ | messages.REPLY)}, "
                f"got {messages.name_of(frame.type)}"
            )
        try:
            return messages.decode(messages.reply_layout(type_), frame.payload)
        except MessageError as exc:
            raise BadReply(f"malformed {messages.name_of(frame.type)}: {exc}") from None

    # -- conveniences
    def hello(self) -> dict:
        info = self.request(
            messages.HELLO,
            proto_min=HOST_PROTO_MIN,
            proto_max=HOST_PROTO_MAX,
            host_nonce=os.urandom(8),
        )
        if not HOST_PROTO_MIN <= info["proto"] <= HOST_PROTO_MAX:
            raise ProtocolVersionError(
                f"device chose protocol v{info['proto']}; this host speaks "
                f"v{HOST_PROTO_MIN}..v{HOST_PROTO_MAX}"
            )
        self.device = info
        return info

    def read_log(
        self, start: int, count: int, window: int = 8
    ) -> Iterator[tuple[int, list[bytes]]]:
        """Yield (first_index, records) pages from `start`, streamed with a window.

        Pages must arrive in order; a gap (a page lost to corruption) or a silence
        longer than the timeout re-requests from the first missing record, so a dump
        resumes where it broke. Raises LinkTimeout after `retries` silent re-requests.
        """
        end = start + count
        expected = start
        misses = 0
        while expected < end:
            seq = self._next_seq()
            self.send_frame(log_read(seq, expected, end - expected, window))
            restart = False
            while not restart and expected < end:
                frame = self._receive(self.clock() + self.timeout)
                if frame is None:
                    misses += 1
                    if misses > self.retries:
                        raise LinkTimeout(
                            f"log download stalled at record {expected} "
                            f"from {self.transport.description}"
                        )
                    self.retransmissions += 1
                    restart = True
                    break
                if not frame.is_response or frame.seq != seq:
                    continue
                page = self._decode_reply(messages.LOG_READ, frame)
                if page["first"] != expected:
                    # a lost page: go back to the first missing record (a restart that
                    # makes no progress counts as a miss, so a broken peer ends in LinkTimeout)
                    misses += 1
                    if misses > self.retries:
                        raise LinkTimeout(
                            f"log download makes no progress at record {expected} "
                            f"from {self.transport.description}"
                        )
                    restart = True
                    self.retransmissions += 1
                    break
                misses = 0
                records = page_records(page, expected)
                expected += len(records)
                self.send_frame(log_ack(seq, expected))
                yield page["first"], records
                if not frame.flags & framing.F_MORE:
                    return
