"""Core time: the epoch both sides count from, and the durations every module shares.

The core counts whole seconds since 2020-01-01T00:00:00Z ("core seconds"); the wire, the
event log and signed tokens carry core seconds. The host converts at its edges with
to_unix / from_unix; boards convert from their port's own epoch (firmware/boards/).
"""

# 2020-01-01T00:00:00Z as Unix seconds
EPOCH_UNIX = 1577836800

MINUTE = 60
HOUR = 60 * MINUTE
DAY = 24 * HOUR
WEEK = 7 * DAY


def to_unix(core_seconds):
    """Unix seconds of a moment given in core seconds."""
    return core_seconds + EPOCH_UNIX


def from_unix(unix_seconds):
    """Core seconds of a moment given in Unix seconds (whole seconds, truncated)."""
    return int(unix_seconds) - EPOCH_UNIX
