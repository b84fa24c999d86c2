"""The simulator's timeline as people and programs read it.

A timeline entry is a dict {t, source, event, compliance, session, display, detail}
(see sim/simulator.py). `to_json(entry)` is one JSON Lines record with a fixed key
order (detail keys sorted), so two runs can be compared byte for byte. `to_text(entry)`
is one readable line; `Printer` prints a run as it happens, showing the display only
when it changed.

Times for people have one style across the simulator's outputs (scenario and serve
timelines, the handset's log pane, `make demo` and its report): `stamp()`, the moment in
ISO 8601 with the zone and the day of the story, `2026-01-06T15:09:14Z D01`.
"""

from __future__ import annotations

import json
import sys
from typing import TextIO

from protocol import coretime
from sim.simulator import format_t

KEYS = ("t", "source", "event", "compliance", "session", "display", "detail")
BRAC_KEYS = ("brac", "reference", "measured")


def _sorted(value):
    if isinstance(value, dict):
        return {key: _sorted(value[key]) for key in sorted(value)}
    if isinstance(value, (list, tuple)):
        return [_sorted(item) for item in value]
    return value


def stamp(core_seconds: int, start_s: int) -> str:
    """A moment for people: ISO 8601 UTC with the zone, then the day of the story (D00 is the
    day that starts at `start_s`, the world's time at t=0, both in core seconds)."""
    from host_tools.cli import record_time

    return f"{record_time(core_seconds)} D{(core_seconds - start_s) // coretime.DAY:02d}"


def entry_stamp(entry: dict, start_s: int | None) -> str:
    """stamp() of a timeline entry (its `t` counts seconds from the world's start); without
    the start, the simulator's own count ('d3 14:05:09')."""
    if start_s is None:
        return format_t(int(round(entry["t"] * 1000)))
    return stamp(start_s + int(entry["t"]), start_s)


def to_json(entry: dict, start_s: int | None = None) -> str:
    """One JSON Lines record; with the world's start (core seconds) it also carries `at`, the
    moment in ISO 8601 with the zone, after `t`."""
    ordered = {key: _sorted(entry.get(key)) for key in KEYS}
    if start_s is not None:
        from host_tools.cli import record_time

        ordered = {"t": ordered.pop("t"), "at": record_time(start_s + int(entry["t"])), **ordered}
    return json.dumps(ordered, separators=(",", ":"), default=str, ensure_ascii=False)


# handset times (core seconds) in a step's fields: printed in ISO 8601
TIME_FIELDS = {"next_service", "until", "expires", "deadline", "service_due", "calibration_due", "time"}


def _value(key: str, value) -> str:
    if key in BRAC_KEYS and isinstance(value, int):
        return f"{value / 10000:.3f}"
    if key in TIME_FIELDS and isinstance(value, int) and not isinstance(value, bool) and value >= 10**8:
        from host_tools.cli import core_text

        return core_text(value)
    if isinstance(value, str):
        return value if value and " " not in value and "," not in value else json.dumps(value)
    if isinstance(value, (list, tuple)):  # a list for people: a,b,c (no brackets, no quotes)
        return ",".join(_value(key, v) for v in value) or "-"
    if isinstance(value, dict):
        return ",".join(f"{k}:{_value(k, v)}" for k, v in value.items()) or "-"
    if value is None:
        return "-"
    return json.dumps(value, default=str)


SKIP_DETAIL = {"index", "kind", "kind_name", "compliance", "session", "time"}


def summary(detail) -> str:
    if not isinstance(detail, dict):
        return str(detail)
    parts = []
    for key in sorted(detail):
        value = detail[key]
        if key == "detail" and isinstance(value, str) and "kind_name" in detail:
            # a device record: the times its kind's layout holds, in ISO 8601
            from sim.record_text import detail_text

            value = detail_text(detail["kind_name"], value)
        if key in SKIP_DETAIL or value is None or value == "" or (key == "value" and value == 0):
            continue
        parts.append(f"{key}={_value(key, value)}")
    return " ".join(parts)


def to_text(entry: dict, show_display: bool = True, start_s: int | None = None) -> str:
    state = entry.get("compliance") or "-"
    session = entry.get("session") or "-"
    when = entry_stamp(entry, start_s)
    text = f"{when:>16}  {entry['source']:<8} {entry['event']:<22} {state}/{session}"
    extra = summary(entry.get("detail"))
    if extra:
        text += f"  {extra}"
    if show_display:
        line1, line2 = (entry.get("display") or ["", ""])[:2]
        text += f"\n{'':>{max(16, len(when)) + 2}}[{line1:<16}|{line2:<16}]"
    return text


class Printer:
    """Print entries as they come: JSON Lines, or readable lines with display changes."""

    def __init__(self, json_lines: bool = False, out: TextIO | None = None, start_s: int | None = None):
        self.json_lines = json_lines
        self.start_s = start_s  # the world's time at t=0 (core seconds): times as stamp() shows them
        self.out = out or sys.stdout
        self._display = None

    def __call__(self, entry: dict) -> None:
        if self.json_lines:
            print(to_json(entry, self.start_s), file=self.out)
            return
        display = tuple(entry.get("display") or ())
        changed = display != self._display
        self._display = display
        print(to_text(entry, show_display=changed and any(display), start_s=self.start_s), file=self.out)
