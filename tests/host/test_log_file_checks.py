"""What a downloaded log file is checked against, through lci-tool's command line: a resume
against a handset whose log is behind the file is refused, and `log verify` holds every
decoded field of a row to what its raw record bytes say."""

from __future__ import annotations

import csv
import json

import pytest

from host_tools import exitcodes
from host_tools.log_download import COLUMNS
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
    "index": 9999, "time": 12345, "kind": 3, "kind_name": "test_pass", "compliance": "normal",
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
