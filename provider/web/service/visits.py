"""Filing a visit with its client: the billing account whose handset has the serial, and, for
an uploaded log, the log's chain checked again on the server (host_tools/logverify.py, the
same checks lci-tool ran), anchored to the last log filed for that handset when it follows it."""

from __future__ import annotations

import tempfile
from pathlib import Path

from host_tools import logverify
from provider.web.portal.billing import engine

from .models import Visit


class VisitRefused(Exception):
    """The visit cannot be filed; str() is the one line that says why."""


def client_of(serial: str) -> str:
    """The billing account (ref) of the handset with this serial: the latest opened."""
    with engine() as e:
        row = e.conn.execute("SELECT ref FROM account WHERE serial = ? ORDER BY id DESC",
                             (serial,)).fetchone()
    if row is None:
        raise VisitRefused(f"no client has handset {serial}")
    return row[0]


def check_log(serial: str, log_text: str, log_format: str = "jsonl") -> dict:
    """The chain report of an uploaded log file's text (a download's JSON Lines or CSV, checked
    by logverify as `lci-tool log verify` does), or VisitRefused."""
    if not log_text.strip():
        raise VisitRefused("the upload holds no event log")
    if log_format not in ("jsonl", "csv"):
        raise VisitRefused(f"unknown log format {log_format!r} (jsonl or csv)")
    with tempfile.TemporaryDirectory(prefix="lci-visit-") as folder:
        path = Path(folder) / f"upload.{log_format}"
        path.write_text(log_text)
        try:
            records = logverify.load_records(path)
            rows = logverify.check_file_rows(path)
        except logverify.LogInputError as exc:
            raise VisitRefused(f"the event log cannot be read: {exc}".replace(str(path), "log"))\
                from None
    report = logverify.verify(records, prev_hash=_previous_head(serial, records))
    if not report["chain_ok"]:
        where = f"record {report['broken_at']}" if report["broken_at"] is not None else "log"
        raise VisitRefused(f"the event log does not verify: {where}: {report['chain_problem']}")
    if not rows["fields_ok"]:
        raise VisitRefused(f"the event log does not verify: {rows['field_problem']}")
    return report


def _previous_head(serial: str, records: list[bytes]) -> bytes | None:
    """The hash of the record before this log's first, when a log filed earlier ends there."""
    from protocol import logrecord

    if not records or logrecord.record_problem(records[0]) is not None:
        return None
    first = logrecord.record_index(records[0])
    if first == 0:
        return None
    before = (Visit.objects.filter(serial=serial, log_last=first - 1).exclude(log_head="")
              .values_list("log_head", flat=True).first())
    return bytes.fromhex(before) if before else None
