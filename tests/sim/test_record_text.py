"""Times in device records and in the scenario timeline, as people read them: ISO 8601 with the
zone, read from each record kind's layout (never a number guessed to be a time)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from host_tools.cli import record_time
from protocol import errors
from sim.cli import main
from sim.record_text import detail_text

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.toml"))
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ D\d\d  ")
EPOCH = re.compile(r"(?<![\w.:/-])(?<!seq=)\d{9,}(?![\w.:/-])")


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.stem for e in EXAMPLES])
def test_a_scenario_timeline_shows_iso_times_and_no_raw_epoch(example, capsys):
    main(["run", str(example)])
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.strip() and not ln.startswith(" ")]
    entries = [ln for ln in lines if STAMP.match(ln)]
    assert len(entries) > 5
    for line in lines:
        assert not EPOCH.search(line), line


def test_the_service_close_record_names_the_next_service_date_in_iso(capsys):
    main(["run", str(EXAMPLES[0].with_name("service_visit.toml"))])
    out = capsys.readouterr().out
    summary = next(ln for ln in out.splitlines() if " service_summary " in ln)
    assert re.search(r'detail="next service \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"', summary), summary


# the layouts the core writes (firmware/device.py, firmware/authority.py), read by kind
T1, T2 = 218_762_447, 164_592_000


@pytest.mark.parametrize(("kind", "detail", "shown"), [
    ("service_summary", f"next service {T1}", f"next service {record_time(T1)}"),
    ("clock_change", f"{T2}>{T1}", f"{record_time(T2)} -> {record_time(T1)}"),
    ("token_accepted", f"service_close tech-jane next service {T1}",
     f"service_close tech-jane next service {record_time(T1)}"),
    ("refusals", f"token 0x{errors.EXPIRED:02x} expired at {T2}, now {T1}",
     f"token 0x{errors.EXPIRED:02x} expired at {record_time(T2)}, handset clock {record_time(T1)}"),
    ("refusals", f"token 0x{errors.NOT_YET_VALID:02x} valid from {T1}, now {T2}",
     f"token 0x{errors.NOT_YET_VALID:02x} valid from {record_time(T1)}, handset clock {record_time(T2)}"),
    ("refusals", f"token 0x{errors.DELEGATION_EXPIRED:02x} tech-jane expired at {T2}",
     f"token 0x{errors.DELEGATION_EXPIRED:02x} tech-jane expired at {record_time(T2)}"),
])
def test_each_layout_with_a_time_is_shown_in_iso(kind, detail, shown):
    assert detail_text(kind, detail) == shown


@pytest.mark.parametrize(("kind", "detail"), [
    ("work_order", "installation WO-26-0105 1FTFW1E50PFA00001"),  # no time in this layout
    ("code_request", "unlock 123456789"),  # a request code, not a time
    ("refusals", "token 0x05 turn the ignition off first"),
    ("refusals", f"token 0x{errors.EXPIRED:02x} something else {T1}"),
    ("service_summary", "next service soon"),
])
def test_other_details_are_shown_as_they_are(kind, detail):
    assert detail_text(kind, detail) == detail
