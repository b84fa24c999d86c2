"""The device's event log on flash: append-only, hash-chained, power-cut-safe.

This module owns the log's files and the appending, recovery and reading of records; the
record format, the record kinds and the chain check live in protocol/logrecord.py (both
sides speak them) and are importable from here too (eventlog.BOOT, eventlog.encode_record,
...; the module's __getattr__ reads them from protocol.logrecord). docs/eventlog.md is the full description.

On flash the log is a run of segment files `PREFIX-00000012` (segment k holds records
k*N .. k*N+N-1), each record stored as u8 length + record bytes — the same packing as a
LOG_READ page. Only the newest segment is ever appended to; a torn tail (a record cut by a
power loss) is found on boot by its length and CRC and removed (rewrite to `.tmp`, atomic
rename). Old segments are removed only when their records were downloaded at a service
visit (mark_downloaded) and the space is needed; the download mark is a persist.StateFile.
"""

try:
    from micropython import const
except ImportError:  # CPython: the value itself
    const = int  # type: ignore[misc, assignment]

from firmware.persist import StateFile
from protocol import logrecord
from protocol.logrecord import (
    GENESIS,
    KINDS,
    LOG_FULL,
    LOG_RESUMED,
    MAX_RECORD,
    decode_record,
    encode_record,
    is_reserve,
    record_hash,
    record_index,
    record_problem,
)

_READ = const(256)  # bytes of a segment read at a time to find its records


def __getattr__(name):
    """The record format's names (eventlog.BOOT, eventlog.decode_record, ...) are
    protocol.logrecord's, read from there rather than copied into this module's heap."""
    return getattr(logrecord, name)


def _clamp(value, low, high):
    return low if value < low else high if value > high else value


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
        self._cache = None  # (segment number, record bounds) of the last segment read
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

    def truncate(self, index):
        """Remove the records from `index` on: those of a change whose state was never saved
        (firmware/device.py's _apply). Newer segments go first, then the one holding `index`
        is cut short (write to .tmp, atomic rename), so a cut in here leaves a log this call
        finishes at the next boot. Only records no one read may go: the device calls it at
        boot, or when a change fails before its reply."""
        if index >= self.head:
            return
        n = self.per_segment
        keep = index // n
        for number in self._segments():
            if number > keep:
                self.storage.remove(self._seg_name(number))
        name = self._seg_name(keep)
        data = self.storage.read(name)
        if data:
            pos = 0
            left = index - keep * n  # the records of this segment that stay
            while left and pos < len(data):
                pos += 1 + data[pos]
                left -= 1
            if pos == 0:
                self.storage.remove(name)
            elif pos < len(data):
                self.storage.write(name + ".tmp", data[:pos])
                self.storage.rename(name + ".tmp", name)
        self._recover()

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
        limit = self.capacity if is_reserve(kind) else self.capacity - self.reserve
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
        if kind not in KINDS:
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
    def _bounds(self, number):
        """Where the records of segment `number` start, and where its last one ends: record
        i is bytes bounds[i] + 1 .. bounds[i + 1] of the file (its length byte first). Read
        _READ bytes at a time, so a segment is never whole in RAM; the last segment's bounds
        are kept (a one-segment cache)."""
        cached = self._cache
        if cached is not None and cached[0] == number:
            return cached[1]
        name = self._seg_name(number)
        size = self.storage.size(name)
        bounds = [0]
        chunk = b""
        at = 0  # the file offset of chunk[0]
        pos = 0
        while pos < size and len(bounds) <= self.per_segment:
            if pos - at >= len(chunk):
                chunk = self.storage.read_at(name, pos, _READ) or b""
                at = pos
                if not chunk:
                    break
            end = pos + 1 + chunk[pos - at]
            if end > size:
                break
            bounds.append(end)
            pos = end
        self._cache = (number, bounds)
        return bounds

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
            bounds = self._bounds(number)
            first = slot = index - number * n
            if slot + 1 >= len(bounds):
                break  # a missing or damaged segment: stop here
            full = False
            while slot + 1 < len(bounds) and index < end:
                if used + bounds[slot + 1] - bounds[slot] > budget_bytes:
                    full = True
                    break
                used += bounds[slot + 1] - bounds[slot]
                index += 1
                slot += 1
            data = self.storage.read_at(self._seg_name(number), bounds[first], bounds[slot] - bounds[first]) or b""
            pos = 0
            while first < slot:
                size = bounds[first + 1] - bounds[first]
                if pos + size > len(data):
                    return out  # the segment changed under us: what was read so far
                out.append(bytes(data[pos + 1 : pos + size]))
                pos += size
                first += 1
            if full:
                return out
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
