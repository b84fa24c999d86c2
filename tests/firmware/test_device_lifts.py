"""Scope x cause, through the real Authority and the protocol (both runtimes): a key holding
only the scope(s) below does everything it may to each recall cause's lockout; the cause is
lifted exactly where firmware/lifts.py's table (docs/security.md) says."""

from firmware import lifts
from protocol import errors
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


def test_work_order_lifts_only_its_causes():
    for cause in CAUSES:
        kept, state, met = outcome("work_order", cause)
        assert (kept, state) == expected("work_order", cause), (
            lifts.LIFTS["work_order"],
            cause,
            kept,
            state,
            met,
        )
        _nacks_work_order(cause, met)


def _nacks_work_order(cause, met):
    assert met == [None, None], met  # removed and installed again, every cause carried over
