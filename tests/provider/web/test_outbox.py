"""Invitations and password resets go through the same retried, staff-visible outbox as the
billing notices: with the SMTP server down the request still succeeds, the mail waits (failed,
with its error, in the staff's admin), and it arrives once when the server is back up — with
the Message-ID it was first given."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from provider.web.portal import invitations, mailer
from provider.web.portal.models import OutboxMail

pytestmark = pytest.mark.django_db


def _back_up(smtp, settings):
    smtp.start()
    settings.EMAIL_PORT = smtp.port
    OutboxMail.objects.update(next_try_at=timezone.now() - timedelta(seconds=1))


def _staff_page(path):
    staff = get_user_model().objects.create_superuser("staff", "s@example.com", "pw")
    admin = Client()
    admin.force_login(staff)
    return admin.get(path).content.decode()


def test_an_invitation_sent_while_smtp_is_down_waits_and_arrives_once(books, smtp, settings):
    ref = books.open(email="invited@example.com")
    smtp.stop()
    invitation = invitations.invite(ref, "http://testserver/")  # no exception: it is queued
    mail = OutboxMail.objects.get()
    assert (mail.kind, mail.status, mail.attempts, mail.to) == ("invitation", "failed", 1,
                                                                 "invited@example.com")
    assert mail.last_error and mail.next_try_at > timezone.now()
    page = _staff_page("/admin/portal/outboxmail/?status__exact=failed")
    assert "Failed (retrying)" in page and "invited@example.com" in page
    assert invitation.token not in page  # the staff list never shows the sign-up link
    _back_up(smtp, settings)
    assert mailer.send_pending() == {"sent": 1, "failed": 0}
    assert mailer.send_pending() == {"sent": 0, "failed": 0}
    [arrived] = smtp.messages
    assert arrived["Message-ID"] == mail.message_id
    assert invitations.link(invitation, "http://testserver/") in arrived.get_content()
    mail.refresh_from_db()
    assert (mail.status, mail.attempts) == ("sent", 2)


def test_a_password_reset_while_smtp_is_down_is_not_lost(books, smtp, settings):
    get_user_model().objects.create_user("c@example.com", "c@example.com", "old-pass-1234")
    smtp.stop()
    page = Client().post("/password-reset/", {"email": "c@example.com"})
    assert page.status_code == 302 and page.url == "/password-reset/sent/"
    mail = OutboxMail.objects.get()
    assert (mail.kind, mail.status) == ("password_reset", "failed")
    assert "password-reset/" not in _staff_page("/admin/portal/outboxmail/")
    _back_up(smtp, settings)
    assert mailer.send_pending()["sent"] == 1
    [arrived] = smtp.messages
    assert arrived["Message-ID"] == mail.message_id and arrived["To"] == "c@example.com"
    path = re.search(r"http://testserver(/password-reset/\S+/)", arrived.get_content()).group(1)
    form = Client()
    shown = form.get(path, follow=True)
    done = form.post(shown.redirect_chain[-1][0],
                     {"new_password1": "another-pass-88", "new_password2": "another-pass-88"})
    assert done.status_code == 302
    assert Client().login(username="c@example.com", password="another-pass-88")


def test_a_reset_for_an_unknown_address_queues_nothing(books, smtp):
    assert Client().post("/password-reset/", {"email": "nobody@example.com"}).status_code == 302
    assert not OutboxMail.objects.exists() and not smtp.messages


def test_staff_retry_sends_a_given_up_mail(books, smtp, settings):
    ref = books.open(email="invited@example.com")
    settings.MAIL_MAX_ATTEMPTS = 1
    smtp.stop()
    invitations.invite(ref, "http://testserver/")
    assert OutboxMail.objects.get().status == "given_up"
    _back_up(smtp, settings)
    assert mailer.send_pending()["sent"] == 0  # given up: only staff send it again
    mailer.retry_now(OutboxMail.objects.all())
    assert mailer.send_pending()["sent"] == 1 and len(smtp.messages) == 1
