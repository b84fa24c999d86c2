"""Scope x cause, through the real Authority and the protocol (both runtimes): a key holding
only the scope(s) below does everything it may to each recall cause's lockout; the cause is
lifted exactly where firmware/lifts.py's table (docs/security.md) says. One file per few
scopes: each verification allocates ~1.1 MB under MicroPython (tests/firmware/lift_rig.py).
"""

from firmware import lifts
from protocol import errors
from tests.firmware.lift_rig import CAUSES, expected, outcome


def test_unlock_lifts_only_its_causes():
    for cause in CAUSES:
        kept, state, met = outcome("unlock", cause)
        assert (kept, state) == expected("unlock", cause), (
            lifts.LIFTS["unlock"],
            cause,
            kept,
            state,
            met,
        )
        _nacks_unlock(cause, met)


def test_set_time_lifts_only_its_causes():
    for cause in CAUSES:
        kept, state, met = outcome("set_time", cause)
        assert (kept, state) == expected("set_time", cause), (
            lifts.LIFTS["set_time"],
            cause,
            kept,
            state,
            met,
        )
        _nacks_set_time(cause, met)


def _nacks_unlock(cause, met):
    # the override is accepted; the unlock for good is refused: an unlock key lifts no cause
    assert met == [None, errors.OUT_OF_SCOPE], met


def _nacks_set_time(cause, met):
    assert met == [None], met  # the clock moved; nothing was lifted
