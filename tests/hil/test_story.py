"""The whole story, black-box over the serial protocol, on every --device target.

Each test starts from a known state (installed, normal, parked) reached by authorized
commands. Driving uses the bench inputs; waiting out timers uses the device's own clock
(fast on simulated targets, skipped on boards); deadlines in days use set-time.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

from firmware import eventlog
from host_tools import codes
from host_tools.device_client import brac_units
from host_tools.link import Nack
from host_tools.log_download import download
from host_tools.logverify import verify_file
from host_tools.visit import Visit
from protocol import errors, framing, messages
from protocol.coretime import DAY

SOBER = 0
DRUNK = brac_units(0.040)


def start_engine(client, brac=SOBER):
    client.bench(messages.BENCH_IGNITION, 1)
    return client.bench(messages.BENCH_BLOW, brac, 1800, 345)


def nack_code(call):
    try:
        call()
    except Nack as exc:
        return exc.code
    raise AssertionError("the handset accepted it")


def test_identity_and_status(target, handset):
    info = handset.hello()
    assert info["serial"] == target.serial and info["protocol"] == framing.VERSION
    assert {"tokens", "keypad", "log_stream"} <= set(info["capabilities"])
    status = handset.status()
    assert status["compliance"] == "normal" and status["session"] == "ignition_off"
    assert not status["relay_closed"]
    assert len(status["display"][0]) <= 16 and len(status["display"][1]) <= 16


def test_passing_start_test_enables_the_engine(handset, bench_inputs):
    state = start_engine(handset)
    assert state["session"] == "engine_enabled"
    assert handset.status()["relay_closed"]


def test_failed_start_test_holds_a_temporary_lockout(handset, bench_inputs):
    state = start_engine(handset, DRUNK)
    assert state["session"] == "temporary_lockout"
    status = handset.status()
    assert not status["relay_closed"] and 0 < status["hold_left_s"] <= 5 * 60
    # a blow during the hold does not start the engine
    handset.bench(messages.BENCH_BLOW, SOBER, 1800, 345)
    assert not handset.status()["relay_closed"]


def test_temporary_lockout_runs_out_by_the_device_clock(target, handset, bench_inputs, fast_clock):
    start_engine(handset, DRUNK)
    target.wait_for(handset, lambda s: s["hold_left_s"] == 0, virtual_s=6 * 60, what="hold ends")
    state = handset.bench(messages.BENCH_BLOW, SOBER, 1800, 345)
    assert state["session"] == "engine_enabled"


def test_rolling_retest_answered_keeps_driving(target, handset, bench_inputs, fast_clock):
    start_engine(handset)
    target.wait_for(handset, lambda s: s["session"] in ("retest_due", "retest_in_progress"),
                    virtual_s=16 * 60, what="first rolling retest")
    state = handset.bench(messages.BENCH_BLOW, SOBER, 1800, 345)
    assert state["session"] == "engine_enabled"
    assert handset.status()["violations"] == 0


def test_missed_retest_is_a_violation_alarm_never_an_engine_cut(target, handset, bench_inputs, fast_clock):
    start_engine(handset)
    target.wait_for(handset, lambda s: s["session"] in ("retest_due", "retest_in_progress"),
                    virtual_s=16 * 60, what="first rolling retest")
    status = target.wait_for(handset, lambda s: s["session"] == "violation",
                             virtual_s=8 * 60, what="missed retest becomes a violation")
    assert status["alarm"] and status["relay_closed"]  # the engine keeps running
    assert status["violations"] == 1
    handset.bench(messages.BENCH_IGNITION, 0)
    status = handset.status()
    assert not status["alarm"] and status["session"] == "ignition_off"


def test_refused_retest_is_a_violation(target, handset, bench_inputs, fast_clock):
    start_engine(handset)
    target.wait_for(handset, lambda s: s["session"] in ("retest_due", "retest_in_progress"),
                    virtual_s=16 * 60, what="first rolling retest")
    handset.bench(messages.BENCH_REFUSE)
    status = handset.status()
    assert status["session"] == "violation" and status["alarm"] and status["relay_closed"]


def test_recall_runs_out_into_a_lockout_by_the_device_clock(target, handset):
    target.apply(handset, "recall", {"cause": "unpaid_balance", "days": 7})
    status = handset.status()
    assert status["compliance"] == "early_service_recall" and "unpaid_balance" in status["causes"]
    assert 6 * DAY < status["deadline_left_s"] <= 7 * DAY
    target.apply(handset, "set_time", {"time": status["now"] + 8 * DAY})
    status = handset.status()
    assert status["compliance"] == "lockout"


def test_lockout_blocks_every_start(target, handset, bench_inputs):
    target.apply(handset, "lockout", {"cause": "unpaid_balance"})
    state = start_engine(handset)
    assert not handset.status()["relay_closed"]
    assert state["compliance"] == "lockout"


def test_clock_set_back_never_extends_a_deadline(target, handset):
    target.apply(handset, "recall", {"cause": "unpaid_balance", "days": 7})
    before = handset.status()
    target.apply(handset, "set_time", {"time": before["now"] - 2 * DAY})
    after = handset.status()
    assert after["deadline_left_s"] <= before["deadline_left_s"]


def test_keypad_code_unlocks_once(target, handset):
    target.new_service_interval(handset)
    target.apply(handset, "lockout", {"cause": "unpaid_balance"})
    request = handset.code_request("unlock")
    code = codes.answer(target.master, target.serial, request, "unlock")
    result = handset.enter_code(code)
    assert result["action"] == "unlock"
    assert handset.status()["compliance"] == "code_unlock"
    assert nack_code(lambda: handset.enter_code(code)) in (
        errors.CODE_USED, errors.NO_CODE_REQUEST, errors.OVERRIDE_LIMIT)


def test_wrong_keypad_codes_back_off(target, handset):
    target.new_service_interval(handset)
    target.apply(handset, "lockout", {"cause": "unpaid_balance"})
    handset.code_request("unlock")
    # wrong codes until one is refused for the back-off: the waits double (30 s, 60 s, ...),
    # so whatever a code check costs in wall time on a fast-running clock, a wait soon
    # outlasts it (the 8th wrong code waits 480 device seconds)
    seen = []
    while len(seen) < 12 and errors.CODE_BACKOFF not in seen:
        seen.append(nack_code(lambda: handset.enter_code("00000000")))
    assert seen[0] == errors.BAD_CODE and seen[-1] == errors.CODE_BACKOFF, seen
    assert handset.status()["compliance"] == "lockout"


def test_token_unlock_and_the_replay_refused(target, handset):
    target.apply(handset, "lockout", {"cause": "unpaid_balance"})
    token = target.mint(handset, "unlock", {"seconds": 4 * 3600})
    handset.submit_token(token)
    assert handset.status()["compliance"] == "code_unlock"
    records = handset.log_info()["count"]
    # presented again (as after a lost answer): "already applied", nothing changed, no record
    assert nack_code(lambda: handset.submit_token(token)) == errors.ALREADY_APPLIED
    assert handset.status()["compliance"] == "code_unlock"
    assert handset.log_info()["count"] == records


def test_token_for_another_device_and_tampered_tokens_change_nothing(target, handset):
    from host_tools import tokens

    now = handset.status()["now"]
    other = tokens.mint(target.root, "LCI7-OTHER", "lockout", {"cause": "unpaid_balance", "seq": 1}, now=now, ttl=600)
    assert nack_code(lambda: handset.submit_token(other)) == errors.WRONG_DEVICE
    good = target.mint(handset, "lockout", {"cause": "unpaid_balance"})
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0x01
    assert nack_code(lambda: handset.submit_token(bytes(flipped))) in (
        errors.BAD_SIGNATURE, errors.MALFORMED_TOKEN, errors.WRONG_DEVICE, errors.OUT_OF_SCOPE)
    assert handset.status()["compliance"] == "normal"


def test_calibration_on_the_bench(target, handset, bench_inputs):
    visit = Visit(handset, signer_loader=lambda: target.root, say=lambda text: None)
    receipt = visit.calibrate(brac_units(0.040))
    assert receipt["passed"], receipt
    assert receipt["after"]["compliance"] == "normal"


def test_calibration_needs_a_service_session(handset):
    assert nack_code(lambda: handset.calibrate(messages.CAL_AS_FOUND, 400)) == errors.NOT_IN_SERVICE


def test_work_orders_vehicle_switch_and_removal(target, handset):
    result = target.apply(handset, "work_order", {"order": "vehicle_switch", "id": "WO-S", "vehicle": "VIN-2"})
    assert result["action"] == "work_order"
    target.apply(handset, "work_order", {"order": "removal", "id": "WO-R", "vehicle": "VIN-2"})
    assert handset.status()["compliance"] == "removed"


def test_log_download_verifies_its_chain(handset):
    info = handset.log_info()
    records = []
    for _first, page in handset.read_log(info["first"], info["count"]):
        records.extend(page)
    assert len(records) == info["count"]
    anchor = eventlog.GENESIS if info["first"] == 0 else None
    assert eventlog.verify_chain(records, prev_hash=anchor, first_index=info["first"],
                                 head_hash=info["head_hash"]) is None


def test_log_download_to_a_file_with_the_tool_code(target, handset):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "log.jsonl"

        class Borrowed:
            def __getattr__(self, name):
                return getattr(handset, name)

            def close(self):
                pass

        report = download(lambda: Borrowed(), path, say=lambda text: None)
        assert report["chain_ok"]
        assert verify_file(path)["chain_ok"]
        kinds = {json.loads(line)["kind_name"] for line in path.read_text().splitlines()}
        assert "work_order" in kinds or report["first"] > 0


def test_power_cut_never_clears_a_lockout(target, handset):
    if not target.can_cut_power:
        pytest.skip(f"{target.name} cannot cut its own power")
    target.apply(handset, "lockout", {"cause": "unpaid_balance"})
    target.power_cut(handset)
    client = target.client()
    try:
        client.hello()
        assert client.status()["compliance"] == "lockout"
    finally:
        client.close()


def test_garbage_on_the_line_changes_nothing(handset):
    before = handset.status()
    handset.link.transport.write(os.urandom(300).replace(b"\x00", b"\x01") + b"\x00")
    handset.link.transport.write(framing.encode(framing.Frame(0x3E, b"", seq=1)))
    after = handset.status()
    assert after["compliance"] == before["compliance"] and after["causes"] == before["causes"]
    assert after["log_records"] >= before["log_records"]
    assert handset.ping(b"still here") == b"still here"
