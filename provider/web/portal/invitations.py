"""Invitations: the provider invites the client at account opening; the e-mail carries the
one link that signs up for that account. The mail goes through the retried outbox
(mailer.queue): a mail server that is down delays it, never loses it."""

from __future__ import annotations

from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from . import billing, mailer
from .models import Invitation, OutboxMail

VALID_DAYS = 30


def invite(ref: str, base_url: str, *, send_mail: bool = True) -> Invitation:
    """An invitation for billing account `ref`, to the account's e-mail address (queued and
    tried at once)."""
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


def send(invitation: Invitation, base_url_or_request) -> OutboxMail:
    """Queue the invitation's e-mail (a new message each time: staff resend one that was lost
    in the recipient's mailbox; the outbox's retries of one message keep its Message-ID)."""
    base = (base_url_or_request.build_absolute_uri("/")
            if hasattr(base_url_or_request, "build_absolute_uri") else base_url_or_request)
    return mailer.queue(
        "invitation", invitation.email, "Your LCI-777 client portal account",
        f"Your interlock account {invitation.ref} is open. Create your client portal "
        f"account (it is where you see your charges, notices and card on file, get a "
        f"lockout code and book appointments):\n\n{link(invitation, base)}\n\n"
        f"The link is valid for {VALID_DAYS} days.")
