"""The device-level attack table's bench (tests/firmware/test_device_attacks.py), both runtimes.

What it owns:
- `AttackRig`: tests/firmware/device_rig.py's Rig with the REAL Authority
  (firmware/authority.py, firmware/ed25519.py) in place of the test double, provisioned
  with the test root key (tests/firmware/authority_fixtures.py's signer "root"); one
  Authority per run serves every boot (`authority()`);
- `base()`: one device set up once per run (provisioned, installed under a root-signed
  work order, then a tamper whose recall ran out: locked out at T0) whose flash every test
  boots a copy of (`fresh()`), so the setup's signature is paid once;
- `Host`: a minimal host that speaks frames to the device's real protocol handler;
- `token(name)` / `session_token(name, nonce)`: the signed tokens of the table, signed once
  and kept (an Ed25519 signature in pure Python allocates ~1.1 MB under MicroPython, whose
  test VM must not collect garbage: see tests/firmware/device_rig.py), and
  `field_spans()` / `certificate_spans()`, the layout of protocol/tokens.py as
  (name, start, end) over a token's bytes;
- `Witness`: what an attempt must leave alone, taken before and compared after (state,
  session, timers, clocks, every persisted file but the log, relay, alarm, LEDs, the
  session nonce, the endpoint's fault count; the Authority's certificate cache may gain
  only a certificate the root really signed), and the log records it added.

Keys: "root" is the provider root; "tech" one delegated key pair, certified twice under
different key ids: "tech-01" (calibrate only, valid) and "old-tech" (unlock + calibrate,
its delegation expired before the tests start).
"""

import struct
from binascii import hexlify, unhexlify
from hashlib import sha256

from firmware import eventlog
from firmware.authority import Authority
from firmware.config import Config
from protocol import framing, messages
from protocol.coretime import HOUR
from tests.firmware import authority_fixtures as fx
from tests.firmware.device_rig import DAY, START, Rig

SERIAL = fx.SERIAL
SECRET = fx.SECRET
T0 = START + 8 * DAY  # the base device's wall clock once set up (installed at START)
BOOT_AT = T0 + 60  # when every test's device boots
LONG = (START - DAY, START - DAY, START + 400 * DAY)  # issued, not_before, expires
CALIBRATE = 0x02  # scope bits (protocol/tokens.py SCOPES order)
UNLOCK_CALIBRATE = 0x03
STALE_NONCE = b"X" * 16  # the HELLO nonce of a session that is over
INSTALLATION = b'{"id":"WO-1","order":"installation","vehicle":"1HGCM82633A004352"}'

_CACHE = {}


def _cached(name, make):
    if name not in _CACHE:
        _CACHE[name] = make()
    return _CACHE[name]


def root_public():
    return fx.signer("root").public_key


def token_id(name):
    return sha256(b"attack table " + name.encode()).digest()[:16]


# ---- certificates and tokens -------------------------------------------------------------------
def certificate(key_id):
    """The root's certificate for the "tech" key pair under `key_id`."""
    return _cached("cert " + key_id, lambda: _certify(key_id))


def _certify(key_id):
    spec = {"tech-01": (CALIBRATE, T0 + 365 * DAY), "old-tech": (UNLOCK_CALIBRATE, T0 - 1)}[key_id]
    body = fx.certificate_body(key_id, fx.signer("tech").public_key, spec[0], spec[1])
    return fx.signed("root", body)


def _options(name):
    """The fields of the table's token `name` (authority_fixtures.body's options)."""
    unlock = {"action": "unlock", "args": b'{"seconds":3600}', "times": LONG, "id": token_id(name)}
    back = ('{"time":%d}' % (T0 - DAY)).encode()
    specs = {
        "install": {"action": "work_order", "args": INSTALLATION},
        "probe": {},  # the valid token applied after attacks
        "other_device": {"serial": "LCI-0002"},
        "window": {"times": (T0 - DAY, T0 + HOUR, T0 + 2 * HOUR)},
        "tech_unlock": {"key": "tech-01", "signer": "tech"},
        "old_tech_unlock": {"key": "old-tech", "signer": "tech"},
        "wrong_signer": {"signer": "tech"},  # claims the root, signed by another key
        "other_root": {"root": "tech", "signer": "tech"},  # another provider's root
        "set_time_unbound": {"action": "set_time", "args": back},
        "set_time_stale": {"action": "set_time", "args": back, "nonce": STALE_NONCE},
    }
    out = dict(unlock)
    out.update(specs[name])
    if out.get("key") in ("tech-01", "old-tech"):
        out["cert"] = certificate(out["key"])
    return out


def token(name):
    """The table's signed token `name` (signed once per run)."""
    return _cached("token " + name, lambda: fx.token(_options(name)))


def session_token(name, nonce):
    """A token bound to the live session's HELLO `nonce` (signed once per nonce):
    "tech_service" (tech-01 opens a service session, in its scope), "set_time_back" and
    "set_time_back_again" (the root sets the clock back to T0 + 90 min), "tech_set_time"
    (tech-01 tries to)."""
    key = "session %s %s" % (name, hexlify(bytes(nonce)).decode())
    return _cached(key, lambda: fx.token(_session_options(name, nonce)))


def _session_options(name, nonce):
    back = ('{"time":%d}' % (T0 + 90 * 60)).encode()
    out = {
        "tech_service": {"key": "tech-01", "signer": "tech", "action": "service", "args": b"{}"},
        "set_time_back": {"action": "set_time", "args": back},
        "set_time_back_again": {"action": "set_time", "args": back},
        "tech_set_time": {"key": "tech-01", "signer": "tech", "action": "set_time", "args": back},
    }[name]
    out["times"] = LONG
    out["id"] = token_id(name)
    out["nonce"] = bytes(nonce)
    if "key" in out:
        out["cert"] = certificate(out["key"])
    return out


# ---- the token layout, as spans -------------------------------------------------------------
def _u16(data, at):
    return struct.unpack_from("<H", data, at)[0]


def certificate_spans(data, at):
    """(name, start, end) of the fields of the certificate starting at `at`."""
    k = at + 5 + data[at + 4]  # after the key id
    return [
        ("certificate magic", at, at + 2),
        ("certificate version", at + 2, at + 3),
        ("certificate kind", at + 3, at + 4),
        ("certificate key id length", at + 4, at + 5),
        ("certificate key id", at + 5, k),
        ("certificate public key", k, k + 32),
        ("certificate scopes", k + 32, k + 33),
        ("certificate issued", k + 33, k + 37),
        ("certificate expires", k + 37, k + 41),
        ("certificate signature", k + 41, k + 105),
    ]


def field_spans(data):
    """(name, start, end) of every field of a token (protocol/tokens.py's layout), in order;
    a delegated token's certificate as one span "certificate" (certificate_spans splits it)."""
    out = [("magic", 0, 2), ("version", 2, 3), ("kind", 3, 4), ("root id", 4, 12), ("key id length", 12, 13)]
    at = 13 + data[12]
    out.append(("key id", 13, at))
    out.append(("certificate length", at, at + 2))
    end = at + 2 + _u16(data, at)
    out.append(("certificate", at + 2, end))
    at = end
    for name in ("serial", "action"):
        out.append((name + " length", at, at + 1))
        out.append((name, at + 1, at + 1 + data[at]))
        at = at + 1 + data[at]
    out.append(("args length", at, at + 2))
    end = at + 2 + _u16(data, at)
    out.append(("args", at + 2, end))
    for name in ("issued", "not_before", "expires"):
        out.append((name, end, end + 4))
        end += 4
    out.append(("token id", end, end + 16))
    end += 16
    out.append(("session nonce length", end, end + 1))
    out.append(("session nonce", end + 1, end + 1 + data[end]))
    end += 1 + data[end]
    out.append(("signature", end, end + 64))
    return out


def flipped(data, at):
    """`data` with one bit flipped in byte `at` (bit at % 8)."""
    out = bytearray(data)
    out[at] ^= 1 << (at % 8)
    return bytes(out)


# ---- the device ------------------------------------------------------------------------------
class AttackRig(Rig):
    """A Rig whose device checks tokens and codes with the real Authority."""

    def __init__(self, flash=None, wall=T0, config=None):
        Rig.__init__(self, config=config, flash=flash, wall=wall, provision=False, install=False)
        if not self.device.provisioned:
            self.device.provision(SERIAL, root_public(), SECRET)
        assert isinstance(self.device.authority, Authority)

    def build(self):
        Rig.build(self)  # boots with the double's factory; the real Authority replaces it
        device = self.device
        device.make_authority = authority
        found = device.provision_file.load()
        if found:
            root, secret = unhexlify(found["root"]), unhexlify(found["secret"])
            device.authority = authority(found["serial"], root, secret)


def authority(serial, root_key, secret):
    """The real Authority, one per run for these keys (as a device keeps one per boot): its
    only memory between calls is its cache of certificates that verified, which changes no
    result (firmware/authority.py); sharing it saves the tests a verification per
    certificate and device."""
    key = "authority %s %s %s" % (serial, hexlify(root_key).decode(), hexlify(secret).decode())
    return _cached(key, lambda: Authority(serial, root_key, secret))


def config():
    return Config(overrides_per_service=4)  # token and keypad unlocks share the allowance


def _build_base():
    rig = AttackRig(wall=START, config=config())
    host = Host(rig)
    assert host.ok(messages.TOKEN, token=token("install"))["detail"].startswith("installation")
    rig.device.tamper(eventlog.TAMPER_RELAY_BYPASS)  # a recall, run out: a lockout
    rig.advance(T0 - rig.clock.wall)
    assert rig.compliance == "lockout" and rig.session == "ignition_off" and rig.clock.wall == T0
    return rig.flash.clone()


def base():
    """The flash of the set-up device (installed, locked out after a tamper recall)."""
    return _cached("base", _build_base)


def fresh():
    """A device booted from a copy of base() at BOOT_AT, and a host on its link."""
    rig = AttackRig(flash=base().clone(), wall=BOOT_AT, config=config())
    return rig, Host(rig)


# ---- a host on the wire ----------------------------------------------------------------------
class Host:
    """Frames to the device's protocol handler; replies decoded (events set aside)."""

    def __init__(self, rig):
        self.rig = rig
        self.decoder = framing.Decoder()
        self.seq = 0
        rig.written[:] = []

    def send(self, type_, fields):
        self.seq += 1
        payload = messages.encode(messages.request_layout(type_), fields)
        frame = framing.encode(framing.Frame(type_, payload, self.seq))
        self.rig.device.receive(frame, self.rig.clock.ms)
        out = []
        for chunk in self.rig.written:
            for frame in self.decoder.feed(chunk):
                if not frame.is_event:
                    layout = messages.layout_for(frame.type, frame.flags)
                    out.append((frame.type, messages.decode(layout, frame.payload)))
        self.rig.written[:] = []
        assert len(out) == 1, out
        return out[0]

    def ok(self, type_, **fields):
        reply = self.send(type_, fields)
        assert reply[0] == type_ | messages.REPLY, reply
        return reply[1]

    def nack(self, type_, **fields):
        """The NACK's (code, detail); AssertionError if the request was not refused."""
        reply = self.send(type_, fields)
        assert reply[0] == messages.NACK, reply
        return reply[1]["code"], reply[1]["detail"]

    def hello(self):
        return self.ok(messages.HELLO, proto_min=1, proto_max=1, host_nonce=b"h" * 8)["nonce"]


# ---- what an attempt must leave alone --------------------------------------------------------------
def persisted(flash):
    """Every file on flash except the event log's segments (state, provision, log mark)."""
    out = {}
    for name in flash.files:
        if not (name.startswith("log-") and name[4:].isdigit()):
            out[name] = bytes(flash.files[name])
    return out


def _digest(data, n):
    return sha256(memoryview(data)[:n]).digest()  # no copy: the log can be long


def segments(flash):
    """(length, SHA-256) of each event-log segment file."""
    out = {}
    for name in flash.files:
        if name.startswith("log-") and name[4:].isdigit():
            data = flash.files[name]
            out[name] = (len(data), _digest(data, len(data)))
    return out


def observed(rig):
    """Everything an attempt must not change, by name."""
    d = rig.device
    return {
        "state": d._state(),
        "session": d.session.state,
        "timers": (d.retest_at, d.retest_end, d.stall_at, d.purge_until, d.running, d.ignition_on),
        "clocks": (rig.clock.wall, d.tb.run(), d.tb.mono_ms),
        "identity": (d.provisioned, d.serial, d.authority.serial, d.authority.root_public_key),
        "endpoint faults": d.link.endpoint.faults,
        "persisted": persisted(rig.flash),
        "relay": rig.relay.values[:],
        "alarm": rig.alarm.values[:],
        "leds": (rig.screen.green, rig.screen.red),
        "session nonce": d.link.nonce,
        "calibration": (d.cal, d.cal_sample),
    }


class Witness:
    """Taken before an attempt; `changes()` names what differs after, `added()` the log
    records the attempt wrote, `log_kept()` whether the older log bytes are untouched."""

    def __init__(self, rig):
        self.rig = rig
        self.before = observed(rig)
        self.head = rig.device.log.head
        self.segments = segments(rig.flash)
        # the one thing the Authority keeps between calls: digests of certificates whose
        # root signature verified (an attempt may add a genuine one, never anything else)
        self.certs = rig.device.authority._certs[:]

    def changes(self, ignore=()):
        after = observed(self.rig)
        out = []
        for name in self.before:
            if name not in ignore and self.before[name] != after[name]:
                out.append((name, self.before[name], after[name]))
        learned = _learned(self.certs, self.rig.device.authority._certs)
        if learned:
            out.append(("certificate cache", self.certs, learned))
        return out

    def added(self):
        return self.rig.records(self.head)

    def log_kept(self):
        """Every log byte there before is still there (records are only appended)."""
        files = self.rig.flash.files
        for name in self.segments:
            size, digest = self.segments[name]
            if name not in files or len(files[name]) < size or _digest(files[name], size) != digest:
                return False
        return True


def _learned(before, after):
    """Digests cached since `before` that are not of a certificate the root really signed
    (certificate() made every genuine one a token of this run carries)."""
    genuine = []
    for name in _CACHE:
        if name.startswith("cert "):
            genuine.append(sha256(_CACHE[name]).digest())
    out = []
    for digest in after:
        if digest not in before and digest not in genuine:
            out.append(digest)
    return out


def rejection(record):
    """(kind, value, detail) of a log record, for comparing with what was expected."""
    return (record["kind"], record["value"], record["detail"])
