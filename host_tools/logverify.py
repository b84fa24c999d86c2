"""Checking an event log on the host: load it from any form, verify its chain, convert it, report.

This module owns the host-side reading of event-log records that are already on the
laptop, whatever carried them there:
- a JSON Lines or CSV file written by `lci-tool log download` (host_tools/log_download.py;
  its rows and columns are reused here, so both tools read and write the same files);
- a binary of packed records (u8 length + record bytes each): a flash segment file, LOG_READ
  pages laid end to end, or a dump;
- a folder of flash segment files (`log-00000000`, `log-00000001` ...), as the simulator or
  a board's file system holds them.

The record codec and the chain verifier are protocol/logrecord.py's, shared with the device.
summary() counts what Washington's WAC 308-107-080(2) asks an event-log report to show.

    python -m host_tools.logverify LOG... [--prev HEX] [--head HEX] [--jsonl OUT] [--csv OUT]
                                          [--summary] [--json]

A download file's decoded fields (kind_name, value, time ...) are re-derived from each row's
`raw` bytes: a row that says anything else fails verification, as a broken chain does.

Exit status: 0 the chain and the rows verify, 8 they do not (host_tools/exitcodes.VERIFY_FAILED),
2 the input cannot be read (one line on stderr says why).
"""

from __future__ import annotations

import argparse
import binascii
import csv
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from host_tools import exitcodes
from host_tools.log_download import (
    LogFileError,
    columns,
    raw_records,
    read_rows,
    row_of,
    version_of,
)
from protocol import logrecord

SEGMENT_PREFIX = "log-"


class LogInputError(Exception):
    """The input is not a log in any form this tool reads (one line: what and where)."""


# ---- loading -------------------------------------------------------------------------------
def split_packed(blob: bytes, where: str = "input") -> list[bytes]:
    """Records from u8 length + bytes, back to back. A record cut off at the very end (a torn
    tail, as a power cut leaves it on flash) is an error naming its offset."""
    out = []
    pos = 0
    while pos < len(blob):
        size = blob[pos]
        end = pos + 1 + size
        if end > len(blob):
            raise LogInputError(f"{where}: record at byte {pos} runs past the end ({size} bytes announced, {len(blob) - pos - 1} there)")
        out.append(bytes(blob[pos + 1 : end]))
        pos = end
    return out


def _segment_files(folder: Path) -> list[Path]:
    found = []
    for path in folder.iterdir():
        tail = path.name[len(SEGMENT_PREFIX) :]
        if path.name.startswith(SEGMENT_PREFIX) and len(tail) == 8 and tail.isdigit():
            found.append(path)
    return sorted(found)


def load_records(path: Path) -> list[bytes]:
    """The records held in `path`: a .jsonl / .csv download, a folder of flash segment
    files, or any other file as packed records (u8 length + bytes each)."""
    try:
        if path.is_dir():
            segments = _segment_files(path)
            if not segments:
                raise LogInputError(f"{path}: no {SEGMENT_PREFIX}NNNNNNNN segment files in this folder")
            out: list[bytes] = []
            for segment in segments:
                out.extend(split_packed(segment.read_bytes(), str(segment)))
            return out
        if path.suffix in (".jsonl", ".csv"):
            try:
                return raw_records(read_rows(path), path)
            except LogFileError as exc:
                raise LogInputError(str(exc)) from None
        return split_packed(path.read_bytes(), str(path))
    except OSError as exc:
        raise LogInputError(f"cannot read {path}: {exc.strerror or exc}") from None


def parse_hash(text: str | None, what: str) -> bytes | None:
    if text is None:
        return None
    try:
        value = binascii.unhexlify(text.strip())
    except (binascii.Error, ValueError):
        raise LogInputError(f"{what} must be {logrecord.HASH_SIZE * 2} hex digits, not {text!r}") from None
    if len(value) != logrecord.HASH_SIZE:
        raise LogInputError(f"{what} must be {logrecord.HASH_SIZE * 2} hex digits, not {len(value) * 2}")
    return value


# ---- verifying -------------------------------------------------------------------------------
def verify(records: Sequence[bytes], prev_hash: bytes | None = None, head_hash: bytes | None = None) -> dict:
    """The chain report of consecutive records. A log that starts at index 0 is anchored to
    the genesis hash; one that starts later is anchored to `prev_hash` if given (the hash of
    the last record of the previous download), else only checked within itself. head_hash
    (the handset's LOG_INFO head hash) anchors the end, so a missing tail shows."""
    first = None
    if records and logrecord.record_problem(records[0]) is None:
        first = logrecord.record_index(records[0])
    anchor = prev_hash
    if anchor is None and first == 0:
        anchor = logrecord.GENESIS
    problem = logrecord.verify_chain(records, anchor, first, head_hash)
    broken_at = None  # the record index where the chain breaks, when it is known
    if problem is not None and first is not None:
        broken_at = first + problem[0]
    return {
        "records": len(records),
        "first": first,
        "last": None if first is None else first + len(records) - 1,
        "anchored": anchor is not None,
        "head_checked": head_hash is not None,
        "chain_ok": problem is None,
        "broken_at": broken_at,
        "position": None if problem is None else problem[0],
        "chain_problem": None if problem is None else problem[1],
        "head_hash": logrecord.record_hash(records[-1]).hex() if records else None,
    }


def verify_file(path: Path, head_hash: bytes | None = None) -> dict:
    """verify() of the records in a file or folder (load_records), with its path, and for a
    download file check_rows() of its decoded fields (`ok` is both)."""
    report = verify(load_records(path), head_hash=head_hash)
    report["path"] = str(path)
    report.update(check_file_rows(path))
    report["ok"] = report["chain_ok"] and report["fields_ok"]
    return report


def _shown(value, as_csv: bool):
    """A decoded value as the file holds it: JSON keeps types, CSV holds text ('' for None)."""
    if as_csv:
        return "" if value is None else str(value)
    return value


def _same(held, derived) -> bool:
    return type(held) is type(derived) and held == derived  # True is not 1, "5" is not 5


def check_rows(rows: Sequence[dict], as_csv: bool = False) -> dict:
    """Each row's decoded fields re-derived from its `raw` bytes: a row whose fields say
    anything else (an edited kind_name, value, time ...), lacks one, or carries another is
    reported with its record index. The chain protects `raw`; this protects the rest.
    The rows' format version (log_download.version_of) decides which fields they carry."""
    version = version_of(list(rows[:1]))
    names = columns(version)
    for number, row in enumerate(rows, 1):
        try:
            raw = bytes.fromhex(row.get("raw") or "")
        except (TypeError, ValueError):
            raw = b""
        try:
            derived = row_of(raw, version)
        except logrecord.RecordError:
            derived = {name: None for name in names}
            derived["raw"] = raw.hex()
        where = derived.get("index")
        problem = None
        extra = sorted(set(row) - set(names))
        if extra:
            problem = f"field {extra[0]!r} is not part of a record"
        for name in names:
            if problem is not None:
                break
            if name == "raw":
                continue
            if name not in row:
                problem = f"field {name!r} is missing"
            elif not _same(row[name], _shown(derived[name], as_csv)):
                problem = f"field {name!r} is {row[name]!r} but the raw bytes say {_shown(derived[name], as_csv)!r}"
        if problem is not None:
            label = f"record {where}" if where is not None else f"row {number}"
            return {"fields_ok": False, "field_broken_at": where, "field_problem": f"{label}: {problem}"}
    return {"fields_ok": True, "field_broken_at": None, "field_problem": None}


def check_file_rows(path: Path) -> dict:
    """check_rows() of a .jsonl / .csv download; other inputs hold no decoded fields."""
    if path.is_dir() or path.suffix not in (".jsonl", ".csv"):
        return check_rows([])
    try:
        return check_rows(read_rows(path), as_csv=path.suffix == ".csv")
    except LogFileError as exc:
        raise LogInputError(str(exc)) from None


# ---- converting ------------------------------------------------------------------------------
def rows(records: Iterable[bytes]) -> list[dict]:
    """Each record decoded (protocol/logrecord.py) plus its raw bytes in hex: the download
    file's row. A record too short or too long to decode becomes a row with only `raw`."""
    out = []
    for record in records:
        try:
            out.append(row_of(record))
        except logrecord.RecordError:
            row = {name: None for name in columns()}
            row["raw"] = record.hex()
            out.append(row)
    return out


def write_jsonl(records: Iterable[bytes], path: Path) -> int:
    count = 0
    with path.open("w") as f:
        for row in rows(records):
            f.write(json.dumps(row, sort_keys=True) + "\n")
            count += 1
    return count


def write_csv(records: Iterable[bytes], path: Path) -> int:
    count = 0
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns())
        writer.writeheader()
        for row in rows(records):
            writer.writerow(row)
            count += 1
    return count


# ---- the WAC 308-107-080 report ---------------------------------------------------------------
def summary(records: Sequence[bytes]) -> dict:
    """What WAC 308-107-080(2) asks an event-log report to show, counted from the records
    (records that fail their CRC are left out and counted as `unreadable`):
    (a) start tests with their BrAC and result, (b) random retests likewise, (c) tamper
    events, (d) attempts to avoid a retest (missed or refused), (e) circumvention attempts,
    (f) the recalibrated / no-violations statement, (g) events since the last service
    visit, (h) vehicle starts, (i) failures to start; plus the time the vehicle was
    operated (WAC 204-50-110(1)(h)), from engine start to engine stop."""
    k = logrecord
    decoded = []
    unreadable = 0
    for record in records:
        if logrecord.record_problem(record) is not None:
            unreadable += 1
            continue
        decoded.append(logrecord.decode_record(record))
    counts: dict[str, int] = {}
    for d in decoded:
        counts[d["kind_name"]] = counts.get(d["kind_name"], 0) + 1

    def n(*kinds: int) -> int:
        return sum(counts.get(k.kind_name(kind), 0) for kind in kinds)

    def tests(passed: int, failed: int) -> list[dict]:
        return [
            {"index": d["index"], "time": d["time"], "brac": d["brac"], "passed": d["kind"] == passed}
            for d in decoded
            if d["kind"] in (passed, failed)
        ]

    last_service = None
    for d in decoded:
        if d["kind"] == k.SERVICE_CLOSE:
            last_service = d["index"]
    since = [d for d in decoded if last_service is None or d["index"] > last_service]
    operated = 0
    started = None
    for d in decoded:
        if d["kind"] == k.ENGINE_START and started is None:
            started = d["time"]
        elif d["kind"] in (k.ENGINE_STOP, k.POWER_LOSS) and started is not None:
            operated += max(0, d["time"] - started)
            started = None
    tampers = n(k.TAMPER)
    circumventions = n(k.CIRCUMVENT)
    violations = n(k.VIOLATION)
    recalibrated = n(k.CAL_PASS) > 0
    if tampers or circumventions:
        statement = "tamper or circumvention attempts were recorded"
    elif recalibrated and not violations:
        statement = "the device has been recalibrated and no violations were found"
    elif recalibrated:
        statement = "the device has been recalibrated; violations were recorded"
    else:
        statement = "no tamper or circumvention attempts; no recalibration in these records"
    return {
        "records": len(records),
        "unreadable": unreadable,
        "from_time": decoded[0]["time"] if decoded else None,
        "to_time": decoded[-1]["time"] if decoded else None,
        "start_tests": tests(k.TEST_PASS, k.TEST_FAIL),  # (a)
        "retests": tests(k.RETEST_PASS, k.RETEST_FAIL),  # (b)
        "tamper_events": tampers,  # (c)
        "retest_avoidance": n(k.RETEST_MISSED, k.RETEST_REFUSED),  # (d)
        "circumvention_attempts": circumventions,  # (e)
        "statement": statement,  # (f)
        "events_since_last_service": len(since),  # (g)
        "last_service_index": last_service,
        "vehicle_starts": n(k.ENGINE_START),  # (h)
        "failures_to_start": n(k.TEST_FAIL),  # (i)
        "starts_blocked": n(k.START_BLOCKED),
        "violations": violations,
        "operated_seconds": operated,
        "by_type": counts,
    }


# ---- command line ----------------------------------------------------------------------------
def _text(report: dict, facts: dict | None) -> str:
    span = f"records {report['first']}..{report['last']}" if report["records"] else "no records"
    if report["chain_ok"]:
        anchors = []
        if report["anchored"]:
            anchors.append("anchored")
        if report["head_checked"]:
            anchors.append("head hash matches")
        line = f"{report['records']} {span}: chain verified" + (f" ({', '.join(anchors)})" if anchors else "")
    else:
        where = report["broken_at"] if report["broken_at"] is not None else f"#{report['position']} of the file"
        line = f"{report['records']} {span}: chain BROKEN at record {where}: {report['chain_problem']}"
    if not report.get("fields_ok", True):
        line += f"; decoded fields do NOT match the raw bytes: {report['field_problem']}"
    if facts is None:
        return line
    lines = [line]
    passed = sum(1 for t in facts["start_tests"] if t["passed"])
    rpassed = sum(1 for t in facts["retests"] if t["passed"])
    lines += [
        f"start tests       {len(facts['start_tests'])} ({passed} passed, {facts['failures_to_start']} failed)",
        f"random retests    {len(facts['retests'])} ({rpassed} passed, {len(facts['retests']) - rpassed} failed)",
        f"vehicle starts    {facts['vehicle_starts']} (operated {facts['operated_seconds'] // 60} min)",
        f"tamper events     {facts['tamper_events']}",
        f"retest avoidance  {facts['retest_avoidance']}",
        f"circumvention     {facts['circumvention_attempts']}",
        f"since service     {facts['events_since_last_service']} events",
        f"statement         {facts['statement']}",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m host_tools.logverify",
        description="Verify an LCI-777 event log's hash chain; convert it to JSON Lines / CSV; "
        "count what WAC 308-107-080 asks for.",
    )
    parser.add_argument("logs", nargs="+", type=Path,
                        help=".jsonl / .csv downloads, packed-record binaries or folders of "
                        "flash segment files, in log order (read as one run of records)")
    parser.add_argument("--prev", help="hash (16 hex digits) of the record before the first one")
    parser.add_argument("--head", help="the handset's head hash (LOG_INFO), to check the tail")
    parser.add_argument("--jsonl", type=Path, help="write the records as JSON Lines here")
    parser.add_argument("--csv", type=Path, help="write the records as CSV here")
    parser.add_argument("--summary", action="store_true", help="also count what WAC 308-107-080 asks for")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    try:
        records: list[bytes] = []
        fields = check_rows([])
        for path in args.logs:
            records.extend(load_records(path))
            if fields["fields_ok"]:
                fields = check_file_rows(path)
        report = verify(records, parse_hash(args.prev, "--prev"), parse_hash(args.head, "--head"))
        report.update(fields)
        report["ok"] = report["chain_ok"] and report["fields_ok"]
        facts = summary(records) if args.summary else None
        if args.jsonl is not None:
            write_jsonl(records, args.jsonl)
        if args.csv is not None:
            write_csv(records, args.csv)
    except LogInputError as exc:
        print(f"logverify: {exc}", file=sys.stderr)
        return exitcodes.USAGE
    except OSError as exc:
        print(f"logverify: cannot write {exc.filename}: {exc.strerror}", file=sys.stderr)
        return exitcodes.USAGE
    if args.json:
        out = dict(report)
        if facts is not None:
            out["summary"] = facts
        print(json.dumps(out, sort_keys=True))
    else:
        print(_text(report, facts))
    return exitcodes.OK if report["ok"] else exitcodes.VERIFY_FAILED


if __name__ == "__main__":
    sys.exit(main())
