"""Scope x cause, through the real Authority and the protocol (both runtimes): a key holding
only the scope(s) below does everything it may to each recall cause's lockout; the cause is
lifted exactly where firmware/lifts.py's table (docs/security.md) says. One file per few
scopes: each verification allocates ~1.1 MB under MicroPython (tests/firmware/lift_rig.py).
"""

from firmware import lifts
from tests.firmware.lift_rig import CAUSES, expected, outcome


def test_billing_lifts_only_its_causes():
    for cause in CAUSES:
        kept, state, met = outcome("billing", cause)
        assert (kept, state) == expected("billing", cause), (
            lifts.LIFTS["billing"],
            cause,
            kept,
            state,
            met,
        )
        _nacks_billing(cause, met)


def test_calibrate_lifts_only_its_causes():
    for cause in CAUSES:
        kept, state, met = outcome("calibrate", cause)
        assert (kept, state) == expected("calibrate", cause), (
            lifts.LIFTS["calibrate"],
            cause,
            kept,
            state,
            met,
        )
        _nacks_calibrate(cause, met)


def _nacks_billing(cause, met):
    assert met == [None], met  # the clear is accepted, and lifts the unpaid balance only


def _nacks_calibrate(cause, met):
    assert met == [None, None], met  # the session opened and closed
