"""Keypad codes on the device: the wrong-code back-off schedule, and the code derivation.

The request and answer derivation is protocol/keycodes.py (the provider's tools compute the
same answers); it is importable from here too (keypad.CodeKey, keypad.request_code, ...).
The back-off schedule is defined here as data (BACKOFF_*) with backoff_seconds(), so the
core and docs/security.md use the same numbers, and expected_bruteforce_seconds() derives
the expected time to guess a code under it. Single use and the override window are
firmware/override.py's.
"""

from protocol.messages import CODE_DIGITS


def __getattr__(name):
    """The code derivation's names (keypad.CodeKey, keypad.request_code, ...) are
    protocol.keycodes', read from there when asked for (a board imports that module only for
    a code request or check: firmware/authority.py)."""
    from protocol import keycodes

    return getattr(keycodes, name)

# ---- back-off ------------------------------------------------------------------------------
# Wrong codes: the first BACKOFF_FREE_TRIES cost nothing, the next waits BACKOFF_FIRST_S,
# each further wrong code doubles the wait up to BACKOFF_MAX_S. The count persists across
# requests and reboots, resets on a right code (or a service visit) and decays with time.
BACKOFF_FREE_TRIES = 3
BACKOFF_FIRST_S = 30
BACKOFF_MAX_S = 3600
# ... and the count decays by one for every BACKOFF_DECAY_S without a wrong code (one try
# per decay period at the steady state: the same rate as the longest wait)
BACKOFF_DECAY_S = 3600
BACKOFF_SCHEDULE = {
    "free_tries": BACKOFF_FREE_TRIES,
    "first_s": BACKOFF_FIRST_S,
    "max_s": BACKOFF_MAX_S,
    "decay_s": BACKOFF_DECAY_S,
}


def backoff_seconds(wrong, schedule=BACKOFF_SCHEDULE):
    """The wait imposed after the `wrong`-th consecutive wrong code."""
    over = wrong - schedule["free_tries"]
    if over <= 0:
        return 0
    wait = schedule["first_s"]
    while over > 1 and wait < schedule["max_s"]:
        wait *= 2
        over -= 1
    return min(wait, schedule["max_s"])


def _steady_cost(schedule):
    return min(schedule["max_s"], schedule.get("decay_s", schedule["max_s"]))


def expected_bruteforce_seconds(digits=CODE_DIGITS, schedule=BACKOFF_SCHEDULE):
    """Expected seconds of enforced waiting before a guesser finds a code.

    Every guess is right with probability at most p = ceil(2^31 / 10^digits) / 2^31 (the
    truncated HMAC reduced mod 10^digits). A guesser needs 1/p guesses on average when each
    request is short-lived (a new request means a new answer); counted conservatively here
    as half the code space, the average for one request that would never expire. Each guess
    waits the back-off of the wrong count before it; typing time is not counted.
    """
    guesses = 10**digits // 2
    # the count decays by one per decay_s: at the steady state a guess costs the longest
    # wait or one decay period, whichever is shorter (waiting out the decay to get back to
    # the free tries buys no more than one guess per decay period)
    steady = _steady_cost(schedule)
    total = 0
    wrong = 0
    while wrong < guesses:
        wait = backoff_seconds(wrong, schedule)
        if wait >= steady:
            return total + (guesses - wrong) * steady
        total += wait
        wrong += 1
    return total
