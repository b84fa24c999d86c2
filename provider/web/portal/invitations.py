"""Invitations: the provider invites the client at account opening; the e-mail carries the
one link that signs up for that account."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMessage
from django.urls import reverse
from django.utils import timezone

from . import billing
from .models import Invitation

VALID_DAYS = 30


def invite(ref: str, base_url: str, *, send_mail: bool = True) -> Invitation:
    """An invitation for billing account `ref`, to the account's e-mail address (sent)."""
    with billing.engine() as e:
        account = e.store.account_by_ref(ref)
    invitation, _ = Invitation.objects.update_or_create(
        ref=ref, defaults={"email": account.email,
                           "expires_at": timezone.now() + timedelta(days=VALID_DAYS)})
    if send_mail:
        send(invitation, base_url)
    return invitation


def link(invitation: Invitation, base_url: str) -> str:
    return base_url.rstrip("/") + reverse("signup", args=[invitation.token])


def send(invitation: Invitation, base_url_or_request) -> None:
    base = (base_url_or_request.build_absolute_uri("/")
            if hasattr(base_url_or_request, "build_absolute_uri") else base_url_or_request)
    EmailMessage(
        subject="Your LCI-777 client portal account",
        body=(f"Your interlock account {invitation.ref} is open. Create your client portal "
              f"account (it is where you see your charges, notices and card on file, get a "
              f"lockout code and book appointments):\n\n{link(invitation, base)}\n\n"
              f"The link is valid for {VALID_DAYS} days."),
        from_email=settings.DEFAULT_FROM_EMAIL, to=[invitation.email],
        headers={"Message-ID": f"<invitation-{invitation.pk}-{invitation.token[:8]}@"
                               f"{settings.MAIL_DOMAIN}>"}).send()
