"""The real lci-tool against a simulated handset over a real pty and over TCP."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys

import pytest

from host_tools import cli, exitcodes, keys, lci_tool, tokens
from sim.line import Faults
from tests.host.sim_bench import SERIAL, Bench


def run(capsys, argv):
    code = lci_tool.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_json(capsys, argv):
    code, out, err = run(capsys, [*argv, "--json"])
    return code, json.loads(out.strip().splitlines()[-1]), err


@pytest.fixture(params=["pty", "tcp"])
def bench(request, tmp_path):
    b = Bench(tmp_path, endpoint=request.param)
    yield b
    b.stop()


def test_info_and_status(bench, capsys):
    code, info, _ = run_json(capsys, bench.args("info"))
    assert code == 0
    assert info["serial"] == SERIAL and info["protocol"] == 1
    assert "tokens" in info["capabilities"]
    code, status, _ = run_json(capsys, bench.args("status"))
    assert code == 0
    assert status["compliance"] == "normal" and status["session"] == "ignition_off"
    code, text, _ = run(capsys, bench.args("status"))
    assert f"handset           {SERIAL}" in text and "compliance        normal" in text


def test_log_download_and_verify(bench, capsys, tmp_path):
    out = tmp_path / "log.jsonl"
    code, report, _ = run_json(capsys, bench.args("log", "download", "--out", str(out)))
    assert code == 0, report
    assert report["chain_ok"] and report["records"] >= 3
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["index"] for r in rows] == list(range(report["first"], report["last"] + 1))
    assert any(r["kind_name"] == "work_order" for r in rows)
    code, verified, _ = run_json(capsys, bench.args("log", "verify", str(out)))
    assert code == 0 and verified["chain_ok"]
    # an edited record breaks the chain, and verify says where
    rows[1]["raw"] = rows[1]["raw"][:-2] + ("00" if rows[1]["raw"][-2:] != "00" else "01")
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, verified, _ = run_json(capsys, bench.args("log", "verify", str(out)))
    assert code == exitcodes.VERIFY_FAILED and verified["broken_at"] == rows[1]["index"]


def test_log_download_as_csv(bench, capsys, tmp_path):
    out = tmp_path / "log.csv"
    code, report, _ = run_json(capsys, bench.args("log", "download", "--out", str(out), "--format", "csv"))
    assert code == 0 and report["chain_ok"]
    header = out.read_text().splitlines()[0]
    assert header.startswith("index,time,core_time,kind,kind_name")
    code, verified, _ = run_json(capsys, bench.args("log", "verify", str(out)))
    assert code == 0 and verified["records"] == report["records"]


def test_log_download_resumes_an_interrupted_file(bench, capsys, tmp_path):
    out = tmp_path / "log.jsonl"
    code, full, _ = run_json(capsys, bench.args("log", "download", "--out", str(out)))
    lines = out.read_text().splitlines()
    # keep the first two records and half of the third: a download cut by a pulled cable
    out.write_text(lines[0] + "\n" + lines[1] + "\n" + lines[2][: len(lines[2]) // 2])
    code, resumed, _ = run_json(capsys, bench.args("log", "download", "--out", str(out)))
    assert code == 0 and resumed["chain_ok"]
    assert resumed["written"] >= full["records"] - 2
    assert out.read_text().splitlines()[: len(lines)] == lines


def test_unlock_with_a_minted_technician_token(tmp_path, capsys):
    bench = Bench(tmp_path, directives=[("lockout", {"cause": "unpaid_balance", "seq": 1})])
    try:
        code, status, _ = run_json(capsys, bench.args("status"))
        assert status["compliance"] == "lockout"
        code, result, _ = run_json(capsys, bench.args("unlock", "--key", str(bench.tech_key), "--hours", "4"))
        assert code == 0, result
        assert result["compliance"] == "code_unlock"
    finally:
        bench.stop()


def test_a_key_without_the_scope_is_refused_on_the_laptop(bench, capsys, tmp_path):
    from host_tools import keys

    narrow = tmp_path / "cal-only.key"
    keys.delegate_to_file(bench.keys / "root.key", narrow, "cal-only", ["calibrate"], days=10)
    code, out, err = run(capsys, bench.args("unlock", "--key", str(narrow)))
    assert code == exitcodes.CREDENTIAL
    assert "may not sign unlock" in err


def test_expired_token_is_refused_by_the_handset_in_words(tmp_path, capsys):
    bench = Bench(tmp_path, directives=[("lockout", {"cause": "unpaid_balance", "seq": 1})])
    try:
        day_ago = keys.core_now() - 86400
        expired = tokens.mint(bench.root, SERIAL, "unlock", {"seconds": 3600}, now=day_ago, ttl=600)
        path = tmp_path / "old.tok"
        path.write_text(expired.hex())
        code, out, err = run(capsys, bench.args("token", "apply", str(path)))
        assert code == exitcodes.REFUSED
        assert "token has expired by the device clock" in err and err.count("\n") == 1
        code, status, _ = run_json(capsys, bench.args("status"))
        assert status["compliance"] == "lockout"  # nothing changed
        # the times from the token's own fields and the handset's clock, in ISO 8601
        until = cli.record_time(day_ago + 600)
        assert f"valid until {until}; the handset's clock reads {status['now'][:13]}" in err, err
        assert not re.search(r"\b\d{9,}\b", err), err
        not_yet = tokens.mint(bench.root, SERIAL, "unlock", {"seconds": 3600}, now=day_ago + 2 * 86400, ttl=600)
        path.write_text(not_yet.hex())
        code, out, err = run(capsys, bench.args("token", "apply", str(path)))
        assert code == exitcodes.REFUSED and f"valid from {cli.record_time(day_ago + 2 * 86400)}" in err, err
    finally:
        bench.stop()


def test_keypad_code_round_trip(tmp_path, capsys):
    bench = Bench(tmp_path, directives=[("lockout", {"cause": "unpaid_balance", "seq": 1})])
    try:
        code, req, _ = run_json(capsys, bench.args("code", "request"))
        assert code == 0
        code, issued, _ = run_json(capsys, bench.args("code", "issue", "--serial", SERIAL,
                                                       "--request", req["request"]))
        assert code == 0 and len(issued["code"]) >= 8
        from host_tools.device_client import DeviceClient

        with DeviceClient.open(bench.url) as client:
            client.hello()
            client.enter_code(issued["code"])
            assert client.status()["compliance"] == "code_unlock"
    finally:
        bench.stop()


def test_work_order_issue_and_apply_and_a_mismatched_file(bench, capsys, tmp_path):
    order = tmp_path / "switch.toml"
    code, _, err = run(capsys, bench.args("work-order", "issue", "--serial", SERIAL, "--order",
                                          "vehicle_switch", "--id", "WO-77", "--vehicle", "VIN-2",
                                          "--out", str(order), "--key", str(bench.keys / "root.key")))
    assert code == 0, err
    code, applied, _ = run_json(capsys, bench.args("work-order", "apply", str(order)))
    assert code == 0 and applied["order"] == "vehicle_switch"
    # a hand-edited file is caught before the handset sees it
    order.write_text(order.read_text().replace('id = "WO-77"', 'id = "WO-78"'))
    code, _, err = run(capsys, bench.args("work-order", "apply", str(order)))
    assert code == exitcodes.CREDENTIAL and "signed token says 'WO-77'" in err


def test_work_order_for_another_handset_is_refused_as_wrong_device(bench, capsys, tmp_path):
    order = tmp_path / "other.toml"
    run(capsys, bench.args("work-order", "issue", "--serial", "LCI7-999999", "--order", "removal",
                           "--id", "WO-9", "--out", str(order), "--key", str(bench.keys / "root.key")))
    code, _, err = run(capsys, bench.args("work-order", "apply", str(order)))
    assert code == exitcodes.WRONG_DEVICE
    assert "LCI7-999999" in err


def test_calibrate_and_whole_service_visit(bench, capsys, tmp_path):
    code, receipt, _ = run_json(capsys, bench.args("calibrate", "--reference", "0.040", "--yes",
                                                   "--key", str(bench.tech_key)))
    assert code == 0, receipt
    assert receipt["passed"] and [s["step"] for s in receipt["steps"]][:2] == ["as found", "adjust"]
    log = tmp_path / "visit.jsonl"
    code, receipt, _ = run_json(capsys, bench.args("service", "--yes", "--key", str(bench.tech_key),
                                                   "--log-out", str(log), "--serial", SERIAL))
    assert code == 0, receipt
    assert receipt["log"]["chain_ok"] and receipt["passed"]
    assert receipt["after"]["compliance"] == "normal" and receipt["next_service"]


def test_service_on_the_wrong_handset_changes_nothing(bench, capsys):
    code, _, err = run(capsys, bench.args("service", "--yes", "--key", str(bench.tech_key),
                                          "--serial", "LCI7-000999"))
    assert code == exitcodes.WRONG_DEVICE
    code, status, _ = run_json(capsys, bench.args("status"))
    assert status["compliance"] == "normal"


def test_set_time_moves_the_clock(bench, capsys):
    code, moved, _ = run_json(capsys, bench.args("set-time", "--time", "2026-11-22T12:00:00+00:00",
                                                 "--key", str(bench.tech_key)))
    assert code == 0, moved
    assert moved["after"] == "2026-11-22T12:00:00Z"  # ISO 8601 with the zone, not an epoch


def test_keygen_writes_private_files_0600(tmp_path, capsys):
    code, made, _ = run_json(capsys, ["keygen", "--dir", str(tmp_path / "k")])
    assert code == 0
    for name in ("root_key", "master_secret"):
        assert stat.S_IMODE(os.stat(made[name]).st_mode) == 0o600
    code, _, err = run(capsys, ["keygen", "--dir", str(tmp_path / "k")])
    assert code == exitcodes.CREDENTIAL and "not overwriting" in err


def test_provision_a_factory_fresh_handset_once(tmp_path, capsys):
    bench = Bench(tmp_path, provisioned=False)
    try:
        code, info, _ = run_json(capsys, bench.args("info"))
        assert "factory" in info["capabilities"]
        code, done, _ = run_json(capsys, bench.args("provision", "--serial", "LCI7-000555"))
        assert code == 0 and done["serial"] == "LCI7-000555"
        code, _, err = run(capsys, bench.args("provision", "--serial", "LCI7-000556"))
        assert code == exitcodes.REFUSED and "already provisioned" in err
    finally:
        bench.stop()


def test_no_device_timeout_and_usage_errors(tmp_path, capsys):
    code, _, err = run(capsys, ["--port", "/dev/lci-none", "status"])
    assert code == exitcodes.NO_DEVICE and err.startswith("lci-tool: cannot open /dev/lci-none")
    master, slave = os.openpty()  # a port where nobody answers
    try:
        code, _, err = run(capsys, ["--port", os.ttyname(slave), "--timeout", "0.05", "info"])
        assert code == exitcodes.TIMEOUT and "no reply to hello" in err
    finally:
        os.close(master)
        os.close(slave)
    with pytest.raises(SystemExit) as info:
        lci_tool.main(["calibrate"])
    assert info.value.code == exitcodes.USAGE


def test_a_lossy_cable_still_gives_a_verified_log(tmp_path, capsys):
    bench = Bench(tmp_path, endpoint="tcp", faults=Faults(seed=5, drop=0.002, corrupt=0.002))
    try:
        out = tmp_path / "lossy.jsonl"
        code, report, _ = run_json(capsys, bench.args("--timeout", "0.2", "log", "download", "--out", str(out)))
        assert code == 0, report
        assert report["chain_ok"]
    finally:
        bench.stop()


def test_the_console_script_runs(tmp_path):
    bench = Bench(tmp_path)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "host_tools.lci_tool", *bench.args("status", "--json")],
            capture_output=True, text=True, timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["compliance"] == "normal"
    finally:
        bench.stop()


def test_ordinary_mistakes_are_one_line_never_a_traceback(bench, capsys, tmp_path):
    code, _, err = run(capsys, bench.args("unlock", "--key", str(bench.tech_key), "--hours", "0.0001"))
    assert code == exitcodes.USAGE and "unlock window is 1 minute" in err
    code, _, err = run(capsys, bench.args("calibrate", "--reference", "0.090", "--yes",
                                          "--key", str(bench.tech_key)))
    assert code == exitcodes.USAGE and "0.030 to 0.050" in err
    code, status, _ = run_json(capsys, bench.args("status"))
    assert status["compliance"] == "normal"  # nothing was opened for a typo
    code, _, err = run(capsys, bench.args("log", "download", "--out", str(tmp_path / "no" / "x.jsonl")))
    assert code == exitcodes.USAGE and "No such file or directory" in err
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n{}\n")
    code, _, err = run(capsys, bench.args("log", "download", "--out", str(bad)))
    assert code == exitcodes.USAGE and "not a JSON line" in err
    code, _, err = run(capsys, bench.args("work-order", "issue", "--serial", SERIAL, "--order", "removal",
                                          "--id", "W", "--days", "0", "--out", str(tmp_path / "w.toml"),
                                          "--key", str(bench.keys / "root.key")))
    assert code == exitcodes.CREDENTIAL and "ttl" in err
    for text in (err,):
        assert "Traceback" not in text and text.count("\n") == 1
