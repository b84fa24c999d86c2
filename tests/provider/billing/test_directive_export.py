"""lci-billing directives export: a directive as a token file that `lci-tool token apply` presents
to a handset on real time, dated from the handset's clock; and the readable lines around it."""

from __future__ import annotations

import json
import re

import pytest

from host_tools import exitcodes, keys, lci_tool
from provider.billing.cli import main as billing
from tests.host.sim_bench import SERIAL, Bench


@pytest.fixture
def bench(tmp_path):
    b = Bench(tmp_path, endpoint="tcp")
    yield b
    b.stop()


def unpaid(tmp_path, capsys, key) -> list[str]:
    """A billing database whose account went unpaid: a recall directive decided and signed on
    the billing clock (January 2026, far from the handset's real time)."""
    db = ["--db", str(tmp_path / "b.db"), "--signing-key", str(key)]
    assert billing([*db, "init", "--now", "2026-01-05"]) == 0
    assert billing([*db, "account", "open", "--serial", SERIAL, "--email", "c@example.com",
                    "--state", "TX", "--token", "tok_ok", "--pay-initial"]) == 0
    assert billing([*db, "card", "tok_ok", "declined"]) == 0
    assert billing([*db, "advance", "--days", "30"]) == 0
    out = capsys.readouterr().out
    runs = re.search(r"(\d+) account (runs?) in (\d+) (batch(?:es)?)", out)
    assert runs, out  # counted in words that agree with the numbers ("1 account run in 1 batch")
    assert (runs[2] == "run") == (runs[1] == "1") and (runs[4] == "batch") == (runs[3] == "1")
    return db


def test_an_exported_directive_dated_from_the_device_time_is_applied(bench, tmp_path, capsys):
    db = unpaid(tmp_path, capsys, bench.keys / keys.ROOT_KEY_FILE)
    assert billing([*db, "directives", "list", "--json"]) == 0
    directives = json.loads(capsys.readouterr().out)
    recall = next(d for d in directives if d["action"] == "recall")
    token = tmp_path / "recall.tok"

    # signed on the billing clock: the handset on real time refuses it, and export says so
    assert billing([*db, "directives", "export", str(recall["id"]), "--out", str(token)]) == 0
    assert "--device-time" in capsys.readouterr().err
    assert lci_tool.main(bench.args("token", "apply", str(token))) == exitcodes.REFUSED
    capsys.readouterr()

    # dated from the handset's clock: accepted
    assert billing([*db, "directives", "export", str(recall["id"]), "--out", str(token),
                    "--device-time", "now", "--json"]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert exported["valid_from"].endswith("Z") and exported["path"] == str(token)
    assert lci_tool.main(bench.args("token", "apply", str(token), "--json")) == exitcodes.OK
    applied = json.loads(capsys.readouterr().out)
    assert applied["compliance"] == "early_service_recall"


def test_export_refuses_what_it_cannot_write(tmp_path, capsys):
    made = keys.keygen(tmp_path / "k")
    db = unpaid(tmp_path, capsys, made["root_key"])
    assert billing([*db, "directives", "export", "999", "--out", str(tmp_path / "x")]) == exitcodes.USAGE
    assert "no such directive" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_the_clock_error_says_iso_times(tmp_path, capsys):
    db = ["--db", str(tmp_path / "b.db")]
    assert billing([*db, "init", "--now", "2026-01-05"]) == 0
    assert billing([*db, "advance", "--to", "2025-01-01"]) == exitcodes.FAILED
    err = capsys.readouterr().err
    assert "2026-01-05T00:00:00Z" in err and "2025-01-01T00:00:00Z" in err


def test_json_goes_before_or_after_the_command(tmp_path, capsys):
    db = ["--db", str(tmp_path / "b.db")]
    assert billing([*db, "init", "--now", "2026-01-05"]) == 0
    capsys.readouterr()
    assert billing([*db, "--json", "now"]) == 0
    before = capsys.readouterr().out
    assert billing([*db, "now", "--json"]) == 0
    assert json.loads(before) == json.loads(capsys.readouterr().out) == {"clock": "2026-01-05T00:00:00Z"}
