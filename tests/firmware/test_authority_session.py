"""The attack table at the Authority level, both runtimes: time and sessions — the clock
set back, session binding, an expired delegation.

Under the WASI MicroPython runner this file allocates well under the VM's 64 MB heap: the
runner's guest (tests/mpy/guest.py) does not survive a garbage collection (see
docs/security.md section 7), so the Authority tests are split across files to stay below
it. Keep it so when adding tests, or make the guest GC-safe first.
"""

from protocol import errors
from tests.firmware.authority_fixtures import (
    NONCE,
    NOW,
    outcome,
    token,
)


def test_clock_set_back_cannot_revive_an_expired_token():
    data = token({"times": (NOW - 700, NOW - 600, NOW)})
    # expired at `now` it stays refused, however often it is tried
    assert outcome(data) == errors.EXPIRED
    assert outcome(data) == errors.EXPIRED
    # moving the clock takes a set_time token: bound to the live session, in scope
    set_back = ('{"time":%d}' % (NOW - 3600)).encode()
    assert outcome(token({"key": "field-02", "action": "set_time", "args": set_back})) == errors.SESSION_MISMATCH
    stale = token({"key": "field-02", "action": "set_time", "args": set_back, "nonce": b"S" * 16})
    assert outcome(stale, nonce=NONCE) == errors.SESSION_MISMATCH
    assert outcome(token({"key": "tech-01", "action": "set_time", "args": set_back, "nonce": NONCE}), nonce=NONCE) == errors.OUT_OF_SCOPE


def test_session_binding():
    data = token({"key": "field-02", "action": "service", "args": b"{}", "nonce": NONCE})
    assert outcome(data, nonce=NONCE) is None
    assert outcome(data, nonce=b"M" * 16) == errors.SESSION_MISMATCH
    assert outcome(data, nonce=None) == errors.SESSION_MISMATCH
    # service and set_time must carry the nonce
    assert outcome(token({"key": "field-02", "action": "service", "args": b"{}"}), nonce=NONCE) == errors.SESSION_MISMATCH
    # an unlock may be bound or not
    assert outcome(token({"nonce": NONCE}), nonce=NONCE) is None
    assert outcome(token({"nonce": NONCE}), nonce=None) == errors.SESSION_MISMATCH


def test_expired_delegation_is_refused():
    data = token({"key": "old-tech", "action": "service", "args": b"{}", "nonce": NONCE})
    assert outcome(data, nonce=NONCE) == errors.DELEGATION_EXPIRED
    assert outcome(data, now=NOW - 2, nonce=NONCE) is None  # before the delegation ended
