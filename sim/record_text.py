"""A device record's detail for people: the times it carries shown in ISO 8601.

The core writes a few record kinds with times in their detail text, each in a fixed layout
(docs/eventlog.md, "Record types"); this module reads those fields by the record's kind (and,
for refusals, by the NACK code the record names) and writes them back as ISO 8601 with the
zone. Any other detail is shown as it is: a number is never guessed to be a time.

    service_summary   "next service T"
    clock_change      "OLD>NEW"
    token_accepted    "ACTION KEY RESULT", a service_close's RESULT being "next service T"
    refusals          "SOURCE 0xCC REASON", REASON for the token's time checks:
                      0x12 "expired at T, now T", 0x13 "valid from T, now T",
                      0x16 "KEY expired at T"
"""

from __future__ import annotations

from host_tools.cli import record_time
from protocol import errors

NEXT_SERVICE = "next service "


def _t(text: str) -> str | None:
    """A core-seconds field in ISO 8601; None when the field is not a number."""
    return record_time(int(text)) if text.isdigit() else None


def _next_service(text: str) -> str | None:
    if not text.startswith(NEXT_SERVICE):
        return None
    when = _t(text[len(NEXT_SERVICE):])
    return None if when is None else NEXT_SERVICE + when


def _clock_change(text: str) -> str | None:
    old, sep, new = text.partition(">")
    old_t, new_t = _t(old), _t(new)
    return f"{old_t} -> {new_t}" if sep and old_t and new_t else None


def _token_accepted(text: str) -> str | None:
    parts = text.split(" ", 2)
    if len(parts) == 3 and parts[0] == "service_close":
        result = _next_service(parts[2])
        return None if result is None else f"{parts[0]} {parts[1]} {result}"
    return None


def _pair(reason: str, first: str) -> str | None:
    """'<first> T, now T' (the token's own time, then the handset's clock)."""
    if not reason.startswith(first + " "):
        return None
    own, sep, now = reason[len(first) + 1:].partition(", now ")
    own_t, now_t = _t(own), _t(now)
    return f"{first} {own_t}, handset clock {now_t}" if sep and own_t and now_t else None


def _refusal_reason(code: int, reason: str) -> str | None:
    if code == errors.EXPIRED:
        return _pair(reason, "expired at")
    if code == errors.NOT_YET_VALID:
        return _pair(reason, "valid from")
    if code == errors.DELEGATION_EXPIRED:
        key, sep, when = reason.rpartition(" expired at ")
        when_t = _t(when)
        return f"{key} expired at {when_t}" if sep and when_t else None
    return None


def _refusals(text: str) -> str | None:
    parts = text.split(" ", 2)
    if len(parts) < 3 or not parts[1].startswith("0x"):
        return None
    try:
        code = int(parts[1], 16)
    except ValueError:
        return None
    reason = _refusal_reason(code, parts[2])
    return None if reason is None else f"{parts[0]} {parts[1]} {reason}"


LAYOUTS = {
    "service_summary": _next_service,
    "clock_change": _clock_change,
    "token_accepted": _token_accepted,
    "refusals": _refusals,
}


def detail_text(kind_name: str | None, detail: str) -> str:
    """The record's detail with the times its kind's layout holds in ISO 8601."""
    layout = LAYOUTS.get(kind_name or "")
    shown = layout(detail) if layout is not None and detail else None
    return detail if shown is None else shown
