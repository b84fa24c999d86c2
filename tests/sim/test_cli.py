"""lci-sim on the command line: run, fleet, keys, and serve as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from host_tools.link import Link, SerialTransport
from protocol import messages
from sim.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "failed_start_test.toml"


def test_run_prints_a_readable_timeline(capsys):
    assert main(["run", str(EXAMPLE)]) == EXIT_OK
    out = capsys.readouterr().out
    assert "test_fail" in out and "[TEST FAILED" in out
    assert "all 8 steps met their expectations" in out


def test_run_json_lines(capsys):
    assert main(["run", str(EXAMPLE), "--json"]) == EXIT_OK
    lines = capsys.readouterr().out.strip().splitlines()
    records = [json.loads(line) for line in lines]
    assert all(list(r) == ["t", "source", "event", "compliance", "session", "display", "detail"] for r in records)
    assert records[-1]["event"] == "end"


def test_run_malformed_is_one_line_with_file_and_line(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[step]]\ndo = "teleport"\n')
    assert main(["run", str(bad)]) == EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert err == f"lci-sim: {bad}:2: step 1: unknown action 'teleport'; actions: " + err.split("actions: ")[1]
    assert len(err.splitlines()) == 1


def test_run_with_an_unmet_expectation_exits_1(tmp_path, capsys):
    text = EXAMPLE.read_text().replace('expect = { session = "temporary_lockout", no_events',
                                       'expect = { session = "engine_enabled", no_events')
    path = tmp_path / "wrong.toml"
    path.write_text(text)
    assert main(["run", str(path)]) == EXIT_FAILED
    out = capsys.readouterr().out
    assert f"{path}:25: step 4: session: expected 'engine_enabled', got 'temporary_lockout'" in out


def test_fleet_json(capsys):
    assert main(["fleet", "--devices", "2", "--days", "3", "--seed", "1", "--json"]) == EXIT_OK
    stats = json.loads(capsys.readouterr().out)
    for key in ("tests", "fails", "violations", "recalls", "lockouts", "trips"):
        assert key in stats
    assert main(["fleet", "--devices", "0"]) == EXIT_USAGE


def test_keys_writes_what_lci_tool_loads(tmp_path, capsys):
    from host_tools import keys

    assert main(["keys", "--out", str(tmp_path), "--seed", "4"]) == EXIT_OK
    root = keys.load_root_key(tmp_path / "root.key")
    from sim.provider import Provider

    assert root.public_key == Provider(4).root.public_key
    assert oct((tmp_path / "master.secret").stat().st_mode & 0o777) == "0o600"
    assert main(["keys", "--out", str(tmp_path), "--seed", "4"]) == EXIT_USAGE  # no overwrite


def test_serve_as_a_process_over_tcp_and_pty(tmp_path):
    link_path = tmp_path / "lci"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sim.cli", "serve", "--tcp", "0", "--link", str(link_path), "--installed", "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2],
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    try:
        endpoints = {}
        while len(endpoints) < 2:
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            kind, _, rest = line.partition(": ")
            endpoints[kind] = rest.split()[0]
        for url in (endpoints["tcp"], str(link_path)):
            link = Link(SerialTransport(url), timeout=2.0)
            status = link.request(messages.STATUS)
            assert messages.COMPLIANCE_STATES[status["compliance"]] == "normal"  # --installed
            link.close()
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
    assert not link_path.exists()  # the symlink goes with the server
