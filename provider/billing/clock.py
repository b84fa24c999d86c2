"""Billing time: integer Unix seconds (UTC) inside, ISO 8601 at the edges.

The engine's clock is virtual (meta 'now' in the database, moved only by `advance`), like a
payment provider's test clock, so a year of billing runs in moments and reruns are exact.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

FIRST_YEAR, LAST_YEAR = 1970, 2099  # every date the back office accepts


def parse_when(text: str) -> int:
    """'2025-01-06', '2025-01-06T09:30', '2025-01-06T09:30:00Z' (UTC) -> Unix seconds.
    Raises ValueError with a readable message."""
    if not isinstance(text, str):
        raise ValueError(f"expected a date like 2025-01-06 or 2025-01-06T09:30, got {text!r}")
    body = text.strip()
    if body.endswith("Z"):
        body = body[:-1]
    for fmt in ("%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M",
                "%Y-%m-%d %H:%M:%S"):
        try:
            moment = datetime.strptime(body, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
        if not FIRST_YEAR <= moment.year <= LAST_YEAR:
            raise ValueError(f"date out of range: {text!r} (years {FIRST_YEAR} to {LAST_YEAR})")
        return int(moment.timestamp())
    raise ValueError(f"not a date: {text!r} (expected 2025-01-06 or 2025-01-06T09:30, UTC)")


def from_toml(value) -> int:
    """A TOML date / datetime (naive = UTC) or a string -> Unix seconds."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        if not FIRST_YEAR <= value.year <= LAST_YEAR:
            raise ValueError(f"date out of range: {value} (years {FIRST_YEAR} to {LAST_YEAR})")
        return int(value.timestamp())
    if hasattr(value, "isoformat") and not isinstance(value, str):  # datetime.date
        return parse_when(value.isoformat())
    return parse_when(value)


@lru_cache(maxsize=4096)  # a daily run writes the same few dates into thousands of notices
def iso(t: int | None) -> str | None:
    """Unix seconds -> '2025-01-06T09:30:00Z' (None stays None)."""
    if t is None:
        return None
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def day(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d")
