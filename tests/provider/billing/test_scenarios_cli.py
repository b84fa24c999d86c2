"""Scenarios (the examples, the JSON output, malformed files) and the lci-billing command line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from provider.billing import scenario
from provider.billing.cli import main as cli
from provider.billing.errors import InputError

from .harness import new_location

EXAMPLES = sorted((Path(__file__).resolve().parents[3] / "examples" / "billing").glob("*.toml"))


def test_there_are_examples():
    assert len(EXAMPLES) >= 6


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_example_runs_with_balanced_books(path):
    report = scenario.run(path)
    json.dumps(report)  # the output is JSON
    assert report["ledger"]["balanced"]
    assert report["ledger"]["books"]["cash"] == report["processor_net_captured"] + sum(
        p["amount"] for p in report["payments"]
        if p["kind"] == "external" and p["status"] == "succeeded")
    assert report["timeline"][-1]["balance"] == report["final"]["balance"]
    assert all(e["result"] in ("ok", "refused") for e in report["events"])
    assert report["unexpected"] == []  # every example's events go as the file expects
    for key in ("invoices", "payments", "fees", "taxes", "refunds", "notices", "directives",
                "timeline", "final", "policy"):
        assert key in report


def test_the_recall_lockout_example_figures():
    """Hennepin County (7.525 %), theft protection: cycle = 5412 + 500 + 263 + tax 445 = 6620.
    Fails from 3 Feb; late fee 6 Feb; recall 10 Feb; lockout 17 Feb with 6620 + 3000 + 6620 = 16240
    owed; second late fee 20 Feb: 19240 paid in full on 20 Feb 12:00 with a new card -> clear token
    and clear code."""
    report = scenario.run(next(p for p in EXAMPLES if p.stem == "failed-payments-recall-lockout"))
    by_time = {row["at"][:16]: row for row in report["timeline"]}
    assert by_time["2025-02-17T09:00"]["status"] == "lockout"
    assert by_time["2025-02-17T09:00"]["balance"] == 16240
    assert by_time["2025-02-20T09:00"]["balance"] == 19240
    assert by_time["2025-02-20T12:00"]["status"] == "active"
    assert [(d["action"], d["delivery"]) for d in report["directives"]] == [
        ("recall", "token"), ("lockout", "token"), ("clear", "token"), ("clear", "code")]
    assert [f["total"] for f in report["fees"]] == [3000, 3000]


def test_the_unpaid_initial_example_goes_through_collections_then_closes():
    """No initial payment, no card, installed at acceptance (Hennepin: 5412 + tax 407 = 5819):
    past due 6 Jan, recall 13 Jan, cycle 5819 and lockout 20 Jan (11638; no late fee: no
    automated payment was ever attempted); the close on 20 Jan is refused as the file expects;
    removed 21 Jan after the first cycle (nothing more billed); 11638 paid in cash on 22 Jan;
    closed."""
    report = scenario.run(next(p for p in EXAMPLES if p.stem == "unpaid-initial-collections"))
    by_time = {row["at"][:16]: row for row in report["timeline"]}
    assert by_time["2025-01-06T09:00"]["status"] == "past_due"
    assert (by_time["2025-01-20T09:00"]["status"], by_time["2025-01-20T09:00"]["balance"]) == (
        "lockout", 5819 + 5819)
    assert [(e["do"], e["result"], e["as_expected"]) for e in report["events"]] == [
        ("close", "refused", True), ("remove", "ok", True), ("pay", "ok", True),
        ("close", "ok", True)]
    assert [d["action"] for d in report["directives"]] == ["recall", "lockout"]
    assert report["final"]["status"] == "closed"


def test_the_duplicated_callback_example_records_the_payment_once():
    report = scenario.run(next(p for p in EXAMPLES if p.stem == "cycle-switch"))
    pays = [e for e in report["events"] if e["do"] == "pay"]
    assert [p["status"] for p in pays] == ["succeeded", "duplicate"]
    assert len([p for p in report["payments"] if p["request_key"] == "evt_cash_0001"]) == 1
    assert report["final"]["cycle_weeks"] == 4
    four_week = [i for i in report["invoices"] if i["cycle_weeks"] == 4]
    assert four_week and all(i["subtotal"] == 10824 + 526 for i in four_week)


@pytest.mark.parametrize("text,message", [
    ("[scenario]\nname='x'\n", r"scenario\.start: missing"),
    ("[scenario]\nname='x'\nstart=2025-01-06\n", r"account: missing \[account\] table"),
    ("[scenario]\nname='x'\nstart=2025-01-06\n[account]\nserial='S'\nemail='e@x'\nstate='MN'\n"
     "[[event]]\nat=2025-01-07\ndo='fly'\n", r"event\[0\]\.do: 'fly' is not one of"),
    ("[scenario]\nname='x'\nstart=2025-01-06\n[account]\nserial='S'\nemail='e@x'\nstate='MN'\n"
     "[[event]]\nat=2025-01-07\ndo='pay'\namount=54.12\n",
     r"event\[0\]\.amount: expected an integer, got 54\.12 \(money is integer cents\)"),
    ("[scenario]\nname='x'\nstart=2025-01-06\n[account]\nserial='S'\nemail='e@x'\nstate='MN'\n"
     "[[event]]\nat='yesterday'\ndo='remove'\n", r"event\[0\]\.at: not a date"),
    ("[scenario]\nname='x'\nstart=2025-01-06\n[account]\nserial='S'\nemail='e@x'\nstate='ZZ'\n",
     r"account\.state: no sales tax rate for state 'ZZ'"),
    ("[scenario]\nname='x'\nstart=2025-01-06\n[policy]\n'late_fee.reading'='never'\n[account]\n"
     "serial='S'\nemail='e@x'\nstate='MN'\n", r"late_fee\.reading: 'never' is not one of"),
    ("[scenario]\nname='x'\nstart=2025-01-06\ncolour=1\n", r"scenario\.colour: unknown field"),
    ("[scenario\n", r"not valid TOML"),
])
def test_a_malformed_scenario_is_one_line_naming_file_field_and_problem(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        scenario.run(path)
    line = str(caught.value)
    assert "\n" not in line and str(path) in line
    assert re.search(message, line), line


def test_cli_scenario_error_exits_2_with_one_line(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text("[scenario]\nname='x'\n")
    assert cli(["simulate", str(path), "--json"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"lci-billing: {path}: scenario.start: missing"]


def test_cli_end_to_end(tmp_path, capsys):
    """init, open (Hennepin, plan, pays at once: 6357), a failing card, advance 6 weeks, then the
    statement, ledger check, notices and directives; refused and bad input exit 1 and 2."""
    db = ["--db", new_location(file=True)]
    assert cli(db + ["init", "--now", "2025-01-06T09:00"]) == 0
    capsys.readouterr()
    assert cli(db + ["account", "open", "--serial", "LCI7-1", "--email", "c@example.com",
                     "--state", "MN", "--county", "Hennepin", "--token", "tok_visa",
                     "--theft-protection", "--pay-initial", "--json"]) == 0
    opened = json.loads(capsys.readouterr().out)
    assert (opened["ref"], opened["status"], opened["balance"]) == ("A000001", "active", 0)
    assert cli(db + ["card", "tok_visa", "insufficient_funds", "--from", "2025-01-30"]) == 0
    assert cli(db + ["advance", "--to", "2025-02-18"]) == 0
    capsys.readouterr()
    assert cli(db + ["statement", "A000001", "--json"]) == 0
    statement = json.loads(capsys.readouterr().out)
    assert statement["account"]["status"] == "lockout"
    assert [i["kind"] for i in statement["invoices"]] == [
        "initial", "cycle", "cycle", "late_fee", "cycle"]
    assert cli(db + ["statement", "A000001"]) == 0
    text = capsys.readouterr().out
    assert "Statement for A000001" in text and "Sales tax 7.525%" in text
    assert cli(db + ["ledger", "--check"]) == 0
    assert "balanced" in capsys.readouterr().out
    assert cli(db + ["notices", "--json"]) == 0
    assert {n["kind"] for n in json.loads(capsys.readouterr().out)} >= {
        "payment_failed", "late_fee", "recall", "lockout"}
    assert cli(db + ["directives", "list", "--json"]) == 0
    assert [d["action"] for d in json.loads(capsys.readouterr().out)] == ["recall", "lockout"]
    # full payment by a processor callback, twice
    assert cli(db + ["pay", "A000001", "--external", "--key", "evt_9"]) == 0
    # the same key for another amount is a conflict, not "already recorded"
    assert cli(db + ["pay", "A000001", "--external", "--key", "evt_9", "--amount", "1.00"]) == 1
    assert "already used" in capsys.readouterr().err
    assert cli(db + ["pay", "A000001", "--external", "--key", "evt_9"]) == 0
    assert "already recorded" in capsys.readouterr().out
    assert cli(db + ["account", "show", "A000001", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "active"
    # refused by the rules: 1; bad input: 2
    assert cli(db + ["account", "close", "A000001"]) == 1
    assert "cannot close an account that is active" in capsys.readouterr().err
    assert cli(db + ["advance", "--to", "2025-01-01"]) == 1
    assert cli(db + ["account", "show", "A999999"]) == 1
    assert cli(db + ["account", "set-cycle", "A000001", "--weeks", "3"]) == 2
    assert "set-cycle: weeks: 3 is not one of [2, 4, 8]" in capsys.readouterr().err
    assert cli(["--db", str(tmp_path / "none.db"), "now"]) == 2


def test_cli_init_with_a_policy_override_and_a_bad_policy(tmp_path, capsys):
    db = ["--db", new_location(file=True)]
    assert cli(db + ["init", "--set", 'late_fee.reading="second_failed_attempt"']) == 0
    assert cli(db + ["policy"]) == 0
    assert "second_failed_attempt" in capsys.readouterr().out
    bad = tmp_path / "p.toml"
    bad.write_text("[policy]\nname='x'\ncurrency='EUR'\n")
    assert cli(["--db", new_location(file=True), "init", "--policy", str(bad)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"lci-billing: {bad}: policy.currency: only USD is supported")
