"""The lci-billing command line: every command's readable and JSON forms, --version, refused
scenario events, bad payment amounts, and output piped into a reader that stops early."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from provider.billing import scenario
from provider.billing.cli import main as cli
from provider.billing.errors import InputError

from .harness import Harness, new_location

REPO = Path(__file__).resolve().parents[3]

OPEN = ["account", "open", "--serial", "LCI7-9", "--email", "c@example.com", "--state", "MN",
        "--county", "Hennepin"]


@pytest.fixture
def db(tmp_path, capsys):
    args = ["--db", new_location(file=True)]
    assert cli(args + ["init", "--now", "2025-01-06T09:00"]) == 0
    capsys.readouterr()
    return args


def _json(capsys):
    return json.loads(capsys.readouterr().out)


# ------------------------------------- an account opened with neither payment nor appointment
def test_an_account_opened_without_payment_or_appointment_is_not_stuck(db, capsys):
    """Opened without --appointment or --pay-initial (installed at acceptance, Hennepin: initial
    5412 + 7.525 % tax 407 = 5819): past due at once; 60 days later it is locked out with notices
    and recall + lockout directives; the device can be removed and, once paid, the account closed."""
    assert cli(db + OPEN + ["--json"]) == 0
    opened = _json(capsys)
    assert (opened["status"], opened["balance"]) == ("past_due", 5819)
    assert cli(db + ["advance", "--days", "60"]) == 0
    capsys.readouterr()
    assert cli(db + ["account", "show", "A000001", "--json"]) == 0
    assert _json(capsys)["status"] == "lockout"
    assert cli(db + ["notices", "--json"]) == 0
    kinds = {n["kind"] for n in _json(capsys)}
    assert {"payment_overdue", "recall", "lockout"} <= kinds
    assert "late_fee" not in kinds  # no card: no automated payment was attempted
    assert cli(db + ["directives", "list", "--json"]) == 0
    assert [d["action"] for d in _json(capsys)] == ["recall", "lockout"]
    assert cli(db + ["account", "remove", "A000001", "--json"]) == 0
    assert _json(capsys)["billed"] == []  # past the first cycle: nothing more to bill
    assert cli(db + ["pay", "A000001", "--external", "--key", "evt_1"]) == 0
    assert cli(db + ["account", "close", "A000001"]) == 0
    assert "A000001: closed" in capsys.readouterr().out


# ----------------------------------------------------------------- refused scenario events (2)
SCENARIO = """
[scenario]
name = "closing an unpaid account"
start = 2025-01-06T09:00:00

[account]
serial = "LCI7-1"
email = "c@example.com"
state = "OR"
payment_method = "tok_ok"

[[event]]
at = 2025-01-08T09:00:00
do = "close"
{expect}
"""


def test_a_refused_event_is_shown_in_the_text_and_fails_the_run(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text(SCENARIO.format(expect=""))
    assert cli(["simulate", str(path)]) == 1
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    refused = [ln for ln in lines if "REFUSED" in ln]
    assert refused == ["  2025-01-08T09:00  REFUSED close: cannot close an account that is active "
                       "(remove the device or cancel the installation first)"]
    assert captured.err.strip() == (
        f"lci-billing: {path}: 1 event not as expected: event[0] close refused")


def test_an_expected_refusal_passes_and_is_reported_as_expected(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text(SCENARIO.format(expect='expect = "refused"'))
    assert cli(["simulate", str(path)]) == 0
    assert any("REFUSED close" in ln and ln.endswith("(expected)")
               for ln in capsys.readouterr().out.splitlines())
    assert cli(["simulate", str(path), "--json"]) == 0
    report = _json(capsys)
    [event] = report["events"]
    assert (event["result"], event["expect"], event["as_expected"]) == ("refused", "refused", True)
    assert report["unexpected"] == []


def test_an_expected_refusal_that_succeeds_fails_the_run(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text(SCENARIO.format(expect='expect = "refused"').replace('do = "close"',
                                                                          'do = "remove"'))
    assert cli(["simulate", str(path), "--json"]) == 1
    assert _json(capsys)["unexpected"] == [0]


def test_expect_must_be_ok_or_refused(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(SCENARIO.format(expect='expect = "maybe"'))
    with pytest.raises(InputError, match=r"event\[0\]\.expect: expected \"ok\" or \"refused\""):
        scenario.run(path)


# ----------------------------------------------------------------- payment amounts (3)
@pytest.mark.parametrize("amount", [-5, 0, 12.5, "5", True])
def test_a_payment_amount_that_is_not_positive_cents_is_bad_input(amount):
    h = Harness()
    ref = h.open(pay_initial=True)
    for external in (False, True):
        with pytest.raises(InputError) as caught:
            h.engine.pay(ref, amount=amount, key="evt_x", external=external)
        assert (caught.value.field, caught.value.problem) == (
            "amount", "the amount must be a positive number of cents")
    assert h.payments(ref)[-1]["attempt"] == "immediate"  # nothing recorded


def test_a_scenario_pay_of_minus_5_names_the_event_field(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(SCENARIO.format(expect="").replace('do = "close"', 'do = "pay"\namount = -5'))
    with pytest.raises(InputError, match=r"event\[0\]\.amount: the amount must be a positive "
                                         r"number of cents"):
        scenario.run(path)


@pytest.mark.parametrize("amount", ["-5", "0", "0.001", "abc"])
def test_cli_pay_with_a_bad_amount_exits_2(db, capsys, amount):
    assert cli(db + OPEN + ["--token", "tok_ok", "--pay-initial"]) == 0
    with pytest.raises(SystemExit) as caught:
        cli(db + ["pay", "A000001", f"--amount={amount}"])
    assert caught.value.code == 2
    assert "--amount" in capsys.readouterr().err


# ----------------------------------------------------------------- polish (4)
def test_version(capsys):
    with pytest.raises(SystemExit) as caught:
        cli(["--version"])
    assert caught.value.code == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("lci-billing ") and out.split()[-1][0].isdigit()


def test_every_command_speaks_json(db, tmp_path, capsys):
    """Each command with --json prints one JSON object or list (money in integer cents)."""
    other = ["--db", new_location(file=True)]
    assert cli(other + ["init", "--now", "2025-01-06T09:00", "--json"]) == 0
    assert _json(capsys)["clock"] == "2025-01-06T09:00:00Z"
    assert cli(db + ["now", "--json"]) == 0
    assert _json(capsys) == {"clock": "2025-01-06T09:00:00Z"}
    assert cli(db + ["policy", "--json"]) == 0
    assert _json(capsys)["readings"]["late_fee"] == "uncorrected"
    assert cli(db + ["card", "tok_ok", "ok", "--json"]) == 0
    assert _json(capsys) == {"token": "tok_ok", "behaviour": "ok", "from": "2025-01-06T09:00:00Z"}
    assert cli(db + OPEN + ["--token", "tok_ok", "--appointment", "2025-01-20T10:00",
                            "--pay-initial"]) == 0
    capsys.readouterr()
    assert cli(db + ["pay", "A000001", "--amount", "10.00", "--json"]) == 0
    assert _json(capsys)["amount"] == 1000
    assert cli(db + ["payment-method", "set", "A000001", "tok_visa", "--json"]) == 0
    assert _json(capsys)["effective"] == "2025-01-20T09:00:01Z"
    assert cli(db + ["account", "theft-protection", "A000001", "on", "--json"]) == 0
    assert "effective" in _json(capsys)
    assert cli(db + ["account", "set-cycle", "A000001", "--weeks", "4", "--json"]) == 0
    assert "effective" in _json(capsys)
    assert cli(db + ["account", "reschedule", "A000001", "--to", "2025-01-25T10:00",
                     "--json"]) == 0
    assert _json(capsys)["charged"] == []
    assert cli(db + ["account", "install", "A000001", "--json"]) == 0
    assert _json(capsys)["status"] == "active"
    assert cli(db + ["account", "prepay", "A000001", "--cycles", "1", "--json"]) == 0
    assert _json(capsys)["status"] == "succeeded"
    assert cli(db + ["advance", "--days", "1", "--json"]) == 0
    assert _json(capsys)["clock"] == "2025-01-07T09:00:00Z"
    assert cli(db + ["account", "remove", "A000001", "--json"]) == 0
    removed = _json(capsys)
    assert (removed["status"], removed["billed"], removed["balance"]) == ("returned", [], 0)
    assert cli(db + ["account", "close", "A000001", "--json"]) == 0
    assert _json(capsys) == {"ref": "A000001", "status": "closed"}
    assert cli(db + OPEN + ["--appointment", "2025-01-20T10:00"]) == 0
    capsys.readouterr()
    assert cli(db + ["account", "cancel-installation", "A000002", "--json"]) == 0
    assert _json(capsys)["credited"] == 5819
    assert cli(db + ["account", "close", "A000002", "--json"]) == 0
    assert _json(capsys) == {"ref": "A000002", "status": "closed"}
    assert cli(db + ["directives", "--json"]) == 0  # the group's default action: list
    assert _json(capsys) == []
    assert cli(db + ["directives", "issue", "--json"]) == 2  # needs a key: bad input, no JSON
    assert capsys.readouterr().out == ""


def test_every_leaf_command_accepts_json():
    """No command is left without --json (walks the parser)."""
    import argparse

    from provider.billing.cli import build_parser

    def leaves(parser, path):
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            yield path, parser
            return
        for name, child in subs[0].choices.items():
            yield from leaves(child, path + [name])

    missing = [" ".join(path) for path, parser in leaves(build_parser(), [])
               if "--json" not in parser._option_string_actions]
    assert missing == []


def test_account_show_prints_money_in_dollars(db, capsys):
    assert cli(db + OPEN + ["--appointment", "2025-01-20T10:00"]) == 0
    capsys.readouterr()
    assert cli(db + ["account", "show", "A000001"]) == 0
    lines = {ln.split(":", 1)[0].strip(): ln.split(":", 1)[1].strip()
             for ln in capsys.readouterr().out.splitlines()}
    assert lines["balance"] == "$58.19"
    assert lines["location"] == "MN, Hennepin"
    assert cli(db + ["account", "show", "A000001", "--json"]) == 0
    assert _json(capsys)["balance"] == 5819


def test_piping_into_a_reader_that_stops_prints_no_traceback(db, tmp_path):
    """The reader closes the pipe before lci-billing writes (like `| head -1` on long output)."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    base = [sys.executable, "-m", "provider.billing.cli"] + db
    subprocess.run(base + OPEN + ["--token", "tok_ok", "--pay-initial"], env=env, check=True,
                   capture_output=True)
    subprocess.run(base + ["advance", "--days", "200"], env=env, check=True, capture_output=True)
    for command in (["ledger"], ["statement", "A000001"], ["account", "show", "A000001"]):
        proc = subprocess.Popen(base + command, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, cwd=tmp_path)
        proc.stdout.close()  # the reader went away
        err = proc.stderr.read().decode()
        proc.wait(timeout=60)
        assert "Traceback" not in err and "BrokenPipe" not in err, err
        assert proc.returncode in (0, 141), proc.returncode
    shell = subprocess.run(" ".join(base + ["ledger"]) + " | head -n 1", shell=True, env=env,
                           capture_output=True, text=True)
    assert shell.stderr == "" and len(shell.stdout.splitlines()) == 1


def test_verbose_lists_what_the_command_wrote_on_stderr(db, tmp_path, capsys):
    """-v (before or after the command) lists the account events, journal entries, notices and
    directives the command wrote, in words and dollars on stderr; stdout stays the result."""
    from host_tools import keys

    assert cli(db + OPEN + ["--token", "tok_declined", "-v"]) == 0
    assert "opened -> " in capsys.readouterr().err
    assert cli(["-v"] + db + ["advance", "--days", "40"]) == 0
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert captured.out.startswith("clock 2025-02-15T09:00:00Z")  # the result alone on stdout
    assert any(ln.startswith("journal   2025-") and "receivable $" in ln for ln in lines), lines
    assert any(ln.startswith("notice    ") and "payment failed" in ln for ln in lines), lines
    assert any(ln.startswith("account   ") and "-> recall" in ln for ln in lines), lines
    decided = [ln for ln in lines if ln.startswith("directive ")]
    assert decided and decided[0].endswith("decided") and "recall (cause unpaid_balance" in decided[0]
    for line in lines:
        assert not re.search(r"\[['\"]|\{['\"]|\bTrue\b|\bNone\b|\b\d{9,}\b", line), line
    made = keys.keygen(tmp_path / "k")
    assert cli(db + ["--signing-key", str(made["root_key"]), "directives", "issue", "-v"]) == 0
    signed = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("directive ")]
    assert signed and "pending -> issued" in signed[0]
    assert re.search(r"token valid \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \.\. \d{4}-.*Z by the handset's clock", signed[0])
    # without -v: nothing on stderr
    assert cli(db + ["advance", "--days", "1"]) == 0
    assert capsys.readouterr().err == ""
