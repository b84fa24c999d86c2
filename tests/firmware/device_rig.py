"""A device on a test bench, for the firmware tests of both runtimes: virtual clock,
recording outputs, RAM flash that can lose power, the authority double, and shortcuts
(blow, drive, tokens, reboot, jump to the next deadline)."""

from firmware import eventlog, hal
from firmware.config import Config
from firmware.device import Device
from firmware.handler import Handler
from firmware.ramflash import RamFlash
from protocol import messages
from protocol.coretime import DAY
from tests.firmware.authority_double import ROOT_KEY, SECRET, SERIAL, AuthorityDouble, answer, mint

# Under MicroPython (tests/mpy/runner.py: the unix port, one process per file, its heap
# capped like a board's) a Rig costs ~20 KB and an hour of driving ~40 KB.


START = 200000000  # core seconds: 2026-05-03


class Clock(hal.Clock):
    def __init__(self, wall=START):
        self.wall = wall
        self.ms = 0

    def now(self):
        return self.wall

    def monotonic_ms(self):
        return self.ms

    def set_now(self, seconds):
        self.wall = seconds

    def advance_ms(self, ms):
        """Both clocks move on; the wall clock by the whole seconds the monotonic one crossed."""
        before = self.ms // 1000
        self.ms += ms
        self.wall += self.ms // 1000 - before


class Out:
    """Relay or alarm: remembers every value set."""

    def __init__(self):
        self.values = []

    def set(self, on):
        self.values.append(bool(on))

    @property
    def on(self):
        return bool(self.values) and self.values[-1]


class Screen(hal.Display):
    def __init__(self):
        self.lines = ("", "")
        self.shown = []  # the last texts shown, newest last
        self.seen = set()  # every text ever shown
        self.green = self.red = False

    def show(self, line1, line2):
        assert len(line1) <= 16 and len(line2) <= 16, (line1, line2)
        self.lines = (line1, line2)
        self.shown.append(line1 + " " + line2)
        self.seen.add(line1 + " " + line2)
        if len(self.shown) > 64:
            self.shown = self.shown[-32:]

    def leds(self, green, red):
        self.green = green
        self.red = red

    @property
    def text(self):
        return self.lines[0] + " " + self.lines[1]


class Lcg(hal.Random):
    def __init__(self, seed=1):
        self.state = seed

    def bits(self, n):
        self.state = (self.state * 1103515245 + 12345) & 0x7FFFFFFF
        return (self.state >> 7) & ((1 << n) - 1) if n <= 24 else self.state


class Sensor(hal.BreathSensor):
    def __init__(self):
        self.ready = None
        self.purges = 0
        self.attached = True

    def take(self):
        sample = self.ready
        self.ready = None
        return sample

    def connected(self):
        return self.attached

    def purge(self):
        self.purges += 1


class Switch(hal.Ignition):
    """The ignition switch as the HAL reads it (polled by step())."""

    def __init__(self, on=False):
        self.is_on = on

    def on(self):
        return self.is_on


SOBER = hal.BreathSample(1800, 345, 0)  # a complete, passing sample


class Rig:
    """key_on / ready: the ignition switch is on and the sensor holds this sample as the
    device boots (what a board's first loop polls); `at_boot` is (compliance, session, relay
    values) right after boot, before the first step."""

    def __init__(self, config=None, flash=None, wall=START, provision=True, install=True, seed=1, caps=0, log_segments=0,
                 key_on=False, ready=None):
        self.key_on = key_on
        self.ready = ready
        self.config = config or Config()
        self.flash = flash or RamFlash()
        self.clock = Clock(wall)
        self.seed = seed
        self.caps = caps
        self.screen_ticks = False  # advance() steps at state deadlines only (set True to see every countdown)
        self.log_segments = log_segments  # a small log (segments of 4 records), 0 = the default
        self.events = []
        self.written = []
        self.build()
        if provision:
            self.device.provision(SERIAL, ROOT_KEY, SECRET)
        if install:
            self.work_order("installation")

    def build(self):
        self.relay = Out()
        self.alarm = Out()
        self.screen = Screen()
        self.sensor = Sensor()
        self.sensor.ready = self.ready
        self.switch = Switch(self.key_on)
        self.hw = hal.Hardware(
            ignition=self.switch,
            clock=self.clock,
            relay=self.relay,
            alarm=self.alarm,
            display=self.screen,
            sensor=self.sensor,
            storage=self.flash,
            random=Lcg(self.seed),
            board="test",
        )
        self.hw.serial.write = self._wrote
        self.hw.caps = self.caps
        log = None
        if self.log_segments:
            log = eventlog.EventLog(self.flash, records_per_segment=4, max_segments=self.log_segments, reserve=4)
        self.device = Device(self.hw, self.config, make_authority=AuthorityDouble, log=log)
        Handler(self.device)  # the protocol side, wired as firmware/main.py does
        self.at_boot = (self.device.compliance.state, self.device.session.state, self.relay.values[:])
        send = self.device.on_event

        def seen(kind, detail=""):
            events = self.events
            events.append((kind, detail))
            if len(events) > 64:
                self.events = events[-32:]
            send(kind, detail)

        self.device.on_event = seen
        self.device.step(self.clock.ms)

    def _wrote(self, data):
        self.written.append(data)
        if len(self.written) > 64:
            self.written = self.written[-32:]

    def reboot(self, off_s=0):
        """Power off for off_s seconds (the wall clock runs on), then boot from flash."""
        self.flash.power_on()
        self.clock = Clock(self.clock.wall + off_s)
        self.build()

    # -- time
    def advance(self, seconds):
        """Let `seconds` pass in steps of at most one second per deadline: the device sees
        every deadline on time."""
        target = self.clock.ms + seconds * 1000
        while True:
            nxt = self.device.next_deadline(self.screen_ticks)
            if nxt is None or nxt > target:
                break
            self.clock.advance_ms(max(1, nxt - self.clock.ms))
            self.device.step(self.clock.ms)
        if target > self.clock.ms:
            self.clock.advance_ms(target - self.clock.ms)
        self.device.step(self.clock.ms)

    def until(self, predicate, limit_s):
        """Jump deadline to deadline until predicate() holds; the seconds it took."""
        start = self.clock.ms
        while not predicate():
            nxt = self.device.next_deadline(self.screen_ticks)
            assert nxt is not None, "nothing scheduled"
            assert nxt - start <= limit_s * 1000, "not within %d s" % limit_s
            self.clock.advance_ms(max(1, nxt - self.clock.ms))
            self.device.step(self.clock.ms)
        return (self.clock.ms - start) // 1000

    def until_session(self, state, limit_s=3600):
        return self.until(lambda: self.session == state, limit_s)

    def until_compliance(self, state, limit_s=3600):
        return self.until(lambda: self.compliance == state, limit_s)

    # -- the driver
    def blow(self, brac=0, volume=1800, temperature=345, complete=True):
        self.device.breath(hal.BreathSample(volume, temperature, brac, complete), self.clock.ms)

    def ignition(self, on):
        self.device.ignition(on, self.clock.ms)

    def start(self, brac=0):
        """Ignition on and a start test; the session state after."""
        self.ignition(True)
        self.advance(self.config.purge_s)
        self.blow(brac)
        return self.session

    def keys(self, text):
        for char in text:
            self.device.key(char, self.clock.ms)

    # -- authority
    def token(self, action, args=None, **kw):
        return self.device.apply_token(mint(action, directive_args(self.device, action, args), **kw), self.nonce())

    def nonce(self):
        """The USB session's nonce: the last HELLO's, or a fixed one for tokens the tests
        apply directly (without opening a session on the link)."""
        return self.device.link.nonce or b"N" * 16

    def service(self, **args):
        return self.token("service", {}, nonce=self.nonce())

    def close_service(self, days=60, **extra):
        args = {"next_service": self.clock.wall + days * DAY, "downloaded": 0}
        args.update(extra)
        return self.token("service_close", args, nonce=self.nonce())

    def work_order(self, order, vehicle="1HGCM82633A004352", **kw):
        return self.token("work_order", {"order": order, "id": "WO-1", "vehicle": vehicle}, key="office", **kw)

    def code(self, action="unlock"):
        """Request a code and enter the provider's answer (a clear code for the lockout in
        force); (action, until)."""
        request = self.device.request_code(action)
        seq = self.device.directive_seq if action == "clear" else None
        return self.device.enter_code(answer(request, action, seq=seq))

    # -- looking at it
    @property
    def compliance(self):
        return self.device.compliance.state

    @property
    def session(self):
        return self.device.session.state

    def records(self, start=None):
        """The log decoded, from record `start` (an index) or from the first."""
        log = self.device.log
        return [eventlog.decode_record(r) for r in _all_records(log, start)]

    def kinds(self):
        return [r["kind_name"] for r in self.records()]

    def refusal_records(self, source):
        """(count, NACK code, reason) of each `refusals` record of `source` ("token", "code")."""
        out = []
        for r in self.records():
            parts = r["detail"].split(" ", 2)
            if r["kind"] == eventlog.REFUSALS and parts[0] == source:
                out.append((r["value"], int(parts[1], 16), parts[2] if len(parts) > 2 else ""))
        return out

    def refusal_total(self, source):
        """Refusals of `source` since boot and in the log: summed up plus still counted in RAM."""
        total = self.device.refusals.pending(source)[0]
        for entry in self.refusal_records(source):
            total += entry[0]
        return total

    def last_refusal(self, source):
        """(NACK code, reason) of the latest refusal of `source`, written or still counted."""
        pending = self.device.refusals.pending(source)
        if pending[0]:
            return pending[1], pending[2]
        written = self.refusal_records(source)
        return (written[-1][1], written[-1][2]) if written else None

    def transitions(self):
        out = []
        for r in self.records():
            if r["kind"] in (eventlog.COMPLIANCE_CHANGE, eventlog.SESSION_CHANGE):
                out.append(r["detail"])
        return out


def directive_args(device, action, args):
    """`args` with the directive number a back office would give, when the test left it
    out: a recall or lockout the next one after the device's, a clear the one in force."""
    if action not in ("recall", "lockout", "clear") or args is None or "seq" in args:
        return args
    out = dict(args)
    out["seq"] = device.directive_seq + (0 if action == "clear" else 1)
    return out


def _all_records(log, start=None):
    out = []
    index = log.first if start is None else max(start, log.first)
    while index < log.first + log.count:
        page = log.records(index, log.first + log.count - index, messages.LOG_PAGE_BUDGET)
        if not page:
            break
        out.extend(page)
        index += len(page)
    return out


def cfg(**overrides):
    return Config(**overrides)
