"""A tiny stand-in core for testing the simulator's own machinery (runtimes, serial, clock).

Not the LCI-777: just enough behaviour to see time, inputs, outputs, flash, randomness and
the wire go through the simulator the same way under CPython and MicroPython. Ignition
on asks for a test; a pass closes the relay and schedules a retest at a random time from
the HAL's RNG; a fail holds for 5 minutes; every event is a line appended to flash.
It answers HELLO, STATUS and PING through protocol/endpoint.py. MicroPython-compatible.
"""

from protocol import messages
from protocol.endpoint import Endpoint, Refused

SET_POINT = 200


class FakeCore:
    def __init__(self, hw, config, identity):
        self.hw = hw
        self.now_ms = 0
        self.session_state = "ignition_off"
        self.deadline = None
        self.records = []
        self.endpoint = Endpoint(self, hw.serial.write)
        old = hw.storage.read("fake.log")
        self.boots = 1 + (old.count(b"boot") if old else 0)
        self.lines = (old.count(b"\n") if old else 0)
        self._log("boot", self.boots)
        hw.display.show("FAKE CORE", "READY")

    # -- adapter interface
    def step(self, now_ms):
        self.now_ms = now_ms
        hw = self.hw
        if hw.ignition.on() != (self.session_state != "ignition_off"):
            self.ignition(hw.ignition.on())
        key = hw.keypad.read()
        while key is not None:
            self.key(key)
            key = hw.keypad.read()
        sample = hw.sensor.take()
        if sample is not None:
            self.sample(sample)
        data = hw.serial.read()
        if data:
            self.serial(data)
        if self.deadline is not None and now_ms >= self.deadline:
            self.deadline = None
            if self.session_state == "temporary_lockout":
                self._session("test_requested")
            elif self.session_state == "engine_enabled":
                self._session("retest_due")
        self.endpoint.poll()

    def serial(self, data):
        self.endpoint.receive(data)

    def key(self, key):
        self._log("key", key)

    def sample(self, sample):
        brac = sample.fuel_cell
        if self.session_state in ("test_requested", "retest_due"):
            if brac >= SET_POINT:
                self._log("fail", brac)
                self._session("temporary_lockout")
                self.deadline = self.now_ms + 300000
            else:
                self._log("pass", brac)
                self._session("engine_enabled")
                self.deadline = self.now_ms + 60000 * (5 + self.hw.random.bits(4))

    def ignition(self, on):
        if on and self.session_state == "ignition_off":
            self._session("test_requested")
        elif not on:
            self.deadline = None
            self._session("ignition_off")

    def line_reset(self):
        self.endpoint.line_reset()

    def next_deadline(self):
        return self.deadline

    def reboot_requested(self):
        return False

    def compliance(self):
        return "normal"

    def session(self):
        return self.session_state

    def log_since(self, index):
        return self.records[index:], len(self.records)

    def status(self):
        return {"boots": self.boots, "lines": self.lines}

    # -- protocol handler
    def handle(self, type_, fields):
        if type_ == messages.PING:
            return {"data": fields["data"]}
        if type_ == messages.HELLO:
            return {"proto": 1, "serial": "FAKE-1", "firmware": "fake", "board": self.hw.board,
                    "caps": 0, "max_payload": 512, "window": 8, "nonce": self.hw.random.bytes(16)}
        if type_ == messages.STATUS:
            line1 = "FAKE CORE"
            return {"compliance": 0, "session": messages.SESSION_STATES.index(self.session_state),
                    "causes": 0, "now": self.hw.clock.now(), "deadline": 0, "deadline_left": 0,
                    "service_due": 0, "calibration_due": 0, "hold_left": 0, "override_left": 0,
                    "violations": 0, "relay": 1 if self.session_state == "engine_enabled" else 0,
                    "alarm": 0, "log_count": len(self.records), "log_free_pct": 100,
                    "line1": line1, "line2": self.session_state[:16]}
        raise Refused(7, "fake core")

    def log_bounds(self):
        return 0, 0

    def log_records(self, start, max_count, budget):
        return []

    # -- internals
    def _session(self, state):
        if state != self.session_state:
            self.session_state = state
            self.hw.relay.set(state == "engine_enabled")
            self.hw.display.show("FAKE CORE", state[:16])
            self._log("session", state)

    def _log(self, kind, value):
        self.lines += 1
        record = {"index": len(self.records), "kind_name": kind, "value": value,
                  "time": self.hw.clock.now()}
        self.records.append(record)
        self.hw.storage.append("fake.log", (f"{kind} {value}\n").encode())


def build(hw, config, identity):
    return FakeCore(hw, config, identity)
