"""host_tools/logverify.py and the event-log codec/chain under hypothesis (CPython)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware import eventlog as E
from firmware.ramflash import RamFlash
from host_tools import exitcodes, logverify
from protocol import messages

REPO = Path(__file__).resolve().parents[2]
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

kinds = st.sampled_from(sorted(E.KINDS))
record_args = st.fixed_dictionaries(
    {
        "time": st.integers(0, 0xFFFFFFFF),
        "kind": kinds,
        "brac": st.none() | st.integers(0, 0xFFFE),
        "compliance": st.none() | st.sampled_from(messages.COMPLIANCE_STATES),
        "session": st.none() | st.sampled_from(messages.SESSION_STATES),
        "value": st.integers(-(2**31), 2**31 - 1),
        "detail": st.text(max_size=80),
    }
)


def _log_of(args_list, n=4, segments=64):
    flash = RamFlash()
    log = E.EventLog(flash, records_per_segment=n, max_segments=segments, reserve=0)
    for args in args_list:
        assert log.append(**args) is not None
    return flash, log, log.records(0, log.count, 1 << 30)


# ---- codec and chain properties ------------------------------------------------------------
@SETTINGS
@given(st.integers(0, 0xFFFFFFFF), record_args, st.binary(min_size=8, max_size=8))
def test_encode_decode_round_trip(index, args, prev):
    rec = E.encode_record(index, args["time"], args["kind"], prev, args["brac"], args["compliance"],
                          args["session"], args["value"], args["detail"])
    assert E.OVERHEAD <= len(rec) <= E.MAX_RECORD
    d = E.decode_record(rec)
    assert d["crc_ok"] and E.record_problem(rec) is None
    assert (d["index"], d["time"], d["kind"], d["prev"]) == (index, args["time"], args["kind"], prev)
    assert (d["brac"], d["compliance"], d["session"], d["value"]) == (
        args["brac"], args["compliance"], args["session"], args["value"])
    assert args["detail"].encode().startswith(d["detail"].encode())
    assert d["kind_name"] == E.kind_name(args["kind"])


@SETTINGS
@given(st.lists(record_args, min_size=2, max_size=12), st.data())
def test_any_flipped_bit_breaks_the_chain_or_the_head(args_list, data):
    _, log, recs = _log_of(args_list)
    assert E.verify_chain(recs, E.GENESIS, 0, log.head_hash) is None
    i = data.draw(st.integers(0, len(recs) - 1))
    j = data.draw(st.integers(0, len(recs[i]) - 1))
    bit = data.draw(st.integers(0, 7))
    bad = bytearray(recs[i])
    bad[j] ^= 1 << bit
    tampered = recs[:i] + [bytes(bad)] + recs[i + 1 :]
    problem = E.verify_chain(tampered, E.GENESIS, 0, log.head_hash)
    assert problem is not None and problem[0] == i


@SETTINGS
@given(st.lists(record_args, min_size=3, max_size=12), st.data())
def test_deleting_duplicating_or_swapping_records_is_caught(args_list, data):
    _, log, recs = _log_of(args_list)
    i = data.draw(st.integers(0, len(recs) - 1))
    j = data.draw(st.integers(0, len(recs) - 1).filter(lambda x: x != i))
    deleted = recs[:i] + recs[i + 1 :]
    duplicated = recs[: i + 1] + [recs[i]] + recs[i + 1 :]
    swapped = list(recs)
    swapped[i], swapped[j] = swapped[j], swapped[i]
    for edited in (deleted, duplicated, swapped):
        assert E.verify_chain(edited, E.GENESIS, 0, log.head_hash) is not None


@SETTINGS
@given(st.lists(record_args, min_size=1, max_size=40), st.integers(1, 6))
def test_pages_rebuild_the_log_at_any_segment_size(args_list, n):
    _, log, recs = _log_of(args_list, n=n, segments=64)
    got, start = [], 0
    while start < log.head:
        page = log.records(start, 255, messages.LOG_PAGE_BUDGET)
        assert page and len(messages.pack_records(page)) <= messages.LOG_PAGE_BUDGET
        got += page
        start += len(page)
    assert got == recs


# ---- the document and the code agree ----------------------------------------------------------
def test_the_type_table_in_docs_matches_the_code():
    text = (REPO / "docs" / "eventlog.md").read_text()
    section = text.split("## Record types", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (\d+) \| (\w+) \| ([^|]+) \|", section, re.M)
    assert {int(number): name for number, name, _ in rows} == {number: E.kind_name(number) for number in E.KINDS}
    assert all(meaning.strip() for _, _, meaning in rows)


# ---- loading -----------------------------------------------------------------------------------
def _sample_log():
    flash = RamFlash()
    log = E.EventLog(flash, records_per_segment=4, max_segments=8, reserve=0)
    t = 1000
    script = [
        (E.BOOT, None, 0, "0.1.0"), (E.START_ATTEMPT, None, 0, ""), (E.TEST_FAIL, 412, 0, ""),
        (E.TEMP_LOCKOUT, None, 300, ""), (E.START_ATTEMPT, None, 0, ""), (E.TEST_PASS, 80, 0, ""),
        (E.ENGINE_START, None, 0, "test passed"), (E.RETEST_DUE, None, 360, ""),
        (E.RETEST_PASS, 20, 0, ""), (E.RETEST_DUE, None, 360, ""), (E.RETEST_MISSED, None, 0, ""),
        (E.VIOLATION, None, 1, "retest missed"), (E.ENGINE_STOP, None, 0, ""),
        (E.SERVICE_OPEN, None, 0, ""), (E.CAL_AS_FOUND, 352, 350, "within"),
        (E.CAL_PASS, 352, 1000, ""), (E.SERVICE_CLOSE, None, 0, ""),
        (E.START_ATTEMPT, None, 0, ""), (E.TEST_PASS, 0, 0, ""), (E.ENGINE_START, None, 0, ""),
        (E.TAMPER, None, E.TAMPER_SENSOR_DISCONNECTED, "sensor"), (E.ENGINE_STOP, None, 0, ""),
    ]
    for kind, brac, value, detail in script:
        t += 60
        log.append(t, kind, brac, "normal", "ignition_off", value, detail)
    return flash, log, log.records(0, log.count, 1 << 30)


def test_packed_file_folder_of_segments_jsonl_and_csv_give_the_same_records(tmp_path):
    flash, log, recs = _sample_log()
    packed = tmp_path / "dump.bin"
    packed.write_bytes(messages.pack_records(recs))
    folder = tmp_path / "flash"
    folder.mkdir()
    for name in flash.names():
        (folder / name).write_bytes(flash.read(name))
    (folder / "log-mark").write_bytes(b"not a segment")
    jsonl, csvfile = tmp_path / "log.jsonl", tmp_path / "log.csv"
    assert logverify.write_jsonl(recs, jsonl) == len(recs)
    assert logverify.write_csv(recs, csvfile) == len(recs)
    for path in (packed, folder, jsonl, csvfile):
        assert logverify.load_records(path) == recs, path
    row = json.loads(jsonl.read_text().splitlines()[2])
    assert row["kind_name"] == "test_fail" and row["brac"] == 412 and bytes.fromhex(row["raw"]) == recs[2]


def test_torn_packed_file_and_missing_inputs_are_one_line_errors(tmp_path):
    _, _, recs = _sample_log()
    torn = tmp_path / "torn.bin"
    torn.write_bytes(messages.pack_records(recs)[:-5])
    with pytest.raises(logverify.LogInputError, match="runs past the end"):
        logverify.load_records(torn)
    with pytest.raises(logverify.LogInputError, match="cannot read"):
        logverify.load_records(tmp_path / "nothing.bin")
    with pytest.raises(logverify.LogInputError, match="no log-"):
        logverify.load_records(tmp_path)
    with pytest.raises(logverify.LogInputError, match="16 hex digits"):
        logverify.parse_hash("abcd", "--prev")
    with pytest.raises(logverify.LogInputError, match="16 hex digits"):
        logverify.parse_hash("zz" * 8, "--prev")


def test_undecodable_record_still_gets_a_row_with_its_bytes():
    rows = logverify.rows([b"\x01\x02"])
    assert rows[0]["raw"] == "0102" and rows[0]["index"] is None


# ---- verify ------------------------------------------------------------------------------------
def test_verify_reports_anchors_and_where_it_breaks():
    _, log, recs = _sample_log()
    report = logverify.verify(recs, head_hash=log.head_hash)
    assert report["chain_ok"] and report["anchored"] and report["head_checked"]
    assert (report["first"], report["last"], report["records"]) == (0, len(recs) - 1, len(recs))
    assert report["head_hash"] == log.head_hash.hex()
    # a later download, anchored to the one before it
    report = logverify.verify(recs[5:], prev_hash=E.record_hash(recs[4]))
    assert report["chain_ok"] and report["first"] == 5
    assert not logverify.verify(recs[5:], prev_hash=E.record_hash(recs[3]))["chain_ok"]
    assert logverify.verify(recs[5:])["anchored"] is False
    broken = logverify.verify(recs[:7] + recs[8:])
    assert (broken["chain_ok"], broken["broken_at"], broken["position"]) == (False, 7, 7)
    tail = logverify.verify(recs[:-1], head_hash=log.head_hash)
    assert not tail["chain_ok"] and "head hash" in tail["chain_problem"]


# ---- the WAC summary -----------------------------------------------------------------------------
def test_summary_counts_what_wac_308_107_080_asks_for():
    _, _, recs = _sample_log()
    s = logverify.summary(recs)
    assert [(t["brac"], t["passed"]) for t in s["start_tests"]] == [(412, False), (80, True), (0, True)]
    assert [(t["brac"], t["passed"]) for t in s["retests"]] == [(20, True)]
    assert s["tamper_events"] == 1 and s["retest_avoidance"] == 1 and s["circumvention_attempts"] == 0
    assert s["statement"] == "tamper or circumvention attempts were recorded"
    assert s["last_service_index"] == 16 and s["events_since_last_service"] == 5
    assert s["vehicle_starts"] == 2 and s["failures_to_start"] == 1 and s["violations"] == 1
    assert s["operated_seconds"] == 6 * 60 + 2 * 60
    # before the tamper: recalibrated, but a violation was recorded
    assert logverify.summary(recs[:17])["statement"] == (
        "the device has been recalibrated; violations were recorded")
    clean = [r for r in recs[:17] if E.decode_record(r)["kind"] != E.VIOLATION]
    assert logverify.summary(clean)["statement"] == (
        "the device has been recalibrated and no violations were found")
    bad = bytearray(recs[2])
    bad[-1] ^= 1
    assert logverify.summary([bytes(bad)] + recs[3:])["unreadable"] == 1


# ---- command line ----------------------------------------------------------------------------------
def test_cli_exit_codes_outputs_and_json(tmp_path, capsys):
    _, log, recs = _sample_log()
    good = tmp_path / "good.bin"
    good.write_bytes(messages.pack_records(recs))
    out_jsonl, out_csv = tmp_path / "o.jsonl", tmp_path / "o.csv"
    code = logverify.main([str(good), "--head", log.head_hash.hex(), "--jsonl", str(out_jsonl),
                           "--csv", str(out_csv), "--summary"])
    text = capsys.readouterr().out
    assert code == exitcodes.OK
    assert "chain verified (anchored, head hash matches)" in text and "vehicle starts    2" in text
    assert logverify.load_records(out_jsonl) == recs == logverify.load_records(out_csv)

    tampered = bytearray(messages.pack_records(recs))
    tampered[40] ^= 0x10
    bad = tmp_path / "bad.bin"
    bad.write_bytes(bytes(tampered))
    assert logverify.main([str(bad), "--json"]) == exitcodes.VERIFY_FAILED
    report = json.loads(capsys.readouterr().out)
    assert report["chain_ok"] is False and report["broken_at"] == 1

    assert logverify.main([str(tmp_path / "missing.bin")]) == exitcodes.USAGE
    err = capsys.readouterr().err
    assert err.startswith("logverify: cannot read") and err.count("\n") == 1
    assert logverify.main([str(good), "--prev", "xyz"]) == exitcodes.USAGE


def test_cli_joins_consecutive_files_in_order(tmp_path, capsys):
    _, log, recs = _sample_log()
    first, second = tmp_path / "a.bin", tmp_path / "b.bin"
    first.write_bytes(messages.pack_records(recs[:10]))
    second.write_bytes(messages.pack_records(recs[10:]))
    assert logverify.main([str(first), str(second), "--head", log.head_hash.hex()]) == exitcodes.OK
    assert logverify.main([str(second), str(first)]) == exitcodes.VERIFY_FAILED
    capsys.readouterr()
