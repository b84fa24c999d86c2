"""Keyless input never consumes the event log or changes compliance (both runtimes).

Refused tokens and keypad codes arrive through the real protocol handler (TOKEN and
CODE_ENTER frames) as fast as a USB cable carries them. They are counted in RAM and summed
up in `refusals` records (firmware/refusals.py): at once for the first after a quiet spell,
then at most one per source a minute, the gap doubling while the flood goes on; never from
the log's reserve and never down to the log's log_full threshold. A legitimate lockout and
unlock after the flood are still logged.

Malformed frames (bad COBS, CRC, length), dropped by the link without a reply, are counted
and summed up the same way (source "frame").

CPython floods the default log (4,096 records) with 4,100 malformed tokens, which used to
fill it and recall the unit for log_full; MicroPython floods a 64-record log with 100.
"""

import sys

from firmware import eventlog
from firmware.config import Config
from protocol import errors, messages
from tests.firmware.attack_rig import Host
from tests.firmware.device_rig import DAY, Rig

FULL = sys.implementation.name != "micropython"


def _rig(config=None):
    if FULL:
        return Rig(config=config), 4100
    return Rig(config=config, log_segments=16), 100


def _summaries(rig, start, source):
    out = []
    for r in rig.records(start):
        if r["kind"] == eventlog.REFUSALS and r["detail"].startswith(source + " "):
            out.append(r)
    return out


def _legitimate_lockout_and_unlock(rig):
    head = rig.device.log.head
    rig.token("lockout", {"cause": "unpaid_balance"}, key="billing")
    assert rig.compliance == "lockout"
    rig.token("unlock", {"seconds": 3600})
    assert rig.compliance == "code_unlock"
    kinds = [r["kind_name"] for r in rig.records(head)]
    for kind in ("cause_set", "compliance_change", "token_accepted", "unlock_start"):
        assert kind in kinds, (kind, kinds)


def test_a_flood_of_malformed_tokens_leaves_the_log_and_compliance_alone():
    rig, n = _rig()
    host = Host(rig)
    host.hello()
    log = rig.device.log
    head, free = log.head, log.free_pct()
    for i in range(n):
        nack = host.nack(messages.TOKEN, token=b"\xff" + str(i).encode())
        assert nack[0] == errors.MALFORMED_TOKEN, nack
    assert rig.compliance == "normal" and rig.device.causes == 0
    assert log.head - head <= 2 and log.free_pct(-2) >= free, (log.head - head, log.free_pct())
    assert [r["value"] for r in _summaries(rig, head, "token")] == [1]  # the first, at once
    rig.advance(60)  # a minute on: the rest of the burst, in one record with its count
    summaries = _summaries(rig, head, "token")
    assert [r["value"] for r in summaries] == [1, n - 1], summaries
    assert summaries[-1]["detail"].startswith("token 0x%02x " % errors.MALFORMED_TOKEN)
    assert rig.compliance == "normal" and rig.device.causes == 0
    assert "log_full" not in rig.kinds() and "cause_set" not in [r["kind_name"] for r in rig.records(head)]
    _legitimate_lockout_and_unlock(rig)


def test_a_flood_kept_up_writes_ever_fewer_records():
    rig, n = _rig()
    host = Host(rig)
    head = rig.device.log.head
    for _minute in range(24 * 60):  # a day of refusals, a burst every minute
        host.nack(messages.TOKEN, token=b"\xff")
        rig.advance(60)
    summaries = _summaries(rig, head, "token")
    waiting = rig.device.refusals.pending("token")[0]  # counted, its record not due yet
    assert sum([r["value"] for r in summaries]) + waiting == 24 * 60
    assert len(summaries) <= 14, len(summaries)  # the gap doubled: 1, 2, 4 ... minutes
    gaps = [summaries[i + 1]["time"] - summaries[i]["time"] for i in range(len(summaries) - 1)]
    assert min(gaps) >= 60, gaps
    assert rig.compliance == "normal"


def test_a_keypad_code_flood_is_counted_not_logged_one_by_one():
    rig, n = _rig(Config(overrides_per_service=2))
    rig.token("lockout", {"cause": "unpaid_balance"}, key="billing")
    host = Host(rig)
    host.ok(messages.CODE_REQUEST, action=messages.ACTIONS.index("unlock"))
    head = rig.device.log.head
    codes = []
    for i in range(n // 4):
        codes.append(host.nack(messages.CODE_ENTER, code="%08d" % i)[0])
    assert codes[:3] == [errors.BAD_CODE] * 3 and codes[-1] == errors.CODE_BACKOFF, codes[:5]
    added = rig.records(head)
    assert [r["kind"] for r in added] == [eventlog.REFUSALS], added
    rig.advance(60)
    assert sum([r["value"] for r in _summaries(rig, head, "code")]) == n // 4
    assert rig.compliance == "lockout"


def test_refusals_never_take_the_log_to_its_log_full_threshold_or_its_reserve():
    rig = Rig(log_segments=16)  # 64 records, 4 of them the reserve
    log = rig.device.log
    limit = rig.config.log_full_pct
    while log.free_pct(4) > limit:  # drive the log to a few records above the threshold
        rig.ignition(True)
        rig.ignition(False)
    assert rig.device.causes == 0
    host = Host(rig)
    for _burst in range(6):
        for _i in range(20):
            host.nack(messages.TOKEN, token=b"\xff")
        rig.advance(DAY)
    assert log.free_pct(1) > limit - 2 and rig.device.causes == 0 and rig.compliance == "normal"
    assert "log_full" not in rig.kinds()
    _legitimate_lockout_and_unlock(rig)


def test_malformed_frames_are_counted_and_summed_up():
    rig, n = _rig()
    head = rig.device.log.head
    for i in range(n // 4):  # frames whose CRC does not match, each ended by the delimiter
        rig.device.receive(b"\x05garb\x01" + bytes([i % 200 + 1]) + b"\x00", rig.clock.ms)
    assert rig.device.log.head - head == 1
    rig.advance(60)
    summaries = _summaries(rig, head, "frame")
    assert sum([r["value"] for r in summaries]) == n // 4 and len(summaries) == 2, summaries
    assert rig.compliance == "normal" and rig.device.causes == 0
