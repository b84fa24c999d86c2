"""The scope x cause bench: every scope tries to lift every recall cause (both runtimes).

What it owns: `outcome(scope, cause)`, which boots a device (the real Authority, through the
real protocol handler: tests/firmware/attack_rig.py's AttackRig and Host) from one set-up
flash (installed, normal), gives it the cause the way the core does (`add_cause`, as its
timers, tamper input and log do) and lets the recall run out into a lockout; then presents,
as TOKEN frames (and CALIBRATE frames in a service session), everything a key holding only
that scope can do:

- unlock:     an unlock for an hour (an override: accepted, the cause stays), then, once
              the window ended, an unlock for good (refused: this key lifts no cause);
- set_time:   the clock set a day forward in the live session;
- billing:    a clear directive (newer than any applied);
- work_order: a removal, then an installation;
- calibrate:  a service session with a passed calibration, closed.

It returns (the cause still set?, the compliance state, the NACK codes met). Tests compare
with firmware/lifts.py's table. Signed tokens are signed once per run and reused (an
Ed25519 signature allocates ~1.1 MB under MicroPython, see tests/firmware/attack_rig.py).
"""

from firmware import lifts
from protocol import messages
from protocol.coretime import HOUR
from tests.firmware import attack_rig
from tests.firmware import authority_fixtures as fx
from tests.firmware.attack_rig import AttackRig, Host, token_id
from tests.firmware.device_rig import DAY, START

LONG = (START - DAY, START - DAY, START + 400 * DAY)
CAUSES = (
    lifts.UNPAID,
    lifts.SERVICE_DUE,
    lifts.CALIBRATION_DUE,
    lifts.VIOLATIONS,
    lifts.TAMPER,
    lifts.LOG_FULL,
    lifts.CALIBRATION_FAILED,
)
SCOPE_BITS = {
    "unlock": 0x01,
    "calibrate": 0x02,
    "set_time": 0x04,
    "billing": 0x08,
    "work_order": 0x10,
}
REFERENCE = 400  # the dry gas: 0.040 g/210L
_CACHE = {}


def _cached(name, make):
    if name not in _CACHE:
        _CACHE[name] = make()
    return _CACHE[name]


def _certificate(scope):
    key_id = "only-" + scope.replace("_", "-")
    body = fx.certificate_body(
        key_id, fx.signer("tech").public_key, SCOPE_BITS[scope], START + 400 * DAY
    )
    return key_id, fx.signed("root", body)


def signed(scope, name, action, args, nonce=None):
    """A token for `action` signed by a key holding only `scope` (once per run and nonce)."""
    tag = "%s %s %r" % (scope, name, nonce)

    def make():
        key_id, cert = _cached("cert " + scope, lambda: _certificate(scope))
        options = {"key": key_id, "cert": cert, "signer": "tech", "action": action, "args": args}
        options["times"] = LONG
        options["id"] = token_id("lift " + tag)
        options["nonce"] = nonce or b""
        return fx.token(options)

    return _cached(tag, make)


def _base():
    rig = AttackRig(wall=START)
    host = Host(rig)
    host.ok(messages.TOKEN, token=attack_rig.token("install"))
    assert rig.compliance == "normal" and rig.device.causes == 0
    return rig.flash.clone()


def locked_out(cause):
    """A device whose recall for `cause` ran out, and a host that said HELLO (its nonce)."""
    rig = AttackRig(flash=_cached("base", _base).clone(), wall=START + HOUR)
    rig.device.add_cause(cause)
    rig.advance(rig.config.recall_s + 1)
    assert rig.compliance == "lockout" and rig.device.causes == cause
    host = Host(rig)
    nonce = host.hello()
    return rig, host, nonce


def _send(host, data):
    """TOKEN `data`: None if accepted, else the NACK code."""
    reply = host.send(messages.TOKEN, {"token": data})
    return reply[1]["code"] if reply[0] == messages.NACK else None


def _unlock(rig, host, nonce):
    met = [_send(host, signed("unlock", "hour", "unlock", b'{"seconds":3600}'))]
    assert rig.compliance == "code_unlock"  # the override: the vehicle may start for the hour
    rig.advance(HOUR)
    met.append(_send(host, signed("unlock", "for good", "unlock", b'{"seconds":0}')))
    return met


def _set_time(rig, host, nonce):
    args = ('{"time":%d}' % (rig.clock.wall + DAY)).encode()
    return [_send(host, signed("set_time", "forward", "set_time", args, nonce))]


def _billing(rig, host, nonce):
    args = ('{"cause":"unpaid_balance","seq":%d}' % (rig.device.directive_seq + 1)).encode()
    return [_send(host, signed("billing", "clear", "clear", args))]


def _work_order(rig, host, nonce):
    removal = b'{"id":"WO-7","order":"removal","vehicle":"1HGCM82633A004352"}'
    installation = b'{"id":"WO-8","order":"installation","vehicle":"1HGCM82633A004352"}'
    met = [_send(host, signed("work_order", "removal", "work_order", removal))]
    assert rig.compliance == "removed"
    met.append(_send(host, signed("work_order", "installation", "work_order", installation)))
    return met


def _calibrate(rig, host, nonce):
    met = [_send(host, signed("calibrate", "service", "service", b"{}", nonce))]
    for step in (
        messages.CAL_AS_FOUND,
        messages.CAL_ADJUST,
        messages.CAL_CHECK,
        messages.CAL_CHECK,
        messages.CAL_FINISH,
    ):
        rig.blow(REFERENCE)  # the dry gas, for the step
        reply = host.ok(messages.CALIBRATE, step=step, reference=REFERENCE)
        assert reply["step"] == step
    assert reply["passed"] == 1, reply
    args = ('{"downloaded":0,"next_service":%d}' % (START + 200 * DAY)).encode()
    met.append(_send(host, signed("calibrate", "close", "service_close", args, nonce)))
    return met


PROCEDURES = {
    "unlock": _unlock,
    "set_time": _set_time,
    "billing": _billing,
    "work_order": _work_order,
    "calibrate": _calibrate,
}


def outcome(scope, cause):
    """(cause still set, compliance state, NACK codes met) after `scope` tried on `cause`."""
    rig, host, nonce = locked_out(cause)
    met = PROCEDURES[scope](rig, host, nonce)
    rig.advance(1)
    return bool(rig.device.causes & cause), rig.compliance, met


def expected(scope, cause):
    """firmware/lifts.py's answer: (cause still set, compliance state)."""
    lifted = lifts.LIFTS[scope] & cause != 0
    return not lifted, "normal" if lifted else "lockout"
