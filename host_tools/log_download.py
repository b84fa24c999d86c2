"""Downloading the event log to a file: resumable, verified as it arrives, JSON Lines or CSV.

The file is written record by record and flushed page by page, so a dropped cable loses
nothing: download() reconnects and continues from the record after the last one written,
and an existing file is resumed the same way (its last record anchors the hash chain of
what follows). Each JSON Lines row is one record decoded (protocol/logrecord.py's
decode_record) plus its raw bytes in hex, so `lci-tool log verify` can re-check the chain
from the file alone. CSV carries the same columns; the chain check needs the `raw` column.

The file format (docs/eventlog.md, "Download files"):
- version 2 (written now): `time` is the record's time in ISO 8601 with the zone
  (`2026-01-05T08:00:00Z`), `core_time` the same moment as the record holds it (core seconds);
- version 1 (files written before): no `core_time`, `time` in core seconds.
A file's version is told by its columns (a `core_time` column is version 2); both verify, and
a download resumed into a version-1 file goes on in version 1, so one file holds one version.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

from host_tools.device_client import DeviceClient
from host_tools.link import BadReply, BadRequest, LinkError, Nack, ProtocolVersionError
from protocol import logrecord

COLUMNS = ["index", "time", "core_time", "kind", "kind_name", "compliance", "session", "brac", "value",
           "detail", "raw"]  # version 2
COLUMNS_V1 = [name for name in COLUMNS if name != "core_time"]
VERSION = 2


class LogFileError(ValueError):
    pass


class LogMismatch(LogFileError):
    """The handset's log cannot continue this file (it is behind it, or another log)."""


def columns(version: int = VERSION) -> list[str]:
    return COLUMNS if version == VERSION else COLUMNS_V1


def version_of(rows: list[dict]) -> int:
    """The format version of a file's rows: 2 when they carry `core_time` (and for no rows)."""
    return VERSION if not rows or "core_time" in rows[0] else 1


def row_of(record: bytes, version: int = VERSION) -> dict:
    """One record as a file row of `version` (its decoded fields, then its bytes in hex)."""
    from host_tools.cli import record_time

    decoded = logrecord.decode_record(record)
    row = {name: decoded.get(name) for name in columns(version) if name not in ("raw", "core_time")}
    if version == VERSION:
        row["time"] = record_time(decoded["time"])
        row["core_time"] = decoded["time"]
    row["raw"] = record.hex()
    return row


def read_rows(path: Path) -> list[dict]:
    """The rows of a JSON Lines or CSV log file (format from the suffix)."""
    try:
        if path.suffix == ".csv":
            with path.open(newline="") as f:
                return list(csv.DictReader(f))
        rows = []
        lines = path.read_text().split("\n")
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                if number == len(lines):
                    break  # a torn last line (the writer was cut): resume before it
                raise LogFileError(f"{path}:{number}: not a JSON line") from None
        return rows
    except OSError as exc:
        raise LogFileError(f"cannot read {path}: {exc.strerror}") from None


def raw_records(rows: list[dict], path: Path) -> list[bytes]:
    out = []
    for number, row in enumerate(rows, 1):
        try:
            out.append(bytes.fromhex(row["raw"]))
        except (KeyError, TypeError, ValueError):
            raise LogFileError(f"{path}: row {number} has no raw record bytes") from None
    return out


class _Writer:
    def __init__(self, path: Path, fmt: str, resume: bool, version: int = VERSION):
        self.fmt = fmt
        self.version = version
        self.file = path.open("a" if resume else "w", newline="")
        self.csv = None
        if fmt == "csv":
            self.csv = csv.DictWriter(self.file, fieldnames=columns(version))
            if not resume:
                self.csv.writeheader()

    def write(self, record: bytes) -> None:
        row = row_of(record, self.version)
        if self.csv is not None:
            self.csv.writerow(row)
        else:
            self.file.write(json.dumps(row, sort_keys=True) + "\n")

    def flush(self) -> None:
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def Progress(total: int, enabled: bool):
    """Download progress on stderr: a bar on a terminal, plain lines elsewhere (host_tools.cli)."""
    from host_tools.cli import Progress as Bar

    return Bar("event log", total, "records", enabled=enabled)


def download(
    connect: Callable[[], DeviceClient],
    path: Path,
    *,
    fmt: str = "jsonl",
    start: int | None = None,
    progress: bool = False,
    reconnects: int = 5,
    say: Callable[[str], None] = print,
) -> dict:
    """Download the log into `path` (resuming it if it holds records); verify the chain."""
    resume = path.exists() and path.stat().st_size > 0
    prev_hash = None
    next_index = start
    version = VERSION
    if resume:
        rows = read_rows(path)
        if rows:
            version = version_of(rows)  # a file goes on in the version it was started in
            records = raw_records(rows, path)
            prev_hash = logrecord.record_hash(records[-1])
            next_index = logrecord.record_index(records[-1]) + 1
            _truncate_torn_tail(path, fmt)
    writer = _Writer(path, fmt, resume, version)
    written = 0
    first = next_index
    resumes = 0
    problem = None
    bar = None
    try:
        attempts = 0
        while True:
            try:
                client = connect()
            except LinkError as exc:
                attempts += 1
                if attempts > reconnects:
                    raise
                say(f"reconnecting ({attempts}/{reconnects}): {exc}")
                continue
            try:
                info = client.log_info()
                low, high = info["first"], info["first"] + info["count"]
                if next_index is None:
                    next_index = low
                    first = low
                    prev_hash = logrecord.GENESIS if low == 0 else None
                if next_index > high:
                    raise LogMismatch(
                        f"the handset's log ends at record {high - 1}, behind this file's last "
                        f"record {next_index - 1}: it is not the log this file came from (handset "
                        "replaced or wiped?) — download into a new file"
                    )
                if next_index < low:
                    raise LogFileError(
                        f"the handset no longer holds records {next_index}..{low - 1} "
                        "(already downloaded and released at an earlier visit)"
                    )
                if bar is None:
                    bar = Progress(high - next_index, progress)
                for page_first, records in client.read_log(next_index, high - next_index):
                    problem = logrecord.verify_chain(records, prev_hash=prev_hash, first_index=page_first)
                    if problem is not None:
                        problem = (page_first + problem[0], problem[1])
                        break
                    for record in records:
                        writer.write(record)
                    writer.flush()
                    prev_hash = logrecord.record_hash(records[-1]) if records else prev_hash
                    next_index = page_first + len(records)
                    written += len(records)
                    bar.update(len(records))
                if problem is None and next_index == high and prev_hash != info["head_hash"]:
                    problem = (next_index, "last record does not match the handset's head hash")
                break
            except (Nack, ProtocolVersionError, BadReply, BadRequest):
                raise  # the handset answered: reconnecting would not change the answer
            except LinkError as exc:  # silence or a dead cable: reconnect and resume
                attempts += 1
                resumes += 1
                if attempts > reconnects:
                    raise
                say(f"link lost at record {next_index} ({exc}); resuming")
            finally:
                client.close()
    finally:
        writer.close()
        if bar is not None:
            bar.close()
    total = (next_index or 0) - (first or 0)
    return {
        "path": str(path),
        "format": fmt,
        "records": total if not resume else written,
        "written": written,
        "first": first,
        "last": (next_index if next_index is not None else 0) - 1,
        "resumes": resumes,
        "chain_ok": problem is None,
        "chain_problem": None if problem is None else f"record {problem[0]}: {problem[1]}",
    }


def _truncate_torn_tail(path: Path, fmt: str) -> None:
    """Cut a last line that a cut-off writer left without its newline."""
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        path.write_bytes(data[: data.rfind(b"\n") + 1])
