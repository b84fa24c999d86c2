"""The outgoing mail: billing notices and the portal's own mail, through one retried outbox.

Every notice the engine writes is sent once through Django's mail backend (SMTP in
production), in the order they were written — so a notice announcing an automated attempt
goes out before it. The portal's own mail (invitations, password resets, shipment tracking
numbers) is queued as an OutboxMail row first and sent from there: nothing is sent directly,
so a mail server that is down loses nothing. Each mail's Message-ID is fixed before its first
try: a resend after a lost answer is the same message to the recipient's mail system, never a
second one. A failed send is retried with a growing wait and is visible to staff (admin:
notice deliveries, outbox mails)."""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.utils import timezone

from .billing import engine
from .models import NoticeDelivery, OutboxMail


def message_id(notice_id: int) -> str:
    return f"<notice-{notice_id}@{settings.MAIL_DOMAIN}>"


def collect() -> int:
    """Register a delivery for every notice billing wrote since the last one registered."""
    last = NoticeDelivery.objects.order_by("-notice_id").values_list("notice_id", flat=True).first()
    with engine() as e:
        rows = e.conn.execute(
            "SELECT n.id, a.ref, a.email, n.kind, n.subject FROM notice n"
            " JOIN account a ON a.id = n.account_id WHERE n.id > ? ORDER BY n.id",
            (last or 0,)).fetchall()
    with transaction.atomic():
        NoticeDelivery.objects.bulk_create(
            [NoticeDelivery(notice_id=i, ref=ref, to=email, kind=kind, subject=subject[:200],
                            message_id=message_id(i)) for i, ref, email, kind, subject in rows],
            ignore_conflicts=True)
    return len(rows)


def _due(now, ref=None):
    due = NoticeDelivery.objects.filter(status__in=(NoticeDelivery.PENDING, NoticeDelivery.FAILED)
                                        ).exclude(next_try_at__gt=now)
    if ref is not None:
        due = due.filter(ref=ref)
    return due.order_by("notice_id")


def send_pending(limit: int = 500, ref: str | None = None) -> dict:
    """Collect new notices, then send every delivery that is due (only this account's, with
    `ref`: what a portal action just caused), then, without `ref`, the portal's own queued
    mail. Returns counts."""
    collect()
    now = timezone.now()
    due = list(_due(now, ref)[:limit])
    result = _send_notices(due, now) if due else {"sent": 0, "failed": 0}
    if ref is None:
        more = send_outbox(limit)
        result = {k: result[k] + more[k] for k in result}
    return result


def _send_notices(due, now) -> dict:
    with engine() as e:
        bodies = {}
        for d in due:
            row = e.conn.execute("SELECT body, at FROM notice WHERE id = ?",
                                 (d.notice_id,)).fetchone()
            bodies[d.notice_id] = row
    messages = []
    for d in due:
        body, at = bodies[d.notice_id]
        messages.append((d, EmailMessage(
            subject=d.subject, body=f"{body}\n\nAccount {d.ref}. Your account, invoices and "
                                    f"notices are in the client portal.\n",
            from_email=settings.DEFAULT_FROM_EMAIL, to=[d.to],
            headers={"Message-ID": d.message_id, "X-LCI-Notice": str(d.notice_id),
                     "X-LCI-Account": d.ref})))
    return _send(messages, now)


def _send(messages, now) -> dict:
    """Send each (delivery row, message) on one connection; record the outcome on the row."""
    sent = failed = 0
    connection = get_connection(fail_silently=False)
    for d, message in messages:
        message.connection = connection
        d.attempts += 1
        try:
            message.send()
        except Exception as exc:  # noqa: BLE001 - any transport failure is retried later
            failed += 1
            d.last_error = f"{type(exc).__name__}: {exc}"[:300]
            if d.attempts >= settings.MAIL_MAX_ATTEMPTS:
                d.status, d.next_try_at = NoticeDelivery.GIVEN_UP, None
            else:
                d.status = NoticeDelivery.FAILED
                d.next_try_at = now + timedelta(minutes=2 ** d.attempts)
        else:
            sent += 1
            d.status, d.sent_at, d.next_try_at, d.last_error = (NoticeDelivery.SENT,
                                                                timezone.now(), None, "")
        d.save(update_fields=["attempts", "status", "sent_at", "next_try_at", "last_error"])
    try:
        connection.close()
    except Exception:  # noqa: BLE001 - closing a broken connection
        pass
    return {"sent": sent, "failed": failed}


# ---- the portal's own mail ---------------------------------------------------------------------
def queue(kind: str, to: str, subject: str, body: str, *, send_now: bool = True,
          key: str | None = None) -> OutboxMail:
    """Queue one mail of the portal (an invitation, a password reset, a shipment notice) and,
    unless told not to, try it at once; a failure leaves it queued for the worker's retries.
    `key` names the mail for good (a second queue() with the same key is the same mail)."""
    name = key or secrets.token_hex(8)
    mail, _ = OutboxMail.objects.get_or_create(
        message_id=f"<{kind.replace('_', '-')}-{name}@{settings.MAIL_DOMAIN}>",
        defaults={"kind": kind, "to": to, "subject": subject[:200], "body": body})
    if send_now and mail.status == OutboxMail.PENDING:
        send_outbox(only=[mail.pk])
        mail.refresh_from_db()
    return mail


def send_outbox(limit: int = 500, only=None) -> dict:
    """Send every queued portal mail that is due (only those with the given ids, with `only`)."""
    now = timezone.now()
    due = OutboxMail.objects.filter(status__in=(OutboxMail.PENDING, OutboxMail.FAILED)
                                    ).exclude(next_try_at__gt=now)
    if only is not None:
        due = due.filter(pk__in=list(only))
    due = list(due.order_by("id")[:limit])
    if not due:
        return {"sent": 0, "failed": 0}
    return _send([(m, EmailMessage(subject=m.subject, body=m.body,
                                   from_email=settings.DEFAULT_FROM_EMAIL, to=[m.to],
                                   headers={"Message-ID": m.message_id,
                                            "X-LCI-Mail": m.kind})) for m in due], now)


def retry_now(deliveries) -> None:
    """Staff: send these (notice deliveries or outbox mails) again at the next run (also
    after giving up)."""
    deliveries.exclude(status=NoticeDelivery.SENT).update(status=NoticeDelivery.FAILED,
                                                          next_try_at=None)
