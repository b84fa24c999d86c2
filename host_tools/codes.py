"""The provider's answer to a keypad request code (read aloud by a client on the phone).

    answer(master_secret, serial, request, action, lockout=None) -> "39517204"
        (lockout: for a clear code, the directive number of the lockout it answers, SPEC 9.8)
    describe_request(request) -> {"action": "unlock", "counter": 42 (mod 1000), "digits": ...}

The device secret is derived from the master secret and the serial (host_tools/keys.py), so
nothing per device is stored. The computation is protocol/keycodes.py's, the same code the
device runs. A request that was misread (wrong length, check digit off, issued for another
action) raises CodeError with one line saying so, so the agent asks the client to read it
again instead of giving a code that will not work.
"""

from __future__ import annotations

from host_tools.keys import derive_device_secret
from protocol import keycodes
from protocol.messages import ACTIONS


class CodeError(ValueError):
    """A request or action the provider cannot answer; the message is one line for people."""


def describe_request(request: str) -> dict:
    """What a request code says about itself: its action and its counter (mod 1000)."""
    try:
        digits = keycodes.parse_request(request)
    except ValueError as exc:
        raise CodeError(str(exc)) from None
    action = ACTIONS[int(digits[0])]
    if action not in keycodes.CODE_ACTIONS:
        raise CodeError(f"request code names action {action!r}, which no keypad code carries")
    return {"action": action, "counter": int(digits[1:4]), "digits": digits}


def answer(master_secret: bytes, serial: str, request: str, action: str, *,
           digits: int = keycodes.CODE_DIGITS, lockout: int | None = None) -> str:
    """The numeric code (`digits` digits, no separators) that answers `request` for `action`;
    a clear code answers one lockout: `lockout` is that lockout's directive number (`seq`)."""
    if action not in keycodes.CODE_ACTIONS:
        raise CodeError(f"no keypad code for action {action!r} (codes: {', '.join(keycodes.CODE_ACTIONS)})")
    if not 8 <= digits <= 9:
        raise CodeError("codes are 8 or 9 digits")
    if action == "clear" and (type(lockout) is not int or lockout < 0):
        raise CodeError("a clear code answers one lockout: give the directive number (seq) of that lockout")
    if action != "clear" and lockout is not None:
        raise CodeError("only a clear code names a lockout")
    try:
        return keycodes.answer_code(derive_device_secret(master_secret, serial), serial, request, action, digits,
                                  lockout)
    except ValueError as exc:
        raise CodeError(str(exc)) from None
