"""The simulator's timeline as people and programs read it.

A timeline entry is a dict {t, source, event, compliance, session, display, detail}
(see sim/simulator.py). `to_json(entry)` is one JSON Lines record with a fixed key
order (detail keys sorted), so two runs can be compared byte for byte. `to_text(entry)`
is one readable line; `Printer` prints a run as it happens, showing the display only
when it changed.
"""

from __future__ import annotations

import json
import sys
from typing import TextIO

from sim.simulator import format_t

KEYS = ("t", "source", "event", "compliance", "session", "display", "detail")
BRAC_KEYS = ("brac", "reference", "measured")


def _sorted(value):
    if isinstance(value, dict):
        return {key: _sorted(value[key]) for key in sorted(value)}
    if isinstance(value, (list, tuple)):
        return [_sorted(item) for item in value]
    return value


def to_json(entry: dict) -> str:
    ordered = {key: _sorted(entry.get(key)) for key in KEYS}
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
        if key == "detail":  # the handset's own words name times in core seconds
            from host_tools.cli import device_times

            value = device_times(value)
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
        if key in SKIP_DETAIL or value is None or value == "" or (key == "value" and value == 0):
            continue
        parts.append(f"{key}={_value(key, value)}")
    return " ".join(parts)


def to_text(entry: dict, show_display: bool = True) -> str:
    state = entry.get("compliance") or "-"
    session = entry.get("session") or "-"
    text = (f"{format_t(int(round(entry['t'] * 1000))):>16}  {entry['source']:<8} {entry['event']:<22} "
            f"{state}/{session}")
    extra = summary(entry.get("detail"))
    if extra:
        text += f"  {extra}"
    if show_display:
        line1, line2 = (entry.get("display") or ["", ""])[:2]
        text += f"\n{'':>18}[{line1:<16}|{line2:<16}]"
    return text


class Printer:
    """Print entries as they come: JSON Lines, or readable lines with display changes."""

    def __init__(self, json_lines: bool = False, out: TextIO | None = None):
        self.json_lines = json_lines
        self.out = out or sys.stdout
        self._display = None

    def __call__(self, entry: dict) -> None:
        if self.json_lines:
            print(to_json(entry), file=self.out)
            return
        display = tuple(entry.get("display") or ())
        changed = display != self._display
        self._display = display
        print(to_text(entry, show_display=changed and any(display)), file=self.out)
