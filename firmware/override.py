"""Keypad codes on the device side: the request, the entry, the back-off and the override rules.

The crypto (request digits, code check) is the Authority's; this module owns the policy
around it (defaults from WAC 204-50-092, all in firmware/config.py):
- a request is issued for an action in CODE_ACTIONS ("unlock": a lockout override,
  "clear": the unpaid balance is paid); a request made at the keypad replaces the pending
  one, a request over the link only when none is live (the core decides, with `live`);
  a pending request ends with the lockout it was made in, and with any clear;
- its code must be entered within override_activate_s of the request, is single use,
  and nothing it grants outlives override_dead_s after the request;
- an "unlock" lifts a lockout for min(override_s, what is left of override_dead_s), at
  most overrides_per_service times per service interval; breath tests still apply and a
  temporary (failed-test) lockout is never lifted by it;
- wrong codes: the back-off schedule of firmware/keypad.py (backoff_seconds) with the
  numbers from the configuration (code_free_tries, code_backoff_s, code_backoff_max_s,
  whose defaults are keypad.BACKOFF_*); a right code or a service visit resets it, and the
  count decays by one for every code_decay_s without a wrong code, so nobody can hold the
  client at the longest wait for longer than he keeps typing wrong codes.
Times are dual: a (wall, run) pair expires when either clock passes it (see device.py).
"""

from firmware.keypad import CODE_ACTIONS, backoff_seconds  # noqa: F401 (CODE_ACTIONS re-exported)
from protocol import errors
from protocol.endpoint import Refused

MAX_DIGITS = 16
KEYPAD_REPEAT_S = 60  # a keypad request again within this shows the same one (no new record)


class Codes:
    def __init__(self, config):
        self.config = config
        self.counter = 0  # requests issued, ever (part of the request code)
        self.pending = None  # {"action", "request", "at": [wall, run]}
        self.wrong = 0
        self.wait = None  # [wall, run] before which no code is checked
        self.wrong_at = None  # [wall, run] of the last wrong code (the count decays from it)
        self.used = 0  # overrides used in this service interval
        self.spent = None  # (action, request) of the last code accepted: CODE_USED on reuse
        # screen only, not persisted
        self.entry = None  # digits typed so far on the keypad
        self.showing = False  # the request (or a wait) is on the screen

    # -- persistence
    def state(self):
        return {
            "n": self.counter,
            "p": self.pending,
            "w": self.wrong,
            "t": self.wait,
            "wa": self.wrong_at,
            "u": self.used,
            "s": self.spent,
        }

    def restore(self, saved):
        self.counter = saved.get("n", 0)
        self.pending = saved.get("p")
        self.wrong = saved.get("w", 0)
        self.wait = saved.get("t")
        self.wrong_at = saved.get("wa")
        self.used = saved.get("u", 0)
        self.spent = saved.get("s")

    # -- rules
    def wait_left(self, clock):
        return clock.left(self.wait) if self.wait else 0

    def new_request(self, action, request, clock, at_keypad=False):
        self.counter += 1
        self.pending = {"action": action, "request": request, "at": clock.stamp(), "k": 1 if at_keypad else 0}
        self.showing = True

    def repeat(self, action, clock):
        """True when a keypad request for `action` would repeat the one just made there:
        within KEYPAD_REPEAT_S of a request made on the keypad, pressing the key again shows
        the same request instead of issuing (and logging) a new one, so pressing a key over
        and over cannot fill the event log. A request made over the link is replaced at once."""
        pending = self.pending
        return (pending is not None and pending.get("k") == 1 and pending["action"] == action
                and clock.since(pending["at"]) < KEYPAD_REPEAT_S)

    def live(self, clock):
        """True while a pending request could still be answered (within its activation
        window)."""
        pending = self.pending
        return pending is not None and clock.since(pending["at"]) <= self.config.override_activate_s

    def wrong_count(self, clock):
        """The wrong-code count now: the stored count less one per code_decay_s since the
        last wrong code."""
        if not self.wrong or self.wrong_at is None:
            return self.wrong
        decayed = self.wrong - clock.since(self.wrong_at) // self.config.code_decay_s
        return decayed if decayed > 0 else 0

    def _pending(self):
        pending = self.pending
        if pending is None:
            raise Refused(errors.NO_CODE_REQUEST, "request a code first")
        return pending

    def check_usable(self, clock):
        """The pending request if a code could be checked now; else Refused, nothing changed."""
        pending = self._pending()
        left = self.wait_left(clock)
        if left > 0:
            raise Refused(errors.CODE_BACKOFF, "wait %d s" % left)
        if clock.since(pending["at"]) > self.config.override_activate_s:
            raise Refused(errors.CODE_EXPIRED, "the request is over %d s old" % self.config.override_activate_s)
        return pending

    def wrong_code(self, clock):
        """Count a wrong code; the back-off (seconds) now in force."""
        self.wrong = self.wrong_count(clock) + 1
        self.wrong_at = clock.stamp()
        config = self.config
        wait = backoff_seconds(
            self.wrong,
            {"free_tries": config.code_free_tries, "first_s": config.code_backoff_s, "max_s": config.code_backoff_max_s},
        )
        if wait:
            self.wait = clock.after(wait)
        return wait

    def accepted(self, seq=None):
        """The pending request's action, consumed (single use); resets the wrong count.
        seq: the lockout's directive number a clear code was bound to."""
        pending = self._pending()
        action = pending["action"]
        self.spent = [action, pending["request"], seq]
        self.pending = None
        self.wrong = 0
        self.wrong_at = None
        self.wait = None
        self.entry = None
        self.showing = False
        return action

    def override_seconds(self, clock):
        """How long an unlock accepted now lasts: override_s, cut by override_dead_s."""
        dead_left = self.config.override_dead_s - clock.since(self._pending()["at"])
        return min(self.config.override_s, dead_left)

    def service_reset(self):
        self.used = 0
        self.wrong = 0
        self.wrong_at = None
        self.wait = None
