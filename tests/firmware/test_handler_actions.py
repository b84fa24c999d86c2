"""The device side of the protocol, continued (both runtimes): TOKEN, CODE_REQUEST /
CODE_ENTER, CALIBRATE, PING, BENCH (only with the bench capability), EVENT frames, and bad
input that changes nothing."""

from firmware import eventlog
from firmware.hal import BreathSample
from protocol import errors, framing, messages
from tests.firmware.authority_double import answer, mint
from tests.firmware.device_rig import Rig
from tests.firmware.test_handler import Host


def test_tokens_and_their_nacks():
    rig = Rig()
    host = Host(rig)
    host.hello()
    reply = host.ok(messages.TOKEN, token=mint("lockout", {"cause": "unpaid_balance", "seq": 1}, key="billing"))
    assert messages.ACTIONS[reply["action"]] == "lockout"
    assert rig.compliance == "lockout"
    assert host.nack(messages.TOKEN, token=mint("unlock", {"seconds": 60}, sig="bad")) == errors.BAD_SIGNATURE
    assert host.nack(messages.TOKEN, token=b"") == errors.MALFORMED_TOKEN
    assert rig.compliance == "lockout"
    # a session-bound token must carry this session's nonce: the HELLO nonce
    nonce = rig.device.link.nonce
    reply = host.ok(messages.TOKEN, token=mint("set_time", {"time": rig.clock.wall + 5}, nonce=nonce))
    assert messages.ACTIONS[reply["action"]] == "set_time"
    host.hello()  # a new session: the old nonce is dead
    assert host.nack(messages.TOKEN, token=mint("set_time", {"time": 1}, nonce=nonce)) == errors.SESSION_MISMATCH


def test_keypad_codes_over_the_wire():
    rig = Rig()
    host = Host(rig)
    assert host.nack(messages.CODE_REQUEST, action=1) == errors.NOT_PERMITTED  # not locked out
    assert host.nack(messages.CODE_REQUEST, action=200) == errors.BAD_ARGUMENT
    assert host.nack(messages.CODE_REQUEST, action=messages.ACTIONS.index("service")) == errors.BAD_ARGUMENT
    rig.token("lockout", {"cause": "unpaid_balance"}, key="billing")
    request = host.ok(messages.CODE_REQUEST, action=1)["request"]
    assert rig.screen.lines == ("CODE REQUEST", request)
    assert host.nack(messages.CODE_ENTER, code="x1") == errors.BAD_ARGUMENT
    assert host.nack(messages.CODE_ENTER, code="00000000") == errors.BAD_CODE
    reply = host.ok(messages.CODE_ENTER, code=answer(request, "unlock"))
    assert messages.ACTIONS[reply["action"]] == "unlock" and reply["until"] == rig.clock.wall + 4 * 3600
    assert rig.compliance == "code_unlock"


def test_calibration_over_the_wire():
    rig = Rig()
    host = Host(rig)
    assert host.nack(messages.CALIBRATE, step=messages.CAL_AS_FOUND, reference=400) == errors.NOT_IN_SERVICE
    host.hello()
    host.ok(messages.TOKEN, token=mint("service", {}, nonce=rig.device.link.nonce))
    steps = ((messages.CAL_AS_FOUND, 400, 380), (messages.CAL_ADJUST, 400, 380), (messages.CAL_CHECK, 400, 381), (messages.CAL_CHECK, 400, 379))
    for step, reference, raw in steps:
        rig.device.breath(BreathSample(1000, 200, raw))  # the dry gas through the mouthpiece
        reply = host.ok(messages.CALIBRATE, step=step, reference=reference)
        assert reply["step"] == step and reply["passed"] == 1, reply
    reply = host.ok(messages.CALIBRATE, step=messages.CAL_FINISH, reference=0)
    assert reply["passed"] == 1 and rig.device.gain == 10526
    assert host.nack(messages.CALIBRATE, step=messages.CAL_CHECK, reference=400) == errors.CAL_SEQUENCE


def test_ping_echoes():
    rig = Rig()
    assert Host(rig).ok(messages.PING, data=b"\x00abc")["data"] == b"\x00abc"


def test_bench_only_on_a_bench_unit():
    rig = Rig()
    host = Host(rig)
    assert host.nack(messages.BENCH, input=messages.BENCH_IGNITION, a=1, b=0, c=0) == errors.NOT_SUPPORTED
    assert rig.session == "ignition_off"
    bench = Rig(caps=messages.CAP_BENCH)
    host = Host(bench)
    assert host.hello()["caps"] & messages.CAP_BENCH
    reply = host.ok(messages.BENCH, input=messages.BENCH_IGNITION, a=1, b=0, c=0)
    assert messages.SESSION_STATES[reply["session"]] == "test_requested"
    bench.advance(5)
    reply = host.ok(messages.BENCH, input=messages.BENCH_BLOW, a=250, b=1500, c=345)
    assert messages.SESSION_STATES[reply["session"]] == "temporary_lockout"
    assert [r["brac"] for r in bench.records() if r["kind"] == eventlog.TEST_FAIL] == [250]
    assert host.nack(messages.BENCH, input=messages.BENCH_BLOW, a=-1, b=1500, c=345) == errors.BAD_ARGUMENT
    assert host.nack(messages.BENCH, input=messages.BENCH_KEY, a=7, b=0, c=0) == errors.BAD_ARGUMENT
    assert host.nack(messages.BENCH, input=messages.BENCH_TAMPER, a=9, b=0, c=0) == errors.BAD_ARGUMENT
    assert host.nack(messages.BENCH, input=99, a=0, b=0, c=0) == errors.BAD_ARGUMENT
    assert host.nack(messages.BENCH, input=messages.BENCH_POWER_CUT, a=1, b=0, c=0) == errors.NOT_SUPPORTED
    assert not bench.device.reboot_requested
    host.ok(messages.BENCH, input=messages.BENCH_TAMPER, a=1, b=0, c=0)
    assert bench.compliance == "early_service_recall"


def test_a_bench_power_cut_is_left_to_the_simulator():
    rig = Rig(caps=messages.CAP_BENCH | messages.CAP_POWER_CUT)
    host = Host(rig)
    host.ok(messages.BENCH, input=messages.BENCH_POWER_CUT, a=1, b=0, c=0)
    assert rig.device.reboot_requested


def test_state_changes_are_sent_as_events_once_a_host_said_hello():
    rig = Rig()
    host = Host(rig)
    rig.ignition(True)
    host.replies()
    assert host.events == []  # nobody listening yet
    host.hello()
    rig.advance(5)
    rig.blow(300)
    host.replies()
    kinds = [e["kind"] for e in host.events]
    assert messages.EV_TEST in kinds and messages.EV_STATE in kinds and messages.EV_DISPLAY in kinds
    state = [e for e in host.events if e["kind"] == messages.EV_STATE][-1]
    assert messages.SESSION_STATES[state["session"]] == "temporary_lockout"
    assert "test_requested>temporary_lockout" in state["detail"]


def test_bad_input_changes_nothing():
    rig = Rig()
    host = Host(rig)
    before = (rig.device._state(), rig.compliance, rig.session)
    rig.device.receive(b"\x00garbage\x00\x01\x02\x03\x00", rig.clock.ms)
    assert host.replies() == []
    rig.device.receive(framing.encode(framing.Frame(messages.STATUS, b"\x01", 9)), rig.clock.ms)
    assert host.replies()[0][1]["code"] == errors.BAD_PAYLOAD
    rig.device.receive(framing.encode(framing.Frame(0x6E, b"", 10)), rig.clock.ms)
    assert host.replies()[0][1]["code"] == errors.UNKNOWN_TYPE
    assert host.nack(messages.CALIBRATE, step=7, reference=400) == errors.NOT_IN_SERVICE
    assert (rig.device._state(), rig.compliance, rig.session) == before
