"""The event log: append-only, hash-chained, power-cut-safe records on flash, and their codec.

This module owns the log's record format, its record types, its files and the chain
verifier that both the device and the host use. docs/eventlog.md is the full description
(layout, record types with their meanings, full-log policy, power-cut behaviour).

Record (little-endian, at most 255 bytes; the CRC and the chain cover all of it):

    offset size field
    0      1    format      1
    1      4    index       u32, 0, 1, 2 ... never reused
    5      4    time        u32, core seconds (since 2020-01-01T00:00:00Z)
    9      1    kind        u8, a record type (KIND_NAMES)
    10     1    compliance  u8, index in protocol.messages.COMPLIANCE_STATES, 255 unknown
    11     1    session     u8, index in protocol.messages.SESSION_STATES, 255 unknown
    12     2    brac        u16, 0.0001 g/210L; 0xFFFF = no BrAC in this record
    14     4    value       i32, the record type's number (see the table); 0 if unused
    18     8    prev        first 8 bytes of SHA-256 of the previous record (zeros for index 0)
    26     n    detail      UTF-8 text, at most 225 bytes
    26+n   4    crc         CRC-32 of bytes 0 .. 26+n

On flash the log is a run of segment files `PREFIX-00000012` (segment k holds records
k*N .. k*N+N-1), each record stored as u8 length + record bytes — the same packing as a
LOG_READ page. Only the newest segment is ever appended to; a torn tail (a record cut by a
power loss) is found on boot by its length and CRC and removed (rewrite to `.tmp`, atomic
rename). Old segments are removed only when their records were downloaded at a service
visit (mark_downloaded) and the space is needed; the download mark is a persist.StateFile.
"""

import struct
from binascii import crc32
from hashlib import sha256

from firmware.persist import StateFile
from protocol.messages import COMPLIANCE_STATES, SESSION_STATES

FORMAT = 1
_HEAD = "<BIIBBBHi8s"
HEAD_SIZE = 26
CRC_SIZE = 4
OVERHEAD = HEAD_SIZE + CRC_SIZE
MAX_RECORD = 255
MAX_DETAIL = MAX_RECORD - OVERHEAD  # 225
NO_BRAC = 0xFFFF
NO_STATE = 255
GENESIS = b"\x00" * 8  # the "previous hash" of record 0
HASH_SIZE = 8

# ---- record types ---------------------------------------------------------------------
# number: name. The meaning of each (and of its brac / value / detail) is the table in
# docs/eventlog.md; tests/host/test_logverify.py checks the two agree.
BOOT = 1
POWER_LOSS = 2
SHUTDOWN = 3
FAULT = 4
START_ATTEMPT = 10
TEST_PASS = 11
TEST_FAIL = 12
TEST_ABORT = 13
TEST_REFUSED = 14
TEMP_LOCKOUT = 15
ENGINE_START = 16
ENGINE_STOP = 17
FREE_RESTART = 18
START_BLOCKED = 19
RETEST_DUE = 20
RETEST_PASS = 21
RETEST_FAIL = 22
RETEST_ABORT = 23
RETEST_MISSED = 24
RETEST_REFUSED = 25
VIOLATION = 26
VIOLATION_END = 27
TAMPER = 30
TAMPER_CLEAR = 31
CIRCUMVENT = 32
COMPLIANCE_CHANGE = 40
SESSION_CHANGE = 41
CAUSE_SET = 42
CAUSE_CLEAR = 43
SERVICE_OPEN = 50
SERVICE_CLOSE = 51
CAL_AS_FOUND = 52
CAL_ADJUST = 53
CAL_CHECK = 54
CAL_PASS = 55
CAL_FAIL = 56
SERVICE_SUMMARY = 57
WORK_ORDER = 58
CODE_REQUEST = 60
CODE_ACCEPTED = 61
CODE_REJECTED = 62
TOKEN_ACCEPTED = 63
TOKEN_REJECTED = 64
UNLOCK_START = 65
UNLOCK_END = 66
REFUSALS = 67
CLOCK_CHANGE = 70
CONFIG_CHANGE = 71
PROVISIONED = 72
LOG_DOWNLOADED = 80
LOG_FULL = 81
LOG_RESUMED = 82

KIND_NAMES = {
    BOOT: "boot",
    POWER_LOSS: "power_loss",
    SHUTDOWN: "shutdown",
    FAULT: "fault",
    START_ATTEMPT: "start_attempt",
    TEST_PASS: "test_pass",
    TEST_FAIL: "test_fail",
    TEST_ABORT: "test_abort",
    TEST_REFUSED: "test_refused",
    TEMP_LOCKOUT: "temp_lockout",
    ENGINE_START: "engine_start",
    ENGINE_STOP: "engine_stop",
    FREE_RESTART: "free_restart",
    START_BLOCKED: "start_blocked",
    RETEST_DUE: "retest_due",
    RETEST_PASS: "retest_pass",
    RETEST_FAIL: "retest_fail",
    RETEST_ABORT: "retest_abort",
    RETEST_MISSED: "retest_missed",
    RETEST_REFUSED: "retest_refused",
    VIOLATION: "violation",
    VIOLATION_END: "violation_end",
    TAMPER: "tamper",
    TAMPER_CLEAR: "tamper_clear",
    CIRCUMVENT: "circumvent",
    COMPLIANCE_CHANGE: "compliance_change",
    SESSION_CHANGE: "session_change",
    CAUSE_SET: "cause_set",
    CAUSE_CLEAR: "cause_clear",
    SERVICE_OPEN: "service_open",
    SERVICE_CLOSE: "service_close",
    CAL_AS_FOUND: "cal_as_found",
    CAL_ADJUST: "cal_adjust",
    CAL_CHECK: "cal_check",
    CAL_PASS: "cal_pass",
    CAL_FAIL: "cal_fail",
    SERVICE_SUMMARY: "service_summary",
    WORK_ORDER: "work_order",
    CODE_REQUEST: "code_request",
    CODE_ACCEPTED: "code_accepted",
    CODE_REJECTED: "code_rejected",
    TOKEN_ACCEPTED: "token_accepted",
    TOKEN_REJECTED: "token_rejected",
    UNLOCK_START: "unlock_start",
    UNLOCK_END: "unlock_end",
    REFUSALS: "refusals",
    CLOCK_CHANGE: "clock_change",
    CONFIG_CHANGE: "config_change",
    PROVISIONED: "provisioned",
    LOG_DOWNLOADED: "log_downloaded",
    LOG_FULL: "log_full",
    LOG_RESUMED: "log_resumed",
}

# Tamper kinds (TAMPER / TAMPER_CLEAR value); 1 and 2 match protocol.messages BENCH_TAMPER.
TAMPER_SENSOR_DISCONNECTED = 1
TAMPER_RELAY_BYPASS = 2
TAMPER_POWER_LOST_RUNNING = 3
TAMPER_SUPPLY_LOW = 4

# Types that may still be written from the reserve once the log is nearly full: what a
# locked-out device and the service visit that empties the log need to record. Everything
# else (driving records, summaries of refused keyless input) is refused, counted, and
# summed up in a LOG_RESUMED record. CODE_REJECTED / TOKEN_REJECTED are no longer written
# (REFUSALS summarizes refusals); they are kept for decoding older logs.
RESERVE_KINDS = (
    BOOT,
    POWER_LOSS,
    SHUTDOWN,
    TAMPER,
    TAMPER_CLEAR,
    CIRCUMVENT,
    COMPLIANCE_CHANGE,
    SESSION_CHANGE,
    CAUSE_SET,
    CAUSE_CLEAR,
    SERVICE_OPEN,
    SERVICE_CLOSE,
    CAL_AS_FOUND,
    CAL_ADJUST,
    CAL_CHECK,
    CAL_PASS,
    CAL_FAIL,
    SERVICE_SUMMARY,
    WORK_ORDER,
    CODE_ACCEPTED,
    TOKEN_ACCEPTED,
    UNLOCK_START,
    UNLOCK_END,
    CLOCK_CHANGE,
    CONFIG_CHANGE,
    PROVISIONED,
    LOG_DOWNLOADED,
    LOG_FULL,
    LOG_RESUMED,
)


class RecordError(ValueError):
    """Bytes that cannot be a log record (too short, too long, unknown format)."""


# ---- codec ------------------------------------------------------------------------------
def _state_number(value, names):
    if value is None:
        return NO_STATE
    if isinstance(value, str):
        for i in range(len(names)):
            if names[i] == value:
                return i
        raise ValueError("unknown state %r" % value)
    if 0 <= value < len(names) or value == NO_STATE:
        return value
    raise ValueError("state number %r out of range" % value)


def _clamp(value, low, high):
    return low if value < low else high if value > high else value


def _detail_bytes(detail):
    if detail is None:
        return b""
    data = detail if isinstance(detail, bytes) else str(detail).encode()
    if len(data) <= MAX_DETAIL:
        return data
    cut = MAX_DETAIL
    while cut > 0 and (data[cut] & 0xC0) == 0x80:  # do not split a UTF-8 character
        cut -= 1
    return data[:cut]


def encode_record(index, time, kind, prev, brac=None, compliance=None, session=None, value=0, detail=""):
    """The record bytes (CRC included). Numbers out of range are clamped, detail truncated
    to MAX_DETAIL bytes at a character boundary; an unknown kind or state is a ValueError."""
    if kind not in KIND_NAMES:
        raise ValueError("unknown record type %r" % kind)
    if len(prev) != HASH_SIZE:
        raise ValueError("prev hash must be 8 bytes")
    body = struct.pack(
        _HEAD,
        FORMAT,
        _clamp(index, 0, 0xFFFFFFFF),
        _clamp(time, 0, 0xFFFFFFFF),
        kind,
        _state_number(compliance, COMPLIANCE_STATES),
        _state_number(session, SESSION_STATES),
        NO_BRAC if brac is None else _clamp(brac, 0, NO_BRAC - 1),
        _clamp(value, -0x80000000, 0x7FFFFFFF),
        prev,
    ) + _detail_bytes(detail)
    return body + struct.pack("<I", crc32(body) & 0xFFFFFFFF)


def record_hash(record):
    """The 8-byte link the next record carries: SHA-256 of the whole record, truncated."""
    return sha256(record).digest()[:HASH_SIZE]


def record_problem(record):
    """None if `record` is intact (length, format, CRC), else a short reason."""
    size = len(record)
    if size < OVERHEAD:
        return "record of %d bytes is shorter than %d" % (size, OVERHEAD)
    if size > MAX_RECORD:
        return "record of %d bytes is longer than %d" % (size, MAX_RECORD)
    if record[0] != FORMAT:
        return "unknown record format %d" % record[0]
    if struct.unpack_from("<I", record, size - CRC_SIZE)[0] != crc32(record[: size - CRC_SIZE]) & 0xFFFFFFFF:
        return "CRC mismatch"
    return None


def record_index(record):
    return struct.unpack_from("<I", record, 1)[0]


def _name(names, number):
    if number < len(names):
        return names[number]
    return None


def decode_record(record):
    """The record as a dict: index, time, kind, kind_name, compliance, session (names or
    None), brac (None if absent), value, detail (str), prev (8 bytes), crc_ok (bool).
    Raises RecordError if the bytes cannot be a record (a CRC mismatch is only flagged)."""
    size = len(record)
    if size < OVERHEAD or size > MAX_RECORD:
        raise RecordError("record of %d bytes (must be %d..%d)" % (size, OVERHEAD, MAX_RECORD))
    fmt, index, time, kind, compliance, session, brac, value, prev = struct.unpack_from(_HEAD, record, 0)
    if fmt != FORMAT:
        raise RecordError("unknown record format %d" % fmt)
    raw = bytes(record[HEAD_SIZE : size - CRC_SIZE])
    try:
        detail = raw.decode()
    except UnicodeError:
        detail = "<invalid UTF-8 %s>" % raw.hex()
    crc = struct.unpack_from("<I", record, size - CRC_SIZE)[0]
    return {
        "index": index,
        "time": time,
        "kind": kind,
        "kind_name": KIND_NAMES.get(kind, "unknown_%d" % kind),
        "compliance": _name(COMPLIANCE_STATES, compliance),
        "session": _name(SESSION_STATES, session),
        "brac": None if brac == NO_BRAC else brac,
        "value": value,
        "detail": detail,
        "prev": bytes(prev),
        "crc_ok": crc == crc32(record[: size - CRC_SIZE]) & 0xFFFFFFFF,
    }


def verify_chain(records, prev_hash=None, first_index=None, head_hash=None):
    """Check a run of consecutive records. None if intact, else (position, reason) of the
    first record that breaks: bad length/format/CRC, an index that does not follow, or a
    `prev` that is not the hash of the record before. prev_hash / first_index anchor the
    first record (to the last record already held, or GENESIS and 0 for a whole log);
    head_hash (the device's LOG_INFO head_hash) anchors the last, so a cut-off or
    rewritten tail is caught too (reported at position len(records))."""
    prev = prev_hash
    expect = first_index
    position = 0
    for record in records:
        problem = record_problem(record)
        if problem is not None:
            return (position, problem)
        index = record_index(record)
        if expect is not None and index != expect:
            return (position, "index %d where %d was due" % (index, expect))
        if prev is not None and bytes(record[18:26]) != prev:
            return (position, "previous-record hash does not match")
        prev = record_hash(record)
        expect = index + 1
        position += 1
    if head_hash is not None and prev != head_hash:
        return (position, "last record does not match the head hash")
    return None


def _segment_valid(record, index):
    return record_problem(record) is None and record_index(record) == index


# ---- the log on flash ----------------------------------------------------------------------
class EventLog:
    """The device's event log on the HAL storage. See the module docstring and docs/eventlog.md.

    first / count / head (= first + count, the next index) / head_hash / capacity are
    attributes kept current; free_pct() is the share of the capacity still writable without
    dropping anything not yet downloaded.
    """

    def __init__(self, storage, prefix="log", records_per_segment=32, max_segments=128, reserve=16):
        if records_per_segment < 1 or records_per_segment > 4096:
            raise ValueError("records_per_segment must be 1..4096")
        if max_segments < 2:
            raise ValueError("max_segments must be at least 2")
        capacity = records_per_segment * max_segments
        if reserve < 0 or reserve >= capacity:
            raise ValueError("reserve must be 0..capacity-1")
        self.storage = storage
        self.prefix = prefix + "-"
        self.per_segment = records_per_segment
        self.max_segments = max_segments
        self.capacity = capacity
        self.reserve = reserve
        self.refused = 0  # records refused since boot because the log was full
        self.torn_bytes = 0  # bytes of torn tail dropped at the last boot scan
        self.damaged = 0  # stored records that fail their CRC/index (kept, flagged on the host)
        self._full_logged = False
        self._mark_file = StateFile(storage, prefix + "-mark")
        self._cache = None  # (segment number, bytes, [offsets]) of the last segment read
        self._recover()

    # -- naming
    def _seg_name(self, number):
        return "%s%08d" % (self.prefix, number)

    def _segments(self):
        """Segment numbers present on flash, oldest first; leftover .tmp files removed."""
        found = []
        plen = len(self.prefix)
        for name in self.storage.names():
            if not name.startswith(self.prefix):
                continue
            tail = name[plen:]
            if len(tail) == 12 and tail.endswith(".tmp"):
                self.storage.remove(name)  # an interrupted tail repair: the original stands
            elif len(tail) == 8 and tail.isdigit():
                found.append(int(tail))
        found.sort()
        return found

    # -- boot
    def _scan(self, number, data):
        """(valid length, records, last record, damaged) of segment `number`'s bytes."""
        expected = number * self.per_segment
        pos = 0
        count = 0
        last = None
        damaged = 0
        size = len(data)
        view = memoryview(data)  # records are checked in place, not copied
        while pos < size and count < self.per_segment:
            end = pos + 1 + data[pos]
            if end > size:
                break  # torn: the record runs past the end of the file
            record = view[pos + 1 : end]
            if not _segment_valid(record, expected + count):
                if end == size:
                    break  # torn: the last record is incomplete
                damaged += 1  # a bad record with committed ones after it: keep it
            last = record
            pos = end
            count += 1
        return pos, count, last, damaged

    def _recover(self):
        """Find the segments, drop a torn tail, and set first / head / head_hash."""
        self._broken = False
        self._cache = None
        segments = self._segments()
        self.torn_bytes = 0
        self.damaged = 0
        n = self.per_segment
        head = 0
        head_hash = GENESIS
        while segments:
            number = segments[-1]
            name = self._seg_name(number)
            data = self.storage.read(name) or b""
            good, count, last, damaged = self._scan(number, data)
            if good < len(data):
                self.torn_bytes += len(data) - good
                if good == 0:
                    self.storage.remove(name)
                else:
                    self.storage.write(name + ".tmp", data[:good])
                    self.storage.rename(name + ".tmp", name)
            if count:
                self.damaged += damaged
                head = number * n + count
                head_hash = record_hash(last)
                break
            # nothing valid in the newest segment (a cut while it was being started):
            # it goes, and the segment before it (full) holds the head
            if self.storage.size(name) >= 0:
                self.storage.remove(name)
            segments.pop()
            head = number * n
        self.head = head
        self.head_hash = head_hash
        self.lo = segments[0] if segments else head // n
        self.hi = segments[-1] if segments else -1
        self.first = self.lo * n
        self.count = head - self.first
        saved = self._mark_file.load()
        mark = saved.get("mark", 0) if saved else 0
        self.mark = _clamp(mark if isinstance(mark, int) else 0, 0, head)

    # -- space
    def _used(self):
        """Slots held by segments that may not be dropped (they hold undownloaded records)."""
        keep = self.mark // self.per_segment
        if keep < self.lo:
            keep = self.lo
        return self.head - keep * self.per_segment

    def free_pct(self, extra=0):
        """Whole percent of the capacity still writable without dropping undownloaded
        records (after `extra` more records)."""
        return (self.capacity - self._used() - extra) * 100 // self.capacity

    def accepting(self, kind, extra=0):
        """True if a record of this kind would be written now, or after `extra` more records
        (False: the log is full)."""
        limit = self.capacity if kind in RESERVE_KINDS else self.capacity - self.reserve
        return self._used() + extra < limit

    def full(self):
        """True once ordinary records are refused (only the reserve is left)."""
        return self._used() >= self.capacity - self.reserve

    def bounds(self):
        """(first, count): what log_bounds() answers."""
        return self.first, self.count

    # -- writing
    def append(self, time, kind, brac=None, compliance=None, session=None, value=0, detail=""):
        """Append one record; its index, or None if the log is full for this kind (the
        refusal is counted in `refused` and a LOG_FULL record is written once from the
        reserve). compliance / session: state names or numbers; brac None = no BrAC."""
        if kind not in KIND_NAMES:
            raise ValueError("unknown record type %r" % kind)
        if self._broken:
            self._recover()
        if not self.accepting(kind):
            self.refused += 1
            if not self._full_logged and self.accepting(LOG_FULL):
                self._full_logged = True
                self._write(time, LOG_FULL, None, compliance, session, self.free_pct(), "")
            return None
        if self.refused and not self.full():
            self._write(time, LOG_RESUMED, None, compliance, session, self.refused, "")
            self.refused = 0
            self._full_logged = False
            if not self.accepting(kind):
                return None
        return self._write(time, kind, brac, compliance, session, value, detail)

    def _write(self, time, kind, brac, compliance, session, value, detail):
        index = self.head
        record = encode_record(index, time, kind, self.head_hash, brac, compliance, session, value, detail)
        number = index // self.per_segment
        if number != self.hi:
            self._make_room(number)
        self._broken = True  # until the append returns: a failed write means rescan first
        self.storage.append(self._seg_name(number), bytes((len(record),)) + record)
        self._broken = False
        self.hi = number
        self.head = index + 1
        self.count = self.head - self.first
        self.head_hash = record_hash(record)
        if self._cache is not None and self._cache[0] == number:
            self._cache = None
        return index

    def _make_room(self, number):
        """Drop the oldest downloaded segments until segment `number` fits."""
        n = self.per_segment
        while number - self.lo + 1 > self.max_segments:
            if (self.lo + 1) * n > self.mark:
                raise RuntimeError("log full: segment %d is not downloaded" % self.lo)
            name = self._seg_name(self.lo)
            if self.storage.size(name) >= 0:
                self.storage.remove(name)
            if self._cache is not None and self._cache[0] == self.lo:
                self._cache = None
            self.lo += 1
            self.first = self.lo * n

    def mark_downloaded(self, next_index):
        """Every record before `next_index` was downloaded and acknowledged at a service
        visit: their segments may be dropped when space is needed. Saved power-safely;
        never goes back (a lower index is ignored). Returns the mark now in force."""
        if next_index > self.head:
            raise ValueError("mark %d is beyond the log head %d" % (next_index, self.head))
        if next_index > self.mark:
            self._mark_file.save({"mark": next_index})
            self.mark = next_index
        return self.mark

    # -- reading
    def _segment(self, number):
        """(bytes, record offsets) of one segment, from a one-segment cache."""
        cached = self._cache
        if cached is not None and cached[0] == number:
            return cached[1], cached[2]
        data = self.storage.read(self._seg_name(number)) or b""
        offsets = []  # type: list
        pos = 0
        size = len(data)
        while pos < size and len(offsets) < self.per_segment:
            end = pos + 1 + data[pos]
            if end > size:
                break
            offsets.append(pos)
            pos = end
        self._cache = (number, data, offsets)
        return data, offsets

    def records(self, start, max_count, budget_bytes):
        """Up to max_count stored records from index `start`, as bytes, while their packing
        (u8 length + bytes each) fits budget_bytes. [] if start is outside first..head-1."""
        out = []  # type: list
        if self._broken:
            self._recover()
        end = self.head
        if max_count < end - start:
            end = start + max_count
        if start < self.first or start >= end:
            return out
        n = self.per_segment
        used = 0
        index = start
        while index < end:
            number = index // n
            data, offsets = self._segment(number)
            slot = index - number * n
            if slot >= len(offsets):
                break  # a missing or damaged segment: stop here
            while slot < len(offsets) and index < end:
                pos = offsets[slot]
                size = data[pos]
                if used + 1 + size > budget_bytes:
                    return out
                out.append(bytes(data[pos + 1 : pos + 1 + size]))
                used += 1 + size
                index += 1
                slot += 1
        return out

    def read(self, index):
        """One record's bytes, or None."""
        found = self.records(index, 1, MAX_RECORD + 1)
        return found[0] if found else None

    def last(self):
        """The newest record decoded (dict), or None for an empty log."""
        if self.count == 0:
            return None
        record = self.read(self.head - 1)
        return None if record is None else decode_record(record)
