"""Billing directives are ordered, and a clear is answered once (both runtimes).

The back office numbers each device's directives (`seq`, SPEC 9.4): a recall or lockout its
own number, a clear the number of the lockout it answers. An older clear never ends a newer
lockout; whichever of the clear token and the keypad clear code is used, the other is dead
afterwards; a late lockout never re-imposes what a newer clear answered; a clear ends every
pending code request.
"""

from firmware.config import Config
from protocol import errors
from protocol.endpoint import Refused
from tests.firmware.authority_double import answer, mint
from tests.firmware.device_rig import Rig

UNPAID = 1


def apply(rig, action, args, key="billing"):
    """Apply a token; None, or the NACK code it was refused with."""
    try:
        rig.device.apply_token(mint(action, args, key=key), rig.nonce())
    except Refused as refusal:
        return refusal.code
    return None


def lockout(rig, seq):
    assert apply(rig, "lockout", {"cause": "unpaid_balance", "seq": seq}) is None
    assert rig.compliance == "lockout"


def clear_token(seq):
    return mint("clear", {"cause": "unpaid_balance", "seq": seq}, key="billing")


def present(rig, token):
    try:
        rig.device.apply_token(token, rig.nonce())
    except Refused as refusal:
        return refusal.code
    return None


def code(rig, action, seq=None):
    """Request a code at the keypad and enter the answer for lockout `seq`; None or the NACK."""
    rig.keys("A" if action == "unlock" else "B")
    request = rig.device.codes.pending["request"]
    try:
        rig.device.enter_code(answer(request, action, seq=seq))
    except Refused as refusal:
        return refusal.code
    return None


def test_an_older_clear_never_ends_a_newer_lockout():
    rig = Rig()
    lockout(rig, 1)
    stale = clear_token(1)  # issued on full payment, never used: the keypad code was
    assert code(rig, "clear", 1) is None and rig.compliance == "normal"
    lockout(rig, 2)  # a later lockout
    assert present(rig, stale) == errors.SUPERSEDED
    assert rig.compliance == "lockout" and rig.device.causes & UNPAID
    assert code(rig, "clear", 2) is None and rig.compliance == "normal"  # its own clear works


def test_a_clear_code_retires_the_clear_token_of_its_lockout():
    rig = Rig()
    lockout(rig, 1)
    token = clear_token(1)
    assert code(rig, "clear", 1) is None and rig.compliance == "normal"
    assert present(rig, token) == errors.SUPERSEDED  # the same lockout, already answered
    assert rig.compliance == "normal" and rig.device.directive_seq == 1


def test_a_clear_token_retires_the_clear_code_of_its_lockout():
    rig = Rig()
    lockout(rig, 1)
    rig.keys("B")  # the client asked for a clear code ...
    request = rig.device.codes.pending["request"]
    assert present(rig, clear_token(1)) is None  # ... and the clear token came first
    assert rig.compliance == "normal" and rig.device.codes.pending is None
    late = answer(request, "clear", seq=1)
    try:
        rig.device.enter_code(late)
        raise AssertionError("a code for a cleared lockout was accepted")
    except Refused as refusal:
        assert refusal.code == errors.NO_CODE_REQUEST
    lockout(rig, 2)
    # the back office's code for lockout 1, given against a request made in lockout 2
    assert code(rig, "clear", 1) == errors.BAD_CODE
    assert rig.compliance == "lockout" and rig.device.causes & UNPAID


def test_a_clear_retires_every_other_clear_for_that_lockout():
    rig = Rig()
    lockout(rig, 1)
    first, second = clear_token(1), clear_token(1)  # e.g. issued twice by the back office
    assert present(rig, first) is None and rig.compliance == "normal"
    assert present(rig, second) == errors.SUPERSEDED
    lockout(rig, 2)
    assert present(rig, second) == errors.SUPERSEDED
    assert rig.compliance == "lockout"


def test_a_late_directive_never_reimposes_what_a_newer_clear_answered():
    rig = Rig()
    assert apply(rig, "recall", {"cause": "unpaid_balance", "days": 7, "seq": 3}) is None
    late_lockout = mint("lockout", {"cause": "unpaid_balance", "seq": 4}, key="billing")
    assert present(rig, clear_token(4)) is None  # paid after the lockout was decided
    assert rig.compliance == "normal" and rig.device.directive_seq == 4
    assert present(rig, late_lockout) == errors.SUPERSEDED  # it arrives late
    assert rig.compliance == "normal"
    assert apply(rig, "recall", {"cause": "unpaid_balance", "days": 7, "seq": 2}) == errors.SUPERSEDED
    assert rig.compliance == "normal" and not rig.device.causes


def test_the_order_survives_a_reboot():
    rig = Rig()
    lockout(rig, 5)
    assert present(rig, clear_token(5)) is None
    rig.reboot()
    assert rig.device.directive_seq == 5
    assert apply(rig, "lockout", {"cause": "unpaid_balance", "seq": 5}) == errors.SUPERSEDED
    assert rig.compliance == "normal"


def test_an_unused_code_of_one_lockout_never_works_in_the_next():
    rig = Rig()
    lockout(rig, 1)
    rig.keys("A")  # an unlock code requested in lockout 1, answered, never entered
    unused = answer(rig.device.codes.pending["request"], "unlock")
    assert present(rig, clear_token(1)) is None and rig.compliance == "normal"
    lockout(rig, 2)  # within the request's 20 hours
    try:
        rig.device.enter_code(unused)
        raise AssertionError("a code from the last lockout was accepted")
    except Refused as refusal:
        assert refusal.code == errors.NO_CODE_REQUEST
    assert rig.compliance == "lockout"



def test_a_clear_ends_a_pending_request_even_where_the_lockout_goes_on():
    rig = Rig()
    lockout(rig, 1)
    rig.device.tamper(1)  # a second cause: the lockout outlives the clear
    rig.keys("A")
    unused = answer(rig.device.codes.pending["request"], "unlock")
    assert present(rig, clear_token(1)) is None
    assert rig.compliance == "lockout" and rig.device.codes.pending is None
    try:
        rig.device.enter_code(unused)
        raise AssertionError("a request outlived the clear")
    except Refused as refusal:
        assert refusal.code == errors.NO_CODE_REQUEST


def test_a_request_ends_with_the_lockout_it_was_made_in():
    rig = Rig(config=Config(recall_s=3600))  # recalls of an hour: the next lockout comes soon
    rig.device.tamper(1)
    rig.advance(rig.config.recall_s + 1)
    assert rig.compliance == "lockout"
    rig.keys("A")
    unused = answer(rig.device.codes.pending["request"], "unlock")
    rig.service()  # the technician ends this lockout
    rig.close_service()
    assert rig.compliance == "normal"
    rig.device.tamper(1)  # the next lockout, within the request's 20 hours
    rig.advance(rig.config.recall_s + 1)
    assert rig.compliance == "lockout" and rig.device.codes.live(rig.device.tb) is False
    try:
        rig.device.enter_code(unused)
        raise AssertionError("a code from the last lockout was accepted")
    except Refused as refusal:
        assert refusal.code == errors.NO_CODE_REQUEST
