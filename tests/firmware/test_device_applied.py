"""ALREADY_APPLIED and the clear code's lockout, through the real Authority and the protocol
(both runtimes).

A TOKEN whose id the device recorded as applied is answered ALREADY_APPLIED and changes
nothing, but only once its signature and serial verified: a forged or misdirected token
carrying an applied id gets the same answer as any other forgery. A keypad clear code works
only in the lockout whose directive number the back office bound it to, and a clear token for
a lockout a code already cleared is SUPERSEDED.
"""

from firmware import eventlog, keypad
from protocol import errors, messages
from tests.firmware import authority_fixtures as fx
from tests.firmware.attack_rig import (
    LONG,
    SECRET,
    SERIAL,
    Witness,
    flipped,
    fresh,
    rejection,
    token,
    token_id,
)

CLEAR = messages.ACTIONS.index("clear")


def _refused(rig, host, data, code):
    """TOKEN `data`: NACK `code`, nothing changed, the refusal counted (tests/firmware/
    test_device_attacks.py's rule: summed up in a record, or pending in RAM)."""
    witness = Witness(rig)
    before = rig.device.refusals.pending("token")[0]
    nack = host.nack(messages.TOKEN, token=data)
    assert nack[0] == code, nack
    assert witness.changes() == [], witness.changes()
    count, last, detail = rig.device.refusals.pending("token")
    added = witness.added()
    if code == errors.ALREADY_APPLIED:  # recorded when it was applied: no record, not counted
        assert added == [] and count == before, (added, count)
    elif added:
        assert count == 0 and [rejection(r) for r in added] == [
            (eventlog.REFUSALS, before + 1, "token 0x%02x %s" % (nack[0], nack[1]))
        ], added
    else:
        assert (count, last, detail) == (before + 1, nack[0], nack[1])


def test_an_applied_token_is_answered_already_applied_and_changes_nothing():
    rig, host = fresh()
    data = token("probe")
    assert host.ok(messages.TOKEN, token=data)["detail"] == "3600 s"
    assert rig.compliance == "code_unlock"
    _refused(rig, host, data, errors.ALREADY_APPLIED)  # a retry after a lost reply
    rig.advance(3600)  # the window ended: where it would apply again
    assert rig.compliance == "lockout"
    _refused(rig, host, data, errors.ALREADY_APPLIED)
    # the same id, but not a token the provider made: the forgery's own answer
    _refused(rig, host, flipped(data, len(data) - 40), errors.BAD_SIGNATURE)
    other = fx.token({"serial": "LCI-0002", "times": LONG, "id": token_id("probe")})
    _refused(rig, host, other, errors.WRONG_DEVICE)
    assert rig.compliance == "lockout"


def _lockout(seq):
    args = ('{"cause":"unpaid_balance","seq":%d}' % seq).encode()
    return fx.token({"action": "lockout", "args": args, "times": LONG, "id": token_id("lockout %d" % seq)})


def _clear(seq):
    args = ('{"cause":"unpaid_balance","seq":%d}' % seq).encode()
    return fx.token({"action": "clear", "args": args, "times": LONG, "id": token_id("clear %d" % seq)})


def test_a_clear_code_works_only_in_its_lockout_and_retires_its_token():
    rig, host = fresh()
    assert host.ok(messages.TOKEN, token=_lockout(7))["detail"] == "lockout"
    request = host.ok(messages.CODE_REQUEST, action=CLEAR)["request"]
    stale = keypad.answer_code(SECRET, SERIAL, request, "clear", seq=6)  # an older lockout's
    assert host.nack(messages.CODE_ENTER, code=stale)[0] == errors.BAD_CODE
    assert rig.device.causes & 1
    right = keypad.answer_code(SECRET, SERIAL, request, "clear", seq=7)
    assert host.ok(messages.CODE_ENTER, code=right)["action"] == CLEAR
    assert not rig.device.causes & 1
    _refused(rig, host, _clear(7), errors.SUPERSEDED)  # the token for the same lockout is dead
