"""`lci-sim serve --state DIR`: the simulated flash lives on disk, so a SIGKILL is a power pull.

The simulator runs as a real process; everything is checked over the wire with the real
lci-tool and host link: a lockout and its log survive a kill -9, and a kill that lands inside
a flash write (`--power-pull-after-units`, deterministic) loses no acknowledged record.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from firmware import eventlog
from host_tools import exitcodes, keys, lci_tool, logverify, tokens
from host_tools.device_client import DeviceClient
from host_tools.link import LinkError
from protocol import messages
from sim.provider import DEFAULT_SERIAL

REPO = Path(__file__).resolve().parents[2]


class Served:
    """`lci-sim serve --state DIR` as a subprocess on a free TCP port."""

    def __init__(self, state: Path, *more: str):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sim.cli", "serve", "--state", str(state), "--tcp", "0", "--no-pty",
             "--installed", "--quiet", *more],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.url = None
        for line in self.proc.stdout:
            if line.startswith("tcp: "):
                self.url = line.split()[1]
            if line.startswith("state: "):
                self.state_line = line.strip()
                break
        assert self.url, self.proc.stderr.read()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.kill()
        self.proc.stdout.close()
        self.proc.stderr.close()


def tool(capsys, *argv):
    code = lci_tool.main([*argv, "--json"])
    out = capsys.readouterr().out.strip().splitlines()
    return code, json.loads(out[-1]) if out else None


def download(capsys, served, path: Path) -> list[dict]:
    code, report = tool(capsys, "--port", served.url, "log", "download", "--out", str(path))
    assert code == 0 and report["chain_ok"], report
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def locked(tmp_path, capsys):
    """A served handset put into lockout over the wire, its log downloaded; then killed -9."""
    state = tmp_path / "flash"
    keys_dir = tmp_path / "keys"
    from sim.provider import Provider

    Provider(0, DEFAULT_SERIAL).save(keys_dir)
    served = Served(state)
    try:
        assert served.state_line.endswith("(new)")
        code, status = tool(capsys, "--port", served.url, "status")
        root = keys.load_root_key(keys_dir / keys.ROOT_KEY_FILE)
        directive = tokens.mint(root, DEFAULT_SERIAL, "lockout", {"cause": "unpaid_balance", "seq": 1},
                                now=status["now"] - 60, ttl=3600)
        (tmp_path / "lockout.tok").write_text(directive.hex())
        code, applied = tool(capsys, "--port", served.url, "token", "apply", str(tmp_path / "lockout.tok"))
        assert code == 0 and applied["compliance"] == "lockout"
        rows = download(capsys, served, tmp_path / "before.jsonl")
        assert "cause_set" in [r["kind_name"] for r in rows]  # the lockout directive, logged
    finally:
        served.kill()
        served.stop()
    return state, rows


def test_a_kill_9_keeps_the_lockout_and_every_record(tmp_path, capsys, locked):
    state, before = locked
    served = Served(state)
    try:
        assert "restored" in served.state_line
        code, status = tool(capsys, "--port", served.url, "status")
        assert code == 0 and status["compliance"] == "lockout" and "unpaid_balance" in status["causes"]
        after = download(capsys, served, tmp_path / "after.jsonl")  # verified against the head hash
        assert [r["raw"] for r in after[: len(before)]] == [r["raw"] for r in before]
        assert "power_loss" in [r["kind_name"] for r in after[len(before):]] or len(after) > len(before)
    finally:
        served.stop()


def torn_on_disk(state: Path) -> bool:
    """The flash folder holds a torn write: the log's last record is cut or fails its CRC, or a
    file is left half-written (a state file being replaced)."""
    try:
        report = logverify.verify_file(state)
    except logverify.LogInputError:
        return True
    return not report["chain_ok"] or any(p.name.endswith(".new") for p in state.iterdir())


@pytest.mark.parametrize("units", [0, 29, 61, 140])
def test_a_kill_inside_a_flash_write_loses_no_acknowledged_record(tmp_path, capsys, locked, units):
    state, before = locked
    served = Served(state, "--power-pull-after-units", str(units))
    acked = None  # (log count, head hash) the handset last reported, after an answered request
    try:
        client = DeviceClient.open(served.url, timeout=0.3, retries=1)
        client.hello()
        for i in range(40):  # each start attempt in lockout writes records; one write is torn
            try:
                client.bench(messages.BENCH_IGNITION, i % 2 == 0)
                info = client.log_info()
                acked = (info["first"] + info["count"], info["head_hash"])
            except LinkError:
                break
        client.close()
        assert served.proc.wait(timeout=30) == -signal.SIGKILL  # it died inside a write
    finally:
        served.stop()
    assert torn_on_disk(state), "the kill should have left a torn write on the flash"
    served = Served(state)  # power back on: boot from what the torn write left
    try:
        code, status = tool(capsys, "--port", served.url, "status")
        assert code == 0 and status["compliance"] == "lockout"
        after = download(capsys, served, tmp_path / "after.jsonl")  # chain verified to the head
        assert [r["raw"] for r in after[: len(before)]] == [r["raw"] for r in before]
        if acked is not None:  # every record the handset had acknowledged is there, unchanged
            end, head = acked
            assert len(after) >= end
            assert eventlog.record_hash(bytes.fromhex(after[end - 1]["raw"])) == head
    finally:
        served.stop()


def test_state_options_are_checked(tmp_path):
    run = subprocess.run([sys.executable, "-m", "sim.cli", "serve", "--power-pull-after-units", "5"],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "needs --state" in run.stderr
    run = subprocess.run([sys.executable, "-m", "sim.cli", "serve", "--pull-reply", "NOPE"],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "not a request message type" in run.stderr
    blocker = tmp_path / "file"
    blocker.write_text("")
    run = subprocess.run([sys.executable, "-m", "sim.cli", "serve", "--no-pty", "--tcp", "0",
                          "--state", str(blocker / "flash")], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and run.stderr.startswith("lci-sim: --state") and run.stderr.count("\n") == 1


def test_serve_pull_reply_loses_the_answer_and_lci_tool_still_succeeds(tmp_path, capsys):
    keys_dir = tmp_path / "keys"
    from sim.provider import Provider

    Provider(0, DEFAULT_SERIAL).save(keys_dir)
    served = Served(tmp_path / "flash", "--pull-reply", "token")
    try:
        code, status = tool(capsys, "--port", served.url, "status")
        root = keys.load_root_key(keys_dir / keys.ROOT_KEY_FILE)
        directive = tokens.mint(root, DEFAULT_SERIAL, "lockout", {"cause": "unpaid_balance", "seq": 1},
                                now=status["now"] - 60, ttl=3600)
        (tmp_path / "lockout.tok").write_text(directive.hex())
        code, applied = tool(capsys, "--port", served.url, "token", "apply", str(tmp_path / "lockout.tok"))
        assert code == exitcodes.OK and applied["already_applied"] is True
        assert applied["compliance"] == "lockout"
    finally:
        served.stop()


FIRST = """
[scenario]
seed = 3
start = "2026-04-06T08:00:00Z"
state = "flash"

[[step]]
do = "install"
expect = { compliance = "normal" }

[[step]]
after = "1h"
do = "directive"
action = "lockout"
expect = { compliance = "lockout" }
"""

LATER = """
[scenario]
seed = 3
start = "2026-04-07T08:00:00Z"
{state}

[[step]]
do = "ignition"
on = true
expect = {{ compliance = "lockout", relay = false, events = ["start_blocked"] }}
"""


def test_a_scenario_with_state_leaves_its_flash_for_the_next_run(tmp_path, capsys):
    from sim.cli import EXIT_FAILED, EXIT_OK, main

    (tmp_path / "first.toml").write_text(FIRST)
    (tmp_path / "later.toml").write_text(LATER.format(state='state = "flash"'))
    (tmp_path / "fresh.toml").write_text(LATER.format(state=""))
    assert main(["run", str(tmp_path / "first.toml")]) == EXIT_OK
    assert (tmp_path / "flash").is_dir() and any((tmp_path / "flash").iterdir())
    assert main(["run", str(tmp_path / "later.toml")]) == EXIT_OK  # still locked out
    assert main(["run", str(tmp_path / "fresh.toml")]) == EXIT_FAILED  # a new handset is not
    assert main(["run", str(tmp_path / "fresh.toml"), "--state", str(tmp_path / "flash")]) == EXIT_OK
    capsys.readouterr()
