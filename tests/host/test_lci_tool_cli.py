"""lci-tool as a technician meets it: the exit codes of docs/technician.md, keys checked before
a visit, the shared CLI layer (--json anywhere, -v frames, -q, ISO times, broken pipe 141),
`devs`, `code enter`, the socket:// hint, one root-key fingerprint, the service log's folder."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from host_tools import exitcodes, keys, lci_tool
from tests.host.sim_bench import SERIAL, Bench

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def run(capsys, argv):
    code = lci_tool.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def bench(tmp_path):
    b = Bench(tmp_path, endpoint="tcp")
    yield b
    b.stop()


def status_of(capsys, bench) -> dict:
    code, out, _ = run(capsys, bench.args("status", "--json"))
    assert code == 0
    return json.loads(out)


def test_a_missing_key_is_exit_7_before_the_visit_touches_the_handset(bench, capsys, tmp_path):
    before = status_of(capsys, bench)
    code, out, err = run(capsys, bench.args("service", "--yes", "--key", str(tmp_path / "none.key")))
    assert code == exitcodes.CREDENTIAL, err
    assert err.count("\n") == 1 and "none.key" in err and "REMAINING" not in out
    after = status_of(capsys, bench)
    assert after["compliance"] == before["compliance"] == "normal"  # no service session opened
    assert after["log_records"] == before["log_records"]
    code, _, err = run(capsys, bench.args("calibrate", "--reference", "0.040", "--yes",
                                          "--key", str(tmp_path / "none.key")))
    assert code == exitcodes.CREDENTIAL
    code, _, err = run(capsys, bench.args("unlock", "--key", str(tmp_path / "none.key")))
    assert code == exitcodes.CREDENTIAL


def test_another_providers_key_is_a_refusal_exit_6_with_nothing_to_close(bench, capsys, tmp_path):
    other = keys.keygen(tmp_path / "other")
    code, out, err = run(capsys, bench.args("service", "--yes", "--key", str(other["root_key"])))
    assert code == exitcodes.REFUSED, err
    assert "close the service session" not in out  # none was opened
    assert status_of(capsys, bench)["compliance"] == "normal"


def test_times_in_json_and_text_are_iso_8601_with_the_zone(bench, capsys):
    status = status_of(capsys, bench)
    for key in ("now", "service_due", "calibration_due"):
        assert ISO.match(status[key]), (key, status[key])
    code, text, _ = run(capsys, bench.args("status"))
    assert re.search(r"device clock\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", text)
    assert not re.search(r"\b\d{9,}\b", text)


def test_json_before_or_after_the_command(bench, capsys):
    _, after, _ = run(capsys, bench.args("info", "--json"))
    _, before, _ = run(capsys, ["--json", *bench.args("info")])
    assert json.loads(after)["serial"] == json.loads(before)["serial"] == SERIAL
    assert after.count("\n") == 1  # one compact line


def test_info_lists_capabilities_in_words(bench, capsys):
    code, text, _ = run(capsys, bench.args("info"))
    assert code == 0
    assert re.search(r"capabilities\s+bench, calibrate", text) and "[" not in text


def test_verbose_prints_the_frames_quiet_prints_no_progress(bench, capsys, tmp_path):
    code, out, err = run(capsys, bench.args("-v", "status"))
    assert code == 0
    assert re.search(r"^> hello seq=\d+", err, re.M) and re.search(r"^< status_reply seq=\d+", err, re.M)
    code, out, err = run(capsys, bench.args("log", "download", "--out", str(tmp_path / "a.jsonl")))
    assert code == 0 and "event log:" in err and "\r" not in err  # not a terminal: plain lines
    code, out, err = run(capsys, bench.args("-q", "log", "download", "--out", str(tmp_path / "b.jsonl")))
    assert code == 0 and err == ""


def test_code_request_lists_the_valid_actions(bench, capsys):
    with pytest.raises(SystemExit) as ended:
        lci_tool.main(bench.args("code", "request", "--action", "foo"))
    assert ended.value.code == exitcodes.USAGE
    err = capsys.readouterr().err
    assert "choose from 'unlock', 'clear'" in err and "tuple" not in err


def test_code_enter_over_the_cable_checks_the_code(bench, capsys):
    code, _, err = run(capsys, bench.args("code", "enter", "1234 5678"))
    assert code == exitcodes.REFUSED and "request a code first" in err
    code, _, err = run(capsys, bench.args("code", "enter", "12ab"))
    assert code == exitcodes.USAGE


def test_code_enter_unlocks_a_paid_lockout(tmp_path, capsys):
    bench = Bench(tmp_path, endpoint="tcp", directives=(("lockout", {"cause": "unpaid_balance", "seq": 1}),))
    try:
        assert status_of(capsys, bench)["compliance"] != "normal"
        code, out, err = run(capsys, bench.args("code", "request", "--action", "clear", "--json"))
        assert code == 0, err
        request = json.loads(out)["request"]
        code, out, err = run(capsys, bench.args("code", "issue", "--serial", SERIAL, "--request", request,
                                                "--action", "clear", "--lockout", "1", "--json"))
        assert code == 0, err
        answer = json.loads(out)["code"]
        code, out, err = run(capsys, bench.args("code", "enter", answer))
        assert code == 0, err
        assert "code accepted" in out and "clear" in out and "normal" in out
    finally:
        bench.stop()


def test_a_host_port_gets_the_socket_url_hint(capsys):
    code, _, err = run(capsys, ["--port", "127.0.0.1:7788", "status"])
    assert code == exitcodes.NO_DEVICE and "socket://127.0.0.1:7788" in err


def test_a_missing_device_path_is_said_once(capsys, tmp_path):
    code, _, err = run(capsys, ["--port", str(tmp_path / "tty"), "status"])
    assert code == exitcodes.NO_DEVICE and err.count("No such file or directory") == 1


def test_keygen_and_provision_show_one_fingerprint(tmp_path, capsys):
    bench = Bench(tmp_path, provisioned=False, endpoint="tcp")
    try:
        code, out, _ = run(capsys, bench.args("provision", "--serial", "LCI7-000777", "--json"))
        assert code == 0
        assert json.loads(out)["root_id"] == bench.root.root_id.hex()
    finally:
        bench.stop()


def test_service_writes_its_log_beside_the_keys(bench, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, bench.args("service", "--yes", "--key", str(bench.tech_key), "--json"))
    assert code == 0, err
    path = Path(json.loads(out)["log"]["path"])
    assert path.parent == bench.keys / "logs" and path.exists()
    assert not list(tmp_path.glob("*.jsonl"))
    code, out, err = run(capsys, bench.args("service", "--yes", "--key", str(bench.tech_key),
                                            "--out", str(tmp_path / "visit.jsonl")))
    assert code == 0 and (tmp_path / "visit.jsonl").exists()
    assert "calibration: PASS\n" in out  # the verdict, not "PASS (calibration passed)"


def test_devs_lists_ports_as_a_table(capsys):
    code, out, _ = run(capsys, ["devs"])
    assert code == 0 and ("port" in out or "no serial ports" in out)
    code, out, _ = run(capsys, ["devs", "--json"])
    assert code == 0 and isinstance(json.loads(out)["ports"], list)


def test_a_closed_pipe_exits_141_without_a_traceback(bench):
    reader = subprocess.Popen([sys.executable, "-m", "host_tools.lci_tool", *bench.args("status")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    reader.stdout.close()  # the reader left before the first byte
    code = reader.wait(timeout=60)
    err = reader.stderr.read().decode()
    reader.stderr.close()
    assert "Traceback" not in err
    assert code == exitcodes.BROKEN_PIPE


def test_every_option_has_help():
    import argparse

    def walk(parser):
        yield parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for child in action.choices.values():
                    yield from walk(child)

    for parser in walk(lci_tool.build_parser()):
        for action in parser._actions:
            if not isinstance(action, argparse._SubParsersAction):
                assert action.help, f"{parser.prog}: {action.option_strings or action.dest} has no help"
