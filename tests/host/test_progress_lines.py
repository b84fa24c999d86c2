"""Progress where stderr is not a terminal (CI logs, a pipe): a few plain lines, one per quarter
passed, never carriage returns, never a quarter line that the same update already passed."""

from __future__ import annotations

import io

from host_tools.cli import Progress


def _lines(updates: list[int], total: int) -> list[str]:
    stream = io.StringIO()
    bar = Progress("event log", total, "records", stream=stream)
    for n in updates:
        bar.update(n)
    bar.close()
    text = stream.getvalue()
    assert "\r" not in text
    return text.splitlines()


def test_one_update_for_everything_prints_the_start_and_the_end_only():
    lines = _lines([8], 8)
    assert lines[0] == "event log: 8 records to go"
    assert lines[1].startswith("event log: 8 records in ") and len(lines) == 2


def test_pages_print_each_quarter_they_pass_once():
    lines = _lines([100] * 10, 1000)
    assert [ln.split("(")[-1] for ln in lines[1:-1]] == ["25 %)", "50 %)", "75 %)"]
    assert lines[1] == "event log: 300/1000 records (25 %)"


def test_a_big_page_reports_the_last_quarter_it_passed():
    assert _lines([10, 70, 20], 100)[1:-1] == ["event log: 80/100 records (75 %)"]


def test_off_prints_nothing():
    stream = io.StringIO()
    bar = Progress("event log", 10, "records", enabled=False, stream=stream)
    bar.update(10)
    bar.close()
    assert stream.getvalue() == ""
