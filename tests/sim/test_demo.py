"""`make demo`: the whole story runs, and tells it: recall, lockout, code, service, removal, bill."""

from __future__ import annotations

import json
from html.parser import HTMLParser

from sim import demo


def test_the_story_end_to_end(tmp_path, capsys):
    assert demo.main(["--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for moment in (
        "installs the handset; work order accepted: installation",
        "start test FAILED",
        "payment $60.82 failed (insufficient_funds)",
        "late_fee",
        "now early_service_recall",
        "SERVICE DUE",
        "now lockout (early_service_recall>lockout recall_expired)",
        "reads the request code off the handset",
        "now normal (lockout>normal causes_cleared)",
        "calibration PASS",
        "now removed",
        "final bill",
        "directive recall (cause unpaid_balance, days 7, seq 1) delivered over the data link -> handset: recall 7 days",
        "directive lockout (cause unpaid_balance, seq 2) delivered over the data link",
        # the clear token issued with the keypad code arrives after the code was used: dead
        "handset refused it, nothing changed (SUPERSEDED",
    ):
        assert moment in out, moment
    assert out.index("now early_service_recall") < out.index("now lockout") < out.index("keys the code in") < out.index("now normal (lockout>normal")
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["account"]["status"] == "returned" and summary["account"]["balance"] == 0
    assert summary["ledger"]["balanced"] is True
    assert summary["device"]["compliance"] == "removed"
    # billing's token directives went over the data link, each acknowledged once
    link = summary["link"]
    tokens = [d for d in summary["directives"] if d["delivery"] == "token"]
    assert link["delivered"] + link["refused"] == len(tokens) >= 3 and link["log_problems"] == []
    assert link["handset"]["last_outcome"] == "ok" and link["records_uploaded"] > 0
    assert out.index("now lockout (early_service_recall>lockout recall_expired)") < out.index(
        "directive lockout")  # no coverage that week: the handset locked out by its own clock
    report = (tmp_path / "report.html").read_text()
    HTMLParser().feed(report)
    assert "<svg" in report and "lockout" in report and "Service receipt" in report
    assert (tmp_path / "service-visit-log.jsonl").exists()
