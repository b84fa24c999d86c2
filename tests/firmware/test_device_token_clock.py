"""Token validity reads the device's high-water clock (both runtimes), through TOKEN frames
to the real protocol handler with the real Authority.

An expired token, or a token of an expired delegation, stays refused whatever the clock does
afterwards: set back by a `set_time` token (here signed by a key that holds only the
`set_time` scope: it must never become an unlock key), by a reboot whose RTC lost its time,
or by the RTC moving back by itself. A valid token still unlocks afterwards.

MicroPython budget: each TOKEN costs one Ed25519 verification (~1.1 MB there), each token
signed once; the file stays far below the runner's heap (tests/firmware/attack_rig.py)."""

from protocol import errors, messages
from tests.firmware import authority_fixtures as fx
from tests.firmware.attack_rig import (
    HOUR,
    LONG,
    T0,
    AttackRig,
    Host,
    Witness,
    _cached,
    config,
    fresh,
    token,
    token_id,
)

UNLOCK = 0x01  # scope bits, protocol/tokens.py SCOPES order
SET_TIME = 0x04
BACK = T0 + 90 * 60  # inside the "window" token's validity (T0 + 1 h .. T0 + 2 h)


def _certificate(key_id, scopes, expires):
    body = fx.certificate_body(key_id, fx.signer("tech").public_key, scopes, expires)
    return _cached("cert " + key_id, lambda: fx.signed("root", body))


def late_unlock():
    """An unlock token (long validity) by "late-tech", whose delegation ends at T0 + 2 h."""
    cert = _certificate("late-tech", UNLOCK, T0 + 2 * HOUR)
    options = {"key": "late-tech", "signer": "tech", "cert": cert, "times": LONG, "id": token_id("late")}
    return _cached("token late", lambda: fx.token(options))


def clock_back(nonce):
    """A set-time token to BACK, bound to the session `nonce`, by "clock-01" (set_time only)."""
    cert = _certificate("clock-01", SET_TIME, T0 + 365 * 86400)
    options = {"key": "clock-01", "signer": "tech", "cert": cert, "action": "set_time",
               "args": ('{"time":%d}' % BACK).encode(), "times": LONG, "id": token_id("clock back"),
               "nonce": bytes(nonce)}
    return fx.token(options)


def stays_refused(rig, host, data, code):
    witness = Witness(rig)
    nack = host.nack(messages.TOKEN, token=data)
    assert nack[0] == code, "NACK 0x%02x (%s), expected 0x%02x" % (nack[0], nack[1], code)
    assert witness.changes() == [], witness.changes()
    assert rig.compliance == "lockout" and not rig.relay.on


def _expired(rig, host):
    rig.advance(2 * HOUR)  # the window token and the late-tech delegation have expired
    assert rig.compliance == "lockout" and rig.clock.wall >= T0 + 2 * HOUR
    stays_refused(rig, host, token("window"), errors.EXPIRED)
    stays_refused(rig, host, late_unlock(), errors.DELEGATION_EXPIRED)


def test_a_set_time_key_setting_the_clock_back_revives_no_token_or_delegation():
    rig, host = fresh()
    nonce = host.hello()
    _expired(rig, host)
    reply = host.ok(messages.TOKEN, token=clock_back(nonce))  # in its scope, in the session
    assert reply["detail"] == "clock %d" % BACK and rig.clock.wall == BACK
    stays_refused(rig, host, token("window"), errors.EXPIRED)
    stays_refused(rig, host, late_unlock(), errors.DELEGATION_EXPIRED)
    assert host.ok(messages.STATUS)["now"] >= T0 + 2 * HOUR  # the clock tokens are judged by
    host.ok(messages.TOKEN, token=token("probe"))  # a valid unlock still works
    assert rig.compliance == "code_unlock"


def test_a_reboot_with_the_clock_back_revives_no_token_or_delegation():
    rig, host = fresh()
    _expired(rig, host)
    # the power goes; the RTC comes back at BACK (it lost its time)
    rig = AttackRig(flash=rig.flash, wall=BACK, config=config())
    host = Host(rig)
    host.hello()
    stays_refused(rig, host, token("window"), errors.EXPIRED)
    stays_refused(rig, host, late_unlock(), errors.DELEGATION_EXPIRED)
    rig.clock.wall = T0 - 86400  # and the RTC jumps back by itself while running
    rig.device.step(rig.clock.ms)
    stays_refused(rig, host, token("window"), errors.EXPIRED)
    assert rig.compliance == "lockout" and not rig.relay.on
