"""The device keeps the promises of protocol/SPEC.md, over real frames (both runtimes): the
LOG_READ window is capped at the one HELLO announced, BENCH refuses arguments that must be 0,
a CODE_ENTER refusal for a malformed code is accounted like every other refusal, and a
new connection on the line starts with a fresh frame decoder."""

from firmware import eventlog
from protocol import errors, framing, messages
from tests.firmware.device_rig import Rig
from tests.firmware.test_handler import Host


def _log_read(host, start, count, window):
    host.seq += 1
    payload = messages.encode(
        messages.request_layout(messages.LOG_READ), {"start": start, "count": count, "window": window}
    )
    rig = host.rig
    rig.device.receive(framing.encode(framing.Frame(messages.LOG_READ, payload, host.seq)), rig.clock.ms)
    rig.device.step(rig.clock.ms)  # the loop's poll: pages the window allows
    return host.seq, host.replies()


def _make_records(rig, pages):
    """Enough records for `pages` full pages (each start-and-stop writes a few records)."""
    while rig.device.log.count < pages * 16:
        rig.ignition(True)
        rig.ignition(False)


def test_log_read_sends_no_more_pages_than_the_hello_window():
    rig = Rig(log_segments=64)
    host = Host(rig)
    _make_records(rig, 8)
    announced = host.hello()["window"]
    assert 1 <= announced < 16
    seq, pages = _log_read(host, 0, rig.device.log.count, 16)
    assert len(pages) == announced, (len(pages), announced)
    assert all(p[0] == messages.LOG_READ | messages.REPLY and p[2] & framing.F_MORE for p in pages)
    # one acknowledgement lets exactly one more page out
    end = 0
    for _type, fields, _flags in pages[:1]:
        end = fields["first"] + fields["n"]
    ack = messages.encode(messages.request_layout(messages.LOG_ACK), {"next": end})
    rig.device.receive(framing.encode(framing.Frame(messages.LOG_ACK, ack, seq)), rig.clock.ms)
    rig.device.step(rig.clock.ms)
    assert len(host.replies()) == 1


def test_log_read_window_zero_is_one_page():
    rig = Rig(log_segments=64)
    host = Host(rig)
    _make_records(rig, 3)
    _seq, pages = _log_read(host, 0, rig.device.log.count, 0)
    assert len(pages) == 1


def _bench_state(rig):
    return (rig.device._state(), rig.compliance, rig.session, rig.device.reboot_requested)


def test_bench_refuses_arguments_that_must_be_zero_and_changes_nothing():
    rig = Rig(caps=messages.CAP_BENCH | messages.CAP_POWER_CUT)
    host = Host(rig)
    bad = (
        (messages.BENCH_IGNITION, 1, 1, 0),
        (messages.BENCH_IGNITION, 1, 0, -1),
        (messages.BENCH_IGNITION, 2, 0, 0),  # a is 0 or 1
        (messages.BENCH_KEY, ord("A"), 5, 0),
        (messages.BENCH_KEY, ord("1"), 0, 7),
        (messages.BENCH_POWER_CUT, 1, 1, 0),
        (messages.BENCH_POWER_CUT, 0, 0, 0),  # a is 1
        (messages.BENCH_TAMPER, 1, 0, 3),
        (messages.BENCH_TAMPER, 2, 9, 0),
        (messages.BENCH_REFUSE, 1, 0, 0),
        (messages.BENCH_REFUSE, 0, 0, 1),
    )
    for kind, a, b, c in bad:
        before = _bench_state(rig)
        code = host.nack(messages.BENCH, input=kind, a=a, b=b, c=c)
        assert code == errors.BAD_ARGUMENT, (kind, a, b, c, code)
        assert _bench_state(rig) == before, (kind, a, b, c)
    # the same inputs with their unused arguments 0 are accepted
    reply = host.ok(messages.BENCH, input=messages.BENCH_IGNITION, a=1, b=0, c=0)
    assert messages.SESSION_STATES[reply["session"]] == "test_requested"
    host.ok(messages.BENCH, input=messages.BENCH_REFUSE, a=0, b=0, c=0)
    host.ok(messages.BENCH, input=messages.BENCH_POWER_CUT, a=1, b=0, c=0)
    assert rig.device.reboot_requested


def _code_refusals(rig):
    """(count, detail) of the keypad-code refusal summaries in the log, oldest first."""
    out = []
    for record in rig.records():
        if record["kind"] == eventlog.REFUSALS and record["detail"].startswith("code "):
            out.append((record["value"], record["detail"][:9]))
    return out


def test_code_enter_with_a_malformed_code_is_accounted_like_every_refusal():
    rig = Rig()
    host = Host(rig)
    rig.token("lockout", {"cause": "unpaid_balance"}, key="billing")
    host.ok(messages.CODE_REQUEST, action=1)
    assert _code_refusals(rig) == []
    assert host.nack(messages.CODE_ENTER, code="00000000") == errors.BAD_CODE
    assert host.nack(messages.CODE_ENTER, code="12x4") == errors.BAD_ARGUMENT
    assert host.nack(messages.CODE_ENTER, code="1" * 17) == errors.BAD_ARGUMENT
    rig.advance(120)  # the next summary is due a minute after the first
    # the first refusal at once, then the two malformed codes counted like any refusal
    assert _code_refusals(rig) == [(1, "code 0x20"), (2, "code 0x06")]
    assert rig.compliance == "lockout"


def test_a_new_connection_starts_with_a_fresh_decoder():
    rig = Rig()
    host = Host(rig)
    ping = framing.encode(framing.Frame(messages.PING, b"new", 7))
    # the old host left half a frame on the line, and the new one sends no leading 0x00
    rig.device.receive(ping[:9], rig.clock.ms)
    rig.device.link.line_reset()
    rig.device.receive(ping, rig.clock.ms)
    replies = host.replies()
    assert len(replies) == 1 and replies[0][1]["data"] == b"new", replies


def test_calibrate_refuses_an_unknown_step_before_judging_the_sequence():
    from tests.firmware.authority_double import mint

    rig = Rig()
    host = Host(rig)
    assert host.nack(messages.CALIBRATE, step=9, reference=400) == errors.NOT_IN_SERVICE
    host.hello()
    host.ok(messages.TOKEN, token=mint("service", {}, nonce=rig.device.link.nonce))
    before = rig.device._state()
    assert host.nack(messages.CALIBRATE, step=9, reference=400) == errors.BAD_ARGUMENT
    assert host.nack(messages.CALIBRATE, step=messages.CAL_CHECK, reference=400) == errors.CAL_SEQUENCE
    assert rig.device._state() == before


def test_code_request_refuses_a_non_code_action_before_the_state_checks():
    rig = Rig(install=False)  # removed: REMOVED would answer a code action
    host = Host(rig)
    for action in (0, 2, 3, 4, 5, 6, 8, 9, 255):
        assert host.nack(messages.CODE_REQUEST, action=action) == errors.BAD_ARGUMENT, action
    assert host.nack(messages.CODE_REQUEST, action=1) == errors.REMOVED
