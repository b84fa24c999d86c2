"""The real LCI-777 core (firmware/device.py) behind the simulator's driver interface.

`build(hw, config, identity)` is the default core factory of sim/runtime.py. It runs
unchanged under CPython and inside MicroPython (no CPython-only features):

- config: firmware.config.Config keyword arguments ({"jurisdiction": "california", ...});
- identity: how the unit left the factory. {"serial", "root_key", "device_secret"} (hex)
  provisions a blank unit at its first boot, as the factory line would over the wire;
  an optional "authority" ("module:function", a make_authority for Device) replaces
  firmware/authority.py (tests use a double); an optional "log_segments" gives the unit
  a bigger (or smaller) event-log flash than the core's default. Without identity the unit
  boots blank and waits for PROVISION over the serial line.

`device_class` (default firmware.device.Device) lets a test run a changed core (a subclass)
under both runtimes without touching the firmware.

The adapter reads the log incrementally (log_since) so the simulator can put every
record on its timeline, and reports a bench power-cut request (BENCH POWER_CUT over the
wire sets device.reboot_requested) so the simulator can cut the power.
"""

from binascii import unhexlify

from firmware import eventlog
from firmware.config import Config
from firmware.device import Device
from firmware.eventlog import EventLog
from firmware.handler import Handler
from protocol import messages

LOG_BUDGET = 0x7FFFFFFF
BENCH_CAPS = messages.CAP_BENCH | messages.CAP_POWER_CUT


def _load(path):
    module_name, attr = path.split(":")
    module = __import__(module_name, None, None, [attr])
    return getattr(module, attr)


class LogTap:
    """The event log's view of the flash, passing everything through and keeping a copy of
    each record it appends (a log append is u8 length + the record): the simulator sees
    every record exactly as it went to flash without reading segments back."""

    def __init__(self, storage):
        self.storage = storage
        self.appended = []

    def append(self, name, data):
        self.storage.append(name, data)
        self.appended.append(bytes(data[1:]))

    def read(self, name):
        return self.storage.read(name)

    def read_at(self, name, offset, size):
        return self.storage.read_at(name, offset, size)

    def write(self, name, data):
        self.storage.write(name, data)

    def rename(self, old, new):
        self.storage.rename(old, new)

    def remove(self, name):
        self.storage.remove(name)

    def size(self, name):
        return self.storage.size(name)

    def names(self):
        return self.storage.names()


def make_authority(serial, root_key, secret, config=None):
    """firmware.authority.Authority with its own defaults; under CPython it checks signatures
    with the host's verifier (the device's rules around OpenSSL: the same verdicts, ~7x faster).

    Device passes its Config object as `config`; Authority takes a dict of its own
    settings (code_digits). Until the two agree, the simulator builds it without one."""
    from firmware.authority import Authority

    try:
        from host_tools import ed25519_host as verifier
    except ImportError:  # the core under MicroPython: its own verifier
        verifier = None
    return Authority(serial, root_key, secret, verifier=verifier)


class CoreAdapter:
    def __init__(self, hw, config, identity, device_class=Device):
        if not hasattr(hw, "caps"):
            hw.caps = BENCH_CAPS
        make_authority = globals()["make_authority"]
        if identity and identity.get("authority"):
            make_authority = _load(identity["authority"])
        log = None
        if identity and identity.get("log_segments"):
            # a bigger log flash than the core's default (see the module docstring)
            log = EventLog(hw.storage, max_segments=identity["log_segments"])
        self.device = device_class(hw, Config(**(config or {})), make_authority=make_authority, log=log)
        device = self.device
        Handler(device)  # the protocol side, wired as firmware/main.py does
        self.tap = LogTap(device.log.storage)
        device.log.storage = self.tap
        if identity and identity.get("serial") and not device.provisioned:
            device.provision(
                identity["serial"], unhexlify(identity["root_key"]), unhexlify(identity["device_secret"])
            )

    # -- driving
    def step(self, now_ms):
        self.device.step(now_ms)

    def next_deadline(self):
        return self.device.next_deadline()

    def line_reset(self):
        self.device.link.line_reset()

    def reboot_requested(self):
        return self.device.reboot_requested

    # -- observation
    def compliance(self):
        return self.device.compliance.state

    def session(self):
        return self.device.session.state

    def log_since(self, index):
        log = self.device.log
        appended = self.tap.appended
        self.tap.appended = []
        if index < log.first:
            index = log.first
        if index >= log.head:
            return [], log.head
        raws = appended
        if not raws or eventlog.record_index(raws[0]) != index or len(raws) != log.head - index:
            raws = log.records(index, log.head - index, LOG_BUDGET)  # read back from flash
        out = []
        for raw in raws:
            record = eventlog.decode_record(raw)
            del record["prev"]
            del record["crc_ok"]
            out.append(record)
        return out, index + len(out)

    def status(self):
        status = self.device.status()
        status["compliance"] = messages.COMPLIANCE_STATES[status["compliance"]]
        status["session"] = messages.SESSION_STATES[status["session"]]
        status["causes"] = messages.bits_to_names(status["causes"], messages.CAUSES)
        status["serial"] = self.device.serial
        status["provisioned"] = self.device.provisioned
        status["gain"] = self.device.gain
        return status


def build(hw, config, identity):
    return CoreAdapter(hw, config, identity)
