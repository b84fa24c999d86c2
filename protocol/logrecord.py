"""The event-log record: its bytes, its kinds, its decoding and the hash chain.

Both sides speak this format: the device writes records (firmware/eventlog.py keeps them
on flash), the host downloads, decodes and verifies them (lci-tool, the data link).
docs/eventlog.md is the full description (record kinds with their meanings, full-log
policy, power-cut behaviour).

Record (little-endian, at most 255 bytes; the CRC and the chain cover all of it):

    offset size field
    0      1    format      1
    1      4    index       u32, 0, 1, 2 ... never reused
    5      4    time        u32, core seconds (since 2020-01-01T00:00:00Z)
    9      1    kind        u8, a record type (KINDS)
    10     1    compliance  u8, index in protocol.messages.COMPLIANCE_STATES, 255 unknown
    11     1    session     u8, index in protocol.messages.SESSION_STATES, 255 unknown
    12     2    brac        u16, 0.0001 g/210L; 0xFFFF = no BrAC in this record
    14     4    value       i32, the record type's number (see the table); 0 if unused
    18     8    prev        first 8 bytes of SHA-256 of the previous record (zeros for index 0)
    26     n    detail      UTF-8 text, at most 225 bytes
    26+n   4    crc         CRC-32 of bytes 0 .. 26+n

Each record's `prev` is the first 8 bytes of SHA-256 of the whole record before it, so a
run of records is checked by verify_chain against its first record's anchor and the
device's head hash.
"""

try:
    from micropython import const
except ImportError:  # CPython: the value itself
    const = int  # type: ignore[misc, assignment]

import struct
from binascii import crc32
from hashlib import sha256

from protocol.messages import COMPLIANCE_STATES, SESSION_STATES

FORMAT = 1
_HEAD = "<BIIBBBHi8s"
HEAD_SIZE = 26
_CRC_SIZE = const(4)
OVERHEAD = HEAD_SIZE + _CRC_SIZE
MAX_RECORD = 255
MAX_DETAIL = MAX_RECORD - OVERHEAD  # 225
NO_BRAC = 0xFFFF
NO_STATE = 255
GENESIS = b"\x00" * 8  # the "previous hash" of record 0
HASH_SIZE = 8

# ---- record kinds -------------------------------------------------------------------------
# number: reserve. Each row also defines the kind's constant (BOOT = 1, ...); the kind's name
# is its constant's name in lower case (NAMES, in number order: one string on a board).
# reserve True: the kind may still be written from the reserve once the log is nearly full
# (what a locked-out device and the service visit that empties the log need to record);
# False: the kind (driving records, summaries of refused keyless input) is then refused,
# counted and summed up in a LOG_RESUMED record.
# The meaning of each kind (and of its brac / value / detail) is the table in
# docs/eventlog.md; a test checks the two agree. CODE_REJECTED / TOKEN_REJECTED are no longer
# written (REFUSALS summarizes refusals); they stay for decoding older logs.
KINDS = {
    (BOOT := 1):                 True,
    (POWER_LOSS := 2):           True,
    (SHUTDOWN := 3):             True,
    (FAULT := 4):                False,

    (START_ATTEMPT := 10):       False,
    (TEST_PASS := 11):           False,
    (TEST_FAIL := 12):           False,
    (TEST_ABORT := 13):          False,
    (TEST_REFUSED := 14):        False,
    (TEMP_LOCKOUT := 15):        False,
    (ENGINE_START := 16):        False,
    (ENGINE_STOP := 17):         False,
    (FREE_RESTART := 18):        False,
    (START_BLOCKED := 19):       False,

    (RETEST_DUE := 20):          False,
    (RETEST_PASS := 21):         False,
    (RETEST_FAIL := 22):         False,
    (RETEST_ABORT := 23):        False,
    (RETEST_MISSED := 24):       False,
    (RETEST_REFUSED := 25):      False,
    (VIOLATION := 26):           False,
    (VIOLATION_END := 27):       False,

    (TAMPER := 30):              True,
    (TAMPER_CLEAR := 31):        True,
    (CIRCUMVENT := 32):          True,

    (COMPLIANCE_CHANGE := 40):   True,
    (SESSION_CHANGE := 41):      True,
    (CAUSE_SET := 42):           True,
    (CAUSE_CLEAR := 43):         True,

    (SERVICE_OPEN := 50):        True,
    (SERVICE_CLOSE := 51):       True,
    (CAL_AS_FOUND := 52):        True,
    (CAL_ADJUST := 53):          True,
    (CAL_CHECK := 54):           True,
    (CAL_PASS := 55):            True,
    (CAL_FAIL := 56):            True,
    (SERVICE_SUMMARY := 57):     True,
    (WORK_ORDER := 58):          True,

    (CODE_REQUEST := 60):        False,
    (CODE_ACCEPTED := 61):       True,
    (CODE_REJECTED := 62):       False,
    (TOKEN_ACCEPTED := 63):      True,
    (TOKEN_REJECTED := 64):      False,
    (UNLOCK_START := 65):        True,
    (UNLOCK_END := 66):          True,
    (REFUSALS := 67):            False,

    (CLOCK_CHANGE := 70):        True,
    (CONFIG_CHANGE := 71):       True,
    (PROVISIONED := 72):         True,

    (LOG_DOWNLOADED := 80):      True,
    (LOG_FULL := 81):            True,
    (LOG_RESUMED := 82):         True,
}
NAMES = (
    "boot power_loss shutdown fault start_attempt test_pass test_fail test_abort "
    "test_refused temp_lockout engine_start engine_stop free_restart start_blocked "
    "retest_due retest_pass retest_fail retest_abort retest_missed retest_refused "
    "violation violation_end tamper tamper_clear circumvent compliance_change "
    "session_change cause_set cause_clear service_open service_close cal_as_found "
    "cal_adjust cal_check cal_pass cal_fail service_summary work_order code_request "
    "code_accepted code_rejected token_accepted token_rejected unlock_start unlock_end "
    "refusals clock_change config_change provisioned log_downloaded log_full log_resumed"
)


# Tamper kinds (TAMPER / TAMPER_CLEAR value); 1 and 2 match protocol.messages BENCH_TAMPER.
TAMPER_SENSOR_DISCONNECTED = 1
TAMPER_RELAY_BYPASS = 2
TAMPER_POWER_LOST_RUNNING = 3
TAMPER_SUPPLY_LOW = 4


def kind_name(kind):
    """The kind's name, or "unknown_N" for a number outside KINDS."""
    if kind not in KINDS:
        return "unknown_%d" % kind
    return NAMES.split()[sorted(KINDS).index(kind)]


def is_reserve(kind):
    """True if records of this kind may be written from the log's reserve."""
    return KINDS.get(kind, False)


class RecordError(ValueError):
    """Bytes that cannot be a log record (too short, too long, unknown format)."""


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
    if kind not in KINDS:
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
    if struct.unpack_from("<I", record, size - _CRC_SIZE)[0] != crc32(record[: size - _CRC_SIZE]) & 0xFFFFFFFF:
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
    raw = bytes(record[HEAD_SIZE : size - _CRC_SIZE])
    try:
        detail = raw.decode()
    except UnicodeError:
        detail = "<invalid UTF-8 %s>" % raw.hex()
    crc = struct.unpack_from("<I", record, size - _CRC_SIZE)[0]
    return {
        "index": index,
        "time": time,
        "kind": kind,
        "kind_name": kind_name(kind),
        "compliance": _name(COMPLIANCE_STATES, compliance),
        "session": _name(SESSION_STATES, session),
        "brac": None if brac == NO_BRAC else brac,
        "value": value,
        "detail": detail,
        "prev": bytes(prev),
        "crc_ok": crc == crc32(record[: size - _CRC_SIZE]) & 0xFFFFFFFF,
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
