"""The device side of every protocol message: requests in, Device operations, replies out.

Handler implements protocol/endpoint.py's handler interface (`handle(type, fields)`,
`log_bounds()`, `log_records(...)`) for one Device and owns the Endpoint on the HAL
serial port. Each request maps to one Device operation, which checks the state machine
and either applies fully or raises Refused (a NACK) having changed nothing. A HELLO
starts a USB session with a fresh nonce (tokens for this session are bound to it).
State changes, display changes, alarms and test results go out as EVENT frames.
"""

from protocol import errors, framing, messages
from protocol.endpoint import Endpoint, Refused

BENCH_CAPS = messages.CAP_BENCH | messages.CAP_POWER_CUT
# The LOG_READ window HELLO offers: pages a stream keeps in flight (each page is ~8 KB of
# transient heap while it is built). 4 pages are 2 KB on the line, ~180 ms at 115200 baud:
# enough to keep the line busy across a USB round trip (bench/service_visit.py goodput).
LOG_WINDOW = 4
# The requests a Handler answers, each by its method of the type's catalogue name
# (messages.HELLO by hello(), ...); LOG_READ and LOG_ACK are the endpoint's own.
ROUTED = (
    messages.HELLO,
    messages.STATUS,
    messages.LOG_INFO,
    messages.PROVISION,
    messages.CONFIG_GET,
    messages.TOKEN,
    messages.CODE_REQUEST,
    messages.CODE_ENTER,
    messages.CALIBRATE,
    messages.PING,
    messages.BENCH,
)
FACTORY_ALLOWED = (
    messages.HELLO,
    messages.STATUS,
    messages.LOG_INFO,
    messages.PROVISION,
    messages.CONFIG_GET,
    messages.PING,
    messages.BENCH,
)


def _action_index(name):
    return messages.ACTIONS.index(name) if name in messages.ACTIONS else 0


class Handler:
    def __init__(self, device):
        self.device = device
        self.endpoint = Endpoint(self, device.hw.serial.write, LOG_WINDOW)
        self.nonce = None  # this USB session's nonce (16 bytes), from the last HELLO
        device.on_event = self.event
        device.link = self  # the device feeds the serial bytes in and polls the endpoint

    # -- the endpoint's side
    def receive(self, data):
        self.endpoint.receive(data)

    def poll(self):
        self.endpoint.poll()

    def line_reset(self):
        """A host opened the line anew (a new USB or TCP connection): fresh decoder, no stream."""
        self.endpoint.line_reset()

    def dropped(self):
        """Frames the link has dropped as malformed since boot (bad COBS, CRC, length ...)."""
        return getattr(self.endpoint.decoder, "dropped", 0)

    def event(self, kind, detail=""):
        """An EVENT frame, once a host has said HELLO since boot (nobody listens before)."""
        if self.nonce is None:
            return
        device = self.device
        self.endpoint.event(
            kind,
            messages.COMPLIANCE_STATES.index(device.compliance.state),
            messages.SESSION_STATES.index(device.session.state),
            device.tb.wall() & 0xFFFFFFFF,
            detail,
        )

    def caps(self):
        device = self.device
        caps = messages.CAP_LOG_STREAM | messages.CAP_TOKENS | messages.CAP_KEYPAD | messages.CAP_CALIBRATE
        caps |= getattr(device.hw, "caps", 0) & BENCH_CAPS
        if not device.provisioned:
            caps |= messages.CAP_FACTORY
        return caps

    # -- handler interface
    def handle(self, type_, fields):
        if type_ not in ROUTED:
            raise Refused(errors.NOT_SUPPORTED, "type 0x%02x" % type_)
        if not self.device.provisioned and type_ not in FACTORY_ALLOWED:
            raise Refused(errors.NOT_PROVISIONED)
        return getattr(self, messages.entry(type_)[0])(fields)

    def log_bounds(self):
        return self.device.log.bounds()

    def log_records(self, start, max_count, budget):
        return self.device.log.records(start, max_count, budget)

    # -- messages
    def hello(self, fields):
        if not fields["proto_min"] <= framing.VERSION <= fields["proto_max"]:
            raise Refused(errors.BAD_VERSION, "device speaks v%d" % framing.VERSION)
        device = self.device
        self.nonce = device.hw.random.bytes(16)
        device.new_session()
        return {
            "proto": framing.VERSION,
            "serial": device.serial,
            "firmware": device.firmware_version(),
            "board": device.hw.board,
            "caps": self.caps(),
            "max_payload": framing.MAX_PAYLOAD,
            "window": LOG_WINDOW,
            "nonce": self.nonce,
        }

    def status(self, fields):
        return self.device.status()

    def log_info(self, fields):
        log = self.device.log
        return {
            "first": log.first,
            "count": log.count,
            "capacity": log.capacity,
            "free_pct": log.free_pct(),
            "head_hash": log.head_hash,
        }

    def provision(self, fields):
        return {"serial": self.device.provision(fields["serial"], fields["root_key"], fields["device_secret"])}

    def config_get(self, fields):
        return {"config": self.device.config_json()}

    def token(self, fields):
        action, detail = self.device.apply_token(fields["token"], self.nonce)
        return {"action": _action_index(action), "detail": detail}

    def code_request(self, fields):
        index = fields["action"]
        if index >= len(messages.ACTIONS) or messages.ACTIONS[index] not in messages.CODE_ACTIONS:
            raise Refused(errors.BAD_ARGUMENT, "no keypad code for action %d" % index)
        return {"request": self.device.request_code(messages.ACTIONS[index])}

    def code_enter(self, fields):
        action, until = self.device.enter_code(fields["code"])
        return {"action": _action_index(action), "until": until if until > 0 else 0}

    def calibrate(self, fields):
        step = fields["step"]
        self.device.compliance.require("calibrate")
        if step > messages.CAL_FINISH:
            raise Refused(errors.BAD_ARGUMENT, "unknown step %d" % step)
        measured, passed, detail = self.device.calibrate(step, fields["reference"])
        return {"step": step, "measured": measured, "passed": 1 if passed else 0, "detail": detail}

    def ping(self, fields):
        return {"data": fields["data"]}

    def bench(self, fields):
        device = self.device
        caps = getattr(device.hw, "caps", 0)
        if not caps & messages.CAP_BENCH:
            raise Refused(errors.NOT_SUPPORTED, "not a bench device")
        kind = fields["input"]
        a = fields["a"]
        if kind == messages.BENCH_POWER_CUT and not caps & messages.CAP_POWER_CUT:
            raise Refused(errors.NOT_SUPPORTED, "this bench cannot cut the power")
        _bench_arguments(kind, a, fields["b"], fields["c"])
        if kind == messages.BENCH_IGNITION:
            device.ignition(a != 0)
        elif kind == messages.BENCH_BLOW:
            device.bench_blow(a, fields["b"], fields["c"])
        elif kind == messages.BENCH_KEY:
            device.key(chr(a))
        elif kind == messages.BENCH_POWER_CUT:
            device.reboot_requested = True
        elif kind == messages.BENCH_TAMPER:
            device.tamper(a)
        else:
            device.refuse()
        return {
            "compliance": messages.COMPLIANCE_STATES.index(device.compliance.state),
            "session": messages.SESSION_STATES.index(device.session.state),
        }


# BENCH inputs whose arguments are fixed: input -> (allowed values of a, or None for the
# input's own range check); b and c must be 0 (SPEC section 5.2, bench inputs).
_BENCH_A = {
    messages.BENCH_IGNITION: (0, 1),
    messages.BENCH_KEY: None,
    messages.BENCH_POWER_CUT: (1,),
    messages.BENCH_TAMPER: (1, 2),
    messages.BENCH_REFUSE: (0,),
}


def _bench_arguments(kind, a, b, c):
    """Refused(BAD_ARGUMENT) unless the input is known and its arguments are as specified."""
    if kind == messages.BENCH_BLOW:
        return  # a, b, c are the blow: Device.bench_blow checks their ranges
    if kind not in _BENCH_A:
        raise Refused(errors.BAD_ARGUMENT, "bench input %d" % kind)
    allowed = _BENCH_A[kind]
    if allowed is None:
        if not 0x20 < a < 0x7F:
            raise Refused(errors.BAD_ARGUMENT, "key code %d" % a)
    elif a not in allowed:
        raise Refused(errors.BAD_ARGUMENT, "argument a is %d" % a)
    if b != 0 or c != 0:
        raise Refused(errors.BAD_ARGUMENT, "arguments b and c must be 0")
