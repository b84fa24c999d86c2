"""The handset's compliance state as last reported: what the data link server (or a technician's
visit) hands the portal. `record` takes the device's STATUS-like dict."""

from __future__ import annotations

from datetime import UTC, datetime

from protocol.coretime import EPOCH_UNIX

from .models import HandsetReport


def record(serial: str, status: dict, *, reported_at: datetime, source: str = "link") -> HandsetReport:
    """Store one report: compliance, the recall's deadline (STATUS `deadline`, core seconds)
    while in early service recall, the screen."""
    deadline = status.get("deadline") if status.get("compliance") == "early_service_recall" \
        else None
    display = status.get("display") or ["", ""]
    return HandsetReport.objects.create(
        serial=serial, compliance=status.get("compliance") or "unknown",
        recall_deadline=(datetime.fromtimestamp(deadline + EPOCH_UNIX, UTC)
                         if isinstance(deadline, int) and deadline > 0 else None),
        display=" / ".join(x.strip() for x in display if x and x.strip())[:80],
        source=source, reported_at=reported_at)
