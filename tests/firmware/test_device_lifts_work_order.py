"""Scope x cause, through the real Authority and the protocol (both runtimes): a key holding
only the scope(s) below does everything it may to each recall cause's lockout; the cause is
lifted exactly where firmware/lifts.py's table (docs/security.md) says. One file per few
scopes: each verification allocates ~1.1 MB under MicroPython (tests/firmware/lift_rig.py).
"""

from firmware import lifts
from tests.firmware.lift_rig import CAUSES, expected, outcome


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
