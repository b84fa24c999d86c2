"""The human output of lci-sim's and lci-billing's documented commands holds no Python repr and
no raw epoch (lci-tool's are scanned by tests/test_docs_walk.py as it walks the docs).

Commands: every scenario of examples/ (docs/scenarios.md), a small fleet, the seeded keys;
every lci-billing command of docs/billing.md's command list on a database with an account that
went unpaid (recall, lockout, a code answered, a removal), and every billing scenario file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from host_tools import keys
from provider.billing.cli import main as billing
from sim.cli import main as sim
from tests.test_docs_walk import EPOCH, REPR

REPO = Path(__file__).resolve().parents[1]


def clean(command: str, text: str) -> None:
    for line in text.splitlines():
        assert not REPR.search(line), f"a Python repr in the output of {command}: {line!r}"
        assert not EPOCH.search(line), f"a raw epoch in the output of {command}: {line!r}"


def run(main, argv: list[str], capsys, codes=(0,)) -> str:
    code = main(argv)
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert code in codes, f"{argv}: exit {code}\n{text}"
    clean(" ".join(argv), text)
    return text


@pytest.mark.parametrize("scenario", sorted(p.name for p in (REPO / "examples").glob("*.toml")))
def test_lci_sim_run(scenario, capsys):
    run(sim, ["run", str(REPO / "examples" / scenario)], capsys)


def test_lci_sim_fleet_and_keys(capsys, tmp_path):
    run(sim, ["fleet", "--devices", "3", "--days", "3", "--seed", "1"], capsys)
    run(sim, ["keys", "--out", str(tmp_path / "k")], capsys)
    run(sim, ["run", str(tmp_path / "missing.toml")], capsys, codes=(2,))


@pytest.mark.parametrize("scenario", sorted(p.name for p in (REPO / "examples" / "billing").glob("*.toml")))
def test_lci_billing_simulate(scenario, capsys):
    run(billing, ["simulate", str(REPO / "examples" / "billing" / scenario)], capsys, codes=(0, 1))


def test_lci_billing_commands(tmp_path, capsys):
    made = keys.keygen(tmp_path / "keys")
    db = ["--db", str(tmp_path / "b.db"), "--signing-key", str(made["root_key"])]
    b = lambda *argv, codes=(0,): run(billing, [*db, *argv], capsys, codes=codes)  # noqa: E731
    b("init", "--now", "2025-01-06T09:00")
    b("policy")
    b("account", "open", "--serial", "LCI7-000123", "--email", "c@example.com", "--state", "MN",
      "--county", "Hennepin", "--token", "tok_visa", "--theft-protection", "--pay-initial")
    b("account", "show", "A000001")
    b("card", "tok_visa", "insufficient_funds", "--from", "2025-01-30")
    b("advance", "--to", "2025-03-18", "-v")  # -v: what the run wrote, in words
    b("advance", "--to", "2025-01-01", codes=(1,))
    b("statement", "A000001")
    b("notices")
    b("ledger", "--account", "A000001")
    b("ledger", "--check")
    b("directives", "list")
    b("directives", "issue", "--device-time", "now", "-v")
    b("directives", "export", "1", "--out", str(tmp_path / "d.tok"))
    b("directives", "answer", "A000001", "--request", "1042 7781 93", "--master-secret",
      str(made["master_secret"]), codes=(0, 1))
    b("pay", "A000001", "--amount", "5.00", "--token", "tok_other")
    b("account", "set-cycle", "A000001", "--weeks", "4", codes=(0, 1))
    b("account", "theft-protection", "A000001", "off", codes=(0, 1))
    b("account", "remove", "A000001", codes=(0, 1))
    b("now")
    b("account", "show", "A000001")
