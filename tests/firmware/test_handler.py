"""The device side of every protocol message, over real frames (both runtimes): HELLO with a
fresh nonce, STATUS, LOG_INFO, LOG_READ pages, PROVISION once, CONFIG_GET, TOKEN,
CODE_REQUEST / CODE_ENTER, CALIBRATE, PING, BENCH (only with the bench capability), EVENT
frames, and bad input that changes nothing."""

import json

from firmware import eventlog
from firmware.config import DEFAULTS, Config
from firmware.hal import BreathSample
from protocol import errors, framing, messages
from tests.firmware.authority_double import ROOT_KEY, SECRET, SERIAL, answer, mint
from tests.firmware.device_rig import Rig

DEFAULTS_VALUES = [(key, DEFAULTS[key][0]) for key in DEFAULTS] + [("jurisdiction", "default")]


class Host:
    """A minimal host: frames out through device.receive, frames in from the serial writes."""

    def __init__(self, rig):
        self.rig = rig
        self.decoder = framing.Decoder()
        self.seq = 0
        self.events = []
        rig.written[:] = []

    def _frames(self):
        out = []
        for chunk in self.rig.written:
            out.extend(self.decoder.feed(chunk))
        self.rig.written[:] = []
        return out

    def send(self, type_, **fields):
        self.seq += 1
        payload = messages.encode(messages.request_layout(type_), fields)
        self.rig.device.receive(framing.encode(framing.Frame(type_, payload, self.seq)), self.rig.clock.ms)
        return self.replies()

    def replies(self):
        out = []
        for frame in self._frames():
            if frame.is_event:
                self.events.append(messages.decode(messages.EVENT_LAYOUT, frame.payload))
                continue
            layout = messages.layout_for(frame.type, frame.flags)
            out.append((frame.type, messages.decode(layout, frame.payload), frame.flags))
        return out

    def request(self, type_, **fields):
        replies = self.send(type_, **fields)
        assert len(replies) == 1, replies
        return replies[0][0], replies[0][1]

    def ok(self, type_, **fields):
        reply_type, fields = self.request(type_, **fields)
        assert reply_type == type_ | messages.REPLY, (reply_type, fields)
        return fields

    def nack(self, type_, **fields):
        reply_type, fields = self.request(type_, **fields)
        assert reply_type == messages.NACK, (reply_type, fields)
        return fields["code"]

    def hello(self):
        return self.ok(messages.HELLO, proto_min=1, proto_max=1, host_nonce=b"h" * 8)


def test_hello_gives_a_fresh_nonce_per_session():
    rig = Rig()
    host = Host(rig)
    first = host.hello()
    second = host.hello()
    assert first["serial"] == SERIAL and first["proto"] == 1 and first["board"] == "test"
    assert first["max_payload"] == 512 and 1 <= first["window"] <= 16
    assert len(first["nonce"]) == 16 and first["nonce"] != second["nonce"]
    assert rig.device.link.nonce == second["nonce"]
    caps = first["caps"]
    assert caps & messages.CAP_TOKENS and caps & messages.CAP_CALIBRATE and caps & messages.CAP_KEYPAD
    assert not caps & (messages.CAP_BENCH | messages.CAP_FACTORY)
    assert host.nack(messages.HELLO, proto_min=2, proto_max=3, host_nonce=b"x" * 8) == errors.BAD_VERSION


def test_a_blank_unit_is_provisioned_once():
    rig = Rig(provision=False, install=False)
    host = Host(rig)
    hello = host.hello()
    assert hello["serial"] == "" and hello["caps"] & messages.CAP_FACTORY
    assert host.nack(messages.TOKEN, token=b"x") == errors.NOT_PROVISIONED
    assert host.nack(messages.CODE_REQUEST, action=1) == errors.NOT_PROVISIONED
    assert host.ok(messages.STATUS)["line1"] == "FACTORY MODE"
    assert host.nack(messages.PROVISION, serial="bad serial!", root_key=ROOT_KEY, device_secret=SECRET) == errors.BAD_ARGUMENT
    assert not rig.device.provisioned
    assert host.ok(messages.PROVISION, serial=SERIAL, root_key=ROOT_KEY, device_secret=SECRET) == {"serial": SERIAL}
    assert host.nack(messages.PROVISION, serial="LCI-9", root_key=ROOT_KEY, device_secret=SECRET) == errors.ALREADY_PROVISIONED
    assert not host.hello()["caps"] & messages.CAP_FACTORY
    rig.reboot()
    assert rig.device.provisioned and rig.device.serial == SERIAL
    assert "provisioned" in rig.kinds()


def test_status_reports_the_state_deadlines_and_display():
    rig = Rig()
    host = Host(rig)
    rig.token("recall", {"cause": "unpaid_balance", "days": 7}, key="billing")
    status = host.ok(messages.STATUS)
    assert messages.COMPLIANCE_STATES[status["compliance"]] == "early_service_recall"
    assert messages.SESSION_STATES[status["session"]] == "ignition_off"
    assert messages.bits_to_names(status["causes"], messages.CAUSES) == ["unpaid_balance"]
    assert status["now"] == rig.clock.wall
    assert status["deadline_left"] == 7 * 86400 and status["deadline"] == status["now"] + 7 * 86400
    assert status["service_due"] == rig.device.service_due[0]
    assert (status["line1"], status["line2"]) == ("SERVICE DUE", "7 DAYS")
    assert status["log_count"] == rig.device.log.count and 0 < status["log_free_pct"] <= 100
    assert status["relay"] == 0 and status["alarm"] == 0 and status["override_left"] == 0


def test_log_info_and_a_log_read_stream():
    rig = Rig()
    host = Host(rig)
    info = host.ok(messages.LOG_INFO)
    log = rig.device.log
    assert (info["first"], info["count"], info["capacity"]) == (log.first, log.count, log.capacity)
    assert info["head_hash"] == log.head_hash
    replies = host.send(messages.LOG_READ, start=0, count=info["count"], window=4)
    records = []
    for type_, fields, _flags in replies:
        assert type_ == messages.LOG_READ | messages.REPLY
        records.extend(messages.split_records(fields["records"]))
    assert len(records) == info["count"]
    assert eventlog.verify_chain(records, eventlog.GENESIS, 0, info["head_hash"]) is None
    assert eventlog.decode_record(records[0])["kind"] == eventlog.BOOT
    assert host.nack(messages.LOG_READ, start=info["count"] + 5, count=1, window=1) == errors.LOG_RANGE


def test_config_get_is_the_configuration_as_json():
    rig = Rig(config=Config("california", recall_s=3 * 86400))
    host = Host(rig)
    config = json.loads(host.ok(messages.CONFIG_GET)["config"])
    assert config == {"jurisdiction": "california", "set_point": 300, "recall_s": 3 * 86400}
    full = dict(DEFAULTS_VALUES)
    full.update(config)
    assert full == rig.config.as_dict()  # absent keys have their defaults


def test_config_get_always_fits_one_payload():
    overrides = {}
    for key in DEFAULTS:
        high = DEFAULTS[key][2]
        if DEFAULTS[key][0] != high:
            overrides[key] = high
    wire = Config(**overrides).wire_json()
    assert len(wire) <= 510 and json.loads(wire)["more"] is True


def _download(host, start, count):
    """Stream records [start, start+count) with LOG_ACKs; the records received."""
    host.seq += 1
    seq = host.seq
    payload = messages.encode(messages.request_layout(messages.LOG_READ), {"start": start, "count": count, "window": 4})
    rig = host.rig
    rig.device.receive(framing.encode(framing.Frame(messages.LOG_READ, payload, seq)), rig.clock.ms)
    records = []
    while True:
        pages = host.replies()
        if not pages:
            break
        for _type, fields, _flags in pages:
            records.extend(messages.split_records(fields["records"]))
        ack = messages.encode(messages.request_layout(messages.LOG_ACK), {"next": start + len(records)})
        rig.device.receive(framing.encode(framing.Frame(messages.LOG_ACK, ack, seq)), rig.clock.ms)
    return records


def test_a_service_visit_releases_the_log_the_technician_downloaded():
    rig = Rig(log_segments=8)  # a 32-record log
    host = Host(rig)
    for _ in range(6):
        rig.ignition(True)
        rig.ignition(False)
    log = rig.device.log
    head = log.head
    records = _download(host, 0, head)
    assert len(records) == head and log.mark == 0
    host.hello()
    nonce = rig.device.link.nonce
    host.ok(messages.TOKEN, token=mint("service", {}, nonce=nonce))
    too_far = {"next_service": rig.clock.wall + 86400, "downloaded": log.head + 1}
    assert host.nack(messages.TOKEN, token=mint("service_close", too_far, nonce=nonce)) == errors.BAD_ARGUMENT
    assert rig.compliance == "service" and log.mark == 0
    args = {"next_service": rig.clock.wall + 86400, "downloaded": head}
    host.ok(messages.TOKEN, token=mint("service_close", args, nonce=nonce))
    assert log.mark == head
    assert [r["value"] for r in rig.records() if r["kind"] == eventlog.LOG_DOWNLOADED] == [head]


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
