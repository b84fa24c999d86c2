"""Notices by e-mail through a real SMTP server on localhost (aiosmtpd): each notice sent once
with its id as the Message-ID, a failed send retried and visible to staff, the notice announcing
an automated attempt out before the attempt, invitations and password resets by mail."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from provider.web.portal import mailer
from provider.web.portal.models import NoticeDelivery

from .conftest import T

pytestmark = pytest.mark.django_db


def _failed_charge(books):
    ref = books.open(email="client@example.com")
    books.card("tok_card_1", "2026-01-18", "insufficient_funds")
    books.to("2026-01-19T10:00")
    return ref


def test_each_notice_is_sent_once_with_its_id_as_message_id(books, smtp):
    ref = _failed_charge(books)
    assert mailer.send_pending() == {"sent": 1, "failed": 0}
    [mail] = smtp.messages
    delivery = NoticeDelivery.objects.get()
    assert mail["Message-ID"] == f"<notice-{delivery.notice_id}@lci777.example>"
    assert mail["To"] == "client@example.com" and mail["Subject"] == "Your payment failed"
    assert "We could not charge" in mail.get_content() and ref in mail.get_content()
    assert (delivery.status, delivery.attempts) == ("sent", 1)
    assert mailer.send_pending() == {"sent": 0, "failed": 0}
    assert len(smtp.messages) == 1


def test_a_failed_send_is_retried_visible_to_staff_and_sent_once(books, smtp, settings):
    _failed_charge(books)
    smtp.stop()
    assert mailer.send_pending()["failed"] == 1
    delivery = NoticeDelivery.objects.get()
    assert delivery.status == "failed" and delivery.attempts == 1 and delivery.last_error
    assert delivery.next_try_at > timezone.now()
    assert mailer.send_pending() == {"sent": 0, "failed": 0}  # not before its retry time
    staff = get_user_model().objects.create_superuser("staff", "s@example.com", "pw")
    admin = Client()
    admin.force_login(staff)
    page = admin.get("/admin/portal/noticedelivery/?status__exact=failed").content.decode()
    assert "Failed (retrying)" in page and delivery.last_error[:20] in page
    smtp.start()
    settings.EMAIL_PORT = smtp.port
    NoticeDelivery.objects.update(next_try_at=timezone.now() - timedelta(seconds=1))
    assert mailer.send_pending() == {"sent": 1, "failed": 0}
    assert len(smtp.messages) == 1
    delivery.refresh_from_db()
    assert delivery.status == "sent" and delivery.attempts == 2
    assert smtp.messages[0]["Message-ID"] == delivery.message_id


def test_a_resend_keeps_the_message_id(books, smtp):
    _failed_charge(books)
    mailer.send_pending()
    mailer.retry_now(NoticeDelivery.objects.all())  # a sent notice is not sent again
    assert mailer.send_pending()["sent"] == 0
    NoticeDelivery.objects.update(status="failed")  # e.g. the answer to a send was lost
    mailer.send_pending()
    ids = [m["Message-ID"] for m in smtp.messages]
    assert len(ids) == 2 and ids[0] == ids[1]  # the same message to the recipient's system


def test_the_notice_of_an_automated_attempt_goes_out_before_it(books, smtp):
    """The 19 Jan charge fails; its retries (21 Jan, 24 Jan) are announced in the failure notice;
    the next cycle charge (2 Feb) is announced by its own notice 48 h before (31 Jan). The worker
    runs with the daily run: each notice is in the inbox before the attempt it announces."""
    _failed_charge(books)
    sent_by = {}  # notice id -> the billing clock when the worker had sent it
    for day in ("2026-01-19T10:00", "2026-01-20", "2026-01-22", "2026-01-25",
                "2026-01-31T10:00", "2026-02-01", "2026-02-03"):
        books.to(day)
        mailer.send_pending()
        with books.engine() as e:
            clock = e.now
        for notice_id in NoticeDelivery.objects.filter(status="sent").values_list("notice_id",
                                                                                  flat=True):
            sent_by.setdefault(notice_id, clock)
    with books.engine() as e:
        announced = e.conn.execute("SELECT id, attempt_at FROM notice WHERE attempt_at IS NOT"
                                   " NULL").fetchall()
    assert len(announced) >= 2
    for notice_id, attempt_at in announced:
        assert sent_by[notice_id] < attempt_at
    kinds = [m["Subject"] for m in smtp.messages]
    assert "Upcoming automatic payment" in kinds
    upcoming = NoticeDelivery.objects.get(kind="attempt_scheduled")
    with books.engine() as e:
        attempt_at = e.conn.execute("SELECT attempt_at FROM notice WHERE id = ?",
                                    (upcoming.notice_id,)).fetchone()[0]
    assert attempt_at == T("2026-02-02T09:00")


def test_a_declined_payment_in_the_portal_is_mailed_at_once(books, smtp, make_client):
    ref = books.open()
    books.card("tok_card_1", "2026-01-18", "declined")
    books.to("2026-01-19T10:00")
    mailer.send_pending()
    web = make_client(ref)
    web.post("/card/", {"token": "tok_declined"})  # a new card while failing: charged at once
    subjects = [m["Subject"] for m in smtp.messages]
    assert subjects.count("Your payment failed") == 2


def test_invitation_sign_up_and_password_reset_by_mail(books, smtp):
    from provider.web.portal import invitations
    ref = books.open(email="Invited@Example.com")
    invitations.invite(ref, "http://testserver/")
    [mail] = smtp.messages
    link = re.search(r"http://testserver(/invite/\S+/)", mail.get_content()).group(1)
    web = Client()
    page = web.post(link, {"new_password1": "a-long-pass-77", "new_password2": "a-long-pass-77"})
    assert page.url == "/terms/"
    assert web.post(link, {"new_password1": "x", "new_password2": "x"}).status_code == 404
    Client().post("/password-reset/", {"email": "Invited@Example.com"})
    reset = smtp.messages[-1].get_content()
    path = re.search(r"http://testserver(/password-reset/\S+/)", reset).group(1)
    form = Client()
    form_page = form.get(path, follow=True)
    assert form_page.status_code == 200
    done = form.post(form_page.redirect_chain[-1][0] if form_page.redirect_chain else path,
                     {"new_password1": "another-pass-88", "new_password2": "another-pass-88"})
    assert done.status_code == 302
    assert Client().login(username="invited@example.com", password="another-pass-88")


def test_after_the_last_try_staff_see_it_given_up_and_can_send_it_again(books, smtp, settings):
    _failed_charge(books)
    settings.MAIL_MAX_ATTEMPTS = 2
    smtp.stop()
    for _ in range(2):
        NoticeDelivery.objects.update(next_try_at=None)
        mailer.send_pending()
    delivery = NoticeDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("given_up", 2)
    assert mailer.send_pending() == {"sent": 0, "failed": 0}
    smtp.start()
    settings.EMAIL_PORT = smtp.port
    mailer.retry_now(NoticeDelivery.objects.all())  # the staff's admin action
    assert mailer.send_pending() == {"sent": 1, "failed": 0}


def test_a_portal_action_sends_only_its_own_accounts_notices(books, smtp, make_client):
    mine = books.open(email="client@example.com")
    other = books.open(email="other@example.com", serial="LCI7-0002", token="tok_card_2")
    for token in ("tok_card_1", "tok_card_2"):
        books.card(token, "2026-01-18", "insufficient_funds")
    books.to("2026-01-19T10:00")  # both charges fail: a notice for each account
    web = make_client(mine)
    web.post("/card/", {"token": "tok_visa"})
    assert {m["To"] for m in smtp.messages} == {"client@example.com"}
    waiting = NoticeDelivery.objects.filter(ref=other)
    assert waiting.count() == 1 and waiting.get().status == "pending"
    mailer.send_pending()  # the worker sends the rest
    assert {m["To"] for m in smtp.messages} == {"client@example.com", "other@example.com"}
