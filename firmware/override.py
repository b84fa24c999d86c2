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
Times are dual: a (wall, run) pair expires when either clock passes it (see timebase.py).

`Codes` keeps that state; the functions at the end (key, request_code, enter_code) are the
device's keypad: they take the Device.
"""

try:
    from micropython import const
except ImportError:  # CPython: the value itself
    const = int  # type: ignore[misc, assignment]

from firmware import eventlog as ev
from firmware.compliance import clear_causes
from firmware.driving import refuse
from firmware.keypad import backoff_seconds
from firmware.lifts import UNPAID
from firmware.unload import drop
from protocol import errors
from protocol.endpoint import Refused
from protocol.messages import CODE_ACTIONS

_MAX_DIGITS = const(16)
_KEYPAD_REPEAT_S = const(60)  # a keypad request again within this shows the same one (no new record)


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
        within _KEYPAD_REPEAT_S of a request made on the keypad, pressing the key again shows
        the same request instead of issuing (and logging) a new one, so pressing a key over
        and over cannot fill the event log. A request made over the link is replaced at once."""
        pending = self.pending
        return (pending is not None and pending.get("k") == 1 and pending["action"] == action
                and clock.since(pending["at"]) < _KEYPAD_REPEAT_S)

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


# ---- the device's keypad ------------------------------------------------------------------
def key(d, char):
    """A key pressed on the handset: 'A' request an unlock code, 'B' a clear code,
    digits then '#' enter it, '*' cancel (or refuse a pending test)."""
    codes = d.codes
    try:
        if char == "*":
            if codes.entry is not None or codes.showing:
                codes.entry = None
                codes.showing = False
            else:
                refuse(d)
        elif char == "A" or char == "B":
            request_code(d, CODE_ACTIONS[0] if char == "A" else CODE_ACTIONS[1], True)
        elif "0" <= char <= "9" and len(char) == 1:
            if codes.pending is not None:
                entry = codes.entry or ""
                if len(entry) < _MAX_DIGITS:
                    codes.entry = entry + char
        elif char == "#" and codes.entry:
            entry = codes.entry
            codes.entry = None
            enter_code(d, entry)
    except Refused:
        pass  # logged where refused; the screen shows the outcome


def _preconditions(d, action):
    if not d.provisioned or d.authority is None:
        raise Refused(errors.NOT_PROVISIONED)
    d.compliance.require("code")
    if action == "unlock":
        d.compliance.require("unlock_code")
        if d.codes.used >= d.config.overrides_per_service:
            raise Refused(errors.OVERRIDE_LIMIT, "%d per service interval" % d.config.overrides_per_service)
    elif action == "clear":
        if not d.causes & UNPAID:
            raise Refused(errors.NOT_PERMITTED, "no unpaid balance")
    else:
        raise Refused(errors.BAD_ARGUMENT, "no code for action %s" % action)


def request_code(d, action, at_keypad=False):
    """Issue a request code for `action` (shown on the handset); the request string.

    A request made on the handset's keypad (at_keypad) replaces a pending one: the
    client is at the handset. One over the link (CODE_REQUEST) does not replace a
    pending request that can still be answered: NOT_PERMITTED, nothing changes."""
    return d._apply(_request_code, d, action, at_keypad)


def _request_code(d, action, at_keypad):
    _preconditions(d, action)
    codes = d.codes
    pending = codes.pending
    if at_keypad and pending is not None and codes.repeat(action, d.tb):
        codes.showing = True
        return pending["request"]
    if not at_keypad and codes.live(d.tb):
        raise Refused(errors.NOT_PERMITTED, "a request is pending on the handset: cancel it there or let it expire")
    nonce = d.hw.random.bytes(8)
    request = d.authority.request_code(action, codes.counter + 1, nonce)
    codes.new_request(action, request, d.tb, at_keypad)
    d._log(ev.CODE_REQUEST, value=codes.counter, detail="%s %s" % (action, request))
    return request


def enter_code(d, code):
    """Check a keypad code against the pending request; (action, until wall time or 0)."""
    from protocol.keycodes import normalize  # imported for this code, dropped after it

    digits = normalize(code)
    drop("protocol.keycodes", "protocol.compare")
    try:
        if not digits or len(digits) > _MAX_DIGITS:
            raise Refused(errors.BAD_ARGUMENT, "a code is 1..%d digits" % _MAX_DIGITS)
        action, until = d._apply(_enter_code, d, digits)
        if action is None:
            raise Refused(errors.BAD_CODE, "wait %d s" % until if until else "")
    except Refused as refusal:
        d._refused("code", refusal)
        raise
    return action, until


def _enter_code(d, code):
    codes = d.codes
    tb = d.tb
    if codes.pending is None and codes.spent is not None:
        spent = codes.spent
        if d.authority.check_code(spent[1], code, spent[0], spent[2] if len(spent) > 2 else None):
            raise Refused(errors.CODE_USED)
    pending = codes.check_usable(tb)
    action = pending["action"]
    _preconditions(d, action)
    # a clear code answers one lockout: the directive number of the one in force
    seq = d.directive_seq if action == "clear" else None
    if not d.authority.check_code(pending["request"], code, action, seq):
        return None, codes.wrong_code(tb)  # counted and saved; enter_code refuses
    until = 0
    if action == "unlock":
        seconds = codes.override_seconds(tb)
        if seconds <= 0:
            raise Refused(errors.CODE_EXPIRED)
        codes.accepted()
        codes.used += 1
        d.unlock_until = tb.after(seconds)
        until = d.unlock_until[0]
        d.compliance.fire("unlock_code")
        d._log(ev.UNLOCK_START, value=seconds, detail="keypad code")
    else:
        codes.accepted(seq)
        clear_causes(d, UNPAID, "keypad code")
    d._log(ev.CODE_ACCEPTED, detail=action)
    return action, until
