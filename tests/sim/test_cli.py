"""lci-sim on the command line: run, fleet, keys, and serve as a real process."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from firmware.device import FIRMWARE_VERSION
from host_tools.link import Link, SerialTransport
from protocol import messages
from sim.cli import (
    EXIT_BROKEN_PIPE,
    EXIT_DEVICE,
    EXIT_ENDPOINT,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    main,
)

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
    assert all(list(r) == ["t", "at", "source", "event", "compliance", "session", "display", "detail"]
               for r in records)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", r["at"]) for r in records)
    assert records[0]["at"] == "2026-03-02T07:00:00Z" and records[0]["t"] == 0  # the file's start
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


# ---- arguments: every bad one is a usage error before anything starts ------------------------------
BAD_ARGUMENTS = [
    (["serve", "--tcp", "99999"], "--tcp: a TCP port must be 0..65535, got 99999"),
    (["serve", "--tcp", "-1"], "--tcp: a TCP port must be 0..65535"),
    (["serve", "--tcp", "seven"], "'seven' is not a whole number"),
    (["serve", "--baud", "-5"], "--baud: the baud rate must be 0..4000000, got -5"),
    (["serve", "--jurisdiction", "mars"], "invalid choice: 'mars'"),
    (["serve", "--speed", "0"], "--speed: the speed must be above 0"),
    (["serve", "--speed", "nan"], "--speed: the speed must be above 0"),
    (["serve", "--drop", "1.5"], "--drop: a rate must be 0..1"),
    (["serve", "--drop", "0.6", "--corrupt", "0.6"], "must not exceed 1"),
    (["serve", "--serial", "no spaces allowed"], "a serial number is 1..32 letters"),
    (["serve", "--factory", "--installed"], "--installed needs a provisioned unit"),
    (["serve", "--factory", "--keys", "somewhere"], "--keys would not be used"),
    (["serve", "--no-pty"], "nothing to serve"),
    (["serve", "--runtime", "jython"], "invalid choice: 'jython'"),
    (["handset", "--tcp", "70000"], "--tcp: a TCP port must be 0..65535"),
    (["handset", "--jurisdiction", "atlantis"], "invalid choice: 'atlantis'"),
    (["handset", "--installed", "--uninstalled"], "contradict each other"),
    (["run", "x.toml", "--seed", "1.5"], "--seed: invalid int value"),
    (["run", "x.toml", "--runtime", "pypy"], "invalid choice: 'pypy'"),
    (["fleet", "--devices", "0"], "--devices: the number of devices must be 1..10000, got 0"),
    (["fleet", "--days", "-3"], "--days: the number of days must be 1..3650, got -3"),
    (["fleet", "--days", "100000"], "--days: the number of days must be 1..3650"),
    (["keys"], "the following arguments are required: --out"),
    (["keys", "--out", "k", "--serial", ""], "a serial number is 1..32 letters"),
    ([], "the following arguments are required: command"),
]


@pytest.mark.parametrize(("argv", "words"), BAD_ARGUMENTS, ids=[" ".join(a) or "none" for a, _ in BAD_ARGUMENTS])
def test_bad_arguments_are_a_usage_error_naming_the_problem(argv, words, capsys):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == EXIT_USAGE
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("lci-sim") and "error:" in last and words in last, last


def test_version(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("lci-sim ") and f"firmware {FIRMWARE_VERSION}" in out


def test_a_core_that_does_not_boot_is_one_line_and_exit_12(monkeypatch, capsys):
    from firmware.config import ConfigError

    def refuse(**config):
        raise ConfigError("unknown jurisdiction 'mars'")

    monkeypatch.setattr("sim.core_adapter.Config", refuse)
    assert main(["serve", "--no-pty", "--tcp", "0", "--quiet"]) == EXIT_DEVICE
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing served
    assert captured.err == ("lci-sim: the simulated handset did not boot: "
                            "ConfigError: unknown jurisdiction 'mars'\n")


def test_an_unusable_key_folder_is_one_line(tmp_path, capsys):
    assert main(["serve", "--no-pty", "--tcp", "0", "--keys", str(tmp_path)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"lci-sim: --keys {tmp_path}: ")
    assert "root.key" in err


def test_serve_with_factory_and_a_taken_port_closes_cleanly(capsys):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert main(["serve", "--no-pty", "--tcp", str(port), "--factory"]) == EXIT_ENDPOINT
    err = capsys.readouterr().err
    assert err.startswith("lci-sim: cannot open the serial endpoint") and err.count("\n") == 1


def test_output_into_a_reader_that_stops_early_is_quiet(tmp_path):
    """`lci-sim run ... | head -1`: no BrokenPipeError traceback, exit 141 (128 + SIGPIPE)."""
    steps = '\n[[step]]\nafter = "2h"\ndo = "drive"\nminutes = 20\n' * 30
    path = tmp_path / "long.toml"
    path.write_text('[[step]]\ndo = "install"\n' + steps)
    proc = subprocess.Popen(
        [sys.executable, "-m", "sim.cli", "run", str(path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.stdout.readline()
    proc.stdout.close()  # the reader goes away with most of the run still to print
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == EXIT_BROKEN_PIPE
    assert err == ""


def test_a_simulation_that_cannot_go_on_is_one_line_and_exit_12(monkeypatch, capsys):
    from sim import scenario
    from sim.simulator import SimError

    def stuck(*args, **kwargs):
        raise SimError("the core keeps asking to run at d0 00:00:05: stuck deadline")

    monkeypatch.setattr(scenario, "run", stuck)
    assert main(["run", str(EXAMPLE)]) == EXIT_DEVICE
    assert capsys.readouterr().err == "lci-sim: the core keeps asking to run at d0 00:00:05: stuck deadline\n"


@pytest.mark.parametrize(("argv", "installed", "provisioned"), [
    (["handset", "--no-pty"], True, True),
    (["handset", "--no-pty", "--uninstalled"], False, True),
    (["handset", "--no-pty", "--factory"], False, False),
])
def test_the_handset_boots_installed_unless_asked_otherwise(argv, installed, provisioned):
    """On the desk the handset is driven at once: `i` and `b` work without extra options."""
    from sim.cli import build_parser, check_arguments, make_device

    parser = build_parser()
    args = parser.parse_args(argv)
    check_arguments(parser, args)
    sim, _provider, tech = make_device(args)
    try:
        status = sim.status()
        assert status["provisioned"] == provisioned
        assert (status["compliance"] != "removed") == installed
        sim.ignition(True)
        assert (sim.state["session"] == "test_requested") == installed
    finally:
        if tech is not None:
            tech.close()
        sim.close()


def test_serve_verbose_shows_each_frame_the_handset_reads_and_writes(tmp_path):
    """-v on serve: one line on stderr per whole frame, `<` read by the handset, `>` written."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "sim.cli", "serve", "--no-pty", "--tcp", "0", "--installed", "--quiet", "-v"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2],
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    try:
        url = proc.stdout.readline().split(": ", 1)[1].split()[0]
        link = Link(SerialTransport(url), timeout=2.0)
        link.request(messages.STATUS)
        link.close()
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
    err = proc.stderr.read().splitlines()
    assert any(line.startswith("< status seq=") for line in err), err
    assert any(line.startswith("> status_reply seq=") and " len=54 " in line for line in err), err


def test_run_verbose_shows_the_technician_cable_frames(capsys):
    example = EXAMPLE.with_name("service_visit.toml")
    assert main(["run", str(example), "-v"]) == EXIT_OK
    captured = capsys.readouterr()
    frames = captured.err.splitlines()
    assert any(line.startswith("> log_read seq=") for line in frames), frames[:20]
    assert any(line.startswith("< ") for line in frames)
    assert "> " not in captured.out.split("\n", 1)[0]  # the timeline stays on stdout
    assert Link.trace is None  # the trace ends with the run
    assert main(["run", str(example)]) == EXIT_OK
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("command", [["fleet", "--devices", "1", "--days", "1"], ["keys", "--out", "x"]])
def test_verbose_is_refused_where_there_are_no_frames_to_show(command, capsys):
    with pytest.raises(SystemExit) as stop:
        main([*command, "-v"])
    assert stop.value.code == EXIT_USAGE and "it is for serve and run" in capsys.readouterr().err
