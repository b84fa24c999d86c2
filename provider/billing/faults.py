"""Fault injection for the crash-then-rerun tests: a real SIGKILL of this process at a chosen point.

`LCI_BILLING_CRASH_AT=N` makes the N-th crash point reached by this process kill it (kill -9, no
cleanup, no flush). Crash points sit where a crash hurts most: right after the processor answered
(money moved, nothing recorded), after the batch was written but before COMMIT, and right after
COMMIT. Unset (the normal case), a crash point costs one integer comparison.
"""

from __future__ import annotations

import os
import signal

_target = int(os.environ.get("LCI_BILLING_CRASH_AT", "0") or 0)
_count = 0


def crash_point() -> None:
    global _count
    if _target:
        _count += 1
        if _count == _target:
            os.kill(os.getpid(), signal.SIGKILL)
