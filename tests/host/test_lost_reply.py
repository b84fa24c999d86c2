"""A reply lost on the cable: the handset did the work, the laptop never heard. Over TCP
against the simulator, whose cable is pulled right after the handset read the request
(sim/cable.py): the reply is gone and the connection dropped.

What must hold: the tool presents the same token again and the handset's "already applied"
is success (exit 0); nothing is applied twice; when no answer can be had the tool says so
with its own exit code (never "protocol mismatch").
"""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from host_tools import exitcodes, keys, lci_tool, tokens
from host_tools.delivery import UNKNOWN_TEXT
from protocol import errors, messages
from sim.cable import CablePull
from tests.host.sim_bench import SERIAL, Bench
from tests.host.test_lci_tool import run, run_json

LOCKOUT = [("lockout", {"cause": "unpaid_balance", "seq": 1})]


def pulled(tmp_path, *, times=1, type_=messages.TOKEN, directives=()):
    return Bench(tmp_path, endpoint="tcp", directives=directives, pull=CablePull(type_, times=times))


def log_kinds(capsys, bench, tmp_path, name="log.jsonl"):
    out = tmp_path / name
    code, report, _ = run_json(capsys, bench.args("log", "download", "--out", str(out)))
    assert code == 0 and report["chain_ok"], report
    return [json.loads(line)["kind_name"] for line in out.read_text().splitlines()]


def token_file(tmp_path, bench, action, args, name="directive.tok"):
    now = keys.core_now() - 60  # issued a minute ago: the handset's clock may lag this one
    token = tokens.mint(bench.root, SERIAL, action, args, now=now, ttl=3600)
    path = tmp_path / name
    path.write_text(token.hex())
    return path


def test_token_apply_with_its_reply_lost_is_already_applied_and_a_rerun_too(tmp_path, capsys):
    bench = pulled(tmp_path, directives=LOCKOUT)
    try:
        path = token_file(tmp_path, bench, "unlock", {"seconds": 3600})
        code, result, err = run_json(capsys, bench.args("token", "apply", str(path)))
        assert bench.server.pull.pulled == 1  # the reply to the first TOKEN was lost
        assert code == exitcodes.OK, err
        assert result["already_applied"] is True and result["compliance"] == "code_unlock"
        code, again, err = run_json(capsys, bench.args("token", "apply", str(path)))  # the rerun
        assert code == exitcodes.OK, err
        assert again["already_applied"] is True and again["compliance"] == "code_unlock"
        kinds = log_kinds(capsys, bench, tmp_path)
        assert kinds.count("unlock_start") == 1
        assert "token_rejected" not in kinds and "refusals" not in kinds  # "already applied" is no refusal
    finally:
        bench.stop()


def test_work_order_apply_with_its_reply_lost_is_success(tmp_path, capsys):
    bench = pulled(tmp_path)
    try:
        order = tmp_path / "removal.toml"
        code, _, err = run(capsys, ["--keys", str(bench.keys), "work-order", "issue", "--serial", SERIAL,
                                    "--order", "removal", "--id", "WO-9", "--out", str(order)])
        assert code == 0, err
        code, result, err = run_json(capsys, bench.args("work-order", "apply", str(order)))
        assert code == exitcodes.OK, err
        assert result["already_applied"] is True and result["compliance"] == "removed"
        code, text, err = run(capsys, bench.args("work-order", "apply", str(order)))  # rerun
        assert code == exitcodes.OK, err
        assert "already applied" in text
        assert log_kinds(capsys, bench, tmp_path).count("work_order") == 2  # installation + removal
    finally:
        bench.stop()


def test_minted_unlock_with_its_reply_lost_is_success(tmp_path, capsys):
    bench = pulled(tmp_path, directives=LOCKOUT)
    try:
        code, result, err = run_json(capsys, bench.args("unlock", "--key", str(bench.tech_key), "--hours", "4"))
        assert code == exitcodes.OK, err
        assert result["already_applied"] is True and result["compliance"] == "code_unlock"
        assert not (bench.keys / "pending").exists() or not any((bench.keys / "pending").iterdir())
        assert log_kinds(capsys, bench, tmp_path).count("unlock_start") == 1
    finally:
        bench.stop()


def test_set_time_without_an_answer_exits_unknown_then_a_rerun_does_not_apply_it_twice(tmp_path, capsys):
    bench = pulled(tmp_path, times=0)  # every TOKEN's reply is lost: reconnecting never helps
    try:
        target = "2031-05-01T12:00:00+00:00"
        code, out, err = run(capsys, bench.args("set-time", "--key", str(bench.tech_key), "--time", target))
        assert code == exitcodes.UNKNOWN_OUTCOME
        assert UNKNOWN_TEXT in err and err.count("\n") == 1
        assert bench.server.pull.pulled >= 2  # the same token went out again on a new connection
        bench.server.pull = None  # the cable is good again
        code, result, err = run_json(capsys, bench.args("set-time", "--key", str(bench.tech_key), "--time", target))
        assert code == exitcodes.OK, err
        assert result["already_applied"] is True
        code, status, _ = run_json(capsys, bench.args("status"))
        assert abs(status["now"] - lci_tool.core_seconds(datetime.fromisoformat(target))) < 120
        assert log_kinds(capsys, bench, tmp_path).count("clock_change") == 1
    finally:
        bench.stop()


def test_a_lost_answer_is_never_reported_as_a_protocol_mismatch(tmp_path, capsys):
    bench = pulled(tmp_path, times=0, directives=LOCKOUT)
    try:
        path = token_file(tmp_path, bench, "unlock", {"seconds": 3600})
        code, result, err = run_json(capsys, bench.args("token", "apply", str(path)))
        assert code == exitcodes.UNKNOWN_OUTCOME, err
        assert result["exit_code"] == exitcodes.UNKNOWN_OUTCOME and UNKNOWN_TEXT in result["error"]
        bench.server.pull = CablePull(messages.STATUS, times=0)  # a read that changes nothing
        code, _, err = run(capsys, bench.args("--timeout", "0.2", "status"))
        assert code == exitcodes.TIMEOUT, err
        assert "protocol" not in err
    finally:
        bench.stop()


def test_service_visit_with_a_lost_session_answer_finishes(tmp_path, capsys):
    bench = pulled(tmp_path, times=1)  # the answer to "open the service session" is lost
    try:
        code, receipt, err = run_json(capsys, bench.args(
            "service", "--key", str(bench.tech_key), "--yes", "--log-out", str(tmp_path / "v.jsonl")))
        assert code == exitcodes.OK, err
        assert receipt["passed"] and receipt["after"]["compliance"] == "normal"
        assert bench.server.pull.pulled == 1
        kinds = log_kinds(capsys, bench, tmp_path)
        assert kinds.count("service_open") == 1 and kinds.count("service_close") == 1
    finally:
        bench.stop()


def test_a_request_lost_before_the_handset_read_it_is_done_once_with_a_token_for_the_new_session(tmp_path, capsys):
    """The handset never saw the set-time token; after the reconnect it answers "bound to
    another session" (not "already applied"): only then is a new token minted, and the clock
    moves once."""
    bench = Bench(tmp_path, endpoint="tcp", pull=CablePull(messages.TOKEN, times=1, before=True))
    try:
        target = "2031-05-01T12:00:00+00:00"
        code, result, err = run_json(capsys, bench.args("set-time", "--key", str(bench.tech_key), "--time", target))
        assert code == exitcodes.OK, err
        assert result["already_applied"] is False and bench.server.pull.pulled == 1
        kinds = log_kinds(capsys, bench, tmp_path)
        assert kinds.count("clock_change") == 1
        # the old session's token, refused (on record as a refusal), nothing changed
        assert kinds.count("refusals") + kinds.count("token_rejected") >= 1
    finally:
        bench.stop()


def test_on_a_pty_the_lost_reply_is_answered_from_the_handsets_reply_cache(tmp_path, capsys):
    """A pty cannot be unplugged: the reply alone is lost, the link retransmits the identical
    request within the same session, and the handset answers it from its reply cache."""
    bench = Bench(tmp_path, endpoint="pty", directives=LOCKOUT, pull=CablePull(messages.TOKEN, times=1))
    try:
        path = token_file(tmp_path, bench, "unlock", {"seconds": 3600})
        code, result, err = run_json(capsys, bench.args("token", "apply", str(path)))
        assert code == exitcodes.OK, err
        assert bench.server.pull.pulled == 1 and result["compliance"] == "code_unlock"
        assert result["already_applied"] is False  # the original answer, replayed by the cache
        assert log_kinds(capsys, bench, tmp_path).count("unlock_start") == 1
    finally:
        bench.stop()


def test_after_a_lost_answer_a_refusal_that_precedes_the_id_lookup_is_an_unknown_outcome(tmp_path):
    """A device may judge the window before it looks the id up: an EXPIRED answer to a token
    whose first answer was lost does not say whether it worked. Without a lost answer it is
    a plain refusal."""
    from host_tools.delivery import OutcomeUnknown, deliver
    from host_tools.device_client import DeviceClient
    from host_tools.link import Nack

    bench = Bench(tmp_path, endpoint="tcp", directives=LOCKOUT)
    try:
        expired = tokens.mint(bench.root, SERIAL, "unlock", {"seconds": 3600},
                              now=keys.core_now() - 86400, ttl=600)
        with DeviceClient.open(bench.url) as client:
            client.hello()
            with pytest.raises(Nack) as refused:
                deliver(client, expired)
            assert refused.value.code == errors.EXPIRED
            with pytest.raises(OutcomeUnknown) as unknown:
                deliver(client, expired, uncertain=True)
            assert unknown.value.final and UNKNOWN_TEXT in str(unknown.value)
            assert client.status()["compliance"] == "lockout"
    finally:
        bench.stop()


def test_a_cable_pulled_during_the_visits_log_download_is_plugged_back_in(tmp_path, capsys):
    bench = Bench(tmp_path, endpoint="tcp", drives=2, pull=CablePull(messages.LOG_INFO, times=1))
    try:
        code, receipt, err = run_json(capsys, bench.args(
            "service", "--key", str(bench.tech_key), "--yes", "--log-out", str(tmp_path / "v.jsonl")))
        assert code == exitcodes.OK, err
        assert bench.server.pull.pulled == 1 and receipt["log"]["chain_ok"] and receipt["passed"]
    finally:
        bench.stop()
