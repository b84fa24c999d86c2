"""The portal's security: one client never sees another's account (every URL tried with the
other client's ids), CSRF on every form, throttled sign-in, hashed passwords, staff-only admin,
secure cookies outside DEBUG, and bad input answered by a form error, never a 500."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import URLPattern, get_resolver

from .conftest import T

pytestmark = pytest.mark.django_db

PORTAL_POSTS = {
    "/pay/": {"key": "0" * 32, "how": "full"},
    "/card/": {"token": "tok_visa"},
    "/changes/": {"cycle_weeks": "4", "theft_protection": "on", "confirm": "yes"},
    "/lockout-code/": {"request": "123456789012"},
    "/appointments/book/": {"kind": "removal", "center": "1", "slot": "2026-02-20T10:00",
                            "confirm": "1"},
    "/terms/": {"terms": "on", "service_agreement": "on"},
}


def _portal_routes():
    """Every named URL of the portal (not the admin, not Django's auth views)."""
    from provider.web.portal import views
    names = []
    for p in get_resolver().url_patterns:
        if isinstance(p, URLPattern) and getattr(p.callback, "__module__", "") == views.__name__:
            names.append(str(p.pattern))
    return names


def test_every_url_with_another_clients_ids_is_a_404_and_changes_nothing(books, make_client,
                                                                         make_center):
    from .conftest import VEHICLE
    center = make_center()
    mine = books.open(email="me@example.com", serial="LCI7-0001", appointment=T("2026-01-20T10:00"))
    theirs = books.open(email="them@example.com", serial="LCI7-0002", token="tok_card_2")
    me, them = make_client(mine), make_client(theirs)
    them.post("/appointments/book/", {"kind": "removal", "center": center.pk,
                                      "slot": "2026-02-20T10:00", **VEHICLE, "confirm": "1"})
    from provider.web.portal.models import Appointment
    their_ids = list(Appointment.objects.filter(client__ref=theirs).values_list("pk", flat=True))
    assert len(their_ids) >= 1
    ids = {"number": [f"{theirs}-0001"], "pk": their_ids, "token": ["x"]}
    routes = _portal_routes()
    tried = 0
    for route in routes:
        params = [name for name in ("number", "pk", "token") if f"<{name}>" in route
                  or f":{name}>" in route]
        if not params:
            continue
        for value in ids[params[0]]:
            url = "/" + route.split("<")[0] + str(value) + route.split(">", 1)[1]
            before = books.view(theirs)
            for method in ("get", "post"):
                response = getattr(me, method)(url, {"at": "2026-02-01T10:00", "confirm": "yes"})
                assert response.status_code == 404, (method, url, response.status_code)
                tried += 1
            assert books.view(theirs) == before
    assert tried >= 6
    # pages without ids show only my own account
    for route in routes:
        if "<" in route:
            continue
        page = me.get("/" + route)
        assert theirs.encode() not in page.content, route
    assert Appointment.objects.get(client__ref=theirs, kind="removal").status == "booked"


def test_every_portal_form_needs_the_csrf_token(books, make_client):
    ref = books.open()
    web = make_client(ref)
    guarded = Client(enforce_csrf_checks=True)
    guarded.force_login(web.user)
    for url, data in PORTAL_POSTS.items():
        assert guarded.post(url, data).status_code == 403, url
    assert guarded.post("/login/", {"username": "x", "password": "y"}).status_code == 403
    assert books.view(ref)["pending_change"] is None


def test_sign_in_is_throttled_after_repeated_failures(books, db):
    get_user_model().objects.create_user("a@example.com", "a@example.com", "right-password-1")
    web = Client()
    for _ in range(5):
        page = web.post("/login/", {"username": "a@example.com", "password": "wrong"})
        assert b"Please enter a correct" in page.content
    page = web.post("/login/", {"username": "a@example.com", "password": "right-password-1"})
    assert b"Too many failed sign-ins" in page.content and "_auth_user_id" not in web.session
    other = Client(REMOTE_ADDR="198.51.100.7")  # another address is still refused for this user
    page = other.post("/login/", {"username": "a@example.com", "password": "right-password-1"})
    assert b"Too many failed sign-ins" in page.content


def test_a_correct_sign_in_before_the_limit_works(books, db):
    get_user_model().objects.create_user("b@example.com", "b@example.com", "right-password-2")
    web = Client()
    for _ in range(4):
        web.post("/login/", {"username": "b@example.com", "password": "wrong"})
    assert web.post("/login/", {"username": "b@example.com",
                                "password": "right-password-2"}).status_code == 302


def test_passwords_are_hashed_by_django(db, settings):
    from django.conf import global_settings

    import provider.web.settings as production
    assert not hasattr(production, "PASSWORD_HASHERS")  # Django's default list: PBKDF2 first
    settings.PASSWORD_HASHERS = global_settings.PASSWORD_HASHERS
    user = get_user_model().objects.create_user("c@example.com", "c@example.com", "s3cret-pass")
    assert user.password.startswith("pbkdf2_sha256$") and "s3cret-pass" not in user.password


def test_the_admin_is_for_staff_only(books, make_client):
    ref = books.open()
    web = make_client(ref)
    assert web.get("/admin/").status_code == 302  # a client is sent to the admin's sign-in
    assert web.get("/admin/portal/noticedelivery/").status_code == 302
    staff = get_user_model().objects.create_user("staff", "s@example.com", "pw", is_staff=True,
                                                 is_superuser=True)
    admin = Client()
    admin.force_login(staff)
    assert admin.get("/admin/portal/noticedelivery/").status_code == 200
    clients = admin.get("/admin/portal/clientaccount/").content.decode()
    assert ref in clients and "active" in clients  # billing's status beside the portal's record


def test_cookies_are_secure_outside_debug(books, db, settings):
    assert settings.DEBUG is False
    get_user_model().objects.create_user("d@example.com", "d@example.com", "right-password-4")
    web = Client()
    web.get("/login/")
    response = web.post("/login/", {"username": "d@example.com", "password": "right-password-4"})
    assert response.cookies["sessionid"]["secure"] and response.cookies["sessionid"]["httponly"]
    assert web.cookies["csrftoken"]["secure"]


BAD = ["", "-1", "1e400", "NaN", "12.345", "9" * 40, "<script>", "\x00", "ünïcødé",
       "2026-13-45T99:99", "tok_" + "a" * 300]


def test_bad_input_is_a_form_error_never_a_500(books, keys, make_client):
    ref = books.open(appointment=T("2026-01-20T10:00"))
    books.card("tok_card_1", "2026-01-05T10:00", "declined")
    web = make_client(ref)
    web.raise_request_exception = True
    web.get("/appointments/")
    from provider.web.portal.models import Appointment
    pk = Appointment.objects.get(client__ref=ref).pk
    fields = {
        "/pay/": ["key", "how", "amount"],
        "/card/": ["token"],
        "/changes/": ["cycle_weeks", "theft_protection", "confirm"],
        "/lockout-code/": ["request"],
        "/appointments/book/": ["kind", "center", "slot", "vehicle_year", "vehicle_make", "vin",
                                "confirm"],
        f"/appointments/{pk}/reschedule/": ["at", "confirm"],
        "/terms/": ["terms", "service_agreement"],
        "/login/": ["username", "password"],
    }
    before = books.view(ref)
    for url, names in fields.items():
        for bad in BAD:
            for name in names:
                data = {n: "2026-02-01T10:00" if n == "at" else "x" for n in names}
                data[name] = bad
                if url == "/pay/":
                    data["how"] = "part" if name != "how" else bad
                response = web.post(url, data)
                assert response.status_code in (200, 302, 404), (url, name, bad)
    after = books.view(ref)
    assert after["balance"] == before["balance"] and after["appointment_at"] == before["appointment_at"]
    assert web.get("/invoices/%00/").status_code == 404
    assert web.get("/appointments/99999999999999999999/reschedule/").status_code == 404


def test_many_names_tried_from_one_address_are_throttled(books, db):
    get_user_model().objects.create_user("e@example.com", "e@example.com", "right-password-5")
    web = Client(REMOTE_ADDR="192.0.2.44")
    for n in range(20):
        web.post("/login/", {"username": f"guess{n}@example.com", "password": "wrong"})
    page = web.post("/login/", {"username": "e@example.com", "password": "right-password-5"})
    assert b"Too many failed sign-ins" in page.content
    assert Client(REMOTE_ADDR="192.0.2.45").post(
        "/login/", {"username": "e@example.com", "password": "right-password-5"}).status_code == 302


def test_the_production_settings_pass_djangos_deployment_checks(tmp_path):
    import os
    import secrets
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LCI_", "DJANGO_"))}
    env.update(DJANGO_SETTINGS_MODULE="provider.web.settings", LCI_SECRET_KEY=secrets.token_urlsafe(50),
               LCI_DATABASE_URL=f"sqlite:///{tmp_path / 'deploy.db'}")
    done = subprocess.run([sys.executable, "-m", "django", "check", "--deploy"], env=env,
                          capture_output=True, text=True, timeout=120)
    found = set(re.findall(r"\(([a-z_.]+\.[WE]\d+)\)", done.stdout + done.stderr))
    # left to the provider's domain: HSTS for subdomains and the browsers' preload list
    assert done.returncode == 0 and found <= {"security.W005", "security.W021"}, found
    env.pop("LCI_SECRET_KEY")
    refused = subprocess.run([sys.executable, "-m", "django", "check"], env=env,
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0 and "LCI_SECRET_KEY is required" in refused.stderr
