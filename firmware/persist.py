"""Power-safe state files: a dict saved so that a power cut leaves the old one or the new one.

StateFile owns one small named file on the HAL storage (compliance state, deadlines,
counters, the log's download mark ...). A save writes the whole state to `NAME.new` and
then renames it over `NAME` (the HAL promises an atomic rename). Each file is an envelope:

    offset size  field
    0      2     magic b"LS"
    2      1     format (1)
    3      4     seq   u32, +1 per save (the newer of two valid files wins)
    7      2     body length u16
    9      n     body: the state as compact JSON (UTF-8)
    9+n    4     CRC-32 of bytes 0 .. 9+n

A torn or garbled file fails the length/CRC check and is ignored, so a cut while `NAME.new`
is written leaves `NAME` (the old state) standing. load() also finishes a save the power
cut between the write and the rename (a valid `NAME.new` newer than `NAME` is renamed into
place) and removes a torn `NAME.new`. Values must be JSON types (hex-encode bytes).

FIELDS is the device's persisted state as one table, Device attribute: (key in the file,
default), driving both `device_state` (save) and `restore_device` (restore, and the
rollback of a refused change); given as keywords, so an attribute's name is the interned
name the device already uses, not a string object of its own. Three attributes are not
plain values: `compliance` (the machine: its state), `codes` (override.Codes: its own
state()/restore()), `used_ids` (the replay records: [hex id, expiry] pairs, with
`used_expiry`). One more key is not a Device attribute: `log`, the log's head, in the save a
change makes before its first record (firmware/device.py's _apply): found at boot, the log is
cut back to it.
"""

import json
import struct
from binascii import crc32, hexlify, unhexlify
from hashlib import sha256

try:
    from micropython import const
except ImportError:  # CPython: the value itself
    const = int  # type: ignore[misc, assignment]

from firmware.breath import GAIN_ONE

FIELDS = dict(
    compliance=("c", "removed"),  # the compliance state
    causes=("cz", 0),  # recall causes (bits)
    recall_deadline=("rd", None),  # [wall, run] of the lockout a recall runs into
    unlock_until=("ul", None),  # [wall, run] end of an unlock; None = for good
    service_due=("sd", None),
    calibration_due=("cd", None),
    violations=("v", 0),
    gain=("g", GAIN_ONE),
    calibrated_at=("ca", 0),
    vehicle=("veh", ""),
    codes=("k", None),  # keypad codes (firmware/override.py)
    used_ids=("u", None),  # replay records
    replay_floor=("rf", 0),
    directive_seq=("ds", 0),
    hold=("h", None),  # [wall, run] end of a temporary lockout
    fails=("f", None),  # run seconds of recent failed start tests
    running=("on", False),  # the engine was enabled (a power loss then is a tamper)
    config_crc=("cf", None),  # the configuration's CRC-32 (a change is logged at boot)
)


def device_state(d):
    """The Device's persisted state as a dict of JSON values (with its run clock)."""
    out = {}
    for attr in FIELDS:
        key = FIELDS[attr][0]
        value = getattr(d, attr)
        if attr == "compliance":
            value = value.state
        elif attr == "codes":
            value = value.state()
        elif attr == "used_ids":
            value = [[hexlify(value[i]).decode(), d.used_expiry[i]] for i in range(len(value))]
        out[key] = value
    out["run"] = d.tb.run()
    out["hw"] = d.tb.high
    return out


def restore_device(d, saved):
    """Set the Device's persisted attributes from `saved` (a missing key: its default)."""
    for attr in FIELDS:
        key, default = FIELDS[attr]
        value = saved.get(key, default)
        if attr == "compliance":
            machine = d.compliance
            if value in machine.states:
                machine.state = value
        elif attr == "codes":
            d.codes.restore(value or {})
        elif attr == "used_ids":
            d.used_ids = [unhexlify(entry[0]) for entry in value or ()]
            d.used_expiry = [entry[1] for entry in value or ()]
        elif attr == "fails":
            d.fails = list(value or ())
        else:
            setattr(d, attr, value)

MAGIC = b"LS"
FORMAT = 1
_HEAD = "<2sBIH"
HEAD_SIZE = 9
MAX_BODY = 0xFFFF
_CHUNK = const(256)  # bytes a save hands the storage at a time


class StateError(Exception):
    """The state cannot be saved (not JSON-serialisable or too large)."""


def encode_envelope(seq, body):
    """The whole envelope of `body` (bytes) as one bytearray."""
    if len(body) > MAX_BODY:
        raise StateError("state body of %d bytes is over %d" % (len(body), MAX_BODY))
    out = bytearray(struct.pack(_HEAD, MAGIC, FORMAT, seq & 0xFFFFFFFF, len(body)))
    out.extend(body)
    out.extend(struct.pack("<I", crc32(out) & 0xFFFFFFFF))
    return out


def decode_envelope(data):
    """(seq, body bytes) of a whole, intact envelope, or None for anything else."""
    if data is None or len(data) < HEAD_SIZE + 4:
        return None
    magic, fmt, seq, size = struct.unpack_from(_HEAD, data, 0)
    if magic != MAGIC or fmt != FORMAT or len(data) != HEAD_SIZE + size + 4:
        return None
    end = HEAD_SIZE + size
    if struct.unpack_from("<I", data, end)[0] != crc32(memoryview(data)[:end]) & 0xFFFFFFFF:
        return None
    return seq, data[HEAD_SIZE:end]


def _parse(data):
    """(seq, body, state) of an intact envelope holding a JSON object, or None."""
    found = decode_envelope(data)
    if found is None:
        return None
    state = _load(found[1])
    return None if state is None else (found[0], found[1], state)


def _load(body):
    try:
        state = json.loads(body)
    except (ValueError, UnicodeError):
        return None
    return state if isinstance(state, dict) else None


def _check(value, depth=0):
    """Refuse what JSON cannot carry back (MicroPython's json.dumps writes repr() of it)."""
    if depth > 16:
        raise StateError("state nested too deep")
    if value is None or isinstance(value, (bool, int, float, str)):
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            _check(item, depth + 1)
        return
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise StateError("state keys must be strings, not %r" % (key,))
            _check(value[key], depth + 1)
        return
    raise StateError("%s is not a JSON type (hex-encode bytes)" % type(value).__name__)


def body_pieces(value):
    """`value` as canonical compact JSON in small pieces (bytes): object keys sorted, lists
    item by item, so a save never holds the whole body (or a second copy of it) in RAM and
    two equal states always give the same bytes. (Punctuation as bytes constants: no
    interned strings.)"""
    if isinstance(value, dict):
        yield b"{"
        sep = b""
        for key in sorted(value):
            yield sep + json.dumps(key).encode() + b":"
            sep = b","
            yield from body_pieces(value[key])
        yield b"}"
    elif isinstance(value, (list, tuple)):
        yield b"["
        sep = b""
        for item in value:
            if sep:
                yield sep
            sep = b","
            yield from body_pieces(item)
        yield b"]"
    else:
        yield json.dumps(value).encode()


def _digest(state):
    """(SHA-256, length) of the canonical body of `state`, computed piece by piece."""
    h = sha256()
    size = 0
    for piece in body_pieces(state):
        h.update(piece)
        size += len(piece)
    return h.digest(), size


class _ChunkWriter:
    """Writes one file in chunks of _CHUNK bytes: the first by storage.write (the old
    contents are gone from that moment), the rest by storage.append; keeps the CRC-32."""

    def __init__(self, storage, name):
        self.write = storage.write  # then storage.append
        self.append = storage.append
        self.name = name
        self.buf = bytearray()
        self.crc = 0

    def add(self, data):
        self.crc = crc32(data, self.crc)
        self.buf.extend(data)
        while len(self.buf) >= _CHUNK:
            self.flush(_CHUNK)

    def flush(self, size=None):
        """Hand the storage the first `size` bytes held (default: all of them)."""
        buf = self.buf
        if size is None or size >= len(buf):
            chunk, self.buf = buf, bytearray()
        else:
            chunk, self.buf = buf[:size], buf[size:]
        self.write(self.name, chunk)
        self.write = self.append


def _newer(a, b):
    """True if sequence number a comes after b (u32, wrapping)."""
    return a != b and ((a - b) & 0xFFFFFFFF) < 0x80000000


class StateFile:
    def __init__(self, storage, name):
        self.storage = storage
        self.name = name
        self.new_name = name + ".new"
        self.seq = 0
        self._last = None  # SHA-256 of the body on flash, to skip unchanged saves

    def load(self):
        """The saved state (a dict), or None if nothing valid was ever saved."""
        storage = self.storage
        current = _parse(storage.read(self.name))
        if storage.size(self.new_name) >= 0:
            pending = _parse(storage.read(self.new_name))
            if pending is not None and (current is None or _newer(pending[0], current[0])):
                storage.rename(self.new_name, self.name)  # finish the interrupted save
                current = pending
            else:
                storage.remove(self.new_name)  # torn or stale: the standing file wins
            pending = None
        if current is None:
            self.seq = 0
            self._last = None
            return None
        self.seq = current[0]
        self._last = sha256(current[1]).digest()
        return current[2]  # the caller's own copy: changing it changes nothing here

    def save(self, state):
        """Write `state` atomically; False if it equals what is already saved (no write).

        The body is made twice, piece by piece: once for its digest and length (the
        envelope's head comes first), once to write it in _CHUNK-byte writes."""
        if not isinstance(state, dict):
            raise StateError("a state must be a dict")
        _check(state)
        digest, size = _digest(state)
        if digest == self._last:
            return False
        if size > MAX_BODY:
            raise StateError("state body of %d bytes is over %d" % (size, MAX_BODY))
        seq = (self.seq + 1) & 0xFFFFFFFF
        out = _ChunkWriter(self.storage, self.new_name)
        out.add(struct.pack(_HEAD, MAGIC, FORMAT, seq, size))
        for piece in body_pieces(state):
            out.add(piece)
        out.buf.extend(struct.pack("<I", out.crc & 0xFFFFFFFF))
        out.flush()
        self.storage.rename(self.new_name, self.name)
        self.seq = seq
        self._last = digest
        return True

    def clear(self):
        """Forget the saved state (both files)."""
        for name in (self.new_name, self.name):
            if self.storage.size(name) >= 0:
                self.storage.remove(name)
        self.seq = 0
        self._last = None
