"""Fixtures of the portal's tests: a billing store on a temporary file (the real engine and its
simulated processor), the provider's keys, clients signed in, and a real SMTP server."""

from __future__ import annotations

import email
import email.policy
import socket
from datetime import UTC, datetime

import pytest
from aiosmtpd.controller import Controller

from provider.billing import schema
from provider.billing.clock import parse_when
from provider.billing.engine import Engine
from provider.billing.policy import load_policy
from sim.provider import Provider

START = "2026-01-05T09:00"  # a Monday
SEED = 11


def T(text: str) -> int:
    return parse_when(text)


class Books:
    """The billing side of a test: the real engine on the store the portal uses."""

    def __init__(self, path):
        self.path = str(path)

    def engine(self):
        from provider.web.portal import billing
        return billing.engine()

    def open(self, email="client@example.com", serial="LCI7-0001", token="tok_card_1", **kw):
        spec = dict(serial=serial, email=email, state="MN", county="Hennepin", token=token,
                    pay_initial=True)
        spec.update(kw)
        with self.engine() as e:
            return e.open_account(**spec)

    def to(self, when: str | int) -> None:
        with self.engine() as e:
            e.advance(T(when) if isinstance(when, str) else when)

    def card(self, token: str, when: str, behaviour: str) -> None:
        with self.engine() as e:
            e.processor.set_card(token, T(when), behaviour)

    def view(self, ref):
        from provider.billing import reports
        with self.engine() as e:
            return reports.account_view(e.conn, ref)

    def payments(self, ref):
        from provider.billing import reports
        with self.engine() as e:
            return reports.payments(e.conn, e.store.account_by_ref(ref).id)

    def charged(self, ref) -> int:
        return sum(p["amount"] for p in self.payments(ref) if p["status"] == "succeeded")

    def into_lockout(self, ref, token="tok_card_1"):
        """The 19 Jan charge fails: past due, late fee, recall 26 Jan, lockout 2 Feb."""
        self.card(token, "2026-01-18", "insufficient_funds")
        self.to("2026-02-02T10:00")
        assert self.view(ref)["status"] == "lockout"


@pytest.fixture
def books(tmp_path, settings):
    path = tmp_path / "billing.db"
    conn = schema.connect(path)
    schema.create(conn)
    Engine.initialize(conn, load_policy(), T(START), SEED)
    conn.close()
    settings.BILLING_URL = f"sqlite:///{path}"
    return Books(path)


@pytest.fixture
def keys(tmp_path, settings):
    """The provider's keys (seeded: tests only); the portal answers codes with its master secret."""
    provider = Provider(SEED, "LCI7-0001")
    paths = provider.save(tmp_path / "keys")
    settings.MASTER_SECRET_FILE = paths["master_secret"]
    return provider


@pytest.fixture
def make_client(db, books):
    """A signed-in portal client for a billing account (terms accepted unless said)."""
    from django.conf import settings as dj
    from django.contrib.auth import get_user_model
    from django.test import Client

    from provider.web.portal.models import ClientAccount, TermsAcceptance

    def make(ref, email=None, accept=True):
        user = get_user_model().objects.create_user(
            username=email or f"{ref.lower()}@example.com", email=email or "", password="pw-" + ref)
        client = ClientAccount.objects.create(user=user, ref=ref)
        if accept:
            for doc in (TermsAcceptance.TERMS, TermsAcceptance.SERVICE_AGREEMENT):
                TermsAcceptance.objects.create(client=client, document=doc,
                                               version=dj.TERMS_VERSION, ip="127.0.0.1")
        browser = Client()
        browser.force_login(user)
        browser.user = user
        return browser
    return make


class _Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SmtpServer:
    """A real SMTP server (aiosmtpd) on localhost; `messages` are what arrived."""

    def __init__(self):
        self.port = free_port()
        self.inbox = _Inbox()
        self.controller = None

    @property
    def messages(self):
        return self.inbox.messages

    def start(self):
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp(settings):
    server = SmtpServer()
    server.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 5
    yield server
    server.stop()


def utc(text: str) -> datetime:
    return datetime.fromtimestamp(T(text), UTC)


# a real VIN (its check digit is right) for the center tests
VIN = "1HGCM82633A004352"
VEHICLE = {"vehicle_year": "2003", "vehicle_make": "Honda", "vehicle_model": "Accord", "vin": VIN}


@pytest.fixture
def compliance(keys, settings):
    """The compliance department's key (work_order scope) signs the centers' work orders."""
    from pathlib import Path
    folder = Path(settings.MASTER_SECRET_FILE).parent
    settings.COMPLIANCE_SIGNING_KEY = str(folder / "technician.key")
    return keys


@pytest.fixture
def make_center(db):
    """A service center open Monday to Friday 08:00-16:00 (four two-hour slots), with its
    documents valid and a price list; `staff` signs in a staff member of it."""
    from datetime import date, time

    from django.contrib.auth import get_user_model
    from django.test import Client

    from provider.web.centers.models import (
        Center,
        CenterDocument,
        CenterPrice,
        CenterStaff,
        OpeningHours,
    )

    def make(code="north", bays=1, insurance_until=date(2027, 1, 1), **kw):
        fields = dict(name=f"{code.title()} Interlock", code=code, street="1 Main St",
                      city="Duluth", state="MN", postal_code="55802",
                      email=f"{code}@shops.example", bays=bays)
        fields.update(kw)
        center = Center.objects.create(**fields)
        for weekday in range(5):
            OpeningHours.objects.create(center=center, weekday=weekday, opens=time(8),
                                        closes=time(16))
        CenterDocument.objects.create(center=center, kind="agreement",
                                      received_on=date(2025, 6, 1), expires_on=date(2027, 6, 1))
        CenterDocument.objects.create(center=center, kind="insurance",
                                      received_on=date(2025, 6, 1), expires_on=insurance_until)
        CenterDocument.objects.create(center=center, kind="w9", received_on=date(2025, 6, 1))
        for kind, cents in (("installation", 7500), ("removal", 4000),
                            ("vehicle_switch", 6000)):
            CenterPrice.objects.create(center=center, kind=kind, cents=cents)
        user = get_user_model().objects.create_user(username=f"tech@{code}.example",
                                                    password="pw-" + code)
        CenterStaff.objects.create(user=user, center=center)
        staff = Client()
        staff.force_login(user)
        center.staff_client = staff
        return center
    return make
