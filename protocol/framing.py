"""Frames: header, CRC-32 and byte stuffing, and the streaming decoder.

A frame on the wire is ``COBS(header + payload + crc32) + b"\\x00"``.

    header  7 bytes, little-endian:
            version u8 | type u8 | flags u8 | seq u16 | length u16
    payload 0..MAX_PAYLOAD bytes (length of them)
    crc32   u32 little-endian, CRC-32/ISO-HDLC (zlib's) over header + payload

MAX_PAYLOAD is 512: a whole frame then needs at most 527 bytes of buffer (523 stuffed
into 526 plus the delimiter), small enough for one receive and one transmit buffer on the
smallest target we support (an RP2040 with 264 KB of RAM keeps two such buffers in
~1 KB) while a full log page still spends 97 % of the line on payload.

The decoder takes arbitrary chunks of bytes and returns whole, checked frames. It never
raises on bad input: garbage, truncated or oversize frames and bad CRCs are dropped,
counted, and it resynchronises at the next 0x00. Its buffer never grows past one
maximum stuffed frame.
"""

try:
    from micropython import const
except ImportError:  # CPython: the value itself
    const = int  # type: ignore[misc, assignment]

import struct
from binascii import crc32

from protocol import cobs

VERSION = 1
HEADER_LEN = 7
CRC_LEN = 4
MAX_PAYLOAD = 512
MIN_BODY = HEADER_LEN + CRC_LEN
MAX_BODY = HEADER_LEN + MAX_PAYLOAD + CRC_LEN
MAX_STUFFED = cobs.max_encoded_len(MAX_BODY)
_DELIMITER = const(0)

# flags
F_RESPONSE = 0x01  # a reply to the request with the same seq
F_EVENT = 0x02  # unsolicited device event (its seq is the device's event counter)
F_MORE = 0x04  # more frames of the same reply stream follow
F_RETRY = 0x08  # a host retransmission (informational; dedupe keys on seq)

_HEADER = "<BBBHH"


class FrameError(ValueError):
    """An outgoing frame cannot be built (payload too large, field out of range)."""


class Frame:
    """One checked frame: version, type, flags, seq and payload bytes."""

    def __init__(self, type_, payload=b"", seq=0, flags=0, version=VERSION):
        self.version = version
        self.type = type_
        self.flags = flags
        self.seq = seq
        self.payload = bytes(payload)

    def __eq__(self, other):
        return (
            isinstance(other, Frame)
            and self.version == other.version
            and self.type == other.type
            and self.flags == other.flags
            and self.seq == other.seq
            and self.payload == other.payload
        )

    def __repr__(self):
        return "Frame(v%d type=0x%02x flags=0x%02x seq=%d len=%d)" % (
            self.version,
            self.type,
            self.flags,
            self.seq,
            len(self.payload),
        )

    @property
    def is_response(self):
        return bool(self.flags & F_RESPONSE)

    @property
    def is_event(self):
        return bool(self.flags & F_EVENT)


def body(frame):
    """The unstuffed bytes of a frame: header, payload, CRC."""
    n = len(frame.payload)
    if n > MAX_PAYLOAD:
        raise FrameError("payload of %d bytes exceeds %d" % (n, MAX_PAYLOAD))
    if not (
        0 <= frame.seq <= 0xFFFF
        and 0 <= frame.type <= 0xFF
        and 0 <= frame.flags <= 0xFF
        and 0 <= frame.version <= 0xFF
    ):
        raise FrameError("header field out of range")
    head = struct.pack(_HEADER, frame.version, frame.type, frame.flags, frame.seq, n)
    crc = crc32(frame.payload, crc32(head)) & 0xFFFFFFFF
    return head + frame.payload + struct.pack("<I", crc)


def encode(frame):
    """The wire bytes of a frame, delimiter included."""
    return cobs.encode(body(frame)) + b"\x00"


def parse_body(raw):
    """A Frame from unstuffed bytes, or a reason string if they are not a valid frame."""
    if len(raw) < MIN_BODY:
        return "short"
    version, type_, flags, seq, length = struct.unpack(_HEADER, raw[:HEADER_LEN])
    if length != len(raw) - MIN_BODY:
        return "length"
    (crc,) = struct.unpack("<I", raw[-CRC_LEN:])
    if crc32(raw[:-CRC_LEN]) & 0xFFFFFFFF != crc:
        return "crc"
    if length > MAX_PAYLOAD:
        return "oversize"
    return Frame(type_, raw[HEADER_LEN:-CRC_LEN], seq, flags, version)


# drop reasons, in the order of Decoder.drops
DROP_REASONS = ("cobs", "short", "length", "crc", "oversize")


class Decoder:
    """Streaming frame decoder: bytes in (any chunking), checked frames out.

    feed(data) returns the list of frames completed by `data`. Every malformed frame is
    counted in `drops[reason]`; `frames` counts good ones. Memory is bounded by
    MAX_STUFFED bytes whatever the input.
    """

    def __init__(self):
        self._buf = bytearray()
        self._discarding = False  # inside an oversize run: skip to the next delimiter
        self.frames = 0
        self.drops = {}
        for reason in DROP_REASONS:
            self.drops[reason] = 0

    @property
    def dropped(self):
        total = 0
        for reason in DROP_REASONS:
            total += self.drops[reason]
        return total

    def reset(self):
        self._buf = bytearray()
        self._discarding = False

    def feed(self, data):
        out = []  # type: list
        data = bytes(data)
        start = 0
        n = len(data)
        while start < n:
            end = data.find(b"\x00", start)
            if end < 0:
                self._take(data[start:])
                break
            self._take(data[start:end])
            self._finish(out)
            start = end + 1
        return out

    def _take(self, chunk):
        if self._discarding:
            return
        if len(self._buf) + len(chunk) > MAX_STUFFED:
            self.drops["oversize"] += 1
            self._discarding = True
            self._buf = bytearray()
            return
        self._buf.extend(chunk)

    def _finish(self, out):
        if self._discarding:
            self._discarding = False
            return
        if not self._buf:
            return  # idle delimiters are allowed between frames
        raw = cobs.decode(self._buf)
        self._buf = bytearray()
        if raw is None:
            self.drops["cobs"] += 1
            return
        frame = parse_body(raw)
        if isinstance(frame, str):
            self.drops[frame] += 1
            return
        self.frames += 1
        out.append(frame)
