"""What a downloaded log file is checked against, through lci-tool's command line: a resume
against a handset whose log is behind the file is refused, and `log verify` holds every
decoded field of a row to what its raw record bytes say."""

from __future__ import annotations

import csv
import json
import re
from datetime import UTC, datetime

import pytest

from firmware import eventlog as E
from host_tools import exitcodes
from host_tools.log_download import COLUMNS
from protocol.coretime import EPOCH_UNIX
from tests.host.sim_bench import Bench
from tests.host.test_lci_tool import run, run_json


def test_a_resume_against_a_handset_whose_log_is_behind_the_file_is_refused(tmp_path, capsys):
    out = tmp_path / "visit.jsonl"
    first = Bench(tmp_path / "a", endpoint="tcp", drives=2)
    try:
        code, report, err = run_json(capsys, first.args("log", "download", "--out", str(out)))
        assert code == 0 and report["chain_ok"], err
    finally:
        first.stop()
    kept = out.read_bytes()
    # the same serial on the cable, but a fresh handset (replaced, or its log wiped): shorter log
    second = Bench(tmp_path / "b", endpoint="tcp")
    try:
        code, _, err = run(capsys, second.args("log", "download", "--out", str(out)))
        assert code == exitcodes.VERIFY_FAILED, err
        assert err.count("\n") == 1 and "behind" in err and str(report["last"]) in err
        assert out.read_bytes() == kept  # the file is left as it was
    finally:
        second.stop()


@pytest.fixture(scope="module")
def downloaded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dl")
    bench = Bench(tmp, endpoint="tcp", drives=1)
    try:
        from host_tools import lci_tool

        for fmt in ("jsonl", "csv"):
            assert lci_tool.main(bench.args("log", "download", "--out", str(tmp / f"log.{fmt}"),
                                            "--format", fmt, "--quiet")) == 0
    finally:
        bench.stop()
    return tmp


EDITS = {  # a plausible forgery of each decoded field
    "index": 9999, "time": "2026-01-05T08:00:00Z", "core_time": 12345, "kind": 3, "kind_name": "test_pass", "compliance": "normal",
    "session": "engine_enabled", "brac": 0, "value": 42, "detail": "all good",
}


@pytest.mark.parametrize("field", [c for c in COLUMNS if c != "raw"])
def test_editing_any_decoded_field_of_a_jsonl_row_fails_verification(downloaded, tmp_path, capsys, field):
    rows = [json.loads(line) for line in (downloaded / "log.jsonl").read_text().splitlines()]
    edited = next(r for r in rows[1:] if r[field] != EDITS[field])
    edited[field] = EDITS[field]
    path = tmp_path / "edited.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, report, err = run_json(capsys, ["log", "verify", str(path)])
    assert code == exitcodes.VERIFY_FAILED, report
    assert report["chain_ok"] is True and report["fields_ok"] is False  # the raw bytes are intact
    assert report["field_broken_at"] == edited["index"] if field != "index" else True
    assert field in report["field_problem"] and err.count("\n") == 1


def test_editing_a_decoded_csv_column_fails_and_the_untouched_files_pass(downloaded, tmp_path, capsys):
    for name in ("log.jsonl", "log.csv"):
        code, report, _ = run_json(capsys, ["log", "verify", str(downloaded / name)])
        assert code == 0 and report["chain_ok"] and report["fields_ok"]
    with (downloaded / "log.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    rows[2]["kind_name"] = "test_pass" if rows[2]["kind_name"] != "test_pass" else "boot"
    path = tmp_path / "edited.csv"
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    code, report, _ = run_json(capsys, ["log", "verify", str(path)])
    assert code == exitcodes.VERIFY_FAILED and report["fields_ok"] is False
    assert report["field_broken_at"] == int(rows[2]["index"])


ISO_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def _core_iso(core_seconds: int) -> str:
    return datetime.fromtimestamp(core_seconds + EPOCH_UNIX, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_download_file_carries_the_time_in_iso_8601_and_the_core_seconds_beside_it(downloaded):
    rows = [json.loads(line) for line in (downloaded / "log.jsonl").read_text().splitlines()]
    with (downloaded / "log.csv").open(newline="") as f:
        csv_rows = list(csv.DictReader(f))
    assert rows and len(rows) == len(csv_rows)
    for row, csv_row in zip(rows, csv_rows, strict=True):
        assert ISO_Z.fullmatch(row["time"]) and row["time"] == csv_row["time"]
        assert isinstance(row["core_time"], int) and str(row["core_time"]) == csv_row["core_time"]
        assert row["time"] == _core_iso(row["core_time"])
        assert row["core_time"] == E.decode_record(bytes.fromhex(row["raw"]))["time"]


def _as_version_1(row: dict) -> dict:
    """A row as lci-tool wrote it before the format had `core_time`: `time` in core seconds."""
    old = {k: v for k, v in row.items() if k != "core_time"}
    old["time"] = row["core_time"]
    return old


def test_a_file_written_in_the_old_format_still_verifies_and_its_edits_still_show(downloaded, tmp_path, capsys):
    rows = [_as_version_1(json.loads(line)) for line in (downloaded / "log.jsonl").read_text().splitlines()]
    old = tmp_path / "old.jsonl"
    old.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    code, report, _ = run_json(capsys, ["log", "verify", str(old)])
    assert code == 0 and report["chain_ok"] and report["fields_ok"], report
    rows[3]["time"] += 60  # an old file's forged time
    old.write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, report, _ = run_json(capsys, ["log", "verify", str(old)])
    assert code == exitcodes.VERIFY_FAILED and "'time'" in report["field_problem"]
    # one file holds one version: an ISO time or a core_time in an old file's row is an edit
    rows[3]["time"] -= 60
    rows[4]["core_time"] = rows[4]["time"]
    old.write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, report, _ = run_json(capsys, ["log", "verify", str(old)])
    assert code == exitcodes.VERIFY_FAILED and "core_time" in report["field_problem"]


def test_a_download_resumed_into_an_old_format_file_goes_on_in_that_format(tmp_path, capsys):
    bench = Bench(tmp_path / "b", endpoint="tcp", drives=2)
    try:
        full = tmp_path / "full.csv"
        assert run(capsys, bench.args("log", "download", "--out", str(full), "--format", "csv", "-q"))[0] == 0
        with full.open(newline="") as f:
            rows = [_as_version_1({**r, "core_time": int(r["core_time"])}) for r in csv.DictReader(f)]
        old = tmp_path / "old.csv"
        with old.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=[c for c in COLUMNS if c != "core_time"])
            writer.writeheader()
            writer.writerows(rows[: len(rows) // 2])
        code, report, err = run_json(capsys, bench.args("log", "download", "--out", str(old), "--format", "csv"))
        assert code == 0 and report["chain_ok"] and report["written"] == len(rows) - len(rows) // 2, err
    finally:
        bench.stop()
    with old.open(newline="") as f:
        resumed = list(csv.DictReader(f))
    assert [r["time"] for r in resumed] == [str(r["time"]) for r in rows]  # core seconds throughout
    code, report, _ = run_json(capsys, ["log", "verify", str(old)])
    assert code == 0 and report["fields_ok"], report


def test_the_summary_in_json_gives_its_times_in_iso_8601(downloaded, capsys):
    code, report, _ = run_json(capsys, ["log", "verify", str(downloaded / "log.jsonl"), "--summary"])
    summary = report["summary"]
    assert code == 0 and ISO_Z.fullmatch(summary["from_time"]) and ISO_Z.fullmatch(summary["to_time"])
    assert summary["start_tests"] and all(ISO_Z.fullmatch(t["time"]) for t in summary["start_tests"])
