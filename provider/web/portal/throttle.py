"""Sign-in throttling: too many failures for one user name, or from one address, within the
window stop further tries until the window has passed (failures are rows, so every server
process sees them)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from .models import LoginFailure


def client_ip(request) -> str | None:
    return request.META.get("REMOTE_ADDR") or None if request is not None else None


def blocked(request, username: str) -> bool:
    """Refused: LOGIN_FAILURES_ALLOWED failures for this user name, or four times as many from
    this address (many names tried from one place), within the window."""
    since = timezone.now() - timedelta(seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS)
    recent = LoginFailure.objects.filter(at__gte=since)
    allowed = settings.LOGIN_FAILURES_ALLOWED
    if recent.filter(username=username.lower()).count() >= allowed:
        return True
    ip = client_ip(request)
    return bool(ip) and recent.filter(ip=ip).count() >= 4 * allowed


def record_failure(request, username: str) -> None:
    LoginFailure.objects.create(username=username.lower(), ip=client_ip(request))
