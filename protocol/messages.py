"""The message catalogue and its payload codecs.

Every message type has a number, a name, the layout of its request payload and the
layout of its reply payload. A reply has type ``request_type | 0x80`` and the request's
sequence number; an error reply is a NACK (type 0x7F); unsolicited device events have
type 0x40 and the F_EVENT flag. A layout is (field, kind) pairs, encoded in order,
little-endian; the catalogue writes each as text, "proto_min B  proto_max B  host_nonce 8s"
(fields() lists its pairs; encode and decode take either form):

    "B" u8    "H" u16    "I" u32    "i" i32    "8s" / "16s" / "32s" fixed bytes
    "s" string: u8 length + UTF-8 bytes (at most 255)
    "b" blob:   u16 length + bytes
    "*" the rest of the payload (last field only)

encode(layout, values) and decode(layout, payload) are exact inverses; decode rejects a
payload that is too short, too long or not UTF-8 where a string is due, by raising
MessageError — the device turns that into NACK BAD_PAYLOAD.
"""

try:
    from micropython import const
except ImportError:  # CPython: the value itself
    const = int  # type: ignore[misc, assignment]

import struct

from protocol.framing import MAX_PAYLOAD

# ---- message types -------------------------------------------------------------------
HELLO = 0x01
STATUS = 0x02
LOG_INFO = 0x03
LOG_READ = 0x04
LOG_ACK = 0x05
PROVISION = 0x06
CONFIG_GET = 0x07
TOKEN = 0x10
CODE_REQUEST = 0x11
CODE_ENTER = 0x12
CALIBRATE = 0x20
PING = 0x30
BENCH = 0x50
EVENT = 0x40
NACK = 0x7F
REPLY = 0x80  # reply type = request type | REPLY

# ---- capability bits (HELLO reply) ----------------------------------------------------
CAP_LOG_STREAM = 0x0001
CAP_TOKENS = 0x0002
CAP_KEYPAD = 0x0004
CAP_CALIBRATE = 0x0008
CAP_BENCH = 0x0010  # accepts BENCH inputs (simulator, bench boards; never a customer unit)
CAP_POWER_CUT = 0x0020  # BENCH can cut the power (simulator only)
CAP_FACTORY = 0x0040  # unprovisioned: PROVISION is accepted once

# ---- enumerations carried in payloads -------------------------------------------------
COMPLIANCE_STATES = (
    "normal",
    "early_service_recall",
    "lockout",
    "code_unlock",
    "service",
    "removed",
)
SESSION_STATES = (
    "ignition_off",
    "test_requested",
    "temporary_lockout",
    "engine_enabled",
    "retest_due",
    "retest_in_progress",
    "violation",
)
# recall / lockout causes, a bit each in STATUS.causes
CAUSES = (
    "unpaid_balance",
    "service_due",
    "calibration_due",
    "violations",
    "tamper",
    "log_full",
    "calibration_failed",
)

# authorized actions: the `action` byte of TOKEN and CODE_REQUEST/CODE_ENTER replies is an
# index into this tuple (names as in signed tokens; see SPEC.md section 9)
ACTIONS = (
    "none",
    "unlock",
    "service",
    "service_close",
    "set_time",
    "recall",
    "lockout",
    "clear",
    "work_order",
)

# the actions a keypad code can authorize, and the digits of its answer by default (the
# codes themselves: protocol/keycodes.py)
CODE_ACTIONS = ("unlock", "clear")
CODE_DIGITS = 8

# CALIBRATE steps
CAL_AS_FOUND = 0
CAL_ADJUST = 1
CAL_CHECK = 2
CAL_FINISH = 3

# BENCH inputs (a, b, c are i32 arguments)
BENCH_IGNITION = 1  # a: 1 on, 0 off
BENCH_BLOW = 2  # a: BrAC x 10^4 g/210L, b: volume mL, c: breath temperature x 10 degC
BENCH_KEY = 3  # a: character code of the key
BENCH_POWER_CUT = 4  # a: 1 cut now (the device reboots)
BENCH_TAMPER = 5  # a: tamper kind (1 sensor disconnected, 2 relay bypass)
BENCH_REFUSE = 6  # the driver refuses the pending test (presses CANCEL)

# ---- layouts ---------------------------------------------------------------------------
# type: "name|request layout|reply layout" (no reply layout: no reply, flow control). A
# layout is "field kind" pairs in order (fields() gives the list of pairs). entry() splits an
# entry; one string per type is all a board holds in RAM of the catalogue.
CATALOGUE = {
    HELLO: (
        "hello|proto_min B  proto_max B  host_nonce 8s|proto B  serial s  firmware s  board s"
        "  caps I  max_payload H  window B  nonce 16s"
    ),
    STATUS: (
        "status||compliance B  session B  causes H  now I  deadline I  deadline_left I"
        "  service_due I  calibration_due I  hold_left I  override_left I  violations B"
        "  relay B  alarm B  log_count I  log_free_pct B  line1 s  line2 s"
    ),
    LOG_INFO: "log_info||first I  count I  capacity I  free_pct B  head_hash 8s",
    LOG_READ: "log_read|start I  count I  window B|first I  n B  records *",
    LOG_ACK: "log_ack|next I",
    PROVISION: "provision|serial s  root_key 32s  device_secret 32s|serial s",
    CONFIG_GET: "config_get||config b",
    TOKEN: "token|token b|action B  detail s",
    CODE_REQUEST: "code_request|action B|request s",
    CODE_ENTER: "code_enter|code s|action B  until I",
    CALIBRATE: "calibrate|step B  reference H|step B  measured H  passed B  detail s",
    PING: "ping|data *|data *",
    BENCH: "bench|input B  a i  b i  c i|compliance B  session B",
}

# the two messages that are not request/reply pairs
EVENT_LAYOUT = "kind B  compliance B  session B  time I  detail s"
NACK_LAYOUT = "code B  request_type B  detail s"

# EVENT kinds
EV_STATE = 1  # compliance or session state changed
EV_DISPLAY = 2  # handset text changed
EV_ALARM = 3  # horn and lights on or off
EV_TEST = 4  # a breath test result


class MessageError(ValueError):
    """A payload does not match its layout."""


_FIXED = {"B": 1, "H": 2, "I": 4, "i": 4}
# MicroPython's struct.pack truncates silently: ranges are checked here, on both runtimes
_RANGE = {"B": (0, 0xFF), "H": (0, 0xFFFF), "I": (0, 0xFFFFFFFF), "i": (-0x80000000, 0x7FFFFFFF)}


def _fixed_size(kind):
    if kind in _FIXED:
        return _FIXED[kind]
    if kind[-1] == "s" and len(kind) > 1:
        return int(kind[:-1])
    return 0


def _as_bytes(name, value):
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise MessageError("field %s must be bytes" % name)
    return bytes(value)


def utf8_valid(raw):
    """Strict UTF-8 (RFC 3629): no overlongs, no surrogates, nothing above U+10FFFF.

    Both runtimes must agree on what a valid string is; MicroPython's decoder is lax.
    """
    i = 0
    n = len(raw)
    while i < n:
        b = raw[i]
        if b < 0x80:
            i += 1
            continue
        if 0xC2 <= b <= 0xDF:
            need, low, high = 1, 0x80, 0xBF
        elif b == 0xE0:
            need, low, high = 2, 0xA0, 0xBF
        elif b == 0xED:
            need, low, high = 2, 0x80, 0x9F
        elif 0xE1 <= b <= 0xEF:
            need, low, high = 2, 0x80, 0xBF
        elif b == 0xF0:
            need, low, high = 3, 0x90, 0xBF
        elif 0xF1 <= b <= 0xF3:
            need, low, high = 3, 0x80, 0xBF
        elif b == 0xF4:
            need, low, high = 3, 0x80, 0x8F
        else:
            return False
        if i + need >= n:
            return False  # the sequence runs past the end
        c = raw[i + 1]
        if c < low or c > high:
            return False
        for k in range(2, need + 1):
            c = raw[i + k]
            if c < 0x80 or c > 0xBF:
                return False
        i += need + 1
    return True


def clip_utf8(text, max_bytes):
    """`text` cut to at most `max_bytes` of UTF-8, never inside a character."""
    raw = text.encode()
    if len(raw) <= max_bytes:
        return text
    end = max_bytes
    while end > 0 and (raw[end] & 0xC0) == 0x80:
        end -= 1
    return raw[:end].decode()


def fields(layout):
    """The (field, kind) pairs of a layout written as text; a list of pairs is returned as is."""
    if not isinstance(layout, str):
        return layout
    words = layout.split()
    return [(words[i], words[i + 1]) for i in range(0, len(words), 2)]


def encode(layout, values):
    """Payload bytes for `values` (a dict) in `layout` (text or pairs). Raises MessageError
    on a bad value."""
    out = bytearray()
    for name, kind in fields(layout):
        if name not in values:
            raise MessageError("missing field %s" % name)
        value = values[name]
        try:
            if kind in _FIXED:
                low, high = _RANGE[kind]
                if not isinstance(value, int) or value < low or value > high:
                    raise MessageError("field %s out of range: %r" % (name, value))
                out.extend(struct.pack("<" + kind, value))
            elif kind == "s":
                if not isinstance(value, str):
                    raise MessageError("field %s must be a string" % name)
                raw = value.encode()
                if len(raw) > 255:
                    raise MessageError("field %s longer than 255 bytes" % name)
                out.append(len(raw))
                out.extend(raw)
            elif kind == "b":
                raw = _as_bytes(name, value)
                if len(raw) > 0xFFFF:
                    raise MessageError("field %s too long" % name)
                out.extend(struct.pack("<H", len(raw)))
                out.extend(raw)
            elif kind == "*":
                out.extend(_as_bytes(name, value))
            else:
                size = _fixed_size(kind)
                raw = _as_bytes(name, value)
                if len(raw) != size:
                    raise MessageError("field %s must be %d bytes" % (name, size))
                out.extend(raw)
        except (OverflowError, TypeError, ValueError) as exc:
            if isinstance(exc, MessageError):
                raise
            raise MessageError("field %s: %s" % (name, exc))
    return bytes(out)


def decode(layout, payload):
    """A dict of the fields of `payload` in `layout` (text or pairs). Raises MessageError if
    it does not fit."""
    values = {}  # type: dict
    i = 0
    n = len(payload)
    for name, kind in fields(layout):
        if kind == "*":
            values[name] = bytes(payload[i:])
            i = n
            continue
        if kind == "s" or kind == "b":
            head = 1 if kind == "s" else 2
            if i + head > n:
                raise MessageError("payload ends inside %s" % name)
            if head == 1:
                size = payload[i]
            else:
                size = payload[i] | (payload[i + 1] << 8)
            i += head
            if i + size > n:
                raise MessageError("payload ends inside %s" % name)
            raw = bytes(payload[i : i + size])
            i += size
            if kind == "s":
                if not utf8_valid(raw):
                    raise MessageError("field %s is not UTF-8" % name)
                values[name] = raw.decode()
            else:
                values[name] = raw
            continue
        size = _fixed_size(kind)
        if i + size > n:
            raise MessageError("payload ends inside %s" % name)
        if kind in _FIXED:
            values[name] = struct.unpack("<" + kind, payload[i : i + size])[0]
        else:
            values[name] = bytes(payload[i : i + size])
        i += size
    if i != n:
        raise MessageError("%d unexpected bytes after the last field" % (n - i))
    return values


def entry(type_):
    """(name, request layout, reply layout or None) of a request type, or None if unknown."""
    text = CATALOGUE.get(type_)
    if text is None:
        return None
    parts = text.split("|")
    return parts[0], parts[1], parts[2] if len(parts) > 2 else None


def name_of(type_):
    if type_ == NACK:
        return "nack"
    if type_ == EVENT:
        return "event"
    found = entry(type_ & 0x7F)
    if found is None:
        return "0x%02x" % type_
    return found[0] + ("_reply" if type_ & REPLY else "")


def request_layout(type_):
    found = entry(type_)
    return None if found is None else found[1]


def reply_layout(type_):
    found = entry(type_)
    return None if found is None else found[2]


def layout_for(type_, flags):
    """The layout of a received frame's payload, or None if the type is unknown."""
    if type_ == NACK:
        return NACK_LAYOUT
    if type_ == EVENT:
        return EVENT_LAYOUT
    if type_ & REPLY:
        return reply_layout(type_ & 0x7F)
    return request_layout(type_)


def bits_to_names(mask, names):
    out = []
    for i in range(len(names)):
        if mask & (1 << i):
            out.append(names[i])
    return out


def names_to_bits(selected, names):
    mask = 0
    for i in range(len(names)):
        if names[i] in selected:
            mask |= 1 << i
    return mask


# ---- log pages -------------------------------------------------------------------------------
_LOG_PAGE_HEAD = const(5)  # first u32 + n u8
LOG_PAGE_BUDGET = MAX_PAYLOAD - _LOG_PAGE_HEAD  # record bytes (each record: u8 length + bytes)


def pack_records(records):
    out = bytearray()
    for record in records:
        if len(record) > 255:
            raise MessageError("log record longer than 255 bytes")
        out.append(len(record))
        out.extend(record)
    return bytes(out)


def split_records(blob):
    """The records of a LOG_READ reply: each is u8 length + that many bytes."""
    out = []
    i = 0
    n = len(blob)
    while i < n:
        size = blob[i]
        if i + 1 + size > n:
            raise MessageError("log page ends inside a record")
        out.append(bytes(blob[i + 1 : i + 1 + size]))
        i += 1 + size
    return out
