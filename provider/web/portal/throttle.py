"""Sign-in throttling: too many failures for one user name, or from one address, within the
window stop further tries until the window has passed (failures are rows, so every server
process sees them)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from .models import LoginFailure


def client_ip(request) -> str | None:
    return request.META.get("REMOTE_ADDR") or None if request is not None else None


def blocked(request, username: str) -> bool:
    since = timezone.now() - timedelta(seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS)
    ip = client_ip(request)
    who = Q(username=username.lower())
    if ip:
        who |= Q(ip=ip)
    recent = LoginFailure.objects.filter(at__gte=since)
    allowed = settings.LOGIN_FAILURES_ALLOWED
    by_name = recent.filter(username=username.lower()).count()
    by_ip = recent.filter(ip=ip).count() if ip else 0
    return by_name >= allowed or by_ip >= 4 * allowed or recent.filter(who).count() > 8 * allowed


def record_failure(request, username: str) -> None:
    LoginFailure.objects.create(username=username.lower(), ip=client_ip(request))
